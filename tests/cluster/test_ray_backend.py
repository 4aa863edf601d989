"""The Ray backend answers exactly what the local backend (the oracle) answers: after inserts,
deletes, a shard actor killed and restarted, and the backend object itself reopened."""

from __future__ import annotations

import numpy as np
import pytest
from tests.cluster.conftest import kill_for_good

from biostation.config import Settings
from biostation.errors import (
    BiostationError,
    ConfigError,
    GalleryError,
    GalleryUnavailableError,
    MatcherError,
)
from biostation.identify import Backend, LocalBackend
from biostation.identify.ray_backend import RayBackend, shard_of
from biostation.templates import MINUTIA_DTYPE, Template, load_template

pytestmark = pytest.mark.cluster

DBS = ("DB1_B", "DB2_B", "DB3_B", "DB4_B")
_CACHE: dict[str, Template] = {}
#: shards reserve no CPU here, so that any number of them fits the 2-CPU test cluster
SETTINGS = Settings(ray_shard_cpus=0, ray_timeout_s=60)


@pytest.fixture
def fvc(shared) -> dict[str, Template]:
    """SecuGen ISO templates of FVC2002 B by name, ``"DB1_B/101_1"`` (320 views, read once)."""
    if not _CACHE:
        for db in DBS:
            for path in sorted((shared / "data" / "fvc2002" / "iso_secugen" / db).glob("*.iso")):
                _CACHE[f"{db}/{path.stem}"] = load_template(path)
    return _CACHE


def enrolled(fvc, impressions=(1, 2)) -> list[tuple[str, Template]]:
    return [(name, t) for name, t in fvc.items() if int(name.rsplit("_", 1)[1]) in impressions]


def probes(fvc) -> list[Template]:
    """A spread of genuine probes (impressions not enrolled), plus an empty template: every score 0,
    so its answer is the whole enrolment order."""
    out = [t for name, t in fvc.items() if name.endswith(("_3", "_6"))][::4]
    return out + [Template(width=300, height=300)]


def assert_same(ray_g: RayBackend, oracle: LocalBackend, fvc, ks=(1, 5, 1000)) -> None:
    assert ray_g.count() == oracle.count()
    for p in probes(fvc):
        for k in ks:
            assert ray_g.search(p, k) == oracle.search(p, k)


def both(ray_g, oracle, op, *args):
    """Apply one operation to both galleries; both must fail alike."""
    results = []
    for g in (ray_g, oracle):
        try:
            getattr(g, op)(*args)
            results.append(None)
        except (BiostationError, ValueError) as exc:  # compared below
            results.append(type(exc))
    assert results[0] == results[1], (op, args[:1], results)


def test_same_candidates_and_scores_as_local(ray_cluster, fvc):
    items = enrolled(fvc)
    oracle = LocalBackend()
    with RayBackend(shards=3, settings=SETTINGS) as g:
        assert isinstance(g, Backend)
        # bulk enrolment for most, one by one for the rest
        assert g.insert_many(items[:100]) == {}
        for rid, t in items[100:]:
            g.insert(rid, t)
        for rid, t in items:
            oracle.insert(rid, t)
        # identical templates under new ids on (likely) other shards: ties must keep enrolment order
        twin = items[7][1]
        for j in range(6):
            both(g, oracle, "insert", f"twin-{j}", twin)
        assert len({shard_of(f"twin-{j}", 3) for j in range(6)}) > 1
        assert min(sum(shard_of(r, 3) == s for r, _ in items) for s in range(3)) > 20
        assert_same(g, oracle, fvc)
        res = g.search(twin, 10)
        assert [c.reference_id for c in res[:7]] == [items[7][0]] + [f"twin-{j}" for j in range(6)]
        mem = g.memory()
        assert mem["templates"] == oracle.count() and mem["bytes"] == pytest.approx(oracle.memory()["bytes"], rel=0.1)


def test_insert_delete_and_errors_match_local(ray_cluster, fvc):
    items = enrolled(fvc)
    oracle = LocalBackend()
    with RayBackend(shards=2, settings=SETTINGS) as g:
        for rid, t in items[:60]:
            both(g, oracle, "insert", rid, t)
        for rid, _ in items[:60:3]:
            both(g, oracle, "delete", rid)
        # re-enrolled after its deletion: it now ranks after every earlier enrolment
        both(g, oracle, "insert", items[0][0], items[0][1])
        both(g, oracle, "insert", items[1][0], items[1][1])  # duplicate
        both(g, oracle, "delete", "no-such-reference")
        both(g, oracle, "delete", items[3][0])
        both(g, oracle, "delete", items[3][0])  # twice: unknown the second time
        with pytest.raises(GalleryError):
            g.insert(items[1][0], items[1][1])
        with pytest.raises(GalleryError):
            g.delete("no-such-reference")
        for bad_id in ("", "x" * 1025, "\ud800", None, 7):
            with pytest.raises(GalleryError):
                g.insert(bad_id, items[2][1])
            with pytest.raises(GalleryError):
                g.delete(bad_id)
        assert set(g.insert_many([("", items[2][1]), ("x" * 2000, items[2][1])])) == {"", "x" * 2000}
        with pytest.raises(GalleryError):
            g.search(items[2][1], 0)
        with pytest.raises(GalleryError):
            g.search(items[2][1], "3")
        assert g.search(items[2][1], np.int64(2)) == oracle.search(items[2][1], 2)
        bad = Template(width=5, height=5, minutiae=np.array([(9, 9, 0.0, 1, 0)], MINUTIA_DTYPE))
        with pytest.raises(MatcherError):
            g.insert("bad", bad)
        with pytest.raises(MatcherError):
            g.search(bad)
        assert "bad" not in g and items[1][0] in g and items[3][0] not in g
        failed = g.insert_many([(items[1][0], items[1][1]), ("bad", bad), ("fresh", items[70][1])])
        oracle.insert("fresh", items[70][1])
        assert set(failed) == {items[1][0], "bad"}
        assert isinstance(failed[items[1][0]], GalleryError) and isinstance(failed["bad"], MatcherError)
        assert_same(g, oracle, fvc)
        for rid, _ in items[:60]:
            if rid in oracle:
                both(g, oracle, "delete", rid)
        g.delete("fresh")
        oracle.delete("fresh")
        assert g.count() == 0 and g.search(items[0][1]) == []


