"""Desk protocol for face verification: a live capture against the chip's DG2 photo.

    taskset -c 1 .venv/bin/python benchmarks/bench_face_desk.py [--models dlib,facenet] \
        [--out out/face_desk] [--sets ORL,YALE,MEDS_SUBSET,LONDON_FRL] [--limit N]

One core (OpenCV and BLAS threads set to 1). For every image of every identity set in
``../shared/data/faces`` two probes are made:

* the chip photo, exactly as personalization makes it: face analysis, the ISO/IEC 19794-5 token
  crop (:func:`biostation.face.token_image`, 480x640, eyes 120 px apart) encoded for DG2, then
  decoded as the desk reads it back. Half the images (chosen by a hash of the file name) go to
  JPEG 2000 at most 15,000 bytes, the other half to baseline JPEG at the highest quality that
  fits 20,000 bytes (the 15-20 KB DG2 range);
* the live capture, the whole frame through a camera path that the ICAO checks would still
  pass: frames larger than 640x480 are scaled to fit it (the desk camera's resolution), a roll of
  up to +-6 degrees, a keystone warp of up to 4 % (a few degrees of yaw or pitch), an exposure
  change (gain 0.8-1.15, gamma 0.75-1.35), a left-right light gradient of up to +-15 %, a
  Gaussian blur of sigma 0-1 px, sensor noise of sigma 2 grey levels, and the camera's JPEG at
  quality 75-92. Each degradation is drawn from a generator seeded by the file name, so every
  run and every model sees the same probes.

Genuine pairs: the chip of one image against the live capture of another image of the same
identity (LONDON_FRL: neutral against smiling, both ways). Impostor pairs: the chip of one image
against the live capture of any image of another identity of the same set. Images where no face
is found on a side are counted (failure to acquire) and left out of the pairs of that side.

Prints per set and pooled: pairs, EER (FVC definition), FNMR at FMR 1 %, 0.1 % and 0.01 % with a
95 % Wilson interval over the genuine pairs, the threshold, and whether enough impostor pairs
exist to measure that FMR at all (at least 3 / FMR of them: the rule of three); the FMR and
FNMR at each model's shipped operating points; the cost per face on one core. Writes a DET plot
per model (``det_<model>.png``), one of every model pooled (``det_models.png``), the distances
(``scores_<model>.npz``) and every figure (``desk.json``) into ``--out``.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import hashlib
import io
import json
import math
import multiprocessing
import time
from pathlib import Path

import cv2
import numpy as np

from biostation.errors import FaceError, ImageError
from biostation.face import check_portrait, default_analyzer, encode_jpeg2000, load_image, token_image
from biostation.face.token import encode_jpeg_fit
from biostation.matcher.evaluation import det_plot, fnmr_at_fmr, fvc_eer

FACES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "faces"
SETS = {"ORL": "ORL/*/*.pgm", "YALE": "YALE/*/*.png", "MEDS_SUBSET": "MEDS_SUBSET/*/*.jpg",
        "LONDON_FRL": "LONDON_FRL/*/*.jpg"}
TARGETS = (0.01, 0.001, 0.0001)
JP2_BYTES, JPEG_BYTES = 15_000, 20_000
LIVE_MAX = (640, 480)


def _seed(path: Path, salt: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{salt}:{path.parent.name}/{path.name}".encode()).digest()[:8], "big")


def chip_photo(image: np.ndarray, path: Path, analyzer) -> tuple[np.ndarray, str, int]:
    """(decoded DG2 token, format, bytes) as personalization writes it and the desk reads it."""
    dets = analyzer.detect(image)
    if not dets:
        raise FaceError("no face for the token")
    det = max(dets, key=lambda d: d.width * d.height)
    lm = analyzer.landmarks(image, det)
    token = token_image(image, lm.right_eye, lm.left_eye)
    if _seed(path, "format") % 2 == 0:
        from PIL import Image

        data = encode_jpeg2000(token, max_bytes=JP2_BYTES)
        decoded = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))[:, :, ::-1].copy()
        return decoded, "jp2", len(data)
    data = encode_jpeg_fit(token, max_bytes=JPEG_BYTES)
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), "jpeg", len(data)


def live_capture(image: np.ndarray, path: Path) -> np.ndarray:
    """The whole frame through the simulated desk camera path (see the module docstring)."""
    rng = np.random.default_rng(_seed(path, "live"))
    img = image.astype(np.float32)
    h, w = img.shape[:2]
    scale = min(1.0, LIVE_MAX[0] / max(w, h), LIVE_MAX[1] / min(w, h))
    if scale < 1.0:
        img = cv2.resize(img, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        h, w = img.shape[:2]
    # pose: roll, and a keystone warp standing in for a few degrees of yaw or pitch
    m = cv2.getRotationMatrix2D((w / 2, h / 2), float(rng.uniform(-6, 6)), 1.0)
    img = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    k = float(rng.uniform(-0.04, 0.04))
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    if rng.random() < 0.5:  # yaw-like: one side shorter
        dst = np.float32([[0, h * max(k, 0)], [w, h * max(-k, 0)], [w, h * (1 - max(-k, 0))], [0, h * (1 - max(k, 0))]])
    else:  # pitch-like: top or bottom narrower
        dst = np.float32([[w * max(k, 0), 0], [w * (1 - max(k, 0)), 0], [w * (1 - max(-k, 0)), h], [w * max(-k, 0), h]])
    img = cv2.warpPerspective(img, cv2.getPerspectiveTransform(src, dst), (w, h), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
    # lighting: gain, gamma, a left-right gradient
    gain, gamma, grad = rng.uniform(0.8, 1.15), rng.uniform(0.75, 1.35), rng.uniform(-0.15, 0.15)
    ramp = 1.0 + grad * np.linspace(-1, 1, w, dtype=np.float32)[None, :, None]
    img = 255.0 * np.clip(img / 255.0, 0, 1) ** gamma * gain * ramp
    # optics and sensor: blur, noise, the camera's JPEG
    sigma = float(rng.uniform(0.0, 1.0))
    if sigma > 0.2:
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    img = img + rng.normal(0, 2.0, img.shape).astype(np.float32)
    out = np.clip(img, 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(75, 93))])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


def make_embedders(names: list[str]) -> dict:
    from biostation.face.verify import DlibResNetEmbedder, FaceNetEmbedder

    known = {"dlib": lambda: DlibResNetEmbedder(flip=False), "facenet": FaceNetEmbedder,
             "dlib-flip": lambda: DlibResNetEmbedder(flip=True),
             "dlib-j4": lambda: DlibResNetEmbedder(flip=False, jitters=4)}
    out = {}
    for n in names:
        if n not in known:
            raise SystemExit(f"unknown model {n!r}: choose from {', '.join(known)}")
        out[n] = known[n]()
    return out


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = k / n
    c = (p + z * z / (2 * n)) / (1 + z * z / n)
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, c - h), min(1.0, c + h)


def figures(gen: np.ndarray, imp: np.ndarray, ops: dict[str, float]) -> dict:
    """Figures of one population of distances (smaller = more alike)."""
    sg, si = -gen, -imp  # the evaluation helpers take similarities
    eer, lo, hi = fvc_eer(sg, si)
    out: dict = {"genuine": int(len(gen)), "impostor": int(len(imp)), "EER": eer, "EER_interval": [lo, hi]}
    for t in TARGETS:
        fnmr, th = fnmr_at_fmr(sg, si, t)
        k = int(round(fnmr * len(gen)))
        out[f"FMR{t:g}"] = {"FNMR": fnmr, "FNMR_ci95": wilson(k, len(gen)), "threshold": -th,
                            "measurable": len(imp) >= 3 / t, "impostor_needed": int(math.ceil(3 / t))}
    for name, th in ops.items():
        fm, fn = int((imp <= th).sum()), int((gen > th).sum())
        out[f"at {name}"] = {"threshold": th, "FMR": fm / len(imp), "FMR_count": fm, "FNMR": fn / len(gen),
                             "FNMR_ci95": wilson(fn, len(gen))}
    return out


def pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def print_figures(label: str, f: dict) -> None:
    lo, hi = f["EER_interval"]
    print(f"  {label:12s} gen {f['genuine']:6d} imp {f['impostor']:8d}  EER {pct(f['EER'])}")
    for t in TARGETS:
        g = f[f"FMR{t:g}"]
        a, b = g["FNMR_ci95"]
        note = "" if g["measurable"] else f"  (not measurable: needs >= {g['impostor_needed']:,} impostor pairs)"
        print(f"      FMR {100 * t:5g}%: FNMR {pct(g['FNMR'])} [{pct(a)}, {pct(b)}] at distance "
              f"{g['threshold']:.4f}{note}")
    for k, g in f.items():
        if k.startswith("at "):
            a, b = g["FNMR_ci95"]
            print(f"      {k} (distance {g['threshold']:.4f}): FMR {pct(g['FMR'])} ({g['FMR_count']} pairs), "
                  f"FNMR {pct(g['FNMR'])} [{pct(a)}, {pct(b)}]")


_WORKER: dict = {}


def _init_worker(models: list[str]) -> None:
    cv2.setNumThreads(1)
    _WORKER["analyzer"] = default_analyzer()
    _WORKER["embedders"] = make_embedders(models)


def _probe_one(item: tuple[str, Path]) -> dict:
    """Chip photo and live capture of one image, each embedded by every model."""
    from biostation.face.verify import comparison_failures

    s, p = item
    analyzer, embedders = _WORKER["analyzer"], _WORKER["embedders"]
    out: dict = {"not_enrolled": 0, "live_flagged": 0, "fta": {"chip": 0, "live": 0}, "chip_fmt": None,
                 "chip_bytes": 0, "sides": {}}
    image = load_image(p)
    sides = {}
    if comparison_failures(check_portrait(image, analyzer)):  # personalization never gets such a portrait
        out["not_enrolled"] = 1
    else:
        try:
            chip, fmt, nbytes = chip_photo(image, p, analyzer)
            out["chip_fmt"], out["chip_bytes"] = fmt, nbytes
            sides["chip"] = (chip, fmt, True)
        except (FaceError, ImageError):
            out["fta"]["chip"] = 1
    live = live_capture(image, p)
    live_ok = not comparison_failures(check_portrait(live, analyzer))
    out["live_flagged"] = int(not live_ok)
    sides["live"] = (live, "live", live_ok)
    for side, (img, fmt, ok) in sides.items():
        dets = analyzer.detect(img)
        if not dets:
            out["fta"][side] = 1
            continue
        det = max(dets, key=lambda d: d.width * d.height)
        vecs, secs = {}, {}
        for m, e in embedders.items():
            t = time.thread_time()
            vecs[m] = e.embed(img, det)
            secs[m] = time.thread_time() - t
        out["sides"][side] = ((s, p.parent.name, f"{s}/{p.parent.name}/{p.name}", fmt, ok), vecs, secs)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="dlib-flip,dlib",
                    help="comma-separated: dlib-flip (shipped), dlib, facenet (needs the [face-eval] extra), dlib-j4")
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--out", default="out/face_desk")
    ap.add_argument("--limit", type=int, default=0, help="at most this many images per set (quick look)")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes (each single-threaded)")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    if not FACES.is_dir():
        raise SystemExit(f"data set not found: {FACES}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from rich.progress import Progress

    from biostation.face.verify import COMPARISON_CHECKS, operating_points

    models = [m for m in args.models.split(",") if m]
    embedders = make_embedders(models)  # fail early on an unknown or missing model
    sets = [s for s in args.sets.split(",") if s]
    # per side: rows (set, identity, image, format, live passes checks); per model and side: embeddings
    rows: dict[str, list] = {"chip": [], "live": []}
    embs: dict[str, dict[str, list]] = {m: {"chip": [], "live": []} for m in embedders}
    fta = {s: {"chip": 0, "live": 0} for s in sets}
    not_enrolled = {s: 0 for s in sets}
    live_flagged = {s: 0 for s in sets}
    cost = {m: [] for m in embedders}
    chip_bytes = {"jp2": [], "jpeg": []}
    paths = {s: sorted(FACES.glob(SETS[s]))[: args.limit or None] for s in sets}
    work = [(s, p) for s in sets for p in paths[s]]
    if args.jobs > 1:
        pool = multiprocessing.get_context("fork").Pool(args.jobs, _init_worker, (models,))
        results = pool.imap(_probe_one, work, chunksize=4)
    else:
        _init_worker(models)
        results = map(_probe_one, work)
    with Progress(transient=True) as prog:
        task = prog.add_task("desk probes", total=len(work))
        for (s, _), r in zip(work, results):
            not_enrolled[s] += r["not_enrolled"]
            live_flagged[s] += r["live_flagged"]
            for side in ("chip", "live"):
                fta[s][side] += r["fta"][side]
            if r["chip_fmt"]:
                chip_bytes[r["chip_fmt"]].append(r["chip_bytes"])
            for side, (row, vecs, secs) in r["sides"].items():
                rows[side].append(row)
                for m in models:
                    embs[m][side].append(vecs[m])
                    cost[m].append(secs[m])
            prog.advance(task)

    print(f"desk protocol, one core, OpenCV {cv2.__version__}; machine shared with other work")
    print(f"  chip photos: JPEG 2000 {len(chip_bytes['jp2'])} (median {np.median(chip_bytes['jp2'] or [0]):.0f} B), "
          f"JPEG {len(chip_bytes['jpeg'])} (median {np.median(chip_bytes['jpeg'] or [0]):.0f} B)")
    for s in sets:
        print(f"  {s:12s} images {len(paths[s]):4d}; no chip made (portrait fails {'/'.join(COMPARISON_CHECKS[2:])}): "
              f"{not_enrolled[s]}; live captures failing those checks: {live_flagged[s]}; "
              f"no face found: chip {fta[s]['chip']}, live {fta[s]['live']}")
    chip_rows, live_rows = rows["chip"], rows["live"]
    c_set = np.array([r[0] for r in chip_rows])
    c_id = np.array([r[0] + "/" + r[1] for r in chip_rows])
    c_img = np.array([r[2] for r in chip_rows])
    c_fmt = np.array([r[3] for r in chip_rows])
    l_set = np.array([r[0] for r in live_rows])
    l_id = np.array([r[0] + "/" + r[1] for r in live_rows])
    l_img = np.array([r[2] for r in live_rows])
    l_ok = np.array([r[4] for r in live_rows], bool)
    same_set = c_set[:, None] == l_set[None]
    same_id = c_id[:, None] == l_id[None]
    same_img = c_img[:, None] == l_img[None]
    gen_mask = same_id & ~same_img
    imp_mask = same_set & ~same_id
    report: dict = {"sets": sets, "failure_to_acquire": fta, "not_enrolled": not_enrolled,
                    "live_flagged": live_flagged,
                    "chip_bytes": {k: [int(min(v or [0])), int(max(v or [0]))] for k, v in chip_bytes.items()},
                    "models": {}}
    curves = {}
    for m, e in embedders.items():
        C, L = np.array(embs[m]["chip"]), np.array(embs[m]["live"])
        d = np.sqrt(np.maximum(((C ** 2).sum(1)[:, None] + (L ** 2).sum(1)[None] - 2 * C @ L.T), 0))
        ops = {name: op.threshold for name, op in operating_points(e.name).items()}
        ms = np.array(cost[m]) * 1e3
        print(f"\n== {e.name}: {np.median(ms):.1f} ms per face (median CPU time of the embedding, one core; "
              f"detection not included)")
        res: dict = {"name": e.name, "ms_per_face": float(np.median(ms)), "sets": {}}
        per_set_curves = {}
        for s in sets + ["pooled"]:
            sel = np.ones_like(same_set) if s == "pooled" else (c_set[:, None] == s) & same_set
            gen, imp = d[gen_mask & sel], d[imp_mask & sel]
            if not len(gen) or not len(imp):
                continue
            f = figures(gen, imp, ops)
            res["sets"][s] = f
            print_figures(s, f)
            per_set_curves[s] = (-gen, -imp)
        sel = np.broadcast_to(l_ok[None], same_set.shape)
        gen, imp = d[gen_mask & sel], d[imp_mask & sel]
        if len(gen) and len(imp):
            f = figures(gen, imp, ops)
            res["sets"]["pooled, live passes checks"] = f
            print(f"  pooled, live capture passes the comparison checks: gen {len(gen)}, EER {pct(f['EER'])}, "
                  f"FNMR at FMR 0.1% {pct(f['FMR0.001']['FNMR'])}")
        for fmt in ("jp2", "jpeg"):
            sel = c_fmt[:, None] == fmt
            gen, imp = d[gen_mask & sel], d[imp_mask & sel]
            if len(gen) and len(imp):
                f = figures(gen, imp, ops)
                res["sets"][f"pooled, chip {fmt}"] = f
                print(f"  pooled, chip {fmt}: EER {pct(f['EER'])}, FNMR at FMR 0.1% {pct(f['FMR0.001']['FNMR'])}")
        report["models"][m] = res
        det_plot(per_set_curves, out / f"det_{m}.png", title=f"Desk protocol (chip DG2 vs live), {e.name}")
        curves[e.name] = per_set_curves["pooled"]
        np.savez_compressed(out / f"scores_{m}.npz", genuine=d[gen_mask], impostor=d[imp_mask],
                            chip_image=c_img, live_image=l_img, live_ok=l_ok, chip=C, live=L)
    if len(curves) > 1:
        det_plot(curves, out / "det_models.png", title="Desk protocol, pooled: models side by side")
    (out / "desk.json").write_text(json.dumps(report, indent=1, default=float))
    print(f"\nwritten: {out}/desk.json, DET plots det_*.png, distances scores_*.npz")


if __name__ == "__main__":
    main()
