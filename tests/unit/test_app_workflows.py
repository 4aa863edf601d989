"""Desk workflows through the API: fingerprint quality on capture, portrait checks and capture, chip reads."""

from __future__ import annotations

import base64
import shutil

import pytest
from fastapi.testclient import TestClient

from biostation.hal import DriverRegistry
from biostation.station import create_app
from biostation_drivers.simulated.camera import SimulatedCamera
from biostation_drivers.simulated.card_reader import SimulatedCardReader
from biostation_drivers.simulated.scanner import SimulatedScanner


@pytest.fixture
def desk(settings, shared, tmp_path):
    portraits = tmp_path / "portraits"
    portraits.mkdir()
    shutil.copy(shared / "data" / "faces" / "LONDON_FRL" / "001" / "1_neutral.jpg", portraits / "a.jpg")
    reg = DriverRegistry(settings, drivers=[])
    reg.add(SimulatedScanner.create(settings=settings.model_copy(
        update={"sim_scanner_dir": shared / "data" / "fvc2002" / "DB1_B"}), key="sim:s1"))
    reg.devices()[0]._source = None  # serve the FVC folder
    reg.add(SimulatedCamera.create(portraits, settings, key="sim:c1"))
    reg.add(SimulatedCardReader(SimulatedCardReader.probe(settings)[0], settings))  # the virtual CCCD card
    app = create_app(settings, reg)
    with TestClient(app) as c:
        c.headers["Authorization"] = f"Bearer {app.state.token}"
        yield c, shared


def test_capture_reports_nfiq2(desk):
    c, _ = desk
    body = c.post("/v1/devices/simulated-scanner:s1/capture", json={}).json()
    assert 0 < body["nfiq2"] <= 100 and body["quality_note"] == ""
    assert c.post("/v1/devices/simulated-scanner:s1/capture", json={"assess": False}).json()["nfiq2"] is None


def test_face_check_of_an_uploaded_photo(desk):
    c, shared = desk
    good = (shared / "data" / "faces" / "LONDON_FRL" / "002" / "1_neutral.jpg").read_bytes()
    r = c.post("/v1/face/check", content=good, headers={"Content-Type": "image/jpeg"})
    assert r.status_code == 200 and r.json()["passed"] and r.json()["failed"] == []
    assert base64.b64decode(r.json()["token_jpeg"])[:2] == b"\xff\xd8"
    group = sorted((shared / "data" / "faces" / "NONCOMPLIANT" / "multiple_faces").iterdir())[0].read_bytes()
    r = c.post("/v1/face/check", content=group)
    assert r.status_code == 200 and not r.json()["passed"] and "one_face" in r.json()["failed"]
    r = c.post("/v1/face/check", content=b"\xff\xd8 not really a jpeg")
    assert r.status_code == 422 and r.json()["error"] == "ImageError"


def test_portrait_capture_from_the_camera(desk):
    c, _ = desk
    r = c.post("/v1/devices/simulated-camera:c1/portrait", json={"timeout_s": 20})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "captured" and body["passed"] and body["frames"] >= 2
    assert base64.b64decode(body["token_jpeg"])[:2] == b"\xff\xd8"
    assert c.post("/v1/devices/simulated-scanner:s1/portrait", json={}).status_code == 409


def test_chip_read_with_pace_and_passive_authentication(desk):
    c, _ = desk
    info = c.get("/v1/devices/simulated-card-reader:reader0").json()["details"]
    assert info["card"] == "virtual cccd" and len(info["can"]) == 6
    r = c.post("/v1/devices/simulated-card-reader:reader0/card/read", json={"can": info["can"]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["checks"]["access_control"].startswith("PACE")
    assert body["checks"]["passive_authentication"]["status"] == "verified"
    assert body["checks"]["vn_id"]["ok"] and body["holder"]["dg13"]["id_number"].endswith(info["can"])
    assert base64.b64decode(body["faces"][0]["image_base64"])[:2] == b"\xff\xd8"
    assert body["trust_store"] == ["simulated card's test CSCA"]


def test_chip_read_errors(desk):
    c, _ = desk
    url = "/v1/devices/simulated-card-reader:reader0/card/read"
    r = c.post(url, json={"can": "999999"})
    assert r.status_code == 403 and r.json()["error"] == "AccessDeniedError"
    assert c.post(url, json={"can": "12"}).status_code == 422
    assert c.post(url, json={}).status_code == 422
    assert c.post("/v1/devices/simulated-scanner:s1/card/read", json={"can": "012345"}).status_code == 409
    # the card is still readable after a refused CAN (no blocking retry storm)
    can = c.get("/v1/devices/simulated-card-reader:reader0").json()["details"]["can"]
    assert c.post(url, json={"can": can}).status_code == 200


def test_chip_read_with_no_card_is_a_conflict(desk):
    c, _ = desk
    reg = c.app.state.registry
    reg.get("simulated-card-reader:reader0").remove()
    r = c.post("/v1/devices/simulated-card-reader:reader0/card/read", json={"can": "012345"})
    assert r.status_code == 409 and r.json()["error"] == "CardRemovedError"
