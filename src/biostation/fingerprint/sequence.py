"""Sequence check: do the slap fingers and the single-finger captures agree?

At an issuance desk the ten single (flat or rolled) captures are taken one finger at a time, so
a finger can land under the wrong label: two fingers swapped, the same finger captured twice, a
whole hand placed for the other. The slaps (4-4-2) are the control: in a slap the fingers cannot
be out of order. :func:`check_sequence` compares every slap finger with every single capture,
the single captures with each other and the two four-finger slaps with each other (the
project's matcher), and decides from the whole score matrix rather than pair by pair.

**Evidence.** A score ``s`` counts as ``ln(max(s, EVIDENCE_FLOOR) / EVIDENCE_FLOOR)`` (nats):
zero at or below the floor, where most slap-vs-single impostor scores lie, and growing
slowly above it, so one freak score cannot outweigh several
consistent ones. Each fault is a hypothesis compared with the declared labels:

* ``swapped`` (singles p and q exchanged): the evidence of slap p against single q and slap q
  against single p, minus that of the declared pairs p-p and q-q, reaches :data:`SWAP_MARGIN`.
  Both halves add up, so two moderate cross matches are enough where neither alone would pass a
  fixed threshold;
* ``duplicate`` (singles a and b are one finger, captured twice): single a against single b,
  plus the weaker of slap x against a and against b (the slap finger that is in both), minus
  slap y against its own single (the finger that was never captured) reaches
  :data:`DUPLICATE_MARGIN`;
* ``wrong_hand``: the best assignment (Hungarian, :func:`scipy.optimize.linear_sum_assignment`)
  of a four-finger slap's fingers to the other hand's singles beats the best assignment to its
  own hand's by :data:`HAND_MARGIN`, with at least two fingers; ``hand_twice`` when three or more
  finger pairs of the two four-finger slaps reach ``threshold``;
* ``mismatch``: a slap finger reaches ``threshold`` against another label's single and beats its
  own by :data:`SWAP_MARGIN` (cases none of the above explains);
* ``unconfirmed`` (not an error): a slap finger whose own single scores under ``threshold`` and
  that no error explains, for instance a poor impression; the operator may recapture.

Every issue's ``detail`` names the fingers and the scores behind the decision, for the operator.

**Figures**: ``benchmarks/bench_slap.py --sequence-only`` measures false alarms and detections
on composed sessions of FVC2002 B fingers (:mod:`.sequence_compose`), the margins tuned on one
seed set and measured on another (``--seq-seed``), with 95 % intervals;
``benchmarks/tune_sequence.py`` sweeps the floor and the margins over cached score matrices.

Cost: one comparison per pair, about 10-50 microseconds each (about 175 pairs a session) plus
microseconds of decision; templates come in already extracted. Pure function, thread-safe.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..errors import MatcherError
from ..records.vocabulary import FingerPosition as FP

#: same-finger decision on the matcher's score, 0..SCORE_MAX: between the FMR 1e-3 and FMR 1e-4
#: operating points of ``matcher.THRESHOLDS``, 27 % of the way from the first to the second (an
#: FMR a little above 1e-4 on FVC2002; place it again by that rule when those points move): a
#: slap finger below it against its own single is ``unconfirmed``; ``mismatch`` and
#: ``hand_twice`` need scores at or above it.
SAME_FINGER_SCORE = 2643
#: matcher score at which a comparison starts to count as evidence (score units). Tuned on the
#: development seeds together with the margins below, at ``SAME_FINGER_SCORE``
#: (``benchmarks/tune_sequence.py``: the fewest false alarms that keep each fault's detections
#: within one session; see the module doc)
EVIDENCE_FLOOR = 550
#: evidence (nats) a swap hypothesis must gain over the declared labels
SWAP_MARGIN = 1.2
#: evidence (nats) for two single captures being one finger
DUPLICATE_MARGIN = 3.6
#: weight of the single-vs-single comparison in the duplicate evidence: two full single
#: captures compare more reliably than a slap fingertip with a single (unit-less)
DUPLICATE_SINGLES_WEIGHT = 2.0
#: evidence (nats) that a four-finger slap fits the other hand better than its own (wrong-hand
#: detections and false alarms on the development seeds stay the same from 1 to 3.5)
HAND_MARGIN = 2.0

RIGHT = (FP.RIGHT_THUMB, FP.RIGHT_INDEX, FP.RIGHT_MIDDLE, FP.RIGHT_RING, FP.RIGHT_LITTLE)
LEFT = (FP.LEFT_THUMB, FP.LEFT_INDEX, FP.LEFT_MIDDLE, FP.LEFT_RING, FP.LEFT_LITTLE)


def hand(p: FP) -> str:
    return "right" if p in RIGHT else "left" if p in LEFT else "?"


def _name(p: FP) -> str:
    return p.name.lower().replace("_", " ")


@dataclass(frozen=True)
class SequenceIssue:
    kind: str  # swapped, duplicate, wrong_hand, hand_twice, mismatch, unconfirmed
    positions: tuple[FP, ...]
    detail: str

    @property
    def is_error(self) -> bool:
        return self.kind != "unconfirmed"


@dataclass
class SequenceReport:
    issues: list[SequenceIssue] = field(default_factory=list)
    #: (slap finger, single capture) -> score
    scores: dict[tuple[FP, FP], int] = field(default_factory=dict)
    #: the strongest evidence (nats) seen for each hypothesis, decided or not (for tuning)
    evidence: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """No sequence error (``unconfirmed`` fingers do not count)."""
        return not any(i.is_error for i in self.issues)

    def kinds(self) -> set[str]:
        return {i.kind for i in self.issues if i.is_error}


def _position(p: object) -> FP:
    try:
        fp = FP(p)  # type: ignore[call-overload]
    except (ValueError, TypeError):
        raise MatcherError(f"not a finger position: {p!r}") from None
    if hand(fp) == "?":
        raise MatcherError(f"not a single-finger position: {fp.name}")
    return fp


def check_sequence(slap_fingers: Mapping[FP, object], singles: Mapping[FP, object],
                   threshold: int = SAME_FINGER_SCORE) -> SequenceReport:
    """Compare slap fingers with single captures (both: finger position -> Template or
    SearchTemplate) and report sequence errors (see the module doc).

    A key that is not a finger position (1..10) raises :class:`~biostation.errors.MatcherError`,
    as does a template the matcher cannot read.
    """
    return decide(*score_matrices(slap_fingers, singles), threshold)


def score_matrices(slap_fingers: Mapping[FP, object], singles: Mapping[FP, object]
                   ) -> tuple[dict[tuple[FP, FP], int], dict[tuple[FP, FP], int], dict[tuple[FP, FP], int]]:
    """The comparisons :func:`decide` needs: slap finger vs single ``(p, q)``, single vs single
    and slap vs slap ``(a, b)`` with ``a < b`` (matcher scores)."""
    from .. import matcher

    def prep(t: object) -> matcher.SearchTemplate:
        if isinstance(t, matcher.SearchTemplate):
            return t
        try:
            return matcher.prepare(t)  # type: ignore[arg-type]
        except MatcherError:
            raise
        except Exception as e:  # not a template at all
            raise MatcherError(f"not a fingerprint template: {type(t).__name__}") from e

    slaps = {_position(p): prep(t) for p, t in slap_fingers.items()}
    flats = {_position(p): prep(t) for p, t in singles.items()}
    sl, fl = sorted(slaps), sorted(flats)
    slap_vs_single = {(p, q): matcher.match(slaps[p], flats[q]) for p in sl for q in fl}
    single_pairs = {(a, b): matcher.match(flats[a], flats[b]) for i, a in enumerate(fl) for b in fl[i + 1:]}
    slap_pairs = {(a, b): matcher.match(slaps[a], slaps[b]) for i, a in enumerate(sl) for b in sl[i + 1:]}
    return slap_vs_single, single_pairs, slap_pairs


def decide(slap_vs_single: Mapping[tuple[FP, FP], int], single_pairs: Mapping[tuple[FP, FP], int],
           slap_pairs: Mapping[tuple[FP, FP], int], threshold: int = SAME_FINGER_SCORE, *,
           floor: float = EVIDENCE_FLOOR, swap_margin: float = SWAP_MARGIN,
           duplicate_margin: float = DUPLICATE_MARGIN, hand_margin: float = HAND_MARGIN) -> SequenceReport:
    """The decision of :func:`check_sequence` from its scores alone: ``slap_vs_single[(p, q)]``
    (slap finger p, single labelled q), ``single_pairs[(a, b)]`` and ``slap_pairs[(a, b)]`` with
    ``a < b``. Missing pairs count as score 0. The keyword arguments exist for tuning."""
    import numpy as np
    from scipy.optimize import linear_sum_assignment

    S = {(FP(p), FP(q)): int(v) for (p, q), v in slap_vs_single.items()}
    F = {(FP(min(a, b)), FP(max(a, b))): int(v) for (a, b), v in single_pairs.items()}
    H = {(FP(min(a, b)), FP(max(a, b))): int(v) for (a, b), v in slap_pairs.items()}
    sl = sorted({p for p, _ in S} | {x for ab in H for x in ab})
    fl = sorted({q for _, q in S} | {x for ab in F for x in ab})
    report = SequenceReport(scores=dict(S))

    def ev(s: int) -> float:
        return math.log(max(s, floor) / floor)

    def s_(p: FP, q: FP) -> int:
        return S.get((p, q), 0)

    def f_(a: FP, b: FP) -> int:
        return F.get((min(a, b), max(a, b)), 0)

    explained: set[FP] = set()

    # --- the wrong hand in a four-finger slap: its best fit to the other hand vs to its own ---
    for slap_hand, own, other in (("right", RIGHT[1:], LEFT[1:]), ("left", LEFT[1:], RIGHT[1:])):
        members = [p for p in sl if p in own]
        if len(members) < 2:
            continue
        fits = []
        for targets in (own, other):
            t = [q for q in fl if q in targets]
            if not t:
                fits.append((0.0, []))
                continue
            m = np.array([[ev(s_(p, q)) for q in t] for p in members])
            rows, cols = linear_sum_assignment(m, maximize=True)
            fits.append((float(m[rows, cols].sum()),
                         [(members[i], t[j]) for i, j in zip(rows, cols) if m[i, j] > 0]))
        (own_fit, _), (other_fit, pairs) = fits
        report.evidence[f"wrong_hand_{slap_hand}"] = other_fit - own_fit
        if other_fit - own_fit >= hand_margin and len(pairs) >= 2:
            shown = "left" if slap_hand == "right" else "right"
            report.issues.append(SequenceIssue(
                "wrong_hand", tuple(sorted(p for p, _ in pairs)),
                f"the {slap_hand} four-finger slap shows the {shown} hand: "
                + ", ".join(f"slap {_name(p)} matches single {_name(q)} ({s_(p, q)})" for p, q in pairs)))
            explained.update(p for p, _ in pairs)
    right4 = [p for p in sl if p in RIGHT[1:]]
    left4 = [p for p in sl if p in LEFT[1:]]
    twice = [(p, q) for p in right4 for q in left4 if H.get((min(p, q), max(p, q)), 0) >= threshold]
    if len(twice) >= 3:  # one chance match between two slaps is not a hand
        report.issues.append(SequenceIssue(
            "hand_twice", tuple(x for pq in twice for x in pq),
            f"{len(twice)} fingers appear in both four-finger slaps: one hand was placed twice"))
        explained.update(x for pq in twice for x in pq)

    # --- the same finger captured twice; two single captures exchanged ----------------------
    dup = None
    for i, a in enumerate(fl):
        for b in fl[i + 1:]:
            for x, y in ((a, b), (b, a)):  # x: the finger in both singles, y: the one never taken
                e = DUPLICATE_SINGLES_WEIGHT * ev(f_(a, b)) + min(ev(s_(x, a)), ev(s_(x, b))) - ev(s_(y, y))
                if dup is None or e > dup[0]:
                    dup = (e, a, b, x, y)
    swap = None
    for i, p in enumerate(sl):
        for q in sl[i + 1:]:
            if p in explained or q in explained or p not in fl or q not in fl:
                continue
            e = ev(s_(p, q)) + ev(s_(q, p)) - ev(s_(p, p)) - ev(s_(q, q))
            if swap is None or e > swap[0]:
                swap = (e, p, q)
    if dup is not None:
        report.evidence["duplicate"] = dup[0]
    if swap is not None:
        report.evidence["swapped"] = swap[0]
    dup_ok = dup is not None and dup[0] >= duplicate_margin
    swap_ok = swap is not None and swap[0] >= swap_margin
    if dup_ok and swap_ok and {dup[1], dup[2]} & {swap[1], swap[2]}:
        # the same fingers explained two ways: keep the hypothesis further past its margin
        if dup[0] - duplicate_margin >= swap[0] - swap_margin:
            swap_ok = False
        else:
            dup_ok = False
    if dup_ok:
        e, a, b, x, y = dup
        report.issues.append(SequenceIssue(
            "duplicate", (a, b),
            f"single captures {_name(a)} and {_name(b)} are the same finger (score {f_(a, b)}); "
            f"slap {_name(x)} matches both ({s_(x, a)}, {s_(x, b)}), slap {_name(y)} matches "
            f"its own single only {s_(y, y)}: {_name(y)} was probably never captured"))
        explained.update((a, b))
    if swap_ok:
        e, p, q = swap
        report.issues.append(SequenceIssue(
            "swapped", (p, q),
            f"single captures of {_name(p)} and {_name(q)} are swapped: slap {_name(p)} vs single "
            f"{_name(q)} {s_(p, q)}, slap {_name(q)} vs single {_name(p)} {s_(q, p)}; as labelled "
            f"{s_(p, p)} and {s_(q, q)}"))
        explained.update((p, q))

    # --- anything else: a slap finger that clearly belongs to another label --------------------
    for p in sl:
        if p in explained:
            continue
        others = [q for q in fl if q != p]
        if not others:
            continue
        q = max(others, key=lambda r: s_(p, r))
        if s_(p, q) >= threshold and ev(s_(p, q)) - ev(s_(p, p)) >= swap_margin:
            report.issues.append(SequenceIssue(
                "mismatch", (p, q),
                f"slap finger {_name(p)} matches the single capture labelled {_name(q)} ({s_(p, q)}) "
                f"better than its own ({s_(p, p)})"))
            explained.update((p, q))

    for p in sl:
        if p not in explained and p in fl and s_(p, p) < threshold:
            best = max(fl, key=lambda r: s_(p, r))
            report.issues.append(SequenceIssue(
                "unconfirmed", (p,), f"slap finger {_name(p)} is not confirmed by its single capture "
                f"(score {s_(p, p)}; best {s_(p, best)} with {_name(best)}): recapture if in doubt"))
    return report
