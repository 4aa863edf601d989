"""Twenty desks on one daemon for a short, bounded while (``benchmarks/desk_load.py``): no 5xx
(a full photo pool answers 503 with Retry-After, which the clients honour, and that is counted as
busy, not as an answer), bad demographics always 422, /health answering throughout, memory
bounded. No verdict rests on a latency."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_twenty_clients_get_no_server_error(tmp_path, shared):
    bench = Path(__file__).resolve().parents[2] / "benchmarks"
    sys.path.insert(0, str(bench))
    try:
        spec = importlib.util.spec_from_file_location("desk_load", bench / "desk_load.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(bench))
    fig = mod.run(tmp_path, clients=20, seconds=15, photo=shared / "data" / "faces" / "LONDON_FRL" / "002" /
                  "1_neutral.jpg", max_requests=5000)
    print(fig)
    assert fig["requests"] > 20 and fig["problem_count"] == 0, fig["problems"]
    assert fig["statuses"].get("5xx", 0) == 0
    assert fig["rss_mb_after"] - fig["rss_mb_before"] < 400
