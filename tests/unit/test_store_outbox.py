"""The outbox against a local central endpoint that is down, then failing, then up: each
transaction filed exactly once, payloads purged only after a 2xx. Time is a fake clock that the
test advances, so no verdict depends on the machine's speed."""

from __future__ import annotations

import hashlib
import json
import random
import sqlite3
import time

import httpx
import pytest
from typer.testing import CliRunner

from biostation.cli import app
from biostation.config import Settings
from biostation.errors import OutboxBusyError, OutboxError, StoreStateError
from biostation.store import DataKey, EnrollmentStore, OutboxState, SessionState
from biostation.store.central_sim import SimulatedCentral
from biostation.store.outbox import Backoff, Outbox, OutboxSender, check_url


class Clock:
    def __init__(self, t: float = 1_800_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def _store(tmp_path, clock=None) -> EnrollmentStore:
    return EnrollmentStore(tmp_path / "enrollment.db", DataKey(b"k" * 32), clock=clock or time.time)


def _finish(store: EnrollmentStore, i: int) -> tuple[str, bytes]:
    sid = store.open_session("op", {"full_name": f"Võ Thị Sáu {i}"}, session_id=f"S-{i:03d}")
    store.put_blob(sid, "finger/01/image", bytes([i % 256]) * 2000, "op")
    store.put_blob(sid, "finger/01/template", b"FMR" + bytes([i % 256]) * 200, "op")
    txn = f"T-{i:03d}"
    body = b"1.001:" + str(i).encode() * 300
    store.finish(sid, "op", body, txn_id=txn, records={"iso19794-2/01": b"FMR" * 10})
    return txn, body


def _drive(ob: Outbox, clock: Clock, until: float | None = None, max_steps: int = 100_000) -> list:
    """Step the outbox, jumping the clock to the next due time, until the queue is empty (or the
    clock reaches ``until``)."""
    out = []
    for _ in range(max_steps):
        if until is not None and clock.t >= until:
            return out
        r = ob.step()
        if r is not None:
            out.append(r)
            continue
        w = ob.wait_s()
        if w is None:
            return out
        clock.t += w if until is None else min(w, until - clock.t)
    raise AssertionError("outbox did not settle")


def _held(db_path) -> tuple[int, int, int]:
    db = sqlite3.connect(db_path)
    try:
        payloads = db.execute("SELECT COUNT(*) FROM outbox WHERE payload IS NOT NULL").fetchone()[0]
        blobs = db.execute("SELECT COUNT(*) FROM blobs").fetchone()[0]
        records = db.execute("SELECT COUNT(*) FROM records WHERE data IS NOT NULL").fetchone()[0]
        return payloads, blobs, records
    finally:
        db.close()


def test_backoff_grows_with_jitter_and_cap():
    b = Backoff(base_s=2, cap_s=100, jitter=0.5)
    rng = random.Random(1)
    for attempts, full in [(0, 2), (1, 4), (3, 16), (5, 64), (6, 100), (40, 100)]:
        ds = [b.delay(attempts, rng) for _ in range(200)]
        assert all(full / 2 <= d <= full for d in ds)
        assert max(ds) - min(ds) > full / 4  # jittered, not in step
    assert b.delay(0, rng, retry_after=30) >= 30  # the server's Retry-After lengthens it...
    assert b.delay(0, rng, retry_after=10_000) <= 100  # ...within the cap


def test_url_policy():
    for ok in ("https://central.example/tx", "http://127.0.0.1:8080/tx", "http://localhost/tx", "http://[::1]:9/x"):
        assert check_url(ok) == ok
    for bad in ("http://10.0.0.5/tx", "http://central.example/tx", "ftp://x/y", "central.example"):
        with pytest.raises(OutboxError):
            check_url(bad)


@pytest.mark.parametrize("seed", [3])
def test_down_then_up_delivers_each_exactly_once(tmp_path, seed):
    clock = Clock()
    store = _store(tmp_path, clock)
    sent = dict(_finish(store, i) for i in range(12))
    central = SimulatedCentral()
    central.go_up()
    url = central.url
    central.go_down()  # the endpoint is down: connections refused
    ob = Outbox(store, url, backoff=Backoff(base_s=2, cap_s=120), rng=random.Random(seed))
    try:
        down = _drive(ob, clock, until=clock.t + 1800)  # half an hour of outage
        assert down and all(r.outcome == "offline" for r in down)
        assert _held(store.path) == (12, 24, 24)  # nothing purged while offline
        assert all(store.outbox_entry(t)["state"] == "queued" for t in sent)
        # back, but flaky: 503s, dropped connections, and replies lost after filing
        central.go_up()
        rnd = random.Random(seed)
        central.script = [rnd.choice(["503", "drop", "lost-ack", "ok", "ok"]) for _ in range(40)]
        central.retry_after = 5
        up = _drive(ob, clock)
    finally:
        central.go_down()
        ob.close()
    assert set(central.filed) == set(sent)  # every transaction filed, once per key
    for txn, body in sent.items():
        assert central.filed[txn] == hashlib.sha256(body).hexdigest()
    lost = central.by_mode.get("lost-ack", 0)
    assert central.duplicates >= lost > 0  # the retries after a lost reply were suppressed by key
    assert central.bad_digest == 0
    assert sum(r.outcome == "acked" for r in up) == 12
    assert _held(store.path) == (0, 0, 0)  # everything purged after the acknowledgements
    for txn in sent:
        e = store.outbox_entry(txn)
        assert e["state"] == "acked" and not e["payload_held"] and e["receipt"]["receipt"].startswith("R")
    assert {s.state for s in store.sessions()} == {SessionState.DELIVERED}
    assert store.session("S-000").fields == {} and store.demographics("S-000")["full_name"] == "Võ Thị Sáu 0"
    assert store.verify_audit().ok
    store.close()


def test_payload_purged_only_after_a_2xx(tmp_path):
    clock = Clock()
    store = _store(tmp_path, clock)
    txn, _ = _finish(store, 1)
    with SimulatedCentral() as central:
        ob = Outbox(store, central.url, backoff=Backoff(1, 10), rng=random.Random(0))
        for mode in ("503", "drop", "lost-ack"):
            central.script = [mode]
            r = ob.step()
            assert r is not None and r.outcome in ("retry", "offline")
            assert _held(store.path) == (1, 2, 2), mode
            assert store.session("S-001").state is SessionState.FINISHED
            clock.t += ob.wait_s()  # type: ignore[operator]
        with store._lock:
            sealed = [bytes(x[0]) for x in store._db.execute(
                "SELECT data FROM blobs UNION ALL SELECT data FROM records UNION ALL SELECT payload FROM outbox")]
        r = ob.step()  # the retry after the lost reply: a duplicate, answered 200
        assert r is not None and (r.outcome, r.status) == ("acked", 200)
        assert r.purged == {"blobs": 2, "records": 2}
        assert _held(store.path) == (0, 0, 0)
        disk = b"".join(p.read_bytes() for p in tmp_path.glob("enrollment.db*"))
        assert len(sealed) == 5 and not any(c[20:52] in disk for c in sealed)  # not even the ciphertext stays
        assert central.duplicates == 1 and list(central.filed) == [txn]
        ob.close()
    with pytest.raises(StoreStateError):
        store.record("S-001")
    store.close()


def _mock(handler) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(handler))


