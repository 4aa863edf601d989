"""A Document Signer whose private key lives in a PKCS#11 token (HSM, smart card, SoftHSM2).

:class:`Pkcs11Signer` is a ``Signer`` for the SOD builder: ``sign(data) -> signature`` over the
DER of the CMS signed attributes, with the hash computed *inside* the token (``CKM_ECDSA_SHA256``
family for EC keys, ``CKM_SHA256_RSA_PKCS`` / ``CKM_SHA256_RSA_PKCS_PSS`` family for RSA).
ECDSA signatures come out of PKCS#11 as raw ``r || s`` (PKCS#11 v2.40 §2.3.1) and are returned
DER-encoded (``ECDSA-Sig-Value``, RFC 5753 / RFC 3279) as CMS needs them.

The private key never leaves the token: it is found by label (``CKA_LABEL``) and used through
``C_Sign``. The token PIN is a secret: it is taken as an argument (from
:class:`~biostation.config.Settings`), never logged, and not kept once the session is open.

Tested against Debian's SoftHSM2 (``/usr/lib/softhsm/libsofthsm2.so``). SoftHSM reads its
configuration from the ``SOFTHSM2_CONF`` environment variable of the process: set that outside
the program (the test fixtures do).

Cost: one ``C_Sign`` per SOD; ECDSA P-256 on SoftHSM2 takes about a millisecond.
Thread-safety: one session, serialised by a lock (a PKCS#11 session is not re-entrant).
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

from ..errors import ConfigError, PersoError

__all__ = ["Pkcs11Signer", "Pkcs11TerminalSigner", "DEFAULT_MODULE", "import_private_key", "generate_keypair",
           "softhsm_token"]

DEFAULT_MODULE = "/usr/lib/softhsm/libsofthsm2.so"

_HASHES = ("sha256", "sha384", "sha512")


def _load_lib(module: str) -> Any:
    try:
        import pkcs11
    except ImportError as exc:  # the [perso] extra is missing
        raise ConfigError("PKCS#11 signing needs python-pkcs11: pip install 'biostation[perso]'") from exc
    if not Path(module).is_file():
        raise ConfigError(f"PKCS#11 module {module} not found")
    try:
        return pkcs11.lib(module)
    except Exception as exc:
        raise ConfigError(f"cannot load PKCS#11 module {module}: {exc}") from exc


def _open(module: str, token_label: str, pin: str) -> tuple[Any, Any]:
    import pkcs11

    lib = _load_lib(module)
    try:
        token = lib.get_token(token_label=token_label)
    except (pkcs11.NoSuchToken, pkcs11.MultipleTokensReturned) as exc:
        raise ConfigError(f"PKCS#11 token {token_label!r}: {exc.__class__.__name__}") from None
    try:
        session = token.open(user_pin=pin, rw=True)
    except pkcs11.UserAlreadyLoggedIn:
        # PKCS#11 login is per application and token: another session of ours is logged in,
        # and a new session shares that state
        session = token.open(rw=True)
    except pkcs11.PinIncorrect:
        raise ConfigError(f"PKCS#11 token {token_label!r}: wrong PIN") from None
    except pkcs11.PKCS11Error as exc:
        raise ConfigError(f"PKCS#11 token {token_label!r}: cannot log in ({exc.__class__.__name__})") from None
    return token, session


class Pkcs11Signer:
    """Signs with the private key ``key_label`` of token ``token_label``.

    Implements :class:`biostation.card.sod.Signer`: ``certificate`` (the Document Signer
    certificate, a ``cryptography`` X.509 object, which goes into the SOD) and
    ``sign(data, hash_name)``. The token's key is checked against the certificate at start.
    ``pss``: RSASSA-PSS for an RSA key (salt = hash length), else PKCS#1 v1.5.
    """

    def __init__(self, token_label: str, key_label: str, pin: str, certificate: Any, *,
                 module: str = DEFAULT_MODULE, pss: bool = False):
        import pkcs11
        from cryptography import x509
        from cryptography.hazmat.primitives.asymmetric import ec, rsa

        if isinstance(certificate, (bytes, bytearray)):
            try:
                certificate = x509.load_der_x509_certificate(bytes(certificate))
            except ValueError:
                raise ConfigError("Document Signer certificate: not DER X.509") from None
        self.certificate = certificate
        pub = certificate.public_key()
        self._token, self._session = _open(module, token_label, pin)
        try:
            key = self._session.get_key(object_class=pkcs11.ObjectClass.PRIVATE_KEY, label=key_label)
        except (pkcs11.NoSuchKey, pkcs11.MultipleObjectsReturned) as exc:
            self._session.close()
            raise ConfigError(f"PKCS#11 key {key_label!r} in {token_label!r}: {exc.__class__.__name__}") from None
        self._key = key
        self._lock = threading.Lock()
        self._mechs = self._mechanisms()
        if key.key_type == pkcs11.KeyType.EC:
            if not isinstance(pub, ec.EllipticCurvePublicKey):
                raise ConfigError("the certificate's key is not EC but the token's key is")
            self.key_type = "ec"
        elif key.key_type == pkcs11.KeyType.RSA:
            if not isinstance(pub, rsa.RSAPublicKey):
                raise ConfigError("the certificate's key is not RSA but the token's key is")
            self.key_type = "rsa"
        else:
            raise ConfigError(f"PKCS#11 key type {key.key_type!r} cannot sign an SOD")
        self.pss = bool(pss) and self.key_type == "rsa"
        self.verify_pair(pub)

    def _mechanism(self, hash_name: str) -> tuple[Any, Any, bool]:
        """(mechanism, parameter, hash here first) for ``hash_name``."""
        import pkcs11

        if hash_name not in _HASHES:
            raise PersoError(f"hash {hash_name!r}: one of {', '.join(_HASHES)}")
        M = pkcs11.Mechanism
        H = hash_name.upper()
        if self.key_type == "ec":
            mech = getattr(M, f"ECDSA_{H}")
            if mech in self._mechs:
                return mech, None, False
            # SoftHSM 2.6 and many HSMs offer plain CKM_ECDSA only: hash here, sign the digest
            return M.ECDSA, None, True
        if self.pss:
            mgf = getattr(pkcs11.MGF, H)
            return getattr(M, f"{H}_RSA_PKCS_PSS"), (getattr(M, H), mgf, hashlib.new(hash_name).digest_size), False
        return getattr(M, f"{H}_RSA_PKCS"), None, False

    # --- the Signer protocol ------------------------------------------------------------------
    def sign(self, data: bytes, hash_name: str = "sha256") -> bytes:
        """Signature over ``data`` as CMS carries it (DER ECDSA-Sig-Value for EC keys)."""
        import pkcs11
        from pkcs11.util.ec import encode_ecdsa_signature

        mech, param, prehash = self._mechanism(hash_name)
        data = hashlib.new(hash_name, bytes(data)).digest() if prehash else bytes(data)
        with self._lock:
            try:
                sig = self._key.sign(data, mechanism=mech, mechanism_param=param)
            except pkcs11.PKCS11Error as exc:
                raise PersoError(f"PKCS#11 signing failed: {exc.__class__.__name__}") from None
        return encode_ecdsa_signature(sig) if self.key_type == "ec" else bytes(sig)

    def _mechanisms(self) -> set[Any]:
        try:
            return set(self._token.slot.get_mechanisms())
        except Exception:
            return set()

    def verify_pair(self, pub: Any) -> None:
        """ConfigError unless the token's key signs what ``pub`` verifies."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, padding

        probe = b"biostation: Document Signer key check"
        sig = self.sign(probe, "sha256")
        h = hashes.SHA256()
        try:
            if self.key_type == "ec":
                pub.verify(sig, probe, ec.ECDSA(h))
            elif self.pss:
                pub.verify(sig, probe, padding.PSS(padding.MGF1(h), h.digest_size), h)
            else:
                pub.verify(sig, probe, padding.PKCS1v15(), h)
        except InvalidSignature:
            raise ConfigError("the token's key does not match the Document Signer certificate") from None

    def close(self) -> None:
        with self._lock:
            self._session.close()

    def __repr__(self) -> str:
        return f"Pkcs11Signer({self.key_type}{'-pss' if self.pss else ''})"


