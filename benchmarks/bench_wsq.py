"""WSQ at NIST's bit rate: compression reached on FVC2002, and the matcher's accuracy before and after.

    .venv/bin/python benchmarks/bench_wsq.py ../shared/data/fvc2002 --out out/wsq

Every image of each FVC2002 set B database is WSQ-coded by :mod:`biostation.records.wsq`
(target 0.75 bit per pixel, NIST's guidance for 500 ppi, about 15:1) at the database's own
resolution, and decoded again. The benchmark prints, per database, the compression ratio reached
(raw 8-bit size / WSQ size) and the bits per pixel, and the matcher's EER (FVC2002 all-pairs and
FVC protocols, through :func:`biostation.evaluation.run_fvc`: images -> extractor -> matcher) on
the original images and on the decoded ones, side by side in one run. DET curves of both go to
``--out`` (``det_original.png``, ``det_wsq.png``) with a JSON report. With ``--nbis``, NIST's
mindtct + bozorth3 (the nbis-py test extra) are measured on the same images as a third-party
reference for how much of the change is WSQ's and how much the matcher's.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def _compress_tree(root: Path, dst: Path, progress) -> dict:
    """WSQ-code every image under root/DB*_B into dst/DB*_B (decoded PNG); ratios per database."""
    from PIL import Image

    from biostation.evaluation import database_dpi, databases
    from biostation.fingerprint import read_image
    from biostation.records import wsq

    stats: dict = {}
    for db in databases(root):
        files = sorted(p for p in db.glob("*.tif"))
        if not files:
            continue
        out = dst / db.name
        out.mkdir(parents=True, exist_ok=True)
        ppi = int(round(database_dpi(db)))
        ratios, bpps, errs, t_enc, t_dec = [], [], [], [], []
        for k, f in enumerate(files):
            img = read_image(f)
            t0 = time.perf_counter()
            data = wsq.encode(img, ppi=ppi)
            t1 = time.perf_counter()
            back = wsq.decode(data)
            t_dec.append(time.perf_counter() - t1)
            t_enc.append(t1 - t0)
            ratios.append(img.size / len(data))
            bpps.append(8 * len(data) / img.size)
            errs.append(float(np.sqrt(np.mean((back.astype(np.float64) - img) ** 2))))
            Image.fromarray(back).save(out / (f.stem + ".png"))
            progress(f"{db.name}: WSQ", k + 1, len(files))
        stats[db.name] = {"images": len(files), "ppi": ppi,
                          "ratio_mean": float(np.mean(ratios)), "ratio_min": float(np.min(ratios)),
                          "ratio_max": float(np.max(ratios)), "bpp_mean": float(np.mean(bpps)),
                          "rmse_mean": float(np.mean(errs)),
                          "encode_ms_median": 1e3 * float(np.median(t_enc)),
                          "decode_ms_median": 1e3 * float(np.median(t_dec))}
    return stats


def _nbis_eer(db: Path, ppi: int, progress) -> dict:
    """All-pairs accuracy of NIST's mindtct + bozorth3 (nbis-py) on the images of one folder."""
    import nbis

    from biostation.matcher.evaluation import parse_name, protocol_pairs, summarize

    files = sorted((p for p in db.iterdir() if p.suffix.lower() in (".tif", ".png")),
                   key=lambda p: parse_name(p.name))
    ext = nbis.new_nbis_extractor(nbis.NbisExtractorSettings(min_quality=0.0, get_center=False,
                                                             check_fingerprint=False, compute_nfiq2=False,
                                                             ppi=ppi))
    mins = []
    for k, f in enumerate(files):
        mins.append(ext.extract_minutiae(f.read_bytes()))
        progress(f"{db.name}: mindtct", k + 1, len(files))
    names = [f.name for f in files]
    gen, imp = protocol_pairs(names, "all-pairs")
    g = np.array([mins[a].compare(mins[b]) for a, b in gen], np.float64)
    i = np.array([mins[a].compare(mins[b]) for a, b in imp], np.float64)
    return summarize(g, i)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path, help="FVC2002 folder with DB1_B..DB4_B")
    ap.add_argument("--out", type=Path, default=Path("out/wsq"), help="where the DET plots and JSON go")
    ap.add_argument("--nbis", action="store_true", help="also NIST's mindtct + bozorth3 (nbis-py, a test "
                    "extra) before and after, as a third-party reference")
    args = ap.parse_args(argv)

    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn
    from rich.table import Table

    from biostation import matcher
    from biostation.evaluation import run_fvc
    from biostation.records import wsq

    args.out.mkdir(parents=True, exist_ok=True)
    console = Console(width=160)
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  console=console, transient=True) as bar:
        task = bar.add_task("", total=1)

        def progress(label: str, done: int, total: int) -> None:
            bar.update(task, description=label, completed=done, total=total)

        with tempfile.TemporaryDirectory(prefix="bench-wsq-") as tmp:
            stats = _compress_tree(args.root, Path(tmp), progress)
            before = run_fvc(args.root, det=args.out / "det_original.png", progress=progress)
            after = run_fvc(Path(tmp), det=args.out / "det_wsq.png", progress=progress)
            nbis_rows = {}
            if args.nbis:
                from biostation.evaluation import databases

                for db in databases(args.root):
                    if db.name in stats:
                        ppi = stats[db.name]["ppi"]
                        nbis_rows[db.name] = (_nbis_eer(db, ppi, progress), _nbis_eer(Path(tmp) / db.name, ppi,
                                                                                       progress))

    table = Table(title=f"WSQ at {wsq.BITRATE} bpp target (NIST: about 15:1) - matcher {matcher.BACKEND}")
    for col in ("database", "ppi", "ratio mean (min-max)", "bpp", "RMSE", "EER all-pairs: original",
                "WSQ", "EER FVC: original", "WSQ", "FMR1000 orig / WSQ"):
        table.add_column(col, justify="right")
    for name, s in stats.items():
        b, a = before["databases"][name], after["databases"][name]
        table.add_row(name, str(s["ppi"]), f"{s['ratio_mean']:.1f} ({s['ratio_min']:.1f}-{s['ratio_max']:.1f})",
                      f"{s['bpp_mean']:.3f}", f"{s['rmse_mean']:.2f}",
                      f"{b['all-pairs']['EER']:.2f}%", f"{a['all-pairs']['EER']:.2f}%",
                      f"{b['fvc']['EER']:.2f}%", f"{a['fvc']['EER']:.2f}%",
                      f"{b['all-pairs']['FMR1000']:.2f}% / {a['all-pairs']['FMR1000']:.2f}%")
    mb, ma = before["mean"], after["mean"]
    table.add_row("mean", "", f"{np.mean([s['ratio_mean'] for s in stats.values()]):.1f}",
                  f"{np.mean([s['bpp_mean'] for s in stats.values()]):.3f}", "",
                  f"{mb['all-pairs']['EER']:.2f}%", f"{ma['all-pairs']['EER']:.2f}%",
                  f"{mb['fvc']['EER']:.2f}%", f"{ma['fvc']['EER']:.2f}%",
                  f"{mb['all-pairs']['FMR1000']:.2f}% / {ma['all-pairs']['FMR1000']:.2f}%")
    console.print(table)
    if nbis_rows:
        ref = Table(title="NIST mindtct + bozorth3 (nbis-py), all-pairs, same images")
        for col in ("database", "EER original", "EER WSQ", "FMR1000 original", "FMR1000 WSQ"):
            ref.add_column(col, justify="right")
        for name, (b, a) in nbis_rows.items():
            ref.add_row(name, f"{b['EER']:.2f}%", f"{a['EER']:.2f}%", f"{b['FMR1000']:.2f}%", f"{a['FMR1000']:.2f}%")
        ref.add_row("mean", *(f"{np.mean([row[j][k] for row in nbis_rows.values()]):.2f}%"
                              for k, j in (("EER", 0), ("EER", 1), ("FMR1000", 0), ("FMR1000", 1))))
        console.print(ref)
    enc = np.median([s["encode_ms_median"] for s in stats.values()])
    dec = np.median([s["decode_ms_median"] for s in stats.values()])
    console.print(f"WSQ encode {enc:.1f} ms, decode {dec:.1f} ms per image (median, one core); "
                  f"DET curves: {args.out / 'det_original.png'}, {args.out / 'det_wsq.png'}")
    report = {"bitrate_target": wsq.BITRATE, "compression": stats, "original": before, "wsq": after,
              "nbis": {k: {"original": b, "wsq": a} for k, (b, a) in nbis_rows.items()}}
    (args.out / "bench_wsq.json").write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
