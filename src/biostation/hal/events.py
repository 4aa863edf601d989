"""Device events: hot-plug, finger on/off, card inserted/removed, capture progress and errors.

Drivers never publish events; the HAL's public methods and the registry do, through an
:class:`EventBus`. Observers are plain callables run in the publishing thread, or queues:
:meth:`EventBus.subscribe_queue` gives a thread-safe queue, and the daemon bridges it to an
asyncio stream (see ``biostation.station``). Thread-safe; publishing never blocks on a slow
observer (a full queue drops its oldest event and counts the drop).
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

log = logging.getLogger(__name__)


class EventKind(str, Enum):
    DEVICE_ADDED = "device.added"
    DEVICE_REMOVED = "device.removed"
    STATE_CHANGED = "device.state"
    FINGER_ON = "finger.on"
    FINGER_OFF = "finger.off"
    CARD_INSERTED = "card.inserted"
    CARD_REMOVED = "card.removed"
    CAPTURE_STARTED = "capture.started"
    CAPTURE_DONE = "capture.done"
    CAPTURE_ERROR = "capture.error"


_seq = itertools.count(1)


@dataclass(frozen=True)
class Event:
    """One device event. ``data`` holds small JSON-able facts only, never biometric data."""

    kind: EventKind
    device_id: str
    data: dict[str, Any] = field(default_factory=dict)
    timestamp: float = field(default_factory=time.time)
    seq: int = field(default_factory=lambda: next(_seq))

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "kind": self.kind.value, "device_id": self.device_id,
                "timestamp": self.timestamp, "data": self.data}


Observer = Callable[[Event], None]


class EventQueue:
    """A bounded queue of events for one consumer; the oldest events go first when full."""

    def __init__(self, bus: EventBus, maxsize: int):
        self._bus = bus
        self._q: queue.Queue[Event] = queue.Queue(maxsize=maxsize)
        self.dropped = 0

    def put(self, event: Event) -> None:
        while True:
            try:
                self._q.put_nowait(event)
                return
            except queue.Full:
                try:
                    self._q.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass

    def get(self, timeout: float | None = None) -> Event | None:
        """The next event, or ``None`` after ``timeout`` seconds."""
        try:
            return self._q.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        self._bus.unsubscribe(self.put)


class EventBus:
    def __init__(self) -> None:
        self._observers: list[Observer] = []
        self._lock = threading.Lock()

    def subscribe(self, observer: Observer) -> Observer:
        with self._lock:
            self._observers.append(observer)
        return observer

    def unsubscribe(self, observer: Observer) -> None:
        with self._lock:
            try:
                self._observers.remove(observer)
            except ValueError:
                pass

    def subscribe_queue(self, maxsize: int = 256) -> EventQueue:
        q = EventQueue(self, maxsize)
        self.subscribe(q.put)
        return q

    def publish(self, event: Event) -> None:
        log.debug("event %s %s", event.kind.value, event.device_id)
        with self._lock:
            observers = list(self._observers)
        for obs in observers:
            try:
                obs(event)
            except Exception:  # one broken observer must not silence the others
                log.exception("event observer failed on %s", event.kind.value)

    def emit(self, event_kind: EventKind, device_id: str, /, **data: Any) -> Event:
        event = Event(event_kind, device_id, data)
        self.publish(event)
        return event
