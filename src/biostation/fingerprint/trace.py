"""Stage tracing: a context-local sink that sees every stage's output, off and free by default.

Each stage of the extractor calls :func:`emit` with a fixed key (``"segmentation"``,
``"orientation"``, ``"skeleton"``, ``"minutiae"``, ...). Nothing is recorded unless a sink is
installed for the current context (thread or asyncio task) with :func:`tracing`; without one,
:func:`emit` is a context-variable read and a comparison, and the stages build nothing extra
for it (the values passed are the arrays the pipeline computes anyway, not copies).

Traced values are biometric data (images, skeletons, minutiae): use tracing to debug on your
own machine, never to log in production.

Example::

    from biostation.fingerprint import extract, tracing, TraceRecorder

    with tracing(TraceRecorder()) as rec:
        template = extract(image)
    rec["skeleton"]  # the thinned ridges, a uint8 array at 500 dpi
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

#: a sink is any callable taking (key, value)
Sink = Callable[[str, Any], None]

_SINK: ContextVar[Sink | None] = ContextVar("biostation_fingerprint_trace", default=None)

#: the keys the extractor emits, in pipeline order
KEYS = ("input", "normalized", "orientation", "coherence", "segmentation", "period", "enhanced",
        "reliability",
        "binarized", "skeleton", "candidates", "minutiae")


def emit(key: str, value: Any) -> None:
    """Hand ``value`` to the current sink, if any. Cheap when tracing is off."""
    sink = _SINK.get()
    if sink is not None:
        sink(key, value)


def active() -> bool:
    """True when a sink is installed (stages may skip building trace-only values otherwise)."""
    return _SINK.get() is not None


@contextmanager
def tracing(sink: Sink) -> Iterator[Sink]:
    """Install ``sink`` for the current context for the duration of the ``with`` block."""
    token = _SINK.set(sink)
    try:
        yield sink
    finally:
        _SINK.reset(token)


class TraceRecorder(dict):
    """A sink that keeps the last value emitted under each key (``rec[key]``)."""

    def __call__(self, key: str, value: Any) -> None:
        self[key] = value
