"""The first stage (screening codes) and the two-stage search, against the exhaustive oracle;
the synthetic background generator."""

from __future__ import annotations

import math

import numpy as np
import pytest

from biostation import matcher
from biostation.errors import GalleryError
from biostation.identify import LocalBackend, screening, synthetic
from biostation.identify import params as IP
from biostation.identify.engine import check_reference_id
from biostation.templates import Template, load_template

DBS = ("DB1_B", "DB2_B", "DB3_B", "DB4_B")


_FVC: dict[str, Template] = {}
_GALLERY: list[LocalBackend] = []


@pytest.fixture
def fvc(shared) -> dict[str, Template]:
    """SecuGen ISO templates of FVC2002 B by name (read once)."""
    if _FVC:
        return _FVC
    out = _FVC
    for db in DBS:
        for path in sorted((shared / "data" / "fvc2002" / "iso_secugen" / db).glob("*.iso")):
            out[f"{db}/{path.stem}"] = load_template(path)
    return out


@pytest.fixture
def gallery(fvc) -> LocalBackend:
    """Impression 1 of the 40 fingers among 400 synthetic templates (built once)."""
    if _GALLERY:
        return _GALLERY[0]
    g = LocalBackend()
    _GALLERY.append(g)
    gen = synthetic.Generator(5)
    for i in range(400):
        g.insert(f"syn/{i}", gen.template(i))
        if i % 10 == 0:
            name = sorted(n for n in fvc if n.endswith("_1"))[i // 10]
            g.insert(name, fvc[name])
    return g


def moved(t: Template, angle: float, dx: float, dy: float) -> Template:
    m = t.minutiae.copy()
    c, s = math.cos(angle), math.sin(angle)
    x, y = m["x"].astype(float) - t.width / 2, m["y"].astype(float) - t.height / 2
    nx, ny = x * c + y * s + t.width / 2 + dx, -x * s + y * c + t.height / 2 + dy
    keep = (nx >= 0) & (ny >= 0) & (nx < t.width) & (ny < t.height)
    m = m[keep]
    m["x"], m["y"] = np.rint(nx[keep]), np.rint(ny[keep])
    m["angle"] = np.mod(m["angle"].astype(float) + angle, 2 * math.pi).astype(np.float32) % np.float32(2 * math.pi)
    return Template(width=t.width, height=t.height, dpi=t.dpi, minutiae=m)


def test_codes_have_a_fixed_number_of_bits_set_and_ignore_pose(fvc):
    t = fvc["DB1_B/101_1"]
    a = screening.code(matcher.prepare(t))
    assert a.shape == (IP.CODE_BYTES,) and a.dtype == np.uint8
    assert int(np.unpackbits(a).sum()) == IP.CODE_SET_BITS
    b = screening.code(matcher.prepare(moved(t, 0.5, 10, -8)))
    others = [screening.code(matcher.prepare(fvc[f"DB1_B/{f}_1"])) for f in range(102, 111)]

    def ham(u, v):
        return int(np.unpackbits(u ^ v).sum())

    # the same minutiae turned and moved stay far nearer each other than other fingers are
    assert ham(a, b) < min(ham(a, o) for o in others) / 2
    assert not screening.code(matcher.prepare(Template(width=100, height=100))).any()


def test_index_shortlist_is_the_nearest_codes(fvc):
    codes = np.stack([screening.code(matcher.prepare(t)) for t in fvc.values()])
    index = screening.ScreeningIndex(codes)
    probe = codes[17]
    dist = index.distances(probe)
    ref = np.unpackbits(codes ^ probe, axis=1).sum(axis=1)
    assert np.array_equal(dist, ref)
    rows = index.shortlist(probe, 25)
    assert len(rows) == 25 and np.all(np.diff(rows) > 0) and 17 in rows
    assert dist[rows].max() <= np.sort(dist)[24]
    assert np.array_equal(index.shortlist(probe, 10_000), np.arange(len(codes)))
    assert len(screening.ScreeningIndex(np.zeros((0, IP.CODE_BYTES), np.uint8)).shortlist(probe, 5)) == 0


def test_shortlist_size():
    assert screening.shortlist_size(10, 0.01) == 10
    assert screening.shortlist_size(1_000_000, 0.01) == 10_000
    assert screening.shortlist_size(1000, 0.001) == IP.MIN_SHORTLIST
    for bad in (0, -0.1, 1.5):
        with pytest.raises(ValueError):
            screening.shortlist_size(100, bad)


def test_two_stage_equals_the_exhaustive_oracle_on_its_shortlist(gallery, fvc):
    v = gallery.view()
    ids, g = v.reference_ids, v.packed
    n = len(ids)
    for name in ("DB1_B/101_3", "DB2_B/105_4", "DB3_B/108_2", "DB4_B/110_6"):
        sp = matcher.prepare(fvc[name])
        full = gallery.search(sp, n)  # exhaustive, whole ranking
        assert gallery.search(sp, 10, stages=2, penetration=1.0) == full[:10]
        pen = 0.6
        rows = v.screening.shortlist(screening.code(sp), screening.shortlist_size(n, pen))
        keep = {ids[r] for r in rows}
        oracle = [c for c in full if c.reference_id in keep][:10]
        assert gallery.search(sp, 10, stages=2, penetration=pen) == oracle
        scores = matcher.match_many(sp, g)
        for c in oracle:
            assert c.score == scores[ids.index(c.reference_id)]


def test_two_stage_finds_mates_and_follows_mutations(gallery, fvc):
    hits = sum(gallery.search(fvc[f"DB1_B/{f}_2"], 1, stages=2, penetration=0.5)[0].reference_id == f"DB1_B/{f}_1"
               for f in range(101, 111))
    assert hits >= 8
    g = LocalBackend()
    for i, t in enumerate(synthetic.Generator(2).templates(0, 30)):
        g.insert(f"s{i}", t)
    g.insert("x", fvc["DB2_B/103_1"])
    assert g.search(fvc["DB2_B/103_1"], 1, stages=2, penetration=0.01)[0].reference_id == "x"
    g.delete("x")
    assert "x" not in {c.reference_id for c in g.search(fvc["DB2_B/103_1"], 31, stages=2)}
    assert g.memory()["screening_bytes_per_template"] == IP.CODE_BYTES


def test_bad_search_arguments_are_refused(gallery, fvc):
    p = fvc["DB1_B/101_2"]
    for kw in ({"stages": 3}, {"stages": 2, "penetration": 0}, {"stages": 2, "penetration": 2.0},
               {"stages": 2, "screen": "fast"}, {"stages": 1, "screen": None},
               {"stages": 2, "screen": "local", "penetration": 0}, {"stages": 2, "screen": "cascade", "penetration": 0},
               {"stages": 2, "screen": "cascade", "first_penetration": 0},
               {"stages": 2, "screen": "cascade", "first_penetration": 1.5},
               {"stages": 2, "screen": "cascade", "first_penetration": "0.2"},
               {"stages": 2, "screen": "codes", "first_penetration": 0.2},
               {"stages": 2, "screen": "local", "first_penetration": 0.2}):
        with pytest.raises(GalleryError):
            gallery.search(p, 5, **kw)
    for screen in IP.SCREENS:
        assert LocalBackend().search(p, 3, stages=2, screen=screen) == []


def brute_screen(probe, ref, top):
    """The local screen written out pair by pair in Python integers: each probe minutia's best
    local similarity (the matcher's step 1, floor division), the ``top`` best summed."""
    MP = matcher.params
    best = []
    for i in range(probe.n):
        m = 0
        for j in range(ref.n):
            d = (int(probe.t[i]) - int(ref.t[j])) % MP.ANGLE_STEPS
            tot = int(probe.cnt[i]) + int(ref.cnt[j])
            if min(d, MP.ANGLE_STEPS - d) <= MP.PAIR_MAX_DIR and tot >= MP.SIM_MIN_BITS:
                inter = sum(int(a & b).bit_count() for a, b in zip(probe.desc[i], ref.desc[j], strict=True))
                m = max(m, 2 * MP.SIM_SCALE * inter // tot)
        best.append(m)
    return sum(sorted(best, reverse=True)[:top])


@pytest.mark.parametrize("backend", sorted(matcher.backends()))
def test_local_screen_is_its_specification(fvc, backend):
    impl = matcher.backends()[backend]
    names = ["DB1_B/101_1", "DB1_B/101_2", "DB2_B/104_3", "DB3_B/107_1", "DB4_B/110_8"]
    ts = [matcher.prepare(fvc[n]) for n in names] + [matcher.prepare(Template(width=100, height=100))]
    g = matcher.pack(ts)
    for p in ts:
        for top in (0, 1, IP.LOCAL_SCREEN_TOP, 500):
            want = [brute_screen(p, r, top) for r in ts]
            assert impl.screen_many(p, g, None, top).tolist() == want
    with pytest.raises(ValueError):
        impl.screen_many(ts[0], g, None, -1)


def test_local_screen_ranks_the_mate_first_whatever_the_pose(fvc):
    t = fvc["DB2_B/106_1"]
    others = [matcher.prepare(fvc[f"DB2_B/{f}_1"]) for f in range(101, 111) if f != 106]
    g = matcher.pack([matcher.prepare(moved(t, 0.6, 12, -9))] + others)
    s = matcher.screen_many(matcher.prepare(t), g)
    assert s[0] > s[1:].max()
    assert screening.local_shortlist(matcher.prepare(t), g, 1).tolist() == [0]


def test_top_rows_takes_the_highest_ties_to_the_earlier_row():
    s = np.array([3, 1, 3, 2, 3, 0, 2], np.int32)
    assert screening.top_rows(s, 2).tolist() == [0, 2]
    assert screening.top_rows(s, 4).tolist() == [0, 2, 3, 4]
    assert screening.top_rows(s, 5).tolist() == [0, 2, 3, 4, 6]
    assert screening.top_rows(s, 99).tolist() == list(range(7))
    assert screening.top_rows(s, 0).tolist() == []
    rng = np.random.default_rng(4)
    s = rng.integers(0, 30, 5000).astype(np.int32)  # many ties at any cut
    for m in (1, 17, 250, 4999):
        order = np.lexsort((np.arange(len(s)), -s))[:m]
        assert screening.top_rows(s, m).tolist() == sorted(order.tolist())


def test_local_two_stage_equals_the_exhaustive_oracle_on_its_shortlist(gallery, fvc):
    v = gallery.view()
    ids, g = v.reference_ids, v.packed
    n = len(ids)
    hits = 0
    for f in range(101, 111):
        sp = matcher.prepare(fvc[f"DB3_B/{f}_4"])
        full = gallery.search(sp, n)
        assert gallery.search(sp, 10, stages=2, penetration=1.0, screen="local") == full[:10]
        pen = 0.55  # above the 200-reference floor of a 440-reference gallery
        rows = screening.local_shortlist(sp, g, screening.shortlist_size(n, pen))
        keep = {ids[r] for r in rows}
        oracle = [c for c in full if c.reference_id in keep][:10]
        assert gallery.search(sp, 10, stages=2, penetration=pen, screen="local") == oracle
        hits += gallery.search(sp, 1, stages=2, screen="local")[0].reference_id == f"DB3_B/{f}_1"
    assert hits >= 8  # at the default penetration (the 200-reference floor here)


def test_cascade_is_the_local_screen_on_the_codes_shortlist(gallery, fvc):
    """The cascade's shortlist: the codes' shortlist at ``first_penetration``, then the local
    screen's best of those; the matcher re-ranks it as it would the whole gallery."""
    v = gallery.view()
    ids, g, index = v.reference_ids, v.packed, v.screening
    n = len(ids)
    hits = 0
    for f in range(101, 111):
        sp = matcher.prepare(fvc[f"DB3_B/{f}_4"])
        full = gallery.search(sp, n)
        # both screens keep everything: the exhaustive answers
        assert gallery.search(sp, 10, stages=2, screen="cascade", penetration=1.0, first_penetration=1.0) == full[:10]
        first = index.shortlist(screening.code(sp), screening.shortlist_size(n, 0.7))
        local = matcher.screen_many(sp, g, first, top=IP.LOCAL_SCREEN_TOP)
        m = screening.shortlist_size(n, 0.5)
        order = np.lexsort((first, -local.astype(np.int64)))[:m]  # best local screen, ties earlier row
        keep = {ids[r] for r in first[order]}
        assert screening.cascade_shortlist(sp, g, index, len(first), m).tolist() == sorted(first[order].tolist())
        oracle = [c for c in full if c.reference_id in keep][:10]
        assert gallery.search(sp, 10, stages=2, screen="cascade", penetration=0.5, first_penetration=0.7) == oracle
        # a local shortlist as long as the codes' one: the codes' shortlist itself
        codes_only = {ids[r] for r in first}
        assert gallery.search(sp, 10, stages=2, screen="cascade", penetration=0.7, first_penetration=0.7) == \
            [c for c in full if c.reference_id in codes_only][:10]
        hits += gallery.search(sp, 1, stages=2, screen="cascade")[0].reference_id == f"DB3_B/{f}_1"
    assert hits >= 8  # at the default penetrations (the 200-reference floor here)


def test_cascade_tally_is_a_search_written_out(gallery, fvc):
    """The benchmark's cascade curve counts, for each codes penetration, exactly the searches the
    cascade (at that penetration, the local screen keeping ``local_penetration``) answers with
    the mate first."""
    from biostation.identify import benchmark

    v = gallery.view()
    ids, g, index = v.reference_ids, v.packed, v.screening
    n = len(ids)
    where = {r: i for i, r in enumerate(ids)}
    tally = benchmark.CascadeTally(n)
    probes = [(matcher.prepare(fvc[f"{db}/{f}_{k}"]), f"{db}/{f}_1") for db in ("DB1_B", "DB3_B")
              for f in range(101, 111) for k in (3, 7)]
    local_pen = 0.46  # 203 of 440: above the 200-reference floor, below the whole gallery
    for sp, mate in probes:
        scores = matcher.match_many(sp, g)
        tally.add(scores, index.distances(screening.code(sp)), benchmark.local_screen(sp, g), where[mate])
    rep = tally.report(local_pen)
    assert rep["local_shortlist"] == screening.shortlist_size(n, local_pen) == 203
    for point in rep["curve"]:
        got = sum(gallery.search(sp, 1, stages=2, screen="cascade", penetration=local_pen,
                                 first_penetration=point["penetration"])[0].reference_id == mate for sp, mate in probes)
        assert round(point["rank1_hit_rate"] * len(probes)) == got, point
    assert rep["exhaustive_rank1_hits"] == sum(gallery.search(sp, 1)[0].reference_id == mate for sp, mate in probes)


def test_reference_id_rule_is_shared():
    from biostation.identify import ray_backend

    assert ray_backend.check_reference_id is check_reference_id
    for bad in ("", 5, "x" * 1025, "\ud800"):
        with pytest.raises(GalleryError):
            LocalBackend().insert(bad, Template(width=10, height=10))


def test_synthetic_templates_are_deterministic_and_valid():
    a, b = synthetic.Generator(9), synthetic.Generator(9)
    for i in (0, 1, 777):
        ta, tb = a.template(i), b.template(i)
        assert np.array_equal(ta.minutiae, tb.minutiae) and (ta.width, ta.height) == (tb.width, tb.height)
        ta.validate()
        m = ta.minutiae
        assert IP.SYN_MIN_COUNT <= len(m) <= IP.SYN_MAX_COUNT
        assert m["x"].max() < ta.width and m["y"].max() < ta.height
        d = np.hypot(m["x"][:, None].astype(float) - m["x"][None, :], m["y"][:, None].astype(float) - m["y"][None, :])
        np.fill_diagonal(d, 1e9)
        assert d.min() >= IP.SYN_MIN_SPACING - 1.5  # rounding to whole pixels
    assert not np.array_equal(a.template(0).minutiae, synthetic.Generator(10).template(0).minutiae)


def test_synthetic_statistics_are_near_real_ones(fvc):
    syn = synthetic.Generator(3).templates(0, 320)
    cmp = synthetic.compare(list(fvc.values()), syn)
    assert set(cmp) == {"count", "x", "y", "direction", "pair_distance"}
    # the spatial and pair-distance distributions of real prints, within a KS distance of 0.25
    for key in ("x", "y", "pair_distance", "direction"):
        assert cmp[key]["ks"] < 0.25, (key, cmp[key])
    assert synthetic.ks_distance(np.arange(10.0), np.arange(10.0)) == 0.0
    assert synthetic.ks_distance(np.zeros(3), np.ones(3)) == 1.0


def test_synthetic_quality_and_codes_follow_real_ones(fvc):
    """The background's minutia quality (the matcher weighs unpaired minutiae by it) is reported,
    spread like the fitted one, and its screening codes' distances to real probes (here
    SecuGen's templates of FVC2002, another extractor than the one the generator was fitted to)
    follow the real strangers'."""
    from biostation.identify import benchmark

    syn = synthetic.Generator(3).templates(0, 160)
    q = np.concatenate([t.minutiae["quality"] for t in syn]).astype(float)
    assert q.min() >= 1 and q.max() <= 100
    assert abs(q.mean() - IP.SYN_QUALITY_MEAN) < 3 and abs(q.std() - IP.SYN_QUALITY_STD) < 3
    mated = {}
    for name, t in fvc.items():
        mated.setdefault(name.rsplit("_", 1)[0], []).append(t)
    mated = dict(sorted(mated.items())[:20])
    fingers = list(mated)
    probes = [matcher.prepare(mated[f][1]) for f in fingers]
    cd = benchmark.code_distances(mated, syn, probes, [f"ref/{f}" for f in fingers])
    n = sum(len(v) for v in mated.values())
    assert len(cd["synthetic"]) == n * len(syn) and len(cd["real"]) == n * (n - 8)  # 8 impressions a finger
    assert 0 < cd["real"].mean() < IP.CODE_BITS and 0 < cd["synthetic"].mean() < IP.CODE_BITS
    assert synthetic.ks_distance(cd["real"].astype(float), cd["synthetic"].astype(float)) < 0.3
    # the mates' first-stage ranks are shares of each background, and most mates rank near the top
    for key in ("mate_rank_real", "mate_rank_synthetic"):
        r = cd[key]
        assert len(r) == len(fingers) and np.all((r >= 0) & (r <= 1)) and np.median(r) < 0.2


def test_tiled_index_repeats_the_codes(fvc):
    from biostation.identify import benchmark

    codes = np.stack([screening.code(matcher.prepare(t)) for t in list(fvc.values())[:30]])
    index = benchmark.tiled_index(codes, 4)
    assert len(index) == 120 and index.nbytes == 120 * IP.CODE_BYTES
    d = index.distances(codes[7])
    assert np.array_equal(d, np.tile(screening.ScreeningIndex(codes).distances(codes[7]), 4))
    rows = index.shortlist(codes[7], 4)  # the four copies of row 7 (distance 0)
    assert np.array_equal(rows, 7 + 30 * np.arange(4))
    index.add(np.zeros((0, IP.CODE_BYTES), np.uint8))
    assert len(index) == 120


@pytest.mark.slow
def test_bench_identify_command_reports_both_searches(shared, tmp_path):
    import json

    from typer.testing import CliRunner

    from biostation.cli import app

    out = tmp_path / "id.json"
    r = CliRunner().invoke(app, ["bench", "identify", "--gallery", "60", "--probes", "12", "--time-probes", "3",
                                 "--tile-to", "150", "--accuracy-at", "150", "--workers", "0",
                                 "--fvc", str(shared / "data" / "fvc2002" / "DB1_B"),
                                 "--json", str(out), "--plot", str(tmp_path / "id.png")])
    assert r.exit_code == 0, r.output
    rep = json.loads(out.read_text())
    size = rep["sizes"]["60"]
    assert size["accuracy"]["probes"] == 12 and size["memory"]["templates"] == 60
    local = size["local"]
    assert {"searches_per_s", "rank1_hit_rate", "p50_ms", "p99_ms"} <= set(local["stages2"])
    assert local["speedup_over_exhaustive"] > 0
    curve = size["accuracy"]["curve"]
    assert curve[-1]["penetration"] == 1.0 and curve[-1]["mate_in_shortlist"] == 1.0
    # at the operating point the two-stage search loses no rank-1 hit of the exhaustive one
    op = [c for c in curve if c["penetration"] == size["accuracy"]["operating_penetration"]][0]
    assert op["rank1_hit_rate"] >= size["accuracy"]["exhaustive_rank1_hit_rate"]
    assert (tmp_path / "id.png").stat().st_size > 10_000
    streamed = rep["streamed"]["150"]  # a gallery of 150 scored a chunk at a time, never held
    assert streamed["gallery"] == 150 and streamed["probes"] == 12 and len(streamed["curve"]) == len(curve)
    (tiled,) = rep["tiled"]  # 60 templates copied three times over, timed at the streamed 150's operating point
    assert tiled["penetration"] == streamed["operating_penetration"]
    assert tiled["templates"] == 180 and tiled["tile"] == 3 and tiled["screening_bytes"] == 180 * IP.CODE_BYTES
    assert tiled["exhaustive"]["searches"] == 3 and tiled["speedup_over_exhaustive"] > 0
    # 180 templates are under the shortlist floor: the codes pass them all on without a scan, and
    # no scan rate is made up from that time
    assert tiled["shortlist"] == tiled["templates"]
    assert tiled["first_stage_templates_per_s"] is None and "first stage: none" in r.output
    local_acc = size["accuracy"]["local_screen"]  # the local screen, from the same exhaustive pass
    assert local_acc["exhaustive_rank1_hits"] == size["accuracy"]["exhaustive_rank1_hits"]
    op = [c for c in local_acc["curve"] if c["penetration"] == local_acc["operating_penetration"]][0]
    assert op["rank1_hit_rate"] >= local_acc["exhaustive_rank1_hit_rate"]
    assert local["stages2_local_screen"]["searches"] == 3 and local["speedup_local_screen_over_exhaustive"] > 0
    assert "local_screen" in streamed
    assert tiled["local_screen"]["penetration"] == streamed["local_screen"]["operating_penetration"]
    assert tiled["local_screen"]["two_stage"]["searches"] == 3
    casc = size["accuracy"]["cascade"]  # the cascade, from the same pass: its local screen keeps the local op
    assert casc["local_penetration"] == local_acc["operating_penetration"]
    op = [c for c in casc["curve"] if c["penetration"] == casc["operating_penetration"]][0]
    assert op["rank1_hit_rate"] >= casc["exhaustive_rank1_hit_rate"] == local_acc["exhaustive_rank1_hit_rate"]
    assert local["stages2_cascade"]["searches"] == 3 and local["speedup_cascade_over_exhaustive"] > 0
    assert tiled["cascade"]["penetration"] == streamed["cascade"]["operating_penetration"]
    assert tiled["cascade"]["two_stage"]["searches"] == 3 and "cascade" in r.output
    cd = rep["code_distances"]
    assert 0 <= cd["ks"] <= 1 and 0 <= cd["mate_rank_real_background"]["within_1pct"] <= 1
    r = CliRunner().invoke(app, ["bench", "identify", "--gallery", "5", "--fvc", str(shared / "data" / "fvc2002" / "DB1_B")])
    assert r.exit_code != 0  # fewer references than fingers


def test_checkpoint_keeps_the_codes_and_a_reload_searches_alike(fvc, tmp_path):
    g = LocalBackend(tmp_path / "g")
    for i, t in enumerate(synthetic.Generator(6).templates(0, 40)):
        g.insert(f"s{i}", t)
    g.insert("x", fvc["DB3_B/104_1"])
    g.checkpoint()
    g.insert("y", fvc["DB3_B/105_1"])  # after the checkpoint: replayed from the journal
    h = LocalBackend(tmp_path / "g")
    assert h.view().codes.tobytes() == g.view().codes.tobytes()
    assert h.view().reference_ids == g.view().reference_ids
    p = fvc["DB3_B/104_3"]
    assert h.search(p, 5, stages=2, penetration=0.1) == g.search(p, 5, stages=2, penetration=0.1)


def test_streamed_accuracy_is_that_of_the_gallery_held_whole(fvc):
    """A gallery too large to hold is generated and scored a chunk at a time, in worker processes;
    what it reports (rank-1, score gaps, the whole penetration curve) must be what the same
    gallery built and held whole reports, whatever the chunking."""
    from biostation.identify import benchmark

    mated = {}
    for name, t in fvc.items():
        if name.startswith(("DB1_B", "DB2_B")):
            mated.setdefault(name.rsplit("_", 1)[0], []).append(t)
    whole = benchmark.accuracy(benchmark.build(mated, 500, 40, seed=3))
    assert whole["gallery"] == 500 and whole["probes"] == 40
    for workers, chunk in ((0, 170), (2, 128)):  # chunks that do not divide the gallery
        streamed = benchmark.accuracy_streamed(mated, 500, 40, seed=3, workers=workers, chunk=chunk)
        assert streamed.pop("streamed")["workers"] == workers
        assert streamed == whole
    with pytest.raises(ValueError):
        benchmark.accuracy_streamed(mated, 10, 5)
