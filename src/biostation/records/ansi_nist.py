"""ANSI/NIST-ITL 1-2011 (Update:2015) transactions in the traditional encoding: read and write.

A transaction is a Type-1 record followed by the records its field 1.003 (CNT) lists. Two kinds
of record exist in the traditional encoding (ANSI/NIST-ITL 1-2011 Annex B):

* **tagged** records (Types 1, 2, 9, 10, 13-17, 19-22, 98, 99): fields ``T.NNN:value`` separated
  by GS (1D); inside a value, subfields are separated by RS (1E) and information items by US
  (1F); the record ends with FS (1C). Field ``T.001`` is the record's length in bytes, ``T.002``
  its IDC. Field 999, when present, is the last one and holds binary data (an image) that runs
  to the closing FS.
* **binary** records (Types 3-8): a fixed big-endian header (length in 4 bytes, IDC in 1, then
  the type's own fields) followed by the image; nothing marks their type, which is read from CNT.

:func:`read_transaction` keeps every field as the bytes it was written with, in file order, so
``read_transaction(data).encode() == data`` for every well-formed transaction (NIST's reference
files in ``../shared/specs/ansi-nist-reference/`` included). :meth:`Record.image` decodes the
image of any image record (WSQ, baseline and lossless JPEG, JPEG 2000, PNG, raw 8/16/24-bit,
packed 1-bit, and the TIFF/Group 4 signatures of Type-8) to a numpy array and checks its size
against the record's own fields. :func:`build_transaction` (in :mod:`.builder`) writes the
transaction of an enrollment.

Text. Type-1 is 7-bit ASCII. Other text fields are Latin-1 unless field 1.015 (DCS) names
UTF-8 (code 003), which is what the builder writes when a value is not ASCII.

Why not the PyPI ``nistitl`` package: it parses NIST's reference files, but re-encodes them
differently (it rewrites IDCs such as ``01`` as ``1``, so lengths and bytes change), keeps
binary records 3-8 as opaque bytes, locates the image field by searching for the text ``999:``,
raises its own exception family, and knows nothing of images; what biostation needs from the
format (exact round trips, typed errors, decoded and checked images) is this module.

Errors: malformed bytes raise :class:`~biostation.errors.RecordFormatError` naming the record
and byte offset; an image that does not decode, or decodes to another size than its record
says, raises :class:`~biostation.errors.RecordImageError`. No other exception escapes.
Thread-safe: records are plain data; nothing is cached or shared.
"""

from __future__ import annotations

import io
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import RecordError, RecordFormatError, RecordImageError
from ..fsio import write_atomic
from . import wsq

__all__ = ["FS", "GS", "RS", "US", "VERSION", "BINARY_TYPES", "Record", "Transaction", "ImageInfo",
           "read_transaction", "write_file", "encode_value"]

FS, GS, RS, US = b"\x1c", b"\x1d", b"\x1e", b"\x1f"
#: version written in field 1.002: ANSI/NIST-ITL 1-2011 Update:2015
VERSION = "0502"
#: record types that use the binary (fixed-header) layout in the traditional encoding
BINARY_TYPES = frozenset({3, 4, 5, 6, 7, 8})
#: the binary data field of tagged records
DATA_FIELD = 999

# Binary headers after LEN (4 bytes) and IDC (1 byte):
#   Types 3-6: IMP (1), FGP (6), ISR (1), HLL (2), VLL (2), GCA/BCA (1)        -> 18 bytes in all
#   Type 8:    SIG (1), SRT (1), ISR (1), HLL (2), VLL (2)                       -> 12 bytes in all
_T4 = struct.Struct(">IBB6sBHHB")
_T8 = struct.Struct(">IBBBBHH")
_T7 = struct.Struct(">IB")

