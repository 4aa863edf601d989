"""Command and response APDUs (ISO/IEC 7816-3/-4) and the channel that exchanges them.

* :class:`Command` builds short and extended-length APDUs (all four ISO cases) and parses them
  back (the virtual card uses :meth:`Command.parse`).
* :class:`Response` splits data and status word.
* :class:`ApduChannel` sits on any :class:`~biostation.hal.card_reader.ApduTransport`
  (``transmit(bytes) -> bytes``: a pyscard reader, the in-process virtual card, a recording) and
  does what every caller would otherwise repeat: GET RESPONSE while the card answers ``61xx``,
  re-sending with the right Le on ``6Cxx``, command chaining (CLA bit ``10``) for data longer than
  the card takes in one APDU, secure messaging when a session is set (:attr:`ApduChannel.sm`), and
  mapping status words to typed errors through a chain of small checkers (:data:`SW_CHECKERS`).

Nothing here logs APDU contents: commands carry keys, PINs and personal data. Logs carry the
instruction byte, lengths and the status word only.

Thread-safety: a channel is one conversation with one card; use it from one thread at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

from ..errors import (
    AccessDeniedError,
    ApduError,
    CardError,
    CardRemovedError,
    DeviceGoneError,
    SecureMessagingError,
)

if TYPE_CHECKING:
    from .sm import SecureMessaging

log = logging.getLogger(__name__)

__all__ = [
    "INS",
    "SW_CHECKERS",
    "SW_OK",
    "ApduChannel",
    "Command",
    "Response",
    "Transport",
    "check_sw",
]

SW_OK = 0x9000


class INS:
    """Instruction bytes used by ICAO 9303 (Doc 9303-10 §3.6, -11 §9)."""

    SELECT = 0xA4
    READ_BINARY = 0xB0
    READ_BINARY_ODD = 0xB1  # offset in a DO54 (files above 32 KiB)
    UPDATE_BINARY = 0xD6
    GET_CHALLENGE = 0x84
    EXTERNAL_AUTHENTICATE = 0x82  # = MUTUAL AUTHENTICATE for BAC
    INTERNAL_AUTHENTICATE = 0x88  # active authentication
    MSE = 0x22
    GENERAL_AUTHENTICATE = 0x86
    PSO = 0x2A  # PERFORM SECURITY OPERATION (PSO:Verify Certificate in terminal authentication)
    GET_RESPONSE = 0xC0
    VERIFY = 0x20
    RESET_RETRY_COUNTER = 0x2C
    CREATE_FILE = 0xE0
    PUT_DATA = 0xDA


class Transport(Protocol):
    def transmit(self, apdu: bytes) -> bytes: ...


@dataclass(frozen=True)
class Command:
    """A command APDU.

    ``le`` is the number of response bytes expected: ``None`` for none (ISO case 1/3), 1..256 in
    short form (256 encodes as ``00``), up to 65536 in extended form (65536 encodes as ``0000``).
    ``extended`` forces the extended form; it is chosen anyway when data exceeds 255 bytes or
    ``le`` exceeds 256.
    """

    cla: int
    ins: int
    p1: int = 0
    p2: int = 0
    data: bytes = b""
    le: int | None = None
    extended: bool = False

    def __post_init__(self) -> None:
        for name in ("cla", "ins", "p1", "p2"):
            v = getattr(self, name)
            if not 0 <= v <= 0xFF:
                raise ValueError(f"{name} {v} is not a byte")
        if len(self.data) > 65535:
            raise ValueError(f"command data of {len(self.data)} bytes (max 65535)")
        if self.le is not None and not 0 <= self.le <= 65536:
            raise ValueError(f"Le {self.le} out of range")
        if self.le == 0:  # Le byte(s) 00 mean "as much as there is": 256, or 65536 when extended
            object.__setattr__(self, "le", 65536 if self.extended else 256)

    @property
    def is_extended(self) -> bool:
        return self.extended or len(self.data) > 255 or (self.le is not None and self.le > 256)

    def to_bytes(self) -> bytes:
        head = bytes([self.cla, self.ins, self.p1, self.p2])
        ext = self.is_extended
        out = head
        if self.data:
            n = len(self.data)
            out += (b"\x00" + n.to_bytes(2, "big")) if ext else bytes([n])
            out += bytes(self.data)
        if self.le is not None:
            if ext:
                le = self.le % 65536  # 65536 -> 0000
                out += (b"" if self.data else b"\x00") + le.to_bytes(2, "big")
            else:
                out += bytes([self.le % 256])  # 256 -> 00
        return out

    @classmethod
    def parse(cls, raw: bytes) -> Command:
        """Parse a command APDU (ISO/IEC 7816-3 §12.1.3 cases). ValueError on a malformed one."""
        raw = bytes(raw)
        if len(raw) < 4:
            raise ValueError(f"APDU of {len(raw)} bytes")
        cla, ins, p1, p2 = raw[:4]
        body = raw[4:]
        if not body:
            return cls(cla, ins, p1, p2)
        if len(body) == 1:  # case 2 short
            return cls(cla, ins, p1, p2, le=body[0] or 256)
        if body[0] != 0:  # short, case 3 or 4
            lc = body[0]
            if len(body) == 1 + lc:
                return cls(cla, ins, p1, p2, body[1:])
            if len(body) == 2 + lc:
                return cls(cla, ins, p1, p2, body[1:1 + lc], body[-1] or 256)
            raise ValueError(f"Lc {lc} does not match {len(body) - 1} body bytes")
        # extended forms start with 00
        if len(body) == 3:  # case 2 extended
            return cls(cla, ins, p1, p2, le=int.from_bytes(body[1:3], "big") or 65536, extended=True)
        if len(body) < 3:
            raise ValueError("truncated extended length")
        lc = int.from_bytes(body[1:3], "big")
        if lc == 0:
            raise ValueError("extended Lc of 0")
        if len(body) == 3 + lc:
            return cls(cla, ins, p1, p2, body[3:], extended=True)
        if len(body) == 5 + lc:
            return cls(cla, ins, p1, p2, body[3:3 + lc], int.from_bytes(body[-2:], "big") or 65536, True)
        raise ValueError(f"extended Lc {lc} does not match {len(body) - 3} body bytes")

    def __repr__(self) -> str:  # no data: it may be a key or personal data
        return (f"Command(cla={self.cla:02X}, ins={self.ins:02X}, p1={self.p1:02X}, p2={self.p2:02X}, "
                f"lc={len(self.data)}, le={self.le})")


@dataclass(frozen=True)
class Response:
    data: bytes
    sw: int

    @classmethod
    def parse(cls, raw: bytes) -> Response:
        raw = bytes(raw)
        if len(raw) < 2:
            raise CardError(f"response of {len(raw)} bytes: no status word")
        return cls(raw[:-2], int.from_bytes(raw[-2:], "big"))

    @property
    def sw1(self) -> int:
        return self.sw >> 8

    @property
    def sw2(self) -> int:
        return self.sw & 0xFF

    @property
    def ok(self) -> bool:
        return self.sw == SW_OK

    def to_bytes(self) -> bytes:
        return bytes(self.data) + self.sw.to_bytes(2, "big")

    def __repr__(self) -> str:
        return f"Response(len={len(self.data)}, sw={self.sw:04X})"


# --- status word checkers (a chain: the first that raises wins) ---------------------------------

def _access(resp: Response, what: str) -> None:
    sw = resp.sw
    if sw in (0x6982, 0x6983, 0x6984, 0x6300) or sw & 0xFFF0 == 0x63C0:
        detail = {0x6982: "security status not satisfied", 0x6983: "authentication method blocked",
                  0x6984: "reference data not usable", 0x6300: "authentication failed"}.get(sw)
        retries = None
        if sw & 0xFFF0 == 0x63C0:
            retries = sw & 0x0F
            detail = f"authentication failed, {retries} tries left"
        exc = AccessDeniedError(f"{what}: {detail} (SW {sw:04X})")
        exc.sw = sw  # type: ignore[attr-defined]
        exc.retries_left = retries  # type: ignore[attr-defined]
        raise exc


def _secure_messaging(resp: Response, what: str) -> None:
    if resp.sw in (0x6987, 0x6988):
        raise SecureMessagingError(f"{what}: card reports "
                                   f"{'missing SM data objects' if resp.sw == 0x6987 else 'incorrect SM data objects'}"
                                   f" (SW {resp.sw:04X})")


_MEANING = {
    0x6700: "wrong length", 0x6A82: "file not found", 0x6A86: "incorrect P1/P2", 0x6B00: "offset beyond the file",
    0x6D00: "instruction not supported", 0x6E00: "class not supported", 0x6A80: "incorrect data",
    0x6985: "conditions of use not satisfied", 0x6A88: "referenced data not found", 0x6282: "end of file reached",
    0x6F00: "card error",
}


def _generic(resp: Response, what: str) -> None:
    if resp.sw != SW_OK:
        raise ApduError(f"{what}: {_MEANING.get(resp.sw, 'card refused')}", resp.sw)


SW_CHECKERS: list[Callable[[Response, str], None]] = [_access, _secure_messaging, _generic]


def check_sw(resp: Response, what: str = "command") -> Response:
    """Raise the typed error for a status word other than 9000; return ``resp`` otherwise."""
    if resp.sw == SW_OK:
        return resp
    for checker in SW_CHECKERS:
        checker(resp, what)
    return resp


class ApduChannel:
    """One conversation with one card over a transport.

    ``max_command_data``: the most data bytes the card takes in one command before chaining
    (255 in short form; raise it when the card announces extended length). ``extended``: send
    extended-length APDUs when needed (only if the card supports them, see EF.ATR/INFO or the
    ATR's historical bytes). :attr:`apdu_count` counts APDUs on the wire, GET RESPONSE included.
    """

    def __init__(self, transport: Transport, *, extended: bool = False, max_command_data: int = 255):
        self.transport = transport
        self.extended = extended
        self.max_command_data = max_command_data
        self.sm: SecureMessaging | None = None
        self.apdu_count = 0

    # --- public --------------------------------------------------------------------------------
    def transmit(self, cmd: Command) -> Response:
        """Send ``cmd`` (protected when an SM session is set); return the (unprotected) response.

        A secure-messaging failure (bad MAC, SSC out of step) drops the session and raises
        :class:`SecureMessagingError`: the keys must not be used again.
        """
        sm = self.sm
        wire = sm.protect(cmd) if sm is not None else cmd
        resp = self._exchange(wire)
        if sm is None:
            return resp
        try:
            return sm.unprotect(resp)
        except SecureMessagingError:
            self.sm = None
            raise

    def send(self, cmd: Command, what: str | None = None) -> bytes:
        """Transmit and return the data; typed error on any status word but 9000."""
        resp = self.transmit(cmd)
        check_sw(resp, what or f"INS {cmd.ins:02X}")
        return resp.data

    # --- internals -----------------------------------------------------------------------------
    def _raw(self, apdu: bytes) -> Response:
        try:
            raw = self.transport.transmit(apdu)
        except DeviceGoneError as exc:
            raise CardRemovedError(f"reader gone: {exc}") from exc
        self.apdu_count += 1
        return Response.parse(raw)

    def _exchange(self, cmd: Command) -> Response:
        limit = 65535 if self.extended else self.max_command_data
        data = cmd.data
        if len(data) > limit or (len(data) > 255 and not self.extended):
            step = min(limit, 255) if not self.extended else limit
            chunks = [data[i:i + step] for i in range(0, len(data), step)]
            for chunk in chunks[:-1]:
                part = Command(cmd.cla | 0x10, cmd.ins, cmd.p1, cmd.p2, chunk)
                check_sw(self._raw(part.to_bytes()), f"chained INS {cmd.ins:02X}")
            cmd = replace(cmd, data=chunks[-1], extended=cmd.extended and self.extended)
        elif cmd.is_extended and not self.extended and cmd.le is not None and cmd.le > 256:
            cmd = replace(cmd, le=256, extended=False)
        resp = self._raw(cmd.to_bytes())
        if resp.sw1 == 0x6C:  # wrong Le: the card says how many bytes it has
            resp = self._raw(replace(cmd, le=resp.sw2 or 256, extended=False).to_bytes())
        body = bytearray(resp.data)
        guard = 0
        while resp.sw1 == 0x61:  # more data: fetch it with GET RESPONSE
            guard += 1
            if guard > 512:
                raise CardError("card keeps answering 61xx: more than 512 GET RESPONSE")
            resp = self._raw(Command(cmd.cla & 0x03, INS.GET_RESPONSE, 0, 0, le=resp.sw2 or 256).to_bytes())
            body += resp.data
        if guard:
            resp = Response(bytes(body), resp.sw)
        return resp
