"""``biostation store ...``: the enrollment store's key, sessions and mobile teams' batch files.

* ``store keygen [--pkcs11]``: make the data key (a 0600 file), or the AES wrapping key in the
  PKCS#11 token of the settings and the data key it wraps.
* ``store rekey``: rotate the data key (the whole store re-sealed in one transaction).
* ``store sessions``: sessions by state and step (ids only).
* ``store identity`` / ``store trust FILE``: exchange station identities (public keys) so batches
  can be exchanged.
* ``store export --to STATION --out FILE`` / ``store import FILE``: signed, encrypted batches.
"""

from __future__ import annotations

import json
import os
import pwd
from pathlib import Path
from typing import Any

import typer

store_app = typer.Typer(help="Enrollment store: data key, sessions, station identity, batch files.",
                        no_args_is_help=True)

DataDir = typer.Option(None, "--data-dir", help="Station data directory.")
Operator = typer.Option(None, "--operator", help="Operator id for the audit trail (default cli:<login>).")


def actor(operator: str | None) -> str:
    """The audit actor of a CLI verb: ``--operator`` or ``cli:<login name>``."""
    if operator:
        return operator
    try:
        return "cli:" + pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return f"cli:uid{os.getuid()}"


def _fail(msg: str, code: int = 2) -> None:
    typer.secho(f"error: {msg}", fg="red", err=True)
    raise typer.Exit(code)


def open_store(data_dir: Path | None, create: bool = False) -> Any:
    """The settings' enrollment store; exits 2 with the reason when it cannot be opened."""
    from ..errors import BiostationError
    from ..store import EnrollmentStore
    from . import settings_from

    try:
        return EnrollmentStore.open(settings_from(data_dir), create=create)
    except BiostationError as exc:
        _fail(str(exc))


@store_app.command("keygen")
def keygen_cmd(
    data_dir: Path | None = DataDir,
    pkcs11: bool = typer.Option(False, "--pkcs11", help="Make the AES wrapping key in the settings' token "
                                "(BIOSTATION_STORE_PKCS11_*) and a data key wrapped by it."),
) -> None:
    """Make the store's data key (refused when one exists) and the store itself."""
    from ..errors import BiostationError
    from ..store import EnrollmentStore
    from ..store.keys import key_path, make_pkcs11_wrapping_key
    from . import settings_from

    settings = settings_from(data_dir, store_key_source="pkcs11" if pkcs11 else None)
    path = key_path(settings)
    if settings.store_key_source == "env":
        _fail("the key source is env: the key is whatever BIOSTATION_STORE_KEY holds")
    if path.exists():
        _fail(f"{path} exists already; a new key would make the store unreadable")
    try:
        if pkcs11:
            if settings.store_pkcs11_pin is None:
                _fail("set BIOSTATION_STORE_PKCS11_PIN")
            make_pkcs11_wrapping_key(str(settings.store_pkcs11_module), settings.store_pkcs11_token,
                                     settings.store_pkcs11_pin.get_secret_value(), settings.store_pkcs11_key)
        EnrollmentStore.open(settings, create=True).close()
    except BiostationError as exc:
        _fail(str(exc))
    print(f"data key ({settings.store_key_source}) made: {path}")


@store_app.command("rekey")
def rekey_cmd(
    data_dir: Path | None = DataDir,
    operator: str | None = Operator,
) -> None:
    """Rotate the data key: re-seal the whole store under a new key, then replace the key file
    (file source) or the wrapped key (pkcs11 source); a crash in between is settled at the next open."""
    from ..errors import BiostationError
    from ..store.keys import rotate_key
    from . import settings_from

    settings = settings_from(data_dir)
    store = open_store(data_dir)
    try:
        rotate_key(settings, store, actor(operator))
        counts = store.audit_lines()[-1].detail
    except BiostationError as exc:
        _fail(str(exc))
    finally:
        store.close()
    print(json.dumps({"rekeyed": {k: v for k, v in counts.items() if k != "source"}, "source": counts.get("source")}))