#: compression codes of the binary records 3 and 4 (1-2011 table 15) by their tagged names
BINARY_CGA = {0: "NONE", 1: "WSQ20", 2: "JPEGB", 3: "JPEGL", 4: "JP2", 5: "JP2L", 6: "PNG"}
#: field numbers of the image description in tagged image records:
#: (HLL, VLL, SLC, THPS, TVPS, CGA, BPX or None, CSP or None)
_IMAGE_FIELDS = {
    10: (6, 7, 8, 9, 10, 11, None, 12),
    13: (6, 7, 8, 9, 10, 11, 12, None),
    14: (6, 7, 8, 9, 10, 11, 12, None),
    15: (6, 7, 8, 9, 10, 11, 12, None),
    16: (6, 7, 8, 9, 10, 11, 12, None),
    17: (6, 7, 8, 9, 10, 11, 12, 13),
    19: (6, 7, 8, 9, 10, 11, 12, None),
}
_TAG = re.compile(rb"(\d{1,2})\.(\d{1,4}):")


def encode_value(value: Any) -> bytes:
    """Bytes of one field value: a str or int, or subfields as a list of lists of items.

    ``"abc"`` -> ``abc``; ``[["a", "b"], ["c"]]`` -> ``a<US>b<RS>c``. Text is UTF-8; a value
    may not contain the separators FS, GS, RS or US (RecordError).
    """
    if isinstance(value, (bytes, bytearray)):
        raw = bytes(value)
        if any(s in raw for s in (FS, GS, RS, US)):
            raise RecordError("a raw field value may not contain FS, GS, RS or US")
        return raw
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        text = str(value)
        if any(ch in text for ch in "\x1c\x1d\x1e\x1f"):
            raise RecordError(f"field value {text[:20]!r} contains an ANSI/NIST separator")
        if text == "":
            raise RecordError("empty field value")
        return text.encode("utf-8")
    if isinstance(value, Sequence):
        subs = []
        for sub in value:
            items = [sub] if isinstance(sub, (str, int)) else list(sub)
            subs.append(US.join(encode_value(i) if i != "" else b"" for i in items))
        if not subs:
            raise RecordError("a field needs at least one subfield")
        return RS.join(subs)
    raise RecordError(f"cannot write a field value of type {type(value).__name__}")


@dataclass(frozen=True)
class ImageInfo:
    """What an image record says about its image.

    ``width``/``height`` in pixels; ``compression``: the tagged name (``NONE``, ``WSQ20``,
    ``JPEGB``, ``JPEGL``, ``JP2``, ``JP2L``, ``PNG``; binary records' codes mapped to these,
    ``BITS`` for 1-bit images, ``G4`` / ``TIFF`` for compressed binary images); ``bits``: bits
    per pixel (1, 8, 16 or 24), None when the record does not say; ``ppi``: horizontal
    resolution in pixels per inch, None when unknown (e.g. Type-10 with SLC 0).
    """

    width: int
    height: int
    compression: str
    bits: int | None
    ppi: float | None


