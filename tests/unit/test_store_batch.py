"""Mobile teams' batch files: signed by the sender, readable by the addressee only; any changed
byte is refused with a typed error and nothing is imported."""

from __future__ import annotations

import json
import os

import pytest
from typer.testing import CliRunner

from biostation.cli import app
from biostation.config import Settings
from biostation.errors import BatchError, BatchFormatError, BatchTamperedError, BatchUntrustedError, StoreStateError
from biostation.store import DataKey, EnrollmentStore
from biostation.store.batch import export_batch, import_batch


def _station(path, seed: bytes) -> EnrollmentStore:
    return EnrollmentStore(path / "enrollment.db", DataKey(seed * 32))


def _trust(a: EnrollmentStore, b: EnrollmentStore) -> None:
    ident = b.identity()
    a.trust("admin", ident["station_id"], bytes.fromhex(ident["sign_pub"]), bytes.fromhex(ident["box_pub"]))


@pytest.fixture
def pair(tmp_path):
    (tmp_path / "mobile").mkdir()
    (tmp_path / "desk").mkdir()
    mobile, desk = _station(tmp_path / "mobile", b"m"), _station(tmp_path / "desk", b"d")
    _trust(mobile, desk)
    _trust(desk, mobile)
    bodies = {}
    for i in range(3):
        sid = mobile.open_session("team-4", {"full_name": "Đặng Thùy Trâm"}, session_id=f"M-{i}")
        mobile.put_blob(sid, "portrait", b"\xff\xd8" + bytes([i]) * 300, "team-4")
        bodies[f"TX-{i}"] = b"1.001:" + bytes([65 + i]) * 200
        mobile.finish(sid, "team-4", bodies[f"TX-{i}"], txn_id=f"TX-{i}", content_type="application/x-an2k")
    yield mobile, desk, bodies, tmp_path
    mobile.close()
    desk.close()


def test_round_trip_queues_the_same_transactions(pair):
    mobile, desk, bodies, tmp = pair
    path = tmp / "batch.bsb"
    out = export_batch(mobile, desk.station_id, path, actor="team-4")
    assert out.entries == 3 and os.stat(path).st_mode & 0o777 == 0o600
    data = path.read_bytes()
    for body in bodies.values():
        assert body[6:40] not in data  # encrypted
    assert b"\xc4\x90\xe1\xba\xb7ng" not in data  # "Đặng"
    got = import_batch(desk, path, actor="clerk-1")
    assert (got.queued, got.skipped, got.from_station) == (3, 0, mobile.station_id)
    assert desk.outbox_ids("queued") == ["TX-0", "TX-1", "TX-2"]  # the original ids: the same idempotency keys
    e = next(desk.iter_queued())
    assert (e.payload, e.content_type, e.origin) == (bodies["TX-0"], "application/x-an2k", f"batch:{got.batch_id}")
    # exporting purges nothing at the sender: only an acknowledgement does
    assert mobile.outbox_ids("queued") == ["TX-0", "TX-1", "TX-2"] and mobile.session("M-0").fields
    again = import_batch(desk, path, actor="clerk-1")
    assert (again.queued, again.skipped) == (0, 3)
    assert [ln.action for ln in desk.audit_lines()][-2:] == ["batch.import", "batch.reimport"]
    assert mobile.audit_lines()[-1].action == "batch.export"
    assert desk.verify_audit().ok and mobile.verify_audit().ok


def test_every_flipped_byte_is_refused_and_nothing_imported(pair):
    mobile, desk, _, tmp = pair
    path = tmp / "batch.bsb"
    export_batch(mobile, desk.station_id, path, actor="team-4")
    data = path.read_bytes()
    bad = tmp / "bad.bsb"
    kinds = set()
    for pos in range(len(data)):
        for mask in (0x01, 0x80):
            b = bytearray(data)
            b[pos] ^= mask
            with pytest.raises(BatchError) as ei:
                import_batch(desk, bytes(b), actor="clerk-1")
            kinds.add(type(ei.value))
    assert {BatchTamperedError, BatchFormatError, BatchUntrustedError} <= kinds
    assert desk.outbox_ids() == []  # nothing imported by any of them
    for cut in (0, 10, len(data) - 1):
        bad.write_bytes(data[:cut])
        with pytest.raises(BatchError):
            import_batch(desk, bad, actor="clerk-1")
    bad.write_bytes(data + b"\x00")
    with pytest.raises(BatchTamperedError):
        import_batch(desk, bad, actor="clerk-1")
    assert desk.outbox_ids() == []
    assert import_batch(desk, path, actor="clerk-1").queued == 3  # the original still imports