def test_request_carries_key_digest_and_token(tmp_path):
    store = _store(tmp_path)
    txn, body = _finish(store, 2)
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"receipt": "C-9"})

    ob = Outbox(store, "https://central.example/tx", client=_mock(handler), token="s3cret")
    assert ob.step().outcome == "acked"  # type: ignore[union-attr]
    (req,) = seen
    assert req.headers["Idempotency-Key"] == txn and req.content == body
    assert req.headers["Authorization"] == "Bearer s3cret"
    assert req.headers["X-Biostation-Station"] == store.station_id
    assert req.headers["Content-Digest"].startswith("sha-256=:")
    assert store.outbox_entry(txn)["receipt"]["receipt"] == "C-9"
    assert "s3cret" not in json.dumps([ln.__dict__ for ln in store.audit_lines()])


def test_refused_for_good_is_held_for_an_operator(tmp_path):
    clock = Clock()
    store = _store(tmp_path, clock)
    txn, _ = _finish(store, 3)
    status = [422]
    ob = Outbox(store, "https://central.example/tx", client=_mock(lambda r: httpx.Response(status[0])))
    r = ob.step()
    assert r is not None and r.outcome == "rejected"
    assert store.outbox_entry(txn)["state"] == OutboxState.REJECTED.value
    assert _held(store.path) == (1, 2, 2) and ob.step() is None  # held, not retried
    store.outbox_requeue(txn, "supervisor")
    status[0] = 200
    assert ob.step().outcome == "acked"  # type: ignore[union-attr]
    assert [ln.action for ln in store.audit_lines()][-3:] == ["outbox.rejected", "outbox.requeue", "outbox.ack"]


