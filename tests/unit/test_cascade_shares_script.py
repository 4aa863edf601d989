"""benchmarks/bench_cascade_shares.py at a small size: it times every share, stage by stage."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_cascade_shares.py"


def _script():
    spec = importlib.util.spec_from_file_location("bench_cascade_shares", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_each_share_is_timed_stage_by_stage(shared, tmp_path, capsys):
    fvc = tmp_path / "fvc2002"
    fvc.mkdir()
    (fvc / "DB1_B").symlink_to(shared / "data" / "fvc2002" / "DB1_B")  # one database: 10 fingers
    out = tmp_path / "shares.json"
    rc = _script().main(["--gallery", "600", "--tile-to", "1500", "--shares", "0.1,1", "--time-probes", "3",
                         "--local-penetration", "0.01", "--fvc", str(fvc), "--json", str(out)])
    assert rc == 0, capsys.readouterr()
    r = json.loads(out.read_text())
    assert r["templates"] == 1800 and r["tile"] == 3 and r["gallery"] == 600
    assert r["local_shortlist"] == 200  # the shortlist floor
    assert [s["share"] for s in r["shares"]] == [0.1, 1.0]
    assert [s["codes_shortlist"] for s in r["shares"]] == [200, 1800]
    for s in r["shares"]:
        parts = s["codes_p50_ms"], s["local_screen_p50_ms"], s["matcher_p50_ms"]
        assert all(p > 0 for p in parts) and s["total_p50_ms"] > 0
        assert s["speedup_over_exhaustive"] > 0
    assert r["exhaustive"]["searches"] == 2


@pytest.mark.parametrize("shares", ["0", "1.5", "x", ""])
def test_bad_shares_are_refused(shares):
    with pytest.raises(SystemExit) as e:
        _script().main(["--shares", shares])
    assert e.value.code == 2
