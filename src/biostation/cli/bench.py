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
from pathlib import Path
from typing import Optional

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
