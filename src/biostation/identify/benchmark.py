"""1:N benchmark: rank-1 accuracy, penetration curves and search rates of both backends, exhaustive
and two-stage, over FVC mated searches hidden in a synthetic background. ``biostation bench
identify`` is a thin command over :func:`run`.

**Protocol.** For each finger of the given real databases, its first impression is enrolled among
``gallery - fingers`` synthetic templates (:mod:`.synthetic`); its other impressions are searched
(``probes`` of them, spread over the fingers, the same ones at every size); a database holding
the same fingers as another one given is left out (:func:`distinct_fingers`). A search is a rank-1
hit when the finger's reference comes first. From one exhaustive pass (every score kept) and the
probe's screening distances, the two-stage rank-1 hit rate is computed at every penetration of a
grid (the shortlist is the nearest codes; the matcher's scores are those of the exhaustive pass):
that is the penetration/hit-rate curve. The operating point is the smallest penetration of the grid
whose two-stage rank-1 hits are at least the exhaustive search's. The same curve and operating
point come for the local screen (``["local_screen"]``, ranking by
:func:`biostation.matcher.screen_many` instead of code distance), from the same exhaustive pass.
Then the searches (exhaustive, two-stage with codes, two-stage with the local screen) are timed
side by side on the same probes, one at a time, in this process (and on a Ray cluster when asked).

**Tiling.** Building a gallery costs about 4 ms of CPU a template (generating and preparing), so
larger galleries are timed over copies of the last distinct one: the first stage scans a
screening index holding the distinct gallery's codes ``tile`` times over (row ``r`` is a copy of
distinct row ``r mod n``), and the matcher scores each shortlisted row on the distinct gallery's
arrays at ``r mod n`` (the same arrays a materialized copy would hold, so the same work per
template; the gallery's arrays are held once, the codes ``tile`` times: 10^7 templates need
10^7 x :data:`.params.CODE_BYTES` bytes, not 10^7 full templates). Scan and scoring costs depend
on the number of rows and their arrays, not on who is in them. Accuracy is only ever reported on
the distinct gallery.

**Streaming.** Accuracy over galleries too large to hold (10^6 templates are 2 GB of matcher
arrays and take about 50 core-minutes to build) comes from :func:`accuracy_streamed`: the gallery
:func:`build` would enrol, row for row, generated and scored a chunk at a time in worker
processes, keeping only each probe's scores and screening distances; it reports what
:func:`accuracy` reports for the gallery held whole.

**The background's realism for the first stage.** Beside the matcher's impostor scores, the report
compares the screening-code distances of the real probes to real impostors (the other fingers'
FVC impressions) and to synthetic templates, and the mates' first-stage ranks among each
background: when synthetic templates sit farther from real probes than real strangers do, the
penetration measured over a synthetic background is optimistic.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import matcher
from ..matcher.prepare import SearchTemplate, pack, prepare
from ..templates.model import Template
from . import params as IP
from . import screening, synthetic
from .local import LocalBackend

Progress = Callable[[str, int, int], None]
#: references sent to the Ray gallery per bulk insert call
_INSERT_BATCH = 2000
#: penetration grid of the curve (fraction of the gallery)
GRID = tuple(float(x) for x in np.unique(np.round(np.geomspace(1e-3, 1.0, 31), 5)))


def no_progress(label: str, done: int, total: int) -> None:
    pass


#: databases whose fingers are another database's, captured on another sensor, finger for finger:
#: FVC2000 set B's DB2_B (capacitive) holds DB1_B's (optical) ten fingers in the same order.
#: Measured here with the biostation extractor and matcher: finger ``i`` of one against finger
#: ``i`` of the other scores 5,000-5,500 on average (mates within one database: 8,000-12,000),
#: every other pairing of fingers over the eight databases 320-1,170. Counted as strangers, they turned
#: 27 of the 85 exhaustive rank-1 misses among 20,000 templates (560 searches) into false misses
SAME_FINGERS_AS = {"fvc2000/DB2_B": "fvc2000/DB1_B"}


def distinct_fingers(mated: Mapping[str, Sequence[Template]]) -> tuple[dict[str, Sequence[Template]], list[str]]:
    """``mated`` without the databases whose fingers another database given holds already
    (:data:`SAME_FINGERS_AS`), and the databases left out: each finger must be one identity."""
    present = {f.rsplit("/", 1)[0] for f in mated}
    drop = sorted(db for db, same in SAME_FINGERS_AS.items() if db in present and same in present)
    return {f: v for f, v in mated.items() if f.rsplit("/", 1)[0] not in drop}, drop


@dataclass
class Gallery:
    """A built benchmark gallery: the local backend, the mated probes and their references."""

    local: LocalBackend
    probes: list[SearchTemplate]
    mates: list[str]
    fingers: int
    synthetic: list[Template]
    #: (referenceId, template) in enrolment order, for enrolling the same gallery elsewhere
    enrolled: list[tuple[str, Template]]


def build(mated: Mapping[str, Sequence[Template]], size: int, probes: int, seed: int = 1,
          progress: Progress = no_progress) -> Gallery:
    """Enrol one impression of every finger of ``mated`` among synthetic templates (``size`` in
    all) and pick ``probes`` of the other impressions, round-robin over the fingers."""
    fingers = sorted(mated)
    if size < len(fingers):
        raise ValueError(f"a gallery of {size} cannot hold the {len(fingers)} mated references")
    gen = synthetic.Generator(seed)
    g = LocalBackend()
    nsyn = size - len(fingers)
    # the mated references sit at spread positions, so enrolment order favours none of them
    slots = set(reference_rows(size, len(fingers)).tolist())
    fi, si = 0, 0
    syn: list[Template] = []
    enrolled: list[tuple[str, Template]] = []
    for pos in range(size):
        if pos in slots and fi < len(fingers):
            rid, t = f"ref/{fingers[fi]}", mated[fingers[fi]][0]
            fi += 1
        else:
            rid, t = f"syn/{si}", gen.template(si)
            if len(syn) < 2000:
                syn.append(t)
            si += 1
        g.insert(rid, t)
        enrolled.append((rid, t))
        if pos % 1000 == 999 or pos == size - 1:
            progress(f"gallery {size}", pos + 1, size)
    assert si == nsyn
    chosen = _choose_probes(mated, probes)
    return Gallery(local=g, probes=[prepare(t) for _, t in chosen], mates=[f"ref/{f}" for f, _ in chosen],
                   fingers=len(fingers), synthetic=syn, enrolled=enrolled)


def reference_rows(size: int, fingers: int) -> np.ndarray:
    """Rows of the mated references in a gallery of ``size``: spread evenly, so that enrolment
    order (which breaks score ties) favours none of them."""
    return np.linspace(0, size - 1, fingers).astype(np.int64)


def _choose_probes(mated: Mapping[str, Sequence[Template]], probes: int) -> list[tuple[str, Template]]:
    """``probes`` impressions other than each finger's first, round-robin over the fingers."""
    fingers = sorted(mated)
    chosen: list[tuple[str, Template]] = []
    round_ = 1
    while len(chosen) < probes and any(len(v) > round_ for v in mated.values()):
        for f in fingers:
            if len(mated[f]) > round_ and len(chosen) < probes:
                chosen.append((f, mated[f][round_]))
        round_ += 1
    return chosen


