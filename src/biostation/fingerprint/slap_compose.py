"""Composed 4-4-2 slaps with known ground truth, from single-finger impressions.

Used by the slap tests and ``benchmarks/bench_slap.py`` (and usable by a simulator): each
finger image (8-bit, ridges dark, light background) is cut to a finger-shaped ellipse around
its print, rotated, and placed on a white platen, left to right in slap order; overlapping prints
combine by the darker pixel, as two fingers pressed side by side would. The ground truth of
each finger is where its print centre went and how it was turned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from ..records.vocabulary import FingerPosition as FP
from .slap import SLAP_ORDER


@dataclass(frozen=True)
class TruthFinger:
    position: FP
    center: tuple[float, float]
    angle: float  # degrees, counter-clockwise as seen on the image
    width: float


def finger_shape(img: np.ndarray, aspect: float = 1.5) -> tuple[np.ndarray, tuple[float, float], float]:
    """The print cut to an upright ellipse (white outside); returns it, its centre and its width."""
    dark = img < 200
    ys, xs = np.nonzero(dark) if dark.any() else (np.array([img.shape[0] / 2]), np.array([img.shape[1] / 2]))
    cy, cx = float(np.median(ys)), float(np.median(xs))
    h, w = img.shape
    b = 0.45 * min(h, w * aspect)
    a = b / aspect
    yy, xx = np.mgrid[0:h, 0:w]
    inside = ((xx - cx) / a) ** 2 + ((yy - cy) / b) ** 2 <= 1.0
    out = np.where(inside, img, 255).astype(np.uint8)
    return out, (cx, cy), 2 * a


def compose_slap(fingers: Sequence[np.ndarray], slap: FP = FP.PLAIN_RIGHT_FOUR,
                 angles: Sequence[float] | None = None, gaps: Sequence[float] | None = None,
                 missing: Sequence[FP] = (), stagger: Sequence[float] | None = None,
                 margin: int = 60, seed: int = 0) -> tuple[np.ndarray, list[TruthFinger]]:
    """A slap image and its ground truth.

    ``fingers``: one image per finger present (in slap order, the missing ones left out).
    ``angles``: rotation of each finger (degrees). ``gaps``: horizontal space between
    neighbouring fingers' ellipses (pixels; negative overlaps them: touching fingers).
    ``stagger``: vertical offsets (fingers are not level in a real slap). ``missing``: slap
    fingers that are absent (their place is left empty).
    """
    order = [p for p in SLAP_ORDER[FP(slap)] if p not in set(missing)]
    if len(fingers) != len(order):
        raise ValueError(f"{len(order)} finger images needed, got {len(fingers)}")
    rng = np.random.default_rng(seed)
    angles = list(angles) if angles is not None else [0.0] * len(order)
    gaps = list(gaps) if gaps is not None else [40.0] * (len(order) - 1)
    stagger = list(stagger) if stagger is not None else list(rng.uniform(-40, 40, len(order)))
    shapes = [finger_shape(f) for f in fingers]
    # rotate each finger about its print centre on a canvas big enough to hold it
    placed = []
    for (img, (cx, cy), width), ang in zip(shapes, angles):
        side = int(math.hypot(*img.shape)) + 2
        canvas = np.full((side, side), 255, np.uint8)
        oy, ox = (side - img.shape[0]) // 2, (side - img.shape[1]) // 2
        canvas[oy:oy + img.shape[0], ox:ox + img.shape[1]] = img
        c = (cx + ox, cy + oy)
        m = cv2.getRotationMatrix2D(c, ang, 1.0)
        rot = cv2.warpAffine(canvas, m, (side, side), flags=cv2.INTER_LINEAR, borderValue=255)
        cols = np.nonzero((rot < 200).any(axis=0))[0]
        placed.append((rot, c, width, cols[0] if cols.size else 0, cols[-1] if cols.size else side - 1))
    # lay them out left to right; a missing finger leaves a finger-wide hole
    widths = [p[4] - p[3] + 1 for p in placed]
    typical = float(np.median(widths))
    x = float(margin)
    positions = []
    slot = 0
    full = SLAP_ORDER[FP(slap)]
    k = 0
    for p in full:
        if p in set(missing):
            x += typical + 40
            continue
        rot, c, width, left, right = placed[k]
        positions.append((p, x - left, rot, c, width, k))
        x += (right - left + 1) + (gaps[k] if k < len(gaps) else 0)
        k += 1
        slot += 1
    side = max(r.shape[0] for r in (q[0] for q in placed))
    height = side + 2 * margin + 80
    width_px = int(x + margin)
    slap_img = np.full((height, width_px), 255, np.uint8)
    truth = []
    for p, x0, rot, c, width, k in positions:
        y0 = margin + 40 + stagger[k]
        xi, yi = int(round(x0)), int(round(y0))
        hh, ww = rot.shape
        xa, ya = max(xi, 0), max(yi, 0)
        xb, yb = min(xi + ww, width_px), min(yi + hh, height)
        region = slap_img[ya:yb, xa:xb]
        np.minimum(region, rot[ya - yi:yb - yi, xa - xi:xb - xi], out=region)
        truth.append(TruthFinger(p, (c[0] + xi, c[1] + yi), float(angles[k]), float(width)))
    return slap_img, truth


def hits(result, truth: Sequence[TruthFinger], max_center: float = 0.35, max_angle: float = 12.0) -> list[bool]:
    """Per ground-truth finger: was it found, with the right position code, near its centre
    (within ``max_center`` finger widths) and turned within ``max_angle`` degrees?"""
    found = result.by_position()
    out = []
    for t in truth:
        f = found.get(t.position)
        if f is None:
            out.append(False)
            continue
        d = math.hypot(f.center[0] - t.center[0], f.center[1] - t.center[1])
        da = abs((f.angle - t.angle + 180) % 360 - 180)
        out.append(d <= max_center * t.width and da <= max_angle)
    return out
