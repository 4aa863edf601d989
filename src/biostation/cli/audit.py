"""``biostation audit ...``: check and read the store's audit trail.

* ``audit verify``: exit 0 when the trail is intact, 1 naming the first broken line, 2 when there
  is no store or its key is wrong.
* ``audit show``: the last lines (ids, actions, times: the trail holds no personal data).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import typer

audit_app = typer.Typer(help="The audit trail of operator actions and record changes.", no_args_is_help=True)

DataDir = typer.Option(None, "--data-dir", help="Station data directory.")


def _db_path(settings: Any) -> Path:
    from ..store.enrollment import DB_NAME

    return settings.resolved_store_dir / DB_NAME


def _fail(msg: str, code: int = 2) -> None:
    typer.secho(f"error: {msg}", fg="red", err=True)
    raise typer.Exit(code)


@audit_app.command("verify")
def verify_cmd(
    data_dir: Path | None = DataDir,
    no_key: bool = typer.Option(False, "--no-key", help="Check the hash chain and head only, without the "
                                "store's key (an auditor's copy); MACs are then not checked."),
) -> None:
    """Walk the whole trail: exit 0 if intact, 1 naming the first broken line."""
    from ..errors import StoreError, StoreKeyError
    from ..store import audit
    from . import settings_from

    settings = settings_from(data_dir)
    path = _db_path(settings)
    if not path.is_file():
        _fail(f"no enrollment store at {path}")
    try:
        if no_key:
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                report = audit.verify(db, None)
            finally:
                db.close()
        else:
            from ..store import EnrollmentStore

            with EnrollmentStore.open(settings, create=False) as store:
                report = store.verify_audit()
    except StoreKeyError as exc:
        _fail(f"{exc} (--no-key checks the chain without the key)")
    except (StoreError, sqlite3.DatabaseError) as exc:
        _fail(str(exc))
    checked = "hash chain, MACs and head" if report.macs_checked else "hash chain and head (no MACs)"
    if report.ok:
        print(f"audit trail intact: {report.lines} line{'s' if report.lines != 1 else ''} ({checked} checked)")
        return
    print(f"audit trail BROKEN at line {report.first_broken}: {report.reason}")
    raise typer.Exit(1)


@audit_app.command("show")
def show_cmd(
    data_dir: Path | None = DataDir,
    last: int = typer.Option(20, "--last", min=1, help="How many of the latest lines."),
    as_json: bool = typer.Option(False, "--json", help="JSON lines instead of a table."),
) -> None:
    """The latest lines of the trail."""
    from . import settings_from

    path = _db_path(settings_from(data_dir))
    if not path.is_file():
        _fail(f"no enrollment store at {path}")
    from ..store import audit

    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        top = db.execute("SELECT COALESCE(MAX(seq), 0) FROM audit").fetchone()[0]
        rows = audit.lines(db, after=max(0, top - last))
    finally:
        db.close()
    if as_json:
        for r in rows:
            print(json.dumps({"seq": r.seq, "at": r.at, "actor": r.actor, "action": r.action, "object": r.object,
                              "detail": r.detail}, ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"audit trail ({path})")
    for col in ("line", "time (UTC)", "actor", "action", "object", "detail"):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r.seq), r.at, r.actor, r.action, r.object or "",
                      json.dumps(r.detail, ensure_ascii=False, separators=(",", ":")))
    Console().print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
