"""The daemon under careless and hostile clients, in process: credentials before bodies, body caps,
error shapes, Host checks, sign-in sessions, security headers, bounded heavy work, card input checks."""

from __future__ import annotations

import asyncio
import io
import json
import struct
import threading
import zlib

import numpy as np
import pytest
from fastapi import WebSocket
from fastapi.testclient import TestClient
from PIL import Image

from biostation.errors import StationBusyError
from biostation.hal import DriverRegistry
from biostation.station import create_app
from biostation.station.security import HeavyPool, Sessions
from biostation_drivers.simulated.camera import SimulatedCamera, generated_clip
from biostation_drivers.simulated.card_reader import SimulatedCardReader
from biostation_drivers.simulated.scanner import SimulatedScanner

IMG = (np.arange(200 * 180) % 251).astype(np.uint8).reshape(200, 180)


@pytest.fixture
def app(settings):
    reg = DriverRegistry(settings, drivers=[])
    reg.add(SimulatedScanner.create(images=[IMG], dpi=500, key="sim:s1"))
    reg.add(SimulatedCamera.create(generated_clip(settings.data_dir / "clip.avi", frames=3), settings, key="sim:c1"))
    reg.add(SimulatedCardReader.create(key="sim:r1"))
    return create_app(settings, reg)


@pytest.fixture
def client(app):
    with TestClient(app) as c:
        c.headers["Authorization"] = f"Bearer {app.state.token}"
        yield c


def _asgi(app, method, path, headers, receive):
    """One request straight through the ASGI app; returns (status, headers, body)."""
    sent: list[dict] = []

    async def send(msg):
        sent.append(msg)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
             "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8470)}
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, body


async def _never_read():
    raise AssertionError("the body was read")


# --- credentials and body size, before the body -------------------------------------------------------------

@pytest.mark.parametrize("path", ["/v1/devices/simulated-card-reader:r1/card/read", "/v1/face/check", "/signin",
                                  "/v1/nowhere"])
def test_a_huge_body_without_token_is_refused_unread(app, path):
    headers = {"host": "127.0.0.1:8470", "content-length": str(200 * 1024 * 1024), "content-type": "image/png"}
    status, hdrs, body = _asgi(app, "POST", path, headers, _never_read)
    if path == "/signin":  # public, but it takes 4 KiB at most
        assert status == 413 and "4096" in json.loads(body)["reason"]
    else:
        assert status == 401 and json.loads(body) == {"error": "AuthError", "reason": "missing token"}
    assert hdrs["connection"] == "close"


def test_a_declared_oversize_body_is_413_with_the_limit_unread(app):
    headers = {"host": "localhost", "authorization": f"Bearer {app.state.token}",
               "content-length": str(2 * 1024 * 1024), "content-type": "application/json"}
    status, _, body = _asgi(app, "POST", "/v1/devices/simulated-scanner:s1/capture", headers, _never_read)
    assert status == 413
    assert json.loads(body) == {"error": "PayloadTooLarge",
                                "reason": f"a body of {2 * 1024 * 1024} bytes; this route takes at most 1048576"}


def test_routes_with_their_own_limit_take_more_and_no_more(app, client):
    headers = {"host": "localhost", "authorization": f"Bearer {app.state.token}",
               "content-length": str(30 * 1024 * 1024), "content-type": "image/jpeg"}
    status, _, body = _asgi(app, "POST", "/v1/face/check", headers, _never_read)
    assert status == 413 and json.loads(body)["reason"].endswith(f"at most {25 * 1024 * 1024 + 64 * 1024}")
    r = client.post("/v1/face/check", content=b"\xff\xd8" + b"\0" * (2 * 1024 * 1024))  # over the default cap
    assert r.status_code == 422 and r.json()["error"] == "ImageError"


