"""Camera interface: device info, frames, settings.

Drivers implement ``_do_read(deadline) -> BGR image`` and optionally
``_do_apply_settings(requested) -> actual``. The public methods check state, validate frames
and time out; a driver whose device vanished raises DeviceGoneError and the camera goes GONE
(a reconnecting driver may instead retry inside ``_do_read`` until the deadline).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..errors import DeviceError, DeviceProtocolError, DeviceStateError
from .base import Device, DeviceClass
from .scanner import Deadline


@dataclass
class CameraSettings:
    """Requested or actual settings; ``None`` means "device default" / "unknown"."""

    width: int | None = None
    height: int | None = None
    fps: float | None = None
    exposure: float | None = None  # driver units (V4L2: 100 us steps); None = auto

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Frame:
    """One colour frame, BGR uint8 (OpenCV order), shape (height, width, 3)."""

    image: np.ndarray
    index: int
    timestamp: float = field(default_factory=time.time)


class Camera(Device):
    device_class = DeviceClass.CAMERA
    default_timeout_s = 5.0

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._settings = CameraSettings()
        self._index = 0

    @property
    def camera_settings(self) -> CameraSettings:
        """The settings in use (as the device reports them)."""
        return self._settings

    def configure(self, requested: CameraSettings) -> CameraSettings:
        """Apply settings where the device allows; returns what the device actually uses."""
        with self._operation("configure"):
            self._settings = self._do_apply_settings(requested)
            return self._settings

    def read(self, timeout_s: float | None = None) -> Frame:
        """Grab one frame (blocking up to ``timeout_s``, default 5 s)."""
        deadline = Deadline(self.default_timeout_s if timeout_s is None else timeout_s)
        with self._operation("read"):
            return self._read_one(deadline)

    def frames(self, max_frames: int | None = None, timeout_s: float | None = None) -> Iterator[Frame]:
        """Stream frames; the camera stays busy while the iterator is open."""
        with self._operation("stream"):
            n = 0
            while max_frames is None or n < max_frames:
                yield self._read_one(Deadline(self.default_timeout_s if timeout_s is None else timeout_s))
                n += 1

    def _read_one(self, deadline: Deadline) -> Frame:
        try:
            img = self._do_read(deadline)
        except DeviceError:
            raise
        except Exception as exc:
            raise DeviceProtocolError(f"driver failure: {exc!r}", self.device_id) from exc
        if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise DeviceProtocolError(f"driver returned {getattr(img, 'shape', type(img).__name__)}, "
                                      "expected an HxWx3 uint8 BGR frame", self.device_id)
        frame = Frame(img, self._index)
        self._index += 1
        return frame

    # --- hooks ---------------------------------------------------------------------------------------
    def _do_read(self, deadline: Deadline) -> np.ndarray:
        raise DeviceStateError(f"{self.id} does not implement frame reading", self.device_id)

    def _do_apply_settings(self, requested: CameraSettings) -> CameraSettings:
        return self._settings
