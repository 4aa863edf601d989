"""PC/SC smart-card reader driver on pyscard: any reader pcscd knows (CCID contact/contactless
readers, and the vpcd virtual reader that the virtual eMRTD card plugs into).

Readers are found with ``smartcard.System.readers()``; an attachment is ``pcsc:<reader name>``.
When pcscd is not running there are simply no readers (never an error at probe time).
Presence is polled with ``SCardGetStatusChange`` (no connection, so polling never disturbs an
exchange on another process's handle). pyscard errors are mapped onto the HAL's error tree:
card gone (``SCARD_W_REMOVED_CARD``, ``SCARD_E_NO_SMARTCARD``, "Card was removed") ->
:class:`CardRemovedError`, the reader gone -> :class:`DeviceGoneError`, anything else ->
:class:`DeviceProtocolError`. APDUs are never logged here (the HAL logs lengths and SW only).
"""

from __future__ import annotations

import time
from typing import Any

from biostation.config import Settings
from biostation.errors import CardRemovedError, DeviceGoneError, DeviceProtocolError
from biostation.hal import Attachment, CardReader, Feature

try:  # optional dependency: the [hw] extra
    from smartcard import scard as _scard
    from smartcard.Exceptions import CardConnectionException, NoCardException
    from smartcard.System import readers as _readers
except ImportError:  # pragma: no cover - exercised only without pyscard
    _scard = None

__all__ = ["PcscReader"]

_REMOVED_WORDS = ("removed", "no smart card", "unpowered", "reset")


def _card_gone(exc: Exception) -> bool:
    text = str(exc).lower()
    return any(w in text for w in _REMOVED_WORDS)


class PcscReader(CardReader):
    id = "pcsc"
    full_name = "PC/SC reader (pyscard)"
    features = Feature.CARD_CONTACTLESS | Feature.CARD_CONTACT
    #: how long after a failed exchange to watch for the card leaving before calling it a protocol error (s)
    removal_grace_s = 1.0

    @classmethod
    def probe(cls, settings: Settings) -> list[Attachment]:
        if _scard is None:
            return []
        try:
            names = [str(r) for r in _readers()]
        except Exception:  # pcscd not running / no service: no readers
            return []
        return [Attachment("pcsc", f"pcsc:{n}", n) for n in names]

    @classmethod
    def discover(cls, attachment: Attachment) -> int:
        return 80 if attachment.bus == "pcsc" and _scard is not None else 0

    @classmethod
    def open_by_name(cls, name: str | None, settings: Settings | None = None) -> PcscReader:
        """The reader called ``name`` (or whose name starts with it), or the first one with a card."""
        atts = cls.probe(settings or Settings())
        if not atts:
            raise DeviceGoneError("no PC/SC reader found (is pcscd running?)")
        if name:
            match = [a for a in atts if a.name == name] or [a for a in atts if a.name.startswith(name)]
            if not match:
                raise DeviceGoneError(f"no PC/SC reader {name!r} (readers: {', '.join(a.name for a in atts)})")
            dev = cls(match[0], settings or Settings())
            dev.open()
            return dev
        for a in atts:
            dev = cls(a, settings or Settings())
            dev.open()
            if dev.card_present():
                return dev
        dev = cls(atts[0], settings or Settings())
        dev.open()
        return dev

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._conn: Any = None
        self._ctx: Any = None

    @property
    def reader_name(self) -> str:
        return self.attachment.name

    def _do_open(self) -> None:
        if _scard is None:
            raise DeviceGoneError("pyscard is not installed (pip install biostation[hw])", self.device_id)
        if self.reader_name not in [str(r) for r in _readers()]:
            raise DeviceGoneError(f"reader {self.reader_name!r} is not attached", self.device_id)

    def _do_close(self) -> None:
        self._disconnect()
        if self._ctx is not None:
            _scard.SCardReleaseContext(self._ctx)
            self._ctx = None

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.release()  # disconnects, then releases its PC/SC context
        except Exception:
            # the card (or pcscd) is gone: drop the handles ourselves, or pyscard's __del__
            # retries later and complains, possibly after pcscd has stopped
            try:
                _scard.SCardReleaseContext(conn.hcontext)
            except Exception:
                pass
            conn.hcard = None
            conn.hcontext = None

    def _do_card_present(self) -> bool:
        if self._ctx is None:
            hr, self._ctx = _scard.SCardEstablishContext(_scard.SCARD_SCOPE_USER)
            if hr != _scard.SCARD_S_SUCCESS:
                self._ctx = None
                raise DeviceProtocolError(f"PC/SC context: {_scard.SCardGetErrorMessage(hr)}", self.device_id)
        hr, states = _scard.SCardGetStatusChange(self._ctx, 0, [(self.reader_name, _scard.SCARD_STATE_UNAWARE)])
        if hr == _scard.SCARD_E_UNKNOWN_READER:
            raise DeviceGoneError(f"reader {self.reader_name!r} vanished", self.device_id)
        if hr not in (_scard.SCARD_S_SUCCESS, _scard.SCARD_E_TIMEOUT):
            raise DeviceProtocolError(f"presence: {_scard.SCardGetErrorMessage(hr)}", self.device_id)
        return bool(states[0][1] & _scard.SCARD_STATE_PRESENT)

    def _do_power_on(self) -> bytes:
        self._disconnect()
        reader = next((r for r in _readers() if str(r) == self.reader_name), None)
        if reader is None:
            raise DeviceGoneError(f"reader {self.reader_name!r} vanished", self.device_id)
        conn = reader.createConnection()
        try:
            conn.connect()
        except NoCardException as exc:
            raise CardRemovedError(f"no card on {self.reader_name}: {exc}") from None
        except CardConnectionException as exc:
            if _card_gone(exc):
                raise CardRemovedError(f"card left {self.reader_name}") from None
            raise DeviceProtocolError(f"connect: {exc}", self.device_id) from None
        self._conn = conn
        return bytes(conn.getATR())

    def _do_power_off(self) -> None:
        self._disconnect()

    def _do_transmit(self, apdu: bytes) -> bytes:
        conn = self._conn
        if conn is None:
            raise CardRemovedError(f"no connected card on {self.reader_name}")
        try:
            data, sw1, sw2 = conn.transmit(list(apdu))
        except CardConnectionException as exc:
            self._disconnect()
            if _card_gone(exc) or self._gone_within(self.removal_grace_s):
                raise CardRemovedError(f"card left {self.reader_name} during an exchange") from None
            raise DeviceProtocolError(f"transmit: {exc}", self.device_id) from None
        return bytes(data) + bytes([sw1, sw2])

    def _gone_within(self, seconds: float) -> bool:
        """Some readers (vpcd among them) report a card that left mid-APDU only as "no valid
        response"; the presence state, a moment later, tells removal from a mute card."""
        end = time.monotonic() + seconds
        while True:
            try:
                if not self._do_card_present():
                    return True
            except Exception:
                return False
            if time.monotonic() >= end:
                return False
            time.sleep(0.05)

    def _do_info(self) -> dict[str, Any]:
        return {"vendor": "", "model": self.reader_name, "serial": "",
                "atr": self.atr.hex() if self.atr else None}
