/*
 * C kernels of the biostation minutiae matcher: biostation.matcher._native.
 *
 * A line-by-line port of src/biostation/matcher/_reference.py (the specification: read its
 * docstring for the algorithm). All arithmetic is integer, so scores equal the reference's bit
 * for bit. Tuned numbers and lookup tables are not compiled in: matcher/_cbackend.py passes
 * them from params.py once, when it is imported, through configure().
 *
 * Inputs are buffers (numpy arrays): C-contiguous, native byte order, exact item sizes. The
 * kernels never write to them and release the GIL while scoring.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <immintrin.h>

#define MAXN 255
#define MAX_TOP 64
#define MAX_WORDS 32
#define NPARAMS 21

enum {
    P_DESC_WORDS, P_PAIR_MAX_DIR, P_SIM_SCALE, P_SIM_MIN_BITS, P_TOP_PAIRS, P_CONS_DIST_ABS,
    P_CONS_DIST_REL, P_CONS_ANGLE, P_CONS_DIR, P_SEEDS, P_ALIGN_DIST, P_ALIGN_GROW, P_ALIGN_DIR,
    P_OVERLAP_MARGIN, P_MIN_OVERLAP, P_SCORE_SCALE, P_PAIR_BONUS, P_PAIR_UNIT, P_TRIG_BITS, P_ATAN_RES,
    P_WEIGHT_STEPS
};

static int configured = 0;
static int64_t prm[NPARAMS];
static int64_t COS_T[256], SIN_T[256];
static int64_t *ATAN_T = NULL;

typedef struct {
    const int32_t *x, *y, *t, *c, *w;
    const uint64_t *d;
    int n;
    uint64_t key;
} tpl_t;

/* DIRD[(a - b) & 255]: circular distance of two direction codes */
static uint8_t DIRD[256];

static inline int dirdiff(int64_t a, int64_t b) { return DIRD[(a - b) & 255]; }

static inline int64_t floordiv(int64_t a, int64_t b) /* b > 0 */
{
    int64_t q = a / b;
    if ((a % b) != 0 && a < 0)
        q--;
    return q;
}

static inline int64_t floorshift(int64_t v, int k)
{
    return v >= 0 ? (v >> k) : -((-v + ((int64_t)1 << k) - 1) >> k);
}

static inline int64_t isqrt64(int64_t v) { return (int64_t)floor(sqrt((double)v)); }

static inline int64_t atan256(int64_t dx, int64_t dy)
{
    int64_t vy = -dy, ax = dx < 0 ? -dx : dx, ay = vy < 0 ? -vy : vy, t;
    if (ax == 0 && ay == 0)
        return 0;
    if (ay <= ax)
        t = ATAN_T[(ay * prm[P_ATAN_RES]) / ax];
    else
        t = 64 - ATAN_T[(ax * prm[P_ATAN_RES]) / ay];
    if (dx >= 0)
        t = vy >= 0 ? t : 256 - t;
    else
        t = vy >= 0 ? 128 - t : 128 + t;
    return t & 255;
}

/* RECIP[d] = ceil(2^31 / d): floor(x / d) == (x * RECIP[d]) >> 31 for every x < 2^20 and
 * d <= 2^11 (Granlund and Montgomery, "Division by invariant integers using multiplication",
 * PLDI 1994, theorem 4.2); configure() checks that the parameters keep x and d in range. */
#define RECIP_SHIFT 31
static uint64_t RECIP[2049];

#define CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "popcnt", "default")))

/* local similarities of every pair, and the best TOP_PAIRS of them by (sim, -i, -j) */
CLONES
static void sim_rows(const tpl_t *A, const tpl_t *B, int32_t *sim, int64_t *topk, int *ntop)
{
    const int W = (int)prm[P_DESC_WORDS], L = (int)prm[P_TOP_PAIRS];
    const uint64_t scale2 = (uint64_t)(2 * prm[P_SIM_SCALE]);
    const uint32_t minbits = (uint32_t)prm[P_SIM_MIN_BITS];
    const int maxdir = (int)prm[P_PAIR_MAX_DIR];
    const int32_t *tb = B->t, *cb = B->c;
    const int nb = B->n;
    int cnt = 0;
    for (int i = 0; i < A->n; i++) {
        const uint64_t *da = A->d + (size_t)i * W;
        const int ta = A->t[i];
        const uint32_t ca = (uint32_t)A->c[i];
        int32_t *row = sim + (size_t)i * nb;
        for (int j = 0; j < nb; j++) {
            const uint64_t *db = B->d + (size_t)j * W;
            uint64_t inter = 0;
            if (W == 4)
                inter = (uint64_t)(__builtin_popcountll(da[0] & db[0]) + __builtin_popcountll(da[1] & db[1])
                                   + __builtin_popcountll(da[2] & db[2]) + __builtin_popcountll(da[3] & db[3]));
            else
                for (int w = 0; w < W; w++)
                    inter += (uint64_t)__builtin_popcountll(da[w] & db[w]);
            const uint32_t tot = ca + (uint32_t)cb[j];
            /* dirdiff(ta, tb) <= maxdir, without a table: ((ta - tb + maxdir) & 255) <= 2 maxdir */
            const int gate = (((ta - tb[j] + maxdir) & 255) <= 2 * maxdir) & (tot >= minbits);
            row[j] = gate ? (int32_t)((scale2 * inter * RECIP[tot]) >> RECIP_SHIFT) : 0;
        }
        /* a pair enters the list when its key beats the weakest kept one; until the list is full,
         * any pair with sim > 0 does (keys of sim 0 are below 65536) */
        int64_t kmin = cnt < L ? 65535 : topk[L - 1];
        for (int j = 0; j < nb; j++) {
            const int64_t key = (int64_t)row[j] * 65536 + (65535 - (i * 256 + j));
            if (key > kmin) {
                int p = cnt < L ? cnt++ : L - 1;
                while (p > 0 && topk[p - 1] < key) {
                    topk[p] = topk[p - 1];
                    p--;
                }
                topk[p] = key;
                kmin = cnt < L ? 65535 : topk[L - 1];
            }
        }
    }
    *ntop = cnt;
}

