"""Codec registry: every persistent template format, keyed by :class:`TemplateFormat`.

>>> from biostation.templates import decode, encode, TemplateFormat
>>> record = decode(open("101_1.iso", "rb").read())          # format sniffed
>>> data = encode(record, TemplateFormat.ANSI_378)           # a TemplateRecord or a Template

Round trips are exact: ``encode(decode(b, f), f) == b`` for every record the reader accepts
(reserved bits are written as zero), and ``decode(encode(t, f), f)`` equals ``t`` for the native
and JSON formats, and for ISO/ANSI up to their angle quantization (360/256 and 2 degrees).
Every malformed input raises :class:`~biostation.errors.TemplateFormatError` (with the byte
offset) or :class:`~biostation.errors.TemplateVersionError`; no other exception escapes a decoder.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Protocol

from ..errors import TemplateError, TemplateFormatError, TemplateVersionError
from .ansi378 import Ansi378Codec
from .iso19794_2 import Iso19794_2Codec
from .model import Template, TemplateRecord
from .native import JsonCodec, NativeCodec


class TemplateFormat(str, Enum):
    """Template formats; the values are the names the CLI uses."""

    ISO_19794_2 = "iso19794-2"  # ISO/IEC 19794-2:2005
    ANSI_378 = "ansi378"  # ANSI INCITS 378-2004
    NATIVE = "native"  # biostation binary, versioned
    JSON = "json"  # biostation JSON, versioned


class TemplateCodec(Protocol):
    name: str

    def encode(self, record: TemplateRecord) -> bytes: ...

    def decode(self, data: bytes) -> TemplateRecord: ...


CODECS: dict[TemplateFormat, TemplateCodec] = {
    TemplateFormat.ISO_19794_2: Iso19794_2Codec(),
    TemplateFormat.ANSI_378: Ansi378Codec(),
    TemplateFormat.NATIVE: NativeCodec(),
    TemplateFormat.JSON: JsonCodec(),
}

SUFFIXES = {".iso": TemplateFormat.ISO_19794_2, ".ist": TemplateFormat.ISO_19794_2,
            ".ansi": TemplateFormat.ANSI_378, ".bst": TemplateFormat.NATIVE, ".json": TemplateFormat.JSON}


def get_codec(fmt: TemplateFormat | str) -> TemplateCodec:
    try:
        return CODECS[TemplateFormat(fmt)]
    except ValueError:
        raise TemplateError(f"unknown template format {fmt!r}; known: {[f.value for f in TemplateFormat]}") from None


def sniff(data: bytes) -> TemplateFormat:
    """Guess the format of ``data`` from its first bytes; TemplateFormatError if none fits.

    ISO and ANSI share their magic and version; the record-length field tells them apart
    (4 bytes at offset 8 in ISO, 2 bytes, or 0 then 4 bytes, in ANSI).
    """
    data = bytes(data[:16])
    if data[:4] == b"BSTM":
        return TemplateFormat.NATIVE
    if data[:1] in (b"{", b" ", b"\n"):
        return TemplateFormat.JSON
    if data[:4] == b"FMR\x00":
        return TemplateFormat.ISO_19794_2  # ISO or ANSI: decode() looks at the length field
    raise TemplateFormatError("unknown template format (no FMR, BSTM or JSON signature)", 0)


def _sniff_full(data: bytes) -> TemplateFormat:
    fmt = sniff(data)
    if fmt is TemplateFormat.ISO_19794_2 and len(data) >= 14:
        n = len(data)
        if int.from_bytes(data[8:12], "big") == n:
            return TemplateFormat.ISO_19794_2
        if int.from_bytes(data[8:10], "big") == n or (data[8:10] == b"\0\0" and int.from_bytes(data[10:14], "big") == n):
            return TemplateFormat.ANSI_378
    return fmt


def decode(data: bytes, fmt: TemplateFormat | str | None = None) -> TemplateRecord:
    """Parse ``data`` (format sniffed when ``fmt`` is None) into a :class:`TemplateRecord`."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TemplateFormatError(f"template data must be bytes, not {type(data).__name__}")
    codec = get_codec(fmt if fmt is not None else _sniff_full(bytes(data)))
    try:
        return codec.decode(bytes(data))
    except (TemplateFormatError, TemplateVersionError):
        raise
    except TemplateError as exc:  # well-framed bytes describing an invalid template: still bad bytes
        raise TemplateFormatError(f"{codec.name}: {exc}") from exc


def encode(obj: Template | TemplateRecord, fmt: TemplateFormat | str) -> bytes:
    """Serialize a record (or a single view) in ``fmt``."""
    record = TemplateRecord(views=[obj]) if isinstance(obj, Template) else obj
    return get_codec(fmt).encode(record)


def load_template(path: str | Path, fmt: TemplateFormat | str | None = None, view: int = 0) -> Template:
    """Read one view (default the first) of the template file at ``path``."""
    path = Path(path)
    if fmt is None and path.suffix.lower() in SUFFIXES:
        fmt = SUFFIXES[path.suffix.lower()]
    record = decode(path.read_bytes(), fmt)
    if not 0 <= view < len(record.views):
        raise TemplateError(f"{path.name}: no finger view {view} (record holds {len(record.views)})")
    return record.views[view]


def save_template(obj: Template | TemplateRecord, path: str | Path, fmt: TemplateFormat | str | None = None) -> None:
    path = Path(path)
    if fmt is None:
        fmt = SUFFIXES.get(path.suffix.lower(), TemplateFormat.NATIVE)
    path.write_bytes(encode(obj, fmt))
