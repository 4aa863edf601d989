"""The SBI HTTP service: one small ASGI app per device, each on its own loopback port.

:func:`create_sbi_app` answers MOSIP's verbs for one :class:`.device.SbiDevice`:

=============  ==========  ===================================================================
verb           path        answer
=============  ==========  ===================================================================
MOSIPDISC      /device     ``[discovery]`` when ``type`` matches (or is ``Biometric Device``), else ``[]``
MOSIPDINFO     /info       ``[{"deviceInfo": <JWS>, "error": ...}]`` (error 111 while Busy, 110 Not Ready)
RCAPTURE       /capture    ``{"biometrics": [{specVersion, data: <JWS>, hash, error}, ...]}``
CAPTURE        /capture    error 503: authentication capture needs an L1 device
STREAM         /stream     ``multipart/x-mixed-replace; boundary=--BoundaryString`` JPEG parts
                           (another ``deviceId``: 106, as RCAPTURE; no device: 202)
OPTIONS        any above   CORS preflight
=============  ==========  ===================================================================

Spec errors come back in the verb's own answer shape with HTTP 200 (as MOSIP clients read
them); a request that is not an SBI request (unknown path or verb, a body that is not JSON,
larger than :data:`MAX_BODY`, a Host other than the loopback) gets a 4xx with
``{"error": {"errorCode", "errorInfo"}}``. Each device's app runs its blocking work on a small
pool of its own (:data:`WORKERS` threads, at most :data:`MAX_STREAMS` open streams), so SBI
clients cannot take the worker threads of the daemon's API, which shares the event loop.

Browsers: every answer carries ``Access-Control-Allow-Origin: *`` and no credentials are ever
allowed (the spec's trust model is the loopback plus signed answers, not the caller's origin);
a preflight is answered for the SBI verbs and the ``Content-Type`` header only. The daemon's
own API token, session cookie and guard play no part here: these apps are separate ASGI apps on
separate sockets and never see nor send them.

:class:`SbiService` runs one uvicorn server (h11 parser: httptools refuses custom verbs) per
scanner and camera of the registry on the first free port of ``Settings.sbi_port_first`` ..
``sbi_port_last`` on 127.0.0.1 only, and adds servers for devices plugged in later (polling
the registry every ``device_poll_s``). A device that leaves keeps its port and shows as
``Not Ready``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import uvicorn

from ...config import Settings
from ...errors import ConfigError
from ...hal import DeviceClass
from ..security import guarded_h11_protocol
from .device import SbiDevice
from .keys import DeviceKeys, TokenConfig
from .protocol import DISCOVERY_TYPES, SPEC_VERSION, SbiError, parse_capture

log = logging.getLogger(__name__)

VERBS = ("MOSIPDISC", "MOSIPDINFO", "RCAPTURE", "CAPTURE", "STREAM")
ROUTES = {("MOSIPDISC", "/device"), ("MOSIPDINFO", "/info"), ("RCAPTURE", "/capture"), ("CAPTURE", "/capture"),
          ("STREAM", "/stream")}
#: largest request body (bytes); SBI requests are a few hundred bytes
MAX_BODY = 64 * 1024
#: STREAMs one device serves at once; more get error 506 (each holds a worker thread)
MAX_STREAMS = 3
#: worker threads of one device's app (its own pool: SBI clients never take the API's threads)
WORKERS = MAX_STREAMS + 3
#: STREAM without a timeout lasts this long (the spec's default: 5 minutes)
STREAM_DEFAULT_MS = 5 * 60 * 1000

_CORS = [(b"access-control-allow-origin", b"*")]
_PREFLIGHT = _CORS + [(b"access-control-allow-methods", ", ".join(("OPTIONS",) + VERBS).encode()),
                      (b"access-control-allow-headers", b"Content-Type"),
                      (b"access-control-max-age", b"600"),
                      # Chrome's Private Network Access: pages of public sites ask before reaching 127.0.0.1
                      (b"access-control-allow-private-network", b"true")]


class _Reject(Exception):
    def __init__(self, status: int, err: SbiError):
        self.status, self.err = status, err


def create_sbi_app(device: SbiDevice) -> Any:
    """The ASGI app of one SBI device (see the module doc)."""
    port = device.port
    pool: list[anyio.CapacityLimiter] = []  # made on the server's event loop, at the first request
    streams = [0]

    async def in_thread(fn: Any, *args: Any) -> Any:
        if not pool:
            pool.append(anyio.CapacityLimiter(WORKERS))
        return await anyio.to_thread.run_sync(fn, *args, limiter=pool[0])

    hosts = {f"127.0.0.1:{port}", f"localhost:{port}", "127.0.0.1", "localhost"}

    def headers(content_type: bytes, length: int | None = None) -> list[tuple[bytes, bytes]]:
        h = [(b"content-type", content_type), (b"cache-control", b"no-store"),
             (b"location", f"http://127.0.0.1:{port}".encode())] + _CORS
        if length is not None:
            h += [(b"content-length", str(length).encode()), (b"connection", b"close")]
        return h

    async def send_json(send: Any, obj: Any, status: int = 200) -> None:
        body = json.dumps(obj, separators=(",", ":")).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": headers(b"application/json", len(body))})
        await send({"type": "http.response.body", "body": body})

    async def read_json(receive: Any) -> Any:
        chunks, size = [], 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                raise _Reject(400, SbiError(500, "the client went away"))
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY:
                raise _Reject(413, SbiError(505))
            chunks.append(chunk)
            if not msg.get("more_body"):
                break
        raw = b"".join(chunks)
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise _Reject(400, SbiError(500)) from None

    async def app(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                pass
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        method, path = scope["method"].upper(), scope["path"]
        host = dict(scope["headers"]).get(b"host", b"").decode("latin-1").lower()
        try:
            if host not in hosts:
                raise _Reject(400, SbiError(501, "the Host must be 127.0.0.1"))
            if method == "OPTIONS":
                if path not in {p for _, p in ROUTES}:
                    raise _Reject(404, SbiError(501, "no such path"))
                await send({"type": "http.response.start", "status": 204,
                            "headers": _PREFLIGHT + [(b"content-length", b"0")]})
                await send({"type": "http.response.body", "body": b""})
                return
            if (method, path) not in ROUTES:
                known = any(p == path for _, p in ROUTES)
                raise _Reject(405 if known else 404, SbiError(502 if known else 501,
                                                              f"{method[:20]} {path[:100]}"))
            body = await read_json(receive)
            if method == "MOSIPDISC":
                await send_json(send, discover(device, body))
            elif method == "MOSIPDINFO":
                await send_json(send, [await in_thread(device.device_info)])
            elif method in ("RCAPTURE", "CAPTURE"):
                await send_json(send, await in_thread(capture, device, body, method == "CAPTURE"))
            else:
                sub_id, timeout_ms = stream_request(device, body)
                if streams[0] >= MAX_STREAMS:
                    raise _Reject(503, SbiError(506))
                streams[0] += 1
                try:
                    await stream(device, sub_id, timeout_ms, receive, send, headers, in_thread)
                finally:
                    streams[0] -= 1
        except _Reject as rej:
            await send_json(send, {"error": rej.err.as_error()}, rej.status)

    return app


def discover(device: SbiDevice, body: Any) -> list[dict]:
    if not isinstance(body, dict) or not isinstance(body.get("type"), str):
        raise _Reject(400, SbiError(501, "the body must be {\"type\": ...}"))
    kind = body["type"]
    if kind not in DISCOVERY_TYPES:
        raise _Reject(400, SbiError(501, f"type must be one of {', '.join(DISCOVERY_TYPES)}"))
    return [device.discovery()] if kind in ("Biometric Device", device.type) else []


def capture(device: SbiDevice, body: Any, auth: bool) -> dict:
    spec = body.get("specVersion") if isinstance(body, dict) and isinstance(body.get("specVersion"), str) \
        else SPEC_VERSION
    try:
        if auth:
            raise SbiError(503)
        req = parse_capture(body)
        if req.spec_version != SPEC_VERSION:
            raise SbiError(501, f"specVersion {req.spec_version[:20]!r} is not supported (only {SPEC_VERSION})")
        return device.rcapture(req)
    except SbiError as err:
        return {"biometrics": [{"specVersion": spec, "data": "", "hash": "", "error": err.as_error()}]}
    except Exception:  # a fault of this service: the spec's 102, in the verb's shape, never an HTTP 500
        log.exception("SBI %s: capture request failed", device.device_id)
        return {"biometrics": [{"specVersion": spec, "data": "", "hash": "", "error": SbiError(102).as_error()}]}


def stream_request(device: SbiDevice, body: Any) -> tuple[int, int]:
    """(deviceSubId, timeout ms) of a STREAM request; _Reject when it is not one this device serves."""
    if not isinstance(body, dict):
        raise _Reject(400, SbiError(501, "the body must be {\"deviceId\", \"deviceSubId\", \"timeout\"}"))
    try:
        sub_id = int(body.get("deviceSubId", device.sub_ids[0]))
        timeout_ms = int(body.get("timeout") or STREAM_DEFAULT_MS)
    except (TypeError, ValueError):
        raise _Reject(400, SbiError(501, "deviceSubId and timeout must be numbers")) from None
    if sub_id not in device.sub_ids or timeout_ms <= 0:
        raise _Reject(400, SbiError(501, f"deviceSubId must be one of {device.sub_ids}"))
    device_id = body.get("deviceId")
    if device_id not in (None, "") and str(device_id) != device.device_id:  # as RCAPTURE checks it
        raise _Reject(404, SbiError(106, f"this port serves {device.device_id}"))
    if device.hal() is None:
        raise _Reject(404, SbiError(202))
    return sub_id, timeout_ms


async def stream(device: SbiDevice, sub_id: int, timeout_ms: int, receive: Any, send: Any, headers: Any,
                 in_thread: Any) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": headers(b"multipart/x-mixed-replace; boundary=--BoundaryString")})
    stop = threading.Event()

    async def watch_disconnect() -> None:  # a client that goes away ends its stream
        while (await receive())["type"] != "http.disconnect":
            pass
        stop.set()

    watcher = asyncio.create_task(watch_disconnect())
    try:
        parts: Iterator[bytes] = device.stream(sub_id, min(timeout_ms, STREAM_DEFAULT_MS) / 1000, stop)
        while not stop.is_set():
            part = await in_thread(next, parts, None)
            if part is None:
                break
            await send({"type": "http.response.body", "body": part, "more_body": True})
        if not stop.is_set():
            await send({"type": "http.response.body", "body": b""})
    finally:
        stop.set()
        watcher.cancel()


def bind_first_free(first: int, last: int) -> socket.socket:
    """A listening socket on 127.0.0.1, on the first free port of ``first``..``last``
    (``first`` 0: any free port). OSError when all are taken."""
    ports = [0] if first == 0 else range(first, last + 1)
    for port in ports:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            sock.close()
            continue
        sock.listen(64)
        return sock
    raise OSError(f"no free port in 127.0.0.1:{first}-{last}")


class SbiService:
    """The SBI servers of every scanner and camera in ``registry`` (see the module doc)."""

    def __init__(self, settings: Settings, registry: Any, announce: Callable[[str], None] | None = None):
        """``announce(line)`` is told of each server started (the CLI prints it)."""
        self.settings = settings
        self.announce = announce
        self.registry = registry
        token = None
        if settings.sbi_key_source == "pkcs11":
            if settings.sbi_pkcs11_pin is None:
                raise ConfigError("sbi_key_source=pkcs11 needs BIOSTATION_SBI_PKCS11_PIN")
            token = TokenConfig(str(settings.sbi_pkcs11_module), settings.sbi_pkcs11_token,
                                settings.sbi_pkcs11_pin.get_secret_value())
        self.keys = DeviceKeys(settings.data_dir / "sbi" / "keys", token=token)
        self.devices: dict[str, SbiDevice] = {}
        self._servers: list[Any] = []
        self._tasks: list[asyncio.Task] = []
        self._poller: asyncio.Task | None = None
        self._thread: threading.Thread | None = None

    @property
    def ports(self) -> dict[str, int]:
        """device id -> its SBI port."""
        return {d: s.port for d, s in self.devices.items()}

    async def refresh(self) -> None:
        """Start a server for every scanner and camera that has none yet."""
        for dev in self.registry.devices():
            if dev.device_class not in (DeviceClass.SCANNER, DeviceClass.CAMERA) or dev.device_id in self.devices:
                continue
            try:
                sock = bind_first_free(self.settings.sbi_port_first, self.settings.sbi_port_last)
            except OSError as exc:
                log.warning("SBI: %s has no port: %s", dev.device_id, exc)
                continue
            try:
                sbi = await asyncio.to_thread(SbiDevice, self.registry, dev.device_id, sock.getsockname()[1],
                                              self.keys, env=self.settings.sbi_env)
            except Exception as exc:
                sock.close()
                log.warning("SBI: %s not served: %s", dev.device_id, exc)
                continue
            protocol = guarded_h11_protocol(self.settings.header_timeout_s, self.settings.linger_s,
                                            self.settings.linger_max_bytes)
            config = uvicorn.Config(create_sbi_app(sbi), http=protocol,
                                    lifespan="off", log_config=None, access_log=False, timeout_graceful_shutdown=2)
            server = _QuietServer(config)
            self.devices[dev.device_id] = sbi
            self._servers.append(server)
            self._tasks.append(asyncio.create_task(server.serve(sockets=[sock])))
            line = f"SBI: {dev.device_id} ({sbi.type} {sbi.sub_type}) on 127.0.0.1:{sbi.port}"
            if self.announce is not None:
                self.announce(line)
            else:
                log.info("%s", line)

    async def start(self) -> None:
        await self.refresh()

        async def poll() -> None:
            while True:
                await asyncio.sleep(self.settings.device_poll_s)
                try:
                    await self.refresh()
                except Exception:
                    log.exception("SBI refresh failed")

        self._poller = asyncio.create_task(poll())

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
        for server in self._servers:
            server.should_exit = True
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self.keys.close()

    @contextlib.contextmanager
    def running_in_thread(self) -> Iterator[SbiService]:
        """Run the service on an event loop of its own thread (tests, embedding)."""
        loop = asyncio.new_event_loop()
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self.start())
            started.set()
            loop.run_forever()

        self._thread = threading.Thread(target=run, name="biostation-sbi", daemon=True)
        self._thread.start()
        started.wait(60)
        try:
            yield self
        finally:
            asyncio.run_coroutine_threadsafe(self.stop(), loop).result(30)
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join(10)
            loop.close()



class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves the process's signal handlers to the main server."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
