"""ISO/IEC 19794-2:2005 finger minutiae record (the "FMR" record, version " 20").

Record header, 24 bytes, big-endian (ISO/IEC 19794-2:2005 clause 7.3):
``"FMR\\0"``, version ``" 20\\0"``, record length (4), capture equipment (2: 4 bits
certification + 12 bits device type), image width and height (2 + 2, pixels), horizontal and
vertical resolution (2 + 2, pixels per centimetre), number of finger views (1), reserved (1).
Then the finger views (see :mod:`._fmr`); directions in units of 360/256 degrees.
"""

from __future__ import annotations

import struct

from ..errors import TemplateError, TemplateVersionError
from ._fmr import AngleUnit, Reader, dpi_to_ppcm, read_geometry_and_views, write_view
from .model import TemplateRecord

MAGIC = b"FMR\x00"
VERSION = b" 20\x00"
HEADER_LEN = 24
UNIT = AngleUnit(256)


def record_geometry(record: TemplateRecord) -> tuple[int, int, int, int]:
    """(width, height, x ppcm, y ppcm) the header will carry; views must agree."""
    if record.views:
        v0 = record.views[0]
        for v in record.views[1:]:
            if (v.width, v.height, v.dpi) != (v0.width, v0.height, v0.dpi):
                raise TemplateError("all views of one record must share image size and resolution")
        xr = dpi_to_ppcm(v0.dpi)
        yr = xr
        saved = record.extra.get("resolution_ppcm")
        if saved and saved[0] == xr:
            yr = int(saved[1])
        w, h = v0.width, v0.height
    else:
        w, h = record.extra.get("image_size", (0, 0))
        xr, yr = record.extra.get("resolution_ppcm", (0, 0))
    if not all(0 <= int(v) <= 0xFFFF for v in (w, h, xr, yr)):
        raise TemplateError("image size or resolution does not fit 16 bits")
    return int(w), int(h), int(xr), int(yr)


class Iso19794_2Codec:
    """Reader/writer of ISO/IEC 19794-2:2005 records. Stateless and thread-safe."""

    name = "ISO/IEC 19794-2:2005"

    def decode(self, data: bytes) -> TemplateRecord:
        r = Reader(data, "ISO 19794-2 record")
        if bytes(r.take(4, "format identifier")) != MAGIC:
            raise r.fail("not a finger minutiae record (no 'FMR\\0')", 0)
        version = bytes(r.take(4, "version"))
        if version != VERSION:
            raise TemplateVersionError(f"ISO 19794-2 version {version!r} is not read (only ' 20\\0', 2005)")
        length = r.u32("record length")
        if length != len(data):
            raise r.fail(f"record length {length} but {len(data)} bytes given", 8)
        extra: dict = {}
        equipment, views = read_geometry_and_views(r, data, UNIT, extra)
        return TemplateRecord(views=views, capture_equipment=equipment, extra=extra)

    def encode(self, record: TemplateRecord) -> bytes:
        w, h, xr, yr = record_geometry(record)
        if len(record.views) > 255:
            raise TemplateError("at most 255 finger views in one record")
        exclusive = bool(record.extra.get("ext_length_exclusive"))
        body = b"".join(write_view(v, UNIT, exclusive) for v in record.views)
        total = HEADER_LEN + len(body)
        head = MAGIC + VERSION + struct.pack(">IHHHHHBB", total, record.capture_equipment & 0xFFFF, w, h,
                                             xr, yr, len(record.views), 0)
        return head + body
