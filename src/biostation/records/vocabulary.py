"""The vocabulary of biometric records: finger positions and impression kinds.

These names belong to the records (ISO/IEC 19794-4, ANSI/NIST-ITL 1-2011 Type-14, the
templates of ISO/IEC 19794-2), not to the devices that capture them: a core that reads or
writes records, a segmenter that labels fingers and a scanner driver all take them from here.
"""

from __future__ import annotations

from enum import Enum, IntEnum

__all__ = ["FingerPosition", "ImpressionKind", "ISO_IMPRESSION_CODE"]


class ImpressionKind(str, Enum):
    """Impression types captured live (ISO/IEC 19794-4 and ANSI/NIST-ITL impression type)."""

    FLAT = "flat"  # live-scan plain, one finger
    SLAP = "slap"  # live-scan plain, four fingers or two thumbs at once
    ROLLED = "rolled"  # live-scan rolled, nail to nail


#: ISO/IEC 19794-4 and ANSI/NIST-ITL impression codes: 0 live-scan plain, 1 live-scan rolled
ISO_IMPRESSION_CODE = {ImpressionKind.FLAT: 0, ImpressionKind.SLAP: 0, ImpressionKind.ROLLED: 1}


class FingerPosition(IntEnum):
    """Finger position codes of ISO/IEC 19794-4 / ANSI/NIST-ITL (table 'finger position')."""

    UNKNOWN = 0
    RIGHT_THUMB = 1
    RIGHT_INDEX = 2
    RIGHT_MIDDLE = 3
    RIGHT_RING = 4
    RIGHT_LITTLE = 5
    LEFT_THUMB = 6
    LEFT_INDEX = 7
    LEFT_MIDDLE = 8
    LEFT_RING = 9
    LEFT_LITTLE = 10
    PLAIN_RIGHT_FOUR = 13
    PLAIN_LEFT_FOUR = 14
    PLAIN_THUMBS = 15
