"""The in-process gallery backend: packed numpy arrays, persisted to a directory.

On disk (``directory``):

* ``journal.bin``: the source of truth, append-only. Each record is
  ``op (1 byte: I or D) | id length u16 | id UTF-8 | data length u32 | template (native format)``,
  little-endian; a torn last record (crash mid-write) is cut off on load.
* ``packed.npz``: a cache of the prepared (search-form) arrays with the journal length and a
  digest of the matcher parameters it was built at. A restart loads it and replays only the
  journal written after it, so the gallery is not re-prepared; a parameter change (a new digest)
  rebuilds it from the journal. Write it with :meth:`LocalBackend.checkpoint`.

Memory: :meth:`LocalBackend.memory` reports bytes per template of the packed arrays (about
52 bytes per minutia plus 16 per template at the default parameters: 1.5 kB for 29 minutiae)
and of the first stage's screening codes (:data:`.params.CODE_BYTES` per template).

**Two-stage search.** ``search(probe, k, stages=2)`` screens the gallery with
:mod:`.screening` codes (or, with ``screen="local"``, the matcher's local screen over the packed
arrays; with ``screen="cascade"``, the local screen over the codes' shortlist) and scores only
the shortlist with the matcher; ``stages=1`` scores every reference (the
oracle of the two-stage search, and its upper bound on accuracy).
"""

from __future__ import annotations

import hashlib
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import matcher
from ..errors import GalleryError, TemplateError
from ..matcher import params as P
from ..matcher.prepare import PackedGallery, SearchTemplate, pack, prepare
from ..templates import TemplateFormat, decode, encode
from ..templates.model import Template
from . import params as IP
from . import screening
from .engine import Candidate, cascade_penetration, check_reference_id, check_search

#: a journal record's header: op, id length, data length (the id's bytes, then the data, follow)
RECORD = struct.Struct("<cHI")


def journal_record(op: bytes, reference_id: str, payload: bytes = b"") -> bytes:
    """One journal record (``op`` ``I`` or ``D``), as :func:`journal_records` reads it back."""
    raw = reference_id.encode("utf-8")
    return RECORD.pack(op, len(raw), len(payload)) + raw + payload


def journal_records(data: bytes, start: int = 0) -> Iterator[tuple[bytes, str, bytes, int]]:
    """``(op, reference id, payload, end offset)`` of each whole record from ``start``; stops at
    a torn or unreadable record (a crash mid-write)."""
    pos = start
    while pos + RECORD.size <= len(data):
        op, id_len, data_len = RECORD.unpack_from(data, pos)
        end = pos + RECORD.size + id_len + data_len
        if end > len(data) or op not in (b"I", b"D"):
            return
        try:
            rid = data[pos + RECORD.size:pos + RECORD.size + id_len].decode("utf-8")
        except UnicodeDecodeError:
            return
        yield op, rid, data[pos + RECORD.size + id_len:end], end
        pos = end


