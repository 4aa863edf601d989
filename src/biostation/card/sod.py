"""EF.SOD, the document security object (Doc 9303-10 §4.6.2, -11 §5.1, -12): build and verify.

EF.SOD is ``77 { ContentInfo { SignedData } }`` (RFC 5652 CMS) whose encapsulated content is an
``LDSSecurityObject`` (OID 2.23.136.1.1.1): the hash algorithm and one hash per data group.

* :func:`build_sod` writes one, signed by a :class:`Signer` (the Document Signer): anything with
  a ``certificate`` (``cryptography`` X.509) and ``sign(data, hash_name) -> signature`` in the
  encoding CMS wants (PKCS#1 v1.5 or PSS bytes for RSA, DER ``ECDSA-Sig-Value`` for EC), so a
  PKCS#11 key plugs in (:func:`ecdsa_raw_to_der` converts the raw ``r||s`` PKCS#11 returns).
* :func:`passive_authentication` checks the SOD signature, the message digest, the Document
  Signer certificate against a :class:`~biostation.card.trust.TrustStore` of CSCA certificates,
  and the hash of every data group read. It never raises for a failed check: it returns a
  :class:`PassiveAuthResult` that says what passed, so an unknown CSCA leaves the data shown as
  *unverified* rather than hidden. Malformed bytes raise :class:`TLVError` naming EF.SOD and the
  offset.

Gotchas (proven on the BSI TR-03105-5 sample): strip the ``77`` wrapper before CMS parsing; the
signature covers the DER ``SET OF`` (tag 31) re-encoding of signedAttrs, not the ``A0`` form.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from asn1crypto import algos, cms, core
from asn1crypto import x509 as ax509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric import utils as asym_utils

from ..errors import TLVError, VerificationError
from . import tlv

if TYPE_CHECKING:
    from .trust import TrustStore

__all__ = [
    "HASHES",
    "SOD",
    "KeySigner",
    "LDSSecurityObject",
    "PassiveAuthResult",
    "Signer",
    "build_sod",
    "decode_sod",
    "ecdsa_raw_to_der",
    "passive_authentication",
    "verify_signature",
]

LDS_SECURITY_OBJECT = "2.23.136.1.1.1"

HASHES = {"sha1": hashes.SHA1, "sha224": hashes.SHA224, "sha256": hashes.SHA256, "sha384": hashes.SHA384,
          "sha512": hashes.SHA512}


class DataGroupHash(core.Sequence):
    _fields = [("data_group_number", core.Integer), ("data_group_hash_value", core.OctetString)]


class DataGroupHashes(core.SequenceOf):
    _child_spec = DataGroupHash


class LDSVersionInfo(core.Sequence):
    _fields = [("lds_version", core.PrintableString), ("unicode_version", core.PrintableString)]


class LDSSecurityObject(core.Sequence):
    _fields = [("version", core.Integer), ("hash_algorithm", algos.DigestAlgorithm),
               ("data_group_hash_values", DataGroupHashes),
               ("lds_version_info", LDSVersionInfo, {"optional": True})]


def _check_structure(data: bytes, source: str, base: int = 0) -> None:
    """Walk every TLV so a structural error is reported with its offset before asn1crypto sees it."""
    for _ in tlv.walk(tlv.decode(data, source, base)):
        pass


@dataclass
class SOD:
    raw: bytes = field(repr=False)
    hash_algorithm: str
    dg_hashes: dict[int, bytes]
    lds_version: str | None
    content_type: str
    econtent: bytes = field(repr=False)
    certificates: list[ax509.Certificate] = field(repr=False)
    signer_info: Any = field(repr=False)

    @property
    def signer_certificate(self) -> ax509.Certificate | None:
        sid = self.signer_info["sid"]
        for c in self.certificates:
            if sid.name == "issuer_and_serial_number":
                if c.issuer == sid.chosen["issuer"] and c.serial_number == sid.chosen["serial_number"].native:
                    return c
            elif c.key_identifier == sid.chosen.native:
                return c
        return None


def decode_sod(data: bytes) -> SOD:
    """Parse EF.SOD. TLVError names EF.SOD and the offset for malformed structure."""
    src = "EF.SOD"
    top = tlv.decode_one(data, src, expect=0x77, allow_trailing=True)
    _check_structure(top.value, src, top.value_offset)
    try:
        ci = cms.ContentInfo.load(top.value)
        if ci["content_type"].native != "signed_data":
            raise TLVError(f"ContentInfo holds {ci['content_type'].native}, not SignedData", src, top.value_offset)
        sd = ci["content"]
        eci = sd["encap_content_info"]
        ctype = eci["content_type"].dotted
        econtent = eci["content"].native if isinstance(eci["content"].native, bytes) else eci["content"].contents
        signer_infos = sd["signer_infos"]
        if len(signer_infos) != 1:
            raise TLVError(f"{len(signer_infos)} SignerInfos, expected 1", src, top.value_offset)
        certs = [c.chosen for c in sd["certificates"]] if sd["certificates"].native is not None else []
    except TLVError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise TLVError(f"malformed CMS SignedData: {exc}", src, top.value_offset) from None
    if ctype != LDS_SECURITY_OBJECT:
        raise TLVError(f"eContentType {ctype}, expected LDSSecurityObject {LDS_SECURITY_OBJECT}", src,
                       top.value_offset)
    # where eContent sits in the file, to report offsets inside it
    eoff = top.value.find(econtent)
    _check_structure(econtent, src + " LDSSecurityObject", top.value_offset + max(eoff, 0))
    try:
        lso = LDSSecurityObject.load(econtent)
        hash_alg = lso["hash_algorithm"]["algorithm"].native
        hashes_ = {h["data_group_number"].native: h["data_group_hash_value"].native
                   for h in lso["data_group_hash_values"]}
        lv = lso["lds_version_info"]
        lds_version = lv["lds_version"].native if lv.native is not None else None
    except (ValueError, TypeError, KeyError) as exc:
        raise TLVError(f"malformed LDSSecurityObject: {exc}", src, top.value_offset + max(eoff, 0)) from None
    if hash_alg not in HASHES:
        raise TLVError(f"hash algorithm {hash_alg} not supported", src, top.value_offset + max(eoff, 0))
    return SOD(bytes(data), hash_alg, hashes_, lds_version, ctype, econtent, certs, signer_infos[0])


# --- signatures -----------------------------------------------------------------------------------------

def _hash_obj(name: str) -> hashes.HashAlgorithm:
    try:
        return HASHES[name]()
    except KeyError:
        raise VerificationError(f"hash {name} not supported") from None


def verify_signature(public_key: Any, signature: bytes, data: bytes, sig_alg: algos.SignedDigestAlgorithm,
                     digest_name: str | None = None) -> None:
    """Verify ``signature`` over ``data``; InvalidSignature or VerificationError when it does not hold."""
    algo = sig_alg.signature_algo
    if algo == "rsassa_pss":
        params = sig_alg["parameters"]
        h = _hash_obj(params["hash_algorithm"]["algorithm"].native)
        mgf_h = _hash_obj(params["mask_gen_algorithm"]["parameters"]["algorithm"].native)
        if not isinstance(public_key, rsa.RSAPublicKey):
            raise VerificationError("RSASSA-PSS signature with a non-RSA key")
        public_key.verify(signature, data, padding.PSS(padding.MGF1(mgf_h), params["salt_length"].native), h)
        return
    try:
        hname = sig_alg.hash_algo
    except ValueError:
        hname = digest_name or "sha256"
    h = _hash_obj(hname)
    if algo == "rsassa_pkcs1v15":
        if not isinstance(public_key, rsa.RSAPublicKey):
            raise VerificationError("RSA signature with a non-RSA key")
        public_key.verify(signature, data, padding.PKCS1v15(), h)
    elif algo == "ecdsa":
        if not isinstance(public_key, ec.EllipticCurvePublicKey):
            raise VerificationError("ECDSA signature with a non-EC key")
        public_key.verify(signature, data, ec.ECDSA(h))
    else:
        raise VerificationError(f"signature algorithm {algo} not supported")


def _public_key(cert: ax509.Certificate) -> Any:
    return serialization.load_der_public_key(cert.public_key.dump())


def ecdsa_raw_to_der(sig: bytes) -> bytes:
    """``r||s`` (PKCS#11, BSI TR-03111 plain) to the DER ECDSA-Sig-Value CMS carries."""
    n = len(sig) // 2
    return asym_utils.encode_dss_signature(int.from_bytes(sig[:n], "big"), int.from_bytes(sig[n:], "big"))


@runtime_checkable
class Signer(Protocol):
    """A Document Signer key. ``sign`` returns the signature as CMS carries it."""

    certificate: x509.Certificate

    def sign(self, data: bytes, hash_name: str) -> bytes: ...


class KeySigner:
    """A :class:`Signer` over an in-memory ``cryptography`` private key (tests, the virtual card).

    RSA keys sign PKCS#1 v1.5, or RSASSA-PSS (salt = hash length) when ``pss``; EC keys ECDSA.
    """

    def __init__(self, private_key: Any, certificate: x509.Certificate, pss: bool = False):
        self._key = private_key
        self.certificate = certificate
        self.pss = pss

    def __repr__(self) -> str:
        return f"KeySigner({self.certificate.subject.rfc4514_string()})"

    def sign(self, data: bytes, hash_name: str) -> bytes:
        h = _hash_obj(hash_name)
        if isinstance(self._key, rsa.RSAPrivateKey):
            pad = padding.PSS(padding.MGF1(h), h.digest_size) if self.pss else padding.PKCS1v15()
            return self._key.sign(data, pad, h)
        if isinstance(self._key, ec.EllipticCurvePrivateKey):
            return self._key.sign(data, ec.ECDSA(h))
        raise VerificationError(f"unsupported key type {type(self._key).__name__}")


def _signature_algorithm(signer: Signer, hash_name: str) -> algos.SignedDigestAlgorithm:
    pub = signer.certificate.public_key()
    if isinstance(pub, rsa.RSAPublicKey):
        if getattr(signer, "pss", False):
            return algos.SignedDigestAlgorithm({"algorithm": "rsassa_pss", "parameters": {
                "hash_algorithm": {"algorithm": hash_name},
                "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": hash_name}},
                "salt_length": _hash_obj(hash_name).digest_size, "trailer_field": "trailer_field_bc"}})
        return algos.SignedDigestAlgorithm({"algorithm": f"{hash_name}_rsa"})
    if isinstance(pub, ec.EllipticCurvePublicKey):
        return algos.SignedDigestAlgorithm({"algorithm": f"{hash_name}_ecdsa"})
    raise VerificationError(f"unsupported Document Signer key {type(pub).__name__}")


