"""NFIQ 2 quality score (ISO/IEC 29794-4), from our own features and NIST's random forest.

>>> from biostation.fingerprint import nfiq2
>>> q = nfiq2(image)          # 8-bit grey, ridges dark, 500 ppi (or pass dpi=...)
>>> q.score                   # 0 (worst) .. 100 (best)

The 69 features are computed by :mod:`.nfiq2_features` (vectorized numpy/OpenCV, written for
biostation following NIST's NFIQ 2 definitions); the model is NIST's own (NFIQ 2 model 2.0,
``nist_plain_tir-ink.yaml``, public domain; see ``models/README.md``), evaluated with OpenCV's
``cv2.ml.RTrees`` exactly as NIST does: the score is the forest's vote count, rounded.

Agreement with NIST's reference implementation on FVC2002 B and speed are measured by
``benchmarks/bench_nfiq2.py``. The features other than the minutiae ones reproduce NIST's values
(exactly on nearly all FVC2002 B images); the minutiae features come from our own detector
instead of FingerJet FX, so the score can differ from NIST's by a few points on some images
(with NIST's minutiae features in place of ours, all 319 scores agree within 5).

Cost: the model loads once per process (about 0.2-0.4 s, 21 MB of YAML; thread-safe lazy load);
then about 12-14 ms per 400 x 400 image on one core. Thread-safe. Nothing is logged about the image.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import ConfigError, ImageError
from . import nfiq2_features as feat

MODEL_FILE = "nist_plain_tir-ink.yaml"
MODEL_NODE = "my_random_trees"
#: NIST's FingerJet limits, applied after the white frame is trimmed
MAX_WIDTH, MAX_HEIGHT = 800, 1000
#: below this (after trimming) there is not a single 32 x 32 block of fingerprint to assess
MIN_SIDE = 36

_model_lock = threading.Lock()
_models: dict[Path, Any] = {}


@dataclass(frozen=True)
class NFIQ2Result:
    """One NFIQ 2 assessment.

    ``score``: 0..100 (higher is better). ``features``: the 69 named feature values (empty when
    the image is empty or uniform: NIST computes none then and the score is 0). ``feedback``:
    NIST's actionable values (``UniformImage`` grey std, ``EmptyImageOrContrastTooLow`` mean
    grey, ``FingerprintImageWithMinutiae`` minutiae count, ``SufficientFingerprintForeground``
    ROI pixels). ``reason`` explains a zero score that comes from a check, not from the model.
    """

    score: int
    features: dict[str, float] = field(default_factory=dict)
    feedback: dict[str, float] = field(default_factory=dict)
    reason: str = ""

    def __int__(self) -> int:
        return self.score


#: NIST's model as shipped in ``models/`` (gzip of the YAML; see models/README.md)
SHIPPED_MODEL = "nfiq2_plain_tir-ink.yaml.gz"
SHIPPED_SHA256 = "aa48c4b94b40943b3aad96d54c6878339bef9e4b567fa3551415fe1cc2cd842f"


def model_path(path: str | Path | None = None) -> Path:
    """The model file: ``path``, else ``Settings.nfiq2_model``, else the copy shipped in
    ``models/``, else the shared data set's copy. A ``.gz`` file is read decompressed."""
    if path is not None:
        return Path(path)
    from ..config import get_settings, project_models_dir

    settings = get_settings()
    if settings.nfiq2_model is not None:
        return Path(settings.nfiq2_model)
    shipped = project_models_dir() / SHIPPED_MODEL
    if shipped.is_file():
        return shipped
    shared = settings.shared_dir()
    if shared is not None and (shared / "models" / "nfiq2" / MODEL_FILE).is_file():
        return shared / "models" / "nfiq2" / MODEL_FILE
    raise ConfigError("NFIQ 2 model not found: set BIOSTATION_NFIQ2_MODEL to NIST's "
                      f"{MODEL_FILE} (see models/README.md)")


