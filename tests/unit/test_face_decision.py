"""Desk decisions: live portrait against a DG2 chip photo, at named operating points, with the
quality notes that explain a reject."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest

from biostation.errors import FaceError, ImageError
from biostation.face import default_verifier, encode_jpeg2000, load_image, params, token_image
from biostation.face.checks import check_portrait
from biostation.face.token import encode_jpeg, encode_jpeg_fit
from biostation.face.verify import (
    COMPARISON_CHECKS,
    DLIB_THRESHOLD,
    MATCH,
    NO_MATCH,
    RETAKE,
    Verifier,
    operating_point,
    operating_point_of,
    operating_points,
    verify_portrait,
)

FACES = (Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "faces").resolve()


def test_operating_points_are_named_ordered_and_carry_their_population():
    for model, points in params.OPERATING_POINTS.items():
        ops = operating_points(model)
        assert set(ops) == set(points) and params.DEFAULT_OPERATING_POINT in ops
        for name, op in ops.items():
            assert op.fmr == params.OPERATING_POINT_FMR[name] and op.population == params.OPERATING_POINTS_POPULATION
        # a lower false match rate needs a stricter (smaller) distance threshold
        assert ops["fmr-0.01%"].threshold < ops["fmr-0.1%"].threshold
    assert DLIB_THRESHOLD == operating_point("dlib-resnet-v1+flip").threshold == default_verifier().embedder.threshold
    with pytest.raises(FaceError, match="no operating point"):
        operating_point("dlib-resnet-v1", "fmr-1e-9")
    with pytest.raises(FaceError, match="no operating point"):
        operating_point("some-other-model")


def test_an_embedder_without_measured_points_decides_at_its_own_threshold():
    class Stub:
        name, threshold = "stub", 3.0

    op = operating_point_of(Stub())
    assert op.name == "configured" and op.threshold == 3.0 and op.population == "not measured" and op.fmr is None
    import json

    assert json.loads(json.dumps(op.to_dict()))["target_fmr"] is None
    with pytest.raises(FaceError):
        operating_point_of(Stub(), "fmr-0.1%")


def test_jpeg_fit_takes_the_best_quality_that_fits():
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.integers(0, 255, (640, 480, 3), dtype=np.uint8), (0, 0), 2)
    data = encode_jpeg_fit(img, max_bytes=20_000)
    assert len(data) <= 20_000 and data[:2] == b"\xff\xd8"
    sizes = {q: len(encode_jpeg(img, q)) for q in range(30, 96)}
    best = max(q for q, n in sizes.items() if n <= 20_000)
    assert len(data) == sizes[best]


def _chip(path: Path) -> np.ndarray:
    """A DG2 photo as personalization writes it (token, JPEG 2000 in 15 kB) and the desk reads it."""
    from PIL import Image

    image = load_image(path)
    face = check_portrait(image).face
    data = encode_jpeg2000(token_image(image, face.right_eye, face.left_eye), max_bytes=15_000)
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))[:, :, ::-1].copy()


@pytest.fixture(scope="module")
def london():
    if not FACES.is_dir():
        pytest.skip("../shared data set not present")
    people = FACES / "LONDON_FRL"
    return {p: (_chip(people / p / "1_neutral.jpg"), load_image(people / p / "2_smiling.jpg")) for p in ("002", "004")}


def test_same_person_matches_the_chip_and_the_decision_records_its_operating_point(london):
    chip, live = london["002"]
    small = cv2.resize(live, (640, 640), interpolation=cv2.INTER_AREA)  # a desk camera frame
    for name in ("fmr-0.1%", "fmr-0.01%"):
        d = verify_portrait(small, chip, operating_point=name)
        assert d.decision == MATCH and d.match and d.distance < d.operating_point.threshold
        out = d.to_dict()
        assert out["operating_point"]["name"] == name and out["model"] == "dlib-resnet-v1+flip"
        assert out["operating_point"]["threshold"] == params.OPERATING_POINTS["dlib-resnet-v1+flip"][name]
        assert out["operating_point"]["population"] == params.OPERATING_POINTS_POPULATION
        assert out["quality"] == []


def test_another_person_is_a_plain_no_match(london):
    d = verify_portrait(london["004"][1], london["002"][0])
    assert d.decision == NO_MATCH and not d.match and d.quality == []
    assert d.distance > d.operating_point.threshold


def test_a_reject_on_a_blurred_live_portrait_says_retake_and_why(london):
    live = cv2.GaussianBlur(london["004"][1], (0, 0), 9)  # someone else, and out of focus
    d = verify_portrait(live, london["002"][0])
    names = [c["check"] for c in d.to_dict()["quality"]]
    assert d.decision == RETAKE and not d.match and "sharpness" in names
    assert all(n in COMPARISON_CHECKS for n in names)
    assert all(c["reason_en"] and c["reason_vi"] for c in d.to_dict()["quality"])


def test_no_face_live_is_retake_and_no_face_chip_is_an_error(london):
    grey = np.full((480, 640, 3), 127, np.uint8)
    d = verify_portrait(grey, london["002"][0])
    assert d.decision == RETAKE and d.distance is None and d.quality[0].name == "one_face"
    with pytest.raises(FaceError, match="chip photo"):
        verify_portrait(london["002"][1], grey)


def test_unknown_operating_point_is_refused(london):
    with pytest.raises(FaceError, match="no operating point"):
        verify_portrait(london["002"][1], london["002"][0], operating_point="fmr-50%")


def test_chip_photo_may_come_as_dg2_bytes(london):
    if not FACES.is_dir():
        pytest.skip("../shared data set not present")
    image = load_image(FACES / "LONDON_FRL" / "002" / "1_neutral.jpg")
    face = check_portrait(image).face
    dg2 = encode_jpeg2000(token_image(image, face.right_eye, face.left_eye), max_bytes=15_000)
    assert verify_portrait(london["002"][1], dg2).match
    with pytest.raises(ImageError):
        verify_portrait(london["002"][1], b"not an image")


def test_decisions_use_the_given_verifier(london):
    v = Verifier(embedder=default_verifier().embedder, analyzer=default_verifier().analyzer)
    assert verify_portrait(london["002"][1], london["002"][0], verifier=v).match
