"""``biostation verify``: verify a citizen against their chip card at this station.

Reads the card on ``--reader`` (PACE with the CAN, or BAC with the MRZ; passive, chip and
terminal authentication), takes the live portrait from the station's camera and the DG3 fingers
from its scanner, and decides (see :mod:`biostation.station.workflows.verification`). The
decision goes to the store and the audit trail like the desk's. Exit status: 0 verified,
1 not verified, 2 usage or device problem, 3 the chip refused the CAN/MRZ, 4 card removed,
5 take the portrait again.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer


def verify_cmd(
    reader: str | None = typer.Option(None, "--reader", help="Card reader device id (default: the first)."),
    can: str | None = typer.Option(None, "--can", help="Card access number (6 digits on the CCCD)."),
    mrz: str | None = typer.Option(None, "--mrz", help="The MRZ, or DOCNO/YYMMDD/YYMMDD."),
    no_fingers: bool = typer.Option(False, "--no-fingers", help="Decide on the face alone (no scanner)."),
    devices: str | None = typer.Option(None, "--devices", help="auto, simulated or hardware."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Station data directory."),
    operator: str = typer.Option("desk", "--operator", help="Who verifies (audit trail)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Verify the card holder: chip (with EAC), live face against DG2, live fingers against DG3."""
    from rich.console import Console

    from ..config import DeviceMode
    from ..errors import AccessDeniedError, BiostationError, CardRemovedError
    from ..hal import DriverRegistry
    from ..station.workflows.chip import ChipReads
    from ..station.workflows.verification import Verifications
    from ..store import EnrollmentStore
    from . import settings_from

    if bool(can) == bool(mrz):
        typer.secho("give exactly one of --can and --mrz", fg="red", err=True)
        raise typer.Exit(2)
    settings = settings_from(data_dir, DeviceMode(devices) if devices else None)
    reg = DriverRegistry(settings)
    reg.scan()
    console = Console(stderr=True)
    store = None
    try:
        def first(cls: str, wanted: str | None = None):  # noqa: ANN202
            for d in reg.devices():
                if d.device_class.value == cls and (wanted is None or d.device_id == wanted):
                    return d
            return None

        card_reader = first("card_reader", reader)
        if card_reader is None:
            typer.secho(f"no card reader {reader or ''}".strip(), fg="red", err=True)
            raise typer.Exit(2)
        camera, scanner = first("camera"), None if no_fingers else first("scanner")
        for d in (card_reader, camera, scanner):
            if d is not None:
                d.open()
        store = EnrollmentStore.open(settings)
        desk = Verifications(ChipReads(settings.trust_dir, settings.terminal_dir), store)
        with console.status("reading the chip") as status:
            out = desk.verify(card_reader, can=can, mrz=mrz, camera=camera, scanner=scanner, operator=operator,
                              on_step=lambda s: status.update({"chip": "reading the chip", "face": "live portrait",
                                                               "fingers": "live fingers"}[s]))
    except AccessDeniedError as exc:
        typer.secho(f"access denied: {exc}", fg="red", err=True)
        raise typer.Exit(3) from None
    except CardRemovedError as exc:
        typer.secho(f"card removed: {exc}", fg="red", err=True)
        raise typer.Exit(4) from None
    except BiostationError as exc:
        typer.secho(f"error: {type(exc).__name__}: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None
    finally:
        if store is not None:
            store.close()
        reg.close()
    d = out.to_dict()
    if as_json:
        print(json.dumps(d, ensure_ascii=False, indent=2))
    else:
        print(f"{d['decision']}: document {d['document']['document_number']} "
              f"(passive authentication {d['document']['passive_authentication']})")
        if d["face"]:
            print(f"  face: {d['face']['decision']} (distance {d['face']['distance']}, "
                  f"threshold {d['face']['operating_point']['threshold']} at {d['face']['operating_point']['name']})")
        for c in d["fingers"]["comparisons"]:
            print(f"  finger {c['position']}: " + (f"score {c['score']} (threshold {d['fingers']['threshold']})"
                                                  if "score" in c else c["error"]))
        for r in d["reasons"]:
            print(f"  - {r}")
    raise typer.Exit({"verified": 0, "not_verified": 1, "retake": 5}[d["decision"]])


def register(app: typer.Typer) -> None:
    app.command("verify")(verify_cmd)
