"""Connect the virtual card to pcscd through the vpcd reader driver (vsmartcard project).

pcscd loads ``libifdvpcd.so`` (Debian ``vsmartcard-vpcd``), which listens on TCP port 35963
(``0x8C7B``, the ``CHANNELID`` in ``/etc/reader.conf.d/vpcd``) and shows a reader named
``Virtual PCD 00 00``. The card side connects to that port as a client; while it is connected
the reader has a card.

Wire format (vsmartcard ``vpcd.h``): every message is a 2-byte big-endian length then the
payload. A 1-byte payload from the reader is a control code: ``00`` power off, ``01`` power on,
``02`` reset, ``04`` ATR request (answered with the ATR). Anything longer is a command APDU,
answered with the response APDU.

Closing the socket is "card removed": :meth:`VpcdClient.pull` does it on purpose, and so does a
card fault that pulls the card mid-read.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time

from biostation.errors import CardRemovedError, DeviceError

from .card import VirtualCard

log = logging.getLogger(__name__)

__all__ = ["VPCD_PORT", "VpcdClient"]

VPCD_PORT = 0x8C7B  # 35963
_POWER_OFF, _POWER_ON, _RESET, _GET_ATR = 0, 1, 2, 4
_QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux only


class VpcdClient:
    """Serve ``card`` to vpcd at ``host:port`` on a background thread.

    ``reinsert_after_s``: after a pull, put the card back after this many seconds (None: stay
    out until :meth:`insert`). Thread-safe start/stop/pull/insert.
    """

    def __init__(self, card: VirtualCard, host: str = "127.0.0.1", port: int = VPCD_PORT,
                 reinsert_after_s: float | None = None):
        self.card = card
        self.host, self.port = host, port
        self.reinsert_after_s = reinsert_after_s
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._inserted = threading.Event()
        self._inserted.set()
        self._thread: threading.Thread | None = None
        self.connected = threading.Event()
        self.sessions = 0

    def __repr__(self) -> str:
        return f"<VpcdClient {self.host}:{self.port} {'connected' if self.connected.is_set() else 'idle'}>"

    # --- control -------------------------------------------------------------------------------------
    def start(self, wait_s: float = 10.0) -> VpcdClient:
        """Start serving; waits until vpcd accepted the connection (DeviceError if it never does)."""
        self._thread = threading.Thread(target=self._run, name="vpcd-card", daemon=True)
        self._thread.start()
        if not self.connected.wait(wait_s):
            self.stop()
            raise DeviceError(f"vpcd did not accept a connection on {self.host}:{self.port} within {wait_s} s: "
                              "is pcscd running with the vpcd driver?")
        return self

    def stop(self) -> None:
        self._stop.set()
        self._inserted.set()
        self._close()
        if self._thread is not None:
            self._thread.join(5)

    def pull(self) -> None:
        """Take the card out of the reader (pcscd sees a removal)."""
        self._inserted.clear()
        self.card.pull()
        self._close()

    def insert(self) -> None:
        self.card.present = True
        self.card.reset()
        self._inserted.set()

    # --- internals -------------------------------------------------------------------------------------
    def _close(self) -> None:
        s, self._sock = self._sock, None
        self.connected.clear()
        if s is not None:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def _recv(self, s: socket.socket, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            # vpcd writes the length and the payload separately; without quick ACKs the
            # payload waits for our delayed ACK (Nagle on its side): ~40 ms per APDU
            if _QUICKACK is not None:
                s.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
            part = s.recv(n - len(buf))
            if not part:
                raise ConnectionError("vpcd closed the connection")
            buf += part
        return buf

    def _send(self, s: socket.socket, payload: bytes) -> None:
        s.sendall(struct.pack(">H", len(payload)) + payload)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._inserted.wait()
            if self._stop.is_set():
                break
            try:
                s = socket.create_connection((self.host, self.port), timeout=2)
            except OSError:
                time.sleep(0.2)  # pcscd not (yet) listening
                continue
            s.settimeout(None)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock = s
            self.card.present = True
            self.card.reset()
            self.sessions += 1
            self.connected.set()
            try:
                self._serve(s)
            except (ConnectionError, OSError):
                pass
            except CardRemovedError:
                log.info("virtual card pulled out of the field")
                self._inserted.clear()
                if self.reinsert_after_s is not None:
                    threading.Timer(self.reinsert_after_s, self.insert).start()
            finally:
                self._close()

    def _serve(self, s: socket.socket) -> None:
        while not self._stop.is_set():
            (n,) = struct.unpack(">H", self._recv(s, 2))
            msg = self._recv(s, n)
            if n == 1:
                code = msg[0]
                if code in (_POWER_ON, _RESET, _POWER_OFF):
                    self.card.reset()
                elif code == _GET_ATR:
                    self._send(s, self.card.atr)
                continue
            self._send(s, self.card.process(msg))
