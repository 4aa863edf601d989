"""Portrait checks on the real photographs of ../shared/data/faces (see its README).

Each test names the check that must fail and why; compliant portraits must pass every check,
so a check that fails everything, or passes everything, is caught both ways.
"""

from __future__ import annotations

import functools
import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from biostation.errors import ImageError
from biostation.face import CHECK_NAMES, check_portrait, load_image, params

FACES = (Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "faces").resolve()


@functools.cache
def report(path: str):
    return check_portrait(load_image(path))


def files(pattern: str) -> list[str]:
    return sorted(str(p) for p in FACES.glob(pattern))


def ids(paths: list[str]) -> list[str]:
    return [str(Path(p).relative_to(FACES)) for p in paths]


LONDON_NEUTRAL = files("LONDON_FRL/*/1_neutral.jpg")
YALE_CLOSED = files("YALE/*/09_sleepy.png") + files("YALE/*/11_wink.png")
YALE_SIDE_LIGHT = files("YALE/*/04_leftlight.png") + files("YALE/*/07_rightlight.png")
YALE_NORMAL = files("YALE/*/06_normal.png")


@pytest.fixture(autouse=True)
def _needs_data(shared):
    """Every test here reads ../shared (skipped where it is absent)."""


@pytest.mark.parametrize("path", LONDON_NEUTRAL, ids=ids(LONDON_NEUTRAL))
def test_london_neutral_portraits_pass_every_check(path):
    r = report(path)
    assert [c.name for c in r.checks] == list(CHECK_NAMES)
    assert r.passed, [(c.name, c.value, c.threshold) for c in r.failed]
    assert r.faces == 1
    assert r.check("eye_distance").value >= 90


def test_london_set_is_complete():
    assert len(LONDON_NEUTRAL) == 12 and len(YALE_CLOSED) == 30 and len(YALE_SIDE_LIGHT) == 30


@pytest.mark.parametrize("path", files("NONCOMPLIANT/multiple_faces/*"), ids=ids(files("NONCOMPLIANT/multiple_faces/*")))
def test_several_faces_fail_one_face(path):
    r = report(path)
    assert not r.passed
    c = r.check("one_face")
    assert c.status == "fail" and c.value >= 2
    assert "one person" in c.reason_en and "một người" in c.reason_vi


@pytest.mark.parametrize("path", files("NONCOMPLIANT/partial_face/*"), ids=ids(files("NONCOMPLIANT/partial_face/*")))
def test_partial_face_fails_face_visible(path):
    r = report(path)
    c = r.check("face_visible")
    assert c.status == "fail" and c.value < 0.98
    assert r.check("head_in_frame").status == "fail"


@pytest.mark.parametrize("path", files("NONCOMPLIANT/profile/*"), ids=ids(files("NONCOMPLIANT/profile/*")))
def test_profile_fails_on_yaw(path):
    c = report(path).check("yaw")
    assert c.status == "fail" and abs(c.value) > 30


