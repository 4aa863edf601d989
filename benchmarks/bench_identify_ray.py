"""1:N search rate: the local backend and the Ray backend side by side, in one run.

    .venv/bin/python benchmarks/bench_identify_ray.py --sizes 1000,5000 --shards 1,2 --json out/identify_ray.json

For each gallery size the same templates (FVC2002 B SecuGen templates, then copies of them moved,
turned and thinned at random, so every reference is distinct) are enrolled in a
:class:`~biostation.identify.LocalBackend` and in a :class:`~biostation.identify.ray_backend.RayBackend`
per shard count; the same prepared probes are searched (top 10) one after another, and every Ray
answer is checked equal to the local one, then again from ``--clients`` threads at once. Printed
and written as JSON: searches per second both ways, the Ray/local ratios, the cost of one empty
actor round trip (median and 90th percentile, one shard and all shards at once), the local
cluster's start time and enrolment rates. One local cluster serves the whole run (``--num-cpus``
CPUs; the shards reserve none, so any count fits).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np


def variants(base: list, count: int, seed: int = 7) -> list:
    """``count`` distinct templates: the base ones first, then copies moved, turned and thinned."""
    from biostation.templates import Template

    rng = np.random.default_rng(seed)
    out = list(base[:count])
    while len(out) < count:
        t = base[len(out) % len(base)]
        m = t.minutiae.copy()
        a = rng.uniform(-0.4, 0.4)
        c, s = math.cos(a), math.sin(a)
        cx, cy = t.width / 2, t.height / 2
        x, y = m["x"].astype(np.float64) - cx, m["y"].astype(np.float64) - cy
        nx = x * c + y * s + cx + rng.uniform(-25, 25)
        ny = -x * s + y * c + cy + rng.uniform(-25, 25)
        keep = (nx >= 0) & (ny >= 0) & (nx < t.width) & (ny < t.height) & (rng.random(len(m)) > 0.15)
        m = m[keep]
        m["x"], m["y"] = nx[keep], ny[keep]
        m["angle"] = np.mod(m["angle"].astype(np.float64) + a, 2 * math.pi).astype(np.float32) % np.float32(2 * math.pi)
        out.append(Template(width=t.width, height=t.height, dpi=t.dpi, minutiae=m))
    return out


def rate(fn, probes: list) -> tuple[float, list]:
    answers = []
    t0 = time.perf_counter()
    for p in probes:
        answers.append(fn(p))
    return len(probes) / (time.perf_counter() - t0), answers


def concurrent_rate(fn, probes: list, clients: int) -> float:
    """Searches per second with ``clients`` threads searching at once (each probe once)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(clients) as pool:
        t0 = time.perf_counter()
        list(pool.map(fn, probes))
        return len(probes) / (time.perf_counter() - t0)


