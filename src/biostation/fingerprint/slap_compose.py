"""Composed 4-4-2 slaps with known ground truth, from single-finger impressions.

Used by the slap tests and ``benchmarks/bench_slap.py`` (and usable by a simulator): each
finger image (8-bit, ridges dark, light background) is cut to a finger-shaped ellipse around
its print, rotated, and placed on a white platen, left to right in slap order; overlapping prints
combine by the darker pixel, as two fingers pressed side by side would. The ground truth of
each finger is where its print centre went and how it was turned.

Real live scans show more than fingertips, and :func:`compose_slap` can add it: the middle and
proximal finger segments below each tip (fainter prints past a white crease, in line with the
finger), the top of the palm under them (cut by the image's bottom edge), fingers of different
sizes (a small little finger; widths in pixels) and a hand that runs off the image's right
edge; and fingertips that are their whole contact area (a slap platen holds the fingertip,
where a single-finger sensor often cut the print at its edge), so that the truth's angle is
the print's own; fingertips longer than the default 1.5 widths, each fingertip's top at a
given place (a little finger that starts well below the ring finger's tip, beside its middle
segment) and longer middle segments. The image then ends below most fingers' last segment,
where the palm begins; a lower finger's segments run on beside it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

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


def whiten(img: np.ndarray) -> np.ndarray:
    """The impression with its background stretched to white, as a live-scan platen shows it
    (some sensors' images, FVC2002 DB3's for one, have a mid-grey background)."""
    bg = float(np.percentile(img, 95))
    return np.clip(img.astype(np.float32) * (255.0 / max(bg, 1.0)), 0, 255).astype(np.uint8)


def finger_shape(img: np.ndarray, aspect: float = 1.5,
                 contact: bool = False) -> tuple[np.ndarray, tuple[float, float], float]:
    """The print cut to an upright ellipse (white outside); returns it, its centre and its width.

    ``contact=False``: an ellipse around the print's dark pixels (as big as the image allows),
    which holds white where the print does not reach. ``contact=True``: the biggest ellipse
    that lies within the print, so the fingertip is its whole contact area as a live scan's
    platen shows it (a single-finger sensor often cuts a print at its edge; a slap scanner's
    platen holds the whole fingertip).
    """
    h, w = img.shape
    if contact:
        area = _print_area(img)
        if area.any():
            # the biggest upright ellipse of this aspect inside the print is the biggest circle
            # inside the print squashed to 1/aspect of its height
            squashed = cv2.resize(area, (w, max(int(round(h / aspect)), 1)), interpolation=cv2.INTER_NEAREST)
            dist = cv2.distanceTransform(cv2.copyMakeBorder(squashed, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0),
                                         cv2.DIST_L2, 5)[1:-1, 1:-1]
            sy, sx = np.unravel_index(int(dist.argmax()), dist.shape)
            a = float(dist.max())
            cx, cy = float(sx), (sy + 0.5) * h / squashed.shape[0]
            b = a * aspect
            yy, xx = np.mgrid[0:h, 0:w]
            inside = ((xx - cx) / a) ** 2 + ((yy - cy) / b) ** 2 <= 1.0
            return np.where(inside, img, 255).astype(np.uint8), (cx, cy), 2 * a
    dark = img < 200
    ys, xs = np.nonzero(dark) if dark.any() else (np.array([img.shape[0] / 2]), np.array([img.shape[1] / 2]))
    cy, cx = float(np.median(ys)), float(np.median(xs))
    b = 0.45 * min(h, w * aspect)
    a = b / aspect
    yy, xx = np.mgrid[0:h, 0:w]
    inside = ((xx - cx) / a) ** 2 + ((yy - cy) / b) ** 2 <= 1.0
    out = np.where(inside, img, 255).astype(np.uint8)
    return out, (cx, cy), 2 * a


def _print_area(img: np.ndarray) -> np.ndarray:
    """Where the print is: ridges of enough contrast (the grey's standard deviation over a few
    ridges), the biggest such region, holes filled (uint8 0/1)."""
    f = img.astype(np.float32)
    mean = cv2.GaussianBlur(f, (0, 0), 8.0)
    dense = np.sqrt(np.maximum(cv2.GaussianBlur(f * f, (0, 0), 8.0) - mean * mean, 0)) > 30
    n, labels, stats, _ = cv2.connectedComponentsWithStats(dense.astype(np.uint8), connectivity=8)
    if n < 2:
        return np.zeros(img.shape, np.uint8)
    area = (labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))).astype(np.uint8)
    canvas = cv2.copyMakeBorder(area, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    cv2.floodFill(canvas, None, (0, 0), 2)
    return (canvas[1:-1, 1:-1] != 2).astype(np.uint8)


def compose_slap(fingers: Sequence[np.ndarray], slap: FP = FP.PLAIN_RIGHT_FOUR,
                 angles: Sequence[float] | None = None, gaps: Sequence[float] | None = None,
                 missing: Sequence[FP] = (), stagger: Sequence[float] | None = None,
                 margin: int = 60, seed: int = 0, scales: Sequence[float] | None = None,
                 segments: bool = False, palm: bool = False,
                 right_margin: int | None = None, contact: bool = False,
                 widths: Sequence[float] | None = None, aspect: float | Sequence[float] = 1.5,
                 tops: Sequence[float] | None = None,
                 segment_length: float = 0.8) -> tuple[np.ndarray, list[TruthFinger]]:
    """A slap image and its ground truth.

    ``fingers``: one image per finger present (in slap order, the missing ones left out).
    ``angles``: rotation of each finger (degrees). ``gaps``: horizontal space between
    neighbouring fingers' ellipses (pixels; negative overlaps them: touching fingers).
    ``stagger``: vertical offsets (fingers are not level in a real slap). ``missing``: slap
    fingers that are absent (their place is left empty). ``scales``: size of each finger
    (1 = as given). ``segments``: add the middle and proximal segments below each fingertip;
    ``palm``: add the top of the palm below them. ``right_margin``: white space right of the
    last finger (default ``margin``; negative cuts the last finger at the image edge).
    ``contact``: each fingertip is the whole contact area within its print (see
    :func:`finger_shape`). ``widths``: fingertip width of each finger in pixels, the print
    scaled to it (instead of ``scales``). ``aspect``: fingertip length over width (one for all
    or one per finger). ``tops``: where each fingertip's top lies, in pixels below the highest
    one (instead of ``stagger``, which offsets the rotated images). ``segment_length``: the
    middle segment's length in fingertip widths (the proximal one is 0.94 of it).
    """
    order = [p for p in SLAP_ORDER[FP(slap)] if p not in set(missing)]
    if len(fingers) != len(order):
        raise ValueError(f"{len(order)} finger images needed, got {len(fingers)}")
    aspects = [float(a) for a in aspect] if isinstance(aspect, Sequence) else [float(aspect)] * len(order)
    shapes = [finger_shape(f, aspect=a, contact=contact) for f, a in zip(fingers, aspects)]
    if widths is not None:
        scales = [wd / max(sh[2], 1.0) for sh, wd in zip(shapes, widths)]
    if scales is not None:  # the print and its shape scaled together
        fingers = [_scaled(f, sc) for f, sc in zip(fingers, scales)]
        shapes = [(_scaled(im, sc), (cx * sc, cy * sc), wd * sc) for (im, (cx, cy), wd), sc in zip(shapes, scales)]
    rng = np.random.default_rng(seed)
    angles = list(angles) if angles is not None else [0.0] * len(order)
    gaps = list(gaps) if gaps is not None else [40.0] * (len(order) - 1)
    stagger = list(stagger) if stagger is not None else list(rng.uniform(-40, 40, len(order)))
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
    if segments:
        height += int(2.4 * typical)
    if tops is not None:  # each rotated image placed so that its print's top lands at its place
        stagger = []
        for (rot, *_), top in zip(placed, tops):
            rows = np.nonzero((rot < 200).any(axis=1))[0]
            stagger.append(float(top) - (float(rows[0]) if rows.size else 0.0))
        # the image ends below most fingers' last segment (the palm's top there); a lower
        # finger's segments run into the palm or off the image
        reach = [a / 2 + (0.25 + 1.9375 * segment_length if segments else 0.0) for a in aspects]
        ends = [q[1][1] + margin + 40 + v + r * q[2] for q, v, r in zip(placed, stagger, reach)]
        height = int((float(np.median(ends)) if segments else max(ends)) + (0.45 * typical if palm else margin))
        # the palm's top lies under the fingers that end there, a lower finger runs on beside it
        under = [e <= float(np.median(ends)) + 0.25 * typical for e in ends]
    else:
        under = [True] * len(placed)
    width_px = int(x + (margin if right_margin is None else right_margin))
    slap_img = np.full((height, width_px), 255, np.uint8)
    truth = []
    for p, x0, rot, c, width, k in positions:
        y0 = margin + 40 + stagger[k]
        xi, yi = int(round(x0)), int(round(y0))
        _stamp(slap_img, rot, (xi, yi))
        truth.append(TruthFinger(p, (c[0] + xi, c[1] + yi), float(angles[k]), float(width)))
    if segments:
        for t, f, a in zip(truth, fingers, aspects):
            _lower_segments(slap_img, f, t, rng, a, segment_length)
    if palm and truth:
        xs = [t.center[0] for t, u in zip(truth, under) if u]
        w = max(xs) - min(xs) + typical
        tex = _faint(cv2.resize(fingers[len(fingers) // 2], (int(w), int(0.9 * typical))), 0.35)
        _stamp(slap_img, _rounded(tex), (int(min(xs) - typical / 2), int(height - 0.55 * typical)))
    return slap_img, truth


def _scaled(img: np.ndarray, scale: float) -> np.ndarray:
    return img if scale == 1 else cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)


def _stamp(canvas: np.ndarray, tile: np.ndarray, at: tuple[int, int]) -> None:
    """Darker-pixel combine of ``tile`` into ``canvas`` with its top-left corner at ``at``
    (clipped at the canvas edges)."""
    xi, yi = at
    hh, ww = tile.shape
    xa, ya = max(xi, 0), max(yi, 0)
    xb, yb = min(xi + ww, canvas.shape[1]), min(yi + hh, canvas.shape[0])
    if xb <= xa or yb <= ya:
        return
    region = canvas[ya:yb, xa:xb]
    np.minimum(region, tile[ya - yi:yb - yi, xa - xi:xb - xi], out=region)


def _faint(img: np.ndarray, contrast: float) -> np.ndarray:
    """The print with its ridge contrast scaled down (lower segments press lighter)."""
    return (255 - (255 - img.astype(np.float32)) * contrast).astype(np.uint8)


def _rounded(tex: np.ndarray) -> np.ndarray:
    """``tex`` cut to the ellipse that fills it (white outside)."""
    h, w = tex.shape
    yy, xx = np.mgrid[0:h, 0:w]
    inside = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2 <= 1.0
    return np.where(inside, tex, 255).astype(np.uint8)


def _lower_segments(canvas: np.ndarray, finger: np.ndarray, t: TruthFinger, rng: np.random.Generator,
                    aspect: float = 1.5, segment_length: float = 0.8) -> None:
    """The middle and proximal segments of finger ``t``: fainter prints in line with it, each
    past a crease (white gap), the proximal one narrower and fainter."""
    w = t.width
    theta = math.radians(t.angle)
    down = np.array([math.sin(theta), math.cos(theta)])  # from the tip towards the palm
    dist = aspect / 2 * w  # fingertip half-length
    h, fw = finger.shape
    for length, width, contrast in ((segment_length * w, 0.9 * w, 0.5), (0.9375 * segment_length * w, 0.8 * w, 0.35)):
        dist += float(rng.uniform(0.08, 0.15)) * w + length / 2  # the crease, then half the segment
        y0 = int(rng.uniform(0, max(h - fw, 1)))
        tex = _faint(cv2.resize(finger[y0:y0 + fw] if h > fw else finger, (int(width), int(length))), contrast)
        tex = _rounded(tex)
        side = int(math.hypot(*tex.shape)) + 2
        pad = np.full((side, side), 255, np.uint8)
        oy, ox = (side - tex.shape[0]) // 2, (side - tex.shape[1]) // 2
        pad[oy:oy + tex.shape[0], ox:ox + tex.shape[1]] = tex
        rot = cv2.warpAffine(pad, cv2.getRotationMatrix2D((side / 2, side / 2), t.angle, 1.0), (side, side),
                             flags=cv2.INTER_LINEAR, borderValue=255)
        cx, cy = np.array(t.center) + down * dist
        _stamp(canvas, rot, (int(cx - side / 2), int(cy - side / 2)))
        dist += length / 2


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


@dataclass(frozen=True)
class LabelledSlap:
    """A real slap image's hand-labelled ground truth (see :func:`load_labels`)."""

    name: str
    kind: str  # "live" (live scan) or "inked" (tenprint card)
    slap: FP
    missing: tuple[FP, ...]
    truth: tuple[TruthFinger, ...]


def load_labels(path) -> list[LabelledSlap]:
    """Hand-labelled slaps from a JSON file: ``{"slaps": {file name: {"kind", "slap" (finger
    code), "missing" (codes), "fingers": [{"position", "center": [x, y], "width", "angle"}]}}}``."""
    import json
    from pathlib import Path

    doc = json.loads(Path(path).read_text())
    out = []
    for name, s in doc["slaps"].items():
        truth = tuple(TruthFinger(FP(f["position"]), (float(f["center"][0]), float(f["center"][1])),
                                  float(f["angle"]), float(f["width"])) for f in s["fingers"])
        out.append(LabelledSlap(name, s["kind"], FP(s["slap"]), tuple(FP(m) for m in s["missing"]), truth))
    return out
