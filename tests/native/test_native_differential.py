"""The C kernels against the numpy specification on generated nasty inputs.

Integer scores must agree bit for bit (the tolerance for floats is moot: every score is an
integer). Run once under AddressSanitizer as described in native/README.md.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from biostation import matcher
from biostation.matcher import _reference
from biostation.matcher.prepare import SearchTemplate, prepare
from biostation.templates import MINUTIA_DTYPE, Template

native = matcher.backends().get("native")
pytestmark = pytest.mark.skipif(native is None, reason="C kernels not built")

TWO_PI_BELOW = float(np.nextafter(np.float32(2 * math.pi), np.float32(0)))
W, H = 400, 500


@st.composite
def templates(draw, max_n=255):
    n = draw(st.sampled_from([0, 1, 2, 3, 12, 40, 100, 255]) | st.integers(0, max_n))
    n = min(n, max_n)
    dpi = draw(st.sampled_from([500.0, 500.38, 1000.0, 250.0, 569.0]))
    edge_x = st.sampled_from([0, 1, W - 1]) | st.integers(0, W - 1)
    edge_y = st.sampled_from([0, 1, H - 1]) | st.integers(0, H - 1)
    angle = st.sampled_from([0.0, TWO_PI_BELOW, math.pi, 1e-7]) | st.floats(0, TWO_PI_BELOW, width=32)
    m = np.zeros(n, MINUTIA_DTYPE)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    m["x"] = rng.integers(0, W, n)
    m["y"] = rng.integers(0, H, n)
    m["angle"] = (rng.integers(0, 256, n) * (2 * math.pi / 256)).astype(np.float32) % np.float32(2 * math.pi)
    m["kind"] = rng.integers(0, 3, n)
    m["quality"] = rng.choice([0, 1, 7, 29, 30, 59, 60, 100], n) if draw(st.booleans()) else rng.integers(0, 101, n)
    for k in range(min(n, draw(st.integers(0, 6)))):  # some hand-picked extremes
        m[k] = (draw(edge_x), draw(edge_y), draw(angle), 1, 0)
    if n >= 4 and draw(st.booleans()):  # duplicates
        m[n // 2:] = m[: n - n // 2]
    return Template(width=W, height=H, dpi=dpi, minutiae=m)


def near_copy(t: Template, rng) -> Template:
    """The same template slightly moved: a genuine-like partner, to exercise every stage."""
    m = t.minutiae.copy()
    if len(m):
        m["x"] = np.clip(m["x"].astype(int) + rng.integers(-3, 4, len(m)), 0, W - 1)
        m["y"] = np.clip(m["y"].astype(int) + rng.integers(-3, 4, len(m)), 0, H - 1)
        keep = rng.random(len(m)) > 0.2
        m = m[keep]
    return Template(width=W, height=H, dpi=t.dpi, minutiae=m)


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(a=templates(), b=templates(), seed=st.integers(0, 1000))
def test_scores_agree(a, b, seed):
    rng = np.random.default_rng(seed)
    pa, pb, pc = prepare(a), prepare(b), prepare(near_copy(a, rng))
    for x, y in ((pa, pb), (pa, pc), (pc, pa), (pa, pa)):
        s = native.score(x, y)
        assert s == _reference.score(x, y)
        assert 0 <= s <= matcher.params.SCORE_MAX  # bounded without a clamp
    gallery = matcher.pack([pb, pc, pa])
    assert np.array_equal(native.score_many(pa, gallery), _reference.score_many(pa, gallery))


@pytest.fixture(params=["avx512", "generic"])
def screen_kernel(request):
    """Each C screen kernel in turn (the AVX-512 one only where the CPU has it)."""
    from biostation.matcher import _native

    if request.param == "avx512" and _native.screen_isa(True) != "avx512":
        pytest.skip("this CPU has no AVX-512 VPOPCNTDQ")
    _native.screen_isa(request.param == "avx512")
    yield request.param
    _native.screen_isa(True)


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                                   HealthCheck.function_scoped_fixture])
@given(a=templates(), b=templates(), seed=st.integers(0, 1000), top=st.sampled_from([0, 1, 2, 8, 20, 255]))
def test_screen_scores_agree(screen_kernel, a, b, seed, top):
    rng = np.random.default_rng(seed)
    pa, pb, pc = prepare(a), prepare(b), prepare(near_copy(a, rng))
    gallery = matcher.pack([pb, pc, pa, prepare(Template(width=W, height=H))])
    for probe in (pa, pb, pc):
        want = _reference.screen_many(probe, gallery, top=top)
        assert np.array_equal(native.screen_many(probe, gallery, top=top), want)
        idx = np.array([3, 0, 0, 2], np.int64)  # repeated and reordered rows
        assert np.array_equal(native.screen_many(probe, gallery, idx, top=top), want[idx])
        assert want.min() >= 0 and want.max() <= 2 * matcher.params.SIM_SCALE * max(top, 0)


def test_extreme_sizes_agree():
    rng = np.random.default_rng(7)
    full = Template(width=W, height=H, minutiae=np.zeros(255, MINUTIA_DTYPE))
    full.minutiae["x"] = rng.integers(0, W, 255)
    full.minutiae["y"] = rng.integers(0, H, 255)
    full.minutiae["angle"] = rng.random(255).astype(np.float32) * 6
    one = Template(width=W, height=H, minutiae=full.minutiae[:1].copy())
    empty = Template(width=W, height=H)
    # the largest coordinates the matcher takes: 1638 px at 100 dpi = 8190 px at 500 dpi
    corners = Template(width=1639, height=1639, dpi=100.0,
                       minutiae=np.array([(0, 0, 0.0, 1, 0), (1638, 1638, TWO_PI_BELOW, 2, 0),
                                          (0, 1638, 3.0, 1, 0), (1638, 0, 1.0, 1, 0)], MINUTIA_DTYPE))
    two = Template(width=W, height=H, minutiae=full.minutiae[:2].copy())
    three = Template(width=W, height=H, minutiae=full.minutiae[1:4].copy())
    # around the AVX-512 screen kernel's steps: whole vectors of 16 minutiae, the half step of 8 at
    # the end, the transposed layout's 8 minutiae and its masked loads of 2
    sized = [Template(width=W, height=H, minutiae=full.minutiae[:k].copy()) for k in (7, 8, 9, 15, 16, 17, 24, 25, 33)]
    ts = [prepare(t) for t in (full, one, two, three, empty, corners, near_copy(full, rng), near_copy(three, rng),
                               *sized)]
    for x in ts:
        for y in ts:
            assert native.score(x, y) == _reference.score(x, y)
    g = matcher.pack(ts)
    for x in ts:
        assert np.array_equal(native.screen_many(x, g, top=8), _reference.screen_many(x, g, top=8))


def one_minutia(bits: range, t: int = 10) -> SearchTemplate:
    """A prepared template of one minutia whose descriptor has exactly ``bits`` set."""
    desc = np.zeros((1, 4), np.uint64)
    for b in bits:
        desc[0, b // 64] |= np.uint64(1) << np.uint64(b % 64)
    one = np.ones(1, np.int32)
    return SearchTemplate(x=one * 100, y=one * 100, t=one * t, desc=desc, cnt=one * len(bits), w=one, key=len(bits))


@pytest.mark.parametrize("scale", [100, 1000, 512])
def test_screen_agrees_at_another_similarity_scale(screen_kernel, scale, monkeypatch):
    """The AVX-512 kernel scales after the maximum when 2 * SIM_SCALE is a power of two and before
    the division otherwise: both against the specification, with the C module reconfigured. At
    SIM_SCALE 100, 53 bits in common out of 100 + 100 is a quotient of exactly 53 that scaling after
    the division would truncate to 52 (float32(200) * float32(53 / 200) < 53)."""
    from biostation.matcher import _cbackend

    rng = np.random.default_rng(11)
    trap = [one_minutia(range(0, 100)), one_minutia(range(47, 147))]
    ts = []
    for k in (0, 1, 9, 17, 40, 90):
        m = np.zeros(k, MINUTIA_DTYPE)
        m["x"], m["y"] = rng.integers(0, W, k), rng.integers(0, H, k)
        m["angle"] = rng.random(k).astype(np.float32) * 6
        t = Template(width=W, height=H, minutiae=m)
        ts += [t, near_copy(t, rng)]
    monkeypatch.setattr(matcher.params, "SIM_SCALE", scale)
    try:
        _cbackend.configure()
        prepared = trap + [prepare(t) for t in ts]
        g = matcher.pack(prepared)
        if scale == 100:
            assert _reference.screen_many(trap[0], matcher.pack(trap[1:]), top=1)[0] == 53
        for x in prepared:
            for top in (1, 8):
                assert np.array_equal(native.screen_many(x, g, top=top), _reference.screen_many(x, g, top=top))
    finally:
        monkeypatch.undo()
        _cbackend.configure()


def test_non_contiguous_and_big_endian_inputs_are_normalized():
    rng = np.random.default_rng(3)
    m = np.zeros(60, MINUTIA_DTYPE)
    m["x"], m["y"] = rng.integers(0, W, 60), rng.integers(0, H, 60)
    m["angle"] = rng.random(60).astype(np.float32) * 6
    t = Template(width=W, height=H, minutiae=m[::2])  # strided view
    s = prepare(t)
    odd = type(s)(x=s.x.astype(">i4"), y=s.y[::1].astype(np.int64), t=np.asfortranarray(s.t), desc=s.desc.copy(),
                  cnt=s.cnt.astype(np.int16), w=s.w[::-1][::-1].astype(np.int8), key=s.key)
    assert native.score(odd, s) == _reference.score(s, s)


def test_native_does_not_modify_inputs():
    rng = np.random.default_rng(5)
    ts = []
    for n in (30, 45, 0, 255):
        m = np.zeros(n, MINUTIA_DTYPE)
        m["x"], m["y"] = rng.integers(0, W, n), rng.integers(0, H, n)
        m["angle"] = rng.random(n).astype(np.float32) * 6
        ts.append(prepare(Template(width=W, height=H, minutiae=m)))
    gallery = matcher.pack(ts)
    before = {k: getattr(gallery, k).copy() for k in ("x", "y", "t", "desc", "cnt", "w", "offsets", "keys")}
    probe_before = [a.copy() for a in (ts[0].x, ts[0].y, ts[0].t, ts[0].desc, ts[0].cnt, ts[0].w)]
    native.score_many(ts[0], gallery)
    native.screen_many(ts[0], gallery)
    native.score(ts[0], ts[1])
    for k, v in before.items():
        assert np.array_equal(getattr(gallery, k), v), k
    for a, b in zip((ts[0].x, ts[0].y, ts[0].t, ts[0].desc, ts[0].cnt, ts[0].w), probe_before):
        assert np.array_equal(a, b)


def test_raw_c_calls_reject_bad_buffers():
    from biostation.matcher import _native

    s = prepare(Template(width=W, height=H, minutiae=np.array([(5, 5, 1.0, 1, 0)] * 3, MINUTIA_DTYPE)))
    good = (s.x, s.y, s.t, s.desc, s.cnt, s.w, s.key)
    with pytest.raises(TypeError):
        _native.score_pair(s.x.astype(np.float32), *good[1:], *good)
    with pytest.raises(TypeError):
        _native.score_pair(s.x.astype(">i4"), *good[1:], *good)
    with pytest.raises(ValueError):
        _native.score_pair(s.x[:2].copy(), *good[1:], *good)
    bad_t = s.t.copy()
    bad_t[0] = 300
    with pytest.raises(ValueError):
        _native.score_pair(s.x, s.y, bad_t, *good[3:], *good)
    for bad in (0, 5):  # weights are 1..WEIGHT_STEPS
        bad_w = s.w.copy()
        bad_w[0] = bad
        with pytest.raises(ValueError):
            _native.score_pair(*good[:5], bad_w, s.key, *good)
    g = matcher.pack([s])
    out = np.zeros(1, np.int32)
    args = (*good, g.x, g.y, g.t, g.desc, g.cnt, g.w)
    with pytest.raises(ValueError):
        _native.score_many(*args, np.array([0, 5]), g.keys, np.zeros(1, np.int64), out)
    with pytest.raises(IndexError):
        _native.score_many(*args, g.offsets, g.keys, np.array([1]), out)
    with pytest.raises(ValueError):
        _native.score_many(*args, g.offsets, g.keys, np.zeros(2, np.int64), out)
    with pytest.raises(ValueError):
        _native.screen_many(*args, g.offsets, g.keys, np.zeros(1, np.int64), out, -1)
    with pytest.raises(IndexError):
        _native.screen_many(*args, g.offsets, g.keys, np.array([1]), out, 8)
    with pytest.raises(TypeError):
        _native.screen_many(*args, g.offsets, g.keys, np.zeros(1, np.int64), out)  # no top
    big = np.zeros(256, np.int32)
    with pytest.raises(ValueError):
        _native.score_pair(big, big, big, np.zeros((256, s.desc.shape[1]), np.uint64), big, big + 1, 0, *good)
