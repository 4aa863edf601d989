"""The enrollment store's data key and the sealing of fields with it.

One 256-bit **data key** protects a store. It comes from one of three sources
(``Settings.store_key_source``):

* ``file`` (default): ``<store_dir>/store.key``, 32 random bytes in base64, made on first use with
  ``O_EXCL`` and mode 0600 (the folder 0700). A key file that group or others can read is refused
  (:class:`~biostation.errors.StoreKeyError`), as the station's API token is.
* ``env``: ``BIOSTATION_STORE_KEY`` (base64 or hex of 32 bytes), read by
  :class:`~biostation.config.Settings` like every other setting; for containers whose secret store
  injects it.
* ``pkcs11``: an AES-256 key that never leaves a PKCS#11 token (an HSM, a smart card, SoftHSM2 in
  development) wraps the data key: ``<store_dir>/store.key.wrapped`` holds the data key encrypted in
  the token with AES-GCM, and is unwrapped in the token at every start. A stolen disk without the
  token (and its PIN) opens nothing.

The data key itself is never used directly: HKDF-SHA256 (RFC 5869) derives the sealing key from it,
so the same bytes can later serve another purpose through another derivation. (The audit trail's
MAC key is a random key sealed in the store, so a key rotation does not invalidate old lines.)

:meth:`DataKey.seal` / :meth:`DataKey.open` are AES-256-GCM with a random 96-bit nonce per
message (NIST SP 800-38D §8.2.2 bounds a key to 2^32 random nonces: far beyond one station's
records). The associated data binds each ciphertext to where it belongs (table, row id, field):
a ciphertext copied into another session or another field fails authentication. Sealed layout::

    version (1 byte, 0x01) | nonce (12 bytes) | ciphertext | tag (16 bytes)

Rotation (:func:`rotate_key`, ``biostation store rekey``): the store is re-sealed under a new key
in one transaction, and the key file is replaced only afterwards; a crash in between leaves a
``.next`` file that the next open settles by trying which key opens the store.

No key, nonce or plaintext is ever logged; ``repr(DataKey)`` names the source only.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..errors import ConfigError, StoreIntegrityError, StoreKeyError
from ..fsio import fsync_dir

__all__ = ["DataKey", "load_data_key", "key_path", "make_pkcs11_wrapping_key", "rotate_key", "settle_rotation",
           "SEAL_OVERHEAD"]

KEY_BYTES = 32
_VERSION = b"\x01"
_NONCE = 12
SEAL_OVERHEAD = 1 + _NONCE + 16  #: bytes a sealed field is longer than its plaintext
_WRAP_AAD = b"biostation store data key v1"


class DataKey:
    """A store's data key (32 bytes) and the sealing it does. Thread-safe (no mutable state)."""

    __slots__ = ("_raw", "source", "_fields")

    def __init__(self, raw: bytes, source: str = "memory"):
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if len(raw) != KEY_BYTES:
            raise StoreKeyError(f"a data key is {KEY_BYTES} bytes, got {len(raw)}")
        self._raw = bytes(raw)
        self.source = source
        self._fields = AESGCM(self._derive(b"biostation store fields v1"))

    def _derive(self, info: bytes) -> bytes:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        return HKDF(hashes.SHA256(), KEY_BYTES, salt=None, info=info).derive(self._raw)

    @classmethod
    def generate(cls) -> DataKey:
        return cls(secrets.token_bytes(KEY_BYTES), "generated")

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        """AES-256-GCM of ``plaintext`` bound to ``aad``; ``SEAL_OVERHEAD`` bytes longer."""
        nonce = secrets.token_bytes(_NONCE)
        return _VERSION + nonce + self._fields.encrypt(nonce, bytes(plaintext), aad)

    def open(self, sealed: bytes, aad: bytes) -> bytes:
        """The plaintext of :meth:`seal`; StoreIntegrityError when the bytes, the associated data
        or the key differ from those it was sealed with."""
        from cryptography.exceptions import InvalidTag

        sealed = bytes(sealed)
        if len(sealed) < SEAL_OVERHEAD or sealed[:1] != _VERSION:
            raise StoreIntegrityError("sealed field: unknown version or truncated")
        try:
            return self._fields.decrypt(sealed[1:1 + _NONCE], sealed[1 + _NONCE:], aad)
        except InvalidTag:
            raise StoreIntegrityError("sealed field failed authentication (altered, moved, or another key)") \
                from None

    def __repr__(self) -> str:
        return f"DataKey(source={self.source!r})"


def _decode_key_text(text: str, where: str) -> bytes:
    text = text.strip()
    raw: bytes | None = None
    if len(text) == 2 * KEY_BYTES:
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raw = None
    if raw is None:
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise StoreKeyError(f"{where}: not base64 or hex") from None
    if len(raw) != KEY_BYTES:
        raise StoreKeyError(f"{where}: a data key is {KEY_BYTES} bytes, this one has {len(raw)}")
    return raw