def test_killed_shard_reloads_its_slice(ray_cluster, fvc, tmp_path):
    items = enrolled(fvc)
    oracle = LocalBackend()
    with RayBackend(tmp_path / "gal", shards=2, settings=SETTINGS) as g:
        g.insert_many(items[:50])
        g.checkpoint()  # part of the slice from the packed cache, the rest from the journal tail
        for rid, t in items[50:]:
            g.insert(rid, t)
        for rid, t in items:
            oracle.insert(rid, t)
        for rid, _ in items[::5]:
            both(g, oracle, "delete", rid)
        before = g.shard_info()
        ray_cluster.kill(g.shard_actors()[0], no_restart=False)  # Ray restarts it (max_restarts)
        assert_same(g, oracle, fvc)  # calls wait for the restart, then see the reloaded slice
        after = g.shard_info()
        assert after[0]["started"] > before[0]["started"]
        assert after[1]["started"] == before[1]["started"]
        # the restarted shard takes mutations again, in order
        both(g, oracle, "insert", items[0][0], items[0][1])
        both(g, oracle, "delete", items[1][0])
        assert_same(g, oracle, fvc, ks=(5,))
        # a shard killed for good: a typed error, not a hang
        kill_for_good(g.shard_actors()[1])
        with pytest.raises(GalleryUnavailableError):
            g.search(items[0][1])


def test_reopened_backend_reloads_and_keeps_enrolment_order(ray_cluster, fvc, tmp_path):
    items = enrolled(fvc)
    oracle = LocalBackend()
    path = tmp_path / "gal"
    with RayBackend(path, shards=2, settings=SETTINGS) as g:
        g.insert_many(items[:80])
        for rid, _ in items[:10]:
            g.delete(rid)
    for rid, t in items[:80]:
        oracle.insert(rid, t)
    for rid, _ in items[:10]:
        oracle.delete(rid)
    with RayBackend(path, shards=2, settings=SETTINGS) as g:
        assert_same(g, oracle, fvc)
        # enrolled after the reopening: after every earlier enrolment, whatever the shard
        for rid, t in items[:10] + [("twin", items[20][1])]:
            both(g, oracle, "insert", rid, t)
        assert_same(g, oracle, fvc)
        assert g.load_shard(path) == oracle.count()  # reload in place from disk
        assert_same(g, oracle, fvc, ks=(5,))
    with pytest.raises(ConfigError):
        RayBackend(path, shards=3, settings=SETTINGS)
    with RayBackend(path, shards=2, settings=SETTINGS) as g:
        assert_same(g, oracle, fvc, ks=(5,))
        # two objects on one directory share its actors instead of writing one journal twice
        with RayBackend(path, shards=2, settings=SETTINGS) as g2:
            assert [i["pid"] for i in g2.shard_info()] == [i["pid"] for i in g.shard_info()]
            g2.insert("via-g2", items[30][1])
            oracle.insert("via-g2", items[30][1])
        # closing the second left the first one's actors running
        assert_same(g, oracle, fvc, ks=(5,))


def test_unplaceable_shards_time_out_with_a_typed_error(ray_cluster, tmp_path):
    s = Settings(ray_shard_cpus=64, ray_timeout_s=2, ray_start_timeout_s=2)
    with pytest.raises(GalleryUnavailableError):
        RayBackend(tmp_path / "gal", shards=1, settings=s)


