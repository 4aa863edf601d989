"""Persistent fingerprint template formats: the in-memory model and the codecs.

:mod:`.model` holds :class:`Template` (one finger view) and :class:`TemplateRecord` (a file of
views); :mod:`.codecs` the registry of formats (ISO/IEC 19794-2:2005, ANSI INCITS 378-2004,
the native binary and JSON), keyed by :class:`TemplateFormat`.
"""

from .codecs import CODECS, TemplateFormat, decode, encode, get_codec, load_template, save_template, sniff
from .model import MAX_MINUTIAE, MINUTIA_DTYPE, Template, TemplateRecord, minutiae_array

__all__ = ["CODECS", "MINUTIA_DTYPE", "MAX_MINUTIAE", "Template", "TemplateFormat", "TemplateRecord", "decode",
           "encode", "get_codec", "load_template", "minutiae_array", "save_template", "sniff"]