def build_sod(data_groups: dict[int, bytes], signer: Signer, hash_name: str = "sha256",
              lds_version: tuple[str, str] | None = None, signing_time: dt.datetime | None = None) -> bytes:
    """EF.SOD (with its ``77`` wrapper) over ``data_groups`` (number -> file bytes), signed by ``signer``."""
    h = getattr(hashlib, hash_name)
    lso = {"version": 1 if lds_version else 0, "hash_algorithm": {"algorithm": hash_name},
           "data_group_hash_values": [{"data_group_number": n, "data_group_hash_value": h(data_groups[n]).digest()}
                                      for n in sorted(data_groups)]}
    if lds_version:
        lso["lds_version_info"] = {"lds_version": lds_version[0], "unicode_version": lds_version[1]}
    econtent = LDSSecurityObject(lso).dump()
    attrs = [{"type": "content_type", "values": [LDS_SECURITY_OBJECT]},
             {"type": "message_digest", "values": [h(econtent).digest()]}]
    if signing_time is not None:
        attrs.append({"type": "signing_time", "values": [cms.Time({"utc_time": signing_time})]})
    signed_attrs = cms.CMSAttributes(attrs)
    to_sign = b"\x31" + signed_attrs.dump()[1:]
    signature = signer.sign(to_sign, hash_name)
    cert = ax509.Certificate.load(signer.certificate.public_bytes(serialization.Encoding.DER))
    signer_info = cms.SignerInfo({
        "version": "v1",
        "sid": cms.SignerIdentifier({"issuer_and_serial_number": {"issuer": cert.issuer,
                                                                    "serial_number": cert.serial_number}}),
        "digest_algorithm": {"algorithm": hash_name},
        "signed_attrs": signed_attrs,
        "signature_algorithm": _signature_algorithm(signer, hash_name),
        "signature": signature,
    })
    sd = cms.SignedData({
        "version": "v3",
        "digest_algorithms": [{"algorithm": hash_name}],
        "encap_content_info": {"content_type": LDS_SECURITY_OBJECT, "content": econtent},
        "certificates": [cert],
        "signer_infos": [signer_info],
    })
    ci = cms.ContentInfo({"content_type": "signed_data", "content": sd})
    return tlv.encode(0x77, ci.dump())


