"""SecurityInfos (Doc 9303-11 §9.2): what EF.CardAccess and DG14 announce.

``SecurityInfos ::= SET OF SecurityInfo``, each ``SEQUENCE { protocol OBJECT IDENTIFIER,
requiredData ANY, optionalData ANY OPTIONAL }``. This module decodes them into typed records
(PACEInfo, ChipAuthenticationInfo, ChipAuthenticationPublicKeyInfo, ActiveAuthenticationInfo,
TerminalAuthenticationInfo) and encodes them back (the virtual card and the personalization line
write EF.CardAccess and DG14 with it). Unknown protocols are kept as :class:`SecurityInfo` so a
reader can show them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from asn1crypto import core

from ..errors import TLVError
from . import tlv

__all__ = [
    "CIPHERS",
    "ID_AA",
    "ID_CA",
    "ID_PACE",
    "ID_PK",
    "ID_TA",
    "ActiveAuthInfo",
    "ChipAuthInfo",
    "ChipAuthPublicKeyInfo",
    "PaceInfo",
    "SecurityInfo",
    "SecurityInfos",
    "decode_oid",
    "encode_oid",
    "encode_security_infos",
    "parse_security_infos",
]

ID_PACE = "0.4.0.127.0.7.2.2.4"
ID_CA = "0.4.0.127.0.7.2.2.3"
ID_PK = "0.4.0.127.0.7.2.2.1"
ID_TA = "0.4.0.127.0.7.2.2.2"
ID_AA = "2.23.136.1.1.5"

#: last OID arc -> (cipher, key length in bytes), Doc 9303-11 §9.2.1 / §9.2.5
CIPHERS = {1: ("3DES", 16), 2: ("AES", 16), 3: ("AES", 24), 4: ("AES", 32)}
#: PACE mapping arc -> (key agreement, mapping)
PACE_KINDS = {1: ("DH", "GM"), 2: ("ECDH", "GM"), 3: ("DH", "IM"), 4: ("ECDH", "IM"), 6: ("ECDH", "CAM")}


def encode_oid(dotted: str) -> bytes:
    return core.ObjectIdentifier(dotted).dump()


def decode_oid(value: bytes, source: str | None = None, offset: int = 0) -> str:
    try:
        return core.ObjectIdentifier.load(tlv.encode(0x06, value)).dotted
    except Exception:
        raise TLVError("malformed OBJECT IDENTIFIER", source, offset) from None


def _int(t: tlv.TLV) -> int:
    if t.tag != 0x02 or not t.value:
        raise TLVError(f"INTEGER expected, tag {t.tag:X} found", t.source, t.offset)
    return int.from_bytes(t.value, "big", signed=True)


def _enc_int(v: int) -> bytes:
    return tlv.encode(0x02, v.to_bytes(max(1, (v.bit_length() + 8) // 8), "big", signed=True))


@dataclass
class SecurityInfo:
    oid: str
    raw: bytes = field(default=b"", repr=False)

    def encode(self) -> bytes:
        return self.raw


class _CipherSuffix:
    """PACE and CA protocol OIDs end in the cipher and key length (ICAO 9303-11, 9.2)."""

    oid: str

    @property
    def cipher(self) -> str:
        return CIPHERS.get(int(self.oid.split(".")[-1]), ("?", 0))[0]

    @property
    def key_length(self) -> int:
        return CIPHERS.get(int(self.oid.split(".")[-1]), ("?", 0))[1]


@dataclass
class PaceInfo(_CipherSuffix, SecurityInfo):
    version: int = 2
    parameter_id: int | None = None

    @property
    def agreement(self) -> str:
        return PACE_KINDS.get(int(self.oid.split(".")[-2]), ("?", "?"))[0]

    @property
    def mapping(self) -> str:
        return PACE_KINDS.get(int(self.oid.split(".")[-2]), ("?", "?"))[1]

    def encode(self) -> bytes:
        parts = [tlv.encode(0x06, encode_oid(self.oid)[2:]), _enc_int(self.version)]
        if self.parameter_id is not None:
            parts.append(_enc_int(self.parameter_id))
        return tlv.encode(0x30, parts)

    @staticmethod
    def oid_for(agreement: str, mapping: str, cipher: str, key_length: int) -> str:
        kind = {v: k for k, v in PACE_KINDS.items()}[(agreement, mapping)]
        c = {v: k for k, v in CIPHERS.items()}[(cipher, key_length)]
        return f"{ID_PACE}.{kind}.{c}"

    def describe(self) -> str:
        return (f"PACE-{self.agreement}-{self.mapping} {self.cipher}-{self.key_length * 8} "
                f"paramId {self.parameter_id}")


@dataclass
class ChipAuthInfo(_CipherSuffix, SecurityInfo):
    version: int = 1
    key_id: int | None = None

    @property
    def agreement(self) -> str:
        return {"1": "DH", "2": "ECDH"}.get(self.oid.split(".")[-2], "?")

    def encode(self) -> bytes:
        parts = [tlv.encode(0x06, encode_oid(self.oid)[2:]), _enc_int(self.version)]
        if self.key_id is not None:
            parts.append(_enc_int(self.key_id))
        return tlv.encode(0x30, parts)


@dataclass
class ChipAuthPublicKeyInfo(SecurityInfo):
    public_key_info: bytes = field(default=b"", repr=False)  # DER SubjectPublicKeyInfo
    key_id: int | None = None

    def encode(self) -> bytes:
        parts = [tlv.encode(0x06, encode_oid(self.oid)[2:]), self.public_key_info]
        if self.key_id is not None:
            parts.append(_enc_int(self.key_id))
        return tlv.encode(0x30, parts)


@dataclass
class ActiveAuthInfo(SecurityInfo):
    version: int = 1
    signature_algorithm: str = ""

    def encode(self) -> bytes:
        return tlv.encode(0x30, [tlv.encode(0x06, encode_oid(self.oid)[2:]), _enc_int(self.version),
                                 tlv.encode(0x06, encode_oid(self.signature_algorithm)[2:])])


@dataclass
class SecurityInfos:
    infos: list[SecurityInfo] = field(default_factory=list)

    @property
    def pace(self) -> list[PaceInfo]:
        return [i for i in self.infos if isinstance(i, PaceInfo)]

    @property
    def chip_auth(self) -> list[ChipAuthInfo]:
        return [i for i in self.infos if isinstance(i, ChipAuthInfo)]

    @property
    def chip_auth_keys(self) -> list[ChipAuthPublicKeyInfo]:
        return [i for i in self.infos if isinstance(i, ChipAuthPublicKeyInfo)]

    @property
    def active_auth(self) -> ActiveAuthInfo | None:
        return next((i for i in self.infos if isinstance(i, ActiveAuthInfo)), None)

    @property
    def terminal_auth(self) -> bool:
        return any(i.oid.startswith(ID_TA) for i in self.infos)


def parse_security_infos(data: bytes, source: str = "EF.CardAccess", base: int = 0,
                         outer: bool = True) -> SecurityInfos:
    """Decode a ``SET OF SecurityInfo`` (``outer``: ``data`` starts with the SET tag 31)."""
    if outer:
        top = tlv.decode_one(data, source, expect=0x31, allow_trailing=True)
        items = top.children
    else:
        items = tlv.decode(data, source, base)
    out = SecurityInfos()
    for item in items:
        if item.tag != 0x30:
            raise TLVError(f"SecurityInfo must be a SEQUENCE, tag {item.tag:X} found", source, item.offset)
        kids = item.children
        if len(kids) < 2 or kids[0].tag != 0x06:
            raise TLVError("SecurityInfo without protocol OID and required data", source, item.offset)
        oid = decode_oid(kids[0].value, source, kids[0].offset)
        raw = item.encode()
        if oid.startswith(ID_PACE + ".") and oid.count(".") == ID_PACE.count(".") + 2:
            out.infos.append(PaceInfo(oid, raw, _int(kids[1]), _int(kids[2]) if len(kids) > 2 else None))
        elif oid.startswith(ID_CA + ".") and oid.count(".") == ID_CA.count(".") + 2:
            out.infos.append(ChipAuthInfo(oid, raw, _int(kids[1]), _int(kids[2]) if len(kids) > 2 else None))
        elif oid.startswith(ID_PK + "."):
            out.infos.append(ChipAuthPublicKeyInfo(oid, raw, kids[1].encode(),
                                                   _int(kids[2]) if len(kids) > 2 else None))
        elif oid == ID_AA:
            if len(kids) < 3 or kids[2].tag != 0x06:
                raise TLVError("ActiveAuthenticationInfo without signature algorithm", source, item.offset)
            out.infos.append(ActiveAuthInfo(oid, raw, _int(kids[1]), decode_oid(kids[2].value, source, kids[2].offset)))
        else:
            out.infos.append(SecurityInfo(oid, raw))
    return out


def encode_security_infos(infos: list[SecurityInfo]) -> bytes:
    """DER ``SET OF``: elements sorted by their encodings (X.690 §11.6)."""
    return tlv.encode(0x31, sorted(i.encode() for i in infos))
