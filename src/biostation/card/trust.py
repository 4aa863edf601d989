"""CSCA trust store: a folder of certificates and/or ICAO master lists (Doc 9303-12 §9).

Files ending ``.pem``, ``.crt``, ``.cer``, ``.der`` are certificates (PEM or DER); ``.ml``,
``.mls`` are master lists: CMS SignedData whose content (OID 2.23.136.1.1.2) is
``CscaMasterList ::= SEQUENCE { version INTEGER, certList SET OF Certificate }``. A master
list's own signature is checked (signer certificate from the CMS, issued by one of the CSCAs the
list carries); a list that is unsigned or does not verify still loads, with a line in
:attr:`TrustStore.problems`, since its publisher must be trusted out of band anyway.

A file that cannot be read is not silently skipped: it lands in :attr:`TrustStore.problems` with
its name and the byte offset of the fault, and :meth:`TrustStore.load` raises TLVError for it.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

from asn1crypto import cms, core
from asn1crypto import x509 as ax509

from ..errors import TLVError
from . import tlv

__all__ = ["TrustStore", "load_certificate", "load_master_list"]

ID_ICAO_CSCA_MASTER_LIST = "2.23.136.1.1.2"


class _CertSet(core.SetOf):
    _child_spec = ax509.Certificate


class CscaMasterList(core.Sequence):
    _fields = [("version", core.Integer), ("cert_list", _CertSet)]


def _der_from(data: bytes, source: str) -> list[bytes]:
    if b"-----BEGIN" in data:
        blocks = re.findall(rb"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", data, re.S)
        if not blocks:
            raise TLVError("PEM file without a CERTIFICATE block", source, 0)
        try:
            return [base64.b64decode(b"".join(b.split())) for b in blocks]
        except ValueError:
            raise TLVError("bad base64 in PEM", source, 0) from None
    return [data]


def load_certificate(der: bytes, source: str) -> ax509.Certificate:
    """One DER certificate; TLVError with the file name and offset when malformed."""
    top = tlv.decode_one(der, source, expect=0x30, allow_trailing=False)
    for _ in tlv.walk([top]):  # structural check: offsets of broken TLVs
        pass
    try:
        cert = ax509.Certificate.load(der)
        cert.native  # force a full parse  # noqa: B018
        cert.public_key.dump()
    except (ValueError, TypeError, KeyError) as exc:
        raise TLVError(f"not an X.509 certificate: {exc}", source, 0) from None
    return cert


def load_master_list(data: bytes, source: str) -> list[ax509.Certificate]:
    for _ in tlv.walk(tlv.decode(data, source)):
        pass
    try:
        ci = cms.ContentInfo.load(data)
        sd = ci["content"]
        eci = sd["encap_content_info"]
        if eci["content_type"].dotted != ID_ICAO_CSCA_MASTER_LIST:
            raise TLVError(f"content type {eci['content_type'].dotted} is not a CSCA master list", source, 0)
        content = eci["content"].native if isinstance(eci["content"].native, bytes) else eci["content"].contents
        ml = CscaMasterList.load(content)
        certs = [c for c in ml["cert_list"]]
    except TLVError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise TLVError(f"not a CSCA master list: {exc}", source, 0) from None
    return certs


def master_list_signature_problem(data: bytes, source: str) -> str | None:
    """None when the master list's CMS signature verifies and chains to a CSCA it lists."""
    import hashlib

    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization

    from .sod import verify_signature

    try:
        sd = cms.ContentInfo.load(data)["content"]
        eci = sd["encap_content_info"]
        content = eci["content"].native if isinstance(eci["content"].native, bytes) else eci["content"].contents
        certs = [c.chosen for c in sd["certificates"]] if sd["certificates"].native is not None else []
        listed = CscaMasterList.load(content)["cert_list"]
        if len(sd["signer_infos"]) == 0:
            return f"{source}: master list is not signed"
        si = sd["signer_infos"][0]
        sid = si["sid"].chosen
        signer = next((c for c in certs if si["sid"].name == "issuer_and_serial_number"
                       and c.issuer == sid["issuer"] and c.serial_number == sid["serial_number"].native), None)
        if signer is None:
            return f"{source}: master list signer certificate not included"
        attrs = si["signed_attrs"]
        digest = si["digest_algorithm"]["algorithm"].native
        md = next((a["values"][0].native for a in attrs if a["type"].native == "message_digest"), None)
        if md != hashlib.new(digest, content).digest():
            return f"{source}: master list content does not match its messageDigest"
        key = serialization.load_der_public_key(signer.public_key.dump())
        verify_signature(key, si["signature"].native, b"\x31" + attrs.dump()[1:], si["signature_algorithm"], digest)
        for csca in listed:
            if csca.subject != signer.issuer:
                continue
            try:
                verify_signature(serialization.load_der_public_key(csca.public_key.dump()),
                                 signer["signature_value"].native, signer["tbs_certificate"].dump(),
                                 signer["signature_algorithm"])
                return None
            except (InvalidSignature, ValueError):
                continue
        return f"{source}: master list signer is not issued by a CSCA on the list"
    except (InvalidSignature, ValueError, TypeError, KeyError) as exc:
        return f"{source}: master list signature does not verify ({type(exc).__name__})"


class TrustStore:
    """Trusted CSCA certificates. Thread-safe for reading once built."""

    CERT_SUFFIXES = {".pem", ".crt", ".cer", ".der"}
    ML_SUFFIXES = {".ml", ".mls"}

    def __init__(self, certificates: list[ax509.Certificate] | None = None):
        self.certificates: list[ax509.Certificate] = list(certificates or [])
        self.problems: list[str] = []

    def __len__(self) -> int:
        return len(self.certificates)

    def add_der(self, der: bytes, source: str = "certificate") -> None:
        self.certificates.append(load_certificate(der, source))

    def add_file(self, path: Path) -> int:
        """Add the certificates of one file; returns how many. TLVError when malformed."""
        data = path.read_bytes()
        if path.suffix.lower() in self.ML_SUFFIXES:
            certs = load_master_list(data, path.name)
            problem = master_list_signature_problem(data, path.name)
            if problem:
                self.problems.append(problem)
        else:
            certs = [load_certificate(d, path.name) for d in _der_from(data, path.name)]
        self.certificates.extend(certs)
        return len(certs)

    @classmethod
    def load(cls, path: Path | str, strict: bool = False) -> TrustStore:
        """A folder (every certificate and master list in it) or one file.

        Bad files are listed in :attr:`problems` (name and offset); ``strict`` raises instead.
        """
        path = Path(path)
        store = cls()
        files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
        for f in files:
            if f.suffix.lower() not in cls.CERT_SUFFIXES | cls.ML_SUFFIXES:
                continue
            try:
                store.add_file(f)
            except TLVError as exc:
                if strict or not path.is_dir():
                    raise
                store.problems.append(str(exc))
        return store

    def issuers_of(self, cert: ax509.Certificate) -> list[ax509.Certificate]:
        """Trusted certificates whose subject is ``cert``'s issuer (key identifiers preferred)."""
        cands = [c for c in self.certificates if c.subject == cert.issuer]
        aki = cert.authority_key_identifier
        if aki is not None:
            exact = [c for c in cands if c.key_identifier == aki]
            if exact:
                return exact
        return cands
