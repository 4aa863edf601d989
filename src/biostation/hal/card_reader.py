"""Smart-card reader / encoder interface.

One object per reader slot. The ICAO 9303 code in :mod:`biostation.card` talks to anything
with ``transmit(apdu: bytes) -> bytes`` (the :class:`ApduTransport` protocol); a connected
:class:`CardReader` is one, and so is an in-process virtual card or a recording.

Card presence is polled by :meth:`CardReader.poll` (the registry's monitor calls it) and goes
out as ``card.inserted`` / ``card.removed`` events. APDUs are logged by length and status word
only: a command may carry keys or personal data.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol, runtime_checkable

from ..errors import CardRemovedError, DeviceError, DeviceProtocolError, DeviceStateError
from .base import Device, DeviceClass, DeviceState
from .events import EventKind

log = logging.getLogger(__name__)

#: largest extended-length command APDU: header 4 + Lc 3 + 65535 data + Le 3
MAX_APDU = 4 + 3 + 65535 + 3


@runtime_checkable
class ApduTransport(Protocol):
    def transmit(self, apdu: bytes) -> bytes:
        """Send one command APDU; return the response data followed by SW1 SW2."""
        ...


class CardReader(Device):
    """Base of reader drivers.

    Hooks: ``_do_card_present()``, ``_do_power_on() -> ATR``, ``_do_power_off()``,
    ``_do_reset(cold) -> ATR``, ``_do_transmit(apdu) -> response``. A hook that finds the card
    gone raises :class:`CardRemovedError`; the base then emits ``card.removed`` and drops the
    session, so the card is never left "half-connected" in our state.
    """

    device_class = DeviceClass.CARD_READER

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._present: bool | None = None
        self._atr: bytes | None = None
        self.apdu_count = 0

    @property
    def atr(self) -> bytes | None:
        """ATR of the powered card, or None when the card is not powered."""
        return self._atr

    @property
    def powered(self) -> bool:
        return self._atr is not None

    def info(self):  # type: ignore[no-untyped-def]
        info = super().info()
        info.details["card_present"] = self._present  # None until first looked at
        return info

    def poll(self) -> bool:
        """Check card presence; emits ``card.inserted`` / ``card.removed`` on change."""
        if self._state in (DeviceState.GONE, DeviceState.CLOSED):
            return False
        try:
            present = bool(self._do_card_present())
        except DeviceError:
            raise
        except Exception as exc:
            raise DeviceProtocolError(f"presence check failed: {exc!r}", self.device_id) from exc
        self._presence(present)
        return present

    def card_present(self) -> bool:
        self._require_open()
        return self.poll()

    def wait_for_card(self, timeout_s: float = 10.0, poll_s: float = 0.05) -> None:
        from ..errors import DeviceTimeoutError

        end = time.monotonic() + timeout_s
        while not self.card_present():
            if time.monotonic() >= end:
                raise DeviceTimeoutError(f"no card on {self.device_id} after {timeout_s:.1f} s", self.device_id)
            time.sleep(poll_s)

    def power_on(self) -> bytes:
        """Power the card and return its ATR. CardRemovedError if there is no card."""
        with self._operation("power_on"):
            atr = self._guard(self._do_power_on)
            self._presence(True)
            self._atr = atr
            return atr

    def power_off(self) -> None:
        with self._operation("power_off"):
            try:
                self._guard(self._do_power_off)
            finally:
                self._atr = None

    def reset(self, cold: bool = False) -> bytes:
        """Warm (default) or cold reset; returns the new ATR. Drops any secure-messaging session."""
        with self._operation("reset"):
            self._atr = self._guard(lambda: self._do_reset(cold))
            return self._atr

    def transmit(self, apdu: bytes) -> bytes:
        """Send one command APDU to the powered card and return response data + SW1 SW2."""
        apdu = bytes(apdu)
        if not 4 <= len(apdu) <= MAX_APDU:
            raise DeviceStateError(f"APDU of {len(apdu)} bytes: must be 4..{MAX_APDU}", self.device_id)
        with self._operation("transmit", announce=False):
            if self._atr is None:
                raise DeviceStateError(f"no powered card on {self.device_id}: call power_on() first",
                                       self.device_id)
            resp = self._guard(lambda: self._do_transmit(apdu))
            if not isinstance(resp, (bytes, bytearray)) or len(resp) < 2:
                raise DeviceProtocolError(f"reader returned {len(resp) if resp else 0} bytes, "
                                          "expected at least SW1 SW2", self.device_id)
            self.apdu_count += 1
            log.debug("%s: C-APDU %d bytes -> R-APDU %d bytes SW %s", self.device_id, len(apdu),
                      len(resp), bytes(resp[-2:]).hex())
            return bytes(resp)

    # --- internals ----------------------------------------------------------------------------
    def _presence(self, present: bool) -> None:
        if present != self._present:
            first = self._present is None
            self._present = present
            if not present:
                self._atr = None
            if not (first and not present):
                self.bus.emit(EventKind.CARD_INSERTED if present else EventKind.CARD_REMOVED, self.device_id)

    def _guard(self, fn):  # type: ignore[no-untyped-def]
        try:
            return fn()
        except CardRemovedError:
            self._presence(False)
            raise

    # --- hooks -----------------------------------------------------------------------------------
    def _do_card_present(self) -> bool:
        raise DeviceStateError(f"{self.id} does not implement presence", self.device_id)

    def _do_power_on(self) -> bytes:
        raise DeviceStateError(f"{self.id} does not implement power on", self.device_id)

    def _do_power_off(self) -> None:
        pass

    def _do_reset(self, cold: bool) -> bytes:
        self._do_power_off()
        return self._do_power_on()

    def _do_transmit(self, apdu: bytes) -> bytes:
        raise DeviceStateError(f"{self.id} does not implement transmit", self.device_id)
