"""The shard behind each Ray actor, without Ray: retried calls are applied once, and a shard
reloads what it logged (torn tails dropped, a logged delete completed)."""

from __future__ import annotations

import pytest

from biostation.errors import GalleryError
from biostation.identify.ray_backend import GalleryShard, shard_of
from biostation.matcher import prepare
from biostation.templates import load_template


@pytest.fixture
def tpl(shared):
    d = shared / "data" / "fvc2002" / "iso_secugen" / "DB1_B"
    return [load_template(d / f"{f}_1.iso") for f in range(101, 105)]


def test_placement_is_stable_and_spread():
    # pinned: a change of placement would strand the references of every persisted gallery
    # (blake2b-64 of b"ref-0001" is 47d00d4241218051, little-endian 0x5180214142..., mod 4 = 3)
    assert [shard_of(r, 4) for r in ("a", "ref-0001", "DB1_B/101_1")] == [0, 3, 0]
    assert [shard_of(r, 7) for r in ("a", "ref-0001", "DB1_B/101_1")] == [4, 2, 5]
    assert shard_of("ref-0001", 1) == 0
    counts = [0] * 4
    for i in range(4000):
        counts[shard_of(f"ref-{i:06d}", 4)] += 1
    assert min(counts) > 900


def test_retried_calls_apply_once(tpl, tmp_path):
    s = GalleryShard(str(tmp_path / "s"))
    s.insert("a", 10, tpl[0])
    s.insert("a", 10, tpl[0])  # the same call again (Ray retried it after a restart): no error
    with pytest.raises(GalleryError):
        s.insert("a", 11, tpl[0])  # another call: a duplicate
    s.delete("a", 12)
    s.delete("a", 12)
    with pytest.raises(GalleryError):
        s.delete("a", 13)
    s.insert("a", 14, tpl[1])
    assert s.count() == 1
    # and after a restart, from disk
    s2 = GalleryShard(str(tmp_path / "s"))
    s2.insert("a", 14, tpl[1])
    with pytest.raises(GalleryError):
        s2.insert("a", 15, tpl[1])
    assert s2.count() == 1 and s2.info()["max_stamp"] == 14


def test_enrolment_stamps_order_ties_and_never_go_back(tpl, tmp_path):
    s = GalleryShard(str(tmp_path / "s"))
    s.insert("late", 100, tpl[0])
    s.insert("lagging-clock", 50, tpl[0])  # stamped by an adapter whose clock lags: still after
    res = s.search(prepare(tpl[0]), 2)
    assert [r[2] for r in res] == ["late", "lagging-clock"] and res[0][1] < res[1][1]


def test_reload_drops_torn_tail_and_completes_logged_delete(tpl, tmp_path):
    d = tmp_path / "s"
    s = GalleryShard(str(d))
    for i, t in enumerate(tpl):
        s.insert(f"r{i}", i + 1, t)
    # a crash after the delete was logged but before the journal saw it
    s._log(b"D", "r1", 9, 9)
    with open(d / "order.bin", "ab") as f:
        f.write(b"I\x01\x02")  # torn record
    s2 = GalleryShard(str(d))
    assert s2.count() == 3 and not s2.contains("r1")
    s2.insert("r9", 20, tpl[1])  # written after the truncated tail, so it reloads
    s3 = GalleryShard(str(d))
    assert s3.count() == 4 and s3.contains("r9") and s3.info()["max_stamp"] == 20


def test_enrolment_after_a_torn_journal_tail_survives_the_next_restart(tpl, tmp_path):
    d = tmp_path / "s"
    s = GalleryShard(str(d))
    s.insert("a", 1, tpl[0])
    with open(d / "journal.bin", "ab") as f:
        f.write(b"I\x05\x00")  # the shard was killed in the middle of a journal write
    s2 = GalleryShard(str(d))
    s2.insert("b", 2, tpl[1])
    assert GalleryShard(str(d)).count() == 2
