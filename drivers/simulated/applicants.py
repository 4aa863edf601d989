"""Simulated applicants for the simulated scanner: ten fingers each, flat and slap captures that agree.

A desk enrols people, not images: the simulated scanner serves the fingers of one applicant at a
time, so that a whole enrollment (4-4-2 slaps, then flat singles) holds ten real, different
fingers whose slap and single captures are of the same finger, and the sequence check and the
duplicate search see what they would see at a desk. An applicant is the ten fingers of one FVC
set B database (fingers 101..110 as right thumb .. left little, as in
:mod:`biostation.fingerprint.sequence_compose`); the databases found below the scanner's image
folder are the applicants, in a stable order, and the list starts again after the last one (so a
demo that enrols more people than that meets a duplicate, as a desk does). Without FVC
databases the applicants are generated ridge patterns.

Captures of one applicant: a single of position ``p`` is impression ``1 + k`` of its finger
(``k``: how many times ``p`` was captured before, so a retry is a new touch); a slap is
composed from impression 8 of its fingers (turned by up to 10 degrees, spaced, staggered), never
an impression a single uses first. Deterministic: the same applicant and attempt give the same
image.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from biostation.fingerprint.sequence_compose import platen
from biostation.fingerprint.slap import SLAP_ORDER
from biostation.fingerprint.slap_compose import compose_slap
from biostation.records import FingerPosition, ImpressionKind

__all__ = ["Applicants"]

_FINGER_FILE = re.compile(r"^(1(?:0[1-9]|10))_([1-8])\.(tif|tiff|png|bmp)$", re.IGNORECASE)
#: resolution of the FVC set B databases whose README gives one other than 500 ppi
_DPI = {("fvc2002", "DB2_B"): 569}


def _databases(root: Path) -> list[tuple[Path, int]]:
    """FVC-style folders below ``root`` holding all ten fingers 101..110, sorted, with their dpi."""
    found = []
    for d in sorted({p.parent for p in root.rglob("101_1.*")}):
        names = {m.group(1) for m in (_FINGER_FILE.match(p.name) for p in d.iterdir()) if m}
        if len(names) == 10:
            found.append((d, _DPI.get((d.parent.name, d.name), 500)))
    return found


class Applicants:
    """The applicants the simulated scanner serves; see the module doc. Not thread-safe: the
    scanner calls it under its own operation lock."""

    def __init__(self, root: Path | None, synthetic: Callable[[int], list[np.ndarray]]):
        self._dbs = _databases(root) if root is not None and root.is_dir() else []
        self._synthetic = synthetic
        self.index = 0  # the applicant at the scanner now
        #: finger positions the applicant at the scanner does not have (amputated): slaps show a gap
        self.absent: set[int] = set()
        self._attempts: dict[int, int] = {}

    @property
    def count(self) -> int:
        """How many different applicants there are before the list starts again."""
        return len(self._dbs) or 3

    def next(self) -> int:
        """The next applicant steps up; returns their index."""
        self.index += 1
        self.absent = set()
        self._attempts.clear()
        return self.index

    def finger(self, position: FingerPosition, impression: int, who: int | None = None) -> tuple[np.ndarray, int]:
        """Impression ``impression`` (1..8) of finger ``position`` of applicant ``who`` (default:
        the one at the scanner), with its ppi; no capture is counted."""
        return self._finger(position, impression, who)

    def _finger(self, position: FingerPosition, impression: int, who: int | None = None) -> tuple[np.ndarray, int]:
        who = (self.index if who is None else who) % self.count
        if self._dbs:
            folder, dpi = self._dbs[who]
            stem = f"{100 + int(position)}_{impression}"
            path = next((p for p in folder.glob(stem + ".*") if _FINGER_FILE.match(p.name)), None)
            img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) if path is not None else None
            if img is None:
                raise FileNotFoundError(f"{folder.name}/{stem}")
            return img, dpi
        prints = self._synthetic(who)  # 10 fingers x 8 impressions, finger-major
        return prints[(int(position) - 1) * 8 + (impression - 1) % 8], 500

    def capture(self, kind: ImpressionKind, position: FingerPosition, *, advance: bool = True
                ) -> tuple[np.ndarray, int]:
        """The image a capture of ``position`` by this applicant gives (a slap for 13, 14, 15).
        ``advance=False``: what the next capture will show, without counting it (the preview)."""
        position = FingerPosition(position)
        if position in SLAP_ORDER:
            shown = [p for p in SLAP_ORDER[position] if int(p) not in self.absent]
            if not shown:
                raise ValueError(f"the applicant has no finger of slap {int(position)}")
            fingers = [self._finger(p, 8) for p in shown]
            dpi = fingers[0][1]
            rng = np.random.default_rng(1000 * (self.index % self.count) + int(position))
            n = len(fingers)
            img, _ = compose_slap([platen(f) for f, _ in fingers], position, angles=rng.uniform(-10, 10, n),
                                  gaps=rng.uniform(15, 60, n - 1) if n > 2 else [150],
                                  missing=[p for p in SLAP_ORDER[position] if int(p) in self.absent],
                                  seed=int(rng.integers(1 << 30)))
            return img, dpi
        if not 1 <= int(position) <= 10:
            raise ValueError(f"position {int(position)} is not a finger or a slap")
        k = self._attempts.get(int(position), 0)
        if advance:
            self._attempts[int(position)] = k + 1
        return self._finger(position, 1 + k % 7)
