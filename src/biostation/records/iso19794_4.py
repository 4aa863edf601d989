"""ISO/IEC 19794-4 finger image records ("FIR"), two editions:

* **2005** (version ``"010"``), as ICAO 9303 DG3 and the enrollment records carry them (the
  default of :func:`encode` and :func:`from_images`);
* **2011** (version ``"020"``), the layout of ISO/IEC 19794-1:2011 (general header, then one
  representation per finger image with its own header), which MOSIP's SBI asks for at
  registration (ISO/IEC 19794-4:2011 Annex B1; MOSIP's biometric specification adds 500 ppi
  or more, 8 bits, JPEG 2000 lossless).

:func:`decode` reads both and says which in :attr:`FingerImageRecord.edition`; :func:`encode`
writes ``edition`` (the record's own by default), so ``encode(decode(b)) == b`` for either.

2005 layout, big-endian (ISO/IEC 19794-4:2005 clause 8):

=========================  =====  ===========================================================
general record header      32     ``"FIR\\0"``, ``"010\\0"``, record length (6), capture device
                                  id (2), image acquisition level (2), number of fingers (1),
                                  scale units (1: 1 ppi, 2 ppcm), scan resolution h/v (2 + 2),
                                  image resolution h/v (2 + 2), pixel depth (1, bits),
                                  compression (1), reserved (2)
per finger view:
  finger image header      14     block length (4, header and image), finger position (1),
                                  count of views (1), view number (1), quality (1, 0..100),
                                  impression type (1), width (2), height (2), reserved (1)
  image data               ...    coded as the general header's compression says
=========================  =====  ===========================================================

Compression codes (table 3): 0 raw, 1 raw bit-packed, 2 WSQ, 3 JPEG, 4 JPEG 2000, 5 PNG.

2011 layout, big-endian (ISO/IEC 19794-4:2011 tables 2 and 4; ISO/IEC 19794-1:2011):

=========================  =====  ===========================================================
general header             16     ``"FIR\\0"``, ``"020\\0"``, record length (4), number of
                                  representations (2), certification flag (1), number of
                                  distinct finger positions (1)
per representation:
  representation header    46+    representation length (4), capture date-time (9, UTC),
                                  capture device technology id (1), vendor id (2), type id
                                  (2), quality record (1 + 5 per block), certification record
                                  (1 + 3 per block, only when the flag is set), finger position
                                  (1), representation number (1), scale units (1), capture
                                  sampling rate h/v (2 + 2), image sampling rate h/v (2 + 2),
                                  bit depth (1), compression (1), impression type (1), width
                                  (2), height (2)
  image data               4+     length (4), then the coded image
  extended data            ...    optional blocks: type (2), length (2, with these 4), data
=========================  =====  ===========================================================

2011 compression codes (table 9): 0 raw, 1 raw bit-packed, 2 WSQ, 3 JPEG, 4 JPEG 2000 lossy,
5 JPEG 2000 lossless, 6 PNG. Quality blocks carry the algorithm that gave the score (NFIQ 2:
:data:`~biostation.records.iso19794_1.NFIQ2_QUALITY`). In a 2011 record the resolution, depth,
compression and capture device belong to each representation; this module keeps them per record,
so it writes the same values in every representation and refuses to read a record whose
representations differ in them.

Resolution, depth and compression are properties of the whole record, so every view of one
record shares them. Finger positions are those of :class:`~biostation.records.FingerPosition`
(13, 14 and 15 for the slaps). Quality 0 means "not reported"; biostation writes the NFIQ 2
score (0..100) when it is known. In a 2005 record 254 and 255 (written by some producers for
"not computed" and "failed") are read and written back unchanged.

Malformed bytes raise :class:`~biostation.errors.RecordFormatError` (with the byte offset);
values that do not fit their fields raise :class:`~biostation.errors.RecordError`.
Stateless and thread-safe.

Sources for the 2011 layout (read, no code copied): MOSIP's biometrics-util converters
(mosip/bio-utils, ``io.mosip.biometrics.util.finger``: ``GeneralHeader``,
``RepresentationHeader``, ``ImageData``, ``FingerImageCompressionType``,
``FingerISOStandardsValidator``), FingerprintIO's ``iso19794p1v2011`` package; checked against
the header of a real 2011 record from a SYNCBYTE SBI published in mosip/mosip-functional-tests
(``authentication-partnerdemo-service/README.md``), see ``tests/unit/test_records_iso2011.py``.
"""

from __future__ import annotations

