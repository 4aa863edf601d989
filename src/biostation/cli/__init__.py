"""The ``biostation`` command line.

Station commands live here (``serve``, ``devices``, ``token``, ``version``). Each other module of
this package adds its own verbs through ``register(app)`` (for example ``card.py`` adds
``biostation card ...``); modules import their heavy dependencies inside the commands, so
``biostation --help`` stays fast.
"""

from __future__ import annotations

import importlib
import json
import logging
import pkgutil
import socket
import sys
from pathlib import Path

import typer

from .._version import __version__
from ..config import DeviceMode, Settings

app = typer.Typer(
    name="biostation",
    help="Station software for national ID issuance: capture fingerprints and portraits, match, "
         "read and write chip cards.\n\nStart here: `biostation serve` runs the station daemon "
         "(simulated devices when no hardware is found); `biostation token` prints the API token.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


def settings_from(data_dir: Path | None = None, devices: DeviceMode | None = None, **kw: object) -> Settings:
    """Settings from the environment, with command-line options on top."""
    over = {k: v for k, v in kw.items() if v is not None}
    if data_dir is not None:
        over["data_dir"] = data_dir
    if devices is not None:
        over["devices"] = devices
    return Settings(**over)  # type: ignore[arg-type]


DataDirOpt = typer.Option(None, "--data-dir", help="Station data directory (default: "
                          "$XDG_DATA_HOME/biostation or ~/.local/share/biostation; env BIOSTATION_DATA_DIR).")
DevicesOpt = typer.Option(None, "--devices", help="auto: hardware where found, simulated for the rest; "
                          "simulated; hardware (env BIOSTATION_DEVICES).")


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Address to bind (default 127.0.0.1: this machine only)."),
    port: int | None = typer.Option(None, help="TCP port (default 8470; 0 picks a free one)."),
    devices: DeviceMode | None = DevicesOpt,
    data_dir: Path | None = DataDirOpt,
    log_level: str | None = typer.Option(None, help="debug, info, warning, error."),
    sbi: bool | None = typer.Option(None, "--sbi/--no-sbi", help="Serve the scanners and cameras to MOSIP "
                                    "registration clients (SBI 0.9.5) on 127.0.0.1:4501-4600 (env BIOSTATION_SBI; "
                                    "default on)."),
) -> None:
    """Run the station daemon (HTTP API, device events, operator page, MOSIP SBI) until Ctrl+C."""
    import uvicorn

    from ..station import create_app

    settings = settings_from(data_dir, devices, host=host, port=port, log_level=log_level, sbi=sbi)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if settings.host not in ("127.0.0.1", "localhost", "::1"):
        typer.secho(f"warning: binding to {settings.host}: biometric data will be reachable from the network; "
                    "put a TLS proxy in front, and list the names clients use in BIOSTATION_ALLOWED_HOSTS "
                    "(JSON, e.g. '[\"desk-7.example\"]'): other Host headers are refused.", fg="yellow", err=True)
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.host, settings.port))
    except OSError as exc:
        typer.secho(f"error: cannot bind {settings.host}:{settings.port}: {exc.strerror}", fg="red", err=True)
        raise typer.Exit(2) from None
    sock.listen(128)
    actual_port = sock.getsockname()[1]
    app_ = create_app(settings)
    shown = f"[{settings.host}]" if family == socket.AF_INET6 else settings.host
    base = f"http://{shown}:{actual_port}"
    print(f"biostation {__version__} listening on {base}", flush=True)
    print(f"  operator page: {base}/  API docs: {base}/docs  (sign in with the token: biostation token)",
          flush=True)
    print(f"  devices:   {settings.devices.value}; data in {settings.data_dir}", flush=True)
    from ..station.security import guarded_h11_protocol

    # h11 (httptools answers 400 to MOSIP's custom verbs), with a deadline on request heads
    protocol = guarded_h11_protocol(settings.header_timeout_s, settings.linger_s, settings.linger_max_bytes)
    config = uvicorn.Config(app_, http=protocol,
                            log_level=settings.log_level.lower(), access_log=False,
                            timeout_keep_alive=min(5, int(settings.header_timeout_s) or 1),
                            timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    if not settings.sbi:
        server.run(sockets=[sock])
        return
    print(f"  MOSIP SBI: one port per scanner and camera on 127.0.0.1:{settings.sbi_port_first}-"
          f"{settings.sbi_port_last}, env {settings.sbi_env} (device CA: "
          f"{settings.data_dir / 'sbi' / 'keys' / 'ca.pem'})", flush=True)
    import asyncio

    from ..station.sbi import SbiService

    async def both() -> None:
        # the SBI servers share the daemon's process, event loop and device registry
        sbi_service = SbiService(settings, app_.state.registry, announce=lambda line: print(f"  {line}", flush=True))
        await sbi_service.start()
        try:
            await server.serve(sockets=[sock])
        finally:
            await sbi_service.stop()

    asyncio.run(both())


@app.command()
def devices(
    devices: DeviceMode | None = DevicesOpt,
    data_dir: Path | None = DataDirOpt,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List the devices this machine has, and the driver chosen for each."""
    from ..hal import DriverRegistry

    settings = settings_from(data_dir, devices)
    reg = DriverRegistry(settings)
    reg.scan()
    infos = [d.info().to_dict() for d in reg.devices()]
    if as_json:
        print(json.dumps(infos, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"devices ({settings.devices.value})")
    for col in ("id", "class", "driver", "name", "state"):
        table.add_column(col, no_wrap=col == "id")
    for i in infos:
        table.add_row(i["device_id"], i["device_class"], i["driver"] + (" (simulated)" if i["simulated"] else ""),
                      i["name"], i["state"])
    Console().print(table)
    if not infos:
        print("no devices found (drivers loaded: " + ", ".join(c.id for c in reg.drivers) + ")")


@app.command()
def token(data_dir: Path | None = DataDirOpt) -> None:
    """Print the station's API token (made on first use, stored 0600 in the data directory)."""
    from ..station.auth import ensure_token

    print(ensure_token(settings_from(data_dir).token_path))


@app.command()
def version() -> None:
    """Print the version, the matcher backend and the Python version."""
    backend = "unavailable"
    try:
        from .. import matcher

        backend = getattr(matcher, "BACKEND", "unknown")
    except Exception:
        pass
    print(f"biostation {__version__} (matcher: {backend}; Python {sys.version.split()[0]})")


def _register_subcommands() -> None:
    for mod in pkgutil.iter_modules(__path__):
        if mod.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{mod.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(app)


_register_subcommands()


def main() -> None:
    app()
