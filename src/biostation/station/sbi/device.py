"""One SBI device: a HAL scanner or camera seen through MOSIP's SBI objects.

:class:`SbiDevice` answers discovery, device info, registration capture and the preview stream
for one device of the :class:`~biostation.hal.DriverRegistry`, looked up by id at every call, so
an unplugged device shows as ``Not Ready`` and a replugged one as ``Ready`` again.

Capture runs the desk's workflow layer: a slap through :class:`~..workflows.CaptureLoop`
(preview, auto-capture at ``requestedScore``, best impression at the timeout), segmented into
fingers with :func:`biostation.fingerprint.slap.segment_slap`; a single finger through the same
loop; a face through :func:`~..workflows.capture_portrait`, or, when the request lists
``exception`` (missing fingers), the exception photo through
:func:`~..workflows.capture_exception_photo`. Each finger becomes an ISO/IEC 19794-4:2011
record with one representation, each face an ISO/IEC 19794-5:2011 record, both JPEG 2000
lossless, as the MOSIP biometric specification asks for registration. ``qualityScore`` of a
finger is the NFIQ 2 score of the image in its record (also in the record's quality block, with
NFIQ 2's algorithm ids); of a portrait, the share of the ICAO checks
(:func:`biostation.face.checks.check_portrait`) that passed, 0..100; of an exception photo, the
face detector's confidence, 0..100.

``bio.count`` must be the number of biometrics the entry yields (fingers asked for, less the
exceptions; 1 for a face): the spec says the device "should validate and ensure that this
number is in line with the type of biometric that's captured", so another count gets 109.
An unexpected failure inside a capture (a bug, a codec error) answers 102, "technical error
during extraction", in the verb's own shape; its traceback goes to the log, never image data.

One capture at a time per device: a second one, or a capture while the device is busy elsewhere
(the desk's own API), gets error 111. Preview frames of a running capture go to every open
STREAM of the device; with no capture running, STREAM reads frames itself, one at a time, so a
capture can start at any moment.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from ...errors import (
    DeviceBusyError,
    DeviceError,
    DeviceGoneError,
    DeviceNotFoundError,
    DeviceTimeoutError,
    ImageError,
)
from ...hal import Camera, DeviceClass, DeviceState, Feature, FingerprintScanner, ImpressionKind
from ...records import FingerPosition, iso19794_4, iso19794_5
from ...records.iso19794_1 import NFIQ2_QUALITY, QualityBlock
from .keys import DeviceKeys, b64url, jws_sign
from .protocol import (
    FINGER_BY_NAME,
    FINGER_NAMES,
    SERVICE_VERSION,
    SLAP_FOR_SUBID,
    SPEC_VERSION,
    CaptureRequest,
    SbiError,
    chain_hash,
    ok_error,
    timestamp,
)

log = logging.getLogger(__name__)

PROVIDER = "biostation"
#: preview frames a STREAM sends at most per second when it reads frames itself
STREAM_FPS = 10.0


class FrameHub:
    """The newest preview JPEG of a device, for any number of readers."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._jpeg: bytes | None = None
        self._seq = 0

    def publish(self, bgr_or_grey: np.ndarray) -> None:
        import cv2

        ok, buf = cv2.imencode(".jpg", bgr_or_grey, [cv2.IMWRITE_JPEG_QUALITY, 80])
        if ok:
            with self._cond:
                self._jpeg, self._seq = buf.tobytes(), self._seq + 1
                self._cond.notify_all()

    @property
    def seq(self) -> int:
        """How many frames were published so far."""
        with self._cond:
            return self._seq

    def wait(self, after: int, timeout_s: float) -> tuple[int, bytes | None]:
        with self._cond:
            self._cond.wait_for(lambda: self._seq > after, timeout=timeout_s)
            return self._seq, self._jpeg if self._seq > after else None


