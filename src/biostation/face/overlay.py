"""The operator's view of a portrait check: the checks drawn over the frame."""

from __future__ import annotations

import cv2
import numpy as np

from .checks import PortraitReport

_GREEN, _RED, _GREY = (60, 200, 60), (40, 40, 230), (160, 160, 160)


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