def test_concurrent_searches_and_inserts(ray_cluster, fvc, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    items = enrolled(fvc)
    oracle = LocalBackend()
    s = Settings(ray_shard_cpus=0, ray_shard_threads=2, ray_timeout_s=60)
    qs = probes(fvc)
    with RayBackend(tmp_path / "gal", shards=2, settings=s) as g:
        g.insert_many(items[:40])

        def searcher(j: int) -> int:
            n = 0
            for p in qs[j::2] * 2:
                res = g.search(p, 5)
                assert len(res) == 5 and [c.score for c in res] == sorted((c.score for c in res), reverse=True)
                n += 1
            return n

        with ThreadPoolExecutor(3) as pool:
            running = [pool.submit(searcher, j) for j in (0, 1)]
            for rid, t in items[40:]:
                g.insert(rid, t)
            assert sum(f.result() for f in running) == 2 * len(qs)
        for rid, t in items:
            oracle.insert(rid, t)
        assert_same(g, oracle, fvc, ks=(5,))


def test_shards_with_other_matcher_parameters_are_refused(ray_cluster, monkeypatch):
    import biostation.identify.ray_backend as rb

    # this process prepares probes under "other" parameters than the shards score with
    monkeypatch.setattr(rb, "params_digest", lambda: "0" * 16)
    with pytest.raises(ConfigError):
        RayBackend(shards=1, settings=SETTINGS)


def test_persons_shard_and_answer_as_one_person_gallery(ray_cluster, fvc, tmp_path):
    """A ten-print gallery on Ray: each shard a PersonGallery slice, the fused search in each, the
    merge exactly what one PersonGallery answers; a killed shard reloads its persons."""
    import dataclasses

    from biostation.identify import synthetic
    from biostation.identify.persons import PersonCandidate, PersonGallery

    def person(db, group, k):
        return {p: fvc[f"{db}/{100 + 3 * group + p}_{k}"] for p in (1, 2, 3)}

    people = [(f"{db}/g{g}/{k}", person(db, g, k)) for db in DBS for g in range(3) for k in (1, 2)]
    gen = synthetic.Generator(4)
    people += [(f"syn/{i}", {p: gen.template(3 * i + p) for p in (1, 2, 3)}) for i in range(20)]
    people.append(("twin", people[5][1]))  # the same fingers again: ties keep enrolment order
    people.append(("one-finger", {2: fvc["DB3_B/105_1"]}))
    oracle = PersonGallery()
    path = tmp_path / "persons"
    with RayBackend(path, shards=3, settings=SETTINGS, unit="person") as g:
        assert g.insert_many(people[:30]) == {}
        for rid, views in people[30:]:
            g.insert(rid, views)
        for rid, views in people:
            oracle.insert(rid, views)
        probes = [person(db, grp, 4) for db in DBS for grp in range(3)][::2]
        probes.append({2: fvc["DB3_B/105_5"]})
        for p in probes:
            for k in (1, 5, 100):
                got = g.search(p, k)
                assert got == oracle.search(p, k) and all(isinstance(c, PersonCandidate) for c in got)
        assert g.search(person("DB2_B", 1, 5), 1, stages=2, penetration=0.3)[0].reference_id.startswith("DB2_B/g1/")
        with pytest.raises(GalleryError, match="screen"):  # refused here, before any shard is asked
            g.search(person("DB2_B", 1, 5), 1, stages=2, screen="local")
        assert sorted(g.fingers("one-finger")) == [2] and g.memory()["templates"] == oracle.memory()["templates"]
        with pytest.raises(GalleryError):
            g.insert("bad", [dataclasses.replace(fvc["DB1_B/101_1"], finger_position=0)])
        assert set(g.insert_many([("bad", {12: fvc["DB1_B/101_1"]}), ("twin", people[5][1])])) == {"bad", "twin"}
        g.delete("twin")
        oracle.delete("twin")
        from biostation.station.routes_abis import AbisRequest, AbisService

        abis = AbisService(g)  # ABIS over Ray persons: a referenceId is a person there too
        out = abis.serve("identify", AbisRequest(requestId="q", referenceId="DB4_B/g2/1"))
        assert abis.persons and out["candidateList"]["candidates"][0]["referenceId"] == "DB4_B/g2/2"
        assert out["candidateList"]["candidates"][0]["analytics"]["fingers"] == 3
        ray_cluster.kill(g.shard_actors()[1], no_restart=False)
        for p in probes:
            assert g.search(p, 10) == oracle.search(p, 10)
    with pytest.raises(ConfigError, match="persons"):
        RayBackend(path, shards=3, settings=SETTINGS)  # a person gallery is not opened as fingers
    with pytest.raises(ConfigError):
        RayBackend(shards=1, settings=SETTINGS, unit="hand")


def test_person_benchmark_times_ray_beside_local_with_identical_answers(ray_cluster, fvc):
    from biostation.identify import person_benchmark as PB
    from biostation.identify import persons

    mated: dict[str, list[Template]] = {}
    for name, t in fvc.items():
        mated.setdefault("fvc2002/" + name.rsplit("_", 1)[0], []).append(t)
    bench = PB.build(mated, 5, 300, 12, seed=3)
    view = bench.gallery.view()
    local = [persons.search(view, p, 10) for p in bench.probes]
    with RayBackend(shards=2, settings=SETTINGS, unit="person") as g:
        r = PB.time_ray(g, bench, bench.probes, bench.mates, 0.2, local)
    assert r["shards"] == 2 and r["stages1"]["identical_to_local"] is True
    assert r["stages1"]["searches"] == 12 and r["stages2"]["rank1_hit_rate"] > 0.5 and r["speedup_over_exhaustive"] > 0
