"""`biostation serve` runs the MOSIP SBI beside its API: one loopback port per simulated scanner and
camera in 4501-4600, answering MOSIP's verbs, separate from the API (no token, no API route)."""

from __future__ import annotations

import json
import queue
import re
import signal
import time

import httpx
from tests.conftest import running_station


def _sbi_ports(lines: queue.Queue, want: int, timeout_s: float = 60) -> dict[str, int]:
    found: dict[str, int] = {}
    end = time.monotonic() + timeout_s
    while len(found) < want and time.monotonic() < end:
        try:
            line = lines.get(timeout=max(0.1, end - time.monotonic()))
        except queue.Empty:
            break
        m = re.search(r"SBI: (\S+) \((\w+) .*\) on 127\.0\.0\.1:(\d+)", line)
        if m:
            found[m.group(2)] = int(m.group(3))
    return found


def test_serve_starts_the_sbi_on_loopback_ports_apart_from_the_api(tmp_path):
    with running_station(tmp_path) as (proc, base, data, lines):
        ports = _sbi_ports(lines, 2)
        assert set(ports) == {"Finger", "Face"}, ports
        token = (data / "token").read_text().strip()
        for kind, port in ports.items():
            assert 4501 <= port <= 4600
            r = httpx.request("MOSIPDISC", f"http://127.0.0.1:{port}/device", content=json.dumps({"type": kind}),
                              headers={"Content-Type": "application/json"}, timeout=30)
            assert r.status_code == 200 and r.json()[0]["deviceStatus"] == "Ready"
            assert r.json()[0]["callbackId"] == f"http://127.0.0.1:{port}/"
            # the API is not reachable through an SBI port, with or without the token
            api = httpx.get(f"http://127.0.0.1:{port}/v1/devices", headers={"Authorization": f"Bearer {token}"})
            assert api.status_code in (404, 405) and token not in api.text
        # and the API still wants its token
        assert httpx.get(base + "/v1/devices").status_code == 401
        proc.send_signal(signal.SIGINT)  # Ctrl+C stops the API and the SBI servers together
        assert proc.wait(timeout=60) in (0, 130, -signal.SIGINT)  # stops on SIGINT (no speed claim)
