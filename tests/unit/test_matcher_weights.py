"""Quality weights of unpaired minutiae in the score denominator, on every matcher backend."""

from __future__ import annotations

import numpy as np
import pytest

from biostation import matcher
from biostation.matcher import params as P
from biostation.templates import MINUTIA_DTYPE, Template, load_template

pytestmark = pytest.mark.usefixtures("matcher_backend")


def test_weights_follow_quality_and_unreported_counts_in_full():
    q = np.array([0, 1, 7, 8, P.QUALITY_FULL // 2, P.QUALITY_FULL, 100])
    m = np.zeros(len(q), MINUTIA_DTYPE)
    m["x"] = np.arange(len(q)) * 30 + 10  # distinct positions: canonical order is the input order
    m["y"] = 50
    m["quality"] = q
    s = matcher.prepare(Template(width=300, height=300, minutiae=m))
    expect = np.clip(np.rint(P.WEIGHT_STEPS * q / P.QUALITY_FULL), 1, P.WEIGHT_STEPS).astype(int)
    expect[q == 0] = P.WEIGHT_STEPS
    assert s.w.tolist() == expect.tolist()
    assert int(s.w.min()) >= 1 and int(s.w.max()) <= P.WEIGHT_STEPS


def test_poor_unpaired_minutiae_cost_a_genuine_pair_less(shared):
    base = load_template(shared / "data" / "fvc2002" / "iso_secugen" / "DB1_B" / "101_1.iso")
    m = base.minutiae
    # spurious minutiae scattered inside the finger's box, once as poor and once as clear ones
    rng = np.random.default_rng(4)
    extra = np.zeros(12, MINUTIA_DTYPE)
    extra["x"] = rng.integers(int(m["x"].min()), int(m["x"].max()), 12)
    extra["y"] = rng.integers(int(m["y"].min()), int(m["y"].max()), 12)
    extra["angle"] = rng.random(12).astype(np.float32) * 6
    extra["kind"] = 1

    def noisy(quality: int) -> Template:
        e = extra.copy()
        e["quality"] = quality
        return Template(width=base.width, height=base.height, dpi=base.dpi, minutiae=np.concatenate([m, e]))

    clean = matcher.match(base, base)
    poor, clear, unreported = matcher.match(base, noisy(5)), matcher.match(base, noisy(90)), matcher.match(base, noisy(0))
    assert clean > poor > clear
    assert unreported == clear  # quality 0 (not reported) counts as a clear minutia
