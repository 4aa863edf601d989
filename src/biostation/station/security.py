"""What every request of the daemon goes through, whichever router serves it.

:class:`Guard` is a pure ASGI middleware; in order, before the route runs:

1. **Host.** The ``Host`` header must name this station: ``localhost``, a loopback address, the
   bound address or one of ``Settings.allowed_hosts`` (an IP literal is accepted too when the
   daemon binds a wildcard address). A web page on another name that resolves to the station
   (DNS rebinding) gets 400 ``HostError``.
2. **Credentials, from the headers alone.** Routes whose options hold ``x-public`` (health, the
   sign-in pages, the docs assets; see :class:`RouteTable`) are open; every other request, routed
   or not, needs ``Authorization: Bearer <station token>`` or a live sign-in session cookie, else
   401 ``AuthError`` before a byte of its body is read. WebSocket routes get the same checks.
3. **Body size.** Each route takes at most ``x-max-body-bytes`` (its ``openapi_extra``), else
   ``Settings.max_body_bytes``. A larger ``Content-Length`` gets 413 at once; a chunked body is
   counted as it streams and cut off with 413 when it passes the limit. A body that stalls for
   ``Settings.body_timeout_s`` between two chunks gets 408.

Answers given here close the connection, so an unread body is never drained. Every response
leaves with ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer``, a
Content-Security-Policy (``default-src 'none'`` unless the route set its own) and, unless the
route chose otherwise, ``Cache-Control: no-store``: API answers carry personal data (frames,
prints, chip contents).

Also here: :class:`Sessions` (the browser sign-in: random ids, expiring, revocable, never the API
token), :class:`HeavyPool` (bounded off-loop execution, 503 with ``Retry-After`` when full) and
:func:`guarded_h11_protocol` (uvicorn's h11 protocol with a deadline on the request head, so
idle and half-sent connections are closed, and a lingering close, so a client still sending a body
the station refused reads the answer instead of a connection reset).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import ipaddress
import json
import re
import secrets
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from ..config import Settings
from ..errors import StationBusyError
from .auth import token_matches

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
T = TypeVar("T")

#: ``openapi_extra`` key: the route needs no credentials
PUBLIC = "x-public"
#: ``openapi_extra`` key: the largest body the route takes (bytes)
MAX_BODY = "x-max-body-bytes"

SESSION_COOKIE = "biostation_session"

#: the policy of responses that set none (JSON, errors): nothing may load, nothing may frame them
DEFAULT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARDS = frozenset({"0.0.0.0", "::", ""})


def route_options(*, public: bool = False, max_body_bytes: int | None = None) -> dict[str, Any]:
    """``openapi_extra`` for a route: ``public`` (no credentials) and/or its own body limit."""
    out: dict[str, Any] = {}
    if public:
        out[PUBLIC] = True
    if max_body_bytes is not None:
        out[MAX_BODY] = int(max_body_bytes)
    return out


# --- sign-in sessions ---------------------------------------------------------------------------

class Sessions:
    """Browser sign-in sessions: a random id per sign-in, valid for ``ttl_s``, revocable.

    Held in memory only: a restart signs everyone out. At most ``max_sessions`` live at once (the
    oldest goes first). Thread-safe.
    """

    def __init__(self, ttl_s: float, max_sessions: int = 256):
        self.ttl_s = ttl_s
        self.max_sessions = max_sessions
        self._expiry: dict[str, float] = {}
        self._lock = threading.Lock()

    def new(self) -> str:
        sid = secrets.token_urlsafe(32)
        with self._lock:
            self._drop_expired()
            while len(self._expiry) >= self.max_sessions:
                self._expiry.pop(min(self._expiry, key=self._expiry.__getitem__))
            self._expiry[sid] = time.monotonic() + self.ttl_s
        return sid

    def valid(self, sid: str | None) -> bool:
        if not sid:
            return False
        with self._lock:
            expiry = self._expiry.get(sid)
            if expiry is None:
                return False
            if expiry <= time.monotonic():
                del self._expiry[sid]
                return False
            return True

    def revoke(self, sid: str | None) -> None:
        with self._lock:
            self._expiry.pop(sid or "", None)

    def _drop_expired(self) -> None:
        now = time.monotonic()
        for sid in [s for s, e in self._expiry.items() if e <= now]:
            del self._expiry[sid]


def credentials_ok(token: str, sessions: Sessions, authorization: str | None, cookie_sid: str | None) -> bool:
    """The station token as a Bearer credential, or a live session id in the cookie."""
    if authorization is not None:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and token_matches(token, value.strip()):
            return True
    return sessions.valid(cookie_sid)


# --- heavy work off the event loop --------------------------------------------------------------

def free_memory() -> None:
    """Collect garbage and hand freed heap pages back to the system (glibc ``malloc_trim``)."""
    gc.collect()
    if _libc is not None:
        _libc.malloc_trim(0)


def _load_libc() -> Any:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim  # noqa: B018 (glibc only)
        return libc
    except (OSError, AttributeError):
        return None


_libc = _load_libc()


class HeavyPool:
    """Runs CPU- and memory-heavy request work on ``workers`` threads, off the event loop.

    At most ``workers + queue`` jobs are admitted at once; the next gets
    :class:`StationBusyError` (503 with ``Retry-After``) instead of waiting unboundedly. A job's slot
    is freed when its thread finishes, not when its client leaves. After each job the freed memory
    goes back to the system.
    """

    def __init__(self, workers: int, queue: int, retry_after_s: int = 2):
        self.capacity = workers + queue
        self.retry_after_s = retry_after_s
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="biostation-heavy")
        self._slots = threading.BoundedSemaphore(self.capacity)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        if not self._slots.acquire(blocking=False):
            raise StationBusyError(f"the station is already doing {self.capacity} heavy requests; "
                                   f"try again in {self.retry_after_s} s", self.retry_after_s)
        try:
            fut = self._executor.submit(self._call, fn, args)
        except BaseException:
            self._slots.release()
            raise
        fut.add_done_callback(lambda _: self._slots.release())
        return await asyncio.wrap_future(fut)

    @staticmethod
    def _call(fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        try:
            return fn(*args)
        finally:
            free_memory()

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


# --- the middleware -------------------------------------------------------------------------------

def _host_name(value: str) -> str:
    """The name part of a Host header value (``[::1]:8470`` -> ``::1``)."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _json_response(status: int, error: str, reason: str,
                   extra: list[tuple[bytes, bytes]] | None = None) -> tuple[Message, Message]:
    body = json.dumps({"error": error, "reason": reason}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close")] + (extra or [])
    return ({"type": "http.response.start", "status": status, "headers": headers},
            {"type": "http.response.body", "body": body})


class Guard:
    """ASGI middleware: host check, credentials from headers, body caps, security headers.

    ``token`` and ``sessions`` are read from ``scope["app"].state`` at each request, so the app
    factory sets them once; see the module docstring for the order of the checks.
    """

    def __init__(self, app: Callable[..., Awaitable[None]], settings: Settings):
        self.app = app
        self.settings = settings
        bound = settings.host.strip("[]").lower()
        self.any_ip = bound in WILDCARDS
        self.hosts = LOOPBACK_NAMES | {bound} | {h.lower() for h in settings.allowed_hosts}

    def host_allowed(self, headers: dict[bytes, bytes]) -> bool:
        raw = headers.get(b"host")
        if raw is None:
            return False
        name = _host_name(raw.decode("latin-1"))
        return name in self.hosts or (self.any_ip and _is_ip(name))

    def _options(self, scope: Scope) -> dict[str, Any]:
        app = scope["app"]
        table: RouteTable | None = getattr(app.state, "route_table", None)
        if table is None:
            table = app.state.route_table = RouteTable(app)
        return table.lookup(scope["method"], scope["path"])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":  # no socket route today; one added later is guarded too
            headers = dict(scope["headers"])
            state = scope["app"].state
            auth = headers.get(b"authorization")
            if not (self.host_allowed(headers) and credentials_ok(
                    state.token, state.sessions, auth.decode("latin-1") if auth else None,
                    _cookie(headers.get(b"cookie", b""), SESSION_COOKIE))):
                await send({"type": "websocket.close", "code": 1008})
                return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if not self.host_allowed(headers):
            await self._answer(send, 400, "HostError", "the Host header does not name this station")
            return
        options = self._options(scope)
        state = scope["app"].state
        if not options.get(PUBLIC):
            auth = headers.get(b"authorization")
            sid = _cookie(headers.get(b"cookie", b""), SESSION_COOKIE)
            if not credentials_ok(state.token, state.sessions, auth.decode("latin-1") if auth else None, sid):
                reason = ("wrong token" if auth is not None else
                          "the sign-in session has expired or ended" if sid is not None else "missing token")
                await self._answer(send, 401, "AuthError", reason, [(b"www-authenticate", b"Bearer")])
                return
        limit = int(options.get(MAX_BODY, self.settings.max_body_bytes))
        length = headers.get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await self._answer(send, 400, "BadRequest", "Content-Length is not a number")
                return
            if declared > limit:
                await self._answer(send, 413, "PayloadTooLarge",
                                   f"a body of {declared} bytes; this route takes at most {limit}")
                return
        await _Exchange(self, scope, receive, send, limit).run()

    @staticmethod
    async def _answer(send: Send, status: int, error: str, reason: str,
                      extra: list[tuple[bytes, bytes]] | None = None) -> None:
        start, body = _json_response(status, error, reason, extra)
        start["headers"] = _with_security_headers(start["headers"])
        await send(start)
        await send(body)


class RouteTable:
    """Each route's :func:`route_options`, by method and path, read once from the app's OpenAPI
    (where ``openapi_extra`` lands) plus ``app.state.hidden_routes`` for the routes kept out of
    the schema (pages): ``{(method, path template): options}``. A request that matches no route
    gets the defaults (credentials needed, ``Settings.max_body_bytes``)."""

    def __init__(self, app: Any):
        self._routes: list[tuple[str, re.Pattern[str], dict[str, Any]]] = []
        for (method, path), options in getattr(app.state, "hidden_routes", {}).items():
            self._add(method, path, options)
        for path, item in app.openapi().get("paths", {}).items():
            for method, op in item.items():
                if isinstance(op, dict):
                    self._add(method, path, {k: v for k, v in op.items() if k in (PUBLIC, MAX_BODY)})

    def _add(self, method: str, template: str, options: dict[str, Any]) -> None:
        parts = re.split(r"(\{[^}]+\})", template)
        pattern = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
        self._routes.append((method.upper(), re.compile(pattern + r"\Z"), options))

    def lookup(self, method: str, path: str) -> dict[str, Any]:
        fallback: dict[str, Any] = {}
        for m, pattern, options in self._routes:
            if pattern.match(path):
                if m == method.upper() or (m == "GET" and method.upper() == "HEAD"):
                    return options
                fallback = fallback or options  # the path exists with another method: 405 follows
        return {MAX_BODY: fallback[MAX_BODY]} if MAX_BODY in fallback else {}


def _cookie(raw: bytes, name: str) -> str | None:
    for part in raw.decode("latin-1").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def _with_security_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    present = {k.lower() for k, _ in headers}
    out = list(headers)
    for key, value in ((b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
                       (b"content-security-policy", DEFAULT_CSP.encode()), (b"cache-control", b"no-store"),
                       (b"x-frame-options", b"DENY")):
        if key not in present:
            out.append((key, value))
    return out


class _Exchange:
    """One request through the guard: counts and times the body, stamps the response headers, and
    replaces the app's answer with 413/408 when the body broke a limit."""

    def __init__(self, guard: Guard, scope: Scope, receive: Receive, send: Send, limit: int):
        self.guard, self.scope, self._receive, self._send, self.limit = guard, scope, receive, send, limit
        self.received = 0
        self.body_done = False
        self.verdict: tuple[int, str, str] | None = None  # our answer, replacing the app's
        self.started = False

    async def receive(self) -> Message:
        if self.body_done:
            return await self._receive()
        if self.verdict is not None:
            return {"type": "http.disconnect"}
        try:
            msg = await asyncio.wait_for(self._receive(), self.guard.settings.body_timeout_s)
        except TimeoutError:
            self.verdict = (408, "RequestTimeout",
                            f"the request body stalled for {self.guard.settings.body_timeout_s:g} s")
            return {"type": "http.disconnect"}
        if msg["type"] == "http.request":
            self.received += len(msg.get("body", b""))
            if self.received > self.limit:
                reason = f"the body passed {self.limit} bytes, the most this route takes"
                self.verdict = (413, "PayloadTooLarge", reason)
                return {"type": "http.disconnect"}
            if not msg.get("more_body", False):
                self.body_done = True
        else:
            self.body_done = True
        return msg

    async def send(self, msg: Message) -> None:
        if self.verdict is not None:
            return  # the app's answer to a body it never fully got is replaced by ours
        if msg["type"] == "http.response.start":
            self.started = True
            msg = dict(msg, headers=_with_security_headers(list(msg.get("headers", []))))
        await self._send(msg)

    async def run(self) -> None:
        try:
            await self.guard.app(self.scope, self.receive, self.send)
        except Exception:
            if self.verdict is None or self.started:
                raise
        if self.verdict is not None and not self.started:
            self.started = True
            await Guard._answer(self._send, *self.verdict)


# --- uvicorn: a deadline on request heads ---------------------------------------------------------

class _LingeringTransport:
    """The socket transport as uvicorn's protocol sees it, with a lingering ``close()``.

    Closing a TCP socket that still holds unread request bytes makes the kernel send a reset at
    once, and whatever of the answer it has not put on the wire yet is dropped: a client still
    uploading a body the station refused (401, 413) would get a reset instead of the reason. So a
    close first shuts the sending side (the FIN goes after every byte of the answer), then reads and
    drops the client's bytes until it closes its side, for at most ``linger_s`` seconds and
    ``linger_max_bytes`` bytes (the lingering close of RFC 9112, section 9.6)."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop,
                 linger_s: float, linger_max_bytes: int):
        self._transport, self._loop = transport, loop
        self.linger_s, self.max_bytes = linger_s, linger_max_bytes
        self.lingering = False
        self._dropped = 0
        self._timer: asyncio.TimerHandle | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def close(self) -> None:
        t = self._transport
        if self.lingering or t.is_closing():
            return
        if self.linger_s <= 0 or not t.can_write_eof():
            t.close()
            return
        self.lingering = True
        try:
            t.write_eof()
            t.resume_reading()
        except (OSError, RuntimeError):
            t.close()
            return
        self._timer = self._loop.call_later(self.linger_s, self.abort_linger)

    def is_closing(self) -> bool:
        return self.lingering or self._transport.is_closing()

    def drop(self, data: bytes) -> None:
        """Bytes the client sent after the station decided to close: counted, not kept."""
        self._dropped += len(data)
        if self._dropped > self.max_bytes:
            self.abort_linger()

    def abort_linger(self) -> None:
        self.cancel_timer()
        self._transport.close()

    def cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def guarded_h11_protocol(header_timeout_s: float, linger_s: float = 2.0,
                         linger_max_bytes: int = 16 * 1024 * 1024) -> type:
    """uvicorn's h11 protocol class, closing connections that do not send a complete request head
    within ``header_timeout_s`` of opening or of their previous response (idle and half-sent
    connections: uvicorn's own keep-alive timer stops at the first byte of the next request), and
    closing every connection with a lingering close (:class:`_LingeringTransport`)."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class GuardedH11Protocol(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None
        _linger: _LingeringTransport | None = None

        def _arm_head_timer(self) -> None:
            self._disarm_head_timer()
            self._head_timer = self.loop.call_later(header_timeout_s, self._head_timeout)

        def _disarm_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timeout(self) -> None:
            self._head_timer = None
            if not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            self._linger = _LingeringTransport(transport, self.loop, linger_s, linger_max_bytes)
            super().connection_made(self._linger)  # type: ignore[arg-type]
            self._arm_head_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm_head_timer()
            if self._linger is not None:
                self._linger.cancel_timer()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._linger is not None and self._linger.lingering:
                self._linger.drop(data)  # the answer is out; what still comes is not read
                return
            super().data_received(data)

        def eof_received(self) -> bool | None:
            if self._linger is not None and self._linger.lingering:
                self._linger.abort_linger()  # the client closed its side: a clean close now
            return super().eof_received()

        def handle_events(self) -> None:
            before = self.cycle
            super().handle_events()
            if self.cycle is not before:  # a request head arrived: the app's turn now
                self._disarm_head_timer()

        def on_response_complete(self) -> None:
            self._arm_head_timer()
            super().on_response_complete()

    return GuardedH11Protocol
