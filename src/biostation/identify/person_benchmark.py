"""Ten-print 1:N benchmark: the finger benchmark's protocol (:mod:`.benchmark`) with persons of
``F`` fingers, searched with the fused two-stage search of :mod:`.persons`.

**Persons.** The FVC sets hold unrelated fingers (ten per database, eight impressions each), so
persons are made of them: each database's fingers in order, ``F`` at a time, at finger positions
1..F (a database of ten gives one person of ten fingers, two of five, five of two; FVC2000 and
FVC2002 give 8, 16 or 40 persons). Every finger of a person then comes from one sensor, as a real
person's capture does. A person's first impressions are enrolled among ``N / F`` synthetic persons
(``F`` independent :mod:`.synthetic` templates each, so a gallery of ``N`` holds ``N`` templates);
a probe is the same person's impression ``j`` of every finger (one capture session), round-robin
over persons and impressions. With ``F = 1`` the gallery, the probes and every figure are those of
the finger benchmark (a test checks it).

What chimeric persons cannot show: the fingers of one real person are not independent (pattern
classes and quality go together, and a bad capture day spoils all ten), so fusion over real
ten-prints gains somewhat less than over these persons.

Accuracy comes from one exhaustive pass and the fused first-stage distances (the curve of the
finger benchmark, over persons: the shortlist is a share of the persons); a gallery too large to
hold is generated and scored a chunk of persons at a time in worker processes
(:func:`accuracy_streamed`). Timing runs :func:`.persons.search` itself, one vs two stages side by
side, on the held gallery or on tiled copies of it (:func:`tiled_view`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..matcher.prepare import SearchTemplate, pack, prepare
from ..templates.model import Template
from . import persons, screening, synthetic
from .benchmark import (
    GRID,
    Progress,
    Tally,
    distinct_fingers,
    latencies,
    no_progress,
    reference_rows,
    score_in_chunks,
)
from .persons import PersonGallery, PersonView, PositionArrays

Probe = dict[int, SearchTemplate]


def chimeric_persons(mated: Mapping[str, Sequence[Template]], fingers: int) -> list[tuple[str, list[str]]]:
    """``(person, [finger keys at positions 1..fingers])``: each database's fingers (keys
    ``<set>/<database>/<finger>``) in order, ``fingers`` at a time (a remainder is left out)."""
    if not 1 <= fingers <= 10:
        raise ValueError(f"a person has 1..10 fingers, not {fingers}")
    by_db: dict[str, list[str]] = {}
    for f in sorted(mated):
        by_db.setdefault(f.rsplit("/", 1)[0], []).append(f)
    out = []
    for db, fs in by_db.items():
        for g in range(len(fs) // fingers):
            out.append((f"{db}/{g}" if fingers > 1 else fs[g], fs[g * fingers:(g + 1) * fingers]))
    return out


def gallery_persons(mated: Mapping[str, Sequence[Template]], fingers: int,
                    templates: int) -> tuple[list[tuple[str, list[str]]], int]:
    """The mated persons (:func:`chimeric_persons`) and the number of persons in a gallery of
    ``templates``; ValueError when it cannot hold them."""
    people = chimeric_persons(mated, fingers)
    n = templates // fingers
    if n < len(people):
        raise ValueError(f"a gallery of {templates} templates cannot hold the {len(people)} mated persons")
    return people, n


def choose_probes(mated: Mapping[str, Sequence[Template]], people: Sequence[tuple[str, list[str]]],
                  probes: int) -> list[tuple[str, dict[int, Template]]]:
    """``probes`` captures: impression ``j`` (2nd, 3rd, ...) of every finger of a person,
    round-robin over the persons."""
    chosen: list[tuple[str, dict[int, Template]]] = []
    j = 1
    while len(chosen) < probes and any(len(mated[f]) > j for _, fs in people for f in fs):
        for name, fs in people:
            views = {i + 1: mated[f][j] for i, f in enumerate(fs) if len(mated[f]) > j}
            if views and len(chosen) < probes:
                chosen.append((name, views))
        j += 1
    return chosen


def synthetic_person(gen: synthetic.Generator, index: int, fingers: int) -> dict[int, Template]:
    """Background person ``index``: synthetic templates ``index * fingers + position - 1``."""
    return {p: gen.template(index * fingers + p - 1) for p in range(1, fingers + 1)}


@dataclass
class PersonBench:
    gallery: PersonGallery
    probes: list[Probe]
    mates: list[str]
    fingers: int
    mated_persons: int
    #: (referenceId, finger views) in enrolment order, to enrol the same gallery elsewhere
    enrolled: list[tuple[str, dict[int, Template]]]


def build(mated: Mapping[str, Sequence[Template]], fingers: int, templates: int, probes: int, seed: int = 1,
          progress: Progress = no_progress) -> PersonBench:
    """The mated persons' first impressions among synthetic persons, ``templates // fingers``
    persons in all (mated ones at spread rows, as in the finger benchmark)."""
    people, n = gallery_persons(mated, fingers, templates)
    slots = set(reference_rows(n, len(people)).tolist())
    gen = synthetic.Generator(seed)
    g = PersonGallery()
    enrolled: list[tuple[str, dict[int, Template]]] = []
    k = si = 0
    for row in range(n):
        if row in slots and k < len(people):
            name, fs = people[k]
            rid, views = f"ref/{name}", {i + 1: mated[f][0] for i, f in enumerate(fs)}
            k += 1
        else:
            rid, views = f"syn/{si}", synthetic_person(gen, si, fingers)
            si += 1
        g.insert(rid, views)
        enrolled.append((rid, views))
        if row % 200 == 199 or row == n - 1:
            progress(f"{fingers}-finger gallery {n * fingers}", row + 1, n)
    chosen = choose_probes(mated, people, probes)
    return PersonBench(g, [persons.probe_views(v) for _, v in chosen], [f"ref/{p}" for p, _ in chosen], fingers,
                       len(people), enrolled)


def accuracy(bench: PersonBench, progress: Progress = no_progress) -> dict[str, Any]:
    """Exhaustive rank-1, the fused score gap and the two-stage curve over persons."""
    v = bench.gallery.view()
    where = {r: i for i, r in enumerate(v.reference_ids)}
    tally = Tally(v.persons)
    for i, (p, mate) in enumerate(zip(bench.probes, bench.mates, strict=True)):
        tally.add(persons.fused_scores(v, p)[0], persons.fused_distances(v, p), where[mate])
        progress(f"accuracy {v.persons} persons", i + 1, len(bench.probes))
    return _person_report(tally.report(), bench.fingers, bench.mated_persons)


def _person_report(rep: dict[str, Any], fingers: int, mated_persons: int) -> dict[str, Any]:
    rep["persons"] = rep.pop("gallery")
    rep["templates"] = rep["persons"] * fingers
    rep["fingers"] = fingers
    rep["mated_persons"] = mated_persons
    return rep


# --- accuracy over galleries too large to hold ----------------------------------------------------

_state: dict[str, Any] = {}


def _view_of(people: Sequence[Mapping[int, Template]]) -> PersonView:
    """A view over the given persons (row order), prepared and coded here."""
    positions: dict[int, PositionArrays] = {}
    n = len(people)
    for pos in sorted({p for person in people for p in person}):
        who = np.array([i for i, person in enumerate(people) if pos in person], np.int64)
        items = [prepare(people[i][pos]) for i in who]
        person_row = np.full(n, -1, np.int64)
        person_row[who] = np.arange(len(who))
        positions[pos] = PositionArrays(pack(items), screening.codes(items), who, None, person_row,
                                        PositionArrays.is_dense(who, n))
    return PersonView([str(i) for i in range(n)], positions)


def _init(probes: list[Probe], refs: list[dict[int, Template]], slots: np.ndarray, fingers: int, seed: int) -> None:
    codes = [{pos: screening.code(s) for pos, s in p.items()} for p in probes]
    _state.update(probes=probes, codes=codes, refs=refs, slots=slots, fingers=fingers, gen=synthetic.Generator(seed))


def _chunk(start: int, stop: int) -> tuple[int, np.ndarray, np.ndarray]:
    """Persons ``start..stop`` of the gallery :func:`build` would enrol, scored against every
    probe: fused scores and fused distances, int64 ``(probes, stop - start)``."""
    st = _state
    slots, refs, gen, fingers = st["slots"], st["refs"], st["gen"], st["fingers"]
    people = []
    for row in range(start, stop):
        k = int(np.searchsorted(slots, row))
        if k < len(slots) and slots[k] == row:
            people.append(refs[k])
        else:
            people.append(synthetic_person(gen, row - k, fingers))
    view = _view_of(people)
    scores = np.empty((len(st["probes"]), stop - start), np.int64)
    dist = np.empty((len(st["probes"]), stop - start), np.int64)
    for i, (p, c) in enumerate(zip(st["probes"], st["codes"], strict=True)):
        scores[i] = persons.fused_scores(view, p)[0]
        dist[i] = persons.fused_distances(view, p, c)
    return start, scores, dist


def _streamed(chunk: int, workers: int, built: float, templates: int) -> dict[str, Any]:
    return {"chunk": chunk, "workers": workers, "build_and_score_s": built,
            "worker_s_per_template": built * max(workers, 1) / templates}


def accuracy_streamed(mated: Mapping[str, Sequence[Template]], fingers: int, templates: int, probes: int,
                      seed: int = 1, workers: int = 1, chunk: int = 1000,
                      progress: Progress = no_progress) -> dict[str, Any]:
    """What :func:`accuracy` reports for ``build(mated, fingers, templates, probes, seed)``, the
    gallery generated and scored ``chunk`` persons at a time in ``workers`` processes (0: here);
    16 bytes are kept per probe and person."""
    people, n = gallery_persons(mated, fingers, templates)
    chosen = choose_probes(mated, people, probes)
    ps = [persons.probe_views(v) for _, v in chosen]
    slots = reference_rows(n, len(people))
    names = [p for p, _ in people]
    refs = [{i + 1: mated[f][0] for i, f in enumerate(fs)} for _, fs in people]
    mate_rows = [int(slots[names.index(p)]) for p, _ in chosen]
    t0 = time.perf_counter()
    scores, dist = score_in_chunks(n, len(ps), (np.int64, np.int64), _init, (ps, refs, slots, fingers, seed), _chunk,
                                   chunk, workers, f"scoring {n} persons of {fingers} fingers", progress)
    built = time.perf_counter() - t0
    tally = Tally(n)
    for i, mate in enumerate(mate_rows):
        tally.add(scores[i], dist[i], mate)
    out = _person_report(tally.report(), fingers, len(people))
    out["streamed"] = _streamed(chunk, workers, built, n * fingers)
    return out


def accuracy_rotated(mated: Mapping[str, Sequence[Template]], fingers: int, templates: int, seed: int = 1,
                     workers: int = 1, chunk: int = 1000, progress: Progress = no_progress) -> dict[str, Any]:
    """Accuracy pooled over every choice of the enrolled impression: for each ``r`` in turn, the
    mated persons' impression ``r`` enrolled among the synthetic persons of :func:`build` (the same
    rows), and every other impression of each person searched; a person of eight impressions gives
    56 mated searches instead of 7, each pair of captures searched both ways. The synthetic persons
    are generated and scored once (a probe's scores against them do not depend on ``r``; streamed
    as in :func:`accuracy_streamed`), the mated persons once per ``r``. The report is
    :func:`accuracy`'s over all the searches, plus ``by_reference_impression``: the report of each
    ``r`` alone (for ``r`` = 1, what :func:`accuracy_streamed` reports with the probes
    :func:`choose_probes` picks for one search per other impression)."""
    people, n = gallery_persons(mated, fingers, templates)
    imps = min(len(mated[f]) for _, fs in people for f in fs)
    if imps < 2:
        raise ValueError("rotating the enrolled impression needs two impressions of every finger")

    def capture(fs: Sequence[str], j: int) -> dict[int, Template]:
        return {i + 1: mated[f][j] for i, f in enumerate(fs)}

    # impression j of every person, j = 1, 2, ... (choose_probes' order), then impression 0
    order = [*range(1, imps), 0]
    searches = [(k, j, persons.probe_views(capture(fs, j))) for j in order for k, (_, fs) in enumerate(people)]
    ps = [p for _, _, p in searches]
    slots = reference_rows(n, len(people))
    t0 = time.perf_counter()
    scores, dist = score_in_chunks(n, len(ps), (np.int64, np.int64), _init,
                                   (ps, [capture(fs, 0) for _, fs in people], slots, fingers, seed), _chunk,
                                   chunk, workers, f"scoring {n} persons of {fingers} fingers", progress)
    built = time.perf_counter() - t0
    codes = [{pos: screening.code(sp) for pos, sp in p.items()} for p in ps]
    pooled, per = Tally(n), []
    for r in range(imps):
        refs = _view_of([capture(fs, r) for _, fs in people])  # the mated rows when r is enrolled
        tally = Tally(n)
        for i, (k, j, p) in enumerate(searches):
            if j == r:
                continue
            sc, d = scores[i].copy(), dist[i].copy()
            sc[slots] = persons.fused_scores(refs, p)[0]
            d[slots] = persons.fused_distances(refs, p, codes[i])
            for t in (tally, pooled):
                t.add(sc, d, int(slots[k]))
        rep = _person_report(tally.report(), fingers, len(people))
        rep["reference_impression"] = r + 1
        per.append(rep)
        progress(f"every impression enrolled in turn, {n} persons", r + 1, imps)
    out = _person_report(pooled.report(), fingers, len(people))
    out["by_reference_impression"] = per
    out["streamed"] = _streamed(chunk, workers, built, n * fingers)
    return out


# --- timing -------------------------------------------------------------------------------------------

class _TiledIds(Sequence[str]):
    """Reference ids of ``factor`` copies of a gallery's persons (copy ``c`` of ``r``: ``r#c``)."""

    def __init__(self, ids: Sequence[str], factor: int):
        self._ids, self._n, self._len = ids, len(ids), len(ids) * factor

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self._len))]
        if not -self._len <= i < self._len:
            raise IndexError(i)
        i %= self._len
        c, r = divmod(i, self._n)
        return self._ids[r] if c == 0 else f"{self._ids[r]}#{c}"


