"""``biostation perso ...``: the card personalization line.

* ``perso pki``: make a test PKI (CSCA + Document Signer) and an EAC hierarchy (CVCA -> DV ->
  inspection system, CV certificates in ``eac/``); with ``--pkcs11`` the DS key and the EAC
  keys (EC ones; labels ``<DS label>-cvca``, ``-dv``, ``-is``) go into the PKCS#11 token
  (SoftHSM2 in development) and no file of theirs is left behind.
* ``perso run ORDERS.jsonl [--encoder READER]...``: personalize, read back, journal.
* ``perso status``: the journal's counts and its exactly-once audit.
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
from pathlib import Path
from typing import Any

import typer

perso_app = typer.Typer(help="Card personalization line: test PKI, run orders, journal status.",
                        no_args_is_help=True)


def _settings(data_dir: Path | None) -> Any:
    from . import settings_from

    return settings_from(data_dir)


def _journal_path(settings: Any, journal: Path | None) -> Path:
    return journal or settings.data_dir / "perso" / "journal.db"


def _signer(settings: Any) -> Any:
    """The Document Signer the settings name: the PKCS#11 token (default) or a key file."""
    from cryptography import x509

    from ..errors import ConfigError

    pki = settings.resolved_pki_dir
    ds_pem = pki / "ds.pem"
    if not ds_pem.is_file():
        raise ConfigError(f"no Document Signer certificate at {ds_pem}: run `biostation perso pki` first")
    cert = x509.load_pem_x509_certificate(ds_pem.read_bytes())
    if settings.perso_signer == "keyfile":
        from cryptography.hazmat.primitives import serialization

        from ..card.sod import KeySigner

        typer.secho("warning: signing with a key file: for development only; production signs in a "
                    "PKCS#11 token (BIOSTATION_PERSO_SIGNER=pkcs11)", fg="yellow", err=True)
        key = serialization.load_pem_private_key((pki / "ds.key").read_bytes(), None)
        return KeySigner(key, cert)
    from ..card.pkcs11 import Pkcs11Signer

    if settings.perso_pkcs11_pin is None:
        raise ConfigError("the token PIN is not set (BIOSTATION_PERSO_PKCS11_PIN)")
    return Pkcs11Signer(settings.perso_pkcs11_token, settings.perso_pkcs11_key,
                        settings.perso_pkcs11_pin.get_secret_value(), cert, module=str(settings.perso_pkcs11_module))


def _is_label(settings: Any) -> str:
    return settings.perso_pkcs11_is_key or f"{settings.perso_pkcs11_key}-is"


def _terminal(settings: Any) -> Any:
    """The inspection system of ``<pki>/eac`` (None when there is none): its IS key from the token
    when the settings sign with PKCS#11 and no ``is.key`` file is there."""
    from ..card.ta import load_terminal

    folder = settings.resolved_pki_dir / "eac"
    if not (folder / "cvca.cvcert").is_file():
        return None
    signer = None
    if not (folder / "is.key").is_file():
        from ..card.cvc import decode_cvc
        from ..card.pkcs11 import Pkcs11TerminalSigner
        from ..errors import ConfigError

        if settings.perso_pkcs11_pin is None:
            raise ConfigError("the token PIN is not set (BIOSTATION_PERSO_PKCS11_PIN)")
        oid = decode_cvc((folder / "cvca.cvcert").read_bytes()).public_key.oid
        signer = Pkcs11TerminalSigner(settings.perso_pkcs11_token, _is_label(settings),
                                      settings.perso_pkcs11_pin.get_secret_value(), oid,
                                      module=str(settings.perso_pkcs11_module))
    return load_terminal(folder, signer)


def _trust(settings: Any) -> Any:
    from ..card.trust import TrustStore
    from ..errors import ConfigError

    csca = settings.resolved_pki_dir / "csca.pem"
    if not csca.is_file():
        raise ConfigError(f"no CSCA certificate at {csca}: the read-back has nothing to trust")
    return TrustStore.load(csca)


