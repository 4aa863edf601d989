"""The ABIS API (MOSIP vocabulary) over the local gallery: operations, failure reasons, retried
requests answered once, and the request log surviving a restart."""

from __future__ import annotations

import base64
import dataclasses

import pytest
from fastapi.testclient import TestClient

from biostation.hal import DriverRegistry
from biostation.identify import LocalBackend, persons
from biostation.station import create_app
from biostation.station.routes_abis import AbisRequest, AbisService
from biostation.templates import TemplateFormat, TemplateRecord, encode, load_template


def tpl(shared, finger, k):
    return load_template(shared / "data" / "fvc2002" / "iso_secugen" / "DB1_B" / f"{finger}_{k}.iso")


def b64(t) -> str:
    return base64.b64encode(encode(t, TemplateFormat.ISO_19794_2)).decode()


@pytest.fixture
def client(settings):
    app = create_app(settings, DriverRegistry(settings, drivers=[]))
    with TestClient(app) as c:
        c.headers["Authorization"] = f"Bearer {app.state.token}"
        yield c


def call(client, op, **body):
    r = client.post(f"/v1/abis/{op.lower()}", json={"id": f"mosip.abis.{op}", "version": "1.1",
                                             "requesttime": "2026-12-03T07:00:00.000Z", **body})
    assert r.status_code == 200, r.text
    return r.json()


def test_operations(client, shared):
    assert call(client, "ping", requestId="p1")["returnValue"] == "1"
    out = call(client, "identify", requestId="q0", biometrics=b64(tpl(shared, 103, 2)), gallery={"referenceIds": ["r1"]})
    assert out["returnValue"] == "1" and out["candidateList"]["count"] == 0  # an empty gallery, a subset
    for f in range(101, 106):
        out = call(client, "insert", requestId=f"i{f}", referenceId=f"r{f}", biometrics=b64(tpl(shared, f, 1)))
        assert out["returnValue"] == "1" and out["requestId"] == f"i{f}"
    assert call(client, "referenceCount", requestId="c1")["count"] == "5"
    out = call(client, "identify", requestId="q1", biometrics=b64(tpl(shared, 103, 2)), flags={"maxResults": 3})
    cands = out["candidateList"]["candidates"]
    assert out["candidateList"]["count"] == 3 and cands[0]["referenceId"] == "r103"
    assert cands[0]["analytics"]["score"] >= cands[1]["analytics"]["score"]
    # by an enrolled reference: itself left out; within a subset of references only
    out = call(client, "identify", requestId="q2", referenceId="r103", flags={"maxResults": 10})
    assert "r103" not in {c["referenceId"] for c in out["candidateList"]["candidates"]}
    assert out["candidateList"]["count"] == 4
    out = call(client, "identify", requestId="q3", biometrics=b64(tpl(shared, 103, 2)),
               gallery={"referenceIds": [{"referenceId": "r101"}, "r102"]}, flags={"maxResults": 5})
    assert {c["referenceId"] for c in out["candidateList"]["candidates"]} == {"r101", "r102"}
    assert call(client, "delete", requestId="d1", referenceId="r101")["returnValue"] == "1"
    assert call(client, "referenceCount", requestId="c2")["count"] == "4"
    assert call(client, "pendingJobs", requestId="j1")["jobscount"] == "0"


def test_failure_reasons(client, shared):
    t = b64(tpl(shared, 101, 1))
    assert call(client, "insert", referenceId="a", biometrics=t)["failureReason"] == "9"
    assert call(client, "insert", requestId="x1", biometrics=t)["failureReason"] == "8"
    assert call(client, "insert", requestId="x2", referenceId="a", biometrics="%%%")["failureReason"] == "19"
    assert call(client, "insert", requestId="x3", referenceId="a",
                biometrics=base64.b64encode(b"not a template").decode())["failureReason"] == "19"
    assert call(client, "insert", requestId="x4", referenceId="a", biometrics=t)["returnValue"] == "1"
    assert call(client, "insert", requestId="x5", referenceId="a", biometrics=t)["failureReason"] == "13"
    assert call(client, "delete", requestId="x6", referenceId="zz")["failureReason"] == "15"
    assert call(client, "identify", requestId="x7", referenceId="zz")["failureReason"] == "15"
    assert call(client, "identify", requestId="x8", biometrics=t, flags={"maxResults": 0})["failureReason"] == "5"
    # a requestId reused for another request is refused
    assert call(client, "delete", requestId="x4", referenceId="a")["failureReason"] == "5"
    r = client.post("/v1/abis/insert", json={"requestId": 5})
    assert r.status_code == 422


def test_a_retried_insert_is_answered_once(client, shared):
    body = {"requestId": "same", "referenceId": "r1", "biometrics": b64(tpl(shared, 101, 1))}
    first = call(client, "insert", **body)
    again = call(client, "insert", **body)
    assert first["returnValue"] == again["returnValue"] == "1"
    assert call(client, "referenceCount", requestId="n")["count"] == "1"
    assert call(client, "delete", requestId="del", referenceId="r1")["returnValue"] == "1"
    assert call(client, "delete", requestId="del", referenceId="r1")["returnValue"] == "1"  # not "not found"


