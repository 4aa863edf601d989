"""The desk's workflows: business flows as plain Python over the HAL and the cores.

The HTTP routes and the CLI verbs are thin callers of these; the cores (fingerprint, matcher,
face, card, records, store) know nothing of them.

- :mod:`.fingers`: one fingerprint capture with its NFIQ 2 score; the capture loop (preview,
  auto-capture, exceptions) over a plan of fingers and slaps.
- :mod:`.portrait`: live portrait capture with the ICAO checks, auto-capture, best frame at
  the timeout; the exception photo (face and palms, no ICAO gates).
- :mod:`.chip`: reading and verifying a citizen's chip on a reader.
"""

from .chip import ChipRead, ChipReads, station_trust
from .fingers import (
    AssessedImpression,
    CaptureLoop,
    FingerResult,
    OverlayFrame,
    Reason,
    SessionResult,
    Status,
    capture_assessed,
)
from .portrait import CaptureResult, ExceptionPhoto, capture_exception_photo, capture_portrait

__all__ = [
    "AssessedImpression", "CaptureLoop", "CaptureResult", "ChipRead", "ChipReads", "ExceptionPhoto", "FingerResult",
    "OverlayFrame", "Reason", "SessionResult", "Status", "capture_assessed", "capture_exception_photo",
    "capture_portrait", "station_trust",
]
