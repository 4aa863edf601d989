"""PACE with Generic Mapping, Doc 9303-11 §4.4 and Appendix G (terminal and chip side).

Supported: id-PACE-ECDH-GM-* on the standardized curves (paramId 8..18: NIST P-192..P-521 and
brainpoolP192r1..P512r1), id-PACE-DH-GM-* on the RFC 5114 §2.1 group (paramId 0), ciphers 3DES,
AES-128, AES-192 and AES-256; passwords MRZ and CAN. Integrated Mapping and CAM are refused with
a clear error (the reader then falls back to BAC when the chip offers it).

Generic mapping needs ``G~ = s*G + H``: a point addition and a multiplication with a generator
that is not the curve's, which the ``cryptography`` package does not expose. So the curve
arithmetic here is plain Python integers in Jacobian coordinates (about 2-5 ms per 256-bit scalar
multiplication in CPython; a PACE run needs four). Secrets are never logged.

The chip side (:class:`PaceChip`) is what the virtual card runs; the two sides share every
primitive, and the ICAO Appendix G vectors pin both down.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import AccessDeniedError, ApduError, CardError, TLVError
from . import crypto, tlv
from ._curves import CURVES
from .apdu import INS, ApduChannel, Command
from .secinfo import PaceInfo, encode_oid
from .sm import SecureMessaging

__all__ = [
    "PASSWORD_CAN",
    "PASSWORD_MRZ",
    "Curve",
    "DHGroup",
    "PaceChip",
    "Password",
    "auth_token",
    "decrypt_nonce",
    "derive_kpi",
    "domain",
    "encrypt_nonce",
    "perform_pace",
]

PASSWORD_MRZ, PASSWORD_CAN = 1, 2

Point = tuple[int, int] | None  # None = the point at infinity


class Curve:
    """A short-Weierstrass curve y^2 = x^3 + ax + b over GF(p), with generator ``g`` of order ``n``."""

    def __init__(self, name: str, p: int, a: int, b: int, g: tuple[int, int], n: int):
        self.name, self.p, self.a, self.b, self.g, self.n = name, p, a, b, g, n
        self.size = (p.bit_length() + 7) // 8

    def with_generator(self, g: tuple[int, int]) -> Curve:
        return Curve(self.name + "~", self.p, self.a, self.b, g, self.n)

    def on_curve(self, pt: Point) -> bool:
        if pt is None:
            return False
        x, y = pt
        return 0 <= x < self.p and 0 <= y < self.p and (y * y - x * x * x - self.a * x - self.b) % self.p == 0

    # Jacobian coordinates (X, Y, Z) with x = X/Z^2, y = Y/Z^3: no inversion per step
    def _jdouble(self, P):
        X, Y, Z = P
        if Y == 0 or Z == 0:
            return (1, 1, 0)
        p = self.p
        YY = Y * Y % p
        S = 4 * X * YY % p
        ZZ = Z * Z % p
        M = (3 * X * X + self.a * ZZ * ZZ) % p
        X3 = (M * M - 2 * S) % p
        return X3, (M * (S - X3) - 8 * YY * YY) % p, 2 * Y * Z % p

    def _jadd(self, P, Q):
        if P[2] == 0:
            return Q
        if Q[2] == 0:
            return P
        p = self.p
        Z1Z1, Z2Z2 = P[2] * P[2] % p, Q[2] * Q[2] % p
        U1, U2 = P[0] * Z2Z2 % p, Q[0] * Z1Z1 % p
        S1, S2 = P[1] * Q[2] * Z2Z2 % p, Q[1] * P[2] * Z1Z1 % p
        if U1 == U2:
            return self._jdouble(P) if S1 == S2 else (1, 1, 0)
        H, R = (U2 - U1) % p, (S2 - S1) % p
        HH = H * H % p
        HHH = H * HH % p
        V = U1 * HH % p
        X3 = (R * R - HHH - 2 * V) % p
        return X3, (R * (V - X3) - S1 * HHH) % p, H * P[2] * Q[2] % p

    def _affine(self, P) -> Point:
        if P[2] == 0:
            return None
        zi = pow(P[2], -1, self.p)
        zi2 = zi * zi % self.p
        return P[0] * zi2 % self.p, P[1] * zi2 * zi % self.p

    def mul(self, k: int, pt: Point) -> Point:
        if pt is None or k % self.n == 0:
            return None
        R, Q = (1, 1, 0), (pt[0], pt[1], 1)
        for bit in bin(k)[2:]:
            R = self._jdouble(R)
            if bit == "1":
                R = self._jadd(R, Q)
        return self._affine(R)

    def add(self, a: Point, b: Point) -> Point:
        if a is None:
            return b
        if b is None:
            return a
        return self._affine(self._jadd((a[0], a[1], 1), (b[0], b[1], 1)))

    def encode(self, pt: Point) -> bytes:
        if pt is None:
            raise ValueError("cannot encode the point at infinity")
        return b"\x04" + pt[0].to_bytes(self.size, "big") + pt[1].to_bytes(self.size, "big")

    def decode(self, data: bytes, what: str = "public key") -> tuple[int, int]:
        """An uncompressed point, checked to lie on the curve (invalid-curve attacks)."""
        if len(data) != 1 + 2 * self.size or data[0] != 0x04:
            raise AccessDeniedError(f"PACE: {what} is not an uncompressed {self.name} point")
        pt = (int.from_bytes(data[1:1 + self.size], "big"), int.from_bytes(data[1 + self.size:], "big"))
        if not self.on_curve(pt):
            raise AccessDeniedError(f"PACE: {what} is not on {self.name}")
        return pt

    # --- the operations PACE needs, uniform with DHGroup --------------------------------------------
    def keypair(self, rng: Callable[[int], int]) -> tuple[int, bytes]:
        sk = rng(self.n)
        return sk, self.encode(self.mul(sk, self.g))

    def shared(self, sk: int, peer: bytes, what: str) -> tuple[int, int]:
        pt = self.mul(sk, self.decode(peer, what))
        if pt is None:
            raise AccessDeniedError("PACE: shared point at infinity")
        return pt

    def map_generator(self, s: int, sk: int, peer: bytes) -> Curve:
        h = self.shared(sk, peer, "mapping key")
        g2 = self.add(self.mul(s, self.g), h)
        if g2 is None:
            raise AccessDeniedError("PACE: mapped generator is the point at infinity")
        return self.with_generator(g2)

    def secret_bytes(self, sk: int, peer: bytes) -> bytes:
        return self.shared(sk, peer, "ephemeral key")[0].to_bytes(self.size, "big")

    def token_key_do(self, pub: bytes) -> bytes:
        return tlv.encode(0x86, pub)


class DHGroup:
    """A MODP group (p, g) with a prime-order subgroup q."""

    def __init__(self, name: str, p: int, g: int, q: int):
        self.name, self.p, self.g, self.q = name, p, g, q
        self.size = (p.bit_length() + 7) // 8

    def _decode(self, data: bytes, what: str) -> int:
        y = int.from_bytes(data, "big")
        if not 1 < y < self.p - 1 or pow(y, self.q, self.p) != 1:
            raise AccessDeniedError(f"PACE: {what} is not in the {self.name} subgroup")
        return y

    def keypair(self, rng: Callable[[int], int]) -> tuple[int, bytes]:
        sk = rng(self.q)
        return sk, pow(self.g, sk, self.p).to_bytes(self.size, "big")

    def map_generator(self, s: int, sk: int, peer: bytes) -> DHGroup:
        h = pow(self._decode(peer, "mapping key"), sk, self.p)
        return DHGroup(self.name + "~", self.p, pow(self.g, s, self.p) * h % self.p, self.q)

    def secret_bytes(self, sk: int, peer: bytes) -> bytes:
        return pow(self._decode(peer, "ephemeral key"), sk, self.p).to_bytes(self.size, "big")

    def token_key_do(self, pub: bytes) -> bytes:
        return tlv.encode(0x84, pub)


# RFC 5114 §2.1: 1024-bit MODP group with 160-bit prime order subgroup (PACE paramId 0)
_RFC5114_1 = DHGroup(
    "RFC5114-1024-160",
    int("B10B8F96A080E01DDE92DE5EAE5D54EC52C99FBCFB06A3C69A6A9DCA52D23B616073E28675A23D189838EF1E2EE652C0"
        "13ECB4AEA906112324975C3CD49B83BFACCBDD7D90C4BD7098488E9C219A73724EFFD6FAE5644738FAA31A4FF55BCCC0"
        "A151AF5F0DC8B4BD45BF37DF365C1A65E68CFDA76D4DA708DF1FB2BC2E4A4371", 16),
    int("A4D1CBD5C3FD34126765A442EFB99905F8104DD258AC507FD6406CFF14266D31266FEA1E5C41564B777E690F5504F213"
        "160217B4B01B886A5E91547F9E2749F4D7FBD7D3B9A92EE1909D0D2263F80A76A6A24C087A091F531DBF0A0169B6A28A"
        "D662A4D18E73AFA32D779D5918D08BC8858F4DCEF97C2A24855E6EEB22B3B2E5", 16),
    int("F518AA8781A8DF278ABA4E7D64B7CB9D49462353", 16))


def domain(parameter_id: int) -> Curve | DHGroup:
    """The standardized domain parameters ``parameter_id`` (Doc 9303-11 §9.5.1)."""
    if parameter_id == 0:
        return _RFC5114_1
    if parameter_id in CURVES:
        name, *vals = CURVES[parameter_id]
        p, a, b, gx, gy, n = (int(v, 16) for v in vals)
        return Curve(name, p, a, b, (gx, gy), n)
    raise CardError(f"PACE domain parameters {parameter_id} are not supported here "
                    "(supported: 0 and 8..18)")


@dataclass(frozen=True)
class Password:
    """The PACE password: ``kind`` PASSWORD_MRZ (value = MRZ_information) or PASSWORD_CAN (digits)."""

    kind: int
    value: str

    @classmethod
    def can(cls, can: str) -> Password:
        if not can.isdigit() or not 1 <= len(can) <= 12:
            raise ValueError("a CAN is 1 to 12 decimal digits (6 on most cards)")
        return cls(PASSWORD_CAN, can)

    @classmethod
    def mrz(cls, mrz_information: str) -> Password:
        return cls(PASSWORD_MRZ, mrz_information)

    def key_seed(self) -> bytes:
        """π: SHA-1(MRZ_information) for MRZ, the ASCII digits for CAN (Doc 9303-11 §9.7.3)."""
        if self.kind == PASSWORD_MRZ:
            return hashlib.sha1(self.value.encode("ascii")).digest()
        return self.value.encode("ascii")

    def __repr__(self) -> str:
        return f"Password({'MRZ' if self.kind == PASSWORD_MRZ else 'CAN'})"


def derive_kpi(password: Password, info: PaceInfo) -> bytes:
    return crypto.kdf(password.key_seed(), crypto.PACE, info.cipher, info.key_length)


def _nonce_cipher(key: bytes, data: bytes, cipher: str, encrypt: bool) -> bytes:
    if cipher == "3DES":
        return (crypto.des3_cbc_encrypt if encrypt else crypto.des3_cbc_decrypt)(key, data)
    return (crypto.aes_cbc_encrypt if encrypt else crypto.aes_cbc_decrypt)(key, data)


def encrypt_nonce(kpi: bytes, s: bytes, cipher: str) -> bytes:
    return _nonce_cipher(kpi, s, cipher, True)


def decrypt_nonce(kpi: bytes, z: bytes, cipher: str) -> bytes:
    return _nonce_cipher(kpi, z, cipher, False)


def session_keys(secret: bytes, info: PaceInfo) -> tuple[bytes, bytes]:
    return (crypto.kdf(secret, crypto.ENC, info.cipher, info.key_length),
            crypto.kdf(secret, crypto.MAC, info.cipher, info.key_length))


def auth_token(ks_mac: bytes, info: PaceInfo, dom: Curve | DHGroup, peer_pub: bytes) -> bytes:
    """T = MAC(KS_MAC, 7F49 {06 OID, 86/84 public key}) over the *other* side's key (§4.4.3.4)."""
    data = tlv.encode(0x7F49, tlv.encode(0x06, encode_oid(info.oid)[2:]) + dom.token_key_do(peer_pub))
    if info.cipher == "3DES":
        return crypto.retail_mac(ks_mac, data)
    return crypto.aes_cmac(ks_mac, data, 8)


