"""The desk's capture loop on the simulated scanner: preview rate, auto-capture, timeouts, exceptions."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from biostation.hal import DeviceState, EventKind, FingerPosition, ImpressionKind
from biostation.station.workflows.fingers import CaptureLoop, Reason, Status, overlay
from biostation_drivers.simulated.scanner import SimulatedScanner

FP = FingerPosition


@pytest.fixture
def fast(settings):
    """Simulated delays at 5 %: a finger lands in 30 ms and stays 0.1 s in preview."""
    return settings.model_copy(update={"sim_time_scale": 0.05})


@pytest.fixture(scope="module")
def good(request):
    from pathlib import Path

    p = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "fvc2002" / "DB1_B" / "101_1.tif"
    if not p.is_file():
        pytest.skip("../shared FVC2002 data not present")
    return cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)


def test_preview_frames_carry_overlays_and_real_nfiq2(good, fast):
    """Every preview frame reaches the operator with its overlay, and the real NFIQ 2 is computed on
    the frames with a finger (the rate is measured by ``benchmarks/bench_capture_loop.py``)."""
    scanner = SimulatedScanner.create(images=[good], settings=fast)
    frames = []
    # threshold 1: the first assessed frame ends the capture, however slow the machine is
    loop = CaptureLoop(scanner, threshold=1, timeout_s=300, max_attempts=1, on_frame=frames.append)
    result = loop.capture_finger(FP.RIGHT_INDEX)
    assert result.status is Status.CAPTURED and result.quality is not None and result.quality >= 1
    preview = [f for f in frames if f.frame.finger_present]
    assert preview and any(f.quality is not None for f in preview), "no frame was assessed"
    assert all(f.overlay.shape == f.frame.image.shape + (3,) for f in frames)
    assert all(f.position is FP.RIGHT_INDEX for f in frames)
    assert result.preview_frames == len(frames)


def test_auto_capture_when_quality_reaches_threshold(good, fast):
    scanner = SimulatedScanner.create(images=[good], settings=fast)
    events = []
    scanner.bus.subscribe(events.append)
    r = CaptureLoop(scanner, threshold=30, timeout_s=5).capture_finger(FP.LEFT_THUMB)
    assert r.status is Status.CAPTURED and r.reason is None
    assert r.quality >= 30 and r.attempts == 1
    assert r.impression is not None and r.impression.position is FP.LEFT_THUMB
    assert [e.kind for e in events].count(EventKind.CAPTURE_DONE) == 1
    assert scanner.state is DeviceState.IDLE


def test_low_quality_keeps_best_after_timeout(good, fast):
    blurred = cv2.GaussianBlur(good, (0, 0), 5)
    scores = iter([5, 12, 8] * 10000)
    seen = []
    scanner = SimulatedScanner.create(images=[blurred], settings=fast)
    r = CaptureLoop(scanner, threshold=60, timeout_s=5, max_attempts=3, quality_interval_s=0.005,
                    quality=lambda img, dpi: seen.append(next(scores)) or seen[-1]).capture_finger(FP.RIGHT_RING)
    assert r.status is Status.LOW_QUALITY and r.reason is Reason.TIMEOUT
    assert r.attempts == 3 and r.impression is not None
    assert r.quality in (5, 8, 12) and r.quality < 60


def test_missing_and_bandaged_fingers_are_recorded_not_captured(good, fast):
    scanner = SimulatedScanner.create(images=[good], settings=fast)
    captures = []
    scanner.bus.subscribe(lambda e: captures.append(e) if e.kind is EventKind.CAPTURE_STARTED else None)
    plan = [(FP(i), ImpressionKind.FLAT) for i in range(1, 11)]
    session = CaptureLoop(scanner, threshold=20, timeout_s=5).run(
        plan, {FP.LEFT_RING: Reason.AMPUTATED, FP.RIGHT_MIDDLE: Reason.UNABLE_TO_PRINT})
    by_pos = {f.position: f for f in session.fingers}
    assert by_pos[FP.LEFT_RING].status is Status.SKIPPED and by_pos[FP.LEFT_RING].reason.value == "XX"
    assert by_pos[FP.RIGHT_MIDDLE].reason.value == "UP" and by_pos[FP.RIGHT_MIDDLE].impression is None
    assert len(captures) == 8
    assert session.complete
    assert all(f.status is Status.CAPTURED for p, f in by_pos.items() if p not in (FP.LEFT_RING, FP.RIGHT_MIDDLE))
    assert session.summary()[0]["status"] == "captured" and "image" not in str(session.summary())


def test_stalled_scanner_times_out_and_session_goes_on(good, fast):
    scanner = SimulatedScanner.create(images=[good], settings=fast, stall=True)
    t0 = time.monotonic()
    session = CaptureLoop(scanner, threshold=20, timeout_s=0.5).run(
        [(FP.RIGHT_THUMB, ImpressionKind.FLAT), (FP.RIGHT_INDEX, ImpressionKind.FLAT)])
    assert time.monotonic() - t0 < 60  # ended by its timeouts, not hung (no speed claim)
    assert [f.status for f in session.fingers] == [Status.FAILED, Status.FAILED]
    assert session.fingers[0].reason is Reason.TIMEOUT and not session.complete
    assert scanner.state is DeviceState.IDLE


def test_wrong_size_image_from_driver_is_a_device_error(good, fast):
    scanner = SimulatedScanner.create(images=[good], settings=fast, wrong_size=True)
    r = CaptureLoop(scanner, threshold=20, timeout_s=2).capture_finger(FP.LEFT_INDEX)
    assert r.status is Status.FAILED and r.reason is Reason.DEVICE_ERROR
    assert "DeviceProtocolError" in r.detail
    assert scanner.state is DeviceState.IDLE


def test_finger_that_never_lifts_is_a_timeout_not_a_hang(good, settings, monkeypatch):
    scanner = SimulatedScanner.create(images=[good], settings=settings)
    monkeypatch.setattr(scanner, "_do_finger_present", lambda: True)
    t0 = time.monotonic()
    r = CaptureLoop(scanner, threshold=20, timeout_s=0.4).capture_finger(FP.LEFT_LITTLE)
    assert r.status is Status.FAILED and "finger off" in r.detail
    assert time.monotonic() - t0 < 60  # ended by its timeout, not hung (no speed claim)


def test_overlay_colours():
    img = np.full((100, 80), 200, np.uint8)
    ok = overlay(img, 70, 40, True)
    bad = overlay(img, 5, 40, True)
    assert ok.shape == (100, 80, 3)
    assert ok[0, 40, 1] > 150 and bad[0, 40, 2] > 150  # green border vs red border


def test_threshold_must_be_a_score(settings):
    with pytest.raises(ValueError):
        CaptureLoop(SimulatedScanner.create(settings=settings), threshold=150)


def test_slap_is_scored_by_its_weakest_finger_and_missing_fingers_are_left_out(fast):
    from pathlib import Path

    from biostation.fingerprint.slap_compose import compose_slap

    root = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "fvc2002" / "DB1_B"
    fingers = [cv2.imread(str(root / f"10{i}_1.tif"), cv2.IMREAD_GRAYSCALE) for i in (1, 2, 4)]
    slap, _ = compose_slap(fingers, FP.PLAIN_LEFT_FOUR, missing=[FP.LEFT_RING], angles=[5, -5, 8])
    scanner = SimulatedScanner.create(images=[slap], settings=fast)
    scanner.max_image_size = (4096, 4096)
    session = CaptureLoop(scanner, threshold=10, timeout_s=10).run(
        [(FP.PLAIN_LEFT_FOUR, ImpressionKind.SLAP)], {FP.LEFT_RING: Reason.AMPUTATED})
    r = session.fingers[0]
    assert r.status is Status.CAPTURED and r.impression.kind is ImpressionKind.SLAP
    assert 10 <= r.quality <= 100
