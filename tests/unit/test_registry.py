"""Driver discovery through entry points, best-driver choice, modes and hot-plug."""

from __future__ import annotations

import time
from importlib.metadata import EntryPoint

import pytest

from biostation.config import DeviceMode
from biostation.errors import DeviceNotFoundError
from biostation.hal import (
    Attachment,
    DeviceClass,
    DeviceState,
    DriverRegistry,
    EventKind,
    FingerprintScanner,
)
from biostation.hal import registry as registry_mod
from biostation_drivers.simulated.camera import SimulatedCamera
from biostation_drivers.simulated.card_reader import SimulatedCardReader
from biostation_drivers.simulated.scanner import SimulatedScanner

ATTACHED: list[Attachment] = []


class GenericUsbScanner(FingerprintScanner):
    """A class-compliant driver that takes any USB scanner, poorly."""

    id = "generic-usb"
    full_name = "Generic USB scanner"

    @classmethod
    def probe(cls, settings):
        return list(ATTACHED)

    @classmethod
    def discover(cls, att):
        return 10 if att.bus == "usb" else 0


class VendorScanner(GenericUsbScanner):
    id = "vendor-x"
    full_name = "Vendor X scanner"
    id_table = ((0x298D, 0x1010),)

    @classmethod
    def discover(cls, att):  # the id_table match of the base class
        return FingerprintScanner.discover.__func__(cls, att)


USB = Attachment("usb", "usb:1-2:298d:1010", "NB-1010-U", vid=0x298D, pid=0x1010)


@pytest.fixture(autouse=True)
def _clean():
    ATTACHED.clear()
    yield
    ATTACHED.clear()
    SimulatedScanner.replug()


def test_entry_points_publish_the_simulated_drivers():
    ids = {c.id for c in registry_mod.load_driver_classes()}
    assert {"simulated-scanner", "simulated-camera", "simulated-card-reader", "opencv-v4l2"} <= ids


def test_a_broken_third_party_entry_point_is_skipped(monkeypatch, caplog):
    eps = [EntryPoint("good", "biostation_drivers.simulated.scanner:SimulatedScanner", "biostation.drivers"),
           EntryPoint("broken", "no_such_module_xyz:Driver", "biostation.drivers"),
           EntryPoint("notadriver", "os.path:join", "biostation.drivers")]
    monkeypatch.setattr(registry_mod, "entry_points", lambda group: eps)
    assert registry_mod.load_driver_classes() == [SimulatedScanner]
    assert "broken" in caplog.text and "notadriver" in caplog.text


def test_simulated_mode_binds_one_device_per_class(settings):
    reg = DriverRegistry(settings)
    added, removed = reg.scan()
    classes = sorted(d.device_class.value for d in reg.devices())
    assert classes == ["camera", "card_reader", "scanner"] and not removed
    assert all(d.simulated for d in reg.devices())
    assert reg.scan() == ([], [])  # stable


def test_highest_score_wins_and_auto_hides_simulated_scanner(settings):
    ATTACHED.append(USB)
    drivers = [GenericUsbScanner, VendorScanner, SimulatedScanner, SimulatedCamera, SimulatedCardReader]
    reg = DriverRegistry(settings.model_copy(update={"devices": DeviceMode.AUTO}), drivers=drivers)
    reg.scan()
    scanners = reg.devices(DeviceClass.SCANNER)
    assert [type(d) for d in scanners] == [VendorScanner]
    # the other classes have no hardware: their simulated devices stand in
    assert {type(d) for d in reg.devices()} == {VendorScanner, SimulatedCamera, SimulatedCardReader}


def test_hardware_mode_has_no_simulated_devices(settings):
    drivers = [GenericUsbScanner, SimulatedScanner, SimulatedCamera]
    reg = DriverRegistry(settings.model_copy(update={"devices": DeviceMode.HARDWARE}), drivers=drivers)
    reg.scan()
    assert reg.devices() == []
    ATTACHED.append(USB)
    added, _ = reg.scan()
    assert [type(d) for d in added] == [GenericUsbScanner]


def test_hot_plug_events_and_gone_state(settings):
    drivers = [VendorScanner]
    reg = DriverRegistry(settings.model_copy(update={"devices": DeviceMode.HARDWARE}), drivers=drivers)
    q = reg.bus.subscribe_queue()
    ATTACHED.append(USB)
    (dev,), _ = reg.scan()
    assert q.get(0).kind is EventKind.DEVICE_ADDED
    dev.open()
    ATTACHED.clear()
    _, (gone,) = reg.scan()
    assert gone is dev and dev.state is DeviceState.GONE
    kinds = []
    while (e := q.get(0)) is not None:
        kinds.append(e.kind)
    assert EventKind.DEVICE_REMOVED in kinds
    with pytest.raises(DeviceNotFoundError, match="attached: none"):
        reg.get(dev.device_id)
    ATTACHED.append(USB)  # replugged: a fresh object
    (again,), _ = reg.scan()
    assert again is not dev and again.state is DeviceState.CLOSED


def test_unplugged_simulated_scanner_leaves_and_monitor_notices(settings):
    reg = DriverRegistry(settings)
    reg.scan()
    scanner = reg.devices(DeviceClass.SCANNER)[0]
    q = reg.bus.subscribe_queue()
    reg.start_monitor()
    try:
        scanner.unplug()
        deadline = time.monotonic() + 60  # a hang guard, not a speed verdict
        while True:
            e = q.get(0.1)
            if e is not None and e.kind is EventKind.DEVICE_REMOVED:
                break
            if time.monotonic() > deadline:
                pytest.fail("the monitor did not report the unplugged scanner")
        assert reg.devices(DeviceClass.SCANNER) == []
    finally:
        reg.close()


def test_injected_device_is_listed_and_removable(settings):
    reg = DriverRegistry(settings, drivers=[])
    dev = reg.add(SimulatedScanner.create())
    assert reg.get(dev.device_id) is dev and dev.bus is reg.bus
    reg.remove(dev.device_id)
    assert dev.state is DeviceState.GONE and reg.devices() == []
