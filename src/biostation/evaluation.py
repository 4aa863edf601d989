"""Evaluation of the fingerprint pipeline: accuracy on FVC databases, matcher throughput, and
leave-one-database-out cross-validation of tuned parameters.

The CLI (``biostation bench``), the benchmarks and the tests share this module; the metrics
themselves (FVC EER, FMR100, protocols, DET plots) are in :mod:`biostation.matcher.evaluation`.

* :func:`run_fvc`: extract (or load) the templates of every ``<finger>_<impression>`` sample of
  each database under a folder, score all pairs, and report the FVC and all-pairs protocols,
  a 1:N rank-1 figure and the extraction and matching timings.
* :func:`run_throughput`: both matcher backends side by side on the same gallery (1:1, batched
  1:N scoring and exhaustive top-k search).
* :func:`leave_one_out`: given each candidate parameter set's EER on each database, the EER of
  every database at the set chosen *without* it (the honest figure of a tuned system on a
  sensor it was not tuned on).
* :func:`gallery_from` builds an :class:`~biostation.identify.LocalBackend` through its public
  ``insert``.

This module sits above the cores (it calls the extractor and the matcher) and below the CLI.
Cost: extraction dominates (see ``benchmarks/bench_extract.py``); scoring the 3,160 pairs of an
80-sample database takes well under a second on the native backend.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import matcher
from .matcher.evaluation import det_plot, parse_name, protocol_pairs, summarize, threshold_table
from .templates.model import Template

Progress = Callable[[str, int, int], None]

IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".bmp", ".jpg", ".jpeg", ".pgm", ".wsq")
TEMPLATE_SUFFIXES = (".iso", ".ist", ".ansi", ".bst", ".json")
#: resolutions of the FVC B sets (pixels per inch) by collection folder and database
#: (``../shared/data/fvc2002/README.md``, ``../shared/data/fvc2000/README.md``)
FVC_DPI: dict[str, dict[str, float]] = {
    "fvc2002": {"DB1": 500.0, "DB2": 569.0, "DB3": 500.0, "DB4": 500.0},
    "fvc2000": {"DB1": 500.0, "DB2": 500.0, "DB3": 500.0, "DB4": 500.0},
}
#: FVC2002 resolutions, the default collection of a database folder whose parent names none
FVC2002_DPI = FVC_DPI["fvc2002"]


def database_dpi(db: Path) -> float:
    """Resolution of an FVC database folder (``.../fvc2000/DB2_B`` -> 500): from the collection
    named by its parent folder, FVC2002's table when the parent names no known collection,
    500 for an unknown database."""
    key = db.name.split("_")[0].upper()
    table = FVC_DPI.get(db.resolve().parent.name.lower(), FVC2002_DPI)
    return table.get(key, 500.0)


def databases(root: Path) -> list[Path]:
    """The ``DB*`` subfolders of ``root``, or ``[root]`` when it has none."""
    subs = sorted(p for p in root.iterdir() if p.is_dir() and p.name.upper().startswith("DB"))
    return subs if subs else [root]


def samples(db: Path, templates: Path | None = None) -> list[tuple[str, Path | None, Path | None]]:
    """(stem, image path, template path) per sample, sorted by (finger, impression)."""
    images = {p.stem: p for p in db.glob("*") if p.suffix.lower() in IMAGE_SUFFIXES} if db.is_dir() else {}
    tdir = None
    if templates is not None:
        tdir = templates / db.name if (templates / db.name).is_dir() else templates
    tpls = {p.stem: p for p in tdir.glob("*") if p.suffix.lower() in TEMPLATE_SUFFIXES} if tdir else {}
    stems = sorted(set(tpls) if templates is not None else set(images), key=lambda s: (parse_name(s), s))
    return [(s, images.get(s), tpls.get(s)) for s in stems]


def extract_database(db: Path, dpi: float | None = None, progress: Progress | None = None
                     ) -> tuple[list[str], list[Template], list[float]]:
    """(names, templates, extraction seconds per image) of every image of one database."""
    from .fingerprint import extract, read_image

    items = samples(db)
    db_dpi = dpi if dpi is not None else database_dpi(db)
    names, tpls, times = [], [], []
    for k, (stem, image, _) in enumerate(items):
        img = read_image(image)
        t0 = time.perf_counter()
        tpls.append(extract(img, dpi=db_dpi))
        times.append(time.perf_counter() - t0)
        names.append(stem)
        if progress:
            progress(f"{db.name}: templates", k + 1, len(items))
    return names, tpls, times


def score_matrix(templates: Sequence[Template], progress: Progress | None = None, label: str = "matching"
                 ) -> tuple[np.ndarray, dict]:
    """Upper-triangular matrix of all-pairs scores (``[a, b]`` for ``a < b``) and timings."""
    t0 = time.perf_counter()
    prepared = [matcher.prepare(t) for t in templates]
    t_prepare = (time.perf_counter() - t0) / max(1, len(prepared))
    gallery = matcher.pack(prepared)
    n = len(prepared)
    scores = np.zeros((n, n), np.int64)
    t0, c0 = time.perf_counter(), time.process_time()
    for a in range(n - 1):
        scores[a, a + 1:] = matcher.match_many(prepared[a], gallery, np.arange(a + 1, n))
        if progress:
            progress(label, a + 1, n - 1)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    comparisons = n * (n - 1) // 2
    return scores, {"prepare_ms": 1e3 * t_prepare, "comparisons": comparisons, "match_wall_s": wall,
                    "match_cpu_s": cpu, "comparisons_per_s": comparisons / max(wall, 1e-9)}


def protocol_scores(names: Sequence[str], scores: np.ndarray, protocol: str = "all-pairs"
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(genuine, impostor) scores of an upper-triangular score matrix under a protocol."""
    gp, ip = protocol_pairs(list(names), protocol)
    g = np.array([scores[a, b] for a, b in gp], np.float64)
    i = np.array([scores[a, b] for a, b in ip], np.float64)
    return g, i


