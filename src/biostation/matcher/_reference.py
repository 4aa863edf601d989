"""The executable specification of the comparison: plain, vectorized numpy.

Everything here is integer arithmetic on the arrays of :mod:`.prepare`, so the C kernels in
``native/`` reproduce the scores bit for bit. The comparison of templates ``A`` and ``B``:

0. Order. If ``(n_B, key_B) < (n_A, key_A)`` the two swap roles: the score is symmetric.
   Either template empty: score 0.
1. Local similarity. For each minutia pair (i, j) whose directions differ by at most
   ``PAIR_MAX_DIR``: ``sim = 2 * SIM_SCALE * popcount(desc_A[i] & desc_B[j]) // (cnt_A[i] + cnt_B[j])``
   (a Dice coefficient of the neighbourhood codes); 0 when ``cnt_A[i] + cnt_B[j] < SIM_MIN_BITS``.
2. Candidates. The ``TOP_PAIRS`` pairs of highest ``sim > 0``, ties to the lower i, then j.
3. Consistency. Two candidate pairs (i1, j1), (i2, j2) with ``i1 != i2`` and ``j1 != j2`` are
   consistent when the segment i1-i2 in A and j1-j2 in B have the same length (within
   ``CONS_DIST_ABS`` or ``CONS_DIST_REL``/512 of the summed length), the same direction relative
   to both end minutiae (within ``CONS_ANGLE``) and the same relative minutia direction (within
   ``CONS_DIR``). A pair's *support* is the number of candidates consistent with it.
4. Alignment. For each of the ``SEEDS`` best-supported pairs (ties to the earlier candidate),
   the rotation is the seed's direction difference corrected by the mean difference over the
   seed and its consistent pairs, the translation the mean offset of those pairs; B is mapped
   onto A (fixed point, ``TRIG_BITS``).
5. Pairing. A minutia of A and one of B are paired when each is the other's nearest (squared
   distance, ties to the lower index) among those within ``ALIGN_DIR`` and within
   ``ALIGN_DIST + r * ALIGN_GROW / 256`` pixels, r being the A minutia's distance from the seed.
6. Score. ``W`` sums ``sim + PAIR_BONUS`` over the pairs; ``n_A'`` sums the weights of the
   minutiae of A inside the bounding box of the mapped B (plus ``OVERLAP_MARGIN``), a paired one
   counting ``WEIGHT_STEPS`` and an unpaired one its quality weight ``w`` (1..WEIGHT_STEPS), and
   ``n_B'`` the converse; with ``S = WEIGHT_STEPS`` and ``F = S * MIN_OVERLAP``:
   ``W*W*SCORE_SCALE*S*S // (max(n_A', F) * max(n_B', F) * PAIR_UNIT**2)``, the best
   over the seeds. Paired minutiae always count in full in ``n_A'`` and ``n_B'`` (even when just
   outside the box), so as ``sim <= SIM_SCALE`` the score is at most ``SCORE_MAX`` with no clamp: it reaches it
   only when every overlapping minutia pairs perfectly, and strong genuine pairs keep distinct
   scores (1:N ranks them).
"""

from __future__ import annotations

import numpy as np

from . import params as P
from .prepare import ATAN_TABLE, COS_TABLE, SIN_TABLE, PackedGallery, SearchTemplate

NAME = "numpy"
_A = P.ANGLE_STEPS
_HALF = 1 << (P.TRIG_BITS - 1)
assert P.SIM_SCALE * 64 * P.DESC_WORDS < 2**22, "float32 similarity quotient would not be exact"
assert P.SIM_SCALE < 2**15, "candidate keys would not fit 32 bits"
assert P.SCORE_MAX < 2**31, "scores would not fit int32"
assert 1 <= P.WEIGHT_STEPS <= 16 and P.SCORE_SCALE * P.WEIGHT_STEPS ** 2 <= 10**8, "score numerator would not fit int64"

