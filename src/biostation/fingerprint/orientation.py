"""Stage 2: the orientation field, from the smoothed gradient structure tensor.

Angles are in image coordinates (x right, y down, radians, measured from +x towards +y) and
taken modulo pi: ``theta`` is the direction *along* the ridges. ``coherence`` (0..1) says how
well one orientation explains the window: 1 on clean parallel ridges, about 0 on noise and
flat background (Bazen and Gerez, IEEE PAMI 24(7) 2002).

Two windows: the orientation uses a wide one (``ORIENTATION_SIGMA``), which carries it across
scars, creases and noise; the coherence a narrower one (``COHERENCE_SIGMA``), so that it still
tells ridges from background near the core and deltas, where the wide window averages curved
ridges and loses coherence. The tensor products are shrunk once and blurred twice on the coarse
grid of :mod:`._smooth`.
"""

from __future__ import annotations

import cv2
import numpy as np

from . import params as P
from ._smooth import blur_small, grow, shrink


def _tensor(small: tuple[np.ndarray, np.ndarray, np.ndarray], sigma: float):
    gxx, gyy, gxy = (blur_small(s, sigma) for s in small)
    return gxx - gyy, 2.0 * gxy, gxx + gyy


def _angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # gradient direction is half the doubled angle; ridges run perpendicular to it
    theta = 0.5 * cv2.phase(a, b) + np.float32(np.pi / 2)
    theta[theta >= np.pi] -= np.float32(np.pi)
    return theta


def orientation_field(bp: np.ndarray, sigma: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Ridge orientation (radians in [0, pi), image coordinates) and coherence of each pixel.

    Everything is computed on the coarse grid; the doubled-angle vector (not the angle, which
    wraps) and the coherence are interpolated back to full resolution. (Snapping minutiae
    directions to the narrower window's orientation instead was measured no better with the
    project's matcher on FVC2002 B.)
    """
    sigma = P.ORIENTATION_SIGMA if sigma is None else sigma
    gx = cv2.Sobel(bp, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(bp, cv2.CV_32F, 0, 1, ksize=3)
    small = (shrink(gx * gx), shrink(gy * gy), shrink(gx * gy))
    a, b, _ = _tensor(small, sigma)
    theta = _angle(grow(a, bp.shape), grow(b, bp.shape))
    a, b, tr = _tensor(small, P.COHERENCE_SIGMA)
    coherence = grow(cv2.magnitude(a, b) / (tr + np.float32(1e-6)), bp.shape)
    return theta, coherence
