"""Durable local store: the personalization journal (SQLite in WAL mode)."""

from .journal import CardStatus, Journal, JournalLockedError, OrderStatus

__all__ = ["CardStatus", "Journal", "JournalLockedError", "OrderStatus"]
