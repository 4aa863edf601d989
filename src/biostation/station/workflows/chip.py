"""Reading a citizen's chip at the desk: one secure-messaging session per reader at a time, the
station's trust store, the card powered only for the read.

:class:`ChipReads` is the desk's entry point: :meth:`ChipReads.read` takes a HAL
:class:`~biostation.hal.CardReader` and the card access number (or the MRZ), builds the trust
store (the CSCA folder of the settings, plus a simulated card's own test CSCA on simulated
readers only), powers the card, runs :func:`biostation.card.reader.read_document` (PACE or BAC,
passive, active and chip authentication, the Vietnamese ID cross-check) and powers it off again
whatever happens. A second read on the same reader while one runs gets
:class:`~biostation.errors.DeviceBusyError` at once. Thread-safe.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...card.reader import read_document
from ...card.trust import TrustStore
from ...errors import DeviceBusyError
from ...hal import CardReader

__all__ = ["ChipRead", "ChipReads", "station_trust"]


@dataclass
class ChipRead:
    """A finished read: the card module's result and where the trust anchors came from."""

    result: Any  # biostation.card.reader.DocumentResult
    trust_sources: list[str]


def station_trust(trust_dir: Path, reader: CardReader) -> tuple[TrustStore, list[str]]:
    """The CSCA trust store of a read on ``reader``: the station's folder ``trust_dir`` (when it
    exists) and, for a simulated reader only, its virtual card's test CSCA. Returns the store and
    a description of its sources."""
    trust = TrustStore.load(trust_dir) if trust_dir.is_dir() else TrustStore()
    sources = [str(trust_dir)] if trust_dir.is_dir() else []
    anchor = getattr(reader, "trust_anchor", None)
    path = anchor() if anchor is not None else None
    if path is not None:
        trust.add_file(path)
        sources.append("simulated card's test CSCA")
    return trust, sources


class ChipReads:
    """Chip reads of one station; ``trust_dir`` is the settings' CSCA folder."""

    def __init__(self, trust_dir: Path, terminal_dir: Path | None = None):
        self.trust_dir = Path(trust_dir)
        self.terminal_dir = terminal_dir
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def terminal(self, reader: CardReader) -> Any:
        """The inspection-system credentials for Extended Access Control on ``reader``: the
        station's (``terminal_dir``), else a simulated reader's own test credentials; None when
        there are none (DG3 is then reported as not read)."""
        from ...card import load_terminal

        folder = self.terminal_dir
        if folder is None:
            own = getattr(reader, "terminal_credentials", None)
            folder = own() if own is not None else None
        return load_terminal(Path(folder)) if folder is not None and Path(folder).is_dir() else None

    def read(self, reader: CardReader, *, can: str | None = None, mrz: str | None = None,
             data_groups: list[int] | None = None, eac: bool = False) -> ChipRead:
        """Read and verify the chip on ``reader``; see the module doc. ``eac``: also run
        terminal authentication (when credentials are there) so that DG3 is read. Errors of the
        card module (access denied, card removed, check failures) propagate, with the card
        powered off."""
        with self._guard:
            lock = self._locks.setdefault(reader.device_id, threading.Lock())
        if not lock.acquire(blocking=False):  # one secure-messaging session per chip at a time
            raise DeviceBusyError(f"a card read is already running on {reader.device_id}", reader.device_id)
        try:
            trust, sources = station_trust(self.trust_dir, reader)
            reader.power_on()
            try:
                terminal = self.terminal(reader) if eac else None
                result = read_document(reader, can=can, mrz=mrz, trust=trust, data_groups=data_groups,
                                       terminal=terminal)
            finally:
                if reader.powered:
                    reader.power_off()
        finally:
            lock.release()
        return ChipRead(result, sources)
