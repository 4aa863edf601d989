"""A citizen verified against the chip on the simulated desk: time per step, p50 / p95.

Each run is a whole verification through the desk's workflow (:mod:`biostation.station.workflows.
verification`): the chip read with PACE, passive, chip and terminal authentication and DG3; the
live portrait from the simulated camera (ICAO-checked capture) against DG2; two live fingers from
the simulated scanner against DG3. ``--time-scale`` multiplies the simulated devices' delays
(1.0: the delays of real devices: a finger lands in 0.6 s, a camera frame every 33 ms).

    python benchmarks/bench_verify.py --runs 10 --json out/verify.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--time-scale", type=float, default=1.0)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)

    from rich.progress import track

    from biostation.config import DeviceMode, Settings
    from biostation.hal import DriverRegistry
    from biostation.station.workflows.chip import ChipReads
    from biostation.station.workflows.verification import Verifications

    with tempfile.TemporaryDirectory() as td:
        settings = Settings(data_dir=Path(td), devices=DeviceMode.SIMULATED, sim_time_scale=a.time_scale)
        reg = DriverRegistry(settings)
        reg.scan()
        by = {d.device_class.value: d for d in reg.devices()}
        for d in by.values():
            d.open()
        can = by["card_reader"].info().details["can"]
        desk = Verifications(ChipReads(settings.trust_dir))
        rows = []
        for _ in track(range(a.runs), description="verifying", transient=True):
            out = desk.verify(by["card_reader"], can=can, camera=by["camera"], scanner=by["scanner"])
            rows.append({**out.timings, "decision": out.decision,
                         "scores": [c.get("score") for c in out.fingers["comparisons"]],
                         "face_distance": (out.face or {}).get("distance")})
        reg.close()
    steps = ["chip", "face", "fingers", "total"]

    def pct(xs: list[float], q: float) -> float:
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]

    figures = {s: {"p50_s": round(statistics.median(r[s] for r in rows), 3),
                   "p95_s": round(pct([r[s] for r in rows], 0.95), 3)} for s in steps}
    decisions = {d: sum(r["decision"] == d for r in rows) for d in {r["decision"] for r in rows}}
    print(f"{a.runs} verifications at device time scale {a.time_scale}: {decisions}")
    for s in steps:
        print(f"  {s:8s} p50 {figures[s]['p50_s']:.3f} s   p95 {figures[s]['p95_s']:.3f} s")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({"runs": rows, "figures": figures, "decisions": decisions}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