@perso_app.command("pki")
def pki_cmd(
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Station data directory."),
    out: Path | None = typer.Option(None, "--out", help="Folder to write (default: the settings' PKI folder)."),
    country: str = typer.Option("VN", help="Country code of the CSCA and DS."),
    key_type: str = typer.Option("ec", help="ec (brainpoolP256r1), P-256, P-384 or rsa (2048)."),
    pkcs11: bool = typer.Option(False, "--pkcs11", help="Put the DS key into the PKCS#11 token of the "
                                "settings and leave no DS key file."),
) -> None:
    """Make a test PKI: a CSCA (csca.pem, the read-back's trust anchor) and a Document Signer,
    and the EAC hierarchy in eac/: a CVCA (the chips' trust point for DG3), a DV and an
    inspection system allowed to read DG3 and DG4."""
    from ..card.cvc import make_test_hierarchy
    from ..card.pki import make_test_pki

    settings = _settings(data_dir)
    folder = out or settings.resolved_pki_dir
    pki = make_test_pki(country=country, key_type=key_type)
    paths = pki.write(folder)
    eac = make_test_hierarchy(country, "rsa" if key_type == "rsa" else "P-256" if key_type == "P-256" else "ec",
                              is_valid_days=90)
    paths.update({f"eac_{k}": v for k, v in eac.write(folder / "eac").items()})
    if pkcs11:
        from ..card.pkcs11 import Pkcs11Signer, import_private_key
        from ..errors import ConfigError

        if settings.perso_pkcs11_pin is None:
            raise ConfigError("the token PIN is not set (BIOSTATION_PERSO_PKCS11_PIN)")
        pin = settings.perso_pkcs11_pin.get_secret_value()
        import_private_key(str(settings.perso_pkcs11_module), settings.perso_pkcs11_token, pin,
                           settings.perso_pkcs11_key, pki.ds_key)
        Pkcs11Signer(settings.perso_pkcs11_token, settings.perso_pkcs11_key, pin, pki.ds_cert,
                     module=str(settings.perso_pkcs11_module)).close()  # the token signs for the cert
        paths["ds_key"].unlink()
        print(f"DS key stored in token {settings.perso_pkcs11_token!r} as {settings.perso_pkcs11_key!r}")
        if key_type != "rsa":  # the EAC keys sign in the token (ECDSA): TA (IS), certificates (CVCA, DV)
            for name, key in (("cvca", eac.cvca_key), ("dv", eac.dv_key), ("is", eac.is_key)):
                label = _is_label(settings) if name == "is" else f"{settings.perso_pkcs11_key}-{name}"
                import_private_key(str(settings.perso_pkcs11_module), settings.perso_pkcs11_token, pin, label, key)
                paths[f"eac_{name}_key"].unlink()
                print(f"{name.upper()} key stored in token {settings.perso_pkcs11_token!r} as {label!r}")
    for name, p in paths.items():
        if p.exists():
            print(f"{name}: {p}")


class CrashPoint:
    """``kill -9`` of this very process at a chosen point of the work: a fault drill whose point
    does not depend on timing or machine speed.

    ``apdu:N:before`` / ``apdu:N:after``: the N-th APDU (from 1) that any simulated card of this
    run receives, before it takes effect, or after it took effect with its answer lost.
    ``commit:N``: right after the journal's N-th commit of this run (recovery and order loading
    count), the journal's lock still held so that nothing else is committed first.
    """

    def __init__(self, spec: str):
        parts = spec.split(":")
        try:
            kind, n = parts[0], int(parts[1])
        except (IndexError, ValueError):
            raise typer.BadParameter(f"crash point {spec!r}: apdu:N:before|after or commit:N") from None
        phase = parts[2] if len(parts) > 2 else "before"
        if kind not in ("apdu", "commit") or n < 1 or phase not in ("before", "after") \
                or len(parts) > (3 if kind == "apdu" else 2):
            raise typer.BadParameter(f"crash point {spec!r}: apdu:N:before|after or commit:N")
        self.kind, self.n, self.phase = kind, n, phase
        self._count = 0
        self._lock = threading.Lock()
        self._mine = threading.local()

    def apdu(self, phase: str) -> None:
        if self.kind != "apdu":
            return
        if phase == "before":
            with self._lock:
                self._count += 1
                self._mine.index = self._count
        if self._mine.index == self.n and phase == self.phase:
            self._die()

    def commit(self) -> None:
        if self.kind != "commit":
            return
        self._count += 1  # called under the journal's lock: commits are serial
        if self._count == self.n:
            self._die()

    @staticmethod
    def _die() -> None:
        os.kill(os.getpid(), signal.SIGKILL)
        os._exit(137)  # not reached: SIGKILL is delivered before os.kill returns


