"""Stage 6: binarization and thinning.

Ridges are the positive part of the enhanced image inside the foreground. Thinning is Zhang and Suen's parallel algorithm (CACM 27(3) 1984) run as table
look-ups: one 3x3 correlation encodes each pixel's eight neighbours as a byte, a 256-entry table
says whether the pixel goes. A last pass removes staircase corners so that the skeleton is
exactly one pixel wide in the 8-connected sense.

Neighbour bits (image coordinates, y down): 1 N, 2 NE, 4 E, 8 SE, 16 S, 32 SW, 64 W, 128 NW.
"""

from __future__ import annotations

import cv2
import numpy as np

#: 3x3 correlation kernel producing the neighbour byte of every pixel of a 0/1 image
CODE_KERNEL = np.array([[128, 1, 2], [64, 0, 4], [32, 16, 8]], np.float32)
#: neighbour offsets (dy, dx) in bit order
OFFSETS = ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))


def neighbour_code(img01: np.ndarray) -> np.ndarray:
    """Neighbour byte of every pixel of a uint8 0/1 image (outside the image counts as 0)."""
    return cv2.filter2D(img01, cv2.CV_8U, CODE_KERNEL, borderType=cv2.BORDER_CONSTANT)


def _bits(c: int) -> list[int]:
    return [(c >> k) & 1 for k in range(8)]


def _components(c: int) -> int:
    """Number of 8-connected groups among the set neighbours of a pixel with code ``c``."""
    pts = [OFFSETS[k] for k, b in enumerate(_bits(c)) if b]
    seen: set[int] = set()
    groups = 0
    for i in range(len(pts)):
        if i in seen:
            continue
        groups += 1
        stack = [i]
        seen.add(i)
        while stack:
            j = stack.pop()
            for k in range(len(pts)):
                if k not in seen and max(abs(pts[j][0] - pts[k][0]), abs(pts[j][1] - pts[k][1])) == 1:
                    seen.add(k)
                    stack.append(k)
    return groups


def _zs_table(first: bool) -> np.ndarray:
    t = np.zeros(256, np.uint8)
    for c in range(256):
        p2, p3, p4, p5, p6, p7, p8, p9 = _bits(c)
        ring = [p2, p3, p4, p5, p6, p7, p8, p9, p2]
        a = sum(1 for i in range(8) if ring[i] == 0 and ring[i + 1] == 1)
        b = sum(ring[:8])
        if not (2 <= b <= 6 and a == 1):
            continue
        if first and p2 * p4 * p6 == 0 and p4 * p6 * p8 == 0:
            t[c] = 1
        if not first and p2 * p4 * p8 == 0 and p2 * p6 * p8 == 0:
            t[c] = 1
    return t


def _corner_tables() -> list[np.ndarray]:
    """Staircase corners: two 4-neighbours set, the diagonal between them clear, and removing
    the pixel leaves its neighbours one 8-connected group. One table per corner direction, run
    one after another so that no two adjacent pixels go in the same pass."""
    tables = []
    for a, diag, b in ((0, 1, 2), (2, 3, 4), (4, 5, 6), (6, 7, 0)):
        t = np.zeros(256, np.uint8)
        for c in range(256):
            bits = _bits(c)
            if bits[a] and bits[b] and not bits[diag] and sum(bits) >= 2 and _components(c) == 1:
                t[c] = 1
        tables.append(t)
    return tables


_ZS1, _ZS2 = _zs_table(True), _zs_table(False)
_CORNERS = _corner_tables()
def _crossings(c: int) -> int:
    """Rutovitz crossing number: 0 -> 1 transitions around the ring of neighbours. Counted this
    way (not as 8-connected groups), the two arms of a junction triangle are two branches."""
    b = _bits(c)
    return sum(1 for k in range(8) if b[k] == 0 and b[(k + 1) % 8] == 1)


#: branches leaving a skeleton pixel, for each code: 1 at ridge endings, 3+ at bifurcations
BRANCHES = np.array([_crossings(c) for c in range(256)], np.uint8)
#: number of set neighbours for each code
NEIGHBOURS = np.array([sum(_bits(c)) for c in range(256)], np.uint8)


def binarize(enhanced: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Ridge pixels (uint8 0/1): the positive part of the enhanced image inside the mask.

    The Gabor filter leaves few pores or specks at 500 dpi; those that survive become short
    segments (dots) or pairs of close forks (lakes) after thinning, and :mod:`.filtering`
    removes them as such, which is cheaper than labelling holes here.
    """
    return ((enhanced > 0).view(np.uint8) & mask)


def thin(ridges: np.ndarray) -> np.ndarray:
    """One-pixel-wide, 8-connected skeleton (uint8 0/1) of a 0/1 ridge image.

    Each iteration only looks at the bounding box of the previous iteration's deletions (plus
    two pixels): elsewhere no neighbourhood changed, so nothing new could go. The result is
    the same as full-image passes; the cost falls to the area still being thinned, which after
    the first few iterations is a few wide blobs at most.
    """
    skel = ridges.copy()
    h, w = skel.shape
    y0, y1, x0, x1 = 0, h, 0, w
    while y0 < y1 and x0 < x1:
        # the window with a one-pixel apron, so that the inner pixels see all their neighbours
        ay0, ay1, ax0, ax1 = max(y0 - 1, 0), min(y1 + 1, h), max(x0 - 1, 0), min(x1 + 1, w)
        inner = (slice(y0 - ay0, y1 - ay0), slice(x0 - ax0, x1 - ax0))
        gone_any = np.zeros((y1 - y0, x1 - x0), np.uint8)
        for table in (_ZS1, _ZS2):
            win = skel[ay0:ay1, ax0:ax1]
            gone = (cv2.LUT(neighbour_code(win), table) & win)[inner]
            if cv2.countNonZero(gone):
                win[inner] ^= gone
                gone_any |= gone
        if not cv2.countNonZero(gone_any):
            break
        bx, by, bw, bh = cv2.boundingRect(gone_any)
        y0, y1 = max(y0 + by - 2, 0), min(y0 + by + bh + 2, h)
        x0, x1 = max(x0 + bx - 2, 0), min(x0 + bx + bw + 2, w)
    for table in _CORNERS:
        skel ^= cv2.LUT(neighbour_code(skel), table) & skel
    return skel
