"""One write transaction on a shared SQLite connection, for the store and the perso journal.

``with ImmediateTx(db, lock, "store") as db:`` takes the connection's thread lock, begins
``IMMEDIATE`` (the write lock of the database file, so two processes never interleave their
writes), commits on a clean exit and rolls back on any exception. SQLite's errors come out as
:class:`~biostation.errors.StoreError` naming what failed. ``check`` runs right after the begin
(a raise there rolls back); ``after_commit`` runs once the commit is durable, before the thread
lock is released.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable

from ..errors import StoreError


class ImmediateTx:
    def __init__(self, db: sqlite3.Connection, lock: threading.Lock | threading.RLock, what: str, *,
                 check: Callable[[sqlite3.Connection], None] | None = None,
                 after_commit: Callable[[], None] | None = None):
        self.db, self.lock, self.what = db, lock, what
        self.check, self.after_commit = check, after_commit

    def _rollback(self) -> None:
        if self.db.in_transaction:
            self.db.execute("ROLLBACK")

    def __enter__(self) -> sqlite3.Connection:
        self.lock.acquire()
        try:
            self.db.execute("BEGIN IMMEDIATE")
            if self.check is not None:
                self.check(self.db)
        except sqlite3.DatabaseError as exc:
            self._rollback()
            self.lock.release()
            raise StoreError(f"{self.what}: cannot begin: {exc}") from exc
        except BaseException:
            self._rollback()
            self.lock.release()
            raise
        return self.db

    def __exit__(self, et: type | None, ev: BaseException | None, tb: object) -> None:
        try:
            if et is None:
                try:
                    self.db.execute("COMMIT")
                except sqlite3.DatabaseError as exc:
                    self._rollback()
                    raise StoreError(f"{self.what}: cannot commit: {exc}") from exc
                if self.after_commit is not None:
                    self.after_commit()
            else:
                self._rollback()
        finally:
            self.lock.release()
        if isinstance(ev, sqlite3.DatabaseError):
            raise StoreError(f"{self.what}: {ev}") from ev
