"""NFIQ 2: our features against NIST's reference implementation (nbis-py), and bad input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from biostation.errors import ConfigError, ImageError
from biostation.fingerprint import nfiq2_features as F
from biostation.fingerprint.nfiq2 import features, load_model, nfiq2

#: every 40th FVC2002 B image: 8 images over the four databases
SAMPLE = slice(0, None, 40)


@pytest.fixture(scope="module")
def fvc(request):
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / ".." / "shared"
    files = sorted((root / "data" / "fvc2002").glob("DB*_B/*.tif"))
    if not files:
        pytest.skip("../shared FVC2002 data not present")
    return files


@pytest.fixture(scope="module")
def reference(fvc):
    """NIST's NFIQ 2 (via nbis-py) on the sample: {path: (score, features)}."""
    nbis = pytest.importorskip("nbis")
    ex = nbis.new_nbis_extractor(nbis.NbisExtractorSettings(
        min_quality=0.0, get_center=False, check_fingerprint=False, compute_nfiq2=True, ppi=None))
    out = {}
    for p in fvc[SAMPLE]:
        q = ex.extract_minutiae_from_image_file(str(p)).quality()
        out[p] = (q.score, {f.name: f.value for f in q.features})
    return out


def test_feature_order_matches_model(fvc):
    rf = load_model()
    assert rf.getVarCount() == len(F.FEATURE_ORDER) == 69
    assert len(set(F.FEATURE_ORDER)) == 69


def test_rotation_reproduces_opencv_warp_affine():
    rng = np.random.default_rng(1)
    for pad in (False, True):
        for _ in range(50):
            win = rng.integers(0, 256, (40 if pad else 36,) * 2).astype(np.uint8)
            angle = rng.uniform(-np.pi, np.pi)
            m = cv2.getRotationMatrix2D((win.shape[1] / 2.0, win.shape[0] / 2.0), np.degrees(angle), 1)
            ref = cv2.warpAffine(win, m, (36, 36), flags=cv2.INTER_NEAREST)
            ours = F._rotated_crop(win[None], np.array([angle]), pad, (0, 36), (0, 36))[0]
            assert np.array_equal(ref, ours)


def test_histogram_bins_follow_nist_limits():
    h = F.histogram_features("OCL", np.array([0.1, 0.337, 0.5, 0.9, 0.95]))
    assert [h[f"OCL_Bin10_{i}"] for i in range(10)] == [1, 1, 1, 0, 0, 0, 0, 0, 0, 2]
    assert h["OCL_Bin10_Mean"] == pytest.approx(0.5574)


def test_image_features_equal_nist(reference):
    """The image features (all but FingerJet's minutiae ones) reproduce NIST's values."""
    minutiae = {"FingerJetFX_MinCount_COMMinRect200x200", "FingerJetFX_MinutiaeCount",
                "FJFXPos_Mu_MinutiaeQuality_2", "FJFXPos_OCL_MinutiaeQuality_80"}
    exact = total = 0
    for p, (_, ref) in reference.items():
        ours, _ = features(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE))
        # the ROI blur is bit-exact with OpenCV's 8-bit Gaussian, so the ROI is NIST's
        assert ours["ImgProcROIArea_Mean"] == pytest.approx(ref["ImgProcROIArea_Mean"], rel=1e-9)
        for k in F.FEATURE_ORDER:
            if k.startswith("LCS"):  # local clarity: equal, including blocks on a width limit
                assert ours[k] == pytest.approx(ref[k], rel=1e-9, abs=1e-12), (p.name, k)
            if k in minutiae:
                continue
            total += 1
            exact += abs(ours[k] - ref[k]) <= 1e-6 * max(1.0, abs(ref[k]))
    # on all 319 images only the ROI coherence of 4 DB1 images and one FDA bin differ
    assert exact / total >= 0.99, f"{exact}/{total} features equal to NIST's"


def test_scores_agree_with_nist(reference):
    diffs = [abs(nfiq2(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)).score - s) for p, (s, _) in reference.items()]
    assert sum(d <= 5 for d in diffs) >= 0.75 * len(diffs), diffs
    assert max(diffs) <= 15, diffs


def test_score_ranks_degraded_image_lower(fvc):
    img = cv2.imread(str(fvc[0]), cv2.IMREAD_GRAYSCALE)
    good = nfiq2(img).score
    blurred = nfiq2(cv2.GaussianBlur(img, (0, 0), 4)).score
    assert good >= 30 and blurred < good - 15


@pytest.mark.parametrize("value", [0, 255, 128])
def test_uniform_images_score_zero_with_reason(value):
    r = nfiq2(np.full((300, 300), value, np.uint8))
    assert r.score == 0 and r.reason and not r.features


def test_resolution_other_than_500_is_resampled(fvc):
    img = cv2.imread(str(fvc[0]), cv2.IMREAD_GRAYSCALE)
    big = cv2.resize(img, None, fx=569 / 500, fy=569 / 500, interpolation=cv2.INTER_LINEAR)
    assert abs(nfiq2(big, dpi=569).score - nfiq2(img).score) <= 15


@pytest.mark.parametrize("bad", [None, "img.png", np.zeros(100, np.uint8), np.zeros((0, 0), np.uint8),
                                 np.full((64, 64), np.nan)])
def test_bad_input_is_image_error(bad):
    with pytest.raises(ImageError):
        nfiq2(bad)


def test_slap_sized_image_is_refused():
    rng = np.random.default_rng(0)
    with pytest.raises(ImageError, match="single fingers"):
        nfiq2(rng.integers(0, 200, (1200, 1600)).astype(np.uint8))


def test_bad_dpi_and_missing_model(tmp_path):
    with pytest.raises(ImageError):
        nfiq2(np.zeros((100, 100), np.uint8), dpi=72)
    with pytest.raises(ConfigError):
        nfiq2(np.zeros((100, 100), np.uint8), model=tmp_path / "none.yaml")
