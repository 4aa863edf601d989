"""The first stage of a 1:N search, so that the full matcher only scores a shortlist: a
fixed-length binary code per template scanned by Hamming distance (``screen="codes"``), the
matcher's own local similarities (``screen="local"``, :func:`local_shortlist`), or both in a
cascade (``screen="cascade"``, :func:`cascade_shortlist`: the codes shortlist, the local screen
ranks only that).

>>> from biostation.identify import screening
>>> code = screening.code(matcher.prepare(template))     # uint8[CODE_BYTES]
>>> index = screening.ScreeningIndex(codes)               # codes: uint8 (n, CODE_BYTES)
>>> index.shortlist(code, 5000)                           # int64 row numbers, ascending
>>> screening.local_shortlist(probe, packed_gallery, 5000)  # the local screen's, ascending
>>> screening.cascade_shortlist(probe, packed_gallery, index, 200_000, 1000)  # codes, then local

**The code** is built from the minutiae geometry only (what any template has, whatever extractor
made it, and whatever the matcher's scoring does with it): for every pair of minutiae between
:data:`.params.PAIR_MIN_DIST` and :data:`.params.PAIR_MAX_DIST` apart, the pair's length and the
direction of each end relative to the segment joining them; these three numbers do not change
when the finger is moved or turned on the sensor. The pairs vote (soft, trilinear) into a
:data:`.params.CODE_BITS`-cell histogram, and the code sets the bit of each cell above the
template's :data:`.params.CODE_SET_BITS` strongest cells: every code has that many bits set, so the
Hamming distance of two codes is a fixed number minus twice their overlap, and ranking by Hamming
distance is ranking by overlap. (Setting fewer than half the bits matters: the weak cells of a
histogram are the ones that a partial overlap or a few missed minutiae change, and a cut at the
median let them decide half the code.)
No data is learned: no model file, nothing to retrain when the matcher or the extractor changes.

**The scan** is a flat (exhaustive) binary index of `faiss <https://github.com/facebookresearch/faiss>`_
(``faiss-cpu``, run on one thread): its popcount kernels scan tens of millions of 96-byte codes per second on one
core, which is what a first stage needs; an approximate index (IVF, HNSW) would add a recall loss
of its own on top of the code's. ``usearch``'s exact search computes Tanimoto and Hamming
distances too, but its exact (brute-force) path measured more than ten times slower here.

**Cost.** Coding a template costs about 0.5 ms (numpy); the index holds :data:`.params.CODE_BYTES`
bytes per template. The index is immutable once built; :meth:`ScreeningIndex.shortlist` is
thread-safe (faiss releases the GIL while it scans).

**The local screen** pools nothing: for each probe minutia it takes the best local similarity
(the matcher's first step: the Dice coefficient of the neighbourhood codes, directions gated) over
the reference's minutiae, and sums the :data:`.params.LOCAL_SCREEN_TOP` best
(:func:`biostation.matcher.screen_many`, the "local similarity sort" idea of Cappelli, Ferrara
and Maltoni's Minutia Cylinder-Code, IEEE TPAMI 32(12), 2010, on this matcher's descriptors). A
code pools every pair of the finger into one histogram, so a mate seen through a small or
shifted overlap drowns among strangers; the local screen only needs a few minutiae of the overlap
to agree. It reads the gallery's own packed arrays (no index, no memory of its own) and costs
about a thirtieth of a comparison (0.35 us a reference on one core with AVX-512 VPOPCNTDQ, about
3 us without), against about 10 ns for a code: it trades scan rate for a far smaller shortlist.

**The cascade** pays the local screen's price on the codes' shortlist only: the codes lose mates
in the long tail (a few percent of them rank beyond 10 %), so they keep a generous share, and the
local screen, which ranks the surviving mates near the top, cuts that share down to what the
matcher re-ranks. At 10^6 references the codes' scan is some 10 ms, the local screen on 10 % of
the gallery about 35 ms, and the matcher on 0.1 % about 13 ms (see docs/capacity-plan.md).
"""

from __future__ import annotations

import math

import numpy as np

from .. import matcher
from ..matcher import params as MP
from ..matcher.prepare import PackedGallery, SearchTemplate
from . import params as P

_ND, _NA = P.PAIR_DIST_BINS, P.PAIR_ANGLE_BINS
_TURN = 2 * math.pi


