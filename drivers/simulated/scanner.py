"""Simulated fingerprint scanner: serves images from a folder with realistic timing.

Default folder: ``../shared/data/fvc2002`` when present (the FVC2002 B images, each database at
its own resolution), else a few synthetic fingerprints made by the package. A capture waits for
the simulated finger to land (``place_s``), scans (``scan_s``) and lifts it (``lift_s``); all
delays are multiplied by ``Settings.sim_time_scale`` (0 in fast tests). Preview frames come at
``preview_fps`` and show the finger settling.

Tests script it: ``SimulatedScanner.create(images=[...])`` or ``source=callable``, and faults:
:meth:`unplug` (the device vanishes, mid-capture too), ``stall=True`` (never delivers an image,
so the capture times out), ``wrong_size=True`` (returns an image larger than the device can make).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np

from biostation.config import Settings
from biostation.errors import DeviceGoneError, ImageError
from biostation.hal import (
    Attachment,
    Deadline,
    Feature,
    FingerPosition,
    FingerprintScanner,
    ImpressionKind,
)

from .applicants import Applicants
from .synthetic import synthetic_set

#: resolutions of the FVC2002 B databases (``../shared/data/fvc2002/README.md``); the TIFF tags
#: in those files are meaningless
FVC2002_DPI = {"DB1_B": 500, "DB2_B": 569, "DB3_B": 500, "DB4_B": 500}
IMAGE_SUFFIXES = {".tif", ".tiff", ".png", ".bmp", ".pgm", ".jpg", ".jpeg"}

Source = Callable[[ImpressionKind, FingerPosition], tuple[np.ndarray, int]]


def folder_images(folder: Path) -> list[tuple[Path, int | None]]:
    """Image files below ``folder`` in a stable order, with the dpi known for FVC2002 folders."""
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    return [(p, next((d for part, d in FVC2002_DPI.items() if part in p.parts), None)) for p in files]


class SimulatedScanner(FingerprintScanner):
    id = "simulated-scanner"
    full_name = "Simulated fingerprint scanner"
    features = (Feature.SIMULATED | Feature.CAPTURE_FLAT | Feature.CAPTURE_ROLLED | Feature.CAPTURE_SLAP
                | Feature.PREVIEW | Feature.FINGER_DETECT)
    max_image_size = (2048, 2048)

    place_s: ClassVar[float] = 0.6
    scan_s: ClassVar[float] = 0.25
    lift_s: ClassVar[float] = 0.4
    preview_fps: ClassVar[float] = 15.0

    _unplugged: ClassVar[set[str]] = set()

    @classmethod
    def probe(cls, settings: Settings) -> list[Attachment]:
        key = "sim:scanner0"
        return [] if key in cls._unplugged else [Attachment("sim", key, cls.full_name)]

    @classmethod
    def discover(cls, attachment: Attachment) -> int:
        return 50 if attachment.bus == "sim" and attachment.key.startswith("sim:scanner") else 0

    @classmethod
    def create(cls, images: Sequence[np.ndarray] | None = None, source: Source | None = None,
               dpi: int = 500, settings: Settings | None = None, key: str = "sim:scanner-test",
               **faults: Any) -> SimulatedScanner:
        """A scanner for tests or embedding, fed from ``images`` (cycled) or ``source``."""
        settings = settings or Settings(sim_time_scale=0.0)
        dev = cls(Attachment("sim", key, cls.full_name), settings)
        if images is not None:
            it = itertools.cycle(list(images))
            dev._source = lambda kind, pos: (next(it), dpi)
        elif source is not None:
            dev._source = source
        for name, value in faults.items():
            if name not in ("stall", "wrong_size"):
                raise TypeError(f"unknown fault {name!r}")
            setattr(dev, name, value)
        return dev

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._source: Source | None = None
        self._files: list[tuple[Path, int | None]] | None = None
        self._synthetic: list[np.ndarray] | None = None
        self._applicants: Applicants | None = None
        self._preview_key: tuple[Any, ...] | None = None
        self._next = 0
        self._finger_until = 0.0  # monotonic time the simulated finger leaves the platen
        self._finger_from = float("inf")
        self._gone = threading.Event()
        self._last: np.ndarray | None = None
        self.stall = False
        self.wrong_size = False

    # --- faults ----------------------------------------------------------------------------------
    def unplug(self) -> None:
        """The device vanishes: running and later operations fail with DeviceGoneError."""
        self._gone.set()
        type(self)._unplugged.add(self.attachment.key)
        self._cancel.set()

    @classmethod
    def replug(cls, key: str = "sim:scanner0") -> None:
        cls._unplugged.discard(key)

    @classmethod
    def replug_all(cls) -> None:
        """Every unplugged simulated scanner is back on its bus (the registry's next scan finds it)."""
        cls._unplugged.clear()

    #: faults an operator (training) or a test can switch on through the API; ``next_applicant``
    #: is no fault: the next simulated person steps up to the scanner
    FAULTS: ClassVar[tuple[str, ...]] = ("unplug", "stall", "wrong_size", "clear", "next_applicant")

    def simulate(self, fault: str) -> None:
        """Switch on a fault by name (see :attr:`FAULTS`); ``clear`` switches stall/wrong_size off."""
        if fault == "unplug":
            self.unplug()
        elif fault == "next_applicant":
            self.applicants.next()
        elif fault in ("stall", "wrong_size"):
            setattr(self, fault, True)
        elif fault == "clear":
            self.stall = self.wrong_size = False
        else:
            raise ValueError(f"unknown fault {fault!r}; known: {', '.join(self.FAULTS)}")

    # --- image source -----------------------------------------------------------------------------
    def _scale(self, seconds: float) -> float:
        return seconds * self.settings.sim_time_scale

    @property
    def applicants(self) -> Applicants:
        """The simulated people whose fingers captures of a finger or slap position return."""
        if self._applicants is None:
            def generated(who: int) -> list[np.ndarray]:
                return synthetic_set(fingers=10, impressions=8, seed=7000 + 100_000 * who)

            self._applicants = Applicants(self.settings.resolved_scanner_dir(), generated)
        return self._applicants

    def _next_image(self, kind: ImpressionKind, position: FingerPosition) -> tuple[np.ndarray, int]:
        if self._source is not None:
            return self._source(kind, position)
        if position != FingerPosition.UNKNOWN:
            return self.applicants.capture(kind, position)
        if self._files is None:
            folder = self.settings.resolved_scanner_dir()
            self._files = folder_images(folder) if folder and folder.is_dir() else []
        if self._files:
            path, dpi = self._files[self._next % len(self._files)]
            self._next += 1
            img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            if img is None:
                raise ImageError(f"simulated scanner cannot read {path.name}")
            return img, dpi or self.settings.sim_scanner_dpi
        if self._synthetic is None:
            self._synthetic = synthetic_set()
        img = self._synthetic[self._next % len(self._synthetic)]
        self._next += 1
        return img, self.settings.sim_scanner_dpi

    def _check_gone(self) -> None:
        if self._gone.is_set():
            raise DeviceGoneError(f"{self.device_id} was unplugged", self.device_id)

    def _wait(self, seconds: float, deadline: Deadline, what: str) -> None:
        try:
            deadline.sleep(self._scale(seconds), self.device_id, what)
        finally:
            self._check_gone()

    # --- hooks ---------------------------------------------------------------------------------------
    def _do_open(self) -> None:
        self._check_gone()

    def _do_info(self) -> dict[str, Any]:
        folder = self.settings.resolved_scanner_dir()
        return {"vendor": "biostation", "model": "simulated", "serial": self.attachment.key,
                "source": "custom" if self._source else (folder.name if folder else "synthetic"),
                "faults": list(self.FAULTS)}

    def _do_finger_present(self) -> bool:
        self._check_gone()
        now = time.monotonic()
        return self._finger_from <= now < self._finger_until

    def _do_capture(self, kind: ImpressionKind, position: FingerPosition,
                    deadline: Deadline) -> tuple[np.ndarray, int]:
        self._check_gone()
        now = time.monotonic()
        self._finger_from = now + self._scale(self.place_s)
        self._finger_until = float("inf")
        self._wait(self.place_s, deadline, "waiting for a finger")
        if self.stall:
            while True:
                self._wait(0.05, deadline, "capture (device stalled)")
        self._wait(self.scan_s, deadline, "scanning")
        img, dpi = self._next_image(kind, position)
        if self.wrong_size:
            img = np.zeros((self.max_image_size[0] + 1, 64), np.uint8)
        self._last = img
        self._preview_key = None  # the next preview shows the next touch
        self._finger_until = time.monotonic() + self._scale(self.lift_s)
        return img, dpi

    def _do_preview_frame(self, deadline: Deadline) -> tuple[np.ndarray, bool]:
        self._wait(1.0 / self.preview_fps, deadline, "preview")
        kind, position = self.preview_mode
        if self._source is None and position != FingerPosition.UNKNOWN:
            key = (kind, position, self.applicants.index)
            if self._preview_key != key:  # the applicant's next touch of that finger (or slap)
                self._last, _ = self.applicants.capture(kind, position, advance=False)
                self._preview_key = key
        if self._last is None:
            self._last, _ = self._next_image(ImpressionKind.FLAT, FingerPosition.UNKNOWN)
        # the frame and its finger flag are read at one moment: a finger landing just after the
        # frame must not flag a frame of the empty platen
        self._check_gone()
        t = time.monotonic()
        if not self._finger_from <= t < self._finger_until:
            if t >= self._finger_until:  # the last touch is over: the next finger lands in 0.5 s and is
                # held on the platen until the scanner captures it (then it lifts: see _do_capture)
                self._finger_from, self._finger_until = t + self._scale(0.5), float("inf")
            return np.full_like(self._last, 235), False
        settled = min(1.0, (t - self._finger_from) / max(self._scale(0.5), 1e-3))
        img = 235 - (235 - self._last.astype(np.float32)) * (0.3 + 0.7 * settled)
        return img.astype(np.uint8), True
