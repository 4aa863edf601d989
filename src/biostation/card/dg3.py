"""DG3 of an eMRTD: CBEFF-wrapped fingerprint records (Doc 9303-10 §4.7.3).

DG3 holds one biometric information template per finger::

    63 DG3
      7F61 biometric information group template
        02 number of instances
        7F60 biometric information template
          A1 biometric header template: 80 version 0101, 81 type (08 finger), 82 subtype
             (finger position bits), 87 format owner 0101 (ISO/IEC JTC 1 SC 37), 88 format type
             (0007 finger image, ISO/IEC 19794-4; 0001 finger minutiae, ISO/IEC 19794-2)
          5F2E biometric data block: the record

An ISO/IEC 19794-4:2005 finger image record is a 32-byte general header (``"FIR\\0"``,
``"010\\0"``, record length on 6 bytes, capture device, acquisition level, number of fingers,
scale units, scan and image resolutions, pixel depth, compression, reserved) then per finger a
14-byte header (block length, position, views, view number, quality, impression, width,
height, reserved) and the image. Compression codes: 0 raw, 1 bit-packed, 2 WSQ, 3 JPEG,
4 JPEG 2000, 5 PNG. Images are written as JPEG 2000 (Pillow's OpenJPEG), the code ICAO
recommends next to WSQ; WSQ images decode when the ``wsq`` package (a Pillow plugin) is there.

This is a deliberately small codec kept inside ``card/``; the full 19794-4 reader/writer lives
with the other biometric records in :mod:`biostation.records` and the two should be one.
Decoding raises :class:`~biostation.errors.TLVError` (structure, with the offset in the data
group) or :class:`~biostation.errors.ImageError` (an image that does not decode, naming the
finger). Images and templates are personal data: never logged.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field
from typing import Any

from ..errors import ImageError, TemplateError, TLVError
from ..records import FingerPosition
from . import tlv

__all__ = ["COMPRESSION", "DG3", "FingerImage", "FingerTemplate", "decode_dg3", "encode_dg3", "finger_from_pixels",
           "subtype_of"]

#: ISO/IEC 19794-4:2005 image compression algorithm codes
COMPRESSION = {0: "raw", 1: "bitpacked", 2: "wsq", 3: "jpeg", 4: "jp2", 5: "png"}
FORMAT_FINGER_IMAGE, FORMAT_FINGER_MINUTIAE = 0x0007, 0x0001
_IMPRESSION = {0: "live-scan plain", 1: "live-scan rolled", 2: "non-live plain", 3: "non-live rolled"}


def subtype_of(position: int) -> int:
    """CBEFF biometric subtype of a finger position: bit 1 right, bit 2 left, then 1 thumb,
    2 index, 3 middle, 4 ring, 5 little in bits 3-5 (Doc 9303-10 §4.7.3, table)."""
    if 1 <= position <= 5:
        return 0x01 | (position << 2)
    if 6 <= position <= 10:
        return 0x02 | ((position - 5) << 2)
    return 0


@dataclass
class FingerImage:
    """One finger image of a 19794-4 record. ``image`` is the encoded image as stored."""

    position: FingerPosition
    image: bytes = field(repr=False)
    compression: int  # COMPRESSION code
    width: int
    height: int
    ppi: int = 500
    quality: int = 254  # 254: not computed (19794-4)
    impression: int = 0  # 0 live-scan plain
    pixel_depth: int = 8
    view: int = 1

    @property
    def format(self) -> str:
        return COMPRESSION.get(self.compression, f"code {self.compression}")

    def pixels(self) -> Any:
        """The image as a ``uint8`` numpy array (height x width). ImageError when it does not
        decode or its size differs from the record's."""
        import numpy as np

        name = self.position.name.lower()
        if self.compression == 0:
            if self.pixel_depth != 8 or len(self.image) != self.width * self.height:
                raise ImageError(f"{name}: raw image of {len(self.image)} bytes for {self.width}x{self.height}")
            return np.frombuffer(self.image, np.uint8).reshape(self.height, self.width).copy()
        if self.compression == 2:
            try:
                import wsq  # noqa: F401  (registers the WSQ plugin with Pillow)
            except ImportError:
                raise ImageError(f"{name}: WSQ image, and the 'wsq' package is not installed") from None
        if self.compression not in (2, 3, 4, 5):
            raise ImageError(f"{name}: image compression {self.format} is not supported")
        from PIL import Image

        try:
            with Image.open(io.BytesIO(self.image)) as im:
                if im.size != (self.width, self.height):  # checked before decoding: no bomb
                    raise ImageError(f"{name}: image is {im.size[0]}x{im.size[1]}, the record says "
                                     f"{self.width}x{self.height}")
                im.load()
                return np.asarray(im.convert("L"))
        except ImageError:
            raise
        except Exception as exc:  # Pillow raises many types for broken data
            raise ImageError(f"{name}: the {self.format} image does not decode ({type(exc).__name__})") from None

    def to_dict(self) -> dict[str, Any]:
        return {"position": self.position.name.lower(), "format": self.format, "width": self.width,
                "height": self.height, "ppi": self.ppi, "quality": self.quality,
                "impression": _IMPRESSION.get(self.impression, str(self.impression)), "bytes": len(self.image)}


