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
    ├── RecordError                      a biometric record (ANSI/NIST-ITL, ISO 19794-4/-5, WSQ)
    │   ├── RecordFormatError            malformed record bytes (names the record and offset)
    │   └── RecordImageError             an image in a record that cannot be coded as declared
    ├── CardError                        smart-card / ICAO 9303
    │   ├── ApduError                    a status word other than 9000 (``.sw``)
    │   ├── AccessDeniedError            6982/6983/63Cx: wrong CAN/MRZ, not authenticated
    │   ├── SecureMessagingError         bad MAC, bad padding, SSC out of step
    │   ├── CardRemovedError             the card left the field mid-operation
    │   ├── TLVError                     malformed TLV (names the file and offset)
    │   ├── VerificationError            passive/active/chip authentication failed
    │   └── TerminalAuthError            terminal authentication (EAC) refused (``.sw``, ``.reason``)
    ├── PersoError                       personalization line
    │   └── OrderRejected                an order refused before a card is touched (``.reason``)
    ├── StoreError                       durable store / journal
    │   ├── JournalBusyError             another process holds the journal
    │   ├── StoreKeyError                no data key, a key file readable by others, or the wrong key
    │   ├── StoreIntegrityError          an encrypted field failed authentication (altered or moved)
    │   ├── StoreStateError              no such session, or an operation its state forbids
    │   ├── AuditError                   the trail is broken (``.line``: first bad line), or a line
    │   │                                would hold bytes or long text
    │   ├── OutboxError                  outbox misconfigured (central URL, TLS files)
    │   │   └── OutboxBusyError          another sender holds the outbox
    │   └── BatchError                   a mobile-team batch file was refused; nothing imported
    │       ├── BatchFormatError         not a batch file, or a version we do not read
    │       ├── BatchUntrustedError      signed by a station not in the trust list, or not for us
    │       └── BatchTamperedError       signature or decryption failed: altered in transit
    ├── InvalidInputError                a request's content is wrong (names the field)
    └── EnrollmentError                  the enrollment desk's workflow
        ├── SessionNotFoundError         no such enrollment session
        ├── SessionBusyError             another step of the session is running
        └── StepOrderError               a step asked before the one it needs (``.missing``)
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


class RecordError(BiostationError, ValueError):
    """A biometric record could not be read or written (also: a builder given bad input)."""


class RecordFormatError(RecordError):
    """Malformed record bytes. ``where`` names the record or field, ``offset`` the byte."""

    def __init__(self, message: str, where: str | None = None, offset: int | None = None):
        parts = [p for p in (where and f"in {where}", offset is not None and f"at byte {offset}") if p]
        super().__init__(f"{message} ({', '.join(parts)})" if parts else message)
        self.where = where
        self.offset = offset


class RecordImageError(RecordError):
    """An image that a record declares but that cannot be decoded or encoded as declared."""


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


class TerminalAuthError(CardError):
    """Terminal authentication did not succeed: a certificate or the signature was refused,
    or the terminal's own credentials cannot be used. ``sw`` is the chip's status word when the
    chip refused (None when the terminal stopped before sending), ``reason`` says why."""

    def __init__(self, reason: str, sw: int | None = None):
        super().__init__(reason if sw is None else f"{reason} (SW {sw:04X})")
        self.reason = reason
        self.sw = sw


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


class InvalidInputError(BiostationError, ValueError):
    """A request's content is wrong: the message names the field and why."""


class EnrollmentError(BiostationError):
    pass


class SessionNotFoundError(EnrollmentError):
    pass


class SessionBusyError(EnrollmentError):
    pass


class StepOrderError(EnrollmentError):
    """A step was asked before the one it needs; ``missing`` names that step (None when the
    session is closed)."""

    def __init__(self, message: str, missing: str | None = None):
        super().__init__(message)
        self.missing = missing
class StoreKeyError(StoreError):
    pass


class StoreIntegrityError(StoreError):
    pass


class StoreStateError(StoreError):
    pass


class AuditError(StoreError):
    """The audit trail is broken. ``line`` is the first line (1-based sequence number) found bad."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message if line is None else f"line {line}: {message}")
        self.line = line


class OutboxError(StoreError):
    pass


class OutboxBusyError(OutboxError):
    pass


class BatchError(StoreError):
    pass


class BatchFormatError(BatchError):
    pass


class BatchUntrustedError(BatchError):
    pass


class BatchTamperedError(BatchError):
    pass
