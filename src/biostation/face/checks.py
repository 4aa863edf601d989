"""ICAO 9303 / ISO/IEC 19794-5 portrait checks: each measured, thresholded and explained.

:func:`check_portrait` runs detection, the face mesh and the eye model once, then every check
below as a pure function of those measurements. Each :class:`Check` carries the measured value,
the threshold it was held to, and a reason an operator can read, in Vietnamese and English
(``reason_vi``/``reason_en``: what is wrong and what to do when it fails, what was found when it
passes). Thresholds live in :mod:`biostation.face.params`.

Checks (name: measured value):

============== ===============================================================================
one_face       number of faces (a face at least 35% as wide as the main one counts)
face_visible   fraction of the face outline inside the image, and the mesh's face score
yaw/pitch/roll head rotation in degrees, from the face mesh's 3-D points
eyes_open      lid opening / eye width of the more closed eye (iris-landmark model)
mouth_closed   inner-lip gap / mouth width
eye_distance   pixels between the eye centres (ISO 19794-5 full frontal: >= 90)
head_centred   horizontal position of the eyes' mid-point, fraction of the image width
head_in_frame  fraction of the ISO token crop (see :mod:`.token`) that lies inside the image
background     grey level of the background beside the head (light) and its spread (uniform)
exposure       mean grey level of the face
contrast       5-95 percentile spread of the face's grey levels
sharpness      variance of the Laplacian of the face at a fixed scale
lighting       darker / brighter half of the face (side light, strong shadows)
glare          fraction of face pixels that are saturated white (reflections, hot spots)
============== ===============================================================================

Cost: about 15 ms for a 640x480 frame with one face on one core (see benchmarks/bench_face.py).
Personal data: nothing here logs pixels or landmarks.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import cv2
import numpy as np

from . import params
from .detect import (
    CHIN,
    FOREHEAD,
    LEFT_EYE,
    MOUTH,
    RIGHT_EYE,
    SILHOUETTE,
    Detection,
    FaceAnalyzer,
    Landmarks,
    default_analyzer,
)
from .image import as_bgr


@dataclass
class Check:
    """One check: ``status`` is ``pass``, ``fail`` or ``skipped`` (could not be measured)."""

    name: str
    status: str
    value: float | None
    threshold: str
    unit: str
    reason_en: str
    reason_vi: str

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if isinstance(d["value"], float):
            d["value"] = round(d["value"], 4)
        return d


@dataclass
class FaceMeasures:
    """What the checks measured on the main face (pixels of the checked image, degrees)."""

    box: tuple[float, float, float, float]
    score: float
    right_eye: tuple[float, float]
    left_eye: tuple[float, float]
    yaw: float
    pitch: float
    roll: float
    eye_opening: tuple[float, float]
    mouth_opening: float
    landmarks: Landmarks | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"box": [round(v, 1) for v in self.box], "score": round(self.score, 3),
                "right_eye": [round(v, 1) for v in self.right_eye], "left_eye": [round(v, 1) for v in self.left_eye],
                "yaw": round(self.yaw, 2), "pitch": round(self.pitch, 2), "roll": round(self.roll, 2),
                "eye_opening": [round(v, 3) for v in self.eye_opening], "mouth_opening": round(self.mouth_opening, 3)}


@dataclass
class PortraitReport:
    """Outcome of :func:`check_portrait`: ``passed`` when every check passed."""

    width: int
    height: int
    faces: int
    checks: list[Check]
    face: FaceMeasures | None = None
    other_faces: list[FaceMeasures] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.status == "fail"]

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "width": self.width, "height": self.height, "faces": self.faces,
                "failed": [c.name for c in self.failed], "checks": [c.to_dict() for c in self.checks],
                "face": self.face.to_dict() if self.face else None}


# --- reasons ------------------------------------------------------------------------------------
# name -> (unit, (english pass, vietnamese pass), (english fail, vietnamese fail))
_TEXT: dict[str, tuple[str, tuple[str, str], tuple[str, str]]] = {
    "one_face": ("faces", ("Exactly one face", "Có đúng một khuôn mặt"),
                 ("Exactly one person must be in the picture: no face or several faces were found",
                  "Ảnh phải có đúng một người: không thấy khuôn mặt hoặc có nhiều khuôn mặt")),
    "face_visible": ("fraction", ("The whole face is in the picture", "Toàn bộ khuôn mặt nằm trong ảnh"),
                     ("Part of the face is cut off or hidden: move into the middle of the picture",
                      "Một phần khuôn mặt bị cắt hoặc bị che: hãy di chuyển vào giữa khung hình")),
    "yaw": ("degrees", ("Head faces the camera (left-right)", "Đầu nhìn thẳng vào máy ảnh (trái-phải)"),
            ("Head is turned to the side: look straight at the camera",
             "Đầu đang quay sang bên: hãy nhìn thẳng vào máy ảnh")),
    "pitch": ("degrees", ("Head is level (up-down)", "Đầu không ngẩng hay cúi"),
              ("Head is tilted up or down: keep the chin level", "Đầu đang ngẩng lên hoặc cúi xuống: hãy giữ cằm thẳng")),
    "roll": ("degrees", ("Head is upright", "Đầu thẳng, không nghiêng"),
             ("Head is tilted towards a shoulder: hold the head upright",
              "Đầu nghiêng về một bên vai: hãy giữ đầu thẳng")),
    "eyes_open": ("ratio", ("Both eyes are open", "Hai mắt đều mở"),
                  ("Eyes are closed or hidden: open both eyes and look at the camera",
                   "Mắt nhắm hoặc bị che: hãy mở cả hai mắt và nhìn vào máy ảnh")),
    "mouth_closed": ("ratio", ("Mouth is closed", "Miệng khép"),
                     ("Mouth is open: close the mouth, neutral expression",
                      "Miệng đang mở: hãy khép miệng, giữ nét mặt bình thường")),
    "eye_distance": ("px", ("Face is large enough (distance between the eyes)", "Khuôn mặt đủ lớn (khoảng cách hai mắt)"),
                     ("Face is too small: move closer to the camera or use a higher resolution",
                      "Khuôn mặt quá nhỏ: hãy lại gần máy ảnh hoặc dùng độ phân giải cao hơn")),
    "head_centred": ("fraction", ("Head is centred", "Đầu nằm giữa khung hình"),
                     ("Head is not centred: move left or right to the middle",
                      "Đầu không nằm giữa: hãy dịch sang trái hoặc phải vào giữa khung hình")),
    "head_in_frame": ("fraction", ("Head and shoulders fit the ISO portrait frame", "Đầu và vai vừa khung ảnh chuẩn ISO"),
                      ("Head is too close to the edge or to the camera: step back or re-centre",
                       "Đầu quá sát mép ảnh hoặc quá gần máy ảnh: hãy lùi lại hoặc chỉnh vào giữa")),
    "background": ("grey level", ("Background is plain and light", "Phông nền trơn và sáng màu"),
                   ("Background is dark or not plain: use a plain light background",
                    "Phông nền tối hoặc không trơn: hãy dùng phông nền trơn, sáng màu")),
    "exposure": ("grey level", ("Face is correctly exposed", "Khuôn mặt đủ sáng"),
                 ("Face is too dark or too bright: adjust the lighting or exposure",
                  "Khuôn mặt quá tối hoặc quá sáng: hãy điều chỉnh ánh sáng hoặc độ phơi sáng")),
    "contrast": ("grey levels", ("Face has enough contrast", "Khuôn mặt có đủ độ tương phản"),
                 ("Face is flat or washed out: improve the lighting", "Khuôn mặt bị mờ nhạt: hãy cải thiện ánh sáng")),
    "sharpness": ("Laplacian variance", ("Image is sharp", "Ảnh sắc nét"),
                  ("Image is blurred: hold still and check the focus", "Ảnh bị mờ: hãy đứng yên và kiểm tra lấy nét")),
    "lighting": ("ratio", ("Face is evenly lit", "Khuôn mặt được chiếu sáng đều"),
                 ("Face is lit from one side or has strong shadows: light the face evenly from the front",
                  "Khuôn mặt bị chiếu sáng lệch một bên hoặc có bóng đổ đậm: hãy chiếu sáng đều từ phía trước")),
    "glare": ("fraction", ("No glare on the face", "Không bị lóa trên khuôn mặt"),
              ("Glare or reflections on the face or glasses: soften the light, tilt the glasses",
               "Có chỗ lóa hoặc phản chiếu trên mặt hay kính: hãy giảm ánh sáng gắt, chỉnh lại kính")),
}

CHECK_NAMES = tuple(_TEXT)


def _check(name: str, value: float | None, ok: bool | None, threshold: str) -> Check:
    unit, good, bad = _TEXT[name]
    if ok is None:
        return Check(name, "skipped", value, threshold, unit, "Not measured: no usable face",
                     "Không đo được: không có khuôn mặt dùng được")
    en, vi = good if ok else bad
    return Check(name, "pass" if ok else "fail", value, threshold, unit, en, vi)


def _range(lo: float, hi: float) -> str:
    return f"{lo:g} .. {hi:g}"


# --- measurements -------------------------------------------------------------------------------
def head_pose(lm: Landmarks) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees from the mesh's 3-D points.

    The face frame is built from the outer eye corners (x axis) and forehead-to-chin (y axis);
    its normal against the camera axis gives yaw and pitch, the eye line gives roll. Positive
    yaw: the face turns towards the image's right; positive pitch: chin up; positive roll: the
    eye line falls to the image's right. Error on frontal portraits: about 3 degrees.
    """
    p = lm.points
    x = p[LEFT_EYE["outer"]] - p[RIGHT_EYE["outer"]]
    y = p[CHIN] - p[FOREHEAD]
    x = x / (np.linalg.norm(x) + 1e-9)
    y = y - x * float(np.dot(x, y))
    y = y / (np.linalg.norm(y) + 1e-9)
    n = np.cross(x, y)  # points into the screen (+z) for a frontal face
    yaw = math.degrees(math.atan2(-n[0], n[2]))
    pitch = math.degrees(math.atan2(-n[1], n[2]))
    roll = math.degrees(math.atan2(x[1], x[0]))
    return yaw, pitch, roll


