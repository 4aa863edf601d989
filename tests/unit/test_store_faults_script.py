"""The outbox fault drill (benchmarks/outbox_faults.py) at a small size: it runs and its verdict holds."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "outbox_faults.py"


def test_small_drill_files_every_transaction_once(capsys):
    spec = importlib.util.spec_from_file_location("outbox_faults", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rc = mod.main(["--desks", "1", "--txns", "4", "--mobile", "3", "--downtime", "900", "--fault-rate", "0.5",
                   "--seed", "4"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "7 distinct transactions filed (of 7)" in out
    assert "filed exactly once" in out
