"""ISO/IEC 19794-5 face image records ("FAC"), two editions:

* **2005** (version ``"010"``), as ICAO 9303 DG2 and the enrollment records carry them (the
  default of :func:`encode`);
* **2011** (version ``"030"``: the 2011 edition numbers itself 030, not 020), the layout of
  ISO/IEC 19794-1:2011 (general header, then representations with their own headers), which
  MOSIP's SBI asks for at registration.

:func:`decode` reads both (:func:`edition_of` tells which); :func:`encode` writes ``edition``.

2005 layout, big-endian (ISO/IEC 19794-5:2005 clause 5):

========================  =====  ==========================================================
facial record header      14     ``"FAC\\0"``, ``"010\\0"``, record length (4), number of faces (2)
per face:
  facial information      20     block length (4), feature points (2), gender, eye colour, hair
                                 colour (1 each), property mask (3), expression (2), pose angles
                                 yaw/pitch/roll (3), pose angle uncertainties (3)
  feature points          8 * n  type (1), major<<4 | minor code (1), x (2), y (2), reserved (2)
  image information       12     face image type, image data type (1 each), width, height
                                 (2 each), colour space, source type (1 each), device type
                                 (2), quality (2)
  image data              ...    JPEG (data type 0) or JPEG 2000 (data type 1)
========================  =====  ==========================================================

2011 layout, big-endian (ISO/IEC 19794-5:2011 tables 2-21; ISO/IEC 19794-1:2011):

========================  =====  ==========================================================
general header            17     ``"FAC\\0"``, ``"030\\0"``, record length (4), number of
                                 representations (2), certification flag (1, 0: face records
                                 define no certification blocks), temporal semantics (2)
per representation:
  representation header   18+    representation length (4), capture date-time (9, UTC),
                                 capture device technology id (1; the 2005 source type codes),
                                 vendor id (2), type id (2), quality record (1 + 5 per block)
  facial information      17     landmark points (2), gender, eye colour, hair colour, subject
                                 height (1 each), property mask (3), expression (2), pose
                                 angles yaw/pitch/roll (3), their uncertainties (3)
  landmark points         8 * n  type (1), code (1), x, y, z (2 each)
  image information       11     face image type (1: 0 basic, 1 full frontal, 2 token frontal,
                                 3 post-processed frontal), image data type (1: 0 JPEG, 1 JPEG
                                 2000 lossy, 2 JPEG 2000 lossless, 3 PNG), width, height (2
                                 each), spatial sampling rate level (1), post-acquisition
                                 processing (2, bit mask), cross reference (1), colour space (1)
  image data              4+     length (4), then the image
========================  =====  ==========================================================

3-D representations (face image types 0x80 and up) are not read.

The card's DG2 codec (:mod:`biostation.card.lds`) uses this module; so does the enrollment
record builder. Malformed bytes raise :class:`~biostation.errors.RecordFormatError` with the
byte offset. Stateless and thread-safe.

Sources for the 2011 layout (read, no code copied): MOSIP's biometrics-util converters
(mosip/bio-utils, ``io.mosip.biometrics.util.face``: ``GeneralHeader``,
``RepresentationHeader``, ``FacialInformation``, ``LandmarkPoints``, ``ImageInformation``,
``ImageDataType``, ``FaceISOStandardsValidator``); checked against the header of a real 2011
record from a SYNCBYTE SBI published in mosip/mosip-functional-tests
(``authentication-partnerdemo-service/README.md``), see ``tests/unit/test_records_iso2011.py``.
"""

from __future__ import annotations

import datetime as dt
import io
import struct
from dataclasses import dataclass, field

import numpy as np

from ..errors import RecordError, RecordFormatError, RecordImageError
from . import iso19794_1
from .iso19794_1 import QualityBlock

__all__ = ["EDITION_2005", "EDITION_2011", "FaceImage", "FeaturePoint", "IMAGE_JPEG", "IMAGE_JPEG2000",
           "IMAGE_JPEG2000_LOSSLESS", "IMAGE_PNG", "encode", "decode", "edition_of", "face_from_image",
           "spatial_sampling_level"]

