"""The 1:N gallery scaled out on a Ray cluster: a thin adapter over long-lived shard actors.

>>> from biostation.identify.ray_backend import RayBackend
>>> gallery = RayBackend("/srv/gallery", shards=4)       # starts (or joins) a Ray cluster
>>> gallery.insert("ref-0001", template)
>>> gallery.search(probe, k=10)                           # [Candidate(score, reference_id), ...]
>>> gallery.close()

**Layout.** Each shard is a Ray actor (:class:`GalleryShard`) holding its slice of the gallery in
a :class:`~biostation.identify.LocalBackend` (plain ndarrays) persisted in
``<directory>/shard-<i>``. A reference lives on shard ``blake2b-64(referenceId) mod shards``
(:func:`shard_of`): stable across processes and machines, unlike Python's ``hash``. The shard
count is fixed when the gallery is created and recorded in ``<directory>/manifest.json``; opening
it with another count raises :class:`~biostation.errors.ConfigError` (resharding is not done).

**Answers are the local backend's answers.** ``search`` prepares the probe once, sends it to
every shard, and merges the shards' top ``k`` by score, ties by enrolment order, exactly as one
:class:`~biostation.identify.LocalBackend` holding the whole gallery orders them (that backend is
the test oracle). Enrolment order across shards comes from an enrolment stamp the adapter gives
each insert (a counter that never goes back: ``max(last + 1, time_ns)``, so several adapters on
one cluster also agree up to their clocks' skew); each shard keeps the stamps in a small
append-only file ``order.bin`` next to its journal.

**Persons.** ``RayBackend(..., unit="person")`` shards a ten-print gallery the same way: each
shard holds a :class:`~biostation.identify.persons.PersonGallery` slice (a person's fingers stay
together on the shard of their ``referenceId``), runs the fused search (:mod:`.persons`) on it,
and the merge is the same; the manifest records the unit, and a gallery is only opened as what it
holds.

**Fault tolerance.** Shard actors restart up to ``ray_max_restarts`` times (default: without
limit) and reload their slice from disk when they do. Calls are retried by Ray across a restart;
inserts and deletes carry their stamp, so a retried call that had already taken effect is
recognised and not applied twice (``order.bin`` is written before the local journal, and a delete
found logged but not applied is completed on reload). A shard that does not answer within
``ray_timeout_s`` raises :class:`~biostation.errors.GalleryUnavailableError`; nothing waits
forever.

**Cluster.** ``ray_address`` joins an existing cluster; unset, a local one is started (and shut
down by :meth:`RayBackend.close`). Shard ``i`` goes to the ``i``-th of the alive nodes that can
hold one (round robin; a node with fewer CPUs than ``ray_shard_cpus`` is skipped), with soft
affinity so that it can restart elsewhere when its node dies; one that Ray starts on another node
while its own is alive (Ray passes over a node whose state it has not caught up with yet) is
started again where it belongs, so that the slices, and the memory, stay spread. Every node must
be able to import ``biostation`` and, for a persistent gallery, reach ``directory`` (shared
storage): a shard restarted on another node reloads from the same path. Persistent shards are
*named* actors (namespace ``biostation``), so two backend objects opened on one directory share
the same actors instead of writing one journal twice; ``ray_detached`` keeps them alive after the creating process exits.

**Cost.** One actor round trip costs a few milliseconds (``benchmarks/bench_identify_ray.py``
measures it); a search pays one round trip (the shards answer in parallel), so sharding pays
once a shard's scoring time is well above that. Enrolment in bulk goes through
:meth:`RayBackend.insert_many` (one call per shard).

Thread-safety: a :class:`RayBackend` may be shared by threads. A shard serves
``ray_shard_threads`` calls at once (default 1: one at a time); its mutations always run one at
a time, and a search sees the slice before or after a concurrent mutation.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import logging
import operator
import struct
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Self

from ..config import Settings, get_settings
from ..errors import BiostationError, ConfigError, GalleryError, GalleryUnavailableError
from ..matcher.prepare import SearchTemplate, prepare
from ..templates.model import Template
from .engine import Candidate, check_reference_id, check_search
from .local import LocalBackend, params_digest
from .persons import PersonCandidate, PersonGallery, finger_views, probe_views

log = logging.getLogger(__name__)

#: what a gallery's references are: fingers (one template each) or persons (finger views by position)
UNITS = ("finger", "person")
#: Ray namespace of the named shard actors
NAMESPACE = "biostation"
_MANIFEST = "manifest.json"
_FORMAT = "biostation-ray-gallery"
# order.bin record: op (I or D), the caller's stamp (the op's identity), the enrolment stamp the
# shard used for ordering, id length; then the id's UTF-8 bytes
_ORDER = struct.Struct("<cQQH")
# stamp of a reference found in a shard's journal without an order record (order.bin lost, or
# a local gallery's files copied in as a shard): ranked after every stamped reference
_UNSTAMPED = 1 << 63
# retries of one call across shard restarts (every method is safe to retry, see GalleryShard)
_RETRIES = 3
# pause before a search whose shard was unavailable is asked again (seconds)
_RETRY_PAUSE_S = 1.0
# placing again the shards Ray started on another node: for at most this long (seconds), pausing
# a little longer each round, up to the cap (seconds). Ray's soft affinity passes a live node over
# while the scheduler's view of it lags; on two nodes of one loaded 2-core machine a shard was
# still elsewhere after four rounds (9 s), and most landed within two
_PLACE_FOR_S = 60.0
_PLACE_PAUSE_S = 0.5
_PLACE_PAUSE_MAX_S = 2.0


def shard_of(reference_id: str, shards: int) -> int:
    """The shard holding ``reference_id``: ``blake2b`` (8 bytes, little-endian) modulo ``shards``."""
    digest = hashlib.blake2b(reference_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") % shards


class GalleryShard:
    """One slice of the gallery: a :class:`LocalBackend` plus the enrolment stamps of its references.

    The Ray actor class wraps this plain class, so it also runs (and is tested) without Ray.
    ``directory=None`` keeps the slice in memory only (lost when the actor restarts).
    """

    def __init__(self, directory: str | None, index: int = 0, shards: int = 1, unit: str = "finger"):
        self.index, self.shards, self.unit = index, shards, unit
        self._dir = Path(directory) if directory is not None else None
        self._started = time.time()
        # mutations, reloads and checkpoints one at a time (the actor may serve several calls at
        # once: ray_shard_threads); searches only read, through the thread-safe LocalBackend
        self._mutex = threading.RLock()
        self._load()

    # --- persistence -------------------------------------------------------------------------
    def _load(self) -> None:
        # built aside, then swapped in: a search running during a reload sees the old or the new
        # cuts a torn journal tail off
        local: Any = PersonGallery(self._dir) if self.unit == "person" else LocalBackend(self._dir)
        # reference id -> (op, caller stamp, order stamp) of its last logged insert or delete
        last: dict[str, tuple[bytes, int, int]] = {}
        max_stamp = 0
        path = self._dir / "order.bin" if self._dir is not None else None
        data = path.read_bytes() if path is not None and path.is_file() else b""
        pos = 0
        while pos + _ORDER.size <= len(data):
            op, stamp, order, id_len = _ORDER.unpack_from(data, pos)
            end = pos + _ORDER.size + id_len
            if end > len(data) or op not in (b"I", b"D"):
                break  # torn tail: a call that never returned, retried (or not) by its caller
            rid = data[pos + _ORDER.size:end].decode("utf-8", errors="replace")
            last[rid] = (op, stamp, order)
            max_stamp = max(max_stamp, order)
            pos = end
        if path is not None and pos != len(data):
            with open(path, "r+b") as f:  # drop the torn tail so later records stay readable
                f.truncate(pos)
        for rid, (op, _, _) in last.items():
            if op == b"D" and rid in local:
                local.delete(rid)  # logged but not applied before a crash: finish it
        self._local, self._last, self._max_stamp = local, last, max_stamp

    def _log(self, op: bytes, rid: str, stamp: int, order: int) -> None:
        self._last[rid] = (op, stamp, order)
        self._max_stamp = max(self._max_stamp, order)
        if self._dir is None:
            return
        raw = rid.encode("utf-8")
        with open(self._dir / "order.bin", "ab") as f:
            f.write(_ORDER.pack(op, stamp, order, len(raw)) + raw)
            f.flush()

    def _order(self, rid: str) -> int:
        last = self._last.get(rid)
        return last[2] if last is not None and last[0] == b"I" else _UNSTAMPED

    # --- calls (each safe to retry: a repeated stamp is recognised) ------------------------------
    def info(self) -> dict[str, Any]:
        """Shard state: count, highest enrolment stamp, process start time (tells a restart)."""
        import os

        from .. import matcher

        try:
            import ray

            node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else None
        except ImportError:
            node = None
        return {"index": self.index, "count": self._local.count(), "max_stamp": self._max_stamp,
                "pid": os.getpid(), "started": self._started, "params": params_digest(), "node": node,
                "matcher": matcher.BACKEND}

    def ping(self) -> int:
        """Nothing: measures a round trip."""
        return self.index

    def reload(self) -> int:
        with self._mutex:
            self._load()
            return self._local.count()

    def checkpoint(self) -> None:
        with self._mutex:
            self._local.checkpoint()

    def count(self) -> int:
        return self._local.count()

    def contains(self, reference_id: str) -> bool:
        return reference_id in self._local

    def search_template(self, reference_id: str) -> SearchTemplate:
        return self._local.search_template(reference_id)

    def fingers(self, reference_id: str) -> dict[int, SearchTemplate]:
        return self._local.fingers(reference_id)

    def memory(self) -> dict[str, float]:
        return self._local.memory()

    def search(self, probe: Any, k: int, stages: int = 1, penetration: float | None = None,
               screen: str = "codes", first_penetration: float | None = None) -> list[tuple[int, int, str, int]]:
        """This slice's ``k`` best as ``(score, enrolment stamp, referenceId, fingers compared)``,
        best first (fingers: 1 for a finger gallery); with ``stages=2`` the first stage screens
        this slice (its shortlist is ``penetration`` of the slice)."""
        local = self._local  # a concurrent reload swaps it
        found = local.search(probe, k, stages=stages, penetration=penetration, screen=screen,
                             first_penetration=first_penetration)
        return [(c.score, self._order(c.reference_id), c.reference_id, getattr(c, "fingers", 1)) for c in found]

    def insert(self, reference_id: str, stamp: int, template: Any) -> None:
        check_reference_id(reference_id)
        with self._mutex:
            if reference_id in self._local:
                last = self._last.get(reference_id)
                if last is not None and last[:2] == (b"I", stamp):
                    return  # this very call already took effect (retried after a restart)
                raise GalleryError(f"reference {reference_id!r} is already enrolled")
            # the stamp orders this reference after everything this shard holds, even when
            # another adapter's clock lags behind
            self._log(b"I", reference_id, stamp, max(stamp, self._max_stamp + 1))
            self._local.insert(reference_id, template)

    def insert_many(self, items: Sequence[tuple[str, int, Template]]) -> dict[str, BiostationError]:
        """Insert each; returns the references not enrolled, with the reason."""
        failed: dict[str, BiostationError] = {}
        for rid, stamp, template in items:
            try:
                self.insert(rid, stamp, template)
            except BiostationError as exc:
                failed[rid] = exc
        return failed

    def delete(self, reference_id: str, stamp: int) -> None:
        with self._mutex:
            if reference_id not in self._local:
                last = self._last.get(reference_id)
                if last is not None and last[:2] == (b"D", stamp):
                    return  # already deleted by this very call
                raise GalleryError(f"unknown reference {reference_id!r}")
            self._log(b"D", reference_id, stamp, stamp)
            self._local.delete(reference_id)


def _ray():
    try:
        import ray
    except ImportError as exc:  # the [cluster] extra is not installed
        raise ConfigError("the Ray backend needs the 'ray' package: pip install 'biostation[cluster]'") from exc
    return ray


_ACTOR_CLASS: Any = None


def _actor_class() -> Any:
    global _ACTOR_CLASS
    if _ACTOR_CLASS is None:
        _ACTOR_CLASS = _ray().remote(GalleryShard)
    return _ACTOR_CLASS


class RayBackend:
    """A gallery sharded over Ray actors; the :class:`~biostation.identify.Backend` protocol.

    ``directory``: where the shards persist their slices (``None``: in memory only, for tests and
    benchmarks; a shard that restarts then comes back empty). ``shards``, ``address``: override the
    ``ray_shards`` and ``ray_address`` settings. The cluster is joined or started on construction
    (a local start costs a few seconds); the shards are ready when the constructor returns.
    """

    def __init__(self, directory: Path | str | None = None, *, shards: int | None = None,
                 address: str | None = None, settings: Settings | None = None, unit: str = "finger"):
        if unit not in UNITS:
            raise ConfigError(f"unit must be one of {', '.join(UNITS)}, got {unit!r}")
        #: what a reference is: a finger (Backend protocol) or a person (PersonGallery's calls)
        self.unit = unit
        self._settings = settings or get_settings()
        self._timeout = self._settings.ray_timeout_s
        self._lock = threading.Lock()
        self._stamp = 0
        self._actors: list[Any] = []
        self._owned: list[bool] = []
        self._owns_cluster = False
        shards = shards if shards is not None else self._settings.ray_shards
        if not isinstance(shards, int) or shards < 1:
            raise ConfigError(f"shards must be a positive integer, got {shards!r}")
        ray = _ray()
        if not ray.is_initialized():
            addr = address or self._settings.ray_address
            kwargs: dict[str, Any] = {"log_to_driver": False, "configure_logging": False}
            if addr:
                ray.init(address=addr, **kwargs)
            else:
                # "local": a cluster of our own, never one that another program started on this
                # machine (Ray's default would join the latest cluster it finds in /tmp/ray)
                ray.init(address="local", num_cpus=self._settings.ray_num_cpus, include_dashboard=False,
                         **kwargs)
                self._owns_cluster = True
        self._dir: Path | None = None
        self._open(Path(directory) if directory is not None else None, shards)

    # --- opening -------------------------------------------------------------------------------
    def _manifest(self, directory: Path, shards: int) -> int:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / _MANIFEST
        if path.is_file():
            try:
                m = json.loads(path.read_text())
                found = int(m["shards"])
                ok = m.get("format") == _FORMAT
                unit = m.get("unit", "finger")
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise ConfigError(f"unreadable gallery manifest {path}") from exc
            if not ok:
                raise ConfigError(f"{path} is not a biostation Ray gallery manifest")
            if found != shards:
                raise ConfigError(f"the gallery at {directory} has {found} shards, not {shards} "
                                  "(resharding is not supported: open it with its own count)")
            if unit != self.unit:
                raise ConfigError(f"the gallery at {directory} holds {unit}s, not {self.unit}s")
            return found
        if (directory / "journal.bin").exists():
            raise ConfigError(f"{directory} holds a local gallery, not a sharded one")
        tmp = directory / (_MANIFEST + ".tmp")
        tmp.write_text(json.dumps({"format": _FORMAT, "version": 1, "shards": shards, "unit": self.unit,
                                   "placement": "blake2b-64(referenceId, little-endian) mod shards"}))
        tmp.replace(path)
        return shards

    def _open(self, directory: Path | None, shards: int) -> None:
        if directory is not None:
            directory = directory.resolve()
            shards = self._manifest(directory, shards)
        self._dir, self._n = directory, shards
        s = self._settings
        # shard i goes to the i-th alive node, round robin (Ray's SPREAD is a preference that a
        # cluster still starting may ignore); soft, so that a shard whose node died restarts on
        # another one. Soft affinity is also what lets Ray pass a node over while its view of that
        # node is stale (just after it joined, or while its worker pool is busy): a shard found
        # elsewhere is placed again (_place), so that a slice does not double up on one node's memory
        nodes = self._hosts()
        want = [nodes[i % len(nodes)] if nodes else None for i in range(shards)]
        actors, owned, names = [], [], []
        for i in range(shards):
            name = None
            mine = True
            if directory is not None:
                tag = hashlib.sha256(str(directory).encode()).hexdigest()[:16]
                name = f"gallery-{tag}-{i}-of-{shards}"
                mine = not self._named_actor_exists(name)
            actors.append(self._start_shard(i, want[i], name))
            owned.append(mine)
            names.append(name)
        self._actors, self._owned = actors, owned
        try:
            # starting a shard is a process start and a slice load, not a call: its own limit
            infos = self._get([a.info.remote() for a in actors], "opening the gallery",
                              timeout=max(self._timeout, s.ray_start_timeout_s))
            self._place(infos, want, names)
        except BiostationError:
            self._release()  # e.g. shards that cannot be placed: do not leave them pending
            raise
        if any(x["params"] != params_digest() for x in infos):
            # the probe is prepared here and scored there: both sides must share the parameters
            self._release()
            raise ConfigError("the shards run another version of the matcher parameters than this "
                              "process (install the same biostation on every node)")
        with self._lock:
            self._stamp = max([self._stamp] + [int(x["max_stamp"]) for x in infos])

    def _hosts(self) -> list[str]:
        """Alive nodes that can hold a shard (as many CPUs as a shard reserves: a head node started
        with ``--num-cpus=0`` is left to coordinate), sorted by node id."""
        need = self._settings.ray_shard_cpus
        return sorted(n["NodeID"] for n in _ray().nodes()
                      if n.get("Alive") and float(n.get("Resources", {}).get("CPU", 0)) >= need)

    def _start_shard(self, index: int, node: str | None, name: str | None) -> Any:
        """Create (or, when ``name`` runs already, find) shard ``index``'s actor, placed on ``node``."""
        s = self._settings
        o: dict[str, Any] = {"num_cpus": s.ray_shard_cpus, "max_restarts": s.ray_max_restarts,
                             "max_task_retries": _RETRIES, "max_concurrency": s.ray_shard_threads}
        if node is not None:
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            o["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node, soft=True)
        if name is not None:
            o.update(name=name, namespace=NAMESPACE, get_if_exists=True)
            if s.ray_detached:
                o["lifetime"] = "detached"
        path = None if self._dir is None else str(self._dir / f"shard-{index}")
        return _actor_class().options(**o).remote(path, index, self._n, self.unit)

    def _place(self, infos: list[dict[str, Any]], want: list[str | None], names: list[str | None]) -> None:
        """Start again, on the node it was meant for, each shard this object started that Ray put
        on another node while that node is alive (rounds for up to ``_PLACE_FOR_S`` seconds,
        pausing longer each time); ``infos`` is updated in place. A shard still elsewhere after
        that is logged and kept: it works, only the memory is unevenly spread."""
        ray = _ray()
        from ray import exceptions as rx

        deadline = time.monotonic() + _PLACE_FOR_S
        for attempt in itertools.count():
            alive = set(self._hosts())
            wrong = [i for i, x in enumerate(infos)
                     if self._owned[i] and want[i] in alive and x["node"] != want[i]]
            if not wrong:
                return
            pause = min(_PLACE_PAUSE_S * (attempt + 1), _PLACE_PAUSE_MAX_S)
            if time.monotonic() + pause > deadline:
                break
            time.sleep(pause)
            for i in wrong:
                try:
                    ray.kill(self._actors[i], no_restart=True)
                except (rx.RayError, ValueError):  # already gone
                    pass
                name = names[i]
                deadline = time.monotonic() + self._timeout
                while name is not None and self._named_actor_exists(name) and time.monotonic() < deadline:
                    time.sleep(0.05)  # the name is freed once the kill has gone through
                self._actors[i] = self._start_shard(i, want[i], name)
            fresh = self._get([self._actors[i].info.remote() for i in wrong], "placing the shards",
                              timeout=max(self._timeout, self._settings.ray_start_timeout_s))
            for i, x in zip(wrong, fresh, strict=True):
                infos[i] = x
        log.warning("shards %s run on another node than the one they were placed on", wrong)

    def load_shard(self, path: Path | str) -> int:
        """Open the sharded gallery at ``path`` (its manifest's shard count), or reload this one
        from disk when ``path`` is the current directory; returns the number of references."""
        path = Path(path).resolve()
        if path == self._dir:
            return sum(self._get([a.reload.remote() for a in self._actors], "reloading"))
        shards = self._n
        manifest = path / _MANIFEST
        if manifest.is_file():
            try:
                shards = int(json.loads(manifest.read_text())["shards"])
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise ConfigError(f"unreadable gallery manifest {manifest}") from exc
        self._release()
        self._open(path, shards)
        return self.count()

    # --- plumbing ----------------------------------------------------------------------------------
    def _get(self, refs: Any, what: str, timeout: float | None = None) -> Any:
        ray = _ray()
        from ray import exceptions as rx

        timeout = self._timeout if timeout is None else timeout
        try:
            return ray.get(refs, timeout=timeout)
        except rx.GetTimeoutError:
            raise GalleryUnavailableError(f"{what}: no answer from the shards within {timeout:g} s") from None
        except rx.RayActorError:
            raise GalleryUnavailableError(f"{what}: a shard died and could not be restarted") from None
        except rx.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, BiostationError):
                raise cause from None
            raise GalleryError(f"{what}: a shard failed ({type(cause).__name__})") from None
        except rx.RayError as exc:
            raise GalleryUnavailableError(f"{what}: the cluster failed ({type(exc).__name__})") from None

    def _ask(self, calls: Callable[[], Any], what: str) -> Any:
        """``_get`` of a read that is safe to repeat (search, count, lookups): asked again until
        ``ray_timeout_s`` has passed while a shard is unavailable. Ray retries a call on a
        restarted actor, but when a whole node dies its retries can run out before the cluster
        has noticed and restarted the shard elsewhere. A call that still fails names the shards
        it misses (``exc.missing_shards``)."""
        deadline = time.monotonic() + self._timeout
        while True:
            refs = calls()
            try:
                return self._get(refs, what)
            except GalleryUnavailableError as exc:
                if time.monotonic() + _RETRY_PAUSE_S >= deadline:
                    raise self._missing(refs if isinstance(refs, list) else [refs], exc) from None
                time.sleep(_RETRY_PAUSE_S)

    def _missing(self, refs: list[Any], exc: GalleryUnavailableError) -> GalleryUnavailableError:
        """``exc`` reworded to name the shards whose call did not complete."""
        ray = _ray()
        deadline = time.monotonic() + self._timeout
        done = set()
        for i, r in enumerate(refs):  # a dead shard fails at once; a live one answers in time
            try:
                ray.get(r, timeout=max(0.0, deadline - time.monotonic()))
                done.add(i)
            except Exception:  # noqa: BLE001 - any failure of that shard counts as missing
                pass
        missing = [i for i in range(len(refs)) if i not in done]
        err = GalleryUnavailableError(f"{exc} (missing shards: {', '.join(map(str, missing))} of {len(refs)})")
        err.missing_shards = missing  # type: ignore[attr-defined]
        return err

    def _next_stamp(self) -> int:
        with self._lock:
            self._stamp = max(self._stamp + 1, time.time_ns())
            return self._stamp

    def _route(self, reference_id: str) -> Any:
        return self._actors[shard_of(check_reference_id(reference_id), self._n)]

    # --- the Backend protocol ----------------------------------------------------------------------
    def search(self, probe: Any, k: int = 10, *, stages: int = 1, penetration: float | None = None,
               screen: str = "codes", first_penetration: float | None = None) -> list[Any]:
        """The ``k`` best references over every shard, best first (ties: earlier enrolment first):
        :class:`Candidate` for fingers; for persons (``unit="person"``, ``probe`` as
        :func:`.persons.probe_views` takes it) :class:`~.persons.PersonCandidate`.

        ``stages=2``: each shard screens its own slice first (see
        :meth:`LocalBackend.search`); the shortlist is then ``penetration`` of each slice, not of
        the whole gallery, so the answers can differ from one local two-stage search (with
        ``stages=1`` they are the same). A shard that died (alone or with its node) is restarted
        and the search asked again, for up to ``ray_timeout_s``; one that cannot answer by then
        raises GalleryUnavailableError naming the missing shards (``exc.missing_shards``).

        The probe is prepared here once (an invalid one raises MatcherError before any shard is
        asked) and sent inline with each shard's call (a few kB: cheaper than ``ray.put``, which
        measured 3-4 ms more per search here); one round trip, shards in parallel.
        """
        try:
            k = operator.index(k)
        except TypeError:
            raise GalleryError(f"k must be an integer, got {type(k).__name__}") from None
        check_search(k, stages, penetration, screen, first_penetration)  # here, before any shard is asked
        if screen != "codes" and self.unit == "person":
            raise GalleryError(f"a person gallery screens with codes, not {screen!r}")
        if self.unit == "person":
            sp: Any = probe_views(probe)
        else:
            sp = probe if isinstance(probe, SearchTemplate) else prepare(probe)
        parts = self._ask(lambda: [a.search.remote(sp, k, stages, penetration, screen, first_penetration)
                                   for a in self._actors], "search")
        best = heapq.nsmallest(k, (c for part in parts for c in part), key=lambda c: (-c[0], c[1], c[2]))
        if self.unit == "person":
            return [PersonCandidate(score=score, reference_id=rid, fingers=f) for score, _, rid, f in best]
        return [Candidate(score=score, reference_id=rid) for score, _, rid, _ in best]

    def insert(self, reference_id: str, template: Any) -> None:
        """Enrol ``template`` on its shard (persons: their finger views, as
        :meth:`.persons.PersonGallery.insert` takes them, positions checked here first); GalleryError if
        ``reference_id`` is already enrolled."""
        actor = self._route(reference_id)
        template = self._payload(template)
        self._get(actor.insert.remote(reference_id, self._next_stamp(), template), "insert")

    def _payload(self, template: Any) -> Any:
        """A person's finger views as ``{position: Template}``, positions checked (GalleryError)
        before any shard is asked (the shard prepares them, once; an invalid template raises
        MatcherError there before anything is written); a finger as given."""
        if self.unit != "person":
            return template
        return finger_views(template)

    def insert_many(self, items: Iterable[tuple[str, Any]]) -> dict[str, BiostationError]:
        """Enrol many references, one call per shard (in the given order); returns the references
        that were not enrolled, with the reason (duplicate id, invalid template)."""
        per: list[list[tuple[str, int, Template]]] = [[] for _ in range(self._n)]
        failed: dict[str, BiostationError] = {}
        for rid, template in items:
            try:
                check_reference_id(rid)
                template = self._payload(template)
            except BiostationError as exc:
                failed[repr(rid) if not isinstance(rid, str) else rid] = exc
                continue
            per[shard_of(rid, self._n)].append((rid, self._next_stamp(), template))
        calls = [self._actors[i].insert_many.remote(batch) for i, batch in enumerate(per) if batch]
        for part in self._get(calls, "insert"):
            failed.update(part)
        return failed

    def delete(self, reference_id: str) -> None:
        """Remove a reference; GalleryError if it is unknown."""
        actor = self._route(reference_id)
        self._get(actor.delete.remote(reference_id, self._next_stamp()), "delete")

    def count(self) -> int:
        return sum(self._ask(lambda: [a.count.remote() for a in self._actors], "count"))

    def __contains__(self, reference_id: str) -> bool:
        actor = self._route(reference_id)
        return bool(self._ask(lambda: actor.contains.remote(reference_id), "lookup"))

    def search_template(self, reference_id: str) -> SearchTemplate:
        """The enrolled template's search form; GalleryError if unknown."""
        actor = self._route(reference_id)
        return self._ask(lambda: actor.search_template.remote(reference_id), "lookup")

    def fingers(self, reference_id: str) -> dict[int, SearchTemplate]:
        """A person's enrolled finger views (search form) by position; GalleryError if unknown."""
        actor = self._route(reference_id)
        return self._ask(lambda: actor.fingers.remote(reference_id), "lookup")

    # --- operations --------------------------------------------------------------------------------
    @property
    def shards(self) -> int:
        return self._n

    def shard_actors(self) -> list[Any]:
        """The Ray actor handles, shard by shard (operations and fault-injection tests)."""
        return list(self._actors)

    def shard_info(self) -> list[dict[str, Any]]:
        """Per shard: count, highest enrolment stamp, worker pid and start time, node id, matcher
        backend and parameter digest."""
        return self._ask(lambda: [a.info.remote() for a in self._actors], "info")

    def ping(self) -> None:
        """One empty round trip to every shard (what a search costs on top of scoring)."""
        self._get([a.ping.remote() for a in self._actors], "ping")

    def checkpoint(self) -> None:
        """Every shard writes its packed cache (see :meth:`LocalBackend.checkpoint`)."""
        self._get([a.checkpoint.remote() for a in self._actors], "checkpoint")

    def memory(self) -> dict[str, float]:
        """Bytes held by the packed slices, in all and per template."""
        parts = self._ask(lambda: [a.memory.remote() for a in self._actors], "memory")
        n = sum(int(p["templates"]) for p in parts)
        total = sum(float(p["bytes"]) for p in parts)
        return {"templates": n, "bytes": total, "bytes_per_template": total / max(1, n), "shards": self._n}

    @staticmethod
    def _named_actor_exists(name: str) -> bool:
        try:
            _ray().get_actor(name, namespace=NAMESPACE)
        except ValueError:
            return False
        return True

    def _release(self) -> None:
        # the actors this object started stop (their slices stay on disk and the next open
        # reloads them); those it found running, started by another object, are left to it
        ray = _ray()
        from ray import exceptions as rx

        for a, mine in zip(self._actors, self._owned, strict=True):
            if not mine:
                continue
            try:
                ray.kill(a, no_restart=True)
            except (rx.RayError, ValueError):  # already gone
                continue
        self._actors, self._owned = [], []

    def close(self, shutdown: bool | None = None) -> None:
        """Stop the shard actors this object started (their slices stay on disk; actors it found
        running for its directory are left alone) and, when this object started the local cluster
        (or ``shutdown`` is true), shut Ray down."""
        if self._actors:
            self._release()
        if shutdown or (shutdown is None and self._owns_cluster):
            _ray().shutdown()
            self._owns_cluster = False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LocalCluster:
    """A Ray cluster of ``nodes`` nodes on this machine (a head and ``nodes - 1`` workers, each
    its own raylet with ``cpus`` CPUs), joined by this process: what benchmarks and tests use to
    spread shards over more than one node without more machines. ``remove_worker`` stops a
    worker node (fault injection); :meth:`shutdown` stops them all.

    In production, nodes are started with ``ray start --head`` and ``ray start --address`` and
    the gallery joins them through the ``ray_address`` setting.
    """

    def __init__(self, nodes: int = 2, cpus: int = 1):
        from ray.cluster_utils import Cluster

        if nodes < 1:
            raise ConfigError("a cluster needs at least one node")
        self._cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": cpus, "include_dashboard": False})
        self.workers = [self._cluster.add_node(num_cpus=cpus) for _ in range(nodes - 1)]
        self._cluster.wait_for_nodes()
        _ray().init(address=self._cluster.address, log_to_driver=False, configure_logging=False)
        self._warm()

    def _warm(self) -> None:
        # a node that has registered may not start worker processes yet, and actors placed on it
        # with soft affinity then fall back to another node: run one task on each node first
        ray = _ray()
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        @ray.remote(num_cpus=0)
        def where() -> str:
            return ray.get_runtime_context().get_node_id()

        ray.get([where.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n, soft=False)).remote()
                 for n in self.node_ids()], timeout=120)

    @property
    def address(self) -> str:
        return self._cluster.address

    def node_ids(self) -> list[str]:
        return [n["NodeID"] for n in _ray().nodes() if n["Alive"]]

    def add_worker(self, cpus: int = 1) -> Any:
        node = self._cluster.add_node(num_cpus=cpus)
        self.workers.append(node)
        self._cluster.wait_for_nodes()
        self._warm()
        return node

    def remove_worker(self, node: Any) -> None:
        """Stop one worker node's processes (its actors die with it)."""
        self._cluster.remove_node(node, allow_graceful=False)
        self.workers.remove(node)

    def shutdown(self) -> None:
        _ray().shutdown()
        self._cluster.shutdown()