#: gallery templates scored per vectorized batch (bounds temporary memory)
CHUNK = 64
#: gallery templates whose pair-consistency step runs in one vectorized call
SUPER = 1024


def _dirdiff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = (a - b) & (_A - 1)
    return np.minimum(d, _A - d)


def _atan256(dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Direction code of the vector (dx, dy) in image coordinates (y down), integer only."""
    vy = -dy
    ax, ay = np.abs(dx), np.abs(vy)
    flat = ay <= ax
    num = np.where(flat, ay, ax) * P.ATAN_RES
    den = np.maximum(np.where(flat, ax, ay), 1)
    t = ATAN_TABLE[num // den]
    t = np.where(flat, t, _A // 4 - t)
    t = np.where(dx >= 0, np.where(vy >= 0, t, _A - t), np.where(vy >= 0, _A // 2 - t, _A // 2 + t))
    return np.where((ax == 0) & (ay == 0), 0, t) & (_A - 1)


def _isqrt(v: np.ndarray) -> np.ndarray:
    return np.floor(np.sqrt(v.astype(np.float64))).astype(np.int64)


def _take(a: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return np.take_along_axis(a, idx, axis=1)


def _padding(A: dict, B: dict) -> tuple:
    """Shapes, validity masks of the padded rows and uint8 direction codes, shared by steps 1-2 and 5-6.

    Direction codes as uint8: differences wrap modulo 256 by themselves."""
    G, NA = A["x"].shape
    NB = B["x"].shape[1]
    idx = np.arange(NA)
    validA = idx[None, :] < A["n"][:, None]
    validB = np.arange(NB)[None, :] < B["n"][:, None]
    validAB = validA[:, :, None] & validB[:, None, :]
    return G, NA, NB, idx, validA, validB, validAB, A["t"].astype(np.uint8), B["t"].astype(np.uint8)


def _local(A: dict, B: dict) -> dict:
    """Steps 1-2 for row-wise pairs; A holds [G, NA] and B [G, NB] padded arrays, and 'n' [G].

    Returns the similarities [G, NA, NB] and the candidate pairs as [G, TOP_PAIRS] arrays
    (rows with fewer candidates are padded with ``present = False``)."""
    G, NA, NB, idx, validA, validB, validAB, tA8, tB8 = _padding(A, B)
    # 1. local similarity [G, N, N]
    dd = tA8[:, :, None] - tB8[:, None, :]
    gate = np.minimum(dd, -dd) <= P.PAIR_MAX_DIR
    inter = np.bitwise_count(A["desc"][:, :, None, 0] & B["desc"][:, None, :, 0]).astype(np.uint16)
    for w in range(1, P.DESC_WORDS):
        np.add(inter, np.bitwise_count(A["desc"][:, :, None, w] & B["desc"][:, None, :, w]), out=inter)
    tot = A["cnt"].astype(np.int16)[:, :, None] + B["cnt"].astype(np.int16)[:, None, :]
    gate &= tot >= P.SIM_MIN_BITS
    gate &= validAB
    # floor of the float32 quotient is exact: numerator and denominator are exact in float32, and
    # a quotient just below an integer k <= SIM_SCALE misses it by >= 1/tot, relatively more than
    # float32's rounding error as long as SIM_SCALE * 64 * DESC_WORDS < 2^22 (asserted below)
    sim = inter.astype(np.float32)
    sim *= np.float32(2 * P.SIM_SCALE)
    sim /= np.maximum(tot, 1).astype(np.float32)
    sim = np.floor(sim).astype(np.int32)
    sim *= gate
    # 2. top candidates by key = sim * 65536 + (65535 - (i * 256 + j)): keys are unique (so a
    # selection is fast and exact) and fit 32 bits (sim <= SIM_SCALE < 2^15)
    L = min(P.TOP_PAIRS, NA * NB)
    ij = (idx[:, None] * 256 + np.arange(NB)[None, :]).astype(np.int32).ravel()
    key = sim.reshape(G, NA * NB) << 16
    key |= (65535 - ij)[None]
    if L < NA * NB:
        key = np.partition(key, NA * NB - L, axis=1)[:, NA * NB - L:]
    key = -np.sort(-key, axis=1)  # best first
    keys = np.zeros((G, P.TOP_PAIRS), np.int32)
    keys[:, :L] = key
    present = keys >= 65536  # sim > 0
    pos = np.where(present, 65535 - (keys & 0xFFFF), 0)  # absent entries point at (0, 0), unused
    ci, cj = pos >> 8, pos & 255  # [G, L]
    ax_, ay_, at_ = _take(A["x"], ci).astype(np.int64), _take(A["y"], ci).astype(np.int64), _take(A["t"], ci)
    bx_, by_, bt_ = _take(B["x"], cj).astype(np.int64), _take(B["y"], cj).astype(np.int64), _take(B["t"], cj)
    return {"sim": sim, "present": present, "ci": ci, "cj": cj, "ax": ax_, "ay": ay_, "at": at_.astype(np.int64),
            "bx": bx_, "by": by_, "bt": bt_.astype(np.int64)}


def _align(k: dict) -> list[dict]:
    """Steps 3-4 on candidate arrays [G, L] (from _local, possibly of many batches at once):
    per seed, whether it exists and the transform mapping B onto A."""
    present, ci, cj = k["present"], k["ci"], k["cj"]
    ax_, ay_, at_, bx_, by_, bt_ = k["ax"], k["ay"], k["at"], k["bx"], k["by"], k["bt"]
    G = present.shape[0]
    # 3. consistency [G, L, L]: u is the first pair, v the second. The cheap conditions first,
    # then the geometry only where they hold (the same conjunction, computed on fewer elements)
    # the relation is symmetric (atan256(-v) == atan256(v) + 128 exactly): decide u < v, mirror
    Lr = present.shape[1]
    # (indices and direction codes fit a byte: uint8 keeps these [G, L, L] passes cheap)
    ci8, cj8, at8, bt8 = ci.astype(np.uint8), cj.astype(np.uint8), at_.astype(np.uint8), bt_.astype(np.uint8)
    c = present[:, :, None] & present[:, None, :]
    c &= np.triu(np.ones((Lr, Lr), bool), 1)[None]
    c &= ci8[:, :, None] != ci8[:, None, :]
    c &= cj8[:, :, None] != cj8[:, None, :]
    dd = (at8[:, None, :] - at8[:, :, None]) - (bt8[:, None, :] - bt8[:, :, None])
    c &= np.minimum(dd, -dd) <= P.CONS_DIR
    g_, u_, v_ = np.nonzero(c)
    # one gather per end: columns ax, ay, at, bx, by, bt of the candidate pairs
    cols = np.stack([ax_, ay_, at_, bx_, by_, bt_], axis=2).reshape(G * Lr, 6)
    base = g_ * Lr
    pu, pv = cols[base + u_], cols[base + v_]
    d = pv - pu
    dAx, dAy, dBx, dBy = d[:, 0], d[:, 1], d[:, 3], d[:, 4]
    lA, lB = _isqrt(dAx * dAx + dAy * dAy), _isqrt(dBx * dBx + dBy * dBy)
    tol = np.maximum(P.CONS_DIST_ABS, ((lA + lB) * P.CONS_DIST_REL) >> 9)
    eA, eB = _atan256(dAx, dAy), _atan256(dBx, dBy)
    ok = np.abs(lA - lB) <= tol
    ok &= _dirdiff(eA - pu[:, 2], eB - pu[:, 5]) <= P.CONS_ANGLE
    ok &= _dirdiff(eA + _A // 2 - pv[:, 2], eB + _A // 2 - pv[:, 5]) <= P.CONS_ANGLE
    c[g_, u_, v_] = ok
    c |= c.transpose(0, 2, 1)
    support = c.sum(axis=2)
    # 4. seeds: best support, ties to the earlier candidate
    skey = np.where(present, support * 256 + (255 - np.arange(Lr))[None], -1)
    seeds = np.argsort(-skey, axis=1, kind="stable")[:, :P.SEEDS]
    rows = np.arange(G)
    out = []
    for kk in range(seeds.shape[1]):
        s = seeds[:, kk]
        alive = skey[rows, s] >= 0
        Q = c[rows, s, :] | (np.arange(Lr)[None] == s[:, None])
        Q &= present
        q = Q.sum(axis=1)
        q1 = np.maximum(q, 1)
        rot_s = (at_[rows, s] - bt_[rows, s]) & (_A - 1)
        delta = ((at_ - bt_ - rot_s[:, None] + _A // 2) & (_A - 1)) - _A // 2
        dsum = np.where(Q, delta, 0).sum(axis=1)
        rot = (rot_s + (2 * dsum + q1) // (2 * q1)) & (_A - 1)
        C, S = COS_TABLE[rot][:, None], SIN_TABLE[rot][:, None]
        # rotated B (scaled by 2^TRIG_BITS), translation = mean offset over Q
        rXq, rYq = bx_ * C + by_ * S, -bx_ * S + by_ * C
        tx = np.where(Q, (ax_ << P.TRIG_BITS) - rXq, 0).sum(axis=1) // q1
        ty = np.where(Q, (ay_ << P.TRIG_BITS) - rYq, 0).sum(axis=1) // q1
        out.append({"alive": alive & (q > 0), "rot": rot, "tx": tx, "ty": ty, "sx": ax_[rows, s], "sy": ay_[rows, s]})
    return out


def _pair(A: dict, B: dict, sim: np.ndarray, seeds: list[dict]) -> np.ndarray:
    """Steps 5-6: the best score over the seeds' transforms, int32 [G]."""
    G, NA, NB, idx, validA, validB, validAB, tA8, tB8 = _padding(A, B)
    best = np.zeros(G, np.int64)
    Ax64, Ay64 = A["x"].astype(np.int64), A["y"].astype(np.int64)
    Bx64, By64 = B["x"].astype(np.int64), B["y"].astype(np.int64)
    bigA = np.uint32(0xFFFFFFFF)
    Ax32, Ay32 = A["x"].astype(np.int32), A["y"].astype(np.int32)
    for sd in seeds:
        rot, tx, ty = sd["rot"], sd["tx"], sd["ty"]
        C, S = COS_TABLE[rot][:, None], SIN_TABLE[rot][:, None]
        X = Bx64 * C + By64 * S + tx[:, None]
        Y = -Bx64 * S + By64 * C + ty[:, None]
        px, py = (X + _HALF) >> P.TRIG_BITS, (Y + _HALF) >> P.TRIG_BITS  # mapped B, pixels
        # 32-bit is enough: coordinates <= MAX_COORD put |dx| below 2^16 and dx^2 + dy^2 below 2^32
        px32, py32 = px.astype(np.int32), py.astype(np.int32)
        d = Ax32[:, :, None] - px32[:, None, :]
        d *= d
        d2 = d.view(np.uint32)
        d = Ay32[:, :, None] - py32[:, None, :]
        d *= d
        d2 += d.view(np.uint32)
        # tolerance grows with the distance from the seed: elastic distortion accumulates
        rA = _isqrt((Ax64 - sd["sx"][:, None]) ** 2 + (Ay64 - sd["sy"][:, None]) ** 2)
        tolA = (P.ALIGN_DIST + ((rA * P.ALIGN_GROW) >> 8)).astype(np.uint32)
        elig = d2 <= (tolA * tolA)[:, :, None]
        dd = tA8[:, :, None] - (tB8 + rot.astype(np.uint8)[:, None])[:, None, :]
        elig &= np.minimum(dd, -dd) <= P.ALIGN_DIR
        elig &= validAB
        cost = np.where(elig, d2, bigA)  # uint32
        bj = np.argmin(cost, axis=2)  # first minimum: lowest j
        bi = np.argmin(cost, axis=1)  # lowest i
        has = _take(cost.reshape(G, NA * NB), (idx[None, :] * NB + bj)) < bigA
        mutual = has & (_take(bi, bj) == idx[None, :])
        ms = _take(sim.reshape(G, NA * NB), (idx[None, :] * NB + bj))
        W = np.where(mutual, ms + P.PAIR_BONUS, 0).sum(axis=1)  # weighted pair count
        # the minutiae of B that are paired (each with exactly one of A)
        pg, pi = np.nonzero(mutual)
        pairedB = np.zeros((G, NB), bool)
        pairedB[pg, bj[pg, pi]] = True
        # overlap counts
        m = P.OVERLAP_MARGIN
        inf = 1 << 40
        pxv, pyv = np.where(validB, px, inf), np.where(validB, py, inf)
        bx0, by0 = pxv.min(axis=1), pyv.min(axis=1)
        bx1, by1 = np.where(validB, px, -inf).max(axis=1), np.where(validB, py, -inf).max(axis=1)
        ax0, ay0 = np.where(validA, Ax64, inf).min(axis=1), np.where(validA, Ay64, inf).min(axis=1)
        ax1, ay1 = np.where(validA, Ax64, -inf).max(axis=1), np.where(validA, Ay64, -inf).max(axis=1)
        # a paired minutia is in the overlap by definition (its partner may lie a little beyond
        # the margin): this bounds the score by SCORE_MAX without a clamp
        inA = validA & (((Ax64 >= (bx0 - m)[:, None]) & (Ax64 <= (bx1 + m)[:, None])
                         & (Ay64 >= (by0 - m)[:, None]) & (Ay64 <= (by1 + m)[:, None])) | mutual)
        inB = validB & (((px >= (ax0 - m)[:, None]) & (px <= (ax1 + m)[:, None])
                         & (py >= (ay0 - m)[:, None]) & (py <= (ay1 + m)[:, None])) | pairedB)
        # overlap counts in weight units: paired minutiae in full, unpaired ones by quality
        S = P.WEIGHT_STEPS
        na = np.maximum(np.where(inA, np.where(mutual, S, A["w"]), 0).sum(axis=1), S * P.MIN_OVERLAP)
        nb = np.maximum(np.where(inB, np.where(pairedB, S, B["w"]), 0).sum(axis=1), S * P.MIN_OVERLAP)
        sc = (W * W * P.SCORE_SCALE * S * S) // (na * nb * P.PAIR_UNIT * P.PAIR_UNIT)
        best = np.maximum(best, np.where(sd["alive"], sc, 0))
    return np.where((A["n"] > 0) & (B["n"] > 0), best, 0).astype(np.int32)


def _score_batch(A: dict, B: dict) -> np.ndarray:
    """Scores of row-wise pairs; A holds [G, NA] and B [G, NB] padded arrays, and 'n' [G]."""
    loc = _local(A, B)
    return _pair(A, B, loc["sim"], _align(loc))


def _pad(parts: list[SearchTemplate], N: int) -> dict:
    G = len(parts)
    out = {"x": np.zeros((G, N), np.int32), "y": np.zeros((G, N), np.int32), "t": np.zeros((G, N), np.int64),
           "cnt": np.zeros((G, N), np.int32), "w": np.zeros((G, N), np.int64),
           "desc": np.zeros((G, N, P.DESC_WORDS), np.uint64),
           "n": np.array([s.n for s in parts], np.int64)}
    for g, s in enumerate(parts):
        n = s.n
        out["x"][g, :n], out["y"][g, :n], out["t"][g, :n] = s.x, s.y, s.t
        out["cnt"][g, :n], out["desc"][g, :n], out["w"][g, :n] = s.cnt, s.desc, s.w
    return out


def _first(a: SearchTemplate, b: SearchTemplate) -> bool:
    """True when ``a`` plays the role of A against ``b``."""
    return (a.n, a.key) <= (b.n, b.key)


def score_pairs(left: list[SearchTemplate], right: list[SearchTemplate]) -> np.ndarray:
    """Scores of ``left[k]`` against ``right[k]`` for every k, as int32."""
    out = np.zeros(len(left), np.int32)
    for lo in range(0, len(left), CHUNK):
        As, Bs = [], []
        for a, b in zip(left[lo:lo + CHUNK], right[lo:lo + CHUNK]):
            if not _first(a, b):
                a, b = b, a
            As.append(a)
            Bs.append(b)
        NA, NB = max([1] + [s.n for s in As]), max([1] + [s.n for s in Bs])
        out[lo:lo + len(As)] = _score_batch(_pad(As, NA), _pad(Bs, NB))
    return out


def score(a: SearchTemplate, b: SearchTemplate) -> int:
    """Score of one pair (0..SCORE_MAX)."""
    return int(score_pairs([a], [b])[0])


def _pad_gallery(gallery: PackedGallery, ids: np.ndarray, N: int) -> dict:
    """Padded [G, N] arrays of gallery entries ``ids``, gathered from the CSR layout at once."""
    start = gallery.offsets[ids]
    n = gallery.offsets[ids + 1] - start
    G = len(ids)
    rows = np.repeat(np.arange(G), n)
    cols = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
    src = np.repeat(start, n) + cols
    out = {"n": n.astype(np.int64)}
    for key, dtype in (("x", np.int32), ("y", np.int32), ("t", np.int64), ("cnt", np.int32), ("w", np.int64)):
        a = np.zeros((G, N), dtype)
        a[rows, cols] = getattr(gallery, key)[src]
        out[key] = a
    d = np.zeros((G, N, P.DESC_WORDS), np.uint64)
    d[rows, cols] = gallery.desc[src]
    out["desc"] = d
    return out


def score_many(probe: SearchTemplate, gallery: PackedGallery, index: np.ndarray | None = None) -> np.ndarray:
    """Scores of ``probe`` against gallery entries ``index`` (default all), int32.

    Entries are grouped by minutia count so that padding stays small; the probe takes the role
    of A or B per entry exactly as :func:`score` would give it.
    """
    ids = np.arange(len(gallery)) if index is None else np.asarray(index, np.int64)
    counts = gallery.offsets[ids + 1] - gallery.offsets[ids]
    order = np.argsort(counts, kind="stable")
    out = np.zeros(len(ids), np.int32)
    # steps 1-2 and 5-6 run per CHUNK (their arrays grow with the minutia counts); steps 3-4 work
    # on small fixed-size arrays and run once per SUPER entries, to spread numpy's per-call cost
    for lo_s in range(0, len(order), SUPER):
        batches = []
        for lo in range(lo_s, min(lo_s + SUPER, len(order)), CHUNK):
            sel = order[lo:min(lo + CHUNK, lo_s + SUPER)]
            A, B = _roles(probe, gallery, ids[sel], counts[sel])
            batches.append((sel, A, B, _local(A, B)))
        cand = {k: np.concatenate([b[3][k] for b in batches]) for k in batches[0][3] if k != "sim"}
        seeds = _align(cand)
        at = 0
        for sel, A, B, loc in batches:
            part = [{k: v[at:at + len(sel)] for k, v in sd.items()} for sd in seeds]
            out[sel] = _pair(A, B, loc["sim"], part)
            at += len(sel)
    return out


def screen_many(probe: SearchTemplate, gallery: PackedGallery, index: np.ndarray | None = None,
                top: int = 8) -> np.ndarray:
    """Local-similarity screen of ``probe`` against gallery entries ``index`` (default all), int32:
    for each probe minutia its best step-1 local similarity over the entry's minutiae (the same
    gate and quotient as a comparison), then the sum of the ``top`` largest of those (of all of
    them when the probe has fewer). Not symmetric: the probe's minutiae are the ones summed.
    Steps 2-6 (consistency, alignment, pairing) are left out, which makes it several times
    cheaper than a comparison in C; 1:N search uses it to choose what the comparison scores."""
    if top < 0:
        raise ValueError("top must be at least 0")
    ids = np.arange(len(gallery)) if index is None else np.asarray(index, np.int64)
    out = np.zeros(len(ids), np.int32)
    if probe.n == 0 or len(ids) == 0 or top == 0:
        return out
    counts = gallery.offsets[ids + 1] - gallery.offsets[ids]
    order = np.argsort(counts, kind="stable")
    pd, pt8 = probe.desc, probe.t.astype(np.uint8)
    pc = probe.cnt.astype(np.int16)
    for lo in range(0, len(order), 4 * CHUNK):
        sel = order[lo:lo + 4 * CHUNK]
        N = max(1, int(counts[sel].max()))
        B = _pad_gallery(gallery, ids[sel], N)
        valid = np.arange(N)[None, :] < B["n"][:, None]  # [G, N]
        dd = pt8[None, :, None] - B["t"].astype(np.uint8)[:, None, :]  # uint8: wraps modulo 256 (see _padding)
        gate = np.minimum(dd, -dd) <= P.PAIR_MAX_DIR
        inter = np.bitwise_count(pd[None, :, None, 0] & B["desc"][:, None, :, 0]).astype(np.uint16)
        for w in range(1, P.DESC_WORDS):
            np.add(inter, np.bitwise_count(pd[None, :, None, w] & B["desc"][:, None, :, w]), out=inter)
        tot = pc[None, :, None] + B["cnt"].astype(np.int16)[:, None, :]
        gate &= (tot >= P.SIM_MIN_BITS) & valid[:, None, :]
        sim = inter.astype(np.float32)  # floor of the float32 quotient is exact (see _local)
        sim *= np.float32(2 * P.SIM_SCALE)
        sim /= np.maximum(tot, 1).astype(np.float32)
        best = np.floor(sim).astype(np.int32) * gate
        best = best.max(axis=2)  # [G, probe minutiae]
        k = min(top, probe.n)
        if k < probe.n:
            best = np.partition(best, probe.n - k, axis=1)[:, probe.n - k:]
        out[sel] = best.sum(axis=1)
    return out


def _roles(probe: SearchTemplate, gallery: PackedGallery, g_ids: np.ndarray, counts: np.ndarray) -> tuple[dict, dict]:
    """Padded A and B arrays of the probe against gallery entries ``g_ids``, roles as in _first."""
    N = max(1, probe.n, int(counts.max()))
    Gp = _pad_gallery(gallery, g_ids, N)
    Pp = _pad([probe], N)
    gk = gallery.keys[g_ids]
    probe_first = (probe.n < Gp["n"]) | ((probe.n == Gp["n"]) & (np.uint64(probe.key) <= gk))
    # A is always the smaller template: pad each side only as far as it needs
    n_g = Gp["n"]
    NA = max(1, int(np.where(probe_first, probe.n, n_g).max()))
    NB = max(1, int(np.where(probe_first, n_g, probe.n).max()))
    A, B = {}, {}
    for key in Gp:
        pa = np.broadcast_to(Pp[key], Gp[key].shape)
        m = probe_first.reshape((-1,) + (1,) * (Gp[key].ndim - 1))
        A[key] = np.where(m, pa, Gp[key])
        B[key] = np.where(m, Gp[key], pa)
        if key != "n":
            A[key], B[key] = A[key][:, :NA], B[key][:, :NB]
    return A, B
