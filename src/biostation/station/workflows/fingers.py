"""Fingerprint capture at the desk: one capture with its quality, and the capture loop.

:func:`capture_assessed` is one capture with the NFIQ 2 score a desk shows beside it (what the
daemon's capture route answers). One :class:`CaptureLoop` drives one
:class:`~biostation.hal.FingerprintScanner` through a session plan (for instance the ten flat
fingers, or the 4-4-2 slaps): preview with quality overlay, auto-capture, exceptions:

1. **Finger off first.** A finger still on the platen from the previous capture must lift
   (``finger_off_timeout_s``), so one touch is never recorded twice (a caller whose client showed
   its own preview first turns this off with ``finger_off_first=False``).
2. **Live preview.** Frames stream from the scanner; every frame gets an overlay (a border in
   red/amber/green and the last quality score) and goes to ``on_frame``. Quality is assessed on
   a worker thread, at most every ``quality_interval_s`` (NFIQ 2 costs 10-50 ms), so the preview
   keeps the scanner's rate (>= 10 frames a second with the simulated scanner; tested).
3. **Auto-capture.** When a frame with the finger on reaches ``threshold`` (or the finger has
   stayed on for ``settle_assessments`` scores without reaching it: it will not get better by
   waiting), the preview closes and the scanner captures; the capture's own quality decides. Below the threshold the loop
   retries until ``timeout_s``, keeping the best impression.
4. **Timeout.** When the time is up the best impression so far is kept and the finger is
   recorded as ``low_quality`` (or ``failed`` with reason ``timeout`` if nothing was captured):
   the session goes on; it never blocks on one finger.
5. **Exceptions.** Fingers declared missing or bandaged are recorded with an ANSI/NIST-ITL
   amputation / unable-to-print code (:class:`Reason`) and never touch the device.

Scanners without preview go straight to capture (steps 2-3 without frames). The quality function
is injected (default: NFIQ 2 from :mod:`biostation.fingerprint.nfiq2`; a slap is segmented and
scored by its weakest finger, the fingers declared missing left out). Thread-safety: one loop per scanner, used
from one thread; :meth:`CaptureLoop.cancel` may be called from any thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from ...errors import DeviceError, DeviceTimeoutError, ImageError
from ...hal import Feature, FingerprintScanner, Impression, PreviewFrame
from ...records import FingerPosition, ImpressionKind

log = logging.getLogger(__name__)

QualityFn = Callable[[np.ndarray, int], int]


class Reason(str, Enum):
    """Why a finger has no (good) impression. Codes of ANSI/NIST-ITL 1-2011 field 14.018 where
    they exist (``XX`` amputated, ``UP`` unable to print, e.g. bandaged)."""

    AMPUTATED = "XX"
    UNABLE_TO_PRINT = "UP"
    TIMEOUT = "timeout"
    DEVICE_ERROR = "device_error"


class Status(str, Enum):
    CAPTURED = "captured"  # quality reached the threshold
    LOW_QUALITY = "low_quality"  # best impression kept after the timeout
    SKIPPED = "skipped"  # declared missing or bandaged
    FAILED = "failed"  # nothing captured (timeout, device error)


@dataclass
class FingerResult:
    position: FingerPosition
    kind: ImpressionKind
    status: Status
    impression: Impression | None = None
    quality: int | None = None
    reason: Reason | None = None
    detail: str = ""
    attempts: int = 0
    preview_frames: int = 0
    duration_s: float = 0.0

    def summary(self) -> dict:
        """JSON-able facts, without the image."""
        return {"position": int(self.position), "kind": self.kind.value, "status": self.status.value,
                "quality": self.quality, "reason": self.reason.value if self.reason else None,
                "detail": self.detail, "attempts": self.attempts, "preview_frames": self.preview_frames,
                "duration_s": round(self.duration_s, 3)}


@dataclass
class OverlayFrame:
    """A preview frame for the operator: the grey frame, a BGR overlay, the last quality seen."""

    frame: PreviewFrame
    overlay: np.ndarray
    quality: int | None
    position: FingerPosition


@dataclass
class SessionResult:
    fingers: list[FingerResult] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every planned finger is either captured or an accepted exception."""
        return all(f.status in (Status.CAPTURED, Status.SKIPPED) for f in self.fingers)

    def summary(self) -> list[dict]:
        return [f.summary() for f in self.fingers]


def nfiq2_quality(image: np.ndarray, dpi: int) -> int:
    """Default quality function: the NFIQ 2 score (0 for an image it cannot assess)."""
    from ...fingerprint.nfiq2 import nfiq2

    try:
        return nfiq2(image, dpi=dpi).score
    except ImageError:
        return 0


@dataclass
class AssessedImpression:
    """A captured impression and its NFIQ 2 score (None when not assessed; ``note`` says why
    the score is 0 or absent)."""

    impression: Impression
    nfiq2: int | None
    note: str = ""