class Pkcs11TerminalSigner:
    """The inspection system's terminal-authentication key in a PKCS#11 token
    (:class:`biostation.card.cvc.TerminalSigner`): ECDSA with the hash ``oid`` names, computed
    here, and ``CKM_ECDSA`` in the token, whose ``r || s`` output is the plain signature TA
    wants (BSI TR-03111). EC keys only. Thread-safe (one lock around the session)."""

    def __init__(self, token_label: str, key_label: str, pin: str, oid: str, *, module: str = DEFAULT_MODULE):
        import pkcs11

        from .cvc import TA_ALGORITHMS

        alg = TA_ALGORITHMS.get(oid)
        if alg is None or alg[0] != "ec":
            raise ConfigError(f"terminal key algorithm {oid}: only the ECDSA TA algorithms are signed in a token")
        self.oid = oid
        self._hash = alg[1]
        self._token, self._session = _open(module, token_label, pin)
        try:
            self._key = self._session.get_key(object_class=pkcs11.ObjectClass.PRIVATE_KEY, label=key_label)
        except (pkcs11.NoSuchKey, pkcs11.MultipleObjectsReturned) as exc:
            self._session.close()
            raise ConfigError(f"PKCS#11 key {key_label!r} in {token_label!r}: {exc.__class__.__name__}") from None
        self._lock = threading.Lock()

    def sign(self, data: bytes) -> bytes:
        import pkcs11

        digest = hashlib.new(self._hash, bytes(data)).digest()
        with self._lock:
            try:
                return bytes(self._key.sign(digest, mechanism=pkcs11.Mechanism.ECDSA))
            except pkcs11.PKCS11Error as exc:
                raise PersoError(f"PKCS#11 signing failed: {exc.__class__.__name__}") from None

    def close(self) -> None:
        with self._lock:
            self._session.close()

    def __repr__(self) -> str:
        return f"Pkcs11TerminalSigner({self.oid})"