def _rng(order: int) -> int:
    return secrets.randbelow(order - 2) + 1


def _ga(channel: ApduChannel, tag: int, payload: bytes | None, last: bool, what: str) -> tlv.TLV:
    body = tlv.encode(0x7C, b"" if payload is None else tlv.encode(tag, payload))
    data = channel.send(Command(0x00 if last else 0x10, INS.GENERAL_AUTHENTICATE, 0, 0, body, le=256), what)
    try:
        dyn = tlv.decode_one(data, f"PACE {what} response", expect=0x7C, allow_trailing=True)
        return dyn
    except TLVError as exc:
        raise ApduError(f"PACE {what}: malformed answer ({exc})", 0x9000) from None


def mse_set_at(info: PaceInfo, password: Password) -> Command:
    data = tlv.encode(0x80, encode_oid(info.oid)[2:]) + tlv.encode(0x83, bytes([password.kind]))
    if info.parameter_id is not None and info.parameter_id > 31:
        data += tlv.encode(0x84, bytes([info.parameter_id]))
    return Command(0x00, INS.MSE, 0xC1, 0xA4, data)


def check_supported(info: PaceInfo) -> None:
    if info.mapping != "GM":
        raise CardError(f"PACE mapping {info.mapping} is not supported (only Generic Mapping)")
    if info.cipher not in ("3DES", "AES"):
        raise CardError(f"PACE cipher of {info.oid} is not supported")
    if info.parameter_id is None:
        raise CardError("PACEInfo without standardized parameterId (explicit domain parameters unsupported)")
    dom = domain(info.parameter_id)
    if (info.agreement == "ECDH") != isinstance(dom, Curve):
        raise CardError(f"{info.describe()}: agreement does not match the domain parameters")


