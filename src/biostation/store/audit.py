"""The audit trail: an append-only, hash-chained log of operator actions and record changes.

The trail is the ``audit`` table of the enrollment database, so a record change and its audit
line commit in the same SQLite transaction: there is no change without its line and no line
for a change that was rolled back. Each line holds::

    seq     1, 2, 3, ... without gaps (the line number that ``verify`` names)
    at      UTC time, ISO 8601 with milliseconds
    actor   who: an operator id, "outbox", "system", ...
    action  what: a dotted verb ("session.open", "blob.put", "outbox.ack", "operator.login")
    object  which: a session id, a transaction id, a batch id, or nothing
    detail  a small JSON object of non-personal values (field names, steps, counts, status codes)
    prev    the hash of line seq-1 (64 zeros for line 1)
    hash    SHA-256 over the canonical JSON of [seq, at, actor, action, object, detail, prev]
    mac     HMAC-SHA256 of ``hash`` under the audit sub-key of the store's data key

Detection, by :func:`verify`:

* a line edited in place: its content no longer matches its hash;
* a line edited *and* re-hashed: its MAC no longer matches (the MAC needs the data key), or,
  verified without the key, the next line's ``prev`` no longer matches;
* a line deleted: the sequence jumps;
* lines deleted at the end: the head (last seq, hash and its MAC, kept in the ``meta`` table in
  the same transaction as every append) and SQLite's AUTOINCREMENT counter both point past the
  last line.

SQLite triggers refuse UPDATE and DELETE on the table, so code cannot rewrite it by mistake;
someone with the file and the ``sqlite3`` shell can, and that is what the chain detects.

What a line may hold: ids, names of fields and steps, numbers, short codes. Never personal data
(names, document numbers), biometric bytes, tokens, PINs or keys: :func:`check_detail` refuses
bytes and long strings, and callers pass ids only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import AuditError

__all__ = ["SCHEMA", "append", "verify", "AuditReport", "AuditLine", "check_detail", "lines"]

GENESIS = "0" * 64

SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    at     TEXT NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    object TEXT,
    detail TEXT NOT NULL,
    prev   TEXT NOT NULL,
    hash   TEXT NOT NULL,
    mac    TEXT
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
"""

_NAME = re.compile(r"^[A-Za-z0-9_.:@/+-]{1,128}$")
_ACTION = re.compile(r"^[a-z0-9_-]+(\.[a-z0-9_-]+)*$")
_MAX_TEXT = 200


@dataclass(frozen=True)
class AuditLine:
    seq: int
    at: str
    actor: str
    action: str
    object: str | None
    detail: dict[str, Any]
    prev: str
    hash: str
    mac: str | None


@dataclass(frozen=True)
class AuditReport:
    """What :func:`verify` found. ``ok`` is True when ``first_broken`` is None."""

    lines: int
    first_broken: int | None
    reason: str | None
    macs_checked: bool

    @property
    def ok(self) -> bool:
        return self.first_broken is None

    def raise_if_broken(self) -> None:
        if self.first_broken is not None:
            raise AuditError(self.reason or "broken", self.first_broken)


def check_detail(detail: Mapping[str, Any]) -> dict[str, Any]:
    """``detail`` if it holds only short non-personal values; AuditError otherwise.

    Keys: names (letters, digits, ``_.:@/+-``). Values: None, bool, int, float, or str of at most
    200 characters; lists of those. Bytes (images, templates, keys) are refused outright.
    """
    out: dict[str, Any] = {}
    for k, v in detail.items():
        if not isinstance(k, str) or not _NAME.match(k):
            raise AuditError(f"audit detail key {k!r} is not a plain name")
        out[k] = _check_value(k, v)
    return out


def _check_value(k: str, v: Any) -> Any:
    if v is None or isinstance(v, (bool, int, float)):
        return v
    if isinstance(v, str):
        if len(v) > _MAX_TEXT:
            raise AuditError(f"audit detail {k!r}: a text of {len(v)} characters (at most {_MAX_TEXT}: ids and "
                             "codes, not data)")
        return v
    if isinstance(v, (list, tuple)):
        return [_check_value(k, x) for x in v]
    raise AuditError(f"audit detail {k!r}: a {type(v).__name__} cannot go into the audit trail")


def _canonical(seq: int, at: str, actor: str, action: str, obj: str | None, detail_json: str, prev: str) -> bytes:
    return json.dumps([seq, at, actor, action, obj, json.loads(detail_json), prev], ensure_ascii=False,
                      separators=(",", ":"), sort_keys=True).encode("utf-8")


def _mac(key: bytes, seq: int, digest: str) -> str:
    return hmac.new(key, f"{seq}:{digest}".encode(), hashlib.sha256).hexdigest()


