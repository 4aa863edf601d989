"""ISO 19794-5 token image: geometry, JPEG and JPEG 2000 for DG2."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from biostation.errors import FaceError
from biostation.face import check_portrait, encode_jpeg, encode_jpeg2000, load_image, token_image


@pytest.fixture(scope="module")
def london():
    from pathlib import Path

    p = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "faces" / "LONDON_FRL" / "002" / "1_neutral.jpg"
    if not p.is_file():
        pytest.skip("../shared data set not present")
    img = load_image(p)
    return img, check_portrait(img)


def _eyes_after(token):
    r = check_portrait(token)
    assert r.face is not None
    return np.array(r.face.right_eye), np.array(r.face.left_eye), r


def test_token_geometry_puts_the_eyes_where_iso_says(london):
    img, r = london
    tok = token_image(img, r.face.right_eye, r.face.left_eye, width=480)
    assert tok.shape == (640, 480, 3)
    re, le, r2 = _eyes_after(tok)
    # ISO/IEC 19794-5 §8.4: eyes at (0.375 W, 0.6 W) and (0.625 W, 0.6 W)
    assert np.allclose(re, (180, 288), atol=4) and np.allclose(le, (300, 288), atol=4)
    assert r2.check("eye_distance").passed and r2.check("one_face").passed


def test_token_levels_a_tilted_head(london):
    img, _ = london
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), 15, 1.0)
    tilted = cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REPLICATE)
    r = check_portrait(tilted)
    assert r.check("roll").status == "fail"
    tok = token_image(tilted, r.face.right_eye, r.face.left_eye, width=360)
    re, le, r2 = _eyes_after(tok)
    assert abs(re[1] - le[1]) < 4 and r2.check("roll").passed


def test_jpeg_and_jpeg2000_encodings_decode_to_the_token(london):
    img, r = london
    tok = token_image(img, r.face.right_eye, r.face.left_eye)
    jpg = encode_jpeg(tok)
    assert jpg[:2] == b"\xff\xd8"
    back = np.asarray(Image.open(io.BytesIO(jpg)).convert("RGB"))[:, :, ::-1]
    assert back.shape == tok.shape and np.abs(back.astype(int) - tok).mean() < 6
    j2k = encode_jpeg2000(tok, max_bytes=20_000)
    assert len(j2k) <= 20_000
    im2 = Image.open(io.BytesIO(j2k))
    assert im2.format == "JPEG2000" and im2.size == (480, 640)
    back2 = np.asarray(im2.convert("RGB"))[:, :, ::-1]
    assert np.abs(back2.astype(int) - tok).mean() < 12
    # the decoded DG2 portrait still passes the checks that do not depend on the frame
    r2 = check_portrait(back2)
    assert r2.check("eyes_open").passed and r2.check("one_face").passed


def test_smaller_budget_gives_a_smaller_file(london):
    img, r = london
    tok = token_image(img, r.face.right_eye, r.face.left_eye)
    assert len(encode_jpeg2000(tok, max_bytes=8_000)) <= 8_000 < len(encode_jpeg2000(tok, max_bytes=40_000))


def test_bad_token_requests_are_errors(london):
    img, r = london
    with pytest.raises(FaceError):
        token_image(img, r.face.right_eye, r.face.left_eye, width=200)
    with pytest.raises(FaceError):
        token_image(img, (100, 100), (101, 100))
