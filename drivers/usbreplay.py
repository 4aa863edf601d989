"""A pyusb backend that replays a recorded USB conversation, for testing real drivers in CI.

A driver written against pyusb (``usb.core.find``, ``dev.write``, ``dev.read``,
``dev.ctrl_transfer``) runs unchanged on top of :class:`ReplayBackend`: the backend describes the
recorded device from its sysfs snapshot and answers each transfer from the recording, checking
that the driver asks for exactly what the real device was asked for.

Input: the two files ``umockdev-record`` writes (the format libfprint's ``tests/<driver>/``
uses):

* ``device``: udev database entries, one block per device (``P:`` path, ``N:`` the node
  ``bus/usb/BBB/DDD`` with its raw descriptors in hex, ``E:``/``A:`` properties and attributes);
* ``capture.ioctl``: the usbdevfs ioctls in order. A reaped URB reads
  ``USBDEVFS_REAPURBNDELAY <ret> <type> <endpoint> <status> <flags> <buffer_length>
  <actual_length> <error_count> <data hex>`` (type 0 iso, 1 interrupt, 2 control, 3 bulk;
  endpoint with bit 7 set is IN). Leading blanks are umockdev's nesting and carry no meaning for
  a sequential replay; other ioctls (``USBDEVFS_GET_CAPABILITIES``...) are libusb internals that
  pyusb never surfaces, and are skipped.

What the driver sees when it goes wrong:

* a transfer that is not the next one recorded (other endpoint, other type, other bytes written,
  another read length): :class:`ReplayMismatchError`, a ``usb.core.USBError`` with errno EPROTO
  that names the step, what was recorded and what was asked. The replay stops there (every later
  call raises the same error), so a diverging driver fails loudly instead of drifting on;
* a transfer after the end of the recording: :class:`ReplayExhaustedError`, a
  ``usb.core.USBTimeoutError``: a device that has nothing more to say does not answer;
* ``stall_at=k``: from transfer ``k`` on the device stops answering; each call blocks for its
  timeout (capped by ``max_stall_s``) and raises ``usb.core.USBTimeoutError``, as libusb would;
* a URB recorded with a non-zero status replays as the matching pyusb error (ETIMEDOUT/ENOENT:
  timeout; ENODEV: no device; others, EPIPE for instance: ``USBError`` with that errno).

Thread-safe (one lock); cheap (the recording is parsed once at construction).
"""

from __future__ import annotations

import array
import errno as _errno
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import usb.backend
import usb.core

URB_TYPES = {0: "iso", 1: "interrupt", 2: "control", 3: "bulk"}


class ReplayMismatchError(usb.core.USBError):
    """The driver asked for something other than what the recorded device was asked."""

    def __init__(self, message: str):
        super().__init__(message, None, _errno.EPROTO)


class ReplayExhaustedError(usb.core.USBTimeoutError):
    """The recording has ended: the replayed device does not answer any more."""

    def __init__(self, message: str):
        super().__init__(message, None, _errno.ETIMEDOUT)


class RecordingFormatError(ValueError):
    """The recording files cannot be parsed (names the file and line)."""


@dataclass(frozen=True)
class Urb:
    """One recorded, reaped URB."""

    line: int
    type: int
    endpoint: int
    status: int
    buffer_length: int
    actual_length: int
    data: bytes

    @property
    def is_in(self) -> bool:
        return bool(self.endpoint & 0x80)

    def describe(self) -> str:
        d = "IN" if self.is_in else "OUT"
        return (f"{URB_TYPES.get(self.type, self.type)} {d} ep 0x{self.endpoint:02x}, "
                f"{self.buffer_length} bytes (line {self.line})")