def _nearest_first(dist: np.ndarray) -> np.ndarray:
    """Row numbers by ``dist``, nearest first, ties by row: the order a first stage ranks them in."""
    return np.lexsort((np.arange(len(dist)), dist))


def _rank1(scores: np.ndarray, mate: int, rows: np.ndarray | None = None) -> bool:
    """Is ``mate`` first among ``rows`` (all when None), ties going to the earlier enrolment?"""
    s = scores if rows is None else scores[rows]
    idx = np.arange(len(scores)) if rows is None else rows
    if not np.any(idx == mate):
        return False
    m = scores[mate]
    return not np.any((s > m) | ((s == m) & (idx < mate)))  # one pass; no sort of the shortlist


class Tally:
    """Rank-1, score gaps, first-stage mate ranks and the two-stage curve, one probe at a time."""

    def __init__(self, n: int):
        self.n = n
        self.hits, self.gaps, self.mate_ranks, self.probes = 0, [], [], 0
        self.curve_hits = np.zeros(len(GRID), np.int64)

    def add(self, scores: np.ndarray, dist: np.ndarray, mate: int, order: np.ndarray | None = None) -> None:
        """One mated search: its matcher score for every row, its screening distance to every
        row, and the row of its mate (``order``: :func:`_nearest_first` of ``dist``, when known)."""
        n = self.n
        self.probes += 1
        self.hits += _rank1(scores, mate)
        others = np.delete(scores, mate)
        self.gaps.append(int(scores[mate]) - int(others.max()) if len(others) else int(scores[mate]))
        order = _nearest_first(dist) if order is None else order
        pos = int(np.nonzero(order == mate)[0][0])
        self.mate_ranks.append(pos / n)
        for j, pen in enumerate(GRID):
            m = screening.shortlist_size(n, pen)
            if pos < m:
                self.curve_hits[j] += _rank1(scores, mate, np.sort(order[:m]))

    def report(self) -> dict[str, Any]:
        n, probes, ex_hits, curve_hits = self.n, self.probes, self.hits, self.curve_hits

        def first(share: float) -> float:
            ok = [j for j, h in enumerate(curve_hits) if h >= share * ex_hits]
            return GRID[ok[0]] if ok else 1.0

        op = first(1.0)
        ranks = np.array(self.mate_ranks)
        gaps = self.gaps
        return {
            "gallery": n,
            "probes": probes,
            "exhaustive_rank1_hits": int(ex_hits),
            "exhaustive_rank1_hit_rate": ex_hits / probes,
            "score_gap_median": float(np.median(gaps)), "score_gap_p10": float(np.percentile(gaps, 10)),
            "curve": [{"penetration": pen, "shortlist": screening.shortlist_size(n, pen),
                       "rank1_hit_rate": int(h) / probes,
                       "mate_in_shortlist": float(np.mean(ranks < screening.shortlist_size(n, pen) / n))}
                      for pen, h in zip(GRID, curve_hits, strict=True)],
            # the first stage's rank of the mates (share of the gallery ranked above them)
            "mate_rank_median": float(np.median(ranks)), "mate_rank_p95": float(np.percentile(ranks, 95)),
            "mate_rank_worst": float(ranks.max()),
            "operating_penetration": op,
            "operating_shortlist": screening.shortlist_size(n, op),
            # for the record: where the two-stage search keeps 99 % and 95 % of the exhaustive hits
            "penetration_99pct_of_exhaustive_hits": first(0.99),
            "penetration_95pct_of_exhaustive_hits": first(0.95),
        }


