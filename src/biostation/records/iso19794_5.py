"""ISO/IEC 19794-5:2005 face image records ("FAC", version "010"), as ICAO 9303 DG2 carries them.

Layout, big-endian (ISO/IEC 19794-5:2005 clause 5):

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

The card's DG2 codec (:mod:`biostation.card.lds`) uses this module; so does the enrollment
record builder. Malformed bytes raise :class:`~biostation.errors.RecordFormatError` with the
byte offset. Stateless and thread-safe.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field

import numpy as np

from ..errors import RecordError, RecordFormatError, RecordImageError

__all__ = ["FaceImage", "FeaturePoint", "IMAGE_JPEG", "IMAGE_JPEG2000", "encode", "decode",
           "face_from_image"]

MAGIC, VERSION = b"FAC\x00", b"010\x00"
HEADER_LEN, INFO_LEN, POINT_LEN, IMAGE_INFO_LEN = 14, 20, 8, 12
IMAGE_JPEG, IMAGE_JPEG2000 = 0, 1
_INFO = struct.Struct(">IHBBB3sH3s3s")
_IMG = struct.Struct(">BBHHBBHH")
_POINT = struct.Struct(">BBHHH")


@dataclass(frozen=True)
class FeaturePoint:
    """A facial feature point: ``kind`` 1 (2-D, MPEG-4), ``code`` its MPEG-4 major.minor code as
    one byte (``major << 4 | minor``, e.g. 0x31 = left eye centre), ``x``/``y`` in pixels."""

    kind: int
    code: int
    x: int
    y: int


@dataclass
class FaceImage:
    """One face of a 19794-5 record.

    ``image``: the coded image (JPEG or JPEG 2000 bytes); ``image_type`` 0 JPEG, 1 JPEG 2000;
    ``width``/``height`` in pixels. Codes as in ISO/IEC 19794-5:2005 tables: ``gender`` 0
    unspecified, 1 male, 2 female, 3 unknown; ``face_image_type`` 0 basic, 1 full frontal, 2
    token frontal; ``colour_space`` 1 24-bit RGB, 3 8-bit grey; ``source_type`` 2 digital still
    camera; ``quality`` 0 = not specified. ``pose`` (yaw, pitch, roll) and ``pose_uncertainty``
    in the record's own codes (0 = unspecified).
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

    @property
    def extension(self) -> str:
        if self.image.startswith(b"\xff\xd8"):
            return "jpg"
        if self.image.startswith(b"\x00\x00\x00\x0cjP  ") or self.image.startswith(b"\xff\x4f\xff\x51"):
            return "jp2"
        return "jp2" if self.image_type == IMAGE_JPEG2000 else "jpg"

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


def decode(data: bytes) -> list[FaceImage]:
    """The faces of a 19794-5:2005 record.

    The record length field may be shorter than ``data`` (bytes after it are ignored, as some
    cards pad their DG2), never longer. RecordFormatError on malformed bytes.
    """
    data = bytes(data)
    what = "ISO 19794-5 record"
    if len(data) < HEADER_LEN or data[:4] != MAGIC:
        raise RecordFormatError("face record does not start with 'FAC\\0'", what, 0)
    if data[4:8] != VERSION:
        raise RecordFormatError(f"face record version {data[4:8]!r} is not read (only '010', 2005)", what, 4)
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


def encode(faces: list[FaceImage]) -> bytes:
    """One 19794-5:2005 record holding ``faces`` (RecordError if a value does not fit its field)."""
    blocks = []
    try:
        for f in faces:
            points = b"".join(_POINT.pack(p.kind, p.code, p.x, p.y, 0) for p in f.feature_points)
            blen = INFO_LEN + len(points) + IMAGE_INFO_LEN + len(f.image)
            info = _INFO.pack(blen, len(f.feature_points), f.gender, f.eye_colour, f.hair_colour,
                              f.property_mask.to_bytes(3, "big"), f.expression, bytes(f.pose),
                              bytes(f.pose_uncertainty))
            img = _IMG.pack(f.face_image_type, f.image_type, f.width, f.height, f.colour_space, f.source_type,
                            f.device_type, f.quality)
            blocks.append(info + points + img + f.image)
    except (struct.error, OverflowError, ValueError) as exc:
        raise RecordError(f"face record field out of range: {exc}") from exc
    body = b"".join(blocks)
    if len(faces) > 0xFFFF or HEADER_LEN + len(body) > 0xFFFFFFFF:
        raise RecordError("too many faces or too large a face record")
    return MAGIC + VERSION + struct.pack(">IH", HEADER_LEN + len(body), len(faces)) + body


def face_from_image(image: bytes | np.ndarray, jpeg_quality: int = 90, **fields) -> FaceImage:
    """A :class:`FaceImage` from coded bytes (JPEG / JPEG 2000, kept as they are) or from an RGB
    (H, W, 3) / grey (H, W) uint8 array (coded as JPEG at ``jpeg_quality``). Width, height,
    data type and colour space are read from the image; other fields come from ``fields``.
    RecordImageError when the bytes are neither JPEG nor JPEG 2000 or do not decode."""
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
        dtype = IMAGE_JPEG2000
    else:
        raise RecordImageError("a face image must be JPEG or JPEG 2000")
    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h, mode = im.width, im.height, im.mode
    except Exception as exc:
        raise RecordImageError(f"face image does not decode ({exc})") from exc
    fields.setdefault("colour_space", 3 if mode == "L" else 1)
    return FaceImage(data, dtype, w, h, **fields)