import datetime as dt
import io
import struct
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from ..errors import RecordError, RecordFormatError, RecordImageError
from . import iso19794_1, wsq
from .iso19794_1 import CertificationBlock, QualityBlock
from .vocabulary import ISO_IMPRESSION_CODE, FingerPosition, ImpressionKind

__all__ = ["EDITION_2005", "EDITION_2011", "Compression", "FingerView", "FingerImageRecord", "encode", "decode",
           "from_images", "acquisition_level", "edition_of"]

EDITION_2005, EDITION_2011 = 2005, 2011
MAGIC, VERSION = b"FIR\x00", b"010\x00"
VERSION_2011 = b"020\x00"
HEADER_LEN, VIEW_HEADER_LEN = 32, 14
HEADER_LEN_2011 = 16
_VIEW = struct.Struct(">IBBBBBHHB")
_HEAD_2011 = struct.Struct(">4s4sIHBB")
_REP_IMAGE_2011 = struct.Struct(">BBBHHHHBBBHHI")  # finger position .. image data length


class Compression(IntEnum):
    """Image compression of a record. The values are the 2005 codes (table 3), except
    ``JPEG2000_LOSSLESS``, which only the 2011 edition tells apart (a 2005 record writes it as
    JPEG 2000, 4); 2011 codes are in :data:`CODES_2011`."""

    RAW = 0
    RAW_PACKED = 1
    WSQ = 2
    JPEG = 3
    JPEG2000 = 4
    PNG = 5
    JPEG2000_LOSSLESS = 6


#: compression -> ISO/IEC 19794-4:2011 table 9 code
CODES_2011 = {Compression.RAW: 0, Compression.RAW_PACKED: 1, Compression.WSQ: 2, Compression.JPEG: 3,
              Compression.JPEG2000: 4, Compression.JPEG2000_LOSSLESS: 5, Compression.PNG: 6}
_BY_CODE_2011 = {v: k for k, v in CODES_2011.items()}


@dataclass
class FingerView:
    """One finger (or slap) image of a record: ``data`` is the coded image, ``width``/``height``
    its size in pixels, ``position`` an ISO finger position code, ``quality`` 0..100 (0 = not
    reported), ``impression`` the ISO impression code (0 live-scan plain, 1 live-scan rolled).

    2005 only: ``view_number`` / ``view_count``. 2011 only: ``quality_blocks`` (None: one block
    with ``quality`` and no algorithm named, none when ``quality`` is 0), ``certifications``
    (written when the record's certification flag is set), ``representation`` (the
    representation number, 0..15), ``captured_at`` (UTC; None = not specified) and
    ``extended`` (the raw extended data blocks after the image).
    """

    position: int
    data: bytes
    width: int
    height: int
    quality: int = 0
    impression: int = 0
    view_number: int = 1
    view_count: int = 1
    quality_blocks: list[QualityBlock] | None = None
    certifications: list[CertificationBlock] = field(default_factory=list)
    representation: int = 0
    captured_at: dt.datetime | None = None
    extended: bytes = b""


@dataclass
class FingerImageRecord:
    """A whole record: the shared image properties and the views in file order.

    ``scan_ppi`` / ``image_ppi``: (horizontal, vertical) scan and image resolution, in pixels per
    inch when ``scale_units`` is 1 (per centimetre when 2); ``pixel_depth`` in bits;
    ``acquisition_level`` the ISO setting level (31: 500 ppi, 8 bits; 41: 1000 ppi, 8 bits; 2005
    only). ``edition`` 2005 or 2011 (what :func:`encode` writes by default). 2011 only:
    ``device_technology`` (table 5: 0 unspecified, 1 white-light optical TIR, ...),
    ``device_vendor`` (IBIA-registered id; ``capture_device_id`` is then the vendor's device
    type id), ``certification_flag``.
    """

    views: list[FingerView] = field(default_factory=list)
    compression: Compression = Compression.WSQ
    scan_ppi: tuple[int, int] = (500, 500)
    image_ppi: tuple[int, int] = (500, 500)
    pixel_depth: int = 8
    acquisition_level: int = 31
    capture_device_id: int = 0
    scale_units: int = 1
    edition: int = EDITION_2005
    device_technology: int = 0
    device_vendor: int = 0
    certification_flag: bool = False

    def decode_view(self, index: int) -> np.ndarray:
        """The image of view ``index`` as a uint8 (H, W) array, checked against the view's size."""
        v = self.views[index]
        if self.compression == Compression.WSQ:
            arr = wsq.decode(v.data)
        elif self.compression == Compression.RAW:
            if self.pixel_depth != 8 or len(v.data) != v.width * v.height:
                raise RecordImageError(f"view {index}: {len(v.data)} raw bytes for {v.width} x {v.height} "
                                       f"at {self.pixel_depth} bits")
            arr = np.frombuffer(v.data, np.uint8).reshape(v.height, v.width).copy()
        elif self.compression in (Compression.JPEG, Compression.JPEG2000, Compression.JPEG2000_LOSSLESS,
                                  Compression.PNG):
            from PIL import Image

            try:
                with Image.open(io.BytesIO(v.data)) as im:
                    arr = np.asarray(im.convert("L")).copy()
            except Exception as exc:
                raise RecordImageError(f"view {index}: image does not decode ({exc})") from exc
        else:
            raise RecordImageError(f"view {index}: {self.compression.name} images are not decoded here")
        if arr.shape != (v.height, v.width):
            raise RecordImageError(f"view {index}: image is {arr.shape[1]} x {arr.shape[0]}, "
                                   f"the record says {v.width} x {v.height}")
        return arr