CLONES
static int32_t score_pair(const tpl_t *a0, const tpl_t *b0, int32_t *sim)
{
    const tpl_t *A = a0, *B = b0;
    if (A->n == 0 || B->n == 0)
        return 0;
    if (!(A->n < B->n || (A->n == B->n && A->key <= B->key))) {
        A = b0;
        B = a0;
    }
    const int na = A->n, nb = B->n, TB = (int)prm[P_TRIG_BITS];
    int64_t topk[MAX_TOP];
    int L;
    sim_rows(A, B, sim, topk, &L);
    if (L == 0)
        return 0;

    int ci[MAX_TOP], cj[MAX_TOP], support[MAX_TOP];
    int64_t ax[MAX_TOP], ay[MAX_TOP], at[MAX_TOP], bx[MAX_TOP], by[MAX_TOP], bt[MAX_TOP];
    uint8_t comp[MAX_TOP][MAX_TOP];
    for (int u = 0; u < L; u++) {
        int ij = 65535 - (int)(topk[u] & 0xFFFF);
        ci[u] = ij >> 8;
        cj[u] = ij & 255;
        ax[u] = A->x[ci[u]]; ay[u] = A->y[ci[u]]; at[u] = A->t[ci[u]];
        bx[u] = B->x[cj[u]]; by[u] = B->y[cj[u]]; bt[u] = B->t[cj[u]];
        support[u] = 0;
        comp[u][u] = 0;
    }
    /* 3. pairwise consistency (symmetric) */
    for (int u = 0; u < L; u++) {
        for (int v = u + 1; v < L; v++) {
            /* cheapest tests first; the outcome is the same conjunction as the reference's */
            int ok = ci[u] != ci[v] && cj[u] != cj[v] && dirdiff(at[v] - at[u], bt[v] - bt[u]) <= prm[P_CONS_DIR];
            if (ok) {
                int64_t dAx = ax[v] - ax[u], dAy = ay[v] - ay[u], dBx = bx[v] - bx[u], dBy = by[v] - by[u];
                int64_t lA = isqrt64(dAx * dAx + dAy * dAy), lB = isqrt64(dBx * dBx + dBy * dBy);
                int64_t tol = ((lA + lB) * prm[P_CONS_DIST_REL]) >> 9;
                if (tol < prm[P_CONS_DIST_ABS])
                    tol = prm[P_CONS_DIST_ABS];
                int64_t dl = lA - lB;
                ok = (dl < 0 ? -dl : dl) <= tol;
                if (ok) {
                    int64_t eA = atan256(dAx, dAy), eB = atan256(dBx, dBy);
                    ok = dirdiff(eA - at[u], eB - bt[u]) <= prm[P_CONS_ANGLE]
                        && dirdiff(eA + 128 - at[v], eB + 128 - bt[v]) <= prm[P_CONS_ANGLE];
                }
            }
            comp[u][v] = comp[v][u] = (uint8_t)ok;
            support[u] += ok;
            support[v] += ok;
        }
    }
    /* 4. seeds: highest support * 256 + (255 - u) */
    int nseeds = (int)prm[P_SEEDS] < L ? (int)prm[P_SEEDS] : L;
    int seeds[MAX_TOP];
    uint8_t taken[MAX_TOP] = {0};
    for (int k = 0; k < nseeds; k++) {
        int bestu = -1;
        int64_t bestkey = -1;
        for (int u = 0; u < L; u++) {
            int64_t key = (int64_t)support[u] * 256 + (255 - u);
            if (!taken[u] && key > bestkey) {
                bestkey = key;
                bestu = u;
            }
        }
        taken[bestu] = 1;
        seeds[k] = bestu;
    }

    int64_t best = 0;
    int64_t px[MAXN], py[MAXN], cost_bi[MAXN], crow[MAXN], bi[MAXN], rt[MAXN];
    const int64_t aligndir = prm[P_ALIGN_DIR];
    const int64_t BIG = INT64_MAX / 4, margin = prm[P_OVERLAP_MARGIN];
    for (int k = 0; k < nseeds; k++) {
        const int s = seeds[k];
        int64_t q = 0, dsum = 0;
        const int64_t rot_s = (at[s] - bt[s]) & 255;
        for (int u = 0; u < L; u++)
            if (u == s || comp[s][u]) {
                q++;
                dsum += ((at[u] - bt[u] - rot_s + 128) & 255) - 128;
            }
        const int64_t rot = (rot_s + floordiv(2 * dsum + q, 2 * q)) & 255;
        const int64_t C = COS_T[rot], S = SIN_T[rot];
        int64_t sx = 0, sy = 0;
        for (int u = 0; u < L; u++)
            if (u == s || comp[s][u]) {
                sx += (ax[u] << TB) - (bx[u] * C + by[u] * S);
                sy += (ay[u] << TB) - (-bx[u] * S + by[u] * C);
            }
        const int64_t tx = floordiv(sx, q), ty = floordiv(sy, q), half = (int64_t)1 << (TB - 1);
        int64_t bx0 = BIG, by0 = BIG, bx1 = -BIG, by1 = -BIG;
        for (int j = 0; j < nb; j++) {
            int64_t X = (int64_t)B->x[j] * C + (int64_t)B->y[j] * S + tx;
            int64_t Y = -(int64_t)B->x[j] * S + (int64_t)B->y[j] * C + ty;
            px[j] = floorshift(X + half, TB);
            py[j] = floorshift(Y + half, TB);
            if (px[j] < bx0) bx0 = px[j];
            if (px[j] > bx1) bx1 = px[j];
            if (py[j] < by0) by0 = py[j];
            if (py[j] > by1) by1 = py[j];
            cost_bi[j] = BIG;
            bi[j] = 0;
            rt[j] = (B->t[j] + rot) & 255;
        }
        /* 5. mutual nearest neighbours */
        int bj[MAXN];
        int64_t bjc[MAXN];
        int64_t ax0 = BIG, ay0 = BIG, ax1 = -BIG, ay1 = -BIG;
        for (int i = 0; i < na; i++) {
            const int64_t xi = A->x[i], yi = A->y[i];
            if (xi < ax0) ax0 = xi;
            if (xi > ax1) ax1 = xi;
            if (yi < ay0) ay0 = yi;
            if (yi > ay1) ay1 = yi;
            const int64_t rx = xi - ax[s], ry = yi - ay[s];
            const int64_t tolA = prm[P_ALIGN_DIST] + ((isqrt64(rx * rx + ry * ry) * prm[P_ALIGN_GROW]) >> 8);
            const int64_t tol2 = tolA * tolA;
            /* branch-free so that the compiler vectorizes it; the same conjunction as the
             * reference: distance within tol, direction within ALIGN_DIR (as in sim_rows) */
            const int64_t ti = A->t[i];
            int64_t bc = BIG;
            for (int j = 0; j < nb; j++) {
                const int64_t dx = xi - px[j], dy = yi - py[j], d2 = dx * dx + dy * dy;
                const int ok = (d2 <= tol2) & (((ti - rt[j] + aligndir) & 255) <= 2 * aligndir);
                const int64_t c = ok ? d2 : BIG;
                crow[j] = c;
                bc = c < bc ? c : bc;
                const int upd = c < cost_bi[j];
                cost_bi[j] = upd ? c : cost_bi[j];
                bi[j] = upd ? i : bi[j];
            }
            int bjj = 0;
            if (bc < BIG)
                while (crow[bjj] != bc) /* the first j at the minimum */
                    bjj++;
            bj[i] = bjj;
            bjc[i] = bc;
        }
        /* 6. a paired minutia counts in the overlap, in full, even if just outside the box: the
         * bound score <= SCORE_MAX (< 2^31, checked by configure()) rests on it; an unpaired one
         * inside counts its quality weight */
        const int64_t WS = prm[P_WEIGHT_STEPS];
        int64_t Wsum = 0, inA = 0, inB = 0;
        uint8_t pairedB[MAXN];
        memset(pairedB, 0, (size_t)nb);
        for (int i = 0; i < na; i++) {
            const int paired = bjc[i] < BIG && bi[bj[i]] == (int64_t)i;
            if (paired) {
                Wsum += sim[i * nb + bj[i]] + prm[P_PAIR_BONUS];
                pairedB[bj[i]] = 1;
            }
            const int64_t xi = A->x[i], yi = A->y[i];
            if (paired)
                inA += WS;
            else if (xi >= bx0 - margin && xi <= bx1 + margin && yi >= by0 - margin && yi <= by1 + margin)
                inA += A->w[i];
        }
        for (int j = 0; j < nb; j++) {
            if (pairedB[j])
                inB += WS;
            else if (px[j] >= ax0 - margin && px[j] <= ax1 + margin && py[j] >= ay0 - margin && py[j] <= ay1 + margin)
                inB += B->w[j];
        }
        if (inA < WS * prm[P_MIN_OVERLAP]) inA = WS * prm[P_MIN_OVERLAP];
        if (inB < WS * prm[P_MIN_OVERLAP]) inB = WS * prm[P_MIN_OVERLAP];
        const int64_t unit = prm[P_PAIR_UNIT];
        const int64_t sc = (Wsum * Wsum * prm[P_SCORE_SCALE] * WS * WS) / (inA * inB * unit * unit);
        if (sc > best)
            best = sc;
    }
    return (int32_t)best;
}


