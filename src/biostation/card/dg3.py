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

Each finger image is an ISO/IEC 19794-4:2005 record (one finger a record), written and read by
the project's one 19794-4 codec, :mod:`biostation.records.iso19794_4` (which also reads the 2011
edition, should a chip carry it). Compression codes (2005): 0 raw, 1 bit-packed, 2 WSQ, 3 JPEG,
4 JPEG 2000, 5 PNG. Images are written as JPEG 2000 (Pillow's OpenJPEG), the code ICAO
recommends next to WSQ; WSQ images decode when the ``wsq`` package (a Pillow plugin) is there.
Quality is the 19794-4 finger quality, 0..100, 0 = not reported (chips written by earlier
versions carry 254, which is read as such).

Decoding raises :class:`~biostation.errors.TLVError` (structure, with the offset in the data
group) or :class:`~biostation.errors.ImageError` (an image that does not decode, naming the
finger). Images and templates are personal data: never logged.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

from ..errors import ImageError, RecordError, RecordFormatError, TemplateError, TLVError
from ..records import FingerPosition, iso19794_4
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
    quality: int = 0  # 0..100; 0: not reported
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
                       quality: int = 0, impression: int = 0) -> FingerImage:
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


# --- ISO/IEC 19794-4 (the codec of biostation.records) ---------------------------------------------

def _encode_fir(f: FingerImage) -> bytes:
    view = iso19794_4.FingerView(int(f.position), f.image, f.width, f.height, f.quality, f.impression, f.view, 1)
    record = iso19794_4.FingerImageRecord([view], iso19794_4.Compression(f.compression), (f.ppi, f.ppi),
                                          (f.ppi, f.ppi), f.pixel_depth, iso19794_4.acquisition_level(f.ppi))
    try:
        return iso19794_4.encode(record, iso19794_4.EDITION_2005)
    except RecordError as exc:
        raise ImageError(f"{f.position.name.lower()}: {exc}") from None


def _decode_fir(data: bytes, src: str, base: int) -> list[FingerImage]:
    """The finger images of one 19794-4 record (either edition; ICAO writes 2005). A record
    shorter than its data block is read up to its declared length, as chips pad blocks."""
    if data[:4] == b"FIR\x00" and data[4:8] == iso19794_4.VERSION and len(data) >= 14:
        total = int.from_bytes(data[8:14], "big")
        if iso19794_4.HEADER_LEN <= total < len(data):
            data = data[:total]
    try:
        record = iso19794_4.decode(data)
    except RecordFormatError as exc:
        raise TLVError(f"ISO 19794-4 record: {exc}", src, base + (exc.offset or 0)) from None
    units, ppi = record.scale_units, record.image_ppi[0]
    ppi = round(ppi * 2.54) if units == 2 else ppi
    compression = 4 if record.compression == iso19794_4.Compression.JPEG2000_LOSSLESS else int(record.compression)
    out = []
    for v in record.views:
        if v.width == 0 or v.height == 0:
            raise TLVError("finger image of zero width or height", src, base)
        try:
            position = FingerPosition(v.position)
        except ValueError:
            raise TLVError(f"finger position {v.position} is not defined", src, base) from None
        out.append(FingerImage(position, v.data, compression, v.width, v.height, ppi, v.quality, v.impression,
                               record.pixel_depth, v.view_number))
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
