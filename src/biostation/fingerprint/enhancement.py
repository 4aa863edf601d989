"""Stage 5: contextual enhancement with a bank of even Gabor filters, applied by FFT.

Each pixel is filtered by the Gabor filter tuned to its own ridge orientation (Hong, Wan and
Jain, IEEE PAMI 20(8) 1998). Rather than one spatial convolution per pixel orientation, the image
is transformed once, multiplied by ``GABOR_ORIENTATIONS`` Gaussian-pair spectra (the Fourier
transform of an even Gabor filter is two Gaussians at +-f0 along the ridge normal, so no
spatial kernel is ever built), transformed back in one batched inverse FFT, and each pixel
interpolates linearly between the two channels nearest its orientation. The filters are tuned
to the finger's median ridge period; their radial bandwidth covers the usual +-25 % spread of
the period over a finger.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np
import scipy.fft

from . import params as P


@lru_cache(maxsize=48)
def _bank(shape: tuple[int, int], period_q: float, n: int) -> np.ndarray:
    """Low-frequency block of the spectra of the even Gabor filters of normal angle k*pi/n.

    For a padded image of ``shape`` (H, W): rows ``0..H/4`` and ``H-H/4..H``, columns
    ``0..W/4`` of the (n, H, W//2+1) real-FFT grid, i.e. frequencies below half the Nyquist
    frequency, where all of the filters' energy lies. float32, read-only, cached (about
    ``n * H * W / 8`` floats per entry).
    """
    h, w = shape
    qh, qw = h // 4, w // 4
    fy = np.fft.fftfreq(h)[np.r_[0:qh, h - qh:h]].astype(np.float32)[:, None]
    fx = np.fft.rfftfreq(w)[: qw + 1].astype(np.float32)[None, :]
    f0 = np.float32(1.0 / period_q)
    sa = np.float32(P.GABOR_SIGMA_ACROSS * period_q)
    sl = np.float32(P.GABOR_SIGMA_ALONG * period_q)
    phi = (np.arange(n) * np.pi / n)[:, None, None]
    cos, sin = np.cos(phi).astype(np.float32), np.sin(phi).astype(np.float32)
    u = fx * cos + fy * sin
    v = fy * cos - fx * sin
    c = np.float32(2 * np.pi ** 2)
    along = np.exp(-c * sl * sl * v * v)
    out = (np.exp(-c * sa * sa * (u - f0) ** 2) + np.exp(-c * sa * sa * (u + f0) ** 2)) * along
    out[:, 0, 0] = 0.0  # no DC: the output is zero-mean
    out = out.astype(np.float32)
    out.setflags(write=False)
    return out


def _fast_len(n: int) -> int:
    """Smallest m >= n, a multiple of 16, whose FFT is fast (only factors 2, 3 and 5). The
    sizes are sparse, so the crops of one sensor's images share a few filter banks (cache)."""
    m = (n + 15) // 16 * 16
    while True:
        k = m // 16
        for p in (2, 3, 5):
            while k % p == 0:
                k //= p
        if k == 1:
            return m
        m += 16


def enhance(norm: np.ndarray, theta: np.ndarray, period: float) -> np.ndarray:
    """Gabor-filtered image (float32, ridges positive) of the normalized image ``norm``.

    ``theta`` is the ridge orientation field (radians, image coordinates, modulo pi) and
    ``period`` the ridge period in pixels. The filtered planes hold no frequency above about a
    quarter of a cycle per pixel (ridge frequency plus three filter bandwidths), so they are
    synthesized on a 2x coarser grid (a quarter of the inverse-FFT work), blended there and
    brought back to full resolution by bicubic interpolation. Cost: one forward real FFT of the
    padded image and ``GABOR_ORIENTATIONS`` inverse ones of a quarter of its size.
    """
    h, w = norm.shape
    n = P.GABOR_ORIENTATIONS
    hp, wp = _fast_len(h + 16), _fast_len(w + 16)
    padded = np.zeros((hp, wp), np.float32)
    padded[:h, :w] = norm
    spec = scipy.fft.rfft2(padded, workers=1)
    bank = _bank((hp, wp), round(period * 4) / 4, n)
    # keep the spectrum below half the Nyquist frequency: a (hp/2, wp/2) grid
    qh, qw = hp // 4, wp // 4
    low = np.concatenate([spec[:qh, : qw + 1], spec[hp - qh:, : qw + 1]])[None] * bank
    planes = scipy.fft.irfft2(low, s=(hp // 2, wp // 2), axes=(-2, -1), workers=1)
    planes = planes[:, : (h + 1) // 2, : (w + 1) // 2]
    # channel k is tuned to ridges whose normal is at angle k*pi/n
    th = theta[::2, ::2]
    pos = (th + np.float32(np.pi / 2)) * np.float32(n / np.pi)
    i0 = np.floor(pos)
    wt = (pos - i0).astype(np.float32)
    i0 = i0.astype(np.intp) % n
    i1 = (i0 + 1) % n
    p0 = np.take_along_axis(planes, i0[None], axis=0)[0]
    p1 = np.take_along_axis(planes, i1[None], axis=0)[0]
    half = (p0 + wt * (p1 - p0)).astype(np.float32)
    # full-resolution pixel i sits at half-grid coordinate i/2
    to_half = np.array([[0.5, 0, 0], [0, 0.5, 0]], np.float32)
    return cv2.warpAffine(half, to_half, (w, h), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)