def _first_rank(key: np.ndarray, rows: np.ndarray, at: int) -> int:
    """Place of ``rows[at]`` when ``rows`` are ranked by ``key`` (lower first, ties: earlier row)."""
    k, r = key[at], rows[at]
    return int(np.count_nonzero((key < k) | ((key == k) & (rows < r))))


class CascadeTally:
    """The cascade (codes, then the local screen, then the matcher), one probe at a time: for each
    codes penetration of :data:`GRID`, the mate's place among the codes shortlist ranked by the
    local screen, and the best place of a reference that outscores the mate in the matcher. At
    :meth:`report` the local screen's shortlist size is fixed, and a search is a rank-1 hit when
    the mate is in that shortlist and no reference that outscores it is."""

    def __init__(self, n: int):
        self.n = n
        self.hits = 0
        self.places: list[np.ndarray] = []  # per probe: (len(GRID), 2) mate place, best beater place

    def add(self, scores: np.ndarray, dist: np.ndarray, near: np.ndarray, mate: int,
            order: np.ndarray | None = None) -> None:
        """One mated search: matcher scores, code distances and local-screen distances (lower =
        nearer) of every row, and the mate's row (``order``: :func:`_nearest_first` of ``dist``,
        when known)."""
        n = self.n
        self.hits += _rank1(scores, mate)
        order = _nearest_first(dist) if order is None else order
        pos = int(np.nonzero(order == mate)[0][0])
        sm = scores[mate]
        beats = (scores > sm) | ((scores == sm) & (np.arange(n) < mate))
        out = np.full((len(GRID), 2), n + 1, np.int64)  # n + 1: not in the codes shortlist / no beater
        for j, pen in enumerate(GRID):
            m1 = screening.shortlist_size(n, pen)
            if pos >= m1:
                continue
            rows = np.sort(order[:m1])
            key = near[rows]
            out[j, 0] = _first_rank(key, rows, int(np.searchsorted(rows, mate)))
            b = np.flatnonzero(beats[rows])
            if len(b):  # the beater the local screen ranks first: lowest distance, then earliest row
                kb = key[b]
                best = b[np.flatnonzero(kb == kb.min())[0]]
                out[j, 1] = _first_rank(key, rows, int(best))
        self.places.append(out)

    def report(self, local_penetration: float) -> dict[str, Any]:
        """The curve over the codes penetration, the local screen passing
        ``shortlist_size(n, local_penetration)`` references to the matcher, and the operating
        point: the smallest codes penetration whose rank-1 hits are at least the exhaustive's."""
        n, probes = self.n, len(self.places)
        m = screening.shortlist_size(n, local_penetration)
        pl = np.stack(self.places) if self.places else np.zeros((0, len(GRID), 2), np.int64)
        found = pl[:, :, 0] < m  # the mate survives both screens
        hit = found & (pl[:, :, 1] >= m)
        curve = [{"penetration": pen, "shortlist": screening.shortlist_size(n, pen),
                  "rank1_hit_rate": float(hit[:, j].sum()) / max(probes, 1),
                  "mate_in_shortlist": float(found[:, j].sum()) / max(probes, 1)} for j, pen in enumerate(GRID)]
        ok = [j for j in range(len(GRID)) if hit[:, j].sum() >= self.hits]
        op = GRID[ok[0]] if ok else 1.0
        return {"gallery": n, "probes": probes, "exhaustive_rank1_hits": int(self.hits),
                "exhaustive_rank1_hit_rate": self.hits / max(probes, 1),
                "local_penetration": local_penetration, "local_shortlist": m, "curve": curve,
                "operating_penetration": op, "operating_shortlist": screening.shortlist_size(n, op)}


class Tallies:
    """The three first stages' tallies from one exhaustive pass: codes, local screen, cascade."""

    def __init__(self, n: int):
        self.codes, self.local, self.cascade = Tally(n), Tally(n), CascadeTally(n)

    def add(self, scores: np.ndarray, dist: np.ndarray, near: np.ndarray, mate: int) -> None:
        order = _nearest_first(dist)  # the codes' ranking, shared by the codes and cascade tallies
        self.codes.add(scores, dist, mate, order)
        self.local.add(scores, near, mate)
        self.cascade.add(scores, dist, near, mate, order)

    def report(self) -> dict[str, Any]:
        """The codes' report, with ``["local_screen"]`` and ``["cascade"]`` (its local screen
        keeping the local screen's own operating penetration)."""
        local = self.local.report()
        return self.codes.report() | {"local_screen": local,
                                      "cascade": self.cascade.report(local["operating_penetration"])}


def local_screen(p: SearchTemplate, g: Any, index: np.ndarray | None = None) -> np.ndarray:
    """The local screen's distance of ``p`` to gallery rows (lower = nearer, as code distances):
    minus its :func:`biostation.matcher.screen_many` score."""
    return -matcher.screen_many(p, g, index, top=IP.LOCAL_SCREEN_TOP)


def accuracy(gal: Gallery, progress: Progress = no_progress) -> dict[str, Any]:
    """Exhaustive rank-1, the score gap, and the two-stage curve over :data:`GRID` of the codes
    screen; ``["local_screen"]``: the same for the local screen, and ``["cascade"]`` the cascade's
    curve over its codes penetration (:class:`CascadeTally`), from the same exhaustive pass."""
    v = gal.local.view()
    g, screen, ids = v.packed, v.screening, v.reference_ids
    where = {r: i for i, r in enumerate(ids)}
    tallies = Tallies(len(ids))
    for pi, (p, mate_id) in enumerate(zip(gal.probes, gal.mates, strict=True)):
        tallies.add(matcher.match_many(p, g), screen.distances(screening.code(p)), local_screen(p, g), where[mate_id])
        progress(f"accuracy {len(ids)}", pi + 1, len(gal.probes))
    return tallies.report()


