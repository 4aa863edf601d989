"""MOSIP SBI on the simulated desk through real HTTP: time per verb, p50 / p95.

Each run sends MOSIPDISC and MOSIPDINFO to the slap scanner, then an RCAPTURE of the left slap
(four signed ISO/IEC 19794-4:2011 records, JPEG 2000 lossless) and an RCAPTURE of the face
(ICAO-checked portrait, ISO/IEC 19794-5:2011). ``--time-scale`` multiplies the simulated devices' delays (1.0: the
delays of real devices). The spec asks for a capture under 4 s end to end.

    python benchmarks/bench_sbi.py --runs 5 --time-scale 1.0
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--time-scale", type=float, default=1.0)
    a = ap.parse_args(argv)

    import httpx
    from rich.progress import track

    from biostation.config import DeviceMode, Settings
    from biostation.hal import DriverRegistry
    from biostation.station.sbi import SbiService
    from biostation_drivers.simulated.camera import SimulatedCamera
    from biostation_drivers.simulated.scanner import SimulatedScanner

    with tempfile.TemporaryDirectory() as tmp:
        s = Settings(data_dir=Path(tmp), devices=DeviceMode.SIMULATED, sim_time_scale=a.time_scale,
                     sbi_port_first=0)
        reg = DriverRegistry(s, drivers=[])
        scanner = reg.add(SimulatedScanner.create(settings=s, key="sim:bench-s"))
        camera = s.resolved_camera_source()
        cam = reg.add(SimulatedCamera.create(camera, settings=s, key="sim:bench-c")) if camera else None
        times: dict[str, list[float]] = {}

        def timed(name: str, verb: str, url: str, body: dict | None = None) -> dict:
            t0 = time.perf_counter()
            r = httpx.request(verb, url, content=None if body is None else json.dumps(body), timeout=120)
            times.setdefault(name, []).append(time.perf_counter() - t0)
            r.raise_for_status()
            return r.json()

        def rc(txn: str, kind: str, sub: int, count: int) -> dict:
            return {"env": "Developer", "purpose": "Registration", "specVersion": "0.9.5", "timeout": 30000,
                    "transactionId": txn, "bio": [{"type": kind, "count": count, "deviceSubId": sub,
                                                   "requestedScore": 40, "previousHash": ""}]}

        with SbiService(s, reg).running_in_thread() as svc:
            fp = f"http://127.0.0.1:{svc.ports[scanner.device_id]}"
            for i in track(range(a.runs), description="SBI runs"):
                timed("MOSIPDISC", "MOSIPDISC", fp + "/device", {"type": "Biometric Device"})
                timed("MOSIPDINFO", "MOSIPDINFO", fp + "/info")
                out = timed("RCAPTURE slap (4 fingers)", "RCAPTURE", fp + "/capture", rc(f"bench-{i}", "Finger", 1, 4))
                assert all(b["error"]["errorCode"] == "0" for b in out["biometrics"]), out
                if cam is not None:
                    face = f"http://127.0.0.1:{svc.ports[cam.device_id]}"
                    timed("RCAPTURE face", "RCAPTURE", face + "/capture", rc(f"face-{i}", "Face", 0, 1))
    print(f"SBI on the simulated desk, time scale {a.time_scale}, {a.runs} runs")
    for name, ts in times.items():
        ts = sorted(ts)
        p95 = ts[min(len(ts) - 1, int(round(0.95 * (len(ts) - 1))))]
        print(f"  {name:28s} p50 {statistics.median(ts) * 1e3:8.1f} ms   p95 {p95 * 1e3:8.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
