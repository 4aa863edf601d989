"""Matcher behaviour, run on every backend (numpy specification and C kernels)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from biostation import matcher
from biostation.errors import MatcherError
from biostation.matcher import params as P
from biostation.templates import MINUTIA_DTYPE, Template, load_template

# every test of this module runs once per matcher backend (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("matcher_backend")


def secugen(shared, db, finger, impression):
    return load_template(shared / "data" / "fvc2002" / "iso_secugen" / db / f"{finger}_{impression}.iso")


def transformed(t: Template, angle: float, shift=(0.0, 0.0), dpi: float | None = None) -> Template:
    """The same finger rotated about the centre and shifted (and optionally resampled)."""
    m = t.minutiae
    cx, cy = t.width / 2, t.height / 2
    c, s = math.cos(angle), math.sin(angle)
    dx, dy = m["x"] - cx, m["y"] - cy
    # counter-clockwise on the image (y down), as minutia angles are measured
    x = dx * c + dy * s + cx + shift[0]
    y = -dx * s + dy * c + cy + shift[1]
    k = (dpi or t.dpi) / t.dpi
    keep = (x >= 0) & (y >= 0) & (x * k < t.width * k - 1) & (y * k < t.height * k - 1)
    out = np.zeros(int(keep.sum()), MINUTIA_DTYPE)
    out["x"], out["y"] = np.rint(x[keep] * k), np.rint(y[keep] * k)
    out["angle"] = np.mod(m["angle"][keep] + angle, 2 * np.pi).astype(np.float32) % np.float32(2 * np.pi)
    out["kind"], out["quality"] = m["kind"][keep], m["quality"][keep]
    return Template(width=int(t.width * k), height=int(t.height * k), dpi=dpi or t.dpi, minutiae=out)


def test_identical_templates_score_high_and_empty_scores_zero(shared):
    t = secugen(shared, "DB1_B", 101, 1)
    assert matcher.match(t, t) >= 9000
    empty = Template(width=300, height=400)
    assert matcher.match(t, empty) == 0 and matcher.match(empty, t) == 0 and matcher.match(empty, empty) == 0


def test_genuine_beats_impostor_on_real_templates(shared):
    probe = secugen(shared, "DB1_B", 101, 1)
    genuine = [matcher.match(probe, secugen(shared, "DB1_B", 101, k)) for k in (2, 3, 4)]
    impostor = [matcher.match(probe, secugen(shared, "DB1_B", f, 1)) for f in range(102, 111)]
    assert min(genuine) > max(impostor)


def test_strong_genuine_pairs_keep_distinct_scores(shared):
    """No clamp: impressions that all scored the old cap (10000) keep their own scores, below a
    copy of the probe, and no score passes SCORE_MAX."""
    probe = matcher.prepare(secugen(shared, "DB1_B", 101, 1))
    genuine = [matcher.match(probe, secugen(shared, "DB1_B", 101, k)) for k in range(2, 9)]
    strong = [s for s in genuine if s >= P.SCORE_SCALE]
    assert len(strong) >= 3 and len(set(strong)) == len(strong)
    assert max(genuine) < matcher.match(probe, probe) <= P.SCORE_MAX


def test_scores_are_symmetric(shared):
    ts = [matcher.prepare(secugen(shared, db, f, k)) for db in ("DB2_B", "DB3_B") for f in (101, 102) for k in (1, 2)]
    for a, b in itertools.combinations(ts, 2):
        assert matcher.match(a, b) == matcher.match(b, a)


def test_rotation_and_translation_invariant(shared):
    t = secugen(shared, "DB4_B", 103, 1)
    base = matcher.match(t, t)
    for angle in (0.3, -0.6, math.pi / 2):
        moved = transformed(t, angle, shift=(7.0, -5.0))
        assert matcher.match(t, moved) >= 0.5 * base * (len(moved.minutiae) / len(t.minutiae)) ** 2


def test_resolution_aware(shared):
    """The same finger at 1000 dpi matches itself at 500 dpi as well as at the same resolution."""
    t = secugen(shared, "DB1_B", 105, 2)
    hi = transformed(t, 0.0, dpi=2 * t.dpi)
    assert matcher.match(t, hi) >= 0.8 * matcher.match(t, t)
    impostor = secugen(shared, "DB1_B", 106, 2)
    assert matcher.match(impostor, hi) < matcher.match(t, hi) / 3


def test_match_many_equals_match(shared):
    ts = [secugen(shared, "DB3_B", f, k) for f in (101, 104, 107) for k in (1, 5)]
    ts.append(Template(width=300, height=300))
    prepared = [matcher.prepare(t) for t in ts]
    gallery = matcher.pack(prepared)
    probe = prepared[0]
    scores = matcher.match_many(probe, gallery)
    assert scores.dtype == np.int32
    assert list(scores) == [matcher.match(probe, c) for c in prepared]
    sub = matcher.match_many(probe, gallery, np.array([3, 1]))
    assert list(sub) == [scores[3], scores[1]]


def test_invalid_template_is_a_typed_error():
    bad = Template(width=10, height=10, minutiae=np.array([(50, 50, 0.0, 1, 0)], MINUTIA_DTYPE))
    with pytest.raises(MatcherError):
        matcher.match(bad, bad)
    nan = Template(width=100, height=100, minutiae=np.array([(5, 5, np.nan, 1, 0)], MINUTIA_DTYPE))
    with pytest.raises(MatcherError):
        matcher.prepare(nan)
    huge = Template(width=20000, height=100, dpi=500,
                    minutiae=np.array([(10000, 5, 1.0, 1, 0)], MINUTIA_DTYPE))  # 51 cm wide
    with pytest.raises(MatcherError):
        matcher.prepare(huge)


def test_score_bounds_and_duplicates():
    m = np.zeros(40, MINUTIA_DTYPE)
    m["x"], m["y"], m["angle"] = 100, 100, 1.0  # 40 copies of one minutia
    t = Template(width=300, height=300, minutiae=m)
    s = matcher.match(t, t)
    assert 0 <= s <= P.SCORE_MAX


def test_dispatch_is_reported():
    assert matcher.BACKEND in ("numpy", "native")
    assert "numpy" in matcher.backends()


def test_float32_similarity_quotient_is_exact():
    """The numpy spec divides in float32; every (intersection, total) the parameters allow floors
    to the integer quotient, so the C kernels' integer division agrees."""
    inter = np.arange(0, 64 * P.DESC_WORDS + 1, dtype=np.int64)
    tot = np.arange(1, 2 * 64 * P.DESC_WORDS + 1, dtype=np.int64)
    exact = (2 * P.SIM_SCALE * inter)[:, None] // tot[None, :]
    f32 = np.floor(inter.astype(np.float32)[:, None] * np.float32(2 * P.SIM_SCALE)
                   / tot.astype(np.float32)[None, :]).astype(np.int64)
    assert np.array_equal(f32, exact)
