"""Card-verifiable certificates of Extended Access Control (BSI TR-03110 part 3, appendix C).

A CV certificate is plain BER-TLV, not X.509::

    7F21 CV certificate
      7F4E certificate body
        5F29 certificate profile identifier (00)
        42   certification authority reference (CAR): the issuer's CHR
        7F49 public key: 06 algorithm OID, then EC 81 p 82 a 83 b 84 G 85 n 86 Y 87 h
             (domain parameters only in CVCA certificates) or RSA 81 n 82 e
        5F20 certificate holder reference (CHR): country (2) + mnemonic + sequence (5)
        7F4C certificate holder authorization template (CHAT): 06 terminal type, 53 bits
        5F25 effective date, 5F24 expiration date: YYMMDD, one unpacked BCD digit a byte
        65   extensions (optional)
      5F37 signature over the body's encoding (ECDSA plain r||s, BSI TR-03111; or RSA)

The chain is CVCA (self-signed, the chip's trust point) -> document verifier (DV) ->
inspection system (IS). For an inspection system the CHAT's discretionary data is one byte:
role in the two top bits (11 CVCA, 10 DV domestic, 01 DV foreign, 00 terminal) and the read
rights in the low bits (``01`` DG3 fingerprints, ``02`` DG4 iris), TR-03110 part 3 §C.4.1.1.
The rights a terminal ends up with are the bitwise AND of the CHATs along its chain.

This module encodes, decodes, signs and verifies certificates, and makes a test hierarchy
(:func:`make_test_hierarchy`). EC keys are on the curves ICAO names by parameter id
(:mod:`._curves`): a CVCA with explicit domain parameters not among them is refused.
Keys are never logged.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric import utils as asym_utils

from ..errors import TLVError
from . import tlv
from ._curves import CURVES
from .secinfo import decode_oid, encode_oid

__all__ = [
    "CHAT",
    "ID_IS",
    "READ_DG3",
    "READ_DG4",
    "ROLE_CVCA",
    "ROLE_DV_DOMESTIC",
    "ROLE_DV_FOREIGN",
    "ROLE_TERMINAL",
    "TA_ALGORITHMS",
    "CVCertificate",
    "CVPublicKey",
    "KeyTerminalSigner",
    "TerminalSigner",
    "TestHierarchy",
    "decode_cvc",
    "issue",
    "make_test_hierarchy",
    "reissue",
    "ta_sign",
    "ta_verify",
    "verify_certificate",
]

#: terminal types of the CHAT (TR-03110 part 3 §C.4): inspection, authentication, signature
ID_IS = "0.4.0.127.0.7.3.1.2.1"
ID_AT = "0.4.0.127.0.7.3.1.2.2"
ID_ST = "0.4.0.127.0.7.3.1.2.3"
ROLE_CVCA, ROLE_DV_DOMESTIC, ROLE_DV_FOREIGN, ROLE_TERMINAL = 3, 2, 1, 0
READ_DG3, READ_DG4 = 0x01, 0x02
ROLE_NAMES = {3: "CVCA", 2: "DV (domestic)", 1: "DV (foreign)", 0: "terminal"}

_TA = "0.4.0.127.0.7.2.2.2"
#: id-TA-* OID -> (key kind, hash, RSA padding), TR-03110 part 3 §A.6.4
TA_ALGORITHMS: dict[str, tuple[str, str, str]] = {
    f"{_TA}.1.1": ("rsa", "sha1", "pkcs1"), f"{_TA}.1.2": ("rsa", "sha256", "pkcs1"),
    f"{_TA}.1.3": ("rsa", "sha1", "pss"), f"{_TA}.1.4": ("rsa", "sha256", "pss"),
    f"{_TA}.1.5": ("rsa", "sha512", "pkcs1"), f"{_TA}.1.6": ("rsa", "sha512", "pss"),
    f"{_TA}.2.1": ("ec", "sha1", ""), f"{_TA}.2.2": ("ec", "sha224", ""), f"{_TA}.2.3": ("ec", "sha256", ""),
    f"{_TA}.2.4": ("ec", "sha384", ""), f"{_TA}.2.5": ("ec", "sha512", ""),
}
_HASH = {"sha1": hashes.SHA1, "sha224": hashes.SHA224, "sha256": hashes.SHA256, "sha384": hashes.SHA384,
         "sha512": hashes.SHA512}
#: ICAO parameter id -> the ``cryptography`` curve of the same domain parameters
_CRYPTO_CURVES = {8: ec.SECP192R1, 10: ec.SECP224R1, 12: ec.SECP256R1, 13: ec.BrainpoolP256R1,
                  15: ec.SECP384R1, 16: ec.BrainpoolP384R1, 17: ec.BrainpoolP512R1, 18: ec.SECP521R1}
_BY_NAME = {c.name: pid for pid, c in ((p, k()) for p, k in _CRYPTO_CURVES.items())}


def _curve_params(pid: int) -> tuple[int, int, int, int, int, int]:
    _, *vals = CURVES[pid]
    p, a, b, gx, gy, n = (int(v, 16) for v in vals)
    return p, a, b, gx, gy, n


def _uint(v: int, size: int | None = None) -> bytes:
    return v.to_bytes(size or max(1, (v.bit_length() + 7) // 8), "big")


@dataclass(frozen=True)
class CHAT:
    """Certificate holder authorization template: terminal type OID and its bit field."""

    oid: str
    bits: bytes

    @property
    def role(self) -> int:
        return self.bits[0] >> 6 if self.bits else 0

    @property
    def rights(self) -> int:
        """The authorization bits without the role, as an integer (IS: READ_DG3 | READ_DG4)."""
        if not self.bits:
            return 0
        return int.from_bytes(bytes([self.bits[0] & 0x3F]) + self.bits[1:], "big")

    @classmethod
    def inspection(cls, role: int, rights: int = READ_DG3 | READ_DG4) -> CHAT:
        return cls(ID_IS, bytes([(role << 6) | (rights & 0x3F)]))

    def encode(self) -> bytes:
        return tlv.encode(0x7F4C, tlv.encode(0x06, encode_oid(self.oid)[2:]) + tlv.encode(0x53, self.bits))

    def describe(self) -> str:
        kind = {ID_IS: "IS", ID_AT: "AT", ID_ST: "ST"}.get(self.oid, self.oid)
        rights = []
        if kind == "IS":
            rights = [n for bit, n in ((READ_DG3, "DG3"), (READ_DG4, "DG4")) if self.rights & bit]
        return f"{kind} {ROLE_NAMES[self.role]}" + (f" read {'+'.join(rights)}" if rights else "")


@dataclass(frozen=True)
class CVPublicKey:
    """A CV certificate's public key. ``params``: EC domain parameter id (``._curves``), known
    from the key itself (CVCA) or inherited from the CVCA; None for RSA."""

    oid: str
    key: Any  # cryptography public key object
    params: int | None = None
    explicit: bool = False  # the certificate carried the EC domain parameters

    def encode(self) -> bytes:
        parts = [tlv.encode(0x06, encode_oid(self.oid)[2:])]
        if isinstance(self.key, rsa.RSAPublicKey):
            nums = self.key.public_numbers()
            parts += [tlv.encode(0x81, _uint(nums.n)), tlv.encode(0x82, _uint(nums.e))]
        else:
            if self.explicit:
                p, a, b, gx, gy, n = _curve_params(self.params)  # type: ignore[arg-type]
                size = (p.bit_length() + 7) // 8
                parts += [tlv.encode(0x81, _uint(p, size)), tlv.encode(0x82, _uint(a, size)),
                          tlv.encode(0x83, _uint(b, size)),
                          tlv.encode(0x84, b"\x04" + _uint(gx, size) + _uint(gy, size)),
                          tlv.encode(0x85, _uint(n, size))]
            parts.append(tlv.encode(0x86, self.point()))
            if self.explicit:
                parts.append(tlv.encode(0x87, b"\x01"))
        return tlv.encode(0x7F49, parts)

    def point(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return self.key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)

    @classmethod
    def from_key(cls, key: Any, oid: str, explicit: bool = False) -> CVPublicKey:
        if isinstance(key, rsa.RSAPublicKey):
            return cls(oid, key)
        pid = _BY_NAME.get(key.curve.name)
        if pid is None:
            raise ValueError(f"curve {key.curve.name} has no ICAO parameter id")
        return cls(oid, key, pid, explicit)


def _decode_key(t: tlv.TLV, src: str, inherited: int | None) -> CVPublicKey:
    kids = t.children
    if not kids or kids[0].tag != 0x06:
        raise TLVError("public key without algorithm OID", src, t.offset)
    oid = decode_oid(kids[0].value, src, kids[0].offset)
    alg = TA_ALGORITHMS.get(oid)
    if alg is None:
        raise TLVError(f"public key algorithm {oid} is not a TA algorithm", src, kids[0].offset)
    dos = {k.tag: k for k in kids[1:]}
    if alg[0] == "rsa":
        if 0x81 not in dos or 0x82 not in dos:
            raise TLVError("RSA public key without modulus or exponent", src, t.offset)
        n, e = int.from_bytes(dos[0x81].value, "big"), int.from_bytes(dos[0x82].value, "big")
        try:
            return CVPublicKey(oid, rsa.RSAPublicNumbers(e, n).public_key())
        except ValueError as exc:
            raise TLVError(f"unusable RSA key: {exc}", src, t.offset) from None
    if 0x86 not in dos:
        raise TLVError("EC public key without point (86)", src, t.offset)
    pid, explicit = inherited, False
    if 0x81 in dos:
        explicit = True
        try:
            got = tuple(int.from_bytes(dos[tag].value, "big") for tag in (0x81, 0x82, 0x83, 0x85))
            g = dos[0x84].value
        except KeyError:
            raise TLVError("EC domain parameters incomplete", src, t.offset) from None
        pid = None
        for cand in _CRYPTO_CURVES:
            p, a, b, gx, gy, n = _curve_params(cand)
            size = (p.bit_length() + 7) // 8
            if got == (p, a, b, n) and g == b"\x04" + _uint(gx, size) + _uint(gy, size):
                pid = cand
                break
        if pid is None:
            raise TLVError("EC domain parameters are not a curve supported here", src, t.offset)
    if pid is None:
        raise TLVError("EC key without domain parameters and none inherited from a CVCA", src, t.offset)
    try:
        key = ec.EllipticCurvePublicKey.from_encoded_point(_CRYPTO_CURVES[pid](), dos[0x86].value)
    except ValueError:
        raise TLVError("EC public point is not on the curve", src, dos[0x86].offset) from None
    return CVPublicKey(oid, key, pid, explicit)


def _date(t: tlv.TLV, src: str) -> dt.date:
    v = t.value
    if len(v) != 6 or any(d > 9 for d in v):
        raise TLVError("date is not six unpacked BCD digits", src, t.value_offset)
    try:
        return dt.date(2000 + v[0] * 10 + v[1], v[2] * 10 + v[3], v[4] * 10 + v[5])
    except ValueError:
        raise TLVError("date out of range", src, t.value_offset) from None


def _enc_date(d: dt.date) -> bytes:
    return bytes(int(c) for c in d.strftime("%y%m%d"))


@dataclass
class CVCertificate:
    """One decoded (or freshly issued) CV certificate. ``body`` is the body's exact encoding
    (``7F4E ...``), which the signature covers."""

    car: str
    chr: str
    public_key: CVPublicKey
    chat: CHAT
    effective: dt.date
    expiration: dt.date
    signature: bytes = field(repr=False, default=b"")
    body: bytes = field(repr=False, default=b"")
    extensions: bytes = field(repr=False, default=b"")
    profile: int = 0

    @property
    def role(self) -> int:
        return self.chat.role

    @property
    def self_signed(self) -> bool:
        return self.car == self.chr

    def encode(self) -> bytes:
        return tlv.encode(0x7F21, self.body + tlv.encode(0x5F37, self.signature))

    def pso_data(self) -> bytes:
        """What PSO:Verify Certificate carries: the body and the signature, without 7F21."""
        return self.body + tlv.encode(0x5F37, self.signature)

    def valid_on(self, day: dt.date) -> bool:
        return self.effective <= day <= self.expiration

    def describe(self) -> str:
        return (f"{self.chr} ({self.chat.describe()}, by {self.car}, "
                f"{self.effective.isoformat()}..{self.expiration.isoformat()})")


def _encode_body(car: str, chr_: str, key: CVPublicKey, chat: CHAT, eff: dt.date, exp: dt.date,
                 extensions: bytes = b"") -> bytes:
    return tlv.encode(0x7F4E, [tlv.encode(0x5F29, b"\x00"), tlv.encode(0x42, car.encode("ascii")), key.encode(),
                               tlv.encode(0x5F20, chr_.encode("ascii")), chat.encode(),
                               tlv.encode(0x5F25, _enc_date(eff)), tlv.encode(0x5F24, _enc_date(exp)), extensions])


def decode_cvc(data: bytes, *, domain: int | None = None, source: str = "CV certificate",
               pso: bool = False) -> CVCertificate:
    """Decode a certificate (``7F21 {7F4E, 5F37}``, or with ``pso`` the PSO:Verify form
    ``7F4E 5F37``). ``domain``: the EC parameter id to give a key that carries no domain
    parameters (the CVCA's). TLVError names the offset of what is malformed."""
    if pso:
        items = tlv.decode(data, source)
    else:
        items = tlv.decode_one(data, source, expect=0x7F21).children
    body_t = next((i for i in items if i.tag == 0x7F4E), None)
    sig_t = next((i for i in items if i.tag == 0x5F37), None)
    if body_t is None or sig_t is None:
        raise TLVError("certificate without body (7F4E) or signature (5F37)", source, 0)
    dos = {k.tag: k for k in body_t.children}
    for tag, what in ((0x5F29, "profile identifier"), (0x42, "CAR"), (0x7F49, "public key"), (0x5F20, "CHR"),
                      (0x7F4C, "CHAT"), (0x5F25, "effective date"), (0x5F24, "expiration date")):
        if tag not in dos:
            raise TLVError(f"certificate body without {what} ({tag:X})", source, body_t.offset)
    chat_kids = {k.tag: k for k in dos[0x7F4C].children}
    if 0x06 not in chat_kids or 0x53 not in chat_kids:
        raise TLVError("CHAT without terminal type or bits", source, dos[0x7F4C].offset)
    try:
        car, chr_ = dos[0x42].value.decode("ascii"), dos[0x5F20].value.decode("ascii")
    except UnicodeDecodeError:
        raise TLVError("CAR/CHR not ASCII", source, dos[0x42].offset) from None
    cert = CVCertificate(car=car, chr=chr_, public_key=_decode_key(dos[0x7F49], source, domain),
                         chat=CHAT(decode_oid(chat_kids[0x06].value, source, chat_kids[0x06].offset),
                                   chat_kids[0x53].value),
                         effective=_date(dos[0x5F25], source), expiration=_date(dos[0x5F24], source),
                         signature=sig_t.value, body=body_t.encode(),
                         extensions=dos[0x65].encode() if 0x65 in dos else b"",
                         profile=int.from_bytes(dos[0x5F29].value, "big"))
    return cert


# --- signatures ------------------------------------------------------------------------------------

def ta_sign(private_key: Any, oid: str, data: bytes) -> bytes:
    """Sign ``data`` as TA algorithm ``oid`` prescribes: ECDSA as plain ``r||s``, RSA PKCS#1 v1.5
    or PSS (salt = hash length)."""
    kind, hname, pad = TA_ALGORITHMS[oid]
    h = _HASH[hname]()
    if kind == "ec":
        r, s = asym_utils.decode_dss_signature(private_key.sign(data, ec.ECDSA(h)))
        size = (private_key.curve.key_size + 7) // 8
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    if pad == "pss":
        return private_key.sign(data, padding.PSS(padding.MGF1(h), h.digest_size), h)
    return private_key.sign(data, padding.PKCS1v15(), h)


def ta_verify(key: CVPublicKey, data: bytes, signature: bytes) -> bool:
    """True when ``signature`` over ``data`` verifies with ``key`` under its TA algorithm."""
    kind, hname, pad = TA_ALGORITHMS[key.oid]
    h = _HASH[hname]()
    try:
        if kind == "ec":
            if not isinstance(key.key, ec.EllipticCurvePublicKey) or len(signature) % 2:
                return False
            half = len(signature) // 2
            der = asym_utils.encode_dss_signature(int.from_bytes(signature[:half], "big"),
                                                  int.from_bytes(signature[half:], "big"))
            key.key.verify(der, data, ec.ECDSA(h))
        elif pad == "pss":
            key.key.verify(signature, data, padding.PSS(padding.MGF1(h), h.digest_size), h)
        else:
            key.key.verify(signature, data, padding.PKCS1v15(), h)
        return True
    except (InvalidSignature, ValueError):
        return False


class TerminalSigner(Protocol):
    """Signs for a terminal (the IS key, or a CA key issuing certificates): ``sign(data)``
    returns the signature in the form TA uses for ``oid``. Implemented over a key object
    (:class:`KeyTerminalSigner`) and over a PKCS#11 token
    (:class:`biostation.card.pkcs11.Pkcs11TerminalSigner`)."""

    oid: str

    def sign(self, data: bytes) -> bytes: ...


@dataclass
class KeyTerminalSigner:
    """A :class:`TerminalSigner` over a ``cryptography`` private key (tests, development)."""

    private_key: Any = field(repr=False)
    oid: str

    def sign(self, data: bytes) -> bytes:
        return ta_sign(self.private_key, self.oid, data)


def issue(issuer: TerminalSigner, car: str, chr_: str, public_key: CVPublicKey, chat: CHAT,
          effective: dt.date, expiration: dt.date) -> CVCertificate:
    """A certificate signed by ``issuer`` (whose own CHR is ``car``)."""
    body = _encode_body(car, chr_, public_key, chat, effective, expiration)
    return CVCertificate(car, chr_, public_key, chat, effective, expiration, issuer.sign(body), body)


def verify_certificate(cert: CVCertificate, issuer_key: CVPublicKey) -> bool:
    """The signature of ``cert`` checks with the issuer's public key."""
    return ta_verify(issuer_key, cert.body, cert.signature)


# --- a test hierarchy ------------------------------------------------------------------------------

@dataclass
class TestHierarchy:
    """CVCA -> DV -> IS with their private keys (keys: None where they live in a token)."""

    cvca: CVCertificate
    dv: CVCertificate
    inspection: CVCertificate
    cvca_key: Any = field(repr=False, default=None)
    dv_key: Any = field(repr=False, default=None)
    is_key: Any = field(repr=False, default=None)

    __test__ = False

    @property
    def chain(self) -> list[CVCertificate]:
        """What a terminal sends: DV then IS (the chip holds the CVCA)."""
        return [self.dv, self.inspection]

    def terminal_signer(self) -> KeyTerminalSigner:
        return KeyTerminalSigner(self.is_key, self.inspection.public_key.oid)

    def write(self, folder: Path) -> dict[str, Path]:
        """Write ``cvca.cvcert``, ``dv.cvcert``, ``is.cvcert`` (binary CV certificates) and the
        private keys present as PEM files (0600): ``cvca.key``, ``dv.key``, ``is.key``."""
        import os

        from cryptography.hazmat.primitives import serialization

        folder.mkdir(parents=True, exist_ok=True)
        out: dict[str, Path] = {}
        for name, cert, key in (("cvca", self.cvca, self.cvca_key), ("dv", self.dv, self.dv_key),
                                ("is", self.inspection, self.is_key)):
            p = folder / f"{name}.cvcert"
            p.write_bytes(cert.encode())
            out[f"{name}_cert"] = p
            if key is None:
                continue
            kp = folder / f"{name}.key"
            fd = os.open(kp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
            out[f"{name}_key"] = kp
        return out


def _new_key(kind: str) -> Any:
    if kind == "rsa":
        return rsa.generate_private_key(65537, 2048)
    pid = {"brainpoolP256r1": 13, "ec": 13, "P-256": 12, "brainpoolP384r1": 16, "P-384": 15}[kind]
    return ec.generate_private_key(_CRYPTO_CURVES[pid]())


def make_test_hierarchy(country: str = "VN", key_type: str = "ec", *, today: dt.date | None = None,
                        is_rights: int = READ_DG3 | READ_DG4, is_valid_days: int = 30,
                        is_key: Any = None, is_public: Any = None, seq: int = 1) -> TestHierarchy:
    """A fresh CVCA (3 years), domestic DV (90 days) and IS (``is_valid_days``) for ``country``.

    CHRs are ``<country>CVCA<seq:05>``, ``<country>DV<seq:05>``, ``<country>IS<seq:05>``. The IS
    key is made here unless ``is_public`` (its public key, the private one elsewhere, e.g. in a
    PKCS#11 token) is given. ECDSA-SHA-256 on brainpoolP256r1 by default; ``key_type`` ``rsa``
    uses RSA-PSS-SHA-256 (2048 bits), ``P-256`` the NIST curve.
    """
    today = today or dt.datetime.now(dt.UTC).date()
    oid = f"{_TA}.1.4" if key_type == "rsa" else f"{_TA}.2.3"
    ck, dk = _new_key(key_type), _new_key(key_type)
    ik = is_key if is_key is not None or is_public is not None else _new_key(key_type)
    ipub = is_public if is_public is not None else ik.public_key()
    cvca_chr, dv_chr, is_chr = f"{country}CVCA{seq:05d}", f"{country}DV{seq:05d}", f"{country}IS{seq:05d}"
    start = today - dt.timedelta(days=1)
    cvca = issue(KeyTerminalSigner(ck, oid), cvca_chr, cvca_chr, CVPublicKey.from_key(ck.public_key(), oid, True),
                 CHAT.inspection(ROLE_CVCA), start, today + dt.timedelta(days=3 * 365))
    dv = issue(KeyTerminalSigner(ck, oid), cvca_chr, dv_chr, CVPublicKey.from_key(dk.public_key(), oid),
               CHAT.inspection(ROLE_DV_DOMESTIC), start, today + dt.timedelta(days=90))
    is_cert = issue(KeyTerminalSigner(dk, oid), dv_chr, is_chr, CVPublicKey.from_key(ipub, oid),
                    CHAT.inspection(ROLE_TERMINAL, is_rights), start, today + dt.timedelta(days=is_valid_days))
    return TestHierarchy(cvca, dv, is_cert, ck, dk, ik if is_public is None else None)


def reissue(h: TestHierarchy, which: str, **changes: Any) -> CVCertificate:
    """A copy of ``h.dv`` or ``h.inspection`` with fields changed (``chat``, ``effective``,
    ``expiration``, ``car``), signed again by its issuer: for negative tests and renewals."""
    cert = getattr(h, which)
    issuer_key, issuer = (h.cvca_key, h.cvca) if which == "dv" else (h.dv_key, h.dv)
    c = replace(cert, **changes)
    return issue(KeyTerminalSigner(issuer_key, issuer.public_key.oid), c.car, c.chr, c.public_key, c.chat,
                 c.effective, c.expiration)
