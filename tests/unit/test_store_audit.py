"""The audit trail: every change leaves a line; edited, re-hashed, deleted or truncated lines are
found and named, by the API and by `biostation audit verify`."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from biostation.cli import app
from biostation.config import Settings
from biostation.errors import AuditError
from biostation.store import EnrollmentStore
from biostation.store import audit as audit_mod


def _filled(data_dir: Path) -> EnrollmentStore:
    s = EnrollmentStore.open(Settings(data_dir=data_dir))
    s.audit("op-1", "operator.login", None, desk="D1")
    sid = s.open_session("op-1", {"full_name": "Phạm Minh Châu"}, session_id="S-1")
    for f in range(1, 4):
        s.put_blob(sid, f"finger/{f:02d}/image", bytes([f]) * 500, "op-1", {"ppi": 500})
    s.add_decision(sid, "op-1", "chip", "match", score=0.9, threshold=0.5, details={"document_number": "C1"})
    s.finish(sid, "op-1", b"TXN-BYTES", txn_id="T-1")
    return s


def _tamper(db_path: Path, *sql: str) -> None:
    """What someone with the file and the sqlite3 shell can do: drop the guards and rewrite."""
    db = sqlite3.connect(db_path)
    db.execute("DROP TRIGGER audit_no_update")
    db.execute("DROP TRIGGER audit_no_delete")
    for q in sql:
        db.execute(q)
    db.commit()
    db.close()


def _verify(data_dir: Path, *extra: str) -> tuple[int, str]:
    r = CliRunner().invoke(app, ["audit", "verify", "--data-dir", str(data_dir), *extra])
    return r.exit_code, r.output


@pytest.fixture
def trail(tmp_path):
    s = _filled(tmp_path)
    n = s.verify_audit().lines
    s.close()
    return tmp_path, tmp_path / "store" / "enrollment.db", n


def test_every_change_leaves_a_line_without_personal_data(tmp_path):
    s = _filled(tmp_path)
    lines = s.audit_lines()
    actions = [ln.action for ln in lines]
    assert actions == ["store.create", "operator.login", "session.open", "blob.put", "blob.put", "blob.put",
                       "decision.add", "session.finish"]
    assert [ln.seq for ln in lines] == list(range(1, len(lines) + 1))
    dump = json.dumps([ln.__dict__ for ln in lines], ensure_ascii=False)
    for personal in ("Phạm", "Châu", "C1\"", "TXN-BYTES"):
        assert personal not in dump
    with pytest.raises(AuditError):
        s.audit("op-1", "template.dump", "S-1", data=b"\x00\x01")  # bytes never go in
    with pytest.raises(AuditError):
        s.audit("op-1", "note", "S-1", text="x" * 500)  # nor long texts
    with pytest.raises(AuditError):
        s.audit("op 1; drop", "note")
    assert s.verify_audit().ok


def test_code_cannot_rewrite_the_table(tmp_path):
    s = _filled(tmp_path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        s._db.execute("UPDATE audit SET actor='x' WHERE seq=2")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        s._db.execute("DELETE FROM audit WHERE seq=2")


def test_intact_trail_exits_0(trail):
    data_dir, _, n = trail
    code, out = _verify(data_dir)
    assert code == 0, out
    assert f"intact: {n} lines" in out and "MACs" in out
    code, out = _verify(data_dir, "--no-key")
    assert code == 0 and "no MACs" in out


def test_edited_line_is_named(trail):
    data_dir, db, _ = trail
    _tamper(db, "UPDATE audit SET actor='op-2' WHERE seq=4")
    for extra in ((), ("--no-key",)):
        code, out = _verify(data_dir, *extra)
        assert code == 1
        assert "line 4:" in out and "edited" in out


def test_edited_and_rehashed_line_is_named_by_its_mac(trail):
    data_dir, db, _ = trail
    c = sqlite3.connect(db)
    seq, at, actor, action, obj, detail, prev = c.execute(
        "SELECT seq, at, actor, action, object, detail, prev FROM audit WHERE seq=5").fetchone()
    c.close()
    detail = json.dumps({"field": "finger/02/image", "size": 1}, separators=(",", ":"), sort_keys=True)
    forged = hashlib.sha256(audit_mod._canonical(seq, at, actor, action, obj, detail, prev)).hexdigest()
    _tamper(db, f"UPDATE audit SET detail='{detail}', hash='{forged}' WHERE seq=5")
    code, out = _verify(data_dir)
    assert code == 1 and "line 5:" in out and "MAC" in out
    code, out = _verify(data_dir, "--no-key")  # without the key: the next line no longer chains
    assert code == 1 and "line 6:" in out and "chain" in out


def test_deleted_line_is_named(trail):
    data_dir, db, _ = trail
    _tamper(db, "DELETE FROM audit WHERE seq=3")
    code, out = _verify(data_dir)
    assert code == 1 and "line 3:" in out and "missing" in out


def test_deleted_last_lines_are_named(trail):
    data_dir, db, n = trail
    _tamper(db, f"DELETE FROM audit WHERE seq>={n - 1}")
    code, out = _verify(data_dir)
    assert code == 1 and f"line {n - 1}:" in out and "missing" in out


def test_truncation_with_forged_head_is_found(trail):
    """Cut the last line and rewrite the head to the new last line: the head's MAC fails with the
    key; without the key, SQLite's AUTOINCREMENT counter still remembers the cut line."""
    data_dir, db, n = trail
    c = sqlite3.connect(db)
    prev_hash = c.execute("SELECT hash FROM audit WHERE seq=?", (n - 1,)).fetchone()[0]
    c.close()
    head = json.dumps({"seq": n - 1, "hash": prev_hash, "mac": "0" * 64})
    _tamper(db, f"DELETE FROM audit WHERE seq={n}", f"UPDATE meta SET value='{head}' WHERE key='audit_head'")
    code, out = _verify(data_dir)
    assert code == 1 and f"line {n - 1}:" in out and "head" in out
    code, out = _verify(data_dir, "--no-key")
    assert code == 1 and f"line {n}:" in out and "missing" in out