def perform_pace(channel: ApduChannel, password: Password, info: PaceInfo, *,
                 rng: Callable[[int], int] | None = None) -> SecureMessaging:
    """Run PACE-GM on ``channel``, install the AES/3DES SM session on it and return it.

    One attempt only: a wrong password fails at the token exchange with AccessDeniedError (the
    chip answers 63Cx/6300/6982), and this function never retries, so it cannot burn a CAN/PIN
    retry counter. ``rng(order) -> int`` draws private keys (test vectors inject fixed ones).
    """
    check_supported(info)
    rng = rng or _rng
    dom = domain(info.parameter_id)  # type: ignore[arg-type]
    channel.sm = None
    try:
        channel.send(mse_set_at(info, password), "PACE MSE:Set AT")
        # 1. encrypted nonce
        dyn = _ga(channel, 0, None, False, "GA encrypted nonce")
        z = dyn.child(0x80).value
        s = int.from_bytes(decrypt_nonce(derive_kpi(password, info), z, info.cipher), "big")
        # 2. mapping
        sk_map, pk_map = dom.keypair(rng)
        chip_map = _ga(channel, 0x81, pk_map, False, "GA map nonce").child(0x82).value
        mapped = dom.map_generator(s, sk_map, chip_map)
        # 3. key agreement on the mapped generator
        sk_eph, pk_eph = mapped.keypair(rng)
        chip_eph = _ga(channel, 0x83, pk_eph, False, "GA key agreement").child(0x84).value
        if chip_eph == pk_eph:
            raise AccessDeniedError("PACE: the chip echoed our ephemeral key")
        secret = mapped.secret_bytes(sk_eph, chip_eph)
        ks_enc, ks_mac = session_keys(secret, info)
        # 4. mutual authentication
        t_ifd = auth_token(ks_mac, info, dom, chip_eph)
        dyn = _ga(channel, 0x85, t_ifd, True, "GA mutual authentication")
        t_ic = dyn.child(0x86).value
    except TLVError as exc:
        raise ApduError(f"PACE: malformed chip answer ({exc})", 0x9000) from None
    except AccessDeniedError as exc:
        raise AccessDeniedError(f"PACE refused: wrong {'CAN' if password.kind == PASSWORD_CAN else 'MRZ'}? "
                                f"({exc})") from None
    if not crypto.constant_time_eq(t_ic, auth_token(ks_mac, info, dom, pk_eph)):
        raise AccessDeniedError("PACE: the chip's authentication token does not verify")
    sm = SecureMessaging(ks_enc, ks_mac, 0, info.cipher)
    sm.pace_chip_key = chip_eph
    channel.sm = sm
    return sm


