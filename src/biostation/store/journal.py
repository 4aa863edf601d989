"""The personalization journal: one durable record per order and per card.

An SQLite database in WAL mode with ``synchronous=FULL``: every transition below is one
transaction, committed to disk before the call returns, so a runner killed at any instant
(``kill -9``, power cut) leaves the journal at a transition boundary, never between.

Order lifecycle::

    pending --claim()--> active --complete()--> done
       ^                   |
       +---card_failed()---+ (the card is rejected; the order goes to the next card)
       +---recover()-------+ (runner died while the order was on a card)
    pending --reject_order()--> rejected  (bad order: before any card is touched)
    active  --card_failed(final=True)--> rejected  (too many cards failed)

Card lifecycle: ``writing -> verifying -> done`` or ``-> rejected`` (torn, refused, read-back
failed, or interrupted by a runner restart).

Exactly-once: an order becomes ``done`` only in :meth:`Journal.complete`, in the same transaction
that marks its card ``done`` with a successful read-back, and a partial unique index allows at
most one ``done`` card per order. A card that was on the encoder when the runner died is never
marked done afterwards: :meth:`Journal.recover` rejects it ("interrupted") and the order is
pending again, so the physical card goes to the reject bin and a new card carries the order.

No personal data is kept here: orders are stored by id and by the SHA-256 of their content;
steps and reasons are short texts written by the line, never field values, images or keys.

Thread-safety: one :class:`Journal` may be shared by the encoder threads of a runner (a lock
serialises its connection). Across processes, :meth:`Journal.open_exclusive` takes an advisory
lock so that two runners never drive the same journal; the kernel drops it when the process
dies, so a killed runner never blocks its restart.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from ..errors import JournalBusyError, StoreError
from .sqlite_tx import ImmediateTx

__all__ = ["CardStatus", "Journal", "JournalLockedError", "OrderStatus", "Claim"]

JournalLockedError = JournalBusyError  # the name callers of this module use

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orders (
    order_id   TEXT PRIMARY KEY,
    seq        INTEGER NOT NULL,            -- queue position (file order)
    digest     TEXT NOT NULL,               -- SHA-256 of the order's content
    status     TEXT NOT NULL,               -- pending | active | done | rejected
    reason     TEXT,                        -- why rejected, or the last card failure
    encoder    TEXT,                        -- encoder holding it while active
    card_id    INTEGER,                     -- the done card
    attempts   INTEGER NOT NULL DEFAULT 0,  -- cards that failed for this order
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_queue ON orders(status, seq);
CREATE TABLE IF NOT EXISTS cards (
    card_id    INTEGER PRIMARY KEY AUTOINCREMENT,
    serial     TEXT NOT NULL,               -- chip serial (UID or manufacturer serial)
    encoder    TEXT NOT NULL,
    order_id   TEXT NOT NULL REFERENCES orders(order_id),
    status     TEXT NOT NULL,               -- writing | verifying | done | rejected
    reason     TEXT,
    readback   TEXT,                        -- JSON summary of the read-back (no personal data)
    started_at REAL NOT NULL,
    ended_at   REAL
);
CREATE UNIQUE INDEX IF NOT EXISTS one_done_card_per_order ON cards(order_id) WHERE status = 'done';
CREATE INDEX IF NOT EXISTS cards_order ON cards(order_id);
CREATE TABLE IF NOT EXISTS steps (
    card_id INTEGER NOT NULL REFERENCES cards(card_id),
    n       INTEGER NOT NULL,
    name    TEXT NOT NULL,
    detail  TEXT,
    at      REAL NOT NULL,
    PRIMARY KEY (card_id, n)
);
"""


class OrderStatus(str, Enum):
    PENDING = "pending"
    ACTIVE = "active"
    DONE = "done"
    REJECTED = "rejected"


class CardStatus(str, Enum):
    WRITING = "writing"
    VERIFYING = "verifying"
    DONE = "done"
    REJECTED = "rejected"


@dataclass(frozen=True)
class Claim:
    """An order handed to one encoder by :meth:`Journal.claim`."""

    order_id: str
    digest: str
    attempts: int