def tiled_view(view: PersonView, factor: int) -> PersonView:
    """``factor`` copies of ``view``'s persons end to end (timing only): codes are repeated (the
    first stage scans them all), each copy's fingers scored on the original's arrays."""
    if factor == 1:
        return view
    n = view.persons
    positions = {}
    for pos, pa in view.positions.items():
        rows = len(pa.code_person)
        positions[pos] = PositionArrays(
            pa.packed, np.tile(pa.codes, (factor, 1)),
            np.concatenate([pa.code_person + c * n for c in range(factor)]),
            np.tile(np.arange(rows, dtype=np.int64) if pa.code_row is None else pa.code_row, factor),
            np.tile(pa.person_row, factor), pa.dense)
    return PersonView(_TiledIds(view.reference_ids, factor), positions)


def time_view(view: PersonView, probes: Sequence[Probe], mates: Sequence[str] | None, penetration: float,
              also: Sequence[float] = (), exhaustive_probes: int | None = None) -> dict[str, Any]:
    """One vs two stages (at ``penetration`` and each of ``also``), side by side, and the first
    stage alone; with ``mates``, the rank-1 hit rate of the timed searches (not for tiled views:
    copies of strangers crowd a shortlist as no real gallery's would)."""
    templates = sum(len(pa.code_person) for pa in view.positions.values())
    n = view.persons
    m = screening.shortlist_size(n, penetration)

    ex_ans, ex = latencies(lambda p: persons.search(view, p, 10), probes[:exhaustive_probes])
    two_ans, two = latencies(lambda p: persons.search(view, p, 10, stages=2, penetration=penetration), probes)
    if mates is not None:
        for answers, r in ((ex_ans, ex), (two_ans, two)):
            r["rank1_hit_rate"] = float(np.mean([bool(a) and a[0].reference_id == mt
                                                 for a, mt in zip(answers, mates, strict=False)]))
    _, first = latencies(lambda p: persons.shortlist(persons.fused_distances(view, p), m), probes)
    out = {"templates": templates, "persons": n, "penetration": penetration, "shortlist": m,
           "screening_bytes": sum(pa.codes.nbytes for pa in view.positions.values()),
           "exhaustive": ex, "two_stage": two, "first_stage": first,
           "first_stage_templates_per_s": templates / (first["p50_ms"] / 1e3),
           "speedup_over_exhaustive": ex["p50_ms"] / two["p50_ms"],
           "same_top_candidate": [a[:1] == b[:1] for a, b in zip(ex_ans, two_ans, strict=False)],
           "other_penetrations": []}
    for pen in also:
        _, st = latencies(lambda p, pen=pen: persons.search(view, p, 10, stages=2, penetration=pen), probes)
        out["other_penetrations"].append({"penetration": pen, "shortlist": screening.shortlist_size(n, pen),
                                          "two_stage": st, "speedup_over_exhaustive": ex["p50_ms"] / st["p50_ms"]})
    return out


