"""Enrolling one applicant at the desk: demographics, ten fingers, a portrait, the duplicate search,
review and confirmation, resumable by id after a crash or a restart.

One :class:`EnrollmentSession` per applicant moves through these steps::

    demographics --> fingers --> portrait --> duplicates --> review --(confirm)--> confirmed
                                                                       \\-(cancel)--> cancelled

* **demographics**: the 12-digit personal ID (validated as the CCCD number is: digits, province
  of birth registration, century/sex digit agreeing with the date of birth), names kept exactly
  as typed (Vietnamese diacritics are never normalised away), no control characters, bounded
  lengths (:func:`validate_demographics`).
* **fingers**: the 4-4-2 slaps (segmented into fingers) and a flat (or rolled) single of every
  finger, each with its NFIQ 2 score; fingers declared missing or bandaged carry their
  ANSI/NIST-ITL code (``XX`` amputated, ``UP`` unable to print) and are never captured. A
  capture is accepted at the quality gate, or after the capture loop's retries with its best
  impression marked ``low_quality``; a failed capture (timeout, device gone) leaves the finger
  open, to be captured again. When every finger is in, the sequence check
  (:func:`biostation.fingerprint.check_sequence`) compares slap fingers with singles: a swap, a
  duplicate or a wrong hand keeps the step open and names the fingers to capture again.
* **portrait**: a live capture from a camera or an uploaded photo, kept only when every ICAO
  check passes (the report is kept either way, so the desk sees why).
* **duplicates**: the applicant searched ten-print against this station's gallery of persons
  (:class:`~biostation.identify.persons.PersonGallery`: every finger against the same finger of
  each earlier applicant, scores summed); of the best five, an earlier applicant with two
  fingers above the FMR 1e-4 threshold, or one finger far above it, is a possible duplicate, and
  the operator must say so at review.
* **review / confirm**: the operator confirms (a possible duplicate needs an explicit
  ``duplicate_cleared`` with a reason) and the session becomes *confirmed*; its fingers join
  the gallery as one person under the session id.

A step asked for before the one it needs raises :class:`~biostation.errors.StepOrderError`
naming the missing step (the daemon answers 409). Every accepted capture is persisted (blobs
first, then the session state that names them) before the call returns, so a session survives
``kill -9`` and a device that disappears mid-step leaves the session as it was before that step.

The sessions live in a :class:`SessionRepo` (the station's encrypted store in the daemon).
Thread-safety: one lock per session; two desks never work on one applicant at once
(:class:`~biostation.errors.SessionBusyError`).
"""

from __future__ import annotations

import datetime as _dt
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

import cv2
import numpy as np

from ...errors import (
    DeviceError,
    EnrollmentError,
    InvalidInputError,
    SessionBusyError,
    SessionNotFoundError,
    StepOrderError,
)
from ...hal import Camera, FingerprintScanner
from ...records import FingerPosition, ImpressionKind
from .fingers import CaptureLoop, Reason, Status

__all__ = ["Step", "SessionRepo", "Enrollments", "EnrollmentSession", "validate_demographics",
           "FINGERS", "SLAPS", "DEFAULT_QUALITY_GATE"]

FINGERS = tuple(FingerPosition(i) for i in range(1, 11))
SLAPS = (FingerPosition.PLAIN_RIGHT_FOUR, FingerPosition.PLAIN_LEFT_FOUR, FingerPosition.PLAIN_THUMBS)
#: NFIQ 2 score a capture must reach to be accepted at once (NIST's NFIQ 2 report calls scores
#: above about 35-40 good; the capture loop retries below it and keeps the best)
DEFAULT_QUALITY_GATE = 40
#: field -> longest accepted text (characters); a desk's forms hold nothing longer
_TEXT_LIMITS = {"surname": 100, "given_names": 100, "place_of_birth": 200, "address": 300, "nationality": 3,
                "sex": 1, "id_number": 12, "date_of_birth": 10, "ethnicity": 50, "religion": 50}
_REQUIRED = ("id_number", "surname", "given_names", "sex", "date_of_birth")