# --- accuracy over galleries too large to hold: built and scored a chunk at a time --------------

_chunk_state: dict[str, Any] = {}


def _chunk_init(probes: list[SearchTemplate], refs: list[Template], slots: np.ndarray, seed: int) -> None:
    screening._faiss()  # one thread per worker
    _chunk_state.update(probes=probes, codes=screening.codes(probes), refs=refs, slots=slots,
                        gen=synthetic.Generator(seed))


def _chunk_scores(start: int, stop: int) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """Rows ``start..stop`` of the gallery :func:`build` would enrol (the same references and
    synthetic templates at the same rows), scored against every probe: matcher scores int32,
    screening-code distances uint16 and local-screen distances int32, each ``(probes, stop - start)``."""
    st = _chunk_state
    slots, refs, gen = st["slots"], st["refs"], st["gen"]
    items = []
    for row in range(start, stop):
        k = int(np.searchsorted(slots, row))
        if k < len(slots) and slots[k] == row:
            items.append(prepare(refs[k]))
        else:  # synthetic index: the rows before this one that are not mated references
            items.append(prepare(gen.template(row - k)))
    g = pack(items)
    index = screening.ScreeningIndex(screening.codes(items))
    probes, codes = st["probes"], st["codes"]
    scores = np.empty((len(probes), stop - start), np.int32)
    dist = np.empty((len(probes), stop - start), np.uint16)
    near = np.empty((len(probes), stop - start), np.int32)
    for i, p in enumerate(probes):
        scores[i] = matcher.match_many(p, g)
        dist[i] = index.distances(codes[i])
        near[i] = local_screen(p, g)
    return start, scores, dist, near


def accuracy_streamed(mated: Mapping[str, Sequence[Template]], size: int, probes: int, seed: int = 1,
                      workers: int = 1, chunk: int = 10_000, progress: Progress = no_progress) -> dict[str, Any]:
    """What :func:`accuracy` reports for ``build(mated, size, probes, seed)``, without holding the
    gallery: it is generated, prepared and scored ``chunk`` rows at a time in ``workers``
    processes (0: in this one), and only every probe's scores and both screens' distances are kept
    (10 bytes per probe and row: 10^6 rows and 100 probes take 1 GB)."""
    fingers = sorted(mated)
    if size < len(fingers):
        raise ValueError(f"a gallery of {size} cannot hold the {len(fingers)} mated references")
    chosen = _choose_probes(mated, probes)
    ps = [prepare(t) for _, t in chosen]
    slots = reference_rows(size, len(fingers))
    refs = [mated[f][0] for f in fingers]
    mate_rows = [int(slots[fingers.index(f)]) for f, _ in chosen]
    t0 = time.perf_counter()
    scores, dist, near = score_in_chunks(size, len(ps), (np.int32, np.uint16, np.int32), _chunk_init,
                                         (ps, refs, slots, seed), _chunk_scores, chunk, workers,
                                         f"scoring a {size}-template gallery", progress)
    built = time.perf_counter() - t0
    tallies = Tallies(size)
    for i, mate in enumerate(mate_rows):
        tallies.add(scores[i], dist[i], near[i], mate)
        progress(f"accuracy {size}", i + 1, len(ps))
    out = tallies.report()
    out["streamed"] = {"chunk": chunk, "workers": workers, "build_and_score_s": built,
                       "worker_s_per_template": built * max(workers, 1) / size}
    return out


def score_in_chunks(rows: int, probes: int, dtypes: tuple[Any, ...], init: Callable[..., None],
                    initargs: tuple, work: Callable[[int, int], tuple[Any, ...]], chunk: int,
                    workers: int, label: str, progress: Progress) -> tuple[np.ndarray, ...]:
    """Arrays ``(probes, rows)`` of ``dtypes`` (scores, distances...) gathered from
    ``work(start, stop)``, which returns ``start`` and one ``(probes, stop - start)`` block of each,
    over chunks of ``chunk`` rows, run here (``workers`` 0) or in ``workers`` spawned processes,
    each set up by ``init(*initargs)`` (both module-level functions, so that a spawned process can
    import them)."""
    out = tuple(np.empty((probes, rows), dt) for dt in dtypes)
    bounds = [(a, min(rows, a + chunk)) for a in range(0, rows, chunk)]
    done = 0

    def keep(res: tuple[Any, ...]) -> None:
        nonlocal done
        a, blocks = res[0], res[1:]
        for arr, block in zip(out, blocks, strict=True):
            arr[:, a:a + block.shape[1]] = block
        done += blocks[0].shape[1]
        progress(label, done, rows)

    if workers <= 0:
        init(*initargs)
        for a, b in bounds:
            keep(work(a, b))
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn, not fork: faiss's and OpenMP's threads do not survive a fork
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=init,
                                 initargs=initargs) as pool:
            for res in pool.map(work, *zip(*bounds, strict=True)):
                keep(res)
    return out


