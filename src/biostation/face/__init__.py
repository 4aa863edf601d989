"""Portrait capture: face detection, ICAO / ISO 19794-5 checks with reasons, token image, 1:1.

Pure functions of images (BGR uint8 arrays); no device and no daemon here. Start with
:func:`check_portrait` (every check with its value, threshold and reason in Vietnamese and
English), :func:`token_image` + :func:`encode_jpeg2000` for DG2, :class:`Verifier` for
face-to-face comparison and :func:`verify_portrait` for the desk decision (live portrait against
the chip photo, at a named operating point, with quality notes), :func:`draw_overlay` for the
operator's preview. The capture session over a camera is a desk workflow
(:mod:`biostation.station.workflows.portrait`).
"""

from .checks import CHECK_NAMES, Check, FaceMeasures, PortraitReport, check_portrait
from .detect import Detection, FaceAnalyzer, Landmarks, default_analyzer
from .image import load_image
from .overlay import draw_overlay
from .token import encode_jpeg, encode_jpeg2000, token_image
from .verify import (
    Decision,
    DlibResNetEmbedder,
    Embedder,
    FaceNetEmbedder,
    OperatingPoint,
    Verifier,
    VerifyResult,
    default_verifier,
    operating_points,
    verify_portrait,
)

__all__ = [
    "CHECK_NAMES", "Check", "Decision", "Detection", "DlibResNetEmbedder", "Embedder",
    "FaceAnalyzer", "FaceMeasures", "FaceNetEmbedder", "Landmarks", "OperatingPoint", "PortraitReport", "Verifier",
    "VerifyResult", "check_portrait", "default_analyzer", "default_verifier", "draw_overlay",
    "encode_jpeg", "encode_jpeg2000", "load_image", "operating_points", "token_image", "verify_portrait",
]
