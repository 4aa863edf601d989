"""The records of a confirmed enrollment: from the session's state and blobs to one ANSI/NIST-ITL
transaction and the ISO/IEC 19794 records (:mod:`biostation.records.builder` codes them).

What goes in:

* Type-2, this station's domain (``VN-ENROLL`` version 1.0; the receiving system defines what
  Type-2 fields mean, so here is ours): 2.017 the 12-digit personal ID, 2.018 the name as
  ``SURNAME, GIVEN NAMES`` exactly as typed (UTF-8), 2.020 place of birth, 2.022 date of birth
  ``YYYYMMDD``, 2.024 sex ``M``/``F``, 2.041 address.
* Type-14: the three slaps with their segment boxes and each finger's NFIQ 2, then every flat
  or rolled single with its NFIQ 2.
* Type-10: the ISO token portrait (JPEG), as checked.
* Type-9 and ISO/IEC 19794-2: the templates of the singles, labelled with finger position and
  NFIQ 2 (extracted from the uncompressed captures: WSQ costs our matcher accuracy, see
  ``benchmarks/bench_wsq.py``).

Fingers declared missing carry no image; their ANSI/NIST-ITL codes stay in the session state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from ...records import FingerPosition, ImpressionKind
from ...records.builder import FingerImage, Portrait, Segment, TransactionHeader
from ...records.builder import build_records as _build

__all__ = ["build_records", "DOMAIN", "TYPE2_FIELDS"]

DOMAIN = ("VN-ENROLL", "1.0")
#: demographics key -> Type-2 field number of this station's domain
TYPE2_FIELDS = {"id_number": 17, "name": 18, "place_of_birth": 20, "date_of_birth": 22, "sex": 24, "address": 41}


def _image(get: Callable[[str], bytes], name: str) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(get(name), np.uint8), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise ValueError(f"stored image {name} cannot be decoded")
    return img


def build_records(state: dict[str, Any], get_blob: Callable[[str, str], bytes], *, station: str = "STATION",
                  destination: str = "VNCENTRAL") -> tuple[bytes, dict[str, bytes]]:
    """The finished transaction (``.an2`` bytes) and the ISO records of a session in review:
    ``{"iso19794-4": ..., "iso19794-5": ..., "iso19794-2/NN": ...}`` (NN the finger position)."""
    from ...templates import decode

    sid = state["session_id"]

    def get(name: str) -> bytes:
        return get_blob(sid, name)

    d = state["demographics"]
    demo: dict[int, str] = {TYPE2_FIELDS["id_number"]: d["id_number"],
                            TYPE2_FIELDS["name"]: f"{d['surname']}, {d['given_names']}",
                            TYPE2_FIELDS["date_of_birth"]: d["date_of_birth"].replace("-", ""),
                            TYPE2_FIELDS["sex"]: d["sex"]}
    for key in ("place_of_birth", "address"):
        if d.get(key):
            demo[TYPE2_FIELDS[key]] = d[key]
    fingers: list[FingerImage] = []
    for slap_pos, slap in sorted(state["slaps"].items(), key=lambda kv: int(kv[0])):
        segs = []
        for p, f in sorted(slap["fingers"].items(), key=lambda kv: int(kv[0])):
            x, y, w, h = f["box"]
            segs.append(Segment(FingerPosition(int(p)), max(0, x), min(slap["width"] - 1, x + w - 1), max(0, y),
                                min(slap["height"] - 1, y + h - 1), nfiq2=f["nfiq2"]))
        fingers.append(FingerImage(FingerPosition(int(slap_pos)), _image(get, slap["image"]), dpi=slap["dpi"],
                                   impression=ImpressionKind.SLAP, segments=segs))
    templates = []
    for p, f in sorted(state["fingers"].items(), key=lambda kv: int(kv[0])):
        kind = ImpressionKind(f["kind"])
        fingers.append(FingerImage(FingerPosition(int(p)), _image(get, f["image"]), dpi=f["dpi"], nfiq2=f["nfiq2"],
                                   impression=kind))
        t = decode(get(f["template"])).views[0]
        templates.append(t.labelled(finger_position=int(p), quality=f["nfiq2"],
                                    impression_type=1 if kind is ImpressionKind.ROLLED else 0))
    portrait = Portrait(get(state["portrait"]["token"])) if state.get("portrait") else None
    header = TransactionHeader(tot="ENR", dai=destination, ori=station, tcn=sid, domain=DOMAIN)
    out = _build(demo, fingers, portrait, templates, header=header)
    records: dict[str, bytes] = {}
    if out.finger_images is not None:
        records["iso19794-4"] = out.finger_images
    if out.face_image is not None:
        records["iso19794-5"] = out.face_image
    for t, data in zip(templates, out.templates or ()):
        records[f"iso19794-2/{t.finger_position:02d}"] = data
    return out.nist, records
