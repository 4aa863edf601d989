"""1:1 verification: the dlib embedder on real faces, and the swappable Embedder interface."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from biostation.errors import FaceError
from biostation.face import Embedder, Verifier, default_verifier, load_image
from biostation.face.detect import Detection
from biostation.face.verify import DLIB_THRESHOLD

FACES = (Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "faces").resolve()


@pytest.fixture(scope="module")
def embeddings():
    if not FACES.is_dir():
        pytest.skip("../shared data set not present")
    v = default_verifier()
    out = {}
    for person in ("001", "002", "004", "005"):
        for shot in ("1_neutral", "2_smiling"):
            out[person, shot] = v.embed(load_image(FACES / "LONDON_FRL" / person / f"{shot}.jpg"))
    return v, out


def test_same_person_neutral_vs_smiling_matches(embeddings):
    v, e = embeddings
    for person in ("001", "002", "004", "005"):
        r = v.compare(e[person, "1_neutral"], e[person, "2_smiling"])
        assert r.match and r.distance < DLIB_THRESHOLD, (person, r)


def test_different_people_do_not_match(embeddings):
    v, e = embeddings
    people = ("001", "002", "004", "005")
    for i, a in enumerate(people):
        for b in people[i + 1:]:
            r = v.compare(e[a, "1_neutral"], e[b, "1_neutral"])
            assert not r.match and r.distance > DLIB_THRESHOLD, (a, b, r)


def test_embedding_is_128_d_and_deterministic(embeddings):
    v, e = embeddings
    x = e["001", "1_neutral"]
    assert x.shape == (128,) and x.dtype == np.float32 and np.isfinite(x).all() and np.linalg.norm(x) > 0.1
    again = v.embed(load_image(FACES / "LONDON_FRL" / "001" / "1_neutral.jpg"))
    assert np.allclose(again, x, atol=1e-5)


def test_verify_images_end_to_end_and_result_dict():
    if not FACES.is_dir():
        pytest.skip("../shared data set not present")
    v = default_verifier()
    a = load_image(FACES / "ORL" / "s01" / "01.pgm")
    b = load_image(FACES / "ORL" / "s01" / "02.pgm")
    r = v.verify(a, b)
    assert r.match
    d = r.to_dict()
    assert set(d) == {"distance", "threshold", "match", "model"} and d["model"] == "dlib-resnet-v1+flip"


def test_no_face_is_a_face_error():
    with pytest.raises(FaceError, match="no face"):
        default_verifier().embed(np.full((200, 200, 3), 127, np.uint8))


class MeanColourEmbedder:
    """A stand-in model: proves the verifier only talks to the Embedder protocol."""

    name = "mean-colour"
    threshold = 10.0

    def __init__(self) -> None:
        self.faces: list[Detection] = []

    def embed(self, image: np.ndarray, face: Detection) -> np.ndarray:
        self.faces.append(face)
        x0, y0, x1, y1 = (int(max(0, v)) for v in face.box)
        return image[y0:y1, x0:x1].reshape(-1, 3).mean(0).astype(np.float32)

    def distance(self, a: np.ndarray, b: np.ndarray) -> float:
        return float(np.abs(a - b).max())


def test_embedder_can_be_swapped():
    if not FACES.is_dir():
        pytest.skip("../shared data set not present")
    emb = MeanColourEmbedder()
    assert isinstance(emb, Embedder)
    v = Verifier(embedder=emb)
    img = load_image(FACES / "LONDON_FRL" / "001" / "1_neutral.jpg")
    r = v.verify(img, img)
    assert r.match and r.distance == 0.0 and r.model == "mean-colour" and len(emb.faces) == 2
    r2 = v.verify(img, (img // 3).astype(np.uint8))
    assert not r2.match


def test_shipped_descriptor_averages_the_mirror_image():
    if not FACES.is_dir():
        pytest.skip("../shared data set not present")
    from biostation.face.verify import DlibResNetEmbedder

    v = default_verifier()
    plain = DlibResNetEmbedder(flip=False)
    assert v.embedder.name == "dlib-resnet-v1+flip" and plain.name == "dlib-resnet-v1"
    img = load_image(FACES / "LONDON_FRL" / "004" / "1_neutral.jpg")
    face = v.main_face(img)
    mirrored = np.ascontiguousarray(img[:, ::-1])
    mface = v.main_face(mirrored)
    both = v.embedder.embed(img, face)
    # a photo and its mirror image differ for the plain model; averaged with the mirror, what is
    # left is the detector's and aligner's noise
    d_flip = np.linalg.norm(both - v.embedder.embed(mirrored, mface))
    d_plain = np.linalg.norm(plain.embed(img, face) - plain.embed(mirrored, mface))
    assert d_flip < 0.1 and d_flip < 0.7 * d_plain, (d_flip, d_plain)
    assert 0.0 < np.linalg.norm(both - plain.embed(img, face)) < 0.2
