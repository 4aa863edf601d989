"""Fingerprint image -> features: one stage a module, one orchestrator.

``extract(image, dpi=500) -> Template`` runs, in order: input checks and resampling to 500 dpi
(:mod:`.image`), band-pass and normalization (:mod:`.normalization`), orientation field
(:mod:`.orientation`), segmentation (:mod:`.segmentation`), ridge period (:mod:`.frequency`),
Gabor enhancement (:mod:`.enhancement`), binarization and thinning (:mod:`.skeleton`), minutiae
detection (:mod:`.minutiae`) and false-minutiae removal (:mod:`.filtering`). Tuned numbers are
in :mod:`.params`; stage outputs can be observed with :func:`tracing` (:mod:`.trace`).
"""

from .extractor import extract
from .image import read_image
from .trace import TraceRecorder, tracing

__all__ = ["extract", "read_image", "tracing", "TraceRecorder"]
from .nfiq2 import NFIQ2Result, nfiq2  # noqa: E402  (quality, issue 5)
from .slap import SegmentedFinger, SlapResult, segment_slap  # noqa: E402  (slaps, issue 5)
from .sequence import SequenceReport, check_sequence  # noqa: E402  (sequence check, issue 5)
