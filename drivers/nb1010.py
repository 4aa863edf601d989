"""NEXT Biometrics NB-1010-U (USB 298d:1010): a 256 x 180 press sensor, driven with pyusb.

Protocol (as documented by libfprint's ``libfprint/drivers/nb1010.{c,h}``, and confirmed
against the recording in ``shared/data/usb-recordings/nb1010``): one interface, bulk OUT 0x02
for commands, bulk IN 0x83 for answers. Every command starts ``0x80 <cmd> <seq> 0x00 <len>``;
the device echoes the sequence byte without checking it, so we send the same bytes libfprint's
recording shows. Answers start ``0x80 <answer>``.

=============  ======================  ===============================================
command        answer (16 bytes)       meaning
=============  ======================  ===============================================
0x38 check     0x80 0x37 ...           byte 12: finger coverage 0..255 (> 0x60: finger)
0x0d prepare   0x80 0x20 ...           always sent before a capture
0x12 capture   0x80 0x20 ...           then 90 blocks of 540 bytes follow on 0x83
=============  ======================  ===============================================

An image block is a 25-byte header and two 256-pixel scan lines (+3 bytes of padding). In the
header, bytes 4..5 are the block length (540, little-endian), 12 is 1 while more blocks follow
and 0 on the last, 16..19 the index of the block's last line (1, 3, ... 179), 20..21 the line
width (256). We check all of these, so a corrupted or truncated stream is a protocol error
rather than a silently wrong image.

The capture is an explicit state machine (:class:`CaptureState`) run by one loop, so every
capture ends in exactly one result or error and the device is back to idle (no transfer is left
half-done: each step is a complete synchronous bulk transfer with its own timeout, never longer
than what remains of the caller's deadline).

Testing: ``NB1010Scanner.from_backend(ReplayBackend.from_dir(...))`` runs this code, through the
real pyusb API, on a recorded conversation (``tests/drivers/``). On a desk, ``probe`` finds the
device through libusb; ``Settings.usb_replay_dir`` makes the station see a recording instead.
"""

from __future__ import annotations

import errno
import logging
from enum import IntEnum
from typing import Any, ClassVar

import numpy as np

from biostation.config import Settings
from biostation.errors import DeviceGoneError, DeviceProtocolError, DeviceStateError, DeviceTimeoutError
from biostation.hal import Attachment, Deadline, Feature, FingerPosition, FingerprintScanner, ImpressionKind

log = logging.getLogger(__name__)

VID, PID = 0x298D, 0x1010
EP_OUT, EP_IN = 0x02, 0x83
FRAME_WIDTH, FRAME_HEIGHT = 256, 180
DPI = 385  # NEXT Biometrics product sheet: 385 ppi (256 x 180 px = 16.9 x 11.9 mm)

CMD_CHECK_FINGER = bytes([0x80, 0x38, 0x01, 0x00, 0x08, 0x00, 0x00, 0x00])
CMD_PRE_CAPTURE = bytes([0x80, 0x0D, 0x03, 0x00, 0x0C, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00])
CMD_CAPTURE = bytes([0x80, 0x12, 0x04, 0x00, 0x20, 0x00, 0x00, 0x00, 0x02] + [0x00] * 19
                    + [0x20, 0x00, 0x00, 0x00])
ANSWER_CHECK, ANSWER_OK = 0x37, 0x20
ANSWER_LEN = 16
BLOCK_LEN = 540
BLOCK_HEADER = 25
LINES_PER_BLOCK = 2
N_BLOCKS = FRAME_HEIGHT // LINES_PER_BLOCK  # 90
COVERAGE_BYTE = 12
#: coverage above which a finger counts as present (libfprint uses the same 0x60)
FINGER_THRESHOLD = 0x60
#: per-transfer timeout, ms (libfprint: 500)
TRANSFER_TIMEOUT_MS = 500
#: pause between a command and reading the sensor, s (libfprint: 50 ms)
SETTLE_S = 0.05


class CaptureState(IntEnum):
    REQUEST_PRINT = 0
    WAIT_PRINT = 1
    CHECK_PRINT = 2
    READ_PRINT_START = 3
    READ_PRINT_WAIT = 4
    READ_PRINT_POLL = 5
    SUBMIT_PRINT = 6
    NUM_STATES = 7


def _usb() -> Any:
    try:
        import usb.core
        import usb.util
    except ImportError as exc:  # pragma: no cover - the [hw] extra is not installed
        raise DeviceStateError("pyusb is not installed (pip install 'biostation[hw]')") from exc
    return usb


