"""Reading an eMRTD end to end: access control, files, checks (Doc 9303-10, -11).

:class:`CardFiles` selects and reads files over an :class:`~biostation.card.apdu.ApduChannel`:
by SFI (one APDU per chunk, no SELECT; a chip that refuses SFIs is read by FID from then on)
or by FID, in READ BINARY chunks sized to what the card
takes (``0xDF`` bytes under short-length secure messaging, larger when the card announces
extended length in EF.ATR/INFO), with the odd READ BINARY (DO54 offset) beyond 32 KiB.

:func:`read_document` runs the whole read the way a desk needs it:

1. EF.CardAccess (plain) to choose PACE and its parameters; PACE with the CAN or MRZ, or BAC
   with the MRZ where the chip offers no PACE (or a PACE variant not supported here);
2. EF.COM, DG14 then chip authentication (before anything else is trusted), EF.SOD, every data
   group EF.COM lists. DG3/DG4 (fingerprints, iris) need terminal authentication: with
   ``terminal`` credentials it runs once, after chip authentication, and the fingers are
   decoded (:mod:`.dg3`); without them, or when the chip refuses, the groups are reported as
   skipped with the reason (TA is never retried);
3. active authentication (DG15), passive authentication against the CSCA trust store, and the
   Vietnamese ID cross-check when the card carries DG13 or a VNM TD1 MRZ.

Failures that mean "stop": wrong CAN/MRZ (AccessDeniedError, raised at once, one attempt only),
card removed (CardRemovedError: the partial read is dropped, nothing is returned), SM failure.
Failed *checks* (a hash mismatch, an unknown CSCA) are reported in the result, never hidden; so
is an absent, empty or malformed EF.SOD: the other files are read and shown, and passive
authentication is ``failed`` with that reason.

Personal data stays in the returned object; logs carry file names, sizes and timings only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import (
    AccessDeniedError,
    ApduError,
    CardError,
    CardRemovedError,
    SecureMessagingError,
    TerminalAuthError,
    TLVError,
    VerificationError,
)
from . import lds, tlv
from .apdu import INS, ApduChannel, Command, Transport, check_sw
from .auth import AAResult, active_authentication, chip_authentication
from .bac import perform_bac
from .cccd import cross_check
from .dg3 import DG3, FingerImage, decode_dg3
from .mrz import key_from_text
from .pace import Password, check_supported, perform_pace
from .secinfo import SecurityInfos, parse_security_infos
from .sod import PassiveAuthResult, passive_authentication
from .ta import Terminal, comp, id_picc_bac, terminal_authentication
from .trust import TrustStore

log = logging.getLogger(__name__)

__all__ = ["ICAO_AID", "CardFiles", "DocumentRead", "read_document"]

ICAO_AID = bytes.fromhex("A0000002471001")

Progress = Callable[[str, int, int], None]

#: largest READ BINARY asked for with extended length, whatever the card allows: some CCID
#: readers buffer less than a full 64 KiB APDU
READ_CAP = 4096


def historical_bytes(atr: bytes) -> bytes:
    """The historical bytes of an ATR (ISO/IEC 7816-3 §8.2): skip the interface bytes."""
    if len(atr) < 2:
        return b""
    k = atr[1] & 0x0F
    y, pos = atr[1] >> 4, 2
    while True:
        pos += bin(y).count("1")
        if not y & 0x8 or pos > len(atr):
            break
        y = atr[pos - 1] >> 4
    return bytes(atr[pos:pos + k])


def card_limits(atr: bytes | None, atr_info: bytes | None) -> tuple[bool, int]:
    """(extended length supported, largest response in bytes) as the card announces them.

    From the ATR's card capabilities (compact-TLV tag 7, third byte bit 7: extended Lc/Le,
    ISO/IEC 7816-4 §12.1.1.9) and EF.ATR/INFO's extended length information (``7F66 { 02 max
    command, 02 max response }``, ISO/IEC 7816-4 §12.7.1, Doc 9303-10 §3.11).
    """
    ext, max_resp = False, 256
    hist = historical_bytes(atr or b"")
    if hist[:1] == b"\x80":
        i = 1
        while i < len(hist):
            tag, n = hist[i] >> 4, hist[i] & 0x0F
            v = hist[i + 1:i + 1 + n]
            if tag == 7 and len(v) >= 3 and v[2] & 0x40:
                ext, max_resp = True, 65536
            i += 1 + n
    if atr_info:
        try:
            for t in tlv.walk(tlv.decode(atr_info, "EF.ATR/INFO")):
                if t.tag == 0x7F66:
                    ints = [c for c in t.children if c.tag == 0x02]
                    if len(ints) >= 2:
                        ext, max_resp = True, int.from_bytes(ints[1].value, "big") or 65536
        except TLVError:
            pass  # a malformed optional file: keep what the ATR said
    return ext, max_resp


def sm_read_size(max_response: int) -> int:
    """Plain bytes per READ BINARY so that the SM response fits ``max_response``: DO87 with
    padding to a 16-byte block, DO99 (4) and DO8E (10) add at most 39 bytes."""
    if max_response <= 256:
        return 0xDF
    return max(0xDF, ((min(max_response, READ_CAP + 64) - 40) // 16) * 16 - 1)


class CardFiles:
    """File access on one card. ``max_read``: bytes per READ BINARY (None: 0xDF, or what the
    card announces for extended length)."""

    SHORT_SM_CHUNK = 0xDF  # 223: fits a short R-APDU once DO87 padding, DO99 and DO8E are added

    #: status words with which a chip refuses a READ BINARY by short file identifier that a
    #: SELECT by FID may still reach: not found, incorrect P1/P2, function not supported
    SFI_REFUSED = (0x6A82, 0x6A86, 0x6A81)

    def __init__(self, channel: ApduChannel, max_read: int | None = None):
        self.channel = channel
        self.max_read = max_read or self.SHORT_SM_CHUNK
        #: False once the chip refused a read by SFI that SELECT by FID then served: every later
        #: file is selected by FID (SFIs are optional, ISO/IEC 7816-4 §7.2.2)
        self.sfi_ok = True

    def select_application(self, aid: bytes = ICAO_AID) -> None:
        self.channel.send(Command(0x00, INS.SELECT, 0x04, 0x0C, aid), "SELECT eMRTD application")

    def select(self, fid: int, name: str = "") -> None:
        self.channel.send(Command(0x00, INS.SELECT, 0x02, 0x0C, fid.to_bytes(2, "big")),
                          f"SELECT {name or format(fid, '04X')}")

    def _read(self, offset: int, n: int, sfi: int | None, name: str) -> bytes:
        if sfi is not None and offset < 256:
            cmd = Command(0x00, INS.READ_BINARY, 0x80 | sfi, offset, le=n)
        elif offset <= 0x7FFF:
            cmd = Command(0x00, INS.READ_BINARY, offset >> 8, offset & 0xFF, le=n)
        else:  # odd INS: offset in DO54, data come back in DO53
            cmd = Command(0x00, INS.READ_BINARY_ODD, 0, 0, tlv.encode(0x54, offset.to_bytes(3, "big")), le=n)
        resp = self.channel.transmit(cmd)
        if resp.sw not in (0x9000, 0x6282):  # 6282: end of file reached before Le bytes
            check_sw(resp, f"READ BINARY {name} at {offset}")
        data = resp.data
        if cmd.ins == INS.READ_BINARY_ODD:
            data = tlv.decode_one(data, name, expect=0x53, allow_trailing=True).value
        return data

    def read(self, file: lds.File | str, use_sfi: bool = True, progress: Progress | None = None) -> bytes:
        """The whole file. Reads the header first, then the rest in ``max_read`` chunks."""
        f = lds.FILES[file] if isinstance(file, str) else file
        sfi = f.sfi if use_sfi and self.sfi_ok else None
        if sfi is None:
            self.select(f.fid, f.name)
        n0 = min(self.max_read, 256 if not self.channel.extended else self.max_read)
        try:
            first = self._read(0, n0, sfi, f.name)
        except ApduError as exc:
            if sfi is None or exc.sw not in self.SFI_REFUSED:
                raise
            # a chip without short file identifiers: SELECT by FID (6A82 there: truly absent)
            self.select(f.fid, f.name)
            sfi = None
            first = self._read(0, n0, None, f.name)
            self.sfi_ok = False
            log.info("chip refused READ BINARY by SFI (SW %04X): selecting files by FID", exc.sw)
        if not first:
            raise TLVError("file is empty", f.name, 0)
        if f.tag is None:  # not a TLV file (EF.ATR/INFO): what came is what there is
            return first
        total = tlv.total_length(first, f.name)
        if total > 16 * 1024 * 1024:
            raise TLVError(f"file claims {total} bytes", f.name, 0)
        buf = bytearray(first[:total])
        if progress:
            progress(f.name, len(buf), total)
        while len(buf) < total:
            chunk = self._read(len(buf), min(self.max_read, total - len(buf)), None if len(buf) > 255 else sfi, f.name)
            if not chunk:
                raise TLVError(f"card returned no data at offset {len(buf)} of {total}", f.name, len(buf))
            buf += chunk[:total - len(buf)]
            if progress:
                progress(f.name, len(buf), total)
        return bytes(buf)


@dataclass
class DocumentRead:
    """Everything one read produced. ``files`` holds raw file bytes by name (``DG1``, ``EF.SOD``)."""

    access: str = ""
    card_access: SecurityInfos | None = None
    files: dict[str, bytes] = field(default_factory=dict, repr=False)
    decoded: dict[str, Any] = field(default_factory=dict, repr=False)
    skipped: dict[str, str] = field(default_factory=dict)
    passive: PassiveAuthResult | None = None
    active: AAResult | None = None
    chip_auth: str = "not offered"
    terminal_auth: str = "not performed"
    fingerprint_status: str = "not requested"  # read | absent: ... | not read: ... | malformed: ...
    fingerprint_error: CardError | None = field(default=None, repr=False)  # why DG3 is not there
    cccd: dict[str, Any] | None = None
    apdu_count: int = 0
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def data_groups(self) -> dict[int, bytes]:
        return {int(k[2:]): v for k, v in self.files.items() if k.startswith("DG")}

    @property
    def fingerprints(self) -> list[FingerImage]:
        """The finger images of DG3 (empty when DG3 was not read; see :attr:`fingerprint_status`).
        Each has ``position``, ``ppi`` and :meth:`~.dg3.FingerImage.pixels`; DG3's 19794-2
        templates, when the card carries any, are in ``decoded["DG3"].templates``."""
        dg3 = self.decoded.get("DG3")
        return list(dg3.fingers) if isinstance(dg3, DG3) else []

    def require_fingerprints(self) -> list[FingerImage]:
        """The DG3 finger images, or the typed error that says why there are none:
        TerminalAuthError (no credentials, or the chip refused them), AccessDeniedError (the
        certificate lacks the right to read DG3), TLVError (a malformed DG3), CardError (a card
        without DG3). An image that does not decode raises ImageError later, from
        :meth:`~.dg3.FingerImage.pixels`."""
        fingers = self.fingerprints
        if fingers:
            return fingers
        if self.fingerprint_error is not None:
            raise self.fingerprint_error
        raise CardError(f"no fingerprints: {self.fingerprint_status}")

    def holder(self) -> dict[str, Any]:
        """Holder data as the card states it (MRZ, DG11, DG13), for display."""
        out: dict[str, Any] = {}
        dg1 = self.decoded.get("DG1")
        if dg1 is not None:
            out["mrz"] = dg1.mrz.to_dict()
        for name in ("DG11", "DG12", "DG13"):
            d = self.decoded.get(name)
            if d is not None:
                out[name.lower()] = d.fields
        dg2 = self.decoded.get("DG2")
        if dg2 is not None:
            out["faces"] = [{"format": f.extension, "width": f.width, "height": f.height, "bytes": len(f.image)}
                            for f in dg2.faces]
        return out

    def summary(self) -> dict[str, Any]:
        checks: dict[str, Any] = {"access_control": self.access,
                                  "passive_authentication": self.passive.to_dict() if self.passive else None,
                                  "active_authentication": self.active.to_dict() if self.active else "not offered",
                                  "chip_authentication": self.chip_auth,
                                  "terminal_authentication": self.terminal_auth}
        if self.cccd is not None:
            checks["vn_id"] = self.cccd
        fingers = {"status": self.fingerprint_status, "fingers": [f.to_dict() for f in self.fingerprints]}
        return {"holder": self.holder(), "checks": checks, "fingerprints": fingers,
                "files": {k: len(v) for k, v in self.files.items()}, "skipped": dict(self.skipped),
                "apdus": self.apdu_count, "seconds": round(self.seconds, 3),
                "timings": {k: round(v, 4) for k, v in self.timings.items()}}


def _sod_unreadable(exc: CardError) -> str:
    sw = getattr(exc, "sw", None)
    if sw == 0x6A82:
        return "absent on the chip (SW 6A82)"
    if isinstance(exc, TLVError) and "empty" in str(exc):
        return "empty on the chip"
    return f"unreadable: {exc}"


def _no_passive(reason: str, data_groups: dict[int, bytes]) -> PassiveAuthResult:
    """Passive authentication that could not run: failed, every data group read unverified."""
    return PassiveAuthResult(data_groups={n: "not covered" for n in sorted(data_groups)},
                             problems=[f"{reason}: no data group can be verified"])


def _choose_pace(infos: SecurityInfos) -> tuple[Any, str | None]:
    reasons = []
    for info in infos.pace:
        try:
            check_supported(info)
            return info, None
        except CardError as exc:
            reasons.append(str(exc))
    return None, "; ".join(reasons) or "no PACEInfo"


def _eac(channel: ApduChannel, out: DocumentRead, terminal: Terminal | None, mrz_info: str | None) -> str | None:
    """Run terminal authentication once for this read; None when DG3/DG4 may be read now, else
    the reason they are not."""
    if terminal is None:
        return "needs terminal authentication (EAC), not performed"
    if out.terminal_auth == "passed":
        return None
    if out.terminal_auth.startswith("FAILED"):
        return f"terminal authentication {out.terminal_auth.lower()}"
    sm = channel.sm
    if out.chip_auth != "passed" or sm is None or sm.ca_terminal_key is None:
        out.terminal_auth = "FAILED: terminal authentication needs chip authentication first"
        return "terminal authentication needs chip authentication, which this read did not run"
    if sm.pace_chip_key is not None:
        id_picc = comp(sm.pace_chip_key)
    elif mrz_info is not None:
        id_picc = id_picc_bac(mrz_info)
    else:
        out.terminal_auth = "FAILED: no chip identifier (neither PACE nor the MRZ)"
        return "terminal authentication: no chip identifier"
    t = time.monotonic()
    try:
        terminal_authentication(channel, terminal, id_picc=id_picc, ca_terminal_key=sm.ca_terminal_key)
    except TerminalAuthError as exc:
        out.terminal_auth = f"FAILED: {exc}"
        out.fingerprint_error = exc
        out.timings["terminal_auth"] = time.monotonic() - t
        return f"terminal authentication failed: {exc}"
    out.timings["terminal_auth"] = time.monotonic() - t
    out.terminal_auth = "passed"
    return None


def read_document(transport: Transport, *, can: str | None = None, mrz: str | None = None,
                  trust: TrustStore | None = None, data_groups: list[int] | None = None,
                  active_auth: bool = True, chip_auth: bool = True, max_read: int | None = None,
                  extended: bool | None = None, progress: Progress | None = None,
                  terminal: Terminal | None = None) -> DocumentRead:
    """Read and check a document on ``transport``. ``can`` (digits) or ``mrz`` (full MRZ text or
    ``DOCNO/YYMMDD/YYMMDD``) is required. See the module docstring for what raises.

    ``terminal``: inspection-system credentials (:class:`~biostation.card.ta.Terminal`: CV
    certificate chain and IS key) to read DG3/DG4 after terminal authentication. The outcome is
    in ``terminal_auth`` ("passed", or "FAILED: <reason>") and ``fingerprint_status``; the
    fingers in :attr:`DocumentRead.fingerprints`.

    ``extended``: None (default) uses extended-length reads when the card announces them (ATR
    card capabilities, EF.ATR/INFO), with ``max_read`` from its limits (at most READ_CAP);
    False forces short APDUs (a reader that cannot carry extended ones); True forces them."""
    if not can and not mrz:
        raise AccessDeniedError("a CAN or the MRZ data is needed to open the chip")
    t0 = time.monotonic()
    channel = ApduChannel(transport, extended=bool(extended))
    files = CardFiles(channel, max_read)
    if extended is None:
        atr_info = None
        try:
            atr_info = files.read("EF.ATR/INFO")
        except CardRemovedError:
            raise  # the card left: not an absent optional file
        except CardError:
            pass  # optional file
        ext, max_resp = card_limits(getattr(transport, "atr", None), atr_info)
        channel.extended = ext
        if max_read is None and ext:
            files.max_read = sm_read_size(max_resp)
    elif extended and max_read is None:
        files.max_read = sm_read_size(65536)
    out = DocumentRead()
    mrz_info = key_from_text(mrz) if mrz else None

    def lap(name: str, since: float) -> float:
        now = time.monotonic()
        out.timings[name] = now - since
        return now

    # 1. access control --------------------------------------------------------------------------
    t = time.monotonic()
    pace_info, why_not = None, "EF.CardAccess absent"
    try:
        raw = files.read("EF.CardAccess")
        out.files["EF.CardAccess"] = raw
        out.card_access = parse_security_infos(raw, "EF.CardAccess")
        pace_info, why_not = _choose_pace(out.card_access)
    except ApduError:
        pass  # no EF.CardAccess: a BAC-only chip
    if pace_info is not None:
        password = Password.can(can) if can else Password.mrz(mrz_info)  # type: ignore[arg-type]
        perform_pace(channel, password, pace_info)
        out.access = f"PACE {pace_info.describe()} ({'CAN' if can else 'MRZ'})"
        files.select_application()
    else:
        if mrz_info is None:
            raise AccessDeniedError(f"the chip offers no usable PACE ({why_not}); BAC needs the MRZ, not a CAN")
        files.select_application()
        perform_bac(channel, mrz_info)
        out.access = "BAC" + (f" (PACE not used: {why_not})" if out.card_access else "")
    t = lap("access_control", t)

    # 2. files -----------------------------------------------------------------------------------
    out.files["EF.COM"] = files.read("EF.COM", progress=progress)
    com = lds.decode_com(out.files["EF.COM"])
    out.decoded["EF.COM"] = com
    wanted = [n for n in (data_groups or com.data_groups)]
    if 14 in wanted:
        out.files["DG14"] = files.read("DG14", progress=progress)
        out.decoded["DG14"] = lds.decode_dg14(out.files["DG14"])
        if chip_auth and out.decoded["DG14"].security_infos.chip_auth:
            tc = time.monotonic()
            try:
                chip_authentication(channel, out.decoded["DG14"])
                out.chip_auth = "passed"
                out.timings["chip_auth"] = time.monotonic() - tc
            except VerificationError as exc:
                out.chip_auth = f"FAILED: {exc}"
                raise
    try:
        out.files["EF.SOD"] = files.read("EF.SOD", progress=progress)
    except SecureMessagingError as exc:
        if out.chip_auth != "passed":
            raise
        # the first answer under the CA keys does not verify: the chip does not hold the DG14 key
        out.chip_auth = "FAILED: the chip could not continue with the chip-authentication keys"
        raise VerificationError(f"chip authentication failed: not the chip DG14 describes ({exc})") from None
    except (ApduError, AccessDeniedError, TLVError) as exc:
        # no (usable) EF.SOD: read the rest anyway, passive authentication fails with the reason
        out.skipped["EF.SOD"] = _sod_unreadable(exc)
    if terminal is not None and 3 in wanted:
        out.fingerprint_status = "reading"
    elif terminal is not None and 3 not in com.data_groups:
        out.fingerprint_status = "absent: the card carries no DG3"
    for n in wanted:
        name = f"DG{n}"
        if name in out.files:
            continue
        if n in (3, 4):  # EAC-protected biometrics: need terminal authentication
            why = _eac(channel, out, terminal, mrz_info)
            if why is not None:
                out.skipped[name] = why
                if n == 3:
                    out.fingerprint_status = f"not read: {why}"
                    if out.fingerprint_error is None:
                        out.fingerprint_error = TerminalAuthError(why)
                continue
        ts = time.monotonic()
        try:
            out.files[name] = files.read(name, progress=progress)
        except AccessDeniedError as exc:
            out.skipped[name] = f"access denied: {exc}"
            if n == 3:
                out.fingerprint_status = f"not read: access denied ({exc})"
                out.fingerprint_error = exc
            continue
        except ApduError as exc:
            if exc.sw != 0x6A82:
                raise
            out.skipped[name] = "listed in EF.COM, absent on the chip (SW 6A82)"
            continue
        out.timings[f"read_{name}"] = time.monotonic() - ts
        if n == 4:  # iris (ISO/IEC 19794-6): kept as read, hashed by passive authentication
            continue
        if n == 3:
            try:
                out.decoded[name] = decode_dg3(out.files[name], name)
                out.fingerprint_status = "read"
            except TLVError as exc:  # kept readable: the rest of the document is still checked
                out.skipped[name] = f"malformed: {exc}"
                out.fingerprint_status = f"malformed: {exc}"
                out.fingerprint_error = exc
            continue
        out.decoded[name] = lds.decode(n, out.files[name])
    t = lap("read_files", t)

    # 3. checks ----------------------------------------------------------------------------------
    if active_auth and "DG15" in out.decoded:
        out.active = active_authentication(channel, out.decoded["DG15"], out.decoded.get("DG14"))
    if "EF.SOD" in out.files:
        try:
            out.passive = passive_authentication(out.files["EF.SOD"], out.data_groups, trust)
        except TLVError as exc:
            out.passive = _no_passive(f"EF.SOD is malformed: {exc}", out.data_groups)
    else:
        out.passive = _no_passive(f"EF.SOD {out.skipped.get('EF.SOD', 'not read')}", out.data_groups)
    dg1 = out.decoded.get("DG1")
    dg13 = out.decoded.get("DG13")
    if dg13 is not None or (dg1 is not None and dg1.mrz.kind == "TD1" and dg1.mrz.issuing_state == "VNM"):
        out.cccd = cross_check(None, dg13.fields if dg13 is not None else None, dg1.mrz if dg1 else None)
    lap("checks", t)
    out.apdu_count = channel.apdu_count
    out.seconds = time.monotonic() - t0
    log.info("card read: %s, %d files, %d APDUs, %.2f s", out.access.split(" (")[0], len(out.files),
             out.apdu_count, out.seconds)
    return out