class Step(str, Enum):
    DEMOGRAPHICS = "demographics"
    FINGERS = "fingers"
    PORTRAIT = "portrait"
    DUPLICATES = "duplicates"
    REVIEW = "review"
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"


_ORDER = (Step.DEMOGRAPHICS, Step.FINGERS, Step.PORTRAIT, Step.DUPLICATES, Step.REVIEW)


class SessionRepo(Protocol):
    """Where sessions live: a state document (JSON-able, no biometrics, but personal data: keep
    it sealed) and named blobs (images, templates). ``put_blob`` is durable when it returns;
    ``save_state`` replaces the state atomically. ``finish`` keeps the finished records and the
    final state together and closes the session (its blobs may go once the records are
    delivered); ``cancel`` closes it and drops its blobs. ``load_state`` of a closed session
    whose state was purged returns at least ``session_id``, ``step`` and the times."""

    def create_session(self, session_id: str, state: dict[str, Any]) -> None: ...
    def save_state(self, session_id: str, state: dict[str, Any]) -> None: ...
    def load_state(self, session_id: str) -> dict[str, Any] | None: ...
    def put_blob(self, session_id: str, name: str, data: bytes) -> None: ...
    def get_blob(self, session_id: str, name: str) -> bytes: ...
    def session_ids(self) -> list[str]: ...
    def finish(self, session_id: str, state: dict[str, Any], transaction: bytes,
               records: dict[str, bytes]) -> None: ...
    def cancel(self, session_id: str, state: dict[str, Any], reason: str) -> None: ...