@dataclass
class Record:
    """One record. Tagged records keep ``fields`` (field number -> value bytes as written, file
    order, without the data field) and ``data`` (field 999, None when absent). Binary records
    keep ``header`` (their fixed fields by mnemonic: ``IDC``, ``IMP``, ``FGP`` (tuple of 6),
    ``ISR``, ``HLL``, ``VLL``, ``GCA``/``BCA``; Type-8: ``SIG``, ``SRT``; Type-7: only ``IDC``)
    and ``data`` (the bytes after the header)."""

    type: int
    fields: dict[int, bytes] = field(default_factory=dict)
    data: bytes | None = None
    header: dict[str, Any] | None = None
    #: text encoding of the values (set from 1.015 by the reader and the builder)
    encoding: str = "latin-1"
    #: tag spellings as read (e.g. b"2.01"), so that a re-encoding is byte-identical
    tags: dict[int, bytes] = field(default_factory=dict, repr=False)

    @property
    def binary(self) -> bool:
        return self.type in BINARY_TYPES

    @property
    def idc(self) -> int:
        """Information designation character (0..99; 1.003 points at records by it; 0 for Type-1,
        whose field 2 is the version)."""
        if self.type == 1:
            return 0
        if self.binary:
            return int((self.header or {}).get("IDC", 0))
        raw = self.fields.get(2)
        if raw is None:
            raise RecordFormatError(f"Type-{self.type} record has no IDC (field 2)", f"Type-{self.type}")
        try:
            return int(raw)
        except ValueError:
            raise RecordFormatError(f"IDC {raw!r} is not a number", f"Type-{self.type}") from None

    # --- field access ------------------------------------------------------------------------
    def text(self, number: int) -> str | None:
        """The whole value of field ``number`` as text (separators kept), None when absent."""
        raw = self.fields.get(number)
        return None if raw is None else raw.decode(self.encoding, errors="replace")

    def subfields(self, number: int) -> list[list[str]]:
        """Field ``number`` split into subfields and information items ([] when absent)."""
        raw = self.fields.get(number)
        if raw is None:
            return []
        return [[i.decode(self.encoding, errors="replace") for i in sub.split(US)] for sub in raw.split(RS)]

    def integer(self, number: int, default: int | None = None) -> int | None:
        """Field ``number`` as an integer; ``default`` when absent; RecordFormatError if not a number."""
        raw = self.fields.get(number)
        if raw is None:
            return default
        try:
            return int(raw)
        except ValueError:
            raise RecordFormatError(f"field {self.type}.{number:03d} is {raw[:20]!r}, not a number",
                                    f"Type-{self.type}") from None

    def set(self, number: int, value: Any) -> None:
        """Set field ``number`` (see :func:`encode_value`); 1 (LEN) is computed on encoding."""
        if self.binary:
            raise RecordError("binary records have a fixed header; set record.header instead")
        if number in (1, DATA_FIELD) or not 1 <= number <= 999:
            raise RecordError(f"field {self.type}.{number:03d} cannot be set this way")
        self.fields[number] = encode_value(value)

    # --- images ------------------------------------------------------------------------------
    def image_info(self) -> ImageInfo | None:
        """The record's own description of its image; None for records without one."""
        where = f"Type-{self.type}"
        if self.binary:
            h = self.header or {}
            if self.type in (3, 4, 5, 6) or (self.type == 7 and "HLL" in h):
                res_mm = 19.69 if self.type in (4, 6, 7) else 9.84
                if self.type in (5, 6):
                    comp = "BITS" if h["BCA"] == 0 else "G4"
                    bits = 1
                else:
                    comp = BINARY_CGA.get(h["GCA"], f"code {h['GCA']}")
                    bits = 8
                return ImageInfo(h["HLL"], h["VLL"], comp, bits, res_mm * 25.4 if h["ISR"] == 0 else None)
            if self.type == 8:
                if h["SRT"] == 2:
                    return None  # vector signature: pen positions, not an image
                return ImageInfo(h["HLL"], h["VLL"], "NONE" if h["SRT"] == 0 else "TIFF", None,
                                 None)
            return None
        layout = _IMAGE_FIELDS.get(self.type)
        if layout is None or self.data is None:
            return None
        hll, vll, slc, thps, _tvps, cga, bpx, _csp = layout
        width, height = self.integer(hll), self.integer(vll)
        if width is None or height is None:
            raise RecordFormatError("image record without HLL/VLL", where)
        comp = (self.text(cga) or "NONE").strip().upper()
        bits = self.integer(bpx) if bpx is not None and self.fields.get(bpx, b"").isdigit() else None
        ppi = None
        scale = self.integer(slc, 0)
        if scale in (1, 2):
            px = self.integer(thps, 0) or 0
            ppi = float(px) if scale == 1 else px * 2.54
        return ImageInfo(width, height, comp, bits, ppi)

    def image(self) -> np.ndarray:
        """Decode the record's image: uint8 (or uint16 for 16-bit raw) array, (H, W) or (H, W, 3).

        The decoded size must equal the record's HLL x VLL, else RecordImageError. Also raised
        for a record without an image, and for an image coded in a way not decoded here
        (Group 4 binary images of Types 5/6, JPEG-LS).
        """
        info = self.image_info()
        if info is None or self.data is None:
            raise RecordImageError(f"Type-{self.type} record (IDC {self.idc}) holds no image")
        arr = _decode_image(self, info)
        if arr.shape[:2] != (info.height, info.width):
            raise RecordImageError(
                f"Type-{self.type} record (IDC {self.idc}): image decodes to {arr.shape[1]} x {arr.shape[0]} "
                f"but the record says {info.width} x {info.height}")
        return arr

    # --- encoding ----------------------------------------------------------------------------
    def encode(self) -> bytes:
        """The record's bytes; field 1 (LEN) or the binary length is computed."""
        if self.binary:
            return _encode_binary(self)
        body = bytearray()
        for number, value in self.fields.items():
            if number == 1:
                continue
            body += GS + self._tag(number) + b":" + value
        if self.data is not None:
            body += GS + self._tag(DATA_FIELD) + b":" + self.data
        body += FS
        head = self._tag(1) + b":"
        # LEN counts its own digits: find the fixed point
        n = len(head) + len(body)
        length = n + len(str(n))
        if len(str(length)) != len(str(n)):
            length = n + len(str(length))
        return head + str(length).encode() + bytes(body)

    def _tag(self, number: int) -> bytes:
        return self.tags.get(number) or f"{self.type}.{number:03d}".encode()


