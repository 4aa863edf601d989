"""Batch files: how a mobile team's station hands its finished transactions to a connected one.

A mobile station without a network exports its queued transactions into one file, carried on a
USB stick; the receiving station imports it into its own outbox, which delivers them. The file is

* **encrypted to the receiving station**: an ephemeral X25519 key agreement with the receiver's
  public key (RFC 7748), HKDF-SHA256 (RFC 5869) to an AES-256-GCM key. Only the receiver can read
  it; the mobile station cannot read its own export back, so a lost stick leaks nothing.
* **signed by the sending station**: Ed25519 (RFC 8032) over every byte before the signature.
  The receiver accepts only stations it trusts (:meth:`EnrollmentStore.trust`, fed from the
  sender's :meth:`EnrollmentStore.identity`).

Layout::

    magic "BSBATCH" 0x01 (8 bytes) | header length (4 bytes, big-endian) | header (UTF-8 JSON)
    | ciphertext (AES-256-GCM, associated data = everything before it) | Ed25519 signature (64 bytes)

    header: format, batch_id, from, to, created, entries, eph (ephemeral X25519 public key),
            nonce, alg
    plaintext: per entry, 4-byte length + JSON {txn_id, session_id, content_type}
               + 8-byte length + payload

Import checks in this order and stops at the first failure, importing nothing: magic and header
(:class:`~biostation.errors.BatchFormatError`), a trusted sender
(:class:`~biostation.errors.BatchUntrustedError`), the signature and then the decryption
(:class:`~biostation.errors.BatchTamperedError`), the addressee, the entries' framing and count.
Any single changed byte of the file fails one of these. The entries are then queued in one
transaction (:meth:`EnrollmentStore.import_entries`): a batch imported twice queues nothing new,
and the transaction ids are the original ones, so the central endpoint's idempotency keys still
hold if the mobile station later uploads some of them itself.

Exported entries stay queued at the sender: its payloads are purged only when its own outbox gets
an acknowledgement, never because a file was written.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import struct
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BatchFormatError, BatchTamperedError, BatchUntrustedError, StoreError
from ..fsio import write_atomic
from .enrollment import EnrollmentStore

__all__ = ["export_batch", "import_batch", "read_header", "BatchSummary", "MAGIC"]

MAGIC = b"BSBATCH\x01"
_ALG = "X25519-HKDF-SHA256/AES-256-GCM/Ed25519"
_SIG = 64
_MAX_HEADER = 64 * 1024


@dataclass(frozen=True)
class BatchSummary:
    batch_id: str
    from_station: str
    to_station: str
    entries: int
    queued: int = 0   # import: entries newly queued
    skipped: int = 0  # import: entries already known here


def _kdf(shared: bytes, eph_pub: bytes, to_pub: bytes, batch_id: str) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(hashes.SHA256(), 32, salt=eph_pub + to_pub,
                info=b"biostation batch v1 " + batch_id.encode()).derive(shared)


def export_batch(store: EnrollmentStore, to_station: str, out: str | os.PathLike[str], *, actor: str,
                 txn_ids: list[str] | None = None) -> BatchSummary:
    """Write the queued transactions (all, or ``txn_ids``) for the trusted station ``to_station``
    into ``out`` (0600, written to a temporary file and renamed: never half-written)."""
    from cryptography.hazmat.primitives import serialization as s
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    peer = store.peer(to_station)
    if peer is None:
        raise BatchUntrustedError(f"station {to_station!r} is not trusted here: `biostation store trust` it first")
    entries = [e for e in store.iter_queued() if txn_ids is None or e.txn_id in set(txn_ids)]
    if txn_ids is not None and len(entries) != len(set(txn_ids)):
        missing = sorted(set(txn_ids) - {e.txn_id for e in entries})
        raise StoreError(f"not queued here: {', '.join(missing[:5])}")
    sign_key, _ = store.identity_keys()
    batch_id = uuid.uuid4().hex
    eph = X25519PrivateKey.generate()
    eph_pub = eph.public_key().public_bytes(s.Encoding.Raw, s.PublicFormat.Raw)
    key = _kdf(eph.exchange(X25519PublicKey.from_public_bytes(peer[1])), eph_pub, peer[1], batch_id)
    nonce = secrets.token_bytes(12)
    header = {"format": 1, "batch_id": batch_id, "from": store.station_id, "to": to_station,
              "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "entries": len(entries),
              "eph": eph_pub.hex(), "nonce": nonce.hex(), "alg": _ALG}
    hbytes = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    head = MAGIC + struct.pack(">I", len(hbytes)) + hbytes
    plain = bytearray()
    for e in entries:
        meta = json.dumps({"txn_id": e.txn_id, "session_id": e.session_id, "content_type": e.content_type},
                          separators=(",", ":")).encode()
        plain += struct.pack(">I", len(meta)) + meta + struct.pack(">Q", len(e.payload)) + e.payload
    body = head + AESGCM(key).encrypt(nonce, bytes(plain), head)
    blob = body + sign_key.sign(body)
    write_atomic(out, blob)
    store.audit(actor, "batch.export", batch_id, to_station=to_station, entries=len(entries))
    return BatchSummary(batch_id, store.station_id, to_station, len(entries))


def read_header(data: bytes) -> tuple[dict[str, Any], int]:
    """The header of a batch file and where its ciphertext starts; BatchFormatError when the
    bytes are not a batch this version reads. The header is not yet authenticated."""
    if len(data) < len(MAGIC) + 4 + _SIG or data[:len(MAGIC)] != MAGIC:
        raise BatchFormatError("not a biostation batch file (bad magic or truncated)")
    (hlen,) = struct.unpack(">I", data[len(MAGIC):len(MAGIC) + 4])
    start = len(MAGIC) + 4
    if hlen > _MAX_HEADER or start + hlen + _SIG > len(data):
        raise BatchFormatError("batch header length out of range")
    try:
        header = json.loads(data[start:start + hlen].decode("utf-8"))
        if not isinstance(header, dict):
            raise ValueError("not an object")
        for k in ("batch_id", "from", "to", "eph", "nonce"):
            if not isinstance(header.get(k), str):
                raise ValueError(k)
        if header.get("format") != 1 or header.get("alg") != _ALG or not isinstance(header.get("entries"), int):
            raise ValueError("format")
    except (ValueError, UnicodeDecodeError) as exc:
        raise BatchFormatError(f"batch header unreadable or of another version ({exc})") from None
    return header, start + hlen


def import_batch(store: EnrollmentStore, source: str | os.PathLike[str] | bytes, *, actor: str) -> BatchSummary:
    """Verify, decrypt and queue the batch in the file ``source`` (or these bytes); all or nothing
    (see the module docstring)."""
    from cryptography.exceptions import InvalidSignature, InvalidTag
    from cryptography.hazmat.primitives import serialization as s
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    data = bytes(source) if isinstance(source, (bytes, bytearray)) else Path(source).read_bytes()
    header, ct_start = read_header(data)
    sender = header["from"]
    peer = store.peer(sender)
    if peer is None:
        raise BatchUntrustedError(f"batch signed by station {sender!r}, which is not trusted here")
    body, sig = data[:-_SIG], data[-_SIG:]
    try:
        Ed25519PublicKey.from_public_bytes(peer[0]).verify(sig, body)
    except InvalidSignature:
        raise BatchTamperedError("batch signature does not verify: the file was altered") from None
    if header["to"] != store.station_id:
        raise BatchUntrustedError(f"batch is for station {header['to']!r}, this is {store.station_id!r}")
    _, box = store.identity_keys()
    my_pub = box.public_key().public_bytes(s.Encoding.Raw, s.PublicFormat.Raw)
    try:
        eph_pub, nonce = bytes.fromhex(header["eph"]), bytes.fromhex(header["nonce"])
        key = _kdf(box.exchange(X25519PublicKey.from_public_bytes(eph_pub)), eph_pub, my_pub, header["batch_id"])
        plain = AESGCM(key).decrypt(nonce, body[ct_start:], body[:ct_start])
    except (ValueError, InvalidTag):
        raise BatchTamperedError("batch does not decrypt with this station's key") from None
    entries: list[tuple[str, str | None, str, bytes]] = []
    pos = 0
    try:
        while pos < len(plain):
            (mlen,) = struct.unpack_from(">I", plain, pos)
            meta = json.loads(plain[pos + 4:pos + 4 + mlen].decode("utf-8"))
            pos += 4 + mlen
            (plen,) = struct.unpack_from(">Q", plain, pos)
            pos += 8
            if pos + plen > len(plain):
                raise ValueError("payload overruns the batch")
            entries.append((str(meta["txn_id"]), meta.get("session_id"), str(meta["content_type"]),
                            bytes(plain[pos:pos + plen])))
            pos += plen
    except (struct.error, ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise BatchFormatError(f"batch entries malformed ({exc})") from None
    if len(entries) != header["entries"]:
        raise BatchFormatError(f"batch announces {header['entries']} entries and holds {len(entries)}")
    queued, skipped = store.import_entries(actor, header["batch_id"], sender, entries)
    return BatchSummary(header["batch_id"], sender, header["to"], len(entries), queued, skipped)
