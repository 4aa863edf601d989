"""Driver registry: finds drivers, sees attached devices, binds the best driver to each.

Drivers are classes derived from the HAL device classes, published under the entry-point group
``biostation.drivers`` (see ``pyproject.toml``); a third-party package adds one the same way,
without touching biostation. For each attachment that drivers report through
:meth:`Device.probe`, every driver of that class is asked :meth:`Device.discover`; the highest
non-zero score wins (a specific driver beats a generic one).

Modes (``Settings.devices``): ``hardware`` binds only real drivers; ``simulated`` only
simulated ones; ``auto`` binds real ones and, for each device class where none is attached,
the simulated one, so a desk without hardware still runs.

:meth:`DriverRegistry.scan` is hot-plug: it emits ``device.added`` / ``device.removed``, and a
removed device goes to state GONE (an operation running on it fails with DeviceGoneError).
:meth:`start_monitor` rescans and polls card presence every ``Settings.device_poll_s``.
Thread-safe.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from importlib.metadata import entry_points

from ..config import DeviceMode, Settings
from ..errors import DeviceNotFoundError
from .base import Attachment, Device, DeviceClass, DeviceState, Feature
from .card_reader import CardReader
from .events import EventBus, EventKind

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "biostation.drivers"


def load_driver_classes() -> list[type[Device]]:
    """All driver classes published under ``biostation.drivers``; broken ones are skipped loudly."""
    found: list[type[Device]] = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = ep.load()
        except Exception as exc:  # a driver whose optional dependency is missing
            log.warning("driver %s not loaded: %s", ep.name, exc)
            continue
        if not (isinstance(cls, type) and issubclass(cls, Device)):
            log.warning("entry point %s is not a Device subclass; ignored", ep.name)
            continue
        found.append(cls)
    return sorted(found, key=lambda c: c.id)


class DriverRegistry:
    def __init__(self, settings: Settings, bus: EventBus | None = None,
                 drivers: Iterable[type[Device]] | None = None):
        self.settings = settings
        self.bus = bus or EventBus()
        self.drivers: list[type[Device]] = list(drivers) if drivers is not None else load_driver_classes()
        self._devices: dict[str, Device] = {}  # by attachment key
        self._pinned: dict[str, Device] = {}  # injected with add(); never removed by scans
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- queries ---------------------------------------------------------------------------------
    def devices(self, device_class: DeviceClass | None = None) -> list[Device]:
        with self._lock:
            devs = list(self._pinned.values()) + list(self._devices.values())
        return [d for d in devs if device_class is None or d.device_class == device_class]

    def get(self, device_id: str) -> Device:
        """The device with this id; DeviceNotFoundError (with the known ids) if none."""
        for d in self.devices():
            if d.device_id == device_id:
                return d
        known = ", ".join(d.device_id for d in self.devices()) or "none"
        raise DeviceNotFoundError(f"no device {device_id!r} (attached: {known})", device_id)

    # --- binding ---------------------------------------------------------------------------------
    def _allowed(self, cls: type[Device]) -> bool:
        sim = bool(cls.features & Feature.SIMULATED)
        mode = DeviceMode(self.settings.devices)
        return (mode is DeviceMode.SIMULATED and sim) or (mode is DeviceMode.HARDWARE and not sim) \
            or mode is DeviceMode.AUTO

    def _bind(self) -> dict[str, tuple[type[Device], Attachment]]:
        """Best driver for every attachment now visible."""
        drivers = [c for c in self.drivers if self._allowed(c)]
        attachments: dict[str, Attachment] = {}
        for cls in drivers:
            try:
                for att in cls.probe(self.settings):
                    attachments.setdefault(att.key, att)
            except Exception as exc:  # no pcscd, no USB permission...: that bus shows nothing
                log.debug("probe of %s failed: %s", cls.id, exc)
        bound: dict[str, tuple[type[Device], Attachment]] = {}
        for key, att in attachments.items():
            scored = [(cls.discover(att), cls.id, cls) for cls in drivers]
            scored = [s for s in scored if s[0] > 0]
            if scored:
                _, _, best = max(scored, key=lambda s: (s[0], s[1]))
                bound[key] = (best, att)
        if DeviceMode(self.settings.devices) is DeviceMode.AUTO:
            real_classes = {cls.device_class for cls, _ in bound.values() if not cls.features & Feature.SIMULATED}
            bound = {k: (cls, att) for k, (cls, att) in bound.items()
                     if not (cls.features & Feature.SIMULATED and cls.device_class in real_classes)}
        return bound

    def scan(self) -> tuple[list[Device], list[Device]]:
        """Rescan the buses; returns (added, removed) and emits the matching events."""
        bound = self._bind()
        added: list[Device] = []
        removed: list[Device] = []
        with self._lock:
            for key in list(self._devices):
                dev = self._devices[key]
                if key not in bound or type(dev) is not bound[key][0] or dev.state is DeviceState.GONE:
                    removed.append(self._devices.pop(key))
            for key, (cls, att) in bound.items():
                if key not in self._devices:
                    try:
                        dev = cls(att, self.settings, self.bus)
                    except Exception as exc:
                        log.warning("driver %s failed on %s: %s", cls.id, att.key, exc)
                        continue
                    self._devices[key] = dev
                    added.append(dev)
        for dev in removed:
            dev.mark_gone()
            self.bus.emit(EventKind.DEVICE_REMOVED, dev.device_id, device_class=dev.device_class.value)
        for dev in added:
            self.bus.emit(EventKind.DEVICE_ADDED, dev.device_id, device_class=dev.device_class.value,
                          driver=dev.id, simulated=dev.simulated)
        return added, removed

    def add(self, device: Device) -> Device:
        """Inject a device object (tests, embedding); it shares this registry's event bus."""
        device.bus = self.bus
        with self._lock:
            self._pinned[device.device_id] = device
        self.bus.emit(EventKind.DEVICE_ADDED, device.device_id, device_class=device.device_class.value,
                      driver=device.id, simulated=device.simulated)
        return device

    def remove(self, device_id: str) -> None:
        """Forget a device (as if unplugged): it goes GONE and ``device.removed`` is emitted."""
        dev = self.get(device_id)
        with self._lock:
            self._pinned.pop(device_id, None)
            for k, d in list(self._devices.items()):
                if d is dev:
                    del self._devices[k]
        dev.mark_gone()
        self.bus.emit(EventKind.DEVICE_REMOVED, device_id, device_class=dev.device_class.value)

    # --- monitor ---------------------------------------------------------------------------------
    def poll_once(self) -> None:
        self.scan()
        for dev in self.devices(DeviceClass.CARD_READER):
            assert isinstance(dev, CardReader)
            try:
                if dev.state is DeviceState.CLOSED:  # watch card presence on every attached reader
                    dev.open()
                dev.poll()
            except Exception as exc:
                log.debug("presence poll of %s failed: %s", dev.device_id, exc)

    def start_monitor(self) -> None:
        """Poll for hot-plug and card presence in a daemon thread until :meth:`close`."""
        if self._thread is not None:
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(self.settings.device_poll_s):
                try:
                    self.poll_once()
                except Exception:
                    log.exception("device monitor pass failed")

        self._thread = threading.Thread(target=loop, name="biostation-device-monitor", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        for dev in self.devices():
            dev.close()
