"""The enrollment store: sealed fields on disk, keys, integrity, state rules, crash resume."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from biostation.config import Settings
from biostation.errors import ConfigError, StoreError, StoreIntegrityError, StoreKeyError, StoreStateError
from biostation.store import DataKey, EnrollmentStore, SessionState, load_data_key

NAME_NFC = unicodedata.normalize("NFC", "Nguyễn Thị Ánh Tuyết")
NAME_NFD = unicodedata.normalize("NFD", "Trần Văn Đức Hưởng")


def _store(tmp_path: Path, key: DataKey | None = None) -> EnrollmentStore:
    return EnrollmentStore(tmp_path / "enrollment.db", key or DataKey(b"k" * 32))


def _windows(data: bytes, width: int = 16, step: int = 64) -> list[bytes]:
    return [data[i:i + width] for i in range(0, max(1, len(data) - width), step)]


def test_round_trip_keeps_names_exactly(tmp_path):
    s = _store(tmp_path)
    demo = {"full_name": NAME_NFC, "other_name": NAME_NFD, "birth_place": "Thừa Thiên Huế", "id": "001099012345"}
    sid = s.open_session("op-7", demo)
    got = s.demographics(sid)
    assert got == demo
    # no normalisation either way: NFD stays decomposed, NFC stays composed
    assert got["other_name"] == NAME_NFD and got["other_name"] != unicodedata.normalize("NFC", NAME_NFD)
    img = secrets.token_bytes(5000)
    s.put_blob(sid, "finger/02/image", img, "op-7", {"ppi": 500, "width": 256, "height": 360, "nfiq2": 61})
    assert s.blob(sid, "finger/02/image") == img
    assert s.session(sid).fields == {"finger/02/image": {"height": 360, "nfiq2": 61, "ppi": 500, "width": 256}}
    s.set_step(sid, "op-7", "fingers")
    did = s.add_decision(sid, "op-7", "chip", "match", score=0.93, threshold=0.6,
                         details={"document_number": "C01234567", "name_on_chip": NAME_NFC})
    (d,) = s.decisions(sid)
    assert (d.decision_id, d.details["name_on_chip"], d.score) == (did, NAME_NFC, 0.93)
    s.close()
    s2 = _store(tmp_path)  # a restart resumes at the recorded step
    (info,) = s2.resumable()
    assert (info.session_id, info.step, info.state) == (sid, "fingers", SessionState.OPEN)
    assert s2.blob(sid, "finger/02/image") == img


def test_plaintext_is_nowhere_in_db_or_wal(tmp_path):
    """grep the database file, its WAL and shared-memory file for every personal value: nothing."""
    s = _store(tmp_path)
    template = b"FMR\x00 20\x00" + secrets.token_bytes(400)
    image = secrets.token_bytes(20_000)
    portrait = b"\xff\xd8\xff\xe0" + secrets.token_bytes(8000)
    transaction = b"1.001:" + secrets.token_bytes(3000)
    sid = s.open_session("op", {"full_name": NAME_NFC, "alias": NAME_NFD, "doc": "C09876543"})
    s.put_blob(sid, "finger/01/template", template, "op")
    s.put_blob(sid, "finger/01/image", image, "op")
    s.put_blob(sid, "portrait", portrait, "op")
    s.add_decision(sid, "op", "chip", "match", details={"document_number": "C09876543"})
    s.finish(sid, "op", transaction, records={"iso19794-4/01": image[:4000]})
    files = [tmp_path / "enrollment.db", tmp_path / "enrollment.db-wal", tmp_path / "enrollment.db-shm"]
    assert (tmp_path / "enrollment.db-wal").stat().st_size > len(image)  # the data went through the WAL
    disk = b"".join(p.read_bytes() for p in files if p.exists())
    for secret in (template, image, portrait, transaction):
        for w in _windows(secret):
            assert w not in disk
    for text in (NAME_NFC, NAME_NFD, "C09876543", "Nguy", "Tuyết"):
        for enc in ("utf-8", "utf-16-le"):
            assert text.encode(enc) not in disk, text
    s.close()  # checkpoint into the main file: still nothing
    disk = (tmp_path / "enrollment.db").read_bytes()
    for w in _windows(image) + _windows(template):
        assert w not in disk
    assert NAME_NFC.encode() not in disk


def test_wrong_key_is_refused_before_anything_is_read(tmp_path):
    s = _store(tmp_path, DataKey(b"a" * 32))
    s.open_session("op", {"n": 1})
    s.close()
    with pytest.raises(StoreKeyError, match="does not open"):
        _store(tmp_path, DataKey(b"b" * 32))


def test_moved_ciphertext_fails_authentication(tmp_path):
    """A sealed blob copied into another session (or field) does not open there."""
    s = _store(tmp_path)
    a = s.open_session("op", {"n": "a"})
    b = s.open_session("op", {"n": "b"})
    s.put_blob(a, "portrait", b"A" * 100, "op")
    s.put_blob(b, "portrait", b"B" * 100, "op")
    s.close()
    db = sqlite3.connect(tmp_path / "enrollment.db")
    (blob_a,) = db.execute("SELECT data FROM blobs WHERE session_id=?", (a,)).fetchone()
    db.execute("UPDATE blobs SET data=? WHERE session_id=?", (blob_a, b))
    flipped = bytearray(blob_a)
    flipped[40] ^= 1
    db.execute("UPDATE blobs SET data=? WHERE session_id=?", (bytes(flipped), a))
    db.commit()
    db.close()
    s = _store(tmp_path)
    with pytest.raises(StoreIntegrityError):
        s.blob(b, "portrait")
    with pytest.raises(StoreIntegrityError):
        s.blob(a, "portrait")


def test_state_rules(tmp_path):
    s = _store(tmp_path)
    sid = s.open_session("op", {}, session_id="S-1")
    with pytest.raises(StoreStateError):
        s.open_session("op", {}, session_id="S-1")
    with pytest.raises(StoreError):
        s.open_session("op", {}, session_id="bad id with spaces")
    s.put_blob(sid, "portrait", b"p", "op")
    txn = s.finish(sid, "op", b"TXN")
    assert s.session(sid).state is SessionState.FINISHED
    for call in (lambda: s.put_blob(sid, "portrait", b"q", "op"), lambda: s.set_step(sid, "op", "x"),
                 lambda: s.finish(sid, "op", b"again"), lambda: s.cancel(sid, "op", "late")):
        with pytest.raises(StoreStateError):
            call()
    assert s.outbox_ids("queued") == [txn]
    c = s.open_session("op", {})
    s.put_blob(c, "finger/01/image", b"x" * 10, "op")
    s.cancel(c, "op", "citizen left")
    assert s.session(c).state is SessionState.CANCELLED and s.session(c).fields == {}
    with pytest.raises(StoreStateError):
        s.blob(c, "finger/01/image")
    assert s.verify_audit().ok


def test_key_file_made_0600_and_refused_when_readable(tmp_path):
    settings = Settings(data_dir=tmp_path)
    k1 = load_data_key(settings)
    path = tmp_path / "store" / "store.key"
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_data_key(settings)._raw == k1._raw
    os.chmod(path, 0o640)
    with pytest.raises(StoreKeyError, match="readable by others"):
        load_data_key(settings)
    os.chmod(path, 0o600)
    path.write_text("not a key\n")
    with pytest.raises(StoreKeyError):
        load_data_key(settings)
    with pytest.raises(StoreKeyError, match="no key file"):
        load_data_key(Settings(data_dir=tmp_path / "other"), create=False)


def test_key_from_environment_setting(tmp_path):
    raw = secrets.token_bytes(32)
    import base64

    for text in (base64.b64encode(raw).decode(), raw.hex()):
        assert load_data_key(Settings(data_dir=tmp_path, store_key_source="env", store_key=text))._raw == raw
    with pytest.raises(StoreKeyError):
        load_data_key(Settings(data_dir=tmp_path, store_key_source="env"))
    with pytest.raises(StoreKeyError):
        load_data_key(Settings(data_dir=tmp_path, store_key_source="env", store_key="c2hvcnQ="))


PKCS11_MODULE = "/usr/lib/softhsm/libsofthsm2.so"


@pytest.mark.skipif(not (Path(PKCS11_MODULE).is_file() and shutil.which("softhsm2-util")),
                    reason="SoftHSM2 not installed (apt-get install softhsm2)")
def test_key_wrapped_by_pkcs11_token(tmp_path, tmp_path_factory):
    from biostation.card.pkcs11 import softhsm_token
    from biostation.store.keys import make_pkcs11_wrapping_key

    # the same token as the PKCS#11 signer tests: SoftHSM reads SOFTHSM2_CONF once per process
    label, pin = "biostation-test", "4321"
    conf = softhsm_token(tmp_path_factory.getbasetemp() / "softhsm", label, pin, "87654321")
    os.environ.setdefault("SOFTHSM2_CONF", str(conf))
    if os.environ["SOFTHSM2_CONF"] != str(conf):
        pytest.skip("another SOFTHSM2_CONF is already in use in this process")
    key_label = "store-wrap-" + secrets.token_hex(4)
    make_pkcs11_wrapping_key(PKCS11_MODULE, label, pin, key_label)
    with pytest.raises(ConfigError, match="already holds"):
        make_pkcs11_wrapping_key(PKCS11_MODULE, label, pin, key_label)
    settings = Settings(data_dir=tmp_path, store_key_source="pkcs11", store_pkcs11_token=label,
                        store_pkcs11_key=key_label, store_pkcs11_pin=pin)
    s = EnrollmentStore.open(settings)
    sid = s.open_session("op", {"n": NAME_NFC})
    s.close()
    wrapped = tmp_path / "store" / "store.key.wrapped"
    assert wrapped.stat().st_mode & 0o777 == 0o600
    s = EnrollmentStore.open(settings, create=False)  # unwrapped again in the token
    assert s.demographics(sid) == {"n": NAME_NFC}
    from biostation.store.keys import rotate_key

    before = wrapped.read_bytes()
    rotate_key(settings, s, "admin")  # a new data key, wrapped by the same token key
    assert wrapped.read_bytes() != before
    s.close()
    s = EnrollmentStore.open(settings, create=False)
    assert s.demographics(sid) == {"n": NAME_NFC} and s.verify_audit().ok
    s.close()
    data = bytearray(wrapped.read_bytes())
    data[-1] ^= 1
    wrapped.write_bytes(bytes(data))
    with pytest.raises(StoreKeyError, match="does not unwrap"):
        load_data_key(settings)
    with pytest.raises(ConfigError, match="store-wrap-missing"):
        load_data_key(Settings(data_dir=tmp_path, store_key_source="pkcs11", store_pkcs11_token=label,
                               store_pkcs11_key="store-wrap-missing", store_pkcs11_pin=pin))


_WRITER = r"""
import sys
from biostation.store import DataKey, EnrollmentStore
s = EnrollmentStore(sys.argv[1], DataKey(b"k" * 32))
sid = s.open_session("op", {"n": "Lê Thị Hồng"}, session_id="S-kill")
print("open", flush=True)
for i in range(100000):
    s.put_blob(sid, f"finger/{i:05d}/image", bytes([i % 256]) * 3000, "op")
    print(i, flush=True)
