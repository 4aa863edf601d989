"""The sequence check's previous decision rule (commit 5fcd9de), kept only as the benchmark's baseline.

Per-pair thresholds at 2500 with ad-hoc reciprocal-swap relaxations. ``bench_slap.py --sessions``
runs it on the same score matrices as :func:`biostation.fingerprint.sequence.decide`, so the
before and after rates come from one run. Not product code.
"""

from __future__ import annotations

from biostation.fingerprint.sequence import LEFT, RIGHT, SequenceIssue, SequenceReport, hand
from biostation.records import FingerPosition as FP


def decide(S, F, H, threshold=2500):
    """The previous rule (commit 5fcd9de), on the scores of ``sequence.decide``."""
    slaps = {p for p, _ in S}
    flats = {q for _, q in S}
    report = SequenceReport()
    report.scores = dict(S)

    # the same finger twice among the single captures
    fl = sorted(flats)
    for i, q in enumerate(fl):
        for r in fl[i + 1:]:
            s = F[(q, r)]
            if s >= threshold:
                report.issues.append(SequenceIssue("duplicate", (q, r), f"single captures {q.name} and "
                                                   f"{r.name} are the same finger (score {s})"))

    # one hand in both four-finger slaps
    right_slap = [p for p in slaps if p in RIGHT[1:]]
    left_slap = [p for p in slaps if p in LEFT[1:]]
    twice = [(p, q) for p in right_slap for q in left_slap if H[(min(p, q), max(p, q))] >= threshold]
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