@dataclass
class FingerTemplate:
    """An ISO/IEC 19794-2 minutiae record found in DG3 (optional next to the images)."""

    position: FingerPosition
    record: bytes = field(repr=False)

    def decode(self) -> Any:
        """The :class:`biostation.templates.model.TemplateRecord`; TemplateError when malformed."""
        from ..templates import codecs

        return codecs.decode(self.record, "iso19794-2")


@dataclass
class DG3:
    fingers: list[FingerImage]
    templates: list[FingerTemplate] = field(default_factory=list)

    def finger(self, position: int) -> FingerImage | None:
        return next((f for f in self.fingers if f.position == position), None)


def finger_from_pixels(pixels: Any, position: int, *, ppi: int = 500, fmt: str = "jp2", ratio: float = 10.0,
                       quality: int = 254, impression: int = 0) -> FingerImage:
    """Encode a grayscale image (2-D uint8 array) as a finger image: ``fmt`` ``jp2`` (JPEG 2000
    at compression ``ratio``:1, the default) or ``raw``. ImageError for a non-image."""
    import numpy as np

    arr = np.asarray(pixels)
    if arr.ndim != 2 or arr.dtype != np.uint8 or min(arr.shape) < 16 or max(arr.shape) > 0xFFFF:
        raise ImageError(f"finger image must be a 2-D uint8 array of 16..65535 pixels a side, got "
                         f"{arr.dtype} {arr.shape}")
    h, w = arr.shape
    if fmt == "raw":
        return FingerImage(FingerPosition(position), arr.tobytes(), 0, w, h, ppi, quality, impression)
    if fmt != "jp2":
        raise ValueError(f"finger image format {fmt!r}: jp2 or raw")
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr, "L").save(buf, "JPEG2000", quality_mode="rates", quality_layers=[ratio], irreversible=True)
    return FingerImage(FingerPosition(position), buf.getvalue(), 4, w, h, ppi, quality, impression)


# --- ISO/IEC 19794-4:2005 ---------------------------------------------------------------------------

def _encode_fir(f: FingerImage) -> bytes:
    block = struct.pack(">IBBBBBHHB", 14 + len(f.image), int(f.position), 1, f.view, f.quality, f.impression,
                        f.width, f.height, 0) + f.image
    total = 32 + len(block)
    head = (b"FIR\x00" + b"010\x00" + total.to_bytes(6, "big")
            + struct.pack(">HHBBHHHHBBH", 0, 31, 1, 1, f.ppi, f.ppi, f.ppi, f.ppi, f.pixel_depth, f.compression, 0))
    return head + block


