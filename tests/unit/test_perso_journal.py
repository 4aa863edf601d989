"""The personalization journal: transitions, exactly-once, recovery, exclusivity."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from biostation.errors import JournalBusyError, StoreError
from biostation.store import Journal


@pytest.fixture
def journal(tmp_path):
    j = Journal.open_exclusive(tmp_path / "line.db", max_attempts=3)
    yield j
    j.close()


def test_happy_path_done_once(journal):
    assert journal.add_orders([("o1", "d1"), ("o2", "d2")]) == (2, [])
    c = journal.claim("enc0")
    assert c.order_id == "o1"
    card = journal.start_card("o1", "SER1", "enc0")
    journal.step(card, "write", "EF.COM")
    journal.verifying(card)
    journal.complete(card, {"ok": True, "pa": "valid"})
    assert journal.order("o1")["status"] == "done"
    assert journal.order("o1")["card_id"] == card
    assert journal.steps(card) == [("write", "EF.COM")]
    # a second completion of the same card, or a second card for the order, is refused
    with pytest.raises(StoreError):
        journal.complete(card, {"ok": True})
    with pytest.raises(StoreError):
        journal.start_card("o1", "SER2", "enc0")
    assert journal.check() == []  # o2 is pending: not a violation


def test_failed_readback_can_never_be_done(journal):
    journal.add_orders([("o1", "d")])
    journal.claim("e")
    card = journal.start_card("o1", "S", "e")
    journal.verifying(card)
    with pytest.raises(StoreError):
        journal.complete(card, {"ok": False, "why": "PA failed"})
    assert journal.card_failed(card, "read-back: PA failed", {"ok": False}).value == "pending"
    assert journal.order("o1")["status"] == "pending"
    assert journal.cards("o1")[0]["status"] == "rejected"
    assert journal.check() == []


def test_torn_cards_requeue_then_reject_after_max_attempts(journal):
    journal.add_orders([("o1", "d")])
    for i in range(3):
        c = journal.claim("e")
        assert c.attempts == i
        card = journal.start_card("o1", f"S{i}", "e")
        st = journal.card_failed(card, "torn at APDU 7")
    assert st.value == "rejected"
    o = journal.order("o1")
    assert o["status"] == "rejected" and "3 cards failed" in o["reason"]
    assert journal.claim("e") is None


def test_reject_before_card_and_conflicting_ids(journal):
    journal.add_orders([("o1", "d1")])
    journal.reject_order("o1", "mrz: bad check digit (date_of_birth)")
    assert journal.order("o1")["reason"].startswith("mrz")
    assert journal.cards("o1") == []
    # re-adding the same id: skipped; with other content: a conflict
    assert journal.add_orders([("o1", "d1")]) == (0, [])
    assert journal.add_orders([("o1", "other")]) == (0, ["o1"])
    with pytest.raises(StoreError):
        journal.reject_order("o1", "again")


def test_recover_after_crash(tmp_path):
    path = tmp_path / "j.db"
    j = Journal(path)
    j.add_orders([("a", "1"), ("b", "2"), ("c", "3")])
    j.claim("e0")
    j.start_card("a", "S1", "e0")  # writing when the runner "dies"
    j.claim("e1")                   # claimed, no card yet
    j.close()
    j = Journal.open_exclusive(path)
    assert j.recover() == {"cards_interrupted": 1, "orders_requeued": 2}
    assert j.counts() == {"pending": 3, "active": 0, "done": 0, "rejected": 0}
    assert j.cards("a")[0]["reason"].startswith("interrupted")
    assert j.order("a")["attempts"] == 0  # a restart is not a card failure
    assert j.check() == []
    j.close()


def test_exclusive_lock_is_released_by_process_death(tmp_path):
    path = tmp_path / "j.db"
    with Journal.open_exclusive(path):
        with pytest.raises(JournalBusyError):
            Journal.open_exclusive(path)
    # a process that takes the lock and is killed -9 leaves it free
    code = ("import os,sys; from biostation.store import Journal; j=Journal.open_exclusive(sys.argv[1]); "
            "print('locked', flush=True); os.kill(os.getpid(), 9)")
    p = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60)
    assert p.returncode == -9 and "locked" in p.stdout
    Journal.open_exclusive(path).close()


def test_threads_never_claim_the_same_order(journal):
    journal.add_orders([(f"o{i}", "d") for i in range(200)])
    got: list[str] = []
    lock = threading.Lock()

    def worker(name):
        while (c := journal.claim(name)) is not None:
            card = journal.start_card(c.order_id, f"{name}-{c.order_id}", name)
            journal.verifying(card)
            journal.complete(card, {"ok": True})
            with lock:
                got.append(c.order_id)

    ts = [threading.Thread(target=worker, args=(f"e{i}",)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert sorted(got) == sorted(f"o{i}" for i in range(200))
    assert journal.counts()["done"] == 200
    assert journal.check() == []