# --- passive authentication ----------------------------------------------------------------------------

@dataclass
class PassiveAuthResult:
    """What passive authentication found. ``status``: ``verified``, ``unverified`` or ``failed``.

    ``unverified`` = every check that could run passed but the Document Signer could not be tied
    to a trusted CSCA (none given, or the issuer is unknown): show the data, flag it.
    ``data_groups`` maps each DG number to ``valid``, ``MISMATCH``, ``not covered`` (read but the
    SOD has no hash for it) or ``not read`` (hashed in the SOD, not read from the chip).
    """

    signature_valid: bool = False
    message_digest_valid: bool = False
    ds_subject: str = ""
    ds_serial: str = ""
    ds_not_after: str = ""
    ds_expired: bool = False
    csca: str | None = None
    chain_valid: bool | None = None  # None: no trusted CSCA to check against
    hash_algorithm: str = ""
    data_groups: dict[int, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        read_ok = all(v in ("valid", "not read") for v in self.data_groups.values())
        if not (self.signature_valid and self.message_digest_valid and read_ok) or self.chain_valid is False:
            return "failed"
        return "verified" if self.chain_valid else "unverified"

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "signature_valid": self.signature_valid,
                "message_digest_valid": self.message_digest_valid, "document_signer": self.ds_subject,
                "document_signer_serial": self.ds_serial, "document_signer_not_after": self.ds_not_after,
                "document_signer_expired": self.ds_expired, "csca": self.csca, "chain_valid": self.chain_valid,
                "hash_algorithm": self.hash_algorithm,
                "data_groups": {f"DG{k}": v for k, v in sorted(self.data_groups.items())},
                "problems": list(self.problems)}

    def raise_for_status(self, allow_unverified: bool = False) -> None:
        ok = ("verified", "unverified") if allow_unverified else ("verified",)
        if self.status not in ok:
            raise VerificationError(f"passive authentication {self.status}: " + "; ".join(self.problems))


