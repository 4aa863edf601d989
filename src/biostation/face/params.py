"""Tuned numbers of the portrait pipeline, each with its unit and where it comes from.

Nothing else in :mod:`biostation.face` hard-codes a threshold: checks, detection and
verification read them from here, so a desk that needs stricter limits changes one place.
"""

from __future__ import annotations

# --- input -------------------------------------------------------------------------------------
#: largest accepted image, in pixels (width x height); a 50 MP photo is refused, not decoded
MAX_PIXELS = 50_000_000
#: smallest accepted side, in pixels
MIN_SIDE = 32
#: largest photo accepted over the network (pixels): a 16 MP phone photo passes; decoded as
#: 16-bit RGB it is about 100 MB, so a few concurrent checks stay well within a station's memory
UPLOAD_MAX_PIXELS = 16_000_000
#: Pillow format names accepted over the network: the encodings of ISO/IEC 19794-5 portraits
#: (JPEG, JPEG 2000) plus PNG; the other formats Pillow knows (EPS, TIFF, ...) are refused unread
UPLOAD_FORMATS = ("JPEG", "PNG", "JPEG2000")
#: longest side the detector works on (px); larger images are scaled down for detection only
DETECT_MAX_SIDE = 1024

# --- detection (BlazeFace, MediaPipe) ----------------------------------------------------------
#: minimum detector score (sigmoid, 0..1) for a face to count
DETECT_SCORE = 0.6
#: boxes overlapping more than this (IoU) are one face
NMS_IOU = 0.3
#: a second face counts against "exactly one face" only when its box is at least this fraction
#: of the main face's box width (people far behind the subject do not count)
SECOND_FACE_MIN_RATIO = 0.35
#: face-mesh "face present" flag (sigmoid) below which the landmarks are not trusted
LANDMARK_FLAG = 0.5
#: side of the square region cut around a detection for the face mesh, times the box size
#: (MediaPipe face_landmark ROI scale 1.5)
LANDMARK_ROI_SCALE = 1.5

# --- pose (degrees) ----------------------------------------------------------------------------
#: ICAO 9303 part 3 / ISO 19794-5 §7.2.2: pitch and yaw within +-5 degrees, roll within +-8
MAX_YAW_DEG = 8.0
MAX_PITCH_DEG = 10.0
MAX_ROLL_DEG = 8.0

# --- eyes and mouth (ratios, unitless) ---------------------------------------------------------
#: lid opening / eye width (iris-landmark lid contour) below which an eye counts as closed;
#: measured: open eyes 0.22-0.44 (LONDON_FRL, YALE, MEDS), closed (YALE sleepy) 0.04-0.16
MIN_EYE_OPENING = 0.20
#: a wink: the more closed eye opened less than this fraction of the other one
MIN_EYE_SYMMETRY = 0.70
#: inner-lip gap / mouth width above which the mouth is open
MAX_MOUTH_OPENING = 0.15
#: ISO 19794-5 §8.3 full frontal: at least 90 px between the eye centres (ICAO 9303 part 3 too)
MIN_EYE_DISTANCE_PX = 90.0

# --- geometry ---------------------------------------------------------------------------------
#: horizontal position of the face centre (eye mid-point) in the frame, as a fraction of width
CENTRE_X_RANGE = (0.35, 0.65)
#: fraction of the ISO full-frontal crop that must lie inside the frame
MIN_CROP_INSIDE = 0.95

# --- image quality ----------------------------------------------------------------------------
#: background (the border strips beside the head): mean grey level at least this (0..255)
MIN_BACKGROUND_LEVEL = 110.0
#: background standard deviation of grey level at most this (uniform)
MAX_BACKGROUND_STD = 30.0
#: face region mean grey level range (exposure); wide, because skin tones differ: clipping
#: (MAX_CLIPPED) catches real under/over-exposure
EXPOSURE_RANGE = (45.0, 215.0)
#: face region contrast: 5th..95th percentile spread of grey levels at least this
MIN_CONTRAST = 35.0
#: fraction of face pixels clipped at 0 or 255 at most this
MAX_CLIPPED = 0.05
#: sharpness: variance of the Laplacian over the face resampled to 64 px between the eyes, at
#: least; measured: LONDON_FRL 750-1950, MEDS frontal 117-2500; a LONDON portrait blurred with a
#: Gaussian of sigma 6 px (1350 px image) 84
MIN_SHARPNESS = 100.0
#: lighting: left/right halves of the face, ratio of low-percentile grey levels (darker / brighter) at
#: least; measured (30th percentile): frontal light 0.67-1.0 (LONDON_FRL 0.85-1.0), YALE
#: side light 0.10-0.65
MIN_LIGHT_BALANCE = 0.66
#: glare: fraction of face skin pixels near white (>= 250) at most
MAX_GLARE = 0.03
#: the lighting check compares this percentile of grey levels of the two halves (a low one, so
#: that a shadow over part of one side counts)
LIGHT_PERCENTILE = 30.0

# --- verification operating points ------------------------------------------------------------
#: distance thresholds per model (the model's ``name``) and operating point, set on the desk
#: protocol (``benchmarks/bench_face_desk.py``): the largest distance at which the pooled impostor
#: pairs' FMR stays within the target, rounded down. Population: live captures (camera path,
#: ICAO-passable pose, light and resolution changes) against DG2 chip photos (ISO token, JPEG 2000
#: <= 15 kB or JPEG <= 20 kB) of ORL, YALE, MEDS_SUBSET and LONDON_FRL; impostor pairs within each
#: set (76,305 pairs, 2,554 genuine). Figures per set in models/README.md.
OPERATING_POINTS: dict[str, dict[str, float]] = {
    "dlib-resnet-v1+flip": {"fmr-0.1%": 0.452, "fmr-0.01%": 0.395},
    "dlib-resnet-v1": {"fmr-0.1%": 0.455, "fmr-0.01%": 0.396},
    "facenet-20180408": {"fmr-0.1%": 0.705, "fmr-0.01%": 0.595},
}
#: target FMR of each operating point name
OPERATING_POINT_FMR = {"fmr-0.1%": 0.001, "fmr-0.01%": 0.0001}
#: what the thresholds were measured on (recorded with every decision)
OPERATING_POINTS_POPULATION = ("desk protocol v1 (benchmarks/bench_face_desk.py): DG2 chip photo vs live capture; "
                               "ORL, YALE, MEDS_SUBSET, LONDON_FRL; 76,305 impostor / 2,554 genuine pairs")
#: operating point a desk decision uses unless told otherwise
DEFAULT_OPERATING_POINT = "fmr-0.1%"
