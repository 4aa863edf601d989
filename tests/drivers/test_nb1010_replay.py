"""NB-1010-U driver replayed from a real recording, through the real pyusb API."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
import usb.core

from biostation.errors import DeviceProtocolError, DeviceTimeoutError
from biostation.hal import DeviceState, EventKind, ImpressionKind
from biostation_drivers import nb1010
from biostation_drivers.nb1010 import NB1010Scanner
from biostation_drivers.usbreplay import ReplayBackend, ReplayExhaustedError, ReplayMismatchError


@pytest.fixture
def rec(shared):
    return shared / "data" / "usb-recordings" / "nb1010"


def expected_image(rec) -> np.ndarray:
    png = cv2.imread(str(rec / "capture.png"), cv2.IMREAD_UNCHANGED)
    return png if png.ndim == 2 else png[..., 0]


def test_replay_reproduces_recorded_image_byte_for_byte(rec, settings):
    backend = ReplayBackend.from_dir(rec)
    scanner = NB1010Scanner.from_backend(backend, settings)
    events = []
    scanner.bus.subscribe(events.append)
    imp = scanner.capture(ImpressionKind.FLAT, timeout_s=5)
    ref = expected_image(rec)
    assert imp.image.shape == (180, 256) == ref.shape
    assert imp.image.tobytes() == ref.tobytes()
    assert imp.dpi == nb1010.DPI
    backend.assert_finished()  # the whole recorded conversation, nothing more, nothing less
    assert scanner.state is DeviceState.IDLE
    kinds = [e.kind for e in events]
    assert EventKind.CAPTURE_STARTED in kinds and EventKind.CAPTURE_DONE in kinds
    assert EventKind.FINGER_ON in kinds
    scanner.close()


def test_replay_that_ends_early_is_a_timeout_and_scanner_returns_to_idle(rec, settings):
    backend = ReplayBackend.from_dir(rec, limit=40)  # the device goes silent mid-image
    scanner = NB1010Scanner.from_backend(backend, settings)
    with pytest.raises(DeviceTimeoutError, match="did not answer"):
        scanner.capture(timeout_s=5)
    assert scanner.state is DeviceState.IDLE
    assert scanner.last_state is nb1010.CaptureState.READ_PRINT_POLL


def test_stalled_device_times_out_within_deadline(rec, settings):
    backend = ReplayBackend.from_dir(rec, stall_at=1, max_stall_s=0.2)  # the finger check never answers
    scanner = NB1010Scanner.from_backend(backend, settings)
    t0 = time.monotonic()
    with pytest.raises(DeviceTimeoutError):
        scanner.capture(timeout_s=0.3)
    assert time.monotonic() - t0 < 60  # ended by its deadline, not hung (no speed claim)
    assert scanner.state is DeviceState.IDLE


def test_diverging_driver_gets_a_clear_error_not_a_hang(rec, settings, monkeypatch):
    # a driver that sends another capture command than the device was sent in the recording
    monkeypatch.setattr(nb1010, "CMD_CAPTURE", nb1010.CMD_CAPTURE[:8] + b"\x03" + nb1010.CMD_CAPTURE[9:])
    backend = ReplayBackend.from_dir(rec)
    scanner = NB1010Scanner.from_backend(backend, settings)
    with pytest.raises(DeviceProtocolError, match="replay diverged at transfer 4: other bytes written"):
        scanner.capture(timeout_s=5)
    assert scanner.state is DeviceState.IDLE
    with pytest.raises(ReplayMismatchError):
        backend.assert_finished()


def test_corrupted_block_header_is_protocol_error(rec, settings):
    backend = ReplayBackend.from_dir(rec)
    # the sensor reports a wider line than it makes: an image of the wrong size
    urb = backend.urbs[10]
    data = bytearray(urb.data)
    data[20:22] = (300).to_bytes(2, "little")
    backend.urbs[10] = type(urb)(urb.line, urb.type, urb.endpoint, urb.status, urb.buffer_length,
                                 urb.actual_length, bytes(data))
    scanner = NB1010Scanner.from_backend(backend, settings)
    with pytest.raises(DeviceProtocolError, match="line width 300"):
        scanner.capture(timeout_s=5)
    assert scanner.state is DeviceState.IDLE


def test_no_finger_keeps_polling_until_timeout(rec, settings):
    backend = ReplayBackend.from_dir(rec)
    urb = backend.urbs[1]  # the finger-check answer: coverage 0x10, no finger
    data = bytearray(urb.data)
    data[12] = 0x10
    backend.urbs[1] = type(urb)(urb.line, urb.type, urb.endpoint, urb.status, urb.buffer_length,
                                urb.actual_length, bytes(data))
    scanner = NB1010Scanner.from_backend(backend, settings)
    with pytest.raises(DeviceProtocolError, match="diverged"):
        # the driver checks again; the recording shows a capture command instead
        scanner.capture(timeout_s=5)
    assert scanner.state is DeviceState.IDLE


def test_probe_through_settings_replay_dir(rec, settings):
    s = settings.model_copy(update={"usb_replay_dir": rec})
    atts = NB1010Scanner.probe(s)
    assert len(atts) == 1 and atts[0].key == "usb:1-3:298d:1010"
    assert NB1010Scanner.discover(atts[0]) == 100


def test_replay_backend_is_generic_aes3500(shared):
    """The second recording (another vendor, another protocol) replays through plain pyusb."""
    folder = shared / "data" / "usb-recordings" / "aes3500"
    backend = ReplayBackend.from_dir(folder)
    dev = usb.core.find(idVendor=0x08FF, idProduct=0x5731, backend=backend)
    assert dev is not None and (dev.bus, dev.address) == (3, 4)
    ep_in = dev.get_active_configuration()[(0, 0)][0].bEndpointAddress
    assert ep_in == 0x81
    written = 0
    for urb in list(backend.urbs):
        if urb.is_in:
            data = dev.read(urb.endpoint, urb.buffer_length, 100)
            assert bytes(data) == urb.data[:urb.actual_length]
        else:
            written += dev.write(urb.endpoint, urb.data, 100)
    backend.assert_finished()
    assert written > 0
    with pytest.raises(ReplayExhaustedError):
        dev.read(0x81, 64, 100)