def _encoders(names: list[str], simulated: int, settings: Any, card_dir: Path | None, apdu_ms: float,
              baud: int, tear_rate: float, seed: int | None, tear_within: int = 100,
              on_apdu: Any = None) -> list[Any]:
    from ..card.perso.line import ReaderEncoder
    from ..errors import DeviceNotFoundError

    names = list(names) + [f"sim{i}" for i in range(simulated)]
    if not names:
        names = ["sim0"]
    out: list[Any] = []
    registry = None
    rng = random.Random(seed)
    for name in names:
        if name.startswith("sim"):
            from biostation_drivers.simulated.vcard.perso import ChipTiming, SimulatedEncoder

            timing = ChipTiming(apdu_ms / 1000.0, (10.0 / baud) if baud > 0 else 0.0)

            def tear(k: int, _r: random.Random = random.Random(rng.random())) -> tuple[int, str] | None:
                if tear_rate > 0 and _r.random() < tear_rate:
                    return _r.randrange(0, tear_within), _r.choice(("before", "after"))
                return None

            out.append(SimulatedEncoder(name, card_dir=(card_dir / name) if card_dir else None, timing=timing,
                                        tear=tear if tear_rate > 0 else None, on_apdu=on_apdu))
            continue
        if registry is None:
            from ..hal import DriverRegistry

            registry = DriverRegistry(settings)
            registry.scan()
        dev = next((d for d in registry.devices() if d.device_id == name), None)
        if dev is None:
            raise DeviceNotFoundError(f"no card reader {name!r} (see `biostation devices`)", name)
        dev.open()
        out.append(ReaderEncoder(dev))
    return out


