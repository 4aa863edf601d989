"""The exception tree of biostation. Every error the package raises on purpose is one of these.

::

    BiostationError
    ├── ConfigError                      bad settings, missing data directory
    ├── AuthError                        missing or wrong API token, expired sign-in session
    ├── StationBusyError                 the station's pool for heavy work is full (``.retry_after_s``)
    ├── DeviceError                      anything a device did or failed to do
    │   ├── DeviceNotFoundError          no such device id
    │   ├── DeviceBusyError              an operation is already running on it
    │   ├── DeviceStateError             operation not allowed in the current state
    │   ├── DeviceTimeoutError           the device did not answer in time
    │   ├── DeviceGoneError              unplugged or vanished during an operation
    │   └── DeviceProtocolError          the device answered something we did not expect
    ├── ImageError                       not an image, empty, too small or too large
    ├── TemplateError                    a biometric template could not be read or written
    │   ├── TemplateFormatError          malformed bytes (names the offset)
    │   └── TemplateVersionError         a format version we do not read
    ├── MatcherError                     templates that cannot be compared (e.g. resolutions)
    ├── GalleryError                     1:N gallery: duplicate or unknown reference id
    │   └── GalleryUnavailableError      a gallery shard did not answer (died, timed out)
    ├── FaceError                        portrait processing failed (no usable image)
    ├── CardError                        smart-card / ICAO 9303
    │   ├── ApduError                    a status word other than 9000 (``.sw``)
    │   ├── AccessDeniedError            6982/6983/63Cx: wrong CAN/MRZ, not authenticated
    │   ├── SecureMessagingError         bad MAC, bad padding, SSC out of step
    │   ├── CardRemovedError             the card left the field mid-operation
    │   ├── TLVError                     malformed TLV (names the file and offset)
    │   └── VerificationError            passive/active/chip authentication failed
    ├── PersoError                       personalization line
    │   └── OrderRejected                an order refused before a card is touched (``.reason``)
    └── StoreError                       durable store / journal
        └── JournalBusyError             another process holds the journal
"""

from __future__ import annotations


class BiostationError(Exception):
    """Root of every error biostation raises on purpose."""


class ConfigError(BiostationError):
    pass


class AuthError(BiostationError):
    pass


class StationBusyError(BiostationError):
    """The station is already doing as much heavy work (image decoding, checks) as it takes at once;
    ``retry_after_s`` says when to try again."""

    def __init__(self, message: str, retry_after_s: int = 1):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class DeviceError(BiostationError):
    """A device failed. ``device_id`` names it when known."""

    def __init__(self, message: str, device_id: str | None = None):
        super().__init__(message)
        self.device_id = device_id


class DeviceNotFoundError(DeviceError):
    pass


class DeviceBusyError(DeviceError):
    pass


class DeviceStateError(DeviceError):
    pass


class DeviceTimeoutError(DeviceError):
    pass


class DeviceGoneError(DeviceError):
    pass


class DeviceProtocolError(DeviceError):
    pass


class ImageError(BiostationError, ValueError):
    pass


class TemplateError(BiostationError, ValueError):
    pass


class TemplateFormatError(TemplateError):
    """Malformed template bytes. ``offset`` is the byte position where reading failed."""

    def __init__(self, message: str, offset: int | None = None):
        super().__init__(message if offset is None else f"{message} (at byte {offset})")
        self.offset = offset


class TemplateVersionError(TemplateError):
    pass


class MatcherError(BiostationError, ValueError):
    pass


class GalleryError(BiostationError):
    pass


class GalleryUnavailableError(GalleryError):
    """A shard of a distributed gallery did not answer: it died past its restarts or timed out."""


class FaceError(BiostationError):
    pass


class CardError(BiostationError):
    pass


class ApduError(CardError):
    """The card answered a status word other than 9000."""

    def __init__(self, message: str, sw: int):
        super().__init__(f"{message} (SW {sw:04X})")
        self.sw = sw


class AccessDeniedError(CardError):
    pass


class SecureMessagingError(CardError):
    pass


class CardRemovedError(CardError):
    pass


class TLVError(CardError, ValueError):
    """Malformed TLV. ``source`` names the file (or data group), ``offset`` the byte."""

    def __init__(self, message: str, source: str | None = None, offset: int | None = None):
        where = ", ".join(p for p in (source and f"in {source}", offset is not None and f"at byte {offset}") if p)
        super().__init__(f"{message} ({where})" if where else message)
        self.source = source
        self.offset = offset


class VerificationError(CardError):
    pass


class PersoError(BiostationError):
    pass


class OrderRejected(PersoError):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class StoreError(BiostationError):
    pass


class JournalBusyError(StoreError):
    pass