EDITION_2005, EDITION_2011 = 2005, 2011
MAGIC, VERSION = b"FAC\x00", b"010\x00"
VERSION_2011 = b"030\x00"
HEADER_LEN, INFO_LEN, POINT_LEN, IMAGE_INFO_LEN = 14, 20, 8, 12
HEADER_LEN_2011, INFO_LEN_2011, IMAGE_INFO_LEN_2011 = 17, 17, 11
#: image data types: 0 and 1 in both editions (1 is JPEG 2000 lossy in 2011); 2 and 3 only in 2011
IMAGE_JPEG, IMAGE_JPEG2000, IMAGE_JPEG2000_LOSSLESS, IMAGE_PNG = 0, 1, 2, 3
_HEAD_2011 = struct.Struct(">4s4sIHBH")
_INFO_2011 = struct.Struct(">HBBBB3sH3s3s")
_IMG_2011 = struct.Struct(">BBHHBHBBI")  # image information, then the image data length
_POINT_2011 = struct.Struct(">BBHHH")
_INFO = struct.Struct(">IHBBB3sH3s3s")
_IMG = struct.Struct(">BBHHBBHH")
_POINT = struct.Struct(">BBHHH")


@dataclass(frozen=True)
class FeaturePoint:
    """A facial feature point: ``kind`` 1 (2-D, MPEG-4), ``code`` its MPEG-4 major.minor code as
    one byte (``major << 4 | minor``, e.g. 0x31 = left eye centre), ``x``/``y`` in pixels;
    ``z`` only in 2011 records (2005 writes the field as reserved 0)."""

    kind: int
    code: int
    x: int
    y: int
    z: int = 0


@dataclass
class FaceImage:
    """One face of a 19794-5 record.

    ``image``: the coded image (JPEG or JPEG 2000 bytes); ``image_type`` 0 JPEG, 1 JPEG 2000;
    ``width``/``height`` in pixels. Codes as in ISO/IEC 19794-5:2005 tables: ``gender`` 0
    unspecified, 1 male, 2 female, 3 unknown; ``face_image_type`` 0 basic, 1 full frontal, 2
    token frontal; ``colour_space`` 1 24-bit RGB, 3 8-bit grey; ``source_type`` 2 digital still
    camera; ``quality`` 0 = not specified. ``pose`` (yaw, pitch, roll) and ``pose_uncertainty``
    in the record's own codes (0 = unspecified). ``image_type`` 2 (JPEG 2000 lossless) and 3
    (PNG) exist only in 2011 records (a 2005 record writes 2 as JPEG 2000).

    2011 records: ``source_type`` is written as the capture device technology id and
    ``device_type`` as the capture device type id, with ``device_vendor``; ``quality_blocks``
    (None: one block with ``quality`` and no algorithm named, none when ``quality`` is 0),
    ``captured_at`` (UTC, None = not specified), ``subject_height``,
    ``spatial_sampling_level`` (0: under 180 pixels across the head ... 7: 750 and more),
    ``post_processing`` (bit mask, 0 = none), ``cross_reference``.
    """

    image: bytes
    image_type: int = IMAGE_JPEG
    width: int = 0
    height: int = 0
    gender: int = 0
    eye_colour: int = 0
    hair_colour: int = 0
    expression: int = 0
    face_image_type: int = 1
    colour_space: int = 1
    source_type: int = 2
    quality: int = 0
    feature_points: list[FeaturePoint] = field(default_factory=list)
    property_mask: int = 0
    pose: tuple[int, int, int] = (0, 0, 0)
    pose_uncertainty: tuple[int, int, int] = (0, 0, 0)
    device_type: int = 0
    device_vendor: int = 0
    quality_blocks: list[QualityBlock] | None = None
    captured_at: dt.datetime | None = None
    subject_height: int = 0
    spatial_sampling_level: int = 0
    post_processing: int = 0
    cross_reference: int = 0

    @property
    def extension(self) -> str:
        if self.image.startswith(b"\xff\xd8"):
            return "jpg"
        if self.image.startswith(b"\x00\x00\x00\x0cjP  ") or self.image.startswith(b"\xff\x4f\xff\x51"):
            return "jp2"
        if self.image.startswith(b"\x89PNG"):
            return "png"
        return "jp2" if self.image_type in (IMAGE_JPEG2000, IMAGE_JPEG2000_LOSSLESS) else "jpg"

    def decode_image(self) -> np.ndarray:
        """The decoded image (uint8, (H, W, 3) or (H, W)); RecordImageError if it does not decode."""
        from PIL import Image

        try:
            with Image.open(io.BytesIO(self.image)) as im:
                im.load()
                return np.asarray(im.convert("RGB") if im.mode not in ("L", "RGB") else im).copy()
        except Exception as exc:
            raise RecordImageError(f"face image does not decode ({exc})") from exc

    def __repr__(self) -> str:
        return f"FaceImage({self.extension}, {self.width}x{self.height}, {len(self.image)} bytes)"


