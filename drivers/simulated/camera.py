"""Simulated camera: plays a video file, an image file or an image folder through ``cv2.VideoCapture``.

Default source: ``../shared/data/faces/LONDON_FRL/001/1_neutral.jpg`` when present (a still,
compliant portrait, so that a demo's portrait capture passes), else a short clip the package
draws once into the data directory. Plays at the clip's frame rate (times
``Settings.sim_time_scale``) and loops. An image folder is played through OpenCV's image-sequence
backend (``CAP_IMAGES``) via a folder of numbered links, so the real ``VideoCapture`` path runs
either way.

For tests, :meth:`SimulatedCamera.scripted` takes the frames themselves: a sequence of arrays
(played in order, looping) or a handler ``f(index) -> array | None`` (``None``: no frame yet,
so the read waits and times out like a stalled camera).
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from biostation.config import Settings
from biostation.errors import DeviceGoneError, DeviceProtocolError, DeviceTimeoutError
from biostation.hal import Attachment, Camera, CameraSettings, Deadline, Feature

FrameScript = Sequence[np.ndarray] | Callable[[int], "np.ndarray | None"]

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".pgm", ".ppm"}


def generated_clip(path: Path, frames: int = 50, size: tuple[int, int] = (640, 480), fps: float = 25.0) -> Path:
    """Draw a simple head-and-shoulders clip (MJPG AVI) at ``path`` if it is not there yet."""
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.avi")
    w, h = size
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    if not writer.isOpened():
        raise DeviceProtocolError("OpenCV cannot write an MJPG clip for the simulated camera")
    for i in range(frames):
        img = np.full((h, w, 3), 225, np.uint8)
        dx = int(8 * np.sin(i / frames * 2 * np.pi))
        cx, cy = w // 2 + dx, h // 2 - 10
        cv2.ellipse(img, (cx, h + 40), (170, 120), 0, 180, 360, (90, 60, 40), -1)  # shoulders
        cv2.ellipse(img, (cx, cy), (95, 125), 0, 0, 360, (140, 170, 210), -1)  # face
        for ex in (cx - 38, cx + 38):
            cv2.ellipse(img, (ex, cy - 20), (16, 8), 0, 0, 360, (255, 255, 255), -1)
            cv2.circle(img, (ex, cy - 20), 6, (60, 40, 30), -1)
        cv2.line(img, (cx, cy - 5), (cx - 6, cy + 30), (110, 130, 170), 3)
        cv2.ellipse(img, (cx, cy + 60), (30, 8), 0, 0, 180, (80, 80, 160), 3)
        writer.write(img)
    writer.release()
    tmp.replace(path)
    return path


class SimulatedCamera(Camera):
    id = "simulated-camera"
    full_name = "Simulated camera"
    features = Feature.SIMULATED | Feature.CAMERA_SETTINGS

    _unplugged: set[str] = set()

    @classmethod
    def probe(cls, settings: Settings) -> list[Attachment]:
        key = "sim:camera0"
        return [] if key in cls._unplugged else [Attachment("sim", key, cls.full_name)]

    @classmethod
    def discover(cls, attachment: Attachment) -> int:
        return 50 if attachment.bus == "sim" and attachment.key.startswith("sim:camera") else 0

    @classmethod
    def create(cls, source: Path | str, settings: Settings | None = None,
               key: str = "sim:camera-test") -> SimulatedCamera:
        settings = (settings or Settings(sim_time_scale=0.0)).model_copy(update={"sim_camera_source": Path(source)})
        return cls(Attachment("sim", key, cls.full_name), settings)

    @classmethod
    def scripted(cls, script: FrameScript, settings: Settings | None = None,
                 key: str = "sim:camera-scripted") -> SimulatedCamera:
        """A camera that serves ``script``: a sequence of frames (looping) or ``f(index)``."""
        if not callable(script) and len(script) == 0:
            raise ValueError("a scripted camera needs at least one frame")
        cam = cls(Attachment("sim", key, cls.full_name), settings or Settings(sim_time_scale=0.0))
        cam._script = script
        return cam

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._script: FrameScript | None = None
        self._played = 0
        self._cap: cv2.VideoCapture | None = None
        self._fps = 25.0
        self._last_t = 0.0
        self._gone = threading.Event()
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        self._source_name = ""

    def unplug(self) -> None:
        self._gone.set()
        type(self)._unplugged.add(self.attachment.key)

    @classmethod
    def replug_all(cls) -> None:
        """Every unplugged simulated camera is back on its bus (the registry's next scan finds it)."""
        cls._unplugged.clear()

    def _source(self) -> Path:
        src = self.settings.resolved_camera_source()
        if src is None:
            src = generated_clip(self.settings.data_dir / "sim" / "camera.avi")
        return src

    def _open_capture(self) -> cv2.VideoCapture:
        src = self._source()
        self._source_name = src.name
        if src.is_dir():
            files = sorted(p for p in src.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise DeviceProtocolError(f"no images in {src}", self.device_id)
            self._tmpdir = tempfile.TemporaryDirectory(prefix="biostation-cam-")
            for i, f in enumerate(files):
                (Path(self._tmpdir.name) / f"frame_{i:06d}{f.suffix.lower()}").symlink_to(f.resolve())
            pattern = str(Path(self._tmpdir.name) / f"frame_%06d{files[0].suffix.lower()}")
            cap = cv2.VideoCapture(pattern, cv2.CAP_IMAGES)
            self._fps = 10.0
        else:
            cap = cv2.VideoCapture(str(src))
            fps = cap.get(cv2.CAP_PROP_FPS)
            self._fps = fps if 1 <= fps <= 120 else 25.0
        if not cap.isOpened():
            raise DeviceProtocolError(f"cv2.VideoCapture cannot open {src.name}", self.device_id)
        return cap

    def _do_open(self) -> None:
        if self._gone.is_set():
            raise DeviceGoneError(f"{self.device_id} was unplugged", self.device_id)
        if self._script is not None:
            self._source_name = "script"
            return
        self._cap = self._open_capture()

    def _do_close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    def _do_info(self) -> dict[str, Any]:
        return {"vendor": "biostation", "model": "simulated", "serial": self.attachment.key,
                "source": self._source_name, "fps": self._fps, "frames_played": self._played}

    def _do_apply_settings(self, requested: CameraSettings) -> CameraSettings:
        return CameraSettings(width=requested.width, height=requested.height,
                              fps=requested.fps or self._fps, exposure=None)

    def _scripted_frame(self, deadline: Deadline) -> np.ndarray:
        script = self._script
        assert script is not None
        while True:
            if callable(script):
                img = script(self._played)
            else:
                img = script[self._played % len(script)]
            if img is not None:
                return np.asarray(img)
            if deadline.expired():
                raise DeviceTimeoutError(f"{self.device_id}: the script gave no frame", self.device_id)
            deadline.sleep(0.01, self.device_id, "frame")

    def _do_read(self, deadline: Deadline) -> np.ndarray:
        if self._gone.is_set():
            raise DeviceGoneError(f"{self.device_id} was unplugged", self.device_id)
        fps = self.settings_fps()
        wait = self._last_t + self.settings.sim_time_scale / fps - time.monotonic()
        if wait > 0:
            deadline.sleep(wait, self.device_id, "frame")
        if self._script is not None:
            img = self._scripted_frame(deadline)
            self._played += 1
            self._last_t = time.monotonic()
            return self._shape(img)
        assert self._cap is not None
        ok, img = self._cap.read()
        if not ok:  # end of clip: loop
            self._cap.release()
            self._cap = self._open_capture()
            ok, img = self._cap.read()
            if not ok:
                raise DeviceTimeoutError(f"{self._source_name} gives no frames", self.device_id)
        self._last_t = time.monotonic()
        self._played += 1
        return self._shape(img)

    def _shape(self, img: np.ndarray) -> np.ndarray:
        if img.ndim == 2:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        elif img.ndim == 3 and img.shape[2] == 4:
            img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
        s = self.settings_size()
        if s is not None and (img.shape[1], img.shape[0]) != s:
            img = cv2.resize(img, s, interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(img)

    def settings_fps(self) -> float:
        return self._settings.fps or self._fps

    def settings_size(self) -> tuple[int, int] | None:
        s = self._settings
        return (s.width, s.height) if s.width and s.height else None
