"""Live portrait capture at the desk over a :class:`biostation.hal.Camera`: preview,
auto-capture, timeout.

:func:`capture_portrait` reads frames, runs :func:`~biostation.face.checks.check_portrait` on
each, hands every frame with the checks drawn over it to an optional preview callback, and
returns as soon as every check has passed on ``stable_frames`` frames in a row (auto-capture),
or when ``timeout_s`` runs out (then with the best frame seen, so the operator can see what
kept failing). The camera's own template methods do the locking, events and device timeouts.

:func:`capture_exception_photo` takes the exception photo of a person with missing fingers
(MOSIP: the face with both palms beside it): the face has to be found, but none of the
portrait's ICAO gates apply (palms beside the face fail the background, framing and pose checks
by design); it captures once a face is seen on ``stable_frames`` frames in a row, or at the
timeout the frame whose face the detector was surest of.
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

__all__ = ["CaptureResult", "ExceptionPhoto", "capture_exception_photo", "capture_portrait"]


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


@dataclass
class ExceptionPhoto:
    """``status``: ``captured`` (a face on ``stable_frames`` frames in a row) or ``timeout``;
    ``image`` the frame (None when no frame had a face), ``face_score`` the detector's
    confidence (0..1) in its face, ``face_box`` that face (x0, y0, x1, y1 pixels)."""

    status: str
    image: np.ndarray | None
    face_score: float
    face_box: tuple[float, float, float, float] | None
    frames: int
    elapsed_s: float


def capture_exception_photo(camera: Camera, *, timeout_s: float = 30.0, stable_frames: int = 2,
                            preview: Callable[[np.ndarray], None] | None = None,
                            analyzer: FaceAnalyzer | None = None,
                            clock: Callable[[], float] = time.monotonic) -> ExceptionPhoto:
    """The exception photo (see the module doc) from ``camera`` within ``timeout_s`` seconds.
    ``preview(frame_with_face_box)`` is called for every frame. Device errors propagate."""
    import cv2

    from ...face.detect import default_analyzer
    from ...face.image import as_bgr

    if timeout_s <= 0:
        raise ValueError("timeout_s must be positive")
    analyzer = analyzer or default_analyzer()
    t0 = clock()
    streak = n = 0
    best: tuple[float, np.ndarray, tuple[float, float, float, float]] | None = None
    for frame in camera.frames(timeout_s=max(0.1, timeout_s)):
        n += 1
        image = as_bgr(frame.image)
        dets = analyzer.detect(image)
        if preview is not None:
            shown = image.copy()
            if dets:
                x0, y0, x1, y1 = (int(round(v)) for v in dets[0].box)
                cv2.rectangle(shown, (x0, y0), (x1, y1), (0, 200, 0), 2)
            preview(shown)
        if dets and (best is None or dets[0].score > best[0]):
            best = (dets[0].score, frame.image, dets[0].box)
        streak = streak + 1 if dets else 0
        if streak >= stable_frames:
            return ExceptionPhoto("captured", frame.image, dets[0].score, dets[0].box, n, clock() - t0)
        if clock() - t0 >= timeout_s:
            break
    if best is None:
        return ExceptionPhoto("timeout", None, 0.0, None, n, clock() - t0)
    return ExceptionPhoto("timeout", best[1], best[0], best[2], n, clock() - t0)
