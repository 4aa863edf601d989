"""The simulated camera plays the VIDEO/ files, scripted frames, and feeds the capture session."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from biostation.errors import DeviceTimeoutError
from biostation.face import check_portrait, draw_overlay, load_image
from biostation.hal import DeviceState
from biostation.station.workflows import capture_portrait
from biostation_drivers.simulated.camera import SimulatedCamera

VIDEOS = ("mpf_new_face_video-90.mp4", "mpf_video_01.mp4", "intel_head-pose-face-detection-female.avi",
          "intel_head-pose-face-detection-female.gif", "wikimedia_face-morphing.gif")


@pytest.mark.parametrize("name", VIDEOS)
def test_plays_every_video_file(shared, settings, name):
    path = shared / "data" / "faces" / "VIDEO" / name
    cap = cv2.VideoCapture(str(path))
    ok, first = cap.read()
    cap.release()
    assert ok
    cam = SimulatedCamera.create(path, settings)
    frames = [f.image for f in cam.frames(max_frames=5)]
    assert np.array_equal(frames[0], first) and all(f.shape == first.shape for f in frames)
    assert cam.info().details["frames_played"] == 5
    cam.close()


def test_faces_are_found_in_the_close_up_video(shared, settings):
    cam = SimulatedCamera.create(shared / "data" / "faces" / "VIDEO" / "mpf_new_face_video-90.mp4", settings)
    reports = [check_portrait(f.image) for f in cam.frames(max_frames=10)]
    cam.close()
    assert sum(r.faces >= 1 for r in reports) >= 8


def test_scripted_frames_loop_and_a_silent_handler_times_out(settings):
    frames = [np.full((48, 64, 3), v, np.uint8) for v in (10, 20, 30)]
    cam = SimulatedCamera.scripted(frames, settings)
    assert [int(f.image[0, 0, 0]) for f in cam.frames(max_frames=4)] == [10, 20, 30, 10]
    cam.close()
    silent = SimulatedCamera.scripted(lambda i: None, settings)
    with pytest.raises(DeviceTimeoutError):
        silent.read(timeout_s=0.1)
    assert silent.state is DeviceState.IDLE
    with pytest.raises(ValueError):
        SimulatedCamera.scripted([], settings)


def _faces(shared: Path, pattern: str) -> list[np.ndarray]:
    return [load_image(p) for p in sorted((shared / "data" / "faces").glob(pattern))]


def test_capture_session_auto_captures_a_compliant_portrait(shared, settings):
    closed = _faces(shared, "YALE/subject01/09_sleepy.png")[0]
    good = _faces(shared, "LONDON_FRL/002/1_neutral.jpg")[0]
    # two non-compliant frames, then the subject holds still
    script = [closed, closed, good]
    cam = SimulatedCamera.scripted(lambda i: script[min(i, 2)], settings)
    seen = []
    res = capture_portrait(cam, timeout_s=20, stable_frames=2, preview=lambda img, rep: seen.append((img, rep)))
    assert res.captured and res.frames == 4 and res.report.passed
    assert np.array_equal(res.image, good)
    assert [r.passed for _, r in seen] == [False, False, True, True]
    overlay, _ = seen[0]
    assert overlay.shape == closed.shape and not np.array_equal(overlay, closed)  # checks drawn on it
    assert cam.state is DeviceState.IDLE


def test_capture_session_times_out_with_the_best_frame(shared, settings):
    sleepy = _faces(shared, "YALE/subject0[1-3]/09_sleepy.png")
    cam = SimulatedCamera.scripted(sleepy, settings)
    t = iter(range(1000))
    res = capture_portrait(cam, timeout_s=5, clock=lambda: float(next(t)))  # one "second" a frame
    assert res.status == "timeout" and not res.captured
    assert res.frames == 5 and res.report is not None and not res.report.passed
    assert res.report.check("eyes_open").status == "fail"


def test_overlay_draws_on_a_copy_in_both_languages(shared):
    img = _faces(shared, "YALE/subject01/04_leftlight.png")[0]
    rep = check_portrait(img)
    en, vi = draw_overlay(img, rep, "en"), draw_overlay(img, rep, "vi")
    assert not np.array_equal(en, img) and not np.array_equal(en, vi)
    assert np.array_equal(img, _faces(shared, "YALE/subject01/04_leftlight.png")[0])