def latencies(fn: Callable[[Any], Any], probes: Sequence[Any]) -> tuple[list, dict]:
    """``fn`` of each probe, one at a time: the answers, and p50/p99 (ms) and searches per second."""
    answers, times = [], []
    for p in probes:
        t0 = time.perf_counter()
        answers.append(fn(p))
        times.append(time.perf_counter() - t0)
    t = np.array(times)
    return answers, {"searches": len(t), "p50_ms": 1e3 * float(np.median(t)), "p99_ms": 1e3 * float(np.percentile(t, 99)),
                     "searches_per_s": len(t) / float(t.sum())}


def rank1_rate(answers: Sequence[Sequence[Any]], mates: Sequence[str]) -> float:
    return float(np.mean([bool(a) and a[0].reference_id == m for a, m in zip(answers, mates, strict=True)]))


def time_backend(backend: Any, gal: Gallery, probes: int, stages: int, penetration: float,
                 screen: str = "codes", first_penetration: float | None = None) -> tuple[list, dict]:
    """Searches (top 10) of the first ``probes`` probes, one at a time, on ``backend``."""
    pick = np.unique(np.linspace(0, len(gal.probes) - 1, min(probes, len(gal.probes))).astype(int))
    ps = [gal.probes[i] for i in pick]
    kw: dict[str, Any] = {"stages": stages, "penetration": penetration}
    if stages == 2:
        kw["screen"] = screen
    if first_penetration is not None:
        kw["first_penetration"] = first_penetration
    answers, r = latencies(lambda p: backend.search(p, 10, **kw), ps)
    r["rank1_hit_rate"] = rank1_rate(answers, [gal.mates[i] for i in pick])
    return answers, r


def tiled_index(codes: np.ndarray, factor: int) -> screening.ScreeningIndex:
    """A screening index of ``factor`` copies of ``codes`` end to end (timing only; row ``r`` is
    a copy of row ``r mod len(codes)``). Added a copy at a time: no second full-size array."""
    index = screening.ScreeningIndex(codes)
    for _ in range(factor - 1):
        index.add(codes)
    return index


def time_tiled(gal: Gallery, templates: int, probes: int, penetration: float,
               also: Sequence[float] = (), exhaustive_probes: int | None = None,
               local_penetration: float | None = None, cascade_penetration: float | None = None) -> dict[str, Any]:
    """Exhaustive vs two-stage search time over ``templates`` rows tiled from the gallery (see the
    module docstring), side by side in this process (two-stage at ``penetration`` and at each of
    ``also``), plus the first stage alone; with ``local_penetration``, the two-stage search with
    the local screen too (``["local_screen"]``), and with ``cascade_penetration`` as well the
    cascade (codes keeping that share, the local screen ``local_penetration``: ``["cascade"]``).
    The exhaustive search is timed on the first ``exhaustive_probes`` probes only (default: all;
    it costs about 10 s per 10^6 rows)."""
    v = gal.local.view()
    g, codes = v.packed, v.codes
    n0 = len(codes)
    factor = math.ceil(templates / n0)
    screen = tiled_index(codes, factor)
    n = len(screen)
    m = screening.shortlist_size(n, penetration)
    ps = [gal.probes[i] for i in np.unique(np.linspace(0, len(gal.probes) - 1, probes).astype(int))]

    def rerank(p: SearchTemplate, rows: np.ndarray) -> np.ndarray:
        return matcher.match_many(p, g, rows % n0)

    def two(p: SearchTemplate, mm: int = m) -> np.ndarray:
        return rerank(p, screen.shortlist(screening.code(p), mm))

    _, ex = latencies(lambda p: rerank(p, np.arange(n, dtype=np.int64)), ps[:exhaustive_probes])
    _, st = latencies(two, ps)
    _, scan = latencies(lambda p: screen.shortlist(screening.code(p), m), ps)
    # the scan rate: at the operating shortlist, or at 1 % where that is the whole gallery (which
    # the codes pass on without scanning: a rate from that time would count no scan)
    m_rate = m if m < n else screening.shortlist_size(n, 0.01)
    rate_per_s = None
    if m_rate < n:
        rate = scan if m_rate == m else latencies(lambda p: screen.shortlist(screening.code(p), m_rate), ps)[1]
        rate_per_s = n / (rate["p50_ms"] / 1e3)
    out = {"templates": n, "tile": factor, "shortlist": m, "penetration": penetration,
           "screening_bytes": screen.nbytes, "gallery_bytes_held": g.nbytes,
           "exhaustive": ex, "two_stage": st, "first_stage": scan,
           "first_stage_templates_per_s": rate_per_s, "first_stage_rate_shortlist": m_rate if rate_per_s else None,
           "speedup_over_exhaustive": ex["p50_ms"] / st["p50_ms"], "other_penetrations": []}
    for pen in also:
        mm = screening.shortlist_size(n, pen)
        _, st2 = latencies(lambda p, mm=mm: two(p, mm), ps)
        out["other_penetrations"].append({"penetration": pen, "shortlist": mm, "two_stage": st2,
                                          "speedup_over_exhaustive": ex["p50_ms"] / st2["p50_ms"]})
    if local_penetration is not None:
        ml = screening.shortlist_size(n, local_penetration)
        tiled_rows = np.arange(n, dtype=np.int64) % n0

        def local_scan(p: SearchTemplate) -> np.ndarray:
            return screening.top_rows(matcher.screen_many(p, g, tiled_rows, top=IP.LOCAL_SCREEN_TOP), ml)

        _, lt = latencies(lambda p: rerank(p, local_scan(p)), ps)
        _, lscan = latencies(local_scan, ps)
        out["local_screen"] = {"penetration": local_penetration, "shortlist": ml, "two_stage": lt,
                               "first_stage": lscan, "first_stage_templates_per_s": n / (lscan["p50_ms"] / 1e3),
                               "speedup_over_exhaustive": ex["p50_ms"] / lt["p50_ms"]}
        if cascade_penetration is not None:
            mc = screening.shortlist_size(n, cascade_penetration)

            def cascade_scan(p: SearchTemplate) -> np.ndarray:
                rows = screen.shortlist(screening.code(p), mc)
                if ml >= len(rows):
                    return rows
                near = matcher.screen_many(p, g, rows % n0, top=IP.LOCAL_SCREEN_TOP)
                return rows[screening.top_rows(near, ml)]

            _, ct = latencies(lambda p: rerank(p, cascade_scan(p)), ps)
            _, cscan = latencies(cascade_scan, ps)
            out["cascade"] = {"penetration": cascade_penetration, "codes_shortlist": mc,
                              "local_penetration": local_penetration, "shortlist": ml, "two_stage": ct,
                              "first_stage": cscan, "speedup_over_exhaustive": ex["p50_ms"] / ct["p50_ms"]}
    return out


