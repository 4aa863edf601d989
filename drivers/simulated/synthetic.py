"""Synthetic fingerprint images, for a simulated scanner with no image folder.

Ridges grow from noise by repeated oriented Gabor filtering along an orientation field of the
zero-pole model (one core, one delta), the idea behind SFinGe (Cappelli, Maio, Maltoni 2000).
Deterministic for a given seed. About 50 ms for a 300x300 image.
"""

from __future__ import annotations

import cv2
import numpy as np


def orientation_field(h: int, w: int, core: tuple[float, float], delta: tuple[float, float]) -> np.ndarray:
    """Ridge orientation in radians [0, pi) of the zero-pole model (Sherlock and Monro 1993)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    theta = 0.5 * (np.arctan2(y - core[1], x - core[0]) - np.arctan2(y - delta[1], x - delta[0]))
    return np.mod(theta + np.pi / 2, np.pi)


def synthetic_finger(seed: int, size: tuple[int, int] = (300, 300), period_px: float = 9.0,
                     iterations: int = 7, n_angles: int = 16) -> np.ndarray:
    """One master fingerprint, uint8, dark ridges on light ground, elliptical footprint."""
    h, w = size
    rng = np.random.default_rng(seed)
    core = (w * rng.uniform(0.4, 0.6), h * rng.uniform(0.3, 0.45))
    delta = (w * rng.uniform(0.25, 0.75), h * rng.uniform(0.8, 1.0))
    theta = orientation_field(h, w, core, delta)
    bins = np.round(theta / np.pi * n_angles).astype(int) % n_angles
    kernels = [cv2.getGaborKernel((21, 21), 4.0, a * np.pi / n_angles + np.pi / 2, period_px, 1.0, 0)
               for a in range(n_angles)]
    img = rng.standard_normal((h, w)).astype(np.float32)
    for _ in range(iterations):
        out = np.zeros_like(img)
        for a, k in enumerate(kernels):
            m = bins == a
            if m.any():
                out[m] = cv2.filter2D(img, -1, k.astype(np.float32))[m]
        img = np.tanh(out / (out.std() + 1e-6) * 2.0)
    yy, xx = np.mgrid[0:h, 0:w]
    mask = ((xx - w / 2) / (w * 0.42)) ** 2 + ((yy - h * 0.55) / (h * 0.5)) ** 2 <= 1.0
    grey = np.where(mask, 128 + 100 * img, 235).astype(np.float32)
    return np.clip(grey, 0, 255).astype(np.uint8)


def impression(master: np.ndarray, seed: int) -> np.ndarray:
    """Another impression of the same finger: small rotation and shift, noise, pressure."""
    rng = np.random.default_rng(seed)
    h, w = master.shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-12, 12), 1.0)
    m[:, 2] += rng.uniform(-15, 15, size=2)
    img = cv2.warpAffine(master, m, (w, h), borderValue=235).astype(np.float32)
    img = (img - 128) * rng.uniform(0.7, 1.1) + 128 + rng.normal(0, 8, size=img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def synthetic_set(fingers: int = 3, impressions: int = 4, seed: int = 2026) -> list[np.ndarray]:
    """``fingers`` x ``impressions`` images, finger-major order."""
    out = []
    for f in range(fingers):
        master = synthetic_finger(seed + 1000 * f)
        out.extend(impression(master, seed + 1000 * f + i + 1) for i in range(impressions))
    return out
