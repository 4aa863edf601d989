"""Start (or find) the PC/SC daemon the virtual card plugs into.

:func:`ensure_pcscd` returns at once when a pcscd already answers on its socket; otherwise it
starts ``pcscd --foreground`` as a child and waits until the socket accepts connections. The
vpcd reader driver must be installed (Debian ``vsmartcard-vpcd``: ``/etc/reader.conf.d/vpcd``
and ``libifdvpcd.so``); :func:`vpcd_installed` says whether it is.

vpcd exposes two slots per channel: reader ``Virtual PCD 00 00`` on TCP 35963 and ``Virtual PCD
00 01`` on 35964. A card connects to one port; one card per slot.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from biostation.errors import DeviceError

__all__ = ["SOCKET_PATHS", "PcscdHandle", "ensure_pcscd", "pcscd_running", "vpcd_installed", "vpcd_slot"]

SOCKET_PATHS = ("/run/pcscd/pcscd.comm", "/var/run/pcscd/pcscd.comm")


def vpcd_slot(slot: int) -> tuple[str, int]:
    """(reader name, TCP port) of vpcd slot ``slot`` (0 or 1)."""
    return f"Virtual PCD 00 {slot:02d}", 0x8C7B + slot


def pcscd_binary() -> str | None:
    return shutil.which("pcscd") or next((p for p in ("/usr/sbin/pcscd", "/sbin/pcscd") if os.path.exists(p)), None)


def vpcd_installed() -> bool:
    conf = any("libifdvpcd" in Path(p).read_text(errors="replace") for p in glob.glob("/etc/reader.conf.d/*"))
    return conf and bool(glob.glob("/usr/lib/pcsc/drivers/serial/libifdvpcd.so*") +
                         glob.glob("/usr/lib/*/pcsc/drivers/serial/libifdvpcd.so*"))


def pcscd_running() -> bool:
    for path in SOCKET_PATHS:
        if not os.path.exists(path):
            continue
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.settimeout(0.5)
            s.connect(path)
            return True
        except OSError:
            continue
        finally:
            s.close()
    return False


@dataclass
class PcscdHandle:
    """A pcscd this process started (``proc``) or found running (``proc`` is None)."""

    proc: subprocess.Popen | None
    log_path: Path | None = None

    @property
    def started_here(self) -> bool:
        return self.proc is not None

    def stop(self) -> None:
        """Stop the pcscd started here (never one found running)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def ensure_pcscd(log_path: Path | None = None, timeout_s: float = 10.0) -> PcscdHandle:
    """A running pcscd: the one already there, or a new ``pcscd --foreground`` child."""
    if pcscd_running():
        return PcscdHandle(None)
    exe = pcscd_binary()
    if exe is None:
        raise DeviceError("pcscd is not installed (Debian: apt-get install pcscd vsmartcard-vpcd)")
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL
    try:
        proc = subprocess.Popen([exe, "--foreground"], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    finally:
        if log_path:
            out.close()  # type: ignore[union-attr]
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise DeviceError(f"pcscd exited at start with status {proc.returncode}"
                              + (f" (log: {log_path})" if log_path else ""))
        if pcscd_running():
            return PcscdHandle(proc, log_path)
        time.sleep(0.1)
    proc.terminate()
    raise DeviceError(f"pcscd did not open its socket within {timeout_s} s")
