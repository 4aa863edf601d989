"""The cascade's search time against the codes' share, stage by stage, over a tiled gallery.

    .venv/bin/python benchmarks/bench_cascade_shares.py --gallery 100000 --tile-to 1000000 \\
        --shares 0.079,0.1,0.2,0.25,0.316 --json out/cascade_shares.json

``biostation bench identify`` times the cascade at one codes share, the operating point its
accuracy pass chose; this sweeps the share to show what each point of the penetration curve
costs. A gallery of ``--gallery`` templates (synthetic background plus one impression of every
FVC2000/2002 finger, as ``bench identify`` builds it) is tiled to ``--tile-to`` rows (row ``r``
reads template ``r mod gallery``: timing only), and ``--time-probes`` mated probes are searched
one at a time on one core. For each share: p50 of the codes' scan and selection, of the local
screen on the codes' shortlist, of the matcher on what the local screen keeps
(``--local-penetration`` of the rows), and of the whole search; the exhaustive search of the
same rows is timed on two probes in the same run, for the ratio.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gallery", type=int, default=100_000)
    ap.add_argument("--tile-to", type=int, default=1_000_000)
    ap.add_argument("--shares", default="0.079,0.1,0.2,0.25,0.316",
                    help="codes shares to time, comma-separated fractions in (0, 1]")
    ap.add_argument("--local-penetration", type=float, default=0.001)
    ap.add_argument("--time-probes", type=int, default=8)
    ap.add_argument("--fvc", type=Path, nargs="*",
                    default=[Path("../shared/data/fvc2000"), Path("../shared/data/fvc2002")])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    try:
        shares = [float(x) for x in a.shares.split(",") if x.strip()]
    except ValueError:
        ap.error("--shares: comma-separated numbers")
    if not shares or any(not 0 < s <= 1 for s in shares):
        ap.error("--shares: each in (0, 1]")
    if a.tile_to < a.gallery:
        ap.error("--tile-to must be at least --gallery")

    from biostation import matcher
    from biostation.cli.bench import _fvc_fingers, _progress_bar
    from biostation.identify import benchmark, screening
    from biostation.identify import params as IP

    progress, update = _progress_bar()
    with progress:
        mated, _ = benchmark.distinct_fingers(_fvc_fingers(a.fvc, update))
        if not mated:
            print("error: no FVC <finger>_<impression> images found", file=sys.stderr)
            return 2
        gal = benchmark.build(mated, a.gallery, a.time_probes, a.seed, update)
    view = gal.local.view()
    g, codes = view.packed, view.codes
    n0 = len(codes)
    index = benchmark.tiled_index(codes, -(-a.tile_to // n0))
    n = len(index)
    ml = screening.shortlist_size(n, a.local_penetration)
    probes = gal.probes

    def exhaustive(p):
        return matcher.match_many(p, g, np.arange(n, dtype=np.int64) % n0)

    _, ex = benchmark.latencies(exhaustive, probes[:2])
    report = {"matcher": matcher.BACKEND, "templates": n, "tile": n // n0, "gallery": n0,
              "local_penetration": a.local_penetration, "local_shortlist": ml, "probes": len(probes),
              "exhaustive": ex, "shares": []}
    print(f"{n} templates (tiled x{n // n0}), exhaustive p50 {ex['p50_ms']:.0f} ms (2 searches)")
    for share in shares:
        mc = screening.shortlist_size(n, share)
        parts: dict[str, list[float]] = {"codes": [], "local_screen": [], "matcher": [], "total": []}
        for p in probes:
            t0 = time.perf_counter()
            rows = index.shortlist(screening.code(p), mc)
            t1 = time.perf_counter()
            near = matcher.screen_many(p, g, rows % n0, top=IP.LOCAL_SCREEN_TOP)
            keep = rows[screening.top_rows(near, ml)]
            t2 = time.perf_counter()
            matcher.match_many(p, g, keep % n0)
            t3 = time.perf_counter()
            for k, v in (("codes", t1 - t0), ("local_screen", t2 - t1), ("matcher", t3 - t2), ("total", t3 - t0)):
                parts[k].append(v)
        row = {"share": share, "codes_shortlist": mc,
               **{f"{k}_p50_ms": 1e3 * float(np.median(v)) for k, v in parts.items()},
               "local_screen_us_per_reference": 1e6 * float(np.median(parts["local_screen"])) / mc,
               "speedup_over_exhaustive": ex["p50_ms"] / (1e3 * float(np.median(parts["total"])))}
        report["shares"].append(row)
        print(f"codes {share:.1%}: codes {row['codes_p50_ms']:.1f} + local screen {row['local_screen_p50_ms']:.1f} "
              f"({row['local_screen_us_per_reference']:.2f} us a reference) + matcher {row['matcher_p50_ms']:.1f} "
              f"= {row['total_p50_ms']:.1f} ms p50 ({row['speedup_over_exhaustive']:.1f}x)")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
