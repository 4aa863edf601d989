"""Search templates: the matcher's in-memory form of a :class:`~biostation.templates.Template`.

Built once per template (probe once per search, each gallery entry once at enrolment) and never
serialized. Both backends read the same arrays, so preparation is plain numpy shared by both;
only the comparison kernels differ (:mod:`._reference` and the C module ``_native``).

A search template holds, for its ``n`` minutiae in canonical order (y, then x, then direction):

* ``x``, ``y``: int32 pixel coordinates scaled to :data:`.params.REF_DPI`;
* ``t``: int32 direction codes, :data:`.params.ANGLE_STEPS` per turn;
* ``desc``: uint64 ``(n, DESC_WORDS)`` binary neighbourhood codes: which cells of a grid laid
  in the minutia's own frame (rotation and translation invariant) hold a neighbour, and of which
  relative direction; ``cnt``: their popcounts;
* ``w``: int32 overlap weights, 1..:data:`.params.WEIGHT_STEPS`, from the minutiae's quality
  (see :data:`.params.QUALITY_FULL`);
* ``key``: a 64-bit digest of the geometry, which (with ``n``) fixes the order in which a pair of
  templates is compared, so that ``score(a, b) == score(b, a)`` bit for bit.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np

from ..errors import MatcherError, TemplateError
from ..templates.model import Template
from . import params as P

# The tables use the C library's cos/sin/atan (through ``math``) and round half up, exactly as
# native/matcher.c builds its own copies; tests/native checks that the two agree entry for entry.
_ONE = 1 << P.TRIG_BITS
#: fixed-point rotation tables, ``floor(cos(2 pi r / 256) * 2**TRIG_BITS + 0.5)``
COS_TABLE = np.array([math.floor(math.cos(2 * math.pi * r / P.ANGLE_STEPS) * _ONE + 0.5)
                      for r in range(P.ANGLE_STEPS)], np.int64)
SIN_TABLE = np.array([math.floor(math.sin(2 * math.pi * r / P.ANGLE_STEPS) * _ONE + 0.5)
                      for r in range(P.ANGLE_STEPS)], np.int64)
#: arctangent over [0, 1] in direction codes: ``floor(atan(k / ATAN_RES) * 128 / pi + 0.5)``
ATAN_TABLE = np.array([math.floor(math.atan(k / P.ATAN_RES) * (P.ANGLE_STEPS / 2) / math.pi + 0.5)
                       for k in range(P.ATAN_RES + 1)], np.int64)


@dataclass(frozen=True, eq=False)
class SearchTemplate:
    """One prepared template (see the module docstring). Immutable; safe to share across threads."""

    x: np.ndarray
    y: np.ndarray
    t: np.ndarray
    desc: np.ndarray
    cnt: np.ndarray
    w: np.ndarray
    key: int

    @property
    def n(self) -> int:
        return int(self.x.shape[0])

    @property
    def nbytes(self) -> int:
        """Memory held, in bytes (arrays plus object overhead)."""
        return int(self.x.nbytes + self.y.nbytes + self.t.nbytes + self.desc.nbytes + self.cnt.nbytes
                   + self.w.nbytes) + 200


def _descriptors(x: np.ndarray, y: np.ndarray, t: np.ndarray) -> np.ndarray:
    n = len(x)
    words = np.zeros((n, P.DESC_WORDS), np.uint64)
    if n == 0:
        return words
    theta = t.astype(np.float64) * (2 * math.pi / P.ANGLE_STEPS)
    dx = (x[None, :] - x[:, None]).astype(np.float64)  # [i, j]: neighbour j seen from i
    dy = (y[None, :] - y[:, None]).astype(np.float64)
    c, s = np.cos(theta)[:, None], np.sin(theta)[:, None]
    # frame of minutia i: u along its direction (cos a, -sin a), v to its left
    u = dx * c - dy * s
    v = -dx * s - dy * c
    rel = (t[None, :] - t[:, None]) % P.ANGLE_STEPS
    near = (dx * dx + dy * dy) <= (P.DESC_RADIUS + P.DESC_SPREAD) ** 2
    np.fill_diagonal(near, False)
    cell = 2 * P.DESC_RADIUS / P.DESC_CELLS
    centres = -P.DESC_RADIUS + (np.arange(P.DESC_CELLS) + 0.5) * cell
    du = u[:, :, None] - centres  # [i, j, cu]
    dv = v[:, :, None] - centres  # [i, j, cv]
    inside = (du[:, :, :, None] ** 2 + dv[:, :, None, :] ** 2) <= P.DESC_SPREAD ** 2  # [i, j, cu, cv]
    bin_width = P.ANGLE_STEPS // P.DESC_DIR_BINS
    bin_centres = np.arange(P.DESC_DIR_BINS) * bin_width + bin_width // 2
    dd = (rel[:, :, None] - bin_centres) % P.ANGLE_STEPS
    dd = np.minimum(dd, P.ANGLE_STEPS - dd)
    dir_ok = dd <= P.DESC_DIR_SPREAD  # [i, j, d]
    bits = (inside[:, :, :, :, None] & dir_ok[:, :, None, None, :] & near[:, :, None, None, None]).any(axis=1)
    flat = bits.reshape(n, -1)  # [i, cu*cv*d]
    packed = np.packbits(flat, axis=1, bitorder="little")  # bytes, little-endian bit order
    return packed.view("<u8").astype(np.uint64).reshape(n, P.DESC_WORDS)


def prepare(template: Template) -> SearchTemplate:
    """Build the search form of ``template`` (cost: O(n^2) numpy; about 1 ms for 50 minutiae).

    Raises :class:`~biostation.errors.MatcherError` for a template that fails validation.
    An empty template is fine: it matches nothing (score 0).
    """
    try:
        template.validate()
    except TemplateError as exc:
        raise MatcherError(f"template cannot be matched: {exc}") from None
    m = template.minutiae
    scale = P.REF_DPI / float(template.dpi)
    x = np.floor(m["x"].astype(np.float64) * scale + 0.5).astype(np.int32)
    y = np.floor(m["y"].astype(np.float64) * scale + 0.5).astype(np.int32)
    t = (np.floor(m["angle"].astype(np.float64) * (P.ANGLE_STEPS / (2 * math.pi)) + 0.5).astype(np.int64)
         % P.ANGLE_STEPS).astype(np.int32)
    if len(x) and max(int(x.max()), int(y.max())) > P.MAX_COORD:
        raise MatcherError(f"template spans more than {P.MAX_COORD} pixels at {P.REF_DPI:g} dpi; not a fingerprint")
    q = m["quality"].astype(np.int64)
    # round(WEIGHT_STEPS * q / QUALITY_FULL) in integers, clipped to 1..WEIGHT_STEPS; 0 = unreported
    w = np.clip((2 * P.WEIGHT_STEPS * q + P.QUALITY_FULL) // (2 * P.QUALITY_FULL), 1, P.WEIGHT_STEPS)
    w = np.where(q == 0, P.WEIGHT_STEPS, w).astype(np.int32)
    order = np.lexsort((t, x, y))
    x, y, t, w = (np.ascontiguousarray(a[order]) for a in (x, y, t, w))
    desc = _descriptors(x, y, t)
    cnt = np.bitwise_count(desc).sum(axis=1).astype(np.int32) if len(x) else np.zeros(0, np.int32)
    h = hashlib.blake2b(digest_size=8)
    for a in (x, y, t):
        h.update(a.astype("<i4").tobytes())
    key = int.from_bytes(h.digest(), "little")
    return SearchTemplate(x=x, y=y, t=t, desc=desc, cnt=cnt, w=w, key=key)


@dataclass(frozen=True, eq=False)
class PackedGallery:
    """Many search templates in flat arrays (CSR layout): what a gallery shard holds.

    Minutiae of template ``g`` are rows ``offsets[g]:offsets[g + 1]`` of ``x, y, t, desc, cnt, w``;
    ``keys[g]`` is its ordering digest. Plain ndarrays only, so a shard can be saved with numpy,
    memory-mapped, or sent to another process as is.
    """

    x: np.ndarray
    y: np.ndarray
    t: np.ndarray
    desc: np.ndarray
    cnt: np.ndarray
    w: np.ndarray
    offsets: np.ndarray
    keys: np.ndarray

    def __len__(self) -> int:
        return int(self.offsets.shape[0] - 1)

    @property
    def nbytes(self) -> int:
        return int(sum(a.nbytes for a in (self.x, self.y, self.t, self.desc, self.cnt, self.w, self.offsets,
                                          self.keys)))

    def get(self, g: int) -> SearchTemplate:
        a, b = int(self.offsets[g]), int(self.offsets[g + 1])
        return SearchTemplate(x=self.x[a:b], y=self.y[a:b], t=self.t[a:b], desc=self.desc[a:b], cnt=self.cnt[a:b],
                              w=self.w[a:b], key=int(self.keys[g]))


def pack(templates: list[SearchTemplate]) -> PackedGallery:
    """Concatenate prepared templates into one :class:`PackedGallery`."""
    counts = np.array([s.n for s in templates], np.int64)
    offsets = np.zeros(len(templates) + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])

    def cat(name: str, dtype, shape=()) -> np.ndarray:
        parts = [getattr(s, name) for s in templates]
        return np.ascontiguousarray(np.concatenate(parts).astype(dtype) if parts else np.zeros((0, *shape), dtype))

    return PackedGallery(x=cat("x", np.int32), y=cat("y", np.int32), t=cat("t", np.int32),
                         desc=cat("desc", np.uint64, (P.DESC_WORDS,)).reshape(-1, P.DESC_WORDS),
                         cnt=cat("cnt", np.int32), w=cat("w", np.int32), offsets=offsets,
                         keys=np.array([s.key for s in templates], np.uint64))