def acquisition_level(ppi: float) -> int:
    """ISO/IEC 19794-4:2005 image acquisition setting level for an 8-bit image at ``ppi``:
    41 at 1000 ppi and above, 31 at 500 ppi and above, else 0 (no level applies)."""
    return 41 if ppi >= 1000 else 31 if ppi >= 500 else 0


def edition_of(data: bytes) -> int:
    """2005 or 2011, from the version field; RecordFormatError for anything else."""
    data = bytes(data[:8])
    if len(data) < 8 or data[:4] != MAGIC:
        raise RecordFormatError("finger image record does not start with 'FIR\\0'", "ISO 19794-4 record", 0)
    if data[4:8] == VERSION:
        return EDITION_2005
    if data[4:8] == VERSION_2011:
        return EDITION_2011
    raise RecordFormatError(f"finger image record version {data[4:8]!r} is not read ('010' 2005, '020' 2011)",
                            "ISO 19794-4 record", 4)


def encode(record: FingerImageRecord, edition: int | None = None) -> bytes:
    """The bytes of ``record`` in ``edition`` (2005 or 2011; default: ``record.edition``).
    RecordError when a value does not fit its field."""
    edition = record.edition if edition is None else edition
    if edition == EDITION_2011:
        return _encode_2011(record)
    if edition != EDITION_2005:
        raise RecordError(f"ISO/IEC 19794-4 edition {edition!r}: 2005 or 2011")
    body = bytearray()
    try:
        for v in record.views:
            body += _VIEW.pack(VIEW_HEADER_LEN + len(v.data), v.position, v.view_count, v.view_number, v.quality,
                               v.impression, v.width, v.height, 0) + v.data
        total = HEADER_LEN + len(body)
        if total >= 1 << 48 or len(record.views) > 255:
            raise RecordError("finger image record too large")
        head = MAGIC + VERSION + total.to_bytes(6, "big") + struct.pack(
            ">HHBBHHHHBBH", record.capture_device_id, record.acquisition_level, len(record.views),
            record.scale_units, *record.scan_ppi, *record.image_ppi, record.pixel_depth,
            int(Compression.JPEG2000 if record.compression == Compression.JPEG2000_LOSSLESS else record.compression), 0)
    except struct.error as exc:
        raise RecordError(f"finger image record field out of range: {exc}") from exc
    for v in record.views:
        if not (0 <= v.quality <= 100 or v.quality in (254, 255)):
            raise RecordError(f"finger quality {v.quality} out of range 0..100")
    return head + bytes(body)


def decode(data: bytes) -> FingerImageRecord:
    """Parse a 19794-4 record of either edition (see :attr:`FingerImageRecord.edition`);
    RecordFormatError (with the byte offset) when malformed."""
    data = bytes(data)
    what = "ISO 19794-4 record"
    if edition_of(data) == EDITION_2011:
        return _decode_2011(data)
    if len(data) < HEADER_LEN:
        raise RecordFormatError("finger image record shorter than its header", what, 0)
    total = int.from_bytes(data[8:14], "big")
    if total != len(data):
        raise RecordFormatError(f"record length {total} but {len(data)} bytes given", what, 8)
    (device, level, count, units, sx, sy, ix, iy, depth, comp, _res) = struct.unpack_from(">HHBBHHHHBBH", data, 14)
    try:
        compression = Compression(comp)
    except ValueError:
        raise RecordFormatError(f"unknown compression code {comp}", what, 29) from None
    if units not in (1, 2):
        raise RecordFormatError(f"scale units {units} (1 ppi or 2 ppcm)", what, 19)
    record = FingerImageRecord([], compression, (sx, sy), (ix, iy), depth, level, device, units)
    pos = HEADER_LEN
    for _ in range(count):
        if pos + VIEW_HEADER_LEN > len(data):
            raise RecordFormatError("finger image header truncated", what, pos)
        blen, fgp, nviews, vnum, quality, imp, w, h, _r = _VIEW.unpack_from(data, pos)
        if blen < VIEW_HEADER_LEN or pos + blen > len(data):
            raise RecordFormatError(f"finger image block of {blen} bytes does not fit", what, pos)
        if quality > 100 and quality not in (254, 255):
            raise RecordFormatError(f"finger quality {quality} over 100", what, pos + 7)
        record.views.append(FingerView(fgp, bytes(data[pos + VIEW_HEADER_LEN:pos + blen]), w, h, quality, imp,
                                       vnum, nviews))
        pos += blen
    if pos != len(data):
        raise RecordFormatError(f"{len(data) - pos} bytes after the last finger image", what, pos)
    return record