class NB1010Scanner(FingerprintScanner):
    id = "nb1010"
    full_name = "NEXT Biometrics NB-1010-U"
    id_table = ((VID, PID),)
    features = Feature.CAPTURE_FLAT | Feature.FINGER_DETECT
    max_image_size = (FRAME_HEIGHT, FRAME_WIDTH)
    default_timeout_s = 15.0

    #: backends by replay folder, so probe() and open() see the same recorded device
    _replays: ClassVar[dict[str, Any]] = {}

    # --- discovery ---------------------------------------------------------------------------------
    @classmethod
    def _settings_backend(cls, settings: Settings) -> Any:
        folder = getattr(settings, "usb_replay_dir", None)
        if not folder:
            return None  # libusb, pyusb's default
        key = str(folder)
        if key not in cls._replays:
            from biostation_drivers.usbreplay import ReplayBackend

            cls._replays[key] = ReplayBackend.from_dir(folder)
        return cls._replays[key]

    @classmethod
    def probe(cls, settings: Settings) -> list[Attachment]:
        usb = _usb()
        backend = cls._settings_backend(settings)
        found = usb.core.find(find_all=True, idVendor=VID, idProduct=PID, backend=backend)
        return [cls._attachment(dev, backend) for dev in found]

    @staticmethod
    def _attachment(dev: Any, backend: Any) -> Attachment:
        return Attachment("usb", f"usb:{dev.bus}-{dev.address}:{VID:04x}:{PID:04x}", NB1010Scanner.full_name,
                          VID, PID, (("bus", dev.bus), ("address", dev.address), ("backend", backend)))

    @classmethod
    def from_backend(cls, backend: Any, settings: Settings | None = None) -> NB1010Scanner:
        """A scanner on the first NB-1010 that ``backend`` (a pyusb backend) shows; for tests."""
        usb = _usb()
        dev = usb.core.find(idVendor=VID, idProduct=PID, backend=backend)
        if dev is None:
            raise DeviceGoneError("no NB-1010 on this USB backend")
        return cls(cls._attachment(dev, backend), settings or Settings())

    # --- instance ------------------------------------------------------------------------------------
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._dev: Any = None
        #: the last state the capture machine entered (for diagnostics and tests)
        self.last_state: CaptureState | None = None

    def _do_open(self) -> None:
        usb = _usb()
        bus, address = self.attachment.get("bus"), self.attachment.get("address")
        try:
            dev = usb.core.find(idVendor=VID, idProduct=PID, backend=self.attachment.get("backend"),
                                custom_match=lambda d: d.bus == bus and d.address == address)
        except usb.core.USBError as exc:
            raise DeviceGoneError(f"cannot enumerate USB: {exc}", self.device_id) from exc
        if dev is None:
            raise DeviceGoneError(f"{self.full_name} at bus {bus} address {address} is gone", self.device_id)
        try:
            usb.util.claim_interface(dev, 0)
        except usb.core.USBError as exc:
            raise self._map(exc, "claiming interface 0") from exc
        self._dev = dev

    def _do_close(self) -> None:
        if self._dev is None:
            return
        usb = _usb()
        try:
            usb.util.release_interface(self._dev, 0)
        finally:
            usb.util.dispose_resources(self._dev)
            self._dev = None

    def _do_info(self) -> dict[str, Any]:
        return {"vendor": "NEXT Biometrics", "model": "NB-1010-U", "bus": self.attachment.get("bus"),
                "address": self.attachment.get("address"), "width": FRAME_WIDTH, "height": FRAME_HEIGHT,
                "dpi": DPI}

    # --- transfers ------------------------------------------------------------------------------------
    def _map(self, exc: Exception, what: str) -> Exception:
        usb = _usb()
        if isinstance(exc, usb.core.USBTimeoutError):
            return DeviceTimeoutError(f"{what}: device did not answer ({exc})", self.device_id)
        if getattr(exc, "errno", None) in (errno.ENODEV, errno.ESHUTDOWN):
            return DeviceGoneError(f"{what}: device gone ({exc})", self.device_id)
        return DeviceProtocolError(f"{what}: USB error ({exc})", self.device_id)

    def _timeout_ms(self, deadline: Deadline | None) -> int:
        rem = deadline.remaining() if deadline is not None else None
        return TRANSFER_TIMEOUT_MS if rem is None else max(1, min(TRANSFER_TIMEOUT_MS, int(rem * 1000)))

    def _send(self, data: bytes, deadline: Deadline | None, what: str) -> None:
        if self._dev is None:
            raise DeviceStateError(f"{self.device_id} is not open", self.device_id)
        usb = _usb()
        try:
            n = self._dev.write(EP_OUT, data, self._timeout_ms(deadline))
        except usb.core.USBError as exc:
            raise self._map(exc, what) from exc
        if n != len(data):
            raise DeviceProtocolError(f"{what}: short write ({n} of {len(data)} bytes)", self.device_id)

    def _recv(self, size: int, deadline: Deadline | None, what: str) -> bytes:
        if self._dev is None:
            raise DeviceStateError(f"{self.device_id} is not open", self.device_id)
        usb = _usb()
        try:
            data = bytes(self._dev.read(EP_IN, size, self._timeout_ms(deadline)))
        except usb.core.USBError as exc:
            raise self._map(exc, what) from exc
        if len(data) != size:
            raise DeviceProtocolError(f"{what}: short read ({len(data)} of {size} bytes)", self.device_id)
        return data

    def _command(self, cmd: bytes, answer: int, deadline: Deadline | None, what: str) -> bytes:
        self._send(cmd, deadline, what)
        resp = self._recv(ANSWER_LEN, deadline, what)
        if resp[0] != 0x80 or resp[1] != answer:
            raise DeviceProtocolError(f"{what}: unexpected answer {resp[:2].hex()} "
                                      f"(expected 80{answer:02x})", self.device_id)
        return resp

    def _coverage(self, deadline: Deadline | None) -> int:
        return self._command(CMD_CHECK_FINGER, ANSWER_CHECK, deadline, "finger check")[COVERAGE_BYTE]

    def _read_block(self, index: int, frame: np.ndarray, deadline: Deadline) -> None:
        what = f"image block {index + 1}/{N_BLOCKS}"
        b = self._recv(BLOCK_LEN, deadline, what)
        length = int.from_bytes(b[4:6], "little")
        last_line = int.from_bytes(b[16:20], "little")
        width = int.from_bytes(b[20:22], "little")
        more = b[12]
        expect_more = 1 if index < N_BLOCKS - 1 else 0
        if b[0] != 0x80 or b[1] != 0x21 or length != BLOCK_LEN:
            raise DeviceProtocolError(f"{what}: bad header {b[:6].hex()}", self.device_id)
        if width != FRAME_WIDTH:
            raise DeviceProtocolError(f"{what}: line width {width}, this sensor makes {FRAME_WIDTH}",
                                      self.device_id)
        if last_line != (index + 1) * LINES_PER_BLOCK - 1 or more != expect_more:
            raise DeviceProtocolError(f"{what}: out of sequence (last line {last_line}, more={more})",
                                      self.device_id)
        row = index * LINES_PER_BLOCK
        pixels = np.frombuffer(b, np.uint8, LINES_PER_BLOCK * FRAME_WIDTH, BLOCK_HEADER)
        frame[row:row + LINES_PER_BLOCK] = pixels.reshape(LINES_PER_BLOCK, FRAME_WIDTH)

    # --- hooks ------------------------------------------------------------------------------------------
    def _do_finger_present(self) -> bool:
        return self._coverage(None) > FINGER_THRESHOLD

    def _do_capture(self, kind: ImpressionKind, position: FingerPosition,
                    deadline: Deadline) -> tuple[np.ndarray, int]:
        frame = np.zeros((FRAME_HEIGHT, FRAME_WIDTH), np.uint8)
        state = CaptureState.REQUEST_PRINT
        coverage = 0
        while state is not CaptureState.NUM_STATES:
            self.last_state = state
            deadline.check(self.device_id, "waiting for a finger" if state <= CaptureState.CHECK_PRINT
                           else "capture")
            if state is CaptureState.REQUEST_PRINT:
                self._send(CMD_CHECK_FINGER, deadline, "finger check")
                state = CaptureState.WAIT_PRINT
            elif state is CaptureState.WAIT_PRINT:
                deadline.sleep(SETTLE_S, self.device_id, "waiting for a finger")
                state = CaptureState.CHECK_PRINT
            elif state is CaptureState.CHECK_PRINT:
                resp = self._recv(ANSWER_LEN, deadline, "finger check")
                if resp[0] != 0x80 or resp[1] != ANSWER_CHECK:
                    raise DeviceProtocolError(f"finger check: unexpected answer {resp[:2].hex()}",
                                              self.device_id)
                coverage = resp[COVERAGE_BYTE]
                present = coverage > FINGER_THRESHOLD
                self._update_finger(present)
                state = CaptureState.READ_PRINT_START if present else CaptureState.REQUEST_PRINT
            elif state is CaptureState.READ_PRINT_START:
                self._command(CMD_PRE_CAPTURE, ANSWER_OK, deadline, "prepare capture")
                self._command(CMD_CAPTURE, ANSWER_OK, deadline, "start capture")
                state = CaptureState.READ_PRINT_WAIT
            elif state is CaptureState.READ_PRINT_WAIT:
                deadline.sleep(SETTLE_S, self.device_id, "capture")
                state = CaptureState.READ_PRINT_POLL
            elif state is CaptureState.READ_PRINT_POLL:
                for i in range(N_BLOCKS):
                    self._read_block(i, frame, deadline)
                state = CaptureState.SUBMIT_PRINT
            elif state is CaptureState.SUBMIT_PRINT:
                state = CaptureState.NUM_STATES
        log.debug("%s: captured %dx%d, coverage %d", self.device_id, FRAME_WIDTH, FRAME_HEIGHT, coverage)
        return frame, DPI