def capture_assessed(scanner: FingerprintScanner, kind: ImpressionKind, position: FingerPosition, *,
                     timeout_s: float, assess: bool = True) -> AssessedImpression:
    """One capture on ``scanner`` and, for flat and rolled prints, its NFIQ 2 score (NFIQ 2 is
    defined for single fingers: slaps are segmented first by the capture loop). Device errors
    propagate; an image NFIQ 2 cannot assess gets no score and the reason."""
    from ...fingerprint import nfiq2

    imp = scanner.capture(kind, position, timeout_s=timeout_s)
    score, note = None, ""
    if assess and imp.kind is not ImpressionKind.SLAP:
        try:
            result = nfiq2(imp.image, dpi=imp.dpi)
            score, note = result.score, result.reason
        except ImageError as exc:
            note = str(exc)
    return AssessedImpression(imp, score, note)


SLAPS = (FingerPosition.PLAIN_RIGHT_FOUR, FingerPosition.PLAIN_LEFT_FOUR, FingerPosition.PLAIN_THUMBS)


def slap_quality(image: np.ndarray, dpi: int, slap: FingerPosition, missing: Iterable[FingerPosition] = ()) -> int:
    """Quality of a slap: segment it, NFIQ 2 of every finger, the lowest one (every finger must
    be good); 0 when the slap cannot be segmented or a finger is not found."""
    from ...fingerprint.slap import segment_slap

    try:
        result = segment_slap(image, slap, dpi=dpi, missing=missing)
    except ImageError:
        return 0
    if result.problems or not result.fingers:
        return 0
    return min(f.quality or 0 for f in result.fingers)


