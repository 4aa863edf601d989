"""Composed capture sessions with known sequence faults, to measure the sequence check.

A "person" is the ten fingers of one FVC2002 database (fingers 101..110 become right thumb ..
left little). A session is ten single captures (one impression of each finger) and three slaps
composed from *other* impressions of the same fingers, so every genuine comparison is between
two different touches. Faults, as they happen at a desk:

* ``clean``: nothing wrong (measures false alarms);
* ``swapped``: two single captures of the same hand exchanged;
* ``duplicate``: a finger captured twice (its other impression stored under a neighbour's label);
* ``wrong_hand``: the left hand placed for the right four-finger slap.

Realism, checked: each slap finger is a different impression (FVC2002 impressions of one finger
differ in placement, rotation and pressure by design), turned by up to +-12 degrees in the slap
and cut to a fingertip ellipse, then segmented and straightened again by :mod:`.slap`. Before it
is pasted, an impression is brought to a scanner-like light background (:func:`platen`). Not
modelled: the larger contact area of a rolled single, slap-specific distortion.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..records.vocabulary import FingerPosition as FP
from .slap import SLAP_ORDER, segment_slap
from .slap_compose import compose_slap

FAULTS = ("clean", "swapped", "duplicate", "wrong_hand")
#: FVC2002 B finger ids 101..110 in finger position order 1..10
POSITIONS = tuple(FP(i) for i in range(1, 11))


@dataclass
class Session:
    fault: str
    singles: dict[FP, np.ndarray]
    slaps: dict[FP, np.ndarray]
    expected: set[str]  # issue kinds the check should raise
    dpi: int


def platen(img: np.ndarray) -> np.ndarray:
    """An impression as a slap scanner shows it: valleys and background near white.

    FVC2002 DB2-DB4 sensors deliver a grey background (DB3's median grey is about 80), so
    pasting their images onto a white platen draws a hard grey-to-white edge around the cut-out
    print that no real slap has: its spurious ridge endings made a slap finger match its own
    single capture no better than another finger (DB3 median 237 against 5142 for the same
    impressions uncut). A linear stretch, 2nd percentile to black and 90th to white, as a
    scanner's gain and offset would, brings them to DB1's look (DB1 images are already light).
    """
    lo, hi = np.percentile(img, [2, 90])
    return np.clip((img.astype(np.float32) - lo) * (255.0 / max(hi - lo, 1.0)), 0, 255).astype(np.uint8)


def make_session(folder: Path, fault: str, rng: np.random.Generator, dpi: int = 500) -> Session:
    """One composed session from an FVC2002 B database folder (see the module doc)."""
    if fault not in FAULTS:
        raise ValueError(f"unknown fault {fault!r}")

    def load(finger: int, imp: int) -> np.ndarray:
        img = cv2.imread(str(folder / f"{finger}_{imp}.tif"), cv2.IMREAD_GRAYSCALE)
        if img is None:
            raise FileNotFoundError(folder / f"{finger}_{imp}.tif")
        return img

    imps = rng.permutation(np.arange(1, 9))
    single_imp, slap_imp, spare_imp = int(imps[0]), int(imps[1]), int(imps[2])
    finger_of = {p: 101 + i for i, p in enumerate(POSITIONS)}
    singles = {p: load(finger_of[p], single_imp) for p in POSITIONS}
    expected: set[str] = set()
    if fault == "swapped":
        a, b = rng.choice([[FP.RIGHT_INDEX, FP.RIGHT_MIDDLE], [FP.RIGHT_RING, FP.RIGHT_LITTLE],
                           [FP.LEFT_INDEX, FP.LEFT_MIDDLE], [FP.LEFT_RING, FP.LEFT_LITTLE]])
        a, b = FP(int(a)), FP(int(b))
        singles[a], singles[b] = singles[b], singles[a]
        expected = {"swapped"}
    elif fault == "duplicate":
        p = POSITIONS[int(rng.integers(1, 10))]
        q = POSITIONS[POSITIONS.index(p) - 1]
        singles[q] = load(finger_of[p], spare_imp)  # finger p captured again under q's label
        expected = {"duplicate"}
    slaps = {}
    angles = rng.uniform(-12, 12, 4)
    gaps = rng.uniform(10, 70, 3)
    for slap, order in SLAP_ORDER.items():
        shown = order
        if fault == "wrong_hand" and slap == FP.PLAIN_RIGHT_FOUR:
            shown = SLAP_ORDER[FP.PLAIN_LEFT_FOUR]  # the left hand, as the scanner sees it
            expected = {"wrong_hand", "hand_twice"}
        imgs = [platen(load(finger_of[p], slap_imp)) for p in shown]
        n = len(imgs)
        slaps[slap], _ = compose_slap(imgs, slap, angles=angles[:n], gaps=gaps[: n - 1] if n > 2 else [150],
                                      seed=int(rng.integers(1 << 30)))
    return Session(fault, singles, slaps, expected, dpi)


def session_templates(session: Session, extract: Callable[[np.ndarray, int], object] | None = None
                      ) -> tuple[dict[FP, object], dict[FP, object]]:
    """Segment the slaps and extract every finger: (slap finger templates, single templates)."""
    if extract is None:
        from .extractor import extract as _extract

        extract = _extract
    slap_templates = {}
    for slap, img in session.slaps.items():
        result = segment_slap(img, slap, dpi=session.dpi, quality=False)
        for f in result.fingers:
            slap_templates[f.position] = extract(f.image, session.dpi)
    singles = {p: extract(img, session.dpi) for p, img in session.singles.items()}
    return slap_templates, singles


def run_session(session: Session, extract: Callable[[np.ndarray, int], object] | None = None):
    """Segment the slaps, extract every finger, run :func:`check_sequence`; returns the report."""
    from .sequence import check_sequence

    return check_sequence(*session_templates(session, extract))