def time_ray(backend: Any, bench: PersonBench, probes: Sequence[Probe], mates: Sequence[str], penetration: float,
             local_answers: Sequence[list]) -> dict[str, Any]:
    """The held gallery enrolled on a Ray gallery of persons (``backend``, empty), one vs two
    stages timed there; whether its exhaustive answers are the local ones."""
    for i in range(0, len(bench.enrolled), 1000):
        failed = backend.insert_many(bench.enrolled[i:i + 1000])
        if failed:
            raise RuntimeError(f"Ray gallery refused {len(failed)} persons")
    out: dict[str, Any] = {"shards": backend.shards, "nodes": len({i.get("node") for i in backend.shard_info()})}
    for stages in (1, 2):
        answers, r = latencies(lambda p, st=stages: backend.search(p, 10, stages=st, penetration=penetration), probes)
        r["rank1_hit_rate"] = float(np.mean([bool(a) and a[0].reference_id == m for a, m in zip(answers, mates,
                                                                                                strict=True)]))
        if stages == 1:
            r["identical_to_local"] = list(answers) == list(local_answers)
        out[f"stages{stages}"] = r
    out["speedup_over_exhaustive"] = out["stages1"]["p50_ms"] / out["stages2"]["p50_ms"]
    return out


# --- the whole run --------------------------------------------------------------------------------------

