"""Input checks and resampling: any caller's array or file becomes a grey image at 500 dpi.

Bad input raises :class:`~biostation.errors.ImageError` with a message that says what is wrong;
sizes are checked before anything large is allocated or decoded.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import ImageError
from . import params as P


def check_size(width: int, height: int) -> None:
    """Refuse sizes the extractor cannot use (before any pixel is touched)."""
    if width <= 0 or height <= 0:
        raise ImageError(f"empty image ({width} x {height} pixels)")
    if width > P.MAX_SIDE or height > P.MAX_SIDE or width * height > P.MAX_PIXELS:
        raise ImageError(f"image too large: {width} x {height} pixels (at most {P.MAX_SIDE} a side "
                         f"and {P.MAX_PIXELS} pixels)")
    if min(width, height) < P.MIN_SIDE:
        raise ImageError(f"image too small: {width} x {height} pixels (at least {P.MIN_SIDE} a side)")


def check_dpi(dpi: float) -> float:
    try:
        dpi = float(dpi)
    except (TypeError, ValueError):
        raise ImageError(f"resolution must be a number, got {dpi!r}") from None
    if not (P.MIN_DPI <= dpi <= P.MAX_DPI):
        raise ImageError(f"resolution {dpi} dpi outside {P.MIN_DPI:g}..{P.MAX_DPI:g}")
    return dpi


def as_gray(image: object) -> np.ndarray:
    """A 2-D uint8 grey image from a numpy array (grey, RGB/RGBA, bool, uint16 or float).

    Floats are taken as 0..1 when their range fits in it, else as 0..255 grey levels.
    """
    if not isinstance(image, np.ndarray):
        raise ImageError(f"expected a numpy array, got {type(image).__name__}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise ImageError(f"expected a 2-D grey or 3-channel colour image, got shape {image.shape}")
    check_size(int(image.shape[1]), int(image.shape[0]))
    if image.dtype == np.bool_:
        image = image.astype(np.uint8) * 255
    elif image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype.kind == "f":
        if not np.isfinite(image).all():
            raise ImageError("image contains NaN or infinite values")
        hi = float(image.max()) if image.size else 0.0
        scale = 255.0 if hi <= 1.0 and float(image.min()) >= 0.0 else 1.0
        image = np.clip(image * scale, 0, 255).astype(np.uint8)
    elif image.dtype.kind in "iu" and image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise ImageError(f"unsupported pixel type {image.dtype}")
    if image.ndim == 3:
        code = cv2.COLOR_RGB2GRAY if image.shape[2] == 3 else cv2.COLOR_RGBA2GRAY
        image = cv2.cvtColor(np.ascontiguousarray(image), code)
    return np.ascontiguousarray(image)


def to_work_resolution(image: np.ndarray, dpi: float) -> tuple[np.ndarray, float]:
    """Resample a grey image to :data:`~.params.WORK_DPI`; returns it and the scale used.

    ``scale`` = work pixels per input pixel (1.0 when the resolution is already close enough).
    """
    scale = P.WORK_DPI / dpi
    if abs(scale - 1.0) <= P.DPI_TOLERANCE:
        return image, 1.0
    h, w = image.shape
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    out = cv2.resize(image, size, interpolation=interp)
    return out, size[0] / w


def read_image(path: str | Path) -> np.ndarray:
    """Decode an image file into a uint8 grey array.

    The header is read first and the size checked, so a huge or malformed file is refused
    before its pixels are decoded; truncated files raise :class:`ImageError` too.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            check_size(*im.size)
            im.load()
            if im.mode not in ("L", "I;16", "I;16B", "I;16L", "1"):
                im = im.convert("L")
            arr = np.asarray(im)
    except ImageError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise ImageError(f"{path}: not a readable image ({exc})") from None
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImageError(f"{path}: cannot decode image ({exc})") from None
    if arr.dtype != np.uint8 and arr.dtype != np.bool_:
        arr = (arr.astype(np.uint32) >> 8).astype(np.uint8)
    return as_gray(arr)
