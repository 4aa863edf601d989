"""Sequence check on composed sessions (FVC2002 DB1 B fingers as one person's ten fingers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from biostation.fingerprint.sequence import SequenceIssue, SequenceReport, check_sequence
from biostation.fingerprint.sequence_compose import make_session, run_session
from biostation.records import FingerPosition as FP


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


# --- the decision alone, on score matrices (fast; the composed sessions above cover the matcher) ---

FINGERS = tuple(FP(i) for i in range(1, 11))


def _scores(genuine=6000, impostor=300, overrides=None):
    """A clean session's scores: each slap finger matches its own single, nothing else."""
    s = {(p, q): genuine if p == q else impostor for p in FINGERS for q in FINGERS}
    s.update(overrides or {})
    f = {(a, b): impostor for a in FINGERS for b in FINGERS if a < b}
    h = {(a, b): impostor for a in FINGERS for b in FINGERS if a < b}
    return s, f, h


def test_same_finger_score_lies_between_the_matcher_operating_points():
    """SAME_FINGER_SCORE is placed between the matcher's FMR 1e-3 and 1e-4 thresholds: a matcher
    recalibration that moves them past it must move it too."""
    from biostation.fingerprint.sequence import SAME_FINGER_SCORE
    from biostation.matcher import THRESHOLDS

    assert THRESHOLDS["FMR_1e-3"] < SAME_FINGER_SCORE < THRESHOLDS["FMR_1e-4"]


def test_decide_clean_matrix_is_ok():
    from biostation.fingerprint.sequence import decide

    r = decide(*_scores())
    assert r.ok and not r.issues


def test_swap_from_two_moderate_halves():
    """Neither cross score reaches SAME_FINGER_SCORE, but together, against weak declared pairs,
    they are a swap; the report names both fingers and the scores behind it."""
    from biostation.fingerprint.sequence import SAME_FINGER_SCORE, decide

    a, b = FP.LEFT_RING, FP.LEFT_LITTLE
    s, f, h = _scores(overrides={(a, b): 1800, (b, a): 1600, (a, a): 400, (b, b): 350})
    assert max(s[(a, b)], s[(b, a)]) < SAME_FINGER_SCORE
    r = decide(s, f, h)
    assert r.kinds() == {"swapped"}
    issue = next(i for i in r.issues if i.kind == "swapped")
    assert issue.positions == (a, b)
    assert "left ring" in issue.detail and "left little" in issue.detail and "1800" in issue.detail


def test_one_freak_impostor_score_is_not_a_swap():
    from biostation.fingerprint.sequence import decide

    s, f, h = _scores(overrides={(FP.RIGHT_INDEX, FP.RIGHT_MIDDLE): 3000})
    assert decide(s, f, h).ok


def test_duplicate_from_singles_and_the_slap_in_both():
    from biostation.fingerprint.sequence import decide

    p, q = FP.RIGHT_MIDDLE, FP.RIGHT_INDEX  # finger p captured again under q's label
    s, f, h = _scores(overrides={(p, q): 4000, (q, q): 250})
    f[(q, p)] = 2200
    r = decide(s, f, h)
    assert r.kinds() == {"duplicate"}
    issue = next(i for i in r.issues if i.kind == "duplicate")
    assert set(issue.positions) == {p, q} and "index was probably never captured" in issue.detail


def test_wrong_hand_by_assignment():
    from biostation.fingerprint.sequence import LEFT, RIGHT, decide

    over = {}
    for rp, lp in zip(RIGHT[1:], LEFT[1:]):  # the right slap shows the left hand
        over[(rp, rp)] = 200
        over[(rp, lp)] = 5000
    r = decide(*_scores(overrides=over))
    assert "wrong_hand" in r.kinds()
    assert set(next(i for i in r.issues if i.kind == "wrong_hand").positions) == set(RIGHT[1:])


def test_weak_own_match_is_unconfirmed_not_an_error():
    from biostation.fingerprint.sequence import decide

    r = decide(*_scores(overrides={(FP.LEFT_THUMB, FP.LEFT_THUMB): 500}))
    assert r.ok and [i.kind for i in r.issues] == ["unconfirmed"]


def test_bad_position_or_template_is_a_typed_error():
    from biostation.errors import MatcherError

    with pytest.raises(MatcherError):
        check_sequence({99: None}, {})
    with pytest.raises(MatcherError):
        check_sequence({FP.PLAIN_RIGHT_FOUR: None}, {})
    with pytest.raises(MatcherError):
        check_sequence({FP.RIGHT_INDEX: "not a template"}, {})
