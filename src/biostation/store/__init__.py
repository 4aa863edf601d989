"""Durable local store: the personalization journal and the enrollment store (SQLite in WAL mode),
the audit trail, the outbox to the central endpoint and mobile teams' batch files.

The heavy parts (``outbox`` needs httpx, ``batch`` and ``keys`` need cryptography) are imported from
their modules: ``from biostation.store.outbox import Outbox``.
"""

from .enrollment import Decision, EnrollmentStore, OutboxState, SessionInfo, SessionState
from .journal import CardStatus, Journal, JournalLockedError, OrderStatus
from .keys import DataKey, load_data_key

__all__ = ["CardStatus", "Journal", "JournalLockedError", "OrderStatus", "EnrollmentStore", "SessionState",
           "SessionInfo", "Decision", "OutboxState", "DataKey", "load_data_key"]
