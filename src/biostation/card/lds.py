"""Logical Data Structure of ICAO 9303 (Doc 9303-10): the files of an eMRTD, both ways.

Decoders turn file bytes into small dataclasses; encoders turn the dataclasses back into file
bytes (the virtual card and the personalization line write cards with them). Every decoder
raises :class:`~biostation.errors.TLVError` naming the file and byte offset on malformed input.

Files and their identifiers (Doc 9303-10 §3.6 and table 37):

========  ======  ====  ====================================================================
file      tag     FID   content
========  ======  ====  ====================================================================
EF.COM    60      011E  LDS version, Unicode version, list of the data groups present
DG1       61      0101  the MRZ (TD1 3x30 or TD3 2x44)
DG2       75      0102  face: biometric template(s), ISO/IEC 19794-5 record in CBEFF
DG11      6B      010B  additional personal details
DG12      6C      010C  additional document details
DG13      6D      010D  optional details; on the Vietnamese CCCD its own structure (below)
DG14      6E      010E  SecurityInfos for chip authentication (and PACE)
DG15      6F      010F  active authentication public key (SubjectPublicKeyInfo)
EF.SOD    77      011D  the document security object, see :mod:`biostation.card.sod`
========  ======  ====  ====================================================================

The SFI of DGn is n; of EF.COM 1E, EF.SOD 1D, EF.CardAccess 1C.

DG13 on the Vietnamese CCCD (``../shared/specs/vn-cccd-chip.md``, community-observed layout):
``6D { 30 { 02 version, 06 OID 1.0.10646.1.0.8, 31 { 30 { 02 n, value } ... } } }`` where field n
= 1 ID number, 2 full name, 3 date of birth (dd/mm/yyyy), 4 sex, 5 nationality, 6 ethnicity,
7 religion, 8 place of origin, 9 residence, 10 identifying marks, 11 date of issue, 12 date of
expiry, 13 parents (nested), 14 spouse (nested), 15 old 9-digit ID, 16 unknown. Fields may be
absent, so they are read by number, never by position.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import TLVError
from . import tlv
from .mrz import MRZ, MRZError
from .mrz import parse as parse_mrz
from .secinfo import SecurityInfos, parse_security_infos

__all__ = [
    "DG1",
    "DG2",
    "DG11",
    "DG12",
    "DG13",
    "DG14",
    "DG15",
    "DG_TAGS",
    "FILES",
    "EFCom",
    "FaceImage",
    "File",
    "decode",
    "decode_com",
    "decode_dg1",
    "decode_dg2",
    "decode_dg11",
    "decode_dg12",
    "decode_dg13",
    "decode_dg14",
    "decode_dg15",
    "dg_number_of_tag",
    "encode_com",
    "encode_dg1",
    "encode_dg2",
    "encode_dg11",
    "encode_dg12",
    "encode_dg13",
    "encode_dg14",
    "encode_dg15",
]

#: data group number -> tag of its file
DG_TAGS = {1: 0x61, 2: 0x75, 3: 0x63, 4: 0x76, 5: 0x65, 6: 0x66, 7: 0x67, 8: 0x68, 9: 0x69, 10: 0x6A,
           11: 0x6B, 12: 0x6C, 13: 0x6D, 14: 0x6E, 15: 0x6F, 16: 0x70}


@dataclass(frozen=True)
class File:
    name: str
    fid: int
    sfi: int | None
    tag: int | None


FILES: dict[str, File] = {
    "EF.CardAccess": File("EF.CardAccess", 0x011C, 0x1C, 0x31),
    "EF.ATR/INFO": File("EF.ATR/INFO", 0x2F01, 0x01, None),
    "EF.COM": File("EF.COM", 0x011E, 0x1E, 0x60),
    "EF.SOD": File("EF.SOD", 0x011D, 0x1D, 0x77),
    **{f"DG{n}": File(f"DG{n}", 0x0100 + n, n, t) for n, t in DG_TAGS.items()},
}


def dg_number_of_tag(tag: int) -> int | None:
    for n, t in DG_TAGS.items():
        if t == tag:
            return n
    return None


def _text(t: tlv.TLV, encoding: str = "utf-8") -> str:
    try:
        return t.value.decode(encoding)
    except UnicodeDecodeError:
        raise TLVError(f"tag {t.tag:X} is not valid {encoding} text", t.source, t.value_offset) from None


# --- EF.COM ----------------------------------------------------------------------------------------

@dataclass
class EFCom:
    lds_version: str = "0108"
    unicode_version: str = "040000"
    data_groups: list[int] = field(default_factory=list)


def decode_com(data: bytes) -> EFCom:
    top = tlv.decode_one(data, "EF.COM", expect=0x60, allow_trailing=True)
    com = EFCom()
    v = top.find(0x5F01)
    if v is not None:
        com.lds_version = _text(v, "ascii")
    u = top.find(0x5F36)
    if u is not None:
        com.unicode_version = _text(u, "ascii")
    tags = top.find(0x5C)
    if tags is None:
        raise TLVError("tag list 5C missing", "EF.COM", top.offset)
    for i, b in enumerate(tags.value):
        n = dg_number_of_tag(b)
        if n is None:
            raise TLVError(f"unknown data group tag {b:02X}", "EF.COM", tags.value_offset + i)
        com.data_groups.append(n)
    return com


def encode_com(com: EFCom) -> bytes:
    return tlv.encode(0x60, [tlv.encode(0x5F01, com.lds_version.encode()),
                             tlv.encode(0x5F36, com.unicode_version.encode()),
                             tlv.encode(0x5C, bytes(DG_TAGS[n] for n in com.data_groups))])


# --- DG1 -------------------------------------------------------------------------------------------

@dataclass
class DG1:
    mrz: MRZ


def decode_dg1(data: bytes) -> DG1:
    top = tlv.decode_one(data, "DG1", expect=0x61, allow_trailing=True)
    t = top.find(0x5F1F)
    if t is None:
        raise TLVError("MRZ 5F1F missing", "DG1", top.offset)
    text = _text(t, "ascii")
    n = len(text)
    if n == 90:
        lines = [text[0:30], text[30:60], text[60:90]]
    elif n == 88:
        lines = [text[:44], text[44:]]
    elif n == 72:  # TD2
        raise TLVError("TD2 MRZ (2x36) is not supported", "DG1", t.value_offset)
    else:
        raise TLVError(f"MRZ of {n} characters", "DG1", t.value_offset)
    try:
        return DG1(parse_mrz("\n".join(lines)))
    except MRZError as exc:
        raise TLVError(f"bad MRZ: {exc}", "DG1", t.value_offset) from None


def encode_dg1(lines: list[str] | MRZ) -> bytes:
    if isinstance(lines, MRZ):
        lines = lines.lines
    return tlv.encode(0x61, tlv.encode(0x5F1F, "".join(lines).encode("ascii")))


# --- DG2: ISO/IEC 19794-5:2005 face record inside CBEFF (Doc 9303-10 §4.7.2) ------------------------

# The 19794-5 face record itself lives with the records (biostation.records.iso19794_5).
from ..errors import RecordFormatError  # noqa: E402
from ..records import iso19794_5 as _iso5  # noqa: E402
from ..records.iso19794_5 import IMAGE_JPEG, IMAGE_JPEG2000, FaceImage  # noqa: E402,F401


@dataclass
class DG2:
    faces: list[FaceImage]


def _decode_19794_5(data: bytes, base: int) -> list[FaceImage]:
    try:
        return _iso5.decode(data)
    except RecordFormatError as exc:
        raise TLVError(str(exc), "DG2", base + (exc.offset or 0)) from None


def _encode_19794_5(faces: list[FaceImage]) -> bytes:
    return _iso5.encode(faces)


def decode_dg2(data: bytes) -> DG2:
    top = tlv.decode_one(data, "DG2", expect=0x75, allow_trailing=True)
    group = top.child(0x7F61)
    faces: list[FaceImage] = []
    for bit in group.children:
        if bit.tag != 0x7F60:
            continue
        block = bit.find(0x5F2E) or bit.find(0x7F2E)
        if block is None:
            raise TLVError("biometric data block 5F2E missing", "DG2", bit.offset)
        faces.extend(_decode_19794_5(block.value, block.value_offset))
    if not faces:
        raise TLVError("no face image", "DG2", group.offset)
    return DG2(faces)


def encode_dg2(faces: list[FaceImage]) -> bytes:
    bits = []
    for f in faces:
        bht = tlv.encode(0xA1, [tlv.encode(0x80, b"\x01\x01"),  # patron header version 1.1
                                tlv.encode(0x87, b"\x01\x01"),  # format owner: ISO/IEC JTC 1/SC 37
                                tlv.encode(0x88, b"\x00\x08")])  # format type: face image
        bits.append(tlv.encode(0x7F60, bht + tlv.encode(0x5F2E, _encode_19794_5([f]))))
    return tlv.encode(0x75, tlv.encode(0x7F61, [tlv.encode(0x02, bytes([len(faces)]))] + bits))


# --- DG11 / DG12: tagged text fields -----------------------------------------------------------------

DG11_FIELDS = {0x5F0E: "full_name", 0x5F10: "personal_number", 0x5F2B: "date_of_birth", 0x5F11: "place_of_birth",
               0x5F42: "address", 0x5F12: "telephone", 0x5F13: "profession", 0x5F14: "title",
               0x5F15: "personal_summary", 0x5F16: "proof_of_citizenship", 0x5F17: "other_td_numbers",
               0x5F18: "custody_information"}
DG12_FIELDS = {0x5F19: "issuing_authority", 0x5F26: "date_of_issue", 0x5F1A: "other_persons",
               0x5F1B: "endorsements", 0x5F1C: "tax_exit_requirements", 0x5F55: "personalization_time",
               0x5F56: "personalization_device_serial"}


def _decode_tagged(data: bytes, source: str, tag: int, names: dict[int, str]) -> dict[str, str]:
    top = tlv.decode_one(data, source, expect=tag, allow_trailing=True)
    out: dict[str, str] = {}
    for t in top.children:
        if t.tag in names:
            out[names[t.tag]] = _text(t)
        elif t.tag == 0xA0:  # other names: a list of 5F0F
            out["other_names"] = "; ".join(_text(c) for c in t.children if c.tag == 0x5F0F)
    return out


def _encode_tagged(fields: dict[str, str], tag: int, names: dict[int, str]) -> bytes:
    by_name = {v: k for k, v in names.items()}
    present = [(by_name[k], v) for k, v in fields.items() if k in by_name and v]
    tag_list = b"".join(tlv.encode_tag(t) for t, _ in present)
    return tlv.encode(tag, [tlv.encode(0x5C, tag_list)] + [tlv.encode(t, v.encode("utf-8")) for t, v in present])


@dataclass
class DG11:
    fields: dict[str, str]


@dataclass
class DG12:
    fields: dict[str, str]


def decode_dg11(data: bytes) -> DG11:
    return DG11(_decode_tagged(data, "DG11", 0x6B, DG11_FIELDS))


def encode_dg11(fields: dict[str, str]) -> bytes:
    return _encode_tagged(fields, 0x6B, DG11_FIELDS)


def decode_dg12(data: bytes) -> DG12:
    return DG12(_decode_tagged(data, "DG12", 0x6C, DG12_FIELDS))


def encode_dg12(fields: dict[str, str]) -> bytes:
    return _encode_tagged(fields, 0x6C, DG12_FIELDS)


# --- DG13: Vietnamese CCCD -----------------------------------------------------------------------------

CCCD_FIELDS = {1: "id_number", 2: "full_name", 3: "date_of_birth", 4: "sex", 5: "nationality", 6: "ethnicity",
               7: "religion", 8: "place_of_origin", 9: "place_of_residence", 10: "identifying_marks",
               11: "date_of_issue", 12: "date_of_expiry", 13: "parents", 14: "spouse", 15: "old_id_number",
               16: "unknown_16"}
_CCCD_OID = "1.0.10646.1.0.8"
_PRINTABLE = {1, 3, 11, 15, 16}


@dataclass
class DG13:
    fields: dict[str, Any]
    version: int = 1


def _string_value(t: tlv.TLV) -> str:
    if t.tag in (0x0C, 0x13, 0x16, 0x1E):
        return _text(t, "utf-16-be" if t.tag == 0x1E else "utf-8")
    raise TLVError(f"string expected, tag {t.tag:X} found", t.source, t.offset)


def decode_dg13(data: bytes) -> DG13:
    top = tlv.decode_one(data, "DG13", expect=0x6D, allow_trailing=True)
    seq = top.child(0x30)
    version = 1
    fields: dict[str, Any] = {}
    for part in seq.children:
        if part.tag == 0x02:
            version = int.from_bytes(part.value, "big")
        elif part.tag == 0x31:
            for item in part.children:
                if item.tag != 0x30:
                    raise TLVError(f"DG13 field must be a SEQUENCE, tag {item.tag:X}", "DG13", item.offset)
                kids = item.children
                if not kids or kids[0].tag != 0x02:
                    raise TLVError("DG13 field without its number", "DG13", item.offset)
                n = int.from_bytes(kids[0].value, "big")
                name = CCCD_FIELDS.get(n, f"field_{n}")
                values = kids[1:]
                if n in (13, 14):
                    strings = [_string_value(v) for v in values if v.tag != 0x30]
                    for v in values:
                        if v.tag == 0x30:
                            strings += [_string_value(c) for c in v.children if c.tag != 0x02]
                    if n == 13:
                        fields[name] = {"father": strings[0] if strings else "",
                                        "mother": strings[1] if len(strings) > 1 else ""}
                    else:
                        fields[name] = strings[0] if strings else ""
                elif values:
                    fields[name] = _string_value(values[0])
                else:
                    fields[name] = ""
    return DG13(fields, version)


def encode_dg13(fields: dict[str, Any], version: int = 1) -> bytes:
    by_name = {v: k for k, v in CCCD_FIELDS.items()}
    items = []
    for name, value in fields.items():
        n = by_name[name]
        num = tlv.encode(0x02, bytes([n]))
        if n == 13:
            inner = b"".join(tlv.encode(0x0C, value.get(k, "").encode()) for k in ("father", "mother"))
            items.append(tlv.encode(0x30, num + tlv.encode(0x30, inner)))
        elif n == 14:
            inner = tlv.encode(0x0C, value.encode()) if value else b""
            items.append(tlv.encode(0x30, num + (tlv.encode(0x30, inner) if inner else b"")))
        else:
            items.append(tlv.encode(0x30, num + tlv.encode(0x13 if n in _PRINTABLE else 0x0C, str(value).encode())))
    from .secinfo import encode_oid
    body = tlv.encode(0x02, bytes([version])) + encode_oid(_CCCD_OID) + tlv.encode(0x31, items)
    return tlv.encode(0x6D, tlv.encode(0x30, body))


# --- DG14 / DG15 -------------------------------------------------------------------------------------

@dataclass
class DG14:
    security_infos: SecurityInfos


def decode_dg14(data: bytes) -> DG14:
    top = tlv.decode_one(data, "DG14", expect=0x6E, allow_trailing=True)
    return DG14(parse_security_infos(top.value, "DG14", outer=True))


def encode_dg14(infos_der: bytes) -> bytes:
    return tlv.encode(0x6E, infos_der)


@dataclass
class DG15:
    public_key_info: bytes  # DER SubjectPublicKeyInfo

    def public_key(self):  # type: ignore[no-untyped-def]
        from cryptography.hazmat.primitives.serialization import load_der_public_key

        try:
            return load_der_public_key(self.public_key_info)
        except ValueError:
            raise TLVError("DG15 does not hold a valid SubjectPublicKeyInfo", "DG15", 2) from None


def decode_dg15(data: bytes) -> DG15:
    top = tlv.decode_one(data, "DG15", expect=0x6F, allow_trailing=True)
    spki = tlv.decode_one(top.value, "DG15", expect=0x30, allow_trailing=True)
    return DG15(spki.encode())


def encode_dg15(public_key_info_der: bytes) -> bytes:
    return tlv.encode(0x6F, public_key_info_der)


_DECODERS = {1: decode_dg1, 2: decode_dg2, 11: decode_dg11, 12: decode_dg12, 13: decode_dg13, 14: decode_dg14,
             15: decode_dg15}


def decode(dg: int, data: bytes) -> Any:
    """Decode data group ``dg``; None for groups this module does not interpret (DG3..DG10, DG16)."""
    fn = _DECODERS.get(dg)
    return fn(data) if fn else None