def _encode_binary(r: Record) -> bytes:
    h = r.header or {}
    data = r.data or b""
    try:
        if r.type in (3, 4, 5, 6) or (r.type == 7 and "HLL" in h):
            fgp = bytes(list(h.get("FGP", ()))[:6] + [255] * (6 - len(list(h.get("FGP", ())))))
            last = h["BCA"] if r.type in (5, 6) else h["GCA"]
            return _T4.pack(_T4.size + len(data), h["IDC"], h["IMP"], fgp, h["ISR"], h["HLL"], h["VLL"], last) + data
        if r.type == 8:
            return _T8.pack(_T8.size + len(data), h["IDC"], h["SIG"], h["SRT"], h["ISR"], h["HLL"], h["VLL"]) + data
        return _T7.pack(_T7.size + len(data), h["IDC"]) + data
    except (KeyError, struct.error) as exc:
        raise RecordError(f"Type-{r.type} header cannot be written: {exc}") from exc


# --- images --------------------------------------------------------------------------------------

def _pil(data: bytes, what: str, size: tuple[int, int] | None = None) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            if size is not None and im.size != size:
                # checked before the pixels are decoded: a damaged header cannot make us allocate
                raise RecordImageError(f"{what}: image is {im.size[0]} x {im.size[1]} but the record says "
                                       f"{size[0]} x {size[1]}")
            im.load()
            if im.mode in ("1", "P", "LA", "PA"):
                im = im.convert("L" if im.mode in ("1", "LA") else "RGB")
            elif im.mode in ("RGBA", "CMYK", "YCbCr"):
                im = im.convert("RGB")
            return np.asarray(im).copy()
    except RecordImageError:
        raise
    except Exception as exc:  # Pillow raises many kinds (OSError, SyntaxError, ...)
        raise RecordImageError(f"{what}: image does not decode ({exc})") from exc


def _lossless_jpeg(data: bytes, what: str) -> np.ndarray:
    # Neither Pillow nor OpenCV decodes lossless JPEG (SOF3); imagecodecs does.
    try:
        import imagecodecs
    except ImportError as exc:  # pragma: no cover - imagecodecs is a base dependency
        raise RecordImageError(f"{what}: lossless JPEG needs the imagecodecs package") from exc
    try:
        return np.asarray(imagecodecs.ljpeg_decode(data))
    except Exception as exc:
        raise RecordImageError(f"{what}: lossless JPEG does not decode ({exc})") from exc


