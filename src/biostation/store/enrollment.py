"""The enrollment store: sessions, biometric fields, finished records, decisions, the outbox and
the audit trail of a desk, in one SQLite database, every personal field sealed.

Durability: SQLite in WAL mode with ``synchronous=FULL``. Every method below that changes
something is one transaction, committed to disk before it returns, together with its audit line
(:mod:`.audit`); a desk killed at any instant (``kill -9``, power cut) reopens at a method
boundary, and a session resumes at the last ``step`` it recorded.

Encryption at rest: demographics, biometric blobs (finger images, templates, portraits),
finished records (ANSI/NIST-ITL transactions, ISO records), decision details and outbox payloads
are sealed with AES-256-GCM under the store's data key (:mod:`.keys`), the associated data naming
the row and field (``blob``, session id, field name), so a sealed value moved elsewhere fails to
open. In clear are ids, states, step names, field names, the non-personal metadata a caller gives
(format, finger position, size, quality), scores and thresholds. ``secure_delete`` is on, so
purged ciphertext is overwritten in the file rather than left in free pages. A store opened with
another key fails at once (:class:`~biostation.errors.StoreKeyError`), before anything is read;
:meth:`EnrollmentStore.rekey` re-seals everything under a new key in one transaction.

Session lifecycle::

    open --finish()--> finished --outbox ack (2xx)--> delivered (biometrics purged)
      |
      +--cancel()--> cancelled (biometrics purged at once)

While a session is ``open`` its demographics, blobs, step and decisions may change; afterwards
only the outbox moves it. :meth:`EnrollmentStore.finish` stores the finished transaction and its
records and queues the transaction for upload in one transaction, so a finished session is always
queued exactly once. The outbox (:mod:`.outbox`) purges the session's biometric payloads (blobs,
record bytes, the queued payload) only in the transaction that records the central system's 2xx
acknowledgement; metadata, decisions and the receipt stay.

Thread-safety: one :class:`EnrollmentStore` may be shared by threads (a lock serialises its
connection). Several processes (the daemon, a CLI verb) may open the same database: SQLite's
locks serialise their writes (``BEGIN IMMEDIATE``, ``busy_timeout_s``).

Cost: one ``fsync`` pair per change (WAL append + commit). Sealing adds 29 bytes per field and
runs at memory speed (AES-NI).
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from ..errors import StoreError, StoreIntegrityError, StoreKeyError, StoreStateError
from . import audit as _audit
from .keys import DataKey
from .sqlite_tx import ImmediateTx

__all__ = ["EnrollmentStore", "SessionState", "SessionInfo", "Decision", "OutboxEntry", "OutboxState",
           "DB_NAME"]

SCHEMA_VERSION = 1
DB_NAME = "enrollment.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    session_id   TEXT PRIMARY KEY,
    state        TEXT NOT NULL,            -- open | finished | delivered | cancelled
    step         TEXT NOT NULL,            -- the workflow's step (free text, no personal data)
    operator     TEXT NOT NULL,            -- who opened it
    demographics BLOB NOT NULL,            -- sealed JSON
    created_at   REAL NOT NULL,
    updated_at   REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_state ON sessions(state, created_at);
CREATE TABLE IF NOT EXISTS blobs (
    session_id TEXT NOT NULL REFERENCES sessions(session_id),
    field      TEXT NOT NULL,              -- "finger/02/image", "finger/02/template", "portrait", ...
    meta       TEXT NOT NULL,              -- JSON the caller gives: format, position, size, quality
    size       INTEGER NOT NULL,
    data       BLOB NOT NULL,              -- sealed
    updated_at REAL NOT NULL,
    PRIMARY KEY (session_id, field)
);
CREATE TABLE IF NOT EXISTS records (
    session_id TEXT NOT NULL REFERENCES sessions(session_id),
    name       TEXT NOT NULL,              -- "transaction" (ANSI/NIST-ITL), "iso19794-4/02", ...
    size       INTEGER NOT NULL,
    data       BLOB,                       -- sealed; NULL once delivered and purged
    created_at REAL NOT NULL,
    PRIMARY KEY (session_id, name)
);
CREATE TABLE IF NOT EXISTS decisions (
    decision_id TEXT PRIMARY KEY,
    session_id  TEXT NOT NULL REFERENCES sessions(session_id),
    kind        TEXT NOT NULL,             -- "finger-1:1", "face-1:1", "chip", ...
    score       REAL,
    threshold   REAL,
    outcome     TEXT NOT NULL,             -- "match", "no-match", "error", ...
    details     BLOB NOT NULL,             -- sealed JSON (document number, reasons)
    at          REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_session ON decisions(session_id, at);
CREATE TABLE IF NOT EXISTS outbox (
    txn_id       TEXT PRIMARY KEY,          -- the Idempotency-Key of its upload
    session_id   TEXT,
    origin       TEXT NOT NULL,             -- "local" or "batch:<batch id>"
    content_type TEXT NOT NULL,
    state        TEXT NOT NULL,             -- queued | acked | rejected
    seq          INTEGER NOT NULL,          -- queue order
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_at      REAL NOT NULL,             -- earliest next attempt (UNIX time)
    last_error   TEXT,
    size         INTEGER NOT NULL,
    payload      BLOB,                      -- sealed; NULL once acknowledged
    receipt      TEXT,                      -- JSON: status, time, the server's receipt
    created_at   REAL NOT NULL,
    acked_at     REAL
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox(state, next_at, seq);
CREATE TABLE IF NOT EXISTS peers (
    station_id TEXT PRIMARY KEY,
    sign_pub   BLOB NOT NULL,               -- Ed25519 public key (32 bytes)
    box_pub    BLOB NOT NULL,               -- X25519 public key (32 bytes)
    added_at   REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS imported_batches (
    batch_id    TEXT PRIMARY KEY,
    from_station TEXT NOT NULL,
    entries     INTEGER NOT NULL,
    imported_at REAL NOT NULL
);
"""