def _read_forest(p: Path) -> Any:
    if p.suffix != ".gz":
        return cv2.ml.RTrees_load(str(p), MODEL_NODE)
    raw = p.read_bytes()
    if p.name == SHIPPED_MODEL and hashlib.sha256(raw).hexdigest() != SHIPPED_SHA256:
        raise ConfigError(f"{p} does not have the sha256 of models/README.md: damaged or replaced")
    fs = cv2.FileStorage(gzip.decompress(raw).decode("ascii"), cv2.FILE_STORAGE_READ | cv2.FILE_STORAGE_MEMORY)
    try:
        rf = cv2.ml.RTrees_create()
        rf.read(fs.getNode(MODEL_NODE))
    finally:
        fs.release()
    return rf


def load_model(path: str | Path | None = None) -> Any:
    """NIST's random forest as a ``cv2.ml.RTrees``; loaded once per path, then shared."""
    p = model_path(path).resolve()
    with _model_lock:
        if p not in _models:
            if not p.is_file():
                raise ConfigError(f"NFIQ 2 model {p} does not exist")
            try:
                rf = _read_forest(p)
            except cv2.error as exc:
                raise ConfigError(f"NFIQ 2 model {p.name} cannot be read: {exc}") from exc
            if rf.empty() or not rf.isTrained() or rf.getVarCount() != len(feat.FEATURE_ORDER):
                raise ConfigError(f"{p.name} is not NIST's NFIQ 2 forest ({len(feat.FEATURE_ORDER)} features)")
            _models[p] = rf
        return _models[p]


def _prepare(image: Any, dpi: float) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise ImageError(f"expected a 2-D uint8 image array, got {type(image).__name__}")
    if image.ndim == 3 and image.shape[2] in (3, 4):
        image = cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_BGR2GRAY) \
            if image.dtype == np.uint8 else image.mean(axis=2)
    if image.ndim != 2 or image.size == 0:
        raise ImageError(f"expected a 2-D grey image, got shape {image.shape}")
    if image.dtype != np.uint8:
        if not np.issubdtype(image.dtype, np.number) or not np.isfinite(image).all():
            raise ImageError(f"image of dtype {image.dtype} with non-finite values")
        image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    if not (250 <= dpi <= 2000):
        raise ImageError(f"resolution {dpi} ppi out of range 250..2000")
    if abs(dpi - 500) > 5:  # NFIQ 2 is defined at 500 ppi only
        scale = 500.0 / dpi
        size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    return np.ascontiguousarray(image)


def features(image: np.ndarray, dpi: float = 500) -> tuple[dict[str, float] | None, dict[str, float]]:
    """The 69 NFIQ 2 features (``None`` for an empty or uniform image) and the feedback values."""
    img = feat.crop_white_frame(_prepare(image, dpi))
    h, w = img.shape
    if w > MAX_WIDTH or h > MAX_HEIGHT:
        raise ImageError(f"{w}x{h} after trimming the white frame: NFIQ 2 assesses single fingers "
                         f"up to {MAX_WIDTH}x{MAX_HEIGHT} at 500 ppi (segment slaps first)")
    if min(h, w) < MIN_SIDE:
        return None, {"UniformImage": 0.0, "EmptyImageOrContrastTooLow": float(img.mean())}
    return feat.compute(img)


def nfiq2(image: np.ndarray, dpi: float = 500, model: str | Path | None = None) -> NFIQ2Result:
    """NFIQ 2 score of one fingerprint impression (see the module doc).

    ``image``: 2-D grey array (uint8 preferred; colour and other numeric types are converted),
    ridges dark. ``dpi``: its resolution; other than 500 it is resampled to 500 first.
    Raises :class:`~biostation.errors.ImageError` for input that is not an image or is larger
    than a single finger; :class:`~biostation.errors.ConfigError` if the model is missing.
    """
    rf = load_model(model)
    values, feedback = features(image, dpi)
    if values is None:
        reason = ("uniform image (no ridges)" if feedback.get("UniformImage", 0.0) < feat.UNIFORM_IMAGE_SIGMA
                  else "empty image or contrast too low")
        return NFIQ2Result(0, {}, feedback, reason)
    x = np.array([[values[k] for k in feat.FEATURE_ORDER]], np.float32)
    _, raw = rf.predict(x, flags=cv2.ml.STAT_MODEL_RAW_OUTPUT)
    score = int(float(raw[0, 0]) + 0.5)
    return NFIQ2Result(max(0, min(100, score)), values, feedback)
