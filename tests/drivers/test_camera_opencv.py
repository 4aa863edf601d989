"""The V4L2 camera driver, replayed: a video file stands in for the device node.

The driver takes its OpenCV backend from a class attribute, so these tests run its real read,
reopen and unplug paths through ``cv2.VideoCapture`` without a camera attached.
"""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

from biostation.errors import DeviceGoneError, DeviceProtocolError, DeviceTimeoutError
from biostation.hal import Attachment, CameraSettings, DeviceState
from biostation_drivers.opencv_camera import OpenCVCamera, device_path


class FileCamera(OpenCVCamera):
    id = "opencv-replay"
    api_preference = cv2.CAP_ANY
    reopen_pause_s = 0.01


def _clip(shared, tmp_path):
    src = shared / "data" / "faces" / "VIDEO" / "intel_head-pose-face-detection-female.avi"
    dst = tmp_path / "video0.avi"
    shutil.copy(src, dst)
    cap = cv2.VideoCapture(str(dst))
    frames = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(img)
    cap.release()
    return dst, frames


def _camera(path, settings):
    return FileCamera(Attachment("v4l2", f"v4l2:{path}", "replay", extra=(("path", str(path)),)), settings)


def test_device_path_by_index_or_path():
    assert device_path("0") == "/dev/video0"
    assert device_path(" 12 ") == "/dev/video12"
    assert device_path("/dev/v4l/by-id/usb-cam") == "/dev/v4l/by-id/usb-cam"


def test_reads_frames_and_reopens_a_device_that_stops(shared, tmp_path, settings):
    path, frames = _clip(shared, tmp_path)
    cam = _camera(path, settings)
    got = [f.image for f in cam.frames(max_frames=len(frames) + 2, timeout_s=2)]
    assert all(np.array_equal(a, b) for a, b in zip(got, frames))
    # the stream ended (as a camera that stops after a USB reset): reopened, frames again
    assert np.array_equal(got[len(frames)], frames[0])
    assert cam.info().details["reopens"] == 1
    assert cam.state is DeviceState.IDLE
    cam.close()


def test_unplugged_device_goes_gone(shared, tmp_path, settings):
    path, frames = _clip(shared, tmp_path)
    cam = _camera(path, settings)
    list(cam.frames(max_frames=len(frames), timeout_s=2))
    path.rename(tmp_path / "elsewhere.avi")
    with pytest.raises(DeviceGoneError):
        cam.read(timeout_s=1)
    assert cam.state is DeviceState.GONE


def test_node_that_cannot_be_opened_is_a_typed_error(tmp_path, settings):
    path = tmp_path / "video9"
    path.write_bytes(b"not a video")
    cam = _camera(path, settings)
    with pytest.raises(DeviceProtocolError, match="cannot open"):
        cam.read(timeout_s=0.3)
    assert cam.state is DeviceState.CLOSED


def test_stalled_device_times_out(shared, tmp_path, settings):
    path, frames = _clip(shared, tmp_path)
    cam = _camera(path, settings)
    cam.open()
    broken = tmp_path / "broken"
    broken.write_bytes(b"broken")
    broken.replace(path)  # the node stays, but reopening it gives no frames
    list(cam.frames(max_frames=len(frames), timeout_s=2))  # the open stream still plays out
    with pytest.raises(DeviceTimeoutError):
        cam.read(timeout_s=0.3)
    assert cam.state is DeviceState.IDLE
    cam.close()


def test_configure_reports_what_the_device_uses(shared, tmp_path, settings):
    path, frames = _clip(shared, tmp_path)
    cam = _camera(path, settings)
    cam.open()
    actual = cam.configure(CameraSettings(width=1920, height=1080, fps=30))
    # a file cannot change its size: the driver reports the real one, not the request
    assert (actual.width, actual.height) == (frames[0].shape[1], frames[0].shape[0])
    assert cam.read().image.shape == frames[0].shape
    cam.close()


def test_probe_finds_no_node_without_cameras(settings, monkeypatch):
    import glob

    monkeypatch.setattr(glob, "glob", lambda pattern: [])
    assert OpenCVCamera.probe(settings) == []
    assert OpenCVCamera.discover(Attachment("v4l2", "v4l2:/dev/video0")) == 50
    assert OpenCVCamera.discover(Attachment("usb", "usb:1-1:1234:5678")) == 0
