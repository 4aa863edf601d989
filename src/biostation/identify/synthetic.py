"""Synthetic fingerprint templates: a background population for 1:N galleries of millions.

>>> from biostation.identify import synthetic
>>> gen = synthetic.Generator(seed=1)
>>> gen.template(123)          # the same Template for the same (seed, index), on any machine
>>> gen.templates(0, 1000)     # a batch

No image is synthesized: the minutiae are drawn directly. A template is one finger of one made-up
person, its print area an ellipse inside a sensor-sized image (:data:`.params.SYN_SIZES`):

* **ridge flow** from the zero-pole model of Sherlock and Monro (1993, "A model for interpreting
  fingerprint topology", Pattern Recognition 26(7)): the ridge orientation at ``z`` is
  ``theta0 + 1/2 (sum arg(z - core) - sum arg(z - delta))``; an arch has no singular point and a
  gently bent flow, a loop one core and one delta, a whorl two of each
  (:data:`.params.SYN_CLASSES`: the flow in a sensor's view, which is often arch-like);
* **minutiae count** log-normal, fitted to real templates (:data:`.params.SYN_LOG_COUNT_MEAN`);
* **positions** spread over the print area at least :data:`.params.SYN_MIN_SPACING` apart;
* **quality** per minutia from a normal distribution fitted to real templates
  (:data:`.params.SYN_QUALITY_MEAN`): the matcher weighs unpaired minutiae by it;
* **directions** along the ridge flow (either way along it; :data:`.params.SYN_DIR_NOISE`), as
  real minutiae are: their neighbours' relative directions, which the matcher's descriptors encode,
  are then as correlated as in real prints.

How close this comes to real templates (counts, positions, directions, pair distances, impostor
scores) is measured by :func:`compare`, which ``biostation bench identify`` reports and plots.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..templates.model import MINUTIA_DTYPE, Template
from . import params as P


class Generator:
    """Deterministic synthetic templates: ``template(i)`` depends on ``(seed, i)`` only."""

    def __init__(self, seed: int = 0):
        self.seed = int(seed)

    def template(self, index: int) -> Template:
        rng = np.random.default_rng([self.seed, int(index)])
        w, h = P.SYN_SIZES[rng.integers(len(P.SYN_SIZES))]
        cx, cy = w / 2 + rng.normal(0, 0.06 * w), h / 2 + rng.normal(0, 0.06 * h)
        ax, ay = P.SYN_ELLIPSE[0] * w / 2, P.SYN_ELLIPSE[1] * h / 2
        n = int(np.clip(round(math.exp(rng.normal(P.SYN_LOG_COUNT_MEAN, P.SYN_LOG_COUNT_STD))),
                        P.SYN_MIN_COUNT, P.SYN_MAX_COUNT))
        xy = _spread(rng, n, cx, cy, ax, ay, w, h)
        theta = _flow(rng, xy, cx, cy, ax, ay)
        angle = np.mod(theta + math.pi * rng.integers(0, 2, len(xy)) + rng.normal(0, P.SYN_DIR_NOISE, len(xy)),
                       2 * math.pi)
        m = np.zeros(len(xy), MINUTIA_DTYPE)
        m["x"], m["y"] = np.clip(np.rint(xy[:, 0]), 0, w - 1), np.clip(np.rint(xy[:, 1]), 0, h - 1)
        m["angle"] = (angle.astype(np.float32) % np.float32(2 * math.pi))
        m["kind"] = rng.integers(1, 3, len(xy))
        m["quality"] = np.clip(np.rint(rng.normal(P.SYN_QUALITY_MEAN, P.SYN_QUALITY_STD, len(xy))), 1, 100)
        return Template(width=w, height=h, dpi=500.0, minutiae=m)

    def templates(self, start: int, count: int) -> list[Template]:
        return [self.template(i) for i in range(start, start + count)]


def _spread(rng: np.random.Generator, n: int, cx: float, cy: float, ax: float, ay: float,
            w: int, h: int) -> np.ndarray:
    """Up to ``n`` points in the ellipse, pairwise at least SYN_MIN_SPACING apart (dart throwing)."""
    pts = np.zeros((0, 2))
    for _ in range(6):
        need = n - len(pts)
        if need <= 0:
            break
        r = np.sqrt(rng.random(3 * need))
        a = rng.random(3 * need) * 2 * math.pi
        cand = np.stack([cx + ax * r * np.cos(a), cy + ay * r * np.sin(a)], axis=1)
        cand = cand[(cand[:, 0] >= 0) & (cand[:, 1] >= 0) & (cand[:, 0] < w) & (cand[:, 1] < h)]
        for c in cand:
            if len(pts) >= n:
                break
            if not len(pts) or np.min(np.sum((pts - c) ** 2, axis=1)) >= P.SYN_MIN_SPACING ** 2:
                pts = np.vstack([pts, c])
    return pts


def _flow(rng: np.random.Generator, xy: np.ndarray, cx: float, cy: float, ax: float, ay: float) -> np.ndarray:
    """Ridge orientation (radians, mod pi) at each point, zero-pole model."""
    z = xy[:, 0] - 1j * xy[:, 1]  # y up, so angles count counter-clockwise like minutia directions
    c0 = complex(cx, -cy)
    kind = rng.choice(3, p=P.SYN_CLASSES)
    theta0 = rng.normal(0, P.SYN_FLOW_TILT)
    if kind == 0:  # arch: ridges across the finger, bowed upwards at the centre
        u = (xy[:, 0] - cx) / ax
        return theta0 + 0.6 * rng.uniform(0.5, 1.0) * np.tanh(2 * u) * np.exp(-((xy[:, 1] - cy) / ay) ** 2)
    scale = complex(ax, ay).real
    if kind == 1:  # loop: a core above a delta, off to one side
        core = c0 + complex(rng.normal(0, 0.2), rng.uniform(0.1, 0.4)) * scale
        deltas = [core + complex(rng.choice([-1, 1]) * rng.uniform(0.4, 0.8), -rng.uniform(0.6, 1.0)) * scale]
        cores = [core]
    else:  # whorl: two cores close together, two deltas below on either side
        core = c0 + complex(rng.normal(0, 0.15), rng.uniform(0.0, 0.3)) * scale
        off = complex(rng.normal(0, 0.05), rng.uniform(0.05, 0.15)) * scale
        cores = [core + off, core - off]
        deltas = [core + complex(-rng.uniform(0.5, 0.9), -rng.uniform(0.6, 1.0)) * scale,
                  core + complex(rng.uniform(0.5, 0.9), -rng.uniform(0.6, 1.0)) * scale]
    th = np.full(len(z), theta0)
    for c in cores:
        th += 0.5 * np.angle(z - c)
    for d in deltas:
        th -= 0.5 * np.angle(z - d)
    return th


def statistics(templates: Sequence[Template]) -> dict[str, np.ndarray]:
    """Per-population samples: minutiae counts, positions relative to the minutiae centroid
    (pixels at 500 dpi), directions (radians) and pair distances (pixels at 500 dpi)."""
    counts, rx, ry, dirs, pairs = [], [], [], [], []
    for t in templates:
        m = t.minutiae
        counts.append(len(m))
        if not len(m):
            continue
        s = 500.0 / float(t.dpi)
        x, y = m["x"].astype(np.float64) * s, m["y"].astype(np.float64) * s
        rx.append(x - x.mean())
        ry.append(y - y.mean())
        dirs.append(m["angle"].astype(np.float64))
        d = np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :])
        pairs.append(d[np.triu_indices(len(x), 1)])

    def cat(a: list) -> np.ndarray:
        return np.concatenate(a) if a else np.zeros(0)

    return {"count": np.array(counts, np.float64), "x": cat(rx), "y": cat(ry), "direction": cat(dirs),
            "pair_distance": cat(pairs)}


def ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic: the largest gap between the two empirical CDFs."""
    if not len(a) or not len(b):
        return 1.0
    grid = np.union1d(a, b)
    fa = np.searchsorted(np.sort(a), grid, side="right") / len(a)
    fb = np.searchsorted(np.sort(b), grid, side="right") / len(b)
    return float(np.max(np.abs(fa - fb)))


def compare(real: Sequence[Template], synthetic: Sequence[Template]) -> dict[str, dict[str, float]]:
    """Mean, standard deviation and KS distance of each statistic, real against synthetic."""
    a, b = statistics(real), statistics(synthetic)
    out = {}
    for key in a:
        out[key] = {"real_mean": float(a[key].mean()) if len(a[key]) else 0.0,
                    "real_std": float(a[key].std()) if len(a[key]) else 0.0,
                    "synthetic_mean": float(b[key].mean()) if len(b[key]) else 0.0,
                    "synthetic_std": float(b[key].std()) if len(b[key]) else 0.0,
                    "ks": ks_distance(a[key], b[key])}
    return out
