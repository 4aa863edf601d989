"""Verifying a citizen against their chip card at the desk (electronic ID "level 2" activation).

:meth:`Verifications.verify` runs, in order:

1. **The chip**: PACE (or BAC), passive authentication, chip authentication, then terminal
   authentication with the station's inspection-system credentials so that DG3 (the
   fingerprints) can be read (:class:`.chip.ChipReads` with ``eac=True``). A document whose
   passive authentication does not verify is never "verified", whatever the biometrics say.
2. **The face**: a live portrait (from a camera through the ICAO-checked capture session, or a
   photo given by the caller) against the DG2 photo, decided at the face operating point
   (:func:`biostation.face.verify_portrait`; ``retake`` when the live portrait fails a check that
   matters for comparison).
3. **The fingers**: for each finger of DG3 (index fingers on the CCCD), one live flat capture of
   that finger through the capture loop, compared with the chip's image (both extracted by the
   station's extractor) by the minutiae matcher at ``matcher.THRESHOLDS[finger_point]``; the
   fingers match when any one of them does. A card without DG3, terminal authentication refused
   or no scanner: the fingers are "not available" and the decision rests on the face, and says so.

Decision: ``verified`` (document authentic, face match, fingers match or not available),
``not_verified`` (a biometric no-match, or the document not authentic), ``retake`` (the face
comparison asks for a new live portrait). Error rates at the default operating points, from the
measured matcher figures (the sources are named, not repeated): the face point ``fmr-0.1%`` is
the face model's threshold set on the desk protocol (``benchmarks/bench_face_desk.py``:
FMR about 0.1 %, FNMR about 9 %); the finger point ``FMR_1e-3`` is the matcher threshold with an
all-pairs impostor FMR of 0.1 % per comparison on FVC2002 (``biostation bench fvc``), so "any
of two fingers" is at most 0.2 %. Requiring both the face and a finger, and taking the two as
independent, the decision's FMR is about 2e-6; its FNMR is at most the sum of the two FNMRs.

Every verification is recorded in the station's store as a closed session ``verify-<id>``
(a decision per comparison with its score, threshold and operating point, the document number,
and a JSON summary queued for the central system), and in the audit trail. No image or template
is stored.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...errors import FaceError, ImageError
from ...hal import Camera, CardReader, FingerprintScanner
from ...records import FingerPosition, ImpressionKind
from .chip import ChipReads

__all__ = ["Verifications", "Verification", "FINGER_POINT", "FACE_POINT"]

FINGER_POINT = "FMR_1e-3"
FACE_POINT = "fmr-0.1%"


@dataclass
class Verification:
    """The outcome: ``decision`` (verified, not_verified, retake), why, and each comparison."""

    verification_id: str
    decision: str
    reasons: list[str]
    document: dict[str, Any]
    face: dict[str, Any] | None
    fingers: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"verification_id": self.verification_id, "decision": self.decision, "reasons": self.reasons,
                "document": self.document, "face": self.face, "fingers": self.fingers,
                "timings_s": {k: round(v, 3) for k, v in self.timings.items()}}


class Verifications:
    """The desk's chip verifications. ``store``: the station's
    :class:`~biostation.store.EnrollmentStore` (None: nothing recorded, for tools and tests)."""

    def __init__(self, chip_reads: ChipReads, store: Any = None, *, face_point: str = FACE_POINT,
                 finger_point: str = FINGER_POINT, capture_timeout_s: float = 15.0, quality_gate: int = 40):
        from ... import matcher

        if finger_point not in matcher.THRESHOLDS:
            raise ValueError(f"finger operating point {finger_point!r}: one of {', '.join(matcher.THRESHOLDS)}")
        self.chip_reads = chip_reads
        self.store = store
        self.face_point = face_point
        self.finger_point = finger_point
        self.capture_timeout_s = capture_timeout_s
        self.quality_gate = quality_gate

    def verify(self, reader: CardReader, *, can: str | None = None, mrz: str | None = None,
               camera: Camera | None = None, scanner: FingerprintScanner | None = None,
               live_portrait: np.ndarray | None = None, operator: str = "desk",
               on_step: Callable[[str], None] | None = None) -> Verification:
        """Verify the holder of the card on ``reader`` (see the module doc). Card errors (wrong
        CAN: AccessDeniedError; card pulled: CardRemovedError; a failed chip authentication)
        propagate and nothing is recorded as verified."""
        from ... import matcher

        step = on_step or (lambda name: None)
        vid = "verify-" + uuid.uuid4().hex
        t: dict[str, float] = {}
        t0 = time.monotonic()
        step("chip")
        read = self.chip_reads.read(reader, can=can, mrz=mrz, eac=True)
        doc = read.result
        t["chip"] = time.monotonic() - t0
        summary = doc.summary()
        holder = summary.get("holder") or {}
        number = ((holder.get("dg13") or {}).get("id_number") or (holder.get("mrz") or {}).get("document_number")
                  or "")
        pa = doc.passive.status if doc.passive is not None else "not performed"
        document = {"document_number": number, "passive_authentication": pa, "chip_authentication": doc.chip_auth,
                    "terminal_authentication": doc.terminal_auth, "fingerprints": doc.fingerprint_status,
                    "trust_store": read.trust_sources}
        reasons: list[str] = []
        if pa != "verified":
            reasons.append(f"the document is not authentic: passive authentication {pa}")

        # --- the face -------------------------------------------------------------------------
        step("face")
        t1 = time.monotonic()
        face = self._face(doc, camera, live_portrait, reasons)
        t["face"] = time.monotonic() - t1

        # --- the fingers ----------------------------------------------------------------------
        step("fingers")
        t2 = time.monotonic()
        fingers = self._fingers(doc, scanner, matcher.THRESHOLDS[self.finger_point], reasons)
        t["fingers"] = time.monotonic() - t2

        if face is not None and face["decision"] == "retake":
            decision = "retake"
        elif pa != "verified" or face is None or not face["match"] or fingers["decision"] == "no_match":
            decision = "not_verified"
        else:
            decision = "verified"
        if decision == "verified" and fingers["decision"] == "not_available":
            reasons.append(f"verified on the face alone: fingerprints {fingers['reason']}")
        t["total"] = time.monotonic() - t0
        result = Verification(vid, decision, reasons, document, face, fingers, t)
        self._record(result, operator)
        return result

    def _face(self, doc: Any, camera: Camera | None, live: np.ndarray | None,
              reasons: list[str]) -> dict[str, Any] | None:
        from ...face import verify_portrait

        dg2 = doc.decoded.get("DG2")
        if dg2 is None or not dg2.faces:
            reasons.append("the chip holds no portrait (DG2)")
            return None
        if live is None:
            if camera is None:
                reasons.append("no live portrait: no camera and no photo given")
                return None
            from .portrait import capture_portrait

            shot = capture_portrait(camera, timeout_s=self.capture_timeout_s)
            if shot.image is None:
                reasons.append("no live portrait: the camera gave no frame with a face")
                return None
            live = shot.image
        try:
            dec = verify_portrait(live, dg2.faces[0].image, operating_point=self.face_point)
        except (FaceError, ImageError) as exc:
            reasons.append(f"face comparison impossible: {exc}")
            return None
        out = dec.to_dict()
        if dec.decision == "no_match":
            reasons.append(f"the live face does not match the chip photo (distance {out['distance']} > "
                           f"{dec.operating_point.threshold})")
        elif dec.decision == "retake":
            reasons.append("take the live portrait again: " + ", ".join(q["check"] for q in out["quality"]))
        return out

    def _fingers(self, doc: Any, scanner: FingerprintScanner | None, threshold: int,
                 reasons: list[str]) -> dict[str, Any]:
        from ... import matcher
        from ...fingerprint import extract
        from .fingers import CaptureLoop

        base = {"operating_point": self.finger_point, "threshold": threshold, "comparisons": []}
        if doc.fingerprint_status != "read" or not doc.fingerprints:
            return {**base, "decision": "not_available", "reason": doc.fingerprint_status or "not read"}
        if scanner is None:
            return {**base, "decision": "not_available", "reason": "no scanner at the desk"}
        loop = CaptureLoop(scanner, threshold=self.quality_gate, timeout_s=self.capture_timeout_s)
        comparisons = []
        for f in doc.fingerprints:
            pos = FingerPosition(int(f.position))
            try:
                chip_t = extract(f.pixels(), dpi=f.ppi)
            except ImageError as exc:
                comparisons.append({"position": int(pos), "error": f"chip image: {exc}"})
                continue
            got = loop.capture_finger(pos, ImpressionKind.FLAT)
            if got.impression is None:
                comparisons.append({"position": int(pos), "error": f"no live capture ({got.detail or got.status.value})"})
                continue
            live_t = extract(got.impression.image, dpi=got.impression.dpi)
            score = int(matcher.match(live_t, chip_t))
            comparisons.append({"position": int(pos), "score": score, "match": score >= threshold,
                                "live_nfiq2": got.quality})
        scored = [c for c in comparisons if "score" in c]
        if not scored:
            reasons.append("no finger could be compared: " + "; ".join(c["error"] for c in comparisons))
            return {**base, "comparisons": comparisons, "decision": "not_available",
                    "reason": "no finger could be compared"}
        ok = any(c["match"] for c in scored)
        if not ok:
            reasons.append(f"no live finger matches the chip (best score {max(c['score'] for c in scored)} < "
                           f"{threshold})")
        return {**base, "comparisons": comparisons, "decision": "match" if ok else "no_match"}

    def _record(self, v: Verification, operator: str) -> None:
        if self.store is None:
            return
        s = self.store
        s.open_session(operator, {"document_number": v.document["document_number"]}, session_id=v.verification_id,
                       step="verification")
        if v.face is not None:
            s.add_decision(v.verification_id, operator, "face-1:1", v.face["decision"], score=v.face["distance"],
                           threshold=v.face["operating_point"]["threshold"],
                           details={"operating_point": v.face["operating_point"]["name"], "model": v.face["model"],
                                    "document_number": v.document["document_number"]})
        for c in v.fingers["comparisons"]:
            if "score" in c:
                s.add_decision(v.verification_id, operator, f"finger-1:1/{c['position']:02d}",
                               "match" if c["match"] else "no-match", score=c["score"],
                               threshold=v.fingers["threshold"],
                               details={"operating_point": v.fingers["operating_point"],
                                        "document_number": v.document["document_number"]})
        s.add_decision(v.verification_id, operator, "verification", v.decision,
                       details={"reasons": v.reasons, "document_number": v.document["document_number"],
                                "passive_authentication": v.document["passive_authentication"]})
        s.audit(operator, "verification.decide", v.verification_id, decision=v.decision,
                document=v.document["document_number"])
        body = json.dumps({"type": "verification", **v.to_dict()}, ensure_ascii=False).encode("utf-8")
        s.finish(v.verification_id, operator, body, txn_id=v.verification_id, content_type="application/json")