def from_images(images: list[tuple[int, np.ndarray, int | None, ImpressionKind | int]], ppi: int = 500,
                compression: Compression = Compression.WSQ, capture_device_id: int = 0) -> bytes:
    """A record of finger images coded as ``compression`` (WSQ at 0.75 bpp by default).

    ``images``: ``(position, image, nfiq2, impression)`` tuples, ``image`` uint8 (H, W) at ``ppi``
    pixels per inch, ``nfiq2`` 0..100 or None (written as 0, "not reported"), ``impression`` an
    :class:`ImpressionKind` or ISO code. RecordError / RecordImageError on bad input.
    """
    views = []
    for position, image, nfiq2, impression in images:
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 2:
            raise RecordImageError("finger images must be uint8 (H, W) arrays")
        code = ISO_IMPRESSION_CODE[impression] if isinstance(impression, ImpressionKind) else int(impression)
        if compression == Compression.WSQ:
            data = wsq.encode(image, ppi=int(ppi))
        elif compression == Compression.RAW:
            data = np.ascontiguousarray(image).tobytes()
        elif compression == Compression.PNG:
            from PIL import Image

            buf = io.BytesIO()
            Image.fromarray(image, mode="L").save(buf, "PNG")
            data = buf.getvalue()
        else:
            raise RecordError(f"writing {compression.name} finger images is not supported")
        try:
            position = FingerPosition(int(position))
        except ValueError:
            raise RecordError(f"finger position {position} is not an ISO finger position code") from None
        views.append(FingerView(int(position), data, image.shape[1], image.shape[0],
                                int(nfiq2) if nfiq2 is not None else 0, code))
    ppi_i = int(round(ppi))
    return encode(FingerImageRecord(views, compression, (ppi_i, ppi_i), (ppi_i, ppi_i), 8,
                                    acquisition_level(ppi_i), capture_device_id, 1))


# --- 2011 edition -----------------------------------------------------------------------------------
def _encode_2011(record: FingerImageRecord) -> bytes:
    if record.compression not in CODES_2011:
        raise RecordError(f"{record.compression!r} has no 2011 compression code")
    if len(record.views) > 0xFFFF:
        raise RecordError("more than 65535 finger representations")
    reps = []
    try:
        for v in record.views:
            if not (0 <= v.quality <= 100):
                raise RecordError(f"finger quality {v.quality} out of range 0..100")
            if v.certifications and not record.certification_flag:
                raise RecordError("certification blocks need the record's certification flag")
            if not 0 <= v.representation <= 15:
                raise RecordError(f"representation number {v.representation} out of range 0..15")
            if (bad := _extended_problem(v.extended)) is not None:
                raise RecordError(bad[0])
            blocks = v.quality_blocks if v.quality_blocks is not None else (
                [QualityBlock(v.quality)] if v.quality else [])
            head = (iso19794_1.encode_datetime(v.captured_at)
                    + struct.pack(">BHH", record.device_technology, record.device_vendor, record.capture_device_id)
                    + iso19794_1.write_quality(blocks)
                    + (iso19794_1.write_certification(v.certifications) if record.certification_flag else b"")
                    + _REP_IMAGE_2011.pack(v.position, v.representation, record.scale_units, *record.scan_ppi,
                                           *record.image_ppi, record.pixel_depth, CODES_2011[record.compression],
                                           v.impression, v.width, v.height, len(v.data)))
            length = 4 + len(head) + len(v.data) + len(v.extended)
            if length > 0xFFFFFFFF:
                raise RecordError("finger representation too large")
            reps.append(struct.pack(">I", length) + head + v.data + v.extended)
    except struct.error as exc:
        raise RecordError(f"finger image record field out of range: {exc}") from exc
    body = b"".join(reps)
    total = HEADER_LEN_2011 + len(body)
    if total > 0xFFFFFFFF:
        raise RecordError("finger image record too large")
    positions = len({v.position for v in record.views})
    return _HEAD_2011.pack(MAGIC, VERSION_2011, total, len(record.views), int(record.certification_flag),
                           positions) + body


