"""A throw-away test PKI: a CSCA and a Document Signer it issued (Doc 9303-12 §7 profiles, simplified).

For the virtual card, tests and demo desks only: the keys live in memory (or in files written
0600 next to the certificates) and nothing here is fit for issuing real documents. Keys are EC
(brainpoolP256r1 by default, as several issuing states use) or RSA.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from .sod import KeySigner

__all__ = ["TestPKI", "load_test_pki", "make_test_pki"]


def _key(kind: str) -> Any:
    if kind == "rsa":
        return rsa.generate_private_key(65537, 2048)
    curves = {"ec": ec.BrainpoolP256R1(), "brainpoolP256r1": ec.BrainpoolP256R1(), "P-256": ec.SECP256R1(),
              "P-384": ec.SECP384R1()}
    return ec.generate_private_key(curves[kind])


def _name(country: str, org: str, cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, country),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@dataclass
class TestPKI:
    csca_cert: x509.Certificate
    csca_key: Any
    ds_cert: x509.Certificate
    ds_key: Any

    __test__ = False  # not a pytest test class

    def signer(self, pss: bool = False) -> KeySigner:
        return KeySigner(self.ds_key, self.ds_cert, pss=pss)

    def __repr__(self) -> str:
        return f"TestPKI({self.csca_cert.subject.rfc4514_string()})"

    def write(self, folder: Path) -> dict[str, Path]:
        """Write ``csca.pem`` (the trust anchor), ``ds.pem`` and the two keys (0600)."""
        folder.mkdir(parents=True, exist_ok=True)
        out = {}
        for name, obj in (("csca.pem", self.csca_cert), ("ds.pem", self.ds_cert)):
            p = folder / name
            p.write_bytes(obj.public_bytes(serialization.Encoding.PEM))
            out[name[:-4]] = p
        for name, key in (("csca.key", self.csca_key), ("ds.key", self.ds_key)):
            p = folder / name
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
            out[name.replace(".", "_")] = p
        return out


def make_test_pki(country: str = "VN", org: str = "biostation test PKI", key_type: str = "ec",
                  now: dt.datetime | None = None) -> TestPKI:
    """A fresh CSCA (10 years) and Document Signer (3 years) for ``country``."""
    now = now or dt.datetime.now(dt.UTC)
    ck, dk = _key(key_type), _key(key_type)
    csca_name = _name(country, org, f"CSCA {country} (test)")
    ski = x509.SubjectKeyIdentifier.from_public_key(ck.public_key())
    csca = (x509.CertificateBuilder().subject_name(csca_name).issuer_name(csca_name)
            .public_key(ck.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(ski, critical=False)
            .sign(ck, hashes.SHA256()))
    ds = (x509.CertificateBuilder().subject_name(_name(country, org, f"Document Signer {country} (test)"))
          .issuer_name(csca_name).public_key(dk.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=3 * 365))
          .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
          .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(dk.public_key()), critical=False)
          .sign(ck, hashes.SHA256()))
    return TestPKI(csca, ck, ds, dk)


def load_test_pki(folder: Path) -> TestPKI:
    """Read back what :meth:`TestPKI.write` wrote."""
    def cert(n: str) -> x509.Certificate:
        return x509.load_pem_x509_certificate((folder / n).read_bytes())

    def key(n: str) -> Any:
        return serialization.load_pem_private_key((folder / n).read_bytes(), None)

    return TestPKI(cert("csca.pem"), key("csca.key"), cert("ds.pem"), key("ds.key"))