def code_distances(mated: Mapping[str, Sequence[Template]], syn: Sequence[Template],
                   probes: Sequence[SearchTemplate], mates: Sequence[str]) -> dict[str, Any]:
    """The first stage's view of the background: screening-code distances of every real template
    to the real templates of other fingers (``real``) and to the synthetic ones (``synthetic``),
    and each probe's mate rank (share of the background nearer than the mate) among each
    background: the other fingers' impressions, or as many synthetic templates."""
    fingers = [f for f, ts in mated.items() for _ in ts]
    real = screening.codes([prepare(t) for ts in mated.values() for t in ts])
    synth = screening.codes([prepare(t) for t in syn])
    finger = np.array(fingers)
    ri, si = screening.ScreeningIndex(real), screening.ScreeningIndex(synth)
    d_real, d_syn = [], []
    for i, c in enumerate(real):
        d_real.append(ri.distances(c)[finger != finger[i]])
        d_syn.append(si.distances(c))
    first = {}
    for f in mated:
        first.setdefault(f, fingers.index(f))
    rank_real, rank_syn = [], []
    for p, mate in zip(probes, mates, strict=True):
        f = mate.removeprefix("ref/")
        c = screening.code(p)
        dm = int(np.unpackbits(c ^ real[first[f]]).sum())
        dr = ri.distances(c)[finger != f]
        ds = si.distances(c)
        rank_real.append(float(np.mean(dr < dm)))
        rank_syn.append(float(np.mean(ds < dm)))
    return {"real": np.concatenate(d_real), "synthetic": np.concatenate(d_syn),
            "mate_rank_real": np.array(rank_real), "mate_rank_synthetic": np.array(rank_syn)}


def impostor_scores(mated: Mapping[str, Sequence[Template]], syn: Sequence[Template], rows: int = 200,
                    seed: int = 3) -> dict[str, np.ndarray]:
    """Impostor scores among the real templates (pairs of different fingers) and among the
    synthetic ones (each its own finger): ``rows`` templates of each population, drawn at random,
    each scored against all the others of its population."""
    rng = np.random.default_rng(seed)
    out = {}
    real = [(f, t) for f, ts in mated.items() for t in ts]
    for name, items in (("real", real), ("synthetic", [(str(i), t) for i, t in enumerate(syn)])):
        sp = [prepare(t) for _, t in items]
        finger = np.array([f for f, _ in items])
        g = pack(sp)
        scores = []
        for i in rng.permutation(len(sp))[:rows]:
            s = matcher.match_many(sp[i], g)
            scores.append(s[finger != finger[i]])
        out[name] = np.concatenate(scores) if scores else np.zeros(0, np.int32)
    return out