def _private_file(path: Path) -> bytes:
    """The bytes of a 0600 file; StoreKeyError when group or others may read it."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise StoreKeyError(f"no key file at {path}") from None
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise StoreKeyError(f"{path} is readable by others (mode {mode:o}); run chmod 600 on it")
    return path.read_bytes()


def _create_private(path: Path, data: bytes) -> bool:
    """Write ``data`` to a new 0600 file; False when the file exists (another process made it)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return True


def key_path(settings: Any) -> Path:
    """The key file of the settings' source: the data key (file) or the wrapped data key (pkcs11)."""
    if settings.store_key_file is not None:
        return Path(settings.store_key_file)
    name = "store.key.wrapped" if settings.store_key_source == "pkcs11" else "store.key"
    return settings.resolved_store_dir / name


def _pending_path(settings: Any) -> Path:
    p = key_path(settings)
    return p.with_name(p.name + ".next")


def _read_key_file(settings: Any, path: Path) -> DataKey:
    """The data key in ``path``: a key file (file source) or a wrapped key (pkcs11 source)."""
    if settings.store_key_source == "pkcs11":
        wrapper = _wrapper(settings)
        try:
            return DataKey(wrapper.unwrap(_private_file(path)), "pkcs11")
        finally:
            wrapper.close()
    return DataKey(_decode_key_text(_private_file(path).decode("ascii", "replace"), str(path)), "file")


def _wrapper(settings: Any) -> _Pkcs11Wrapper:
    if settings.store_pkcs11_pin is None:
        raise ConfigError("the store's token PIN is not set (BIOSTATION_STORE_PKCS11_PIN)")
    return _Pkcs11Wrapper(str(settings.store_pkcs11_module), settings.store_pkcs11_token,
                          settings.store_pkcs11_key, settings.store_pkcs11_pin.get_secret_value())


@contextlib.contextmanager
def _rotation_lock(settings: Any) -> Iterator[None]:
    lock = key_path(settings).with_name("rotate.lock")
    lock.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def rotate_key(settings: Any, store: Any, actor: str) -> DataKey:
    """Give ``store`` (an open :class:`~biostation.store.EnrollmentStore` of these settings) a new
    data key, and persist it, so that no crash loses the key the store is sealed with:

    1. the new key (or, pkcs11 source, the new key wrapped by the token) is written next to the
       current one as ``<key file>.next`` (0600, fsynced);
    2. the store re-seals everything under it in one transaction (:meth:`EnrollmentStore.rekey`);
    3. ``.next`` replaces the key file (an atomic rename).

    A crash between 1 and 3 leaves both files; the next :meth:`EnrollmentStore.open` finds which one
    opens the store and settles it (:func:`settle_rotation`). Rotations and settling hold a lock, so
    one process never settles another's rotation in flight. The env source cannot be rotated here
    (the key lives where the environment is set): StoreKeyError.
    """
    if settings.store_key_source == "env":
        raise StoreKeyError("the data key comes from BIOSTATION_STORE_KEY: rotate it where that is set "
                            "(re-seal with EnrollmentStore.rekey), or use the file or pkcs11 source")
    path, nxt = key_path(settings), _pending_path(settings)
    raw = secrets.token_bytes(KEY_BYTES)
    with _rotation_lock(settings):
        if settings.store_key_source == "pkcs11":
            wrapper = _wrapper(settings)
            try:
                blob = wrapper.wrap(raw)
            finally:
                wrapper.close()
        else:
            blob = base64.b64encode(raw) + b"\n"
        if not _create_private(nxt, blob):
            raise StoreKeyError(f"{nxt} exists: an interrupted rotation; open the store once to settle it")
        new = DataKey(raw, settings.store_key_source)
        # if this fails, .next stays: whether the commit reached the disk is for settle_rotation to
        # find out, from the store itself, at the next open
        store.rekey(new, actor)
        os.replace(nxt, path)
        fsync_dir(path.parent)
    return new


def settle_rotation(settings: Any, opens: Callable[[DataKey], bool]) -> str | None:
    """Finish or undo a rotation that a crash interrupted: when ``<key file>.next`` exists, keep
    whichever of the two keys ``opens`` the store. Returns "finished", "undone" or None (nothing to
    settle). StoreKeyError when neither key opens it."""
    nxt = _pending_path(settings)
    if not nxt.exists():
        return None
    with _rotation_lock(settings):
        if not nxt.exists():
            return None  # a rotation in flight finished while we waited for the lock
        path = key_path(settings)
        if path.exists() and opens(_read_key_file(settings, path)):
            nxt.unlink()  # the store was never re-sealed under it
            return "undone"
        if opens(_read_key_file(settings, nxt)):
            os.replace(nxt, path)
            fsync_dir(path.parent)
            return "finished"
        raise StoreKeyError(f"neither {path} nor {nxt} opens the store")


