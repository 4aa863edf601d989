"""Persistent fingerprint template formats: the in-memory model and the codecs."""

from .model import MINUTIA_DTYPE, MAX_MINUTIAE, Template, TemplateRecord, minutiae_array

__all__ = ["MINUTIA_DTYPE", "MAX_MINUTIAE", "Template", "TemplateRecord", "minutiae_array"]
