"""The vocabulary of MOSIP's Secure Biometric Interface (SBI / MDS spec 0.9.5): error codes, device
types and sub-ids, finger names, the hash chain, and the checks of a capture request.

Facts from the MOSIP MDS specification 0.9.5 (``mds-specification.md``, condensed in
``shared/specs/mosip-sbi.md``). Codes 5xx are "vendor custom" in the spec; the ones used here
are listed in :data:`ERRORS`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from ...records import FingerPosition

SPEC_VERSION = "0.9.5"
SERVICE_VERSION = "1.0"

#: errorCode -> errorInfo (spec, then this service's vendor codes)
ERRORS: dict[int, str] = {
    0: "Success",
    100: "Device not registered",
    101: "Unable to detect a biometric object",
    102: "Technical error during extraction",
    103: "Device tamper detected",
    104: "Unable to connect to management server",
    105: "Image orientation error",
    106: "Device not found",
    107: "Device public key expired",
    108: "Domain public key missing",
    109: "Requested number of biometric (Finger/IRIS) not supported",
    110: "Device is not ready",
    111: "Device is Busy",
    112: "Invalid Transaction ID",
    202: "No device connected",
    # vendor codes
    500: "Invalid JSON in the request",
    501: "Invalid request field",
    502: "Method not supported at this path",
    503: "Authentication capture (CAPTURE) needs an L1 device; this device is L0, for registration",
    504: "Capture timed out without a biometric",
    505: "Request too large",
    506: "Too many streams open on this device",
}


class SbiError(Exception):
    """An SBI error: answered as ``{"errorCode": str(code), "errorInfo": ...}``."""

    def __init__(self, code: int, detail: str = ""):
        self.code = code
        self.info = ERRORS.get(code, "Error") + (f": {detail}" if detail else "")
        super().__init__(self.info)

    def as_error(self) -> dict[str, str]:
        return {"errorCode": str(self.code), "errorInfo": self.info}


def ok_error() -> dict[str, str]:
    return {"errorCode": "0", "errorInfo": "Success"}


#: discovery ``type`` values; "Biometric Device" is the wildcard
DISCOVERY_TYPES = ("Biometric Device", "Finger", "Face", "Iris")

#: deviceSubId of a slap scanner -> the slap it captures
SLAP_FOR_SUBID = {1: FingerPosition.PLAIN_LEFT_FOUR, 2: FingerPosition.PLAIN_RIGHT_FOUR,
                  3: FingerPosition.PLAIN_THUMBS}

#: bioSubType names of the spec for each finger
FINGER_NAMES: dict[FingerPosition, str] = {
    FingerPosition.LEFT_INDEX: "Left IndexFinger", FingerPosition.LEFT_MIDDLE: "Left MiddleFinger",
    FingerPosition.LEFT_RING: "Left RingFinger", FingerPosition.LEFT_LITTLE: "Left LittleFinger",
    FingerPosition.LEFT_THUMB: "Left Thumb", FingerPosition.RIGHT_INDEX: "Right IndexFinger",
    FingerPosition.RIGHT_MIDDLE: "Right MiddleFinger", FingerPosition.RIGHT_RING: "Right RingFinger",
    FingerPosition.RIGHT_LITTLE: "Right LittleFinger", FingerPosition.RIGHT_THUMB: "Right Thumb",
}
FINGER_BY_NAME = {v: k for k, v in FINGER_NAMES.items()}

_TXN = re.compile(r"^[A-Za-z0-9-]{4,50}$")
ENVS = ("Staging", "Developer", "Pre-Production", "Production")
#: longest capture a request may ask for (ms)
MAX_TIMEOUT_MS = 5 * 60 * 1000


def timestamp(now: dt.datetime | None = None) -> str:
    """ISO 8601 UTC, ``yyyy-mm-ddTHH:MM:ssZ``."""
    now = now or dt.datetime.now(dt.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def chain_hash(previous_hash: str | None, record: bytes) -> str:
    """The spec's hash chain: upper-case hex of SHA256(prev || SHA256(record)); ``prev`` is
    SHA256("") for the first capture, else the bytes of the previous (hex) hash."""
    if previous_hash:
        try:
            prev = bytes.fromhex(previous_hash)
        except ValueError:
            raise SbiError(501, "previousHash is not hex") from None
    else:
        prev = hashlib.sha256(b"").digest()
    return hashlib.sha256(prev + hashlib.sha256(record).digest()).hexdigest().upper()


@dataclass
class BioRequest:
    """One entry of ``bio`` in a capture request."""

    type: str
    count: int
    device_sub_id: int
    requested_score: float
    bio_sub_type: list[str] = field(default_factory=list)
    exception: list[str] = field(default_factory=list)
    previous_hash: str = ""
    device_id: str = ""


@dataclass
class CaptureRequest:
    env: str
    purpose: str
    spec_version: str
    timeout_ms: int
    transaction_id: str
    bio: list[BioRequest]
    capture_time: str = ""
    domain_uri: str = ""
    custom_opts: Any = None


def _num(obj: dict, key: str, default: float | None = None) -> float:
    v = obj.get(key, default)
    if isinstance(v, str):
        try:
            v = float(v)
        except ValueError:
            raise SbiError(501, f"{key} is not a number") from None
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        raise SbiError(501, f"{key} is missing or not a number")
    return float(v)


def _str_list(obj: dict, key: str) -> list[str]:
    v = obj.get(key) or []
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise SbiError(501, f"{key} must be a list of strings")
    return v


def parse_capture(body: Any, auth: bool = False) -> CaptureRequest:
    """Check a (R)CAPTURE request body and return it typed; SbiError 501/112/109 otherwise."""
    if not isinstance(body, dict):
        raise SbiError(501, "the request must be a JSON object")
    txn = body.get("transactionId")
    if not isinstance(txn, str) or not _TXN.match(txn):
        raise SbiError(112)
    for key in ("env", "purpose", "specVersion"):
        if not isinstance(body.get(key), str):
            raise SbiError(501, f"{key} is missing")
    if body["env"] not in ENVS:
        raise SbiError(501, f"env must be one of {', '.join(ENVS)}")
    timeout_ms = _num(body, "timeout", 10000)
    if not 0 < timeout_ms <= MAX_TIMEOUT_MS:
        raise SbiError(501, f"timeout must be 1..{MAX_TIMEOUT_MS} ms")
    bio = body.get("bio")
    if not isinstance(bio, list) or not bio:
        raise SbiError(501, "bio must be a non-empty list")
    if len(bio) > 10:
        raise SbiError(109, "too many bio entries")
    custom = body.get("customOpts")
    if isinstance(custom, list) and len(custom) > 50 or isinstance(custom, dict) and len(custom) > 50:
        raise SbiError(501, "customOpts holds more than 50 entries")
    entries = []
    for b in bio:
        if not isinstance(b, dict):
            raise SbiError(501, "each bio entry must be an object")
        if not isinstance(b.get("type"), str):
            raise SbiError(501, "bio.type is missing")
        count = _num(b, "count", 1)
        score = _num(b, "requestedScore", 0)
        if count != int(count) or not 1 <= count <= 10:
            raise SbiError(109)
        if not 0 <= score <= 100:
            raise SbiError(501, "requestedScore must be 0..100")
        prev = b.get("previousHash") or ""
        if not isinstance(prev, str):
            raise SbiError(501, "previousHash must be a string")
        entries.append(BioRequest(b["type"], int(count), int(_num(b, "deviceSubId", 0)), score,
                                  _str_list(b, "bioSubType"), [] if auth else _str_list(b, "exception"),
                                  prev, str(b.get("deviceId") or "")))
    return CaptureRequest(body["env"], body["purpose"], body["specVersion"], int(timeout_ms),
                          txn, entries, str(body.get("captureTime") or ""), str(body.get("domainUri") or ""),
                          custom)