def load_data_key(settings: Any, *, create: bool = True) -> DataKey:
    """The data key that ``settings`` name (see the module's docstring for the sources).

    ``create``: make the key file (file source) or the wrapped key (pkcs11 source) when missing.
    StoreKeyError when the key is missing, malformed, in a file others can read, or cannot be
    unwrapped; ConfigError when the PKCS#11 module, token or PIN is wrong.
    """
    source = settings.store_key_source
    if source == "env":
        if settings.store_key is None:
            raise StoreKeyError("store_key_source is env but BIOSTATION_STORE_KEY is not set")
        return DataKey(_decode_key_text(settings.store_key.get_secret_value(), "BIOSTATION_STORE_KEY"), "env")
    path = key_path(settings)
    if source == "file":
        if not path.exists() and create:
            _create_private(path, base64.b64encode(secrets.token_bytes(KEY_BYTES)) + b"\n")
        return _read_key_file(settings, path)
    if source == "pkcs11":
        wrapper = _wrapper(settings)
        try:
            if not path.exists() and create:
                raw = secrets.token_bytes(KEY_BYTES)
                if _create_private(path, wrapper.wrap(raw)):
                    return DataKey(raw, "pkcs11")
            return DataKey(wrapper.unwrap(_private_file(path)), "pkcs11")
        finally:
            wrapper.close()
    raise ConfigError(f"unknown store key source {source!r}: file, env or pkcs11")


class _Pkcs11Wrapper:
    """AES-GCM encryption and decryption of the data key inside a token (CKM_AES_GCM)."""

    def __init__(self, module: str, token_label: str, key_label: str, pin: str):
        import pkcs11

        from ..card.pkcs11 import open_token_session

        self._token, self._session = open_token_session(module, token_label, pin)
        try:
            self._key = self._session.get_key(object_class=pkcs11.ObjectClass.SECRET_KEY, key_type=pkcs11.KeyType.AES,
                                              label=key_label)
        except (pkcs11.NoSuchKey, pkcs11.MultipleObjectsReturned) as exc:
            self._session.close()
            raise ConfigError(f"PKCS#11 AES key {key_label!r} in {token_label!r}: {exc.__class__.__name__} "
                              "(make it with `biostation store keygen --pkcs11`)") from None

    def _params(self, nonce: bytes) -> Any:
        from pkcs11 import GCMParams

        return GCMParams(nonce, _WRAP_AAD, 128)

    def wrap(self, raw: bytes) -> bytes:
        import pkcs11

        nonce = secrets.token_bytes(_NONCE)
        try:
            ct = self._key.encrypt(raw, mechanism=pkcs11.Mechanism.AES_GCM, mechanism_param=self._params(nonce))
        except pkcs11.PKCS11Error as exc:
            raise StoreKeyError(f"PKCS#11: cannot wrap the data key ({exc.__class__.__name__})") from None
        return _VERSION + nonce + bytes(ct)

    def unwrap(self, wrapped: bytes) -> bytes:
        import pkcs11

        if len(wrapped) != SEAL_OVERHEAD + KEY_BYTES or wrapped[:1] != _VERSION:
            raise StoreKeyError("the wrapped data key file is malformed")
        try:
            raw = self._key.decrypt(wrapped[1 + _NONCE:], mechanism=pkcs11.Mechanism.AES_GCM,
                                    mechanism_param=self._params(wrapped[1:1 + _NONCE]))
        except pkcs11.PKCS11Error as exc:
            raise StoreKeyError("PKCS#11: the token's key does not unwrap this data key "
                                f"({exc.__class__.__name__}: another token or key, or an altered file)") from None
        return bytes(raw)

    def close(self) -> None:
        self._session.close()


def make_pkcs11_wrapping_key(module: str, token_label: str, pin: str, key_label: str) -> None:
    """Generate the AES-256 wrapping key in the token: sensitive, never extractable, encrypt and
    decrypt only. ConfigError when a key of that label exists already."""
    import pkcs11

    from ..card.pkcs11 import open_token_session

    _, session = open_token_session(module, token_label, pin)
    try:
        try:
            session.get_key(object_class=pkcs11.ObjectClass.SECRET_KEY, label=key_label)
        except pkcs11.NoSuchKey:
            pass
        except pkcs11.MultipleObjectsReturned:
            raise ConfigError(f"token {token_label!r} holds several keys labelled {key_label!r}") from None
        else:
            raise ConfigError(f"token {token_label!r} already holds a key labelled {key_label!r}")
        A = pkcs11.Attribute
        session.generate_key(pkcs11.KeyType.AES, 256, label=key_label, store=True, template={
            A.SENSITIVE: True, A.EXTRACTABLE: False, A.ENCRYPT: True, A.DECRYPT: True,
            A.WRAP: False, A.UNWRAP: False, A.SIGN: False, A.VERIFY: False})
    finally:
        session.close()
