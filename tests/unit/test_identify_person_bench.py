"""The ten-print benchmark: persons of F fingers, streamed vs held, tiled vs materialized copies,
F = 1 against the finger benchmark, fingers enrolled twice under two names."""

from __future__ import annotations

import json

import numpy as np
import pytest

from biostation.identify import benchmark, persons, synthetic
from biostation.identify import person_benchmark as PB
from biostation.identify.persons import PersonGallery
from biostation.templates import Template, load_template

_MATED: dict[str, list[Template]] = {}


@pytest.fixture
def mated(shared) -> dict[str, list[Template]]:
    """SecuGen ISO templates of FVC2002 B, by finger key ``fvc2002/DBn_B/1ff`` (read once)."""
    if not _MATED:
        for db in ("DB1_B", "DB2_B", "DB3_B", "DB4_B"):
            for path in sorted((shared / "data" / "fvc2002" / "iso_secugen" / db).glob("*.iso")):
                finger = path.stem.split("_")[0]
                _MATED.setdefault(f"fvc2002/{db}/{finger}", []).append(load_template(path))
    return _MATED


def test_persons_are_a_databases_fingers_f_at_a_time(mated):
    ten = PB.chimeric_persons(mated, 10)
    assert [p for p, _ in ten] == [f"fvc2002/DB{i}_B/0" for i in range(1, 5)]
    assert ten[1][1] == [f"fvc2002/DB2_B/{f}" for f in range(101, 111)]
    assert len(PB.chimeric_persons(mated, 3)) == 4 * 3  # a remainder of one finger per database is left out
    one = PB.chimeric_persons(mated, 1)
    assert [p for p, _ in one] == sorted(mated)
    probes = PB.choose_probes(mated, ten, 6)
    assert [p for p, _ in probes] == ["fvc2002/DB1_B/0", "fvc2002/DB2_B/0", "fvc2002/DB3_B/0", "fvc2002/DB4_B/0",
                                      "fvc2002/DB1_B/0", "fvc2002/DB2_B/0"]
    assert sorted(probes[0][1]) == list(range(1, 11)) and probes[0][1][4] is mated["fvc2002/DB1_B/104"][1]
    assert probes[4][1][1] is mated["fvc2002/DB1_B/101"][2]  # the second round: the third impressions
    with pytest.raises(ValueError):
        PB.chimeric_persons(mated, 11)


def test_one_finger_persons_report_what_the_finger_benchmark_reports(mated):
    """Persons of one finger are the finger benchmark: the same gallery, probes and figures."""
    sub = {k: v for k, v in mated.items() if "DB1_B" in k or "DB3_B" in k}
    person = PB.accuracy(PB.build(sub, 1, 400, 50, seed=4))
    finger = benchmark.accuracy(benchmark.build(sub, 400, 50, seed=4))
    assert (person.pop("persons"), person.pop("templates"), person.pop("fingers"), person.pop("mated_persons")) == \
        (400, 400, 1, 20)
    # Person galleries search by fused codes only (they refuse the local screen and the cascade), so
    # the finger benchmark's tallies of those have no counterpart; every other figure must agree.
    others = ("local_screen", "cascade")
    assert all(k in finger and k not in person for k in others)
    assert person == {k: v for k, v in finger.items() if k not in ("gallery", *others)}


