"""Twenty desks on one station daemon: concurrent clients on loopback for a bounded time.

Each client loops over what a desk's page does: the health and device lists, the applicant
queue and a session's view, a new session with demographics (one in five with a bad field, which
must get a 422), a portrait check of a real photo (heavy: it runs on the daemon's bounded pool;
a 503 with Retry-After is the daemon saying "busy", and the client waits as told and retries),
and a chip read of the virtual card. Prints requests, answers by status class, p50/p99 latency
per route, and the daemon's RSS before and after.

    python benchmarks/desk_load.py --clients 20 --seconds 300

Traffic goes to 127.0.0.1 only; every loop is bounded in time and count.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from desk_faults import Daemon  # noqa: E402


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run(work: Path, *, clients: int, seconds: float, photo: Path, seed: int = 1,
        max_requests: int = 200_000) -> dict[str, Any]:
    daemon = Daemon(work / "station", 0.2)
    daemon.start()
    assert daemon.proc is not None
    token = (work / "station" / "token").read_text().strip()
    headers = {"Authorization": f"Bearer {token}"}
    devices = httpx.get(daemon.base + "/v1/devices", headers=headers).json()
    reader = next(d for d in devices if d["device_class"] == "card_reader")
    can = reader["details"]["can"]
    photo_bytes = photo.read_bytes()
    time.sleep(1.0)
    rss_before = rss_mb(daemon.proc.pid)
    lat: dict[str, list[float]] = defaultdict(list)
    statuses: Counter[str] = Counter()
    problems: list[str] = []
    busy_retries = Counter()
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds
    sent = [0]

    def client(k: int) -> None:
        rng = random.Random(seed * 1000 + k)
        c = httpx.Client(base_url=daemon.base, headers=headers, timeout=120)
        sid = None
        while time.monotonic() < stop_at:
            with lock:
                if sent[0] >= max_requests:
                    return
                sent[0] += 1
            op = rng.choice(["health", "devices", "queue", "session", "new", "face", "card"])
            try:
                t0 = time.monotonic()
                if op == "health":
                    r = c.get("/health")
                elif op == "devices":
                    r = c.get("/v1/devices")
                elif op == "queue":
                    r = c.get("/v1/enrollments")
                elif op == "session" and sid:
                    r = c.get(f"/v1/enrollments/{sid}")
                elif op == "new" or (op == "session" and not sid):
                    op = "new"
                    sid = c.post("/v1/enrollments", json={"operator": f"desk{k}"}).json()["session_id"]
                    bad = rng.random() < 0.2
                    demo = {"id_number": f"079195{rng.randrange(10**6):06d}", "surname": "Đặng",
                            "given_names": "Thu Hà" + ("\x00" if bad else ""), "sex": "F",
                            "date_of_birth": "1995-05-06"}
                    r = c.put(f"/v1/enrollments/{sid}/demographics", json=demo)
                    if bad != (r.status_code == 422):
                        with lock:
                            problems.append(f"demographics bad={bad} -> {r.status_code}")
                elif op == "face":
                    for _ in range(30):  # honour the daemon's Retry-After when its pool is full
                        r = c.post("/v1/face/check", content=photo_bytes, headers={"Content-Type": "image/jpeg"})
                        if r.status_code != 503:
                            break
                        with lock:
                            busy_retries["face"] += 1
                        time.sleep(float(r.headers.get("Retry-After", "1")))
                else:
                    r = c.post(f"/v1/devices/{reader['device_id']}/card/read", json={"can": can})
                    if r.status_code == 409:  # another desk is reading the one card: busy, as designed
                        with lock:
                            busy_retries["card"] += 1
                dt = time.monotonic() - t0
                with lock:
                    lat[op].append(dt)
                    statuses[f"{r.status_code // 100}xx"] += 1
                    if r.status_code >= 500:
                        problems.append(f"{op}: {r.status_code} {r.text[:200]}")
            except httpx.HTTPError as exc:
                with lock:
                    problems.append(f"{op}: {type(exc).__name__}")
        c.close()

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    health_max = 0.0
    while any(t.is_alive() for t in threads):  # /health keeps answering throughout
        t0 = time.monotonic()
        try:
            httpx.get(daemon.base + "/health", timeout=30)
        except httpx.HTTPError:
            problems.append("health: no answer")
        health_max = max(health_max, time.monotonic() - t0)
        time.sleep(0.5)
    for t in threads:
        t.join()
    rss_after = rss_mb(daemon.proc.pid)
    daemon.stop()

    def pct(xs: list[float], q: float) -> float:
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))] if xs else float("nan")

    return {"clients": clients, "seconds": seconds, "requests": sum(len(v) for v in lat.values()),
            "statuses": dict(statuses), "problems": problems[:20], "problem_count": len(problems),
            "busy_retries": dict(busy_retries),
            "latency_ms": {k: {"n": len(v), "p50": round(statistics.median(v) * 1000, 1),
                               "p99": round(pct(v, 0.99) * 1000, 1)} for k, v in sorted(lat.items())},
            "health_max_ms": round(health_max * 1000, 1), "rss_mb_before": round(rss_before, 1),
            "rss_mb_after": round(rss_after, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=300)
    ap.add_argument("--photo", type=Path, default=Path(__file__).resolve().parents[1] / ".." / "shared" / "data" /
                    "faces" / "LONDON_FRL" / "002" / "1_neutral.jpg")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as td:
        fig = run(Path(td), clients=a.clients, seconds=a.seconds, photo=a.photo)
    print(json.dumps(fig, indent=2))
    return 0 if fig["problem_count"] == 0 and fig["statuses"].get("5xx", 0) == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