def test_request_log_survives_a_restart_and_a_crash_between_insert_and_answer(tmp_path, shared):
    t = b64(tpl(shared, 102, 1))
    g = LocalBackend(tmp_path / "g")
    svc = AbisService(g, tmp_path / "requests.jsonl")
    assert svc.serve("insert", AbisRequest(requestId="a", referenceId="r", biometrics=t))["returnValue"] == "1"
    # a crash after the gallery took the insert but before its answer was logged
    (tmp_path / "requests.jsonl").open("a").write('["b", "digest", null]\n')
    g.insert("r2", tpl(shared, 103, 1))
    g2 = LocalBackend(tmp_path / "g")
    svc2 = AbisService(g2, tmp_path / "requests.jsonl")
    assert svc2.serve("insert", AbisRequest(requestId="a", referenceId="r", biometrics=t))["returnValue"] == "1"
    again = svc2.serve("insert", AbisRequest(requestId="b", referenceId="r2", biometrics=b64(tpl(shared, 103, 1))))
    assert again["returnValue"] == "1"
    assert g2.count() == 2
    # a fresh request for an enrolled reference is still a duplicate
    assert svc2.serve("insert", AbisRequest(requestId="c", referenceId="r2",
                                            biometrics=t))["failureReason"] == "13"


def ten_print(shared, db: str, k: int, fingers=range(10)) -> str:
    """One FVC2002 database's fingers as one person's record (positions 1..10), base64 ISO."""
    views = [dataclasses.replace(load_template(shared / "data" / "fvc2002" / "iso_secugen" / db / f"{101 + i}_{k}.iso"),
                                 finger_position=i + 1) for i in fingers]
    return base64.b64encode(encode(TemplateRecord(views=views), TemplateFormat.ISO_19794_2)).decode()


def test_person_abis_enrols_and_searches_every_finger_of_a_record(settings, shared):
    s = settings.model_copy(update={"abis_unit": "person"})
    app = create_app(s, DriverRegistry(s, drivers=[]))
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {app.state.token}"
        for db in ("DB1_B", "DB2_B", "DB3_B"):
            assert call(client, "insert", requestId=f"i-{db}", referenceId=db,
                        biometrics=ten_print(shared, db, 1))["returnValue"] == "1"
        assert call(client, "insert", requestId="i-part", referenceId="part",
                    biometrics=ten_print(shared, "DB4_B", 1, fingers=(0, 1)))["returnValue"] == "1"
        assert call(client, "referenceCount", requestId="c")["count"] == "4"
        out = call(client, "identify", requestId="q", biometrics=ten_print(shared, "DB2_B", 3), flags={"maxResults": 4})
        best = out["candidateList"]["candidates"]
        assert best[0]["referenceId"] == "DB2_B" and best[0]["analytics"]["fingers"] == 10
        assert best[0]["analytics"]["match"] and not best[1]["analytics"]["match"]
        assert [c["analytics"]["fingers"] for c in best if c["referenceId"] == "part"] == [2]
        # three fingers of the probe find the person too; by enrolled reference, itself left out
        out = call(client, "identify", requestId="q3", biometrics=ten_print(shared, "DB3_B", 5, fingers=(2, 5, 8)))
        top = out["candidateList"]["candidates"][0]
        assert top["referenceId"] == "DB3_B" and top["analytics"]["fingers"] == 3
        assert top["analytics"]["match"] == persons.is_match(top["analytics"]["score"], 3)
        out = call(client, "identify", requestId="q4", referenceId="DB1_B")
        assert "DB1_B" not in {c["referenceId"] for c in out["candidateList"]["candidates"]}
        # a view without a finger position, or two views at one position: refused, nothing enrolled
        t = tpl(shared, 101, 1)
        for views in ([t], [dataclasses.replace(t, finger_position=2)] * 2):
            raw = base64.b64encode(encode(TemplateRecord(views=views), TemplateFormat.ISO_19794_2)).decode()
            out = call(client, "insert", requestId=f"bad{len(views)}", referenceId="bad", biometrics=raw)
            assert out["failureReason"] == "19" and "positions 1..10" in out["reason"]
        assert call(client, "insert", requestId="dup", referenceId="DB1_B",
                    biometrics=ten_print(shared, "DB1_B", 2))["failureReason"] == "13"
        assert call(client, "delete", requestId="d", referenceId="DB1_B")["returnValue"] == "1"
        assert call(client, "referenceCount", requestId="c2")["count"] == "3"
    again = create_app(s, DriverRegistry(s, drivers=[]))  # a restart: the persons are still there
    with TestClient(again) as client:
        client.headers["Authorization"] = f"Bearer {again.state.token}"
        assert call(client, "referenceCount", requestId="c3")["count"] == "3"
