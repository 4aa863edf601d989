"""``biostation card read`` and ``biostation card simulate``: ICAO 9303 chips through PC/SC."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

# exit status: 0 read and every check passed or was unverifiable; 1 a check failed; 2 usage;
# 3 access denied (wrong CAN/MRZ, blocked); 4 card removed; 5 other card or reader error
EXIT_CHECK_FAILED, EXIT_USAGE, EXIT_ACCESS, EXIT_REMOVED, EXIT_CARD = 1, 2, 3, 4, 5


def _err(message: str, code: int) -> typer.Exit:
    typer.secho(f"error: {message}", fg="red", err=True)
    return typer.Exit(code)


def _write_out(out: Path, result: object, summary: dict) -> dict[str, str]:
    """Write every file read, the face image(s) and summary.json; all or nothing (rename at the end)."""
    import os
    import shutil
    import tempfile

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".card-", dir=out.parent))
    written = {}
    try:
        os.chmod(tmp, 0o700)  # personal data
        for name, raw in result.files.items():  # type: ignore[attr-defined]
            (tmp / f"{name}.bin").write_bytes(raw)
        dg2 = result.decoded.get("DG2")  # type: ignore[attr-defined]
        if dg2 is not None:
            for i, face in enumerate(dg2.faces, 1):
                p = tmp / f"face_{i}.{face.extension}"
                p.write_bytes(face.image)
                written[f"face_{i}"] = str(out / p.name)
        for f in result.fingerprints:  # type: ignore[attr-defined]
            ext = {"jp2": "jp2", "wsq": "wsq", "jpeg": "jpg", "png": "png"}.get(f.format, "raw")
            p = tmp / f"finger_{int(f.position)}.{ext}"
            p.write_bytes(f.image)
            written[f"finger_{int(f.position)}"] = str(out / p.name)
        (tmp / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2))
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    written["folder"] = str(out)
    return written


def register(app: typer.Typer) -> None:
    card_app = typer.Typer(help="ICAO 9303 chip cards (passports, ID cards such as Vietnam's CCCD): read and "
                           "verify one, or run a virtual one.", no_args_is_help=True)
    app.add_typer(card_app, name="card")

    @card_app.command("read")
    def read(
        reader: str | None = typer.Option(None, "--reader", help="PC/SC reader name (or its start). Default: "
                                             "the first reader with a card."),
        can: str | None = typer.Option(None, "--can", help="Card access number (CCCD: last 6 digits of the ID)."),
        mrz: str | None = typer.Option(None, "--mrz", help="The MRZ (all lines, newline-separated) or "
                                          "DOCNO/YYMMDD/YYMMDD (document number, birth, expiry)."),
        csca: Path | None = typer.Option(None, "--csca", help="CSCA trust store: a folder of certificates "
                                            "and/or ICAO master lists, or one file."),
        out: Path | None = typer.Option(None, "--out", help="Write the data groups, EF.SOD, the face "
                                           "image(s) and summary.json to this folder."),
        extended: bool | None = typer.Option(None, "--extended/--short", help="Force extended-length "
                                                "APDUs (fewer, larger reads) or short ones. Default: extended "
                                                "when the card announces it (ATR, EF.ATR/INFO)."),
        max_read: int | None = typer.Option(None, "--max-read", help="Bytes per READ BINARY (default 223 "
                                               "short; with extended length from the card's limits, at most 4096)."),
        wait: float = typer.Option(10.0, "--wait", help="Seconds to wait for a card."),
        terminal_dir: Path | None = typer.Option(None, "--terminal", help="Inspection-system credentials "
                                                    "(cvca/dv/is.cvcert and is.key, as `perso pki` writes to "
                                                    "<pki>/eac): read DG3 fingerprints after terminal authentication."),
    ) -> None:
        """Read a chip (PACE with the CAN or MRZ, BAC fallback), verify it and print a JSON summary.

        Checks: passive authentication (SOD signature, Document Signer against --csca, every data
        group hash), active and chip authentication where offered, and the Vietnamese ID number
        cross-check (DG13, MRZ). An unknown CSCA shows the data as "unverified". A chip without
        a (readable) EF.SOD is read all the same: the data are shown, passive authentication is
        "failed" with the reason, exit 1.
        """
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

        from ..card.reader import read_document
        from ..card.trust import TrustStore
        from ..errors import (
            AccessDeniedError,
            BiostationError,
            CardRemovedError,
            DeviceError,
            TLVError,
        )

        if bool(can) == bool(mrz):
            raise _err("give exactly one of --can and --mrz", EXIT_USAGE)
        terminal = None
        if terminal_dir is not None:
            from ..card.ta import load_terminal

            try:
                terminal = load_terminal(terminal_dir)
            except BiostationError as exc:
                raise _err(f"terminal credentials {terminal_dir}: {exc}", EXIT_USAGE) from None
        try:
            trust = TrustStore.load(csca) if csca else None
        except (TLVError, OSError) as exc:
            raise _err(f"CSCA store {csca}: {exc}", EXIT_USAGE) from None
        if trust is not None:
            for p in trust.problems:
                typer.secho(f"warning: CSCA store: {p}", fg="yellow", err=True)
        try:
            from biostation_drivers.pcsc_reader import PcscReader
        except ImportError as exc:
            raise _err(f"PC/SC driver unavailable: {exc}", EXIT_CARD) from None
        console = Console(stderr=True)
        try:
            dev = PcscReader.open_by_name(reader)
            dev.wait_for_card(wait)
            dev.power_on()
            with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), console=console,
                          transient=True) as prog:
                tasks: dict[str, int] = {}

                def progress(name: str, done: int, total: int) -> None:
                    if name not in tasks:
                        tasks[name] = prog.add_task(f"reading {name}", total=total)
                    prog.update(tasks[name], completed=done)

                result = read_document(dev, can=can, mrz=mrz, trust=trust, extended=extended,
                                       max_read=max_read, progress=progress, terminal=terminal)
            dev.power_off()
        except AccessDeniedError as exc:
            raise _err(f"access denied: {exc}", EXIT_ACCESS) from None
        except CardRemovedError as exc:
            raise _err(f"card removed: {exc}; nothing was kept, read again", EXIT_REMOVED) from None
        except (BiostationError, DeviceError) as exc:
            raise _err(f"{type(exc).__name__}: {exc}", EXIT_CARD) from None
        summary = result.summary()
        if out is not None:
            summary["written"] = _write_out(out, result, summary)
        print(json.dumps(summary, ensure_ascii=False, indent=2))
        failed = (result.passive is not None and result.passive.status == "failed") or \
                 (result.active is not None and not result.active.ok) or \
                 (result.cccd is not None and not result.cccd["ok"])
        if failed:
            raise typer.Exit(EXIT_CHECK_FAILED)

    @card_app.command("simulate")
    def simulate(
        profile: str = typer.Option("cccd", "--profile", help="cccd (Vietnamese ID card, PACE) or td3 "
                                    "(passport, BAC only)."),
        port: int = typer.Option(0x8C7B, "--port", help="vpcd TCP port: 35963 is reader 'Virtual PCD 00 00', "
                                 "35964 'Virtual PCD 00 01'."),
        state: Path | None = typer.Option(None, "--state", help="Keep the card (files, keys, counters, "
                                             "test PKI) in this folder across runs."),
        slow_ms: float = typer.Option(0.0, "--slow-ms", help="Delay every APDU by this many ms (slow card)."),
        pull_after: int | None = typer.Option(None, "--pull-after", help="Leave the field after this many "
                                                 "APDUs (comes back 1 s later)."),
        bad_mac_at: int | None = typer.Option(None, "--bad-mac-at", help="Corrupt the MAC of the n-th "
                                                 "secure-messaging response."),
        can_tries: int = typer.Option(3, "--can-tries", help="CAN retry counter (0: unlimited)."),
        face_kb: int = typer.Option(20, "--face-kb", help="Size of the DG2 face image (KB)."),
        quirk: list[str] = typer.Option([], "--quirk", help="Answer like other chips do (repeatable): "
                                        "bac-sm-error (6988 to a wrong MRZ), no-sfi (no short file "
                                        "identifiers), sod-empty, sod-missing."),
    ) -> None:
        """Run a virtual ICAO 9303 card in the vpcd reader (starts pcscd if none runs).

        Prints one JSON line (reader, CAN, MRZ, CSCA certificate) and serves until Ctrl+C.
        """
        import signal
        import tempfile
        import threading

        from biostation_drivers.simulated.vcard.card import CardData, Faults, VirtualCard
        from biostation_drivers.simulated.vcard.pcscd import ensure_pcscd, vpcd_installed
        from biostation_drivers.simulated.vcard.profiles import PROFILES, build_profile
        from biostation_drivers.simulated.vcard.quirks import QUIRKS, apply_quirks
        from biostation_drivers.simulated.vcard.vpcd import VpcdClient

        from ..card.pki import load_test_pki
        from ..errors import DeviceError

        if profile not in PROFILES:
            raise _err(f"unknown profile {profile!r} (known: {', '.join(PROFILES)})", EXIT_USAGE)
        bad = [q for q in quirk if q not in QUIRKS]
        if bad:
            raise _err(f"unknown quirk(s) {', '.join(bad)} (known: {', '.join(QUIRKS)})", EXIT_USAGE)
        if not vpcd_installed():
            raise _err("the vpcd reader driver is not installed (Debian: apt-get install vsmartcard-vpcd)", EXIT_CARD)
        faults = Faults(delay_s=slow_ms / 1000, pull_after_apdus=pull_after, bad_mac_at=bad_mac_at)
        info_path = state / "profile.json" if state else None
        if state is not None and (state / "card" / "card.json").exists():
            data = CardData.load(state / "card")
            info = json.loads(info_path.read_text())  # type: ignore[union-attr]
            csca_path = state / "pki" / "csca.pem"
            load_test_pki(state / "pki")  # fails loudly on a damaged state folder
        else:
            prof = build_profile(profile, face_bytes=face_kb * 1000, can_tries=can_tries or None)
            data, info = prof.data, prof.info()
            pki_dir = state / "pki" if state else Path(tempfile.mkdtemp(prefix="biostation-card-"))
            csca_path = prof.pki.write(pki_dir)["csca"]
            if prof.eac is not None:
                prof.eac.write(pki_dir / "eac")
            if state is not None:
                data.save(state / "card")
                info_path.write_text(json.dumps(info, ensure_ascii=False))  # type: ignore[union-attr]
        try:
            daemon = ensure_pcscd()
        except DeviceError as exc:
            raise _err(str(exc), EXIT_CARD) from None
        card = VirtualCard(data, faults, state_dir=state / "card" if state else None)
        try:
            apply_quirks(card, quirk)
        except ValueError as exc:
            daemon.stop()
            raise _err(str(exc), EXIT_USAGE) from None
        client = VpcdClient(card, port=port, reinsert_after_s=1.0)
        try:
            client.start()
        except DeviceError as exc:
            daemon.stop()
            raise _err(str(exc), EXIT_CARD) from None
        slot = port - 0x8C7B
        reader_name = f"Virtual PCD 00 {slot:02d}" if slot in (0, 1) else "Virtual PCD"
        print(json.dumps({"reader": reader_name, "port": port, "profile": info["profile"], "can": info["can"],
                          "mrz": info["mrz"], "csca": str(csca_path),
                          "terminal": str(csca_path.parent / "eac") if (csca_path.parent / "eac").is_dir() else None,
                          "pcscd_started": daemon.started_here},
                         ensure_ascii=False), flush=True)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        try:
            while not stop.wait(0.5):
                pass
        finally:
            client.stop()
            daemon.stop()
        sys.exit(0)
