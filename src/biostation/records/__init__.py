"""Biometric records: the vocabulary they share (finger positions, impression kinds)."""

from .vocabulary import ISO_IMPRESSION_CODE, FingerPosition, ImpressionKind

__all__ = ["FingerPosition", "ImpressionKind", "ISO_IMPRESSION_CODE"]