def test_streamed_person_accuracy_is_that_of_the_gallery_held_whole(mated):
    for fingers, templates in ((10, 1000), (2, 300)):
        whole = PB.accuracy(PB.build(mated, fingers, templates, 30, seed=2))
        assert whole["persons"] == templates // fingers and whole["templates"] == templates
        assert whole["fingers"] == fingers and whole["probes"] == min(30, 7 * 40 // fingers)
        for workers, chunk in ((0, 37), (2, 45)):  # chunks that do not divide the gallery
            streamed = PB.accuracy_streamed(mated, fingers, templates, 30, seed=2, workers=workers, chunk=chunk)
            assert streamed.pop("streamed")["workers"] == workers
            assert streamed == whole
    with pytest.raises(ValueError):
        PB.accuracy_streamed(mated, 10, 30, 5)


def test_every_impression_enrolled_in_turn_is_a_gallery_built_with_it(mated):
    """Rotating the enrolled impression: each turn reports what a held gallery with that impression
    enrolled (and every other one searched) reports, and the pool adds the turns up."""
    fingers, templates = 10, 600
    rot = PB.accuracy_rotated(mated, fingers, templates, seed=3, workers=0, chunk=23)
    turns = rot.pop("by_reference_impression")
    assert [t["reference_impression"] for t in turns] == list(range(1, 9))
    assert rot["probes"] == 4 * 8 * 7 and all(t["probes"] == 4 * 7 for t in turns)
    assert rot["exhaustive_rank1_hits"] == sum(t["exhaustive_rank1_hits"] for t in turns)
    assert rot["mate_rank_worst"] == max(t["mate_rank_worst"] for t in turns)
    for r in (0, 5):
        # impression r moved first: build() enrols it, choose_probes() searches the seven others
        moved = {f: [ts[r], *ts[:r], *ts[r + 1:]] for f, ts in mated.items()}
        held = PB.accuracy(PB.build(moved, fingers, templates, 4 * 7, seed=3))
        assert {k: v for k, v in turns[r].items() if k != "reference_impression"} == held
    assert rot.pop("streamed")["workers"] == 0
    with pytest.raises(ValueError):
        PB.accuracy_rotated({f: ts[:1] for f, ts in mated.items()}, fingers, templates)


def test_a_tiled_view_searches_as_a_gallery_of_materialized_copies_would(mated):
    g = PersonGallery()
    copies = PersonGallery()
    gen = synthetic.Generator(8)
    people = [(f"syn/{i}", PB.synthetic_person(gen, i, 3)) for i in range(12)]
    people.append(("real", {p: mated[f"fvc2002/DB1_B/10{p}"][0] for p in (1, 2, 3)}))
    people.append(("part", {2: mated["fvc2002/DB2_B/101"][0]}))
    for rid, fingers in people:
        g.insert(rid, fingers)
    for c in range(3):
        for rid, fingers in people:
            copies.insert(rid if c == 0 else f"{rid}#{c}", fingers)
    tiled = PB.tiled_view(g.view(), 3)
    assert tiled.persons == 42 and list(tiled.reference_ids) == copies.view().reference_ids
    probe = persons.probe_views({p: mated[f"fvc2002/DB1_B/10{p}"][3] for p in (1, 2, 3)})
    assert np.array_equal(persons.fused_distances(tiled, probe), persons.fused_distances(copies.view(), probe))
    for stages, pen in ((1, None), (2, 0.3), (2, 0.05)):
        assert persons.search(tiled, probe, 20, stages=stages, penetration=pen) == \
            copies.search(probe, 20, stages=stages, penetration=pen)
    t = PB.time_view(tiled, [probe] * 2, None, 0.3)
    assert t["templates"] == 3 * 40 and t["persons"] == 42 and "rank1_hit_rate" not in t["two_stage"]


def test_databases_of_the_same_fingers_count_once():
    t = Template(width=10, height=10)
    mated = {f"fvc2000/{db}/{f}": [t] for db in ("DB1_B", "DB2_B", "DB3_B") for f in (101, 102)}
    kept, dropped = benchmark.distinct_fingers(mated)
    assert dropped == ["fvc2000/DB2_B"] and sorted({k.rsplit("/", 1)[0] for k in kept}) == ["fvc2000/DB1_B",
                                                                                           "fvc2000/DB3_B"]
    alone = {k: v for k, v in mated.items() if "DB1_B" not in k}  # without DB1_B, DB2_B's fingers are new
    assert benchmark.distinct_fingers(alone) == (alone, [])


@pytest.mark.slow
def test_bench_identify_persons_command(shared, tmp_path):
    from typer.testing import CliRunner

    from biostation.cli import app

    out = tmp_path / "p.json"
    r = CliRunner().invoke(app, ["bench", "identify-persons", "--fingers", "5", "--fingers", "1", "--gallery", "60",
                                 "--accuracy-at", "120", "--rotated-at", "100", "--tile-to", "200", "--workers", "0",
                                 "--probes", "14",
                                 "--time-probes", "3", "--fvc", str(shared / "data" / "fvc2002" / "DB1_B"),
                                 "--json", str(out), "--plot", str(tmp_path / "p.png")])
    assert r.exit_code == 0, r.output
    rep = json.loads(out.read_text())
    five = rep["by_fingers"]["5"]
    acc = five["held"]["accuracy"]
    assert acc["persons"] == 12 and acc["templates"] == 60 and acc["probes"] == 14 and acc["mated_persons"] == 2
    assert five["streamed"]["120"]["persons"] == 24
    rot = five["rotated"]["100"]
    assert rot["persons"] == 20 and rot["probes"] == 2 * 8 * 7 and len(rot["by_reference_impression"]) == 8
    timing = five["held"]["timing"]
    assert timing["exhaustive"]["rank1_hit_rate"] >= 0.9 and timing["speedup_over_exhaustive"] > 0
    (tiled,) = five["tiled"]
    assert tiled["templates"] == 240 and tiled["tile"] == 4 and tiled["operating_point_from"] == "held"
    assert rep["by_fingers"]["1"]["held"]["accuracy"]["persons"] == 60
    assert (tmp_path / "p.png").stat().st_size > 10_000
    assert "5 finger(s), 60 templates (12 persons)" in r.output
    assert "5 finger(s), 100 templates (20 persons, every impression enrolled in turn)" in r.output
    r = CliRunner().invoke(app, ["bench", "identify-persons", "--gallery", "5",
                                 "--fvc", str(shared / "data" / "fvc2002" / "DB1_B")])
    assert r.exit_code != 0  # fewer persons than the mated ones
