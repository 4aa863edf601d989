"""The scanner state machine and its events, against the simulated scanner."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from biostation.config import Settings
from biostation.errors import (
    DeviceBusyError,
    DeviceGoneError,
    DeviceProtocolError,
    DeviceStateError,
    DeviceTimeoutError,
)
from biostation.hal import DeviceState, EventBus, EventKind, FingerPosition, ImpressionKind
from biostation_drivers.simulated.scanner import SimulatedScanner, folder_images


def _recorder(dev):
    events = []
    dev.bus.subscribe(events.append)
    return events


def _kinds(events, *only):
    return [e.kind for e in events if not only or e.kind in only]


CAPTURE_KINDS = (EventKind.CAPTURE_STARTED, EventKind.CAPTURE_DONE, EventKind.CAPTURE_ERROR)


def test_capture_returns_the_served_image_and_events_in_order():
    img = np.full((300, 280), 128, np.uint8)
    dev = SimulatedScanner.create(images=[img], dpi=569)
    events = _recorder(dev)
    imp = dev.capture(ImpressionKind.FLAT, FingerPosition.RIGHT_INDEX)
    assert imp.image is img and imp.dpi == 569 and imp.position is FingerPosition.RIGHT_INDEX
    assert _kinds(events, *CAPTURE_KINDS) == [EventKind.CAPTURE_STARTED, EventKind.CAPTURE_DONE]
    states = [e.data["state"] for e in events if e.kind is EventKind.STATE_CHANGED]
    assert states == ["idle", "busy", "idle"]
    assert dev.state is DeviceState.IDLE


def test_images_cycle_through_the_folder_with_fvc_resolutions(shared, settings):
    files = folder_images(shared / "data" / "fvc2002")
    assert len(files) == 320
    assert {dpi for p, dpi in files if "DB2_B" in p.parts} == {569}
    s = settings.model_copy(update={"sim_scanner_dir": shared / "data" / "fvc2002" / "DB2_B"})
    dev = SimulatedScanner.create(settings=s)
    dev._source = None  # serve from the folder, as the registry-built scanner does
    a, b = dev.capture(), dev.capture()
    assert a.image.shape == (560, 296) and a.dpi == 569
    assert not np.array_equal(a.image, b.image)


def test_synthetic_images_when_no_folder(settings):
    s = settings.model_copy(update={"sim_scanner_dir": settings.data_dir / "nothing-here"})
    dev = SimulatedScanner(SimulatedScanner.probe(s)[0], s)
    imp = dev.capture()
    assert imp.image.shape == (300, 300) and imp.image.std() > 30  # ridges, not a flat image


def test_second_concurrent_capture_is_refused_busy():
    dev = SimulatedScanner.create(images=[np.zeros((64, 64), np.uint8)],
                                  settings=Settings(sim_time_scale=0.5))
    started = threading.Event()
    dev.bus.subscribe(lambda e: e.kind is EventKind.CAPTURE_STARTED and started.set())
    t = threading.Thread(target=dev.capture)
    t.start()
    assert started.wait(5)
    with pytest.raises(DeviceBusyError):
        dev.capture()
    t.join()
    assert dev.state is DeviceState.IDLE


def test_stalled_device_times_out_and_returns_to_idle():
    dev = SimulatedScanner.create(images=[np.zeros((64, 64), np.uint8)], stall=True)
    events = _recorder(dev)
    t0 = time.monotonic()
    with pytest.raises(DeviceTimeoutError, match="timed out"):
        dev.capture(timeout_s=0.3)
    assert 0.25 < time.monotonic() - t0 < 60  # waited its timeout, and was not hung
    assert dev.state is DeviceState.IDLE
    assert _kinds(events, *CAPTURE_KINDS) == [EventKind.CAPTURE_STARTED, EventKind.CAPTURE_ERROR]
    dev.stall = False
    assert dev.capture().image.shape == (64, 64)  # usable again


def test_wrong_size_image_from_driver_is_a_protocol_error():
    dev = SimulatedScanner.create(images=[np.zeros((64, 64), np.uint8)], wrong_size=True)
    with pytest.raises(DeviceProtocolError, match="at most"):
        dev.capture()
    assert dev.state is DeviceState.IDLE


@pytest.mark.parametrize("bad", [np.zeros((64, 64), np.float32), np.zeros((64, 64, 3), np.uint8),
                                 np.zeros((4, 4), np.uint8), b"not an image"])
def test_driver_returning_garbage_is_a_protocol_error(bad):
    dev = SimulatedScanner.create(source=lambda kind, pos: (bad, 500))
    with pytest.raises(DeviceProtocolError):
        dev.capture()
    assert dev.state is DeviceState.IDLE


def test_driver_exception_becomes_protocol_error_with_error_event():
    def broken(kind, pos):
        raise KeyError("firmware")

    dev = SimulatedScanner.create(source=broken)
    events = _recorder(dev)
    with pytest.raises(DeviceProtocolError, match="driver failure"):
        dev.capture()
    err = [e for e in events if e.kind is EventKind.CAPTURE_ERROR][0]
    assert err.data["error"] == "DeviceProtocolError"
    assert dev.state is DeviceState.IDLE


def test_unplug_during_capture_is_an_error_event_and_gone_state():
    dev = SimulatedScanner.create(images=[np.zeros((64, 64), np.uint8)], settings=Settings(sim_time_scale=1.0))
    events = _recorder(dev)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            dev.capture(timeout_s=10)
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=run)
    t.start()
    time.sleep(0.2)
    dev.unplug()
    t.join(5)
    SimulatedScanner.replug("sim:scanner-test")
    assert not t.is_alive() and isinstance(errors[0], DeviceGoneError)
    assert dev.state is DeviceState.GONE
    err = [e for e in events if e.kind is EventKind.CAPTURE_ERROR][0]
    assert err.data["error"] == "DeviceGoneError"
    with pytest.raises(DeviceGoneError):
        dev.capture()


def test_unsupported_impression_kind_is_refused():
    class FlatOnly(SimulatedScanner):
        features = SimulatedScanner.features & ~SimulatedScanner.features.CAPTURE_SLAP

    dev = FlatOnly.create(images=[np.zeros((64, 64), np.uint8)])
    with pytest.raises(DeviceStateError, match="slap"):
        dev.capture(ImpressionKind.SLAP)


def test_preview_frames_and_finger_events():
    img = np.full((64, 64), 40, np.uint8)
    dev = SimulatedScanner.create(images=[img], settings=Settings(sim_time_scale=0.1))
    events = _recorder(dev)
    # the platen is empty, then a finger lands and is held there until the capture
    frames = []
    for f in dev.preview(timeout_s=30):
        frames.append(f)
        if f.finger_present and len(frames) >= 2:
            break
    assert all(f.image.shape == (64, 64) for f in frames) and not frames[0].finger_present
    assert EventKind.FINGER_ON in _kinds(events) and EventKind.FINGER_OFF not in _kinds(events)
    # a finger frame is darker than an empty platen
    assert frames[-1].image.mean() < 200 < frames[0].image.mean()
    dev.capture(timeout_s=10)
    # after the capture the finger lifts: the preview sees the platen empty again
    for f in dev.preview(timeout_s=30):
        if not f.finger_present:
            break
    assert EventKind.FINGER_OFF in _kinds(events)
    assert dev.state is DeviceState.IDLE



def test_a_preview_frame_and_its_finger_flag_come_from_one_moment(monkeypatch):
    """A finger that lands between a frame and a separate presence check (a loaded machine made it
    happen) must not flag a frame of the empty platen. A clock that moves 20 ms at every reading
    puts the landing exactly there, every time."""
    import types

    import biostation_drivers.simulated.scanner as sim

    clock = [1000.0]

    def monotonic() -> float:
        clock[0] += 0.02
        return clock[0]

    monkeypatch.setattr(sim, "time", types.SimpleNamespace(monotonic=monotonic, sleep=time.sleep))
    img = np.full((64, 64), 40, np.uint8)
    dev = SimulatedScanner.create(images=[img], settings=Settings(sim_time_scale=0.1))  # lands 50 ms later
    frames = list(dev.preview(max_frames=8))
    assert not frames[0].finger_present and frames[-1].finger_present
    for f in frames:
        assert f.finger_present == (f.image.mean() < 200), f.index

def test_cancel_stops_a_capture():
    dev = SimulatedScanner.create(images=[np.zeros((64, 64), np.uint8)], stall=True)
    threading.Timer(0.2, dev.cancel).start()
    with pytest.raises(DeviceTimeoutError, match="cancelled"):
        dev.capture(timeout_s=10)
    assert dev.state is DeviceState.IDLE


def test_event_bus_survives_a_broken_observer_and_bounded_queue_drops_oldest():
    bus = EventBus()
    bus.subscribe(lambda e: 1 / 0)
    q = bus.subscribe_queue(maxsize=2)
    for i in range(3):
        bus.emit(EventKind.FINGER_ON, f"d{i}")
    assert [q.get(0).device_id, q.get(0).device_id] == ["d1", "d2"] and q.dropped == 1
    assert q.get(0.01) is None
    q.close()
