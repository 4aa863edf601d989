"""kill -9 the station daemon during enrollments, restart it, resume every session; then audit the store.

A client drives whole enrollments through the API of a real ``biostation serve`` (simulated
devices): demographics, the 4-4-2 slaps and ten singles, an uploaded portrait, the duplicate
search, confirmation. While a request is in flight the daemon is killed (SIGKILL) at a random
moment of it; the client restarts the daemon and resumes the session from what
``GET /v1/enrollments/{id}`` says is missing. At the end, with the daemon stopped, the store is
opened and checked:

* every session the daemon answered as confirmed is finished in the store, with its
  ANSI/NIST-ITL transaction (Type-2, 13 Type-14, Type-10, Type-9 per finger) and ISO records,
  and queued once in the outbox (``lost``: confirmed but not so);
* no session is finished in the store without being confirmed, or confirmed with a transaction
  that does not read (``half``);
* every session is confirmed in the end (``unfinished``: a session the client could not resume);
* the audit trail verifies.

Run by hand for the figures: ``python benchmarks/desk_faults.py --enrollments 50 --kill-rate 0.15``
(prints JSON). CI runs a small campaign (``tests/integration/test_desk_faults.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

DEMO = {"surname": "Phạm", "given_names": "Minh Châu", "sex": "F", "date_of_birth": "1995-05-06"}


class Daemon:
    """A ``biostation serve`` process on a free port with simulated devices."""

    def __init__(self, data: Path, time_scale: float):
        self.data, self.time_scale = data, time_scale
        self.proc: subprocess.Popen[str] | None = None
        self.base = ""
        self.starts = 0

    def start(self) -> None:
        env = dict(os.environ, BIOSTATION_SIM_TIME_SCALE=str(self.time_scale), BIOSTATION_LOG_LEVEL="warning",
                   BIOSTATION_CAPTURE_TIMEOUT_S="300", PYTHONUNBUFFERED="1")
        env.pop("BIOSTATION_DEVICES", None)
        self.proc = subprocess.Popen([sys.executable, "-m", "biostation", "serve", "--port", "0", "--devices",
                                      "simulated", "--data-dir", str(self.data)], env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        if "listening on http://127.0.0.1:" not in first:
            raise RuntimeError(f"the daemon did not start: {first!r}")
        self.base = first.split("listening on ")[1].strip()
        threading.Thread(target=lambda: [None for _ in self.proc.stdout], daemon=True).start()  # type: ignore
        for _ in range(300):
            try:
                if httpx.get(self.base + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        self.starts += 1

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def campaign(work: Path, *, enrollments: int, kill_rate: float, seed: int, time_scale: float = 0.2,
             photo: Path, progress: Any = None) -> dict[str, Any]:
    rng = random.Random(seed)
    daemon = Daemon(work / "station", time_scale)
    daemon.start()
    token = (work / "station" / "token").read_text().strip()
    kills = 0
    confirmed: set[str] = set()
    sessions: list[str] = []
    photo_bytes = photo.read_bytes()

    def call(method: str, path: str, **kw: Any) -> httpx.Response:
        """One request; with ``kill_rate`` the daemon is killed at a random moment of it, then
        restarted; returns None-like (raises _Killed) so that the caller resumes."""
        nonlocal kills
        killer = None
        if rng.random() < kill_rate:
            delay = rng.uniform(0.0, 0.6)
            killer = threading.Timer(delay, daemon.kill)
            killer.start()
        try:
            headers = {"Authorization": f"Bearer {token}", **kw.pop("headers", {})}
            r = httpx.request(method, daemon.base + path, headers=headers, timeout=300, **kw)
        except httpx.HTTPError:
            r = None
        if killer is not None:
            killer.join()
            if daemon.proc is not None and daemon.proc.poll() is not None:
                kills += 1
                daemon.start()
                raise _Killed()
        if r is None:
            raise RuntimeError(f"{method} {path}: no answer and the daemon alive")
        if r.status_code >= 500:
            raise RuntimeError(f"{method} {path}: {r.status_code} {r.text[:300]}")
        return r

    def scanner_id() -> str:
        return next(d["device_id"] for d in call("GET", "/v1/devices").json() if d["device_class"] == "scanner")

    for k in range(enrollments):
        sid = None
        ident = f"079195{k:06d}"
        while True:
            try:
                if sid is None:
                    sid = call("POST", "/v1/enrollments", json={"operator": "faults"}).json()["session_id"]
                    sessions.append(sid)
                st = call("GET", f"/v1/enrollments/{sid}").json()
                step = st["step"]
                if step == "confirmed":
                    confirmed.add(sid)
                    break
                if step == "demographics":
                    call("PUT", f"/v1/enrollments/{sid}/demographics", json={**DEMO, "id_number": ident})
                elif step == "fingers":
                    scan = scanner_id()
                    todo = st["missing"]["slaps"] + st["missing"]["singles"]
                    if not todo:  # all in, the sequence check failed: take every single again
                        todo = list(range(1, 11))
                    for pos in todo:
                        call("POST", f"/v1/enrollments/{sid}/fingers/{pos}/capture", json={"device_id": scan})
                elif step == "portrait":
                    call("POST", f"/v1/enrollments/{sid}/portrait", content=photo_bytes,
                         headers={"Content-Type": "image/jpeg"})
                elif step == "duplicates":
                    call("POST", f"/v1/enrollments/{sid}/duplicates")
                elif step == "review":
                    hits = st["duplicates"]["hits"]
                    call("POST", f"/v1/enrollments/{sid}/confirm",
                         json={"operator": "faults",
                               "duplicate_cleared": "simulated applicants repeat" if hits else None})
            except _Killed:
                continue
        if progress is not None:
            progress(k + 1, kills)
    daemon.stop()
    return {**audit_store(work / "station", sessions, confirmed), "enrollments": enrollments, "kills": kills,
            "daemon_starts": daemon.starts}


class _Killed(Exception):
    pass


def audit_store(data: Path, sessions: list[str], confirmed: set[str]) -> dict[str, Any]:
    from biostation.config import Settings
    from biostation.records.ansi_nist import read_transaction
    from biostation.store import EnrollmentStore, SessionState

    store = EnrollmentStore.open(Settings(data_dir=data), create=False)
    try:
        infos = {s.session_id: s for s in store.sessions()}
        lost, half, unfinished = [], [], []
        for sid in sessions:
            info = infos.get(sid)
            finished = info is not None and info.state in (SessionState.FINISHED, SessionState.DELIVERED)
            if sid in confirmed and not finished:
                lost.append(sid)
            if finished:
                try:
                    tx = read_transaction(store.record(sid))
                    ok = (len(tx.of_type(14)) == 13 and len(tx.of_type(10)) == 1 and len(tx.of_type(9)) == 10
                          and store.record(sid, "iso19794-4") and store.record(sid, "iso19794-5"))
                except Exception:
                    ok = False
                if not ok or sid not in confirmed:
                    half.append(sid)
            if sid not in confirmed:
                unfinished.append(sid)
        outbox = store.outbox_status()["counts"]
        audit_ok = store.verify_audit().ok
    finally:
        store.close()
    return {"sessions": len(sessions), "confirmed": len(confirmed), "lost": len(lost), "half": len(half),
            "unfinished": len(unfinished), "outbox_queued": outbox["queued"], "audit_ok": audit_ok}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--enrollments", type=int, default=50)
    ap.add_argument("--kill-rate", type=float, default=0.15, help="share of requests during which it is killed")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--time-scale", type=float, default=0.2, help="simulated device delays (1.0: real)")
    ap.add_argument("--photo", type=Path, default=Path(__file__).resolve().parents[1] / ".." / "shared" / "data" /
                    "faces" / "LONDON_FRL" / "002" / "1_neutral.jpg")
    a = ap.parse_args(argv)
    from rich.progress import Progress

    with tempfile.TemporaryDirectory() as td, Progress() as bar:
        task = bar.add_task("enrollments", total=a.enrollments)
        t0 = time.time()
        fig = campaign(Path(td), enrollments=a.enrollments, kill_rate=a.kill_rate, seed=a.seed,
                       time_scale=a.time_scale, photo=a.photo,
                       progress=lambda n, k: bar.update(task, completed=n, description=f"enrollments ({k} kills)"))
        fig["seconds"] = round(time.time() - t0, 1)
    print(json.dumps(fig))
    return 0 if fig["lost"] == fig["half"] == fig["unfinished"] == 0 and fig["audit_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