@perso_app.command("run")
def run_cmd(
    orders: Path = typer.Argument(..., help="Orders, one JSON object a line."),
    encoder: list[str] = typer.Option([], "--encoder", "-e", help="A card reader device id (repeat for "
                                      "several encoders); names starting with 'sim' are simulated encoders."),
    simulated: int = typer.Option(0, "--simulated", help="Add this many simulated encoders."),
    journal: Path | None = typer.Option(None, "--journal", help="Journal (default <data_dir>/perso/journal.db)."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Station data directory."),
    card_dir: Path | None = typer.Option(None, "--card-dir", help="Simulated encoders keep each card's state here."),
    apdu_ms: float = typer.Option(15.0, "--sim-apdu-ms", help="Simulated chip: ms per APDU (contact chips: 10-20)."),
    baud: int = typer.Option(115200, "--sim-baud", help="Simulated chip: line speed (0: no transfer time)."),
    tear_rate: float = typer.Option(0.0, "--sim-tear-rate", help="Simulated cards: share torn at a random APDU."),
    tear_within: int = typer.Option(100, "--sim-tear-within", help="Torn cards leave at an APDU index below this."),
    seed: int | None = typer.Option(None, "--seed", help="Seed of the simulated tearing."),
    crash_at: str | None = typer.Option(None, "--sim-crash-at", help="Fault drill: kill -9 this runner at "
                                           "apdu:N:before|after (N-th APDU of the simulated cards) or commit:N "
                                           "(after the journal's N-th commit)."),
    no_aa: bool = typer.Option(False, "--no-active-auth", help="Write no AA key / DG15."),
    fingers: str = typer.Option("2,7", "--fingers", help="Finger positions DG3 gets from the orders "
                                "(ISO 19794-4 codes; 2,7 = right and left index). Needs the PKI's eac/ folder."),
    no_eac: bool = typer.Option(False, "--no-eac", help="Write no DG3 even when the PKI has an EAC hierarchy."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Personalize the orders' cards on the encoders in parallel; every card is read back (PACE or
    BAC, passive and active authentication) before its order is done. Restart after any crash:
    the journal resumes where it stopped."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..card.perso.line import PersoLine
    from ..store import Journal

    settings = _settings(data_dir)
    console = Console(stderr=True)
    signer = _signer(settings)
    trust = _trust(settings)
    terminal = None if no_eac else _terminal(settings)
    try:
        positions = tuple(int(p) for p in fingers.split(",") if p.strip())
    except ValueError:
        raise typer.BadParameter(f"--fingers {fingers!r}: finger position numbers, comma-separated") from None
    if any(not 1 <= p <= 10 for p in positions):
        raise typer.BadParameter("--fingers: positions are 1..10")
    crash = CrashPoint(crash_at) if crash_at else None
    encs = _encoders(encoder, simulated, settings, card_dir, apdu_ms, baud, tear_rate, seed, tear_within,
                     on_apdu=crash.apdu if crash else None)
    with Journal.open_exclusive(_journal_path(settings, journal)) as j:
        if crash is not None:
            j.on_commit = crash.commit
        rec = j.recover()
        if rec["cards_interrupted"] or rec["orders_requeued"]:
            console.print(f"resumed: {rec['cards_interrupted']} interrupted card(s) rejected, "
                          f"{rec['orders_requeued']} order(s) back in the queue")
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("rejected cards: {task.fields[bad]}"), TimeRemainingColumn(),
                      console=console, disable=as_json) as bar:
            task = bar.add_task("orders", total=None, bad=0)
            bad = [0]

            def on_event(kind: str, info: dict[str, Any]) -> None:
                if kind == "done":
                    bar.advance(task)
                elif kind == "rejected_card":
                    bad[0] += 1
                    bar.update(task, bad=bad[0])
                    if info.get("order_status") == "rejected":
                        bar.advance(task)
                elif kind == "encoder_stopped":
                    console.print(f"encoder {info['encoder']} stopped: {info['reason']}")

            line = PersoLine(j, signer, trust, encs, chunk=settings.perso_chunk,
                             extended_chunk=settings.perso_chunk_extended, active_auth=not no_aa,
                             terminal=terminal, finger_positions=positions,
                             max_portrait_bytes=settings.perso_max_portrait_bytes, on_event=on_event)
            rep = line.load_orders(orders)
            for oid, why in rep.rejected.items():
                console.print(f"order {oid} rejected: {why}")
            for oid in rep.conflicts:
                console.print(f"order {oid}: already in the journal with other content: not queued again")
            bar.update(task, total=rep.pending)
            summary = line.run()
        summary["load"] = {"lines": rep.lines, "added": rep.added, "rejected": len(rep.rejected),
                           "conflicts": len(rep.conflicts)}
        summary["audit"] = j.check()
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    t = summary["total"]
    print(f"orders: {summary['orders']}")
    print(f"cards: {summary['cards']}  ({summary['cards_per_hour']:.0f} cards/h on {len(encs)} encoder(s), "
          f"wall {summary['wall_s']:.1f} s)")
    share = t["share"]
    print("time: " + ", ".join(f"{k} {v * 100:.0f}%" for k, v in share.items()))
    print("audit: " + ("exactly-once holds" if not summary["audit"] else "; ".join(summary["audit"])))


@perso_app.command("status")
def status_cmd(
    journal: Path | None = typer.Option(None, "--journal", help="Journal (default <data_dir>/perso/journal.db)."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Station data directory."),
) -> None:
    """Counts of orders and cards, and the exactly-once audit, as JSON."""
    from ..store import Journal

    settings = _settings(data_dir)
    path = _journal_path(settings, journal)
    if not path.is_file():
        raise typer.BadParameter(f"no journal at {path}")
    j = Journal(path)
    try:
        print(json.dumps({"orders": j.counts(), "cards": j.card_counts(), "audit": j.check()}, indent=2))
    finally:
        j.close()


def register(app: typer.Typer) -> None:
    app.add_typer(perso_app, name="perso")