def run(mated: Mapping[str, Sequence[Template]], fingers: Sequence[int], gallery: int, *, probes: int = 240,
        time_probes: int = 10, accuracy_at: Sequence[int] = (), tile_to: Sequence[int] = (), workers: int = 1,
        seed: int = 1, plot_path: str | None = None, ray_backend: Any = None, rotated_at: Sequence[int] = (),
        progress: Progress = no_progress) -> dict[str, Any]:
    """For each person size in ``fingers``: accuracy on a held gallery of ``gallery`` templates and
    streamed ones of ``accuracy_at``; one vs two stages timed on the held gallery and on tiled
    copies up to each of ``tile_to`` templates, at the operating point measured at that size when
    streamed, else at the held gallery's. Databases holding the same fingers as another are left
    out (:func:`.benchmark.distinct_fingers`). ``ray_backend``: makes an empty Ray gallery of
    persons, on which the held gallery is enrolled and timed beside the local search.
    ``rotated_at``: sizes whose accuracy is also measured with every impression enrolled in turn
    (:func:`accuracy_rotated`; ``rotated`` in the report)."""
    mated, left_out = distinct_fingers(mated)
    report: dict[str, Any] = {"gallery": gallery, "seed": seed, "grid": list(GRID), "left_out": left_out,
                              "by_fingers": {}}
    for f in fingers:
        bench = build(mated, f, gallery, probes, seed, progress)
        held = accuracy(bench, progress)
        streamed = {size: accuracy_streamed(mated, f, size, probes, seed, workers, progress=progress)
                    for size in accuracy_at}
        rotated = {size: accuracy_rotated(mated, f, size, seed, workers, progress=progress) for size in rotated_at}
        view = bench.gallery.view()
        tp = np.unique(np.linspace(0, len(bench.probes) - 1, min(time_probes, len(bench.probes))).astype(int))
        ps, ms = [bench.probes[i] for i in tp], [bench.mates[i] for i in tp]
        op = held["operating_penetration"]
        timed = time_view(view, ps, ms, op)
        ray = None
        if ray_backend is not None:
            rb = ray_backend()
            try:
                ray = time_ray(rb, bench, ps, ms, op, [persons.search(view, p, 10) for p in ps])
            finally:
                rb.close(shutdown=False)
        tiled = []
        for size in tile_to:
            factor = max(1, math.ceil(size / (view.persons * f)))
            at = streamed.get(size, held)
            tv = tiled_view(view, factor)
            progress(f"timing {size} templates", 0, 1)
            t = time_view(tv, ps, None, at["operating_penetration"],
                          also=sorted({at["penetration_99pct_of_exhaustive_hits"], 0.01, 0.001} - {at["operating_penetration"]}),
                          exhaustive_probes=max(2, len(ps) // 2))
            t["tile"] = factor
            t["operating_point_from"] = "streamed" if size in streamed else "held"
            tiled.append(t)
            progress(f"timing {size} templates", 1, 1)
        report["by_fingers"][str(f)] = {"held": {"accuracy": held, "timing": timed, "ray": ray,
                                                 "memory": bench.gallery.memory()},
                                        "streamed": {str(k): v for k, v in streamed.items()},
                                        "rotated": {str(k): v for k, v in rotated.items()}, "tiled": tiled}
    if plot_path:
        plot(report, plot_path)
    return report


def plot(report: dict[str, Any], path: str) -> None:
    """Share of the exhaustive search's rank-1 hits the two-stage search keeps, against
    penetration (persons), one curve per person size and gallery."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(13, 5.5))
    for f, r in report["by_fingers"].items():
        for a in [r["held"]["accuracy"], *r["streamed"].values(), *r.get("rotated", {}).values()]:
            ex = max(1, a["exhaustive_rank1_hits"])
            x = [c["penetration"] for c in a["curve"]]
            label = (f"{f} finger{'s' if f != '1' else ''}, {a['templates']:,} templates ({a['persons']:,} persons; "
                     f"exhaustive rank-1 {a['exhaustive_rank1_hits']}/{a['probes']}"
                     + ("; every impression enrolled in turn)" if "by_reference_impression" in a else ")"))
            ax.plot(x, [100 * c["rank1_hit_rate"] * a["probes"] / ex for c in a["curve"]], marker=".", label=label)
            bx.plot(x, [100 * c["mate_in_shortlist"] for c in a["curve"]], marker=".", label=label)
    for a_ in (ax, bx):
        a_.set_xscale("log")
        a_.set_xlabel("penetration (share of persons the first stage passes to the matcher)")
        a_.grid(True, which="both", alpha=0.3)
        a_.axhline(100, color="k", lw=0.8)
        a_.legend(fontsize=7, loc="lower right")
    ax.set_ylabel("two-stage rank-1 hits, % of the exhaustive search's")
    ax.set_ylim(0, 106)
    ax.set_title("rank-1 kept (above 100 %: the first stage dropped\na stranger the matcher ranked above the mate)",
                 fontsize=9)
    bx.set_ylabel("mated searches whose person the first stage keeps, %")
    bx.set_ylim(0, 106)
    bx.set_title("first stage alone: the mate in the shortlist", fontsize=9)
    fig.suptitle("Ten-print 1:N, fused first stage: FVC2000/2002 B persons of F fingers among synthetic persons")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
