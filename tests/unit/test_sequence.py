"""Sequence check on composed sessions (FVC2002 DB1 B fingers as one person's ten fingers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from biostation.fingerprint.sequence import SequenceIssue, SequenceReport, check_sequence
from biostation.fingerprint.sequence_compose import make_session, run_session
from biostation.hal.scanner import FingerPosition as FP


@pytest.fixture(scope="module")
def db1():
    folder = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "fvc2002" / "DB1_B"
    if not folder.is_dir():
        pytest.skip("../shared FVC2002 data not present")
    return folder


@pytest.mark.parametrize("fault,seed", [("clean", 1), ("swapped", 2), ("duplicate", 3), ("wrong_hand", 4)])
def test_composed_session(db1, fault, seed):
    session = make_session(db1, fault, np.random.default_rng(seed))
    report = run_session(session)
    if fault == "clean":
        assert report.ok, [i.detail for i in report.issues]
    else:
        assert report.kinds() & session.expected, (session.expected, [i.detail for i in report.issues])


def test_swap_names_the_two_fingers(db1):
    from biostation.fingerprint import extract

    s = make_session(db1, "clean", np.random.default_rng(7))
    singles = {p: extract(img, 500) for p, img in s.singles.items()}
    # the slap of the right hand: use the single captures of another impression as slap fingers
    s2 = make_session(db1, "clean", np.random.default_rng(8))
    slap = {p: extract(s2.singles[p], 500) for p in (FP.RIGHT_INDEX, FP.RIGHT_MIDDLE, FP.RIGHT_RING, FP.RIGHT_LITTLE)}
    singles[FP.RIGHT_RING], singles[FP.RIGHT_LITTLE] = singles[FP.RIGHT_LITTLE], singles[FP.RIGHT_RING]
    report = check_sequence(slap, singles)
    swaps = [i for i in report.issues if i.kind == "swapped"]
    assert swaps and swaps[0].positions == (FP.RIGHT_RING, FP.RIGHT_LITTLE)
    assert report.scores[(FP.RIGHT_RING, FP.RIGHT_LITTLE)] > report.scores[(FP.RIGHT_RING, FP.RIGHT_RING)]


def test_empty_inputs_give_empty_report():
    r = check_sequence({}, {})
    assert isinstance(r, SequenceReport) and r.ok and not r.scores


def test_unconfirmed_is_not_an_error():
    r = SequenceReport([SequenceIssue("unconfirmed", (FP.LEFT_INDEX,), "poor impression")])
    assert r.ok and r.kinds() == set()