def parse_ioctl(path: str | Path) -> tuple[str, list[Urb]]:
    """The device node (``/dev/bus/usb/BBB/DDD``) and the URBs of a ``capture.ioctl`` file."""
    path = Path(path)
    node = ""
    urbs: list[Urb] = []
    for no, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("@DEV"):
            node = line.split(None, 1)[1] if " " in line else ""
            continue
        parts = line.split()
        if parts[0] not in ("USBDEVFS_REAPURB", "USBDEVFS_REAPURBNDELAY"):
            continue
        try:
            _ret, typ, ep, status, _flags, buflen, actual, _errs = (int(x) for x in parts[1:9])
            data = bytes.fromhex(parts[9]) if len(parts) > 9 else b""
        except (ValueError, IndexError) as exc:
            raise RecordingFormatError(f"{path.name} line {no}: malformed URB record ({exc})") from exc
        if len(data) < min(actual, buflen) and typ != 2:
            raise RecordingFormatError(f"{path.name} line {no}: {len(data)} data bytes for "
                                       f"actual_length {actual}")
        urbs.append(Urb(no, typ, ep, status, buflen, actual, data))
    return node, urbs


# --- descriptors ----------------------------------------------------------------------------------
class _Desc:
    """A descriptor as pyusb expects it: plain attributes."""

    def __init__(self, **kw: Any):
        self.__dict__.update(kw)


@dataclass
class _RecordedDevice:
    node: str
    bus: int
    address: int
    attrs: dict[str, str]
    device: _Desc
    configs: list[tuple[_Desc, list[list[tuple[_Desc, list[_Desc]]]]]] = field(default_factory=list)


def _u16(b: bytes, i: int) -> int:
    return b[i] | (b[i + 1] << 8)


def _parse_descriptors(blob: bytes, bus: int, address: int) -> tuple[_Desc, list]:
    """Split a raw descriptor dump (device, then each configuration) into pyusb-shaped objects."""
    if len(blob) < 18 or blob[1] != 1:
        raise RecordingFormatError("descriptor dump does not start with a device descriptor")
    d = blob[:18]
    dev = _Desc(bLength=d[0], bDescriptorType=d[1], bcdUSB=_u16(d, 2), bDeviceClass=d[4],
                bDeviceSubClass=d[5], bDeviceProtocol=d[6], bMaxPacketSize0=d[7],
                idVendor=_u16(d, 8), idProduct=_u16(d, 10), bcdDevice=_u16(d, 12),
                iManufacturer=d[14], iProduct=d[15], iSerialNumber=d[16], bNumConfigurations=d[17],
                bus=bus, address=address, port_number=None, port_numbers=None, speed=None)
    configs: list = []
    intf_list: list[list] = []  # [bInterfaceNumber-ordered][alt] -> (desc, endpoints)
    i = 18
    last: _Desc | None = None
    while i + 2 <= len(blob):
        ln, typ = blob[i], blob[i + 1]
        if ln < 2 or i + ln > len(blob):
            raise RecordingFormatError(f"bad descriptor length {ln} at byte {i}")
        b = blob[i:i + ln]
        if typ == 2:
            cfg = _Desc(bLength=b[0], bDescriptorType=2, wTotalLength=_u16(b, 2), bNumInterfaces=b[4],
                        bConfigurationValue=b[5], iConfiguration=b[6], bmAttributes=b[7],
                        bMaxPower=b[8], extra_descriptors=[])
            intf_list = []
            configs.append((cfg, intf_list))
            last = cfg
        elif typ == 4 and configs:
            intf = _Desc(bLength=b[0], bDescriptorType=4, bInterfaceNumber=b[2], bAlternateSetting=b[3],
                         bNumEndpoints=b[4], bInterfaceClass=b[5], bInterfaceSubClass=b[6],
                         bInterfaceProtocol=b[7], iInterface=b[8], extra_descriptors=[])
            alts = next((a for a in intf_list if a[0][0].bInterfaceNumber == intf.bInterfaceNumber), None)
            if alts is None:
                alts = []
                intf_list.append(alts)
            alts.append((intf, []))
            last = intf
        elif typ == 5 and configs and intf_list:
            ep = _Desc(bLength=b[0], bDescriptorType=5, bEndpointAddress=b[2], bmAttributes=b[3],
                       wMaxPacketSize=_u16(b, 4), bInterval=b[6],
                       bRefresh=b[7] if ln > 7 else 0, bSynchAddress=b[8] if ln > 8 else 0,
                       extra_descriptors=[])
            intf_list[-1][-1][1].append(ep)
            last = ep
        elif last is not None:  # class-specific descriptors belong to the one before them
            last.extra_descriptors.extend(b)
        i += ln
    return dev, configs


