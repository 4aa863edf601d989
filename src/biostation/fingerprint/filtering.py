"""Stage 8: removal of false minutiae.

Rules, in order (lengths in ridge periods, see :mod:`.params`):

1. structure: a fork with fewer than three distinct segments around it (a 1-2 pixel spur or a
   thinning artefact), an ending that lies inside a fork's disc;
2. short ridges and dots: a segment shorter than ``SHORT_RIDGE`` with an ending at both ends;
3. spurs: a segment shorter than ``SPUR_LENGTH`` from an ending to a fork (both go);
4. bridges, lakes and pores: a segment shorter than ``BRIDGE_LENGTH`` between two forks (both go);
5. broken ridges: two endings closer than ``BROKEN_RIDGE_GAP`` that face each other along the
   line joining them (both go);
6. noise: a minutia with more than ``CLUSTER_MAX_NEIGHBOURS`` others within ``CLUSTER_RADIUS``,
   or where the orientation coherence is below ``MIN_MINUTIA_COHERENCE`` or the reliability
   (:mod:`.reliability`) below ``MIN_MINUTIA_RELIABILITY`` (both thresholds are 0 as shipped:
   the minutia's quality carries coherence and reliability to the matcher instead);
7. borders: closer than ``BORDER_DISTANCE`` to the background, where ridges are cut by the edge
   of the finger or of the sensor.

A pore that survives the Gabor filter is a small hole in a ridge: after thinning, two forks
joined by short segments, which rule 4 removes.
"""

from __future__ import annotations

import numpy as np

from . import params as P
from .minutiae import BIFURCATION, ENDING, Candidates, RidgeGraph


def _structural(c: Candidates, g: RidgeGraph, period: float) -> np.ndarray:
    n = len(c)
    keep = np.ones(n, bool)
    seg = c.segments
    end = c.kind == ENDING
    fork = c.kind == BIFURCATION
    keep &= ~(fork & ((seg >= 0).sum(axis=1) < 3))
    keep &= ~(end & (seg[:, 0] <= 0))
    nl = len(g.lengths)
    # per segment: endings on it and forks touching it
    ends_on = np.bincount(seg[end & keep, 0], minlength=nl)
    fs = seg[fork & keep]
    forks_on = np.bincount(fs[fs > 0], minlength=nl)
    length = g.lengths.astype(np.float64)
    dot = (ends_on >= 2) & (length < P.SHORT_RIDGE * period)
    spur = (ends_on == 1) & (forks_on >= 1) & (length < P.SPUR_LENGTH * period)
    bridge = (ends_on == 0) & (forks_on >= 2) & (length < P.BRIDGE_LENGTH * period)
    bad = dot | spur | bridge
    bad[0] = False
    hit = bad[np.maximum(seg, 0)] & (seg > 0)
    keep &= ~hit.any(axis=1)
    return keep


def _broken_ridges(c: Candidates, period: float) -> np.ndarray:
    keep = np.ones(len(c), bool)
    idx = np.nonzero(c.kind == ENDING)[0]
    if len(idx) < 2:
        return keep
    x, y, a = c.x[idx].astype(np.float64), c.y[idx].astype(np.float64), c.angle[idx].astype(np.float64)
    dx = x[None, :] - x[:, None]
    dy = y[None, :] - y[:, None]
    dist = np.hypot(dx, dy)
    np.fill_diagonal(dist, np.inf)
    # an ending's direction points into its ridge, so across a gap the two point away from
    # each other: i's ridge continues behind it towards j (image-coordinate angles, y down)
    ux, uy = -np.cos(a), -np.sin(a)
    safe = np.maximum(dist, 1e-9)
    towards = (ux[:, None] * dx + uy[:, None] * dy) / safe
    gap = dist < P.BROKEN_RIDGE_GAP * period
    facing = (towards > P.BROKEN_RIDGE_ALIGNMENT) & (towards.T > P.BROKEN_RIDGE_ALIGNMENT)
    pair = gap & facing
    keep[idx[pair.any(axis=1)]] = False
    return keep


def _clusters(c: Candidates, period: float) -> np.ndarray:
    x, y = c.x.astype(np.float64), c.y.astype(np.float64)
    d2 = (x[:, None] - x[None, :]) ** 2 + (y[:, None] - y[None, :]) ** 2
    r = P.CLUSTER_RADIUS * period
    near = (d2 < r * r).sum(axis=1) - 1
    return near <= P.CLUSTER_MAX_NEIGHBOURS


def remove_false(c: Candidates, g: RidgeGraph, coherence: np.ndarray, reliability: np.ndarray,
                 mask_distance: np.ndarray, period: float) -> Candidates:
    """The candidates that survive every rule of this module, in their original order."""
    if len(c) == 0:
        return c
    c = c.take(_structural(c, g, period))
    if len(c) == 0:
        return c
    c = c.take(_broken_ridges(c, period))
    if len(c) == 0:
        return c
    xi, yi = c.x.astype(np.intp), c.y.astype(np.intp)
    keep = _clusters(c, period)
    keep &= coherence[yi, xi] >= P.MIN_MINUTIA_COHERENCE
    keep &= reliability[yi, xi] >= P.MIN_MINUTIA_RELIABILITY
    keep &= mask_distance[yi, xi] >= P.BORDER_DISTANCE * period
    return c.take(keep)
