"""The local gallery: insert/delete/count, top-k search, persistence across restarts."""

from __future__ import annotations

import numpy as np
import pytest

from biostation.errors import GalleryError, MatcherError
from biostation.identify import Backend, LocalBackend
from biostation.templates import MINUTIA_DTYPE, Template, load_template

# every test of this module runs once per matcher backend (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("matcher_backend")


def load(shared, finger, k, db="DB1_B"):
    return load_template(shared / "data" / "fvc2002" / "iso_secugen" / db / f"{finger}_{k}.iso")


def enrol_db(gallery, shared, db="DB1_B"):
    for f in range(101, 111):
        gallery.insert(f"{db}/{f}", load(shared, f, 1, db))


def test_protocol_and_top_k(shared):
    g = LocalBackend()
    assert isinstance(g, Backend)
    enrol_db(g, shared)
    assert g.count() == 10
    hits = 0
    for f in range(101, 111):
        res = g.search(load(shared, f, 3), k=3)
        assert len(res) == 3 and res[0].score >= res[1].score >= res[2].score
        hits += res[0].reference_id == f"DB1_B/{f}"
    assert hits >= 9
    mem = g.memory()
    assert mem["templates"] == 10 and 0 < mem["bytes_per_template"] < 10_000


def test_insert_delete_errors(shared):
    g = LocalBackend()
    t = load(shared, 101, 1)
    g.insert("a", t)
    with pytest.raises(GalleryError):
        g.insert("a", t)
    with pytest.raises(GalleryError):
        g.delete("b")
    with pytest.raises(GalleryError):
        g.insert("", t)
    with pytest.raises(MatcherError):
        g.insert("bad", Template(width=5, height=5, minutiae=np.array([(9, 9, 0.0, 1, 0)], MINUTIA_DTYPE)))
    assert g.count() == 1
    g.delete("a")
    assert g.count() == 0 and g.search(t) == []


def test_persisted_gallery_reloads(shared, tmp_path):
    g = LocalBackend(tmp_path / "gal")
    enrol_db(g, shared)
    g.delete("DB1_B/105")
    probe = load(shared, 103, 4)
    before = g.search(probe, k=5)
    # restart without a checkpoint: replay the journal
    g2 = LocalBackend(tmp_path / "gal")
    assert g2.count() == 9 and "DB1_B/105" not in g2
    assert g2.search(probe, k=5) == before
    # checkpoint, enrol more, restart: the cache plus the journal tail
    g2.checkpoint()
    g2.insert("extra", load(shared, 105, 2))
    g3 = LocalBackend(tmp_path / "gal")
    assert g3.count() == 10 and "extra" in g3
    assert [c for c in g3.search(probe, k=6) if c.reference_id != "extra"][:5] == before
    # a torn last record (crash mid-write) is cut off, and what is enrolled after it survives
    with open(tmp_path / "gal" / "journal.bin", "ab") as f:
        f.write(b"I\x05\x00")
    g4 = LocalBackend(tmp_path / "gal")
    assert g4.count() == 10
    g4.insert("after-crash", load(shared, 106, 2))
    g5 = LocalBackend(tmp_path / "gal")
    assert g5.count() == 11 and "after-crash" in g5


def test_empty_probe_scores_zero(shared):
    g = LocalBackend()
    enrol_db(g, shared)
    res = g.search(Template(width=300, height=400), k=2)
    assert [c.score for c in res] == [0, 0]