def parse_device_file(path: str | Path) -> list[_RecordedDevice]:
    """Every USB device described in a umockdev ``device`` file (hubs included)."""
    path = Path(path)
    devices: list[_RecordedDevice] = []
    for block in re.split(r"\n\s*\n", path.read_text()):
        node, blob, attrs = "", b"", {}
        for line in block.splitlines():
            if line.startswith("N: "):
                name, _, hexdata = line[3:].partition("=")
                node = "/dev/" + name.strip()
                if hexdata.strip():
                    blob = bytes.fromhex(hexdata.strip())
            elif line.startswith("H: descriptors=") and not blob:
                blob = bytes.fromhex(line.split("=", 1)[1].strip())
            elif line.startswith(("A: ", "E: ")):
                k, _, v = line[3:].partition("=")
                attrs[k.strip()] = v.strip().replace("\\n", "")
        m = re.fullmatch(r"/dev/bus/usb/(\d+)/(\d+)", node)
        if not m or not blob:
            continue
        bus, address = int(m.group(1)), int(m.group(2))
        desc, configs = _parse_descriptors(blob, bus, address)
        devices.append(_RecordedDevice(node, bus, address, attrs, desc, configs))
    if not devices:
        raise RecordingFormatError(f"{path}: no USB device with descriptors found")
    return devices


# --- the backend ----------------------------------------------------------------------------------
_TIMEOUT_STATUS = {-_errno.ETIMEDOUT, -_errno.ENOENT, -_errno.ECONNRESET}


class _Handle:
    def __init__(self, dev: _RecordedDevice):
        self.dev = dev
        self.claimed: set[int] = set()
        self.config: int | None = None


