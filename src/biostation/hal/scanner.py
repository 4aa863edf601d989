"""Fingerprint scanner interface.

A scanner captures impressions (flat single finger, 4-4-2 slaps, rolled), streams preview frames
and reports finger on/off. Drivers implement the ``_do_*`` hooks; the public methods here do the
state checks, timeouts, validation of what the driver returns, and the events.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..errors import DeviceError, DeviceProtocolError, DeviceStateError, DeviceTimeoutError
from ..records.vocabulary import FingerPosition, ImpressionKind
from .base import Device, DeviceClass, Feature
from .events import EventKind

_FEATURE_FOR_KIND = {
    ImpressionKind.FLAT: Feature.CAPTURE_FLAT,
    ImpressionKind.SLAP: Feature.CAPTURE_SLAP,
    ImpressionKind.ROLLED: Feature.CAPTURE_ROLLED,
}


@dataclass
class Impression:
    """A captured fingerprint image. ``image`` is 8-bit grey, ridges dark, shape (height, width)."""

    image: np.ndarray
    dpi: int
    kind: ImpressionKind
    position: FingerPosition
    device_id: str
    captured_at: float = field(default_factory=time.time)
    duration_s: float = 0.0

    def meta(self) -> dict[str, Any]:
        h, w = self.image.shape
        return {"width": w, "height": h, "dpi": self.dpi, "kind": self.kind.value,
                "position": int(self.position), "device_id": self.device_id,
                "captured_at": self.captured_at, "duration_s": round(self.duration_s, 4)}


@dataclass
class PreviewFrame:
    image: np.ndarray
    index: int
    finger_present: bool
    timestamp: float = field(default_factory=time.time)


class Deadline:
    """Monotonic deadline with cooperative cancellation, handed to driver hooks."""

    def __init__(self, timeout_s: float | None, cancel: threading.Event | None = None):
        self.end = None if timeout_s is None else time.monotonic() + timeout_s
        self.timeout_s = timeout_s
        self.cancel = cancel or threading.Event()

    def remaining(self) -> float | None:
        return None if self.end is None else max(0.0, self.end - time.monotonic())

    def expired(self) -> bool:
        return self.end is not None and time.monotonic() >= self.end

    def check(self, device_id: str, what: str) -> None:
        """Raise DeviceTimeoutError if the deadline passed or the operation was cancelled."""
        if self.cancel.is_set():
            raise DeviceTimeoutError(f"{what} cancelled", device_id)
        if self.expired():
            raise DeviceTimeoutError(f"{what} timed out after {self.timeout_s:.1f} s", device_id)

    def sleep(self, seconds: float, device_id: str, what: str) -> None:
        """Sleep, waking early to raise on timeout or cancellation."""
        end = time.monotonic() + seconds
        while True:
            self.check(device_id, what)
            left = end - time.monotonic()
            if left <= 0:
                return
            rem = self.remaining()
            if rem is not None:
                left = min(left, rem + 1e-4)  # wake right after the deadline, to raise
            self.cancel.wait(min(left, 0.05))


class FingerprintScanner(Device):
    """Base of fingerprint scanner drivers.

    Hooks a driver implements:

    * ``_do_capture(kind, position, deadline) -> (image, dpi)``: wait for a finger (honouring
      ``deadline``), capture, return a 2-D uint8 image.
    * ``_do_preview_frame(deadline) -> image | (image, finger_present)`` (drivers with
      ``Feature.PREVIEW``): a driver that knows whether the frame shows a finger returns it with
      the frame, so the two come from the same moment; otherwise ``_do_finger_present()`` is asked
      after the frame (a finger landing in between then flags a frame of the empty platen).
    * ``_do_finger_present() -> bool`` (drivers with ``Feature.FINGER_DETECT``).
    """

    device_class = DeviceClass.SCANNER
    #: largest image (height, width) the device can produce; larger answers are protocol errors
    max_image_size: ClassVar[tuple[int, int]] = (4096, 4096)
    #: default capture timeout in seconds
    default_timeout_s: ClassVar[float] = 15.0

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._finger: bool | None = None
        self._cancel = threading.Event()
        #: what the running (or last) preview is for: (impression kind, finger position)
        self.preview_mode: tuple[ImpressionKind, FingerPosition] = (ImpressionKind.FLAT, FingerPosition.UNKNOWN)

    # --- public API ------------------------------------------------------------------------------
    def capture(self, kind: ImpressionKind = ImpressionKind.FLAT,
                position: FingerPosition = FingerPosition.UNKNOWN,
                timeout_s: float | None = None) -> Impression:
        """Capture one impression; blocks until done, error or ``timeout_s`` (default 15 s).

        Raises DeviceBusyError, DeviceTimeoutError, DeviceGoneError, DeviceProtocolError or
        DeviceStateError (a kind this scanner does not support). Emits ``capture.started`` and
        then exactly one of ``capture.done`` / ``capture.error``.
        """
        kind = ImpressionKind(kind)
        position = FingerPosition(position)
        if not (self.features & _FEATURE_FOR_KIND[kind]):
            raise DeviceStateError(f"{self.device_id} cannot capture {kind.value} impressions", self.device_id)
        deadline = Deadline(self.default_timeout_s if timeout_s is None else timeout_s)
        with self._operation(f"capture:{kind.value}"):
            self._cancel.clear()
            deadline.cancel = self._cancel
            t0 = time.monotonic()
            self.bus.emit(EventKind.CAPTURE_STARTED, self.device_id, kind=kind.value, position=int(position))
            try:
                image, dpi = self._do_capture(kind, position, deadline)
                image = self._validate_image(image)
            except DeviceError as exc:
                self.bus.emit(EventKind.CAPTURE_ERROR, self.device_id, error=type(exc).__name__,
                              reason=str(exc))
                raise
            except Exception as exc:  # a driver bug must still end the operation cleanly
                self.bus.emit(EventKind.CAPTURE_ERROR, self.device_id, error="DeviceProtocolError",
                              reason=f"driver failure: {exc!r}")
                raise DeviceProtocolError(f"driver failure: {exc!r}", self.device_id) from exc
            imp = Impression(image, int(dpi), kind, position, self.device_id,
                             duration_s=time.monotonic() - t0)
            h, w = image.shape
            self.bus.emit(EventKind.CAPTURE_DONE, self.device_id, kind=kind.value, width=w, height=h,
                          dpi=int(dpi), duration_s=round(imp.duration_s, 3))
            return imp

    def cancel(self) -> None:
        """Ask a running capture or preview to stop; it raises DeviceTimeoutError('cancelled')."""
        self._cancel.set()

    def preview(self, max_frames: int | None = None, timeout_s: float | None = None,
                kind: ImpressionKind = ImpressionKind.FLAT,
                position: FingerPosition = FingerPosition.UNKNOWN) -> Iterator[PreviewFrame]:
        """Live preview frames until ``max_frames``, ``timeout_s`` or :meth:`cancel`.

        ``kind`` and ``position`` say what the preview is for (a slap scanner shows its four-finger
        window for a slap); drivers read them as :attr:`preview_mode`. The device stays busy while
        the iterator is open; close it (or exhaust it) to release.
        """
        if not (self.features & Feature.PREVIEW):
            raise DeviceStateError(f"{self.device_id} has no live preview", self.device_id)
        deadline = Deadline(timeout_s)
        self.preview_mode = (ImpressionKind(kind), FingerPosition(position))
        with self._operation("preview"):
            self._cancel.clear()
            deadline.cancel = self._cancel
            n = 0
            while max_frames is None or n < max_frames:
                if self._cancel.is_set() or deadline.expired():
                    return
                got = self._do_preview_frame(deadline)
                image, present = got if isinstance(got, tuple) else (got, None)
                frame = self._validate_image(image)
                present = self._update_finger(self._do_finger_present() if present is None else present)
                yield PreviewFrame(frame, n, present)
                n += 1

    def finger_present(self) -> bool:
        """Is a finger on the platen now? Emits ``finger.on`` / ``finger.off`` on change."""
        self._require_open()
        if not (self.features & Feature.FINGER_DETECT):
            raise DeviceStateError(f"{self.device_id} cannot detect fingers", self.device_id)
        return self._update_finger(self._do_finger_present())

    def wait_for_finger(self, present: bool = True, timeout_s: float = 10.0, poll_s: float = 0.02) -> None:
        """Block until a finger is (or is no longer) on the platen; DeviceTimeoutError after ``timeout_s``."""
        deadline = Deadline(timeout_s)
        while self.finger_present() != present:
            deadline.sleep(poll_s, self.device_id, "waiting for finger " + ("on" if present else "off"))

    # --- internals --------------------------------------------------------------------------------
    def _update_finger(self, present: bool) -> bool:
        present = bool(present)
        if present != self._finger:
            first = self._finger is None
            self._finger = present
            if not (first and not present):
                self.bus.emit(EventKind.FINGER_ON if present else EventKind.FINGER_OFF, self.device_id)
        return present

    def _validate_image(self, image: Any) -> np.ndarray:
        if not isinstance(image, np.ndarray) or image.ndim != 2 or image.dtype != np.uint8:
            desc = f"{type(image).__name__} {getattr(image, 'shape', '')} {getattr(image, 'dtype', '')}"
            raise DeviceProtocolError(f"driver returned {desc.strip()}, expected a 2-D uint8 image",
                                      self.device_id)
        h, w = image.shape
        mh, mw = self.max_image_size
        if h < 16 or w < 16 or h > mh or w > mw:
            raise DeviceProtocolError(f"driver returned a {w}x{h} image; this device makes at most "
                                      f"{mw}x{mh} and at least 16x16", self.device_id)
        return image

    # --- hooks -------------------------------------------------------------------------------------
    def _do_capture(self, kind: ImpressionKind, position: FingerPosition,
                    deadline: Deadline) -> tuple[np.ndarray, int]:
        raise DeviceStateError(f"{self.id} does not implement capture", self.device_id)

    def _do_preview_frame(self, deadline: Deadline) -> np.ndarray | tuple[np.ndarray, bool]:
        raise DeviceStateError(f"{self.id} does not implement preview", self.device_id)

    def _do_finger_present(self) -> bool:
        raise DeviceStateError(f"{self.id} does not implement finger detection", self.device_id)
