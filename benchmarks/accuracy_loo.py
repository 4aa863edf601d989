"""Leave-one-database-out cross-validated accuracy over the eight development databases.

    .venv/bin/python benchmarks/accuracy_loo.py --json out/loo.json [--nbis] [--only untuned]

The development databases are FVC2000 and FVC2002 set B, DB1..DB4 each (``../shared/data``).
Every candidate parameter set in :data:`CANDIDATES` (overrides of ``fingerprint/params.py`` and
``matcher/params.py`` on top of the shipped values) is run on all eight: templates extracted,
all pairs scored, all-pairs EER per database. Then, for each database, the candidate with the
lowest mean EER on the *other seven* is chosen and the held-out database's EER at it is the
cross-validated figure (:func:`biostation.evaluation.leave_one_out`). The first candidate is
always ``untuned``: the shipped parameters as they are.

Prints one table: per database the untuned EER, the cross-validated EER and the candidate it
came from, the best any candidate reached (in-sample, optimistic), NBIS beside with ``--nbis``;
then the extraction median (ms per image) and the native matcher's comparisons per second of
the untuned run. Results per candidate are cached under ``--cache`` (keyed by the overrides and
a digest of the extractor's and matcher's source), so re-runs only compute what changed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / ".." / "shared" / "data"
COLLECTIONS = ("fvc2000", "fvc2002")

#: candidate parameter sets: name -> {"fingerprint.X": value, "matcher.Y": value}
CANDIDATES: dict[str, dict[str, object]] = {
    "untuned": {},
    # segmentation
    "seg_energy_0.10": {"fingerprint.SEG_ENERGY_FRACTION": 0.10, "fingerprint.SEG_ENERGY_FRACTION_LOW": 0.10},
    "seg_energy_0.20": {"fingerprint.SEG_ENERGY_FRACTION": 0.20},
    "seg_energy_0.26": {"fingerprint.SEG_ENERGY_FRACTION": 0.26},
    "seg_low_0.09": {"fingerprint.SEG_ENERGY_FRACTION_LOW": 0.09},
    "seg_low_off": {"fingerprint.SEG_ENERGY_FRACTION_LOW": 0.14},
    "seg_coh_0.30": {"fingerprint.SEG_MIN_COHERENCE": 0.30},
    "seg_coh_0.40": {"fingerprint.SEG_MIN_COHERENCE": 0.40},
    "seg_close_23": {"fingerprint.SEG_CLOSE_DIAMETER": 23},
    "seg_open_17": {"fingerprint.SEG_OPEN_DIAMETER": 17},
    # minutia reliability and count
    "min_coh_0.10": {"fingerprint.MIN_MINUTIA_COHERENCE": 0.10},
    "min_coh_0.25": {"fingerprint.MIN_MINUTIA_COHERENCE": 0.25},
    "min_rel_0.20": {"fingerprint.MIN_MINUTIA_RELIABILITY": 0.20},
    "min_rel_0.35": {"fingerprint.MIN_MINUTIA_RELIABILITY": 0.35},
    "min_rel_0.50": {"fingerprint.MIN_MINUTIA_RELIABILITY": 0.50},
    "quality_rel_0.08": {"fingerprint.QUALITY_RELIABILITY_FULL": 0.08},
    "quality_rel_0.30": {"fingerprint.QUALITY_RELIABILITY_FULL": 0.30},
    "quality_rel_0.50": {"fingerprint.QUALITY_RELIABILITY_FULL": 0.50},
    "max_min_50": {"fingerprint.MAX_MINUTIAE": 50},
    "max_min_70": {"fingerprint.MAX_MINUTIAE": 70},
    "border_1.5": {"fingerprint.BORDER_DISTANCE": 1.5},
    "cluster_1": {"fingerprint.CLUSTER_MAX_NEIGHBOURS": 1},
    # enhancement and orientation
    "gabor_along_1.0": {"fingerprint.GABOR_SIGMA_ALONG": 1.0},
    "gabor_along_0.6": {"fingerprint.GABOR_SIGMA_ALONG": 0.6},
    "gabor_across_0.45": {"fingerprint.GABOR_SIGMA_ACROSS": 0.45},
    "gabor_across_0.65": {"fingerprint.GABOR_SIGMA_ACROSS": 0.65},
    "orient_sigma_17": {"fingerprint.ORIENTATION_SIGMA": 17.0},
    "orient_sigma_10": {"fingerprint.ORIENTATION_SIGMA": 10.0},
    # matcher: quality weights of unpaired minutiae in the overlap (WEIGHT_STEPS 1: unweighted)
    "unweighted": {"matcher.WEIGHT_STEPS": 1},
    "quality_full_40": {"matcher.QUALITY_FULL": 40},
    "quality_full_80": {"matcher.QUALITY_FULL": 80},
    "weight_steps_8": {"matcher.WEIGHT_STEPS": 8},
    "min_overlap_20": {"matcher.MIN_OVERLAP": 20},
}
# Measured and excluded (each would be chosen by every fold, but breaks another target):
# SEEDS 2 (in-sample mean 3.76 %) makes the SecuGen ISO templates of FVC2002 worse (all-pairs
# mean EER 2.43 -> 2.52 %); SEEDS 3 (3.69 %) also costs the native matcher its speed target
# (about 96,000-102,000 comparisons per CPU-second against 121,000-131,000 at 1 seed).
# Tried and not kept (in-sample mean of the eight against 2.14 % for the shipped extractor with
# voids taken out of the mask and QUALITY_RELIABILITY_FULL 0.15): two Gabor banks at the median
# period x (1 -+ 0.15 / 0.25), blended by the local period (2.41 / 2.71 %, FVC2000 DB3 up to
# 6.5 %); masking out areas whose darkest-grey fraction passes 0.6 / 0.8 (2.74 / 2.18 %);
# matcher MIN_OVERLAP 9 / 15 (2.21 / 2.37 %); void energy fraction 0.03 (2.17 %) and
# QUALITY_BORDER 2 / 4 periods (2.16 / 2.18 %), within the noise of one genuine pair per database.
# Scores that favour small overlaps less (screened in the numpy matcher): K = 4 / 8 minutiae
# added to both overlap counts of the denominator (2.32 / 2.54 %), the score scaled by
# min(1, pairs / 10) (2.30 %; / 6: 2.14 %, no change).
# Screened on the shipped set after that (in-sample mean of the eight against 2.14 %, FVC2000
# 2.97 %; SecuGen ISO templates of FVC2002 2.43 %): MAX_MINUTIAE 100 / 140 / 160 / 200 (2.31 /
# 2.18 / 2.18 / 2.18 %: only FVC2000 DB3 moves, 6.06 / 5.00 %); removing both minutiae of a
# pair closer than 0.5 / 0.8 / 1.0 ridge periods with nearly opposite directions (pores, cos
# < -0.7: 2.14 / 2.23 / 2.23 %); matcher ALIGN_DIST 14 / 19 (2.17 / 2.43 %), ALIGN_GROW 8 / 16
# (2.20 / 2.21 %), ALIGN_DIR 14 / 22 (2.24 / 2.18 %), TOP_PAIRS 12 / 24 (2.25 / 2.26 %),
# PAIR_BONUS 32 / 128 (2.22 / 2.18 %), OVERLAP_MARGIN 6 / 20 (2.26 / 2.31 %), CONS_ANGLE
# 10 / 18 (2.13 / 2.17 %; 12: 2.03 %, FVC2002 1.10 %, but SecuGen 2.54 %). Kept: the pair
# consistency's length tolerance CONS_DIST_ABS 12 -> 11 px with CONS_DIST_REL 26 -> 20 (2.06 %,
# FVC2000 2.79 %, SecuGen 2.19 %; at 11 px REL 18 / 22 / 24: 2.04 / 2.09 / 2.09 %, SecuGen
# 2.20 / 2.18 / 2.24 %; REL alone at 12 px, 16..20: 2.08-2.09 % but SecuGen 2.44-2.50 %;
# 10 px: 2.09-2.13 %, SecuGen 2.07-2.24 %; 8 px: 2.36 %).


def _source_digest() -> str:
    h = hashlib.sha256()
    for sub in ("fingerprint", "matcher"):
        for p in sorted((ROOT / "src" / "biostation" / sub).glob("*.py")):
            h.update(p.name.encode() + p.read_bytes())
    h.update((ROOT / "native" / "matcher.c").read_bytes())
    return h.hexdigest()[:12]


@contextmanager
def overridden(overrides: dict[str, object]):
    """Set tuned numbers for the duration (and re-configure the native matcher kernels)."""
    from biostation.fingerprint import params as FP
    from biostation.matcher import params as MP

    mods = {"fingerprint": FP, "matcher": MP}
    saved = []
    for key, value in overrides.items():
        mod, name = key.split(".", 1)
        if not hasattr(mods[mod], name):
            raise KeyError(f"no tuned number {key}")
        saved.append((mods[mod], name, getattr(mods[mod], name)))
        setattr(mods[mod], name, value)

    def reconfigure():
        from biostation import matcher

        if "native" in matcher.backends():
            matcher.backends()["native"].configure()

    def clear_caches():
        # caches keyed by shape, not by the tuned numbers they were built from (filter banks)
        import importlib
        import pkgutil

        import biostation.fingerprint as pkg

        for info in pkgutil.iter_modules(pkg.__path__):
            mod = importlib.import_module(f"biostation.fingerprint.{info.name}")
            for obj in vars(mod).values():
                if callable(getattr(obj, "cache_clear", None)):
                    obj.cache_clear()

    clear_caches()
    if any(k.startswith("matcher.") for k in overrides):
        reconfigure()
    try:
        yield
    finally:
        for mod, name, value in reversed(saved):
            setattr(mod, name, value)
        clear_caches()
        if any(k.startswith("matcher.") for k in overrides):
            reconfigure()


def run_candidate(overrides: dict[str, object]) -> dict:
    """All-pairs EER, minutiae count and timings on every development database."""
    from biostation.evaluation import (
        database_dpi,
        databases,
        extract_database,
        protocol_scores,
        score_matrix,
    )
    from biostation.matcher.evaluation import summarize

    out = {}
    with overridden(overrides):
        for coll in COLLECTIONS:
            for db in databases(SHARED / coll):
                names, tpls, times = extract_database(db, database_dpi(db))
                scores, timings = score_matrix(tpls)
                g, i = protocol_scores(names, scores)
                s = summarize(g, i)
                out[f"{coll}/{db.name[:3]}"] = {
                    "EER": s["EER"], "FMR100": s["FMR100"], "FMR1000": s["FMR1000"],
                    "minutiae_mean": float(np.mean([len(t.minutiae) for t in tpls])),
                    "empty": int(sum(len(t.minutiae) == 0 for t in tpls)),
                    "extract_ms": [1e3 * t for t in times], "comparisons_per_s": timings["comparisons_per_s"]}
    return out


def run_nbis() -> dict:
    """NIST NBIS (mindtct + bozorth3 through nbis-py) all-pairs EER per database."""
    import nbis

    from biostation.evaluation import databases, protocol_scores, samples
    from biostation.matcher.evaluation import summarize

    ext = nbis.new_nbis_extractor(nbis.NbisExtractorSettings(
        min_quality=0.0, get_center=False, check_fingerprint=False, compute_nfiq2=False, ppi=None))
    out = {}
    for coll in COLLECTIONS:
        for db in databases(SHARED / coll):
            items = samples(db)
            mins = [ext.extract_minutiae_from_image_file(str(img)) for _, img, _ in items]
            n = len(mins)
            scores = np.zeros((n, n), np.int64)
            for a in range(n):
                for b in range(a + 1, n):
                    scores[a, b] = mins[a].compare(mins[b])
            g, i = protocol_scores([s for s, _, _ in items], scores)
            out[f"{coll}/{db.name[:3]}"] = {"EER": summarize(g, i)["EER"]}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--cache", type=Path, default=ROOT / "out" / "loo-cache")
    ap.add_argument("--only", nargs="*", help="run only these candidates (the table then covers them)")
    ap.add_argument("--nbis", action="store_true", help="also measure NBIS (cached; a minute or two)")
    args = ap.parse_args(argv)
    import cv2

    from biostation.evaluation import leave_one_out

    cv2.setNumThreads(1)
    args.cache.mkdir(parents=True, exist_ok=True)
    digest = _source_digest()
    names = [c for c in CANDIDATES if not args.only or c in args.only]
    results = {}
    for name in names:
        key = hashlib.sha256(json.dumps([digest, sorted(CANDIDATES[name].items())], default=repr).encode()).hexdigest()
        path = args.cache / f"{key[:16]}.json"
        if path.exists():
            results[name] = json.loads(path.read_text())
        else:
            t0 = time.perf_counter()
            results[name] = run_candidate(CANDIDATES[name])
            path.write_text(json.dumps(results[name]))
            print(f"{name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    nbis_res = None
    if args.nbis:
        path = args.cache / "nbis.json"
        if not path.exists():
            path.write_text(json.dumps(run_nbis()))
        nbis_res = json.loads(path.read_text())

    table = {c: {db: r["EER"] for db, r in results[c].items()} for c in names}
    dbs = list(table[names[0]])
    report: dict = {"source_digest": digest, "candidates": {c: CANDIDATES[c] for c in names}, "results": results}
    base = names[0]
    cv = leave_one_out(table) if len(dbs) > 1 else None
    best = {db: min(table[c][db] for c in names) for db in dbs}
    print(f"{'database':<14}{'min/img':>8}{base + ' %':>12}{'LOO-CV %':>10}  {'chosen':<22}{'best in-sample %':>17}"
          + (f"{'NBIS %':>9}" if nbis_res else ""))
    for db in dbs:
        chosen = cv.chosen[db]
        row = (f"{db:<14}{results[chosen][db]['minutiae_mean']:>8.1f}{table[base][db]:>12.2f}{cv.eer[db]:>10.2f}  "
               f"{chosen:<22}{best[db]:>17.2f}")
        if nbis_res:
            row += f"{nbis_res[db]['EER']:>9.2f}"
        print(row)

    def mean(vals):
        return float(np.mean(list(vals)))

    for label, sel in (("mean of 8", dbs), ("FVC2000 mean", [d for d in dbs if d.startswith("fvc2000")]),
                       ("FVC2002 mean", [d for d in dbs if d.startswith("fvc2002")])):
        row = (f"{label:<14}{'':>8}{mean(table[base][d] for d in sel):>12.2f}{mean(cv.eer[d] for d in sel):>10.2f}  "
               f"{'':<22}{mean(best[d] for d in sel):>17.2f}")
        if nbis_res:
            row += f"{mean(nbis_res[d]['EER'] for d in sel):>9.2f}"
        print(row)
    print(f"LOO-CV worst database: {cv.worst:.2f} %")
    # in-sample view of each candidate (what the tuner sees when nothing is held out)
    for c in names:
        r = results[c]
        ext = np.concatenate([r[d]["extract_ms"] for d in dbs])
        print(f"  {c:<22} mean EER {mean(table[c].values()):.2f} %, FVC2000 {mean(table[c][d] for d in dbs[:4]):.2f}, "
              f"FVC2002 {mean(table[c][d] for d in dbs[4:]):.2f}; extraction median {np.median(ext):.1f} ms; "
              f"native cmp/s (all-pairs loop) {np.median([r[d]['comparisons_per_s'] for d in dbs]):,.0f}")
    report["cross_validation"] = {"chosen": cv.chosen, "eer": cv.eer, "mean": cv.mean, "worst": cv.worst}
    report["untuned"] = table[base]
    if nbis_res:
        report["nbis"] = nbis_res
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
