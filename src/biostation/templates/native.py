"""biostation's own template formats: a compact versioned binary and a JSON rendering.

Binary layout, little-endian, version 1 (``BSTM``)::

    magic "BSTM" | version u8 = 1 | view count u8 | capture equipment u16
    per view:
        width u16 | height u16 | dpi f64 | finger position u8 | impression u8 | quality u8
        | view number u8 | minutia count u16 | extended block count u16 | reason length u16
        minutiae: count x (x u16, y u16, angle f32 radians, kind u8, quality u8)   10 bytes each
        extended: count x (type u16, length u32, data)
        reason: UTF-8
    CRC-32 (zlib) u32 of every byte before it

Angles are kept as float32 radians, not quantized, so ``Template -> bytes -> Template`` is exact
for every valid template (not only for ISO-quantized ones). Interop header fields of ISO/ANSI
records (``TemplateRecord.extra``) are not kept: convert back through those codecs to keep them.
A future layout gets a new version number; this reader refuses versions it does not know with
:class:`~biostation.errors.TemplateVersionError`.
"""

from __future__ import annotations

import json
import struct
import zlib

import numpy as np

from ..errors import TemplateError, TemplateFormatError, TemplateVersionError
from ._fmr import Reader
from .model import MAX_MINUTIAE, MINUTIA_DTYPE, Template, TemplateRecord

MAGIC = b"BSTM"
VERSION = 1
_VIEW = struct.Struct("<HHdBBBBHHH")
_PACKED = np.dtype([("x", "<u2"), ("y", "<u2"), ("angle", "<f4"), ("kind", "u1"), ("quality", "u1")])
JSON_FORMAT = "biostation-template"
JSON_VERSION = 1
MAX_VIEWS = 255


class NativeCodec:
    """The compact binary format. Stateless and thread-safe."""

    name = "biostation native v1"

    def encode(self, record: TemplateRecord) -> bytes:
        if len(record.views) > MAX_VIEWS:
            raise TemplateError(f"at most {MAX_VIEWS} views")
        out = bytearray(MAGIC + struct.pack("<BBH", VERSION, len(record.views), record.capture_equipment & 0xFFFF))
        for t in record.views:
            t.validate()
            reason = t.reason.encode("utf-8")
            if len(reason) > 0xFFFF or len(t.extended) > 0xFFFF:
                raise TemplateError("reason or extended data too long")
            if not all(0 <= v <= 255 for v in (t.finger_position, t.impression_type, t.quality, t.view_number)):
                raise TemplateError("finger position, impression, quality and view number must fit a byte")
            out += _VIEW.pack(t.width, t.height, float(t.dpi), t.finger_position, t.impression_type, t.quality,
                              t.view_number, len(t.minutiae), len(t.extended), len(reason))
            out += t.minutiae.astype(_PACKED).tobytes()
            for type_id, data in t.extended:
                if not 0 <= type_id <= 0xFFFF or len(data) > 0xFFFFFFFF:
                    raise TemplateError("bad extended block")
                out += struct.pack("<HI", type_id, len(data)) + bytes(data)
            out += reason
        out += struct.pack("<I", zlib.crc32(out))
        return bytes(out)

    def decode(self, data: bytes) -> TemplateRecord:
        data = bytes(data)
        r = Reader(data, "native template")
        if bytes(r.take(4, "magic")) != MAGIC:
            raise r.fail("not a biostation template (no 'BSTM')", 0)
        version = r.u8("version")
        if version != VERSION:
            raise TemplateVersionError(f"native template version {version}; this reader knows {VERSION}")
        if len(data) < 12:
            raise r.fail("truncated", len(data))
        (crc,) = struct.unpack("<I", data[-4:])
        if zlib.crc32(data[:-4]) != crc:
            raise TemplateFormatError("native template: CRC mismatch (truncated or corrupted)", len(data) - 4)
        count = r.u8("view count")
        equipment = int.from_bytes(r.take(2, "capture equipment"), "little")
        views = []
        for _ in range(count):
            at = r.pos
            w, h, dpi, pos, imp, q, vn, n, n_ext, n_reason = _VIEW.unpack(r.take(_VIEW.size, "view header"))
            if n > MAX_MINUTIAE:
                raise r.fail(f"{n} minutiae; at most {MAX_MINUTIAE}", at)
            m = np.frombuffer(r.take(n * _PACKED.itemsize, "minutiae"), dtype=_PACKED).astype(MINUTIA_DTYPE)
            ext = []
            for _ in range(n_ext):
                type_id = int.from_bytes(r.take(2, "extended type"), "little")
                length = int.from_bytes(r.take(4, "extended length"), "little")
                ext.append((type_id, bytes(r.take(length, "extended data"))))
            try:
                reason = bytes(r.take(n_reason, "reason")).decode("utf-8")
            except UnicodeDecodeError:
                raise r.fail("reason is not UTF-8") from None
            t = Template(width=w, height=h, dpi=dpi, minutiae=m, finger_position=pos, impression_type=imp,
                         quality=q, view_number=vn, extended=ext, reason=reason)
            try:
                t.validate()
            except TemplateError as exc:
                raise r.fail(str(exc), at) from None
            views.append(t)
        if r.pos != len(data) - 4:
            raise r.fail(f"{len(data) - 4 - r.pos} unexpected bytes before the CRC")
        return TemplateRecord(views=views, capture_equipment=equipment)


