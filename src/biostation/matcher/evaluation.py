"""Accuracy figures as the Fingerprint Verification Competitions define them.

Scores are similarities (higher = more alike); a comparison is accepted when
``score >= threshold``, so ``FMR(t) = P(impostor >= t)`` and ``FNMR(t) = P(genuine < t)``.

* EER as FVC defines it (Maio et al., "FVC2000: Fingerprint Verification Competition", IEEE
  TPAMI 24(3), 2002, section 4): ``t1 = max{t : FNMR(t) <= FMR(t)}``, ``t2 = min{t : FNMR(t) >=
  FMR(t)}``; the EER interval is ``[FNMR(t1), FMR(t1)]`` if ``FNMR(t1) + FMR(t1) <= FMR(t2) +
  FNMR(t2)``, else ``[FMR(t2), FNMR(t2)]``; EER is its midpoint.
* FMR100 / FMR1000: the lowest FNMR at a threshold where FMR <= 1 % / 0.1 %; ZeroFMR: the
  lowest FNMR where FMR = 0 (FVC2002 report).

Protocols on a database of ``<finger>_<impression>`` samples (``../shared/data/fvc2002/README.md``):
``fvc`` (genuine: every pair of impressions of a finger; impostor: first impressions of
different fingers) and ``all-pairs`` (the same genuine pairs, every cross-finger pair as impostor).
All pairs are unordered: the matcher is symmetric.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np


def _rates(genuine: np.ndarray, impostor: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    g = np.sort(np.asarray(genuine, np.float64))
    i = np.sort(np.asarray(impostor, np.float64))
    if not len(g) or not len(i):
        raise ValueError("need genuine and impostor scores")
    ts = np.unique(np.concatenate([g, i, [max(g[-1], i[-1]) + 1]]))
    fmr = (len(i) - np.searchsorted(i, ts, side="left")) / len(i)  # P(imp >= t)
    fnmr = np.searchsorted(g, ts, side="left") / len(g)  # P(gen < t)
    return ts, fmr, fnmr


def fvc_eer(genuine: np.ndarray, impostor: np.ndarray) -> tuple[float, float, float]:
    """(EER, EERlow, EERhigh) as fractions, FVC definition."""
    ts, fmr, fnmr = _rates(genuine, impostor)
    # compare in integer counts: FNMR <= FMR  <=>  gen_below * n_imp <= imp_above * n_gen
    ng, ni = len(genuine), len(impostor)
    fn_count = np.rint(fnmr * ng).astype(np.int64) * ni
    fm_count = np.rint(fmr * ni).astype(np.int64) * ng
    below = np.nonzero(fn_count <= fm_count)[0]
    above = np.nonzero(fn_count >= fm_count)[0]
    t1 = below[-1] if len(below) else 0
    t2 = above[0] if len(above) else len(ts) - 1
    if fnmr[t1] + fmr[t1] <= fmr[t2] + fnmr[t2]:
        lo, hi = fnmr[t1], fmr[t1]
    else:
        lo, hi = fmr[t2], fnmr[t2]
    lo, hi = min(lo, hi), max(lo, hi)
    return (lo + hi) / 2, lo, hi


def fnmr_at_fmr(genuine: np.ndarray, impostor: np.ndarray, max_fmr: float) -> tuple[float, float]:
    """(lowest FNMR with FMR <= max_fmr, the threshold that gives it)."""
    ts, fmr, fnmr = _rates(genuine, impostor)
    ok = np.nonzero(fmr <= max_fmr)[0]
    k = ok[np.argmin(fnmr[ok])]
    return float(fnmr[k]), float(ts[k])


def summarize(genuine: np.ndarray, impostor: np.ndarray) -> dict:
    """EER (with its interval), FMR100, FMR1000, ZeroFMR and counts; rates in percent."""
    eer, lo, hi = fvc_eer(genuine, impostor)
    out = {"genuine": int(len(genuine)), "impostor": int(len(impostor)), "EER": 100 * eer,
           "EER_low": 100 * lo, "EER_high": 100 * hi}
    for name, target in (("FMR100", 0.01), ("FMR1000", 0.001), ("ZeroFMR", 0.0)):
        v, t = fnmr_at_fmr(genuine, impostor, target)
        out[name] = 100 * v
        out[name + "_threshold"] = t
    return out


def threshold_table(impostor: np.ndarray, fmrs=(1e-2, 1e-3, 1e-4)) -> list[dict]:
    """Lowest thresholds whose measured FMR is at most each target (the calibration table)."""
    i = np.sort(np.asarray(impostor, np.float64))
    rows = []
    for target in fmrs:
        allowed = int(np.floor(target * len(i)))  # impostors allowed at or above the threshold
        t = i[len(i) - allowed - 1] + 1 if allowed < len(i) else i[0]
        rows.append({"target_fmr": target, "threshold": float(t), "measured_fmr": float((i >= t).mean()),
                     "resolvable": bool(target * len(i) >= 1)})
    return rows


def parse_name(name: str) -> tuple[str, int]:
    """``'101_3.tif'`` -> (``'101'``, 3)."""
    stem = Path(name).stem
    finger, _, imp = stem.rpartition("_")
    if not finger or not imp.isdigit():
        raise ValueError(f"{name!r} is not named <finger>_<impression>")
    return finger, int(imp)


def protocol_pairs(names: list[str], protocol: str) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(genuine, impostor) index pairs of ``names`` under ``'fvc'`` or ``'all-pairs'``."""
    keys = [parse_name(n) for n in names]
    genuine, impostor = [], []
    for a, b in itertools.combinations(range(len(names)), 2):
        same = keys[a][0] == keys[b][0]
        if same:
            genuine.append((a, b))
        elif protocol == "all-pairs":
            impostor.append((a, b))
        elif protocol == "fvc":
            first = min(k[1] for k in keys if k[0] == keys[a][0]), min(k[1] for k in keys if k[0] == keys[b][0])
            if (keys[a][1], keys[b][1]) == first:
                impostor.append((a, b))
        else:
            raise ValueError(f"unknown protocol {protocol!r}")
    return genuine, impostor


def det_plot(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: str | Path, title: str = "") -> None:
    """Draw DET curves (FNMR against FMR, log-log) for ``{label: (genuine, impostor)}``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 5.2), dpi=110)
    for label, (g, i) in curves.items():
        _, fmr, fnmr = _rates(g, i)
        shown = (fmr > 0) & (fnmr > 0)  # zero rates have no place on log axes
        ax.step(fmr[shown] * 100, fnmr[shown] * 100, where="post",
                label=f"{label} (EER {100 * fvc_eer(g, i)[0]:.2f} %)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("FMR (%)")
    ax.set_ylabel("FNMR (%)")
    ax.plot([1e-2, 100], [1e-2, 100], color="grey", lw=0.6, ls=":")
    ax.grid(True, which="both", lw=0.3)
    ax.set_title(title or "DET")
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
