"""Personalization orders: one JSON object a line, validated before any card is touched.

An order line (``ORDERS.jsonl``)::

    {"order_id": "HN-2026-000001",
     "issuing_state": "VNM", "document_code": "ID",
     "id_number": "001099012345",            # the 12-digit personal ID (required for VNM)
     "document_number": "099012345",          # default: the last 9 digits of id_number
     "surname": "NGUYEN", "given_names": "VAN AN",
     "nationality": "VNM", "sex": "M",
     "date_of_birth": "1999-01-31", "date_of_expiry": "2039-01-31",
     "mrz": ["IDVNM...", "...", "..."],       # optional: when given it must check and agree
     "can": "012345",                          # optional: PACE CAN (default: last 6 of id_number)
     "portrait": "<base64 JPEG or JPEG 2000>", # or "portrait_file": path relative to the orders file
     "dg13": {"2": "Nguyễn Văn An", ...},      # optional: Vietnamese DG13 fields by number
     "fingers": [{"position": 2, "image": "<base64 PNG/JPEG/JPEG 2000, grayscale>", "ppi": 500},
                 ...]}                          # optional: the enrollment's finger images

:func:`validate` turns a line into an :class:`Order` or raises
:class:`~biostation.errors.OrderRejected` with a short reason (field names and rules, never the
personal data itself), which the line writes to the journal.

Rules and their sources:

* MRZ check digits: Doc 9303-3 §4.9 (via :mod:`biostation.card.mrz`). When the order gives an MRZ,
  every check digit must hold and its fields must agree with the order's.
* The Vietnamese 12-digit ID (số định danh cá nhân), Circular 07/2016/TT-BCA art. 7 (under Decree
  137/2015/ND-CP): 3 digits for the province of birth registration (the province codes of
  Decision 124/2004/QD-TTg, 001 Ha Noi ... 096 Ca Mau), 1 digit for sex and century of birth
  (0/1: male/female born 1900-1999, 2/3: 2000-2099, 4/5: 2100-2199, 6/7: 2200-2299, 8/9: 2300-2399),
  2 digits for the last two digits of the year of birth, 6 digits of serial
  (:mod:`biostation.card.cccd` decodes it). All three parts are checked against the order's date
  of birth and sex. On the CCCD's TD1 MRZ the document number is
  the last 9 digits of the ID (``shared/specs/vn-cccd-chip.md``).
* Portrait: JPEG or JPEG 2000 (the two encodings ISO/IEC 19794-5 allows), decodable, at most
  ``max_portrait_bytes`` (EF.DG2 has to fit the chip with the other files).
* Fingers (for DG3): finger positions 1..10 of ISO/IEC 19794-4, each at most once; images that
  decode to 64..1000 pixels a side, at 250..1000 ppi. They are decoded to grayscale here, so a
  bad image is refused before any card is touched.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import OrderRejected
from .. import mrz as mrzlib

__all__ = ["Order", "validate", "validate_vn_id", "order_digest", "DEFAULT_MAX_PORTRAIT_BYTES",
           "parse_line"]

#: a full-frontal ISO 19794-5 JPEG of 480x640 at usual quality is 15-30 KB; chips hold 72-144 KB
DEFAULT_MAX_PORTRAIT_BYTES = 48 * 1024

REQUIRED = ("order_id", "surname", "nationality", "sex", "date_of_birth", "date_of_expiry")


@dataclass
class Order:
    """A validated order: everything the chip gets. Holds personal data: never log it."""

    order_id: str
    digest: str
    document_code: str
    issuing_state: str
    document_number: str
    id_number: str | None
    surname: str
    given_names: str
    nationality: str
    sex: str
    date_of_birth: dt.date
    date_of_expiry: dt.date
    mrz_lines: list[str]
    can: str | None
    portrait: bytes
    portrait_format: str  # "jpeg" or "jp2"
    portrait_size: tuple[int, int]
    dg13: dict[int, Any] = field(default_factory=dict)
    #: finger position -> (grayscale uint8 array, ppi), from the enrollment record
    fingers: dict[int, tuple[Any, int]] = field(default_factory=dict, repr=False)

    @property
    def mrz_information(self) -> str:
        """The BAC / PACE-MRZ key seed (Doc 9303-11 §9.7.2)."""
        return mrzlib.bac_seed_info(self.document_number, self.date_of_birth.strftime("%y%m%d"),
                                    self.date_of_expiry.strftime("%y%m%d"))

    def __repr__(self) -> str:
        return f"Order({self.order_id!r}, portrait={len(self.portrait)} B)"


def order_digest(raw: dict[str, Any]) -> str:
    """SHA-256 of the order's canonical JSON: the journal keeps this, not the content."""
    canon = json.dumps(raw, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()
    return hashlib.sha256(canon).hexdigest()


def parse_line(line: str, lineno: int) -> tuple[str, dict[str, Any] | None, str | None]:
    """``(order_id, raw, error)`` of one JSONL line. A line that is not a JSON object gets the
    id ``line:<n>`` and an error, so the journal can still record its rejection."""
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as exc:
        return f"line:{lineno}", None, f"not JSON (column {exc.colno})"
    if not isinstance(raw, dict):
        return f"line:{lineno}", None, "not a JSON object"
    oid = raw.get("order_id")
    if not isinstance(oid, str) or not oid.strip() or len(oid) > 128:
        return f"line:{lineno}", None, "missing field: order_id"
    return oid, raw, None


def _date(raw: dict[str, Any], key: str) -> dt.date:
    v = raw.get(key)
    if not isinstance(v, str):
        raise OrderRejected(f"missing field: {key}")
    try:
        return dt.date.fromisoformat(v)
    except ValueError:
        raise OrderRejected(f"{key}: not a date YYYY-MM-DD") from None


def _text(raw: dict[str, Any], key: str, required: bool = True, default: str = "") -> str:
    v = raw.get(key)
    if v is None or (isinstance(v, str) and not v.strip()):
        if required:
            raise OrderRejected(f"missing field: {key}")
        return default
    if not isinstance(v, str):
        raise OrderRejected(f"{key}: must be a string")
    return v.strip()


def validate_vn_id(id_number: str, date_of_birth: dt.date, sex: str) -> None:
    """Check a 12-digit Vietnamese personal ID against the holder's birth date and sex.

    The number is decoded by :func:`biostation.card.cccd.parse_id` (province table and digit
    layout live there); OrderRejected names the part that fails (length, province, sex/century,
    year).
    """
    from ..cccd import parse_id

    try:
        rec = parse_id(id_number)
    except ValueError:
        raise OrderRejected("id_number: must be 12 digits") from None
    if rec.province is None:
        raise OrderRejected(f"id_number: province code {rec.province_code} does not exist")
    if date_of_birth.year // 100 * 100 != rec.century:
        raise OrderRejected("id_number: century digit does not match the date of birth")
    if sex in ("M", "F") and rec.sex != sex:
        raise OrderRejected("id_number: sex digit does not match the sex")
    if rec.birth_year != date_of_birth.year:
        raise OrderRejected("id_number: year digits do not match the date of birth")


def _portrait(raw: dict[str, Any], base_dir: Path | None, max_bytes: int) -> tuple[bytes, str, tuple[int, int]]:
    if raw.get("portrait"):
        v = raw["portrait"]
        if not isinstance(v, str):
            raise OrderRejected("portrait: must be base64 text")
        if len(v) > (max_bytes * 4) // 3 + 8:
            raise OrderRejected(f"portrait: larger than {max_bytes} bytes")
        try:
            data = base64.b64decode(v, validate=True)
        except (binascii.Error, ValueError):
            raise OrderRejected("portrait: not valid base64") from None
    elif raw.get("portrait_file"):
        p = Path(str(raw["portrait_file"]))
        if not p.is_absolute() and base_dir is not None:
            p = base_dir / p
        try:
            size = p.stat().st_size
        except OSError:
            raise OrderRejected("portrait_file: not found") from None
        if size > max_bytes:
            raise OrderRejected(f"portrait: {size} bytes, larger than {max_bytes}")
        data = p.read_bytes()
    else:
        raise OrderRejected("missing field: portrait")
    if len(data) > max_bytes:
        raise OrderRejected(f"portrait: {len(data)} bytes, larger than {max_bytes}")
    if data[:3] == b"\xff\xd8\xff":
        fmt = "jpeg"
    elif data[:12] == b"\x00\x00\x00\x0cjP  \r\n\x87\n" or data[:4] == b"\xff\x4f\xff\x51":
        fmt = "jp2"
    else:
        raise OrderRejected("portrait: not a JPEG or JPEG 2000 image")
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as im:
            im.verify()
            size = im.size
    except Exception:
        raise OrderRejected(f"portrait: the {fmt} image does not decode") from None
    if min(size) < 90:
        raise OrderRejected(f"portrait: {size[0]}x{size[1]} pixels is too small")
    return data, fmt, size


def _fingers(raw: Any) -> dict[int, tuple[Any, int]]:
    import numpy as np

    if not isinstance(raw, list):
        raise OrderRejected("fingers: must be a list of {position, image, ppi}")
    out: dict[int, tuple[Any, int]] = {}
    for i, f in enumerate(raw):
        if not isinstance(f, dict):
            raise OrderRejected(f"fingers[{i}]: must be an object")
        pos, ppi = f.get("position"), f.get("ppi", 500)
        if not isinstance(pos, int) or not 1 <= pos <= 10:
            raise OrderRejected(f"fingers[{i}].position: must be 1..10")
        if pos in out:
            raise OrderRejected(f"fingers[{i}].position: finger {pos} given twice")
        if not isinstance(ppi, int) or not 250 <= ppi <= 1000:
            raise OrderRejected(f"fingers[{i}].ppi: must be 250..1000")
        try:
            data = base64.b64decode(str(f.get("image", "")), validate=True)
            from PIL import Image

            with Image.open(io.BytesIO(data)) as im:
                arr = np.asarray(im.convert("L"))
        except Exception:
            raise OrderRejected(f"fingers[{i}].image: not a decodable image") from None
        if not (64 <= min(arr.shape) and max(arr.shape) <= 1000):
            raise OrderRejected(f"fingers[{i}].image: {arr.shape[1]}x{arr.shape[0]} pixels is out of range")
        out[pos] = (arr, ppi)
    return out


def validate(raw: dict[str, Any], *, base_dir: Path | None = None,
             max_portrait_bytes: int = DEFAULT_MAX_PORTRAIT_BYTES, today: dt.date | None = None,
             finger_positions: tuple[int, ...] = ()) -> Order:
    """Validate one order (a decoded JSON object). OrderRejected(reason) when it is not usable.

    ``finger_positions``: the fingers the chip gets (DG3); an order that carries fingers must
    carry these."""
    for key in REQUIRED:
        if key not in raw or raw[key] in (None, ""):
            raise OrderRejected(f"missing field: {key}")
    oid = _text(raw, "order_id")
    state = _text(raw, "issuing_state", required=False, default="VNM").upper()
    code = _text(raw, "document_code", required=False, default="ID").upper()
    surname = _text(raw, "surname")
    given = _text(raw, "given_names", required=False)
    nationality = _text(raw, "nationality").upper()
    sex = _text(raw, "sex").upper()
    if sex not in ("M", "F", "X", "<"):
        raise OrderRejected("sex: must be M, F or X")
    for key, v, n in (("issuing_state", state, 3), ("nationality", nationality, 3)):
        if not re.fullmatch(rf"[A-Z<]{{1,{n}}}", v):
            raise OrderRejected(f"{key}: must be a 3-letter code")
    dob = _date(raw, "date_of_birth")
    doe = _date(raw, "date_of_expiry")
    if doe <= dob:
        raise OrderRejected("date_of_expiry: before the date of birth")
    if today is not None and doe <= today:
        raise OrderRejected("date_of_expiry: already expired")
    id_number = raw.get("id_number")
    if id_number is not None and not isinstance(id_number, str):
        raise OrderRejected("id_number: must be a string of digits")
    if state == "VNM":
        if not id_number:
            raise OrderRejected("missing field: id_number")
        validate_vn_id(id_number, dob, sex)
    docno = _text(raw, "document_number", required=False,
                  default=id_number[-9:] if id_number else "").upper()
    if not docno:
        raise OrderRejected("missing field: document_number")
    if not re.fullmatch(r"[A-Z0-9]{1,9}", docno):
        raise OrderRejected("document_number: 1 to 9 letters or digits")
    if state == "VNM" and id_number and docno != id_number[-9:]:
        raise OrderRejected("document_number: must be the last 9 digits of id_number")
    can = raw.get("can")
    if can is None and id_number:
        can = id_number[-6:]
    if can is not None and (not isinstance(can, str) or not re.fullmatch(r"\d{6}", can)):
        raise OrderRejected("can: must be 6 digits")

    # the MRZ: built from the fields, or the order's own, checked and compared
    try:
        opt1 = (id_number + "<<" + mrzlib.check_digit(id_number)) if (state == "VNM" and id_number) else ""
        built = mrzlib.build_td1(code, state, docno, opt1, dob.strftime("%y%m%d"), sex, doe.strftime("%y%m%d"),
                                 nationality, "", surname, given)
    except mrzlib.MRZError as exc:
        raise OrderRejected(f"mrz: fields do not fit a TD1 MRZ ({exc.__class__.__name__})") from None
    lines = built
    if raw.get("mrz"):
        given_mrz = raw["mrz"]
        text = "\n".join(given_mrz) if isinstance(given_mrz, list) else str(given_mrz)
        try:
            parsed = mrzlib.parse(text)
        except mrzlib.MRZError:
            raise OrderRejected("mrz: not a TD1 or TD3 MRZ") from None
        bad = sorted(k for k, ok in parsed.checks.items() if not ok)
        if bad:
            raise OrderRejected("mrz: wrong check digit: " + ", ".join(bad))
        for name, mine, theirs in (("document_number", docno, parsed.document_number),
                                   ("date_of_birth", dob.strftime("%y%m%d"), parsed.date_of_birth),
                                   ("date_of_expiry", doe.strftime("%y%m%d"), parsed.date_of_expiry),
                                   ("sex", sex.replace("X", "<"), parsed.sex),
                                   ("issuing_state", state, parsed.issuing_state.rstrip("<"))):
            if mine != theirs:
                raise OrderRejected(f"mrz: {name} differs from the order")
        lines = parsed.lines

    portrait, fmt, size = _portrait(raw, base_dir, max_portrait_bytes)
    dg13: dict[int, Any] = {}
    if raw.get("dg13") is not None:
        if not isinstance(raw["dg13"], dict):
            raise OrderRejected("dg13: must be an object of numbered fields")
        for k, v in raw["dg13"].items():
            if not str(k).isdigit() or not 1 <= int(k) <= 32:
                raise OrderRejected("dg13: field numbers are 1..32")
            dg13[int(k)] = v
    fingers = _fingers(raw["fingers"]) if raw.get("fingers") is not None else {}
    missing = [p for p in finger_positions if fingers and p not in fingers]
    if missing:
        raise OrderRejected("fingers: no image for finger position " + ", ".join(map(str, missing)))
    return Order(oid, order_digest(raw), code, state, docno, id_number, surname, given, nationality, sex, dob, doe,
                 lines, can, portrait, fmt, size, dg13, fingers)
