"""Symmetric primitives of ICAO 9303 secure messaging (Doc 9303-11 §9.7, §9.8).

* :func:`kdf`: key derivation ``H(K || counter)``; SHA-1 for 3DES and AES-128, SHA-256 for
  AES-192/256 (Doc 9303-11 §9.7.1). Counter 1 = encryption key, 2 = MAC key, 3 = PACE password key.
* 3DES two-key (EDE) in CBC with a zero IV, and the ISO/IEC 9797-1 MAC algorithm 3 ("retail MAC":
  single-DES CBC with Ka, then decrypt with Kb and encrypt with Ka), padding method 2.
* AES in CBC and AES-CMAC (truncated to 8 bytes for SM, NIST SP 800-38B).

The ``cryptography`` package does all block-cipher work; 3DES lives in its ``decrepit`` module,
as 3DES is there for legacy cards only. Keys are bytes and never logged.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = [
    "ENC",
    "MAC",
    "PACE",
    "adjust_parity",
    "aes_cbc_decrypt",
    "aes_cbc_encrypt",
    "aes_cmac",
    "aes_ecb_encrypt",
    "constant_time_eq",
    "des3_cbc_decrypt",
    "des3_cbc_encrypt",
    "kdf",
    "pad",
    "retail_mac",
    "unpad",
]

ENC, MAC, PACE = 1, 2, 3


def kdf(secret: bytes, counter: int, cipher: str = "3DES", key_len: int = 16) -> bytes:
    """Doc 9303-11 §9.7.1. ``cipher`` is ``"3DES"`` or ``"AES"``; ``key_len`` 16, 24 or 32.

    3DES keys come back parity-adjusted (DES ignores parity; cards and vectors print them so).
    """
    data = bytes(secret) + counter.to_bytes(4, "big")
    if cipher == "3DES":
        return adjust_parity(hashlib.sha1(data).digest()[:16])
    if cipher != "AES":
        raise ValueError(f"unknown cipher {cipher!r}")
    if key_len == 16:
        return hashlib.sha1(data).digest()[:16]
    if key_len in (24, 32):
        return hashlib.sha256(data).digest()[:key_len]
    raise ValueError(f"AES key length {key_len}")


def adjust_parity(key: bytes) -> bytes:
    """Set each byte's low bit so the byte has odd parity (DES key convention)."""
    out = bytearray()
    for b in key:
        b &= 0xFE
        out.append(b | (bin(b).count("1") % 2 == 0))
    return bytes(out)


def pad(data: bytes, block: int = 8) -> bytes:
    """ISO/IEC 9797-1 padding method 2: ``80`` then zeros up to a block boundary."""
    data = bytes(data) + b"\x80"
    return data + b"\x00" * (-len(data) % block)


def unpad(data: bytes) -> bytes:
    """Remove method-2 padding; ValueError if there is none."""
    i = len(data) - 1
    while i >= 0 and data[i] == 0:
        i -= 1
    if i < 0 or data[i] != 0x80:
        raise ValueError("no ISO 9797-1 method 2 padding")
    return bytes(data[:i])


def _3des_key(key: bytes) -> bytes:
    if len(key) == 16:
        return key + key[:8]
    if len(key) == 8:
        return key * 3
    if len(key) == 24:
        return key
    raise ValueError(f"3DES key of {len(key)} bytes")


def des3_cbc_encrypt(key: bytes, data: bytes, iv: bytes = bytes(8)) -> bytes:
    e = Cipher(TripleDES(_3des_key(key)), modes.CBC(iv)).encryptor()
    return e.update(data) + e.finalize()


def des3_cbc_decrypt(key: bytes, data: bytes, iv: bytes = bytes(8)) -> bytes:
    d = Cipher(TripleDES(_3des_key(key)), modes.CBC(iv)).decryptor()
    return d.update(data) + d.finalize()


def retail_mac(key: bytes, data: bytes, padded: bool = False) -> bytes:
    """ISO/IEC 9797-1 MAC algorithm 3 with DES, 8-byte result. ``key`` = Ka || Kb (16 bytes)."""
    if not padded:
        data = pad(data)
    ka, kb = key[:8], key[8:16]
    h = des3_cbc_encrypt(ka, data)[-8:]  # single DES CBC with Ka
    d = Cipher(TripleDES(kb * 3), modes.ECB()).decryptor()
    h = d.update(h) + d.finalize()
    e = Cipher(TripleDES(ka * 3), modes.ECB()).encryptor()
    return e.update(h) + e.finalize()


def aes_cbc_encrypt(key: bytes, data: bytes, iv: bytes = bytes(16)) -> bytes:
    e = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return e.update(data) + e.finalize()


def aes_cbc_decrypt(key: bytes, data: bytes, iv: bytes = bytes(16)) -> bytes:
    d = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    return d.update(data) + d.finalize()


def aes_ecb_encrypt(key: bytes, block: bytes) -> bytes:
    e = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return e.update(block) + e.finalize()


def aes_cmac(key: bytes, data: bytes, length: int = 8) -> bytes:
    c = cmac.CMAC(algorithms.AES(key))
    c.update(data)
    return c.finalize()[:length]


def constant_time_eq(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)
