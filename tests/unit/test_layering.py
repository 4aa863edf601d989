"""The house's layering: cores (fingerprint, matcher, face, card, records, templates, identify, store)
import neither the HAL nor the station; the HAL imports no station code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "biostation"
CORES = ["fingerprint", "matcher", "face", "card", "records", "templates", "identify", "store"]


def _imports(path: Path) -> set[str]:
    """Absolute names of the biostation modules a file imports (relative imports resolved)."""
    pkg = path.relative_to(SRC.parent).with_suffix("").parts[:-1]  # ('biostation', 'card', ...)
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(pkg[: len(pkg) - node.level + 1])
                mod = ".".join(base + ([node.module] if node.module else []))
                out.add(mod)
                out.update(f"{mod}.{a.name}" for a in node.names)
            elif node.module:
                out.add(node.module)
    return {m for m in out if m == "biostation" or m.startswith("biostation.")}


def _offenders(package: str, forbidden: tuple[str, ...]) -> list[str]:
    bad = []
    for path in sorted((SRC / package).rglob("*.py")):
        for mod in _imports(path):
            if any(mod == f or mod.startswith(f + ".") for f in forbidden):
                bad.append(f"{path.relative_to(SRC)} imports {mod}")
    return bad


@pytest.mark.parametrize("core", CORES)
def test_cores_import_neither_hal_nor_station(core):
    assert _offenders(core, ("biostation.hal", "biostation.station")) == []


def test_hal_imports_no_station_code():
    assert _offenders("hal", ("biostation.station",)) == []


def test_the_check_finds_what_it_looks_for():
    # the station does import the HAL (relatively): the scan must see it, or the tests above prove nothing
    assert any("imports biostation.hal" in line for line in _offenders("station", ("biostation.hal",)))
