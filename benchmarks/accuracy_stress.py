"""All-pairs EER of the eight development databases under two sensor stresses the sets lack.

    .venv/bin/python benchmarks/accuracy_stress.py [--crop 200] [--json out/stress.json]

* ``crop``: each image cut to a ``--crop`` x ``--crop`` pixel window (at 500 dpi; scaled with the
  database's resolution) around the centre of its dark mass, as a small-area sensor would see
  the finger (200 px is 10 mm square);
* ``faint``: the grey levels squeezed to 35 % of their contrast around a light background (x 0.35
  + 160) with Gaussian noise of 4 grey levels added (seeded per image), a faint, dry finger on
  a noisy sensor.

The development databases are FVC2000 and FVC2002 set B, DB1..DB4 each (``../shared/data``).
Neither stress is used to tune anything: the figures say how the shipped extractor and
matcher hold up away from the sensors they were tuned on. Prints one line per stress and
database and the means.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / ".." / "shared" / "data"


def _crop(img: np.ndarray, side: int) -> np.ndarray:
    h, w = img.shape
    dark = 255.0 - cv2.GaussianBlur(img, (0, 0), 15).astype(np.float64)
    dark -= dark.min()
    ys, xs = np.mgrid[:h, :w]
    total = max(dark.sum(), 1e-9)
    cy, cx = int((dark * ys).sum() / total), int((dark * xs).sum() / total)
    y0 = min(max(cy - side // 2, 0), max(h - side, 0))
    x0 = min(max(cx - side // 2, 0), max(w - side, 0))
    return img[y0:y0 + side, x0:x0 + side]


def _faint(img: np.ndarray, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0.0, 4.0, img.shape)
    return np.clip(img.astype(np.float64) * 0.35 + 160.0 + noise, 0, 255).astype(np.uint8)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--crop", type=int, default=200, help="window side in pixels at 500 dpi")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    from biostation.evaluation import database_dpi, databases, protocol_scores, samples, score_matrix
    from biostation.fingerprint import extract, read_image
    from biostation.matcher.evaluation import summarize

    cv2.setNumThreads(1)
    out: dict[str, dict[str, float]] = {}
    for stress in ("crop", "faint"):
        out[stress] = {}
        for coll in ("fvc2000", "fvc2002"):
            for db in databases(SHARED / coll):
                dpi = database_dpi(db)
                names, tpls = [], []
                for k, (stem, path, _) in enumerate(samples(db)):
                    img = read_image(path)
                    img = _crop(img, round(args.crop * dpi / 500)) if stress == "crop" else _faint(img, k)
                    tpls.append(extract(img, dpi))
                    names.append(stem)
                scores, _ = score_matrix(tpls)
                eer = summarize(*protocol_scores(names, scores))["EER"]
                key = f"{coll}/{db.name[:3]}"
                out[stress][key] = eer
                print(f"{stress:<6}{key:<14}{eer:7.2f} %  ({np.mean([len(t.minutiae) for t in tpls]):.1f} minutiae)",
                      flush=True)
        vals = out[stress]
        print(f"{stress:<6}mean {np.mean(list(vals.values())):.2f} %, FVC2000 "
              f"{np.mean([v for k, v in vals.items() if k.startswith('fvc2000')]):.2f} %, FVC2002 "
              f"{np.mean([v for k, v in vals.items() if k.startswith('fvc2002')]):.2f} %", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