def histogram(s: SearchTemplate) -> np.ndarray:
    """The soft pair histogram the code is cut from, float64 ``(CODE_BITS,)``."""
    h = np.zeros(P.CODE_BITS)
    if s.n < 2:
        return h
    x, y = s.x.astype(np.float64), s.y.astype(np.float64)
    t = s.t.astype(np.float64) * (_TURN / MP.ANGLE_STEPS)
    dx, dy = x[None, :] - x[:, None], y[None, :] - y[:, None]
    d = np.hypot(dx, dy)
    keep = (d >= P.PAIR_MIN_DIST) & (d < P.PAIR_MAX_DIST)
    if not keep.any():
        return h
    phi = np.arctan2(-dy, dx)  # segment i -> j, counter-clockwise as minutia directions are
    ai = np.mod(t[:, None] - phi, _TURN)[keep]
    aj = np.mod(t[None, :] - phi, _TURN)[keep]
    fd = (d[keep] - P.PAIR_MIN_DIST) / (P.PAIR_MAX_DIST - P.PAIR_MIN_DIST) * _ND - 0.5
    fa, fb = ai / _TURN * _NA - 0.5, aj / _TURN * _NA - 0.5
    d0, a0, b0 = np.floor(fd), np.floor(fa), np.floor(fb)
    wd, wa, wb = fd - d0, fa - a0, fb - b0
    d0, a0, b0 = d0.astype(np.int64), a0.astype(np.int64), b0.astype(np.int64)
    for i, w1 in ((0, 1 - wd), (1, wd)):
        di = d0 + i
        ok = (di >= 0) & (di < _ND)  # distance bins do not wrap; angles do
        for j, w2 in ((0, 1 - wa), (1, wa)):
            aj_ = (a0 + j) % _NA
            for k, w3 in ((0, 1 - wb), (1, wb)):
                cell = (di * _NA + aj_) * _NA + (b0 + k) % _NA
                h += np.bincount(cell[ok], (w1 * w2 * w3)[ok], minlength=P.CODE_BITS)
    return h


def code(s: SearchTemplate) -> np.ndarray:
    """The screening code of one prepared template: uint8 ``(CODE_BYTES,)``, exactly
    :data:`.params.CODE_SET_BITS` bits set (ties at the cut by cell number: a template with fewer
    non-empty cells fills up with empty ones); an empty or one-minutia template: all zero, which
    screens as far from everything."""
    h = histogram(s)
    if not h.any():
        return np.zeros(P.CODE_BYTES, np.uint8)
    order = np.argsort(h, kind="stable")
    bits = np.zeros(P.CODE_BITS, bool)
    bits[order[P.CODE_BITS - P.CODE_SET_BITS:]] = True  # the strongest cells, ties by cell number
    return np.packbits(bits, bitorder="little")


def codes(templates: list[SearchTemplate]) -> np.ndarray:
    """Codes of many templates, uint8 ``(n, CODE_BYTES)``."""
    out = np.zeros((len(templates), P.CODE_BYTES), np.uint8)
    for i, s in enumerate(templates):
        out[i] = code(s)
    return out


def shortlist_size(gallery: int, penetration: float) -> int:
    """How many references a first stage at ``penetration`` passes on from ``gallery``."""
    if not 0 < penetration <= 1:
        raise ValueError(f"penetration must be in (0, 1], got {penetration!r}")
    return min(gallery, max(P.MIN_SHORTLIST, math.ceil(penetration * gallery)))


def top_rows(scores: np.ndarray, m: int) -> np.ndarray:
    """Row numbers of the ``m`` highest ``scores``, ascending; ties at the cut go to the earlier
    row (a partition, not a sort: linear in the number of rows)."""
    n = len(scores)
    m = min(int(m), n)
    if m <= 0:
        return np.zeros(0, np.int64)
    if m == n:
        return np.arange(n, dtype=np.int64)
    kth = np.partition(scores, n - m)[n - m]  # the m-th highest score
    above = np.flatnonzero(scores > kth)
    ties = np.flatnonzero(scores == kth)[:m - len(above)]
    return np.sort(np.concatenate([above, ties])).astype(np.int64)


