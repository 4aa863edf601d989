"""The finger-minutiae record body shared by ISO/IEC 19794-2:2005 and ANSI INCITS 378-2004.

Both standards store, after their record headers, the same finger views:

====================  =====  ==============================================================
field                 bytes  notes
====================  =====  ==============================================================
finger position       1      0..10 (ISO/IEC 19794-2:2005 table 2); 0 = unknown
view / impression     1      high nibble: view number, low nibble: impression type
finger quality        1      0..100
minutia count         1      0..255
minutiae              6 * n  2 bits type + 14 bits x, 2 bits reserved + 14 bits y, angle, quality
extended data length  2      0 = no extended data; else the length of the blocks that follow
extended blocks       ...    type id (2), area length (2), data
====================  =====  ==============================================================

The two standards differ in the angle unit (ISO: 360/256 degrees, ANSI: 2 degrees) and in the
headers, which live in :mod:`.iso19794_2` and :mod:`.ansi378`.

Extended area length: ANSI INCITS 378-2004 counts the 4 header bytes of the area in its length;
readers of ISO/IEC 19794-2:2005 in the field disagree (some count only the data). The reader
tries the inclusive reading first and the exclusive one second, and keeps which one fitted in
``TemplateRecord.extra["ext_length_exclusive"]`` so that the writer reproduces the input bytes.
Blocks are kept as opaque ``(type_id, data)`` pairs; none is interpreted.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np

from ..errors import TemplateError, TemplateFormatError
from .model import MAX_MINUTIAE, MINUTIA_DTYPE, Template

#: ISO/IEC 19794-2 minutia type codes (2 bits) -> model kind; 0b11 is reserved
_TYPE_TO_KIND = {0: 0, 1: 1, 2: 2}
_TWO_PI = 2.0 * math.pi
#: bound on the finger views of one record (16 view numbers x 10 fingers, ANSI 378 6.4.8)
MAX_VIEWS = 176


@dataclass(frozen=True)
class AngleUnit:
    """How a standard quantizes directions: ``steps`` codes per full turn."""

    steps: int  # ISO: 256 (1.40625 degrees), ANSI: 180 (2 degrees)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return (codes.astype(np.float64) * (_TWO_PI / self.steps)).astype(np.float32)

    def encode(self, angles: np.ndarray) -> np.ndarray:
        q = np.rint(angles.astype(np.float64) * (self.steps / _TWO_PI)).astype(np.int64)
        return (q % self.steps).astype(np.uint8)


class Reader:
    """Bounds-checked big-endian reader: every short read is a TemplateFormatError."""

    def __init__(self, data: bytes, what: str):
        self.data = memoryview(bytes(data))
        self.pos = 0
        self.what = what

    def take(self, n: int, field: str) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise TemplateFormatError(f"{self.what}: truncated while reading {field}", self.pos)
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u8(self, field: str) -> int:
        return self.take(1, field)[0]

    def u16(self, field: str) -> int:
        return int.from_bytes(self.take(2, field), "big")

    def u32(self, field: str) -> int:
        return int.from_bytes(self.take(4, field), "big")

    def fail(self, message: str, at: int | None = None) -> TemplateFormatError:
        return TemplateFormatError(f"{self.what}: {message}", self.pos if at is None else at)


def _parse_blocks(buf: memoryview, exclusive: bool) -> list[tuple[int, bytes]] | None:
    """Walk extended blocks; None when the bytes do not fit this length convention."""
    out: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(buf):
        if pos + 4 > len(buf):
            return None
        type_id = int.from_bytes(buf[pos:pos + 2], "big")
        length = int.from_bytes(buf[pos + 2:pos + 4], "big")
        data_len = length if exclusive else length - 4
        if data_len < 0 or pos + 4 + data_len > len(buf):
            return None
        out.append((type_id, bytes(buf[pos + 4:pos + 4 + data_len])))
        pos += 4 + data_len
    return out


def read_view(r: Reader, width: int, height: int, dpi: float, unit: AngleUnit,
              extra: dict) -> Template:
    """Read one finger view at the reader's position."""
    start = r.pos
    position = r.u8("finger position")
    if position > 15:
        raise r.fail(f"finger position {position} out of range", start)
    vi = r.u8("view/impression")
    quality = r.u8("finger quality")
    if quality > 100:
        raise r.fail(f"finger quality {quality} over 100", start + 2)
    count = r.u8("minutia count")
    raw = np.frombuffer(r.take(6 * count, "minutiae"), dtype=np.uint8).reshape(count, 6).astype(np.uint16)
    xw = (raw[:, 0] << 8) | raw[:, 1]
    yw = (raw[:, 2] << 8) | raw[:, 3]
    types = xw >> 14
    if (types == 3).any():
        bad = int(np.argmax(types == 3))
        raise r.fail("reserved minutia type 0b11", r.pos - 6 * count + 6 * bad)
    codes = raw[:, 4]
    if (codes >= unit.steps).any():
        bad = int(np.argmax(codes >= unit.steps))
        raise r.fail(f"minutia angle code {int(codes[bad])} over {unit.steps - 1}", r.pos - 6 * count + 6 * bad + 4)
    mq = raw[:, 5]
    if (mq > 100).any():
        bad = int(np.argmax(mq > 100))
        raise r.fail(f"minutia quality {int(mq[bad])} over 100", r.pos - 6 * count + 6 * bad + 5)
    m = np.zeros(count, MINUTIA_DTYPE)
    m["x"] = xw & 0x3FFF
    m["y"] = yw & 0x3FFF
    m["angle"] = unit.decode(codes)
    m["kind"] = types.astype(np.uint8)
    m["quality"] = mq.astype(np.uint8)
    ext_len_at = r.pos
    ext_len = r.u16("extended data length")
    blocks: list[tuple[int, bytes]] = []
    if ext_len:
        buf = r.take(ext_len, "extended data")
        parsed = _parse_blocks(buf, exclusive=False)
        if parsed is None:
            parsed = _parse_blocks(buf, exclusive=True)
            if parsed is None:
                raise r.fail("extended data blocks do not add up to their length", ext_len_at)
            extra["ext_length_exclusive"] = True
        blocks = parsed
    t = Template(width=width, height=height, dpi=dpi, minutiae=m, finger_position=position,
                 impression_type=vi & 0x0F, quality=quality, view_number=vi >> 4, extended=blocks)
    try:
        t.validate()
    except TemplateFormatError:
        raise
    except TemplateError as exc:
        raise r.fail(str(exc), start) from None
    return t


