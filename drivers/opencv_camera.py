"""Camera driver for V4L2 devices (USB webcams, document cameras) on ``cv2.VideoCapture``.

Devices are found as ``/dev/video*`` capture nodes (metadata nodes, whose sysfs ``index`` is not
0, are left out). An attachment names its device by path (``v4l2:/dev/video2``) or by index
(``v4l2:2``, which means ``/dev/video2``). Resolution, frame rate and exposure are set where the
device allows and read back (what the device reports is what :meth:`configure` returns; a
camera without manual exposure simply reports its own value). A device that stops giving frames
is reopened, with the last settings, until the read deadline (a USB reset, a replug into the
same port); a device node that disappears is reported GONE.

``api_preference`` is a class attribute (``cv2.CAP_V4L2``) so that a replay test can subclass
the driver with ``cv2.CAP_ANY`` and a video file standing in for the node.
"""

from __future__ import annotations

import glob
import os
from typing import Any

import cv2
import numpy as np

from biostation.config import Settings
from biostation.errors import DeviceGoneError, DeviceProtocolError, DeviceTimeoutError
from biostation.hal import Attachment, Camera, CameraSettings, Deadline, Feature


class OpenCVCamera(Camera):
    id = "opencv-v4l2"
    full_name = "V4L2 camera (OpenCV)"
    features = Feature.CAMERA_SETTINGS | Feature.PREVIEW
    #: OpenCV capture backend; V4L2 on Linux
    api_preference: int = cv2.CAP_V4L2
    #: pause before reopening a device that stopped giving frames (s)
    reopen_pause_s: float = 0.2

    @classmethod
    def probe(cls, settings: Settings) -> list[Attachment]:
        out = []
        for node in sorted(glob.glob("/dev/video*")):
            name = ""
            sysdir = f"/sys/class/video4linux/{os.path.basename(node)}"
            if os.path.exists(f"{sysdir}/name"):
                with open(f"{sysdir}/name") as f:
                    name = f.read().strip()
            if os.path.exists(f"{sysdir}/index"):
                with open(f"{sysdir}/index") as f:
                    if f.read().strip() not in ("", "0"):
                        continue  # a metadata node of a camera listed already
            out.append(Attachment("v4l2", f"v4l2:{node}", name or node, extra=(("path", node),)))
        return out

    @classmethod
    def discover(cls, attachment: Attachment) -> int:
        return 50 if attachment.bus == "v4l2" else 0

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._cap: cv2.VideoCapture | None = None
        self._path = device_path(self.attachment.get("path", self.attachment.key.split(":", 1)[-1]))
        self._reopens = 0

    def _open(self) -> cv2.VideoCapture:
        if not os.path.exists(self._path):
            raise DeviceGoneError(f"{self._path} is gone", self.device_id)
        cap = cv2.VideoCapture(self._path, self.api_preference)
        if not cap.isOpened():
            raise DeviceProtocolError(f"cannot open {self._path}", self.device_id)
        self._apply(cap, self._settings)
        return cap

    def _do_open(self) -> None:
        self._cap = self._open()

    def _do_close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    @staticmethod
    def _apply(cap: cv2.VideoCapture, s: CameraSettings) -> None:
        if s.width and s.height:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, s.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, s.height)
        if s.fps:
            cap.set(cv2.CAP_PROP_FPS, s.fps)
        if s.exposure is None:
            cap.set(cv2.CAP_PROP_AUTO_EXPOSURE, 3)  # V4L2 aperture-priority (auto)
        else:
            cap.set(cv2.CAP_PROP_AUTO_EXPOSURE, 1)  # manual
            cap.set(cv2.CAP_PROP_EXPOSURE, s.exposure)

    def _do_apply_settings(self, requested: CameraSettings) -> CameraSettings:
        assert self._cap is not None
        self._apply(self._cap, requested)
        c = self._cap
        return CameraSettings(width=int(c.get(cv2.CAP_PROP_FRAME_WIDTH)) or None,
                              height=int(c.get(cv2.CAP_PROP_FRAME_HEIGHT)) or None,
                              fps=c.get(cv2.CAP_PROP_FPS) or None,
                              exposure=None if requested.exposure is None else c.get(cv2.CAP_PROP_EXPOSURE))

    def _do_read(self, deadline: Deadline) -> np.ndarray:
        while True:
            if self._cap is not None:
                ok, img = self._cap.read()
                if ok and img is not None:
                    if img.ndim == 2:  # monochrome (IR) cameras
                        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
                    return img
                self._cap.release()
                self._cap = None
            if not os.path.exists(self._path):
                raise DeviceGoneError(f"{self._path} was unplugged", self.device_id)
            if deadline.expired():
                raise DeviceTimeoutError(f"no frame from {self._path}", self.device_id)
            # the device stopped giving frames: give the kernel driver a moment, then reopen
            deadline.sleep(self.reopen_pause_s, self.device_id, f"reading {self._path}")
            try:
                self._cap = self._open()
                self._reopens += 1
            except DeviceProtocolError:
                pass

    def _do_info(self) -> dict[str, Any]:
        return {"model": self.attachment.name, "serial": self._path, "reopens": self._reopens}


def device_path(spec: str) -> str:
    """``"2"`` -> ``"/dev/video2"``; a path is returned unchanged."""
    spec = spec.strip()
    return f"/dev/video{int(spec)}" if spec.isdigit() else spec