def _u24(b: bytes) -> int:
    return int.from_bytes(b, "big")


def edition_of(data: bytes) -> int:
    """2005 or 2011, from the version field; RecordFormatError for anything else."""
    data = bytes(data[:8])
    what = "ISO 19794-5 record"
    if len(data) < 8 or data[:4] != MAGIC:
        raise RecordFormatError("face record does not start with 'FAC\\0'", what, 0)
    if data[4:8] == VERSION:
        return EDITION_2005
    if data[4:8] == VERSION_2011:
        return EDITION_2011
    raise RecordFormatError(f"face record version {data[4:8]!r} is not read ('010' 2005, '030' 2011)", what, 4)


def decode(data: bytes) -> list[FaceImage]:
    """The faces of a 19794-5 record of either edition.

    The record length field may be shorter than ``data`` (bytes after it are ignored, as some
    cards pad their DG2), never longer. RecordFormatError on malformed bytes.
    """
    data = bytes(data)
    what = "ISO 19794-5 record"
    if edition_of(data) == EDITION_2011:
        return _decode_2011(data)
    if len(data) < HEADER_LEN:
        raise RecordFormatError("face record shorter than its header", what, 0)
    total, count = struct.unpack_from(">IH", data, 8)
    if total > len(data) or total < HEADER_LEN:
        raise RecordFormatError(f"record claims {total} bytes, {len(data)} present", what, 8)
    pos, faces = HEADER_LEN, []
    for _ in range(count):
        if pos + INFO_LEN > total:
            raise RecordFormatError("facial information block truncated", what, pos)
        blen, nfp, gender, eye, hair, mask, expr, pose, unc = _INFO.unpack_from(data, pos)
        end = pos + blen
        if blen < INFO_LEN + POINT_LEN * nfp + IMAGE_INFO_LEN or end > total:
            raise RecordFormatError(f"facial record block of {blen} bytes does not fit", what, pos)
        p = pos + INFO_LEN
        points = []
        for _k in range(nfp):
            kind, code, x, y, _res = _POINT.unpack_from(data, p)
            points.append(FeaturePoint(kind, code, x, y))
            p += POINT_LEN
        ftype, dtype, w, h, cs, st, device, q = _IMG.unpack_from(data, p)
        p += IMAGE_INFO_LEN
        faces.append(FaceImage(bytes(data[p:end]), dtype, w, h, gender, eye, hair, expr, ftype, cs, st, q,
                               points, _u24(mask), tuple(pose), tuple(unc), device))
        pos = end
    return faces


