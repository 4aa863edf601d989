"""FVC accuracy of the matcher: the shared evaluation helpers and a runnable benchmark.

    .venv/bin/python benchmarks/accuracy.py ../shared/data/fvc2002 \
        --templates ../shared/data/fvc2002/iso_secugen --json out/fvc.json --det out/det.png

(the same as ``biostation bench fvc``). Helpers for other benchmarks: ``fvc_eer``, ``summarize``
(EER, FMR100, FMR1000, ZeroFMR), ``protocol_pairs`` ("fvc" / "all-pairs"), ``det_plot``,
``threshold_table``; they live in :mod:`biostation.matcher.evaluation`, ``run_fvc`` in
:mod:`biostation.evaluation`, so the CLI has them too.
"""

from __future__ import annotations

from biostation.evaluation import run_fvc
from biostation.matcher.evaluation import (
    det_plot,
    fnmr_at_fmr,
    fvc_eer,
    parse_name,
    protocol_pairs,
    summarize,
    threshold_table,
)

__all__ = ["det_plot", "fnmr_at_fmr", "fvc_eer", "parse_name", "protocol_pairs", "run_fvc", "summarize",
           "threshold_table"]

if __name__ == "__main__":
    import sys

    from biostation.cli import app

    sys.exit(app(["bench", "fvc", *sys.argv[1:]]))
