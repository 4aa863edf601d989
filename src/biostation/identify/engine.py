"""The 1:N interface every gallery backend implements (local today, a Ray cluster later).

Vocabulary follows MOSIP's ABIS API: a *gallery* of *references*, each with a ``referenceId``;
``search`` answers at most ``maxResults`` candidates, best first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from ..templates.model import Template


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

    def search(self, probe: Template, k: int = 10) -> list[Candidate]:
        """The ``k`` best-scoring references, best first (ties: earlier enrolment first)."""

    def insert(self, reference_id: str, template: Template) -> None:
        """Enrol ``template``; GalleryError if ``reference_id`` is already enrolled."""

    def delete(self, reference_id: str) -> None:
        """Remove a reference; GalleryError if it is unknown."""

    def count(self) -> int:
        """Number of enrolled references."""
