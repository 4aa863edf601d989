"""ISO/IEC 19794-4:2005 finger image records ("FIR", version "010"), as ICAO 9303 DG3 carries them.

Layout, big-endian (ISO/IEC 19794-4:2005 clause 8):

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
Resolution, depth and compression are properties of the whole record, so every view of one
record shares them. Finger positions are those of :class:`~biostation.records.FingerPosition`
(13, 14 and 15 for the slaps). Quality 0 means "not reported"; biostation writes the NFIQ 2
score (0..100) when it is known.

Malformed bytes raise :class:`~biostation.errors.RecordFormatError` (with the byte offset);
values that do not fit their fields raise :class:`~biostation.errors.RecordError`.
Stateless and thread-safe.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from ..errors import RecordError, RecordFormatError, RecordImageError
from . import wsq
from .vocabulary import ISO_IMPRESSION_CODE, FingerPosition, ImpressionKind

__all__ = ["Compression", "FingerView", "FingerImageRecord", "encode", "decode", "from_images",
           "acquisition_level"]

MAGIC, VERSION = b"FIR\x00", b"010\x00"
HEADER_LEN, VIEW_HEADER_LEN = 32, 14
_VIEW = struct.Struct(">IBBBBBHHB")


class Compression(IntEnum):
    """Image compression of a 19794-4:2005 record (table 3)."""

    RAW = 0
    RAW_PACKED = 1
    WSQ = 2
    JPEG = 3
    JPEG2000 = 4
    PNG = 5


@dataclass
class FingerView:
    """One finger (or slap) image of a record: ``data`` is the coded image, ``width``/``height``
    its size in pixels, ``position`` an ISO finger position code, ``quality`` 0..100 (0 = not
    reported), ``impression`` the ISO impression code (0 live-scan plain, 1 live-scan rolled)."""

    position: int
    data: bytes
    width: int
    height: int
    quality: int = 0
    impression: int = 0
    view_number: int = 1
    view_count: int = 1


@dataclass
class FingerImageRecord:
    """A whole record: the shared image properties and the views in file order.

    ``scan_ppi`` / ``image_ppi``: (horizontal, vertical) scan and image resolution, in pixels per
    inch when ``scale_units`` is 1 (per centimetre when 2); ``pixel_depth`` in bits;
    ``acquisition_level`` the ISO setting level (31: 500 ppi, 8 bits; 41: 1000 ppi, 8 bits).
    """

    views: list[FingerView] = field(default_factory=list)
    compression: Compression = Compression.WSQ
    scan_ppi: tuple[int, int] = (500, 500)
    image_ppi: tuple[int, int] = (500, 500)
    pixel_depth: int = 8
    acquisition_level: int = 31
    capture_device_id: int = 0
    scale_units: int = 1

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
        elif self.compression in (Compression.JPEG, Compression.JPEG2000, Compression.PNG):
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


def encode(record: FingerImageRecord) -> bytes:
    """The bytes of ``record`` (RecordError when a value does not fit its field)."""
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
            record.scale_units, *record.scan_ppi, *record.image_ppi, record.pixel_depth, int(record.compression), 0)
    except struct.error as exc:
        raise RecordError(f"finger image record field out of range: {exc}") from exc
    for v in record.views:
        if not (0 <= v.quality <= 100):
            raise RecordError(f"finger quality {v.quality} out of range 0..100")
    return head + bytes(body)


def decode(data: bytes) -> FingerImageRecord:
    """Parse a 19794-4:2005 record; RecordFormatError (with the byte offset) when malformed."""
    data = bytes(data)
    what = "ISO 19794-4 record"
    if len(data) < HEADER_LEN or data[:4] != MAGIC:
        raise RecordFormatError("finger image record does not start with 'FIR\\0'", what, 0)
    if data[4:8] != VERSION:
        raise RecordFormatError(f"finger image record version {data[4:8]!r} is not read (only '010', 2005)",
                                what, 4)
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
        if quality > 100 and quality != 255:
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
