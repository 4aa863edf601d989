"""Shared fixtures: isolated settings, simulated devices, the data set in ../shared."""

from __future__ import annotations

from pathlib import Path

import pytest

from biostation.config import DeviceMode, Settings

ROOT = Path(__file__).resolve().parents[1]
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
    """Settings with a private data directory, simulated devices and no simulated delays."""
    return Settings(data_dir=tmp_path / "station", devices=DeviceMode.SIMULATED, sim_time_scale=0.0,
                    device_poll_s=0.05)