def passive_authentication(sod: bytes | SOD, data_groups: dict[int, bytes], trust: TrustStore | None = None,
                           now: dt.datetime | None = None) -> PassiveAuthResult:
    """Check EF.SOD and the data groups read (number -> file bytes) against it.

    ``trust``: the CSCA store; without one the result is at best ``unverified``. Malformed EF.SOD
    raises TLVError; every other failure is reported in the result.
    """
    s = sod if isinstance(sod, SOD) else decode_sod(sod)
    r = PassiveAuthResult(hash_algorithm=s.hash_algorithm)
    now = now or dt.datetime.now(dt.UTC)
    si = s.signer_info
    # 1. data group hashes
    h = getattr(hashlib, s.hash_algorithm)
    for n in sorted(set(data_groups) | set(s.dg_hashes)):
        if n not in data_groups:
            r.data_groups[n] = "not read"
        elif n not in s.dg_hashes:
            r.data_groups[n] = "not covered"
            r.problems.append(f"DG{n} is not covered by the SOD")
        elif h(data_groups[n]).digest() == s.dg_hashes[n]:
            r.data_groups[n] = "valid"
        else:
            r.data_groups[n] = "MISMATCH"
            r.problems.append(f"DG{n} hash does not match the SOD")
    # 2. message digest and signature
    attrs = si["signed_attrs"]
    digest_name = si["digest_algorithm"]["algorithm"].native
    if attrs.native is None:
        r.problems.append("SignerInfo without signed attributes")
        signed_data = s.econtent
        r.message_digest_valid = True
    else:
        md = next((a["values"][0].native for a in attrs if a["type"].native == "message_digest"), None)
        r.message_digest_valid = md is not None and md == getattr(hashlib, digest_name)(s.econtent).digest()
        if not r.message_digest_valid:
            r.problems.append("messageDigest does not match the LDSSecurityObject")
        signed_data = b"\x31" + attrs.dump()[1:]
    cert = s.signer_certificate
    if cert is None:
        r.problems.append("Document Signer certificate not in the SOD")
        return r
    r.ds_subject = cert.subject.human_friendly
    r.ds_serial = format(cert.serial_number, "X")
    not_after = cert["tbs_certificate"]["validity"]["not_after"].native
    not_before = cert["tbs_certificate"]["validity"]["not_before"].native
    r.ds_not_after = not_after.isoformat()
    r.ds_expired = now > not_after
    try:
        verify_signature(_public_key(cert), si["signature"].native, signed_data, si["signature_algorithm"],
                         digest_name)
        r.signature_valid = True
    except (InvalidSignature, VerificationError, ValueError) as exc:
        r.problems.append(f"SOD signature does not verify ({type(exc).__name__})")
    if now < not_before:
        r.problems.append("Document Signer certificate not yet valid")
    # 3. Document Signer -> CSCA
    if trust is None:
        r.problems.append("no CSCA trust store given: Document Signer not checked")
        return r
    issuers = trust.issuers_of(cert)
    if not issuers:
        r.problems.append(f"unknown CSCA: no trusted certificate for issuer '{cert.issuer.human_friendly}'")
        return r
    for csca in issuers:
        try:
            verify_signature(_public_key(csca), cert["signature_value"].native, cert["tbs_certificate"].dump(),
                             cert["signature_algorithm"])
        except (InvalidSignature, VerificationError, ValueError):
            continue
        r.csca = csca.subject.human_friendly
        r.chain_valid = True
        csca_end = csca["tbs_certificate"]["validity"]["not_after"].native
        if not_before > csca_end:
            r.problems.append("Document Signer issued after its CSCA expired")
            r.chain_valid = False
        return r
    r.csca = issuers[0].subject.human_friendly
    r.chain_valid = False
    r.problems.append("Document Signer certificate signature does not verify with the CSCA key")
    return r
