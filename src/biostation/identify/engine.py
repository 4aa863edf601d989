"""The 1:N interface every gallery backend implements (:class:`~.local.LocalBackend` in process,
:class:`~.ray_backend.RayBackend` over a Ray cluster), and the rules they share.

Vocabulary follows MOSIP's ABIS API: a *gallery* of *references*, each with a ``referenceId``;
``search`` answers at most ``maxResults`` candidates, best first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from ..errors import GalleryError
from ..templates.model import Template
from . import params

#: longest reference id (UTF-8 bytes)
MAX_REFERENCE_ID_BYTES = 1024


def check_reference_id(reference_id: object) -> str:
    """``reference_id`` if it is a non-empty string of at most :data:`MAX_REFERENCE_ID_BYTES`
    UTF-8 bytes; GalleryError otherwise (every backend applies this one rule)."""
    try:
        ok = isinstance(reference_id, str) and 0 < len(reference_id.encode("utf-8")) <= MAX_REFERENCE_ID_BYTES
    except UnicodeEncodeError:  # lone surrogates
        ok = False
    if not ok:
        raise GalleryError(f"reference id must be a non-empty string of at most {MAX_REFERENCE_ID_BYTES} UTF-8 bytes")
    return reference_id  # type: ignore[return-value]


def check_search(k: object, stages: object, penetration: object, screen: object = "codes",
                 first_penetration: object = None) -> float:
    """The penetration a search runs at (``penetration``, or the ``screen``'s default,
    :data:`.params.PENETRATION` for codes, :data:`.params.LOCAL_PENETRATION` for the local screen
    and the cascade, when None), after checking the search's arguments: GalleryError for ``k``
    below 1, ``stages`` other than 1 or 2, a ``screen`` not in :data:`.params.SCREENS`, a
    two-stage penetration outside (0, 1], or a ``first_penetration`` (the cascade's codes
    shortlist, see :func:`cascade_penetration`) outside (0, 1] or given with another screen."""
    if k < 1:  # type: ignore[operator]
        raise GalleryError("k must be at least 1")
    if stages not in (1, 2):
        raise GalleryError(f"stages must be 1 or 2, got {stages!r}")
    if screen not in params.SCREENS:
        raise GalleryError(f"screen must be one of {', '.join(params.SCREENS)}, got {screen!r}")
    default = params.PENETRATION if screen == "codes" else params.LOCAL_PENETRATION
    pen = default if penetration is None else penetration
    if stages == 2 and not (isinstance(pen, (int, float)) and 0 < pen <= 1):
        raise GalleryError(f"penetration must be in (0, 1], got {pen!r}")
    if first_penetration is not None:
        if screen != "cascade":
            raise GalleryError(f"first_penetration is the cascade's codes shortlist, not one of screen {screen!r}")
        if not (isinstance(first_penetration, (int, float)) and 0 < first_penetration <= 1):
            raise GalleryError(f"first_penetration must be in (0, 1], got {first_penetration!r}")
    return pen  # type: ignore[return-value]


def cascade_penetration(first_penetration: float | None) -> float:
    """The share of the gallery the cascade's codes pass to the local screen:
    ``first_penetration``, or :data:`.params.CASCADE_CODES_PENETRATION` when None."""
    return params.CASCADE_CODES_PENETRATION if first_penetration is None else float(first_penetration)


@dataclass(frozen=True, order=True)
class Candidate:
    """One search answer: the reference and its score (0..35679, see :mod:`biostation.matcher`)."""

    score: int
    reference_id: str


@runtime_checkable
class Backend(Protocol):
    """A gallery of enrolled fingerprint templates.

    Implementations are thread-safe: searches may run concurrently with each other and with
    inserts and deletes (each call sees the gallery before or after a concurrent mutation).
    """

    def load_shard(self, path: Path) -> int:
        """Load (or reload) the gallery persisted at ``path``; returns the number of references."""

    def search(self, probe: Template, k: int = 10, *, stages: int = 1, penetration: float | None = None,
               screen: str = "codes", first_penetration: float | None = None) -> list[Candidate]:
        """The ``k`` best-scoring references, best first (ties: earlier enrolment first);
        ``stages=2`` screens first (with ``screen``, see :data:`.params.SCREENS`; the cascade's
        codes keep ``first_penetration``) and scores only a shortlist (see :mod:`.screening`)."""

    def insert(self, reference_id: str, template: Template) -> None:
        """Enrol ``template``; GalleryError if ``reference_id`` is already enrolled."""

    def delete(self, reference_id: str) -> None:
        """Remove a reference; GalleryError if it is unknown."""

    def count(self) -> int:
        """Number of enrolled references."""
