"""kill -9 of the daemon during enrollments (``benchmarks/desk_faults.py``, a small campaign):
no confirmed record lost, nothing half-written shown as finished, every session resumed, the audit
trail intact. The kills land at random moments of the requests; what is asserted holds for any of
them, and with a kill in 20 % of about 40 requests the campaign kills several times."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_kill_minus_9_during_enrollments(tmp_path, shared):
    spec = importlib.util.spec_from_file_location(
        "desk_faults", Path(__file__).resolve().parents[2] / "benchmarks" / "desk_faults.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    fig = mod.campaign(tmp_path, enrollments=2, kill_rate=0.2, seed=5, time_scale=0.2,
                       photo=shared / "data" / "faces" / "LONDON_FRL" / "002" / "1_neutral.jpg")
    print(fig)
    assert fig["kills"] >= 1
    assert fig["lost"] == 0 and fig["half"] == 0 and fig["unfinished"] == 0
    assert fig["confirmed"] == 2 and fig["outbox_queued"] == 2 and fig["audit_ok"]