def overlay(image: np.ndarray, quality: int | None, threshold: int, finger: bool) -> np.ndarray:
    """BGR copy of a grey frame with a quality border (green >= threshold, amber, red) and text."""
    import cv2

    bgr = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if not finger:
        colour, text = (160, 160, 160), "place finger"
    elif quality is None:
        colour, text = (0, 200, 255), "assessing"
    else:
        colour = (0, 200, 0) if quality >= threshold else (0, 200, 255) if quality >= threshold // 2 else (0, 0, 230)
        text = f"NFIQ2 {quality}"
    t = max(2, min(image.shape) // 60)
    cv2.rectangle(bgr, (0, 0), (bgr.shape[1] - 1, bgr.shape[0] - 1), colour, t)
    cv2.putText(bgr, text, (2 * t, 8 * t), cv2.FONT_HERSHEY_SIMPLEX, t / 5, colour, max(1, t // 2))
    return bgr


class CaptureLoop:
    """Drives one scanner through a capture plan; see the module doc."""

    def __init__(self, scanner: FingerprintScanner, *, threshold: int = 40, timeout_s: float = 15.0,
                 quality: QualityFn | None = None, quality_interval_s: float = 0.2,
                 finger_off_timeout_s: float = 10.0, max_attempts: int = 3, preview_dpi: int = 500,
                 settle_assessments: int = 3,
                 on_frame: Callable[[OverlayFrame], None] | None = None, finger_off_first: bool = True):
        if not 0 <= threshold <= 100:
            raise ValueError("threshold is an NFIQ 2 score, 0..100")
        self.scanner = scanner
        self.threshold = threshold
        self.timeout_s = timeout_s
        self._default_quality = quality is None
        self.quality = quality or nfiq2_quality
        #: slap -> its fingers declared missing (set by :meth:`run` from the exceptions)
        self._missing: dict[FingerPosition, tuple[FingerPosition, ...]] = {}
        self.quality_interval_s = quality_interval_s
        self.finger_off_timeout_s = finger_off_timeout_s
        self.max_attempts = max_attempts
        self.on_frame = on_frame
        self.preview_dpi = preview_dpi
        self.settle_assessments = settle_assessments
        #: step 1 of the module doc; False where the caller knows the finger on the platen is a new
        #: touch (a client that showed its own preview before asking for the capture)
        self.finger_off_first = finger_off_first
        self._cancel = threading.Event()

    def cancel(self) -> None:
        """Stop the running finger (recorded as failed/timeout) and the session."""
        self._cancel.set()
        self.scanner.cancel()

    # --- one finger -----------------------------------------------------------------------------------
    def capture_finger(self, position: FingerPosition, kind: ImpressionKind = ImpressionKind.FLAT,
                       exception: Reason | None = None, missing: Iterable[FingerPosition] = ()) -> FingerResult:
        """Capture one finger (or slap) until the threshold, the timeout or an exception.
        ``missing``: for a slap, its fingers declared absent (its quality leaves them out)."""
        position, kind = FingerPosition(position), ImpressionKind(kind)
        if position in SLAPS and missing:
            from ...fingerprint.slap import SLAP_ORDER

            self._missing[position] = tuple(p for p in SLAP_ORDER[position] if p in set(missing))
        if exception is not None:
            return FingerResult(position, kind, Status.SKIPPED, reason=Reason(exception),
                                detail="declared by the operator")
        t0 = time.monotonic()
        deadline = t0 + self.timeout_s
        result = FingerResult(position, kind, Status.FAILED, reason=Reason.TIMEOUT)
        try:
            self.scanner.open()  # idempotent
            if self.finger_off_first:
                self._wait_finger_off(deadline)
            while result.attempts < self.max_attempts and not self._cancel.is_set():
                if time.monotonic() >= deadline:
                    break
                if self.scanner.features & Feature.PREVIEW:
                    self._preview_until_ready(result, deadline)
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._cancel.is_set():
                    break
                imp = self.scanner.capture(kind, position, timeout_s=remaining)
                result.attempts += 1
                q = self._assess(imp.image, imp.dpi, position)
                if result.quality is None or q > result.quality:
                    result.impression, result.quality = imp, q
                if q >= self.threshold:
                    break
                self._wait_finger_off(deadline)
        except DeviceTimeoutError as exc:
            result.detail = str(exc)
        except DeviceError as exc:  # unplugged, protocol error: record it, the session goes on
            result.reason, result.detail = Reason.DEVICE_ERROR, f"{type(exc).__name__}: {exc}"
        if result.impression is not None:
            ok = result.quality is not None and result.quality >= self.threshold
            result.status = Status.CAPTURED if ok else Status.LOW_QUALITY
            result.reason = None if ok else (result.reason or Reason.TIMEOUT)
        result.duration_s = time.monotonic() - t0
        log.info("finger %d: %s (quality %s, %d attempts)", int(position), result.status.value,
                 result.quality, result.attempts)
        return result

    def run(self, plan: Iterable[tuple[FingerPosition, ImpressionKind]],
            exceptions: Mapping[FingerPosition, Reason] | None = None) -> SessionResult:
        """Capture every entry of ``plan`` in order; ``exceptions`` maps fingers to skip reasons."""
        exceptions = dict(exceptions or {})
        from ...fingerprint.slap import SLAP_ORDER

        self._missing = {slap: tuple(p for p in fingers if FingerPosition(p) in exceptions)
                         for slap, fingers in SLAP_ORDER.items()}
        self._cancel.clear()
        session = SessionResult()
        for position, kind in plan:
            if self._cancel.is_set():
                session.fingers.append(FingerResult(FingerPosition(position), ImpressionKind(kind), Status.FAILED,
                                                    reason=Reason.TIMEOUT, detail="session cancelled"))
                continue
            session.fingers.append(self.capture_finger(position, kind, exceptions.get(FingerPosition(position))))
        return session

    # --- internals -------------------------------------------------------------------------------------
    def _assess(self, image: np.ndarray, dpi: int, position: FingerPosition) -> int:
        if self._default_quality and position in SLAPS:
            return slap_quality(image, dpi, position, self._missing.get(position, ()))
        return int(self.quality(image, dpi))

    def _wait_finger_off(self, deadline: float) -> None:
        if not self.scanner.features & Feature.FINGER_DETECT:
            return
        limit = max(0.0, min(self.finger_off_timeout_s, deadline - time.monotonic()))
        self.scanner.wait_for_finger(False, timeout_s=limit)

    def _preview_until_ready(self, result: FingerResult, deadline: float) -> None:
        """Stream preview frames until one with the finger on reaches the threshold (or time is up).

        Quality runs on a worker thread, one frame at a time (the newest when the worker is free,
        at most every ``quality_interval_s``), so assessing never slows the preview down; a
        frame's overlay shows the latest score available.
        """
        from concurrent.futures import Future, ThreadPoolExecutor

        last_q: int | None = None
        assessed_on = 0  # scores received while the finger stays on
        last_submit = 0.0
        pending: Future | None = None
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="quality")
        frames = self.scanner.preview(timeout_s=max(0.0, deadline - time.monotonic()), kind=result.kind,
                                      position=result.position)
        try:
            for frame in frames:
                result.preview_frames += 1
                now = time.monotonic()
                if pending is not None and pending.done():
                    try:
                        last_q = int(pending.result())
                        assessed_on += 1
                    except Exception:  # an unassessable frame: no score, keep previewing
                        last_q = None
                    pending = None
                if not frame.finger_present:
                    last_q, assessed_on = None, 0
                elif pending is None and now - last_submit >= self.quality_interval_s:
                    last_submit = now
                    pending = pool.submit(self._assess, frame.image.copy(), self.preview_dpi, result.position)
                if self.on_frame is not None:
                    self.on_frame(OverlayFrame(frame, overlay(frame.image, last_q, self.threshold,
                                                              frame.finger_present), last_q, result.position))
                ready = last_q is not None and last_q >= self.threshold
                settled = assessed_on >= self.settle_assessments  # on, but not getting better
                if (frame.finger_present and (ready or settled)) or self._cancel.is_set() or now >= deadline:
                    break
        finally:
            frames.close()  # releases the scanner for the capture
            pool.shutdown(wait=True, cancel_futures=True)