def round_trips(fn, n: int) -> dict[str, float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(1e3 * (time.perf_counter() - t0))
    times.sort()
    return {"median_ms": statistics.median(times), "p90_ms": times[int(0.9 * (len(times) - 1))]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000,5000", help="gallery sizes, comma-separated")
    ap.add_argument("--shards", default="1,2", help="shard counts, comma-separated")
    ap.add_argument("--probes", type=int, default=20, help="searches timed per configuration")
    ap.add_argument("--k", type=int, default=10, help="candidates per search")
    ap.add_argument("--clients", type=int, default=2, help="threads searching at once (second figure)")
    ap.add_argument("--num-cpus", type=int, default=2, help="CPUs of the local Ray cluster")
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args(argv)
    sizes = [int(v) for v in args.sizes.split(",")]
    shard_counts = [int(v) for v in args.shards.split(",")]

    import os

    import ray
    from rich.progress import Progress

    from biostation import matcher
    from biostation.config import Settings
    from biostation.identify import LocalBackend
    from biostation.identify.ray_backend import RayBackend
    from biostation.templates import load_template

    shared = Settings().shared_dir()
    paths = sorted((shared / "data" / "fvc2002" / "iso_secugen").glob("DB*_B/*.iso")) if shared else []
    if not paths:
        print("the SecuGen templates of ../shared/data/fvc2002 are needed", file=sys.stderr)
        return 2
    base = [load_template(p) for p in paths]
    tpls = variants(base, max(sizes))
    settings = Settings(ray_shard_cpus=0, ray_timeout_s=600)

    t0 = time.perf_counter()
    ray.init(num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
    report: dict = {"matcher_backend": matcher.BACKEND, "cpus_visible": os.cpu_count(), "ray_cpus": args.num_cpus,
                    "ray_version": ray.__version__, "cluster_start_s": time.perf_counter() - t0,
                    "k": args.k, "probes": args.probes, "galleries": []}
    try:
        with Progress(transient=True) as progress:
            task = progress.add_task("benchmark", total=len(sizes) * (1 + len(shard_counts)))
            for n in sizes:
                items = [(f"ref-{i:07d}", t) for i, t in enumerate(tpls[:n])]
                # probes: enrolled views and unenrolled views of the same fingers
                probes = [matcher.prepare(tpls[(j * 7919) % n] if j % 2 else base[(j * 31) % len(base)])
                          for j in range(args.probes)]
                entry: dict = {"gallery": n, "backends": {}}
                progress.update(task, description=f"{n}: local")
                local = LocalBackend()
                t0 = time.perf_counter()
                for rid, t in items:
                    local.insert(rid, t)
                enrol = n / (time.perf_counter() - t0)
                local.search(probes[0], args.k)  # packs the gallery
                r_local, want = rate(lambda p, b=local: b.search(p, args.k), probes)
                c_local = concurrent_rate(lambda p, b=local: b.search(p, args.k), probes, args.clients)
                entry["backends"]["local"] = {"searches_per_s": r_local, "enrol_per_s": enrol,
                                              "concurrent_searches_per_s": c_local}
                progress.advance(task)
                for s in shard_counts:
                    progress.update(task, description=f"{n}: ray, {s} shard(s)")
                    g = RayBackend(shards=s, settings=settings)
                    try:
                        t0 = time.perf_counter()
                        failed = g.insert_many(items)
                        enrol = n / (time.perf_counter() - t0)
                        assert not failed and g.count() == n
                        g.search(probes[0], args.k)  # packs each slice
                        r, got = rate(lambda p, b=g: b.search(p, args.k), probes)
                        c = concurrent_rate(lambda p, b=g: b.search(p, args.k), probes, args.clients)
                        if got != want:
                            raise SystemExit(f"gallery {n}, {s} shards: answers differ from the local backend")
                        actors = g.shard_actors()
                        one = round_trips(lambda a=actors[0]: ray.get(a.ping.remote()), 200)
                        fan = round_trips(g.ping, 200)
                        entry["backends"][f"ray_{s}"] = {
                            "shards": s, "searches_per_s": r, "ratio_over_local": r / r_local,
                            "concurrent_searches_per_s": c, "concurrent_ratio_over_local": c / c_local,
                            "enrol_per_s": enrol, "same_answers_as_local": True,
                            "round_trip_one_shard": one, "round_trip_all_shards": fan,
                            "bytes_per_template": g.memory()["bytes_per_template"]}
                    finally:
                        g.close()
                    progress.advance(task)
                report["galleries"].append(entry)
    finally:
        ray.shutdown()

    print(f"matcher {report['matcher_backend']}, Ray {report['ray_version']} on {args.num_cpus} CPUs "
          f"(machine: {report['cpus_visible']}), local cluster started in {report['cluster_start_s']:.1f} s; "
          f"top {args.k}, {args.probes} probes, searches one after another")
    print(f"{'gallery':>8} {'backend':>8} {'search/s':>10} {'vs local':>9} {'ms/search':>10} "
          f"{f'{args.clients} clients/s':>12} {'vs local':>9} {'rt 1 shard ms':>14} {'rt all ms':>10} {'enrol/s':>9}")
    for e in report["galleries"]:
        for name, b in e["backends"].items():
            rt1 = b.get("round_trip_one_shard", {}).get("median_ms")
            rta = b.get("round_trip_all_shards", {}).get("median_ms")
            rt1_s, rta_s = (f"{rt1:.2f}" if rt1 else "-"), (f"{rta:.2f}" if rta else "-")
            print(f"{e['gallery']:>8} {name:>8} {b['searches_per_s']:>10.1f} {b.get('ratio_over_local', 1.0):>9.2f} "
                  f"{1e3 / b['searches_per_s']:>10.1f} {b['concurrent_searches_per_s']:>12.1f} "
                  f"{b.get('concurrent_ratio_over_local', 1.0):>9.2f} {rt1_s:>14} {rta_s:>10} {b['enrol_per_s']:>9.0f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
        print(f"written: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