def test_a_streamed_body_is_cut_off_at_the_limit(client):
    chunks_sent = []

    def chunks():
        for _ in range(40):  # 40 x 64 KiB = 2.5 MiB against a 1 MiB limit, sent chunked
            chunks_sent.append(1)
            yield b"x" * 65536

    r = client.post("/v1/devices/simulated-scanner:s1/capture", content=chunks(),
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"] == "PayloadTooLarge" and "1048576" in r.json()["reason"]


def test_each_route_declares_its_limit_in_the_openapi(client):
    spec = client.get("/openapi.json").json()
    assert spec["paths"]["/v1/face/check"]["post"]["x-max-body-bytes"] > 25 * 1024 * 1024


# --- error shape ----------------------------------------------------------------------------------------------

def test_every_error_has_the_error_reason_shape(client, app):
    cases = [
        client.get("/v1/nowhere"),  # unknown route
        client.delete("/v1/devices"),  # wrong method
        client.post("/v1/devices/simulated-scanner:s1/capture", content=b"{not json",
                    headers={"Content-Type": "application/json"}),
        client.post("/signin", content=b"--x\r\nbroken", headers={"Content-Type": "multipart/form-data; boundary=x"}),
        client.post("/signin", data={"token": "t" * 2000}),
        client.request("MOSIPDISC", "/device"),
    ]
    for r in cases:
        assert 400 <= r.status_code < 500, (r.status_code, r.text)
        body = r.json()
        assert set(body) == {"error", "reason"} and body["reason"], body
    assert cases[0].status_code == 404 and cases[0].json()["error"] == "NotFound"
    assert cases[1].status_code == 405 and cases[1].json()["error"] == "MethodNotAllowed"
    assert "GET" in cases[1].headers["allow"]


# --- Host header (DNS rebinding) ------------------------------------------------------------------------------

@pytest.mark.parametrize("host,ok", [("127.0.0.1:8470", True), ("localhost:8470", True), ("[::1]:8470", True),
                                     ("LOCALHOST", True), ("evil.example:8470", False),
                                     ("127.0.0.1.evil.example", False), ("10.0.0.5:8470", False)])
def test_only_hosts_that_name_the_station_are_served(app, host, ok):
    status, _, body = _asgi(app, "GET", "/health", {"host": host}, _never_read)
    assert (status == 200) == ok
    if not ok:
        assert status == 400 and json.loads(body)["error"] == "HostError"


def test_a_wildcard_bind_accepts_addresses_but_not_names(settings):
    app = create_app(settings.model_copy(update={"host": "0.0.0.0", "allowed_hosts": ["desk-7.example"]}),
                     DriverRegistry(settings, drivers=[]))
    for host, ok in [("10.0.0.5:8470", True), ("desk-7.example", True), ("evil.example", False)]:
        assert (_asgi(app, "GET", "/health", {"host": host}, _never_read)[0] == 200) == ok


def test_a_request_without_host_is_refused(app):
    assert _asgi(app, "GET", "/health", {}, _never_read)[0] == 400


# --- sign-in sessions --------------------------------------------------------------------------------------

def test_sign_in_issues_a_session_not_the_token_and_sign_out_revokes_it(app):
    token = app.state.token
    with TestClient(app) as c:
        r = c.post("/signin", data={"token": token, "next": "/"}, follow_redirects=False)
        assert r.status_code == 303
        cookie = r.headers["set-cookie"]
        assert cookie.startswith("biostation_session=") and token not in cookie
        assert "max-age=28800" in cookie.lower() and "httponly" in cookie.lower()
        assert c.get("/v1/devices").status_code == 200  # the session works for the page's API calls
        sid = c.cookies["biostation_session"]
        assert c.post("/signout", follow_redirects=False).status_code == 303
        c.cookies.set("biostation_session", sid)
        assert c.get("/v1/devices").status_code == 401
        assert c.get("/").status_code == 401  # the sign-in form again
    with TestClient(app) as c:  # the API token is for machines: as a cookie it opens nothing
        c.cookies.set("biostation_session", token)
        c.cookies.set("biostation_token", token)
        assert c.get("/v1/devices").status_code == 401 and c.get("/").status_code == 401


def test_sessions_expire_and_are_bounded(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr("biostation.station.security.time.monotonic", lambda: now[0])
    s = Sessions(ttl_s=60, max_sessions=3)
    a = s.new()
    assert s.valid(a)
    now[0] += 61
    assert not s.valid(a)
    ids = [s.new() for _ in range(4)]
    assert [s.valid(i) for i in ids] == [False, True, True, True]
    assert not s.valid(None) and not s.valid("")


# --- headers --------------------------------------------------------------------------------------------------

def test_personal_data_is_not_cached_or_sniffed_and_every_response_has_a_csp(client):
    for r in (client.get("/v1/devices/simulated-camera:c1/frame"),
              client.post("/v1/devices/simulated-scanner:s1/capture", json={"assess": False}),
              client.get("/v1/devices"), client.get("/v1/nowhere"), client.get("/health")):
        assert r.headers["cache-control"] == "no-store", r.url
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]


def test_docs_load_swagger_from_the_station_under_a_strict_csp(app):
    with TestClient(app) as c:
        c.post("/signin", data={"token": app.state.token})
        page = c.get("/docs")
        assert page.status_code == 200
        assert "http" not in page.text.replace("http-equiv", "")  # nothing from elsewhere
        csp = page.headers["content-security-policy"]
        assert "script-src 'self';" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
        for src in ("/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css", "/docs/assets/init.js"):
            assert src in page.text
            r = c.get(src)
            assert r.status_code == 200 and len(r.content) > 50, src
        assert "SwaggerUIBundle" in c.get("/docs/assets/swagger-ui-bundle.js").text
        assert c.get("/docs/assets/../../token").status_code == 404
        assert c.get("/docs/assets/core.py").status_code == 404


# --- portraits: formats, sizes, multipart, off-loop --------------------------------------------------------

def _png_header_only(w: int, h: int, bit_depth: int = 16) -> bytes:
    """A PNG whose header claims ``w`` x ``h`` pixels, with one row of data: cheap to make, and
    what a decompression bomb looks like before it is decoded."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, 2, 0, 0, 0)
    row = b"\x00" + b"\x00" * (w * 3 * bit_depth // 8)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(row)) + chunk(b"IEND", b"")


def _encoded(fmt: str, size=(64, 64)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (120, 80, 60)).save(buf, fmt)
    return buf.getvalue()


def test_a_16_bit_7070_square_png_is_refused_from_its_header(client):
    r = client.post("/v1/face/check", content=_png_header_only(7070, 7070), headers={"Content-Type": "image/png"})
    assert r.status_code == 422 and r.json()["error"] == "ImageError"
    assert "7070x7070" in r.json()["reason"] and "16 MP" in r.json()["reason"]


@pytest.mark.parametrize("fmt", ["EPS", "TIFF", "BMP", "GIF", "PPM"])
def test_only_jpeg_png_and_jpeg2000_are_decoded(client, fmt):
    r = client.post("/v1/face/check", content=_encoded(fmt), headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 422 and r.json()["error"] == "ImageError"
    assert r.json()["reason"] == "image is not one of JPEG, PNG, JPEG2000"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "JPEG2000"])
def test_accepted_formats_reach_the_checks(client, fmt):
    r = client.post("/v1/face/check", content=_encoded(fmt, (320, 400)))
    assert r.status_code == 200 and not r.json()["passed"] and "one_face" in r.json()["failed"]


def test_a_multipart_upload_is_checked_like_a_raw_body(client):
    photo = _encoded("JPEG", (320, 400))
    raw = client.post("/v1/face/check", content=photo, headers={"Content-Type": "image/jpeg"}).json()
    multi = client.post("/v1/face/check", files={"photo": ("me.jpg", photo, "image/jpeg")}).json()
    assert multi == raw
    r = client.post("/v1/face/check", files={"photo": ("x.bin", b"not an image at all", "image/jpeg")})
    assert r.status_code == 422 and "object at 0x" not in r.text and "BytesIO" not in r.text
    r = client.post("/v1/face/check", data={"note": "no file"}, files={"empty": ("", b"", "text/plain")})
    assert r.status_code in (400, 422) and set(r.json()) == {"error", "reason"}


def test_garbage_never_shows_a_python_repr(client):
    for body in (b"", b"\x00" * 10, b"GIF89a" + b"\x00" * 20, b"\xff\xd8\xff" + b"\x00" * 50):
        r = client.post("/v1/face/check", content=body)
        assert r.status_code == 422 and " at 0x" not in r.json()["reason"], r.text


def _occupy(pool: HeavyPool, entered: threading.Event, release: threading.Event, results: list) -> threading.Thread:
    def job() -> bool:
        entered.set()
        return release.wait(30)

    t = threading.Thread(target=lambda: results.append(asyncio.run(pool.run(job))))
    t.start()
    assert entered.wait(30)
    return t


def test_heavy_pool_refuses_past_its_capacity_and_frees_slots_when_jobs_end():
    pool = HeavyPool(workers=2, queue=0, retry_after_s=3)
    release = threading.Event()
    results: list[object] = []
    threads = [_occupy(pool, threading.Event(), release, results) for _ in range(2)]
    with pytest.raises(StationBusyError) as err:
        asyncio.run(pool.run(lambda: None))
    assert err.value.retry_after_s == 3
    release.set()
    for t in threads:
        t.join(10)
    assert results == [True, True]
    assert asyncio.run(pool.run(lambda: 42)) == 42
    pool.close()


def test_a_full_pool_answers_503_with_retry_after(app, client):
    release = threading.Event()
    app.state.heavy = HeavyPool(workers=1, queue=0, retry_after_s=2)
    t = _occupy(app.state.heavy, threading.Event(), release, [])
    try:
        r = client.post("/v1/face/check", content=_encoded("PNG", (320, 400)))
        assert r.status_code == 503 and r.headers["retry-after"] == "2"
        assert r.json()["error"] == "StationBusyError"
        assert client.get("/health").status_code == 200
    finally:
        release.set()
        t.join(10)
    assert client.post("/v1/face/check", content=_encoded("PNG", (320, 400))).status_code == 200


# --- chip reads: input checked before the card is touched ---------------------------------------------------

@pytest.mark.parametrize("body,field", [
    ({"mrz": "A" * 200}, "mrz"), ({"mrz": "Nguyễn/900101/300101"}, "mrz"), ({"mrz": "../../etc/passwd"}, "mrz"),
    ({"mrz": "P<VNM"}, "mrz"), ({"can": "012345", "data_groups": [-1]}, "data_groups"),
    ({"can": "012345", "data_groups": [0]}, "data_groups"), ({"can": "012345", "data_groups": [99]}, "data_groups"),
    ({"can": "012345", "data_groups": [2 ** 70]}, "data_groups"), ({"can": "012345", "data_groups": [1, 1]}, "twice"),
    ({"can": "012345", "data_groups": list(range(1, 18))}, "data_groups"), ({"can": "12"}, "can"), ({}, "exactly one"),
])
def test_malformed_card_read_requests_are_422_with_the_reason(client, body, field):
    r = client.post("/v1/devices/simulated-card-reader:r1/card/read", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "ValidationError" and field in r.json()["reason"]


# --- simulated devices ----------------------------------------------------------------------------------------

def test_an_unplugged_simulated_scanner_can_be_plugged_back(settings):
    reg = DriverRegistry(settings, drivers=[SimulatedScanner])
    app = create_app(settings, reg)
    with TestClient(app) as c:
        c.headers["Authorization"] = f"Bearer {app.state.token}"
        reg.scan()
        scanner = next(d["device_id"] for d in c.get("/v1/devices").json() if d["device_class"] == "scanner")
        assert c.post(f"/v1/devices/{scanner}/simulate", json={"fault": "unplug"}).status_code == 204
        reg.scan()
        assert c.get(f"/v1/devices/{scanner}").status_code == 404
        r = c.post("/v1/simulated/replug")
        assert r.status_code == 200 and scanner in r.json()["plugged"]
        assert c.get(f"/v1/devices/{scanner}").json()["state"] in ("closed", "idle")
        assert c.post(f"/v1/devices/{scanner}/capture", json={"assess": False}).status_code == 200


def test_a_websocket_route_added_later_is_guarded_too(app):
    from starlette.testclient import WebSocketDisconnect

    @app.websocket("/v1/ws-probe")
    async def probe(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text("in")
        await ws.close()

    with TestClient(app) as c:
        with pytest.raises(WebSocketDisconnect), c.websocket_connect("/v1/ws-probe") as ws:
            ws.receive_text()
        with c.websocket_connect("/v1/ws-probe", headers={"Authorization": f"Bearer {app.state.token}"}) as ws:
            assert ws.receive_text() == "in"


def test_the_operator_page_runs_no_inline_script(app):
    import re

    with TestClient(app) as c:
        c.post("/signin", data={"token": app.state.token})
        page = c.get("/")
        assert page.status_code == 200
        script_src = page.headers["content-security-policy"].split("script-src")[1].split(";")[0]
        assert script_src.strip() == "'self'"
        assert re.findall(r"<script(?![^>]*\bsrc=)", page.text) == []
        assert re.search(r"<[^>]+\son[a-z]+\s*=", page.text) is None  # no inline event handlers
        assert "applyLang" in c.get("/assets/operator.js").text


def test_photo_checks_run_on_the_heavy_pool_not_the_event_loop(client, monkeypatch):
    from biostation.station import routes_face

    threads: list[str] = []
    real = routes_face._check_upload

    def spy(data: bytes, lang: str):
        threads.append(threading.current_thread().name)
        return real(data, lang)

    monkeypatch.setattr(routes_face, "_check_upload", spy)
    assert client.post("/v1/face/check", content=_encoded("PNG", (320, 400))).status_code == 200
    assert len(threads) == 1 and threads[0].startswith("biostation-heavy")