_KEYCHECK = b"biostation enrollment store"
_ID_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:")


class SessionState(str, Enum):
    OPEN = "open"
    FINISHED = "finished"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


class OutboxState(str, Enum):
    QUEUED = "queued"      # waiting for (another) upload attempt
    ACKED = "acked"        # the central endpoint answered 2xx; payload purged
    REJECTED = "rejected"  # the endpoint refused it for good (4xx); held for an operator


@dataclass(frozen=True)
class SessionInfo:
    session_id: str
    state: SessionState
    step: str
    operator: str
    created_at: float
    updated_at: float
    fields: dict[str, dict[str, Any]] = field(default_factory=dict)  # blob field -> its metadata


@dataclass(frozen=True)
class Decision:
    decision_id: str
    session_id: str
    kind: str
    score: float | None
    threshold: float | None
    outcome: str
    details: dict[str, Any]
    at: float


@dataclass(frozen=True)
class OutboxEntry:
    """A queued transaction, its payload opened (for the sender; never logged)."""

    txn_id: str
    session_id: str | None
    origin: str
    content_type: str
    attempts: int
    payload: bytes = field(repr=False)


def _check_id(value: str, what: str) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 128 or not set(value) <= _ID_CHARS:
        raise StoreError(f"{what} {value!r}: 1-128 letters, digits or -_.:")
    return value


def _check_field(name: str) -> str:
    if not isinstance(name, str) or not 1 <= len(name) <= 128 or not set(name) <= _ID_CHARS | {"/"}:
        raise StoreError(f"field name {name!r}: 1-128 letters, digits or -_.:/")
    return name


def _aad(*parts: str) -> bytes:
    return "\x00".join(parts).encode("utf-8")