def mouth_opening(lm: Landmarks) -> float:
    gap = np.linalg.norm(lm.pt(MOUTH["upper_inner"]) - lm.pt(MOUTH["lower_inner"]))
    width = np.linalg.norm(lm.pt(MOUTH["left"]) - lm.pt(MOUTH["right"]))
    return float(gap / (width + 1e-9))


def measure(analyzer: FaceAnalyzer, image: np.ndarray, det: Detection) -> FaceMeasures:
    lm = analyzer.landmarks(image, det)
    yaw, pitch, roll = head_pose(lm)
    eyes = analyzer.eye_opening(image, lm)
    return FaceMeasures(det.box, det.score, tuple(lm.right_eye), tuple(lm.left_eye), yaw, pitch, roll,  # type: ignore[arg-type]
                        eyes, mouth_opening(lm), lm)


def _face_mask(shape: tuple[int, int], lm: Landmarks) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    poly = np.round(lm.points[list(SILHOUETTE), :2]).astype(np.int32)
    cv2.fillPoly(mask, [poly], 255)
    # leave out eyes and mouth: dark by nature, they are not lighting
    for eye in (RIGHT_EYE, LEFT_EYE):
        idx = [eye["outer"], *eye["upper"], eye["inner"], *reversed(eye["lower"])]
        pts = lm.points[idx, :2]
        c = pts.mean(0)
        cv2.fillPoly(mask, [np.round(c + (pts - c) * 1.8).astype(np.int32)], 0)
    mouth = lm.points[[MOUTH["right"], MOUTH["upper_inner"], MOUTH["left"], MOUTH["lower_inner"]], :2]
    c = mouth.mean(0)
    cv2.fillPoly(mask, [np.round(c + (mouth - c) * 1.5).astype(np.int32)], 0)
    return mask