def test_untrusted_sender_and_wrong_addressee(pair):
    mobile, desk, _, tmp = pair
    (tmp / "third").mkdir()
    third = _station(tmp / "third", b"t")
    _trust(mobile, third)
    p = tmp / "for-third.bsb"
    export_batch(mobile, third.station_id, p, actor="team-4")
    with pytest.raises(BatchUntrustedError, match="is for station"):
        import_batch(desk, p, actor="clerk-1")
    p2 = tmp / "from-third.bsb"
    _trust(third, desk)
    export_batch(third, desk.station_id, p2, actor="x")  # an empty batch, signed by a station desk does not trust
    with pytest.raises(BatchUntrustedError, match="not trusted"):
        import_batch(desk, p2, actor="clerk-1")
    with pytest.raises(BatchUntrustedError):
        export_batch(desk, "st-unknown", tmp / "x.bsb", actor="clerk-1")
    assert desk.outbox_ids() == []
    third.close()


def test_same_id_with_other_content_refuses_the_batch(pair):
    mobile, desk, _, tmp = pair
    sid = desk.open_session("clerk-1", {}, session_id="D-1")
    desk.finish(sid, "clerk-1", b"other content", txn_id="TX-1")
    p = tmp / "batch.bsb"
    export_batch(mobile, desk.station_id, p, actor="team-4")
    with pytest.raises(StoreStateError, match="other content"):
        import_batch(desk, p, actor="clerk-1")
    assert desk.outbox_ids() == ["TX-1"]  # all or nothing: TX-0 and TX-2 were not queued either


def test_cli_identity_trust_export_import(tmp_path):
    runner = CliRunner()
    dirs = {n: tmp_path / n for n in ("mobile", "desk")}
    for n, d in dirs.items():
        r = runner.invoke(app, ["store", "identity", "--data-dir", str(d), "--out", str(tmp_path / f"{n}.json")])
        assert r.exit_code == 0, r.output
    for a, b in (("mobile", "desk"), ("desk", "mobile")):
        r = runner.invoke(app, ["store", "trust", str(tmp_path / f"{b}.json"), "--data-dir", str(dirs[a])])
        assert r.exit_code == 0, r.output
    with EnrollmentStore.open(Settings(data_dir=dirs["mobile"])) as m:
        sid = m.open_session("team", {}, session_id="M-9")
        m.finish(sid, "team", b"AN2K", txn_id="TX-9")
    desk_id = json.loads((tmp_path / "desk.json").read_text())["station_id"]
    out = tmp_path / "b.bsb"
    r = runner.invoke(app, ["store", "export", "--to", desk_id, "--out", str(out), "--data-dir", str(dirs["mobile"])])
    assert r.exit_code == 0 and json.loads(r.output)["entries"] == 1
    data = bytearray(out.read_bytes())
    data[-80] ^= 4  # inside the ciphertext
    (tmp_path / "bad.bsb").write_bytes(bytes(data))
    r = runner.invoke(app, ["store", "import", str(tmp_path / "bad.bsb"), "--data-dir", str(dirs["desk"])])
    assert r.exit_code == 1 and "nothing imported" in r.output and "BatchTamperedError" in r.output
    r = runner.invoke(app, ["store", "import", str(out), "--data-dir", str(dirs["desk"])])
    assert r.exit_code == 0 and json.loads(r.output)["queued"] == 1
    r = runner.invoke(app, ["store", "sessions", "--data-dir", str(dirs["mobile"])])
    assert r.exit_code == 0 and json.loads(r.output)["state"] == "finished"
    r = runner.invoke(app, ["audit", "verify", "--data-dir", str(dirs["desk"])])
    assert r.exit_code == 0


def test_delivering_an_imported_entry_purges_no_local_session(pair):
    """Session ids are chosen per station: an imported transaction whose session id equals one of
    ours must not purge our session when it is acknowledged."""
    import httpx

    from biostation.store.outbox import Outbox

    mobile, desk, _, tmp = pair
    mine = desk.open_session("clerk-1", {}, session_id="M-0")  # the same id as the mobile's first session
    desk.put_blob(mine, "portrait", b"mine", "clerk-1")
    p = tmp / "batch.bsb"
    export_batch(mobile, desk.station_id, p, actor="team-4")
    import_batch(desk, p, actor="clerk-1")
    ob = Outbox(desk, "https://central.example/tx", client=httpx.Client(
        transport=httpx.MockTransport(lambda r: httpx.Response(201))))
    results = ob.drain()
    assert [r.outcome for r in results] == ["acked"] * 3
    assert all(r.purged == {"blobs": 0, "records": 0} for r in results)
    assert desk.blob("M-0", "portrait") == b"mine"
    assert desk.outbox_status()["payloads_held"] == 0