def _json(obj: Any) -> bytes:
    # ensure_ascii=False: names with diacritics are stored as the exact code points given (no
    # normalisation, no escapes), and read back identical
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class EnrollmentStore:
    """The store at ``path`` (created when missing), sealed with ``key``.

    ``clock``: UNIX time source (injectable, so tests and fault drills control time).
    StoreKeyError when ``key`` is not the key this store was created with.
    """

    def __init__(self, path: str | os.PathLike[str], key: DataKey, *, clock: Callable[[], float] = time.time,
                 busy_timeout_s: float = 30.0):
        self.path = Path(path)
        self.key = key
        self.clock = clock
        self._lock = threading.RLock()
        self._epoch: str | None = None  # the key epoch this connection seals for (see rekey)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            # made 0600 before SQLite opens it: SQLite gives its -wal and -shm files the same mode
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        except OSError as exc:
            raise StoreError(f"cannot create the store {self.path}: {exc.strerror}") from exc
        try:
            self._db = sqlite3.connect(str(self.path), timeout=busy_timeout_s, isolation_level=None,
                                       check_same_thread=False)
            for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "secure_delete=ON",
                           "temp_store=MEMORY"):
                self._db.execute(f"PRAGMA {pragma}")
            self._db.executescript(_SCHEMA + _audit.SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open the store {self.path}: {exc}") from exc
        try:
            self._init_meta()
        except BaseException:
            self._db.close()
            raise

    @classmethod
    def open(cls, settings: Any, *, create: bool = True, **kw: Any) -> EnrollmentStore:
        """The store of ``settings`` (``<store_dir>/enrollment.db``) with the key its source gives."""
        from .keys import load_data_key, settle_rotation

        path = settings.resolved_store_dir / DB_NAME
        exists = path.is_file() and path.stat().st_size > 0
        if not create and not exists:
            raise StoreError(f"no enrollment store at {path}")
        if exists:
            settle_rotation(settings, lambda key: _keycheck_opens(path, key))
        # a key is made only with a new store: an existing store whose key file went missing must
        # not get a fresh key file that can never open it
        return cls(path, load_data_key(settings, create=not exists), **kw)

    def _init_meta(self) -> None:
        with self._tx() as db:
            rows = dict(db.execute("SELECT key, value FROM meta").fetchall())
            if "schema" in rows and int(rows["schema"]) != SCHEMA_VERSION:
                raise StoreError(f"store {self.path} has schema {rows['schema']}, this version reads {SCHEMA_VERSION}")
            if "keycheck" in rows:
                try:
                    self.key.open(bytes.fromhex(rows["keycheck"]), _aad("keycheck"))
                except StoreIntegrityError:
                    raise StoreKeyError(f"the data key ({self.key.source}) does not open the store {self.path}: "
                                        "another key, or an altered key file") from None
                if "station_id" not in rows or "audit_key" not in rows:
                    raise StoreIntegrityError(f"store {self.path}: its meta table lost rows (altered)")
                self.station_id = rows["station_id"]
                self._audit_key = self.key.open(bytes.fromhex(rows["audit_key"]), _aad("audit-key"))
                if "key_epoch" not in rows:
                    db.execute("INSERT INTO meta VALUES ('key_epoch', '0')")
                self._epoch = rows.get("key_epoch", "0")
                return
            self.station_id = "st-" + secrets.token_hex(6)
            # the audit MAC key is its own random key, sealed under the data key: a key rotation
            # re-seals it, and the MACs of old lines still verify
            self._audit_key = secrets.token_bytes(32)
            db.executemany("INSERT INTO meta VALUES (?, ?)", [
                ("schema", str(SCHEMA_VERSION)),
                ("keycheck", self.key.seal(_KEYCHECK, _aad("keycheck")).hex()),
                ("station_id", self.station_id),
                ("audit_key", self.key.seal(self._audit_key, _aad("audit-key")).hex()),
                ("key_epoch", "0"),
            ])
            self._epoch = "0"
            _audit.append(db, actor="system", action="store.create", obj=self.station_id, detail={},
                          now=self.clock(), mac_key=self._audit_key)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> EnrollmentStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- transactions ----------------------------------------------------------------------------
    def _check_epoch(self, db: sqlite3.Connection) -> None:
        if self._epoch is None:
            return
        row = db.execute("SELECT value FROM meta WHERE key='key_epoch'").fetchone()
        if row is None or row[0] != self._epoch:
            raise StoreKeyError(f"the store {self.path} was re-keyed by another process: "
                                "reopen it with the new key")

    def _tx(self) -> ImmediateTx:
        return ImmediateTx(self._db, self._lock, "store", check=self._check_epoch)

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.DatabaseError as exc:
                raise StoreError(f"store: {exc}") from exc

    def _log(self, db: sqlite3.Connection, actor: str, action: str, obj: str | None, **detail: Any) -> None:
        _audit.append(db, actor=actor, action=action, obj=obj, detail=detail, now=self.clock(),
                      mac_key=self._audit_key)

    def _state(self, db: sqlite3.Connection, session_id: str) -> SessionState:
        row = db.execute("SELECT state FROM sessions WHERE session_id=?", (session_id,)).fetchone()
        if row is None:
            raise StoreStateError(f"no session {session_id!r}")
        return SessionState(row[0])

    def _open_only(self, db: sqlite3.Connection, session_id: str, what: str) -> None:
        st = self._state(db, session_id)
        if st is not SessionState.OPEN:
            raise StoreStateError(f"session {session_id}: cannot {what}, it is {st.value}")

    # --- key rotation ----------------------------------------------------------------------------
    def rekey(self, new_key: DataKey, actor: str) -> dict[str, int]:
        """Re-seal every sealed value of the store under ``new_key``, in one transaction: a crash
        leaves the whole store under the old key or the whole store under the new one. The audit
        trail's MACs stay valid (their key is re-sealed, not changed). Returns the count of values
        re-sealed per table. Persisting ``new_key`` is the caller's part: see
        :func:`biostation.store.keys.rotate_key`, which orders the two so that no crash loses a key.
        Other processes with the store open are refused their next write (StoreKeyError: a key
        epoch in ``meta`` moved on), so none seals anything under the old key afterwards."""
        counts: dict[str, int] = {}
        old = self.key

        def reseal(db: sqlite3.Connection, table: str, col: str, key_cols: tuple[str, ...],
                   aad: Callable[[tuple[Any, ...]], bytes]) -> None:
            where = " AND ".join(f"{k}=?" for k in key_cols)
            ids = db.execute(f"SELECT {', '.join(key_cols)} FROM {table} WHERE {col} IS NOT NULL").fetchall()
            for ident in ids:
                (sealed,) = db.execute(f"SELECT {col} FROM {table} WHERE {where}", ident).fetchone()
                a = aad(ident)
                db.execute(f"UPDATE {table} SET {col}=? WHERE {where}", (new_key.seal(old.open(sealed, a), a), *ident))
            counts[table] = len(ids)

        with self._tx() as db:
            reseal(db, "sessions", "demographics", ("session_id",), lambda i: _aad("demographics", i[0]))
            reseal(db, "blobs", "data", ("session_id", "field"), lambda i: _aad("blob", i[0], i[1]))
            reseal(db, "records", "data", ("session_id", "name"), lambda i: _aad("record", i[0], i[1]))
            reseal(db, "decisions", "details", ("decision_id", "session_id"),
                   lambda i: _aad("decision", i[1], i[0]))
            reseal(db, "outbox", "payload", ("txn_id",), lambda i: _aad("outbox", i[0]))
            for name in ("keycheck", "identity", "audit_key"):
                row = db.execute("SELECT value FROM meta WHERE key=?", (name,)).fetchone()
                if row is not None:
                    a = _aad(name if name != "audit_key" else "audit-key")
                    db.execute("UPDATE meta SET value=? WHERE key=?",
                               (new_key.seal(old.open(bytes.fromhex(row[0]), a), a).hex(), name))
            epoch = str(int(self._epoch or "0") + 1)
            db.execute("UPDATE meta SET value=? WHERE key='key_epoch'", (epoch,))
            self._log(db, actor, "store.rekey", self.station_id, source=new_key.source, **counts)
        self.key, self._epoch = new_key, epoch
        return counts

    # --- audit -----------------------------------------------------------------------------------
    def audit(self, actor: str, action: str, obj: str | None = None, **detail: Any) -> int:
        """Append an operator action to the audit trail (``operator.login``, ``quality.override``,
        ...); ids and codes only. Returns the line's number."""
        with self._tx() as db:
            return _audit.append(db, actor=actor, action=action, obj=obj, detail=detail, now=self.clock(),
                                 mac_key=self._audit_key)

    def verify_audit(self) -> _audit.AuditReport:
        """The trail checked with this store's key (chain, MACs, head)."""
        with self._lock:
            return _audit.verify(self._db, self._audit_key)

    def audit_lines(self, after: int = 0, limit: int | None = None) -> list[_audit.AuditLine]:
        with self._lock:
            return _audit.lines(self._db, after=after, limit=limit)

    # --- sessions --------------------------------------------------------------------------------
    def open_session(self, actor: str, demographics: Mapping[str, Any], *, session_id: str | None = None,
                     step: str = "demographics") -> str:
        """A new open session with its demographics (a JSON object); returns its id."""
        session_id = _check_id(session_id or uuid.uuid4().hex, "session id")
        now = self.clock()
        sealed = self.key.seal(_json(dict(demographics)), _aad("demographics", session_id))
        with self._tx() as db:
            if db.execute("SELECT 1 FROM sessions WHERE session_id=?", (session_id,)).fetchone():
                raise StoreStateError(f"session {session_id} exists already")
            db.execute("INSERT INTO sessions VALUES (?,?,?,?,?,?,?)",
                       (session_id, SessionState.OPEN.value, step, actor, sealed, now, now))
            self._log(db, actor, "session.open", session_id, step=step)
        return session_id

    def session(self, session_id: str) -> SessionInfo:
        rows = self._query("SELECT session_id, state, step, operator, created_at, updated_at FROM sessions "
                           "WHERE session_id=?", (session_id,))
        if not rows:
            raise StoreStateError(f"no session {session_id!r}")
        fields = {f: json.loads(m) for f, m in self._query(
            "SELECT field, meta FROM blobs WHERE session_id=? ORDER BY field", (session_id,))}
        sid, st, step, op, c, u = rows[0]
        return SessionInfo(sid, SessionState(st), step, op, c, u, fields)

    def sessions(self, state: SessionState | str | None = None) -> list[SessionInfo]:
        """Sessions (without their field lists), oldest first; ``state`` filters."""
        if state is None:
            rows = self._query("SELECT session_id, state, step, operator, created_at, updated_at FROM sessions "
                               "ORDER BY created_at, session_id")
        else:
            rows = self._query("SELECT session_id, state, step, operator, created_at, updated_at FROM sessions "
                               "WHERE state=? ORDER BY created_at, session_id", (SessionState(state).value,))
        return [SessionInfo(r[0], SessionState(r[1]), r[2], r[3], r[4], r[5]) for r in rows]

    def resumable(self) -> list[SessionInfo]:
        """Open sessions: what a restarted desk offers to resume, at their recorded step."""
        return self.sessions(SessionState.OPEN)

    def demographics(self, session_id: str) -> dict[str, Any]:
        rows = self._query("SELECT demographics FROM sessions WHERE session_id=?", (session_id,))
        if not rows:
            raise StoreStateError(f"no session {session_id!r}")
        return json.loads(self.key.open(rows[0][0], _aad("demographics", session_id)).decode("utf-8"))

    def set_demographics(self, session_id: str, actor: str, demographics: Mapping[str, Any]) -> None:
        sealed = self.key.seal(_json(dict(demographics)), _aad("demographics", session_id))
        with self._tx() as db:
            self._open_only(db, session_id, "change demographics")
            db.execute("UPDATE sessions SET demographics=?, updated_at=? WHERE session_id=?",
                       (sealed, self.clock(), session_id))
            self._log(db, actor, "session.demographics", session_id, fields=sorted(demographics))

    def set_step(self, session_id: str, actor: str, step: str) -> None:
        """Record the workflow step reached (resume point after a restart)."""
        if not isinstance(step, str) or not 1 <= len(step) <= 64:
            raise StoreError("a step is a short name")
        with self._tx() as db:
            self._open_only(db, session_id, "change step")
            db.execute("UPDATE sessions SET step=?, updated_at=? WHERE session_id=?", (step, self.clock(), session_id))
            self._log(db, actor, "session.step", session_id, step=step)

    # --- biometric blobs -------------------------------------------------------------------------
    def put_blob(self, session_id: str, name: str, data: bytes, actor: str,
                 meta: Mapping[str, Any] | None = None) -> None:
        """Store (or replace) one biometric field of an open session, sealed.

        ``name``: ``finger/<ISO position>/image``, ``finger/<pos>/template``, ``portrait``, ...
        ``meta``: non-personal facts kept in clear (format, width, height, ppi, quality score).
        """
        _check_field(name)
        meta_json = json.dumps(_audit.check_detail(dict(meta or {})), separators=(",", ":"), sort_keys=True)
        sealed = self.key.seal(bytes(data), _aad("blob", session_id, name))
        now = self.clock()
        with self._tx() as db:
            self._open_only(db, session_id, "store a field")
            replaced = db.execute("SELECT 1 FROM blobs WHERE session_id=? AND field=?", (session_id, name)).fetchone()
            db.execute("INSERT OR REPLACE INTO blobs VALUES (?,?,?,?,?,?)",
                       (session_id, name, meta_json, len(data), sealed, now))
            db.execute("UPDATE sessions SET updated_at=? WHERE session_id=?", (now, session_id))
            self._log(db, actor, "blob.replace" if replaced else "blob.put", session_id, field=name, size=len(data))

    def blob(self, session_id: str, name: str) -> bytes:
        rows = self._query("SELECT data FROM blobs WHERE session_id=? AND field=?", (session_id, name))
        if not rows:
            raise StoreStateError(f"session {session_id}: no field {name!r}")
        return self.key.open(rows[0][0], _aad("blob", session_id, name))

    def delete_blob(self, session_id: str, name: str, actor: str) -> None:
        with self._tx() as db:
            self._open_only(db, session_id, "delete a field")
            cur = db.execute("DELETE FROM blobs WHERE session_id=? AND field=?", (session_id, name))
            if cur.rowcount != 1:
                raise StoreStateError(f"session {session_id}: no field {name!r}")
            self._log(db, actor, "blob.delete", session_id, field=name)

    # --- decisions -------------------------------------------------------------------------------
    def add_decision(self, session_id: str, actor: str, kind: str, outcome: str, *, score: float | None = None,
                     threshold: float | None = None, details: Mapping[str, Any] | None = None) -> str:
        """Record a verification result; ``details`` (document number, reasons) is sealed."""
        decision_id = uuid.uuid4().hex
        sealed = self.key.seal(_json(dict(details or {})), _aad("decision", session_id, decision_id))
        with self._tx() as db:
            self._open_only(db, session_id, "add a decision")
            db.execute("INSERT INTO decisions VALUES (?,?,?,?,?,?,?,?)",
                       (decision_id, session_id, kind, score, threshold, outcome, sealed, self.clock()))
            self._log(db, actor, "decision.add", session_id, decision=decision_id, kind=kind, outcome=outcome,
                      score=score, threshold=threshold)
        return decision_id

    def decisions(self, session_id: str) -> list[Decision]:
        out = []
        for did, sid, kind, score, thr, outcome, sealed, at in self._query(
                "SELECT * FROM decisions WHERE session_id=? ORDER BY at, decision_id", (session_id,)):
            details = json.loads(self.key.open(sealed, _aad("decision", sid, did)).decode("utf-8"))
            out.append(Decision(did, sid, kind, score, thr, outcome, details, at))
        return out

    # --- finishing -------------------------------------------------------------------------------
    def finish(self, session_id: str, actor: str, transaction: bytes, *, records: Mapping[str, bytes] | None = None,
               txn_id: str | None = None, content_type: str = "application/octet-stream") -> str:
        """Close an open session: keep its finished transaction (and ISO ``records``) sealed and queue
        the transaction for upload, all in one transaction. Returns the transaction id (the upload's
        idempotency key)."""
        txn_id = _check_id(txn_id or uuid.uuid4().hex, "transaction id")
        if records and "transaction" in records:
            raise StoreError("'transaction' is the name of the finished transaction itself, not of a record")
        recs = {"transaction": bytes(transaction), **{_check_field(k): bytes(v) for k, v in (records or {}).items()}}
        now = self.clock()
        sealed = {k: self.key.seal(v, _aad("record", session_id, k)) for k, v in recs.items()}
        payload = self.key.seal(bytes(transaction), _aad("outbox", txn_id))
        with self._tx() as db:
            self._open_only(db, session_id, "finish")
            if db.execute("SELECT 1 FROM outbox WHERE txn_id=?", (txn_id,)).fetchone():
                raise StoreStateError(f"transaction {txn_id} exists already")
            for k, v in sealed.items():
                db.execute("INSERT OR REPLACE INTO records VALUES (?,?,?,?,?)", (session_id, k, len(recs[k]), v, now))
            self._enqueue(db, txn_id, session_id, "local", content_type, len(transaction), payload, now)
            db.execute("UPDATE sessions SET state=?, step='finished', updated_at=? WHERE session_id=?",
                       (SessionState.FINISHED.value, now, session_id))
            self._log(db, actor, "session.finish", session_id, txn=txn_id, records=sorted(recs))
        return txn_id

    def record(self, session_id: str, name: str = "transaction") -> bytes:
        rows = self._query("SELECT data FROM records WHERE session_id=? AND name=?", (session_id, name))
        if not rows:
            raise StoreStateError(f"session {session_id}: no record {name!r}")
        if rows[0][0] is None:
            raise StoreStateError(f"session {session_id}: record {name!r} was delivered and purged")
        return self.key.open(rows[0][0], _aad("record", session_id, name))

    def cancel(self, session_id: str, actor: str, reason: str) -> None:
        """Abandon an open session; its biometric fields are purged at once."""
        with self._tx() as db:
            self._open_only(db, session_id, "cancel")
            n = db.execute("DELETE FROM blobs WHERE session_id=?", (session_id,)).rowcount
            db.execute("UPDATE sessions SET state=?, updated_at=? WHERE session_id=?",
                       (SessionState.CANCELLED.value, self.clock(), session_id))
            self._log(db, actor, "session.cancel", session_id, reason=reason[:_audit._MAX_TEXT], purged=n)

    # --- outbox primitives (driven by biostation.store.outbox) -----------------------------------
    def _enqueue(self, db: sqlite3.Connection, txn_id: str, session_id: str | None, origin: str, content_type: str,
                 size: int, sealed_payload: bytes, now: float) -> None:
        seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM outbox").fetchone()[0]
        db.execute("INSERT INTO outbox(txn_id, session_id, origin, content_type, state, seq, next_at, size, payload, "
                   "created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                   (txn_id, session_id, origin, content_type, OutboxState.QUEUED.value, seq, now, size,
                    sealed_payload, now))

    def outbox_next(self, now: float) -> OutboxEntry | None:
        """The oldest queued entry due at ``now`` (payload opened), or None."""
        rows = self._query("SELECT txn_id, session_id, origin, content_type, attempts, payload FROM outbox "
                           "WHERE state=? AND next_at<=? ORDER BY seq LIMIT 1", (OutboxState.QUEUED.value, now))
        if not rows:
            return None
        txn, sid, origin, ctype, attempts, sealed = rows[0]
        try:
            payload = self.key.open(sealed, _aad("outbox", txn))
        except StoreIntegrityError:
            # an altered row: never sent, never retried in a loop; held for an operator
            self.outbox_rejected(txn, "system", 0, "sealed payload failed authentication")
            return self.outbox_next(now)
        return OutboxEntry(txn, sid, origin, ctype, attempts, payload)

    def outbox_next_due(self) -> float | None:
        """When the earliest queued entry is due (UNIX time), or None when nothing is queued."""
        rows = self._query("SELECT MIN(next_at) FROM outbox WHERE state=?", (OutboxState.QUEUED.value,))
        return rows[0][0]

    def outbox_retry_later(self, txn_id: str, error: str, next_at: float) -> None:
        with self._tx() as db:
            db.execute("UPDATE outbox SET attempts=attempts+1, last_error=?, next_at=? WHERE txn_id=? AND state=?",
                       (error[:200], next_at, txn_id, OutboxState.QUEUED.value))

    def outbox_hold_all(self, until: float) -> None:
        """The endpoint is unreachable: no queued entry is tried before ``until``."""
        with self._tx() as db:
            db.execute("UPDATE outbox SET next_at=MAX(next_at, ?) WHERE state=?", (until, OutboxState.QUEUED.value))

    def outbox_retry_now(self, actor: str) -> int:
        """Make every queued entry due now (the operator knows the network is back); returns how many."""
        with self._tx() as db:
            n = db.execute("UPDATE outbox SET next_at=? WHERE state=? AND next_at>?",
                           (self.clock(), OutboxState.QUEUED.value, self.clock())).rowcount
            self._log(db, actor, "outbox.retry-now", None, entries=n)
        return n

    def outbox_rejected(self, txn_id: str, actor: str, status: int, error: str) -> None:
        """The endpoint refused the entry for good: held (payload kept) for an operator."""
        with self._tx() as db:
            db.execute("UPDATE outbox SET attempts=attempts+1, state=?, last_error=? WHERE txn_id=? AND state=?",
                       (OutboxState.REJECTED.value, error[:200], txn_id, OutboxState.QUEUED.value))
            self._log(db, actor, "outbox.rejected", txn_id, status=status)

    def outbox_requeue(self, txn_id: str, actor: str) -> None:
        """Put a rejected entry back in the queue (after the cause was fixed centrally)."""
        with self._tx() as db:
            cur = db.execute("UPDATE outbox SET state=?, next_at=? WHERE txn_id=? AND state=?",
                             (OutboxState.QUEUED.value, self.clock(), txn_id, OutboxState.REJECTED.value))
            if cur.rowcount != 1:
                raise StoreStateError(f"transaction {txn_id} is not rejected")
            self._log(db, actor, "outbox.requeue", txn_id)

    def outbox_acked(self, txn_id: str, actor: str, receipt: Mapping[str, Any]) -> dict[str, int]:
        """The central endpoint acknowledged ``txn_id`` (2xx): in one transaction, mark it acked with
        its receipt and purge the biometric payloads (queued payload, the session's blobs and record
        bytes). Returns what was purged. A second call for the same id changes nothing."""
        now = self.clock()
        with self._tx() as db:
            row = db.execute("SELECT session_id, state, origin FROM outbox WHERE txn_id=?", (txn_id,)).fetchone()
            if row is None:
                raise StoreStateError(f"no transaction {txn_id!r} in the outbox")
            sid, state, origin = row
            if origin != "local":
                sid = None  # a batch's session ids name sessions of another station, not ours
            if state == OutboxState.ACKED.value:
                return {"blobs": 0, "records": 0}
            db.execute("UPDATE outbox SET state=?, payload=NULL, receipt=?, acked_at=?, last_error=NULL, "
                       "attempts=attempts+1 WHERE txn_id=?",
                       (OutboxState.ACKED.value, json.dumps(dict(receipt), sort_keys=True), now, txn_id))
            blobs = records = 0
            if sid is not None:
                blobs = db.execute("DELETE FROM blobs WHERE session_id=?", (sid,)).rowcount
                records = db.execute("UPDATE records SET data=NULL WHERE session_id=? AND data IS NOT NULL",
                                     (sid,)).rowcount
                db.execute("UPDATE sessions SET state=?, updated_at=? WHERE session_id=? AND state=?",
                           (SessionState.DELIVERED.value, now, sid, SessionState.FINISHED.value))
            self._log(db, actor, "outbox.ack", txn_id, status=receipt.get("status"), purged_blobs=blobs,
                      purged_records=records)
        self.checkpoint()
        return {"blobs": blobs, "records": records}

    def checkpoint(self) -> bool:
        """Copy the WAL into the database and truncate it, so purged ciphertext (zeroed in the
        database by ``secure_delete``) does not linger in old WAL frames either. Best effort: False
        when another connection's read kept part of the WAL (the next checkpoint finishes it)."""
        with self._lock:
            try:
                busy, _, _ = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            except sqlite3.DatabaseError:
                return False
            return busy == 0

    def outbox_entry(self, txn_id: str) -> dict[str, Any]:
        """An entry's metadata (no payload): state, attempts, last error, receipt, whether a payload is held."""
        rows = self._query("SELECT txn_id, session_id, origin, content_type, state, attempts, next_at, last_error, "
                           "size, payload IS NOT NULL, receipt, created_at, acked_at FROM outbox WHERE txn_id=?",
                           (txn_id,))
        if not rows:
            raise StoreStateError(f"no transaction {txn_id!r} in the outbox")
        keys = ("txn_id", "session_id", "origin", "content_type", "state", "attempts", "next_at", "last_error", "size",
                "payload_held", "receipt", "created_at", "acked_at")
        out = dict(zip(keys, rows[0]))
        out["payload_held"] = bool(out["payload_held"])
        out["receipt"] = json.loads(out["receipt"]) if out["receipt"] else None
        return out

    def outbox_status(self) -> dict[str, Any]:
        """Counts by state, payload bytes held, the oldest queued entry's age and the last error."""
        counts = {s.value: 0 for s in OutboxState}
        for st, n in self._query("SELECT state, COUNT(*) FROM outbox GROUP BY state"):
            counts[st] = n
        held = self._query("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM outbox WHERE payload IS NOT NULL")[0]
        oldest = self._query("SELECT MIN(created_at), MIN(next_at) FROM outbox WHERE state=?",
                             (OutboxState.QUEUED.value,))[0]
        err = self._query("SELECT txn_id, last_error FROM outbox WHERE state!=? AND last_error IS NOT NULL "
                          "ORDER BY seq DESC LIMIT 1", (OutboxState.ACKED.value,))
        now = self.clock()
        return {"counts": counts, "payloads_held": held[0], "bytes_held": held[1],
                "oldest_queued_age_s": None if oldest[0] is None else round(now - oldest[0], 1),
                "next_attempt_in_s": None if oldest[1] is None else round(max(0.0, oldest[1] - now), 1),
                "last_error": {"txn_id": err[0][0], "error": err[0][1]} if err else None}

    def outbox_ids(self, state: OutboxState | str | None = None) -> list[str]:
        if state is None:
            return [r[0] for r in self._query("SELECT txn_id FROM outbox ORDER BY seq")]
        return [r[0] for r in self._query("SELECT txn_id FROM outbox WHERE state=? ORDER BY seq",
                                          (OutboxState(state).value,))]

    def iter_queued(self) -> Iterator[OutboxEntry]:
        """Every queued entry, its payload opened, in queue order; for batch export."""
        for txn, sid, origin, ctype, attempts, sealed in self._query(
                "SELECT txn_id, session_id, origin, content_type, attempts, payload FROM outbox "
                "WHERE state=? ORDER BY seq", (OutboxState.QUEUED.value,)):
            yield OutboxEntry(txn, sid, origin, ctype, attempts, self.key.open(sealed, _aad("outbox", txn)))

    # --- station identity and peers (batches) ----------------------------------------------------
    def identity_keys(self) -> tuple[Any, Any]:
        """This station's Ed25519 signing key and X25519 decryption key (made on first use, kept
        sealed in the store)."""
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

        with self._tx() as db:
            row = db.execute("SELECT value FROM meta WHERE key='identity'").fetchone()
            if row is None:
                sign, box = Ed25519PrivateKey.generate(), X25519PrivateKey.generate()
                raw = _raw_private(sign) + _raw_private(box)
                db.execute("INSERT INTO meta VALUES ('identity', ?)", (self.key.seal(raw, _aad("identity")).hex(),))
                self._log(db, "system", "identity.create", self.station_id)
                return sign, box
        raw = self.key.open(bytes.fromhex(row[0]), _aad("identity"))
        return Ed25519PrivateKey.from_private_bytes(raw[:32]), X25519PrivateKey.from_private_bytes(raw[32:])

    def identity(self) -> dict[str, str]:
        """What another station needs to trust this one: station id and the two public keys (hex)."""
        sign, box = self.identity_keys()
        return {"station_id": self.station_id, "sign_pub": _raw_public(sign).hex(), "box_pub": _raw_public(box).hex()}

    def trust(self, actor: str, station_id: str, sign_pub: bytes, box_pub: bytes) -> None:
        """Accept batches signed by ``station_id`` (and allow exports to it)."""
        _check_id(station_id, "station id")
        if len(sign_pub) != 32 or len(box_pub) != 32:
            raise StoreError("a peer's keys are 32-byte Ed25519 and X25519 public keys")
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO peers VALUES (?,?,?,?)",
                       (station_id, bytes(sign_pub), bytes(box_pub), self.clock()))
            self._log(db, actor, "peer.trust", station_id)

    def peer(self, station_id: str) -> tuple[bytes, bytes] | None:
        rows = self._query("SELECT sign_pub, box_pub FROM peers WHERE station_id=?", (station_id,))
        return (bytes(rows[0][0]), bytes(rows[0][1])) if rows else None

    def import_entries(self, actor: str, batch_id: str, from_station: str,
                       entries: list[tuple[str, str | None, str, bytes]]) -> tuple[int, int]:
        """Queue ``(txn_id, session_id, content_type, payload)`` entries of a verified batch, all or
        nothing. Entries already known with the same payload are skipped (a batch imported twice,
        or a transaction that also arrived another way); a known id with *other* content refuses
        the whole batch. Returns ``(queued, skipped)``."""
        now = self.clock()
        with self._tx() as db:
            if db.execute("SELECT 1 FROM imported_batches WHERE batch_id=?", (batch_id,)).fetchone():
                self._log(db, actor, "batch.reimport", batch_id, entries=len(entries))
                return 0, len(entries)
            queued = skipped = 0
            for txn_id, sid, ctype, payload in entries:
                _check_id(txn_id, "transaction id")
                row = db.execute("SELECT payload, state FROM outbox WHERE txn_id=?", (txn_id,)).fetchone()
                if row is not None:
                    if row[0] is not None and self.key.open(row[0], _aad("outbox", txn_id)) != payload:
                        raise StoreStateError(f"transaction {txn_id} is known here with other content: batch refused")
                    skipped += 1
                    continue
                self._enqueue(db, txn_id, sid, f"batch:{batch_id}", ctype, len(payload),
                              self.key.seal(payload, _aad("outbox", txn_id)), now)
                queued += 1
            db.execute("INSERT INTO imported_batches VALUES (?,?,?,?)", (batch_id, from_station, len(entries), now))
            self._log(db, actor, "batch.import", batch_id, from_station=from_station, queued=queued, skipped=skipped)
        return queued, skipped


def _keycheck_opens(path: Path, key: DataKey) -> bool:
    """Whether ``key`` opens the store at ``path`` (read-only look at its key check)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT value FROM meta WHERE key='keycheck'").fetchone()
    except sqlite3.DatabaseError:
        return False
    finally:
        db.close()
    if row is None:
        return False
    try:
        key.open(bytes.fromhex(row[0]), _aad("keycheck"))
        return True
    except StoreIntegrityError:
        return False


def _raw_private(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization as s

    return key.private_bytes(s.Encoding.Raw, s.PrivateFormat.Raw, s.NoEncryption())


def _raw_public(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization as s

    return key.public_key().public_bytes(s.Encoding.Raw, s.PublicFormat.Raw)