def plot(report: dict[str, Any], stats: dict[str, dict[str, np.ndarray]], impostors: dict[str, np.ndarray],
         path: str, codes: dict[str, np.ndarray] | None = None) -> None:
    """Penetration/hit-rate curves, synthetic vs real statistics, impostor scores and impostor
    screening-code distances, one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(3, 4, figsize=(20, 12.5))
    sizes = [(size, r["accuracy"]) for size, r in report["sizes"].items()]
    sizes += [(f"{size} (streamed)", acc) for size, acc in report.get("streamed", {}).items()]
    stages = ((None, "codes: penetration vs hit rate", "penetration (share of the gallery the matcher scores)"),
              ("local_screen", "local screen: penetration vs hit rate",
               "penetration (share of the gallery the matcher scores)"),
              ("cascade", "cascade: codes penetration vs hit rate\n(the local screen then keeps its own "
               "operating share)", "codes penetration (share of the gallery the local screen ranks)"))
    for a, (key, title, xlabel) in zip(ax[0, :3], stages, strict=True):
        for size, acc in sizes:
            x = acc if key is None else acc.get(key)
            if x is None:
                continue
            pen = [c["penetration"] for c in x["curve"]]
            a.plot(pen, [c["rank1_hit_rate"] for c in x["curve"]], marker=".", label=f"{size}: two-stage rank-1")
            color = a.lines[-1].get_color()
            a.plot(pen, [c["mate_in_shortlist"] for c in x["curve"]], ls=":", color=color,
                   label=f"{size}: mate in shortlist")
            a.axhline(x["exhaustive_rank1_hit_rate"], ls="--", lw=0.8, color=color)
            a.axvline(x["operating_penetration"], ls="-.", lw=0.8, color=color)
        a.set_xscale("log")
        a.set_xlabel(xlabel)
        a.set_ylabel("hit rate")
        a.set_title(f"{title}\n(dashed: exhaustive rank-1; dash-dot: operating point)", fontsize=10)
        a.legend(fontsize=7, loc="lower right")
    panels = [("count", "minutiae per template"), ("pair_distance", "pair distance (px at 500 dpi)"),
              ("direction", "minutia direction (rad)"), ("x", "x - centroid (px)")]
    for (key, label), a in zip(panels, [ax[1, 0], ax[1, 1], ax[1, 2], ax[1, 3]], strict=True):
        bins = 40
        for name in ("real", "synthetic"):
            a.hist(stats[name][key], bins=bins, density=True, histtype="step", label=name)
        a.set_title(f"{label}: KS {report['synthetic_vs_real'][key]['ks']:.3f}")
        a.legend(fontsize=7)
    a = ax[2, 0]
    hi = max(float(np.percentile(np.concatenate(list(impostors.values())), 99.9)), 1.0)
    for name, s in impostors.items():
        a.hist(np.clip(s, 0, hi), bins=60, range=(0, hi), density=True, histtype="step", label=f"{name} ({len(s)})")
    a.set_yscale("log")
    a.set_title(f"impostor scores, FVC vs synthetic: KS {report['impostor_ks']:.3f}")
    a.set_xlabel("matcher score")
    a.legend(fontsize=7)
    a = ax[2, 1]
    if codes is not None:
        for name in ("real", "synthetic"):
            a.hist(codes[name], bins=60, density=True, histtype="step",
                   label=f"real probe vs {name} ({len(codes[name])})")
        cd = report["code_distances"]
        a.set_title(f"screening-code distance to impostors: KS {cd['ks']:.3f}")
        a.set_xlabel("Hamming distance (bits)")
        a.legend(fontsize=7)
        a = ax[0, 3]
        for name in ("real", "synthetic"):
            r = np.sort(codes[f"mate_rank_{name}"])
            a.plot(np.maximum(r, 1e-4), np.arange(1, len(r) + 1) / len(r), label=f"{name} background")
        a.set_xscale("log")
        a.set_xlabel("share of the background the first stage ranks above the mate")
        a.set_ylabel("share of mated searches")
        a.set_title("mate rank by the codes: real vs synthetic strangers")
        a.legend(fontsize=7)
    _plot_latency(ax[2, 2], report)
    ax[2, 3].axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_latency(a: Any, report: dict[str, Any]) -> None:
    """p50 search time against gallery size, one line per search (local backend; tiled sizes
    marked with open symbols)."""
    modes = (("exhaustive", "stages1", "exhaustive", None), ("two-stage, codes", "stages2", "two_stage", None),
             ("two-stage, local screen", "stages2_local_screen", "two_stage", "local_screen"),
             ("two-stage, cascade", "stages2_cascade", "two_stage", "cascade"))
    for label, key, tkey, sub in modes:
        pts = [(int(size), r["local"][key]["p50_ms"]) for size, r in report["sizes"].items() if key in r["local"]]
        tiled = []
        for t in report.get("tiled", []):
            x = t if sub is None else t.get(sub)
            if x is not None:
                tiled.append((t["templates"], x[tkey]["p50_ms"]))
        if not pts and not tiled:
            continue
        xs, ys = zip(*sorted(pts + tiled), strict=True)
        a.plot(xs, ys, marker="o", label=label)
        if tiled:
            a.plot(*zip(*tiled, strict=True), ls="", marker="o", mfc="white", color=a.lines[-1].get_color())
    a.axhline(200, ls=":", color="grey", lw=0.8)
    a.set_xscale("log")
    a.set_yscale("log")
    a.set_xlabel("templates in the gallery (open symbols: tiled)")
    a.set_ylabel("p50 search time, one core (ms)")
    a.set_title("search time (dotted: 0.2 s)")
    a.legend(fontsize=7)


def run(mated: Mapping[str, Sequence[Template]], sizes: Sequence[int], *, probes: int = 100,
        time_probes: int = 20, stages: Sequence[int] = (1, 2), ray_backend: Callable[[], Any] | None = None,
        tile_to: int | Sequence[int] | None = None, seed: int = 1, plot_path: str | None = None,
        accuracy_at: Sequence[int] = (), workers: int = 1, progress: Progress = no_progress) -> dict[str, Any]:
    """The whole benchmark (see the module docstring); ``ray_backend``: makes an empty Ray
    gallery, timed beside the local one at every size; ``tile_to``: sizes timed over copies of
    the last gallery (``report["tiled"]``, one entry per size; the exhaustive search on two
    probes only above 2 x 10^6 rows); ``accuracy_at``: sizes whose accuracy is measured on a
    gallery generated and scored a chunk at a time in ``workers`` processes
    (:func:`accuracy_streamed`; ``report["streamed"]``); a tiled size that is also one of these is
    timed at its own operating point. Databases :func:`distinct_fingers` finds twice are left
    out (``report["left_out"]``)."""
    mated, left_out = distinct_fingers(mated)
    report: dict[str, Any] = {"matcher": matcher.BACKEND, "code_bytes": IP.CODE_BYTES, "fingers": len(mated),
                              "left_out": left_out, "sizes": {}}
    real = [t for ts in mated.values() for t in ts]
    last: Gallery | None = None
    for size in sizes:
        gal = build(mated, size, probes, seed, progress)
        acc = accuracy(gal, progress)
        pen = acc["operating_penetration"]
        r: dict[str, Any] = {"accuracy": acc, "memory": gal.local.memory(), "local": {}}
        lpen = acc["local_screen"]["operating_penetration"]
        cpen = acc["cascade"]["operating_penetration"]
        # the two-stage searches beside the codes': name, report key, screen, codes penetration
        others = (("local", "_local_screen", "local", None), ("cascade", "_cascade", "cascade", cpen))
        answers: dict[Any, list] = {}
        for st in stages:
            answers[st], r["local"][f"stages{st}"] = time_backend(gal.local, gal, time_probes, st, pen)
        if 2 in stages:
            for name, key, scr, first in others:
                answers[name], r["local"][f"stages2{key}"] = time_backend(gal.local, gal, time_probes, 2, lpen,
                                                                          scr, first)
        if 1 in stages and 2 in stages:
            for key in ("", "_local_screen", "_cascade"):
                r["local"][f"speedup{key}_over_exhaustive"] = (r["local"][f"stages2{key}"]["searches_per_s"]
                                                               / r["local"]["stages1"]["searches_per_s"])
        if ray_backend is not None:
            rb = ray_backend()
            try:
                for i in range(0, len(gal.enrolled), _INSERT_BATCH):  # each call well within the timeout
                    rb.insert_many(gal.enrolled[i:i + _INSERT_BATCH])
                r["ray"] = {"shards": rb.shards, "nodes": len({i.get("node") for i in rb.shard_info()})}
                for st in stages:
                    ans, r["ray"][f"stages{st}"] = time_backend(rb, gal, time_probes, st, pen)
                    r["ray"][f"stages{st}"]["identical_to_local"] = ans == answers[st]
                if 2 in stages:
                    for name, key, scr, first in others:
                        ans, x = time_backend(rb, gal, time_probes, 2, lpen, scr, first)
                        r["ray"][f"stages2{key}"] = x | {"identical_to_local": ans == answers[name]}
                if 1 in stages and 2 in stages:
                    for key in ("", "_local_screen", "_cascade"):
                        r["ray"][f"speedup{key}_over_exhaustive"] = (r["ray"][f"stages2{key}"]["searches_per_s"]
                                                                     / r["ray"]["stages1"]["searches_per_s"])
            finally:
                rb.close(shutdown=False)
        report["sizes"][str(size)] = r
        last = gal
    assert last is not None
    streamed: dict[int, dict[str, Any]] = {}
    for size in sorted(set(accuracy_at)):
        streamed[size] = accuracy_streamed(mated, size, probes, seed, workers, progress=progress)
    if streamed:
        report["streamed"] = {str(k): v for k, v in streamed.items()}
    targets = [tile_to] if isinstance(tile_to, int) else list(tile_to or ())
    targets = sorted(t for t in targets if t and t > last.local.count())
    if targets:
        acc = report["sizes"][str(sizes[-1])]["accuracy"]
        report["tiled"] = []
        for size in targets:
            progress(f"timing {size} templates", 0, 1)
            acc = streamed.get(size, report["sizes"][str(sizes[-1])]["accuracy"])
            report["tiled"].append(time_tiled(
                last, size, min(time_probes, 5), acc["operating_penetration"],
                also=(acc["penetration_99pct_of_exhaustive_hits"], acc["penetration_95pct_of_exhaustive_hits"], 0.01),
                exhaustive_probes=2 if size > 2_000_000 else None,
                local_penetration=acc["local_screen"]["operating_penetration"],
                cascade_penetration=acc["cascade"]["operating_penetration"]))
            progress(f"timing {size} templates", 1, 1)
    stats = {"real": synthetic.statistics(real), "synthetic": synthetic.statistics(last.synthetic)}
    report["synthetic_vs_real"] = synthetic.compare(real, last.synthetic)
    imp = impostor_scores(mated, last.synthetic[:len(real)])
    report["impostor_ks"] = synthetic.ks_distance(imp["real"].astype(float), imp["synthetic"].astype(float))
    report["impostor_percentiles"] = {k: np.percentile(v, [50, 90, 99, 99.9]).tolist() for k, v in imp.items()}
    cd = code_distances(mated, last.synthetic[:len(real)], last.probes, last.mates)
    report["code_distances"] = {
        "ks": synthetic.ks_distance(cd["real"].astype(float), cd["synthetic"].astype(float)),
        "percentiles": {k: np.percentile(cd[k], [1, 5, 50]).tolist() for k in ("real", "synthetic")},
        "mate_rank_real_background": {"median": float(np.median(cd["mate_rank_real"])),
                                      "p90": float(np.percentile(cd["mate_rank_real"], 90)),
                                      "within_1pct": float(np.mean(cd["mate_rank_real"] < 0.01))},
        "mate_rank_synthetic_background": {"median": float(np.median(cd["mate_rank_synthetic"])),
                                           "p90": float(np.percentile(cd["mate_rank_synthetic"], 90)),
                                           "within_1pct": float(np.mean(cd["mate_rank_synthetic"] < 0.01))}}
    if plot_path:
        plot(report, stats, imp, plot_path, cd)
    return report

