"""WSQ grey-scale fingerprint compression, through the PyPI ``wsq`` package (NIST's NBIS coder).

The ``wsq`` package registers a WSQ plugin with Pillow around NBIS's own encoder and decoder
(NBIS 5.0.0 sources, unchanged). This module is the one place biostation touches it: it turns
arrays into WSQ bytes and back, reads the frame header and the NISTCOM comment without decoding,
and maps every failure to :class:`~biostation.errors.RecordImageError`.

Bit rate. NIST's guidance for 500 ppi fingerprints is a target of 0.75 bit per pixel, about 15:1
(the FBI's WSQ specification, IAFIS-IC-0110, and NIST's WSQ certification); the ``wsq`` build
encodes at exactly that target and exposes no other, so :data:`BITRATE` is a fact of the
library, not a setting. The bit rate reached on a given image is usually below the target
(blank background compresses well); ``benchmarks/bench_wsq.py`` prints the ratios reached on
FVC2002 and the matcher's accuracy before and after compression.

Resolution. WSQ's frame header carries no resolution; the NISTCOM comment does (``PPI``). The
encoder writes ``PPI 500`` whatever the image; :func:`encode` rewrites that line with the
resolution it is given, so a 569 or 1000 ppi image says so.

Cost: tens of milliseconds to encode or decode a 500 ppi single-finger image on one core, a few
tenths of a second for a slap. Thread-safe as far as NBIS is (no shared state in the calls used).
On malformed input NBIS prints a diagnostic to stderr before the error is raised here.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np

from ..errors import RecordImageError

__all__ = ["BITRATE", "WsqInfo", "encode", "decode", "info", "is_wsq"]

#: target bit rate of the encoder, bits per pixel (NIST's guidance for 500 ppi; fixed by the ``wsq`` build)
BITRATE = 0.75

_SOI, _EOI, _SOF, _SOB, _COM = 0xFFA0, 0xFFA1, 0xFFA2, 0xFFA3, 0xFFA8
_TABLES = (0xFFA4, 0xFFA5, 0xFFA6)  # DTT, DQT, DHT
#: smallest and largest side the encoder is given, pixels
MIN_SIDE, MAX_SIDE = 16, 16384


def _pillow():
    """Pillow with the WSQ plugin registered (imported on first use: it loads a C extension)."""
    import wsq  # noqa: F401  (registers the "WSQ" format with Pillow)
    from PIL import Image

    return Image


@dataclass(frozen=True)
class WsqInfo:
    """What a WSQ stream says about itself, read without decoding.

    ``width``/``height`` in pixels (frame header); ``ppi`` from the NISTCOM comment (None when
    absent or not a number); ``nistcom``: the NISTCOM key/value pairs as written;
    ``bitrate``: the ``WSQ_BITRATE`` of the comment (None when absent).
    """

    width: int
    height: int
    ppi: int | None = None
    bitrate: float | None = None
    nistcom: dict[str, str] = field(default_factory=dict)


def is_wsq(data: bytes) -> bool:
    """True when ``data`` starts with the WSQ start-of-image marker (FFA0)."""
    return bytes(data[:2]) == b"\xff\xa0"


def _segments(data: bytes):
    """Yield (marker, offset, payload) up to and including the frame header."""
    if not is_wsq(data):
        raise RecordImageError("not a WSQ image (no FFA0 start-of-image marker)")
    pos = 2
    while True:
        if pos + 4 > len(data):
            raise RecordImageError(f"WSQ image truncated before its frame header (byte {pos})")
        marker = int.from_bytes(data[pos:pos + 2], "big")
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        if marker not in (_SOF, _COM, *_TABLES):
            raise RecordImageError(f"unexpected WSQ marker {marker:04X} at byte {pos}")
        if length < 2 or pos + 2 + length > len(data):
            raise RecordImageError(f"WSQ segment {marker:04X} at byte {pos} overruns the data")
        yield marker, pos, bytes(data[pos + 4:pos + 2 + length])
        if marker == _SOF:
            return
        pos += 2 + length


def _parse_nistcom(text: bytes) -> dict[str, str] | None:
    lines = text.decode("latin-1").replace("\r", "").split("\n")
    if not lines or not lines[0].startswith("NIST_COM"):
        return None
    out = {}
    for line in lines:
        key, _, value = line.partition(" ")
        if key:
            out[key] = value.strip()
    return out


def info(data: bytes) -> WsqInfo:
    """Size and NISTCOM comment of a WSQ stream, without decoding it.

    Raises :class:`RecordImageError` when the markers before the frame header are malformed.
    """
    data = bytes(data)
    com: dict[str, str] = {}
    for marker, _, payload in _segments(data):
        if marker == _COM:
            parsed = _parse_nistcom(payload)
            if parsed is not None:
                com = parsed
        elif marker == _SOF:
            if len(payload) < 6:
                raise RecordImageError("WSQ frame header too short")
            height = int.from_bytes(payload[2:4], "big")
            width = int.from_bytes(payload[4:6], "big")
    ppi = com.get("PPI")
    rate = com.get("WSQ_BITRATE")
    try:
        ppi_v = int(ppi) if ppi is not None else None
    except ValueError:
        ppi_v = None
    try:
        rate_v = float(rate) if rate is not None else None
    except ValueError:
        rate_v = None
    return WsqInfo(width=width, height=height, ppi=ppi_v, bitrate=rate_v, nistcom=com)


def _check_image(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.ndim != 2:
        raise RecordImageError(f"WSQ encodes 2-D grey images, got {getattr(image, 'shape', type(image))}")
    if image.dtype != np.uint8:
        raise RecordImageError(f"WSQ encodes 8-bit grey images, got dtype {image.dtype}")
    h, w = image.shape
    if not (MIN_SIDE <= w <= MAX_SIDE and MIN_SIDE <= h <= MAX_SIDE):
        raise RecordImageError(f"image of {w} x {h} pixels; WSQ sides here are {MIN_SIDE}..{MAX_SIDE}")
    return np.ascontiguousarray(image)


def _with_ppi(data: bytes, ppi: int) -> bytes:
    """Rewrite the PPI line of the NISTCOM comment (the coded image is left as it is)."""
    for marker, pos, payload in _segments(data):
        if marker != _COM:
            continue
        com = _parse_nistcom(payload)
        if com is None or "PPI" not in com:
            continue
        lines = [f"PPI {ppi}" if ln.startswith("PPI ") else ln
                 for ln in payload.decode("latin-1").split("\n")]
        text = "\n".join(lines).encode("latin-1")
        seg = _COM.to_bytes(2, "big") + (len(text) + 2).to_bytes(2, "big") + text
        return data[:pos] + seg + data[pos + 4 + len(payload):]
    return data


def encode(image: np.ndarray, ppi: int = 500) -> bytes:
    """WSQ bytes of an 8-bit grey image (``uint8``, 2-D, rows top-down) at :data:`BITRATE`.

    ``ppi``: the image's resolution in pixels per inch, written to the NISTCOM comment (WSQ
    itself is defined for 500 ppi; NIST also certifies it at 1000 ppi). Raises
    :class:`RecordImageError` for anything else than a uint8 2-D array of 16..16384 pixels a
    side, or when the encoder fails.
    """
    img = _check_image(image)
    if not (1 <= int(ppi) <= 100_000):
        raise RecordImageError(f"resolution {ppi} ppi out of range")
    Image = _pillow()
    buf = io.BytesIO()
    try:
        Image.fromarray(img, mode="L").save(buf, "WSQ")
    except Exception as exc:  # the C coder raises bare Exception("WSQ Error: n")
        raise RecordImageError(f"WSQ encoder failed: {exc}") from exc
    data = buf.getvalue()
    return data if info(data).ppi == int(ppi) else _with_ppi(data, int(ppi))


def decode(data: bytes) -> np.ndarray:
    """Decode WSQ bytes to a ``uint8`` array of shape (height, width).

    Raises :class:`RecordImageError` when ``data`` is not WSQ or the decoder fails.
    """
    data = bytes(data)
    meta = info(data)  # checks the markers before the C decoder sees the bytes
    if not (0 < meta.width <= MAX_SIDE and 0 < meta.height <= MAX_SIDE):
        raise RecordImageError(f"WSQ frame header gives a {meta.width} x {meta.height} image "
                               f"(sides 1..{MAX_SIDE} are decoded)")
    Image = _pillow()
    try:
        with Image.open(io.BytesIO(data), formats=["WSQ"]) as im:
            im.load()
            out = np.asarray(im, dtype=np.uint8).copy()
    except Exception as exc:
        raise RecordImageError(f"WSQ decoder failed: {exc}") from exc
    if out.shape != (meta.height, meta.width):
        raise RecordImageError(f"WSQ decoded to {out.shape[1]} x {out.shape[0]}, header says "
                               f"{meta.width} x {meta.height}")
    return out
