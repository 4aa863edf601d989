"""Secure messaging, Doc 9303-11 §9.8 (ISO/IEC 7816-4 SM with DO87/DO85, DO97, DO99, DO8E).

One :class:`SecureMessaging` object holds a session: the two session keys, the cipher (3DES or
AES) and the send sequence counter (SSC). The SSC goes up by one before each command and before
each response is checked, so every MAC binds the message to its place in the conversation; a
replayed or dropped message fails the MAC.

Both ends are here:

* the terminal side :meth:`protect` (command) / :meth:`unprotect` (response): every response that
  carries data or 9000 must carry a valid MAC, or :class:`SecureMessagingError` is raised;
* the chip side :meth:`unwrap_command` / :meth:`wrap_response`, used by the virtual card.

A response that is only a status word other than 9000 (a card that aborts SM answers so) is
passed up as it is: it carries no data to trust and ends in an error anyway.

Thread-safety: one object per conversation, one thread at a time. Keys are never logged.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import SecureMessagingError, TLVError
from . import crypto, tlv
from .apdu import Command, Response

__all__ = ["SecureMessaging", "SessionKeys"]


@dataclass
class SessionKeys:
    enc: bytes
    mac: bytes
    cipher: str  # "3DES" or "AES"

    def __repr__(self) -> str:
        return f"SessionKeys(cipher={self.cipher}, bits={len(self.enc) * 8})"


class SecureMessaging:
    """An SM session. ``ssc`` is the initial counter (BAC: from the nonces; PACE: 0).

    ``pace_chip_key`` and ``ca_terminal_key``: the ephemeral public keys of the PACE chip and
    of the terminal's chip authentication that led to this session (None when not used);
    terminal authentication binds its signature to them.
    """

    pace_chip_key: bytes | None = None
    ca_terminal_key: bytes | None = None

    def __init__(self, ks_enc: bytes, ks_mac: bytes, ssc: int = 0, cipher: str = "3DES"):
        if cipher not in ("3DES", "AES"):
            raise ValueError(f"cipher {cipher!r}")
        self.keys = SessionKeys(bytes(ks_enc), bytes(ks_mac), cipher)
        self.block = 8 if cipher == "3DES" else 16
        self.ssc = ssc

    def __repr__(self) -> str:
        return f"SecureMessaging({self.keys.cipher})"

    # --- primitives ----------------------------------------------------------------------------
    def _ssc_bytes(self) -> bytes:
        return (self.ssc % (1 << (8 * self.block))).to_bytes(self.block, "big")

    def _mac(self, data: bytes) -> bytes:
        n = crypto.pad(self._ssc_bytes() + data, self.block)
        if self.keys.cipher == "3DES":
            return crypto.retail_mac(self.keys.mac, n, padded=True)
        return crypto.aes_cmac(self.keys.mac, n, 8)

    def _encrypt(self, data: bytes) -> bytes:
        p = crypto.pad(data, self.block)
        if self.keys.cipher == "3DES":
            return crypto.des3_cbc_encrypt(self.keys.enc, p)
        iv = crypto.aes_ecb_encrypt(self.keys.enc, self._ssc_bytes())
        return crypto.aes_cbc_encrypt(self.keys.enc, p, iv)

    def _decrypt(self, data: bytes) -> bytes:
        if not data or len(data) % self.block:
            raise SecureMessagingError(f"cryptogram of {len(data)} bytes is not whole blocks")
        if self.keys.cipher == "3DES":
            p = crypto.des3_cbc_decrypt(self.keys.enc, data)
        else:
            iv = crypto.aes_ecb_encrypt(self.keys.enc, self._ssc_bytes())
            p = crypto.aes_cbc_decrypt(self.keys.enc, data, iv)
        try:
            return crypto.unpad(p)
        except ValueError:
            raise SecureMessagingError("bad padding in the decrypted data") from None

    @staticmethod
    def _le_bytes(le: int, extended: bool) -> bytes:
        if extended:
            return (le % 65536).to_bytes(2, "big")
        return bytes([le % 256])

    # --- terminal side -------------------------------------------------------------------------
    def protect(self, cmd: Command) -> Command:
        """The SM form of ``cmd`` (CLA with bits ``0C``); advances the SSC."""
        self.ssc += 1
        cla = (cmd.cla & 0xF0 & ~0x10) | 0x0C | (cmd.cla & 0x03)
        header = crypto.pad(bytes([cla, cmd.ins, cmd.p1, cmd.p2]), self.block)
        body = b""
        if cmd.data:
            if cmd.ins & 1:  # odd INS: the data are BER-TLV, DO85 without the padding indicator
                body += tlv.encode(0x85, self._encrypt(cmd.data))
            else:
                body += tlv.encode(0x87, b"\x01" + self._encrypt(cmd.data))
        ext = cmd.is_extended
        if cmd.le is not None:
            body += tlv.encode(0x97, self._le_bytes(cmd.le, ext))
        mac = self._mac(header + body)
        data = body + tlv.encode(0x8E, mac)
        ext = ext or len(data) > 255
        return Command(cla, cmd.ins, cmd.p1, cmd.p2, data, le=65536 if ext else 256, extended=ext)

    def unprotect(self, resp: Response) -> Response:
        """Check the MAC of an SM response and return the plain one; advances the SSC."""
        self.ssc += 1
        if not resp.data:
            if resp.sw == 0x9000:
                raise SecureMessagingError("9000 without secure messaging objects")
            return resp
        try:
            dos = tlv.decode(resp.data, "SM response")
        except TLVError as exc:
            raise SecureMessagingError(f"malformed SM response: {exc}") from None
        mac_do = tlv.find(dos, 0x8E)
        if mac_do is None:
            raise SecureMessagingError("SM response without MAC (DO8E)")
        covered = b"".join(d.encode() for d in dos if d.tag in (0x85, 0x87, 0x99))
        if not crypto.constant_time_eq(self._mac(covered), mac_do.value):
            raise SecureMessagingError("MAC of the response does not verify")
        sw_do = tlv.find(dos, 0x99)
        if sw_do is None or len(sw_do.value) != 2:
            raise SecureMessagingError("SM response without status word (DO99)")
        data = self._data_of(dos)
        return Response(data, int.from_bytes(sw_do.value, "big"))

    def _data_of(self, dos: list) -> bytes:  # type: ignore[type-arg]
        """Decrypted plain data of DO87 (padding-content indicator 01) or DO85; empty if neither."""
        d87, d85 = tlv.find(dos, 0x87), tlv.find(dos, 0x85)
        if d87 is not None:
            if not d87.value or d87.value[0] != 0x01:
                raise SecureMessagingError("DO87 without padding indicator 01")
            return self._decrypt(d87.value[1:])
        if d85 is not None:
            return self._decrypt(d85.value)
        return b""

    # --- chip side -----------------------------------------------------------------------------
    def unwrap_command(self, cmd: Command) -> Command:
        """Check and decrypt an SM command (chip side). SecureMessagingError when wrong."""
        self.ssc += 1
        if cmd.cla & 0x0C != 0x0C:
            raise SecureMessagingError("plain command inside an SM session")
        try:
            dos = tlv.decode(cmd.data, "SM command")
        except TLVError as exc:
            raise SecureMessagingError(f"malformed SM command: {exc}") from None
        mac_do = tlv.find(dos, 0x8E)
        if mac_do is None:
            raise SecureMessagingError("SM command without MAC")
        header = crypto.pad(bytes([cmd.cla, cmd.ins, cmd.p1, cmd.p2]), self.block)
        covered = b"".join(d.encode() for d in dos if d.tag in (0x85, 0x87, 0x97))
        if not crypto.constant_time_eq(self._mac(header + covered), mac_do.value):
            raise SecureMessagingError("MAC of the command does not verify")
        data = self._data_of(dos)
        le = None
        d97 = tlv.find(dos, 0x97)
        if d97 is not None:
            v = int.from_bytes(d97.value, "big") if d97.value else 0
            le = v or (65536 if len(d97.value) == 2 else 256)
        return Command(cmd.cla & 0xF3, cmd.ins, cmd.p1, cmd.p2, data, le, extended=cmd.is_extended)

    def wrap_response(self, resp: Response, odd_ins: bool = False) -> Response:
        """The SM form of a chip response (chip side); advances the SSC."""
        self.ssc += 1
        body = b""
        if resp.data:
            if odd_ins:
                body += tlv.encode(0x85, self._encrypt(resp.data))
            else:
                body += tlv.encode(0x87, b"\x01" + self._encrypt(resp.data))
        body += tlv.encode(0x99, resp.sw.to_bytes(2, "big"))
        return Response(body + tlv.encode(0x8E, self._mac(body)), 0x9000)