def local_shortlist(probe: SearchTemplate, gallery: PackedGallery, m: int) -> np.ndarray:
    """The local screen: row numbers of the ``m`` references of ``gallery`` whose
    :func:`biostation.matcher.screen_many` scores (the best local similarities of
    :data:`.params.LOCAL_SCREEN_TOP` probe minutiae) are highest, ascending (ties: earlier row)."""
    if m >= len(gallery):
        return np.arange(len(gallery), dtype=np.int64)
    return top_rows(matcher.screen_many(probe, gallery, top=P.LOCAL_SCREEN_TOP), m)


def cascade_shortlist(probe: SearchTemplate, gallery: PackedGallery, index: ScreeningIndex, m_codes: int,
                      m: int) -> np.ndarray:
    """The cascade: of the ``m_codes`` rows whose codes are nearest the probe's (``index`` over
    ``gallery``'s codes, :meth:`ScreeningIndex.shortlist`), the ``m`` with the highest local screen
    scores (as :func:`local_shortlist`; ties: earlier row), ascending. The local screen, about a
    hundred times the codes' cost a reference, runs on the codes' shortlist only."""
    rows = index.shortlist(code(probe), m_codes)
    if m >= len(rows):
        return rows
    return rows[top_rows(matcher.screen_many(probe, gallery, rows, top=P.LOCAL_SCREEN_TOP), m)]


def _faiss():
    import faiss

    # one probe's scan is short: faiss's OpenMP team costs more than it saves (measured 7 ms
    # against 0.04 ms for 2,000 codes on 2 cores). Parallelism comes from shards and from
    # concurrent searches instead. This is process-wide for faiss.
    faiss.omp_set_num_threads(1)
    return faiss


def hamming(probe_code: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Hamming distance of one code to every row of ``codes``, int32, in row order (faiss's scan,
    no selection: for summing distances over several codes, as the ten-print first stage does)."""
    n = len(codes)
    out = np.empty(n, np.int32)
    if n:
        q = np.ascontiguousarray(probe_code, np.uint8).reshape(1, P.CODE_BYTES)
        c = np.ascontiguousarray(codes, np.uint8).reshape(n, P.CODE_BYTES)
        f = _faiss()
        f.hammings(f.swig_ptr(q), f.swig_ptr(c), 1, n, P.CODE_BYTES, f.swig_ptr(out))
    return out


class ScreeningIndex:
    """An exhaustive Hamming index over screening codes (rows in the order given)."""

    def __init__(self, codes: np.ndarray):
        codes = np.ascontiguousarray(codes, dtype=np.uint8).reshape(-1, P.CODE_BYTES)
        self._n = codes.shape[0]
        self._index = _faiss().IndexBinaryFlat(P.CODE_BITS)
        # counting selection instead of a heap: the same nearest rows, and it stays fast when the
        # shortlist is a large share of the gallery (measured on 1M codes, one core: 5 ms
        # against 13 ms at 10,000 rows, 17 ms against 200 ms at 630,000)
        self._index.use_heap = False
        if self._n:
            self._index.add(codes)

    def add(self, codes: np.ndarray) -> None:
        """Append rows (they take the next row numbers); not thread-safe against searches."""
        codes = np.ascontiguousarray(codes, dtype=np.uint8).reshape(-1, P.CODE_BYTES)
        if len(codes):
            self._index.add(codes)
            self._n += codes.shape[0]

    def __len__(self) -> int:
        return self._n

    @property
    def nbytes(self) -> int:
        """Bytes held by the codes (the index adds no per-template structure)."""
        return self._n * P.CODE_BYTES

    def distances(self, probe_code: np.ndarray) -> np.ndarray:
        """Hamming distance of ``probe_code`` to every row, int32 (for curves and tests)."""
        d, i = self._index.search(probe_code.reshape(1, -1), self._n)
        out = np.empty(self._n, np.int32)
        out[i[0]] = d[0]
        return out

    def shortlist(self, probe_code: np.ndarray, m: int) -> np.ndarray:
        """Row numbers of the ``m`` rows nearest ``probe_code``, in ascending row order (ties at
        the cut: faiss's order)."""
        m = min(int(m), self._n)
        if m <= 0:
            return np.zeros(0, np.int64)
        if m == self._n:
            return np.arange(self._n, dtype=np.int64)
        _, idx = self._index.search(np.ascontiguousarray(probe_code, np.uint8).reshape(1, -1), m)
        return np.sort(idx[0])
