"""ANSI INCITS 378-2004 finger minutiae record.

Record header, big-endian (ANSI INCITS 378-2004 clause 6.4): ``"FMR\\0"``, version
``" 20\\0"``, record length (2 bytes; when 0, the next 4 bytes hold it, for records over
65535 bytes), CBEFF product identifier (4: owner 2 + type 2), capture equipment (2),
image width and height (2 + 2), horizontal and vertical resolution (2 + 2, pixels per
centimetre), number of finger views (1), reserved (1). Then the finger views (see
:mod:`._fmr`); directions in units of 2 degrees (codes 0..179).
"""

from __future__ import annotations

import struct

from ..errors import TemplateError, TemplateVersionError
from ._fmr import AngleUnit, Reader, read_geometry_and_views, write_view
from .iso19794_2 import MAGIC, VERSION, record_geometry
from .model import TemplateRecord

UNIT = AngleUnit(180)


class Ansi378Codec:
    """Reader/writer of ANSI INCITS 378-2004 records. Stateless and thread-safe."""

    name = "ANSI INCITS 378-2004"

    def decode(self, data: bytes) -> TemplateRecord:
        r = Reader(data, "ANSI 378 record")
        if bytes(r.take(4, "format identifier")) != MAGIC:
            raise r.fail("not a finger minutiae record (no 'FMR\\0')", 0)
        version = bytes(r.take(4, "version"))
        if version != VERSION:
            raise TemplateVersionError(f"ANSI 378 version {version!r} is not read (only ' 20\\0', 2004)")
        length = r.u16("record length")
        long_form = length == 0
        if long_form:
            length = r.u32("record length (long form)")
        if length != len(data):
            raise r.fail(f"record length {length} but {len(data)} bytes given", 8)
        extra: dict = {"cbeff_product_id": r.u32("CBEFF product identifier")}
        if long_form and length <= 0xFFFF:
            extra["long_length"] = True
        equipment, views = read_geometry_and_views(r, data, UNIT, extra)
        return TemplateRecord(views=views, capture_equipment=equipment, extra=extra)

    def encode(self, record: TemplateRecord) -> bytes:
        w, h, xr, yr = record_geometry(record)
        if len(record.views) > 255:
            raise TemplateError("at most 255 finger views in one record")
        exclusive = bool(record.extra.get("ext_length_exclusive"))
        body = b"".join(write_view(v, UNIT, exclusive) for v in record.views)
        rest = struct.pack(">IHHHHHBB", int(record.extra.get("cbeff_product_id", 0)) & 0xFFFFFFFF,
                           record.capture_equipment & 0xFFFF, w, h, xr, yr, len(record.views), 0)
        short_total = 8 + 2 + len(rest) + len(body)
        if short_total <= 0xFFFF and not record.extra.get("long_length"):
            return MAGIC + VERSION + struct.pack(">H", short_total) + rest + body
        return MAGIC + VERSION + struct.pack(">HI", 0, short_total + 4) + rest + body