def _decode_fir(data: bytes, src: str, base: int) -> list[FingerImage]:
    if len(data) < 32 or data[:4] != b"FIR\x00":
        raise TLVError("ISO 19794-4 record does not start with 'FIR\\0'", src, base)
    if data[4:8] != b"010\x00":
        raise TLVError(f"ISO 19794-4 version {data[4:7]!r} is not read here (010 only)", src, base + 4)
    total = int.from_bytes(data[8:14], "big")
    if total > len(data) or total < 32:
        raise TLVError(f"19794-4 record claims {total} bytes, {len(data)} present", src, base + 8)
    (_dev, _level, count, units, _hs, _vs, hres, vres, depth, compression, _r) = struct.unpack(
        ">HHBBHHHHBBH", data[14:32])
    ppi = hres if units == 1 else round(hres * 2.54) if units == 2 else hres
    pos, out = 32, []
    for _ in range(count):
        if pos + 14 > total:
            raise TLVError("finger image header truncated", src, base + pos)
        blen, fpos, _views, view, quality, impression, w, h, _res = struct.unpack(">IBBBBBHHB", data[pos:pos + 14])
        if blen < 14 or pos + blen > total:
            raise TLVError(f"finger image block of {blen} bytes does not fit the record", src, base + pos)
        if w == 0 or h == 0:
            raise TLVError("finger image of zero width or height", src, base + pos + 9)
        try:
            position = FingerPosition(fpos)
        except ValueError:
            raise TLVError(f"finger position {fpos} is not defined", src, base + pos + 4) from None
        out.append(FingerImage(position, bytes(data[pos + 14:pos + blen]), compression, w, h, ppi, quality,
                               impression, depth, view))
        pos += blen
    return out


# --- DG3 --------------------------------------------------------------------------------------------

def _bht(subtype: int, fmt_type: int) -> bytes:
    return tlv.encode(0xA1, [tlv.encode(0x80, b"\x01\x01"), tlv.encode(0x81, b"\x08"),
                             tlv.encode(0x82, bytes([subtype])), tlv.encode(0x87, b"\x01\x01"),
                             tlv.encode(0x88, fmt_type.to_bytes(2, "big"))])


def encode_dg3(fingers: list[FingerImage], templates: list[FingerTemplate] | tuple[FingerTemplate, ...] = ()) -> bytes:
    """DG3 with one BIT per finger image (and per template, when given)."""
    bits = [tlv.encode(0x7F60, _bht(subtype_of(f.position), FORMAT_FINGER_IMAGE) + tlv.encode(0x5F2E, _encode_fir(f)))
            for f in fingers]
    bits += [tlv.encode(0x7F60, _bht(subtype_of(t.position), FORMAT_FINGER_MINUTIAE) + tlv.encode(0x5F2E, t.record))
             for t in templates]
    return tlv.encode(0x63, tlv.encode(0x7F61, [tlv.encode(0x02, bytes([len(bits)]))] + bits))


def decode_dg3(data: bytes, source: str = "DG3") -> DG3:
    """Finger images (19794-4) and templates (19794-2) of a DG3. TLVError when malformed; the
    images themselves are decoded by :meth:`FingerImage.pixels`."""
    top = tlv.decode_one(data, source, expect=0x63, allow_trailing=True)
    group = top.child(0x7F61)
    out = DG3([])
    for bit in group.children:
        if bit.tag == 0x02:
            continue
        if bit.tag != 0x7F60:
            raise TLVError(f"biometric information template expected, tag {bit.tag:X}", source, bit.offset)
        block = bit.find(0x5F2E) or bit.find(0x7F2E)
        if block is None:
            raise TLVError("biometric data block 5F2E missing", source, bit.offset)
        rec = block.value
        if rec[:4] == b"FIR\x00":
            out.fingers.extend(_decode_fir(rec, source, block.value_offset))
        elif rec[:4] == b"FMR\x00":
            bht = bit.find(0xA1)
            sub = bht.find(0x82) if bht is not None else None
            position = _position_of_subtype(sub.value[0] if sub is not None and sub.value else 0)
            tmpl = FingerTemplate(position, bytes(rec))
            try:
                tmpl.decode()
            except (TemplateError, ValueError) as exc:
                raise TLVError(f"19794-2 template does not decode: {exc}", source, block.value_offset) from None
            out.templates.append(tmpl)
        else:
            raise TLVError("biometric data block is neither a 19794-4 nor a 19794-2 record", source,
                           block.value_offset)
    if not out.fingers and not out.templates:
        raise TLVError("no finger record", source, group.offset)
    return out


def _position_of_subtype(sub: int) -> FingerPosition:
    finger = (sub >> 2) & 0x07
    if not 1 <= finger <= 5:
        return FingerPosition.UNKNOWN
    return FingerPosition(finger if sub & 0x01 else finger + 5 if sub & 0x02 else 0)
