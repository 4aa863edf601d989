"""``biostation outbox ...``: the queue of finished transactions for the central endpoint.

* ``outbox status``: counts by state, payload bytes held, oldest queued entry, last error.
* ``outbox flush``: deliver what is due now (refused while the daemon's sender holds the outbox).
* ``outbox requeue TXN``: retry a transaction the endpoint had refused.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from .store import DataDir, Operator, _fail, actor, open_store

outbox_app = typer.Typer(help="Delivery of finished transactions to the central endpoint.", no_args_is_help=True)


@outbox_app.command("status")
def status_cmd(
    data_dir: Path | None = DataDir,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """What is queued, delivered and held."""
    store = open_store(data_dir)
    try:
        st = store.outbox_status()
    finally:
        store.close()
    if as_json:
        print(json.dumps(st, indent=2))
        return
    c = st["counts"]
    print(f"queued {c['queued']}, delivered {c['acked']}, refused {c['rejected']}; "
          f"{st['payloads_held']} payloads held ({st['bytes_held']} bytes)")
    if st["oldest_queued_age_s"] is not None:
        print(f"oldest queued: {st['oldest_queued_age_s']} s ago; next attempt in {st['next_attempt_in_s']} s")
    if st["last_error"]:
        print(f"last error: {st['last_error']['txn_id']}: {st['last_error']['error']}")


@outbox_app.command("flush")
def flush_cmd(
    data_dir: Path | None = DataDir,
    url: str | None = typer.Option(None, "--url", help="Central endpoint (default BIOSTATION_CENTRAL_URL)."),
    now: bool = typer.Option(False, "--now", help="Try every queued transaction now, without waiting for "
                             "its retry time (the network is known to be back)."),
    operator: str | None = Operator,
) -> None:
    """Attempt every transaction due now, once; exit 0 when the queue is empty afterwards, 1 if not."""
    from rich.progress import Progress

    from ..errors import BiostationError
    from ..store.outbox import Outbox
    from . import settings_from

    settings = settings_from(data_dir, central_url=url)
    store = open_store(data_dir)
    try:
        ob = Outbox.from_settings(store, settings, actor=actor(operator) if operator else "outbox")
        with ob.exclusive(), Progress(transient=True) as progress:
            if now:
                store.outbox_retry_now(actor(operator))
            due = store.outbox_status()["counts"]["queued"]
            task = progress.add_task("delivering", total=due)
            results = []
            while (r := ob.step()) is not None:
                results.append(r)
                progress.advance(task)
        ob.close()
        st = store.outbox_status()
    except BiostationError as exc:
        _fail(str(exc))
    finally:
        store.close()
    by: dict[str, int] = {}
    for r in results:
        by[r.outcome] = by.get(r.outcome, 0) + 1
    print(json.dumps({"attempts": len(results), "outcomes": by, "queued": st["counts"]["queued"],
                      "last_error": st["last_error"]}))
    if st["counts"]["queued"]:
        raise typer.Exit(1)


@outbox_app.command("requeue")
def requeue_cmd(
    txn_id: str = typer.Argument(..., help="A transaction the endpoint refused."),
    data_dir: Path | None = DataDir,
    operator: str | None = Operator,
) -> None:
    """Queue a refused transaction again."""
    from ..errors import BiostationError

    store = open_store(data_dir)
    try:
        store.outbox_requeue(txn_id, actor(operator))
    except BiostationError as exc:
        _fail(str(exc))
    finally:
        store.close()
    print(f"{txn_id} queued again")


def register(app: typer.Typer) -> None:
    app.add_typer(outbox_app, name="outbox")
