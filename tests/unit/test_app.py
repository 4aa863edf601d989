"""The daemon app, in process: auth on every route but /health, errors with reasons, capture."""

from __future__ import annotations

import base64

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from biostation.hal import DriverRegistry
from biostation.station import create_app
from biostation_drivers.simulated.camera import SimulatedCamera, generated_clip
from biostation_drivers.simulated.card_reader import SimulatedCardReader
from biostation_drivers.simulated.scanner import SimulatedScanner

IMG = (np.arange(200 * 180) % 251).astype(np.uint8).reshape(200, 180)


@pytest.fixture
def app_and_devices(settings):
    reg = DriverRegistry(settings, drivers=[])
    scanner = reg.add(SimulatedScanner.create(images=[IMG], dpi=500, key="sim:s1"))
    camera = reg.add(SimulatedCamera.create(generated_clip(settings.data_dir / "clip.avi", frames=3), settings,
                                            key="sim:c1"))
    reader = reg.add(SimulatedCardReader.create(key="sim:r1"))
    app = create_app(settings, reg)
    return app, scanner, camera, reader


@pytest.fixture
def client(app_and_devices):
    app = app_and_devices[0]
    with TestClient(app) as c:
        c.headers["Authorization"] = f"Bearer {app.state.token}"
        yield c


def test_health_needs_no_token(app_and_devices):
    with TestClient(app_and_devices[0]) as c:
        assert c.get("/health").json()["status"] == "ok"


@pytest.mark.parametrize("path", ["/v1/devices", "/v1/devices/simulated-scanner:s1", "/openapi.json", "/v1/events"])
@pytest.mark.parametrize("auth", [None, "Bearer wrong-token-wrong-token", "Basic dXNlcjpwYXNz"])
def test_every_route_but_health_refuses_without_the_token(app_and_devices, path, auth):
    with TestClient(app_and_devices[0]) as c:
        r = c.get(path, headers={"Authorization": auth} if auth else {})
    assert r.status_code == 401
    assert r.json()["error"] == "AuthError" and r.json()["reason"] in ("missing token", "wrong token")
    assert r.headers["www-authenticate"] == "Bearer"


def test_capture_post_needs_the_token_too(app_and_devices):
    with TestClient(app_and_devices[0]) as c:
        assert c.post("/v1/devices/simulated-scanner:s1/capture", json={}).status_code == 401


def test_devices_with_status(client):
    devs = {d["device_id"]: d for d in client.get("/v1/devices").json()}
    assert set(devs) == {"simulated-scanner:s1", "simulated-camera:c1", "simulated-card-reader:r1"}
    assert devs["simulated-scanner:s1"]["state"] == "closed" and devs["simulated-scanner:s1"]["simulated"]
    assert "capture_flat" in devs["simulated-scanner:s1"]["features"]


def test_unknown_device_is_404_with_reason(client):
    r = client.get("/v1/devices/nope")
    assert r.status_code == 404
    assert r.json()["error"] == "DeviceNotFoundError" and "nope" in r.json()["reason"]
    assert client.post("/v1/devices/nope/capture", json={}).status_code == 404


def test_capture_returns_the_image_losslessly(client):
    r = client.post("/v1/devices/simulated-scanner:s1/capture", json={"kind": "flat", "position": 2})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["width"], body["height"], body["dpi"], body["position"]) == (180, 200, 500, 2)
    img = cv2.imdecode(np.frombuffer(base64.b64decode(body["image_png"]), np.uint8), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(img, IMG)
    assert client.get("/v1/devices/simulated-scanner:s1").json()["state"] == "idle"


def test_bad_requests_have_reasons(client):
    r = client.post("/v1/devices/simulated-scanner:s1/capture", json={"kind": "sideways", "timeout_s": -1})
    assert r.status_code == 422 and "kind" in r.json()["reason"] and "timeout_s" in r.json()["reason"]
    r = client.post("/v1/devices/simulated-camera:c1/capture", json={})
    assert r.status_code == 409 and "not a fingerprint scanner" in r.json()["reason"]
    r = client.get("/v1/devices/simulated-scanner:s1/frame")
    assert r.status_code == 409 and "not a camera" in r.json()["reason"]
    r = client.post("/v1/devices/simulated-scanner:s1/simulate", json={"fault": "meteor"})
    assert r.status_code == 400 and "unknown fault" in r.json()["reason"]


def test_stalled_capture_is_504_and_device_stays_usable(client):
    assert client.post("/v1/devices/simulated-scanner:s1/simulate", json={"fault": "stall"}).status_code == 204
    r = client.post("/v1/devices/simulated-scanner:s1/capture", json={"timeout_s": 0.2})
    assert r.status_code == 504 and r.json()["error"] == "DeviceTimeoutError"
    client.post("/v1/devices/simulated-scanner:s1/simulate", json={"fault": "clear"})
    assert client.post("/v1/devices/simulated-scanner:s1/capture", json={}).status_code == 200


def test_unplugged_scanner_is_410_gone(client):
    client.post("/v1/devices/simulated-scanner:s1/simulate", json={"fault": "unplug"})
    SimulatedScanner.replug("sim:s1")
    r = client.post("/v1/devices/simulated-scanner:s1/capture", json={})
    assert r.status_code == 410 and r.json()["error"] == "DeviceGoneError"
    assert client.get("/health").status_code == 200


def test_camera_frame_is_a_jpeg(client):
    r = client.get("/v1/devices/simulated-camera:c1/frame")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    img = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR)
    assert img.shape == (480, 640, 3)


def test_docs_sign_in_flow_sets_a_strict_httponly_cookie(app_and_devices):
    app = app_and_devices[0]
    with TestClient(app) as c:
        page = c.get("/docs")
        assert page.status_code == 401 and "biostation token" in page.text
        assert c.post("/signin", data={"token": "wrong"}).status_code == 401
        r = c.post("/signin", data={"token": app.state.token, "next": "//evil.example"}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/docs"
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert "swagger" in c.get("/docs").text.lower()
        spec = c.get("/openapi.json").json()
        assert "/v1/devices" in spec["paths"] and "HTTPBearer" in spec["components"]["securitySchemes"]
