"""4-4-2 slap segmentation: one slap image in, the single fingers out.

A slap is a plain impression of four fingers (right or left hand) or of the two thumbs, taken at
once. :func:`segment_slap` finds each finger, labels it with its ISO/IEC 19794-4 finger position,
and returns its fingertip box (rotated rectangle and axis-aligned bounds), its rotation, an
upright crop and an NFIQ 2 score of that crop.

Method (each step a small pure function):

1. **Foreground**: ridge energy (band-pass squared, smoothed) above an Otsu threshold, closed and
   hole-filled, so a finger is one solid blob and the gaps between fingers stay background.
   When that foreground spans the whole image and much of its border (an inked card: paper
   grain, printed captions and handwriting have ridge energy too; a hand whose fingers,
   segments and palm all touch spans a live scan but meets its border only where it runs
   off), the prints are taken where the ink is also dark and broad (:func:`ink_foreground`),
   and the result says so.
2. **Fingertips**: connected blobs bigger than a minimum finger area, less those that lie
   below another blob (lower finger segments and the palm, which live scans show). When fewer
   fingertips than fingers are found, fingers touch: the widest is cut where its fingers meet
   (shrinking it until finger cores side by side separate, then flooding the cores back down
   the distance transform, so the cut runs along the neck), then the blobs below (a lower
   fingertip that meets its neighbour's middle segment lies below the neighbour's tip), again
   until the count is reached; of a blob's cuts the one with the most fingertips (up to the
   count), then the most convex ones, is taken. A finger cut by the image's top or side is
   mirrored past the edge for the cut, so its core does not shrink away first. A fingertip
   that is far from convex loses thin rims (a neighbour's faint segment) and is cut again
   where a neighbour's lower segment meets it beside it: at a neck, or, when they join with
   no neck, between the two deepest notches of its outline.
3. **Geometry**: per finger, the principal axis of its distal part (within
   ``FINGERTIP_LENGTH`` widths of the top, taken again until it no longer changes: a lower
   segment merged out of line does not turn it) gives its rotation, and that part is the
   fingertip. A fingertip cut from a touching neighbour takes its axis from its own outline
   where that meets the background (:func:`outline_angle`): what the two shared is missing
   from it and would turn its pixels' axis. A finger cut by the image's side is taken to be at
   least ``CUT_FINGER_WIDTH`` of the slap's whole fingers wide when its length is set.
4. **Labels**: fingers sorted left to right as they appear in a live-scan image (the view of
   the finger pads): right four = index, middle, ring, little; left four = little, ring,
   middle, index; thumbs = left, right. Fingers declared missing are skipped in that order.

The result says when the count does not match (``problems``), rather than guessing which
finger is absent: the operator declares missing fingers (the capture loop records them). It
also says when a "finger" cannot be one (too wide or narrow, turned too far, ragged within its
fingertip box, two boxes on one print) and when ridge-like background spans the image (inked cards): such a slap needs
a look or a retake, its boxes are not to be trusted.

Cost: a few hundred ms for a four-finger slap at 500 ppi (benchmarks/bench_slap.py prints it),
more when touching fingers must be cut, plus the NFIQ 2 of each finger.
Pure functions, thread-safe; raises :class:`~biostation.errors.ImageError` for input that is
not a slap image (wrong type, too small, blank or all black).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain

import cv2
import numpy as np

from ..errors import ImageError
from ..records.vocabulary import FingerPosition as FP

#: fingers of each slap, left to right in the image
SLAP_ORDER: dict[FP, tuple[FP, ...]] = {
    FP.PLAIN_RIGHT_FOUR: (FP.RIGHT_INDEX, FP.RIGHT_MIDDLE, FP.RIGHT_RING, FP.RIGHT_LITTLE),
    FP.PLAIN_LEFT_FOUR: (FP.LEFT_LITTLE, FP.LEFT_RING, FP.LEFT_MIDDLE, FP.LEFT_INDEX),
    FP.PLAIN_THUMBS: (FP.LEFT_THUMB, FP.RIGHT_THUMB),
}
#: smallest finger blob, in square inches (a fingertip is about 0.5 x 0.7 in)
MIN_FINGER_AREA_IN2 = 0.06
#: the fingertip is at most this many finger widths long, from the tip down
FINGERTIP_LENGTH = 1.6
#: a finger cut by the image's side is taken to be at least this fraction of the median width
#: of the slap's whole fingers (a little finger is about three quarters as wide as the others)
CUT_FINGER_WIDTH = 0.75
#: grey standard deviation below which an image has no ridges at all (blank, all black)
MIN_CONTRAST = 4.0
#: a blob on the image's top or bottom edge less tall than this (inches) is not a finger
MIN_SLIVER_IN = 0.25
#: a blob lies below another (a lower finger segment, the palm) when the upper one's bottom
#: quarter and its own top quarter overlap across by at least this fraction of the narrower
BELOW_OVERLAP = 0.5
#: two finger cores are side by side (two fingers) when further apart across than this many
#: times along; in line (a finger's tip and its lower segment, fingers turned up to about 25
#: degrees) below it
SIDE_BY_SIDE = 0.6
#: plausible fingertip width across the finger axis, inches (little finger .. thumb, with margin)
FINGER_WIDTH_IN = (0.25, 1.25)
#: largest plausible finger rotation from upright in a slap, degrees
MAX_FINGER_ANGLE = 45.0
#: a finger blob fills at least this fraction of its convex hull (text, handwriting and card
#: background merged into a "finger" fill much less)
MIN_SOLIDITY = 0.75
#: a foreground region spanning this fraction of the image's width and height, and covering
#: ``BACKGROUND_BORDER`` of the image's border, is background (a hand whose fingers, lower
#: segments and palm all touch spans a live scan too, but meets its border only where the
#: palm or a finger runs off)
BACKGROUND_SPAN, BACKGROUND_BORDER = 0.9, 0.4
#: inked cards: the grey is smoothed over this many inches to tell ink from paper, and a print
#: holds a square this many inches a side (a line of printed text does not)
INK_SMOOTH_IN = 0.02
INK_MIN_SIDE_IN = 0.08
#: a fingertip blob that fills less of its convex hull than this may hold a neighbour's lower
#: segment beside it (a fingertip alone, or with its own segments in line, fills more)
TIP_SOLIDITY = 0.96
#: a fingertip less solid than ``TIP_SOLIDITY`` loses what is thinner than this fraction of its
#: thickest part (a morphological opening), unless that leaves less than ``TRIM_KEEP`` of it
TRIM, TRIM_KEEP = 0.35, 0.6
#: a notch in a fingertip blob's outline at least this fraction of its thickness deep may be
#: where it meets a neighbour's lower segment
NOTCH_DEPTH = 0.15
#: the fingertip's axis comes from its outline (:func:`outline_angle`) when at least this
#: fraction of that borders the background, and the fit turns it at most ``MAX_OUTLINE_TURN``
#: degrees from its pixels' principal axis
MIN_FREE_OUTLINE, MAX_OUTLINE_TURN = 0.3, 25.0
#: a fingertip was cut from touching fingers when this fraction of its outline borders other
#: foreground
MIN_CUT_OUTLINE = 0.05
#: two fingertip boxes may share at most this fraction of the smaller one's area
MAX_TIP_OVERLAP = 0.25


@dataclass
class SegmentedFinger:
    """One finger of a slap.

    ``center`` (x, y) and ``size`` (width, length) in slap pixels; ``angle``: rotation of the
    finger axis from vertical, degrees, positive counter-clockwise as seen on the image;
    ``box``: axis-aligned bounds (x, y, width, height) of the rotated fingertip rectangle;
    ``image``: the fingertip cut out and turned upright; ``quality``: NFIQ 2 of that image.
    """

    position: FP
    center: tuple[float, float]
    size: tuple[float, float]
    angle: float
    box: tuple[int, int, int, int]
    image: np.ndarray = field(repr=False)
    quality: int | None = None


@dataclass
class SlapResult:
    slap: FP
    fingers: list[SegmentedFinger]
    problems: list[str] = field(default_factory=list)

    def by_position(self) -> dict[FP, SegmentedFinger]:
        return {f.position: f for f in self.fingers}


# --- stages ----------------------------------------------------------------------------------------------
def foreground(img: np.ndarray, dpi: int) -> np.ndarray:
    """Mask of ridge areas: smoothed band-pass energy above Otsu's threshold, closed, holes filled."""
    s = dpi / 500.0
    f = img.astype(np.float32)
    bp = cv2.GaussianBlur(f, (0, 0), 1.0 * s) - cv2.GaussianBlur(f, (0, 0), 4.0 * s)
    energy = cv2.GaussianBlur(bp * bp, (0, 0), 6.0 * s)
    # log scale: a light, low-contrast finger must not fall below a dark finger's Otsu level
    e8 = cv2.normalize(np.log1p(energy), None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    _, mask = cv2.threshold(e8, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    k = max(3, int(9 * s) | 1)
    ell = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, ell)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, ell)
    h, w = mask.shape
    canvas = np.zeros((h + 2, w + 2), np.uint8)
    canvas[1:-1, 1:-1] = mask
    cv2.floodFill(canvas, None, (0, 0), 2)
    return (canvas[1:-1, 1:-1] != 2).astype(np.uint8)