/* ---------------------------------------------------------------- screening --------------- */
/* The local-similarity screen (see screen_many in _reference.py): each probe minutia's best
 * local similarity over the gallery template's minutiae, the `top` best of those summed. The
 * quotient is taken in float32 as the specification does (exact: see _reference.py), which lets
 * the compiler vectorize the inner loop; the reference's descriptors are first laid out word by
 * word. Two kernels, chosen once at run time: screen4_avx512 (intrinsics, below) for CPUs with
 * AVX-512 VPOPCNTDQ (eight popcounts an instruction), and screen4_any, plain C that GCC vectorizes,
 * for any x86-64. Tried and slower, all giving the same integers (0.46-0.49 us a reference then):
 * scanning only the vectors that cover a probe minutia's direction window, the reference's minutiae
 * bucketed by direction (0.57 us); the transpose, lanes over the probe's minutiae laid out once per
 * search in direction order, each reference minutia against its bucket's run of them (0.55 us);
 * two probe minutiae a pass over the reference's words (0.48 us); padding the reference to whole
 * 16-lane vectors in the AVX2 build (10 % slower). A shortlist's scattered entries are prefetched
 * in many() (prefetch_entry). */

/* number of v[0..n) at least x (a loop the compiler vectorizes) */
static inline int count_at_least(const int32_t *v, int n, int32_t x)
{
    int c = 0;
    for (int i = 0; i < n; i++)
        c += v[i] >= x;
    return c;
}

/* sum of the `top` largest of v[0..n), all >= 0: T, the top-th largest, is the largest x with
   count(v >= x) >= top, found bit by bit from the highest bit of the maximum (the count falls as x
   rises, so the greedy choice of each bit is right; no branch follows the data, where a bisection's
   did at every step); then the sum is that of the values above T plus T for each of the remaining
   places; ties at T count once per place, as when sorting */
static inline int32_t top_sum(const int32_t *v, int n, int top)
{
    int32_t hi = 0, sum = 0;
    for (int i = 0; i < n; i++) {
        hi = v[i] > hi ? v[i] : hi;
        sum += v[i];
    }
    if (top >= n)
        return sum;
    int32_t lo = 0;
    for (int b = hi > 0 ? 31 - __builtin_clz((unsigned)hi) : -1; b >= 0; b--) {
        const int32_t cand = lo | (1 << b);
        lo = count_at_least(v, n, cand) >= top ? cand : lo;
    }
    int32_t above = 0, nabove = 0;
    for (int i = 0; i < n; i++) {
        const int gt = v[i] > lo;
        above += gt ? v[i] : 0;
        nabove += gt;
    }
    return above + (top - nabove) * lo;
}

/* top_sum in AVX-512: the same integer by the same search, its counts on whole vectors */
__attribute__((target("popcnt,avx2,avx512f,avx512vl,avx512bw,avx512dq,avx512vpopcntdq")))
static inline int32_t top_sum512(const int32_t *v, int n, int top)
{
    __m512i x[(MAXN + 15) / 16];
    __mmask16 valid[(MAXN + 15) / 16];
    const int nv = (n + 15) / 16;
    __m512i vmax = _mm512_setzero_si512(), vsum = _mm512_setzero_si512();
    for (int q = 0; q < nv; q++) {
        const int left = n - 16 * q;
        valid[q] = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
        x[q] = _mm512_maskz_loadu_epi32(valid[q], v + 16 * q);
        vmax = _mm512_max_epi32(vmax, x[q]);
        vsum = _mm512_add_epi32(vsum, x[q]);
    }
    if (top >= n)
        return _mm512_reduce_add_epi32(vsum);
    const int32_t hi = _mm512_reduce_max_epi32(vmax);
    int32_t lo = 0;
    for (int b = hi > 0 ? 31 - __builtin_clz((unsigned)hi) : -1; b >= 0; b--) {
        const int32_t cand = lo | (1 << b);
        const __m512i c = _mm512_set1_epi32(cand);
        int cnt = 0;
        for (int q = 0; q < nv; q++)
            cnt += __builtin_popcount(_mm512_mask_cmpge_epi32_mask(valid[q], x[q], c));
        lo = cnt >= top ? cand : lo;
    }
    const __m512i L = _mm512_set1_epi32(lo);
    __m512i above = _mm512_setzero_si512();
    int nabove = 0;
    for (int q = 0; q < nv; q++) {
        const __mmask16 gt = _mm512_mask_cmpgt_epi32_mask(valid[q], x[q], L);
        above = _mm512_mask_add_epi32(above, gt, above, x[q]);
        nabove += __builtin_popcount(gt);
    }
    return _mm512_reduce_add_epi32(above) + (top - nabove) * lo;
}