def test_unauthorized_holds_the_whole_queue(tmp_path):
    clock = Clock()
    store = _store(tmp_path, clock)
    for i in range(3):
        _finish(store, i)
    calls = []
    ob = Outbox(store, "https://central.example/tx", backoff=Backoff(10, 100), rng=random.Random(0),
                client=_mock(lambda r: calls.append(r) or httpx.Response(401)))
    r = ob.step()
    assert r is not None and r.outcome == "offline"
    assert ob.step() is None and len(calls) == 1  # no hammering with the other entries
    assert 5 <= ob.wait_s() <= 10  # type: ignore[operator]


def test_one_sender_per_store(tmp_path):
    store = _store(tmp_path)
    a = Outbox(store, "https://central.example/tx", client=_mock(lambda r: httpx.Response(200)))
    b = Outbox(store, "https://central.example/tx", client=_mock(lambda r: httpx.Response(200)))
    a.acquire()
    with pytest.raises(OutboxBusyError):
        b.acquire()
    a.release()
    b.acquire()
    b.release()


def test_sender_thread_delivers_and_is_woken(tmp_path):
    store = _store(tmp_path)
    with SimulatedCentral() as central:
        sender = OutboxSender(Outbox(store, central.url, backoff=Backoff(0.05, 0.2)), idle_s=30).start()
        try:
            for i in range(3):
                _finish(store, i)
            sender.wake()
            deadline = time.monotonic() + 60  # a hang guard, not a speed verdict
            while store.outbox_status()["counts"]["queued"] and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            sender.stop(timeout_s=30)
        assert len(central.filed) == 3 and central.duplicates == 0
    assert store.outbox_status()["counts"] == {"queued": 0, "acked": 3, "rejected": 0}
    assert OutboxSender.from_settings(store, Settings(data_dir=tmp_path)) is None  # no central URL: no sender


