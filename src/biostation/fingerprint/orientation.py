"""Stage 2: the orientation field, from the smoothed gradient structure tensor.

Angles are in image coordinates (x right, y down, radians, measured from +x towards +y) and
taken modulo pi: ``theta`` is the direction *along* the ridges. ``coherence`` (0..1) says how
well one orientation explains the window: 1 on clean parallel ridges, about 0 on noise and
flat background (Bazen and Gerez, IEEE PAMI 24(7) 2002).
"""

from __future__ import annotations

import cv2
import numpy as np

from . import params as P
from ._smooth import wide_blur


def orientation_field(bp: np.ndarray, sigma: float = P.ORIENTATION_SIGMA) -> tuple[np.ndarray, np.ndarray]:
    """Ridge orientation (radians in [0, pi), image coordinates) and coherence of each pixel."""
    gx = cv2.Sobel(bp, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(bp, cv2.CV_32F, 0, 1, ksize=3)
    gxx = wide_blur(gx * gx, sigma)
    gyy = wide_blur(gy * gy, sigma)
    gxy = wide_blur(gx * gy, sigma)
    a = gxx - gyy
    b = 2.0 * gxy
    # gradient direction is half the doubled angle; ridges run perpendicular to it
    theta = 0.5 * cv2.phase(a, b) + np.float32(np.pi / 2)
    theta[theta >= np.pi] -= np.float32(np.pi)
    coherence = cv2.magnitude(a, b) / (gxx + gyy + np.float32(1e-6))
    return theta, coherence
