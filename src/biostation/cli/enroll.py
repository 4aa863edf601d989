"""``biostation enroll ...``: the enrollment desk from the command line.

* ``enroll demo --out DIR``: one whole enrollment against the simulated devices through the same
  workflow the operator page drives (demographics, the 4-4-2 slaps and ten singles with NFIQ 2
  and the sequence check, the portrait from the simulated camera with the ICAO checks, the
  duplicate search, confirmation); writes the ANSI/NIST-ITL transaction as
  ``DIR/<session>.an2`` and the ISO/IEC 19794 records beside it.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import typer

enroll_app = typer.Typer(help="Enrollment desk: applicant sessions, records.", no_args_is_help=True)

#: the demo applicant (a valid 12-digit ID: Hanoi 001, male born 1990)
DEMO_APPLICANT = {"id_number": "001090012345", "surname": "Nguyễn", "given_names": "Văn An", "sex": "M",
                  "date_of_birth": "1990-04-17", "place_of_birth": "Hà Nội"}


def _write(path: Path, data: bytes) -> None:
    from ..records.ansi_nist import write_file

    write_file(path, data)


@enroll_app.command("demo")
def demo(
    out: Path = typer.Option(..., "--out", help="Folder for <session>.an2 and the ISO records."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Station data directory whose store and "
                                            "gallery the session goes to (default: a fresh temporary one)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Enrol one simulated applicant end to end and write the records."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from ..config import DeviceMode
    from ..errors import BiostationError
    from ..hal import DriverRegistry
    from ..station.workflows.store_repo import open_desk
    from . import settings_from

    console = Console(stderr=True)
    tmp = None
    if data_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="biostation-demo-")
        data_dir = Path(tmp.name)
    settings = settings_from(data_dir, DeviceMode.SIMULATED)
    reg = DriverRegistry(settings)
    reg.scan()
    desk, store, _ = open_desk(settings)
    summary: dict[str, Any] = {}
    try:
        scanner = next((d for d in reg.devices() if d.device_class.value == "scanner"), None)
        camera = next((d for d in reg.devices() if d.device_class.value == "camera"), None)
        if scanner is None or camera is None:
            typer.secho("the simulated scanner or camera is missing", fg="red", err=True)
            raise typer.Exit(2)
        scanner.simulate("next_applicant")
        plan = [13, 14, 15] + list(range(1, 11))
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=console,
                      disable=as_json) as bar:
            task = bar.add_task("enrolling", total=len(plan) + 4)
            s = desk.start("demo")
            sid = s.session_id
            desk.set_demographics(sid, DEMO_APPLICANT)
            bar.advance(task)
            for pos in plan:
                bar.update(task, description=f"capturing {'slap' if pos > 10 else 'finger'} {pos}")
                for _ in range(3):
                    if desk.capture(sid, scanner, pos)["accepted"]:
                        break
                bar.advance(task)
            st = desk.get(sid).state
            if not (st["sequence"] or {}).get("ok"):
                raise BiostationError(f"the sequence check did not pass: {st['sequence']}")
            bar.update(task, description="portrait")
            shot = desk.capture_portrait(sid, camera, timeout_s=30)
            if not shot["accepted"]:
                failed = [c["name"] for c in shot.get("report", {}).get("checks", []) if c["status"] == "fail"]
                raise BiostationError(f"no compliant portrait from the simulated camera (failed: {failed})")
            bar.advance(task)
            bar.update(task, description="duplicate search")
            dup = desk.search_duplicates(sid)
            bar.advance(task)
            desk.confirm(sid, "demo", duplicate_cleared="demo applicant" if dup["hits"] else None)
            bar.advance(task)
        out.mkdir(parents=True, exist_ok=True)
        written = [out / f"{sid}.an2"]
        _write(written[0], store.record(sid))
        st = desk.get(sid).state
        names = ["iso19794-4", "iso19794-5"] + [f"iso19794-2/{int(p):02d}" for p in sorted(st["fingers"], key=int)]
        for name in names:
            path = out / f"{sid}.{name.replace('/', '-finger-')}"
            _write(path, store.record(sid, name))
            written.append(path)
        summary = {"session_id": sid, "files": [str(p) for p in written],
                   "fingers": {p: f["nfiq2"] for p, f in st["fingers"].items()},
                   "slaps": {p: f["nfiq2"] for p, f in st["slaps"].items()},
                   "sequence_ok": st["sequence"]["ok"], "duplicates": len(dup["hits"]),
                   "portrait_checks_passed": len(st["portrait"]["checks"])}
    except BiostationError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(1) from None
    finally:
        store.close()
        reg.close()
        if tmp is not None:
            tmp.cleanup()
    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"session {summary['session_id']}: {len(summary['files'])} files in {out}")
        for f in summary["files"]:
            print(f"  {f}")


def register(app: typer.Typer) -> None:
    app.add_typer(enroll_app, name="enroll")
