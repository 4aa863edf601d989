"""Shared fixtures: isolated settings, simulated devices, the data set in ../shared."""

from __future__ import annotations

import contextlib
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from biostation.config import DeviceMode, Settings

ROOT = Path(__file__).resolve().parents[1]

# CI (CI=true) explores the same examples every run, so a red run is reproducible and never
# flaky; developers' runs keep hypothesis's random exploration and find new cases.
try:
    from hypothesis import settings as _hsettings

    _hsettings.register_profile("ci", derandomize=True, print_blob=True)
    if os.environ.get("CI"):
        _hsettings.load_profile("ci")
except ImportError:  # hypothesis is a test extra
    pass
SHARED = (ROOT / ".." / "shared").resolve()


def pytest_report_header(config: pytest.Config) -> list[str]:
    try:
        from biostation import matcher

        backend = getattr(matcher, "BACKEND", "n/a")
    except Exception as exc:  # the header must not break collection
        backend = f"import failed: {exc}"
    return [f"biostation matcher backend: {backend}", f"shared data: {SHARED if SHARED.is_dir() else 'absent'}"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--hardware", action="store_true", help="run tests that need real devices attached")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--hardware"):
        return
    skip = pytest.mark.skip(reason="needs real hardware: run with --hardware")
    for item in items:
        if "hardware" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def shared() -> Path:
    """``../shared``; tests that need it are skipped where it is absent."""
    if not (SHARED / "data").is_dir():
        pytest.skip("../shared data set not present")
    return SHARED


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings with a private data directory, simulated devices and no simulated delays; the
    in-process ``TestClient`` names its host ``testserver``, allowed here."""
    return Settings(data_dir=tmp_path / "station", devices=DeviceMode.SIMULATED, sim_time_scale=0.0,
                    device_poll_s=0.05, allowed_hosts=["testserver"])


@contextlib.contextmanager
def running_station(tmp_path: Path, **env_over: str):
    """A real `biostation serve` process on a free port with simulated devices; ``env_over`` adds
    ``BIOSTATION_*`` settings. Yields ``(process, base_url, data_dir, output_lines_queue)``; killed
    at exit if still alive."""
    import httpx

    data = tmp_path / "station"
    # a capture may take long on a busy machine: no verdict may rest on how fast frames are assessed
    env = dict(os.environ, BIOSTATION_SIM_TIME_SCALE="0.5", BIOSTATION_DEVICE_POLL_S="0.2", BIOSTATION_CAPTURE_TIMEOUT_S="300",
               BIOSTATION_LOG_LEVEL="warning", PYTHONUNBUFFERED="1", **env_over)
    env.pop("BIOSTATION_DEVICES", None)
    proc = subprocess.Popen([sys.executable, "-m", "biostation", "serve", "--port", "0", "--devices", "simulated",
                             "--data-dir", str(data)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
        first = lines.get(timeout=60)
        assert "listening on http://127.0.0.1:" in first, first
        base = first.split("listening on ")[1].strip()
        deadline = time.monotonic() + 120  # a hang guard, not a speed verdict
        while True:
            try:
                if httpx.get(base + "/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("the daemon said it was listening but /health never answered")
            time.sleep(0.1)
        yield proc, base, data, lines
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture
def station_server(tmp_path):
    """A real `biostation serve` process on a free port with simulated devices.

    Yields ``(process, base_url, data_dir, output_lines_queue)``; killed at teardown if still alive.
    """
    with running_station(tmp_path) as station:
        yield station


@pytest.fixture(scope="module")
def station_factory(tmp_path_factory):
    """``start(**env)``: a :func:`running_station` with those settings, stopped when the module ends."""
    with contextlib.ExitStack() as stack:
        yield lambda **env: stack.enter_context(running_station(tmp_path_factory.mktemp("station"), **env))


@pytest.fixture(params=["numpy", "native"])
def matcher_backend(request, monkeypatch):
    """Run the requesting test once per matcher backend, through the public API (house style 5a).

    Modules opt in with ``pytestmark = pytest.mark.usefixtures("matcher_backend")``."""
    from biostation import matcher

    impl = matcher.backends().get(request.param)
    if impl is None:
        pytest.skip("C kernels not built")
    monkeypatch.setattr(matcher, "_impl", impl)
    return impl