def test_no_store_exits_2(tmp_path):
    code, out = _verify(tmp_path)
    assert code == 2 and "no enrollment store" in out


def test_show_lists_the_latest_lines(trail):
    data_dir, _, n = trail
    r = CliRunner().invoke(app, ["audit", "show", "--data-dir", str(data_dir), "--last", "2", "--json"])
    assert r.exit_code == 0
    rows = [json.loads(x) for x in r.output.splitlines()]
    assert [x["seq"] for x in rows] == [n - 1, n] and rows[-1]["action"] == "session.finish"


@pytest.mark.parametrize("how", ["edit-actor", "edit-detail", "delete"])
def test_any_line_tampered_is_the_line_named(tmp_path, how):
    """Each line in turn, in a fresh copy of the trail: verify names exactly that line."""
    import shutil

    s = _filled(tmp_path / "orig")
    n = s.verify_audit().lines
    s.checkpoint()
    s.close()
    src = tmp_path / "orig" / "store"
    sql = {"edit-actor": "UPDATE audit SET actor='intruder', at='2020-01-01T00:00:00.000Z' WHERE seq={k}",
           "edit-detail": "UPDATE audit SET detail='{{}}' WHERE seq={k}",
           "delete": "DELETE FROM audit WHERE seq={k}"}[how]
    for k in range(1, n + 1):
        d = tmp_path / f"copy{k}"
        shutil.copytree(src, d / "store")
        _tamper(d / "store" / "enrollment.db", sql.format(k=k))
        if how == "edit-detail" and k == 1:
            continue  # line 1's detail is {} already: nothing changed
        code, out = _verify(d)
        assert code == 1, (k, out)
        assert f"BROKEN at line {k}:" in out, (k, out)
