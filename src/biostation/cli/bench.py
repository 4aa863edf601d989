"""``biostation bench fvc`` and ``biostation bench throughput``: the matcher's benchmarks.

``fvc`` measures accuracy under the FVC and all-pairs protocols (EER as FVC defines it,
FMR100, FMR1000, ZeroFMR) from images (through the extractor) or from given templates, and
draws DET curves. ``throughput`` times both matcher backends side by side in one run: 1:1
comparisons per second on one core (batched and per call), 1:N searches per second, and the
memory per gallery template. Both are thin callers of :mod:`biostation.evaluation`, which the
benchmarks and tests call too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import typer


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


def _fvc_fingers(roots: list[Path], progress: Callable[[str, int, int], None] | None = None) -> dict[str, list]:
    """Templates extracted from FVC images, by finger (``fvc2000/DB1_B/101``), impressions in order."""
    from ..evaluation import database_dpi, databases, samples
    from ..fingerprint import extract, read_image
    from ..matcher.evaluation import parse_name

    jobs = []
    for root in roots:
        if not root.is_dir():
            continue
        for db in databases(root):
            dpi = database_dpi(db)
            jobs += [(f"{root.name}/{db.name}/{parse_name(stem)[0]}", image, dpi) for stem, image, _ in samples(db, None)]
    out: dict[str, list] = {}
    for i, (finger, image, dpi) in enumerate(jobs):
        out.setdefault(finger, []).append(extract(read_image(image), dpi))
        if progress:
            progress("extracting FVC templates", i + 1, len(jobs))
    return out


def _mated_fingers(fvc: list[Path], backend: str) -> dict[str, list]:
    """The 1:N benchmarks' mated fingers, extracted from the FVC folders with a progress bar;
    exit 2 when there are none, BadParameter for a backend other than local or ray."""
    if backend not in ("local", "ray"):
        raise typer.BadParameter("--backend is local or ray")
    progress, update = _progress_bar()
    with progress:
        mated = _fvc_fingers(fvc, update)
    if not mated:
        typer.secho("error: no FVC <finger>_<impression> images found", fg="red", err=True)
        raise typer.Exit(2)
    return mated


def _ray_gallery_factory(backend: str, nodes: int, shards: int, ray_address: str | None, unit: str):
    """For ``--backend ray``: the cluster started here (None when joining ``ray_address``) and a
    function making an empty in-memory Ray gallery of ``unit``s; ``(None, None)`` otherwise."""
    if backend != "ray":
        return None, None
    from ..config import get_settings
    from ..identify.ray_backend import LocalCluster, RayBackend

    settings = get_settings().model_copy(update={"ray_shard_cpus": 0})
    cluster = None
    if ray_address:
        import ray

        ray.init(address=ray_address, log_to_driver=False, configure_logging=False)
    else:
        cluster = LocalCluster(nodes=nodes, cpus=1)

    def make():
        return RayBackend(None, shards=shards, settings=settings, unit=unit)

    return cluster, make


def register(app: typer.Typer) -> None:
    bench = typer.Typer(help="Matcher benchmarks: accuracy (FVC protocols) and throughput.", no_args_is_help=True)
    app.add_typer(bench, name="bench")

    @bench.command("fvc")
    def fvc(
        db_dir: Path = typer.Argument(..., help="An FVC database folder of <finger>_<impression> images, or a "
                                      "folder of such databases (e.g. ../shared/data/fvc2002)."),
        dpi: float | None = typer.Option(None, "--dpi", help="Image resolution (default: by the FVC "
                                          "collection's table, 569 for FVC2002 DB2, else 500); with "
                                          "--templates, overrides their recorded one."),
        templates: Path | None = typer.Option(None, "--templates", help="Use these templates (ISO/ANSI/"
                                                 "native files named like the images, per database "
                                                 "subfolder) instead of extracting."),
        json_out: Path = typer.Option(..., "--json", help="Write the full report here."),
        det: Path | None = typer.Option(None, "--det", help="Draw DET curves (all-pairs) to this PNG."),
    ) -> None:
        """EER, FMR100, FMR1000, ZeroFMR per database under the FVC and all-pairs protocols."""
        from rich.console import Console
        from rich.table import Table

        if not db_dir.is_dir() and templates is None:
            raise typer.BadParameter(f"{db_dir} is not a folder")
        from ..evaluation import run_fvc

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
        tile_to: list[int] = typer.Option([], "--tile-to", min=1, help="Also time both searches over copies of the "
                                          "last gallery's codes and arrays up to this many templates (repeat for "
                                          "several; timing only)."),
        accuracy_at: list[int] = typer.Option([], "--accuracy-at", min=1, help="Also measure rank-1 and the "
                                              "penetration curve on a gallery of this many templates generated and "
                                              "scored a chunk at a time, never held whole (repeat for several; "
                                              "about 4-6 ms of CPU per template)."),
        workers: int = typer.Option(1, "--workers", min=0, help="Processes for --accuracy-at (0: this one)."),
        shards: int = typer.Option(2, "--shards", min=1, help="Ray shards."),
        nodes: int = typer.Option(2, "--nodes", min=1, help="Ray nodes started on this machine (ignored with "
                                  "--ray-address)."),
        ray_address: str | None = typer.Option(None, "--ray-address", help="Join this Ray cluster instead."),
        fvc: list[Path] = typer.Option([Path("../shared/data/fvc2000"), Path("../shared/data/fvc2002")], "--fvc",
                                       help="FVC folders (DB1_B.. inside) whose fingers are searched."),
        seed: int = typer.Option(1, "--seed", help="Synthetic background seed."),
        json_out: Path | None = typer.Option(None, "--json", help="Write the report here."),
        plot: Path | None = typer.Option(None, "--plot", help="Penetration/hit-rate curves and synthetic vs "
                                            "real statistics, as a PNG."),
    ) -> None:
        """1:N search: rank-1, penetration curve, latency and rate, local vs Ray, one vs two stages."""
        from ..identify import benchmark

        mated = _mated_fingers(fvc, backend)
        if min(gallery) < len(mated):
            raise typer.BadParameter(f"--gallery must be at least {len(mated)} (one reference per finger)")
        cluster, make = _ray_gallery_factory(backend, nodes, shards, ray_address, "finger")
        progress, update = _progress_bar()
        try:
            with progress:
                report = benchmark.run(mated, gallery, probes=probes, time_probes=time_probes,
                                       stages=(1, 2) if stages == 2 else (1,), ray_backend=make, tile_to=tile_to,
                                       seed=seed, plot_path=str(plot) if plot else None,
                                       accuracy_at=accuracy_at, workers=workers, progress=update)
        finally:
            if cluster is not None:
                cluster.shutdown()
        if json_out:
            json_out.write_text(json.dumps(report, indent=2))
        for size, r in report["sizes"].items():
            a = r["accuracy"]
            typer.echo(f"gallery {size}: exhaustive rank-1 {100 * a['exhaustive_rank1_hit_rate']:.1f} % of "
                       f"{a['probes']}, score gap median {a['score_gap_median']:.0f}; operating penetration "
                       f"{100 * a['operating_penetration']:.2f} % (shortlist {a['operating_shortlist']}) with the codes, "
                       f"{100 * a['local_screen']['operating_penetration']:.2f} % (shortlist "
                       f"{a['local_screen']['operating_shortlist']}) with the local screen; the cascade's codes keep "
                       f"{100 * a['cascade']['operating_penetration']:.2f} % ({a['cascade']['operating_shortlist']})")
            for name in ("local", "ray"):
                if name not in r:
                    continue
                for key, label in (("stages1", "stages 1"), ("stages2", "stages 2, codes"),
                                   ("stages2_local_screen", "stages 2, local screen"),
                                   ("stages2_cascade", "stages 2, cascade")):
                    x = r[name].get(key)
                    if x:
                        same = x.get("identical_to_local")
                        typer.echo(f"  {name:5} {label}: {x['searches_per_s']:.2f} searches/s, p50 "
                                   f"{x['p50_ms']:.1f} ms, p99 {x['p99_ms']:.1f} ms, rank-1 "
                                   f"{100 * x['rank1_hit_rate']:.0f} %" + ("" if same is None else f", identical "
                                                                          f"to local: {same}"))
                if "speedup_over_exhaustive" in r[name]:
                    typer.echo(f"  {name:5} two-stage speedup over exhaustive: {r[name]['speedup_over_exhaustive']:.2f}x "
                               f"(codes), {r[name]['speedup_local_screen_over_exhaustive']:.2f}x (local screen), "
                               f"{r[name]['speedup_cascade_over_exhaustive']:.2f}x (cascade)")
        for size, a in report.get("streamed", {}).items():
            typer.echo(f"gallery {size} (streamed, {a['streamed']['build_and_score_s']:.0f} s): exhaustive rank-1 "
                       f"{100 * a['exhaustive_rank1_hit_rate']:.1f} % of {a['probes']}, score gap median "
                       f"{a['score_gap_median']:.0f}; operating penetration {100 * a['operating_penetration']:.2f} % "
                       f"(shortlist {a['operating_shortlist']}); 99 % of hits at "
                       f"{100 * a['penetration_99pct_of_exhaustive_hits']:.2f} %, 95 % at "
                       f"{100 * a['penetration_95pct_of_exhaustive_hits']:.2f} % (codes); local screen: operating "
                       f"penetration {100 * a['local_screen']['operating_penetration']:.2f} %, worst mate rank "
                       f"{100 * a['local_screen']['mate_rank_worst']:.2f} %; cascade: codes keep "
                       f"{100 * a['cascade']['operating_penetration']:.2f} %")
        for t in report.get("tiled", []):
            typer.echo(f"{t['templates']} templates (tiled x{t['tile']}): exhaustive p50 {t['exhaustive']['p50_ms']:.0f} "
                       f"ms, two-stage p50 {t['two_stage']['p50_ms']:.0f} ms ({t['speedup_over_exhaustive']:.1f}x), "
                       + (f"first stage {t['first_stage_templates_per_s']:.3g} templates/s (shortlist "
                          f"{t['first_stage_rate_shortlist']})" if t["first_stage_templates_per_s"]
                          else "first stage: none (the whole gallery is the shortlist)"))
            for o in t["other_penetrations"]:
                typer.echo(f"  at {100 * o['penetration']:.2f} % penetration: two-stage p50 "
                           f"{o['two_stage']['p50_ms']:.0f} ms ({o['speedup_over_exhaustive']:.1f}x)")
            if "local_screen" in t:
                ls = t["local_screen"]
                typer.echo(f"  local screen at {100 * ls['penetration']:.2f} %: two-stage p50 {ls['two_stage']['p50_ms']:.0f} "
                           f"ms ({ls['speedup_over_exhaustive']:.1f}x), first stage "
                           f"{ls['first_stage_templates_per_s']:.3g} templates/s")
            if "cascade" in t:
                c = t["cascade"]
                typer.echo(f"  cascade (codes {100 * c['penetration']:.2f} %, local screen "
                           f"{100 * c['local_penetration']:.2f} %): two-stage p50 {c['two_stage']['p50_ms']:.0f} ms "
                           f"({c['speedup_over_exhaustive']:.1f}x), screens alone p50 {c['first_stage']['p50_ms']:.0f} ms")
        typer.echo(f"impostor scores, real vs synthetic: KS {report['impostor_ks']:.3f}")
        cd = report["code_distances"]
        typer.echo(f"screening-code distances to impostors, real vs synthetic: KS {cd['ks']:.3f}; mates ranked "
                   f"within 1 % by the first stage: {100 * cd['mate_rank_real_background']['within_1pct']:.0f} % "
                   f"among real strangers, {100 * cd['mate_rank_synthetic_background']['within_1pct']:.0f} % "
                   "among synthetic ones")

    @bench.command("identify-persons")
    def identify_persons(
        backend: str = typer.Option("local", "--backend", help="local, or ray: the held gallery also enrolled "
                                    "on a Ray gallery of persons (--shards over --nodes nodes on this machine) "
                                    "and timed beside the local search."),
        shards: int = typer.Option(2, "--shards", min=1, help="Ray shards."),
        nodes: int = typer.Option(2, "--nodes", min=1, help="Ray nodes started on this machine (ignored with "
                                  "--ray-address)."),
        ray_address: str | None = typer.Option(None, "--ray-address", help="Join this Ray cluster instead."),
        fingers: list[int] = typer.Option([10], "--fingers", min=1, max=10, help="Fingers per person (repeat "
                                          "for several): FVC fingers of one database, F at a time."),
        gallery: int = typer.Option(10_000, "--gallery", min=1, help="Templates of the gallery built whole "
                                    "(persons: this / F), for accuracy and timing."),
        accuracy_at: list[int] = typer.Option([], "--accuracy-at", min=1, help="Also measure accuracy on a "
                                              "gallery of this many templates generated and scored a chunk at "
                                              "a time (repeat for several)."),
        tile_to: list[int] = typer.Option([], "--tile-to", min=1, help="Also time one vs two stages over "
                                          "copies of the built gallery up to this many templates."),
        rotated_at: list[int] = typer.Option([], "--rotated-at", min=1, help="Also measure accuracy on a "
                                             "gallery of this many templates (scored a chunk at a time) with "
                                             "each impression enrolled in turn and every other one searched "
                                             "(8 x 7 searches per person; repeat for several)."),
        probes: int = typer.Option(240, "--probes", min=1, help="Mated ten-print searches, at most (a probe is "
                                   "one impression of each of a person's fingers)."),
        time_probes: int = typer.Option(10, "--time-probes", min=1, help="Searches timed per mode."),
        workers: int = typer.Option(1, "--workers", min=0, help="Processes for --accuracy-at (0: this one)."),
        fvc: list[Path] = typer.Option([Path("../shared/data/fvc2000"), Path("../shared/data/fvc2002")], "--fvc",
                                       help="FVC folders (DB1_B.. inside) whose fingers make the persons."),
        seed: int = typer.Option(1, "--seed", help="Synthetic background seed."),
        json_out: Path | None = typer.Option(None, "--json", help="Write the report here."),
        plot: Path | None = typer.Option(None, "--plot", help="Penetration/hit-rate curves, as a PNG."),
    ) -> None:
        """Ten-print 1:N: persons of F fingers, fused first stage, one vs two stages side by side."""
        from ..identify import person_benchmark

        mated = _mated_fingers(fvc, backend)
        cluster, make = _ray_gallery_factory(backend, nodes, shards, ray_address, "person")
        progress, update = _progress_bar()
        try:
            with progress:
                report = person_benchmark.run(mated, fingers, gallery, probes=probes, time_probes=time_probes,
                                              accuracy_at=accuracy_at, tile_to=tile_to, workers=workers, seed=seed,
                                              plot_path=str(plot) if plot else None, ray_backend=make,
                                              rotated_at=rotated_at, progress=update)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        finally:
            if cluster is not None:
                cluster.shutdown()
        if json_out:
            json_out.write_text(json.dumps(report, indent=2))
        if report["left_out"]:
            typer.echo(f"left out (the same fingers as another database): {', '.join(report['left_out'])}")
        for f, r in report["by_fingers"].items():
            for a in [r["held"]["accuracy"], *r["streamed"].values(), *r["rotated"].values()]:
                typer.echo(f"{f} finger(s), {a['templates']} templates ({a['persons']} persons"
                           + (", every impression enrolled in turn" if "by_reference_impression" in a else "")
                           + f"): exhaustive rank-1 "
                           f"{a['exhaustive_rank1_hits']}/{a['probes']}, score gap median {a['score_gap_median']:.0f}, "
                           f"p10 {a['score_gap_p10']:.0f}; every hit kept at {100 * a['operating_penetration']:.2f} % "
                           f"(shortlist {a['operating_shortlist']} persons); first-stage mate rank p95 "
                           f"{100 * a['mate_rank_p95']:.2f} %, worst {100 * a['mate_rank_worst']:.2f} %")
            ray = r["held"]["ray"]
            if ray:
                typer.echo(f"  ray ({ray['shards']} shards on {ray['nodes']} nodes): exhaustive p50 "
                           f"{ray['stages1']['p50_ms']:.0f} ms, identical to local: "
                           f"{ray['stages1']['identical_to_local']}; two-stage p50 {ray['stages2']['p50_ms']:.1f} ms "
                           f"({ray['speedup_over_exhaustive']:.1f}x), rank-1 {100 * ray['stages2']['rank1_hit_rate']:.0f} %")
            for t in [r["held"]["timing"], *r["tiled"]]:
                typer.echo(f"  {t['templates']} templates: exhaustive p50 {t['exhaustive']['p50_ms']:.0f} ms, "
                           f"two-stage p50 {t['two_stage']['p50_ms']:.1f} ms at {100 * t['penetration']:.2f} % "
                           f"({t['speedup_over_exhaustive']:.0f}x), first stage {t['first_stage']['p50_ms']:.1f} ms "
                           f"({t['first_stage_templates_per_s']:.3g} templates/s)" + (
                               f"; rank-1 exhaustive {100 * t['exhaustive']['rank1_hit_rate']:.0f} %, two-stage "
                               f"{100 * t['two_stage']['rank1_hit_rate']:.0f} %" if "rank1_hit_rate" in t["two_stage"]
                               else f" (tiled x{t['tile']})"))

    @bench.command("throughput")
    def throughput(
        gallery: int = typer.Option(2000, "--gallery", min=1, help="Gallery size (templates)."),
        probes: int = typer.Option(20, "--probes", min=1, help="Probes searched on the native backend "
                                   "(a quarter of them on numpy)."),
        json_out: Path = typer.Option(..., "--json", help="Write the report here."),
    ) -> None:
        """Comparisons and searches per second of both backends, side by side, on one core."""
        from ..evaluation import run_throughput

        progress, update = _progress_bar()
        with progress:
            try:
                report = run_throughput(gallery, probes, progress=update)
            except FileNotFoundError as e:
                raise typer.BadParameter(str(e)) from None
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
        lb = report["local_backend"]
        typer.echo(f"identify LocalBackend ({lb['backend']}): search {lb['searches_per_s']:.2f}/s "
                   f"(rank-1 same finger {lb['search_rank1_hits']}, itself {lb['search_rank1_self_hits']})")
        for key, v in report.get("ratio_native_over_numpy", {}).items():
            typer.echo(f"native/numpy {key}: {v:.1f}x")
