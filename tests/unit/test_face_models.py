"""Model files are checked against their sha256 before use; nothing is downloaded."""

from __future__ import annotations

import shutil

import pytest

from biostation.errors import FaceError
from biostation.face.detect import FaceAnalyzer
from biostation.face.models import MODEL_SHA256, default_models_dir, model_path


def test_every_listed_model_is_present_and_hashes_right():
    for name in MODEL_SHA256:
        assert model_path(name).is_file()
    assert "shape_predictor_68_face_landmarks.dat" not in MODEL_SHA256  # non-commercial licence
    readme = (default_models_dir() / "README.md").read_text()
    for digest in MODEL_SHA256.values():
        assert digest in readme


def test_missing_or_altered_model_is_a_face_error(tmp_path):
    with pytest.raises(FaceError, match="not found"):
        FaceAnalyzer(tmp_path)
    for name in ("face_detection_short_range.tflite", "face_detection_full_range.tflite"):
        shutil.copy(default_models_dir() / name, tmp_path / name)
    (tmp_path / "face_landmark.tflite").write_bytes(b"\0" * 100)
    with pytest.raises(FaceError, match="sha256"):
        FaceAnalyzer(tmp_path)
    with pytest.raises(FaceError, match="unknown model"):
        model_path("yolo.onnx")
