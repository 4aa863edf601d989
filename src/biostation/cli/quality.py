"""``biostation quality IMAGE...``: NFIQ 2 scores of fingerprint images."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def quality(
        images: list[Path] = typer.Argument(..., help="Fingerprint images (PNG, TIFF, BMP, JPEG, ...), "
                                            "one finger each, ridges dark."),
        dpi: float = typer.Option(500, "--dpi", help="Resolution of the images (NFIQ 2 is defined at "
                                  "500 ppi; other resolutions are resampled to it)."),
        as_json: bool = typer.Option(False, "--json", help="One JSON object per image, with the "
                                     "feedback values (and the 69 features with --features)."),
        with_features: bool = typer.Option(False, "--features", help="Include the 69 feature values "
                                           "in the JSON output."),
        model: Path | None = typer.Option(None, "--model", help="NIST's NFIQ 2 model YAML "
                                             "(default: Settings.nfiq2_model or ../shared)."),
    ) -> None:
        """NFIQ 2 score (0..100, higher is better) of each image; exit status 1 if any image failed."""
        import cv2
        from rich.progress import Progress

        from ..errors import BiostationError
        from ..fingerprint.nfiq2 import load_model, nfiq2

        try:
            load_model(model)
        except BiostationError as exc:
            typer.secho(f"error: {exc}", fg="red", err=True)
            raise typer.Exit(2) from exc
        failed = 0
        rows = []
        with Progress(transient=True, disable=len(images) < 4) as progress:
            task = progress.add_task("NFIQ 2", total=len(images))
            for path in images:
                img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
                try:
                    if img is None:
                        raise FileNotFoundError(f"cannot read {path} as an image")
                    r = nfiq2(img, dpi=dpi, model=model)
                    row = {"image": str(path), "score": r.score, "reason": r.reason, "feedback": r.feedback}
                    if with_features:
                        row["features"] = r.features
                except (BiostationError, OSError) as exc:
                    failed += 1
                    row = {"image": str(path), "score": None, "error": str(exc)}
                rows.append(row)
                progress.advance(task)
        for row in rows:
            if as_json:
                typer.echo(json.dumps(row))
            elif row["score"] is None:
                typer.secho(f"{row['image']}\terror: {row['error']}", fg="red")
            else:
                typer.echo(f"{row['image']}\t{row['score']}" + (f"\t{row['reason']}" if row["reason"] else ""))
        if failed:
            raise typer.Exit(1)
