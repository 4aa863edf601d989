"""Wide Gaussian windows computed on a 4x smaller grid (internal helper).

The orientation, energy and period maps use windows of 7-12 px sigma; averaging 4x4 cells first
and blurring the small image costs about a twentieth of a full-resolution blur and loses nothing
at that scale (the 4x4 box adds a variance of (4^2 - 1)/12 px^2, taken off the blur's).
"""

from __future__ import annotations

import cv2
import numpy as np

STEP = 4


def shrink(x: np.ndarray) -> np.ndarray:
    """Mean of each STEP x STEP cell; the image is first padded (edge pixels repeated) to a
    multiple of STEP, which keeps OpenCV on its fast integer-factor path."""
    h, w = x.shape
    ph, pw = -h % STEP, -w % STEP
    if ph or pw:
        x = cv2.copyMakeBorder(x, 0, ph, 0, pw, cv2.BORDER_REPLICATE)
    return cv2.resize(x, ((w + pw) // STEP, (h + ph) // STEP), interpolation=cv2.INTER_AREA)


def blur_small(small: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian of ``sigma`` full-resolution pixels, applied to a shrunk map."""
    s = np.sqrt(max(sigma * sigma - (STEP * STEP - 1) / 12.0, 0.25)) / STEP
    return cv2.GaussianBlur(small, (0, 0), s, borderType=cv2.BORDER_REFLECT)


def grow(small: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Back to full resolution (bilinear; cell centres stay where :func:`shrink` put them)."""
    big = cv2.resize(small, (small.shape[1] * STEP, small.shape[0] * STEP), interpolation=cv2.INTER_LINEAR)
    return big[: shape[0], : shape[1]]


def wide_blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Full-resolution result of a Gaussian of ``sigma`` px (sigma should be >= about 4)."""
    return grow(blur_small(shrink(x), sigma), x.shape)
