"""The ISO/IEC 19794-5 token image, and its JPEG / JPEG 2000 encodings for DG2.

Token geometry (ISO/IEC 19794-5:2005 §8.4, Table 9): an image W wide and W / 0.75 high, the eye
centres on one horizontal line 0.6 W from the top, at x = 0.375 W and 0.625 W (0.25 W apart).
The default W = 480 puts 120 px between the eyes, above the 90 px the full-frontal type asks.
"""

from __future__ import annotations

import io

import cv2
import numpy as np

from ..errors import FaceError, ImageError
from .image import as_bgr

TOKEN_WIDTH = 480


def token_image(image: np.ndarray, right_eye: tuple[float, float], left_eye: tuple[float, float],
                width: int = TOKEN_WIDTH) -> np.ndarray:
    """Crop, rotate and scale ``image`` (BGR) to the token geometry; returns a BGR array.

    ``right_eye``/``left_eye`` are the subject's eye centres in pixels (the right eye is on the
    left of the picture). Areas outside the source image are filled by replicating its border.
    """
    image = as_bgr(image)
    if width < 240 or width % 4:
        raise FaceError("token width must be a multiple of 4 and at least 240 px (ISO 19794-5 minimum)")
    re, le = np.asarray(right_eye, np.float64), np.asarray(left_eye, np.float64)
    d = le - re
    dist = float(np.hypot(*d))
    if dist < 4:
        raise FaceError("eye centres too close together to build a token image")
    scale = 0.25 * width / dist
    angle = np.arctan2(d[1], d[0])
    c, s = np.cos(-angle) * scale, np.sin(-angle) * scale
    # similarity transform: rotate the eye line level, scale, move the right eye to its place
    m = np.array([[c, -s, 0.0], [s, c, 0.0]])
    target = np.array([0.375 * width, 0.6 * width])
    m[:, 2] = target - m[:, :2] @ re
    height = int(round(width / 0.75))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return cv2.warpAffine(image, m, (width, height), flags=interp, borderMode=cv2.BORDER_REPLICATE)


def encode_jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    """Baseline JPEG (ISO/IEC 10918) of a BGR image, 4:2:0, no metadata."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(as_bgr(image)[:, :, ::-1])).save(buf, "JPEG", quality=int(quality),
                                                                          optimize=True)
    return buf.getvalue()


def encode_jpeg2000(image: np.ndarray, max_bytes: int = 20_000) -> bytes:
    """JPEG 2000 codestream (``.j2k``-style JP2 file) of a BGR image, at most ``max_bytes``.

    DG2 portraits are usually kept between 12 and 20 kB (ICAO 9303 part 10 leaves the size to
    the issuer). Compression ratios are tried from light to heavy until the file fits.
    """
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(as_bgr(image)[:, :, ::-1]))
    raw = img.width * img.height * 3
    ratio = max(1.0, raw / max_bytes)
    for _ in range(12):
        buf = io.BytesIO()
        img.save(buf, "JPEG2000", quality_mode="rates", quality_layers=[ratio], irreversible=True)
        data = buf.getvalue()
        if len(data) <= max_bytes:
            return data
        ratio *= 1.25
    raise ImageError(f"cannot encode the portrait in {max_bytes} bytes of JPEG 2000")


def encode_jpeg_fit(image: np.ndarray, max_bytes: int = 20_000, min_quality: int = 10) -> bytes:
    """Baseline JPEG of a BGR image at the highest quality (95 down to ``min_quality``) that fits
    ``max_bytes``, as a DG2 portrait kept within the issuer's size budget."""
    lo, hi, best = min_quality, 95, None
    while lo <= hi:  # binary search over the quality: size grows with it
        q = (lo + hi) // 2
        data = encode_jpeg(image, q)
        if len(data) <= max_bytes:
            best, lo = data, q + 1
        else:
            hi = q - 1
    if best is None:
        raise ImageError(f"cannot encode the portrait in {max_bytes} bytes of JPEG")
    return best
