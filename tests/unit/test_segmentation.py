"""Foreground segmentation and minutia quality on synthetic ridge patterns."""

from __future__ import annotations

import numpy as np

from biostation.fingerprint import params as P
from biostation.fingerprint.minutiae import detect
from biostation.fingerprint.orientation import orientation_field
from biostation.fingerprint.segmentation import segment


def _ridges(amplitude: np.ndarray, period: float = 9.0) -> np.ndarray:
    h, w = amplitude.shape
    x = np.arange(w, dtype=np.float32)[None, :]
    return (amplitude * np.sin(2 * np.pi * x / period) * np.ones((h, 1), np.float32)).astype(np.float32)


def test_faint_ridges_join_the_finger_they_continue_but_not_alone():
    """Hysteresis: a faint area (energy between the two fractions of the strong ridges') is
    foreground where it continues the clear finger, background where it stands alone."""
    h, w = 240, 320
    amp = np.zeros((h, w), np.float32)
    strong = 40.0
    faint = strong * np.sqrt((P.SEG_ENERGY_FRACTION + P.SEG_ENERGY_FRACTION_LOW) / 2)
    amp[:, :130] = strong          # the clear part of the finger
    amp[:, 130:200] = faint        # its faint side, continuing it
    amp[:, 240:] = faint           # a faint patch on its own, 40 px of blank between
    bp = _ridges(amp)
    _, coherence = orientation_field(bp)
    mask = segment(bp, coherence)
    inner = slice(30, h - 30)
    assert mask[inner, 20:110].mean() > 0.95
    assert mask[inner, 145:185].mean() > 0.9, "the faint side of the finger was cut off"
    assert mask[inner, 255:305].mean() < 0.05, "a faint patch on its own was called finger"
    assert mask[inner, 215:228].mean() < 0.05


def test_quality_follows_coherence_and_drops_where_reliability_is_low():
    """A minutia's quality is its coherence (x 100), scaled down only where the reliability is
    below QUALITY_RELIABILITY_FULL, and falls to the floor at the foreground border."""
    skel = np.zeros((60, 60), np.uint8)
    skel[30, 10:50] = 1  # one ridge: two endings, at x = 10 and x = 49
    theta = np.zeros(skel.shape, np.float32)
    dist = np.full(skel.shape, 100.0, np.float32)
    period = 9.0

    def qualities(coh: float, rel: float) -> np.ndarray:
        c, _ = detect(skel, theta, np.full(skel.shape, coh, np.float32), np.full(skel.shape, rel, np.float32),
                      dist, period)
        assert len(c) == 2
        return c.quality.astype(int)

    assert (qualities(0.8, 1.0) == 80).all()
    assert (qualities(0.8, P.QUALITY_RELIABILITY_FULL) == 80).all()  # above the gate: coherence alone
    assert (qualities(0.3, 1.0) == 30).all()
    assert (qualities(0.8, P.QUALITY_RELIABILITY_FULL / 2) == 40).all()  # half the gate: half
    assert (qualities(0.8, 0.0) == 1).all()  # the floor: ISO quality 0 means "not reported"


def test_blank_area_inside_the_finger_and_a_thin_edge_band_are_not_finger():
    """A patch with no ridge signal inside the finger (a smudge saturated to black) stays out of
    the mask though hole filling would close it, and a band of ridges along an image edge that is
    too narrow to hold a minutia away from its border is dropped; the finger around stays whole."""
    h, w = 240, 320
    amp = np.zeros((h, w), np.float32)
    amp[20:220, 120:300] = 40.0                      # the finger
    yy, xx = np.mgrid[:h, :w]
    amp[(yy - 120) ** 2 + (xx - 210) ** 2 < 32 ** 2] = 0.0  # a blank patch inside it
    amp[:, :15] = 40.0                               # a band along the left edge
    bp = _ridges(amp)
    _, coherence = orientation_field(bp)
    mask = segment(bp, coherence)
    assert mask[110:131, 200:221].mean() < 0.05, "a blank patch inside the finger was called finger"
    assert mask[40:200, 135:165].mean() > 0.95 and mask[40:200, 265:285].mean() > 0.95
    assert mask[:, :20].mean() < 0.05, "a thin band along the image edge was called finger"
