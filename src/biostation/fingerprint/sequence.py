"""Sequence check: do the slap fingers and the single-finger captures agree?

At an issuance desk the ten single (flat or rolled) captures are taken one finger at a time, so
a finger can land under the wrong label: two fingers swapped, the same finger captured twice, a
whole hand placed for the other. The slaps (4-4-2) are the control: in a slap the fingers cannot
be out of order. :func:`check_sequence` compares every slap finger with every single capture
(and the single captures with each other, and the two four-finger slaps with each other) using
the project's matcher, and reports:

* ``swapped``: slap finger p matches single q and slap q matches single p. Either half may be
  weaker than the threshold (a quarter of it, if clearly above the finger's own label; or both
  halves at 0.4 of it): a reciprocal pair is strong evidence together;
* ``duplicate``: two single captures are the same finger;
* ``wrong_hand``: the fingers of a four-finger slap match fingers of the other hand (the hand
  placed was not the one asked for); ``hand_twice`` when both four-finger slaps show one hand;
* ``mismatch``: a slap finger matches a different single capture (other cases);
* ``unconfirmed`` (not an error): a slap finger matches nothing above the threshold, for
  instance a poor impression; the operator may recapture.

Decisions use ``threshold`` on the matcher's integer score, 0..``SCORE_MAX`` (:data:`SAME_FINGER_SCORE`);
same-finger pairs of good impressions reach 16000-19000, scores under 10000 kept their old meaning.
Cost: one comparison per pair, about 10-50 microseconds each (~150 pairs a session); templates
come in already extracted. Pure function, thread-safe.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from ..hal.scanner import FingerPosition as FP

#: same-finger decision on the matcher's score (uncapped since the matcher's 1:N fix; the scale
#: below 10000 is unchanged). Measured with biostation's extractor and matcher on 80 clean composed
#: sessions (bench_slap --sessions 20, seed 2026): slap finger vs its single capture median 1814,
#: other fingers 99.9th percentile 1747; on the 320 sessions 2500 gives 3/80 false alarms and
#: detects 43/80 swaps, 65/80 duplicates, 80/80 wrong hands, as before the fix (2200: 4/80
#: false alarms; 2800: fewer detections).
SAME_FINGER_SCORE = 2500

RIGHT = (FP.RIGHT_THUMB, FP.RIGHT_INDEX, FP.RIGHT_MIDDLE, FP.RIGHT_RING, FP.RIGHT_LITTLE)
LEFT = (FP.LEFT_THUMB, FP.LEFT_INDEX, FP.LEFT_MIDDLE, FP.LEFT_RING, FP.LEFT_LITTLE)


def hand(p: FP) -> str:
    return "right" if p in RIGHT else "left" if p in LEFT else "?"


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

    @property
    def ok(self) -> bool:
        """No sequence error (``unconfirmed`` fingers do not count)."""
        return not any(i.is_error for i in self.issues)

    def kinds(self) -> set[str]:
        return {i.kind for i in self.issues if i.is_error}


def check_sequence(slap_fingers: Mapping[FP, object], singles: Mapping[FP, object],
                   threshold: int = SAME_FINGER_SCORE) -> SequenceReport:
    """Compare slap fingers with single captures (both: position -> Template or SearchTemplate)."""
    from .. import matcher

    slaps = {FP(p): matcher.prepare(t) if not isinstance(t, matcher.SearchTemplate) else t
             for p, t in slap_fingers.items()}
    flats = {FP(p): matcher.prepare(t) if not isinstance(t, matcher.SearchTemplate) else t
             for p, t in singles.items()}
    report = SequenceReport()
    for p, sp in slaps.items():
        for q, fq in flats.items():
            report.scores[(p, q)] = matcher.match(sp, fq)

    # the same finger twice among the single captures
    fl = sorted(flats)
    for i, q in enumerate(fl):
        for r in fl[i + 1:]:
            s = matcher.match(flats[q], flats[r])
            if s >= threshold:
                report.issues.append(SequenceIssue("duplicate", (q, r), f"single captures {q.name} and "
                                                   f"{r.name} are the same finger (score {s})"))

    # one hand in both four-finger slaps
    right_slap = [p for p in slaps if p in RIGHT[1:]]
    left_slap = [p for p in slaps if p in LEFT[1:]]
    twice = [(p, q) for p in right_slap for q in left_slap if matcher.match(slaps[p], slaps[q]) >= threshold]
    if len(twice) >= 3:  # one chance match between two slaps is not a hand
        report.issues.append(SequenceIssue("hand_twice", tuple(x for pq in twice for x in pq),
                                           f"{len(twice)} fingers appear in both four-finger slaps"))

    # where does each slap finger belong?
    belongs: dict[FP, FP] = {}
    leans: dict[FP, FP] = {}  # weaker evidence: enough to back up the other half of a swap
    for p in slaps:
        row = {q: report.scores[(p, q)] for q in flats}
        if not row:
            continue
        best = max(row, key=row.get)
        if row.get(p, 0) >= threshold and (best == p or row[best] - row[p] < 500):
            continue  # confirmed
        if best != p and row[best] >= threshold // 4 and row[best] - row.get(p, 0) >= 300:
            leans[p] = best
        if row[best] >= threshold:
            belongs[p] = best
        else:
            report.issues.append(SequenceIssue("unconfirmed", (p,), f"slap finger {p.name} matches no single "
                                               f"capture (best {row[best]} with {best.name})"))

    # a reciprocal pair of leanings, both well above chance, is a swap even without a strong match
    for p, q in list(leans.items()):
        if leans.get(q) == p and p not in belongs and q not in belongs \
                and min(report.scores[(p, q)], report.scores[(q, p)]) >= 0.4 * threshold:
            belongs[p] = q
    done: set[FP] = set()
    for slap_hand, members in (("right", right_slap), ("left", left_slap)):
        other = [p for p in members if p in belongs and hand(belongs[p]) not in (slap_hand, "?")]
        if len(other) >= 2:
            report.issues.append(SequenceIssue("wrong_hand", tuple(sorted(other)), f"the {slap_hand} slap shows "
                                               f"the {'left' if slap_hand == 'right' else 'right'} hand"))
            done.update(other)
    for p, q in belongs.items():
        if p in done:
            continue
        report.issues = [i for i in report.issues if not (i.kind == "unconfirmed" and i.positions == (q,)
                                                          and leans.get(q) == p)]
        if (belongs.get(q) == p or leans.get(q) == p) and q not in done:
            report.issues.append(SequenceIssue("swapped", tuple(sorted((p, q))), f"single captures of "
                                               f"{p.name} and {q.name} are swapped"))
            done.update((p, q))
        else:
            report.issues.append(SequenceIssue("mismatch", (p, q), f"slap finger {p.name} matches the single "
                                               f"capture labelled {q.name}"))
            done.add(p)
    # a finger explained by an error is not also "unconfirmed"
    explained = {x for i in report.issues if i.is_error for x in i.positions}
    report.issues = [i for i in report.issues if i.is_error or i.positions[0] not in explained]
    return report
