"""The records of a finished enrollment: one ANSI/NIST-ITL transaction and the ISO records.

>>> from biostation.records import (FingerImage, FingerPosition, ImpressionKind, Portrait,
...                                 Segment, TransactionHeader, build_records)
>>> out = build_records(
...     header=TransactionHeader(tot="ENR", dai="NIDA00001", ori="STATION042", tcn="20261203-000117"),
...     demographics={18: "NGUYEN, VAN AN", 22: "19900417", 24: "M"},
...     fingers=[FingerImage(FingerPosition.PLAIN_RIGHT_FOUR, slap, dpi=500, impression=ImpressionKind.SLAP,
...                          segments=[Segment(FingerPosition.RIGHT_INDEX, 40, 380, 120, 900, nfiq2=71), ...]),
...              FingerImage(FingerPosition.RIGHT_THUMB, thumb, nfiq2=64)],
...     face=Portrait(jpeg_bytes),
...     templates=[template_of_right_thumb.labelled(finger_position=1, quality=64)])
>>> out.nist          # bytes of the .an2 transaction: Type-1, 2, 14..., 10, 9...
>>> out.finger_images # ISO/IEC 19794-4:2005 record (WSQ), out.face_image: 19794-5:2005
>>> out.templates     # ISO/IEC 19794-2:2005 records, one per template

What goes where (ANSI/NIST-ITL 1-2011 Update:2015, traditional encoding, version 0502):

* Type-1: the :class:`TransactionHeader`; 1.011/1.012 ``00.00`` (no Type-4 records); 1.015
  ``003<US>UTF-8`` when a text value is not ASCII.
* Type-2 (IDC 0): ``demographics``, field number -> value. The receiving domain (1.013) defines
  what Type-2 fields mean; biostation writes the numbers it is given and invents none.
* Type-14, one per :class:`FingerImage`: WSQ at 0.75 bpp (:mod:`.wsq`), 14.008 SLC 1 with
  14.009/14.010 the image's ppi, 14.013 FGP, 14.003 IMP (0 plain, 1 rolled), 14.021 SEG (slap
  segment boxes), 14.024 FQM with each NFIQ 2 score known (the image's own, or each segment's).
* Type-10 (face): the portrait as given (JPEG or JPEG 2000), 10.011 CGA, 10.012 CSP, 10.013 SAP.
* Type-9, one per template: the INCITS 378 ("M1") minutiae block 9.126-9.137, minutiae angles
  in 2-degree units, with the IDC of the Type-14 image of the same finger when there is one (a
  slap's, for a finger found in its segments). Coordinates are those of the image the template
  was extracted from, whose size 9.128/9.129 give.

Input errors (a finger position not in the table, a quality out of 0..100, a segment outside
its image, two images of one finger, a non-uint8 image) raise
:class:`~biostation.errors.RecordError` before anything is encoded; nothing is written to disk
here (write with :func:`.ansi_nist.write_file`, which is atomic).

Cost: dominated by WSQ, about 20 ms per single-finger image and 0.1-0.2 s per slap on one core.
Thread-safe.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import RecordError, RecordFormatError, TemplateError
from ..templates.model import MINUTIA_DTYPE, Template, TemplateRecord
from . import iso19794_4, iso19794_5, wsq
from .ansi_nist import VERSION, Record, Transaction
from .vocabulary import ISO_IMPRESSION_CODE, FingerPosition, ImpressionKind

__all__ = ["FingerImage", "Segment", "Portrait", "TransactionHeader", "EnrollmentRecords",
           "QualityAlgorithm", "NFIQ2_ALGORITHM", "build_transaction", "build_records", "minutiae_record",
           "read_minutiae", "INCITS378_CBEFF"]


@dataclass(frozen=True)
class QualityAlgorithm:
    """CBEFF identifiers of a quality algorithm: ``owner`` (vendor) and ``product`` id."""

    owner: int
    product: int


#: NFIQ 2 as NIST registers it: owner 0x0101 (ISO/IEC JTC 1 SC 37), product 0x21 (NFIQ 2.0,
#: the model 2.0 that biostation's NFIQ 2 evaluates; NIST's nfiq2_constants)
NFIQ2_ALGORITHM = QualityAlgorithm(0x0101, 0x21)
#: 9.126 CBI of an INCITS 378 minutiae block: format owner 27 (INCITS M1), format type 513 (0x0201)
INCITS378_CBEFF = (27, 513)


@dataclass
class Segment:
    """One finger inside a slap image: its position and bounding box in the slap's pixels
    (``left``..``right`` columns, ``top``..``bottom`` rows, inclusive), and its NFIQ 2 score
    (0..100) when known."""

    position: FingerPosition | int
    left: int
    right: int
    top: int
    bottom: int
    nfiq2: int | None = None


@dataclass
class FingerImage:
    """A captured finger or slap image.

    ``image``: uint8 (H, W), ridges dark, rows top-down. ``dpi``: its resolution in pixels per
    inch (WSQ is specified for 500 and 1000). ``position``: a :class:`FingerPosition` (1-10
    fingers; 13, 14, 15 for right four, left four, thumbs). ``nfiq2``: the NFIQ 2 score 0..100
    of a single-finger image, None when not computed (slaps carry theirs per segment).
    ``impression``: flat, slap or rolled. ``segments``: for slaps, where each finger lies.
    """

    position: FingerPosition | int
    image: np.ndarray
    dpi: float = 500.0
    nfiq2: int | None = None
    impression: ImpressionKind = ImpressionKind.FLAT
    segments: list[Segment] = field(default_factory=list)
    #: capture date; default: the transaction's date
    captured: _dt.date | None = None


@dataclass
class Portrait:
    """The face image: ``data`` JPEG or JPEG 2000 bytes as the portrait pipeline coded them (an
    RGB uint8 array is coded as JPEG). ``sap``: ANSI/NIST-ITL subject acquisition profile for
    10.013 (1 = unknown profile; the receiving domain says which it expects)."""

    data: bytes | np.ndarray
    sap: int = 1
    captured: _dt.date | None = None
    gender: int = 0


@dataclass
class TransactionHeader:
    """Type-1 content. ``tot``: type of transaction (domain-defined, e.g. "ENR"); ``dai`` /
    ``ori``: destination / originating agency identifiers; ``tcn``: transaction control number
    (unique per transaction); ``domain``: 1.013 domain name and version (``("NORAM", "")`` is
    the standard's default); ``when``: the transaction time (default now, UTC); ``priority``:
    1.006, 1 (highest) .. 9, or None."""

    tot: str
    dai: str
    ori: str
    tcn: str
    domain: tuple[str, str] = ("NORAM", "")
    when: _dt.datetime | None = None
    priority: int | None = None
    tcr: str | None = None


@dataclass(frozen=True)
class EnrollmentRecords:
    """The records of one enrollment, each as bytes ready to store or send.

    ``nist``: the ANSI/NIST-ITL transaction; ``finger_images``: ISO/IEC 19794-4:2005 record of
    the finger images (WSQ), None without fingers; ``face_image``: ISO/IEC 19794-5:2005, None
    without a portrait; ``templates``: ISO/IEC 19794-2:2005 record of the templates (finger
    position and NFIQ 2 quality in each view), None without templates.
    """

    nist: bytes
    finger_images: bytes | None
    face_image: bytes | None
    templates: bytes | None


# --- validation ----------------------------------------------------------------------------------

def _position(value: Any, what: str) -> FingerPosition:
    try:
        return FingerPosition(int(value))
    except (ValueError, TypeError):
        raise RecordError(f"{what}: {value!r} is not a finger position code") from None


def _quality(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= int(value) <= 100:
        raise RecordError(f"{what}: NFIQ 2 score {value!r} is not an integer 0..100")
    return int(value)


_SLAPS = {FingerPosition.PLAIN_RIGHT_FOUR, FingerPosition.PLAIN_LEFT_FOUR, FingerPosition.PLAIN_THUMBS}


def _check_finger(f: FingerImage, k: int) -> FingerPosition:
    what = f"finger image {k}"
    pos = _position(f.position, what)
    if pos == FingerPosition.UNKNOWN:
        raise RecordError(f"{what}: finger position unknown (0); an enrollment names every finger")
    img = f.image
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 2:
        raise RecordError(f"{what}: image must be a uint8 (H, W) array")
    if not isinstance(f.impression, ImpressionKind):
        try:
            ImpressionKind(f.impression)
        except ValueError:
            raise RecordError(f"{what}: impression {f.impression!r} is not one of "
                              f"{[k.value for k in ImpressionKind]}") from None
    if not 250 <= float(f.dpi) <= 2000:
        raise RecordError(f"{what}: resolution {f.dpi} dpi out of range 250..2000")
    _quality(f.nfiq2, what)
    h, w = img.shape
    if f.segments and pos not in _SLAPS:
        raise RecordError(f"{what}: segments belong to slap images (positions 13, 14, 15)")
    seen = set()
    for s in f.segments:
        sp = _position(s.position, f"{what} segment")
        if sp in seen or not 1 <= sp <= 10:
            raise RecordError(f"{what}: segment position {int(sp)} repeated or not a single finger")
        seen.add(sp)
        if not (0 <= s.left <= s.right < w and 0 <= s.top <= s.bottom < h):
            raise RecordError(f"{what}: segment of finger {int(sp)} lies outside the {w} x {h} image")
        _quality(s.nfiq2, f"{what} segment {int(sp)}")
    return pos


def _ascii_or_utf8(values: list[bytes]) -> bool:
    return any(any(b > 0x7F for b in v) for v in values)


# --- Type-9 (INCITS 378 block) -------------------------------------------------------------------

def minutiae_record(t: Template, idc: int, impression: int = 0,
                    algorithm: QualityAlgorithm = NFIQ2_ALGORITHM) -> Record:
    """A Type-9 record of one template, in the INCITS 378 ("M1") fields 9.126-9.137.

    Coordinates in pixels of the template's image, resolution in pixels per centimetre (9.130
    SLC 2), angles in 2-degree units counter-clockwise from +x (INCITS 378), minutia types 0
    other / 1 ending / 2 bifurcation. 9.135 carries the template's finger quality with
    ``algorithm`` when the quality is known (non-zero), else it is left out.
    """
    try:
        t.validate()
    except TemplateError as exc:
        raise RecordError(f"template of finger {t.finger_position}: {exc}") from exc
    r = Record(9)
    ppcm = int(round(t.dpi / 2.54))
    m = t.minutiae
    r.set(2, f"{idc:02d}")
    r.set(3, str(impression))
    r.set(4, "U")
    r.set(126, [[str(INCITS378_CBEFF[0]), str(INCITS378_CBEFF[1]), "0"]])
    r.set(127, [["NONE", "0"]])
    r.set(128, t.width)
    r.set(129, t.height)
    r.set(130, 2)
    r.set(131, ppcm)
    r.set(132, ppcm)
    r.set(133, t.view_number)
    r.set(134, f"{t.finger_position:02d}")
    if t.quality:
        r.set(135, [[str(t.quality), f"{algorithm.owner:04X}", str(algorithm.product)]])
    r.set(136, len(m))
    if len(m):
        angles = np.rint(m["angle"].astype(np.float64) * (180.0 / (2 * np.pi))).astype(np.int64) % 180
        r.set(137, [[f"{k + 1:03d}", str(int(x)), str(int(y)), str(int(a)), str(int(kind)), str(int(q))]
                    for k, (x, y, a, kind, q) in enumerate(zip(m["x"], m["y"], angles, m["kind"], m["quality"]))])
    return r


def read_minutiae(record: Record) -> Template:
    """The template held by a Type-9 record's INCITS 378 fields (9.126-9.137).

    RecordFormatError when the block is absent or malformed (e.g. a Type-9 with only the
    legacy NIST fields 9.005-9.012 or the EFS fields).
    """
    where = f"Type-9 record (IDC {record.idc})"
    if record.type != 9 or 128 not in record.fields:
        raise RecordFormatError("no INCITS 378 minutiae block (9.126-9.137)", where)
    try:
        width, height = record.integer(128), record.integer(129)
        slc, thps = record.integer(130), record.integer(131)
        dpi = thps * 2.54 if slc == 2 else float(thps) if slc == 1 else 500.0
        quality = 0
        fqd = record.subfields(135)
        if fqd and fqd[0][0].isdigit() and int(fqd[0][0]) <= 100:
            quality = int(fqd[0][0])
        rows = record.subfields(137)
        m = np.zeros(len(rows), MINUTIA_DTYPE)
        for k, row in enumerate(rows):
            _, x, y, a, kind, q = row[:6]
            m[k] = (int(x), int(y), (int(a) % 180) * (2 * np.pi / 180.0), int(kind), int(q))
        t = Template(width=width, height=height, dpi=dpi, minutiae=m,
                     finger_position=int(record.subfields(134)[0][0]) if 134 in record.fields else 0,
                     impression_type=record.integer(3, 0) or 0, quality=quality,
                     view_number=record.integer(133, 0) or 0)
        return t.validate()
    except (ValueError, TypeError, IndexError, TemplateError) as exc:
        raise RecordFormatError(f"INCITS 378 minutiae block does not read: {exc}", where) from None


# --- the transaction -----------------------------------------------------------------------------

def _type1(header: TransactionHeader, when: _dt.datetime, utf8: bool) -> Record:
    r = Record(1, encoding="ascii")
    r.set(2, VERSION)
    r.set(3, "1")  # rewritten by refresh_cnt
    r.set(4, header.tot)
    r.set(5, when.strftime("%Y%m%d"))
    if header.priority is not None:
        if not 1 <= int(header.priority) <= 9:
            raise RecordError(f"priority {header.priority} out of range 1..9")
        r.set(6, int(header.priority))
    r.set(7, header.dai)
    r.set(8, header.ori)
    r.set(9, header.tcn)
    if header.tcr:
        r.set(10, header.tcr)
    r.set(11, "00.00")
    r.set(12, "00.00")
    r.set(13, [[header.domain[0], header.domain[1]]])
    r.set(14, when.strftime("%Y%m%d%H%M%SZ"))
    if utf8:
        r.set(15, [["003", "UTF-8"]])
    for n in (4, 7, 8, 9):
        if any(b > 0x7F for b in r.fields[n]):
            raise RecordError(f"field 1.{n:03d} must be ASCII")
    return r


def _type14(f: FingerImage, pos: FingerPosition, idc: int, src: str, date: _dt.date,
            algorithm: QualityAlgorithm) -> Record:
    r = Record(14)
    h, w = f.image.shape
    ppi = int(round(float(f.dpi)))
    r.set(2, f"{idc:02d}")
    r.set(3, ISO_IMPRESSION_CODE[ImpressionKind(f.impression)])
    r.set(4, src)
    r.set(5, (f.captured or date).strftime("%Y%m%d"))
    r.set(6, w)
    r.set(7, h)
    r.set(8, 1)
    r.set(9, ppi)
    r.set(10, ppi)
    r.set(11, "WSQ20")
    r.set(12, 8)
    r.set(13, int(pos))
    if f.segments:
        r.set(21, [[str(int(s.position)), str(s.left), str(s.right), str(s.top), str(s.bottom)]
                   for s in f.segments])
    scores = [(int(s.position), s.nfiq2) for s in f.segments if s.nfiq2 is not None]
    if f.nfiq2 is not None and pos not in _SLAPS:
        scores.insert(0, (int(pos), f.nfiq2))
    if scores:
        r.set(24, [[str(p), str(q), f"{algorithm.owner:04X}", str(algorithm.product)] for p, q in scores])
    r.data = wsq.encode(f.image, ppi=ppi)
    return r


def _type10(p: Portrait, face: iso19794_5.FaceImage, idc: int, src: str, date: _dt.date) -> Record:
    r = Record(10)
    r.set(2, f"{idc:02d}")
    r.set(3, "FACE")
    r.set(4, src)
    r.set(5, (p.captured or date).strftime("%Y%m%d"))
    r.set(6, face.width)
    r.set(7, face.height)
    r.set(8, 0)  # SLC 0: no scale, 10.009/10.010 give the pixel aspect ratio
    r.set(9, 1)
    r.set(10, 1)
    r.set(11, "JPEGB" if face.image_type == iso19794_5.IMAGE_JPEG else "JP2")
    r.set(12, "GRAY" if face.colour_space == 3 else "SRGB")
    r.set(13, int(p.sap))
    r.set(20, "F")  # full-face frontal pose
    r.data = face.image
    return r


def build_transaction(demographics: Mapping[int, Any], fingers: Sequence[FingerImage],
                      face: Portrait | None = None, templates: Sequence[Template] = (), *,
                      header: TransactionHeader,
                      quality_algorithm: QualityAlgorithm = NFIQ2_ALGORITHM) -> bytes:
    """The ANSI/NIST-ITL 1-2011 (Update:2015) transaction of one enrollment, as bytes.

    ``demographics``: Type-2 field number (3..998) -> value (str, int, or subfields as lists);
    ``fingers``: the images, at most one per position; ``face``: the portrait or None;
    ``templates``: minutiae templates, each labelled with its finger position (see
    :meth:`Template.labelled`) and quality, at most one per position. See the module docstring
    for the records and fields written. Raises RecordError on bad input, before any encoding.
    """
    return _build(demographics, fingers, face, templates, header, quality_algorithm)[0]


def build_records(demographics: Mapping[int, Any], fingers: Sequence[FingerImage],
                  face: Portrait | None = None, templates: Sequence[Template] = (), *,
                  header: TransactionHeader,
                  quality_algorithm: QualityAlgorithm = NFIQ2_ALGORITHM) -> EnrollmentRecords:
    """Everything :func:`build_transaction` makes, plus the ISO/IEC 19794-4, -5 and -2 records
    of the same images and templates (see :class:`EnrollmentRecords`)."""
    nist, face_img = _build(demographics, fingers, face, templates, header, quality_algorithm)
    fir = None
    if fingers:
        dpis = {int(round(float(f.dpi))) for f in fingers}
        if len(dpis) != 1:
            raise RecordError("an ISO 19794-4:2005 record holds images of one resolution; got " +
                              ", ".join(str(d) for d in sorted(dpis)))
        fir = iso19794_4.from_images([(f.position, f.image, f.nfiq2, ImpressionKind(f.impression)) for f in fingers],
                                     ppi=dpis.pop())
    fac = iso19794_5.encode([face_img]) if face_img is not None else None
    fmr: tuple[bytes, ...] = ()
    if templates:
        from ..templates.iso19794_2 import Iso19794_2Codec

        codec = Iso19794_2Codec()
        fmr = tuple(codec.encode(TemplateRecord(views=[t])) for t in templates)
    return EnrollmentRecords(nist, fir, fac, fmr)


def _build(demographics, fingers, face, templates, header, algorithm):
    when = header.when or _dt.datetime.now(_dt.UTC)
    if when.tzinfo is not None:
        when = when.astimezone(_dt.UTC)
    date = when.date()
    # validate everything first
    positions = []
    for k, f in enumerate(fingers):
        positions.append(_check_finger(f, k))
    if len(set(positions)) != len(positions):
        raise RecordError("two finger images of the same position")
    tpl_positions = []
    for t in templates:
        if not isinstance(t, Template):
            raise RecordError(f"templates must be Template objects, got {type(t).__name__}")
        p = _position(t.finger_position, "template")
        if p == FingerPosition.UNKNOWN or not 1 <= p <= 10:
            raise RecordError("every template needs its finger position (1..10); use Template.labelled()")
        tpl_positions.append(p)
    if len(set(tpl_positions)) != len(tpl_positions):
        raise RecordError("two templates of the same finger")
    type2 = Record(2)
    type2.set(2, "00")
    if not isinstance(demographics, Mapping):
        raise RecordError("demographics must map Type-2 field numbers to values")
    for number in sorted(demographics):
        if isinstance(number, bool) or not isinstance(number, int) or not 3 <= number <= 998:
            raise RecordError(f"Type-2 field {number!r}: demographics are keyed by field number 3..998")
        type2.set(number, demographics[number])
    face_img = None
    if face is not None:
        face_img = iso19794_5.face_from_image(face.data, gender=int(face.gender))
    utf8 = _ascii_or_utf8(list(type2.fields.values()))
    t1 = _type1(header, when, utf8)
    encoding = "utf-8" if utf8 else "latin-1"
    type2.encoding = encoding
    src = header.ori
    records = [t1, type2]
    idc = 1
    idc_of: dict[int, int] = {}
    for f, pos in zip(fingers, positions):
        records.append(_type14(f, pos, idc, src, date, algorithm))
        idc_of[int(pos)] = idc
        for s in f.segments:
            idc_of.setdefault(int(s.position), idc)
        idc += 1
    if face_img is not None:
        records.append(_type10(face, face_img, idc, src, date))
        idc += 1
    for t in templates:
        own = idc_of.get(int(t.finger_position))
        if own is None:
            own = idc
            idc += 1
        records.append(minutiae_record(t, own, t.impression_type, algorithm))
    if idc > 99:
        raise RecordError("more than 99 image records in one transaction")
    for r in records[1:]:
        r.encoding = encoding
    tx = Transaction(records)
    tx.refresh_cnt()
    return tx.encode(), face_img
