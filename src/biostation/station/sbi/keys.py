"""Device keys of the SBI service and the compact JWS (RFC 7515) it signs with.

The station keeps a test **device-provider CA** and one **device key** with its certificate per
SBI device, made on first use under ``<data_dir>/sbi/keys`` (private keys 0600, RSA 2048, the
certificate issued by the CA for ``device_key_days``). A MOSIP adopter trusts a device only when
the CA's certificate is uploaded to its partner trust domain ``DEVICE``; ``ca.pem`` is that file.
With ``Settings.sbi_key_source = "pkcs11"`` each device key is instead an RSA 2048 key pair made
inside a PKCS#11 token (sensitive, never extractable; signing with ``CKM_SHA256_RSA_PKCS`` in
the token); its certificate, and the CA, stay in the folder.

:func:`jws_sign` makes the JWS the SBI spec 0.9.5 asks for: header
``{"alg":"RS256","typ":"JWT","x5c":[<base64 DER of the device certificate>]}``, the payload
the raw JSON bytes, base64url without padding throughout. Thread-safe.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

__all__ = ["DeviceKey", "DeviceKeys", "TokenConfig", "b64url", "jws_sign"]

#: validity of a device certificate (the spec recommends rotating device keys every 30 days)
DEVICE_KEY_DAYS = 30
CA_DAYS = 3650


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class DeviceKey:
    """One device's private key (a ``cryptography`` key or a PKCS#11 signer) and certificate."""

    def __init__(self, key: Any, cert: x509.Certificate):
        self.key = key
        self.cert = cert
        self.cert_der = cert.public_bytes(serialization.Encoding.DER)

    def sign(self, data: bytes) -> bytes:
        """RSASSA-PKCS1-v1_5 with SHA-256 (RS256)."""
        if isinstance(self.key, rsa.RSAPrivateKey):
            return self.key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        return self.key.sign(data, "sha256")  # card.pkcs11.Pkcs11Signer: hashed and signed in the token

    @property
    def thumbprint(self) -> str:
        """SHA-256 of the DER certificate, upper-case hex."""
        return hashlib.sha256(self.cert_der).hexdigest().upper()


def jws_sign(payload: bytes | dict, key: DeviceKey) -> str:
    """Compact JWS, RS256, over ``payload`` (a dict is serialised as compact JSON)."""
    if isinstance(payload, dict):
        payload = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    header = {"alg": "RS256", "typ": "JWT", "x5c": [base64.b64encode(key.cert_der).decode("ascii")]}
    signing_input = b64url(json.dumps(header, separators=(",", ":")).encode()) + "." + b64url(payload)
    sig = key.sign(signing_input.encode("ascii"))
    return signing_input + "." + b64url(sig)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, 0o600)


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@dataclass(frozen=True)
class TokenConfig:
    """Where device keys live when they are in a PKCS#11 token (``pin`` is never logged)."""

    module: str
    token: str
    pin: str = field(repr=False)