def rank1(names: Sequence[str], scores: np.ndarray) -> dict | None:
    """1:N figure: each finger's first impression enrolled, every other impression searched
    exhaustively; the rank-1 hit rate in percent."""
    full = scores + scores.T
    keys = [parse_name(s) for s in names]
    first: dict[str, int] = {}
    for k, (finger, imp) in enumerate(keys):
        if finger not in first or imp < keys[first[finger]][1]:
            first[finger] = k
    enrolled = np.array(sorted(first.values()))
    probes = [k for k in range(len(names)) if k not in set(enrolled.tolist())]
    if not probes or len(enrolled) < 2:
        return None
    best = enrolled[np.argmax(full[np.ix_(probes, enrolled)], axis=1)]
    hits = sum(keys[b][0] == keys[p][0] for p, b in zip(probes, best))
    return {"gallery": len(enrolled), "probes": len(probes), "rank1_hit_rate": 100.0 * hits / len(probes)}


def run_fvc(db_dir: Path, templates: Path | None = None, dpi: float | None = None,
            det: Path | None = None, progress: Progress | None = None) -> dict:
    """Accuracy of the matcher on each database under ``db_dir`` (or ``db_dir`` itself).

    Templates come from the extractor (at ``dpi``, default :func:`database_dpi`) or, with
    ``templates``, from files named like the images (``dpi`` then overrides their recorded one).
    Returns a JSON-able report: per database the ``fvc`` and ``all-pairs`` summaries, minutiae
    count, timings and rank-1 figure; their means; a threshold calibration on the pooled
    all-pairs impostors. ``det``: a PNG of the DET curves.
    """
    from .templates import load_template

    report: dict = {"backend": matcher.BACKEND, "source": "templates" if templates else "extractor",
                    "databases": {}}
    curves = {}
    pooled_imp = []
    for db in databases(db_dir):
        items = samples(db, templates)
        if len(items) < 2:
            continue
        t_extract: list[float] = []
        if templates is None:
            names, tpls, t_extract = extract_database(db, dpi, progress)
            db_dpi = dpi if dpi is not None else database_dpi(db)
        else:
            names, tpls = [], []
            for k, (stem, _, tpath) in enumerate(items):
                t = load_template(tpath)
                if dpi is not None:
                    t.dpi = float(dpi)
                names.append(stem)
                tpls.append(t)
                if progress:
                    progress(f"{db.name}: templates", k + 1, len(items))
            db_dpi = float(tpls[0].dpi)
        scores, timings = score_matrix(tpls, progress, f"{db.name}: matching")
        entry: dict = {"samples": len(tpls), "dpi": db_dpi,
                       "minutiae_mean": float(np.mean([len(t.minutiae) for t in tpls])), "timings": timings}
        if t_extract:
            entry["timings"]["extract_median_ms"] = 1e3 * float(np.median(t_extract))
            entry["timings"]["extract_p95_ms"] = 1e3 * float(np.percentile(t_extract, 95))
        ident = rank1(names, scores)
        if ident is not None:
            entry["identification"] = ident
        for protocol in ("fvc", "all-pairs"):
            g, i = protocol_scores(names, scores, protocol)
            entry[protocol] = summarize(g, i)
            if protocol == "all-pairs":
                curves[db.name] = (g, i)
                pooled_imp.append(i)
        report["databases"][db.name] = entry
    dbs = report["databases"].values()
    if dbs:
        report["mean"] = {p: {k: float(np.mean([d[p][k] for d in dbs])) for k in ("EER", "FMR100", "FMR1000",
                                                                               "ZeroFMR")}
                          for p in ("fvc", "all-pairs")}
        report["calibration"] = threshold_table(np.concatenate(pooled_imp))
    if det is not None and curves:
        det_plot(curves, det, title=f"{Path(db_dir).name} all-pairs, {report['source']}, matcher {matcher.BACKEND}")
        report["det"] = str(det)
    return report