def ink_foreground(img: np.ndarray, dpi: int) -> np.ndarray:
    """Mask of inked prints on a card: ridge areas (:func:`foreground`) that are also dark (the
    grey smoothed over ``INK_SMOOTH_IN`` below Otsu's level: paper, thin handwriting and the
    card's print stay light), less what cannot hold an ``INK_MIN_SIDE_IN`` square (lines of
    printed text), holes filled."""
    grey = cv2.GaussianBlur(img.astype(np.float32), (0, 0), INK_SMOOTH_IN * dpi)
    g8 = np.clip(grey, 0, 255).astype(np.uint8)
    _, dark = cv2.threshold(g8, 0, 1, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    mask = foreground(img, dpi) & dark
    k = max(3, int(INK_MIN_SIDE_IN * dpi) | 1)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
    h, w = mask.shape
    canvas = np.zeros((h + 2, w + 2), np.uint8)
    canvas[1:-1, 1:-1] = mask
    cv2.floodFill(canvas, None, (0, 0), 2)
    return (canvas[1:-1, 1:-1] != 2).astype(np.uint8)


def finger_blobs(mask: np.ndarray, dpi: int, expected: int) -> list[np.ndarray]:
    """Pixel masks of the fingertips, left to right.

    Blobs that lie below another blob (lower finger segments, the palm) are not fingertips and
    are left out (:func:`fingertip_blobs`); touching fingers are split at their necks.
    """
    min_area = MIN_FINGER_AREA_IN2 * dpi * dpi
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    h = mask.shape[0]
    top, tall = stats[:, cv2.CC_STAT_TOP], stats[:, cv2.CC_STAT_HEIGHT]
    # a sliver along the top or bottom edge is no finger (a card's printed caption)
    sliver = (tall < MIN_SLIVER_IN * dpi) & ((top == 0) | (top + tall == h))
    blobs = [labels == i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= min_area and not sliver[i]]
    tips = fingertip_blobs(blobs)
    # fingers touch while fingertips are missing: cut the widest tip at its necks, again and again;
    # then the blobs below them (a fingertip lower than its neighbour's that meets the
    # neighbour's middle segment is one blob with it, below that neighbour's tip)
    for _ in range(2 * expected):
        if not 0 < len(tips) < expected:
            break
        lower = [b for b in blobs if not any(b is t for t in tips)]
        for cut in sorted(tips, key=lambda b: -_width(b)) + sorted(lower, key=lambda b: -_width(b)):
            best = _best_split(blobs, cut, len(tips), expected, min_area)
            if best:
                blobs, tips = best
                break
        else:
            break  # nothing splits: fingers are missing, not touching
    blobs, tips = _part_neighbours(blobs, tips, min_area)
    tips.sort(key=lambda b: float(np.nonzero(b)[1].mean()))
    return tips


def _best_split(blobs: list[np.ndarray], cut: np.ndarray, count: int, expected: int,
                min_area: float) -> tuple[list[np.ndarray], list[np.ndarray]] | None:
    """The blobs and fingertips after the best cut of ``cut`` (:func:`_splits`), or ``None``
    when no cut finds more fingertips than ``count`` (a cut that only parts a tip from its own
    segments is no help). Best: the most fingertips up to ``expected``, then the cut whose new
    fingertips are all most nearly convex (a fingertip still joined to a neighbour's segment
    is not), then the least shrink; when every cut finds too many, the first. Every shrink is
    looked at: three fingers in a row that touch may part in two first, and a piece with a
    straight cut side no longer shows its own neck. When no shrink parts the blob, two fingers
    that meet along a broad slanted line (no neck) are cut at its notches
    (:func:`_notch_cuts`)."""
    best, key, first = None, None, None
    for notch, pieces in chain(((False, p) for p in _splits(cut, min_area)),
                               ((True, p) for p in _notch_cuts(cut, min_area))):
        if notch and first:  # the notches only when no shrink parts anything
            break
        trial = [b for b in blobs if b is not cut] + pieces
        more = fingertip_blobs(trial)
        if len(more) <= count:
            continue
        first = first or (trial, more)
        if len(more) > expected:
            continue
        new = [p for p in pieces if any(p is m for m in more)]
        k = (len(more), min(_solidity(p) for p in new) if new else 0.0)
        if key is None or k > key:
            best, key = (trial, more), k
    return best or first


def _part_neighbours(blobs: list[np.ndarray], tips: list[np.ndarray],
                     min_area: float) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Fingertips with a neighbour's lower segment beside them, cut off.

    When fingers touch, a fingertip that lies lower than its neighbour's meets that finger's
    middle segment: one blob, which is still one "fingertip" but shaped and turned like
    neither. Cut it where the two meet side by side (:func:`_splits`), and keep the cut when
    exactly one piece is still a fingertip and the others lie below other fingertips. Only
    fingertips less solid than ``TIP_SOLIDITY`` are tried (a fingertip alone, or with its own
    segments in line, is near convex).
    """
    todo = [t for t in tips if _solidity(t) < TIP_SOLIDITY]
    while todo:
        tip = todo.pop()
        trimmed = _trimmed(tip)  # thin rims first: a cut at their notches would bite into the tip
        if trimmed is not tip:
            blobs = [trimmed if b is tip else b for b in blobs]
            tips = [trimmed if t is tip else t for t in tips]
            tip = trimmed
        solidity = _solidity(tip)
        if solidity >= TIP_SOLIDITY:
            continue
        for notch, pieces in chain(((False, p) for p in _splits(tip, min_area)),
                                   ((True, p) for p in _notch_cuts(tip, min_area))):
            trial = [b for b in blobs if b is not tip] + pieces
            more = fingertip_blobs(trial)
            kept = [p for p in pieces if any(p is m for m in more)]
            if len(more) == len(tips) and len(kept) == 1 and (not notch or _solidity(kept[0]) > solidity):
                blobs, tips = trial, more
                todo.append(kept[0])  # more may lie beside it
                break
    return blobs, tips


def _notch_cuts(blob: np.ndarray, min_area: float) -> Iterator[list[np.ndarray]]:
    """Cuts of a blob at its notches, for two fingers joined so broadly that shrinking never
    parts them (no neck): where a little fingertip meets the neighbour's middle segment, the
    outline still bends in at the join. Notches (convexity defects deeper than ``NOTCH_DEPTH``
    of the blob's thickness): the line between the two deepest first, then a line from each
    straight into the blob, square to its hull. Pieces smaller than a finger are dropped."""
    ys, xs = np.nonzero(blob)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    b8 = cv2.copyMakeBorder(blob[y0:y1, x0:x1].astype(np.uint8), 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    contours, _ = cv2.findContours(b8, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return
    c = max(contours, key=cv2.contourArea)
    thick = 2.0 * float(cv2.distanceTransform(b8, cv2.DIST_L2, 5).max())
    try:
        defects = cv2.convexityDefects(c, cv2.convexHull(c, returnPoints=False))
    except cv2.error:  # a self-touching outline
        return
    if defects is None:
        return
    deep = sorted((d for d in defects[:, 0] if d[3] / 256.0 >= NOTCH_DEPTH * thick), key=lambda d: -d[3])[:3]
    lines = []
    if len(deep) >= 2:
        lines.append((c[deep[0][2]][0], c[deep[1][2]][0]))
    for start, end, far, _ in deep:
        v = (c[end][0] - c[start][0]).astype(np.float64)
        normal = np.array([-v[1], v[0]]) / (np.hypot(*v) or 1.0)
        p = c[far][0].astype(np.float64)
        probe = np.round(p + 4 * normal).astype(int)
        if not (0 <= probe[1] < b8.shape[0] and 0 <= probe[0] < b8.shape[1] and b8[probe[1], probe[0]]):
            normal = -normal
        lines.append((c[far][0], np.round(p + 2 * thick * normal).astype(int)))
    for a, b in lines:
        cut = b8.copy()
        cv2.line(cut, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), 0, 3)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(cut, connectivity=4)
        pieces = []
        for i in range(1, n):
            if stats[i, cv2.CC_STAT_AREA] >= min_area:
                piece = np.zeros_like(blob)
                piece[y0:y1, x0:x1] = (labels == i)[1:-1, 1:-1]
                pieces.append(piece)
        if len(pieces) >= 2:
            yield pieces


def _trimmed(blob: np.ndarray) -> np.ndarray:
    """The blob less what is thinner than ``TRIM`` of its thickest part (a morphological
    opening): the ragged rim of a faint lower segment of a neighbour, or a sliver a cut left,
    joined to a fingertip. The fingertip's own lower segments are as broad as it and stay.
    Unchanged when the opening would leave less than ``TRIM_KEEP`` of it, or take its top (a
    fingertip that the image's side cut thin, joined to broader segments below)."""
    ys, xs = np.nonzero(blob)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    b8 = cv2.copyMakeBorder(blob[y0:y1, x0:x1].astype(np.uint8), 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    dist = cv2.distanceTransform(b8, cv2.DIST_L2, 5)
    r = TRIM * float(dist.max())
    core = (dist > r).astype(np.uint8)
    opened = (cv2.distanceTransform(1 - core, cv2.DIST_L2, 5) <= r) & (b8 > 0)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(opened.astype(np.uint8), connectivity=8)
    if n < 2:
        return blob
    keep = labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))  # the biggest part: the fingertip
    top = int(np.nonzero(keep.any(axis=1))[0][0]) - 1  # rows of b8 start one above the blob's
    if keep.sum() < TRIM_KEEP * blob.sum() or top > 0.1 * r / TRIM:
        return blob  # too much would go, or the blob's top (a fingertip, cut thin by the image's side)
    out = np.zeros_like(blob)
    out[y0:y1, x0:x1] = keep[1:-1, 1:-1]
    return out


def fingertip_blobs(blobs: list[np.ndarray]) -> list[np.ndarray]:
    """The blobs that are not below another blob.

    In a slap the fingertips are the top of each finger; what lies under a fingertip, in line
    with it, is its middle or proximal segment (a live scan shows them as separate blobs past
    the creases) or the palm. Blob B is below the others when, in at least ``BELOW_OVERLAP`` of
    the columns of B's top quarter, a blob that starts higher has pixels above B's top (the
    palm lies below several fingers at once).
    """
    ext = []
    for b in blobs:
        rows, cols = np.nonzero(b.any(axis=1))[0], np.nonzero(b.any(axis=0))[0]
        top, bottom, x0, x1 = int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])
        sub = b[top:bottom + 1, x0:x1 + 1]
        band = np.nonzero(sub[: (bottom - top) // 4 + 1].any(axis=0))[0] + x0
        colmin = np.full(b.shape[1], np.iinfo(np.int32).max, np.int64)  # topmost pixel of each column
        colmin[x0:x1 + 1] = np.where(sub.any(axis=0), sub.argmax(axis=0) + top, colmin[x0:x1 + 1])
        ext.append((top, int(band[0]), int(band[-1]), colmin))

    def below(j: int) -> bool:  # is blob j below the blobs that start higher?
        tj, a0, a1, _ = ext[j]
        higher = [e[3][a0:a1 + 1] for i, e in enumerate(ext) if i != j and e[0] < tj]
        if not higher:
            return False
        over = np.min(higher, axis=0) < tj
        return np.count_nonzero(over) >= BELOW_OVERLAP * (a1 - a0 + 1)

    return [b for j, b in enumerate(blobs) if not below(j)]


def _solidity(blob: np.ndarray) -> float:
    """The fraction of its convex hull that a blob fills."""
    contours, _ = cv2.findContours(blob.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    hull = cv2.contourArea(cv2.convexHull(np.concatenate(contours))) if contours else 0.0
    return float(blob.sum()) / hull if hull else 0.0


def _width(blob: np.ndarray) -> float:
    xs = np.nonzero(blob.any(axis=0))[0]
    return float(xs[-1] - xs[0] + 1) if xs.size else 0.0


def _splits(blob: np.ndarray, min_area: float, across: bool = True) -> Iterator[list[np.ndarray]]:
    """Ways to cut a blob of touching fingers where they meet, from the least shrink up.

    Touching fingers meet at a neck, thinner than either finger: shrinking the blob (a rising
    threshold on its distance transform) separates the finger cores. Each shrink that leaves
    cores of a useful size, two of them side by side (further apart across than
    ``SIDE_BY_SIDE`` times along: a core in line below another may be a lower segment of the
    same finger, past its crease), seeds a cut:
    every blob pixel goes to the nearest core, and pieces smaller than a finger are dropped.
    A deeper shrink with as many cores as the last cut is skipped (its cut is the same).
    ``across=False``: every cut, side by side or not (to cut lower segments off a fingertip).
    """
    ys, xs = np.nonzero(blob)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1  # bounds; may end at the image edge
    # one background pixel all round, but a finger cut by the image's top or side runs on past
    # it, mirrored (the edge is no border of the finger: its core would shrink away before the
    # neck parts); the bottom edge is where the hand runs on (the palm), a border
    h, w = blob.shape
    edge = (y0 == 0, False, x0 == 0, x1 == w)  # top, bottom, left, right
    b8 = cv2.copyMakeBorder(blob[y0:y1, x0:x1].astype(np.uint8), *(0 if e else 1 for e in edge),
                            cv2.BORDER_CONSTANT, value=0)
    pad = (size if e else 0 for e, size in zip(edge, (y1 - y0, 0, x1 - x0, x1 - x0)))  # one mirror image
    pt, _, pl, _ = pad = tuple(pad)
    b8 = cv2.copyMakeBorder(b8, *pad, cv2.BORDER_REFLECT)
    pt, pl = pt or 1, pl or 1  # where the blob's bounds start in b8
    dist = cv2.distanceTransform(b8, cv2.DIST_L2, 5)
    inside = dist[pt:pt + y1 - y0, pl:pl + x1 - x0]
    top = float(inside.max())
    coarse = dist[::2, ::2]  # cores are looked for at half resolution first (most shrinks part nothing)
    last = 0
    for frac in np.linspace(0.2, 0.95, 16):
        if not _cores_apart(coarse > frac * top, 0.25 * min_area, across):
            continue
        n, labels, stats, cents = cv2.connectedComponentsWithStats((dist > frac * top).astype(np.uint8),
                                                                   connectivity=8)
        big = sorted((i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= 0.01 * min_area),
                     key=lambda i: -stats[i, cv2.CC_STAT_AREA])[:8]
        if len(big) < 2 or (across and not _side_by_side(big, cents)) or len(big) == last:
            continue  # the same cores, shrunk further, flood back to the same cut
        last = len(big)
        owner = _flood(dist, np.where(np.isin(labels, big), labels, 0))[pt:pt + y1 - y0, pl:pl + x1 - x0]
        pieces = []
        for i in big:
            piece = np.zeros_like(blob)
            piece[y0:y1, x0:x1] = blob[y0:y1, x0:x1] & (owner == i)
            if piece.sum() >= min_area:
                pieces.append(piece)
        if len(pieces) >= 2:
            yield pieces


def _flood(dist: np.ndarray, markers: np.ndarray, levels: int = 16) -> np.ndarray:
    """Each pixel's core: the cores (``markers`` > 0) flooded down the distance transform, a
    level at a time (a watershed), so that touching fingers part along their neck, where the
    distance to the border is least, not half way between their cores. Within a level a pixel
    goes to the nearest core region. At half resolution."""
    d = dist[::2, ::2]
    owner = markers[::2, ::2].astype(np.int32)
    for level in np.linspace(float(d.max()), 0.0, levels + 1)[1:]:
        have = owner > 0
        grow = (d > level) & ~have if level > 0 else ~have
        if not grow.any() or not have.any():
            continue
        _, near = cv2.distanceTransformWithLabels((~have).astype(np.uint8), cv2.DIST_L2, 5,
                                                  labelType=cv2.DIST_LABEL_PIXEL)
        of = np.zeros(int(near.max()) + 1, np.int32)
        of[near[have]] = owner[have]
        owner[grow] = of[near[grow]]
    full = np.repeat(np.repeat(owner, 2, axis=0), 2, axis=1)
    return full[: dist.shape[0], : dist.shape[1]]


def _side_by_side(big: list[int], cents: np.ndarray) -> bool:
    return any(abs(cents[i][0] - cents[j][0]) > SIDE_BY_SIDE * abs(cents[i][1] - cents[j][1])
               for k, i in enumerate(big) for j in big[k + 1:])


def _cores_apart(cores: np.ndarray, min_area: float, across: bool) -> bool:
    """Two cores of at least 1 % of ``min_area`` (side by side when ``across``) in the mask?"""
    n, _, stats, cents = cv2.connectedComponentsWithStats(cores.astype(np.uint8), connectivity=8)
    big = sorted((i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= 0.01 * min_area),
                 key=lambda i: -stats[i, cv2.CC_STAT_AREA])[:8]
    return len(big) >= 2 and (not across or _side_by_side(big, cents))


def finger_geometry(blob: np.ndarray, min_width: float = 0.0,
                    angle: float | None = None) -> tuple[tuple[float, float], tuple[float, float], float]:
    """Fingertip centre (x, y), size (width, length) and angle (degrees, CCW from vertical).

    ``min_width``: the finger is at least this wide when its tip length is set (a finger cut by
    the image's side is wider than what is seen of it). ``angle``: the axis is known (see
    :func:`outline_angle`), only the rest is measured.

    The axis is the principal axis of the distal part: a finger's lower segment merged with its
    tip (a crease the foreground bridged) is often out of line with it, and would turn the
    axis of the whole blob. So the axis is taken again on the part within ``FINGERTIP_LENGTH``
    widths of the top, until that part no longer changes.
    """
    ys, xs = np.nonzero(blob)
    step = max(1, len(ys) // 20000)  # a sample of the pixels is plenty for the moments
    pts = np.stack([xs[::step], ys[::step]], axis=1).astype(np.float64)
    sel = np.ones(len(pts), bool)
    for _ in range(6):
        part = pts[sel]
        mean = part.mean(axis=0)
        if angle is None:
            axis = np.linalg.eigh(np.cov((part - mean).T))[1][:, 1]  # the long axis
        else:
            axis = np.array([-math.sin(math.radians(angle)), -math.cos(math.radians(angle))])
        if axis[1] > 0:  # point it up the image (towards the tip, y decreasing)
            axis = -axis
        across = np.array([-axis[1], axis[0]])
        along_c = (pts - mean) @ axis
        across_c = (pts - mean) @ across
        lo, hi = np.percentile(across_c[sel], [1, 99])
        width = float(hi - lo)
        top = float(along_c.max())
        distal = along_c >= top - FINGERTIP_LENGTH * max(width, min_width)
        if np.count_nonzero(distal != sel) <= 0.002 * len(sel) or distal.sum() < 10:
            break
        sel = distal
    bottom = float(along_c[sel].min())
    length = min(top - bottom, FINGERTIP_LENGTH * max(width, min_width))
    mid = top - length / 2
    center = mean + axis * mid + across * float((hi + lo) / 2)
    # angle of the axis from "up" (0, -1), counter-clockwise positive as seen on the image
    angle = math.degrees(math.atan2(-axis[0], -axis[1]))
    return (float(center[0]), float(center[1])), (width, length), angle


def _was_cut(blob: np.ndarray, mask: np.ndarray) -> bool:
    """Was the blob cut from touching fingers: does at least ``MIN_CUT_OUTLINE`` of its outline
    border other foreground?"""
    ys, xs = np.nonzero(blob)
    y0, y1 = max(int(ys.min()) - 2, 0), int(ys.max()) + 3
    x0, x1 = max(int(xs.min()) - 2, 0), int(xs.max()) + 3
    b = blob[y0:y1, x0:x1].astype(np.uint8)
    ring = cv2.dilate(b, np.ones((3, 3), np.uint8)) - b  # the pixels just outside the blob
    return bool(ring.any()) and float(mask[y0:y1, x0:x1][ring > 0].mean()) >= MIN_CUT_OUTLINE


def outline_angle(blob: np.ndarray, mask: np.ndarray, center: tuple[float, float], size: tuple[float, float],
                  angle: float) -> float | None:
    """The axis of a fingertip cut from touching fingers, from its own outline: an ellipse
    fitted to the outline of its
    fingertip part (:func:`fingertip_part`) where that borders the background. A fingertip cut
    from a touching neighbour lacks what the two shared, and its pixels' principal axis turns
    towards the cut; the cut runs through foreground (``mask``) and is left out of the fit,
    as is the fingertip box's own lower side. ``None`` when too little outline is free or the
    fit strays more than ``MAX_OUTLINE_TURN`` from ``angle``."""
    part = fingertip_part(blob, center, size, angle).astype(np.uint8)
    contours, _ = cv2.findContours(part, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return None
    c = max(contours, key=cv2.contourArea)[:, 0]
    near_background = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)) == 0
    free = near_background[c[:, 1], c[:, 0]]
    if free.sum() < max(20, MIN_FREE_OUTLINE * len(c)):
        return None
    (_, _), (ew, eh), rot = cv2.fitEllipse(c[free].astype(np.float32))
    theta = math.radians(rot if eh >= ew else rot + 90)  # the long axis, from the image's y axis
    axis = np.array([-math.sin(theta), math.cos(theta)])
    if axis[1] > 0:
        axis = -axis
    fitted = math.degrees(math.atan2(-axis[0], -axis[1]))
    return fitted if abs(fitted - angle) <= MAX_OUTLINE_TURN else None


def fingertip_part(blob: np.ndarray, center: tuple[float, float], size: tuple[float, float],
                   angle: float) -> np.ndarray:
    """The pixels of ``blob`` inside its fingertip rectangle (a lower segment merged with the
    tip, out of line with it, is no part of the fingertip's shape)."""
    rect = np.zeros(blob.shape, np.uint8)
    cv2.fillPoly(rect, [np.round(cv2.boxPoints((center, size, -angle))).astype(np.int32)], 1)
    return blob.astype(bool) & rect.astype(bool)


def upright_crop(img: np.ndarray, center: tuple[float, float], size: tuple[float, float], angle: float) -> np.ndarray:
    """The rotated fingertip rectangle, resampled upright (white outside the image)."""
    w, h = int(round(size[0])), int(round(size[1]))
    m = cv2.getRotationMatrix2D(center, -angle, 1.0)
    m[0, 2] += w / 2 - center[0]
    m[1, 2] += h / 2 - center[1]
    return cv2.warpAffine(img, m, (max(w, 1), max(h, 1)), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=255)


def textured_background(mask: np.ndarray) -> list[str]:
    """A foreground region that spans the whole image and much of its border is background with
    ridge-like texture
    (an inked card's paper, print and handwriting; a dirty platen), not a finger: fingertips
    cannot be told from it reliably."""
    h, w = mask.shape
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    border = np.concatenate([labels[0], labels[-1], labels[1:-1, 0], labels[1:-1, -1]])
    on_border = np.bincount(border, minlength=n) / border.size
    if any(stats[i, cv2.CC_STAT_WIDTH] >= BACKGROUND_SPAN * w and stats[i, cv2.CC_STAT_HEIGHT] >= BACKGROUND_SPAN * h
           and on_border[i] >= BACKGROUND_BORDER for i in range(1, n)):
        return ["ridge-like background across the whole image (inked card? dirty platen?): fingertips unreliable"]
    return []


def implausible_finger(pos: FP, blob: np.ndarray, size: tuple[float, float], angle: float, dpi: int,
                       cut: bool | None = None) -> list[str]:
    """Why a segmented "finger" cannot be one (empty when it can): too narrow or too wide,
    turned too far, or a ragged shape (ridge-like background, text or handwriting merged in,
    as on inked cards). ``cut``: the finger runs off the image's side (default: ``blob``
    touches it), so it may be narrower."""
    out = []
    width_in = size[0] / dpi
    if cut is None:
        cut = bool(blob[:, 0].any() or blob[:, -1].any())
    if width_in > FINGER_WIDTH_IN[1] or (width_in < FINGER_WIDTH_IN[0] and not cut):
        out.append(f"{pos.name}: {width_in:.2f} in wide, not a fingertip")
    if abs(angle) > MAX_FINGER_ANGLE:
        out.append(f"{pos.name}: turned {angle:.0f} degrees, not a fingertip")
    solidity = _solidity(blob)
    if solidity < MIN_SOLIDITY:
        out.append(f"{pos.name}: ragged shape (fills {solidity:.0%} of its hull), not a fingertip")
    return out


def overlapping_tips(fingers: list[SegmentedFinger]) -> list[str]:
    """Fingertip rectangles that share much of their area: one print taken for two."""
    out = []
    rects = [(f.position, (f.center, f.size, -f.angle)) for f in fingers]
    for i, (p, a) in enumerate(rects):
        for q, b in rects[i + 1:]:
            kind, pts = cv2.rotatedRectangleIntersection(a, b)
            if kind == cv2.INTERSECT_NONE or pts is None:
                continue
            inter = cv2.contourArea(cv2.convexHull(pts))
            smaller = min(a[1][0] * a[1][1], b[1][0] * b[1][1])
            if smaller and inter / smaller > MAX_TIP_OVERLAP:
                out.append(f"{p.name} and {q.name} overlap ({inter / smaller:.0%})")
    return out


# --- orchestrator -----------------------------------------------------------------------------------------
def segment_slap(image: np.ndarray, slap: FP = FP.PLAIN_RIGHT_FOUR, dpi: int = 500,
                 missing: Iterable[FP] = (), quality: bool = True) -> SlapResult:
    """Segment a 4-4-2 slap into fingers (see the module doc).

    ``slap``: PLAIN_RIGHT_FOUR, PLAIN_LEFT_FOUR or PLAIN_THUMBS. ``missing``: fingers of that slap
    declared absent (amputated, bandaged); the others are labelled in order. ``quality``:
    compute NFIQ 2 of each finger (needs the NFIQ 2 model).
    """
    slap = FP(slap)
    if slap not in SLAP_ORDER:
        raise ValueError(f"{slap.name} is not a slap position (13, 14 or 15)")
    if not isinstance(image, np.ndarray) or image.ndim != 2:
        raise ImageError(f"expected a 2-D grey slap image, got {getattr(image, 'shape', type(image).__name__)}")
    if image.dtype != np.uint8:
        raise ImageError(f"expected an 8-bit slap image, got {image.dtype}")
    if not 250 <= dpi <= 2000:
        raise ImageError(f"resolution {dpi} ppi out of range 250..2000")
    h, w = image.shape
    if min(h, w) < dpi * 0.5:
        raise ImageError(f"{w}x{h} is too small for a slap at {dpi} ppi (at least half an inch a side)")
    if float(image.std()) < MIN_CONTRAST:
        tone = "all black" if image.mean() < 40 else "blank" if image.mean() > 215 else "uniform"
        raise ImageError(f"{tone} slap image: no ridges to segment")
    missing_set = {FP(m) for m in missing}
    unknown = missing_set - set(SLAP_ORDER[slap])
    if unknown:
        raise ValueError(f"{', '.join(m.name for m in unknown)} not in a {slap.name} slap")
    labels = [p for p in SLAP_ORDER[slap] if p not in missing_set]
    mask = foreground(image, dpi)
    problems = textured_background(mask)
    if problems:  # an inked card: the prints are where the ink is dark
        ink = ink_foreground(image, dpi)
        if ink.any() and not textured_background(ink):
            mask = ink
            problems = ["ridge-like background across the image (an inked card?): fingertips found where the "
                        "ink is dark, check them"]
    blobs = finger_blobs(mask, dpi, len(labels))
    if not blobs:
        raise ImageError("no finger found in the slap image")
    if len(blobs) != len(labels):
        problems.append(f"expected {len(labels)} fingers, found {len(blobs)}")
        if len(blobs) > len(labels):  # keep the biggest, in their left-to-right order; a blob on the
            # bottom edge (the palm, a finger's base) last
            keep = sorted(sorted(range(len(blobs)), key=lambda i: (bool(blobs[i][-1].any()),
                                                                   -int(blobs[i].sum())))[: len(labels)])
            blobs = [blobs[i] for i in keep]
    fingers = []
    geometry = [finger_geometry(b) for b in blobs]
    cut = [bool(b[:, 0].any() or b[:, -1].any()) for b in blobs]
    whole = [g[1][0] for g, c in zip(geometry, cut) if not c]
    for i in range(len(blobs)):
        if cut[i] and whole:
            geometry[i] = finger_geometry(blobs[i], CUT_FINGER_WIDTH * float(np.median(whole)))
    for i, (b, g) in enumerate(zip(blobs, geometry)):  # a tip cut from a neighbour: the axis of its outline
        if cut[i] or not _was_cut(b, mask):
            continue
        turned = outline_angle(b, mask, *g)
        if turned is not None:
            geometry[i] = finger_geometry(b, CUT_FINGER_WIDTH * float(np.median(whole)) if cut[i] and whole else 0.0,
                                          turned)
    for pos, blob, (center, size, angle), c in zip(labels, blobs, geometry, cut):
        crop = upright_crop(image, center, size, angle)
        pts = cv2.boxPoints((center, size, -angle))
        x0, y0 = np.floor(pts.min(axis=0)).astype(int)
        x1, y1 = np.ceil(pts.max(axis=0)).astype(int)
        box = (max(int(x0), 0), max(int(y0), 0), int(min(x1, w) - max(x0, 0)), int(min(y1, h) - max(y0, 0)))
        fingers.append(SegmentedFinger(pos, center, size, angle, box, crop))
        problems += implausible_finger(pos, fingertip_part(blob, center, size, angle), size, angle, dpi, cut=c)
    problems += overlapping_tips(fingers)
    if quality:
        from .nfiq2 import nfiq2

        for f in fingers:
            try:
                f.quality = nfiq2(f.image, dpi=dpi).score
            except ImageError:
                f.quality = 0
    return SlapResult(slap, fingers, problems)
