"""``biostation extract``: fingerprint images to minutiae templates."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

FORMATS = ("iso19794-2", "ansi378", "json", "native")
SUFFIX = {"iso19794-2": ".iso", "ansi378": ".ansi", "json": ".json", "native": ".bst"}


def register(app: typer.Typer) -> None:
    @app.command()
    def extract(
        images: list[Path] = typer.Argument(..., help="Fingerprint images (PNG, TIFF, BMP, JPEG, ...), "
                                            "8-bit grey or colour."),
        out: Path | None = typer.Option(
            None, "-o", "--out", help="Output file (one image) or directory (created if needed). "
            "Default: JSON to stdout; other formats next to each image, named after it."),
        fmt: str = typer.Option("iso19794-2", "--format", "-f",
                                help=f"Template format: {', '.join(FORMATS)}."),
        dpi: float = typer.Option(500, "--dpi", help="Resolution of the images in pixels per inch "
                                  "(250..2000; FVC2002 DB2 is 569)."),
        finger: int = typer.Option(0, "--finger", min=0, max=10,
                                   help="ISO finger position written into every template (1 right thumb .. "
                                   "10 left little; 0 unknown)."),
        nfiq2: bool = typer.Option(False, "--nfiq2", help="Compute each image's NFIQ 2 score and write it as "
                                   "the template's finger quality (0 = not reported otherwise)."),
    ) -> None:
        """Extract minutiae from fingerprint images and write ISO/ANSI/JSON templates.

        One template per image. Unreadable images are reported and skipped (exit status 1).
        """
        import time

        from rich.console import Console
        from rich.progress import Progress

        from ..errors import BiostationError
        from ..fingerprint import extract as extract_template
        from ..fingerprint import read_image
        from ..templates import encode

        err = Console(stderr=True)
        if fmt not in FORMATS:
            err.print(f"[red]unknown format {fmt!r}[/]; choose one of {', '.join(FORMATS)}")
            raise typer.Exit(2)
        to_stdout = out is None and fmt == "json"
        single_file = out is not None and len(images) == 1 and not out.is_dir() and out.suffix != ""
        if out is not None and not single_file:
            out.mkdir(parents=True, exist_ok=True)
        failures = 0
        with Progress(console=err, transient=True, disable=len(images) < 4) as progress:
            task = progress.add_task("extracting", total=len(images))
            for path in images:
                progress.advance(task)
                try:
                    image = read_image(path)
                    t0 = time.perf_counter()
                    template = extract_template(image, dpi=dpi)
                    ms = (time.perf_counter() - t0) * 1e3
                    if finger or nfiq2:
                        score = None
                        if nfiq2:
                            from ..fingerprint import nfiq2 as nfiq2_score

                            score = nfiq2_score(image, dpi=dpi).score
                        template = template.labelled(finger_position=finger, quality=score)
                    data = encode(template, fmt)
                except BiostationError as exc:
                    failures += 1
                    msg = str(exc) if str(path) in str(exc) else f"{path}: {exc}"
                    err.print(f"[red]error[/]: {msg}", soft_wrap=True, markup=True, highlight=False)
                    continue
                if to_stdout:
                    sys.stdout.write(data.decode() + "\n")
                    sys.stdout.flush()
                    dest = "stdout"
                else:
                    target = out if single_file else (out or path.parent) / (path.stem + SUFFIX[fmt])
                    assert target is not None
                    target.write_bytes(data)
                    dest = str(target)
                note = f" ({template.reason})" if template.reason else ""
                err.print(f"{path}: {len(template.minutiae)} minutiae{note}, {ms:.1f} ms -> {dest}",
                          soft_wrap=True, markup=False, highlight=False)
        if failures:
            raise typer.Exit(1)
