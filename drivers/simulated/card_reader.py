"""Simulated (in-process) smart-card reader.

It holds a *card*: any object with ``atr: bytes``, ``reset() -> None`` and
``process(apdu: bytes) -> bytes``. The default card is :class:`BlankCard`, a card with no
application (every command answers 6D00, "instruction not supported"), like a blank chip
before personalization; the ICAO 9303 virtual card plugs in the same way. For the real PC/SC
path, the virtual card speaks the vpcd socket protocol behind pcscd instead.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from biostation.config import Settings
from biostation.errors import CardRemovedError
from biostation.hal import Attachment, CardReader, Feature


class SimulatedCard(Protocol):
    atr: bytes

    def reset(self) -> None: ...

    def process(self, apdu: bytes) -> bytes: ...


class BlankCard:
    """A card with no application selected or installed."""

    atr = bytes.fromhex("3B8880010000000000000000")  # ISO 14443 contactless card, no historical bytes

    def reset(self) -> None:
        pass

    def process(self, apdu: bytes) -> bytes:
        return b"\x6d\x00"


class SimulatedCardReader(CardReader):
    id = "simulated-card-reader"
    full_name = "Simulated contactless reader"
    features = Feature.SIMULATED | Feature.CARD_CONTACTLESS | Feature.CARD_ENCODE

    @classmethod
    def probe(cls, settings: Settings) -> list[Attachment]:
        return [Attachment("sim", "sim:reader0", cls.full_name)]

    @classmethod
    def discover(cls, attachment: Attachment) -> int:
        return 50 if attachment.bus == "sim" and attachment.key.startswith("sim:reader") else 0

    @classmethod
    def create(cls, card: SimulatedCard | None = None, key: str = "sim:reader-test",
               settings: Settings | None = None) -> SimulatedCardReader:
        dev = cls(Attachment("sim", key, cls.full_name), settings or Settings(sim_time_scale=0.0))
        if card is not None:
            dev.insert(card)
        return dev

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._card: SimulatedCard | None = BlankCard()
        self._card_lock = threading.Lock()

    def insert(self, card: SimulatedCard) -> None:
        with self._card_lock:
            self._card = card

    def remove(self) -> None:
        with self._card_lock:
            self._card = None

    def _card_or_raise(self) -> SimulatedCard:
        card = self._card
        if card is None:
            raise CardRemovedError(f"no card on {self.device_id}")
        return card

    def _do_card_present(self) -> bool:
        return self._card is not None

    def _do_power_on(self) -> bytes:
        card = self._card_or_raise()
        card.reset()
        return card.atr

    def _do_transmit(self, apdu: bytes) -> bytes:
        return self._card_or_raise().process(apdu)

    def _do_info(self) -> dict[str, Any]:
        return {"vendor": "biostation", "model": "simulated", "serial": self.attachment.key,
                "card": type(self._card).__name__ if self._card else None}