def write_view(t: Template, unit: AngleUnit, exclusive: bool) -> bytes:
    """Bytes of one finger view; raises TemplateError if the view cannot be represented."""
    t.validate()
    if not (0 <= t.finger_position <= 15 and 0 <= t.view_number <= 15 and 0 <= t.impression_type <= 15):
        raise TemplateError("finger position, view number and impression type must fit 4 bits")
    m = t.minutiae
    if len(m) and ((m["x"] > 0x3FFF).any() or (m["y"] > 0x3FFF).any()):
        raise TemplateError("minutia coordinates must fit 14 bits")
    out = bytearray(struct.pack(">BBBB", t.finger_position, (t.view_number << 4) | t.impression_type,
                                t.quality, len(m)))
    raw = np.zeros((len(m), 6), np.uint8)
    xw = (m["kind"].astype(np.uint16) << 14) | m["x"]
    raw[:, 0], raw[:, 1] = xw >> 8, xw & 0xFF
    raw[:, 2], raw[:, 3] = m["y"] >> 8, m["y"] & 0xFF
    raw[:, 4] = unit.encode(m["angle"])
    raw[:, 5] = m["quality"]
    out += raw.tobytes()
    ext = bytearray()
    for type_id, data in t.extended:
        length = len(data) + (0 if exclusive else 4)
        if not (0 <= type_id <= 0xFFFF) or length > 0xFFFF:
            raise TemplateError("extended data block too large or bad type id")
        ext += struct.pack(">HH", type_id, length) + data
    if len(ext) > 0xFFFF:
        raise TemplateError("extended data over 65535 bytes")
    out += struct.pack(">H", len(ext)) + ext
    return bytes(out)


def check_views(count: int, r: Reader) -> None:
    if count > MAX_VIEWS:
        raise r.fail(f"{count} finger views; at most {MAX_VIEWS}")


def ppcm_to_dpi(ppcm: int) -> float:
    return ppcm * 2.54


def dpi_to_ppcm(dpi: float) -> int:
    return int(round(dpi / 2.54))


__all__ = ["AngleUnit", "Reader", "read_view", "write_view", "check_views", "MAX_VIEWS", "MAX_MINUTIAE",
           "ppcm_to_dpi", "dpi_to_ppcm"]


def read_geometry_and_views(r: Reader, data: bytes, unit: AngleUnit, extra: dict) -> tuple[int, list[Template]]:
    """The part ISO 19794-2:2005 and ANSI 378-2004 records share after their own header fields:
    capture equipment, image size, resolution, the finger views, nothing after them.

    Returns (capture equipment, views); ``extra`` gains ``image_size`` and ``resolution_ppcm``."""
    equipment = r.u16("capture equipment")
    width, height = r.u16("image width"), r.u16("image height")
    xr, yr = r.u16("x resolution"), r.u16("y resolution")
    if xr == 0:
        raise r.fail("resolution 0", r.pos - 4)
    count = r.u8("finger view count")
    check_views(count, r)
    r.u8("reserved")
    extra.update(image_size=(width, height), resolution_ppcm=(xr, yr))
    views = [read_view(r, width, height, ppcm_to_dpi(xr), unit, extra) for _ in range(count)]
    if r.pos != len(data):
        raise r.fail(f"{len(data) - r.pos} bytes after the last finger view")
    return equipment, views
