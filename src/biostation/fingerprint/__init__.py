"""Fingerprint image -> features: one stage a module, one orchestrator.

``extract(image, dpi=500) -> Template`` runs, in order: input checks and resampling to 500 dpi
(:mod:`.image`), band-pass and normalization (:mod:`.normalization`), orientation field
(:mod:`.orientation`), segmentation (:mod:`.segmentation`), ridge period (:mod:`.frequency`),
Gabor enhancement (:mod:`.enhancement`), binarization and thinning (:mod:`.skeleton`), minutiae
detection (:mod:`.minutiae`) and false-minutiae removal (:mod:`.filtering`). Tuned numbers are
in :mod:`.params`; stage outputs can be observed with :func:`tracing` (:mod:`.trace`).

Also here: NFIQ 2 quality (:func:`nfiq2`), slap segmentation (:func:`segment_slap`) and the
capture-sequence check (:func:`check_sequence`).
"""

from .extractor import extract
from .image import read_image
from .nfiq2 import NFIQ2Result, nfiq2
from .sequence import SequenceReport, check_sequence
from .slap import SegmentedFinger, SlapResult, segment_slap
from .trace import TraceRecorder, tracing

__all__ = [
    "NFIQ2Result",
    "SegmentedFinger",
    "SequenceReport",
    "SlapResult",
    "TraceRecorder",
    "check_sequence",
    "extract",
    "nfiq2",
    "read_image",
    "segment_slap",
    "tracing",
]
