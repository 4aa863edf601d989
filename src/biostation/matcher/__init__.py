"""Fingerprint comparison: 1:1 scores and 1:N scoring over packed galleries.

>>> from biostation import matcher
>>> probe = matcher.prepare(template_a)            # once per probe (about 1 ms)
>>> matcher.match(probe, template_b)               # int score, 0..35679
>>> matcher.match_many(probe, gallery)             # int32 scores against a PackedGallery

**Backends.** The comparison runs in C (``_native``, built from ``native/``) when it was built,
else in numpy (:mod:`._reference`, the executable specification). The choice is made once, at
import; ``BACKEND`` names it (``"native"`` or ``"numpy"``). ``BIOSTATION_PUREPYTHON=1`` (the
``purepython`` setting) forces numpy. Both give the same integer scores, bit for bit.

**Scores** are integers from 0 to ``params.SCORE_MAX`` (35679), symmetric
(``match(a, b) == match(b, a)``), and 0 when either template is empty. ``params.SCORE_SCALE``
(10000) is the score of two templates whose overlapping minutiae all pair at half local
similarity; ``SCORE_MAX`` needs every one to pair perfectly (a template against itself). Nothing
clamps scores, so strong genuine candidates keep distinct scores and a 1:N search ranks them by
score (same-finger pairs of FVC2002 B reach about 20000). Templates at any resolution compare at the same scale (each is scaled to
``params.REF_DPI`` when prepared); a template that fails validation raises
:class:`~biostation.errors.MatcherError`.

**Thresholds** (decide "same finger" when ``score >= threshold``). Measured on FVC2002 DB1..DB4
set B, all-pairs protocol, impostors pooled over the four databases (11,520 comparisons), with
``biostation bench fvc`` (its ``calibration`` output):

============  ==========================  =================================  ==============
target FMR    SecuGen ISO templates       biostation extractor templates     ``THRESHOLDS``
============  ==========================  =================================  ==============
1 %           1415 (measured 0.998 %)     1729 (measured 0.998 %)            1729
0.1 %         2033 (measured 0.095 %)     2440 (measured 0.095 %)            2440
0.01 %        2924 (1 impostor above)     3182 (1 impostor above)            3182
============  ==========================  =================================  ==============

``THRESHOLDS`` takes the higher of the two (FMR at most the target for both template sources).
0.01 % rests on a single impostor comparison: treat it as an estimate, and re-measure on your own
population before relying on it. For scale: FMR100 (the FNMR at FMR <= 1 %, each database at
its own threshold) averages 1.6 % with extractor templates and 3.2 % with SecuGen ones.

**Cost and threads.** One comparison costs about 8 microseconds of CPU in C and about 45 in
batched numpy (``match_many``); a single ``match`` call adds Python overhead (see
``biostation bench throughput``). Preparing a template costs about 1-3 ms. Prepared templates and galleries are immutable;
every function here is thread-safe, and the C kernels release the GIL while they run.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np

from ..config import get_settings
from ..templates.model import Template
from . import _reference, params
from .prepare import PackedGallery, SearchTemplate, pack, prepare

_native_backend: ModuleType | None
try:
    from . import _cbackend as _native_backend
except ImportError:  # not built: the numpy specification serves
    _native_backend = None

_impl: ModuleType = _reference if (get_settings().purepython or _native_backend is None) else _native_backend
#: the comparison backend chosen at import: "native" or "numpy"
BACKEND: str = _impl.NAME

#: operating points: target false match rate -> score threshold (see the module docstring)
THRESHOLDS: dict[str, int] = {"FMR_1e-2": 1729, "FMR_1e-3": 2440, "FMR_1e-4": 3182}


def backends() -> dict[str, ModuleType]:
    """Every backend available in this build, by name (the tests run on each)."""
    out = {"numpy": _reference}
    if _native_backend is not None:
        out["native"] = _native_backend
    return out


def _search(t: Template | SearchTemplate) -> SearchTemplate:
    return t if isinstance(t, SearchTemplate) else prepare(t)


def match(probe: Template | SearchTemplate, candidate: Template | SearchTemplate) -> int:
    """Similarity of two fingerprints, 0..params.SCORE_MAX (integer; higher = more similar).

    Pass :class:`SearchTemplate` objects (from :func:`prepare`) to avoid preparing again.
    """
    return int(_impl.score(_search(probe), _search(candidate)))


def match_many(probe: Template | SearchTemplate, gallery: PackedGallery, index: np.ndarray | None = None) -> np.ndarray:
    """Scores of ``probe`` against every entry of ``gallery`` (or the entries in ``index``), int32."""
    return _impl.score_many(_search(probe), gallery, index)


def screen_many(probe: Template | SearchTemplate, gallery: PackedGallery, index: np.ndarray | None = None,
                top: int = 8) -> np.ndarray:
    """Local-similarity screen scores of ``probe`` against every entry of ``gallery`` (or those in
    ``index``), int32, higher = more alike: each probe minutia's best local similarity (the first
    step of a comparison) summed over the ``top`` best minutiae. About twenty times cheaper than
    :func:`match_many` in C on CPUs with AVX-512 VPOPCNTDQ, about three times elsewhere; both
    backends give the same integers. 1:N search screens with it (``identify.screening``)."""
    return _impl.screen_many(_search(probe), gallery, index, top)


__all__ = ["BACKEND", "THRESHOLDS", "PackedGallery", "SearchTemplate", "backends", "match", "match_many", "pack",
           "params", "prepare", "screen_many"]