class PaceChip:
    """The chip side of one PACE run (the virtual card drives it step by step).

    ``password_seed`` is π as :meth:`Password.key_seed` gives it. Each step takes the terminal's
    data and returns the chip's. :meth:`authenticate` raises AccessDeniedError on a wrong token.
    """

    def __init__(self, info: PaceInfo, password: Password, rng: Callable[[int], int] | None = None,
                 nonce: bytes | None = None):
        check_supported(info)
        self.info = info
        self.dom = domain(info.parameter_id)  # type: ignore[arg-type]
        self.rng = rng or _rng
        self.kpi = derive_kpi(password, info)
        self.s = nonce or secrets.token_bytes(8 if info.cipher == "3DES" else 16)
        self.mapped: Curve | DHGroup | None = None
        self.sk_eph = 0
        self.pk_eph = b""
        self.sm: SecureMessaging | None = None
        self._sk_map = 0
        self._pcd_eph = b""
        self._ks_mac = b""

    def encrypted_nonce(self) -> bytes:
        return encrypt_nonce(self.kpi, self.s, self.info.cipher)

    def map_nonce(self, pcd_map: bytes) -> bytes:
        self._sk_map, pk = self.dom.keypair(self.rng)
        self.mapped = self.dom.map_generator(int.from_bytes(self.s, "big"), self._sk_map, pcd_map)
        return pk

    def key_agreement(self, pcd_eph: bytes) -> bytes:
        if self.mapped is None:
            raise AccessDeniedError("PACE: key agreement before mapping")
        self.sk_eph, self.pk_eph = self.mapped.keypair(self.rng)
        if pcd_eph == self.pk_eph:
            raise AccessDeniedError("PACE: terminal echoed our key")
        secret = self.mapped.secret_bytes(self.sk_eph, pcd_eph)
        self._pcd_eph = pcd_eph
        self._ks_enc, self._ks_mac = session_keys(secret, self.info)
        return self.pk_eph

    def authenticate(self, t_ifd: bytes) -> bytes:
        if not self._ks_mac:
            raise AccessDeniedError("PACE: mutual authentication before key agreement")
        if not crypto.constant_time_eq(t_ifd, auth_token(self._ks_mac, self.info, self.dom, self.pk_eph)):
            raise AccessDeniedError("PACE: terminal token does not verify (wrong password)")
        self.sm = SecureMessaging(self._ks_enc, self._ks_mac, 0, self.info.cipher)
        return auth_token(self._ks_mac, self.info, self.dom, self._pcd_eph)
