"""Stage 1: band-pass and contrast normalization.

Ridges become positive, valleys negative, whatever the sensor's polarity of dark ridges on a
light background; illumination gradients and pixel noise fall outside the band.
"""

from __future__ import annotations

import cv2
import numpy as np

from . import params as P
from ._smooth import wide_blur


def bandpass(image: np.ndarray) -> np.ndarray:
    """Difference of Gaussians of a uint8 grey image, ridges positive (float32, grey levels)."""
    f = image.astype(np.float32)
    s1, s2 = P.BANDPASS_SIGMAS
    # dark ridges: the wide blur minus the fine one is positive on a ridge
    return wide_blur(f, s2) - cv2.GaussianBlur(f, (0, 0), s1)


def normalize(bp: np.ndarray) -> np.ndarray:
    """Divide a band-passed image by its local RMS, so ridges have amplitude about 1 everywhere."""
    power = wide_blur(bp * bp, P.NORM_SIGMA)
    # the floor keeps flat background from being amplified into ridges
    return bp / np.sqrt(power + P.MIN_CONTRAST ** 2)