def encode(faces: list[FaceImage], edition: int = EDITION_2005, temporal_semantics: int = 0) -> bytes:
    """One 19794-5 record of ``edition`` (2005 or 2011) holding ``faces`` (RecordError if a value
    does not fit its field). ``temporal_semantics`` (2011 only): 0 for one representation, 1..3
    how several relate in time (ISO/IEC 19794-5:2011 table 3)."""
    if edition == EDITION_2011:
        return _encode_2011(faces, temporal_semantics)
    if edition != EDITION_2005:
        raise RecordError(f"ISO/IEC 19794-5 edition {edition!r}: 2005 or 2011")
    blocks = []
    try:
        for f in faces:
            points = b"".join(_POINT.pack(p.kind, p.code, p.x, p.y, 0) for p in f.feature_points)
            blen = INFO_LEN + len(points) + IMAGE_INFO_LEN + len(f.image)
            info = _INFO.pack(blen, len(f.feature_points), f.gender, f.eye_colour, f.hair_colour,
                              f.property_mask.to_bytes(3, "big"), f.expression, bytes(f.pose),
                              bytes(f.pose_uncertainty))
            if f.image_type == IMAGE_PNG:
                raise RecordError("a 2005 face record holds JPEG or JPEG 2000 images, not PNG")
            img = _IMG.pack(f.face_image_type, IMAGE_JPEG2000 if f.image_type == IMAGE_JPEG2000_LOSSLESS else f.image_type,
                            f.width, f.height, f.colour_space, f.source_type, f.device_type, f.quality)
            blocks.append(info + points + img + f.image)
    except (struct.error, OverflowError, ValueError) as exc:
        raise RecordError(f"face record field out of range: {exc}") from exc
    body = b"".join(blocks)
    if len(faces) > 0xFFFF or HEADER_LEN + len(body) > 0xFFFFFFFF:
        raise RecordError("too many faces or too large a face record")
    return MAGIC + VERSION + struct.pack(">IH", HEADER_LEN + len(body), len(faces)) + body


#: lower bounds (pixels across the width of the head) of spatial sampling rate levels 1..7
#: (ISO/IEC 19794-5:2011 table 18)
_LEVEL_FROM = (180, 240, 300, 370, 480, 610, 750)


def spatial_sampling_level(head_width_px: float) -> int:
    """The 2011 spatial sampling rate level (0..7) of an image whose head is this wide."""
    return sum(head_width_px >= v for v in _LEVEL_FROM)


def face_from_image(image: bytes | np.ndarray, jpeg_quality: int = 90, *, lossless: bool = False,
                    **fields) -> FaceImage:
    """A :class:`FaceImage` from coded bytes (JPEG / JPEG 2000, kept as they are) or from an RGB
    (H, W, 3) / grey (H, W) uint8 array (coded as JPEG at ``jpeg_quality``). Width, height,
    data type and colour space are read from the image; other fields come from ``fields``.
    ``lossless``: the JPEG 2000 bytes are lossless (data type 2, which only 2011 records tell
    apart). RecordImageError when the bytes are neither JPEG nor JPEG 2000 or do not decode."""
    from PIL import Image

    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
            raise RecordImageError(f"a face image array must be uint8 (H, W) or (H, W, 3), got {image.dtype} "
                                   f"{image.shape}")
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, "JPEG", quality=int(jpeg_quality))
        image = buf.getvalue()
    data = bytes(image)
    if data.startswith(b"\xff\xd8"):
        dtype = IMAGE_JPEG
    elif data.startswith(b"\x00\x00\x00\x0cjP  ") or data.startswith(b"\xff\x4f\xff\x51"):
        dtype = IMAGE_JPEG2000_LOSSLESS if lossless else IMAGE_JPEG2000
    else:
        raise RecordImageError("a face image must be JPEG or JPEG 2000")
    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h, mode = im.width, im.height, im.mode
    except Exception as exc:
        raise RecordImageError(f"face image does not decode ({exc})") from exc
    fields.setdefault("colour_space", 3 if mode == "L" else 1)
    return FaceImage(data, dtype, w, h, **fields)