# --- leave-one-database-out cross-validation -------------------------------------------------

@dataclass
class CrossValidation:
    """Result of :func:`leave_one_out`.

    ``chosen[db]``: the candidate chosen on every database but ``db``; ``eer[db]``: ``db``'s EER
    at that candidate (percent); ``mean``/``worst``: over the databases.
    """

    chosen: dict[str, str] = field(default_factory=dict)
    eer: dict[str, float] = field(default_factory=dict)

    @property
    def mean(self) -> float:
        return float(np.mean(list(self.eer.values())))

    @property
    def worst(self) -> float:
        return float(max(self.eer.values()))


def leave_one_out(table: Mapping[str, Mapping[str, float]], objective: Callable[[Iterable[float]], float] | None
                  = None) -> CrossValidation:
    """Leave-one-database-out choice among candidate parameter sets.

    ``table[candidate][database]`` is the EER (percent) of a candidate on a database; every
    candidate must cover the same databases. For each database, the candidate with the lowest
    ``objective`` (default: the mean) of the EERs on the *other* databases is chosen (ties: the
    first in ``table``'s order, so put the untuned candidate first), and the held-out database's
    EER at that candidate is reported.
    """
    objective = objective or (lambda v: float(np.mean(list(v))))
    cands = list(table)
    if not cands:
        raise ValueError("no candidates")
    dbs = list(table[cands[0]])
    if len(dbs) < 2 or any(set(table[c]) != set(dbs) for c in cands):
        raise ValueError("every candidate needs the same two or more databases")
    out = CrossValidation()
    for held in dbs:
        best = min(cands, key=lambda c: (objective(table[c][d] for d in dbs if d != held), cands.index(c)))
        out.chosen[held] = best
        out.eer[held] = float(table[best][held])
    return out


# --- throughput ------------------------------------------------------------------------------

