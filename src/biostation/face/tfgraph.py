"""Just enough of the protobuf wire format to drop nodes from a frozen TensorFlow ``GraphDef``.

OpenCV's TensorFlow importer rejects some graph tails that older OpenCV releases accepted (the
FaceNet graph's L2-normalisation subgraph trips its subgraph simplifier). Cutting those nodes
away in memory, and doing the same arithmetic in numpy, keeps the packaged file untouched: it
is still checked against its published sha256 before it is cut.

``GraphDef`` field 1 is the repeated ``NodeDef``; ``NodeDef`` field 1 is its name (tensorflow
``graph.proto`` / ``node_def.proto``). Every other field is copied byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from ..errors import FaceError


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(buf):
            raise FaceError("truncated protobuf varint in the model graph")
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def _fields(buf: bytes) -> Iterator[tuple[int, int, int, bytes]]:
    """(field number, wire type, start offset, payload) of each top-level field."""
    i = 0
    while i < len(buf):
        start = i
        key, i = _varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            _, i = _varint(buf, i)
            payload = b""
        elif wire == 2:
            n, i = _varint(buf, i)
            payload = buf[i:i + n]
            i += n
        elif wire == 5:
            payload, i = buf[i:i + 4], i + 4
        elif wire == 1:
            payload, i = buf[i:i + 8], i + 8
        else:
            raise FaceError(f"unsupported protobuf wire type {wire} in the model graph")
        if i > len(buf):
            raise FaceError("truncated protobuf field in the model graph")
        yield field, wire, start, payload


def node_names(graph: bytes) -> list[str]:
    """Names of the nodes of a serialised ``GraphDef``, in order."""
    return [_name(payload) for field, wire, _, payload in _fields(graph) if field == 1 and wire == 2]


def _name(node: bytes) -> str:
    for field, wire, _, payload in _fields(node):
        if field == 1 and wire == 2:
            return payload.decode("utf-8")
    return ""


def drop_nodes(graph: bytes, drop: Callable[[str], bool]) -> bytes:
    """The ``GraphDef`` without the nodes whose name ``drop`` accepts."""
    out = bytearray()
    offsets = [start for _, _, start, _ in _fields(graph)] + [len(graph)]
    for (field, wire, _, payload), start, end in zip(_fields(graph), offsets, offsets[1:]):
        if field == 1 and wire == 2 and drop(_name(payload)):
            continue
        out += graph[start:end]
    return bytes(out)
