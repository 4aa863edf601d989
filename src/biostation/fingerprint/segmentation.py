"""Stage 3: foreground segmentation, where the finger is.

A pixel is foreground when the local ridge-band energy is a fair fraction of the image's strong
ridges and the orientation is coherent (so noise and residual prints with no ridge flow drop
out). The mask is cleaned with morphology, small islands are dropped and holes filled.
"""

from __future__ import annotations

import cv2
import numpy as np

from . import params as P
from ._smooth import wide_blur


def _disk(d: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (d, d))


def segment(bp: np.ndarray, coherence: np.ndarray) -> np.ndarray:
    """Foreground mask (uint8, 1 = finger) from the band-passed image and the coherence."""
    energy = wide_blur(bp * bp, P.SEG_SIGMA)
    top = float(np.percentile(energy[::4, ::4], P.SEG_TOP_PERCENTILE))
    if top <= P.MIN_CONTRAST ** 2:
        return np.zeros(bp.shape, np.uint8)
    mask = ((energy > P.SEG_ENERGY_FRACTION * top) & (coherence > P.SEG_MIN_COHERENCE)).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, _disk(P.SEG_CLOSE_DIAMETER))
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, _disk(P.SEG_OPEN_DIAMETER))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 1:
        return mask
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.zeros(n, np.uint8)
    keep[1:] = areas >= P.SEG_MIN_REGION_FRACTION * areas.max()
    mask = keep[labels]
    # fill holes: background not reachable from the border is foreground
    h, w = mask.shape
    flood = np.zeros((h + 2, w + 2), np.uint8)
    flood[1:-1, 1:-1] = mask
    cv2.floodFill(flood, None, (0, 0), 1)
    mask |= (1 - flood[1:-1, 1:-1])
    return mask
