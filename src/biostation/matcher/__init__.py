"""Fingerprint comparison: 1:1 scores and 1:N scoring over packed galleries.

>>> from biostation import matcher
>>> probe = matcher.prepare(template_a)            # once per probe (about 1 ms)
>>> matcher.match(probe, template_b)               # int score, 0..10000
>>> matcher.match_many(probe, gallery)             # int32 scores against a PackedGallery

**Backends.** The comparison runs in C (``_native``, built from ``native/``) when it was built,
else in numpy (:mod:`._reference`, the executable specification). The choice is made once, at
import; ``BACKEND`` names it (``"native"`` or ``"numpy"``). ``BIOSTATION_PUREPYTHON=1`` (the
``purepython`` setting) forces numpy. Both give the same integer scores, bit for bit.

**Scores** are integers from 0 to ``params.SCORE_SCALE`` (10000), symmetric
(``match(a, b) == match(b, a)``), and 0 when either template is empty. Templates at any
resolution compare at the same scale (each is scaled to ``params.REF_DPI`` when prepared);
a template that fails validation raises :class:`~biostation.errors.MatcherError`.

**Thresholds** (decide "same finger" when ``score >= threshold``), measured on FVC2002 DB1..DB4
set B, SecuGen ISO templates, all-pairs protocol (11,520 impostor comparisons), see
``THRESHOLDS`` and the table in the README; re-measure with ``biostation bench fvc``.

**Cost and threads.** One comparison costs about 10 microseconds in C and about 50 in batched
numpy (see ``biostation bench throughput``). Prepared templates and galleries are immutable;
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

#: threshold -> false match rate measured on FVC2002 B (SecuGen ISO templates, all-pairs impostors)
THRESHOLDS: dict[str, int] = {}


def backends() -> dict[str, ModuleType]:
    """Every backend available in this build, by name (the tests run on each)."""
    out = {"numpy": _reference}
    if _native_backend is not None:
        out["native"] = _native_backend
    return out


def _search(t: Template | SearchTemplate) -> SearchTemplate:
    return t if isinstance(t, SearchTemplate) else prepare(t)


def match(probe: Template | SearchTemplate, candidate: Template | SearchTemplate) -> int:
    """Similarity of two fingerprints, 0..SCORE_SCALE (integer; higher = more similar).

    Pass :class:`SearchTemplate` objects (from :func:`prepare`) to avoid preparing again.
    """
    return int(_impl.score(_search(probe), _search(candidate)))


def match_many(probe: Template | SearchTemplate, gallery: PackedGallery, index: np.ndarray | None = None) -> np.ndarray:
    """Scores of ``probe`` against every entry of ``gallery`` (or the entries in ``index``), int32."""
    return _impl.score_many(_search(probe), gallery, index)


__all__ = ["BACKEND", "THRESHOLDS", "PackedGallery", "SearchTemplate", "backends", "match", "match_many", "pack",
           "params", "prepare"]