def _raw(data: bytes, width: int, height: int, bits: int, what: str) -> np.ndarray:
    if bits == 1:
        row = (width + 7) // 8
        if len(data) != row * height:
            raise RecordImageError(f"{what}: {len(data)} bytes of 1-bit pixels, {width} x {height} needs {row * height}")
        bitsarr = np.unpackbits(np.frombuffer(data, np.uint8).reshape(height, row), axis=1)[:, :width]
        return (bitsarr * 255).astype(np.uint8)
    per = {8: 1, 16: 2, 24: 3}.get(bits)
    if per is None:
        raise RecordImageError(f"{what}: raw images of {bits} bits per pixel are not decoded")
    if len(data) != per * width * height:
        raise RecordImageError(f"{what}: {len(data)} bytes of raw pixels, {width} x {height} x {bits} bits "
                               f"needs {per * width * height}")
    if bits == 8:
        return np.frombuffer(data, np.uint8).reshape(height, width).copy()
    if bits == 16:
        return np.frombuffer(data, ">u2").reshape(height, width).astype(np.uint16)
    return np.frombuffer(data, np.uint8).reshape(height, width, 3).copy()


def _decode_image(r: Record, info: ImageInfo) -> np.ndarray:
    what = f"Type-{r.type} record (IDC {r.idc})"
    data = r.data or b""
    comp = info.compression
    size = (info.width, info.height)
    if comp in ("WSQ20", "WSQ"):
        head = wsq.info(data)
        if (head.width, head.height) != size:
            raise RecordImageError(f"{what}: WSQ image is {head.width} x {head.height} but the record says "
                                   f"{size[0]} x {size[1]}")
        return wsq.decode(data)
    if comp in ("JPEGB", "JP2", "JP2L", "PNG", "TIFF"):
        return _pil(data, what, size)
    if comp == "JPEGL":
        # some writers label baseline JPEG as JPEGL; decode what the stream really is
        return _lossless_jpeg(data, what) if b"\xff\xc3" in data[:4096] else _pil(data, what, size)
    if comp == "BITS":
        return _raw(data, info.width, info.height, 1, what)
    if comp == "NONE":
        bits = info.bits
        if bits is None:
            # Type-10/17 raw: the colour space says; Type-8: the data length says
            n = info.width * info.height
            if r.type == 8:
                bits = {n: 8, 3 * n: 24}.get(len(data), 1)
            else:
                csp = (r.text(_IMAGE_FIELDS.get(r.type, (0,) * 8)[7] or 0) or "").upper()
                bits = 8 if csp == "GRAY" else 24
        return _raw(data, info.width, info.height, bits, what)
    raise RecordImageError(f"{what}: images compressed as {comp!r} are not decoded here")


# --- reading -------------------------------------------------------------------------------------

def _split_tagged(buf: bytes, rtype: int, base: int) -> Record:
    """Parse one tagged record (``buf`` ends with FS)."""
    where = f"Type-{rtype} record"
    rec = Record(rtype)
    pos = 0
    end = len(buf) - 1  # the closing FS
    while pos < end:
        m = _TAG.match(buf, pos)
        if not m:
            raise RecordFormatError("expected a field tag 'T.NNN:'", where, base + pos)
        t, number = int(m.group(1)), int(m.group(2))
        if t != rtype:
            raise RecordFormatError(f"field tag {m.group(0)!r} inside a Type-{rtype} record", where, base + pos)
        if number in rec.fields or (number == DATA_FIELD and rec.data is not None):
            raise RecordFormatError(f"field {rtype}.{number:03d} appears twice", where, base + pos)
        vstart = m.end()
        if number == DATA_FIELD:
            rec.data = bytes(buf[vstart:end])
            rec.tags[number] = m.group(0)[:-1]
            pos = end
            break
        stop = buf.find(GS, vstart, end)
        stop = end if stop < 0 else stop
        value = bytes(buf[vstart:stop])
        if FS in value:
            raise RecordFormatError(f"field {rtype}.{number:03d} holds an FS before the record's end",
                                    where, base + vstart + value.index(FS))
        rec.fields[number] = value
        if m.group(0)[:-1] != f"{rtype}.{number:03d}".encode():
            rec.tags[number] = m.group(0)[:-1]
        pos = stop + 1 if stop < end else end
    if 1 not in rec.fields:
        raise RecordFormatError("record without field 1 (LEN)", where, base)
    return rec


