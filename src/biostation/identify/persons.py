"""Ten-print (person-level) 1:N: one reference per person, up to ten finger views, each compared
only with the probe's view of the same finger.

Deduplication enrols and searches people, not fingers: the station captures ten fingers, and the
question is whether this *person* is enrolled already. Fusing the fingers makes both stages far
more selective than any one finger: a stranger has to come close on every finger at once.

* **Second stage (the score).** A person's score is the sum of the matcher's scores over the
  finger positions both the probe and the reference hold (the sum rule; a finger one side lacks
  adds nothing). Ties: the earlier enrolment first.
* **First stage (screening).** The fused distance of a person is the sum over the probe's finger
  positions of the Hamming distance between the two screening codes (:mod:`.screening`) at that
  position, a finger the reference lacks counting :data:`.params.FUSION_MISSING_DISTANCE` (a
  typical stranger's distance, so a missing finger neither helps nor sinks a person). The
  shortlist is the :func:`~.screening.shortlist_size` persons nearest (ties: earlier enrolment),
  and only their fingers are scored. The scan is one pass over each position's codes.

:class:`PersonGallery` is the durable gallery, one :class:`~.local.LocalBackend` per finger
position under its directory (``finger-01`` .. ``finger-10``, each keyed by the person's
``referenceId``) plus ``persons.bin``, the journal of enrolments and deletions that decides
which persons exist (same record format as the backends' journals; an insert's record holds its
finger positions). An insert writes every finger first and the person's record last; a delete
writes the person's record first. On load, fingers no committed person owns (a crash between
the two) are deleted, so a person is either wholly enrolled or not at all.

The search itself (:func:`search`, :func:`fused_scores`, :func:`fused_distances`) works on a
:class:`PersonView`, the arrays of one moment; benchmarks build views of their own (tiled,
or chunks of a larger gallery) and run the same code.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import matcher
from ..errors import GalleryError
from ..matcher.prepare import PackedGallery, SearchTemplate, prepare
from ..templates.model import Template
from . import params as IP
from . import screening
from .engine import check_reference_id, check_search
from .local import LocalBackend, journal_record, journal_records

#: ISO/IEC 19794-2 finger positions of single fingers: 1..5 right thumb..little, 6..10 left
POSITIONS = tuple(range(1, 11))


@dataclass(frozen=True, order=True)
class PersonCandidate:
    """One person search answer: the fused score (sum over compared fingers, each 0..35679), the
    reference, and how many fingers were compared."""

    score: int
    reference_id: str
    fingers: int


@dataclass(frozen=True)
class PositionArrays:
    """One finger position of a :class:`PersonView`.

    ``codes`` are the rows the first stage scans and ``code_person`` the person of each;
    ``code_row`` the row of ``packed`` each code row stands for (the identity unless tiled);
    ``person_row`` each person's row in ``packed``, -1 for a person without this finger.
    ``dense``: code row ``i`` is person ``i`` for every person (no bincount needed)."""

    packed: PackedGallery
    codes: np.ndarray
    code_person: np.ndarray
    code_row: np.ndarray | None
    person_row: np.ndarray
    dense: bool = False

    @staticmethod
    def is_dense(code_person: np.ndarray, persons: int) -> bool:
        return len(code_person) == persons and bool(np.array_equal(code_person, np.arange(persons)))


@dataclass(frozen=True)
class PersonView:
    """The persons (in enrolment order) and, per finger position, their arrays."""

    reference_ids: Sequence[str]
    positions: Mapping[int, PositionArrays]

    @property
    def persons(self) -> int:
        return len(self.reference_ids)


def finger_views(views: Mapping[int, Any] | Iterable[Any]) -> dict[int, Any]:
    """``{finger position: view}`` from a mapping, or from finger views carrying their
    ``finger_position``. GalleryError for a position outside 1..10, one given twice, or no finger
    at all."""
    items = list(views.items()) if isinstance(views, Mapping) else [(getattr(t, "finger_position", 0), t) for t in views]
    out: dict[int, Any] = {}
    for pos, t in items:
        if pos not in POSITIONS:
            raise GalleryError(f"finger position must be 1..10 (ISO/IEC 19794-2), got {pos!r}")
        if pos in out:
            raise GalleryError(f"finger position {pos} given twice")
        out[pos] = t
    if not out:
        raise GalleryError("a person record needs at least one finger view")
    return out


def probe_views(probe: Mapping[int, Template | SearchTemplate] | Iterable[Template]) -> dict[int, SearchTemplate]:
    """The probe as ``{finger position: search template}`` (see :func:`finger_views`);
    MatcherError for an invalid template."""
    return {pos: t if isinstance(t, SearchTemplate) else prepare(t) for pos, t in finger_views(probe).items()}


def is_match(score: int, fingers: int) -> bool:
    """Does a fused score over ``fingers`` compared fingers reach the 0.01 % FMR threshold of that
    many (:data:`.params.FUSED_MATCH_THRESHOLDS`)? Nothing compared: no."""
    if fingers < 1:
        return False
    return score >= IP.FUSED_MATCH_THRESHOLDS[min(fingers, len(IP.FUSED_MATCH_THRESHOLDS)) - 1]


def fused_distances(view: PersonView, probe: Mapping[int, SearchTemplate],
                    probe_codes: Mapping[int, np.ndarray] | None = None) -> np.ndarray:
    """The first stage's fused distance of every person, int64 (smaller is nearer)."""
    n = view.persons
    miss = IP.FUSION_MISSING_DISTANCE
    total = np.zeros(n, np.float64)
    for pos, sp in probe.items():
        total += miss
        pa = view.positions.get(pos)
        if pa is None or not len(pa.codes):
            continue
        code = probe_codes[pos] if probe_codes is not None else screening.code(sp)
        d = screening.hamming(code, pa.codes)
        if pa.dense:
            total += d
            total -= miss
        else:
            total += np.bincount(pa.code_person, weights=d.astype(np.float64) - miss, minlength=n)
    return total.astype(np.int64)