@store_app.command("sessions")
def sessions_cmd(
    data_dir: Path | None = DataDir,
    state: str | None = typer.Option(None, help="open, finished, delivered or cancelled."),
) -> None:
    """Sessions with their state and step, as JSON lines (no personal data)."""
    from ..store import SessionState

    if state is not None and state not in {s.value for s in SessionState}:
        raise typer.BadParameter(f"{state!r}: one of {', '.join(s.value for s in SessionState)}", param_hint="--state")
    store = open_store(data_dir)
    try:
        for s in store.sessions(state):
            print(json.dumps({"session_id": s.session_id, "state": s.state.value, "step": s.step,
                              "operator": s.operator, "created_at": s.created_at, "updated_at": s.updated_at}))
    finally:
        store.close()


@store_app.command("identity")
def identity_cmd(
    data_dir: Path | None = DataDir,
    out: Path | None = typer.Option(None, "--out", help="Write it to this file (default: print it)."),
) -> None:
    """This station's id and public keys, for another station's `store trust`."""
    store = open_store(data_dir, create=True)
    try:
        text = json.dumps(store.identity(), indent=2)
    finally:
        store.close()
    if out is None:
        print(text)
    else:
        out.write_text(text + "\n")
        print(f"identity written to {out}")


@store_app.command("trust")
def trust_cmd(
    identity_file: Path = typer.Argument(..., help="Another station's `store identity` output."),
    data_dir: Path | None = DataDir,
    operator: str | None = Operator,
) -> None:
    """Accept batches from that station, and allow exports to it."""
    try:
        ident = json.loads(identity_file.read_text())
        sid, sign_pub, box_pub = ident["station_id"], bytes.fromhex(ident["sign_pub"]), bytes.fromhex(ident["box_pub"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        _fail(f"{identity_file}: not a station identity ({exc.__class__.__name__})")
    from ..errors import BiostationError

    store = open_store(data_dir, create=True)
    try:
        store.trust(actor(operator), sid, sign_pub, box_pub)
    except BiostationError as exc:
        _fail(str(exc))
    finally:
        store.close()
    print(f"station {sid} trusted")


@store_app.command("export")
def export_cmd(
    to: str = typer.Option(..., "--to", help="Station id of the receiving station (trusted here)."),
    out: Path = typer.Option(..., "--out", help="Batch file to write."),
    data_dir: Path | None = DataDir,
    operator: str | None = Operator,
) -> None:
    """Write every queued transaction into a signed batch that only station --to can read."""
    from ..errors import BiostationError
    from ..store.batch import export_batch

    store = open_store(data_dir)
    try:
        summary = export_batch(store, to, out, actor=actor(operator))
    except BiostationError as exc:
        _fail(str(exc))
    finally:
        store.close()
    print(json.dumps({"batch_id": summary.batch_id, "to": summary.to_station, "entries": summary.entries,
                      "file": str(out)}))


@store_app.command("import")
def import_cmd(
    batch_file: Path = typer.Argument(..., help="A batch written by a trusted station for this one."),
    data_dir: Path | None = DataDir,
    operator: str | None = Operator,
) -> None:
    """Verify and decrypt a batch and queue its transactions; a refused batch imports nothing (exit 1)."""
    from ..errors import BatchError, BiostationError
    from ..store.batch import import_batch

    store = open_store(data_dir)
    try:
        summary = import_batch(store, batch_file, actor=actor(operator))
    except BatchError as exc:
        _fail(f"batch refused, nothing imported: {exc} ({exc.__class__.__name__})", 1)
    except (BiostationError, OSError) as exc:
        _fail(str(exc))
    finally:
        store.close()
    print(json.dumps({"batch_id": summary.batch_id, "from": summary.from_station, "entries": summary.entries,
                      "queued": summary.queued, "skipped": summary.skipped}))


def register(app: typer.Typer) -> None:
    app.add_typer(store_app, name="store")