class ReplayBackend(usb.backend.IBackend):
    """Serve a recorded ``capture.ioctl`` to the real pyusb API.

    ``ReplayBackend.from_dir(folder)`` reads ``folder/device`` and ``folder/capture.ioctl``.
    ``limit`` keeps only the first ``limit`` URBs (a recording that ends early);
    ``stall_at`` makes the device stop answering at that URB index; ``max_stall_s`` caps how
    long a stalled call blocks (the driver's own timeout when smaller).

    After the driver is done, :attr:`position` / :attr:`remaining` say how far it got and
    :meth:`assert_finished` checks it consumed the whole conversation.
    """

    def __init__(self, device_file: str | Path, ioctl_file: str | Path, *, limit: int | None = None,
                 stall_at: int | None = None, max_stall_s: float = 0.5):
        self.devices = parse_device_file(device_file)
        self.node, urbs = parse_ioctl(ioctl_file)
        self.recorded = next((d for d in self.devices if d.node == self.node), None)
        if self.recorded is None:
            raise RecordingFormatError(f"{Path(ioctl_file).name} records {self.node or 'no device'}, "
                                       f"which {Path(device_file).name} does not describe")
        self.urbs = urbs[:limit] if limit is not None else urbs
        self.stall_at = stall_at
        self.max_stall_s = max_stall_s
        self.position = 0
        self._failed: ReplayMismatchError | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_dir(cls, folder: str | Path, **kw: Any) -> ReplayBackend:
        folder = Path(folder)
        return cls(folder / "device", folder / "capture.ioctl", **kw)

    # --- progress ----------------------------------------------------------------------------
    @property
    def remaining(self) -> int:
        return len(self.urbs) - self.position

    def assert_finished(self) -> None:
        """Raise ReplayMismatchError unless every recorded URB was replayed, without divergence."""
        if self._failed is not None:
            raise self._failed
        if self.remaining:
            raise ReplayMismatchError(f"replay unfinished: {self.remaining} of {len(self.urbs)} recorded "
                                      f"transfers never requested (next: {self.urbs[self.position].describe()})")

    # --- the core step ---------------------------------------------------------------------------
    def _next(self, handle: _Handle, typ: int, ep: int, length: int, out: bytes | None,
              timeout_ms: int) -> Urb:
        """Match the request against the next recorded URB and advance."""
        with self._lock:
            if self._failed is not None:
                raise self._failed
            if handle.dev is not self.recorded:
                raise ReplayMismatchError(f"transfer to {handle.dev.node}, but the recording is of {self.node}")
            asked = (f"{URB_TYPES.get(typ, typ)} {'IN' if ep & 0x80 else 'OUT'} ep 0x{ep:02x}, "
                     f"{length} bytes")
            if self.stall_at is not None and self.position >= self.stall_at:
                stall = True
            elif self.position >= len(self.urbs):
                raise ReplayExhaustedError(f"replay ended after {len(self.urbs)} transfers; "
                                           f"the device does not answer {asked}")
            else:
                stall = False
                urb = self.urbs[self.position]
                problem = None
                # usbdevfs files control URBs under endpoint 0 whatever their direction
                mask = 0x7F if typ == 2 else 0xFF
                if (urb.type, urb.endpoint & mask) != (typ, ep & mask):
                    problem = "other endpoint or transfer type"
                elif (urb.is_in or out is None) and length != urb.buffer_length:
                    problem = "other read length"
                elif not urb.is_in and out is not None and bytes(out) != urb.data[:urb.actual_length]:
                    problem = (f"other bytes written (recorded {urb.data[:16].hex()}..., "
                               f"sent {bytes(out)[:16].hex()}...)")
                if problem:
                    self._failed = ReplayMismatchError(
                        f"replay diverged at transfer {self.position}: {problem}; recorded "
                        f"{urb.describe()}, driver asked {asked}")
                    raise self._failed
                self.position += 1
        if stall:
            wait = self.max_stall_s if not timeout_ms else min(self.max_stall_s, timeout_ms / 1000)
            time.sleep(wait)
            raise usb.core.USBTimeoutError(f"device stalled: no answer to {asked}", None, _errno.ETIMEDOUT)
        if urb.status:
            code = -urb.status
            msg = f"recorded transfer failed: {_errno.errorcode.get(code, code)} ({urb.describe()})"
            if -code in _TIMEOUT_STATUS or urb.status in _TIMEOUT_STATUS:
                raise usb.core.USBTimeoutError(msg, urb.status, _errno.ETIMEDOUT)
            raise usb.core.USBError(msg, urb.status, code)
        return urb

    # --- IBackend: enumeration and descriptors ----------------------------------------------------
    def enumerate_devices(self) -> Iterator[_RecordedDevice]:
        return iter(self.devices)

    def get_parent(self, dev: _RecordedDevice) -> None:
        return None

    def get_device_descriptor(self, dev: _RecordedDevice) -> _Desc:
        return dev.device

    def _config(self, dev: _RecordedDevice, config: int) -> tuple[_Desc, list]:
        try:
            return dev.configs[config]
        except IndexError:
            raise usb.core.USBError(f"no configuration index {config}", None, _errno.EINVAL) from None

    def get_configuration_descriptor(self, dev: _RecordedDevice, config: int) -> _Desc:
        return self._config(dev, config)[0]

    def get_interface_descriptor(self, dev: _RecordedDevice, intf: int, alt: int, config: int) -> _Desc:
        try:
            return self._config(dev, config)[1][intf][alt][0]
        except IndexError:
            raise usb.core.USBError(f"no interface {intf} alt {alt}", None, _errno.EINVAL) from None

    def get_endpoint_descriptor(self, dev: _RecordedDevice, ep: int, intf: int, alt: int,
                                config: int) -> _Desc:
        try:
            return self._config(dev, config)[1][intf][alt][1][ep]
        except IndexError:
            raise usb.core.USBError(f"no endpoint {ep}", None, _errno.EINVAL) from None

    # --- IBackend: handles and interfaces ------------------------------------------------------------
    def open_device(self, dev: _RecordedDevice) -> _Handle:
        return _Handle(dev)

    def close_device(self, dev_handle: _Handle) -> None:
        dev_handle.claimed.clear()

    def set_configuration(self, dev_handle: _Handle, config_value: int) -> None:
        dev_handle.config = config_value

    def get_configuration(self, dev_handle: _Handle) -> int:
        if dev_handle.config is not None:
            return dev_handle.config
        value = dev_handle.dev.attrs.get("bConfigurationValue", "")
        return int(value) if value.strip().isdigit() else dev_handle.dev.configs[0][0].bConfigurationValue

    def set_interface_altsetting(self, dev_handle: _Handle, intf: int, altsetting: int) -> None:
        pass

    def claim_interface(self, dev_handle: _Handle, intf: int) -> None:
        dev_handle.claimed.add(intf)

    def release_interface(self, dev_handle: _Handle, intf: int) -> None:
        dev_handle.claimed.discard(intf)

    def is_kernel_driver_active(self, dev_handle: _Handle, intf: int) -> bool:
        return False

    def detach_kernel_driver(self, dev_handle: _Handle, intf: int) -> None:
        pass

    def attach_kernel_driver(self, dev_handle: _Handle, intf: int) -> None:
        pass

    def clear_halt(self, dev_handle: _Handle, ep: int) -> None:
        pass

    def reset_device(self, dev_handle: _Handle) -> None:
        pass

    # --- IBackend: transfers ------------------------------------------------------------------------
    def _write(self, typ: int, dev_handle: _Handle, ep: int, data: array.array, timeout: int) -> int:
        return self._next(dev_handle, typ, ep, len(data), data.tobytes(), timeout).actual_length

    def _read(self, typ: int, dev_handle: _Handle, ep: int, buff: array.array, timeout: int) -> int:
        urb = self._next(dev_handle, typ, ep, len(buff), None, timeout)
        n = min(urb.actual_length, len(buff))
        buff[:n] = array.array("B", urb.data[:n])
        return n

    def bulk_write(self, dev_handle: _Handle, ep: int, intf: int, data: array.array, timeout: int) -> int:
        return self._write(3, dev_handle, ep, data, timeout)

    def bulk_read(self, dev_handle: _Handle, ep: int, intf: int, buff: array.array, timeout: int) -> int:
        return self._read(3, dev_handle, ep, buff, timeout)

    def intr_write(self, dev_handle: _Handle, ep: int, intf: int, data: array.array, timeout: int) -> int:
        return self._write(1, dev_handle, ep, data, timeout)

    def intr_read(self, dev_handle: _Handle, ep: int, intf: int, buff: array.array, timeout: int) -> int:
        return self._read(1, dev_handle, ep, buff, timeout)

    def ctrl_transfer(self, dev_handle: _Handle, bmRequestType: int, bRequest: int, wValue: int,
                      wIndex: int, data: array.array, timeout: int) -> int:
        # usbdevfs records a control URB as its 8-byte setup packet followed by the data stage
        length = len(data)
        setup = bytes([bmRequestType, bRequest, wValue & 0xFF, wValue >> 8, wIndex & 0xFF, wIndex >> 8,
                       length & 0xFF, length >> 8])
        ep = 0x80 if bmRequestType & 0x80 else 0x00
        payload = None if ep else setup + data.tobytes()
        with self._lock:
            if self.position < len(self.urbs) and self._failed is None:
                urb = self.urbs[self.position]
                if urb.type == 2 and urb.data[:8] != setup:
                    self._failed = ReplayMismatchError(
                        f"replay diverged at transfer {self.position}: other control request (recorded "
                        f"setup {urb.data[:8].hex()}, sent {setup.hex()})")
                    raise self._failed
        urb = self._next(dev_handle, 2, ep, length + 8, payload, timeout)
        if ep:
            n = max(0, min(urb.actual_length, len(data)))
            data[:n] = array.array("B", urb.data[8:8 + n])
            return n
        return length
