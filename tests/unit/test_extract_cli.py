"""``biostation extract``: formats, output locations, bad files."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from biostation.cli import app
from biostation.templates import load_template


def _img(shared: Path, db: str = "DB1_B", name: str = "101_1") -> Path:
    return shared / "data" / "fvc2002" / db / f"{name}.tif"


def test_json_to_stdout(shared: Path) -> None:
    r = CliRunner().invoke(app, ["extract", str(_img(shared)), "--format", "json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    view = doc["views"][0]
    assert (view["width"], view["height"], view["dpi"]) == (388, 374, 500.0)
    assert len(view["minutiae"]) > 10


def test_iso_and_ansi_files_load_back(shared: Path, tmp_path: Path) -> None:
    imgs = [str(_img(shared, "DB2_B", n)) for n in ("101_1", "101_2")]
    r = CliRunner().invoke(app, ["extract", *imgs, "-o", str(tmp_path / "out"), "--dpi", "569"])
    assert r.exit_code == 0, r.output
    for n in ("101_1", "101_2"):
        t = load_template(tmp_path / "out" / f"{n}.iso")
        assert (t.width, t.height) == (296, 560) and abs(t.dpi - 569) < 3 and len(t.minutiae) > 10
    r = CliRunner().invoke(app, ["extract", imgs[0], "-o", str(tmp_path / "one.ansi"), "-f", "ansi378"])
    assert r.exit_code == 0, r.output
    assert len(load_template(tmp_path / "one.ansi", "ansi378").minutiae) > 10


def test_bad_files_are_reported_and_skipped(shared: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    r = CliRunner().invoke(app, ["extract", str(bad), str(_img(shared)), "-o", str(tmp_path / "o")])
    assert r.exit_code == 1
    assert "bad.png" in r.output and "not a readable image" in r.output
    assert (tmp_path / "o" / "101_1.iso").is_file() and not (tmp_path / "o" / "bad.iso").exists()
    r = CliRunner().invoke(app, ["extract", str(_img(shared)), "--format", "xml"])
    assert r.exit_code == 2