def test_roll_of_40_degrees():
    path = files("NONCOMPLIANT/rotated_roll40/*_40deg.jpg")[0]
    r = report(path)
    # the picture holds the original and the rotated copy side by side
    assert r.check("one_face").status == "fail"
    rolls = sorted(abs(f.roll) for f in [r.face, *r.other_faces])
    assert rolls[0] < 5 and 35 < rolls[-1] < 45
    # the rotated face on its own fails on roll, and only its pose is wrong
    img = load_image(path)
    rotated = check_portrait(img[:, img.shape[1] // 2:])
    assert rotated.check("one_face").passed
    assert rotated.check("roll").status == "fail" and 35 < abs(rotated.check("roll").value) < 45
    assert rotated.check("yaw").passed and rotated.check("eyes_open").passed
    original = report(files("NONCOMPLIANT/rotated_roll40/*_original.jpg")[0])
    assert original.check("roll").passed and abs(original.check("roll").value) < 3


@pytest.mark.parametrize("path", YALE_CLOSED, ids=ids(YALE_CLOSED))
def test_yale_sleepy_and_wink_fail_on_eyes(path):
    c = report(path).check("eyes_open")
    assert c.status == "fail", (c.value, c.threshold)
    assert "Eyes" in c.reason_en and "Mắt" in c.reason_vi


@pytest.mark.parametrize("path", YALE_SIDE_LIGHT, ids=ids(YALE_SIDE_LIGHT))
def test_yale_side_light_fails_on_lighting(path):
    c = report(path).check("lighting")
    assert c.status == "fail" and c.value < params.MIN_LIGHT_BALANCE


@pytest.mark.parametrize("path", YALE_NORMAL, ids=ids(YALE_NORMAL))
def test_yale_normal_has_open_eyes_and_even_light(path):
    r = report(path)
    assert r.check("eyes_open").passed and r.check("lighting").passed
    # YALE faces are small: the ISO size check must say so
    assert r.check("eye_distance").status == "fail" and r.check("eye_distance").value < 90


def test_open_mouth_fails_mouth_closed():
    for person in ("002", "025"):
        c = report(files(f"LONDON_FRL/{person}/2_smiling.jpg")[0]).check("mouth_closed")
        assert c.status == "fail" and c.value > params.MAX_MOUTH_OPENING


def test_exif_orientation_is_applied_first():
    path = files("NONCOMPLIANT/exif_orientation/*")[0]
    raw = cv2.imread(path, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    img = load_image(path)
    assert img.shape[:2] == raw.shape[1::-1]  # stored sideways, loaded upright
    r = report(path)
    assert r.faces == 1 and r.check("roll").passed and abs(r.check("roll").value) < 5
    assert r.check("eyes_open").passed and r.check("yaw").passed
    sideways = check_portrait(raw)
    assert not sideways.passed


# --- measured degradations of a compliant portrait ------------------------------------------------
def test_blur_fails_sharpness():
    img = load_image(LONDON_NEUTRAL[0])
    blurred = cv2.GaussianBlur(img, (0, 0), 6)
    c = check_portrait(blurred).check("sharpness")
    assert c.status == "fail" and c.value < report(LONDON_NEUTRAL[0]).check("sharpness").value / 10


def test_dark_image_fails_exposure():
    img = load_image(LONDON_NEUTRAL[1])
    dark = (img.astype(np.float32) * 0.2).astype(np.uint8)
    r = check_portrait(dark)
    assert r.check("exposure").status == "fail"
    assert r.check("background").status == "fail"


def test_small_face_fails_eye_distance():
    img = load_image(LONDON_NEUTRAL[2])
    small = cv2.resize(img, None, fx=0.35, fy=0.35, interpolation=cv2.INTER_AREA)
    c = check_portrait(small).check("eye_distance")
    assert c.status == "fail" and 50 < c.value < 90


def test_off_centre_head_fails_position():
    img = load_image(LONDON_NEUTRAL[3])
    w = img.shape[1]
    shifted = np.full_like(img, 255)
    shifted[:, : w - 400] = img[:, 400:]
    r = check_portrait(shifted)
    assert r.check("head_centred").status == "fail" and r.check("head_centred").value < 0.35


# --- bad input: a clear result, never a crash -----------------------------------------------------
def test_no_face_gives_a_failed_report_with_skipped_checks():
    rng = np.random.default_rng(1)
    for img in (np.full((480, 640, 3), 128, np.uint8), rng.integers(0, 256, (480, 640, 3), dtype=np.uint8),
                np.zeros((480, 640), np.uint8)):
        r = check_portrait(img)
        assert not r.passed and r.faces == 0
        assert r.check("one_face").status == "fail" and r.check("one_face").value == 0
        assert all(c.status == "skipped" for c in r.checks[1:])
        json.dumps(r.to_dict())


def test_corrupt_and_truncated_jpeg_are_image_errors(tmp_path):
    data = Path(LONDON_NEUTRAL[0]).read_bytes()
    with pytest.raises(ImageError, match="corrupt|truncated"):
        load_image(data[: len(data) // 3])
    with pytest.raises(ImageError):
        load_image(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4)
    with pytest.raises(ImageError, match="empty"):
        load_image(b"")
    with pytest.raises(ImageError, match="cannot read"):
        load_image(tmp_path / "missing.jpg")


def test_huge_image_is_refused_before_decoding():
    from PIL import Image

    buf = io.BytesIO()
    Image.new("1", (10_000, 6_000)).save(buf, "PNG")  # 60 MP, a few kB compressed
    with pytest.raises(ImageError, match="MP"):
        load_image(buf.getvalue())
    with pytest.raises(ImageError):
        check_portrait(np.zeros((10_000, 6_000), np.uint8))


def test_bad_arrays_are_image_errors():
    for bad in (np.zeros((480, 640, 3), np.float32), np.zeros((10, 10, 3), np.uint8), np.zeros((4, 5, 6, 7), np.uint8),
                "not an array"):
        with pytest.raises(ImageError):
            check_portrait(bad)  # type: ignore[arg-type]


def test_grey_and_16_bit_images_are_read(tmp_path):
    from PIL import Image

    grey = load_image(files("YALE/subject01/06_normal.png")[0])
    assert grey.shape[2] == 3 and np.array_equal(grey[..., 0], grey[..., 2])
    arr16 = (np.asarray(Image.open(files("ORL/s01/01.pgm")[0]), np.uint16) * 256)
    p = tmp_path / "grey16.png"
    Image.fromarray(arr16).save(p)
    img = load_image(p)
    assert img.dtype == np.uint8 and img.max() > 200


# --- the report itself ------------------------------------------------------------------------------
def test_every_check_has_value_threshold_and_both_languages():
    r = report(LONDON_NEUTRAL[0])
    bad = report(YALE_CLOSED[0])
    for c in r.checks + bad.checks:
        assert c.reason_en and c.reason_vi and c.reason_en != c.reason_vi
        assert c.threshold and c.unit
        assert c.value is not None
    assert r.check("eyes_open").reason_en != bad.check("eyes_open").reason_en
    d = json.loads(json.dumps(r.to_dict(), ensure_ascii=False))
    assert d["passed"] is True and d["failed"] == [] and len(d["checks"]) == len(CHECK_NAMES)