"""


def test_kill_minus_9_loses_no_committed_change(tmp_path):
    """A writer killed mid-stream: every change it reported committed is there after reopening,
    each blob whole, the audit trail intact, and the session resumes."""
    db = tmp_path / "enrollment.db"
    p = subprocess.Popen([sys.executable, "-c", _WRITER, str(db)], stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None
    assert p.stdout.readline().strip() == "open"
    last = -1
    for line in p.stdout:
        last = int(line)
        if last >= 25:
            break
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    s = _store(tmp_path)
    fields = s.session("S-kill").fields
    committed = sorted(int(f.split("/")[1]) for f in fields)
    assert committed[:last + 1] == list(range(last + 1))
    assert committed == list(range(len(committed)))  # no gap: each change whole or absent
    for i in committed:
        assert s.blob("S-kill", f"finger/{i:05d}/image") == bytes([i % 256]) * 3000
    assert s.verify_audit().ok
    assert s.resumable()[0].session_id == "S-kill"
    assert s.demographics("S-kill") == {"n": "Lê Thị Hồng"}


def test_files_are_private_and_a_lost_key_is_not_replaced(tmp_path):
    settings = Settings(data_dir=tmp_path)
    s = EnrollmentStore.open(settings)
    s.open_session("op", {"n": 1})
    d = tmp_path / "store"
    for name in ("enrollment.db", "enrollment.db-wal", "enrollment.db-shm", "store.key"):
        assert (d / name).stat().st_mode & 0o777 == 0o600, name
    assert d.stat().st_mode & 0o077 == 0
    with pytest.raises(StoreError, match="transaction"):
        s.finish(s.sessions()[0].session_id, "op", b"T", records={"transaction": b"other"})
    s.close()
    (d / "store.key").unlink()
    with pytest.raises(StoreKeyError, match="no key file"):
        EnrollmentStore.open(settings)
    assert not (d / "store.key").exists()  # no fresh key that could never open this store


def _full_store(settings: Settings) -> tuple[EnrollmentStore, str]:
    s = EnrollmentStore.open(settings)
    sid = s.open_session("op", {"full_name": NAME_NFC}, session_id="S-rot")
    s.put_blob(sid, "portrait", b"P" * 300, "op")
    s.add_decision(sid, "op", "chip", "match", details={"document_number": "C7"})
    s.identity()
    other = s.open_session("op", {"full_name": NAME_NFD}, session_id="S-fin")
    s.put_blob(other, "finger/01/template", b"T" * 50, "op")
    s.finish(other, "op", b"AN2K" * 20, txn_id="T-rot", records={"iso19794-2/01": b"T" * 50})
    return s, sid


def _readable(s: EnrollmentStore) -> None:
    assert s.demographics("S-rot") == {"full_name": NAME_NFC}
    assert s.blob("S-rot", "portrait") == b"P" * 300
    assert s.decisions("S-rot")[0].details == {"document_number": "C7"}
    assert s.record("S-fin", "iso19794-2/01") == b"T" * 50
    assert next(s.iter_queued()).payload == b"AN2K" * 20
    report = s.verify_audit()
    assert report.ok and report.macs_checked  # the old lines' MACs still verify


def test_key_rotation_reseals_everything(tmp_path):
    from biostation.store.keys import rotate_key

    settings = Settings(data_dir=tmp_path)
    s, _ = _full_store(settings)
    ident = s.identity()
    key_file = tmp_path / "store" / "store.key"
    old_text = key_file.read_text()
    new = rotate_key(settings, s, "admin")
    assert key_file.read_text() != old_text and not (tmp_path / "store" / "store.key.next").exists()
    assert key_file.stat().st_mode & 0o777 == 0o600
    _readable(s)
    assert s.audit_lines()[-1].action == "store.rekey"
    s.close()
    s = EnrollmentStore.open(settings, create=False)
    assert s.key._raw == new._raw and s.identity() == ident  # same station, same batch keys
    _readable(s)
    s.close()
    key_file.write_text(old_text)
    with pytest.raises(StoreKeyError):
        EnrollmentStore.open(settings, create=False)
    with pytest.raises(StoreKeyError, match="BIOSTATION_STORE_KEY"):
        rotate_key(Settings(data_dir=tmp_path, store_key_source="env", store_key="a" * 64), s, "admin")


@pytest.mark.parametrize("crash_after", ["next-written", "resealed"])
def test_interrupted_rotation_is_settled_at_the_next_open(tmp_path, crash_after):
    """The two crash points of a rotation: the new key written but the store not yet re-sealed
    (undone), or re-sealed but the key file not yet replaced (finished). Either way the next open
    finds the store readable and one key file."""
    import base64

    settings = Settings(data_dir=tmp_path)
    s, _ = _full_store(settings)
    raw = secrets.token_bytes(32)
    nxt = tmp_path / "store" / "store.key.next"
    nxt.write_bytes(base64.b64encode(raw) + b"\n")
    os.chmod(nxt, 0o600)
    if crash_after == "resealed":
        s.rekey(DataKey(raw, "file"), "admin")
    s.close()
    s = EnrollmentStore.open(settings, create=False)
    assert not nxt.exists()
    assert (s.key._raw == raw) is (crash_after == "resealed")
    _readable(s)
    s.close()


def test_cli_rekey(tmp_path):
    from typer.testing import CliRunner

    from biostation.cli import app

    s, _ = _full_store(Settings(data_dir=tmp_path))
    s.close()
    r = CliRunner().invoke(app, ["store", "rekey", "--data-dir", str(tmp_path)])
    assert r.exit_code == 0, r.output
    out = __import__("json").loads(r.output)
    assert out["rekeyed"]["blobs"] == 2 and out["rekeyed"]["outbox"] == 1 and out["source"] == "file"
    r = CliRunner().invoke(app, ["audit", "verify", "--data-dir", str(tmp_path)])
    assert r.exit_code == 0 and "MACs" in r.output


def test_a_second_connection_cannot_write_under_the_old_key(tmp_path):
    s1 = _store(tmp_path, DataKey(b"a" * 32))
    sid = s1.open_session("op", {"n": 1})
    s2 = _store(tmp_path, DataKey(b"a" * 32))  # another process, same store
    s1.rekey(DataKey(b"b" * 32), "admin")
    with pytest.raises(StoreKeyError, match="re-keyed by another process"):
        s2.put_blob(sid, "portrait", b"sealed under the old key", "op")
    s1.put_blob(sid, "portrait", b"p", "op")
    assert s1.verify_audit().ok
    s2.close()
    s3 = _store(tmp_path, DataKey(b"b" * 32))
    assert s3.blob(sid, "portrait") == b"p"
