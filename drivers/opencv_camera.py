"""Camera driver for V4L2 devices (USB webcams, document cameras) on ``cv2.VideoCapture``.

Devices are found as ``/dev/video*`` nodes that OpenCV can open; resolution, frame rate and
exposure are set where the device allows and read back (what the device reports is what
:meth:`configure` returns). A device that stops giving frames is reopened until the read
deadline; a device node that disappears is reported GONE.
"""

from __future__ import annotations

import glob
import os
import time
from typing import Any

import cv2
import numpy as np

from biostation.config import Settings
from biostation.errors import DeviceGoneError, DeviceProtocolError, DeviceTimeoutError
from biostation.hal import Attachment, Camera, CameraSettings, Deadline, Feature


class OpenCVCamera(Camera):
    id = "opencv-v4l2"
    full_name = "V4L2 camera (OpenCV)"
    features = Feature.CAMERA_SETTINGS

    @classmethod
    def probe(cls, settings: Settings) -> list[Attachment]:
        out = []
        for node in sorted(glob.glob("/dev/video*")):
            name = ""
            sysname = f"/sys/class/video4linux/{os.path.basename(node)}/name"
            if os.path.exists(sysname):
                with open(sysname) as f:
                    name = f.read().strip()
            out.append(Attachment("v4l2", f"v4l2:{node}", name or node, extra=(("path", node),)))
        return out

    @classmethod
    def discover(cls, attachment: Attachment) -> int:
        return 50 if attachment.bus == "v4l2" else 0

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._cap: cv2.VideoCapture | None = None
        self._path = self.attachment.get("path", self.attachment.key.split(":", 1)[-1])

    def _open(self) -> cv2.VideoCapture:
        if not os.path.exists(self._path):
            raise DeviceGoneError(f"{self._path} is gone", self.device_id)
        cap = cv2.VideoCapture(self._path, cv2.CAP_V4L2)
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
                    return img
                self._cap.release()
                self._cap = None
            if not os.path.exists(self._path):
                raise DeviceGoneError(f"{self._path} was unplugged", self.device_id)
            if deadline.expired():
                raise DeviceTimeoutError(f"no frame from {self._path}", self.device_id)
            time.sleep(0.2)  # replugged node: give the driver a moment, then reopen
            try:
                self._cap = self._open()
            except DeviceProtocolError:
                pass

    def _do_info(self) -> dict[str, Any]:
        return {"model": self.attachment.name, "serial": self._path}
