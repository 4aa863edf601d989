"""Face verification 1:1 behind a small, swappable interface.

An :class:`Embedder` turns a face in an image into a fixed-length vector; a :class:`Verifier`
compares two vectors with the embedder's distance and decides against a threshold that was set
from measured genuine and impostor distances (``benchmarks/bench_face.py``; figures in
``models/README.md``). Swap the model by passing another embedder: everything else stays.

Default model: dlib's ResNet face recogniser (``dlib_face_recognition_resnet_model_v1``, public
domain, 128-D, Euclidean distance) on a 150x150 chip aligned by dlib's 5-point shape predictor
(CC0), run by the ``dlib-bin`` wheel. About 60 ms per face on one core.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from ..errors import FaceError
from .detect import Detection, FaceAnalyzer, default_analyzer
from .image import as_bgr

#: distance threshold of the default embedder, set from the genuine/impostor distances measured
#: by ``benchmarks/bench_face.py`` over ORL, YALE, MEDS and LONDON_FRL (2,834 genuine, 97,049
#: impostor pairs): the distance under which 0.1% of impostor pairs fall (pooled FMR 0.1%, FNMR
#: 5.5%; pooled EER 1.06% at 0.552). A desk that prefers fewer false rejections can pass
#: ``threshold=0.55`` (FMR 1.0%, FNMR 1.1%). Figures in models/README.md.
DLIB_THRESHOLD = 0.47


@runtime_checkable
class Embedder(Protocol):
    """What a face recognition model must offer to sit behind :class:`Verifier`."""

    #: short model name, recorded with results
    name: str
    #: the distance at or below which two faces are called the same person
    threshold: float

    def embed(self, image: np.ndarray, face: Detection) -> np.ndarray:
        """Feature vector of ``face`` in the BGR ``image``."""
        ...

    def distance(self, a: np.ndarray, b: np.ndarray) -> float:
        """Dissimilarity of two vectors; smaller is more alike."""
        ...


class DlibResNetEmbedder:
    """dlib ResNet-29 face descriptor (128-D); Euclidean distance, typical genuine < 0.5.

    Thread-safety: dlib's network object is not re-entrant; calls are serialised by a lock.
    """

    name = "dlib-resnet-v1"

    def __init__(self, models_dir: Path | None = None, threshold: float = DLIB_THRESHOLD):
        try:
            import dlib
        except ImportError as exc:  # the [face] extra brings dlib-bin
            raise FaceError("face verification needs dlib: pip install 'biostation[face]'") from exc
        from .models import model_path

        self._dlib = dlib
        self._sp = dlib.shape_predictor(str(model_path("shape_predictor_5_face_landmarks.dat", models_dir)))
        self._net = dlib.face_recognition_model_v1(str(model_path("dlib_face_recognition_resnet_model_v1.dat",
                                                                  models_dir)))
        self.threshold = threshold
        self._lock = threading.Lock()

    def embed(self, image: np.ndarray, face: Detection) -> np.ndarray:
        dlib = self._dlib
        rgb = np.ascontiguousarray(as_bgr(image)[:, :, ::-1])
        h, w = rgb.shape[:2]
        x0, y0, x1, y1 = face.box
        # BlazeFace boxes run from the brows to the chin like dlib's own detector; keep them square
        rect = dlib.rectangle(int(max(0, x0)), int(max(0, y0)), int(min(w - 1, x1)), int(min(h - 1, y1)))
        with self._lock:
            shape = self._sp(rgb, rect)
            chip = dlib.get_face_chip(rgb, shape, size=150, padding=0.25)
            vec = self._net.compute_face_descriptor(chip)
        return np.asarray(vec, dtype=np.float32)

    def distance(self, a: np.ndarray, b: np.ndarray) -> float:
        return float(np.linalg.norm(np.asarray(a, np.float32) - np.asarray(b, np.float32)))


@dataclass
class VerifyResult:
    """Outcome of one comparison. ``match`` is ``distance <= threshold``."""

    distance: float
    threshold: float
    match: bool
    model: str

    def to_dict(self) -> dict[str, object]:
        return {"distance": round(self.distance, 4), "threshold": self.threshold, "match": self.match,
                "model": self.model}


class Verifier:
    """1:1 face comparison: image -> main face -> embedding -> distance -> decision."""

    def __init__(self, embedder: Embedder | None = None, analyzer: FaceAnalyzer | None = None):
        self.embedder = embedder or DlibResNetEmbedder()
        self.analyzer = analyzer or default_analyzer()

    def main_face(self, image: np.ndarray) -> Detection:
        """The largest face in ``image``; :class:`FaceError` when there is none."""
        dets = self.analyzer.detect(as_bgr(image))
        if not dets:
            raise FaceError("no face found in the image")
        return max(dets, key=lambda d: d.width * d.height)

    def embed(self, image: np.ndarray) -> np.ndarray:
        image = as_bgr(image)
        return self.embedder.embed(image, self.main_face(image))

    def compare(self, a: np.ndarray, b: np.ndarray) -> VerifyResult:
        """Compare two embeddings."""
        d = self.embedder.distance(a, b)
        return VerifyResult(d, self.embedder.threshold, d <= self.embedder.threshold, self.embedder.name)

    def verify(self, image_a: np.ndarray, image_b: np.ndarray) -> VerifyResult:
        """Compare the main faces of two BGR images."""
        return self.compare(self.embed(image_a), self.embed(image_b))


_default: Verifier | None = None
_default_lock = threading.Lock()


def default_verifier() -> Verifier:
    global _default
    with _default_lock:
        if _default is None:
            from ..config import get_settings

            _default = Verifier(DlibResNetEmbedder(get_settings().face_models_dir))
        return _default
