"""The personalization line: a queue of orders, several encoders in parallel, a durable journal.

One thread per encoder runs the same loop, each step recorded in the
:class:`~biostation.store.Journal` before the next starts::

    claim the oldest pending order          (journal: order active on this encoder)
    build and sign its chip image           (no card touched yet; the HSM signs here)
    load a blank card, read its serial      (journal: card "writing", serial)
    write: files, secrets, lock             (journal: one step per file written, the lock)
    read back: PACE/BAC, files, PA, AA      (journal: card "verifying")
    done  -> order done + card done         (one transaction, only with a successful read-back)
    fault -> card rejected, order pending   (torn card, refused APDU, failed read-back)

so a runner killed at any point restarts from the journal (:meth:`Journal.recover`): the card
that was on an encoder is rejected, its order goes to the next card, nothing is done twice and
nothing is lost. Bad orders are rejected at load, before any card is touched.

Encoders are anything with ``name``, ``load() -> transport``, ``repower()`` and
``unload(good)``: :class:`ReaderEncoder` wraps a HAL card reader (a PC/SC encoding station);
the simulated line feeds virtual cards (``biostation_drivers.simulated.vcard.perso``).

Signing, APDU and read-back time are measured per card (:class:`LineStats`) so a run reports
where the time goes. Personal data never reaches the log or the journal.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ...errors import BiostationError, CardError, DeviceError, OrderRejected, PersoError, StoreError
from ...store import Journal
from ..apdu import ApduChannel
from ..reader import card_limits
from ..sod import Signer
from .image import build_image
from .order import DEFAULT_MAX_PORTRAIT_BYTES, Order, order_digest, parse_line, validate
from .verify import read_back
from .writer import DEFAULT_CHUNK, DEFAULT_EXTENDED_CHUNK, cplc_serial, plan, write

__all__ = ["Encoder", "ReaderEncoder", "PersoLine", "LineStats", "LoadReport"]

log = logging.getLogger(__name__)


class Encoder(Protocol):
    """An encoding station: takes blank cards from a hopper, one at a time."""

    name: str

    def load(self) -> Any:
        """Bring the next blank card in and power it; returns its APDU transport.
        DeviceError when no card comes (empty hopper, jam)."""
        ...

    def repower(self) -> None:
        """Cold-reset the card in place (the read-back starts a fresh session)."""
        ...

    def unload(self, good: bool) -> None:
        """Send the card out: to the output stack when ``good``, else to the reject bin."""
        ...


class ReaderEncoder:
    """An encoder over a HAL :class:`~biostation.hal.card_reader.CardReader` in which an
    operator or a card printer places cards. ``wait_s``: how long :meth:`load` waits for one."""

    def __init__(self, reader: Any, name: str | None = None, wait_s: float = 30.0):
        self.reader = reader
        self.name = name or reader.device_id
        self.wait_s = wait_s

    def load(self) -> Any:
        self.reader.wait_for_card(self.wait_s)
        self.reader.power_on()
        return self.reader

    def repower(self) -> None:
        self.reader.reset(cold=True)

    def unload(self, good: bool) -> None:
        try:
            self.reader.power_off()
        except DeviceError:
            pass


@dataclass
class LoadReport:
    lines: int = 0
    added: int = 0
    rejected: dict[str, str] = field(default_factory=dict)  # order id -> reason (this load)
    conflicts: list[str] = field(default_factory=list)
    pending: int = 0


@dataclass
class LineStats:
    """Measured per encoder and in total. Times in seconds."""

    cards_done: int = 0
    cards_rejected: int = 0
    apdus_write: int = 0
    apdus_read: int = 0
    sign_s: float = 0.0  # image build + SOD signature
    handling_s: float = 0.0  # load, serial, unload
    write_s: float = 0.0  # personalization APDUs
    readback_s: float = 0.0
    journal_s: float = 0.0
    busy_s: float = 0.0  # wall time the encoder worked on cards

    def add(self, other: LineStats) -> None:
        for k in self.__dataclass_fields__:
            setattr(self, k, getattr(self, k) + getattr(other, k))

    def to_dict(self) -> dict[str, Any]:
        d = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}
        parts = ("sign_s", "write_s", "readback_s", "handling_s", "journal_s")
        total = sum(getattr(self, p) for p in parts) or 1.0
        d["share"] = {p[:-2]: round(getattr(self, p) / total, 4) for p in parts}
        return d


class PersoLine:
    """One run of the line over an orders file, with a journal and encoders.

    ``trust``: the CSCA trust store the read-back checks the SOD against. ``on_event(kind,
    info)`` is called from encoder threads (``"done"``, ``"rejected_card"``, ``"order_rejected"``,
    ``"encoder_stopped"``) for progress display; ``info`` carries ids and reasons, no personal
    data. ``stop``: set it to finish the cards in progress and return.
    """

    def __init__(self, journal: Journal, signer: Signer, trust: Any, encoders: list[Encoder], *,
                 chunk: int = DEFAULT_CHUNK, extended_chunk: int = DEFAULT_EXTENDED_CHUNK,
                 active_auth: bool = True, terminal: Any = None, finger_positions: tuple[int, ...] = (2, 7),
                 max_portrait_bytes: int = DEFAULT_MAX_PORTRAIT_BYTES,
                 on_event: Callable[[str, dict[str, Any]], None] | None = None,
                 stop: threading.Event | None = None):
        if not encoders:
            raise PersoError("the line needs at least one encoder")
        if len({e.name for e in encoders}) != len(encoders):
            raise PersoError("encoder names must differ")
        self.journal = journal
        self.signer = signer
        self.trust = trust
        self.encoders = encoders
        if not (1 <= chunk <= 255 and 1 <= extended_chunk <= 65535):
            raise PersoError("chunk: 1..255; extended_chunk: 1..65535")
        self.chunk = chunk
        self.extended_chunk = extended_chunk
        self.active_auth = active_auth
        #: inspection-system credentials: with them, orders' fingers go to DG3 under the chain's
        #: CVCA and the read-back reads DG3 through terminal authentication
        self.terminal = terminal
        self.finger_positions = tuple(finger_positions)
        self.max_portrait_bytes = max_portrait_bytes
        self.on_event = on_event or (lambda kind, info: None)
        self.stop = stop or threading.Event()
        self._where: dict[str, tuple[Path, int, int, str]] = {}  # order id -> file, offset, line, digest
        self.stats: dict[str, LineStats] = {e.name: LineStats() for e in encoders}

    # --- loading -------------------------------------------------------------------------------
    def load_orders(self, path: str | Path) -> LoadReport:
        """Queue the orders of a JSONL file; validate the pending ones and reject the bad ones
        (reason in the journal) before any card is touched. Safe to call again after a restart:
        known orders keep their state."""
        path = Path(path)
        rep = LoadReport()
        # pass 1: ids, digests and where each line starts; portraits are not kept in memory, so
        # a queue of any length loads in constant memory
        index: list[tuple[str, str, int, int, str | None]] = []  # id, digest, offset, line, error
        seen: set[str] = set()
        try:
            fh = path.open("rb")
        except OSError as exc:
            raise PersoError(f"cannot read orders {path}: {exc.strerror}") from None
        with fh:
            offset = 0
            for lineno, raw_line in enumerate(fh, 1):
                start, offset = offset, offset + len(raw_line)
                line = raw_line.decode("utf-8", "replace")
                if not line.strip():
                    continue
                rep.lines += 1
                oid, raw, err = parse_line(line, lineno)
                digest = order_digest(raw) if raw is not None else hashlib.sha256(raw_line).hexdigest()
                if oid in seen:
                    oid, err = f"line:{lineno}", "order_id repeated in the file"
                seen.add(oid)
                index.append((oid, digest, start, lineno, err))
        added, conflicts = self.journal.add_orders((oid, digest) for oid, digest, _, _, _ in index)
        rep.added, rep.conflicts = added, conflicts
        conflict_set = set(conflicts)
        # pass 2: validate what is still to do; reject the bad ones before any card is touched
        for oid, digest, start, lineno, err in index:
            if oid in conflict_set:
                continue
            rec = self.journal.order(oid)
            if rec is None or rec["status"] not in ("pending", "active"):
                continue
            try:
                if err is not None:
                    raise OrderRejected(err)
                self._load_one(path, start, lineno)
                self._where[oid] = (path, start, lineno, digest)
            except OrderRejected as exc:
                if rec["status"] == "pending":
                    self.journal.reject_order(oid, exc.reason)
                    rep.rejected[oid] = exc.reason
                    self.on_event("order_rejected", {"order_id": oid, "reason": exc.reason})
        rep.pending = sum(1 for oid in self._where if (self.journal.order(oid) or {}).get("status") == "pending")
        return rep

    def _load_one(self, path: Path, start: int, lineno: int) -> Order:
        with path.open("rb") as fh:
            fh.seek(start)
            line = fh.readline().decode("utf-8", "replace")
        _, raw, err = parse_line(line, lineno)
        if raw is None:
            raise OrderRejected(err or "unreadable")
        return validate(raw, base_dir=path.parent, max_portrait_bytes=self.max_portrait_bytes,
                        finger_positions=self.finger_positions if self.terminal is not None else ())

    def order(self, order_id: str) -> Order:
        """The validated order ``order_id`` of the loaded files (read again from its file)."""
        path, start, lineno, digest = self._where[order_id]
        o = self._load_one(path, start, lineno)
        if o.digest != digest:
            raise OrderRejected("the orders file changed after it was queued")
        return o

    def _cvca(self) -> Any:
        """The CVCA certificate at the root of the terminal's chain (the chips' trust point)."""
        if self.terminal is None:
            return None
        return getattr(self.terminal, "cvca", None)

    # --- running -------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Process every pending order with all encoders in parallel; returns the summary."""
        t0 = time.perf_counter()
        threads = [threading.Thread(target=self._worker, args=(e,), name=f"encoder-{e.name}", daemon=True)
                   for e in self.encoders]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        total = LineStats()
        for s in self.stats.values():
            total.add(s)
        return {"wall_s": round(wall, 3), "orders": self.journal.counts(), "cards": self.journal.card_counts(),
                "encoders": {n: s.to_dict() for n, s in self.stats.items()}, "total": total.to_dict(),
                "cards_per_hour": round(total.cards_done * 3600 / wall, 1) if wall > 0 else 0.0}

    def _worker(self, enc: Encoder) -> None:
        st = self.stats[enc.name]
        while not self.stop.is_set():
            try:
                claim = self.journal.claim(enc.name, among=self._where)
            except StoreError as exc:
                log.error("encoder %s: journal error: %s", enc.name, exc)
                self.on_event("encoder_stopped", {"encoder": enc.name, "reason": str(exc)})
                return
            if claim is None:
                return
            try:
                order = self.order(claim.order_id)
            except (OrderRejected, OSError) as exc:
                reason = exc.reason if isinstance(exc, OrderRejected) else f"orders file: {exc}"
                self.journal.release(claim.order_id)
                self.journal.reject_order(claim.order_id, reason)
                self.on_event("order_rejected", {"order_id": claim.order_id, "reason": reason})
                continue
            try:
                self._one(enc, order, st)
            except (_EncoderDown, StoreError) as exc:
                # the journal failing (disk full, ...) stops this encoder: no card goes out
                # unrecorded; the card in it, if any, is rejected at the next start (recover)
                log.error("encoder %s stopped: %s", enc.name, exc)
                self.on_event("encoder_stopped", {"encoder": enc.name, "reason": str(exc)})
                return

    def _one(self, enc: Encoder, order: Order, st: LineStats) -> None:
        j = self.journal
        t_start = time.perf_counter()
        # 1. the chip image, signed, before a card is touched
        t = time.perf_counter()
        try:
            image = build_image(order, self.signer, active_auth=self.active_auth, cvca=self._cvca(),
                                finger_positions=self.finger_positions)
            steps = plan(image, self.chunk)  # checks that every file fits, before a card is used
        except BiostationError as exc:
            j.release(order.order_id)
            raise _EncoderDown(f"cannot sign: {exc}") from exc
        st.sign_s += time.perf_counter() - t
        # 2. a blank card
        t = time.perf_counter()
        try:
            transport = enc.load()
        except (DeviceError, CardError) as exc:
            j.release(order.order_id)
            raise _EncoderDown(f"no card: {exc}") from exc
        # extended-length writes when the card's ATR announces them (ISO/IEC 7816-4 §12.1.1.9)
        extended = card_limits(getattr(transport, "atr", None), None)[0]
        channel = ApduChannel(transport, extended=extended)
        if extended:
            steps = plan(image, self.extended_chunk)
        serial, card_id = "unreadable", None
        try:
            serial = cplc_serial(channel)
        except (CardError, DeviceError, PersoError) as exc:
            fail = f"serial: {type(exc).__name__}: {exc}"
        else:
            fail = None
        st.handling_s += time.perf_counter() - t
        t = time.perf_counter()
        card_id = j.start_card(order.order_id, serial, enc.name)
        st.journal_s += time.perf_counter() - t
        rb: dict[str, Any] | None = None
        if fail is None:
            # 3. write
            t = time.perf_counter()
            n0 = channel.apdu_count
            jt = [0.0]

            def journal_step(i: int, step: Any) -> None:
                if step.last_of_file or step.file is None and step.label != "select applet":
                    t1 = time.perf_counter()
                    j.step(card_id, step.label if step.file is None else f"wrote {step.file}")  # type: ignore[arg-type]
                    jt[0] += time.perf_counter() - t1

            try:
                write(channel, steps, journal_step)
            except (CardError, DeviceError) as exc:
                fail = f"write: {type(exc).__name__} at step {getattr(exc, 'step_index', '?')}: {exc}"
            st.apdus_write += channel.apdu_count - n0
            st.write_s += time.perf_counter() - t - jt[0]
            st.journal_s += jt[0]
        if fail is None:
            # 4. read back through the normal reading path, from a fresh power-up
            t = time.perf_counter()
            j.verifying(card_id)
            st.journal_s += time.perf_counter() - t
            t = time.perf_counter()
            try:
                enc.repower()
                rb = read_back(transport, image, self.trust, terminal=self.terminal)
                st.apdus_read += rb["apdus"]
                if not rb["ok"]:
                    fail = "read-back: " + "; ".join(rb["problems"])[:300]
            except (CardError, DeviceError, PersoError, ValueError) as exc:
                fail = f"read-back: {type(exc).__name__}: {exc}"
            st.readback_s += time.perf_counter() - t
        # 5. the verdict, in the journal first, then the card goes out
        t = time.perf_counter()
        if fail is None and rb is not None:
            j.complete(card_id, rb)
            st.cards_done += 1
            ev = ("done", {"order_id": order.order_id, "serial": serial, "encoder": enc.name})
        else:
            status = j.card_failed(card_id, fail or "unknown", rb)
            st.cards_rejected += 1
            ev = ("rejected_card", {"order_id": order.order_id, "serial": serial, "encoder": enc.name,
                                    "reason": fail, "order_status": status.value})
        st.journal_s += time.perf_counter() - t
        t = time.perf_counter()
        try:
            enc.unload(good=ev[0] == "done")
        except (DeviceError, CardError):
            pass
        st.handling_s += time.perf_counter() - t
        st.busy_s += time.perf_counter() - t_start
        self.on_event(*ev)


class _EncoderDown(Exception):
    """This encoder cannot go on (no cards, no signer): its thread stops, the others go on."""
