"""The enrollment desk through the API: a whole applicant, step order, bad input, the outbox and the
audit trail, with the station's encrypted store behind it."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from biostation.hal import DriverRegistry, Feature
from biostation.station import create_app
from biostation_drivers.simulated.scanner import SimulatedScanner

DEMO = {"id_number": "001090012345", "surname": "Lê", "given_names": "Văn Đức", "sex": "M",
        "date_of_birth": "1990-04-17"}


@pytest.fixture
def client(settings, shared):
    reg = DriverRegistry(settings, drivers=[])
    scanner = SimulatedScanner.create(settings=settings, key="sim:s1")
    scanner.features = scanner.features & ~Feature.PREVIEW  # each capture assessed as it comes
    reg.add(scanner)
    app = create_app(settings, reg)
    with TestClient(app) as c:
        c.headers["Authorization"] = f"Bearer {app.state.token}"
        yield c, app


def _start(c):
    r = c.post("/v1/enrollments", json={"operator": "officer.a"})
    assert r.status_code == 201, r.text
    return r.json()["session_id"]


def test_whole_applicant_through_the_api(client, shared):
    c, app = client
    sid = _start(c)
    r = c.put(f"/v1/enrollments/{sid}/demographics", json=DEMO)
    assert r.status_code == 200 and r.json()["step"] == "fingers", r.text
    for pos in (13, 14, 15, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10):
        r = c.post(f"/v1/enrollments/{sid}/fingers/{pos}/capture", json={"device_id": "simulated-scanner:s1"})
        assert r.status_code == 200 and r.json()["capture"]["accepted"], r.text
    view = r.json()["session"]
    assert view["step"] == "portrait" and view["sequence"]["ok"] and view["missing"] == {"singles": [], "slaps": []}
    img = view["fingers"]["2"]["image"]
    r = c.get(f"/v1/enrollments/{sid}/images/{img}")
    assert r.status_code == 200 and r.content[:4] == b"\x89PNG" and r.headers["cache-control"] == "no-store"
    assert c.get(f"/v1/enrollments/{sid}/images/..%2Fstore.key").status_code in (404, 422)
    photo = (shared / "data" / "faces" / "LONDON_FRL" / "002" / "1_neutral.jpg").read_bytes()
    r = c.post(f"/v1/enrollments/{sid}/portrait", files={"photo": ("p.jpg", photo, "image/jpeg")})
    assert r.status_code == 200 and r.json()["portrait"]["accepted"], r.text
    assert c.post(f"/v1/enrollments/{sid}/duplicates").json()["step"] == "review"
    done = c.post(f"/v1/enrollments/{sid}/confirm", json={"operator": "officer.a"}).json()
    assert done["step"] == "confirmed" and done["transaction_id"]
    assert c.get("/v1/outbox").json()["queued"] == 1
    # the record is in the store, sealed; the trail is intact and names no person
    from biostation.records.ansi_nist import read_transaction

    store = app.state.store
    assert read_transaction(store.record(sid)).of_type(2)[0].text(18) == "Lê, Văn Đức"
    assert store.verify_audit().ok
    assert not any("Lê" in str(line) for line in store.audit_lines())
    assert [s["session_id"] for s in c.get("/v1/enrollments").json()] == [sid]


def test_steps_out_of_order_and_bad_input(client):
    c, _ = client
    sid = _start(c)
    r = c.post(f"/v1/enrollments/{sid}/fingers/2/capture", json={"device_id": "simulated-scanner:s1"})
    assert r.status_code == 409 and r.json()["missing_step"] == "demographics", r.text
    for bad in ({**DEMO, "id_number": "0011990123"}, {**DEMO, "surname": "x\u0007y"}, {**DEMO, "surname": "a" * 5000},
                {**DEMO, "extra": "1"}, {**DEMO, "date_of_birth": "17/04/1990"}):
        r = c.put(f"/v1/enrollments/{sid}/demographics", json=bad)
        assert r.status_code == 422 and r.json()["reason"], r.text
    assert c.get(f"/v1/enrollments/{sid}").json()["demographics"] is None  # nothing stored
    assert c.put(f"/v1/enrollments/{sid}/demographics", content=b"[1,2", headers={"Content-Type":
                                                                                   "application/json"}).status_code == 422
    assert c.get("/v1/enrollments/no-such-session").status_code == 404
    assert c.post(f"/v1/enrollments/{sid}/fingers/11/capture",
                  json={"device_id": "simulated-scanner:s1"}).status_code in (409, 422)
    c.put(f"/v1/enrollments/{sid}/demographics", json=DEMO)
    r = c.post(f"/v1/enrollments/{sid}/fingers/11/capture", json={"device_id": "simulated-scanner:s1"})
    assert r.status_code == 422 and "position 11" in r.json()["reason"]
    r = c.post(f"/v1/enrollments/{sid}/fingers/3/exception", json={"reason": "ZZ"})
    assert r.status_code == 422
    r = c.post(f"/v1/enrollments/{sid}/cancel", json={"reason": "applicant left"})
    assert r.json()["step"] == "cancelled"
    assert c.post(f"/v1/enrollments/{sid}/duplicates").status_code == 409