def import_private_key(module: str, token_label: str, pin: str, key_label: str, private_key: Any) -> None:
    """Put a ``cryptography`` private key into the token as a sensitive, non-extractable signing
    key. For tests and for moving a development key into an HSM; production keys are better
    generated in the token (:func:`generate_keypair`)."""
    import pkcs11
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from pkcs11.util.ec import decode_ec_private_key
    from pkcs11.util.rsa import decode_rsa_private_key

    _, session = _open(module, token_label, pin)
    try:
        if isinstance(private_key, ec.EllipticCurvePrivateKey):
            der = private_key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL,
                                            serialization.NoEncryption())
            attrs = decode_ec_private_key(der)
        elif isinstance(private_key, rsa.RSAPrivateKey):
            der = private_key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL,
                                            serialization.NoEncryption())
            attrs = decode_rsa_private_key(der)
        else:
            raise ConfigError("only EC and RSA keys can be imported")
        A = pkcs11.Attribute
        attrs.update({A.LABEL: key_label, A.TOKEN: True, A.SIGN: True, A.SENSITIVE: True,
                      A.EXTRACTABLE: False, A.PRIVATE: True})
        session.create_object(attrs)
    finally:
        session.close()


def generate_keypair(module: str, token_label: str, pin: str, key_label: str, curve: str = "secp256r1") -> bytes:
    """Generate an EC key pair inside the token; returns the public key as DER SubjectPublicKeyInfo
    (to be certified by the CSCA). The private key is sensitive and never extractable."""
    import pkcs11
    from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters

    _, session = _open(module, token_label, pin)
    try:
        params = session.create_domain_parameters(pkcs11.KeyType.EC, {
            pkcs11.Attribute.EC_PARAMS: encode_named_curve_parameters(curve)}, local=True)
        pub, _priv = params.generate_keypair(store=True, label=key_label, private_template={
            pkcs11.Attribute.SENSITIVE: True, pkcs11.Attribute.EXTRACTABLE: False})
        return bytes(encode_ec_public_key(pub))
    finally:
        session.close()


def softhsm_token(directory: str | Path, label: str, pin: str, so_pin: str) -> Path:
    """Development and tests: a SoftHSM2 configuration in ``directory`` with an initialised
    token ``label`` (made once; reused when present). Returns the configuration file, to be
    exported as ``SOFTHSM2_CONF`` *before* the PKCS#11 module is first loaded in a process
    (SoftHSM reads its token directory once, at ``C_Initialize``)."""
    import os
    import shutil
    import subprocess

    directory = Path(directory)
    tokens = directory / "tokens"
    conf = directory / "softhsm2.conf"
    tokens.mkdir(parents=True, exist_ok=True)
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    tool = shutil.which("softhsm2-util")
    if tool is None:
        raise ConfigError("softhsm2-util not found: apt-get install softhsm2")
    env = dict(os.environ, SOFTHSM2_CONF=str(conf))
    shown = subprocess.run([tool, "--show-slots"], env=env, capture_output=True, text=True, timeout=60)
    import re

    if not re.search(rf"^\s*Label:\s+{re.escape(label)}\s*$", shown.stdout, re.M):
        r = subprocess.run([tool, "--init-token", "--free", "--label", label, "--so-pin", so_pin, "--pin", pin],
                           env=env, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise ConfigError(f"softhsm2-util --init-token failed: {r.stderr.strip()[:200]}")
    return conf


def open_token_session(module: str, token_label: str, pin: str) -> tuple[Any, Any]:
    """``(token, session)``: a read-write session of token ``token_label`` logged in with ``pin``
    (ConfigError for a missing module or token, or a wrong PIN). Used by the store's key wrapping."""
    return _open(module, token_label, pin)
