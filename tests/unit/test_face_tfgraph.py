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
