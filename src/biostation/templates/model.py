"""The persistent fingerprint template: features only, plus the format version.

Conventions (the same as ISO/IEC 19794-2:2005, so codecs are lossless up to quantization):

* ``x``, ``y``: pixels from the top-left corner of the image, y pointing down.
* ``angle``: minutia direction in radians in [0, 2*pi), counter-clockwise from the positive x
  axis as seen on the image (so the direction vector in pixel coordinates is
  ``(cos a, -sin a)``); ISO stores it in units of 360/256 degrees.
* ``kind``: ISO minutia type: 0 other, 1 ridge ending, 2 ridge bifurcation.
* ``quality``: 0..100 (ISO), 0 = not reported.

The search-ready form (canonical order, neighbour tables) is built from this by the matcher and
never serialized.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import TemplateError

#: one minutia; the dtype every codec and the matcher agree on
MINUTIA_DTYPE = np.dtype([("x", "<u2"), ("y", "<u2"), ("angle", "<f4"), ("kind", "u1"), ("quality", "u1")])

MINUTIA_OTHER, MINUTIA_ENDING, MINUTIA_BIFURCATION = 0, 1, 2
#: ISO/IEC 19794-2 allows at most 255 minutiae per finger view
MAX_MINUTIAE = 255


def minutiae_array(rows: Any = ()) -> np.ndarray:
    """Build a minutiae array from ``(x, y, angle, kind, quality)`` rows."""
    return np.array([tuple(r) for r in rows], dtype=MINUTIA_DTYPE)


@dataclass
class Template:
    """One finger view: image geometry and minutiae.

    ``width``/``height`` are the image size in pixels and ``dpi`` its resolution (pixels per
    inch), so that templates from different sensors can be compared at the same scale.
    ``finger_position`` and ``impression_type`` use the ISO/IEC 19794-2 codes, ``quality`` is
    the finger quality 0..100 (e.g. NFIQ 2). ``extended`` keeps extended data blocks the codec
    did not interpret, as ``(type_id, bytes)`` pairs, so a round trip is exact.
    """

    width: int
    height: int
    dpi: float = 500.0
    minutiae: np.ndarray = field(default_factory=lambda: np.zeros(0, MINUTIA_DTYPE))
    finger_position: int = 0
    impression_type: int = 0
    quality: int = 0
    view_number: int = 0
    extended: list[tuple[int, bytes]] = field(default_factory=list)
    #: why the template is empty, when the extractor found nothing usable
    reason: str = ""

    def validate(self) -> Template:
        """Check invariants; raises TemplateError naming the first violation. Returns self."""
        m = self.minutiae
        if not isinstance(m, np.ndarray) or m.dtype != MINUTIA_DTYPE or m.ndim != 1:
            raise TemplateError(f"minutiae must be a 1-D array of MINUTIA_DTYPE, got {getattr(m, 'dtype', type(m))}")
        if not (0 < self.width <= 65535 and 0 < self.height <= 65535):
            raise TemplateError(f"image size {self.width}x{self.height} out of range")
        if not (50 <= self.dpi <= 5000):
            raise TemplateError(f"resolution {self.dpi} dpi out of range 50..5000")
        if len(m) > MAX_MINUTIAE:
            raise TemplateError(f"{len(m)} minutiae; at most {MAX_MINUTIAE}")
        if len(m):
            if (m["x"] >= self.width).any() or (m["y"] >= self.height).any():
                raise TemplateError("a minutia lies outside the image")
            a = m["angle"]
            if not np.isfinite(a).all() or (a < 0).any() or (a >= 2 * np.pi).any():
                raise TemplateError("minutia angles must be finite and in [0, 2*pi)")
            if (m["kind"] > 2).any() or (m["quality"] > 100).any():
                raise TemplateError("minutia type must be 0..2 and quality 0..100")
        if not (0 <= self.quality <= 100):
            raise TemplateError(f"finger quality {self.quality} out of range 0..100")
        return self

    def labelled(self, finger_position: int | None = None, quality: int | None = None,
                 impression_type: int | None = None, view_number: int | None = None) -> Template:
        """A copy carrying the given finger position (ISO code 0..15), finger quality (0..100,
        e.g. the image's NFIQ 2 score), impression type or view number; the others are kept.
        The extractor knows none of these (it sees an image), so the caller that does labels the
        template before it is written. Raises TemplateError for a value out of range."""
        import dataclasses

        t = dataclasses.replace(
            self,
            finger_position=self.finger_position if finger_position is None else int(finger_position),
            quality=self.quality if quality is None else int(quality),
            impression_type=self.impression_type if impression_type is None else int(impression_type),
            view_number=self.view_number if view_number is None else int(view_number),
            minutiae=self.minutiae.copy(), extended=list(self.extended))
        if not (0 <= t.finger_position <= 15 and 0 <= t.impression_type <= 15 and 0 <= t.view_number <= 15):
            raise TemplateError("finger position, impression type and view number must be 0..15")
        return t.validate()

    @property
    def nbytes(self) -> int:
        """Approximate memory held by this template."""
        return int(self.minutiae.nbytes) + sum(len(b) for _, b in self.extended) + 128

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Template):
            return NotImplemented
        return (self.width, self.height, self.dpi, self.finger_position, self.impression_type, self.quality,
                self.view_number, self.extended, self.reason) == (
                other.width, other.height, other.dpi, other.finger_position, other.impression_type,
                other.quality, other.view_number, other.extended, other.reason) \
            and np.array_equal(self.minutiae, other.minutiae)


@dataclass
class TemplateRecord:
    """A record of several finger views (one ISO/ANSI file), in file order."""

    views: list[Template] = field(default_factory=list)
    capture_equipment: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
