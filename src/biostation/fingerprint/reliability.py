"""Local reliability of the ridge pattern: how much of the signal the oriented filter explains.

On clear ridges almost all of the normalized image's energy lies in the band and orientation
that the Gabor filter passes, so the ratio of the enhanced energy to the input energy (both in
Gaussian windows) is high; on scars, smudges, creases and noise the filter passes little of it,
and the minutiae found there are mostly artefacts. The map (0..1, full resolution) lowers the
quality of the minutiae where it is low (:mod:`.minutiae`) and can remove them
(:mod:`.filtering`, ``MIN_MINUTIA_RELIABILITY``).
"""

from __future__ import annotations

import numpy as np

from . import params as P
from ._smooth import blur_small, grow, shrink


def reliability(norm: np.ndarray, enhanced: np.ndarray) -> np.ndarray:
    """Windowed energy ratio of the enhanced to the normalized image, clipped to 0..1."""
    e_out = blur_small(shrink(enhanced * enhanced), P.RELIABILITY_SIGMA)
    e_in = blur_small(shrink(norm * norm), P.RELIABILITY_SIGMA)
    ratio = e_out / (e_in + np.float32(1e-3))
    # the filter's gain on an ideal ridge pattern is taken as the 95th percentile of the ratio,
    # so the map does not depend on the filter bank's normalization
    ref = float(np.percentile(ratio, 95)) if ratio.size else 1.0
    small = np.clip(ratio / max(ref, 1e-6), 0.0, 1.0).astype(np.float32)
    return grow(small, norm.shape)
