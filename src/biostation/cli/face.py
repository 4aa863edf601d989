"""``biostation face ...``: portrait checks, token images and 1:1 verification from the shell.

* ``face check IMAGE... [--json] [--lang vi|en] [--token-dir DIR]``: every ICAO / ISO 19794-5
  check per image, with value, threshold and reason; exit 0 when all pass, 1 when one fails,
  2 when an image cannot be read.
* ``face verify LIVE CHIP [--operating-point NAME] [--json]``: the desk decision (live portrait
  against the chip photo) with its distance, operating point, threshold and the live portrait's
  quality notes; exit 0 match, 1 no match, 3 retake (no match on a live portrait that fails a
  check that matters for comparison), 2 error.
* ``face capture [--timeout S] [--out FILE]``: a capture session on the station's camera
  (the simulated one with ``--devices simulated``): auto-capture when every check passes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

face_app = typer.Typer(help="Portrait capture: ICAO checks with reasons, token image, face verification.",
                       no_args_is_help=True)


def _print_report(console: Any, name: str, rep: Any, lang: str) -> None:
    from rich.table import Table

    verdict = "[green]PASS[/green]" if rep.passed else "[red]FAIL[/red]"
    table = Table(title=f"{name}: {verdict} ({rep.width}x{rep.height}, faces: {rep.faces})", title_justify="left")
    for col in ("check", "result", "value", "threshold", "reason"):
        table.add_column(col, overflow="fold")
    for c in rep.checks:
        colour = {"pass": "green", "fail": "red"}.get(c.status, "grey50")
        value = "-" if c.value is None else f"{c.value:.3f}"
        table.add_row(c.name, f"[{colour}]{c.status}[/{colour}]", value, c.threshold,
                      c.reason_vi if lang == "vi" else c.reason_en)
    console.print(table)


@face_app.command("check")
def check(
    images: list[Path] = typer.Argument(..., help="Portrait files (JPEG, PNG, PGM, ...)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per image, one per line."),
    lang: str = typer.Option("en", "--lang", help="Language of the reasons in the table: en or vi (JSON has both)."),
    token_dir: Path | None = typer.Option(None, "--token-dir", help="Also write the ISO token image of each "
                                             "image with a face, as NAME.jpg and NAME.jp2 (JPEG 2000, DG2)."),
) -> None:
    """Run every portrait check on each image: pass or fail, and each check's value, threshold and reason."""
    from rich.console import Console
    from rich.progress import Progress

    from ..errors import BiostationError
    from ..face import check_portrait, encode_jpeg, encode_jpeg2000, load_image, token_image

    console = Console(stderr=as_json)
    worst = 0
    with Progress(console=Console(stderr=True), transient=True, disable=len(images) < 3) as progress:
        task = progress.add_task("checking portraits", total=len(images))
        for path in images:
            try:
                img = load_image(path)
                rep = check_portrait(img)
            except BiostationError as exc:
                worst = 2
                if as_json:
                    print(json.dumps({"image": str(path), "error": str(exc)}, ensure_ascii=False), flush=True)
                else:
                    console.print(f"[red]{path}: {exc}[/red]")
                progress.advance(task)
                continue
            if not rep.passed:
                worst = max(worst, 1)
            out: dict[str, Any] = {"image": str(path), **rep.to_dict()}
            if token_dir is not None and rep.face is not None and rep.faces == 1:
                token_dir.mkdir(parents=True, exist_ok=True)
                tok = token_image(img, rep.face.right_eye, rep.face.left_eye)
                (token_dir / f"{path.stem}.jpg").write_bytes(encode_jpeg(tok))
                (token_dir / f"{path.stem}.jp2").write_bytes(encode_jpeg2000(tok))
                out["token"] = [str(token_dir / f"{path.stem}.jpg"), str(token_dir / f"{path.stem}.jp2")]
            if as_json:
                print(json.dumps(out, ensure_ascii=False), flush=True)
            else:
                _print_report(console, str(path), rep, lang)
            progress.advance(task)
    raise typer.Exit(worst)


@face_app.command("verify")
def verify(
    a: Path = typer.Argument(..., help="The live portrait."),
    b: Path = typer.Argument(..., help="The chip's DG2 photo (JPEG or JPEG 2000) or another reference portrait."),
    operating_point: str | None = typer.Option(None, "--operating-point",
                                               help="fmr-0.1% (default) or fmr-0.01%."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Desk decision, live portrait against the chip photo: distance, operating point, quality notes."""
    from ..errors import BiostationError
    from ..face import load_image
    from ..face.verify import MATCH, NO_MATCH, verify_portrait

    try:
        res = verify_portrait(load_image(a), load_image(b), operating_point=operating_point)
    except BiostationError as exc:
        if as_json:
            print(json.dumps({"error": str(exc)}))
        else:
            typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps(res.to_dict()))
    else:
        op = res.operating_point
        dist = "no face" if res.distance is None else f"distance {res.distance:.4f}"
        print(f"{res.decision.upper().replace('_', ' ')}: {dist} (operating point {op.name}, threshold "
              f"{op.threshold}, model {res.model})")
        for c in res.quality:
            print(f"  live portrait: {c.reason_en}")
    raise typer.Exit({MATCH: 0, NO_MATCH: 1}.get(res.decision, 3))


@face_app.command("capture")
def capture(
    timeout: float = typer.Option(30.0, "--timeout", help="Give up after this many seconds."),
    out: Path | None = typer.Option(None, "--out", help="Write the captured frame here (PNG/JPEG by suffix)."),
    devices: str | None = typer.Option(None, "--devices", help="auto, simulated or hardware."),
    as_json: bool = typer.Option(False, "--json", help="Print the final report as JSON."),
) -> None:
    """Capture a portrait from the station camera: auto-capture when every check passes, or time out."""
    import cv2
    from rich.console import Console

    from ..config import DeviceMode
    from ..hal import DriverRegistry
    from ..station.workflows import capture_portrait
    from . import settings_from

    settings = settings_from(None, DeviceMode(devices) if devices else None)
    reg = DriverRegistry(settings)
    reg.scan()
    cams = [d for d in reg.devices() if d.device_class.value == "camera"]
    if not cams:
        typer.secho("no camera found", fg="red", err=True)
        raise typer.Exit(2)
    console = Console(stderr=True)
    with console.status("looking for a compliant portrait") as status:
        def preview(_img: Any, rep: Any) -> None:
            status.update("failing: " + (", ".join(c.name for c in rep.failed) or "none"))

        res = capture_portrait(cams[0], timeout_s=timeout, preview=preview)
    cams[0].close()
    if out is not None and res.image is not None:
        cv2.imwrite(str(out), res.image)
    if as_json:
        print(json.dumps({"status": res.status, "frames": res.frames, "elapsed_s": round(res.elapsed_s, 2),
                          "report": res.report.to_dict() if res.report else None}, ensure_ascii=False))
    else:
        print(f"{res.status} after {res.frames} frames ({res.elapsed_s:.1f} s)")
    raise typer.Exit(0 if res.captured else 1)


def register(app: typer.Typer) -> None:
    app.add_typer(face_app, name="face")