def gallery_from(templates: Iterable[tuple[str, Template]]):
    """An in-memory :class:`~biostation.identify.LocalBackend` holding ``(reference id, template)``
    pairs, built through its public ``insert`` (each template is prepared once)."""
    from .identify import LocalBackend

    local = LocalBackend()
    for rid, t in templates:
        local.insert(rid, t)
    return local


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` best scores, best first, ties by index (the order of a gallery search)."""
    return np.lexsort((np.arange(len(scores)), -np.asarray(scores, np.int64)))[:k]


def _variants(base: list, count: int, seed: int = 1) -> list:
    """``count`` distinct templates: the base ones moved, turned and thinned at random."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(count):
        t = base[k % len(base)]
        if k < len(base):
            out.append(t)
            continue
        m = t.minutiae.copy()
        a = rng.uniform(-0.5, 0.5)
        c, s = math.cos(a), math.sin(a)
        x = m["x"] - t.width / 2
        y = m["y"] - t.height / 2
        nx = x * c + y * s + t.width / 2 + rng.uniform(-20, 20)
        ny = -x * s + y * c + t.height / 2 + rng.uniform(-20, 20)
        keep = (nx >= 0) & (ny >= 0) & (nx < t.width) & (ny < t.height) & (rng.random(len(m)) > 0.1)
        m = m[keep]
        m["x"], m["y"] = nx[keep], ny[keep]
        m["angle"] = np.mod(m["angle"] + np.float32(a), np.float32(2 * math.pi)) % np.float32(2 * math.pi)
        out.append(Template(width=t.width, height=t.height, dpi=t.dpi, minutiae=m))
    return out


def run_throughput(gallery_size: int = 2000, probes: int = 20, pairs: int = 3000,
                   progress: Progress | None = None) -> dict:
    """Both backends side by side on the same templates, in this process (one thread).

    The gallery is the SecuGen ISO templates of ``../shared/data/fvc2002`` and moved, turned,
    thinned copies of them. Per backend: batched 1:N scoring, 1:1 calls (Python overhead
    included) and exhaustive top-10 search (scoring plus ranking); for the backend chosen at
    import, also searches through a :class:`~biostation.identify.LocalBackend`. Raises
    ``FileNotFoundError`` without the shared templates.
    """
    import tracemalloc

    from .config import Settings
    from .templates import load_template

    shared = Settings().shared_dir()
    base, fingers = [], []
    if shared is not None:
        for path in sorted((shared / "data" / "fvc2002" / "iso_secugen").glob("DB*_B/*.iso")):
            base.append(load_template(path))
            fingers.append(f"{path.parent.name}/{path.stem.split('_')[0]}")
    if not base:
        raise FileNotFoundError("the SecuGen templates of ../shared/data/fvc2002 are needed")
    tpls = _variants(base, gallery_size)
    t0 = time.perf_counter()
    prepared = [matcher.prepare(t) for t in tpls]
    prepare_ms = 1e3 * (time.perf_counter() - t0) / len(prepared)
    tracemalloc.start()
    gallery = matcher.pack(prepared)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    probe_idx = [(k * 37) % len(prepared) for k in range(probes)]
    rng = np.random.default_rng(2)
    pair_idx = rng.integers(0, len(prepared), (pairs, 2))
    report: dict = {"gallery": len(prepared), "threads": 1, "minutiae_mean": float(np.mean([s.n for s in prepared])),
                    "prepare_ms_per_template": prepare_ms,
                    "gallery_bytes_per_template": gallery.nbytes / len(prepared),
                    "pack_peak_bytes_per_template": peak / len(prepared), "backends": {}}

    def judge(results: list[list[int]]) -> tuple[str, str]:
        # the probe is enrolled, and so are other impressions of its finger and moved copies of
        # them: a hit is the same finger at rank 1 (scores are not clamped, so the probe's own
        # entry outranks them; self hits are counted apart)
        hits = sum(fingers[top[0] % len(base)] == fingers[p % len(base)] for top, p in zip(results, probe_idx))
        self_hits = sum(top[0] == p for top, p in zip(results, probe_idx))
        return f"{hits}/{len(results)}", f"{self_hits}/{len(results)}"

    for name, impl in matcher.backends().items():
        r: dict = {}
        # the numpy backend gets a quarter of the probes: it is the slow specification
        k = probes if name == "native" else max(2, probes // 4)
        w0, c0 = time.perf_counter(), time.process_time()
        for p in probe_idx[:k]:
            impl.score_many(prepared[p], gallery)
            if progress:
                progress(f"{name}: batch", 1, 1)
        w, c = time.perf_counter() - w0, time.process_time() - c0
        r["batch_comparisons_per_s"] = k * len(prepared) / w
        r["batch_comparisons_per_cpu_s"] = k * len(prepared) / max(c, 1e-9)
        m = pairs if name == "native" else max(50, pairs // 10)
        w0, c0 = time.perf_counter(), time.process_time()
        for a, b in pair_idx[:m]:
            impl.score(prepared[a], prepared[b])
        w, c = time.perf_counter() - w0, time.process_time() - c0
        r["single_comparisons_per_s"] = m / w
        r["single_comparisons_per_cpu_s"] = m / max(c, 1e-9)
        w0 = time.perf_counter()
        results = [top_k(impl.score_many(prepared[p], gallery), 10).tolist() for p in probe_idx[:k]]
        r["searches_per_s"] = k / (time.perf_counter() - w0)
        r["search_rank1_hits"], r["search_rank1_self_hits"] = judge(results)
        report["backends"][name] = r
    # the same search through the identify layer's local gallery, on the import-time backend
    local = gallery_from((str(i), t) for i, t in enumerate(tpls))
    w0 = time.perf_counter()
    results = [[int(c.reference_id) for c in local.search(prepared[p], k=10)] for p in probe_idx]
    report["local_backend"] = {"backend": matcher.BACKEND,
                               "searches_per_s": len(probe_idx) / (time.perf_counter() - w0)}
    report["local_backend"]["search_rank1_hits"], report["local_backend"]["search_rank1_self_hits"] = judge(results)
    b = report["backends"]
    if "native" in b:
        report["ratio_native_over_numpy"] = {key: b["native"][key] / b["numpy"][key] for key in
                                             ("batch_comparisons_per_s", "single_comparisons_per_s", "searches_per_s")}
    return report


__all__ = ["FVC2002_DPI", "FVC_DPI", "IMAGE_SUFFIXES", "TEMPLATE_SUFFIXES", "CrossValidation", "database_dpi",
           "databases", "extract_database", "gallery_from", "leave_one_out", "protocol_scores", "rank1", "run_fvc",
           "run_throughput", "samples", "score_matrix", "top_k"]