class JsonCodec:
    """A readable JSON rendering (for inspection and the ``extract --format json`` output).

    Angles are written as the float32 values' shortest decimal form, so a round trip is exact.
    Extended blocks are hex strings.
    """

    name = "biostation JSON v1"

    def encode(self, record: TemplateRecord) -> bytes:
        views = []
        for t in record.views:
            t.validate()
            views.append({
                "width": t.width, "height": t.height, "dpi": float(t.dpi),
                "finger_position": t.finger_position, "impression_type": t.impression_type,
                "quality": t.quality, "view_number": t.view_number, "reason": t.reason,
                "extended": [[tid, bytes(d).hex()] for tid, d in t.extended],
                "minutiae": [[int(m["x"]), int(m["y"]), float(np.float32(m["angle"])), int(m["kind"]),
                              int(m["quality"])] for m in t.minutiae],
            })
        doc = {"format": JSON_FORMAT, "version": JSON_VERSION, "capture_equipment": record.capture_equipment,
               "views": views}
        return json.dumps(doc, indent=1).encode("utf-8")

    def decode(self, data: bytes) -> TemplateRecord:
        try:
            doc = json.loads(bytes(data).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise TemplateFormatError(f"JSON template: {exc}") from None
        if not isinstance(doc, dict) or doc.get("format") != JSON_FORMAT:
            raise TemplateFormatError("JSON template: not a biostation template")
        if doc.get("version") != JSON_VERSION:
            raise TemplateVersionError(f"JSON template version {doc.get('version')!r}; this reader knows {JSON_VERSION}")
        try:
            views = []
            for v in doc["views"]:
                rows = v["minutiae"]
                if len(rows) > MAX_MINUTIAE:
                    raise TemplateFormatError(f"JSON template: {len(rows)} minutiae; at most {MAX_MINUTIAE}")
                m = np.zeros(len(rows), MINUTIA_DTYPE)
                for i, row in enumerate(rows):
                    x, y, a, k, q = row
                    if not all(isinstance(c, int) and 0 <= c <= 0xFFFF for c in (x, y, k, q)):
                        raise TemplateFormatError(f"JSON template: bad minutia {i}")
                    m[i] = (x, y, np.float32(a), k, q)
                t = Template(width=int(v["width"]), height=int(v["height"]), dpi=float(v["dpi"]), minutiae=m,
                             finger_position=int(v["finger_position"]), impression_type=int(v["impression_type"]),
                             quality=int(v["quality"]), view_number=int(v["view_number"]), reason=str(v["reason"]),
                             extended=[(int(tid), bytes.fromhex(h)) for tid, h in v["extended"]])
                t.validate()
                views.append(t)
            return TemplateRecord(views=views, capture_equipment=int(doc.get("capture_equipment", 0)))
        except TemplateError:
            raise
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise TemplateFormatError(f"JSON template: {type(exc).__name__}: {exc}") from None
