"""1:N identification: the :class:`Backend` protocol and the local (in-process) backend."""

from .engine import Backend, Candidate
from .local import GalleryView, LocalBackend

__all__ = ["Backend", "Candidate", "GalleryView", "LocalBackend"]
