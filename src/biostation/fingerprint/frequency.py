"""Stage 4: local ridge frequency (as a period: pixels from one ridge to the next).

For a sinusoidal ridge pattern of angular frequency w, the discrete central-difference gradient
has energy sin(w)^2 times the signal's, so the local ratio of the two windowed energies gives w
without any per-block search (the same relation underlies the "second moment" frequency
estimators, e.g. Kovesi's notes; here computed with two Gaussian windows).
"""

from __future__ import annotations

import cv2
import numpy as np

from . import params as P
from ._smooth import blur_small, grow, shrink


def ridge_period(bp: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, float]:
    """Period map (px, float32, clipped to the accepted range) and its median over the finger."""
    gx = cv2.Sobel(bp, cv2.CV_32F, 1, 0, ksize=1, scale=0.5)
    gy = cv2.Sobel(bp, cv2.CV_32F, 0, 1, ksize=1, scale=0.5)
    grad = blur_small(shrink(gx * gx + gy * gy), P.FREQUENCY_SIGMA)
    sig = blur_small(shrink(bp * bp), P.FREQUENCY_SIGMA)
    ratio = np.clip(grad / (sig + np.float32(1e-6)), 0.0, 1.0)
    w = np.arcsin(np.sqrt(ratio))
    small = np.float32(2 * np.pi) / np.maximum(w, np.float32(1e-3))
    np.clip(small, P.MIN_PERIOD, P.MAX_PERIOD, out=small)
    period = grow(small, bp.shape)
    inside = period[::4, ::4][mask[::4, ::4] > 0]
    typical = float(np.median(inside)) if inside.size else P.DEFAULT_PERIOD
    return period, typical
