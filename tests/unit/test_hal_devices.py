"""Camera and card-reader state machines against the simulated devices."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from biostation.errors import (
    CardRemovedError,
    DeviceGoneError,
    DeviceProtocolError,
    DeviceStateError,
)
from biostation.hal import ApduTransport, CameraSettings, DeviceState, EventKind
from biostation_drivers.simulated.camera import SimulatedCamera, generated_clip
from biostation_drivers.simulated.card_reader import BlankCard, SimulatedCardReader


# --- camera ------------------------------------------------------------------------------------
def test_camera_plays_a_video_file_through_videocapture_and_loops(shared, settings):
    video = shared / "data" / "faces" / "VIDEO" / "intel_head-pose-face-detection-female.avi"
    cam = SimulatedCamera.create(video, settings)
    cap = cv2.VideoCapture(str(video))
    n_frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, first = cap.read()
    cap.release()
    assert ok and n_frames > 0
    frames = [f.image for f in cam.frames(max_frames=min(n_frames, 60) + 1)]
    assert np.array_equal(frames[0], first)
    if n_frames <= 60:  # looped back to the first frame
        assert np.array_equal(frames[n_frames], first)
    assert [f.index for f in cam.frames(max_frames=2)] == [len(frames), len(frames) + 1]
    cam.close()


def test_camera_plays_an_image_folder_and_applies_size(tmp_path, settings):
    for i, colour in enumerate([(0, 0, 255), (0, 255, 0), (255, 0, 0)]):
        cv2.imwrite(str(tmp_path / f"shot-{'cab'[i]}.png"), np.full((120, 160, 3), colour, np.uint8))
    cam = SimulatedCamera.create(tmp_path, settings)
    frames = [f.image for f in cam.frames(max_frames=4)]
    # sorted by name: shot-a (green), shot-b (blue), shot-c (red), then loop
    assert [tuple(int(v) for v in f[0, 0]) for f in frames] == [(0, 255, 0), (255, 0, 0), (0, 0, 255), (0, 255, 0)]
    actual = cam.configure(CameraSettings(width=64, height=48))
    assert (actual.width, actual.height) == (64, 48)
    assert cam.read().image.shape == (48, 64, 3)
    cam.close()


def test_camera_generated_clip_when_no_source(settings):
    clip = generated_clip(settings.data_dir / "sim" / "camera.avi", frames=5)
    cam = SimulatedCamera.create(clip, settings)
    assert cam.read().image.shape == (480, 640, 3)
    cam.close()


def test_camera_empty_folder_is_a_clear_error(tmp_path, settings):
    cam = SimulatedCamera.create(tmp_path, settings)
    with pytest.raises(DeviceProtocolError, match="no images"):
        cam.read()
    assert cam.state is DeviceState.CLOSED


def test_camera_unplugged_goes_gone(tmp_path, settings):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((32, 32, 3), np.uint8))
    cam = SimulatedCamera.create(tmp_path, settings, key="sim:camera-unplug")
    cam.read()
    cam.unplug()
    with pytest.raises(DeviceGoneError):
        cam.read()
    assert cam.state is DeviceState.GONE


# --- card reader ---------------------------------------------------------------------------------
class EchoCard:
    atr = bytes.fromhex("3B8001 80".replace(" ", ""))

    def __init__(self) -> None:
        self.resets = 0

    def reset(self) -> None:
        self.resets += 1

    def process(self, apdu: bytes) -> bytes:
        return apdu[5:5 + apdu[4]] + b"\x90\x00"  # echo the command data


def test_reader_power_transmit_and_presence_events():
    card = EchoCard()
    reader = SimulatedCardReader.create(card)
    events = []
    reader.bus.subscribe(events.append)
    reader.open()
    assert isinstance(reader, ApduTransport)
    with pytest.raises(DeviceStateError, match="power_on"):
        reader.transmit(b"\x00\xa4\x04\x00")
    assert reader.power_on() == card.atr and reader.atr == card.atr
    assert reader.transmit(bytes.fromhex("00000000 03 010203")) == bytes.fromhex("010203 9000")
    assert reader.apdu_count == 1
    before = len(events)
    reader.transmit(bytes.fromhex("00000000 01 ff"))
    assert events[before:] == []  # one APDU is too short to announce busy/idle on the event stream
    assert reader.reset() == card.atr and card.resets == 2
    reader.remove()
    assert reader.poll() is False
    assert reader.atr is None
    with pytest.raises(DeviceStateError):
        reader.transmit(b"\x00\xb0\x00\x00")
    reader.insert(BlankCard())
    assert reader.poll() is True
    reader.power_on()
    assert reader.transmit(b"\x00\xa4\x04\x0c") == b"\x6d\x00"
    kinds = [e.kind for e in events if e.kind in (EventKind.CARD_INSERTED, EventKind.CARD_REMOVED)]
    assert kinds == [EventKind.CARD_INSERTED, EventKind.CARD_REMOVED, EventKind.CARD_INSERTED]


def test_card_pulled_mid_exchange_is_card_removed_and_an_event():
    class PulledCard(EchoCard):
        def process(self, apdu: bytes) -> bytes:
            reader.remove()
            raise CardRemovedError("card left the field")

    reader = SimulatedCardReader.create(PulledCard())
    reader.open()
    reader.poll()
    events = []
    reader.bus.subscribe(events.append)
    reader.power_on()
    with pytest.raises(CardRemovedError):
        reader.transmit(b"\x00\xb0\x00\x00\x00")
    assert reader.atr is None and reader.state is DeviceState.IDLE
    assert [e.kind for e in events if e.kind is EventKind.CARD_REMOVED] == [EventKind.CARD_REMOVED]


@pytest.mark.parametrize("apdu", [b"", b"\x00\xa4", bytes(70000)])
def test_reader_refuses_malformed_apdus(apdu):
    reader = SimulatedCardReader.create(EchoCard())
    reader.power_on()
    with pytest.raises(DeviceStateError, match="APDU"):
        reader.transmit(apdu)


def test_reader_power_on_without_card():
    reader = SimulatedCardReader.create()
    reader.remove()
    with pytest.raises(CardRemovedError):
        reader.power_on()