def validate_demographics(fields: dict[str, Any]) -> dict[str, str]:
    """The applicant's demographics, checked; :class:`~biostation.errors.InvalidInputError`
    (HTTP 422) names the first bad field. Text is kept exactly as given (no case change, no
    Unicode normalisation: a name is a legal identity), surrounding spaces trimmed."""
    from ...card.cccd import parse_id

    if not isinstance(fields, dict):
        raise InvalidInputError("demographics must be an object of text fields")
    unknown = sorted(set(fields) - set(_TEXT_LIMITS))
    if unknown:
        raise InvalidInputError(f"unknown demographics field(s): {', '.join(unknown[:5])}")
    out: dict[str, str] = {}
    for key, value in fields.items():
        if value is None:
            continue
        if not isinstance(value, str):
            raise InvalidInputError(f"{key}: text expected")
        if len(value) > _TEXT_LIMITS[key] * 4:
            raise InvalidInputError(f"{key}: {len(value)} characters; at most {_TEXT_LIMITS[key]}")
        text = value.strip()
        if len(text) > _TEXT_LIMITS[key]:
            raise InvalidInputError(f"{key}: {len(text)} characters; at most {_TEXT_LIMITS[key]}")
        bad = next((c for c in text if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn")), None)
        if bad is not None:
            raise InvalidInputError(f"{key}: control or unassigned character U+{ord(bad):04X}")
        if text:
            out[key] = text
    missing = [k for k in _REQUIRED if k not in out]
    if missing:
        raise InvalidInputError(f"missing demographics: {', '.join(missing)}")
    try:
        idn = parse_id(out["id_number"])
    except ValueError as exc:
        raise InvalidInputError(f"id_number: {exc}") from None
    if not idn.valid:
        raise InvalidInputError(f"id_number: {'; '.join(idn.problems)}")
    if out["sex"] not in ("M", "F"):
        raise InvalidInputError("sex: M or F")
    try:
        dob = _dt.date.fromisoformat(out["date_of_birth"])
    except ValueError:
        raise InvalidInputError("date_of_birth: YYYY-MM-DD") from None
    if dob > _dt.date.today() or dob.year < 1900:
        raise InvalidInputError("date_of_birth: not a plausible date of birth")
    if idn.birth_year != dob.year:
        raise InvalidInputError(f"id_number: its birth-year digits say {idn.birth_year}, the date of birth "
                                f"{dob.year}")
    if idn.sex != out["sex"]:
        raise InvalidInputError("id_number: its sex digit does not agree with the sex given")
    out.setdefault("nationality", "VNM")
    return out


def _png(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise EnrollmentError("an image could not be encoded")
    return buf.tobytes()


def _unpng(data: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise EnrollmentError("a stored image could not be decoded")
    return img


@dataclass
class EnrollmentSession:
    """A view of one session's state (JSON-able); the blobs stay in the repo."""

    state: dict[str, Any]

    @property
    def session_id(self) -> str:
        return str(self.state["session_id"])

    @property
    def step(self) -> Step:
        return Step(self.state["step"])

    def summary(self) -> dict[str, Any]:
        """What the desk shows: steps, per-finger status and quality, checks; no biometrics."""
        return dict(self.state)


class Enrollments:
    """The station's enrollment sessions. ``repo``: where they live; ``gallery``: the station's
    1:N backend (:class:`~biostation.identify.LocalBackend` or any
    :class:`~biostation.identify.engine.Backend`); ``audit(action, session_id, detail)`` is
    called for every operator action and record change."""

    def __init__(self, repo: SessionRepo, gallery: Any, *, quality_gate: int = DEFAULT_QUALITY_GATE,
                 capture_timeout_s: float = 15.0, audit: Callable[[str, str, dict[str, Any]], None] | None = None,
                 clock: Callable[[], float] = time.time, station: str = "STATION"):
        self.repo = repo
        self.gallery = gallery
        self.quality_gate = quality_gate
        self.capture_timeout_s = capture_timeout_s
        self.station = station  # originating agency id of the records (ANSI/NIST-ITL 1.008)
        self._audit = audit or (lambda action, sid, detail: None)
        self._clock = clock
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._preview: dict[str, tuple[bytes, int | None, int, bool]] = {}

    # --- sessions ---------------------------------------------------------------------------------
    def start(self, operator: str) -> EnrollmentSession:
        """A new session for the next applicant."""
        sid = uuid.uuid4().hex
        now = self._clock()
        state: dict[str, Any] = {
            "session_id": sid, "step": Step.DEMOGRAPHICS.value, "operator": operator, "created_at": now,
            "updated_at": now, "demographics": None, "fingers": {}, "slaps": {}, "exceptions": {},
            "sequence": None, "portrait": None, "duplicates": None, "decision": None}
        self.repo.create_session(sid, state)
        self._audit("enrollment.start", sid, {"operator": operator})
        return EnrollmentSession(state)

    def get(self, session_id: str) -> EnrollmentSession:
        state = self.repo.load_state(session_id)
        if state is None:
            raise SessionNotFoundError(f"no enrollment session {session_id!r}")
        return EnrollmentSession(state)

    def sessions(self, limit: int = 100) -> list[dict[str, Any]]:
        """The queue: the ``limit`` newest sessions' id, step, name and times (newest first).
        The repo lists ids oldest first; only those shown are opened (each is a decryption)."""
        out = []
        for sid in self.repo.session_ids()[-limit:]:
            st = self.repo.load_state(sid)
            if st is None:
                continue
            d = st.get("demographics") or {}
            out.append({"session_id": sid, "step": st["step"], "created_at": st["created_at"],
                        "updated_at": st["updated_at"],
                        "name": " ".join(x for x in (d.get("surname"), d.get("given_names")) if x)})
        return sorted(out, key=lambda r: -r["created_at"])

    class _Held:
        def __init__(self, owner: Enrollments, sid: str):
            self.owner, self.sid = owner, sid

        def __enter__(self) -> dict[str, Any]:
            with self.owner._guard:
                lock = self.owner._locks.setdefault(self.sid, threading.Lock())
            if not lock.acquire(blocking=False):
                raise SessionBusyError(f"enrollment session {self.sid} is busy with another step")
            self.lock = lock
            try:
                return self.owner.get(self.sid).state
            except BaseException:
                lock.release()
                raise

        def __exit__(self, *exc: object) -> None:
            self.lock.release()

    def _held(self, sid: str) -> Enrollments._Held:
        return Enrollments._Held(self, sid)

    def _save(self, st: dict[str, Any]) -> EnrollmentSession:
        st["updated_at"] = self._clock()
        st["step"] = _current_step(st).value if st["step"] not in (Step.CONFIRMED.value,
                                                                    Step.CANCELLED.value) else st["step"]
        self.repo.save_state(st["session_id"], st)
        return EnrollmentSession(st)

    @staticmethod
    def _need(st: dict[str, Any], step: Step) -> None:
        """Raise StepOrderError unless every step before ``step`` is done and the session open."""
        if st["step"] in (Step.CONFIRMED.value, Step.CANCELLED.value):
            raise StepOrderError(f"session {st['session_id']} is {st['step']}", missing=None)
        for before in _ORDER[:_ORDER.index(step)]:
            if not _done(st, before):
                raise StepOrderError(f"step {before.value!r} must be completed first", missing=before.value)

    # --- demographics -----------------------------------------------------------------------------
    def set_demographics(self, session_id: str, fields: dict[str, Any]) -> EnrollmentSession:
        clean = validate_demographics(fields)
        with self._held(session_id) as st:
            self._need(st, Step.DEMOGRAPHICS)
            st["demographics"] = clean
            self._audit("enrollment.demographics", session_id, {"fields": sorted(clean)})
            return self._save(st)

    # --- fingers ----------------------------------------------------------------------------------
    def declare_exception(self, session_id: str, position: int, reason: str) -> EnrollmentSession:
        """Finger ``position`` (1..10) cannot be captured: ``XX`` amputated, ``UP`` unable to
        print (bandaged). Its captures, if any, are dropped."""
        pos = _finger(position)
        try:
            why = Reason(reason)
        except ValueError:
            raise InvalidInputError("reason: XX (amputated) or UP (unable to print)") from None
        if why not in (Reason.AMPUTATED, Reason.UNABLE_TO_PRINT):
            raise InvalidInputError("reason: XX (amputated) or UP (unable to print)")
        with self._held(session_id) as st:
            self._need(st, Step.FINGERS)
            st["exceptions"][str(int(pos))] = why.value
            st["fingers"].pop(str(int(pos)), None)
            st["sequence"] = None
            for slap in st["slaps"].values():  # a slap taken with that finger on is taken again
                if int(pos) in slap["fingers"]:
                    slap["stale"] = True
            self._audit("enrollment.exception", session_id, {"position": int(pos), "reason": why.value})
            return self._save(st)

    def capture(self, session_id: str, scanner: FingerprintScanner, position: int,
                kind: ImpressionKind | str | None = None,
                on_frame: Callable[[Any], None] | None = None) -> dict[str, Any]:
        """Capture a slap (13, 14, 15) or a single finger (1..10, flat unless ``kind`` says
        rolled) on ``scanner`` through the capture loop (preview, quality gate, retries).
        Returns what the desk shows of it; the session is updated only when something usable
        was captured. Device errors propagate with the session unchanged."""
        try:
            pos = FingerPosition(int(position))
        except (TypeError, ValueError):
            raise InvalidInputError(f"position {position!r}: a finger 1..10 or a slap 13, 14, 15") from None
        is_slap = pos in SLAPS
        if not is_slap and pos not in FINGERS:
            raise InvalidInputError(f"position {int(position)}: a finger 1..10 or a slap 13, 14, 15")
        k = ImpressionKind.SLAP if is_slap else ImpressionKind(kind or ImpressionKind.FLAT)
        if is_slap != (k is ImpressionKind.SLAP):
            raise InvalidInputError("slap positions take kind 'slap', fingers 'flat' or 'rolled'")
        with self._held(session_id) as st:
            self._need(st, Step.FINGERS)
            if not is_slap and str(int(pos)) in st["exceptions"]:
                raise StepOrderError(f"finger {int(pos)} is declared {st['exceptions'][str(int(pos))]}; "
                                     "withdraw the exception first", missing=None)
            missing = tuple(FingerPosition(int(p)) for p in st["exceptions"])

            def frame(f: Any) -> None:
                ok, jpg = cv2.imencode(".jpg", f.overlay, [cv2.IMWRITE_JPEG_QUALITY, 70])
                if ok:
                    self._preview[session_id] = (jpg.tobytes(), f.quality, int(f.position), f.frame.finger_present)
                if on_frame is not None:
                    on_frame(f)

            loop = CaptureLoop(scanner, threshold=self.quality_gate, timeout_s=self.capture_timeout_s,
                               on_frame=frame)
            try:
                result = loop.capture_finger(pos, k, missing=missing if is_slap else ())
            finally:
                self._preview.pop(session_id, None)
            if result.impression is None:
                if result.reason is Reason.DEVICE_ERROR:
                    raise DeviceError(result.detail or "the scanner failed", scanner.device_id)
                return {"position": int(pos), "status": result.status.value, "reason": result.detail or
                        (result.reason.value if result.reason else ""), "accepted": False}
            imp = result.impression
            if is_slap:
                shown = self._store_slap(st, pos, imp.image, imp.dpi, missing, result)
            else:
                shown = self._store_single(st, pos, k, imp.image, imp.dpi, result.quality, result.status)
            self._refresh_sequence(st)
            self._audit("enrollment.capture", session_id,
                        {"position": int(pos), "kind": k.value, "quality": shown.get("nfiq2"),
                         "status": shown["status"]})
            self._save(st)
            return shown

    def preview(self, session_id: str) -> tuple[bytes, int | None, int, bool] | None:
        """The newest live preview frame of the capture running in ``session_id``: (JPEG with
        the quality border drawn, the latest NFIQ 2 score or None, position, finger on), or
        None when no capture is running. The page polls it while a capture call is pending."""
        return self._preview.get(session_id)

    def _store_single(self, st: dict[str, Any], pos: FingerPosition, kind: ImpressionKind, image: np.ndarray,
                      dpi: int, quality: int | None, status: Status) -> dict[str, Any]:
        from ...fingerprint import extract
        from ...templates import encode

        sid = st["session_id"]
        tpl = extract(image, dpi=dpi)
        n = int(st["fingers"].get(str(int(pos)), {}).get("capture", 0)) + 1
        img_name, tpl_name = f"finger-{int(pos)}-{n}.png", f"finger-{int(pos)}-{n}.tpl"
        self.repo.put_blob(sid, img_name, _png(image))
        self.repo.put_blob(sid, tpl_name, encode(tpl, "native"))
        rec = {"position": int(pos), "kind": kind.value, "status": status.value, "nfiq2": quality, "dpi": dpi,
               "width": int(image.shape[1]), "height": int(image.shape[0]), "minutiae": len(tpl.minutiae),
               "image": img_name, "template": tpl_name, "capture": n}
        st["fingers"][str(int(pos))] = rec
        return {**rec, "accepted": True}

    def _store_slap(self, st: dict[str, Any], pos: FingerPosition, image: np.ndarray, dpi: int,
                    missing: tuple[FingerPosition, ...], result: Any) -> dict[str, Any]:
        from ...fingerprint import extract
        from ...fingerprint.slap import SLAP_ORDER, segment_slap
        from ...templates import encode

        sid = st["session_id"]
        seg = segment_slap(image, pos, dpi=dpi, missing=[p for p in SLAP_ORDER[pos] if p in missing])
        n = int(st["slaps"].get(str(int(pos)), {}).get("capture", 0)) + 1
        img_name = f"slap-{int(pos)}-{n}.png"
        self.repo.put_blob(sid, img_name, _png(image))
        fingers = {}
        for f in seg.fingers:
            tpl = extract(f.image, dpi=dpi)
            tpl_name = f"slap-{int(pos)}-{n}-finger-{int(f.position)}.tpl"
            crop_name = f"slap-{int(pos)}-{n}-finger-{int(f.position)}.png"
            self.repo.put_blob(sid, tpl_name, encode(tpl, "native"))
            self.repo.put_blob(sid, crop_name, _png(f.image))
            fingers[str(int(f.position))] = {"box": [int(v) for v in f.box], "angle": round(float(f.angle), 1),
                                             "nfiq2": f.quality, "template": tpl_name, "image": crop_name,
                                             "minutiae": len(tpl.minutiae)}
        quality = min((f.quality or 0 for f in seg.fingers), default=0)
        ok = not seg.problems and len(seg.fingers) == len([p for p in SLAP_ORDER[pos] if p not in missing])
        status = Status.CAPTURED.value if ok and quality >= self.quality_gate else (
            Status.LOW_QUALITY.value if ok else Status.FAILED.value)
        rec = {"position": int(pos), "kind": "slap", "status": status, "nfiq2": quality, "dpi": dpi,
               "width": int(image.shape[1]), "height": int(image.shape[0]), "image": img_name, "capture": n,
               "fingers": {k: v for k, v in fingers.items()}, "problems": list(seg.problems), "stale": False}
        if status == Status.FAILED.value:
            return {**rec, "accepted": False, "reason": "; ".join(seg.problems) or "fingers not found"}
        st["slaps"][str(int(pos))] = rec
        return {**rec, "accepted": True}

    def _refresh_sequence(self, st: dict[str, Any]) -> None:
        """Run the sequence check once every slap and single is in (else clear its result)."""
        st["sequence"] = None
        if not _fingers_captured(st):
            return
        from ...fingerprint.sequence import check_sequence
        from ...templates import decode

        sid = st["session_id"]
        slap_t, single_t = {}, {}
        for slap in st["slaps"].values():
            for p, f in slap["fingers"].items():
                slap_t[FingerPosition(int(p))] = decode(self.repo.get_blob(sid, f["template"])).views[0]
        for p, f in st["fingers"].items():
            single_t[FingerPosition(int(p))] = decode(self.repo.get_blob(sid, f["template"])).views[0]
        report = check_sequence(slap_t, single_t)
        st["sequence"] = {"ok": report.ok,
                          "issues": [{"kind": i.kind, "fingers": [int(p) for p in i.positions], "detail": i.detail,
                                      "error": i.is_error} for i in report.issues]}

    # --- portrait ---------------------------------------------------------------------------------
    def capture_portrait(self, session_id: str, camera: Camera, *, timeout_s: float = 15.0,
                         preview: Callable[[np.ndarray, Any], None] | None = None) -> dict[str, Any]:
        """Live portrait from ``camera`` (auto-capture when every ICAO check passes)."""
        from .portrait import capture_portrait

        with self._held(session_id) as st:
            self._need(st, Step.PORTRAIT)
            res = capture_portrait(camera, timeout_s=timeout_s, preview=preview)
            if res.image is None:
                return {"accepted": False, "status": res.status, "reason": "no frame with a face"}
            return self._store_portrait(st, res.image, "camera")

    def upload_portrait(self, session_id: str, data: bytes) -> dict[str, Any]:
        """A portrait photo uploaded by the desk (JPEG, PNG, JPEG 2000)."""
        from ...face import load_image
        from ...face import params as face_params

        self._need(self.get(session_id).state, Step.PORTRAIT)  # before decoding anything
        image = load_image(data, max_pixels=face_params.UPLOAD_MAX_PIXELS, formats=face_params.UPLOAD_FORMATS)
        with self._held(session_id) as st:
            self._need(st, Step.PORTRAIT)
            return self._store_portrait(st, image, "upload")

    def _store_portrait(self, st: dict[str, Any], image: np.ndarray, source: str) -> dict[str, Any]:
        from ...face import check_portrait, encode_jpeg, token_image

        report = check_portrait(image)
        out = {"source": source, "passed": report.passed, "report": report.to_dict()}
        if not report.passed or report.face is None:
            self._audit("enrollment.portrait", st["session_id"], {"passed": False, "source": source})
            return {**out, "accepted": False}
        token = token_image(image, report.face.right_eye, report.face.left_eye)
        sid = st["session_id"]
        n = int((st["portrait"] or {}).get("capture", 0)) + 1
        self.repo.put_blob(sid, f"portrait-{n}.jpg", encode_jpeg(token))
        ok, frame = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 92])
        self.repo.put_blob(sid, f"portrait-frame-{n}.jpg", frame.tobytes() if ok else b"")
        st["portrait"] = {"source": source, "token": f"portrait-{n}.jpg", "frame": f"portrait-frame-{n}.jpg",
                          "capture": n, "width": int(token.shape[1]), "height": int(token.shape[0]),
                          "checks": [c["name"] for c in out["report"]["checks"] if c["status"] == "pass"]}
        self._audit("enrollment.portrait", sid, {"passed": True, "source": source})
        self._save(st)
        return {**out, "accepted": True}

    # --- duplicates -------------------------------------------------------------------------------
    def search_duplicates(self, session_id: str) -> dict[str, Any]:
        """Search the applicant ten-print in the station's gallery of persons (1:N), then weigh
        the best five finger by finger."""
        from ... import matcher
        from ...identify.persons import probe_views

        with self._held(session_id) as st:
            self._need(st, Step.DUPLICATES)
            sid = st["session_id"]
            strong = matcher.THRESHOLDS["FMR_1e-4"]
            # no finger at all (every one excepted): nothing to search with
            probe = probe_views({int(p): self._template(sid, f) for p, f in st["fingers"].items()}) \
                if st["fingers"] else {}
            hits = []
            for cand in self.gallery.search(probe, k=5, stages=2) if probe else []:
                if cand.reference_id == sid:
                    continue
                theirs = self.gallery.fingers(cand.reference_id)
                scores = [(p, matcher.match(t, theirs[p])) for p, t in sorted(probe.items()) if p in theirs]
                above = [(p, s) for p, s in scores if s >= strong]
                if len(above) >= 2 or any(s >= 2 * strong for _, s in above):
                    hits.append({"session_id": cand.reference_id, "fingers": [p for p, _ in above],
                                 "scores": [s for _, s in above], "fused_score": cand.score,
                                 "fingers_compared": cand.fingers})
            st["duplicates"] = {"searched_fingers": len(probe), "gallery_size": int(self.gallery.count()),
                                "threshold": strong, "operating_point": "FMR_1e-4", "hits": hits,
                                "cleared": None}
            self._audit("enrollment.duplicates", sid, {"hits": len(hits), "searched": len(probe)})
            return self._save(st).state["duplicates"]

    # --- review -----------------------------------------------------------------------------------
    def confirm(self, session_id: str, operator: str, *, duplicate_cleared: str | None = None,
                build_records: Callable[[EnrollmentSession], tuple[bytes, dict[str, bytes]]] | None = None
                ) -> EnrollmentSession:
        """The operator confirms the session. With duplicate hits, ``duplicate_cleared`` must
        give the reason they are not the same person. ``build_records(session)`` returns the
        finished transaction and its other records (default :func:`build_records`); the repo
        keeps them with the final state in one step and queues the transaction for upload, so a
        crash before leaves the session in review, never confirmed without its records. The
        fingers join the gallery first (a replayed confirmation replaces them)."""
        with self._held(session_id) as st:
            self._need(st, Step.REVIEW)
            dup = st["duplicates"]
            if dup["hits"] and not (duplicate_cleared and duplicate_cleared.strip()):
                raise StepOrderError(f"{len(dup['hits'])} possible duplicate(s): clear them with a reason or "
                                     "cancel the session", missing=Step.REVIEW.value)
            if duplicate_cleared:
                dup["cleared"] = {"by": operator, "reason": duplicate_cleared.strip()[:500]}
            transaction, records = (build_records or _default_records)(EnrollmentSession(st), self)
            if session_id in self.gallery:
                self.gallery.delete(session_id)  # a confirmation replayed after a crash
            if st["fingers"]:  # no finger at all: nothing to find them by
                self.gallery.insert(session_id, {int(p): self._template(session_id, f)
                                                 for p, f in st["fingers"].items()})
            st["step"] = Step.CONFIRMED.value
            st["updated_at"] = self._clock()
            st["decision"] = {"by": operator, "at": st["updated_at"], "result": "confirmed"}
            st["transaction_id"] = session_id  # the upload's idempotency key: one transaction per session
            self.repo.finish(session_id, st, transaction, records)
            self._audit("enrollment.confirm", session_id, {"operator": operator,
                                                           "duplicates_cleared": bool(duplicate_cleared)})
            return EnrollmentSession(st)

    def cancel(self, session_id: str, operator: str, reason: str) -> EnrollmentSession:
        with self._held(session_id) as st:
            if st["step"] in (Step.CONFIRMED.value, Step.CANCELLED.value):
                raise StepOrderError(f"session {session_id} is {st['step']}", missing=None)
            st["step"] = Step.CANCELLED.value
            st["updated_at"] = self._clock()
            st["decision"] = {"by": operator, "at": st["updated_at"], "result": "cancelled"}
            self.repo.cancel(session_id, st, reason[:500])
            self._audit("enrollment.cancel", session_id, {"operator": operator})
            return EnrollmentSession(st)

    def _template(self, session_id: str, finger: dict[str, Any]):
        """The finger's template (its first view), from the session's blobs."""
        from ...templates import decode

        return decode(self.repo.get_blob(session_id, finger["template"])).views[0]

    # --- what records are built from ----------------------------------------------------------------
    def blob(self, session_id: str, name: str) -> bytes:
        return self.repo.get_blob(session_id, name)

    def image(self, session_id: str, name: str) -> np.ndarray:
        return _unpng(self.repo.get_blob(session_id, name))


def _default_records(session: EnrollmentSession, desk: Enrollments) -> tuple[bytes, dict[str, bytes]]:
    from .records import build_records

    return build_records(session.state, desk.repo.get_blob, station=desk.station)


def _finger(position: int) -> FingerPosition:
    try:
        pos = FingerPosition(int(position))
    except (ValueError, TypeError):
        raise InvalidInputError(f"position {position!r}: a finger 1..10") from None
    if pos not in FINGERS:
        raise InvalidInputError(f"position {int(pos)}: a finger 1..10")
    return pos


def _slap_fingers(slap: FingerPosition, exceptions: Iterable[str]) -> list[int]:
    from ...fingerprint.slap import SLAP_ORDER

    gone = {int(p) for p in exceptions}
    return [int(p) for p in SLAP_ORDER[slap] if int(p) not in gone]


def _fingers_captured(st: dict[str, Any]) -> bool:
    """Every finger not declared missing has a single capture, and every slap with a finger to
    show has a current capture."""
    exc = st["exceptions"]
    for p in FINGERS:
        if str(int(p)) not in exc and str(int(p)) not in st["fingers"]:
            return False
    for slap in SLAPS:
        if not _slap_fingers(slap, exc):
            continue
        rec = st["slaps"].get(str(int(slap)))
        if rec is None or rec.get("stale"):
            return False
    return True


def _done(st: dict[str, Any], step: Step) -> bool:
    if step is Step.DEMOGRAPHICS:
        return st["demographics"] is not None
    if step is Step.FINGERS:
        return _fingers_captured(st) and st["sequence"] is not None and st["sequence"]["ok"]
    if step is Step.PORTRAIT:
        return st["portrait"] is not None
    if step is Step.DUPLICATES:
        return st["duplicates"] is not None
    return st["step"] == Step.CONFIRMED.value


def _current_step(st: dict[str, Any]) -> Step:
    for step in _ORDER:
        if not _done(st, step):
            return step
    return Step.REVIEW


def missing_fingers(st: dict[str, Any]) -> dict[str, list[int]]:
    """What the fingers step still needs: singles and slaps to capture."""
    exc = st["exceptions"]
    singles = [int(p) for p in FINGERS if str(int(p)) not in exc and str(int(p)) not in st["fingers"]]
    slaps = [int(s) for s in SLAPS if _slap_fingers(s, exc) and (
        st["slaps"].get(str(int(s))) is None or st["slaps"][str(int(s))].get("stale"))]
    return {"singles": singles, "slaps": slaps}

