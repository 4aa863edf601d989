"""The device base class: identity, state machine, exclusive operations, events.

Every HAL device class (scanner, camera, card reader) derives from :class:`Device`. Its public
methods are template methods: they check the state, take the device's lock, emit events, log
and enforce timeouts, then call a driver hook ``_do_*``. Drivers implement only the hooks and
never touch state or events themselves.

State machine::

    CLOSED --open()--> IDLE --(operation)--> BUSY --(done / error)--> IDLE
       ^                 |                     |
       +----close()------+                     +--(DeviceGoneError)--> GONE

``GONE`` is final for that object: a replugged device is a new object from the registry.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from enum import Enum, IntFlag
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import DeviceBusyError, DeviceError, DeviceGoneError, DeviceStateError
from .events import EventBus, EventKind

if TYPE_CHECKING:
    from ..config import Settings

log = logging.getLogger(__name__)


class DeviceClass(str, Enum):
    SCANNER = "scanner"
    CAMERA = "camera"
    CARD_READER = "card_reader"


class DeviceState(str, Enum):
    CLOSED = "closed"
    IDLE = "idle"
    BUSY = "busy"
    GONE = "gone"


class Feature(IntFlag):
    """What a driver can do; declared as the class attribute ``features``."""

    NONE = 0
    CAPTURE_FLAT = 1 << 0
    CAPTURE_SLAP = 1 << 1
    CAPTURE_ROLLED = 1 << 2
    PREVIEW = 1 << 3
    FINGER_DETECT = 1 << 4
    CAMERA_SETTINGS = 1 << 5
    CARD_CONTACTLESS = 1 << 6
    CARD_CONTACT = 1 << 7
    CARD_ENCODE = 1 << 8
    SIMULATED = 1 << 9


@dataclass(frozen=True)
class Attachment:
    """A device seen on some bus, before a driver is bound to it.

    ``key`` identifies the physical device (stable while it stays plugged in), for example
    ``usb:1-2:298d:1010``, ``v4l2:/dev/video0`` or ``pcsc:Virtual PCD 00 00``.
    """

    bus: str
    key: str
    name: str = ""
    vid: int | None = None
    pid: int | None = None
    extra: tuple[tuple[str, Any], ...] = ()

    def get(self, name: str, default: Any = None) -> Any:
        return dict(self.extra).get(name, default)


@dataclass
class DeviceInfo:
    device_id: str
    device_class: str
    driver: str
    name: str
    state: str
    simulated: bool
    features: list[str] = field(default_factory=list)
    vendor: str = ""
    model: str = ""
    serial: str = ""
    firmware: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Device:
    """Base of every driver object. Subclasses set the class attributes below.

    Thread-safety: one operation at a time per device (a second concurrent caller gets
    :class:`DeviceBusyError` at once rather than queueing behind a capture that may take
    seconds); state queries are safe from any thread.
    """

    #: short driver id, unique across drivers (``"nb1010"``, ``"simulated-scanner"``)
    id: ClassVar[str] = ""
    #: human-readable driver name
    full_name: ClassVar[str] = ""
    #: USB (vendor, product) pairs this driver handles, if it is a USB driver
    id_table: ClassVar[tuple[tuple[int, int], ...]] = ()
    device_class: ClassVar[DeviceClass]
    features: ClassVar[Feature] = Feature.NONE

    # --- discovery (class level) ---------------------------------------------------------------
    @classmethod
    def probe(cls, settings: Settings) -> list[Attachment]:
        """Attachments this driver can see now. Must be cheap and must not open devices."""
        return []

    @classmethod
    def discover(cls, attachment: Attachment) -> int:
        """How well this driver fits ``attachment``: 0 = not at all; the highest score wins.

        Default: 100 for an exact ``id_table`` match on a USB attachment, else 0.
        """
        if attachment.bus == "usb" and (attachment.vid, attachment.pid) in cls.id_table:
            return 100
        return 0

    # --- instance --------------------------------------------------------------------------------
    def __init__(self, attachment: Attachment, settings: Settings, bus: EventBus | None = None,
                 device_id: str | None = None):
        self.attachment = attachment
        self.settings = settings
        self.bus = bus or EventBus()
        self.device_id = device_id or f"{self.id}:{attachment.key.split(':', 1)[-1]}"
        self._state = DeviceState.CLOSED
        self._op_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._current_op: str | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.device_id} {self._state.value}>"

    @property
    def state(self) -> DeviceState:
        return self._state

    @property
    def simulated(self) -> bool:
        return bool(self.features & Feature.SIMULATED)

    def _set_state(self, new: DeviceState, announce: bool = True, **data: Any) -> None:
        with self._state_lock:
            old, self._state = self._state, new
        if old != new and announce:
            log.debug("%s: %s -> %s", self.device_id, old.value, new.value)
            self.bus.emit(EventKind.STATE_CHANGED, self.device_id, state=new.value, previous=old.value, **data)

    def info(self) -> DeviceInfo:
        details = self._do_info()
        return DeviceInfo(
            device_id=self.device_id,
            device_class=self.device_class.value,
            driver=self.id,
            name=self.attachment.name or self.full_name,
            state=self._state.value,
            simulated=self.simulated,
            features=[f.name.lower() for f in Feature if f and f in self.features and f.name],
            vendor=details.pop("vendor", ""),
            model=details.pop("model", ""),
            serial=details.pop("serial", ""),
            firmware=details.pop("firmware", ""),
            details=details,
        )

    def open(self) -> None:
        """Open the device: CLOSED -> IDLE. Idempotent on an open device."""
        if self._state is DeviceState.GONE:
            raise DeviceGoneError(f"{self.device_id} is gone", self.device_id)
        if self._state is not DeviceState.CLOSED:
            return
        try:
            self._do_open()
        except DeviceGoneError:
            self._set_state(DeviceState.GONE)
            raise
        self._set_state(DeviceState.IDLE)

    def close(self) -> None:
        """Close the device (waits for a running operation). Safe to call twice."""
        with self._op_lock:
            if self._state in (DeviceState.CLOSED, DeviceState.GONE):
                return
            try:
                self._do_close()
            except Exception:
                log.exception("%s: close failed", self.device_id)
            self._set_state(DeviceState.CLOSED)

    def mark_gone(self) -> None:
        """The registry saw the device leave its bus."""
        if self._state is not DeviceState.GONE:
            with contextlib.suppress(Exception):
                self._do_close()
            self._set_state(DeviceState.GONE)

    @contextlib.contextmanager
    def _operation(self, name: str, announce: bool = True) -> Iterator[None]:
        """Run one exclusive operation: IDLE -> BUSY -> IDLE (or GONE).

        ``announce=False`` keeps the busy/idle flip of a very short operation (one APDU) off the
        event stream; GONE is always announced."""
        if self._state is DeviceState.GONE:
            raise DeviceGoneError(f"{self.device_id} is gone", self.device_id)
        if self._state is DeviceState.CLOSED:
            self.open()
        if not self._op_lock.acquire(blocking=False):
            raise DeviceBusyError(f"{self.device_id} is busy with {self._current_op}", self.device_id)
        t0 = time.monotonic()
        self._current_op = name
        try:
            self._set_state(DeviceState.BUSY, announce, operation=name)
            try:
                yield
            except DeviceGoneError:
                self._set_state(DeviceState.GONE)
                raise
            except DeviceError as exc:
                if exc.device_id is None:
                    exc.device_id = self.device_id
                raise
            finally:
                log.debug("%s: %s took %.1f ms", self.device_id, name, (time.monotonic() - t0) * 1e3)
        finally:
            self._current_op = None
            if self._state is DeviceState.BUSY:
                self._set_state(DeviceState.IDLE, announce)
            self._op_lock.release()

    def _require_open(self) -> None:
        if self._state is DeviceState.GONE:
            raise DeviceGoneError(f"{self.device_id} is gone", self.device_id)
        if self._state is DeviceState.CLOSED:
            raise DeviceStateError(f"{self.device_id} is not open", self.device_id)

    # --- hooks -----------------------------------------------------------------------------------
    def _do_open(self) -> None:
        """Claim the device. Raise DeviceGoneError if it is not there any more."""

    def _do_close(self) -> None:
        """Release the device."""

    def _do_info(self) -> dict[str, Any]:
        """Vendor, model, serial, firmware and any driver details (JSON-able)."""
        return {}