def _tagged_length(data: bytes, pos: int, rtype: int) -> int:
    m = re.compile(rb"(\d{1,2})\.0*1:(\d{1,10})[\x1d\x1c]").match(data, pos)
    if not m:
        raise RecordFormatError(f"Type-{rtype} record does not start with its LEN field", f"Type-{rtype} record", pos)
    if int(m.group(1)) != rtype:
        raise RecordFormatError(f"record of Type-{int(m.group(1))} where 1.003 lists Type-{rtype}",
                                f"Type-{rtype} record", pos)
    return int(m.group(2))


def read_transaction(data: bytes) -> Transaction:
    """Parse a whole transaction (traditional encoding).

    Every record listed in 1.003 must be present, in order, with the listed type and IDC, each
    record's length must match its bytes, and nothing may follow the last record
    (RecordFormatError otherwise, naming the record and byte offset).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise RecordFormatError(f"transaction data must be bytes, not {type(data).__name__}")
    data = bytes(data)
    if not data.startswith(b"1.0"):
        raise RecordFormatError("not an ANSI/NIST-ITL transaction (no Type-1 record at the start)", "Type-1 record", 0)
    records: list[Record] = []
    length = _tagged_length(data, 0, 1)
    if length > len(data) or length < 8 or data[length - 1:length] != FS:
        raise RecordFormatError(f"Type-1 length {length} does not end on an FS", "Type-1 record", 0)
    t1 = _split_tagged(data[:length], 1, 0)
    records.append(t1)
    cnt = t1.subfields(3)
    where1 = "Type-1 record"
    try:
        listed = [(int(s[0]), int(s[1])) for s in cnt]
    except (ValueError, IndexError):
        raise RecordFormatError("field 1.003 (CNT) is not a list of type/IDC pairs", where1) from None
    if not listed or listed[0][0] != 1 or listed[0][1] != len(listed) - 1:
        raise RecordFormatError("field 1.003 (CNT) does not start with 1<US>count of the other records", where1)
    encoding = _encoding(t1)
    t1.encoding = "ascii" if encoding == "latin-1" else encoding
    pos = length
    for index, (rtype, idc) in enumerate(listed[1:], start=1):
        where = f"record {index} (Type-{rtype})"
        if pos >= len(data):
            raise RecordFormatError(f"transaction ends before {where} listed in 1.003", where, pos)
        if rtype in BINARY_TYPES:
            rec = _read_binary(data, pos, rtype, where)
            length = struct.unpack_from(">I", data, pos)[0]
        elif 2 <= rtype <= 99 and rtype != 1:
            length = _tagged_length(data, pos, rtype)
            if length < 8 or pos + length > len(data):
                raise RecordFormatError(f"length {length} runs past the end of the data ({len(data) - pos} left)",
                                        where, pos)
            if data[pos + length - 1:pos + length] != FS:
                raise RecordFormatError(f"length {length} does not end on an FS", where, pos)
            rec = _split_tagged(data[pos:pos + length], rtype, pos)
            rec.encoding = encoding
        else:
            raise RecordFormatError(f"record type {rtype} listed in 1.003 does not exist", where1)
        if rec.idc != idc:
            raise RecordFormatError(f"IDC {rec.idc} where 1.003 lists {idc}", where, pos)
        records.append(rec)
        pos += length
    if pos != len(data):
        raise RecordFormatError(f"{len(data) - pos} bytes after the last record listed in 1.003", None, pos)
    return Transaction(records)


def _read_binary(data: bytes, pos: int, rtype: int, where: str) -> Record:
    if pos + 5 > len(data):
        raise RecordFormatError("binary record header truncated", where, pos)
    length = struct.unpack_from(">I", data, pos)[0]
    hsize = {8: _T8.size, 7: _T7.size}.get(rtype, _T4.size)
    if length < hsize or pos + length > len(data):
        raise RecordFormatError(f"binary record length {length} does not fit the data ({len(data) - pos} left)",
                                where, pos)
    body = data[pos:pos + length]
    if rtype in (3, 4, 5, 6):
        _, idc, imp, fgp, isr, hll, vll, last = _T4.unpack_from(body)
        header = {"IDC": idc, "IMP": imp, "FGP": tuple(fgp), "ISR": isr, "HLL": hll, "VLL": vll,
                  ("GCA" if rtype in (3, 4) else "BCA"): last}
        return Record(rtype, header=header, data=bytes(body[_T4.size:]))
    if rtype == 8:
        _, idc, sig, srt, isr, hll, vll = _T8.unpack_from(body)
        return Record(rtype, header={"IDC": idc, "SIG": sig, "SRT": srt, "ISR": isr, "HLL": hll, "VLL": vll},
                      data=bytes(body[_T8.size:]))
    # Type-7 is user-defined past its IDC. NIST's reference files (and many senders) lay it out
    # like Type-4; when the header read that way describes exactly the bytes present, expose it.
    _, idc = _T7.unpack_from(body)
    header: dict[str, Any] = {"IDC": idc}
    if length >= _T4.size:
        _, _, imp, fgp, isr, hll, vll, gca = _T4.unpack_from(body)
        rest = length - _T4.size
        if (gca == 0 and hll * vll == rest > 0) or (gca == 1 and body[_T4.size:_T4.size + 2] == b"\xff\xa0"):
            header.update(IMP=imp, FGP=tuple(fgp), ISR=isr, HLL=hll, VLL=vll, GCA=gca)
            return Record(rtype, header=header, data=bytes(body[_T4.size:]))
    return Record(rtype, header=header, data=bytes(body[_T7.size:]))


def _encoding(t1: Record) -> str:
    dcs = t1.subfields(15)
    if dcs:
        code = dcs[0][0].strip()
        name = dcs[0][1].strip().upper() if len(dcs[0]) > 1 else ""
        if code.lstrip("0") == "3" or name == "UTF-8":
            return "utf-8"
        if code.lstrip("0") == "2" or name == "UTF-16":
            return "utf-16-be"
    return "latin-1"


# --- the transaction -----------------------------------------------------------------------------

@dataclass
class Transaction:
    """A Type-1 record followed by the records its 1.003 lists, in file order."""

    records: list[Record]

    @property
    def type1(self) -> Record:
        return self.records[0]

    @property
    def version(self) -> str:
        return self.type1.text(2) or ""

    def of_type(self, rtype: int) -> list[Record]:
        return [r for r in self.records if r.type == rtype]

    def __iter__(self):
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    def refresh_cnt(self) -> None:
        """Rewrite 1.003 (CNT) from the records present (IDCs written with two digits)."""
        subs = [["1", str(len(self.records) - 1)]] + [[str(r.type), f"{r.idc:02d}"] for r in self.records[1:]]
        self.type1.fields[3] = encode_value(subs)

    def encode(self) -> bytes:
        """The transaction's bytes. 1.003 must list the records present (RecordError if not)."""
        if not self.records or self.records[0].type != 1:
            raise RecordError("a transaction starts with its Type-1 record")
        try:
            listed = [(int(s[0]), int(s[1])) for s in self.type1.subfields(3)[1:]]
        except (ValueError, IndexError):
            raise RecordError("field 1.003 (CNT) is not a list of type/IDC pairs; call refresh_cnt()") from None
        present = [(r.type, r.idc) for r in self.records[1:]]
        if listed != present:
            raise RecordError("field 1.003 (CNT) does not list the records present; call refresh_cnt()")
        return b"".join(r.encode() for r in self.records)


def write_file(path: str | Path, data: bytes | Transaction) -> Path:
    """Write a transaction (or any record bytes) to ``path`` atomically.

    The bytes go to a temporary file in the same directory, are flushed to disk, and replace
    ``path`` in one rename, so a reader sees the old file or the whole new one, never part of
    it; on any failure the temporary file is removed and ``path`` is untouched.
    """
    if isinstance(data, Transaction):
        data = data.encode()
    return write_atomic(path, data)

