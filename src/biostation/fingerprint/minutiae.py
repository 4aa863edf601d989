"""Stage 7: minutiae detection on the skeleton: position, type, direction, quality.

Endings are skeleton pixels whose neighbours form one group, bifurcations those whose
neighbours form three or more (the 8-connected form of Rutovitz's crossing number; adjacent
bifurcation pixels are merged). The skeleton minus small discs around the bifurcations falls
apart into *ridge segments*; each minutia knows the segments it lies on, which is what the
false-minutiae rules of :mod:`.filtering` work with.

Directions follow ISO/IEC 19794-2 (see :mod:`biostation.templates.model`) but are kept here in
image coordinates (radians from +x towards +y, y down) until the orchestrator converts them:

* ridge ending: along the ridge, from the ending into the ridge body;
* bifurcation: along the ridges, from the fork away from the stem (between the two branches).

These are the senses of the SecuGen ISO templates of the FVC2002 images (a commercial,
interoperability-tested extractor): measured on 40 images, 98 % of the paired endings and 97 %
of the paired bifurcations agree within 30 degrees (``tests/unit/test_extract_iso.py``).

Each direction is measured on the skeleton (centroid of the segment pixels within
``DIRECTION_RADIUS`` ridge periods) and snapped to the smoothed orientation field, which is
more precise than a few skeleton pixels, keeping the skeleton's sense.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from . import params as P
from .skeleton import BRANCHES, neighbour_code

ENDING, BIFURCATION = 1, 2


@dataclass
class RidgeGraph:
    """The skeleton cut at the bifurcations: ``labels`` (int32, 0 = none) and the pixel count of
    each segment (``lengths[label]``)."""

    labels: np.ndarray
    lengths: np.ndarray


@dataclass
class Candidates:
    """Minutiae candidates in work-resolution pixels. ``segments`` (N, 3) lists the ridge
    segments each lies on (-1 for none): one for an ending, three or more (first three kept) for
    a bifurcation."""

    x: np.ndarray
    y: np.ndarray
    kind: np.ndarray
    angle: np.ndarray
    quality: np.ndarray
    segments: np.ndarray

    def __len__(self) -> int:
        return len(self.x)

    def take(self, keep: np.ndarray) -> Candidates:
        return Candidates(self.x[keep], self.y[keep], self.kind[keep], self.angle[keep],
                          self.quality[keep], self.segments[keep])


def _windows(img: np.ndarray, ys: np.ndarray, xs: np.ndarray, r: int) -> np.ndarray:
    """(N, 2r+1, 2r+1) windows of ``img`` centred on integer points (zero outside)."""
    padded = np.pad(img, r)
    d = np.arange(-r, r + 1)
    return padded[(ys + r)[:, None, None] + d[None, :, None], (xs + r)[:, None, None] + d[None, None, :]]


def _merge_forks(fy: np.ndarray, fx: np.ndarray) -> np.ndarray:
    """Centres (x, y) of the 8-connected groups of fork pixels (a junction often has 2-4)."""
    if len(fx) == 0:
        return np.zeros((0, 2), np.intp)
    near = (np.abs(fx[:, None] - fx[None]) <= 1) & (np.abs(fy[:, None] - fy[None]) <= 1)
    i, j = np.nonzero(near)
    n, group = connected_components(coo_matrix((np.ones(len(i)), (i, j)), shape=(len(fx),) * 2), directed=False)
    cnt = np.bincount(group, minlength=n)
    cx = np.bincount(group, fx, minlength=n) / cnt
    cy = np.bincount(group, fy, minlength=n) / cnt
    # the group's pixel nearest its mean, so the fork lies on the skeleton
    d = (fx - cx[group]) ** 2 + (fy - cy[group]) ** 2
    order = np.lexsort((d, group))
    first = order[np.r_[0, np.nonzero(np.diff(group[order]))[0] + 1]]
    return np.stack([fx[first], fy[first]], axis=1).astype(np.intp)


def detect(skel: np.ndarray, theta: np.ndarray, coherence: np.ndarray, reliability: np.ndarray,
           mask_distance: np.ndarray, period: float) -> tuple[Candidates, RidgeGraph]:
    """Minutiae candidates of a skeleton, with the ridge graph used to filter them.

    ``theta``: ridge orientation (image coordinates, modulo pi); ``coherence`` and
    ``reliability`` (:mod:`.reliability`): 0..1;
    ``mask_distance``: distance (px) of each pixel to the background; ``period``: ridge period (px).
    """
    branches = cv2.LUT(neighbour_code(skel), BRANCHES) * skel
    ey, ex = np.nonzero(branches == 1)
    fork = (branches >= 3).astype(np.uint8)
    fxy = _merge_forks(*np.nonzero(fork))
    # ridge segments: the skeleton with a 3x3 disc removed around every fork pixel
    junction = cv2.dilate(fork, np.ones((3, 3), np.uint8))
    seg = skel & (1 - junction)
    nseg, labels = cv2.connectedComponents(seg, connectivity=8, ltype=cv2.CV_32S)
    lengths = np.bincount(labels.ravel(), minlength=nseg).astype(np.int32)
    lengths[0] = 0
    graph = RidgeGraph(labels, lengths)

    xs = np.concatenate([ex, fxy[:, 0]]).astype(np.intp)
    ys = np.concatenate([ey, fxy[:, 1]]).astype(np.intp)
    kind = np.concatenate([np.full(len(ex), ENDING, np.uint8), np.full(len(fxy), BIFURCATION, np.uint8)])
    n = len(xs)
    segments = np.full((n, 3), -1, np.int32)
    if n == 0:
        empty = np.zeros(0, np.float32)
        return Candidates(empty, empty, kind, empty, np.zeros(0, np.uint8), segments), graph
    segments[: len(ex), 0] = labels[ey, ex]
    # the segments around a fork: the first three distinct labels in the 5x5 window of its centre
    if len(fxy):
        win = np.sort(_windows(labels, fxy[:, 1], fxy[:, 0], 2).reshape(len(fxy), -1), axis=1)
        new = np.ones(win.shape, bool)
        new[:, 1:] = win[:, 1:] != win[:, :-1]
        new &= win > 0
        rank = np.cumsum(new, axis=1) - 1
        for k in range(3):
            sel = new & (rank == k)
            rows = np.nonzero(sel.any(axis=1))[0]
            segments[len(ex) + rows, k] = win[sel]

    # direction: centroid of each segment's pixels within the radius, relative to the minutia
    r = max(3, round(P.DIRECTION_RADIUS * period))
    win = _windows(labels, ys, xs, r)  # (n, 2r+1, 2r+1)
    d = np.arange(-r, r + 1, dtype=np.float32)
    disc = (d[None, :] ** 2 + d[:, None] ** 2) <= r * r
    vx = np.zeros((n, 3), np.float32)
    vy = np.zeros((n, 3), np.float32)
    for j in range(3):
        lab = segments[:, j]
        sel = (win == lab[:, None, None]) & disc[None] & (lab[:, None, None] > 0)
        cnt = sel.sum(axis=(1, 2)).astype(np.float32)
        ok = cnt > 0
        vx[ok, j] = (sel * d[None, None, :]).sum(axis=(1, 2))[ok] / cnt[ok]
        vy[ok, j] = (sel * d[None, :, None]).sum(axis=(1, 2))[ok] / cnt[ok]
    ang = np.arctan2(vy, vx)
    valid = (vx != 0) | (vy != 0)
    # ending: into its ridge; bifurcation: away from its stem (the branch least aligned with
    # the other two)
    direction = np.arctan2(vy[:, 0], vx[:, 0])
    fk = kind == BIFURCATION
    if fk.any():
        a = ang[fk]
        ok = valid[fk]
        unit = np.stack([np.cos(a), np.sin(a)], -1) * ok[..., None]
        sim = np.einsum("nik,njk->nij", unit, unit)
        score = sim.sum(axis=2) - 1.0 + np.where(ok, 0.0, 9.0)
        stem = np.argmin(score, axis=1)
        direction[fk] = a[np.arange(len(a)), stem] + np.pi
    # snap to the orientation field, keeping the skeleton's sense
    axis = theta[ys, xs].astype(np.float64)
    flip = np.cos(direction - axis) < 0
    angle = np.mod(axis + np.pi * flip, 2 * np.pi).astype(np.float32)

    coh = coherence[ys, xs]
    border = np.clip(mask_distance[ys, xs] / (P.QUALITY_BORDER * period), 0.0, 1.0)
    rel = reliability[ys, xs]
    # quality: the orientation coherence, gated by the reliability only where that is low. Both
    # dip at a true minutia (it disturbs the parallel ridges it lies in), but the reliability's
    # gradations above the gate say more about the filter's fit than about the region
    gate = np.clip(rel / P.QUALITY_RELIABILITY_FULL, 0.0, 1.0)
    quality = np.clip(np.rint(100.0 * np.clip(coh, 0, 1) * gate * border), 1, 100).astype(np.uint8)
    return Candidates(xs.astype(np.float32), ys.astype(np.float32), kind, angle, quality, segments), graph
