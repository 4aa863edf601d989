"""Evaluation helpers (FVC EER definition, protocols) and the bench CLI verbs."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from biostation.cli import app
from biostation.matcher.evaluation import fvc_eer, protocol_pairs, summarize, threshold_table


def test_fvc_eer_definition():
    g, i = np.array([5, 6, 7, 8, 9.0]), np.array([1, 2, 3, 6, 4.0])
    eer, lo, hi = fvc_eer(g, i)
    assert (lo, hi) == (0.2, 0.2) and abs(eer - 0.2) < 1e-12
    assert fvc_eer(np.array([10.0, 11]), np.array([1.0, 2]))[0] == 0.0
    assert fvc_eer(np.array([1.0, 2]), np.array([5.0, 6]))[0] == 1.0
    s = summarize(np.array([10.0, 11, 3]), np.array([1.0, 2, 4]))
    assert abs(s["ZeroFMR"] - 100 / 3) < 1e-9 and s["genuine"] == 3


def test_protocol_counts_match_the_readme():
    names = [f"{f}_{k}.tif" for f in range(101, 111) for k in range(1, 9)]
    g, i = protocol_pairs(names, "fvc")
    assert (len(g), len(i)) == (280, 45)
    g, i = protocol_pairs(names, "all-pairs")
    assert (len(g), len(i)) == (280, 2880)


def test_threshold_table_is_conservative():
    imp = np.arange(1000.0)
    rows = threshold_table(imp, fmrs=(0.01, 0.001))
    assert [r["measured_fmr"] for r in rows] == [0.01, 0.001]


def test_bench_fvc_cli_on_secugen_db1(shared, tmp_path):
    root = shared / "data" / "fvc2002"
    out, det = tmp_path / "fvc.json", tmp_path / "det.png"
    res = CliRunner().invoke(app, ["bench", "fvc", str(root / "DB1_B"), "--templates", str(root / "iso_secugen"),
                                   "--json", str(out), "--det", str(det)])
    assert res.exit_code == 0, res.output
    report = json.loads(out.read_text())
    db = report["databases"]["DB1_B"]
    assert db["all-pairs"]["genuine"] == 280 and db["all-pairs"]["impostor"] == 2880
    assert db["fvc"]["impostor"] == 45
    assert db["all-pairs"]["EER"] < 5.0  # measured 1.25 % at commit time
    assert det.stat().st_size > 10_000


def test_bench_throughput_small_gallery(shared):
    """Both backends side by side; with unclamped scores every probe finds its own entry first."""
    from biostation.evaluation import run_throughput

    r = run_throughput(gallery_size=200, probes=4, pairs=100)
    assert r["gallery"] == 200 and r["gallery_bytes_per_template"] > 0
    for name, b in r["backends"].items():
        k = 4 if name == "native" else 2
        assert b["batch_comparisons_per_s"] > 0 and b["search_rank1_self_hits"] == f"{k}/{k}", (name, b)
