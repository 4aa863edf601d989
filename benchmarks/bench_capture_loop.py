"""Preview rate of the desk's capture loop: the simulated scanner at its real timing (15 fps),
the real NFIQ 2 on the frames with a finger, the quality overlay drawn on each frame.

    taskset -c 1 .venv/bin/python benchmarks/bench_capture_loop.py [--seconds 3] [--runs 3]

Prints JSON: per run the frames shown, frames per second, frames assessed with NFIQ 2, the time
from the first frame with a finger to its first score. The operator's goal is a preview of at
least 10 frames per second with a quality meter that follows the finger.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import cv2

from biostation.config import Settings
from biostation.records import FingerPosition
from biostation.station.workflows.fingers import CaptureLoop
from biostation_drivers.simulated.scanner import SimulatedScanner

SHARED = (Path(__file__).resolve().parents[1] / ".." / "shared").resolve()


def run_once(image, seconds: float) -> dict:
    scanner = SimulatedScanner.create(images=[image], settings=Settings(sim_time_scale=1.0))
    frames = []
    # threshold 100 is not reached by this print: the loop previews until its timeout
    loop = CaptureLoop(scanner, threshold=100, timeout_s=seconds, max_attempts=1, on_frame=frames.append)
    loop.capture_finger(FingerPosition.RIGHT_INDEX)
    if len(frames) < 2:
        return {"frames": len(frames)}
    span = frames[-1].frame.timestamp - frames[0].frame.timestamp
    with_finger = [f for f in frames if f.frame.finger_present]
    assessed = [f for f in with_finger if f.quality is not None]
    first_score_s = None
    if with_finger and assessed:
        first_score_s = assessed[0].frame.timestamp - with_finger[0].frame.timestamp
    return {"frames": len(frames), "fps": round((len(frames) - 1) / span, 2) if span > 0 else None,
            "frames_with_finger": len(with_finger),
            "frames_with_a_score": len(assessed),
            "first_score_after_s": None if first_score_s is None else round(first_score_s, 3)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="preview time per run")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    p = SHARED / "data" / "fvc2002" / "DB1_B" / "101_1.tif"
    image = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
    if image is None:
        print(f"cannot read {p}", file=sys.stderr)
        return 2
    runs = [run_once(image, a.seconds) for _ in range(a.runs)]
    fps = [r["fps"] for r in runs if r.get("fps")]
    out = {"runs": runs, "fps_median": statistics.median(fps) if fps else None, "goal_fps": 10}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