def token_frame(right_eye: np.ndarray, left_eye: np.ndarray) -> np.ndarray:
    """Corners (4x2, image pixels) of the ISO 19794-5 token crop for these eye centres.

    Token geometry (ISO/IEC 19794-5:2005 §8.4, Table 9): width W with the eyes 0.25 W apart at
    x = 0.375 W and 0.625 W, y = 0.6 W from the top; height W / 0.75.
    """
    d = left_eye - right_eye
    dist = float(np.linalg.norm(d)) + 1e-9
    ux = d / dist
    uy = np.array([-ux[1], ux[0]])
    w = dist / 0.25
    mid = (right_eye + left_eye) / 2
    top_left = mid - ux * 0.5 * w - uy * 0.6 * w
    h = w / 0.75
    return np.array([top_left, top_left + ux * w, top_left + ux * w + uy * h, top_left + uy * h])


def _fraction_inside(corners: np.ndarray, w: int, h: int) -> float:
    """Area fraction of a convex quadrilateral inside the w x h image (rasterised, coarse)."""
    scale = 200.0 / max(np.ptp(corners[:, 0]), np.ptp(corners[:, 1]), 1.0)
    q = (corners - corners.min(0)) * scale
    canvas = np.zeros((int(q[:, 1].max()) + 2, int(q[:, 0].max()) + 2), np.uint8)
    cv2.fillPoly(canvas, [np.round(q).astype(np.int32)], 1)
    ys, xs = np.nonzero(canvas)
    px = xs / scale + corners[:, 0].min()
    py = ys / scale + corners[:, 1].min()
    inside = (px >= 0) & (px < w) & (py >= 0) & (py < h)
    return float(inside.mean()) if len(xs) else 0.0