def _jp2_lossless(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG2000", irreversible=False, no_jp2=False)
    return buf.getvalue()


#: ISO/IEC 19794-5:2011 capture device technology of a camera's frames: video frame, digital camera
FACE_TECHNOLOGY_VIDEO_DIGITAL = 6
#: face image types: basic (the exception photo: palms beside the face are not a frontal portrait), full frontal
FACE_BASIC, FACE_FULL_FRONTAL = 0, 1


def finger_record(image: np.ndarray, position: FingerPosition, dpi: int, quality: int | None,
                  captured_at: dt.datetime | None = None) -> bytes:
    """An ISO/IEC 19794-4:2011 record of one live-scan plain finger, 8 bits, JPEG 2000 lossless,
    its NFIQ 2 score in a quality block naming NFIQ 2 (none when ``quality`` is None)."""
    blocks = [QualityBlock(int(quality), *NFIQ2_QUALITY)] if quality is not None else []
    view = iso19794_4.FingerView(int(position), _jp2_lossless(image), image.shape[1], image.shape[0],
                                 int(quality or 0), 0, quality_blocks=blocks,
                                 captured_at=captured_at or dt.datetime.now(dt.UTC))
    return iso19794_4.encode(iso19794_4.FingerImageRecord(
        [view], iso19794_4.Compression.JPEG2000_LOSSLESS, (dpi, dpi), (dpi, dpi), 8, edition=iso19794_4.EDITION_2011))


def face_record(bgr: np.ndarray, quality: int, *, exception: bool = False, head_width_px: float = 0.0,
                captured_at: dt.datetime | None = None) -> bytes:
    """An ISO/IEC 19794-5:2011 record of a BGR frame, 24-bit RGB, JPEG 2000 lossless: a full
    frontal image, or a basic one for the exception photo. ``quality`` goes in a quality block
    without algorithm ids (it is this service's own measure, not a registered algorithm);
    ``head_width_px`` (the detected face's width, a lower bound) sets the sampling rate level."""
    rgb = np.ascontiguousarray(bgr[:, :, ::-1])
    face = iso19794_5.face_from_image(
        _jp2_lossless(rgb), lossless=True, quality=int(quality), quality_blocks=[QualityBlock(int(quality))],
        face_image_type=FACE_BASIC if exception else FACE_FULL_FRONTAL, source_type=FACE_TECHNOLOGY_VIDEO_DIGITAL,
        captured_at=captured_at or dt.datetime.now(dt.UTC),
        spatial_sampling_level=iso19794_5.spatial_sampling_level(head_width_px))
    return iso19794_5.encode([face], edition=iso19794_5.EDITION_2011)


class SbiDevice:
    """One registry device as an SBI device on ``port``."""

    def __init__(self, registry: Any, device_id: str, port: int, keys: DeviceKeys, *,
                 env: str = "Developer", sim_frames_fps: float = STREAM_FPS):
        """``env``: the MOSIP environment this device serves (``Settings.sbi_env``)."""
        self.registry = registry
        self.device_id = device_id
        self.port = port
        self.keys = keys
        self.env = env
        self.hub = FrameHub()
        self._capture_lock = threading.Lock()
        #: held by STREAM while it reads one frame itself; a capture waits for that frame to end
        self._grab_lock = threading.Lock()
        self._stream_fps = sim_frames_fps
        dev = registry.get(device_id)
        self.device_class = dev.device_class
        info = dev.info()
        self.serial = info.serial or dev.device_id
        self.make = info.vendor or PROVIDER
        self.model = info.model or info.name or dev.id
        self.firmware = info.firmware or SERVICE_VERSION
        if dev.device_class is DeviceClass.CAMERA:
            self.type, self.sub_type, self.sub_ids = "Face", "Full face", [0]
        elif dev.features & Feature.CAPTURE_SLAP:
            self.type, self.sub_type, self.sub_ids = "Finger", "Slap", [1, 2, 3]
        else:
            self.type, self.sub_type, self.sub_ids = "Finger", "Single", [0]
        self.key = keys.device(self.serial)

    # --- state -----------------------------------------------------------------------------------
    def hal(self) -> Any:
        """The HAL device now, or None when it is not attached."""
        try:
            dev = self.registry.get(self.device_id)
        except DeviceNotFoundError:
            return None
        return None if dev.state is DeviceState.GONE else dev

    @property
    def callback_id(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def status(self) -> str:
        dev = self.hal()
        if dev is None:
            return "Not Ready"
        if self._capture_lock.locked():
            return "Busy"
        if dev.state is DeviceState.BUSY and not self._grab_lock.locked():  # busy elsewhere, not our preview
            return "Busy"
        return "Ready"

    def _digital_id(self) -> dict[str, str]:
        return {"serialNo": self.serial, "make": self.make, "model": self.model, "type": self.type,
                "deviceSubType": self.sub_type, "deviceProvider": PROVIDER, "deviceProviderId": PROVIDER,
                "dateTime": timestamp()}

    def signed_digital_id(self) -> str:
        return jws_sign(self._digital_id(), self.key)

    # --- MOSIPDISC / MOSIPDINFO --------------------------------------------------------------------
    @staticmethod
    def _status_error(status: str) -> dict[str, str]:
        """The error of a discovery / device info answer: the spec maps Busy to 111, Not Ready to 110."""
        if status == "Busy":
            return SbiError(111).as_error()
        if status == "Not Ready":
            return SbiError(110).as_error()
        return ok_error()

    def discovery(self) -> dict[str, Any]:
        status = self.status()
        return {"deviceId": self.device_id, "deviceStatus": status, "certification": "L0",
                "serviceVersion": SERVICE_VERSION, "deviceSubId": [str(s) for s in self.sub_ids],
                "callbackId": self.callback_id, "digitalId": b64url(_json(self._digital_id())),
                "deviceCode": self.serial, "specVersion": [SPEC_VERSION], "purpose": "Registration",
                "error": self._status_error(status)}

    def device_info(self) -> dict[str, Any]:
        status = self.status()
        info = {"deviceStatus": status, "deviceId": self.device_id, "firmware": self.firmware,
                "certification": "L0", "serviceVersion": SERVICE_VERSION,
                "deviceSubId": [str(s) for s in self.sub_ids], "callbackId": self.callback_id,
                "digitalId": self.signed_digital_id(), "deviceCode": self.serial, "env": self.env,
                "purpose": "Registration", "specVersion": [SPEC_VERSION]}
        return {"deviceInfo": jws_sign(info, self.key), "error": self._status_error(status)}

    # --- RCAPTURE -----------------------------------------------------------------------------------
    def rcapture(self, req: CaptureRequest) -> dict[str, Any]:
        """Capture what ``req`` asks for; the ``biometrics`` list of the answer. SbiError for a
        request this device cannot serve (not ready 110, busy 111, wrong count 109, ...)."""
        if req.purpose != "Registration":
            raise SbiError(501, "purpose must be Registration on this device")
        if req.env != self.env:
            # The spec gives no code for this. env in deviceInfo is the environment the device is
            # registered in ("None" with error 100 when it is in none), so a capture for another
            # environment asks a device that is not registered there: 100, not a signed answer
            # whose env contradicts deviceInfo (nor 501: the field is valid, the device is not).
            raise SbiError(100, f"this device serves env {self.env!r}")
        for b in req.bio:
            if b.type != self.type:
                raise SbiError(501, f"bio.type {b.type!r}: this device captures {self.type}")
            if b.device_id and b.device_id != self.device_id:
                raise SbiError(106, f"this port serves {self.device_id}")
            if b.device_sub_id not in self.sub_ids:
                raise SbiError(501, f"deviceSubId {b.device_sub_id} is not one of {self.sub_ids}")
        dev = self.hal()
        if dev is None:
            raise SbiError(110)
        if not self._capture_lock.acquire(blocking=False):
            raise SbiError(111)
        try:
            with self._grab_lock:  # a frame STREAM is reading now ends first; later ones wait for us
                pass
            if dev.state is DeviceState.BUSY:
                raise SbiError(111)
            out: list[dict[str, Any]] = []
            prev = req.bio[0].previous_hash
            deadline = time.monotonic() + max(0.1, req.timeout_ms / 1000)
            for b in req.bio:
                prev = b.previous_hash or prev
                timeout_s = max(0.1, deadline - time.monotonic())
                items = (self._capture_face(dev, b, timeout_s) if self.type == "Face"
                         else self._capture_fingers(dev, b, timeout_s))
                for name, record, quality, err in items:
                    if record is None:
                        out.append({"specVersion": req.spec_version, "data": "", "hash": "",
                                    "error": err.as_error() if err else SbiError(101).as_error()})
                        continue
                    prev = chain_hash(prev, record)
                    payload = {"digitalId": self.signed_digital_id(), "deviceCode": self.serial,
                               "deviceServiceVersion": SERVICE_VERSION, "bioType": self.type,
                               "bioSubType": name, "purpose": req.purpose, "env": req.env,
                               "bioValue": b64url(record), "transactionId": req.transaction_id,
                               "timestamp": timestamp(), "requestedScore": _score(b.requested_score),
                               "qualityScore": _score(quality)}
                    out.append({"specVersion": req.spec_version, "data": jws_sign(payload, self.key),
                                "hash": prev, "error": ok_error()})
            return {"biometrics": out}
        except DeviceBusyError:
            raise SbiError(111) from None
        except (DeviceGoneError, DeviceNotFoundError):
            raise SbiError(110) from None
        except DeviceTimeoutError:
            raise SbiError(101, "nothing captured before the timeout") from None
        except DeviceError as exc:
            raise SbiError(110, f"the device failed ({type(exc).__name__})") from None
        except SbiError:
            raise
        except Exception:
            # anything else is a fault of this service (segmenter, quality, codec): the spec's 102
            log.exception("SBI %s: capture failed", self.device_id)
            raise SbiError(102) from None
        finally:
            self._capture_lock.release()

    def _expected_fingers(self, b: Any, slap: FingerPosition | None) -> tuple[list[FingerPosition], set]:
        from ...fingerprint.slap import SLAP_ORDER

        def pos(name: str) -> FingerPosition:
            if name not in FINGER_BY_NAME:
                raise SbiError(501, f"unknown bioSubType {name!r}")
            return FINGER_BY_NAME[name]

        missing = {pos(n) for n in b.exception}
        wanted = [pos(n) for n in b.bio_sub_type if n != "UNKNOWN"]
        if slap is None:
            fingers = wanted[:1] or [FingerPosition.UNKNOWN]
        else:
            fingers = [p for p in SLAP_ORDER[slap] if p not in missing and (not wanted or p in wanted)]
            if any(p not in SLAP_ORDER[slap] for p in wanted + list(missing)):
                raise SbiError(501, "bioSubType / exception names a finger of another slap")
        if b.count != len(fingers) or not fingers:
            raise SbiError(109, f"count {b.count}: this entry yields {len(fingers)} finger(s)")
        return fingers, missing

    def _capture_fingers(self, scanner: FingerprintScanner, b: Any, timeout_s: float) -> list:
        from ...fingerprint.slap import segment_slap
        from ..workflows import CaptureLoop
        from ..workflows.fingers import OverlayFrame

        slap = SLAP_FOR_SUBID.get(b.device_sub_id) if self.sub_type == "Slap" else None
        fingers, missing = self._expected_fingers(b, slap)

        def on_frame(frame: OverlayFrame) -> None:
            self.hub.publish(frame.overlay)

        threshold = int(round(b.requested_score))
        faults: list[BaseException] = []
        if slap is not None:
            def average(image: np.ndarray, dpi: int) -> int:
                # the spec's slap threshold: the average NFIQ 2 of the fingers expected
                try:
                    seg = segment_slap(image, slap, dpi=dpi, missing=missing)
                except ImageError:  # a frame it cannot segment scores 0
                    return 0
                except Exception as exc:  # a fault, not a bad frame: end the capture, answer 102
                    faults.append(exc)
                    loop.cancel()
                    raise
                got = seg.by_position()
                return int(round(sum((got[p].quality or 0) if p in got else 0 for p in fingers) / len(fingers)))

            loop = CaptureLoop(scanner, threshold=threshold, timeout_s=timeout_s, quality=average, on_frame=on_frame,
                               finger_off_first=False)
            result = loop.capture_finger(slap, ImpressionKind.SLAP, missing=missing)
        else:
            loop = CaptureLoop(scanner, threshold=threshold, timeout_s=timeout_s, on_frame=on_frame,
                               finger_off_first=False)
            result = loop.capture_finger(fingers[0], ImpressionKind.FLAT)
        if faults:  # the capture loop's preview keeps going past a quality error; this one is a fault
            raise faults[0]
        if result.impression is None:
            if result.reason is not None and result.reason.value == "device_error":
                if "Busy" in result.detail:
                    raise SbiError(111)
                raise SbiError(110, "the device failed")
            raise SbiError(101, "nothing captured before the timeout")
        imp = result.impression
        items = []
        if slap is None:
            q = int(result.quality or 0)
            items.append((FINGER_NAMES.get(fingers[0], "UNKNOWN"),
                          finger_record(imp.image, fingers[0], imp.dpi, q), q, None))
            return items
        try:
            seg = segment_slap(imp.image, slap, dpi=imp.dpi, missing=missing)
        except ImageError as exc:  # the slap holds nothing to segment: no biometric object (a fault is 102)
            raise SbiError(101, f"the slap could not be segmented ({exc})") from None
        got = seg.by_position()
        for p in fingers:
            f = got.get(p)
            if f is None or f.image is None:
                items.append((FINGER_NAMES[p], None, 0, SbiError(101, f"{FINGER_NAMES[p]} not found in the slap")))
                continue
            img = np.ascontiguousarray(f.image)
            items.append((FINGER_NAMES[p], finger_record(img, p, imp.dpi, f.quality), int(f.quality or 0), None))
        return items

    def _capture_face(self, camera: Camera, b: Any, timeout_s: float) -> list:
        from ..workflows import capture_exception_photo, capture_portrait

        if b.count != 1:
            raise SbiError(109, "a face entry yields one face")
        if b.exception:
            # The exception photo (the spec: "face + two palms", for a person with missing
            # fingers or irises). The spec copy is silent on how the answer marks it: the entry
            # has the usual shape (bioType Face, bioSubType ""); only its ISO record tells it
            # apart, with face image type "basic" instead of "full frontal".
            photo = capture_exception_photo(camera, timeout_s=timeout_s, preview=self.hub.publish)
            if photo.image is None:
                raise SbiError(101, "no face seen before the timeout")
            quality = int(round(100 * photo.face_score))
            width = photo.face_box[2] - photo.face_box[0] if photo.face_box else 0.0
            return [("", face_record(photo.image, quality, exception=True, head_width_px=width), quality, None)]

        def preview(frame: np.ndarray, report: Any) -> None:
            self.hub.publish(frame)

        try:
            result = capture_portrait(camera, timeout_s=timeout_s, preview=preview)
        except DeviceTimeoutError:
            raise SbiError(101, "no frame before the timeout") from None
        if result.image is None or result.report is None:
            raise SbiError(101)
        checks = result.report.checks
        quality = int(round(100 * sum(c.passed for c in checks) / max(1, len(checks))))
        face = result.report.face
        width = face.box[2] - face.box[0] if face is not None else 0.0
        return [("", face_record(result.image, quality, head_width_px=width), quality, None)]

    # --- STREAM ---------------------------------------------------------------------------------------
    def stream(self, device_sub_id: int, timeout_s: float, stop: threading.Event | None = None) -> Iterator[bytes]:
        """MJPEG parts (``--BoundaryString`` with Content-Type and Content-Length) until
        ``timeout_s``, ``stop`` or the device goes."""
        end = time.monotonic() + timeout_s
        seq = self.hub.seq  # frames of earlier captures are not shown
        slap = SLAP_FOR_SUBID.get(device_sub_id) if self.sub_type == "Slap" else None
        stop = stop or threading.Event()
        while time.monotonic() < end and not stop.is_set():
            dev = self.hal()
            if dev is None:
                return
            seq, jpeg = self.hub.wait(seq, 0)  # a capture's frame not sent yet goes first
            if jpeg is not None:
                yield _part(jpeg)
                continue
            with self._grab_lock:
                if not self._capture_lock.locked():
                    jpeg = self._own_frame(dev, slap)
            if jpeg is not None:
                time.sleep(1.0 / self._stream_fps)
            if jpeg is None:
                seq, jpeg = self.hub.wait(seq, min(0.5, max(0.0, end - time.monotonic())))
            if jpeg is not None:
                yield _part(jpeg)

    def _own_frame(self, dev: Any, slap: FingerPosition | None) -> bytes | None:
        import cv2

        try:
            if isinstance(dev, FingerprintScanner):
                if not dev.features & Feature.PREVIEW:
                    return None
                kind = ImpressionKind.SLAP if slap is not None else ImpressionKind.FLAT
                frames = dev.preview(max_frames=1, timeout_s=1.0, kind=kind, position=slap or FingerPosition.UNKNOWN)
                try:
                    image = next(frames).image
                finally:
                    frames.close()
            else:
                image = dev.read(timeout_s=1.0).image
        except (DeviceError, StopIteration):
            return None
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
        return buf.tobytes() if ok else None


def _part(jpeg: bytes) -> bytes:
    """One part of the MJPEG stream, with the Content-Length MOSIP's clients look for."""
    return (b"--BoundaryString\r\nContent-Type:image/jpeg\r\nContent-Length:" + str(len(jpeg)).encode()
            + b"\r\n\r\n" + jpeg + b"\r\n\r\n")


def _json(obj: Any) -> bytes:
    import json

    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _score(v: float | int) -> float:
    """A score as the spec's floating point number 0..100."""
    return round(float(v), 2)