class DeviceKeys:
    """The CA and the device keys under ``folder`` (or device keys in ``token``); each made on
    first use and reused after."""

    def __init__(self, folder: Path, provider: str = "biostation", token: TokenConfig | None = None):
        self.folder = Path(folder)
        self.provider = provider
        self.token = token
        self._lock = threading.Lock()
        self._cache: dict[str, DeviceKey] = {}
        self._ca: DeviceKey | None = None

    def close(self) -> None:
        """Close the token sessions of device keys kept in a PKCS#11 token."""
        with self._lock:
            for key in self._cache.values():
                close = getattr(key.key, "close", None)
                if close is not None:
                    close()
            self._cache.clear()

    @property
    def ca_path(self) -> Path:
        return self.folder / "ca.pem"

    def ca(self) -> DeviceKey:
        """The device-provider CA (self-signed), made on first use."""
        with self._lock:
            return self._ca_locked()

    def _ca_locked(self) -> DeviceKey:
        if self._ca is not None:
            return self._ca
        self.folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self.folder, 0o700)
        kpath = self.folder / "ca.key"
        if kpath.is_file() and self.ca_path.is_file():
            key = serialization.load_pem_private_key(kpath.read_bytes(), None)
            cert = x509.load_pem_x509_certificate(self.ca_path.read_bytes())
        else:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.provider),
                              x509.NameAttribute(NameOID.COMMON_NAME, f"{self.provider} SBI device CA (test)")])
            now = dt.datetime.now(dt.UTC)
            cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                    .public_key(key.public_key()).serial_number(x509.random_serial_number())
                    .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=CA_DAYS))
                    .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                    .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                                   critical=True)
                    .sign(key, hashes.SHA256()))
            _write_private(kpath, _pem_key(key))
            self.ca_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        assert isinstance(key, rsa.RSAPrivateKey)
        self._ca = DeviceKey(key, cert)
        return self._ca

    def device(self, serial: str) -> DeviceKey:
        """The key and certificate of the device with serial number ``serial`` (renewed when its
        certificate has expired)."""
        stem = re.sub(r"[^A-Za-z0-9_.-]", "_", serial)[:80] or "device"
        with self._lock:
            cached = self._cache.get(stem)
            now = dt.datetime.now(dt.UTC)
            if cached is not None and cached.cert.not_valid_after_utc > now:
                return cached
            ca = self._ca_locked()
            kpath, cpath = self.folder / f"{stem}.key", self.folder / f"{stem}.pem"
            if self.token is not None:
                self._cache[stem] = self._token_key(stem, serial, ca, cpath, now)
                return self._cache[stem]
            if kpath.is_file() and cpath.is_file():
                cert = x509.load_pem_x509_certificate(cpath.read_bytes())
                if cert.not_valid_after_utc > now and cert.issuer == ca.cert.subject:
                    key = serialization.load_pem_private_key(kpath.read_bytes(), None)
                    assert isinstance(key, rsa.RSAPrivateKey)
                    self._cache[stem] = DeviceKey(key, cert)
                    return self._cache[stem]
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            cert = self._issue(ca, key.public_key(), serial, now)
            _write_private(kpath, _pem_key(key))
            cpath.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
            self._cache[stem] = DeviceKey(key, cert)
            return self._cache[stem]

    def _issue(self, ca: DeviceKey, public_key: rsa.RSAPublicKey, serial: str, now: dt.datetime) -> x509.Certificate:
        subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.provider),
                             x509.NameAttribute(NameOID.COMMON_NAME, serial[:64] or "device")])
        return (x509.CertificateBuilder().subject_name(subject).issuer_name(ca.cert.subject)
                .public_key(public_key).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=DEVICE_KEY_DAYS))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                               critical=True)
                .sign(ca.key, hashes.SHA256()))

    def _token_key(self, stem: str, serial: str, ca: DeviceKey, cpath: Path, now: dt.datetime) -> DeviceKey:
        """The device key pair ``sbi-<stem>`` of the token (made there when absent), certified by the CA."""
        import pkcs11

        from ...card.pkcs11 import Pkcs11Signer, open_token_session

        assert self.token is not None
        label = f"sbi-{stem}"
        _, session = open_token_session(self.token.module, self.token.token, self.token.pin)
        try:
            try:
                pub = session.get_key(object_class=pkcs11.ObjectClass.PUBLIC_KEY, key_type=pkcs11.KeyType.RSA,
                                      label=label)
            except pkcs11.NoSuchKey:
                pub, _ = session.generate_keypair(pkcs11.KeyType.RSA, 2048, store=True, label=label,
                                                  private_template={pkcs11.Attribute.SENSITIVE: True,
                                                                    pkcs11.Attribute.EXTRACTABLE: False})
            numbers = rsa.RSAPublicNumbers(int.from_bytes(pub[pkcs11.Attribute.PUBLIC_EXPONENT], "big"),
                                           int.from_bytes(pub[pkcs11.Attribute.MODULUS], "big"))
        finally:
            session.close()
        public_key = numbers.public_key()
        cert = None
        if cpath.is_file():
            cert = x509.load_pem_x509_certificate(cpath.read_bytes())
            if (cert.not_valid_after_utc <= now or cert.issuer != ca.cert.subject
                    or cert.public_key().public_numbers() != numbers):
                cert = None
        if cert is None:
            cert = self._issue(ca, public_key, serial, now)
            cpath.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        signer = Pkcs11Signer(self.token.token, label, self.token.pin, cert, module=self.token.module)
        return DeviceKey(signer, cert)
