"""Live portrait capture over a :class:`biostation.hal.Camera`: preview, auto-capture, timeout.

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
from typing import TYPE_CHECKING

import cv2
import numpy as np

from .checks import PortraitReport, check_portrait
from .detect import FaceAnalyzer

if TYPE_CHECKING:
    from ..hal import Camera

_GREEN, _RED, _GREY = (60, 200, 60), (40, 40, 230), (160, 160, 160)


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


def draw_overlay(frame: np.ndarray, report: PortraitReport, lang: str = "en") -> np.ndarray:
    """A copy of ``frame`` with the face box, eye centres and one line per check drawn on it.

    Passed checks are green, failed red, skipped grey; ``lang`` picks the reason shown for the
    first failed check ("en" or "vi"; OpenCV's fonts draw only ASCII, so Vietnamese text is
    shown without its diacritics in the overlay: the full text is in the report).
    """
    out = frame.copy()
    h = out.shape[0]
    fs = max(0.4, h / 1200)
    th = max(1, int(round(fs * 2)))
    if report.face is not None:
        x0, y0, x1, y1 = (int(round(v)) for v in report.face.box)
        cv2.rectangle(out, (x0, y0), (x1, y1), _GREEN if report.passed else _RED, th)
        for e in (report.face.right_eye, report.face.left_eye):
            cv2.circle(out, (int(e[0]), int(e[1])), max(2, th * 2), (255, 200, 0), -1)
    y = int(22 * fs * 2)
    for c in report.checks:
        colour = _GREEN if c.status == "pass" else _RED if c.status == "fail" else _GREY
        val = "-" if c.value is None else f"{c.value:.2f}"
        cv2.putText(out, f"{c.name}: {val}", (8, y), cv2.FONT_HERSHEY_SIMPLEX, fs, (0, 0, 0), th + 2, cv2.LINE_AA)
        cv2.putText(out, f"{c.name}: {val}", (8, y), cv2.FONT_HERSHEY_SIMPLEX, fs, colour, th, cv2.LINE_AA)
        y += int(18 * fs * 2)
    if report.failed:
        c = report.failed[0]
        text = c.reason_vi if lang == "vi" else c.reason_en
        text = _ascii(text)
        cv2.putText(out, text, (8, h - 12), cv2.FONT_HERSHEY_SIMPLEX, fs, (0, 0, 0), th + 2, cv2.LINE_AA)
        cv2.putText(out, text, (8, h - 12), cv2.FONT_HERSHEY_SIMPLEX, fs, _RED, th, cv2.LINE_AA)
    return out


def _ascii(text: str) -> str:
    import unicodedata

    text = text.replace("đ", "d").replace("Đ", "D")
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


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