class Journal:
    """The journal at ``path`` (created when missing).

    ``max_attempts``: after that many failed cards an order is rejected instead of going back
    to the queue (a runner restart is not a card failure and does not count).
    """

    def __init__(self, path: str | os.PathLike[str], *, max_attempts: int = 5, busy_timeout_s: float = 30.0):
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self.path = Path(path)
        self.max_attempts = max_attempts
        #: called after every committed transaction, the journal's lock still held (so nothing else
        #: is committed in between): fault drills hook a crash at a chosen journal step here
        self.on_commit: Callable[[], None] | None = None
        self._lock = threading.RLock()
        self._lock_fd: int | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(str(self.path), timeout=busy_timeout_s, isolation_level=None,
                                       check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(_SCHEMA)
            row = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if row is None:
                self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            elif int(row[0]) != SCHEMA_VERSION:
                raise StoreError(f"journal {self.path} has schema {row[0]}, this version reads {SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open journal {self.path}: {exc}") from exc

    # --- process-level exclusivity -------------------------------------------------------------
    @classmethod
    def open_exclusive(cls, path: str | os.PathLike[str], **kw: Any) -> Journal:
        """Open and take the journal's advisory lock; JournalBusyError if a live runner holds it."""
        lock_path = Path(str(path) + ".lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise JournalBusyError(f"journal {path} is in use by another runner") from None
        try:
            j = cls(path, **kw)
        except BaseException:
            os.close(fd)
            raise
        j._lock_fd = fd
        return j

    def close(self) -> None:
        with self._lock:
            self._db.close()
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # releases the flock
                self._lock_fd = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- internals -----------------------------------------------------------------------------
    def _after_commit(self) -> None:
        if self.on_commit is not None:
            self.on_commit()

    def _tx(self) -> ImmediateTx:
        return ImmediateTx(self._db, self._lock, "journal", after_commit=self._after_commit)

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row | tuple[Any, ...]]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.DatabaseError as exc:
                raise StoreError(f"journal: {exc}") from exc

    # --- orders --------------------------------------------------------------------------------
    def add_orders(self, orders: Iterable[tuple[str, str]]) -> tuple[int, list[str]]:
        """Queue ``(order_id, digest)`` pairs in the given order; already-known ids are skipped.

        Returns ``(added, conflicts)``: ``conflicts`` lists ids already in the journal with a
        *different* digest (the same order id reused for other content): those are not queued
        again, the caller reports them.
        """
        now = time.time()
        added, conflicts = 0, []
        with self._tx() as db:
            seq = db.execute("SELECT COALESCE(MAX(seq), 0) FROM orders").fetchone()[0]
            for order_id, digest in orders:
                row = db.execute("SELECT digest FROM orders WHERE order_id=?", (order_id,)).fetchone()
                if row is not None:
                    if row[0] != digest:
                        conflicts.append(order_id)
                    continue
                seq += 1
                db.execute("INSERT INTO orders(order_id, seq, digest, status, created_at, updated_at) "
                           "VALUES (?,?,?,?,?,?)", (order_id, seq, digest, OrderStatus.PENDING.value, now, now))
                added += 1
        return added, conflicts

    def reject_order(self, order_id: str, reason: str) -> None:
        """Reject a pending order before any card is touched (validation failed)."""
        with self._tx() as db:
            cur = db.execute("UPDATE orders SET status=?, reason=?, updated_at=? WHERE order_id=? AND status=?",
                             (OrderStatus.REJECTED.value, reason, time.time(), order_id, OrderStatus.PENDING.value))
            if cur.rowcount != 1:
                raise StoreError(f"order {order_id!r} is not pending: cannot reject it")

    def claim(self, encoder: str, among: Iterable[str] | None = None) -> Claim | None:
        """Give the oldest pending order to ``encoder`` (pending -> active); None when none is left.

        ``among`` restricts the choice to these order ids (the orders this run knows).
        """
        allowed = None if among is None else set(among)
        with self._tx() as db:
            rows = db.execute("SELECT order_id, digest, attempts FROM orders WHERE status=? ORDER BY seq",
                              (OrderStatus.PENDING.value,))
            pick = None
            for oid, digest, attempts in rows:
                if allowed is None or oid in allowed:
                    pick = Claim(oid, digest, attempts)
                    break
            if pick is None:
                return None
            db.execute("UPDATE orders SET status=?, encoder=?, updated_at=? WHERE order_id=?",
                       (OrderStatus.ACTIVE.value, encoder, time.time(), pick.order_id))
            return pick

    def release(self, order_id: str) -> None:
        """Give an active order back to the queue without blaming a card (no card was touched)."""
        with self._tx() as db:
            db.execute("UPDATE orders SET status=?, encoder=NULL, updated_at=? WHERE order_id=? AND status=?",
                       (OrderStatus.PENDING.value, time.time(), order_id, OrderStatus.ACTIVE.value))

    # --- cards ---------------------------------------------------------------------------------
    def start_card(self, order_id: str, serial: str, encoder: str) -> int:
        """Record that ``serial`` on ``encoder`` now carries ``order_id``; returns the card id."""
        with self._tx() as db:
            st = db.execute("SELECT status, encoder FROM orders WHERE order_id=?", (order_id,)).fetchone()
            if st is None or st[0] != OrderStatus.ACTIVE.value or st[1] != encoder:
                raise StoreError(f"order {order_id!r} is not active on {encoder}")
            cur = db.execute("INSERT INTO cards(serial, encoder, order_id, status, started_at) VALUES (?,?,?,?,?)",
                             (serial, encoder, order_id, CardStatus.WRITING.value, time.time()))
            return int(cur.lastrowid)  # type: ignore[arg-type]

    def step(self, card_id: int, name: str, detail: str | None = None) -> None:
        """Append one step (``"write DG2"``, ``"lock"``, ...) to a card's record."""
        with self._tx() as db:
            n = db.execute("SELECT COALESCE(MAX(n), 0) + 1 FROM steps WHERE card_id=?", (card_id,)).fetchone()[0]
            db.execute("INSERT INTO steps VALUES (?,?,?,?,?)", (card_id, n, name, detail, time.time()))

    def verifying(self, card_id: int) -> None:
        """The card is written and locked; its read-back starts."""
        with self._tx() as db:
            cur = db.execute("UPDATE cards SET status=? WHERE card_id=? AND status=?",
                             (CardStatus.VERIFYING.value, card_id, CardStatus.WRITING.value))
            if cur.rowcount != 1:
                raise StoreError(f"card {card_id} is not being written")

    def complete(self, card_id: int, readback: dict[str, Any]) -> None:
        """The card read back correctly: card done and order done, in one transaction.

        ``readback`` must say ``{"ok": True, ...}``; StoreError otherwise, or when the card is
        not verifying, or its order not active (so a card can never be done twice).
        """
        if readback.get("ok") is not True:
            raise StoreError(f"card {card_id}: a card whose read-back failed cannot be done")
        now = time.time()
        with self._tx() as db:
            row = db.execute("SELECT order_id, status FROM cards WHERE card_id=?", (card_id,)).fetchone()
            if row is None or row[1] != CardStatus.VERIFYING.value:
                raise StoreError(f"card {card_id} is not verifying")
            order_id = row[0]
            cur = db.execute("UPDATE orders SET status=?, card_id=?, encoder=NULL, updated_at=? "
                             "WHERE order_id=? AND status=?",
                             (OrderStatus.DONE.value, card_id, now, order_id, OrderStatus.ACTIVE.value))
            if cur.rowcount != 1:
                raise StoreError(f"order {order_id!r} of card {card_id} is not active")
            db.execute("UPDATE cards SET status=?, readback=?, ended_at=? WHERE card_id=?",
                       (CardStatus.DONE.value, json.dumps(readback, sort_keys=True), now, card_id))

    def card_failed(self, card_id: int, reason: str, readback: dict[str, Any] | None = None) -> OrderStatus:
        """Reject the card; its order goes back to the queue (or is rejected after
        ``max_attempts`` failed cards). Returns the order's new status."""
        now = time.time()
        with self._tx() as db:
            row = db.execute("SELECT order_id, status FROM cards WHERE card_id=?", (card_id,)).fetchone()
            if row is None or row[1] not in (CardStatus.WRITING.value, CardStatus.VERIFYING.value):
                raise StoreError(f"card {card_id} is not in progress")
            order_id = row[0]
            db.execute("UPDATE cards SET status=?, reason=?, readback=?, ended_at=? WHERE card_id=?",
                       (CardStatus.REJECTED.value, reason, None if readback is None else json.dumps(readback, sort_keys=True),
                        now, card_id))
            attempts = db.execute("SELECT attempts FROM orders WHERE order_id=?", (order_id,)).fetchone()[0] + 1
            status = OrderStatus.REJECTED if attempts >= self.max_attempts else OrderStatus.PENDING
            why = (f"{attempts} cards failed; last: {reason}" if status is OrderStatus.REJECTED else reason)
            db.execute("UPDATE orders SET status=?, attempts=?, reason=?, encoder=NULL, updated_at=? "
                       "WHERE order_id=? AND status=?",
                       (status.value, attempts, why, now, order_id, OrderStatus.ACTIVE.value))
            return status

    # --- restart -------------------------------------------------------------------------------
    def recover(self) -> dict[str, int]:
        """After a crash: cards left in progress are rejected ("interrupted"), their orders
        pending again. Call once at runner start, under :meth:`open_exclusive`."""
        now = time.time()
        with self._tx() as db:
            cards = db.execute("UPDATE cards SET status=?, reason=?, ended_at=? WHERE status IN (?, ?)",
                               (CardStatus.REJECTED.value, "interrupted: the runner stopped while this card was "
                                "on the encoder", now, CardStatus.WRITING.value, CardStatus.VERIFYING.value)).rowcount
            orders = db.execute("UPDATE orders SET status=?, encoder=NULL, updated_at=? WHERE status=?",
                                (OrderStatus.PENDING.value, now, OrderStatus.ACTIVE.value)).rowcount
        return {"cards_interrupted": cards, "orders_requeued": orders}

    # --- reading -------------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        """Orders by status (every status present, zero when none)."""
        out = {s.value: 0 for s in OrderStatus}
        for status, n in self._query("SELECT status, COUNT(*) FROM orders GROUP BY status"):
            out[status] = n
        return out

    def card_counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in CardStatus}
        for status, n in self._query("SELECT status, COUNT(*) FROM cards GROUP BY status"):
            out[status] = n
        return out

    def order(self, order_id: str) -> dict[str, Any] | None:
        rows = self._query("SELECT order_id, seq, digest, status, reason, encoder, card_id, attempts "
                           "FROM orders WHERE order_id=?", (order_id,))
        if not rows:
            return None
        keys = ("order_id", "seq", "digest", "status", "reason", "encoder", "card_id", "attempts")
        return dict(zip(keys, rows[0]))

    def orders(self, status: OrderStatus | None = None) -> list[dict[str, Any]]:
        keys = ("order_id", "seq", "digest", "status", "reason", "encoder", "card_id", "attempts")
        if status is None:
            rows = self._query(f"SELECT {', '.join(keys)} FROM orders ORDER BY seq")
        else:
            rows = self._query(f"SELECT {', '.join(keys)} FROM orders WHERE status=? ORDER BY seq", (status.value,))
        return [dict(zip(keys, r)) for r in rows]

    def cards(self, order_id: str | None = None) -> list[dict[str, Any]]:
        keys = ("card_id", "serial", "encoder", "order_id", "status", "reason", "readback")
        sql = f"SELECT {', '.join(keys)} FROM cards"
        rows = self._query(sql + (" WHERE order_id=? ORDER BY card_id" if order_id else " ORDER BY card_id"),
                           (order_id,) if order_id else ())
        out = []
        for r in rows:
            d = dict(zip(keys, r))
            d["readback"] = json.loads(d["readback"]) if d["readback"] else None
            out.append(d)
        return out

    def steps(self, card_id: int) -> list[tuple[str, str | None]]:
        return [(n, d) for n, d in self._query("SELECT name, detail FROM steps WHERE card_id=? ORDER BY n",
                                                (card_id,))]

    def check(self) -> list[str]:
        """Audit the exactly-once guarantees; returns the violations found (empty: all hold).

        * every done order has exactly one done card, and it is the card the order names;
        * every done card has a read-back that says ok, and its order is done;
        * no order is active and no card in progress (call when no runner is running).
        """
        problems: list[str] = []
        for oid, n in self._query("SELECT order_id, COUNT(*) FROM cards WHERE status='done' GROUP BY order_id "
                                  "HAVING COUNT(*) > 1"):
            problems.append(f"order {oid}: {n} done cards")
        for oid, card_id in self._query("SELECT order_id, card_id FROM orders WHERE status='done'"):
            rows = self._query("SELECT status FROM cards WHERE card_id=? AND order_id=?", (card_id, oid))
            if not rows or rows[0][0] != "done":
                problems.append(f"order {oid}: done, but its card {card_id} is not done")
        for card_id, oid, rb in self._query("SELECT card_id, order_id, readback FROM cards WHERE status='done'"):
            if not rb or json.loads(rb).get("ok") is not True:
                problems.append(f"card {card_id}: done without a successful read-back")
            st = self._query("SELECT status, card_id FROM orders WHERE order_id=?", (oid,))
            if not st or st[0][0] != "done" or st[0][1] != card_id:
                problems.append(f"card {card_id}: done, but order {oid} does not name it")
        for (oid,) in self._query("SELECT order_id FROM orders WHERE status='active'"):
            problems.append(f"order {oid}: still active")
        for (cid,) in self._query("SELECT card_id FROM cards WHERE status IN ('writing', 'verifying')"):
            problems.append(f"card {cid}: still in progress")
        return problems

    def iter_done(self) -> Iterator[tuple[str, int, str]]:
        """``(order_id, card_id, serial)`` of every done order."""
        yield from self._query("SELECT o.order_id, c.card_id, c.serial FROM orders o JOIN cards c "  # type: ignore[misc]
                               "ON c.card_id = o.card_id WHERE o.status='done' ORDER BY o.seq")
