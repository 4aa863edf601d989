"""The C kernels (``_native``) behind the same interface as :mod:`._reference`.

Importing this module imports ``_native`` (ImportError when it was not built) and hands it the
tuned numbers of :mod:`.params` and the lookup tables of :mod:`.prepare`, so the C code holds no
number of its own. Arrays are normalized here (contiguous, native byte order, exact dtypes)
before they reach C; the C side checks them again and raises TypeError/ValueError.
"""

from __future__ import annotations

import numpy as np

from . import _native
from . import params as P
from .prepare import ATAN_TABLE, COS_TABLE, SIN_TABLE, PackedGallery, SearchTemplate

NAME = "native"


def configure() -> None:
    """(Re)load params and tables into the C module; call again after changing :mod:`.params`."""
    values = tuple(int(getattr(P, name)) for name in _native.PARAM_NAMES)
    _native.configure(values, np.ascontiguousarray(COS_TABLE, np.int64), np.ascontiguousarray(SIN_TABLE, np.int64),
                      np.ascontiguousarray(ATAN_TABLE, np.int64))


configure()


def _arrays(s: SearchTemplate) -> tuple:
    c = np.ascontiguousarray
    return (c(s.x, np.int32), c(s.y, np.int32), c(s.t, np.int32), c(s.desc, np.uint64), c(s.cnt, np.int32),
            c(s.w, np.int32), int(s.key))


def score(a: SearchTemplate, b: SearchTemplate) -> int:
    return _native.score_pair(*_arrays(a), *_arrays(b))


def score_pairs(left: list[SearchTemplate], right: list[SearchTemplate]) -> np.ndarray:
    return np.array([score(a, b) for a, b in zip(left, right)], np.int32)


def _many(kernel, probe: SearchTemplate, gallery: PackedGallery, index: np.ndarray | None, *extra: int) -> np.ndarray:
    ids = np.arange(len(gallery), dtype=np.int64) if index is None else np.ascontiguousarray(index, np.int64)
    out = np.zeros(len(ids), np.int32)
    c = np.ascontiguousarray
    kernel(*_arrays(probe), c(gallery.x, np.int32), c(gallery.y, np.int32), c(gallery.t, np.int32),
           c(gallery.desc, np.uint64), c(gallery.cnt, np.int32), c(gallery.w, np.int32), c(gallery.offsets, np.int64),
           c(gallery.keys, np.uint64), ids, out, *extra)
    return out


def score_many(probe: SearchTemplate, gallery: PackedGallery, index: np.ndarray | None = None) -> np.ndarray:
    return _many(_native.score_many, probe, gallery, index)


def screen_many(probe: SearchTemplate, gallery: PackedGallery, index: np.ndarray | None = None,
                top: int = 8) -> np.ndarray:
    return _many(_native.screen_many, probe, gallery, index, int(top))