/* lane i of the result: the largest of v[i][0..16), for 16 vectors at once (a transposing tree
 * of shuffles: 46 instructions, where 16 separate reductions take about 130) */
__attribute__((target("popcnt,avx2,avx512f,avx512vl,avx512bw,avx512dq,avx512vpopcntdq")))
static inline __m512 max16(const float (*v)[16])
{
    __m512 r[8], s[4], t[2];
    for (int k = 0; k < 8; k++) { /* [v2k's 8 lanes | v2k+1's 8 lanes] */
        const __m512 a = _mm512_load_ps(v[2 * k]), b = _mm512_load_ps(v[2 * k + 1]);
        r[k] = _mm512_max_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xEE));
    }
    for (int k = 0; k < 4; k++) /* 4 lanes each of v4k .. v4k+3 */
        s[k] = _mm512_max_ps(_mm512_shuffle_f32x4(r[2 * k], r[2 * k + 1], 0x88),
                             _mm512_shuffle_f32x4(r[2 * k], r[2 * k + 1], 0xDD));
    for (int k = 0; k < 2; k++) /* 128-bit chunk c: 2 lanes each of v(8k + c), v(8k + 4 + c) */
        t[k] = _mm512_max_ps(_mm512_shuffle_ps(s[2 * k], s[2 * k + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_ps(s[2 * k], s[2 * k + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    /* chunk c: the maxima of v(c), v(4 + c), v(8 + c), v(12 + c) */
    const __m512 u = _mm512_max_ps(_mm512_shuffle_ps(t[0], t[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                   _mm512_shuffle_ps(t[0], t[1], _MM_SHUFFLE(3, 1, 3, 1)));
    return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), u);
}

/* The AVX-512 kernel in intrinsics: the same integers as screen4_any, in about 30 instructions
 * for 16 pairs where GCC's AVX-512 vectorization of the same C took 37, and with the work around
 * that loop (the reference's layout, each probe minutia's maximum, the top sum) vectorized too:
 * - the maximum is kept over the float quotients and truncated once per probe minutia (truncation
 *   is monotone, so trunc(max q) = max trunc(q)). When scale2 is a power of two, as it is, the
 *   quotient is inter / tot, scaled after the maximum: scaling by a power of two commutes with float
 *   rounding, so scale2 * fl(inter / tot) = fl(scale2 * inter / tot), the specification's quotient;
 *   otherwise scale2 * inter is formed first, as the specification does (at SIM_SCALE 100,
 *   float32(200) * float32(53 / 200) truncates to 52, where the specification has 53: tested);
 * - tot is added in float (the reference's counts converted once), and a pair with tot 0 is gated
 *   off by tot >= minbits, so the maximum never sees its quotient and needs no guard against 0;
 * - directions are stored shifted to the top byte, so that the modulo-256 difference comes free
 *   of the 32-bit wrap: ((a - b) & 255) <= lim  <=>  (a << 24) - (b << 24) <= lim << 24, unsigned;
 * - the last 8 of a reference's minutiae take half a step (its popcounts on one vector).
 * 0.35 us a reference where screen4_any, padded to whole vectors, took 0.49 (20,000 synthetic
 * templates; this machine's AMD EPYC with AVX-512). Of those 0.49 the top sum's bisection, whose
 * branches follow the data, cost about 0.1 us, the layout 0.04 and the per-minutia reductions 0.02. */
__attribute__((target("popcnt,avx2,avx512f,avx512vl,avx512bw,avx512dq,avx512vpopcntdq")))
static inline __attribute__((always_inline)) int32_t screen4_avx512_body(const tpl_t *A, const tpl_t *B, int top,
                                                                        const int scale_after)
{
    uint64_t W[4][(MAXN + 16 + 7) / 8 * 8] __attribute__((aligned(64))); /* rows of whole cache lines */
    float Cf[MAXN + 16] __attribute__((aligned(64)));
    uint32_t Ts[MAXN + 16] __attribute__((aligned(64)));
    int32_t best[MAXN + 16] __attribute__((aligned(64)));
    float Mx[MAXN + 16][16] __attribute__((aligned(64)));
    const int nbp = (B->n + 7) / 8 * 8;
    const int maxdir = (int)prm[P_PAIR_MAX_DIR];
    const __m512 s2 = _mm512_set1_ps((float)(2 * prm[P_SIM_SCALE]));
    /* the reference laid out word by word, 8 minutiae (4 vectors of 2) at a time: a transpose; the
     * padding to nbp (no bits in common, a quotient of 0) comes from the masked loads' zeros */
    const __m512i even = _mm512_setr_epi64(0, 4, 8, 12, 1, 5, 9, 13), odd = _mm512_setr_epi64(2, 6, 10, 14, 3, 7, 11, 15);
    for (int j = 0; j < nbp; j += 8) {
        __m512i v[4];
        for (int q = 0; q < 4; q++) {
            const int left = 4 * (B->n - j - 2 * q); /* words of this vector that are the reference's */
            v[q] = _mm512_maskz_loadu_epi64(left >= 8 ? 0xFF : left <= 0 ? 0 : (__mmask8)((1u << left) - 1),
                                            B->d + 4 * (size_t)(j + 2 * q));
        }
        const __m512i a = _mm512_permutex2var_epi64(v[0], even, v[1]), b = _mm512_permutex2var_epi64(v[0], odd, v[1]);
        const __m512i c = _mm512_permutex2var_epi64(v[2], even, v[3]), d = _mm512_permutex2var_epi64(v[2], odd, v[3]);
        _mm512_store_si512(&W[0][j], _mm512_shuffle_i64x2(a, c, 0x44));
        _mm512_store_si512(&W[1][j], _mm512_shuffle_i64x2(a, c, 0xEE));
        _mm512_store_si512(&W[2][j], _mm512_shuffle_i64x2(b, d, 0x44));
        _mm512_store_si512(&W[3][j], _mm512_shuffle_i64x2(b, d, 0xEE));
    }
    for (int j = 0; j < nbp; j += 16) {
        const int left = B->n - j;
        const __mmask16 m = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
        _mm512_store_ps(&Cf[j], _mm512_cvtepi32_ps(_mm512_maskz_loadu_epi32(m, B->c + j)));
        _mm512_store_si512(&Ts[j], _mm512_slli_epi32(_mm512_maskz_loadu_epi32(m, B->t + j), 24));
    }
    const __m512i lo_dwords = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512 fmin = _mm512_set1_ps((float)prm[P_SIM_MIN_BITS]);
    const __m512i lim = _mm512_set1_epi32((int)(2 * maxdir >= 255 ? 0xFFFFFFFFu : (uint32_t)(2 * maxdir) << 24));
    for (int i = 0; i < A->n; i++) {
        const uint64_t *da = A->d + 4 * (size_t)i;
        const __m512i d0 = _mm512_set1_epi64((long long)da[0]), d1 = _mm512_set1_epi64((long long)da[1]);
        const __m512i d2 = _mm512_set1_epi64((long long)da[2]), d3 = _mm512_set1_epi64((long long)da[3]);
        const __m512 ca = _mm512_set1_ps((float)A->c[i]);
        const __m512i ta = _mm512_set1_epi32((int)((uint32_t)(A->t[i] + maxdir) << 24));
        __m512 mx = _mm512_setzero_ps();
#define POP4(o) _mm512_add_epi64(                                                                     \
        _mm512_add_epi64(_mm512_popcnt_epi64(_mm512_and_si512(d0, _mm512_load_si512(&W[0][j + (o)]))),   \
                         _mm512_popcnt_epi64(_mm512_and_si512(d1, _mm512_load_si512(&W[1][j + (o)])))),  \
        _mm512_add_epi64(_mm512_popcnt_epi64(_mm512_and_si512(d2, _mm512_load_si512(&W[2][j + (o)]))),   \
                         _mm512_popcnt_epi64(_mm512_and_si512(d3, _mm512_load_si512(&W[3][j + (o)])))))
#define STEP(inter, k0)                                                                                \
    do {                                                                                               \
        const __m512 tot = _mm512_add_ps(ca, _mm512_load_ps(&Cf[j]));                                \
        __mmask16 k = _mm512_mask_cmp_ps_mask((k0), tot, fmin, _CMP_GE_OQ);                           \
        k = _mm512_mask_cmple_epu32_mask(k, _mm512_sub_epi32(ta, _mm512_load_si512(&Ts[j])), lim);    \
        const __m512 num = _mm512_cvtepi32_ps(inter);                                                \
        mx = _mm512_mask_max_ps(mx, k, mx, _mm512_div_ps(scale_after ? num : _mm512_mul_ps(s2, num), tot)); \
    } while (0)
        int j = 0;
        for (; j + 16 <= nbp; j += 16)
            STEP(_mm512_permutex2var_epi32(POP4(0), lo_dwords, POP4(8)), 0xFFFF);
        if (j < nbp) /* the last 8 minutiae: half the popcounts */
            STEP(_mm512_permutexvar_epi32(lo_dwords, POP4(0)), 0x00FF);
#undef STEP
#undef POP4
        _mm512_store_ps(Mx[i], mx);
    }
    for (int i = A->n; i < (A->n + 15) / 16 * 16; i++)
        _mm512_store_ps(Mx[i], _mm512_setzero_ps());
    for (int i = 0; i < A->n; i += 16) {
        const __m512 m = max16(Mx + i);
        _mm512_store_si512(best + i, _mm512_cvttps_epi32(scale_after ? _mm512_mul_ps(s2, m) : m));
    }
    return top_sum512(best, A->n, top);
}

__attribute__((target("popcnt,avx2,avx512f,avx512vl,avx512bw,avx512dq,avx512vpopcntdq")))
static int32_t screen4_avx512_pow2(const tpl_t *A, const tpl_t *B, int top) { return screen4_avx512_body(A, B, top, 1); }

__attribute__((target("popcnt,avx2,avx512f,avx512vl,avx512bw,avx512dq,avx512vpopcntdq")))
static int32_t screen4_avx512(const tpl_t *A, const tpl_t *B, int top) { return screen4_avx512_body(A, B, top, 0); }

__attribute__((target_clones("arch=x86-64-v3", "popcnt", "default")))
static int32_t screen4_any(const tpl_t *A, const tpl_t *B, int top)
{
    uint64_t W0[MAXN + 16], W1[MAXN + 16], W2[MAXN + 16], W3[MAXN + 16];
    int32_t T[MAXN + 16], C[MAXN + 16], best[MAXN];
    const int maxdir = (int)prm[P_PAIR_MAX_DIR], minbits = (int)prm[P_SIM_MIN_BITS];
    const int32_t scale2 = (int32_t)(2 * prm[P_SIM_SCALE]);
    for (int j = 0; j < B->n; j++) {
        W0[j] = B->d[4 * j], W1[j] = B->d[4 * j + 1], W2[j] = B->d[4 * j + 2], W3[j] = B->d[4 * j + 3];
        T[j] = B->t[j], C[j] = B->c[j];
    }
    for (int i = 0; i < A->n; i++) {
        const uint64_t *da = A->d + 4 * (size_t)i;
        const uint64_t d0 = da[0], d1 = da[1], d2 = da[2], d3 = da[3];
        const int32_t ta = A->t[i] + maxdir, ca = A->c[i];
        int32_t m = 0;
        for (int j = 0; j < B->n; j++) {
            const int32_t inter = (int32_t)(__builtin_popcountll(d0 & W0[j]) + __builtin_popcountll(d1 & W1[j])
                                            + __builtin_popcountll(d2 & W2[j]) + __builtin_popcountll(d3 & W3[j]));
            const int32_t tot = ca + C[j];
            int32_t v = (int32_t)((float)(scale2 * inter) / (float)(tot | (tot == 0)));
            v &= -(int32_t)((((ta - T[j]) & 255) <= 2 * maxdir) & (tot >= minbits));
            m = v > m ? v : m;
        }
        best[i] = m;
    }
    return top_sum(best, A->n, top);
}

/* any descriptor length: plain loops, the same arithmetic */
static int32_t screen_words(const tpl_t *A, const tpl_t *B, int top)
{
    const int W = (int)prm[P_DESC_WORDS], maxdir = (int)prm[P_PAIR_MAX_DIR], minbits = (int)prm[P_SIM_MIN_BITS];
    const int32_t scale2 = (int32_t)(2 * prm[P_SIM_SCALE]);
    int32_t best[MAXN];
    for (int i = 0; i < A->n; i++) {
        int32_t m = 0;
        for (int j = 0; j < B->n; j++) {
            int32_t inter = 0;
            for (int w = 0; w < W; w++)
                inter += __builtin_popcountll(A->d[(size_t)i * W + w] & B->d[(size_t)j * W + w]);
            const int32_t tot = A->c[i] + B->c[j];
            if (dirdiff(A->t[i], B->t[j]) <= maxdir && tot >= minbits && tot > 0) {
                const int32_t v = (int32_t)((float)(scale2 * inter) / (float)tot);
                m = v > m ? v : m;
            }
        }
        best[i] = m;
    }
    return top_sum(best, A->n, top);
}

static int avx512_screen = -1; /* -1: not probed yet; 0: generic code (probed, or forced) */

static int avx512_available(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512vpopcntdq") && __builtin_cpu_supports("avx512bw")
           && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
}

/* A: the probe, B: one gallery template */
static int32_t screen_pair(const tpl_t *A, const tpl_t *B, int top)
{
    if (prm[P_DESC_WORDS] != 4)
        return screen_words(A, B, top);
    if (avx512_screen < 0)
        avx512_screen = avx512_available();
    if (!avx512_screen)
        return screen4_any(A, B, top);
    const int64_t scale2 = 2 * prm[P_SIM_SCALE];
    return (scale2 & (scale2 - 1)) == 0 ? screen4_avx512_pow2(A, B, top) : screen4_avx512(A, B, top);
}

/* ---------------------------------------------------------------- Python glue -------------- */

typedef struct {
    Py_buffer b[6];
    int nb;
} bufset_t;

static void release(bufset_t *s)
{
    for (int k = 0; k < s->nb; k++)
        PyBuffer_Release(&s->b[k]);
    s->nb = 0;
}

/* get a read-only C-contiguous buffer of native items of the given size and signedness */
static int getbuf(PyObject *o, Py_buffer *v, Py_ssize_t itemsize, int is_signed, const char *what)
{
    if (PyObject_GetBuffer(o, v, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return -1;
    const char *f = v->format ? v->format : "B";
    if (*f == '@' || *f == '=' || *f == '<')
        f++;
    char c = *f;
    int ok = v->itemsize == itemsize && f[1] == '\0';
    if (ok)
        ok = is_signed ? (c == 'i' || c == 'l' || c == 'q') : (c == 'I' || c == 'L' || c == 'Q');
    if (!ok) {
        PyErr_Format(PyExc_TypeError, "%s: expected a contiguous %s%d-bit array, got format '%s' itemsize %zd",
                     what, is_signed ? "int" : "uint", (int)(8 * itemsize), v->format ? v->format : "B",
                     v->itemsize);
        PyBuffer_Release(v);
        return -1;
    }
    return 0;
}

/* x, y, t, desc, cnt, w as a flat set; n = number of minutiae (rows) */
static int get_tpl(PyObject **objs, bufset_t *bs, Py_ssize_t *n)
{
    const char *names[6] = {"x", "y", "t", "desc", "cnt", "w"};
    bs->nb = 0;
    for (int k = 0; k < 6; k++) {
        if (getbuf(objs[k], &bs->b[k], k == 3 ? 8 : 4, k != 3, names[k]) < 0) {
            release(bs);
            return -1;
        }
        bs->nb++;
    }
    Py_ssize_t rows = bs->b[0].len / 4;
    if (bs->b[1].len / 4 != rows || bs->b[2].len / 4 != rows || bs->b[4].len / 4 != rows
        || bs->b[5].len / 4 != rows || bs->b[3].len / 8 != rows * prm[P_DESC_WORDS]) {
        PyErr_SetString(PyExc_ValueError, "template arrays disagree in length");
        release(bs);
        return -1;
    }
    const int32_t *tt = bs->b[2].buf, *cc = bs->b[4].buf, *ww = bs->b[5].buf;
    for (Py_ssize_t i = 0; i < rows; i++)
        if (tt[i] < 0 || tt[i] > 255 || cc[i] < 0 || cc[i] > 64 * prm[P_DESC_WORDS] || ww[i] < 1
            || ww[i] > prm[P_WEIGHT_STEPS]) {
            PyErr_SetString(PyExc_ValueError, "direction code, descriptor count or weight out of range");
            release(bs);
            return -1;
        }
    *n = rows;
    return 0;
}

static PyObject *need_config(void)
{
    PyErr_SetString(PyExc_RuntimeError, "_native.configure() has not been called");
    return NULL;
}

static PyObject *py_configure(PyObject *self, PyObject *args)
{
    PyObject *params, *cs, *sn, *at;
    if (!PyArg_ParseTuple(args, "OOOO", &params, &cs, &sn, &at))
        return NULL;
    PyObject *seq = PySequence_Fast(params, "params must be a sequence");
    if (!seq)
        return NULL;
    if (PySequence_Fast_GET_SIZE(seq) != NPARAMS) {
        Py_DECREF(seq);
        return PyErr_Format(PyExc_ValueError, "expected %d parameters", NPARAMS);
    }
    int64_t p[NPARAMS];
    for (int k = 0; k < NPARAMS; k++) {
        p[k] = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(seq, k));
        if (p[k] == -1 && PyErr_Occurred()) {
            Py_DECREF(seq);
            return NULL;
        }
    }
    Py_DECREF(seq);
    if (p[P_DESC_WORDS] < 1 || p[P_DESC_WORDS] > MAX_WORDS || p[P_TOP_PAIRS] < 1 || p[P_TOP_PAIRS] > MAX_TOP
        || p[P_SEEDS] < 1 || p[P_TRIG_BITS] < 2 || p[P_TRIG_BITS] > 20 || p[P_ATAN_RES] < 1
        || p[P_SIM_SCALE] < 1 || 2 * p[P_SIM_SCALE] * 64 * p[P_DESC_WORDS] >= (1 << 20)
        || p[P_PAIR_BONUS] < 0 || p[P_PAIR_BONUS] > p[P_SIM_SCALE] || p[P_PAIR_UNIT] < 1
        || p[P_SCORE_SCALE] * (p[P_SIM_SCALE] + p[P_PAIR_BONUS]) * (p[P_SIM_SCALE] + p[P_PAIR_BONUS])
               / (p[P_PAIR_UNIT] * p[P_PAIR_UNIT]) >= INT32_MAX
        || p[P_PAIR_MAX_DIR] < 0 || p[P_PAIR_MAX_DIR] > 127 || p[P_ALIGN_DIR] < 0 || p[P_ALIGN_DIR] > 127
        || p[P_MIN_OVERLAP] < 1 || p[P_SCORE_SCALE] < 1 || p[P_SCORE_SCALE] > 1000000 || p[P_ATAN_RES] > 4096
        || p[P_WEIGHT_STEPS] < 1 || p[P_WEIGHT_STEPS] > 16
        || p[P_SCORE_SCALE] * p[P_WEIGHT_STEPS] * p[P_WEIGHT_STEPS] > 100000000)
        return PyErr_Format(PyExc_ValueError, "parameters out of range");
    Py_buffer bc, bs, ba;
    if (getbuf(cs, &bc, 8, 1, "cos") < 0)
        return NULL;
    if (getbuf(sn, &bs, 8, 1, "sin") < 0) {
        PyBuffer_Release(&bc);
        return NULL;
    }
    if (getbuf(at, &ba, 8, 1, "atan") < 0) {
        PyBuffer_Release(&bc);
        PyBuffer_Release(&bs);
        return NULL;
    }
    PyObject *ret = NULL;
    if (bc.len != 256 * 8 || bs.len != 256 * 8 || ba.len != (p[P_ATAN_RES] + 1) * 8) {
        PyErr_SetString(PyExc_ValueError, "table sizes do not match the parameters");
    } else {
        int64_t *na = malloc((size_t)ba.len);
        if (!na) {
            PyErr_NoMemory();
        } else {
            memcpy(na, ba.buf, (size_t)ba.len);
            free(ATAN_T);
            ATAN_T = na;
            memcpy(COS_T, bc.buf, sizeof COS_T);
            memcpy(SIN_T, bs.buf, sizeof SIN_T);
            memcpy(prm, p, sizeof prm);
            RECIP[0] = 0;
            for (uint64_t d = 1; d <= 2048; d++)
                RECIP[d] = (((uint64_t)1 << RECIP_SHIFT) + d - 1) / d;
            configured = 1;
            ret = Py_None;
            Py_INCREF(ret);
        }
    }
    PyBuffer_Release(&bc);
    PyBuffer_Release(&bs);
    PyBuffer_Release(&ba);
    return ret;
}

static PyObject *py_score_pair(PyObject *self, PyObject *args)
{
    PyObject *a[6], *b[6];
    unsigned long long ka, kb;
    if (!configured)
        return need_config();
    if (!PyArg_ParseTuple(args, "OOOOOOKOOOOOOK", &a[0], &a[1], &a[2], &a[3], &a[4], &a[5], &ka, &b[0], &b[1],
                          &b[2], &b[3], &b[4], &b[5], &kb))
        return NULL;
    bufset_t sa, sb;
    Py_ssize_t na, nb;
    if (get_tpl(a, &sa, &na) < 0)
        return NULL;
    if (get_tpl(b, &sb, &nb) < 0) {
        release(&sa);
        return NULL;
    }
    if (na > MAXN || nb > MAXN) {
        release(&sa);
        release(&sb);
        return PyErr_Format(PyExc_ValueError, "at most %d minutiae per template", MAXN);
    }
    tpl_t A = {sa.b[0].buf, sa.b[1].buf, sa.b[2].buf, sa.b[4].buf, sa.b[5].buf, sa.b[3].buf, (int)na, ka};
    tpl_t B = {sb.b[0].buf, sb.b[1].buf, sb.b[2].buf, sb.b[4].buf, sb.b[5].buf, sb.b[3].buf, (int)nb, kb};
    int32_t *sim = malloc(sizeof(int32_t) * (size_t)(na ? na : 1) * (size_t)(nb ? nb : 1));
    if (!sim) {
        release(&sa);
        release(&sb);
        return PyErr_NoMemory();
    }
    int32_t r;
    Py_BEGIN_ALLOW_THREADS
    r = score_pair(&A, &B, sim);
    Py_END_ALLOW_THREADS
    free(sim);
    release(&sa);
    release(&sb);
    return PyLong_FromLong(r);
}

/* The arrays of gallery entry e (descriptors, directions, bit counts), every cache line of them,
 * asked of memory ahead of use. A shortlist's entries lie scattered over the gallery, where the
 * hardware prefetcher cannot guess the next one: the local screen on a random third of 10^5
 * references, ascending, cost 0.64-0.68 us a reference without this and 0.48-0.51 with it, 4
 * entries ahead (in gallery order 0.41-0.43 either way). always_inline: a call to a function
 * that only prefetches has no effect GCC must keep, and it dropped the calls. */
#define PREFETCH_AHEAD 4
static inline __attribute__((always_inline)) void prefetch_entry(int64_t e, const int64_t *offs, const int32_t *gt,
                                                                 const int32_t *gc, const uint64_t *gd, int64_t W)
{
    const int64_t o = offs[e], n = offs[e + 1] - o;
    if (n <= 0)
        return;
    for (const char *d = (const char *)(gd + o * W), *end = (const char *)(gd + (o + n) * W); d < end; d += 64)
        __builtin_prefetch(d, 0, 3);
    for (int64_t j = 0; j < n; j += 16) {
        __builtin_prefetch(gt + o + j, 0, 3);
        __builtin_prefetch(gc + o + j, 0, 3);
    }
    __builtin_prefetch(gt + o + n - 1, 0, 3); /* the last line, when the entry does not start one */
    __builtin_prefetch(gc + o + n - 1, 0, 3);
}

/* score_many and screen_many: the probe against gallery entries `index`, into `out` */
static PyObject *many(PyObject *args, int screen)
{
    PyObject *a[6], *g[6], *offs_o, *keys_o, *idx_o, *out_o;
    unsigned long long ka;
    int top = 0;
    if (!configured)
        return need_config();
    if (screen ? !PyArg_ParseTuple(args, "OOOOOOKOOOOOOOOOOi", &a[0], &a[1], &a[2], &a[3], &a[4], &a[5], &ka, &g[0],
                                   &g[1], &g[2], &g[3], &g[4], &g[5], &offs_o, &keys_o, &idx_o, &out_o, &top)
               : !PyArg_ParseTuple(args, "OOOOOOKOOOOOOOOOO", &a[0], &a[1], &a[2], &a[3], &a[4], &a[5], &ka, &g[0],
                                   &g[1], &g[2], &g[3], &g[4], &g[5], &offs_o, &keys_o, &idx_o, &out_o))
        return NULL;
    if (top < 0)
        return PyErr_Format(PyExc_ValueError, "top must be at least 0");
    bufset_t sa, sg;
    Py_ssize_t na, ng;
    Py_buffer bo, bk, bi, bout;
    if (get_tpl(a, &sa, &na) < 0)
        return NULL;
    if (get_tpl(g, &sg, &ng) < 0) {
        release(&sa);
        return NULL;
    }
    int have = 0;
    PyObject *ret = NULL;
    if (getbuf(offs_o, &bo, 8, 1, "offsets") < 0)
        goto done;
    have = 1;
    if (getbuf(keys_o, &bk, 8, 0, "keys") < 0)
        goto done;
    have = 2;
    if (getbuf(idx_o, &bi, 8, 1, "index") < 0)
        goto done;
    have = 3;
    if (PyObject_GetBuffer(out_o, &bout, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE) < 0)
        goto done;
    have = 4;
    {
        const Py_ssize_t G = bk.len / 8, K = bi.len / 8;
        const int64_t *offs = bo.buf, *idx = bi.buf;
        const uint64_t *keys = bk.buf;
        if (na > MAXN) {
            PyErr_Format(PyExc_ValueError, "at most %d minutiae per template", MAXN);
            goto done;
        }
        if (bo.len / 8 != G + 1 || offs[0] != 0 || offs[G] != ng) {
            PyErr_SetString(PyExc_ValueError, "offsets do not describe the gallery arrays");
            goto done;
        }
        for (Py_ssize_t k = 0; k < G; k++)
            if (offs[k + 1] < offs[k] || offs[k + 1] - offs[k] > MAXN) {
                PyErr_SetString(PyExc_ValueError, "offsets must be non-decreasing, at most 255 minutiae apart");
                goto done;
            }
        for (Py_ssize_t k = 0; k < K; k++)
            if (idx[k] < 0 || idx[k] >= G) {
                PyErr_SetString(PyExc_IndexError, "gallery index out of range");
                goto done;
            }
        if (bout.itemsize != 4 || bout.len / 4 != K) {
            PyErr_SetString(PyExc_ValueError, "out must be an int32 array as long as index");
            goto done;
        }
        int32_t *out = bout.buf;
        int32_t *sim = malloc(sizeof(int32_t) * MAXN * MAXN);
        if (!sim) {
            PyErr_NoMemory();
            goto done;
        }
        tpl_t A = {sa.b[0].buf, sa.b[1].buf, sa.b[2].buf, sa.b[4].buf, sa.b[5].buf, sa.b[3].buf, (int)na, ka};
        const int32_t *gx = sg.b[0].buf, *gy = sg.b[1].buf, *gt = sg.b[2].buf, *gc = sg.b[4].buf, *gw = sg.b[5].buf;
        const uint64_t *gd = sg.b[3].buf;
        const int64_t W = prm[P_DESC_WORDS];
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t k = 0; k < K; k++) {
            if (k + PREFETCH_AHEAD < K)
                prefetch_entry(idx[k + PREFETCH_AHEAD], offs, gt, gc, gd, W);
            const int64_t e = idx[k], o = offs[e];
            tpl_t B = {gx + o, gy + o, gt + o, gc + o, gw + o, gd + o * W, (int)(offs[e + 1] - o), keys[e]};
            out[k] = screen ? screen_pair(&A, &B, top) : score_pair(&A, &B, sim);
        }
        Py_END_ALLOW_THREADS
        free(sim);
        ret = Py_None;
        Py_INCREF(ret);
    }
done:
    if (have >= 4) PyBuffer_Release(&bout);
    if (have >= 3) PyBuffer_Release(&bi);
    if (have >= 2) PyBuffer_Release(&bk);
    if (have >= 1) PyBuffer_Release(&bo);
    release(&sa);
    release(&sg);
    return ret;
}

static PyObject *py_score_many(PyObject *self, PyObject *args) { return many(args, 0); }

static PyObject *py_screen_many(PyObject *self, PyObject *args) { return many(args, 1); }

/* screen_isa(allow_avx512=None): the screen kernel in use ("avx512" or "generic"); with an
 * argument, allow the AVX-512 one (when the CPU has it) or not: the tests run both */
static PyObject *py_screen_isa(PyObject *self, PyObject *args)
{
    int allow = -1;
    if (!PyArg_ParseTuple(args, "|p", &allow))
        return NULL;
    if (allow >= 0)
        avx512_screen = allow ? avx512_available() : 0;
    else if (avx512_screen < 0)
        avx512_screen = avx512_available();
    return PyUnicode_FromString(avx512_screen ? "avx512" : "generic");
}

static PyMethodDef methods[] = {
    {"configure", py_configure, METH_VARARGS,
     "configure(params, cos, sin, atan): set the tuned numbers (order of PARAM_NAMES) and tables."},
    {"score_pair", py_score_pair, METH_VARARGS,
     "score_pair(ax, ay, at, adesc, acnt, aw, akey, bx, by, bt, bdesc, bcnt, bw, bkey) -> int"},
    {"score_many", py_score_many, METH_VARARGS,
     "score_many(px, py, pt, pdesc, pcnt, pw, pkey, gx, gy, gt, gdesc, gcnt, gw, offsets, keys, index, out) -> None"},
    {"screen_isa", py_screen_isa, METH_VARARGS,
     "screen_isa([allow_avx512]) -> str: the screen kernel in use; the argument allows AVX-512 or not."},
    {"screen_many", py_screen_many, METH_VARARGS,
     "screen_many(px, py, pt, pdesc, pcnt, pw, pkey, gx, gy, gt, gdesc, gcnt, gw, offsets, keys, index, out, top) -> None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {PyModuleDef_HEAD_INIT, "_native", "C kernels of the biostation matcher.",
                                       -1, methods};

PyMODINIT_FUNC PyInit__native(void)
{
    PyObject *m = PyModule_Create(&moduledef);
    if (!m)
        return NULL;
    for (int d = 0; d < 256; d++)
        DIRD[d] = (uint8_t)(d < 256 - d ? d : 256 - d);
    PyObject *names = Py_BuildValue(
        "(sssssssssssssssssssss)", "DESC_WORDS", "PAIR_MAX_DIR", "SIM_SCALE", "SIM_MIN_BITS", "TOP_PAIRS",
        "CONS_DIST_ABS", "CONS_DIST_REL", "CONS_ANGLE", "CONS_DIR", "SEEDS", "ALIGN_DIST", "ALIGN_GROW",
        "ALIGN_DIR", "OVERLAP_MARGIN", "MIN_OVERLAP", "SCORE_SCALE", "PAIR_BONUS", "PAIR_UNIT", "TRIG_BITS",
        "ATAN_RES", "WEIGHT_STEPS");
    if (!names || PyModule_AddObject(m, "PARAM_NAMES", names) < 0) {
        Py_XDECREF(names);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