def _extended_problem(ext: bytes) -> tuple[str, int] | None:
    """Extended data must be whole blocks: type (2), length (2, with these 4 bytes), data.
    (what is wrong, offset in ``ext``), or None when it is well formed."""
    i = 0
    while i < len(ext):
        if i + 4 > len(ext):
            return "extended data block header truncated", i
        n = int.from_bytes(ext[i + 2:i + 4], "big")
        if n < 4 or i + n > len(ext):
            return f"extended data block of {n} bytes does not fit", i
        i += n
    return None


def _decode_2011(data: bytes) -> FingerImageRecord:
    what = "ISO 19794-4 record"
    if len(data) < HEADER_LEN_2011:
        raise RecordFormatError("finger image record shorter than its header", what, 0)
    _magic, _version, total, count, cert_flag, _positions = _HEAD_2011.unpack_from(data, 0)
    if total != len(data):
        raise RecordFormatError(f"record length {total} but {len(data)} bytes given", what, 8)
    if cert_flag not in (0, 1):
        raise RecordFormatError(f"certification flag {cert_flag} (0 or 1)", what, 14)
    record = FingerImageRecord([], edition=EDITION_2011, certification_flag=bool(cert_flag))
    shared: tuple | None = None
    pos = HEADER_LEN_2011
    for _ in range(count):
        if pos + 4 > len(data):
            raise RecordFormatError("finger representation header truncated", what, pos)
        length = int.from_bytes(data[pos:pos + 4], "big")
        end = pos + length
        if length < 4 + iso19794_1.DATETIME_LEN + 5 or end > len(data):
            raise RecordFormatError(f"finger representation of {length} bytes does not fit", what, pos)
        p = pos + 4
        captured_at = iso19794_1.decode_datetime(data, p, what)
        p += iso19794_1.DATETIME_LEN
        technology, vendor, device_type = struct.unpack_from(">BHH", data, p)
        p += 5
        blocks, p = iso19794_1.read_quality(data, p, end, what)
        certs: list[CertificationBlock] = []
        if cert_flag:
            certs, p = iso19794_1.read_certification(data, p, end, what)
        if p + _REP_IMAGE_2011.size > end:
            raise RecordFormatError("finger representation header truncated", what, p)
        (fgp, number, units, sx, sy, ix, iy, depth, comp, imp, w, h, image_len) = _REP_IMAGE_2011.unpack_from(data, p)
        if comp not in _BY_CODE_2011:
            raise RecordFormatError(f"unknown compression code {comp}", what, p + 12)
        if units not in (1, 2):
            raise RecordFormatError(f"scale units {units} (1 ppi or 2 ppcm)", what, p + 2)
        p += _REP_IMAGE_2011.size
        if p + image_len > end:
            raise RecordFormatError(f"image of {image_len} bytes does not fit its representation", what, p - 4)
        image = bytes(data[p:p + image_len])
        extended = bytes(data[p + image_len:end])
        if (bad := _extended_problem(extended)) is not None:
            raise RecordFormatError(bad[0], what, p + image_len + bad[1])
        props = (technology, vendor, device_type, units, (sx, sy), (ix, iy), depth, _BY_CODE_2011[comp])
        if shared is None:
            shared = props
        elif props != shared:
            raise RecordFormatError("representations with different devices, resolutions or compressions are "
                                    "not read", what, pos)
        quality = next((b.score for b in blocks if b.score <= 100), 0)
        record.views.append(FingerView(fgp, image, w, h, quality, imp, quality_blocks=blocks, certifications=certs,
                                       representation=number, captured_at=captured_at, extended=extended))
        pos = end
    if pos != len(data):
        raise RecordFormatError(f"{len(data) - pos} bytes after the last finger representation", what, pos)
    if shared is not None:
        (record.device_technology, record.device_vendor, record.capture_device_id, record.scale_units,
         record.scan_ppi, record.image_ppi, record.pixel_depth, record.compression) = shared
        record.acquisition_level = acquisition_level(record.image_ppi[0]) if record.scale_units == 1 else 0
    return record
