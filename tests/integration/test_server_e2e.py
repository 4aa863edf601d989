"""End to end: the real `biostation serve` process (uvicorn, h11) over HTTP."""

from __future__ import annotations

import json
import queue
import signal
import stat
import subprocess
import sys
import threading
import time

import httpx
import pytest

pytestmark = pytest.mark.integration


def _events(base, token, sink, stop):
    with httpx.stream("GET", base + "/v1/events", headers={"Authorization": f"Bearer {token}"},
                      timeout=httpx.Timeout(5, read=30)) as r:
        sink.put(("status", r.status_code))
        kind = None
        for line in r.iter_lines():
            if stop.is_set():
                return
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                sink.put((kind, json.loads(line[6:])))


def _wait_for(sink, kind, timeout=10.0, **match):
    end = time.monotonic() + timeout
    seen = []
    while time.monotonic() < end:
        try:
            k, data = sink.get(timeout=0.2)
        except queue.Empty:
            continue
        seen.append(k)
        if k == kind and all(data.get("data", {}).get(f) == v for f, v in match.items()):
            return data
    pytest.fail(f"no {kind} event {match} within {timeout}s; saw {seen}")


def test_served_station_end_to_end(station_server):
    proc, base, data, lines = station_server
    # auth: the token file is private, the CLI prints the same token, and only health is open
    token_file = data / "token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    printed = subprocess.run([sys.executable, "-m", "biostation", "token", "--data-dir", str(data)],
                             capture_output=True, text=True, check=True).stdout.strip()
    assert printed == token_file.read_text().strip()
    assert httpx.get(base + "/v1/devices").status_code == 401
    assert httpx.get(base + "/v1/devices", headers={"Authorization": "Bearer nope"}).status_code == 401
    auth = {"Authorization": f"Bearer {printed}"}
    c = httpx.Client(base_url=base, headers=auth, timeout=30)
    devs = {d["device_id"]: d for d in c.get("/v1/devices").json()}
    scanner = next(i for i, d in devs.items() if d["device_class"] == "scanner")
    assert {d["device_class"] for d in devs.values()} == {"scanner", "camera", "card_reader"}
    r = c.get("/v1/devices/no-such-device")
    assert r.status_code == 404 and "no-such-device" in r.json()["reason"]

    # the h11 parser takes MOSIP's custom verbs (httptools would answer 400)
    r = c.request("MOSIPDISC", "/device")
    assert r.status_code in (404, 405)

    # events stream; a capture; then the scanner disappears in the middle of a capture
    sink: queue.Queue = queue.Queue()
    stop = threading.Event()
    threading.Thread(target=_events, args=(base, printed, sink, stop), daemon=True).start()
    assert sink.get(timeout=10) == ("status", 200)
    time.sleep(0.2)
    r = c.post(f"/v1/devices/{scanner}/capture", json={"kind": "flat"})
    assert r.status_code == 200 and r.json()["width"] > 100
    _wait_for(sink, "capture.done")

    result: dict = {}
    t = threading.Thread(target=lambda: result.setdefault("r", c.post(f"/v1/devices/{scanner}/capture", json={})))
    t.start()
    _wait_for(sink, "capture.started")
    assert c.post(f"/v1/devices/{scanner}/simulate", json={"fault": "unplug"}).status_code == 204
    t.join(15)
    assert result["r"].status_code == 410 and result["r"].json()["error"] == "DeviceGoneError"
    err = _wait_for(sink, "capture.error")
    assert err["device_id"] == scanner and err["data"]["error"] == "DeviceGoneError"
    _wait_for(sink, "device.removed")
    stop.set()

    # the daemon keeps serving
    assert c.get("/health").status_code == 200
    left = {d["device_class"] for d in c.get("/v1/devices").json()}
    assert left == {"camera", "card_reader"}
    assert c.get(f"/v1/devices/{scanner}").status_code == 404
    cam = next(d["device_id"] for d in c.get("/v1/devices").json() if d["device_class"] == "camera")
    assert c.get(f"/v1/devices/{cam}/frame").headers["content-type"] == "image/jpeg"

    # the simulated scanner is plugged back in (training: unplug, then plug again) and captures
    r = c.post("/v1/simulated/replug")
    assert r.status_code == 200 and r.json()["plugged"] == [scanner]
    assert c.post(f"/v1/devices/{scanner}/capture", json={"assess": False}).status_code == 200

    # Ctrl+C stops it cleanly (uvicorn re-raises the signal after its graceful shutdown: 130)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) in (0, 130, -signal.SIGINT)  # stops on SIGINT (no speed claim)
    out = "".join(iter(lambda: _drain(lines), None))
    assert "Traceback" not in out, out


def _drain(lines):
    try:
        return lines.get(timeout=0.5)
    except queue.Empty:
        return None
