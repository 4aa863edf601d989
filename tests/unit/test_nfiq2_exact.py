"""NFIQ 2 building blocks that must equal the OpenCV/numpy arithmetic they replace, bit for bit."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from biostation.fingerprint import nfiq2_features as F


def _random_images(seed: int):
    rng = np.random.default_rng(seed)
    for shape in [(36, 36), (60, 300), (211, 157), (400, 388)]:
        yield rng.integers(0, 256, shape).astype(np.uint8)  # noise: the worst case for rounding
        yield ((rng.random(shape) > 0.45) * 255).astype(np.uint8)  # binary, as after Otsu
        yield np.full(shape, 255, np.uint8)  # sums at their largest


@pytest.mark.parametrize("ksize", [41, 91])
def test_roi_blur_is_opencvs_fixed_point_gaussian(ksize):
    taps = F._opencv_u8_gaussian_taps(ksize)
    assert taps.sum() == 256 and np.array_equal(taps, taps[::-1])
    for img in _random_images(ksize):
        assert np.array_equal(F._gauss_u8(img, ksize), cv2.GaussianBlur(img, (ksize, ksize), 0)), img.shape


def _thin_every_pixel(b: np.ndarray, max_iter: int = 30) -> np.ndarray:
    """Zhang-Suen judging every pixel in every sub-iteration: the plain definition."""
    b = b.copy()
    for _ in range(max_iter):
        changed = 0
        for lut in F._ZS_LUTS_CV:
            kill = cv2.bitwise_and(cv2.LUT(F._neighbour_code(b), lut), b)
            changed += cv2.countNonZero(kill)
            cv2.subtract(b, kill, dst=b)
        if not changed:
            break
    return b


def test_thinning_equals_judging_every_pixel():
    rng = np.random.default_rng(7)
    for i in range(25):
        noise = cv2.GaussianBlur(rng.random((90 + i, 120)).astype(np.float32), (0, 0), 1.0 + i % 5)
        b = (noise > np.median(noise)).astype(np.uint8)
        assert np.array_equal(F._thin(b), _thin_every_pixel(b)), i
    ring = np.zeros((40, 40), np.uint8)
    cv2.circle(ring, (20, 20), 12, 1, 5)
    assert np.array_equal(F._thin(ring), _thin_every_pixel(ring))
    assert not F._thin(np.zeros((10, 10), np.uint8)).any()


def test_gradient_equals_numpy():
    rng = np.random.default_rng(3)
    for shape in [(2, 2), (32, 32), (7, 32, 32), (45, 61)]:
        a = rng.integers(0, 256, shape).astype(np.float64)
        for axis in (-2, -1):
            assert np.array_equal(F._gradient(a, axis), np.gradient(a, axis=axis))


def test_block_tensor_sums_equal_per_block_sums():
    img = np.random.default_rng(4).integers(0, 256, (100, 75)).astype(np.uint8)
    sxx, syy, sxy = F.image_tensor(img)
    assert sxx.shape == (4, 3)
    for r, c in [(0, 0), (3, 2), (1, 2), (3, 0)]:
        block = img[32 * r:32 * r + 32, 32 * c:32 * c + 32].astype(np.float64)
        gy, gx = np.gradient(block)
        assert sxx[r, c] == (gx * gx).sum() and syy[r, c] == (gy * gy).sum() and sxy[r, c] == (gx * gy).sum()


def test_local_clarity_width_limits_round_as_nist():
    # widths 1, 4, 3, 4 px average exactly 3 px, the lower ridge limit: NIST divides each by
    # 20 first and averages with cv::mean, which lands a hair above 3 / 20, so the block passes
    widths = np.array([1, 4, 3, 4], np.float64) / 20.0
    assert cv2.mean(widths)[0] >= 3.0 / 20.0
    assert np.cumsum(widths)[-1] * (1.0 / 4) == cv2.mean(widths)[0]


def _rvu_ratios_block_by_block(ridval: np.ndarray) -> list[float]:
    """NIST's RVUP ratios written out block by block (RVUPHistogramFeature.cpp, read as the spec)."""
    out: list[float] = []
    for rv in ridval.tolist():
        changes = [i - 1 for i in range(1, len(rv) - 1) if rv[i] != rv[i - 1]]
        if not changes or not rv[changes[0] + 1:changes[-1]]:
            continue
        rel = [c - changes[0] for c in changes[1:]]
        if len(rel) <= 1:
            continue
        widths = [rel[i] - rel[i - 1] for i in range(len(rel) - 1, 0, -1)]
        ratios = [widths[m] / widths[m + 1] for m in range(len(widths) - 1)]
        for i in range(int(rv[changes[0] + 1]), len(ratios), 2):
            ratios[i] = 1.0 / ratios[i]
        out.extend(ratios)
    return out


def test_ridge_valley_ratios_equal_block_by_block():
    rng = np.random.default_rng(11)
    for run in (1, 2, 3, 5):
        # runs of random widths, as ridges and valleys across a slanted block
        ridval = np.repeat(rng.random((300, 32)) < 0.5, run, axis=1)[:, :32]
        assert np.array_equal(F._rvu_ratios(ridval), np.array(_rvu_ratios_block_by_block(ridval)))
    img = np.random.default_rng(2).integers(0, 256, (300, 300)).astype(np.uint8)
    sb = F._SlantedBlocks(cv2.GaussianBlur(img, (0, 0), 2))
    ic = sb.win // 2
    v2 = F._rotated_crop(sb.padded_windows, sb.orient, True, (ic - 8, ic + 8), (ic - 16, ic + 16))
    ridval, _ = F._ridge_valley(v2)
    assert np.array_equal(F._rvu_ratios(ridval), np.array(_rvu_ratios_block_by_block(ridval)))
