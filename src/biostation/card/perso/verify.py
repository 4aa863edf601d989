"""Read-back: a personalized chip is read as an inspection system reads it before its order is done.

:func:`read_back` powers the card afresh and goes the normal reading path: SELECT the eMRTD
applet, read EF.CardAccess, open secure messaging with PACE (CAN) or, when the chip offers no
PACE or the order has no CAN, BAC (MRZ), read EF.COM, every data group it lists and EF.SOD under
secure messaging, run passive authentication against the CSCA trust store, and, when DG15 is
present, active authentication (INTERNAL AUTHENTICATE with a fresh challenge, ECDSA verified
with the DG15 key, Doc 9303-11 §6.1). Then every file read must be byte-equal to the file
written.

The result is a JSON-able summary without personal data (statuses, file names, sizes, times):
``ok`` is True only when access, PA (``verified``), AA (when present) and the byte comparison all
pass. I/O failures (the card left, a status word) raise the card's typed errors: the caller
rejects the card.
"""

from __future__ import annotations

import time
from typing import Any

from ..dg3 import FingerImage, decode_dg3
from ..reader import read_document
from .image import ChipImage

__all__ = ["read_back"]


def image_fingers(image: ChipImage) -> list[FingerImage]:
    return decode_dg3(image.files["DG3"]).fingers


def read_back(transport: Any, image: ChipImage, trust: Any, *, prefer_pace: bool = True,
              terminal: Any = None) -> dict[str, Any]:
    """Read the chip on ``transport`` (freshly powered) with
    :func:`biostation.card.reader.read_document` and compare it with ``image``.

    Opens with the CAN (PACE) when the image has one and ``prefer_pace``; else with the MRZ
    (PACE-MRZ, or BAC on a chip without PACE). Transport faults and a refused key raise.
    ``terminal``: inspection-system credentials (:class:`~biostation.card.ta.Terminal`) that
    read DG3 through terminal authentication; a chip with DG3 cannot pass without them.
    """
    t0 = time.perf_counter()
    mi = image.mrz_information  # docno(9) cd birth(6) cd expiry(6) cd
    mrz_key = f"{mi[0:9].rstrip('<')}/{mi[10:16]}/{mi[17:23]}"
    use_can = prefer_pace and bool(image.can)
    doc = read_document(transport, can=image.can if use_can else None, mrz=None if use_can else mrz_key,
                        trust=trust, terminal=terminal if "DG3" in image.files else None)
    problems: list[str] = []
    pa = doc.passive
    if pa is None or pa.status != "verified":
        problems += pa.problems if pa is not None else ["no passive authentication"]
    if "DG15" in doc.files:
        aa = "valid" if doc.active is not None and doc.active.ok else "failed"
        if aa != "valid":
            problems.append("active authentication failed" + (f": {doc.active.detail}" if doc.active else ""))
    else:
        aa = "absent"
    if "DG3" in image.files:
        if doc.terminal_auth != "passed":
            problems.append(f"terminal authentication: {doc.terminal_auth}")
        elif [int(f.position) for f in doc.fingerprints] != [int(f.position) for f in image_fingers(image)]:
            problems.append("DG3 fingers differ from what was written")
    if doc.skipped:
        problems.append("files not read: " + ", ".join(sorted(doc.skipped)))
    mismatched = sorted(set(image.files) ^ set(doc.files)) + sorted(
        k for k in doc.files if k in image.files and doc.files[k] != image.files[k])
    if mismatched:
        problems.append("files differ from what was written: " + ", ".join(mismatched))
    if doc.cccd is not None and not doc.cccd.get("ok", False):
        problems.append("Vietnamese ID cross-check: " + "; ".join(doc.cccd.get("problems", [])))
    return {
        "ok": not problems,
        "access": doc.access.split(" (")[0],
        "pa": pa.status if pa is not None else "absent",
        "data_groups": {f"DG{k}": v for k, v in sorted(pa.data_groups.items())} if pa is not None else {},
        "aa": aa,
        "ta": doc.terminal_auth,
        "files": {k: len(v) for k, v in doc.files.items()},
        "apdus": doc.apdu_count,
        "seconds": round(time.perf_counter() - t0, 4),
        "problems": problems,
    }