def params_digest() -> str:
    """Digest of every tuned number of the matcher and of the first stage: a packed cache (arrays
    and screening codes) built under other parameters is stale."""
    items = sorted((k, repr(getattr(P, k))) for k in dir(P) if k.isupper())
    items += sorted(("identify." + k, repr(getattr(IP, k))) for k in dir(IP) if k.isupper())
    return hashlib.sha256(repr(items).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class GalleryView:
    """The gallery as a search sees it at one moment: references in row order, their packed
    templates and first-stage codes, and the screening index over the codes. For evaluation and
    benchmarks, which score and rank rows themselves; later changes to the backend do not show."""

    reference_ids: list[str]
    packed: PackedGallery
    codes: np.ndarray  # (n, params.CODE_BYTES) uint8, row order
    screening: screening.ScreeningIndex


class LocalBackend:
    """Gallery in this process. ``directory=None``: in memory only (tests, benchmarks)."""

    def __init__(self, directory: Path | str | None = None):
        self._lock = threading.RLock()
        self._ids: list[str] = []
        self._index: dict[str, int] = {}
        self._items: list[SearchTemplate] = []
        self._codes: list[np.ndarray] = []
        self._packed: PackedGallery | None = None
        self._screen: screening.ScreeningIndex | None = None
        self._dir = Path(directory) if directory is not None else None
        self._journal_len = 0
        if self._dir is not None:
            self.load_shard(self._dir)

    # --- persistence -------------------------------------------------------------------------
    def load_shard(self, path: Path | str) -> int:
        path = Path(path)
        with self._lock:
            self._dir = path
            path.mkdir(parents=True, exist_ok=True)
            self._ids, self._index, self._items, self._codes, self._packed = [], {}, [], [], None
            self._screen = None
            start = self._load_cache(path)
            self._journal_len = self._replay(path / "journal.bin", start)
            return len(self._ids)

    def _load_cache(self, path: Path) -> int:
        cache = path / "packed.npz"
        if not cache.is_file():
            return 0
        try:
            with np.load(cache, allow_pickle=False) as z:
                if str(z["digest"]) != params_digest():
                    return 0
                g = PackedGallery(x=z["x"], y=z["y"], t=z["t"], desc=z["desc"], cnt=z["cnt"], w=z["w"],
                                  offsets=z["offsets"], keys=z["keys"])
                ids = [str(s) for s in z["ids"]]
                upto = int(z["journal_len"])
                codes = z["codes"] if "codes" in z.files else None
        except (OSError, KeyError, ValueError):
            return 0  # unreadable cache: rebuild from the journal
        self._ids = ids
        self._index = {r: i for i, r in enumerate(ids)}
        self._items = [g.get(i) for i in range(len(g))]
        if codes is not None and codes.shape == (len(ids), IP.CODE_BYTES):
            self._codes = list(codes)
        else:  # a cache written before screening codes, or at another code length
            self._codes = [screening.code(s) for s in self._items]
        self._packed = g
        return upto

    def _replay(self, journal: Path, start: int) -> int:
        if not journal.is_file():
            return 0
        data = journal.read_bytes()
        if start > len(data):  # journal replaced under the cache: trust the journal
            self._ids, self._index, self._items, self._codes, self._packed = [], {}, [], [], None
            self._screen = None
            start = 0
        pos = start
        for op, rid, payload, end in journal_records(data, start):
            if op == b"I":
                try:
                    t = decode(payload, TemplateFormat.NATIVE).views[0]
                except (TemplateError, IndexError):
                    break  # corrupt tail
                self._add(rid, prepare(t))
            elif rid in self._index:
                self._remove(rid)
            pos = end
        if pos < len(data):
            # cut the torn tail off, or the records appended next would sit behind it, unreadable
            with open(journal, "r+b") as f:
                f.truncate(pos)
        return pos

    def _append(self, op: bytes, rid: str, payload: bytes = b"") -> None:
        if self._dir is None:
            return
        record = journal_record(op, rid, payload)
        with open(self._dir / "journal.bin", "ab") as f:
            f.write(record)
            f.flush()
        self._journal_len += len(record)

    def checkpoint(self) -> None:
        """Write ``packed.npz`` so that the next start skips preparing the templates."""
        with self._lock:
            if self._dir is None:
                return
            g = self._gallery()
            tmp = self._dir / "packed.tmp.npz"
            np.savez(tmp, x=g.x, y=g.y, t=g.t, desc=g.desc, cnt=g.cnt, w=g.w, offsets=g.offsets, keys=g.keys,
                     ids=np.array(self._ids, dtype=str), digest=np.array(params_digest()),
                     codes=np.array(self._codes, np.uint8).reshape(-1, IP.CODE_BYTES),
                     journal_len=np.array(self._journal_len, np.int64))
            tmp.replace(self._dir / "packed.npz")

    # --- mutations -----------------------------------------------------------------------------
    def _add(self, rid: str, s: SearchTemplate) -> None:
        self._index[rid] = len(self._ids)
        self._ids.append(rid)
        self._items.append(s)
        self._codes.append(screening.code(s))
        self._packed = None
        self._screen = None

    def _remove(self, rid: str) -> None:
        i = self._index.pop(rid)
        del self._ids[i]
        del self._items[i]
        del self._codes[i]
        self._screen = None
        for j in range(i, len(self._ids)):
            self._index[self._ids[j]] = j
        self._packed = None

    def insert(self, reference_id: str, template: Template, *, prepared: SearchTemplate | None = None) -> None:
        """Enrol ``template`` (``prepared``: its search form, when the caller has it already)."""
        check_reference_id(reference_id)
        s = prepare(template) if prepared is None else prepared  # MatcherError before anything is written
        payload = encode(template, TemplateFormat.NATIVE)
        with self._lock:
            if reference_id in self._index:
                raise GalleryError(f"reference {reference_id!r} is already enrolled")
            self._append(b"I", reference_id, payload)
            self._add(reference_id, s)

    def delete(self, reference_id: str) -> None:
        with self._lock:
            if reference_id not in self._index:
                raise GalleryError(f"unknown reference {reference_id!r}")
            self._append(b"D", reference_id)
            self._remove(reference_id)

    def count(self) -> int:
        return len(self._ids)

    def __contains__(self, reference_id: str) -> bool:
        return reference_id in self._index

    def search_template(self, reference_id: str) -> SearchTemplate:
        """The enrolled template's search form (to search the gallery with it); GalleryError if
        unknown."""
        with self._lock:
            if reference_id not in self._index:
                raise GalleryError(f"unknown reference {reference_id!r}")
            return self._items[self._index[reference_id]]

    # --- search ----------------------------------------------------------------------------------
    def _gallery(self) -> PackedGallery:
        if self._packed is None:
            self._packed = pack(self._items)
        return self._packed

    def _screening(self) -> screening.ScreeningIndex:
        if self._screen is None:
            self._screen = screening.ScreeningIndex(np.array(self._codes, np.uint8).reshape(-1, IP.CODE_BYTES))
        return self._screen

    def view(self) -> GalleryView:
        """The gallery as a search sees it now (see :class:`GalleryView`)."""
        with self._lock:
            return GalleryView(list(self._ids), self._gallery(),
                               np.array(self._codes, np.uint8).reshape(-1, IP.CODE_BYTES), self._screening())

    def search(self, probe: Template | SearchTemplate, k: int = 10, *, stages: int = 1,
               penetration: float | None = None, screen: str = "codes",
               first_penetration: float | None = None) -> list[Candidate]:
        """The ``k`` best references, best first (ties: earlier enrolment first).

        ``stages=1``: exhaustive, every reference is scored in full. ``stages=2``: the first
        stage keeps the :func:`~.screening.shortlist_size` references (``penetration`` of the
        gallery) that ``screen`` puts nearest the probe, and only those are scored; a mate the
        first stage drops is not found. ``screen="codes"`` (default penetration
        :data:`.params.PENETRATION`): the screening codes nearest the probe's;
        ``screen="local"`` (default :data:`.params.LOCAL_PENETRATION`): the highest local
        screen scores (:func:`~.screening.local_shortlist`); ``screen="cascade"`` (default
        penetration :data:`.params.LOCAL_PENETRATION`): the highest local screen scores among the
        ``first_penetration`` of the gallery (default :data:`.params.CASCADE_CODES_PENETRATION`)
        whose codes are nearest (:func:`~.screening.cascade_shortlist`).
        """
        pen = check_search(k, stages, penetration, screen, first_penetration)
        sp = probe if isinstance(probe, SearchTemplate) else prepare(probe)
        with self._lock:
            g, ids = self._gallery(), list(self._ids)
            index = self._screening() if stages == 2 and screen != "local" else None
        if not ids:
            return []
        if stages == 1:
            scores = matcher.match_many(sp, g)
            rows = np.arange(len(scores))
        else:
            m = screening.shortlist_size(len(ids), pen)
            if screen == "codes":
                rows = index.shortlist(screening.code(sp), m)
            elif screen == "local":
                rows = screening.local_shortlist(sp, g, m)
            else:
                m1 = screening.shortlist_size(len(ids), cascade_penetration(first_penetration))
                rows = screening.cascade_shortlist(sp, g, index, m1, m)
            scores = matcher.match_many(sp, g, rows)
        order = np.lexsort((rows, -scores.astype(np.int64)))[:k]
        return [Candidate(score=int(scores[i]), reference_id=ids[rows[i]]) for i in order]

    def memory(self) -> dict[str, float]:
        """Bytes held by the packed gallery, in all and per template."""
        with self._lock:
            g = self._gallery()
            n = max(1, len(self._ids))
            codes = len(self._ids) * IP.CODE_BYTES
            return {"templates": len(self._ids), "bytes": g.nbytes, "bytes_per_template": g.nbytes / n,
                    "screening_bytes": codes, "screening_bytes_per_template": codes / n}
