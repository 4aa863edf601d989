"""The NFIQ 2 forest shipped in models/ (gzip) is NIST's model, byte for byte in effect."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

from biostation.errors import ConfigError
from biostation.fingerprint.nfiq2 import SHIPPED_MODEL, load_model, model_path, nfiq2


def test_shipped_model_is_the_default_and_votes_like_nists_yaml(shared):
    assert model_path().name == SHIPPED_MODEL
    ours = load_model()
    nist = load_model(shared / "models" / "nfiq2" / "nist_plain_tir-ink.yaml")
    rng = np.random.default_rng(5)
    x = rng.uniform(0, 1, size=(200, ours.getVarCount())).astype(np.float32) * 100
    a = ours.predict(x, flags=cv2.ml.STAT_MODEL_RAW_OUTPUT)[1]
    b = nist.predict(x, flags=cv2.ml.STAT_MODEL_RAW_OUTPUT)[1]
    assert np.array_equal(a, b)
    img = cv2.imread(str(shared / "data" / "fvc2002" / "DB1_B" / "101_1.tif"), cv2.IMREAD_GRAYSCALE)
    assert nfiq2(img).score == nfiq2(img, model=shared / "models" / "nfiq2" / "nist_plain_tir-ink.yaml").score


def test_a_damaged_shipped_model_is_refused(tmp_path):
    bad = tmp_path / SHIPPED_MODEL
    shutil.copy(model_path(), bad)
    with bad.open("r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01\x02")
    with pytest.raises(ConfigError, match="sha256"):
        load_model(bad)
