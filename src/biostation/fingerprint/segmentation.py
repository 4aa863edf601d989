"""Stage 3: foreground segmentation, where the finger is.

A pixel is foreground when the local ridge-band energy is a fair fraction of the image's strong
ridges and the orientation is coherent (so noise and residual prints with no ridge flow drop
out). The energy test is a hysteresis, as in Canny's edge detector: a coherent area whose energy
passes the lower fraction ``SEG_ENERGY_FRACTION_LOW`` is foreground when it is connected to one
that passes ``SEG_ENERGY_FRACTION``, so the faint side of a finger pressed unevenly joins its
clear part while faint background patches on their own stay out. The mask is built on the 4x coarser grid of :mod:`._smooth` (the decision is about
windows of 7 px sigma anyway), cleaned with morphology, small islands dropped and small holes filled.
Then areas with no ridge signal at all that the closing and filling joined to the finger (a smudge
saturated to black) are taken out again, regions are judged again by size and width (a thin band
along an image edge is the platen's border, not finger), and the mask is brought back to full
resolution with smooth edges.
"""

from __future__ import annotations

import cv2
import numpy as np

from . import params as P
from ._smooth import STEP, blur_small, grow, shrink


def _disk(d_px: float) -> np.ndarray:
    d = max(3, round(d_px / STEP) | 1)
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (d, d))


def _drop_small(mask: np.ndarray, narrow: bool = False) -> np.ndarray:
    """The mask without regions smaller than SEG_MIN_REGION_FRACTION of the largest and, with
    ``narrow``, without regions nowhere wider than SEG_MIN_REGION_WIDTH (a mask on the coarse grid)."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 1 or (n == 2 and not narrow):
        return mask
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.zeros(n, np.uint8)
    keep[1:] = areas >= P.SEG_MIN_REGION_FRACTION * areas.max()
    if narrow:
        # half-width of a region: the largest distance (coarse cells) of its cells to background
        dist = cv2.distanceTransform(mask, cv2.DIST_L2, 3)
        half = np.zeros(n, np.float32)
        np.maximum.at(half, labels.ravel(), dist.ravel())
        keep[1:] &= (half[1:] * STEP > 0.5 * P.SEG_MIN_REGION_WIDTH).astype(np.uint8)
    return keep[labels]


def segment(bp: np.ndarray, coherence: np.ndarray) -> np.ndarray:
    """Foreground mask (uint8, 1 = finger) from the band-passed image and the coherence."""
    energy = blur_small(shrink(bp * bp), P.SEG_SIGMA)
    top = float(np.percentile(energy, P.SEG_TOP_PERCENTILE))
    if top <= P.MIN_CONTRAST ** 2:
        return np.zeros(bp.shape, np.uint8)
    coh = shrink(coherence)
    coherent = coh > P.SEG_MIN_COHERENCE
    strong = (energy > P.SEG_ENERGY_FRACTION * top) & coherent
    weak = ((energy > P.SEG_ENERGY_FRACTION_LOW * top) & coherent).astype(np.uint8)
    n, labels = cv2.connectedComponents(weak, connectivity=8)
    seeded = np.zeros(n, np.uint8)
    seeded[labels[strong]] = 1
    seeded[0] = 0
    mask = seeded[labels]
    # a one-cell border of background, so closing does not glue the finger to the image edge
    mask = cv2.copyMakeBorder(mask, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, _disk(P.SEG_CLOSE_DIAMETER))
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, _disk(P.SEG_OPEN_DIAMETER))
    mask = _drop_small(mask)
    # fill holes: background not reachable from the border is foreground, when the hole is
    # small. A large enclosed "hole" is background ringed by artefacts (the dark frame of an
    # optical sensor's platen passes the energy test along the image edges): filling it would
    # call the whole image finger.
    n, labels, stats, _ = cv2.connectedComponentsWithStats(1 - mask, connectivity=4)
    border = labels[0, 0]
    fill = (stats[:, cv2.CC_STAT_AREA] <= P.SEG_MAX_HOLE_FRACTION * mask.size).astype(np.uint8)
    fill[border] = 0
    mask |= fill[labels]
    mask = mask[1:-1, 1:-1]
    if P.SEG_VOID_ENERGY_FRACTION > 0:
        # closing and hole filling join the finger across gaps; a gap that holds no ridge signal
        # at all (a smudge saturated to black, a blank patch) is taken out again, so the later
        # stages do not amplify its sensor noise into ridges
        void = (energy < P.SEG_VOID_ENERGY_FRACTION * top).astype(np.uint8)
        void = cv2.morphologyEx(void, cv2.MORPH_OPEN, _disk(P.SEG_VOID_DIAMETER))
        mask &= 1 - void
    if P.SEG_FINAL_REGION_CHECK:
        # holes filled and voids taken out change the regions: judge their sizes again
        # (a band of background around it, so a region along the image edge is measured as
        # ending there)
        padded = cv2.copyMakeBorder(mask, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
        mask = _drop_small(padded, narrow=True)[1:-1, 1:-1]
    full = (grow(mask.astype(np.float32), bp.shape) > 0.5).astype(np.uint8)
    # the image edge is the edge of the finger as far as the later stages know: ridges are cut
    # there, and minutiae near it must be measured as near a border
    full[0, :] = full[-1, :] = 0
    full[:, 0] = full[:, -1] = 0
    return full
