"""BER-TLV as ICAO 9303 and ISO/IEC 7816-4 use it: encode, decode, walk.

Tags are handled as plain integers of their encoded bytes (``0x5F1F``, ``0x7F49``, ``0x61``):
that is how ICAO 9303 writes them, so code reads like the standard. Lengths are definite only
(short form, or ``81``..``84`` long form); the indefinite form ``80`` is not allowed in the LDS
(Doc 9303-10 §4.3) and is refused.

Every decoding error is a :class:`~biostation.errors.TLVError` that names the file (``source``,
for example ``"DG13"`` or ``"EF.SOD"``) and the byte offset *in that file* where reading failed,
so a malformed card file is reported as "in DG13 at byte 412", never as an IndexError.

Pure functions, no state: thread-safe. Decoding costs O(n) in the input size.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ..errors import TLVError

__all__ = ["TLV", "decode", "decode_one", "encode", "encode_length", "encode_tag", "find", "find_all",
           "is_constructed", "read_length", "read_tag", "walk"]


def is_constructed(tag: int) -> bool:
    """True when bit 6 of the tag's first byte is set (the value holds more TLVs)."""
    first = tag
    while first > 0xFF:
        first >>= 8
    return bool(first & 0x20)


def encode_tag(tag: int) -> bytes:
    if tag < 0:
        raise ValueError(f"negative tag {tag}")
    return tag.to_bytes(max(1, (tag.bit_length() + 7) // 8), "big")


def encode_length(n: int) -> bytes:
    """DER definite length: short form below 128, else ``81``..``84`` + big-endian bytes."""
    if n < 0:
        raise ValueError(f"negative length {n}")
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    if len(body) > 4:
        raise ValueError(f"length {n} too large for BER-TLV")
    return bytes([0x80 | len(body)]) + body


def encode(tag: int, value: bytes | Iterable[bytes] = b"") -> bytes:
    """One TLV. ``value`` may be bytes or an iterable of already-encoded TLVs (concatenated)."""
    if not isinstance(value, (bytes, bytearray, memoryview)):
        value = b"".join(value)
    value = bytes(value)
    return encode_tag(tag) + encode_length(len(value)) + value


def read_tag(data: bytes, pos: int, source: str | None = None, base: int = 0) -> tuple[int, int]:
    """Read the tag starting at ``pos``; returns ``(tag, position after it)``."""
    if pos >= len(data):
        raise TLVError("tag expected, data ended", source, base + pos)
    first = data[pos]
    if first in (0x00, 0xFF):
        # ISO 7816-4 padding bytes between TLVs; never a tag in the LDS
        raise TLVError(f"invalid tag byte {first:02X}", source, base + pos)
    tag = first
    pos += 1
    if first & 0x1F == 0x1F:  # multi-byte tag: continuation bytes have bit 8 set
        n = 0
        while True:
            if pos >= len(data):
                raise TLVError("tag truncated", source, base + pos)
            b = data[pos]
            tag = (tag << 8) | b
            pos += 1
            n += 1
            if not b & 0x80:
                break
            if n >= 3:
                raise TLVError("tag longer than 4 bytes", source, base + pos)
    return tag, pos


def read_length(data: bytes, pos: int, source: str | None = None, base: int = 0) -> tuple[int, int]:
    """Read a definite length at ``pos``; returns ``(length, position after it)``."""
    if pos >= len(data):
        raise TLVError("length expected, data ended", source, base + pos)
    first = data[pos]
    if first < 0x80:
        return first, pos + 1
    n = first & 0x7F
    if n == 0:
        raise TLVError("indefinite length not allowed", source, base + pos)
    if n > 4:
        raise TLVError(f"length field of {n} bytes", source, base + pos)
    if pos + 1 + n > len(data):
        raise TLVError("length field truncated", source, base + pos)
    return int.from_bytes(data[pos + 1:pos + 1 + n], "big"), pos + 1 + n


@dataclass(frozen=True)
class TLV:
    """One decoded element. ``offset`` is where its tag starts in the source file."""

    tag: int
    value: bytes
    offset: int = 0
    source: str | None = None
    header_len: int = 0

    @property
    def constructed(self) -> bool:
        return is_constructed(self.tag)

    @property
    def value_offset(self) -> int:
        return self.offset + self.header_len

    @property
    def children(self) -> list[TLV]:
        """The TLVs inside a constructed element (TLVError names the offset in the file)."""
        if not self.constructed:
            raise TLVError(f"tag {self.tag:X} is primitive, it holds no TLVs", self.source, self.offset)
        return decode(self.value, self.source, self.value_offset)

    def child(self, tag: int) -> TLV:
        """The first child with ``tag``; TLVError when missing."""
        for c in self.children:
            if c.tag == tag:
                return c
        raise TLVError(f"tag {tag:X} missing inside {self.tag:X}", self.source, self.offset)

    def find(self, tag: int) -> TLV | None:
        return find(self.children, tag)

    def encode(self) -> bytes:
        return encode(self.tag, self.value)

    def __repr__(self) -> str:  # never dump values: they may be personal data
        return f"TLV(tag={self.tag:X}, len={len(self.value)}, offset={self.offset})"


def _iter(data: bytes, source: str | None, base: int) -> Iterator[TLV]:
    pos = 0
    n = len(data)
    while pos < n:
        start = pos
        tag, pos = read_tag(data, pos, source, base)
        length, pos = read_length(data, pos, source, base)
        if pos + length > n:
            raise TLVError(f"tag {tag:X} claims {length} bytes, only {n - pos} left", source, base + start)
        yield TLV(tag, bytes(data[pos:pos + length]), base + start, source, pos - start)
        pos += length


def decode(data: bytes, source: str | None = None, base: int = 0) -> list[TLV]:
    """All TLVs that follow each other in ``data`` (top level only; use ``.children`` to descend).

    ``base`` is added to every offset, so nested decoding reports positions in the whole file.
    """
    return list(_iter(bytes(data), source, base))


def decode_one(data: bytes, source: str | None = None, expect: int | None = None,
               allow_trailing: bool = False) -> TLV:
    """Exactly one TLV spanning ``data`` (optionally with tag ``expect``).

    ``allow_trailing`` tolerates bytes after it, as cards pad files with 00 or FF.
    """
    data = bytes(data)
    if not data:
        raise TLVError("empty", source, 0)
    tag, pos = read_tag(data, 0, source)
    length, pos = read_length(data, pos, source)
    if expect is not None and tag != expect:
        raise TLVError(f"tag {tag:X} where {expect:X} was expected", source, 0)
    if pos + length > len(data):
        raise TLVError(f"tag {tag:X} claims {length} bytes, only {len(data) - pos} present", source, 0)
    if pos + length < len(data) and not allow_trailing:
        raise TLVError(f"{len(data) - pos - length} bytes after the end of tag {tag:X}", source, pos + length)
    return TLV(tag, data[pos:pos + length], 0, source, pos)


def find(tlvs: Iterable[TLV], tag: int) -> TLV | None:
    for t in tlvs:
        if t.tag == tag:
            return t
    return None


def find_all(tlvs: Iterable[TLV], tag: int) -> list[TLV]:
    return [t for t in tlvs if t.tag == tag]


def walk(tlvs: Iterable[TLV]) -> Iterator[TLV]:
    """Depth-first over ``tlvs`` and everything nested in constructed ones."""
    for t in tlvs:
        yield t
        if t.constructed:
            yield from walk(t.children)


def total_length(data: bytes, source: str | None = None) -> int:
    """Bytes the first TLV of ``data`` spans (header + value), read from its header only.

    Lets a reader fetch the first few bytes of a file and learn how much more to read.
    """
    pos = read_tag(data, 0, source)[1]
    length, pos = read_length(data, pos, source)
    return pos + length
