"""The orchestrator: image in, :class:`~biostation.templates.Template` out."""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import ImageError
from ..templates.model import MINUTIA_DTYPE, Template
from . import params as P
from .enhancement import enhance
from .filtering import remove_false
from .frequency import ridge_period
from .image import as_gray, check_dpi, to_work_resolution
from .minutiae import detect
from .normalization import bandpass, normalize
from .orientation import orientation_field
from .reliability import reliability
from .segmentation import segment
from .skeleton import binarize, thin
from .trace import active, emit


def _emit_framed(key: str, value: np.ndarray, box: tuple[slice, slice], shape: tuple[int, int]) -> None:
    """Emit a cropped stage output in the frame of the whole (500 dpi) image."""
    if active():
        full = np.zeros(shape, value.dtype)
        full[box] = value
        emit(key, full)


def extract(image: np.ndarray, dpi: float = 500) -> Template:
    """Minutiae of one fingerprint image.

    ``image``: a 2-D grey array (uint8 preferred; colour, bool, uint16 and float are converted),
    dark ridges on a light background as scanners deliver them (the polarity does not matter
    much: the pipeline works on the band-passed signal). ``dpi``: its resolution in pixels per
    inch (250..2000); the image is resampled to 500 dpi internally and the minutiae are returned
    in the input's pixel coordinates, so the same finger at 569 or 1000 dpi gives the same
    geometry in millimetres.

    Returns a :class:`Template` with ``width``/``height``/``dpi`` of the input and at most
    ``params.MAX_MINUTIAE`` minutiae, best quality kept, in ISO/IEC 19794-2 conventions (angle
    counter-clockwise from +x as seen on the image, ``kind`` 1 ending / 2 bifurcation, quality
    1..100). When no finger can be found (blank, too small a foreground) the template is empty
    and ``reason`` says why.

    Raises :class:`~biostation.errors.ImageError` for input that is not a usable image (wrong
    type or shape, empty, smaller than 32 or larger than 8192 pixels a side, NaN, bad dpi) or
    one larger than about 4 x 4 inches; all checks are made before any large buffer is
    allocated. Noise gives an empty template (``reason`` says so).

    Cost: about 10-20 ms for a 500 dpi image of 300 x 400 pixels on one core, linear in the
    finger's area beyond that (about 0.4 s for a 1500 x 1500 slap); peak memory about 8 MB for
    such an image, about 170 MB for the slap (``benchmarks/bench_extract.py``).
    Thread-safe: no shared mutable state (OpenCV may use its own threads; call
    ``cv2.setNumThreads(1)`` to pin it to one core). Tracing: see :mod:`.trace`.
    """
    dpi = check_dpi(dpi)
    gray = as_gray(image)
    h0, w0 = gray.shape
    emit("input", gray)
    if h0 * w0 * (P.WORK_DPI / dpi) ** 2 > P.MAX_WORK_PIXELS:
        raise ImageError(f"image too large to extract: {w0} x {h0} pixels at {dpi:g} dpi is "
                         f"{w0 / dpi:.1f} x {h0 / dpi:.1f} inches (at most {P.MAX_WORK_PIXELS} pixels at "
                         f"{P.WORK_DPI:g} dpi, about 4 x 4 inches)")
    work, scale = to_work_resolution(gray, dpi)
    template = Template(width=w0, height=h0, dpi=dpi)
    if min(work.shape) < P.MIN_SIDE:
        template.reason = "image too small at 500 dpi"
        return template
    if float(work.std()) < P.MIN_CONTRAST:
        template.reason = "blank image (no contrast)"
        return template

    bp = bandpass(work)
    norm = normalize(bp)
    emit("normalized", norm)
    theta, coherence = orientation_field(bp)
    emit("orientation", theta)
    emit("coherence", coherence)
    mask = segment(bp, coherence)
    emit("segmentation", mask)
    if int(mask.sum()) < P.MIN_FOREGROUND_AREA:
        template.reason = "no fingerprint found (no area of coherent ridges)"
        return template
    if float(np.percentile(coherence[::4, ::4][mask[::4, ::4] > 0], P.FOREGROUND_COHERENCE_PERCENTILE)) \
            < P.MIN_FOREGROUND_COHERENCE:
        template.reason = "no ridge pattern (the image looks like noise)"
        return template
    # the later stages only need the finger's bounding box (plus a margin for the filters)
    bx, by, bw, bh = cv2.boundingRect(mask)
    x0, y0 = max(bx - P.CROP_MARGIN, 0), max(by - P.CROP_MARGIN, 0)
    x1, y1 = min(bx + bw + P.CROP_MARGIN, mask.shape[1]), min(by + bh + P.CROP_MARGIN, mask.shape[0])
    box = (slice(y0, y1), slice(x0, x1))
    bp, norm, theta, coherence, mask = bp[box], norm[box], theta[box], coherence[box], mask[box]

    period_map, period = ridge_period(bp, mask)
    _emit_framed("period", period_map, box, work.shape)
    enhanced = enhance(norm, theta, period)
    _emit_framed("enhanced", enhanced, box, work.shape)
    rel = reliability(norm, enhanced)
    _emit_framed("reliability", rel, box, work.shape)
    ridges = binarize(enhanced, mask)
    _emit_framed("binarized", ridges, box, work.shape)
    skel = thin(ridges)
    _emit_framed("skeleton", skel, box, work.shape)
    dist = cv2.distanceTransform(mask, cv2.DIST_L2, 3)
    cand, graph = detect(skel, theta, coherence, rel, dist, period)
    emit("candidates", cand)
    found = remove_false(cand, graph, coherence, rel, dist, period)
    found.x += np.float32(x0)
    found.y += np.float32(y0)

    if len(found) > P.MAX_MINUTIAE:
        found = found.take(np.sort(np.argsort(-found.quality.astype(np.int32), kind="stable")[: P.MAX_MINUTIAE]))
    m = np.zeros(len(found), MINUTIA_DTYPE)
    # back to input pixels (pixel centres map through the resampling scale)
    x = np.clip(np.rint((found.x + 0.5) / scale - 0.5), 0, w0 - 1)
    y = np.clip(np.rint((found.y + 0.5) / scale - 0.5), 0, h0 - 1)
    m["x"], m["y"] = x, y
    # image coordinates (y down) to ISO (counter-clockwise as seen): negate the angle
    a = np.mod(-found.angle.astype(np.float64), 2 * np.pi).astype(np.float32)
    a[a >= np.float32(2 * np.pi)] = 0.0
    m["angle"] = a
    m["kind"] = found.kind
    m["quality"] = found.quality
    template.minutiae = m
    if len(m) == 0:
        template.reason = "no minutiae found"
    emit("minutiae", m)
    return template.validate()
