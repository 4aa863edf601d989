"""The ten-print gallery: fused scores and distances against per-finger oracles, two-stage vs
exhaustive, persistence and crash consistency, bad input."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from biostation import matcher
from biostation.errors import GalleryError, MatcherError
from biostation.identify import params as IP
from biostation.identify import persons, screening, synthetic
from biostation.identify.persons import PersonGallery
from biostation.templates import MINUTIA_DTYPE, Template, load_template

pytestmark = pytest.mark.usefixtures("matcher_backend")

DBS = ("DB1_B", "DB2_B", "DB3_B", "DB4_B")


def person(shared, db: str, impression: int, fingers=range(10)) -> list[Template]:
    """One FVC2002 database as one person: its ten fingers at positions 1..10 (SecuGen ISO)."""
    out = []
    for i in fingers:
        t = load_template(shared / "data" / "fvc2002" / "iso_secugen" / db / f"{101 + i}_{impression}.iso")
        out.append(dataclasses.replace(t, finger_position=i + 1))
    return out


def background(g: PersonGallery, n: int, seed: int = 3, positions=range(1, 11)) -> None:
    gen = synthetic.Generator(seed)
    for b in range(n):
        g.insert(f"syn/{b}", [dataclasses.replace(gen.template(b * 10 + p), finger_position=p) for p in positions])


def test_ten_prints_find_their_person_and_scores_are_the_sum_of_the_fingers(shared):
    g = PersonGallery()
    background(g, 30)
    for db in DBS:
        g.insert(db, person(shared, db, 1))
    assert g.count() == 34 and "DB2_B" in g and "DB9_B" not in g
    for db in DBS:
        probe = person(shared, db, 4)
        best = g.search(probe, k=3)
        assert best[0].reference_id == db and best[0].fingers == 10
        assert best[0].score >= best[1].score >= best[2].score
        # the sum rule, against the matcher one finger at a time
        enrolled = person(shared, db, 1)
        assert best[0].score == sum(matcher.match(p, r) for p, r in zip(probe, enrolled, strict=True))
        # two stages keep the person; at full penetration they answer exactly what one stage does
        assert g.search(probe, k=3, stages=2, penetration=0.05)[0].reference_id == db
        assert g.search(probe, k=34, stages=2, penetration=1.0) == g.search(probe, k=34)
    mem = g.memory()
    assert mem["persons"] == 34 and mem["templates"] == 340 and mem["screening_bytes_per_person"] == 10 * IP.CODE_BYTES


def test_fused_distance_is_the_sum_of_the_fingers_codes_distances_a_missing_finger_a_stranger(shared):
    g = PersonGallery()
    g.insert("whole", person(shared, "DB1_B", 1))
    g.insert("three", person(shared, "DB2_B", 1, fingers=(0, 4, 9)))
    g.insert("none-shared", person(shared, "DB3_B", 1, fingers=(5,)))
    probe = persons.probe_views(person(shared, "DB1_B", 2, fingers=(0, 1, 4)))
    dist = persons.fused_distances(g.view(), probe)

    def ham(a, b):
        return int(np.unpackbits(screening.code(a) ^ screening.code(b)).sum())

    enrolled = {name: g.fingers(name) for name in ("whole", "three", "none-shared")}
    for i, name in enumerate(("whole", "three", "none-shared")):
        want = sum(ham(p, enrolled[name][pos]) if pos in enrolled[name] else IP.FUSION_MISSING_DISTANCE
                   for pos, p in probe.items())
        assert dist[i] == want
    scores, counts = persons.fused_scores(g.view(), probe)
    assert counts.tolist() == [3, 2, 0] and scores[2] == 0
    # a chosen subset scores as the whole does, in the order asked
    sub, sub_counts = persons.fused_scores(g.view(), probe, np.array([2, 0]))
    assert sub.tolist() == [scores[2], scores[0]] and sub_counts.tolist() == [0, 3]


def test_shortlist_breaks_ties_by_enrolment():
    d = np.array([5, 3, 3, 9, 3, 1])
    assert persons.shortlist(d, 3).tolist() == [1, 2, 5]
    assert persons.shortlist(d, 10).tolist() == list(range(6))


def test_ties_in_score_go_to_the_earlier_enrolment(shared):
    g = PersonGallery()
    twin = person(shared, "DB1_B", 1, fingers=(0, 1))
    g.insert("first", twin)
    g.insert("second", twin)
    res = g.search(person(shared, "DB1_B", 3, fingers=(0, 1)), k=2)
    assert [c.reference_id for c in res] == ["first", "second"] and res[0].score == res[1].score
    res2 = g.search(person(shared, "DB1_B", 3, fingers=(0, 1)), k=2, stages=2, penetration=0.5)
    assert res2 == res


def test_bad_person_records_are_refused_and_nothing_is_written(shared, tmp_path):
    g = PersonGallery(tmp_path / "g")
    good = person(shared, "DB1_B", 1, fingers=(0, 1))
    with pytest.raises(GalleryError, match="1..10"):
        g.insert("p", [dataclasses.replace(good[0], finger_position=0)])
    with pytest.raises(GalleryError, match="twice"):
        g.insert("p", [good[0], good[0]])
    with pytest.raises(GalleryError, match="at least one"):
        g.insert("p", [])
    broken = dataclasses.replace(good[1], minutiae=np.zeros(3, MINUTIA_DTYPE), width=0)
    with pytest.raises((MatcherError, GalleryError)):
        g.insert("p", [good[0], broken])
    with pytest.raises(GalleryError):
        g.insert("", good)
    assert g.count() == 0 and not (tmp_path / "g" / "persons.bin").exists()
    assert PersonGallery(tmp_path / "g").count() == 0
    g.insert("p", good)
    with pytest.raises(GalleryError, match="already"):
        g.insert("p", good)
    with pytest.raises(GalleryError, match="unknown"):
        g.delete("q")
    with pytest.raises(GalleryError, match="1..10"):
        g.search({11: good[0]})
    with pytest.raises(GalleryError, match="stages"):
        g.search(good, stages=3)
    with pytest.raises(GalleryError, match="penetration"):
        g.search(good, stages=2, penetration=0)
    with pytest.raises(GalleryError, match="codes"):  # persons are screened by their fused codes
        g.search(good, stages=2, screen="local")
    assert PersonGallery().search(good) == []


def test_a_gallery_reloads_as_it_was_and_a_half_written_person_does_not_exist(shared, tmp_path):
    d = tmp_path / "g"
    g = PersonGallery(d)
    background(g, 5, positions=(1, 2, 3))
    g.insert("DB1_B", person(shared, "DB1_B", 1))
    g.insert("DB2_B", person(shared, "DB2_B", 1, fingers=(0, 2)))
    g.delete("syn/2")
    g.checkpoint()
    g.insert("late", person(shared, "DB3_B", 1, fingers=(0,)))  # after the checkpoint: replayed
    probe = person(shared, "DB1_B", 5)
    before = g.search(probe, k=8)
    again = PersonGallery(d)
    assert again.count() == 7 and "syn/2" not in again and "late" in again
    assert again.search(probe, k=8) == before

    # a crash after the fingers were written, before the person's record: no such person
    half = PersonGallery(d)
    journal = d / "persons.bin"
    size = journal.stat().st_size
    half.insert("torn", person(shared, "DB4_B", 1, fingers=(0, 1, 2)))
    with open(journal, "r+b") as f:
        f.truncate(size)
    reopened = PersonGallery(d)
    assert "torn" not in reopened and reopened.count() == 7
    assert reopened.search(person(shared, "DB4_B", 2, fingers=(0, 1, 2)), k=8) == \
        [c for c in again.search(person(shared, "DB4_B", 2, fingers=(0, 1, 2)), k=8)]
    assert reopened.memory()["templates"] == again.memory()["templates"]
    # its fingers are gone from the position galleries too, so the id can be enrolled afresh
    reopened.insert("torn", person(shared, "DB4_B", 1, fingers=(3,)))
    assert sorted(PersonGallery(d).fingers("torn")) == [4]

    # a torn last person record (cut mid-write) is cut off, and so are its fingers
    with open(journal, "ab") as f:
        f.write(b"I\x05\x00")
    assert PersonGallery(d).count() == 8


def test_journal_records_read_back_what_was_written_and_stop_at_a_torn_or_garbled_one():
    from biostation.identify.local import journal_record, journal_records

    data = journal_record(b"I", "người-1", b"\x01\x02") + journal_record(b"D", "x")
    assert [(op, rid, payload) for op, rid, payload, _ in journal_records(data)] == \
        [(b"I", "người-1", b"\x01\x02"), (b"D", "x", b"")]
    whole = len(data)
    assert list(journal_records(data + journal_record(b"I", "y", b"abc")[:-1]))[-1][3] == whole  # torn
    garbled = journal_record(b"I", "zz").replace(b"zz", b"\xff\xfe")
    assert list(journal_records(data + garbled))[-1][3] == whole  # not UTF-8: read as torn, not a crash
    assert list(journal_records(data + b"Q" + data[1:])) == list(journal_records(data))  # unknown op