def _background_regions(grey: np.ndarray, lm: Landmarks, corners: np.ndarray) -> np.ndarray:
    """Pixels beside and above the head inside the token frame, clear of hair (a margin)."""
    w = grey.shape[1]
    pts = lm.points[list(SILHOUETTE), :2]
    fx0, fx1 = pts[:, 0].min(), pts[:, 0].max()
    fw = fx1 - fx0
    top = max(0, int(min(corners[:, 1].min(), pts[:, 1].min() - 0.6 * fw)))
    eye_y = int(max(lm.right_eye[1], lm.left_eye[1]))
    x_left = max(0, int(corners[:, 0].min()))
    x_right = min(w, int(corners[:, 0].max()))
    margin = 0.3 * fw
    regions = []
    if fx0 - margin - x_left >= 4:
        regions.append(grey[top:eye_y, x_left:int(fx0 - margin)].ravel())
    if x_right - (fx1 + margin) >= 4:
        regions.append(grey[top:eye_y, int(fx1 + margin):x_right].ravel())
    return np.concatenate(regions) if regions else np.zeros(0, np.uint8)


def check_portrait(image: np.ndarray, analyzer: FaceAnalyzer | None = None) -> PortraitReport:
    """Run every check on a BGR (or grey) uint8 image. Never raises for image content.

    A bad array (wrong type, shape, dtype, size) raises :class:`~biostation.errors.ImageError`;
    an image without a usable face gives a failed report with the other checks ``skipped``.
    """
    image = as_bgr(image)
    analyzer = analyzer or default_analyzer()
    h, w = image.shape[:2]
    dets = analyzer.detect(image)
    checks: list[Check] = []
    if dets:
        main = max(dets, key=lambda d: d.width * d.height)
        others = [d for d in dets if d is not main and d.width >= params.SECOND_FACE_MIN_RATIO * main.width]
        n = 1 + len(others)
    else:
        main, others, n = None, [], 0
    checks.append(_check("one_face", float(n), n == 1, "== 1"))
    if main is None:
        for name in CHECK_NAMES[1:]:
            checks.append(_check(name, None, None, ""))
        return PortraitReport(w, h, 0, checks)

    fm = measure(analyzer, image, main)
    lm = fm.landmarks
    assert lm is not None
    sil = lm.points[list(SILHOUETTE), :2]
    inside = float(np.mean((sil[:, 0] >= 0) & (sil[:, 0] < w) & (sil[:, 1] >= 0) & (sil[:, 1] < h)))
    visible = min(inside, lm.flag)
    checks.append(_check("face_visible", visible, visible >= 0.98 and lm.flag >= params.LANDMARK_FLAG, ">= 0.98"))
    checks.append(_check("yaw", fm.yaw, abs(fm.yaw) <= params.MAX_YAW_DEG, f"|yaw| <= {params.MAX_YAW_DEG:g}"))
    checks.append(_check("pitch", fm.pitch, abs(fm.pitch) <= params.MAX_PITCH_DEG, f"|pitch| <= {params.MAX_PITCH_DEG:g}"))
    checks.append(_check("roll", fm.roll, abs(fm.roll) <= params.MAX_ROLL_DEG, f"|roll| <= {params.MAX_ROLL_DEG:g}"))
    eo, eo_max = min(fm.eye_opening), max(fm.eye_opening)
    symmetric = eo >= params.MIN_EYE_SYMMETRY * eo_max
    checks.append(_check("eyes_open", eo, eo >= params.MIN_EYE_OPENING and symmetric,
                         f">= {params.MIN_EYE_OPENING:g} and >= {params.MIN_EYE_SYMMETRY:g} x other eye "
                         f"({eo_max:.3f})"))
    checks.append(_check("mouth_closed", fm.mouth_opening, fm.mouth_opening <= params.MAX_MOUTH_OPENING,
                         f"<= {params.MAX_MOUTH_OPENING:g}"))
    re, le = np.array(fm.right_eye), np.array(fm.left_eye)
    ed = float(np.linalg.norm(le - re))
    checks.append(_check("eye_distance", ed, ed >= params.MIN_EYE_DISTANCE_PX, f">= {params.MIN_EYE_DISTANCE_PX:g}"))
    cx = float((re[0] + le[0]) / 2 / w)
    lo, hi = params.CENTRE_X_RANGE
    checks.append(_check("head_centred", cx, lo <= cx <= hi, _range(lo, hi)))
    corners = token_frame(re, le)
    fin = _fraction_inside(corners, w, h)
    checks.append(_check("head_in_frame", fin, fin >= params.MIN_CROP_INSIDE, f">= {params.MIN_CROP_INSIDE:g}"))

    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    bg = _background_regions(grey, lm, corners)
    if bg.size >= 64:
        bg_mean, bg_std = float(bg.mean()), float(bg.std())
        ok = bg_mean >= params.MIN_BACKGROUND_LEVEL and bg_std <= params.MAX_BACKGROUND_STD
        checks.append(_check("background", bg_mean, ok, f"mean >= {params.MIN_BACKGROUND_LEVEL:g}, "
                             f"spread {bg_std:.1f} <= {params.MAX_BACKGROUND_STD:g}"))
    else:
        checks.append(_check("background", None, False, "no background visible beside the head"))

    mask = _face_mask(grey.shape, lm)
    face_px = grey[mask > 0]
    if face_px.size < 100:
        for name in ("exposure", "contrast", "sharpness", "lighting", "glare"):
            checks.append(_check(name, None, None, ""))
        return PortraitReport(w, h, n, checks, fm, [measure(analyzer, image, d) for d in others])
    mean = float(face_px.mean())
    lo, hi = params.EXPOSURE_RANGE
    checks.append(_check("exposure", mean, lo <= mean <= hi, _range(lo, hi)))
    p5, p95 = np.percentile(face_px, [5, 95])
    clipped = float(np.mean((face_px <= 2) | (face_px >= 253)))
    contrast = float(p95 - p5)
    checks.append(_check("contrast", contrast, contrast >= params.MIN_CONTRAST and clipped <= params.MAX_CLIPPED,
                         f">= {params.MIN_CONTRAST:g}, clipped {clipped:.3f} <= {params.MAX_CLIPPED:g}"))
    checks.append(_check("sharpness", *_sharpness(grey, mask, ed)))
    # left/right halves split along the nose line
    nose_x = lm.points[[FOREHEAD, 1, CHIN], 0]
    ys, xs = np.nonzero(mask)
    mid_x = np.interp(ys, [lm.points[FOREHEAD, 1], lm.points[1, 1], lm.points[CHIN, 1]], nose_x)
    vals = grey[ys, xs].astype(np.float64)
    left, right = vals[xs < mid_x], vals[xs >= mid_x]
    if left.size and right.size:
        a, b = float(np.percentile(left, params.LIGHT_PERCENTILE)), float(np.percentile(right, params.LIGHT_PERCENTILE))
        balance = min(a, b) / max(a, b, 1.0)
    else:
        balance = 0.0
    checks.append(_check("lighting", balance, balance >= params.MIN_LIGHT_BALANCE, f">= {params.MIN_LIGHT_BALANCE:g}"))
    glare = float(np.mean(face_px >= 250))
    checks.append(_check("glare", glare, glare <= params.MAX_GLARE, f"<= {params.MAX_GLARE:g}"))
    return PortraitReport(w, h, n, checks, fm, [measure(analyzer, image, d) for d in others])


def _sharpness(grey: np.ndarray, mask: np.ndarray, eye_dist: float) -> tuple[float, bool, str]:
    """Laplacian variance over the face, resampled so that the eyes are 64 px apart."""
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    s = 64.0 / max(eye_dist, 1.0)
    crop = grey[y0:y1, x0:x1]
    m = mask[y0:y1, x0:x1]
    size = (max(8, round(crop.shape[1] * s)), max(8, round(crop.shape[0] * s)))
    crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    m = cv2.resize(m, size, interpolation=cv2.INTER_NEAREST)
    m = cv2.erode(m, np.ones((5, 5), np.uint8))
    lap = cv2.Laplacian(crop.astype(np.float32), cv2.CV_32F, ksize=3)
    v = float(lap[m > 0].var()) if np.count_nonzero(m) > 16 else 0.0
    return v, v >= params.MIN_SHARPNESS, f">= {params.MIN_SHARPNESS:g}"
