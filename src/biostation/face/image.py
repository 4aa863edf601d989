"""Reading portraits: bytes or a path -> BGR uint8 array, EXIF orientation applied first.

Every failure is an :class:`~biostation.errors.ImageError` that says what was wrong (not an
image, truncated, too large, too small); nothing here logs pixel data.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np

from ..errors import ImageError
from . import params


def load_image(source: str | Path | bytes, *, max_pixels: int = params.MAX_PIXELS,
               formats: tuple[str, ...] | None = None) -> np.ndarray:
    """Decode ``source`` (a path or encoded bytes) to an HxWx3 BGR uint8 array.

    The EXIF orientation tag is applied before anything else (a phone photo stored sideways
    comes out upright). Grey and 16-bit images are converted to 8-bit BGR. The pixel count is
    checked from the header, before decoding, against ``max_pixels`` (default 50 MP), so a
    decompression bomb is refused cheaply. ``formats`` (Pillow format names, e.g.
    ``params.UPLOAD_FORMATS``) restricts the decoders tried; None tries every one Pillow has.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if isinstance(source, (str, Path)):
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            raise ImageError(f"cannot read {source}: {exc.strerror or exc}") from exc
        name = Path(source).name
    else:
        data, name = bytes(source), "image"
    if not data:
        raise ImageError(f"{name} is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=list(formats) if formats is not None else None)
            w, h = img.size
            if w * h > max_pixels:
                raise ImageError(f"{name} is {w}x{h} pixels, more than the {max_pixels // 1_000_000} MP accepted")
            if min(w, h) < params.MIN_SIDE:
                raise ImageError(f"{name} is {w}x{h} pixels, too small for a portrait")
            img.load()
            img = ImageOps.exif_transpose(img)
    except ImageError:
        raise
    except UnidentifiedImageError as exc:  # its message names the stream object: not for a reason
        kinds = f"one of {', '.join(formats)}" if formats is not None else "an image format that can be read"
        raise ImageError(f"{name} is not {kinds}") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{name} is not an image that can be read: {exc}") from exc
    except (OSError, SyntaxError, ValueError) as exc:  # truncated / corrupt streams
        raise ImageError(f"{name} is corrupt or truncated: {exc}") from exc
    return pil_to_bgr(img)


def pil_to_bgr(img: object) -> np.ndarray:
    """A Pillow image of any mode -> HxWx3 BGR uint8."""
    from PIL import Image

    assert isinstance(img, Image.Image)
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = arr.max() or 1.0
        img = Image.fromarray((arr * (255.0 / top)).astype(np.uint8))
    if img.mode != "RGB":
        img = img.convert("RGB")
    rgb = np.asarray(img, dtype=np.uint8)
    return np.ascontiguousarray(rgb[:, :, ::-1])


def as_bgr(image: np.ndarray) -> np.ndarray:
    """Check and normalise an in-memory frame: HxW grey or HxWx3 BGR, uint8 -> HxWx3 BGR uint8."""
    if not isinstance(image, np.ndarray):
        raise ImageError(f"expected a numpy array, got {type(image).__name__}")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ImageError(f"expected an HxW or HxWx3 image, got shape {image.shape}")
    if image.shape[2] == 4:
        image = image[:, :, :3]
    if image.dtype != np.uint8:
        raise ImageError(f"expected uint8 pixels, got {image.dtype}")
    h, w = image.shape[:2]
    if min(h, w) < params.MIN_SIDE:
        raise ImageError(f"image is {w}x{h} pixels, too small for a portrait")
    if h * w > params.MAX_PIXELS:
        raise ImageError(f"image is {w}x{h} pixels, more than the {params.MAX_PIXELS // 1_000_000} MP accepted")
    return np.ascontiguousarray(image)
