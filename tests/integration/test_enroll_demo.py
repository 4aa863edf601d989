"""``biostation enroll demo``: one whole enrollment on the simulated devices, at their real timing,
through the workflow the page drives; the transaction and the ISO records it writes read back."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_enroll_demo_writes_the_transaction_and_the_iso_records(tmp_path, shared):
    from biostation.records.ansi_nist import read_transaction
    from biostation.records.iso19794_4 import decode as decode_fir

    out = tmp_path / "out"
    env = dict(os.environ, BIOSTATION_CAPTURE_TIMEOUT_S="300")  # a busy machine is slow, not wrong
    r = subprocess.run([sys.executable, "-m", "biostation", "enroll", "demo", "--out", str(out), "--json"],
                       capture_output=True, text=True, timeout=1200, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    summary = json.loads(r.stdout)
    sid = summary["session_id"]
    assert summary["sequence_ok"] and len(summary["fingers"]) == 10 and len(summary["slaps"]) == 3
    tx = read_transaction((out / f"{sid}.an2").read_bytes())
    assert tx.of_type(2)[0].text(18) == "Nguyễn, Văn An"
    assert len(tx.of_type(14)) == 13 and len(tx.of_type(10)) == 1 and len(tx.of_type(9)) == 10
    fir = decode_fir((out / f"{sid}.iso19794-4").read_bytes())
    assert len(fir.views) == 13
    assert (out / f"{sid}.iso19794-5").read_bytes()[:4] == b"FAC\x00"
    assert sorted(p.name for p in out.glob(f"{sid}.iso19794-2-finger-*")) == [
        f"{sid}.iso19794-2-finger-{p:02d}" for p in range(1, 11)]
