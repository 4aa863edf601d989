"""Matcher throughput, both backends side by side in one run (the same as ``biostation bench
throughput``):

    .venv/bin/python benchmarks/bench_match.py --gallery 2000 --json out/throughput.json

Prints 1:1 comparisons per second (batched against a packed gallery, and per Python call), 1:N
searches per second through the local gallery, native/numpy ratios, and bytes per template.
"""

from __future__ import annotations

import sys

from biostation.cli import app

if __name__ == "__main__":
    sys.exit(app(["bench", "throughput", *sys.argv[1:]]))
