"""``biostation face check`` and ``biostation face verify``."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from biostation.cli import app

runner = CliRunner()


def test_face_check_json_pass_fail_and_unreadable(shared, tmp_path):
    faces = shared / "data" / "faces"
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 not really")
    res = runner.invoke(app, ["face", "check", "--json", str(faces / "LONDON_FRL/001/1_neutral.jpg"),
                              str(faces / "YALE/subject02/11_wink.png"), str(bad)])
    lines = [json.loads(x) for x in res.stdout.splitlines() if x.startswith("{")]
    assert res.exit_code == 2
    ok, wink, err = lines
    assert ok["passed"] is True and all(c["status"] == "pass" for c in ok["checks"])
    assert wink["passed"] is False and "eyes_open" in wink["failed"]
    eyes = next(c for c in wink["checks"] if c["name"] == "eyes_open")
    assert {"value", "threshold", "reason_en", "reason_vi", "unit"} <= set(eyes)
    assert "error" in err and "bad.jpg" in err["error"]


def test_face_check_table_and_token_files(shared, tmp_path):
    img = shared / "data" / "faces" / "LONDON_FRL/002/1_neutral.jpg"
    res = runner.invoke(app, ["face", "check", str(img), "--lang", "vi", "--token-dir", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "PASS" in res.output and "Hai mắt đều mở" in res.output
    assert (tmp_path / "1_neutral.jpg").stat().st_size > 0 and (tmp_path / "1_neutral.jp2").stat().st_size <= 20_000


def test_face_verify_match_and_no_match(shared):
    faces = shared / "data" / "faces" / "LONDON_FRL"
    same = runner.invoke(app, ["face", "verify", "--json", str(faces / "004/1_neutral.jpg"), str(faces / "004/2_smiling.jpg")])
    assert same.exit_code == 0 and json.loads(same.stdout)["match"] is True
    other = runner.invoke(app, ["face", "verify", str(faces / "004/1_neutral.jpg"), str(faces / "005/1_neutral.jpg")])
    assert other.exit_code == 1 and "NO MATCH" in other.stdout


def test_face_verify_without_a_face_is_a_clear_error(shared, tmp_path):
    import numpy as np
    from PIL import Image

    grey = tmp_path / "grey.png"
    Image.fromarray(np.full((300, 300), 128, np.uint8)).save(grey)
    res = runner.invoke(app, ["face", "verify", "--json", str(grey), str(grey)])
    assert res.exit_code == 2 and "no face" in json.loads(res.stdout)["error"]


def test_face_verify_reports_operating_point_and_retake(shared, tmp_path):
    import cv2

    faces = shared / "data" / "faces" / "LONDON_FRL"
    res = runner.invoke(app, ["face", "verify", "--json", "--operating-point", "fmr-0.01%",
                              str(faces / "004/2_smiling.jpg"), str(faces / "004/1_neutral.jpg")])
    out = json.loads(res.stdout)
    assert res.exit_code == 0 and out["decision"] == "match" and out["operating_point"]["name"] == "fmr-0.01%"
    blurred = tmp_path / "blurred.png"
    cv2.imwrite(str(blurred), cv2.GaussianBlur(cv2.imread(str(faces / "005/1_neutral.jpg")), (0, 0), 9))
    res = runner.invoke(app, ["face", "verify", str(blurred), str(faces / "004/1_neutral.jpg")])
    assert res.exit_code == 3 and res.stdout.startswith("RETAKE") and "blurred" in res.stdout