def test_cli_status_and_flush(tmp_path):
    store = EnrollmentStore.open(Settings(data_dir=tmp_path))
    _finish(store, 5)
    store.close()
    runner = CliRunner()
    r = runner.invoke(app, ["outbox", "status", "--data-dir", str(tmp_path), "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["counts"]["queued"] == 1
    with SimulatedCentral() as central:
        central.script = ["503"]
        r = runner.invoke(app, ["outbox", "flush", "--data-dir", str(tmp_path), "--url", central.url])
        assert r.exit_code == 1 and json.loads(r.output)["queued"] == 1  # still queued: not due again yet
        r = runner.invoke(app, ["outbox", "flush", "--data-dir", str(tmp_path), "--url", central.url, "--now"])
        assert r.exit_code == 0 and json.loads(r.output)["outcomes"] == {"acked": 1}
    r = runner.invoke(app, ["outbox", "status", "--data-dir", str(tmp_path)])
    assert r.exit_code == 0 and "delivered 1" in r.output
    r = runner.invoke(app, ["outbox", "flush", "--data-dir", str(tmp_path), "--url", "http://10.1.2.3/x"])
    assert r.exit_code == 2 and "https" in r.output


def test_altered_payload_is_quarantined_not_sent(tmp_path):
    store = _store(tmp_path)
    bad, _ = _finish(store, 1)
    good, _ = _finish(store, 2)
    with store._lock:
        (sealed,) = store._db.execute("SELECT payload FROM outbox WHERE txn_id=?", (bad,)).fetchone()
        b = bytearray(sealed)
        b[-1] ^= 1
        store._db.execute("UPDATE outbox SET payload=? WHERE txn_id=?", (bytes(b), bad))
    sent = []
    ob = Outbox(store, "https://central.example/tx",
                client=_mock(lambda r: sent.append(r.headers["Idempotency-Key"]) or httpx.Response(201)))
    assert [r.txn_id for r in ob.drain()] == [good] and sent == [good]
    e = store.outbox_entry(bad)
    assert e["state"] == "rejected" and "authentication" in e["last_error"]


def test_no_payload_token_or_key_in_any_log(tmp_path, caplog):
    """Everything logged at DEBUG by the store, the outbox, httpx and httpcore during faulty and
    successful uploads: no payload bytes, no name, no token, no key."""
    import logging

    caplog.set_level(logging.DEBUG)
    clock = Clock()
    key = DataKey(b"\x07" * 32)
    store = EnrollmentStore(tmp_path / "enrollment.db", key, clock=clock)
    txn, body = _finish(store, 7)
    with SimulatedCentral() as central:
        central.script = ["503", "drop", "lost-ack"]
        ob = Outbox(store, central.url, token="tok-SECRET-123", backoff=Backoff(1, 4), rng=random.Random(0))
        _drive(ob, clock)
        ob.close()
    assert list(central.filed) == [txn]
    text = "\n".join(f"{r.name} {r.getMessage()} {r.args!r}" for r in caplog.records)
    assert txn in text  # the logs do say what happened, by id
    assert {"httpx", "httpcore.http11"} <= {r.name for r in caplog.records}  # the libraries were heard too
    for secret in ("tok-SECRET-123", "Võ Thị", body[6:30].decode("latin-1"), repr(b"\x07" * 8)[2:-1]):
        assert secret not in text
    store.close()


def _tls_files(d):
    """A CA and a server certificate for 127.0.0.1 signed by it (PEM files in ``d``)."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    now = dt.datetime.now(dt.UTC)
    ca_key, srv_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("test central CA")).issuer_name(name("test central CA"))
          .public_key(ca_key.public_key()).serial_number(1).not_valid_before(now - dt.timedelta(days=1))
          .not_valid_after(now + dt.timedelta(days=2)).add_extension(x509.BasicConstraints(True, None), True)
          .sign(ca_key, hashes.SHA256()))
    srv = (x509.CertificateBuilder().subject_name(name("central")).issuer_name(ca.subject)
           .public_key(srv_key.public_key()).serial_number(2).not_valid_before(now - dt.timedelta(days=1))
           .not_valid_after(now + dt.timedelta(days=2))
           .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
           .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    (d / "ca.pem").write_bytes(ca.public_bytes(pem))
    (d / "srv.pem").write_bytes(srv.public_bytes(pem))
    (d / "srv.key").write_bytes(srv_key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption()))
    return d / "ca.pem", d / "srv.pem", d / "srv.key"


def test_https_endpoint_verified_against_the_configured_ca(tmp_path):
    clock = Clock()
    store = _store(tmp_path, clock)
    txn, _ = _finish(store, 8)
    ca, cert, key = _tls_files(tmp_path)
    with SimulatedCentral(tls=(str(cert), str(key))) as central:
        assert central.url.startswith("https://")
        untrusted = Outbox(store, central.url, rng=random.Random(0))  # the system's CAs: refused
        r = untrusted.step()
        assert r is not None and r.outcome == "offline" and "ConnectError" in (r.error or "")
        assert _held(store.path) == (1, 2, 2) and not central.filed
        untrusted.close()
        store.outbox_retry_now("op")
        settings = Settings(data_dir=tmp_path, central_url=central.url, central_ca_file=ca)
        ob = Outbox.from_settings(store, settings)
        r = ob.step()
        assert r is not None and r.outcome == "acked"
        assert list(central.filed) == [txn] and _held(store.path) == (0, 0, 0)
        ob.close()
    with pytest.raises(OutboxError, match="TLS files"):
        Outbox(store, "https://central.example/tx", ca_file=str(tmp_path / "missing.pem"))