def _now_iso(now: float) -> str:
    return dt.datetime.fromtimestamp(now, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def append(db: sqlite3.Connection, *, actor: str, action: str, obj: str | None, detail: Mapping[str, Any],
           now: float, mac_key: bytes | None) -> int:
    """Append one line inside the caller's write transaction (``BEGIN IMMEDIATE`` held, so no
    other writer can slip a line in between the read of the head and the insert). Returns its seq."""
    if not isinstance(actor, str) or not _NAME.match(actor):
        raise AuditError(f"audit actor {actor!r} is not a plain id")
    if not isinstance(action, str) or not _ACTION.match(action) or len(action) > 64:
        raise AuditError(f"audit action {action!r} is not a dotted verb")
    if obj is not None and (not isinstance(obj, str) or not _NAME.match(obj)):
        raise AuditError(f"audit object {obj!r} is not a plain id")
    detail_json = json.dumps(check_detail(detail), ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    row = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (1, GENESIS) if row is None else (row[0] + 1, row[1])
    at = _now_iso(now)
    digest = hashlib.sha256(_canonical(seq, at, actor, action, obj, detail_json, prev)).hexdigest()
    mac = _mac(mac_key, seq, digest) if mac_key is not None else None
    db.execute("INSERT INTO audit(seq, at, actor, action, object, detail, prev, hash, mac) VALUES (?,?,?,?,?,?,?,?,?)",
               (seq, at, actor, action, obj, detail_json, prev, digest, mac))
    head = {"seq": seq, "hash": digest, "mac": _mac(mac_key, seq, "head:" + digest) if mac_key is not None else None}
    db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('audit_head', ?)", (json.dumps(head),))
    return seq


def lines(db: sqlite3.Connection, *, after: int = 0, limit: int | None = None) -> list[AuditLine]:
    """Lines with ``seq > after``, oldest first."""
    sql = "SELECT seq, at, actor, action, object, detail, prev, hash, mac FROM audit WHERE seq > ? ORDER BY seq"
    args: tuple[Any, ...] = (after,)
    if limit is not None:
        sql += " LIMIT ?"
        args += (limit,)
    out = []
    for seq, at, actor, action, obj, detail, prev, digest, mac in db.execute(sql, args):
        try:
            d = json.loads(detail)
        except ValueError:
            d = {"unreadable": True}
        out.append(AuditLine(seq, at, actor, action, obj, d, prev, digest, mac))
    return out


def verify(db: sqlite3.Connection, mac_key: bytes | None = None) -> AuditReport:
    """Walk the whole trail; the first broken line and why, or ``ok``.

    With ``mac_key`` (the store's audit sub-key) every line's MAC and the head's MAC are checked
    too, which catches a line rewritten with a recomputed hash at that very line.
    Reads one line at a time: memory does not grow with the trail.
    """
    expected, prev, count = 1, GENESIS, 0
    cur = db.execute("SELECT seq, at, actor, action, object, detail, prev, hash, mac FROM audit ORDER BY seq")

    def broken(line: int, why: str) -> AuditReport:
        return AuditReport(count, line, why, mac_key is not None)

    for seq, at, actor, action, obj, detail, row_prev, digest, mac in cur:
        if seq != expected:
            return broken(expected, f"missing: the trail jumps from line {expected - 1} to line {seq}")
        if row_prev != prev:
            return broken(seq, f"does not chain to line {seq - 1} (that line was edited or removed)")
        try:
            canon = _canonical(seq, at, actor, action, obj, detail, row_prev)
        except (ValueError, TypeError):
            return broken(seq, "unreadable detail (edited)")
        if hashlib.sha256(canon).hexdigest() != digest:
            return broken(seq, "edited: its content does not match its hash")
        if mac_key is not None and (mac is None or not hmac.compare_digest(mac, _mac(mac_key, seq, digest))):
            return broken(seq, "rewritten: its MAC does not match (written without the store's key)")
        prev, expected, count = digest, seq + 1, count + 1
    last = expected - 1
    row = db.execute("SELECT value FROM meta WHERE key='audit_head'").fetchone()
    if row is None:
        if last:
            return broken(last, "the trail's head record is missing (meta edited)")
        return AuditReport(0, None, None, mac_key is not None)
    try:
        head = json.loads(row[0])
        head_seq, head_hash = int(head["seq"]), str(head["hash"])
    except (ValueError, KeyError, TypeError):
        return broken(max(last, 1), "the trail's head record is unreadable (meta edited)")
    if head_seq > last:
        return broken(last + 1, f"missing: the trail ends at line {last} but its head is line {head_seq} "
                                "(lines removed at the end)")
    if head_seq < last or head_hash != prev:
        return broken(head_seq if head_seq >= 1 else 1, "does not match the trail's head record")
    if mac_key is not None and not hmac.compare_digest(str(head.get("mac")), _mac(mac_key, head_seq, "head:" + prev)):
        return broken(last, "the head record's MAC does not match (written without the store's key)")
    seqrow = db.execute("SELECT seq FROM sqlite_sequence WHERE name='audit'").fetchone()
    if seqrow is not None and int(seqrow[0]) > last:
        return broken(last + 1, f"missing: lines up to {seqrow[0]} were written, the trail ends at line {last}")
    return AuditReport(count, None, None, mac_key is not None)
