"""Elements the 2011 editions of ISO/IEC 19794 share (ISO/IEC 19794-1:2011 general header and
representation header): the capture date-time, quality blocks and certification blocks.

Layouts, big-endian:

===================  =====  =================================================================
capture date-time    9      year (2), month, day, hour, minute, second (1 each),
                            millisecond (2), in UTC; every field all ones = not specified
quality record       1+5n   number of blocks (1); per block: score (1, 0..100, 255 = failed
                            attempt), algorithm vendor id (2), algorithm id (2)
certification        1+3n   number of blocks (1); per block: certification authority id (2),
record                      certification scheme id (1)
===================  =====  =================================================================

Vendor and algorithm ids are the ones registered with IBIA (CBEFF biometric organizations and
quality algorithm identifiers); 0 means "not registered / not reported". NFIQ 2 identifies
itself with vendor 0x0101 (ISO/IEC JTC 1/SC 37) and an algorithm id per revision (NIST's
``nfiq2_constants.cpp`` in usnistgov/NFIQ2): :data:`NFIQ2_QUALITY` is the pair the ANSI/NIST
records of :mod:`.builder` write too (``NFIQ2_ALGORITHM``: 0x0101, 0x21, NFIQ 2.0 and its
model 2.0, which biostation's NFIQ 2 evaluates).

Sources read (no code copied): the MOSIP biometrics-util Java converters (mosip/bio-utils,
``io.mosip.biometrics.util.finger`` / ``.face``), FingerprintIO's ``iso19794p1v2011`` package
(robertvazan/fingerprintio) for the unspecified date-time values. Stateless and thread-safe.
"""

from __future__ import annotations

import datetime as dt
import struct
from dataclasses import dataclass

from ..errors import RecordError, RecordFormatError

__all__ = ["DATETIME_LEN", "NFIQ2_QUALITY", "CertificationBlock", "QualityBlock", "decode_datetime",
           "encode_datetime", "read_certification", "read_quality", "write_certification", "write_quality"]

DATETIME_LEN = 9
_DATETIME = struct.Struct(">HBBBBBH")
_QUALITY = struct.Struct(">BHH")
_CERT = struct.Struct(">HB")
_UNSPECIFIED = (0xFFFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFFFF)

#: (vendor, algorithm) of the NFIQ 2 unified quality score
NFIQ2_QUALITY = (0x0101, 0x0021)


@dataclass(frozen=True)
class QualityBlock:
    """One quality assessment: ``score`` 0..100 (255: the assessment failed), ``vendor`` and
    ``algorithm`` the IBIA-registered ids of the algorithm that gave it (0: not reported)."""

    score: int
    vendor: int = 0
    algorithm: int = 0


@dataclass(frozen=True)
class CertificationBlock:
    """A certification the capture device holds: ``authority`` (IBIA-registered organization
    id) and ``scheme`` (the scheme's id in the part's table, e.g. 19794-4 Annex B)."""

    authority: int
    scheme: int


def encode_datetime(when: dt.datetime | None) -> bytes:
    """The 9 date-time bytes of ``when`` (converted to UTC when it carries a zone; a naive
    datetime is taken as UTC); None gives the "not specified" value."""
    if when is None:
        return _DATETIME.pack(*_UNSPECIFIED)
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC)
    return _DATETIME.pack(when.year, when.month, when.day, when.hour, when.minute, when.second,
                          when.microsecond // 1000)


def decode_datetime(data: bytes, pos: int, what: str) -> dt.datetime | None:
    """The UTC date-time at ``data[pos:pos + 9]``; None when not specified (a millisecond field
    of all ones alone reads as 0 ms). RecordFormatError when a field is out of range."""
    fields = _DATETIME.unpack_from(data, pos)
    if fields == _UNSPECIFIED:
        return None
    year, month, day, hour, minute, second, ms = fields
    try:
        return dt.datetime(year, month, day, hour, minute, second, 0 if ms == 0xFFFF else ms * 1000, tzinfo=dt.UTC)
    except ValueError as exc:
        raise RecordFormatError(f"capture date-time {fields} is not a date ({exc})", what, pos) from None


def write_quality(blocks: list[QualityBlock]) -> bytes:
    """The quality record: count, then the blocks (RecordError for a score or id out of range)."""
    if len(blocks) > 255:
        raise RecordError("more than 255 quality blocks")
    out = bytearray([len(blocks)])
    for b in blocks:
        if not (0 <= b.score <= 100 or b.score == 255):
            raise RecordError(f"quality score {b.score} out of range 0..100 (or 255)")
        try:
            out += _QUALITY.pack(b.score, b.vendor, b.algorithm)
        except struct.error as exc:
            raise RecordError(f"quality block field out of range: {exc}") from None
    return bytes(out)


def _block_count(data: bytes, pos: int, end: int, size: int, kind: str, what: str) -> int:
    """The count byte at ``pos`` of a record of ``size``-byte ``kind`` blocks, checked to fit before ``end``."""
    if pos + 1 > end:
        raise RecordFormatError(f"{kind} record truncated", what, pos)
    n = data[pos]
    if pos + 1 + size * n > end:
        raise RecordFormatError(f"{n} {kind} blocks do not fit", what, pos)
    return n


def read_quality(data: bytes, pos: int, end: int, what: str) -> tuple[list[QualityBlock], int]:
    """The quality blocks at ``pos`` and the offset after them."""
    n = _block_count(data, pos, end, _QUALITY.size, "quality", what)
    pos += 1
    blocks = []
    for _ in range(n):
        score, vendor, algorithm = _QUALITY.unpack_from(data, pos)
        if score > 100 and score != 255:
            raise RecordFormatError(f"quality score {score} over 100", what, pos)
        blocks.append(QualityBlock(score, vendor, algorithm))
        pos += _QUALITY.size
    return blocks, pos


def write_certification(blocks: list[CertificationBlock]) -> bytes:
    if len(blocks) > 255:
        raise RecordError("more than 255 certification blocks")
    try:
        return bytes([len(blocks)]) + b"".join(_CERT.pack(b.authority, b.scheme) for b in blocks)
    except struct.error as exc:
        raise RecordError(f"certification block field out of range: {exc}") from None


def read_certification(data: bytes, pos: int, end: int, what: str) -> tuple[list[CertificationBlock], int]:
    n = _block_count(data, pos, end, _CERT.size, "certification", what)
    pos += 1
    blocks = [CertificationBlock(*_CERT.unpack_from(data, pos + _CERT.size * i)) for i in range(n)]
    return blocks, pos + _CERT.size * n
