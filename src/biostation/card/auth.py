"""Active authentication (DG15) and chip authentication (DG14), Doc 9303-11 §6.1 and §6.2.

* Active authentication proves the chip holds the private key of DG15 (so the chip is not a
  clone): the terminal sends a fresh 8-byte challenge in INTERNAL AUTHENTICATE and checks the
  signature. RSA keys sign with ISO/IEC 9796-2 scheme 1 (message recovery); EC keys sign
  ECDSA with the hash that DG14's ActiveAuthenticationInfo names, plain ``r||s`` (BSI TR-03111).
* Chip authentication is an ECDH with the static key of DG14 that also replaces the SM session
  keys, so the rest of the read is bound to a genuine chip.

Both the terminal functions and the chip-side helpers (used by the virtual card) are here.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric import utils as asym_utils

from ..errors import ApduError, CardError, VerificationError
from . import crypto, tlv
from .apdu import INS, ApduChannel, Command
from .lds import DG14, DG15
from .secinfo import ChipAuthInfo, ChipAuthPublicKeyInfo, encode_oid
from .sm import SecureMessaging

__all__ = [
    "AA_ALGORITHMS",
    "AAResult",
    "aa_sign",
    "active_authentication",
    "ca_chip_agree",
    "chip_authentication",
    "iso9796_2_sign",
    "iso9796_2_verify",
]

#: signature algorithm OIDs an ActiveAuthenticationInfo may name -> hash
AA_ALGORITHMS = {
    "0.4.0.127.0.7.1.1.4.1.1": "sha1", "0.4.0.127.0.7.1.1.4.1.2": "sha224", "0.4.0.127.0.7.1.1.4.1.3": "sha256",
    "0.4.0.127.0.7.1.1.4.1.4": "sha384", "0.4.0.127.0.7.1.1.4.1.5": "sha512",  # ecdsa-plain-SHAx
    "1.2.840.10045.4.1": "sha1", "1.2.840.10045.4.3.1": "sha224", "1.2.840.10045.4.3.2": "sha256",
    "1.2.840.10045.4.3.3": "sha384", "1.2.840.10045.4.3.4": "sha512",  # ecdsa-with-SHAx
}
_HASH_OBJ = {"sha1": hashes.SHA1, "sha224": hashes.SHA224, "sha256": hashes.SHA256, "sha384": hashes.SHA384,
             "sha512": hashes.SHA512}
# ISO/IEC 10118-3 hash identifiers used in the two-byte 9796-2 trailer xx CC
_TRAILER_IDS = {0x33: "sha1", 0x34: "sha256", 0x35: "sha512", 0x36: "sha384", 0x38: "sha224"}


@dataclass
class AAResult:
    ok: bool
    algorithm: str
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "algorithm": self.algorithm, "detail": self.detail}


def iso9796_2_verify(key: rsa.RSAPublicKey, signature: bytes, m2: bytes) -> tuple[bool, str]:
    """ISO/IEC 9796-2 digital signature scheme 1, partial recovery, with M2 = the challenge."""
    nums = key.public_numbers()
    k = (nums.n.bit_length() + 7) // 8
    m = pow(int.from_bytes(signature, "big"), nums.e, nums.n).to_bytes(k, "big")
    if m[0] & 0xC0 != 0x40 or (m[0] & 0x0F) != 0x0A:
        return False, "bad 9796-2 header"
    if m[-1] == 0xBC:
        hname, tlen = "sha1", 1
    elif m[-1] == 0xCC and m[-2] in _TRAILER_IDS:
        hname, tlen = _TRAILER_IDS[m[-2]], 2
    else:
        return False, "bad 9796-2 trailer"
    hlen = hashlib.new(hname).digest_size
    m1, digest = m[1:k - hlen - tlen], m[k - hlen - tlen:k - tlen]
    return crypto.constant_time_eq(hashlib.new(hname, m1 + m2).digest(), digest), f"RSA ISO 9796-2 {hname}"


def iso9796_2_sign(key: rsa.RSAPrivateKey, m2: bytes, hash_name: str = "sha1") -> bytes:
    """Chip side: sign ``m2`` with full-length random M1 (scheme 1, partial recovery)."""
    nums = key.private_numbers()
    n = nums.public_numbers.n
    k = (n.bit_length() + 7) // 8
    trailer = b"\xbc" if hash_name == "sha1" else bytes([{v: i for i, v in _TRAILER_IDS.items()}[hash_name], 0xCC])
    hlen = hashlib.new(hash_name).digest_size
    m1 = os.urandom(k - 1 - hlen - len(trailer))
    rep = b"\x6a" + m1 + hashlib.new(hash_name, m1 + m2).digest() + trailer
    return pow(int.from_bytes(rep, "big"), nums.d, n).to_bytes(k, "big")


def aa_sign(private_key: Any, challenge: bytes, hash_name: str = "sha256") -> bytes:
    """Chip side of active authentication: the INTERNAL AUTHENTICATE response."""
    if isinstance(private_key, rsa.RSAPrivateKey):
        return iso9796_2_sign(private_key, challenge, hash_name if hash_name != "sha256" else "sha1")
    der = private_key.sign(challenge, ec.ECDSA(_HASH_OBJ[hash_name]()))
    r, s = asym_utils.decode_dss_signature(der)
    size = (private_key.curve.key_size + 7) // 8
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def active_authentication(channel: ApduChannel, dg15: DG15, dg14: DG14 | None = None,
                          challenge: bytes | None = None) -> AAResult:
    """Challenge the chip and verify its signature with the DG15 key. Never raises for a bad
    signature (the result says so); raises CardError subclasses for transport faults."""
    challenge = challenge or os.urandom(8)
    key = dg15.public_key()
    try:
        sig = channel.send(Command(0x00, INS.INTERNAL_AUTHENTICATE, 0, 0, challenge, le=256),
                           "ACTIVE AUTHENTICATION")
    except ApduError as exc:
        return AAResult(False, "", f"chip refused INTERNAL AUTHENTICATE (SW {exc.sw:04X})")
    if isinstance(key, rsa.RSAPublicKey):
        ok, alg = iso9796_2_verify(key, sig, challenge)
        return AAResult(ok, alg, "" if ok else "signature does not verify")
    if isinstance(key, ec.EllipticCurvePublicKey):
        aa_info = dg14.security_infos.active_auth if dg14 is not None else None
        if aa_info is None:
            return AAResult(False, "ECDSA", "EC key in DG15 but no ActiveAuthenticationInfo in DG14")
        hname = AA_ALGORITHMS.get(aa_info.signature_algorithm)
        if hname is None:
            return AAResult(False, aa_info.signature_algorithm, "signature algorithm not supported")
        if len(sig) % 2:
            return AAResult(False, f"ECDSA {hname}", "odd-length plain signature")
        half = len(sig) // 2
        der = asym_utils.encode_dss_signature(int.from_bytes(sig[:half], "big"), int.from_bytes(sig[half:], "big"))
        try:
            key.verify(der, challenge, ec.ECDSA(_HASH_OBJ[hname]()))
            return AAResult(True, f"ECDSA {hname}")
        except InvalidSignature:
            return AAResult(False, f"ECDSA {hname}", "signature does not verify")
    return AAResult(False, type(key).__name__, "unsupported DG15 key type")


def _pick_ca(dg14: DG14) -> tuple[ChipAuthInfo, ChipAuthPublicKeyInfo]:
    infos = dg14.security_infos
    for info in infos.chip_auth:
        if info.agreement != "ECDH":
            continue
        for key in infos.chip_auth_keys:
            if info.key_id is None or key.key_id is None or key.key_id == info.key_id:
                return info, key
    raise CardError("DG14 offers no ECDH chip authentication this reader supports")


def chip_authentication(channel: ApduChannel, dg14: DG14) -> SecureMessaging:
    """Run CA (ECDH) and restart SM with the new keys; returns the new session.

    VerificationError if the chip refuses (the chip may be a clone); the old session is gone
    then, as the chip drops it too.
    """
    info, keyinfo = _pick_ca(dg14)
    try:
        chip_key = serialization.load_der_public_key(keyinfo.public_key_info)
    except (ValueError, TypeError) as exc:
        raise VerificationError(f"chip authentication key in DG14 unusable: {exc}") from None
    if not isinstance(chip_key, ec.EllipticCurvePublicKey):
        raise VerificationError("chip authentication key is not an EC key")
    eph = ec.generate_private_key(chip_key.curve)
    shared = eph.exchange(ec.ECDH(), chip_key)
    pub = eph.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    try:
        if info.cipher == "3DES":  # CA v1: MSE:Set KAT carries the key
            data = tlv.encode(0x91, pub) + (tlv.encode(0x84, bytes([info.key_id])) if info.key_id is not None else b"")
            channel.send(Command(0x00, INS.MSE, 0x41, 0xA6, data), "CA MSE:Set KAT")
        else:
            data = tlv.encode(0x80, encode_oid(info.oid)[2:])
            if info.key_id is not None:
                data += tlv.encode(0x84, bytes([info.key_id]))
            channel.send(Command(0x00, INS.MSE, 0x41, 0xA4, data), "CA MSE:Set AT")
            channel.send(Command(0x00, INS.GENERAL_AUTHENTICATE, 0, 0, tlv.encode(0x7C, tlv.encode(0x80, pub)),
                                 le=256), "CA GENERAL AUTHENTICATE")
    except CardError as exc:
        channel.sm = None
        raise VerificationError(f"chip authentication failed: {exc}") from None
    previous = channel.sm
    sm = SecureMessaging(crypto.kdf(shared, crypto.ENC, info.cipher, info.key_length),
                         crypto.kdf(shared, crypto.MAC, info.cipher, info.key_length), 0, info.cipher)
    sm.pace_chip_key = previous.pace_chip_key if previous is not None else None
    sm.ca_terminal_key = pub  # terminal authentication signs over it
    channel.sm = sm
    return sm


def ca_chip_agree(private_key: ec.EllipticCurvePrivateKey, terminal_pub: bytes, cipher: str,
                  key_length: int) -> SecureMessaging:
    """Chip side of CA: the session that replaces the current one after the answer is sent."""
    try:
        peer = ec.EllipticCurvePublicKey.from_encoded_point(private_key.curve, terminal_pub)
    except ValueError:
        raise VerificationError("terminal CA key is not a point on the chip's curve") from None
    shared = private_key.exchange(ec.ECDH(), peer)
    return SecureMessaging(crypto.kdf(shared, crypto.ENC, cipher, key_length),
                           crypto.kdf(shared, crypto.MAC, cipher, key_length), 0, cipher)