def fused_scores(view: PersonView, probe: Mapping[int, SearchTemplate],
                 persons: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Fused matcher scores and compared-finger counts of every person (``persons`` None) or of
    the persons given (in that order), both int64."""
    n = view.persons
    size = n if persons is None else len(persons)
    total = np.zeros(size, np.int64)
    count = np.zeros(size, np.int64)
    for pos, sp in probe.items():
        pa = view.positions.get(pos)
        if pa is None or not len(pa.code_person):
            continue
        if persons is None:
            s = matcher.match_many(sp, pa.packed, pa.code_row)
            if pa.dense:
                total += s
                count += 1
            else:
                total += np.bincount(pa.code_person, weights=s, minlength=n).astype(np.int64)
                count += np.bincount(pa.code_person, minlength=n)
        else:
            rows = pa.person_row[persons]
            have = rows >= 0
            if have.any():
                total[have] += matcher.match_many(sp, pa.packed, rows[have])
                count[have] += 1
    return total, count


def shortlist(dist: np.ndarray, m: int) -> np.ndarray:
    """The ``m`` persons of smallest fused distance (ties: the earlier enrolment), ascending."""
    n = len(dist)
    m = min(int(m), n)
    if m >= n:
        return np.arange(n, dtype=np.int64)
    key = dist.astype(np.int64) * n + np.arange(n, dtype=np.int64)  # unique keys: ties by person
    return np.sort(np.argpartition(key, m - 1)[:m])


def search(view: PersonView, probe: Mapping[int, SearchTemplate], k: int = 10, *, stages: int = 1,
           penetration: float | None = None, screen: str = "codes",
           first_penetration: float | None = None) -> list[PersonCandidate]:
    """The ``k`` persons of highest fused score, best first (ties: earlier enrolment).

    ``stages=1`` scores every person's fingers; ``stages=2`` scores only the persons the first
    stage shortlists (``penetration`` of them, default :data:`.params.PENETRATION`). Persons are
    screened by their fused code distances: ``screen`` other than ``"codes"`` is a GalleryError."""
    pen = check_search(k, stages, penetration, screen, first_penetration)
    if screen != "codes":
        raise GalleryError(f"a person gallery screens with codes, not {screen!r}")
    n = view.persons
    if n == 0:
        return []
    if stages == 1:
        persons = np.arange(n, dtype=np.int64)
        scores, counts = fused_scores(view, probe)
    else:
        persons = shortlist(fused_distances(view, probe), screening.shortlist_size(n, pen))
        scores, counts = fused_scores(view, probe, persons)
    order = np.lexsort((persons, -scores))[:k]
    ids = view.reference_ids
    return [PersonCandidate(score=int(scores[i]), reference_id=ids[int(persons[i])], fingers=int(counts[i]))
            for i in order]


class PersonGallery:
    """A durable ten-print gallery (see the module's docstring). ``directory=None``: in memory."""

    def __init__(self, directory: Path | str | None = None):
        self._lock = threading.RLock()
        self._dir = Path(directory) if directory is not None else None
        self._positions: dict[int, LocalBackend] = {}
        self._persons: list[str] = []
        self._index: dict[str, int] = {}
        self._fingers: dict[str, tuple[int, ...]] = {}
        self._view: PersonView | None = None
        if self._dir is not None:
            self._load(self._dir)

    # --- persistence -------------------------------------------------------------------------
    def _position(self, pos: int) -> LocalBackend:
        b = self._positions.get(pos)
        if b is None:
            b = LocalBackend(None if self._dir is None else self._dir / f"finger-{pos:02d}")
            self._positions[pos] = b
        return b

    def _load(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        for pos in POSITIONS:
            if (path / f"finger-{pos:02d}").is_dir():
                self._position(pos)
        journal = path / "persons.bin"
        data = journal.read_bytes() if journal.is_file() else b""
        at = 0
        for op, rid, payload, end in journal_records(data):
            if op == b"I":
                self._commit(rid, tuple(payload))
            elif rid in self._index:
                self._forget(rid)
            at = end
        if at < len(data):
            with open(journal, "r+b") as f:
                f.truncate(at)  # a torn last record: that person was never acknowledged
        # fingers written by an insert whose person record never made it, or left by a delete
        # that stopped half way: the person does not exist, so neither do they
        for pos, b in self._positions.items():
            for rid in list(b.view().reference_ids):
                if pos not in self._fingers.get(rid, ()):
                    b.delete(rid)
        for rid, fingers in list(self._fingers.items()):
            held = tuple(p for p in fingers if p in self._positions and rid in self._positions[p])
            if held != fingers:  # a finger journal lost its tail: keep what is held
                self._fingers[rid] = held

    def _append(self, op: bytes, rid: str, payload: bytes = b"") -> None:
        if self._dir is None:
            return
        with open(self._dir / "persons.bin", "ab") as f:
            f.write(journal_record(op, rid, payload))
            f.flush()

    def _commit(self, rid: str, fingers: tuple[int, ...]) -> None:
        self._index[rid] = len(self._persons)
        self._persons.append(rid)
        self._fingers[rid] = fingers
        self._view = None

    def _forget(self, rid: str) -> None:
        i = self._index.pop(rid)
        del self._persons[i]
        for j in range(i, len(self._persons)):
            self._index[self._persons[j]] = j
        self._fingers.pop(rid, None)
        self._view = None

    def checkpoint(self) -> None:
        """Write every finger position's packed cache (see :meth:`LocalBackend.checkpoint`)."""
        with self._lock:
            for b in self._positions.values():
                b.checkpoint()

    # --- mutations -----------------------------------------------------------------------------
    def insert(self, reference_id: str, fingers: Mapping[int, Template] | Iterable[Template]) -> None:
        """Enrol a person's finger views (each with its ``finger_position`` 1..10, or as a
        mapping from position). GalleryError if the id is enrolled or a position is invalid or
        repeated; MatcherError for an invalid template; nothing is written then."""
        check_reference_id(reference_id)
        items = finger_views(fingers)
        prepared = probe_views(items)  # positions checked, every template prepared, before any write
        with self._lock:
            if reference_id in self._index:
                raise GalleryError(f"reference {reference_id!r} is already enrolled")
            done: list[int] = []
            try:
                for pos in sorted(items):
                    self._position(pos).insert(reference_id, items[pos], prepared=prepared[pos])
                    done.append(pos)
            except BaseException:
                for pos in done:  # not acknowledged: take the fingers back (a crash here: load does)
                    self._positions[pos].delete(reference_id)
                raise
            positions = tuple(sorted(items))
            self._append(b"I", reference_id, bytes(positions))
            self._commit(reference_id, positions)

    def delete(self, reference_id: str) -> None:
        with self._lock:
            if reference_id not in self._index:
                raise GalleryError(f"unknown reference {reference_id!r}")
            self._append(b"D", reference_id)
            fingers = self._fingers[reference_id]
            self._forget(reference_id)
            for pos in fingers:
                self._positions[pos].delete(reference_id)

    def count(self) -> int:
        return len(self._persons)

    def __contains__(self, reference_id: str) -> bool:
        return reference_id in self._index

    def fingers(self, reference_id: str) -> dict[int, SearchTemplate]:
        """The enrolled person's finger views (search form), by position; GalleryError if unknown."""
        with self._lock:
            if reference_id not in self._index:
                raise GalleryError(f"unknown reference {reference_id!r}")
            return {p: self._positions[p].search_template(reference_id) for p in self._fingers[reference_id]}

    # --- search ----------------------------------------------------------------------------------
    def view(self) -> PersonView:
        """The gallery's arrays now (cached until the next insert or delete)."""
        with self._lock:
            if self._view is None:
                n = len(self._persons)
                positions: dict[int, PositionArrays] = {}
                for pos, b in sorted(self._positions.items()):
                    v = b.view()
                    code_person = np.array([self._index[r] for r in v.reference_ids], np.int64)
                    person_row = np.full(n, -1, np.int64)
                    person_row[code_person] = np.arange(len(code_person))
                    positions[pos] = PositionArrays(v.packed, v.codes, code_person, None, person_row,
                                                    PositionArrays.is_dense(code_person, n))
                self._view = PersonView(list(self._persons), positions)
            return self._view

    def search(self, probe: Mapping[int, Template | SearchTemplate] | Iterable[Template], k: int = 10, *,
               stages: int = 1, penetration: float | None = None, screen: str = "codes",
               first_penetration: float | None = None) -> list[PersonCandidate]:
        """See :func:`search`; ``probe`` as :func:`probe_views` takes it."""
        return search(self.view(), probe_views(probe), k, stages=stages, penetration=penetration, screen=screen,
                      first_penetration=first_penetration)

    def memory(self) -> dict[str, float]:
        """Bytes of the matcher arrays and of the screening codes, in all and per person."""
        with self._lock:
            mem = [b.memory() for b in self._positions.values()]
            n = max(1, len(self._persons))
            full = sum(m["bytes"] for m in mem)
            codes = sum(m["screening_bytes"] for m in mem)
            return {"persons": len(self._persons), "templates": sum(m["templates"] for m in mem),
                    "bytes": full, "bytes_per_person": full / n,
                    "screening_bytes": codes, "screening_bytes_per_person": codes / n}
