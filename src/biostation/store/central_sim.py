"""A simulated central endpoint for the outbox: demos, tests and fault drills.

:class:`SimulatedCentral` is a small HTTP server on a loopback address that files each
transaction once per ``Idempotency-Key`` (a repeat is answered 200 with the first receipt and
counted as a suppressed duplicate), checks ``Content-Digest``, and can be told to fail:

* ``mode = "ok"``: file and answer 201 ``{"receipt": ...}``;
* ``"503"``: answer 503 (with ``Retry-After`` when ``retry_after`` is set);
* ``"drop"``: read the request, close the connection without answering (nothing filed);
* ``"lost-ack"``: file the transaction, then close without answering (the reply is lost, so
  the sender must retry and the key must make the retry harmless);
* :meth:`SimulatedCentral.go_down` / :meth:`go_up`: close the listening socket (connections
  refused) and open it again on the same port.

``script`` is a list of modes used one per request before falling back to ``mode``. Counters:
``filed`` (key -> SHA-256 of the body), ``posts``, ``duplicates``, ``by_mode``. Thread-safe.
It speaks plain HTTP (which the outbox accepts to loopback addresses only), or HTTPS with
``tls=(certificate, key)``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["SimulatedCentral"]


class _Server(ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, *a: Any, **kw: Any):
        super().__init__(*a, **kw)
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)

    def drop_all(self) -> None:
        """Close every kept-alive connection too (a real outage takes them down)."""
        with self.sockets_lock:
            socks, self.open_sockets = list(self.open_sockets), set()
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class SimulatedCentral:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, tls: tuple[str, str] | None = None):
        self.host = host
        self.port = port
        self.tls = tls  # (certificate PEM, key PEM): serve HTTPS
        self.mode = "ok"
        self.script: list[str] = []
        self.retry_after: float | None = None
        self.filed: dict[str, str] = {}
        self.receipts: dict[str, str] = {}
        self.posts = 0
        self.duplicates = 0
        self.bad_digest = 0
        self.by_mode: dict[str, int] = {}
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}/transactions"

    # --- life cycle ----------------------------------------------------------------------------
    def go_up(self) -> SimulatedCentral:
        if self._server is not None:
            return self
        sim = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                sim._handle(self, body)

        self._server = _Server((self.host, self.port), Handler)
        self.port = self._server.server_address[1]
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*self.tls)
            self._server.socket = ctx.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="central-sim", daemon=True)
        self._thread.start()
        return self

    def go_down(self) -> None:
        """Stop listening: new connections are refused until :meth:`go_up`."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._server.drop_all()
        if self._thread is not None:
            self._thread.join()
        self._server = None

    def __enter__(self) -> SimulatedCentral:
        return self.go_up()

    def __exit__(self, *exc: object) -> None:
        self.go_down()

    # --- requests --------------------------------------------------------------------------------
    def _next_mode(self) -> str:
        with self._lock:
            self.posts += 1
            mode = self.script.pop(0) if self.script else self.mode
            self.by_mode[mode] = self.by_mode.get(mode, 0) + 1
            return mode

    def _file(self, key: str, body: bytes) -> tuple[int, str]:
        with self._lock:
            if key in self.filed:
                self.duplicates += 1
                return 200, self.receipts[key]
            self.filed[key] = hashlib.sha256(body).hexdigest()
            self.receipts[key] = f"R{len(self.filed):06d}"
            return 201, self.receipts[key]

    def _handle(self, h: BaseHTTPRequestHandler, body: bytes) -> None:
        mode = self._next_mode()
        key = h.headers.get("Idempotency-Key")
        if mode in ("drop", "lost-ack"):
            if mode == "lost-ack" and key:
                self._file(key, body)
            h.close_connection = True
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if mode == "503":
            extra = {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}
            self._reply(h, 503, {"error": "unavailable"}, extra)
            return
        if not key:
            self._reply(h, 400, {"error": "Idempotency-Key missing"})
            return
        want = "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode() + ":"
        if h.headers.get("Content-Digest") != want:
            with self._lock:
                self.bad_digest += 1
            self._reply(h, 400, {"error": "Content-Digest does not match the body"})
            return
        status, receipt = self._file(key, body)
        self._reply(h, status, {"receipt": receipt})

    @staticmethod
    def _reply(h: BaseHTTPRequestHandler, status: int, obj: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(obj).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)