# --- 2011 edition -----------------------------------------------------------------------------------
def _encode_2011(faces: list[FaceImage], temporal_semantics: int) -> bytes:
    reps = []
    try:
        for f in faces:
            blocks = f.quality_blocks if f.quality_blocks is not None else (
                [QualityBlock(f.quality)] if f.quality else [])
            points = b"".join(_POINT_2011.pack(p.kind, p.code, p.x, p.y, p.z) for p in f.feature_points)
            head = (iso19794_1.encode_datetime(f.captured_at)
                    + struct.pack(">BHH", f.source_type, f.device_vendor, f.device_type)
                    + iso19794_1.write_quality(blocks)
                    + _INFO_2011.pack(len(f.feature_points), f.gender, f.eye_colour, f.hair_colour, f.subject_height,
                                      f.property_mask.to_bytes(3, "big"), f.expression, bytes(f.pose),
                                      bytes(f.pose_uncertainty))
                    + points
                    + _IMG_2011.pack(f.face_image_type, f.image_type, f.width, f.height, f.spatial_sampling_level,
                                     f.post_processing, f.cross_reference, f.colour_space, len(f.image)))
            length = 4 + len(head) + len(f.image)
            if length > 0xFFFFFFFF:
                raise RecordError("face representation too large")
            reps.append(struct.pack(">I", length) + head + f.image)
    except (struct.error, OverflowError, ValueError) as exc:
        raise RecordError(f"face record field out of range: {exc}") from exc
    body = b"".join(reps)
    if len(faces) > 0xFFFF or HEADER_LEN_2011 + len(body) > 0xFFFFFFFF:
        raise RecordError("too many faces or too large a face record")
    try:
        return _HEAD_2011.pack(MAGIC, VERSION_2011, HEADER_LEN_2011 + len(body), len(faces), 0,
                               temporal_semantics) + body
    except struct.error as exc:
        raise RecordError(f"temporal semantics {temporal_semantics} out of range") from exc


def _decode_2011(data: bytes) -> list[FaceImage]:
    what = "ISO 19794-5 record"
    if len(data) < HEADER_LEN_2011:
        raise RecordFormatError("face record shorter than its header", what, 0)
    _magic, _version, total, count, cert_flag, _temporal = _HEAD_2011.unpack_from(data, 0)
    if total > len(data) or total < HEADER_LEN_2011:
        raise RecordFormatError(f"record claims {total} bytes, {len(data)} present", what, 8)
    if cert_flag != 0:
        raise RecordFormatError(f"certification flag {cert_flag}: face records define no certification blocks",
                                what, 14)
    pos, faces = HEADER_LEN_2011, []
    for _ in range(count):
        if pos + 4 > total:
            raise RecordFormatError("face representation header truncated", what, pos)
        length = int.from_bytes(data[pos:pos + 4], "big")
        end = pos + length
        if length < 4 + iso19794_1.DATETIME_LEN + 6 + INFO_LEN_2011 + _IMG_2011.size or end > total:
            raise RecordFormatError(f"face representation of {length} bytes does not fit", what, pos)
        p = pos + 4
        captured_at = iso19794_1.decode_datetime(data, p, what)
        p += iso19794_1.DATETIME_LEN
        technology, vendor, device_type = struct.unpack_from(">BHH", data, p)
        blocks, p = iso19794_1.read_quality(data, p + 5, end, what)
        if p + INFO_LEN_2011 > end:
            raise RecordFormatError("facial information truncated", what, p)
        nfp, gender, eye, hair, height, mask, expr, pose, unc = _INFO_2011.unpack_from(data, p)
        p += INFO_LEN_2011
        if p + _POINT_2011.size * nfp + _IMG_2011.size > end:
            raise RecordFormatError(f"{nfp} landmark points and the image information do not fit", what, p)
        points = []
        for _k in range(nfp):
            points.append(FeaturePoint(*_POINT_2011.unpack_from(data, p)))
            p += _POINT_2011.size
        ftype, dtype, w, h, level, post, xref, cs, image_len = _IMG_2011.unpack_from(data, p)
        if ftype >= 0x80:
            raise RecordFormatError(f"face image type {ftype:#x}: 3-D representations are not read", what, p)
        p += _IMG_2011.size
        if p + image_len != end:
            raise RecordFormatError(f"image of {image_len} bytes does not end its representation", what, p - 4)
        quality = next((b.score for b in blocks if b.score <= 100), 0)
        faces.append(FaceImage(bytes(data[p:end]), dtype, w, h, gender, eye, hair, expr, ftype, cs, technology,
                               quality, points, _u24(mask), tuple(pose), tuple(unc), device_type, vendor, blocks,
                               captured_at, height, level, post, xref))
        pos = end
    return faces
