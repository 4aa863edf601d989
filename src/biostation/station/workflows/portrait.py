"""Live portrait capture at the desk over a :class:`biostation.hal.Camera`: preview,
auto-capture, timeout.

:func:`capture_portrait` reads frames, runs :func:`~biostation.face.checks.check_portrait` on
each, hands every frame with the checks drawn over it to an optional preview callback, and
returns as soon as every check has passed on ``stable_frames`` frames in a row (auto-capture),
or when ``timeout_s`` runs out (then with the best frame seen, so the operator can see what
kept failing). The camera's own template methods do the locking, events and device timeouts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ...face.checks import PortraitReport, check_portrait
from ...face.detect import FaceAnalyzer
from ...face.overlay import draw_overlay
from ...hal import Camera

__all__ = ["CaptureResult", "capture_portrait"]


@dataclass
class CaptureResult:
    """``status``: ``captured`` (every check passed) or ``timeout``.

    ``image`` is the captured frame (or the best frame at timeout), ``report`` its checks,
    ``frames`` how many frames were checked, ``elapsed_s`` the wall time.
    """

    status: str
    image: np.ndarray | None
    report: PortraitReport | None
    frames: int
    elapsed_s: float

    @property
    def captured(self) -> bool:
        return self.status == "captured"


def capture_portrait(camera: Camera, *, timeout_s: float = 30.0, stable_frames: int = 2,
                     preview: Callable[[np.ndarray, PortraitReport], None] | None = None,
                     analyzer: FaceAnalyzer | None = None, lang: str = "en",
                     clock: Callable[[], float] = time.monotonic) -> CaptureResult:
    """Capture a compliant portrait from ``camera`` within ``timeout_s`` seconds.

    Auto-captures the first frame after which every check has passed ``stable_frames`` frames
    in a row. ``preview(frame_with_overlay, report)`` is called for every checked frame (keep
    it quick: it runs on the capture thread). Device errors (gone, busy, device timeout)
    propagate as :class:`~biostation.errors.DeviceError`.
    """
    if timeout_s <= 0:
        raise ValueError("timeout_s must be positive")
    t0 = clock()
    streak = 0
    n = 0
    best: tuple[int, np.ndarray, PortraitReport] | None = None
    remaining = timeout_s
    for frame in camera.frames(timeout_s=max(0.1, remaining)):
        n += 1
        report = check_portrait(frame.image, analyzer)
        if preview is not None:
            preview(draw_overlay(frame.image, report, lang), report)
        score = sum(c.passed for c in report.checks)
        if best is None or score > best[0]:
            best = (score, frame.image, report)
        streak = streak + 1 if report.passed else 0
        if streak >= stable_frames:
            return CaptureResult("captured", frame.image, report, n, clock() - t0)
        remaining = timeout_s - (clock() - t0)
        if remaining <= 0:
            break
    return CaptureResult("timeout", best[1] if best else None, best[2] if best else None, n, clock() - t0)
