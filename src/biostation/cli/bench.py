"""``biostation bench fvc`` and ``biostation bench throughput``: the matcher's benchmarks.

``fvc`` measures accuracy under the FVC and all-pairs protocols (EER as FVC defines it,
FMR100, FMR1000, ZeroFMR) from images (through the extractor) or from given templates, and
draws DET curves. ``throughput`` times both matcher backends side by side in one run: 1:1
comparisons per second on one core (batched and per call), 1:N searches per second, and the
memory per gallery template. The functions :func:`run_fvc` and :func:`run_throughput` are what
``benchmarks/accuracy.py`` and ``benchmarks/bench_match.py`` call.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Callable, Optional

import typer

IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".bmp", ".jpg", ".jpeg", ".pgm", ".wsq")
TEMPLATE_SUFFIXES = (".iso", ".ist", ".ansi", ".bst", ".json")
#: FVC2002 resolutions (../shared/data/fvc2002/README.md): DB2 is 569 dpi, the others 500
FVC2002_DPI = {"DB1": 500.0, "DB2": 569.0, "DB3": 500.0, "DB4": 500.0}


def _guess_dpi(db: Path) -> float:
    return FVC2002_DPI.get(db.name.split("_")[0].upper(), 500.0)


def _databases(root: Path) -> list[Path]:
    subs = sorted(p for p in root.iterdir() if p.is_dir() and p.name.upper().startswith("DB"))
    return subs if subs else [root]


def _samples(db: Path, templates: Optional[Path]) -> list[tuple[str, Optional[Path], Optional[Path]]]:
    """(stem, image path, template path) per sample, sorted by stem."""
    from ..matcher.evaluation import parse_name

    images = {p.stem: p for p in db.glob("*") if p.suffix.lower() in IMAGE_SUFFIXES} if db.is_dir() else {}
    tdir = None
    if templates is not None:
        tdir = templates / db.name if (templates / db.name).is_dir() else templates
    tpls = {p.stem: p for p in tdir.glob("*") if p.suffix.lower() in TEMPLATE_SUFFIXES} if tdir else {}
    stems = sorted(set(tpls) if templates is not None else set(images), key=lambda s: (parse_name(s), s))
    return [(s, images.get(s), tpls.get(s)) for s in stems]


def run_fvc(db_dir: Path, templates: Optional[Path] = None, dpi: Optional[float] = None,
            det: Optional[Path] = None, progress: Optional[Callable[[str, int, int], None]] = None) -> dict:
    """Accuracy of the matcher on each database under ``db_dir`` (or ``db_dir`` itself)."""
    import numpy as np

    from .. import matcher
    from ..matcher.evaluation import det_plot, protocol_pairs, summarize, threshold_table
    from ..templates import load_template

    report: dict = {"backend": matcher.BACKEND, "source": "templates" if templates else "extractor",
                    "databases": {}}
    curves = {}
    pooled_imp = []
    for db in _databases(db_dir):
        samples = _samples(db, templates)
        if len(samples) < 2:
            continue
        db_dpi = dpi if dpi is not None else _guess_dpi(db)
        tpls, t_extract = [], []
        for k, (stem, image, tpath) in enumerate(samples):
            if tpath is not None:
                t = load_template(tpath)
                if dpi is not None:
                    t.dpi = float(dpi)
            else:
                from ..fingerprint import extract, read_image

                img = read_image(image)
                t0 = time.perf_counter()
                t = extract(img, dpi=db_dpi)
                t_extract.append(time.perf_counter() - t0)
            tpls.append(t)
            if progress:
                progress(f"{db.name}: templates", k + 1, len(samples))
        t0 = time.perf_counter()
        prepared = [matcher.prepare(t) for t in tpls]
        t_prepare = (time.perf_counter() - t0) / len(prepared)
        gallery = matcher.pack(prepared)
        n = len(prepared)
        scores = np.zeros((n, n), np.int64)
        t0, c0 = time.perf_counter(), time.process_time()
        for a in range(n - 1):
            idx = np.arange(a + 1, n)
            scores[a, a + 1:] = matcher.match_many(prepared[a], gallery, idx)
            if progress:
                progress(f"{db.name}: matching", a + 1, n - 1)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        comparisons = n * (n - 1) // 2
        names = [s for s, _, _ in samples]
        entry: dict = {"samples": n, "dpi": db_dpi if templates is None else float(tpls[0].dpi),
                       "minutiae_mean": float(np.mean([len(t.minutiae) for t in tpls])),
                       "timings": {"prepare_ms": 1e3 * t_prepare, "comparisons": comparisons,
                                   "match_wall_s": wall, "match_cpu_s": cpu,
                                   "comparisons_per_s": comparisons / max(wall, 1e-9)}}
        if t_extract:
            entry["timings"]["extract_median_ms"] = 1e3 * float(np.median(t_extract))
            entry["timings"]["extract_p95_ms"] = 1e3 * float(np.percentile(t_extract, 95))
        # 1:N: the first impression of each finger enrolled, every other impression searched
        # (exhaustive scoring, no screening stage)
        from ..matcher.evaluation import parse_name

        full = scores + scores.T
        keys = [parse_name(s) for s in names]
        first = {}
        for k, (finger, imp) in enumerate(keys):
            if finger not in first or imp < keys[first[finger]][1]:
                first[finger] = k
        enrolled = np.array(sorted(first.values()))
        probes_ = [k for k in range(n) if k not in set(enrolled.tolist())]
        if probes_ and len(enrolled) > 1:
            best = enrolled[np.argmax(full[np.ix_(probes_, enrolled)], axis=1)]
            hits = sum(keys[b][0] == keys[p][0] for p, b in zip(probes_, best))
            entry["identification"] = {"gallery": int(len(enrolled)), "probes": len(probes_),
                                       "rank1_hit_rate": 100.0 * hits / len(probes_)}
        for protocol in ("fvc", "all-pairs"):
            gp, ip = protocol_pairs(names, protocol)
            g = np.array([scores[a, b] for a, b in gp], np.float64)
            i = np.array([scores[a, b] for a, b in ip], np.float64)
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
        det_plot(curves, det, title=f"FVC2002 all-pairs, {report['source']}, matcher {matcher.BACKEND}")
        report["det"] = str(det)
    return report


def _variants(base: list, count: int, seed: int = 1) -> list:
    """``count`` distinct templates: the base ones moved, turned and thinned at random."""
    import numpy as np

    from ..templates import Template

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
                   progress: Optional[Callable[[str, int, int], None]] = None) -> dict:
    """Both backends side by side on the same templates, in this process (one thread)."""
    import tracemalloc

    import numpy as np

    from .. import matcher
    from ..config import Settings
    from ..identify import LocalBackend
    from ..templates import load_template

    shared = Settings().shared_dir()
    base, fingers = [], []
    if shared is not None:
        for path in sorted((shared / "data" / "fvc2002" / "iso_secugen").glob("DB*_B/*.iso")):
            base.append(load_template(path))
            fingers.append(f"{path.parent.name}/{path.stem.split('_')[0]}")
    if not base:
        raise typer.BadParameter("the SecuGen templates of ../shared/data/fvc2002 are needed")
    tpls = _variants(base, gallery_size)
    t0 = time.perf_counter()
    prepared = [matcher.prepare(t) for t in tpls]
    prepare_ms = 1e3 * (time.perf_counter() - t0) / len(prepared)
    tracemalloc.start()
    gallery = matcher.pack(prepared)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    probe_set = [prepared[(k * 37) % len(prepared)] for k in range(probes)]
    rng = np.random.default_rng(2)
    pair_idx = rng.integers(0, len(prepared), (pairs, 2))
    report: dict = {"gallery": len(prepared), "threads": 1, "minutiae_mean": float(np.mean([s.n for s in prepared])),
                    "prepare_ms_per_template": prepare_ms,
                    "gallery_bytes_per_template": gallery.nbytes / len(prepared),
                    "pack_peak_bytes_per_template": peak / len(prepared), "backends": {}}
    saved = matcher._impl
    try:
        for name, impl in matcher.backends().items():
            r: dict = {}
            # batched 1:N scoring: the probe against the packed gallery (the numpy backend gets
            # a quarter of the probes: it is the slow specification)
            k = probes if name == "native" else max(2, probes // 4)
            w0, c0 = time.perf_counter(), time.process_time()
            for p in probe_set[:k]:
                impl.score_many(p, gallery)
                if progress:
                    progress(f"{name}: batch", 1, 1)
            w, c = time.perf_counter() - w0, time.process_time() - c0
            r["batch_comparisons_per_s"] = k * len(prepared) / w
            r["batch_comparisons_per_cpu_s"] = k * len(prepared) / max(c, 1e-9)
            # 1:1 calls, Python overhead included
            m = pairs if name == "native" else max(50, pairs // 10)
            w0, c0 = time.perf_counter(), time.process_time()
            for a, b in pair_idx[:m]:
                impl.score(prepared[a], prepared[b])
            w, c = time.perf_counter() - w0, time.process_time() - c0
            r["single_comparisons_per_s"] = m / w
            r["single_comparisons_per_cpu_s"] = m / max(c, 1e-9)
            # 1:N search through the local gallery (exhaustive, top 10)
            matcher._impl = impl
            local = LocalBackend()
            local._items, local._ids = list(prepared), [str(i) for i in range(len(prepared))]
            local._index = {r_: i for i, r_ in enumerate(local._ids)}
            local._packed = gallery
            hits = self_hits = 0
            w0 = time.perf_counter()
            for kk, p in enumerate(probe_set[:k]):
                res = local.search(p, k=10)
                # the probe is enrolled, and so are other impressions of its finger and moved
                # copies of them: a hit is the same finger at rank 1 (scores are not clamped, so
                # the probe's own entry outranks them; self hits are counted apart)
                top_id = int(res[0].reference_id) % len(base)
                hits += fingers[top_id] == fingers[((kk * 37) % len(prepared)) % len(base)]
                self_hits += res[0].reference_id == str((kk * 37) % len(prepared))
            w = time.perf_counter() - w0
            r["searches_per_s"] = k / w
            r["search_rank1_hits"] = f"{hits}/{k}"
            r["search_rank1_self_hits"] = f"{self_hits}/{k}"
            report["backends"][name] = r
    finally:
        matcher._impl = saved
    b = report["backends"]
    if "native" in b:
        report["ratio_native_over_numpy"] = {key: b["native"][key] / b["numpy"][key] for key in
                                             ("batch_comparisons_per_s", "single_comparisons_per_s", "searches_per_s")}
    return report


def _progress_bar():
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                        TimeElapsedColumn(), transient=True)
    tasks: dict = {}

    def update(label: str, done: int, total: int) -> None:
        if label not in tasks:
            tasks[label] = progress.add_task(label, total=total)
        progress.update(tasks[label], completed=done, total=total)

    return progress, update


def _fvc_fingers(roots: list[Path], progress: Optional[Callable[[str, int, int], None]] = None) -> dict[str, list]:
    """Templates extracted from FVC images, by finger (``fvc2000/DB1_B/101``), impressions in order."""
    from ..fingerprint import extract, read_image
    from ..matcher.evaluation import parse_name

    jobs = []
    for root in roots:
        if not root.is_dir():
            continue
        for db in _databases(root):
            dpi = _guess_dpi(db) if "2002" in root.name else 500.0
            jobs += [(f"{root.name}/{db.name}/{parse_name(stem)[0]}", image, dpi) for stem, image, _ in _samples(db, None)]
    out: dict[str, list] = {}
    for i, (finger, image, dpi) in enumerate(jobs):
        out.setdefault(finger, []).append(extract(read_image(image), dpi))
        if progress:
            progress("extracting FVC templates", i + 1, len(jobs))
    return out


def register(app: typer.Typer) -> None:
    bench = typer.Typer(help="Matcher benchmarks: accuracy (FVC protocols) and throughput.", no_args_is_help=True)
    app.add_typer(bench, name="bench")

    @bench.command("fvc")
    def fvc(
        db_dir: Path = typer.Argument(..., help="An FVC database folder of <finger>_<impression> images, or a "
                                      "folder of such databases (e.g. ../shared/data/fvc2002)."),
        dpi: Optional[float] = typer.Option(None, "--dpi", help="Image resolution (default: 569 for FVC2002 "
                                            "DB2, else 500); with --templates, overrides their recorded one."),
        templates: Optional[Path] = typer.Option(None, "--templates", help="Use these templates (ISO/ANSI/"
                                                 "native files named like the images, per database "
                                                 "subfolder) instead of extracting."),
        json_out: Path = typer.Option(..., "--json", help="Write the full report here."),
        det: Optional[Path] = typer.Option(None, "--det", help="Draw DET curves (all-pairs) to this PNG."),
    ) -> None:
        """EER, FMR100, FMR1000, ZeroFMR per database under the FVC and all-pairs protocols."""
        from rich.console import Console
        from rich.table import Table

        if not db_dir.is_dir() and templates is None:
            raise typer.BadParameter(f"{db_dir} is not a folder")
        progress, update = _progress_bar()
        with progress:
            report = run_fvc(db_dir, templates, dpi, det, update)
        if not report["databases"]:
            typer.secho("error: no <finger>_<impression> samples found", fg="red", err=True)
            raise typer.Exit(2)
        json_out.write_text(json.dumps(report, indent=2))
        table = Table(title=f"matcher {report['backend']}, {report['source']}")
        for col in ("database", "protocol", "genuine", "impostor", "EER %", "FMR100 %", "FMR1000 %", "ZeroFMR %",
                    "cmp/s"):
            table.add_column(col, justify="right")
        for name, d in report["databases"].items():
            for p in ("fvc", "all-pairs"):
                r = d[p]
                table.add_row(name, p, str(r["genuine"]), str(r["impostor"]), f"{r['EER']:.2f}", f"{r['FMR100']:.2f}",
                              f"{r['FMR1000']:.2f}", f"{r['ZeroFMR']:.2f}",
                              f"{d['timings']['comparisons_per_s']:.0f}")
        for p in ("fvc", "all-pairs"):
            r = report["mean"][p]
            table.add_row("mean", p, "", "", f"{r['EER']:.2f}", f"{r['FMR100']:.2f}", f"{r['FMR1000']:.2f}",
                          f"{r['ZeroFMR']:.2f}", "")
        Console(width=max(110, Console().width)).print(table)
        for name, d in report["databases"].items():
            if "identification" in d:
                r = d["identification"]
                typer.echo(f"{name}: 1:N rank-1 hit rate {r['rank1_hit_rate']:.2f} % ({r['probes']} probes, "
                           f"gallery of {r['gallery']}, exhaustive)")
        for row in report["calibration"]:
            typer.echo(f"threshold {row['threshold']:.0f}: FMR {100 * row['measured_fmr']:.3f} % "
                       f"(target {100 * row['target_fmr']:.2f} %)")

    @bench.command("identify")
    def identify(
        backend: str = typer.Option("local", "--backend", help="local, or ray: the Ray backend timed beside "
                                    "the local one (the oracle) on a cluster of --nodes nodes on this machine."),
        gallery: list[int] = typer.Option([10_000], "--gallery", min=1, help="Gallery size (repeat for several); "
                                          "synthetic background plus one impression per real finger."),
        stages: int = typer.Option(2, "--stages", min=1, max=2, help="1: exhaustive search only; 2: two-stage "
                                   "search as well, timed beside the exhaustive one."),
        probes: int = typer.Option(100, "--probes", min=1, help="Mated searches for rank-1 and the curve."),
        time_probes: int = typer.Option(20, "--time-probes", min=1, help="Searches timed per backend and mode."),
        tile_to: int = typer.Option(0, "--tile-to", min=0, help="Also time both searches over copies of the last "
                                    "gallery's arrays up to this many templates (timing only)."),
        shards: int = typer.Option(2, "--shards", min=1, help="Ray shards."),
        nodes: int = typer.Option(2, "--nodes", min=1, help="Ray nodes started on this machine (ignored with "
                                  "--ray-address)."),
        ray_address: Optional[str] = typer.Option(None, "--ray-address", help="Join this Ray cluster instead."),
        fvc: list[Path] = typer.Option([Path("../shared/data/fvc2000"), Path("../shared/data/fvc2002")], "--fvc",
                                       help="FVC folders (DB1_B.. inside) whose fingers are searched."),
        seed: int = typer.Option(1, "--seed", help="Synthetic background seed."),
        json_out: Optional[Path] = typer.Option(None, "--json", help="Write the report here."),
        plot: Optional[Path] = typer.Option(None, "--plot", help="Penetration/hit-rate curves and synthetic vs "
                                            "real statistics, as a PNG."),
    ) -> None:
        """1:N search: rank-1, penetration curve, latency and rate, local vs Ray, one vs two stages."""
        from ..identify import benchmark

        if backend not in ("local", "ray"):
            raise typer.BadParameter("--backend is local or ray")
        progress, update = _progress_bar()
        with progress:
            mated = _fvc_fingers(fvc, update)
        if not mated:
            typer.secho("error: no FVC <finger>_<impression> images found", fg="red", err=True)
            raise typer.Exit(2)
        if min(gallery) < len(mated):
            raise typer.BadParameter(f"--gallery must be at least {len(mated)} (one reference per finger)")
        cluster = None
        make = None
        if backend == "ray":
            from ..config import get_settings
            from ..identify.ray_backend import LocalCluster, RayBackend

            settings = get_settings().model_copy(update={"ray_shard_cpus": 0})
            if ray_address:
                import ray

                ray.init(address=ray_address, log_to_driver=False, configure_logging=False)
            else:
                cluster = LocalCluster(nodes=nodes, cpus=1)

            def make():
                return RayBackend(None, shards=shards, settings=settings)
        progress, update = _progress_bar()
        try:
            with progress:
                report = benchmark.run(mated, gallery, probes=probes, time_probes=time_probes,
                                       stages=(1, 2) if stages == 2 else (1,), ray_backend=make, tile_to=tile_to,
                                       seed=seed, plot_path=str(plot) if plot else None, progress=update)
        finally:
            if cluster is not None:
                cluster.shutdown()
        if json_out:
            json_out.write_text(json.dumps(report, indent=2))
        for size, r in report["sizes"].items():
            a = r["accuracy"]
            typer.echo(f"gallery {size}: exhaustive rank-1 {100 * a['exhaustive_rank1_hit_rate']:.1f} % of "
                       f"{a['probes']}, score gap median {a['score_gap_median']:.0f}; operating penetration "
                       f"{100 * a['operating_penetration']:.2f} % (shortlist {a['operating_shortlist']})")
            for name in ("local", "ray"):
                if name not in r:
                    continue
                for st in (1, 2):
                    x = r[name].get(f"stages{st}")
                    if x:
                        same = x.get("identical_to_local")
                        typer.echo(f"  {name:5} stages {st}: {x['searches_per_s']:.2f} searches/s, p50 "
                                   f"{x['p50_ms']:.1f} ms, p99 {x['p99_ms']:.1f} ms, rank-1 "
                                   f"{100 * x['rank1_hit_rate']:.0f} %" + ("" if same is None else f", identical "
                                                                          f"to local: {same}"))
                if "speedup_over_exhaustive" in r[name]:
                    typer.echo(f"  {name:5} two-stage speedup over exhaustive: {r[name]['speedup_over_exhaustive']:.2f}x")
        if "tiled" in report:
            t = report["tiled"]
            typer.echo(f"{t['templates']} templates (tiled x{t['tile']}): exhaustive p50 {t['exhaustive']['p50_ms']:.0f} "
                       f"ms, two-stage p50 {t['two_stage']['p50_ms']:.0f} ms ({t['speedup_over_exhaustive']:.1f}x), "
                       f"first stage {t['first_stage_templates_per_s']:.3g} templates/s")
        typer.echo(f"impostor scores, real vs synthetic: KS {report['impostor_ks']:.3f}")

    @bench.command("throughput")
    def throughput(
        gallery: int = typer.Option(2000, "--gallery", min=1, help="Gallery size (templates)."),
        probes: int = typer.Option(20, "--probes", min=1, help="Probes searched on the native backend "
                                   "(a quarter of them on numpy)."),
        json_out: Path = typer.Option(..., "--json", help="Write the report here."),
    ) -> None:
        """Comparisons and searches per second of both backends, side by side, on one core."""
        progress, update = _progress_bar()
        with progress:
            report = run_throughput(gallery, probes, progress=update)
        json_out.write_text(json.dumps(report, indent=2))
        typer.echo(f"gallery {report['gallery']} templates, {report['minutiae_mean']:.1f} minutiae on average, "
                   f"{report['gallery_bytes_per_template']:.0f} B per template packed "
                   f"(peak {report['pack_peak_bytes_per_template']:.0f} B while packing)")
        for name, r in report["backends"].items():
            typer.echo(f"{name:>7}: batch {r['batch_comparisons_per_s']:>10,.0f} cmp/s "
                       f"({r['batch_comparisons_per_cpu_s']:,.0f} per CPU-s), "
                       f"1:1 calls {r['single_comparisons_per_s']:>9,.0f}/s, "
                       f"search {r['searches_per_s']:.2f}/s of {report['gallery']} "
                       f"(rank-1 same finger {r['search_rank1_hits']}, itself {r['search_rank1_self_hits']})")
        for key, v in report.get("ratio_native_over_numpy", {}).items():
            typer.echo(f"native/numpy {key}: {v:.1f}x")
