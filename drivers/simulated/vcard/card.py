"""The virtual eMRTD chip: an ICAO 9303 card whose file system and secrets are data.

:class:`CardData` is everything the chip holds: files (FID -> :class:`CardFile` with its SFI and
access condition), the PACE/BAC secrets, the AA and CA private keys, retry counters and a free
``state`` dict plus a ``lifecycle`` string that the personalization module
(``drivers/simulated/vcard/perso.py``) drives. It saves to and loads from a folder, so a card
keeps its state across restarts.

:class:`VirtualCard` runs APDUs against it. Dispatch is a table ``handlers: {INS: fn(cmd) ->
Response}``; :meth:`VirtualCard.register` adds or replaces an instruction (personalization adds
CREATE FILE / UPDATE BINARY / PUT DATA this way) and ``before_dispatch`` hooks may answer first.

What it enforces and implements: access conditions (``6982`` before authentication; EAC files
``6982`` until terminal authentication granted the right, READ_DG3 for DG3, READ_DG4 for DG4),
terminal authentication v1 (:class:`biostation.card.ta.TerminalAuthChip`, with the CVCA trust
points and current date kept in ``state["eac"]``), BAC, PACE-GM (every suite
:mod:`biostation.card.pace` supports), secure
messaging on every command once a session exists (a plain command ends the session, a bad MAC
answers ``6988`` and ends it), chip authentication, active authentication, READ BINARY by SFI,
by offset and odd (DO54), chaining of plain commands, extended length.

Misbehaviour on demand (:class:`Faults`): a slow card, a card pulled out mid-read, a corrupted
response MAC, and a CAN retry counter that blocks after wrong tries.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from biostation.card import bac as bac_mod
from biostation.card import crypto, tlv
from biostation.card.apdu import INS, Command, Response
from biostation.card.auth import aa_sign, ca_chip_agree
from biostation.card.pace import PASSWORD_CAN, PASSWORD_MRZ, PaceChip, Password
from biostation.card.reader import ICAO_AID
from biostation.card.secinfo import PaceInfo, decode_oid, parse_security_infos
from biostation.card.sm import SecureMessaging
from biostation.card.ta import TerminalAuthChip, id_picc_bac
from biostation.card.ta import comp as comp_key
from biostation.errors import (
    AccessDeniedError,
    CardError,
    CardRemovedError,
    SecureMessagingError,
    TLVError,
)

__all__ = [
    "ACCESS_ALWAYS",
    "ACCESS_EAC",
    "ACCESS_NEVER",
    "ACCESS_SM",
    "ICAO_AID",
    "CardData",
    "CardFile",
    "Faults",
    "VirtualCard",
    "atr_for",
]

ACCESS_ALWAYS, ACCESS_SM, ACCESS_EAC, ACCESS_NEVER = "always", "sm", "eac", "never"

SW = {"ok": 0x9000, "eof": 0x6282, "wrong_length": 0x6700, "security": 0x6982, "blocked": 0x6983,
      "sm_missing": 0x6987, "sm_wrong": 0x6988, "not_found": 0x6A82, "bad_data": 0x6A80, "p1p2": 0x6A86,
      "no_ref": 0x6A88, "offset": 0x6B00, "ins": 0x6D00, "cla": 0x6E00, "conditions": 0x6985, "auth": 0x6300}


def atr_for(historical: bytes) -> bytes:
    """A PC/SC contactless ATR (3B 8n 80 01 <historical bytes> TCK) with a correct check byte."""
    body = bytes([0x80 | len(historical), 0x80, 0x01]) + historical
    tck = 0
    for b in body:
        tck ^= b
    return b"\x3b" + body + bytes([tck])


@dataclass
class CardFile:
    fid: int
    data: bytes
    sfi: int | None = None
    read: str = ACCESS_SM
    in_mf: bool = False  # EF.CardAccess and EF.ATR/INFO live in the master file

    def __repr__(self) -> str:
        return f"CardFile({self.fid:04X}, {len(self.data)} bytes, read={self.read})"


@dataclass
class CardData:
    """The chip's content. Keys are ``cryptography`` private key objects (never logged)."""

    files: dict[int, CardFile] = field(default_factory=dict)
    aid: bytes = ICAO_AID
    can: str | None = None
    mrz_information: str | None = None
    aa_key: Any = field(default=None, repr=False)
    aa_hash: str = "sha256"
    ca_key: Any = field(default=None, repr=False)
    counters: dict[str, int] = field(default_factory=dict)  # e.g. {"can": 3}: tries left
    lifecycle: str = "personalized"
    state: dict[str, Any] = field(default_factory=dict)
    max_le: int = 65536  # largest response the chip builds (extended length)
    # category 80, compact TLV 73 = card capabilities; third byte C0: chaining + extended Lc/Le
    historical_bytes: bytes = b"\x80\x73\x80\x21\xc0"

    def add(self, fid: int, data: bytes, sfi: int | None = None, read: str = ACCESS_SM, in_mf: bool = False) -> None:
        self.files[fid] = CardFile(fid, bytes(data), sfi, read, in_mf)

    def pace_infos(self) -> list[PaceInfo]:
        f = self.files.get(0x011C)
        if f is None:
            return []
        return parse_security_infos(f.data, "EF.CardAccess").pace

    # --- persistence --------------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """Write the card to ``folder`` (files as ``<FID>.bin``, keys as PEM 0600, the rest JSON)."""
        folder.mkdir(parents=True, exist_ok=True)
        meta = {"aid": self.aid.hex(), "can": self.can, "mrz_information": self.mrz_information,
                "aa_hash": self.aa_hash, "counters": self.counters, "lifecycle": self.lifecycle,
                "state": self.state, "max_le": self.max_le, "historical_bytes": self.historical_bytes.hex(),
                "files": [{"fid": f.fid, "sfi": f.sfi, "read": f.read, "in_mf": f.in_mf}
                          for f in self.files.values()]}
        for f in self.files.values():
            (folder / f"{f.fid:04X}.bin").write_bytes(f.data)
        for name, key in (("aa.key", self.aa_key), ("ca.key", self.ca_key)):
            p = folder / name
            if key is None:
                p.unlink(missing_ok=True)
                continue
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        tmp = folder / "card.json.tmp"
        tmp.write_text(json.dumps(meta, indent=1))
        os.replace(tmp, folder / "card.json")  # atomic: a torn save never leaves half a card

    @classmethod
    def load(cls, folder: Path) -> CardData:
        meta = json.loads((folder / "card.json").read_text())
        d = cls(aid=bytes.fromhex(meta["aid"]), can=meta["can"], mrz_information=meta["mrz_information"],
                aa_hash=meta["aa_hash"], counters=meta["counters"], lifecycle=meta["lifecycle"],
                state=meta["state"], max_le=meta["max_le"], historical_bytes=bytes.fromhex(meta["historical_bytes"]))
        for f in meta["files"]:
            d.add(f["fid"], (folder / f"{f['fid']:04X}.bin").read_bytes(), f["sfi"], f["read"], f["in_mf"])
        for name in ("aa", "ca"):
            p = folder / f"{name}.key"
            if p.exists():
                setattr(d, f"{name}_key", serialization.load_pem_private_key(p.read_bytes(), None))
        return d


@dataclass
class Faults:
    """Misbehaviour on demand. All off by default."""

    delay_s: float = 0.0  # added to every APDU: a slow card / weak field
    pull_after_apdus: int | None = None  # leave the field after this many APDUs
    pull_in_file: int | None = None  # leave the field while this FID is being read ...
    pull_after_bytes: int = 0  # ... once this many of its bytes were sent
    bad_mac_at: int | None = None  # corrupt the MAC of the n-th SM response (1-based)


class VirtualCard:
    """Runs APDUs on :class:`CardData`. Implements the ``SimulatedCard`` protocol (``atr``,
    ``reset()``, ``process(apdu)``) of ``drivers/simulated/card_reader.py`` and serves vpcd.

    Thread-safety: one APDU at a time (readers serialize anyway).
    """

    def __init__(self, data: CardData, faults: Faults | None = None, state_dir: Path | None = None):
        self.data = data
        self.faults = faults or Faults()
        self.state_dir = state_dir
        self.atr = atr_for(data.historical_bytes)
        self.present = True
        self.apdu_count = 0
        self.sm_responses = 0
        self.handlers: dict[int, Callable[[Command], Response]] = {
            INS.SELECT: self._select, INS.READ_BINARY: self._read_binary, INS.READ_BINARY_ODD: self._read_binary_odd,
            INS.GET_CHALLENGE: self._get_challenge, INS.EXTERNAL_AUTHENTICATE: self._external_authenticate,
            INS.MSE: self._mse, INS.GENERAL_AUTHENTICATE: self._general_authenticate,
            INS.INTERNAL_AUTHENTICATE: self._internal_authenticate, INS.PSO: self._pso,
        }
        #: hooks called before dispatch; one that returns a Response answers the command
        self.before_dispatch: list[Callable[[VirtualCard, Command], Response | None]] = []
        self.reset()

    def register(self, ins: int, handler: Callable[[Command], Response]) -> None:
        self.handlers[ins] = handler

    def __repr__(self) -> str:
        return f"<VirtualCard {self.data.lifecycle} {len(self.data.files)} files>"

    # --- session state ------------------------------------------------------------------------------
    def reset(self) -> None:
        """Power cycle: every session and selection is lost (the data stay)."""
        self.sm: SecureMessaging | None = None
        self.access: str | None = None  # "bac", "pace", then "+ca"
        self.app_selected = False
        self.current: CardFile | None = None
        self.challenge: bytes | None = None
        self.pace: PaceChip | None = None
        self.pace_password_kind = 0
        self.ca_pending: tuple[str, int] | None = None
        self._next_sm: SecureMessaging | None = None
        self._chain = b""
        self.ta: TerminalAuthChip | None = None  # terminal authentication of this session
        self.ta_rights = 0
        self._pace_chip_key: bytes | None = None
        self._ca_terminal_key: bytes | None = None

    def save(self) -> None:
        if self.state_dir is not None:
            self.data.save(self.state_dir)

    def pull(self) -> None:
        """Take the card out of the field."""
        self.present = False
        self.reset()

    # --- the APDU loop --------------------------------------------------------------------------------
    def process(self, apdu: bytes) -> bytes:
        if not self.present:
            raise CardRemovedError("virtual card is out of the field")
        f = self.faults
        self.apdu_count += 1
        if f.delay_s:
            time.sleep(f.delay_s)
        if f.pull_after_apdus is not None and self.apdu_count > f.pull_after_apdus:
            self.pull()
            raise CardRemovedError("virtual card pulled out of the field")
        try:
            cmd = Command.parse(apdu)
        except ValueError:
            return Response(b"", SW["wrong_length"]).to_bytes()
        if cmd.cla & 0x0C == 0x0C:
            return self._process_sm(cmd).to_bytes()
        if self.sm is not None:  # a plain command ends secure messaging (Doc 9303-11 §9.8.6)
            self.sm = None
            self.access = None
        if cmd.cla & 0x10 and cmd.ins != INS.GENERAL_AUTHENTICATE:  # chaining (plain): collect;
            # PACE uses the chaining bit on GENERAL AUTHENTICATE to mean "more steps follow"
            self._chain += cmd.data
            return Response(b"", SW["ok"]).to_bytes()
        if self._chain:
            cmd = Command(cmd.cla, cmd.ins, cmd.p1, cmd.p2, self._chain + cmd.data, cmd.le, cmd.extended)
            self._chain = b""
        return self._dispatch(cmd).to_bytes()

    def _process_sm(self, cmd: Command) -> Response:
        if self.sm is None:
            return Response(b"", SW["sm_missing"])
        try:
            inner = self.sm.unwrap_command(Command(cmd.cla & ~0x10 & 0xFF, cmd.ins, cmd.p1, cmd.p2, cmd.data, cmd.le,
                                                   cmd.extended))
        except SecureMessagingError:
            self.sm = None
            self.access = None
            return Response(b"", SW["sm_wrong"])
        resp = self._dispatch(inner)
        out = self.sm.wrap_response(resp, odd_ins=bool(inner.ins & 1) and inner.ins != INS.GENERAL_AUTHENTICATE)
        self.sm_responses += 1
        if self.faults.bad_mac_at is not None and self.sm_responses == self.faults.bad_mac_at:
            out = Response(out.data[:-1] + bytes([out.data[-1] ^ 0x01]), out.sw)
        if self._next_sm is not None:  # chip authentication: new keys after this answer
            self.sm, self._next_sm = self._next_sm, None
        return out

    def _dispatch(self, cmd: Command) -> Response:
        for hook in self.before_dispatch:
            r = hook(self, cmd)
            if r is not None:
                return r
        if cmd.cla & 0x80:
            return Response(b"", SW["cla"])
        handler = self.handlers.get(cmd.ins)
        if handler is None:
            return Response(b"", SW["ins"])
        try:
            return handler(cmd)
        except TLVError:
            return Response(b"", SW["bad_data"])

    # --- files ------------------------------------------------------------------------------------------
    def _find(self, fid: int) -> CardFile | None:
        f = self.data.files.get(fid)
        if f is None:
            return None
        if f.in_mf or self.app_selected:
            return f
        return None

    def _can_read(self, f: CardFile) -> bool:
        if f.read == ACCESS_ALWAYS:
            return True
        if f.read == ACCESS_SM:
            return self.sm is not None and self.access is not None
        if f.read == ACCESS_EAC:
            from biostation.card.cvc import READ_DG3, READ_DG4

            need = {0x0103: READ_DG3, 0x0104: READ_DG4}.get(f.fid, 0xFF)
            return (self.sm is not None and self.access is not None and "+ta" in self.access
                    and self.ta_rights & need == need)
        return False

    def _select(self, cmd: Command) -> Response:
        if cmd.p1 == 0x04:
            if cmd.data == self.data.aid:
                self.app_selected = True
                self.current = None
                return Response(b"", SW["ok"])
            return Response(b"", SW["not_found"])
        if cmd.p1 in (0x00, 0x02) and len(cmd.data) == 2:
            fid = int.from_bytes(cmd.data, "big")
            if fid == 0x3F00:
                self.app_selected = False
                self.current = None
                return Response(b"", SW["ok"])
            f = self._find(fid)
            if f is None:
                return Response(b"", SW["not_found"])
            self.current = f
            return Response(b"", SW["ok"])
        return Response(b"", SW["p1p2"])

    def _serve(self, f: CardFile, offset: int, le: int | None) -> Response:
        if not self._can_read(f):
            return Response(b"", SW["security"])
        if offset > len(f.data):
            return Response(b"", SW["offset"])
        n = min(le or 256, self.data.max_le)
        chunk = f.data[offset:offset + n]
        flt = self.faults
        if flt.pull_in_file == f.fid and offset + len(chunk) >= flt.pull_after_bytes:
            self.pull()
            raise CardRemovedError("virtual card pulled out of the field mid-read")
        return Response(chunk, SW["ok"] if len(chunk) == n else SW["eof"])

    def _read_binary(self, cmd: Command) -> Response:
        if cmd.p1 & 0x80:
            sfi = cmd.p1 & 0x1F
            # an SFI names a file of the current DF (the application's once it is selected);
            # the master file's EF.CardAccess stays reachable as real chips allow
            same = [x for x in self.data.files.values() if x.sfi == sfi]
            scope = [x for x in same if not x.in_mf] if self.app_selected else []
            scope = scope or [x for x in same if x.in_mf]
            f = scope[0] if scope else None
            if f is None:
                return Response(b"", SW["not_found"])
            self.current = f
            offset = cmd.p2
        else:
            if self.current is None:
                return Response(b"", SW["conditions"])
            f = self.current
            offset = (cmd.p1 << 8) | cmd.p2
        return self._serve(f, offset, cmd.le)

    def _read_binary_odd(self, cmd: Command) -> Response:
        if self.current is None:
            return Response(b"", SW["conditions"])
        do = tlv.decode_one(cmd.data, "READ BINARY DO54", expect=0x54)
        r = self._serve(self.current, int.from_bytes(do.value, "big"), None if cmd.le is None else cmd.le - 4)
        return Response(tlv.encode(0x53, r.data), r.sw) if r.data or r.sw in (0x9000, 0x6282) else r

    # --- BAC ----------------------------------------------------------------------------------------------
    def _get_challenge(self, cmd: Command) -> Response:
        if self.ta is not None:
            return Response(self.ta.get_challenge(cmd.le or 8), SW["ok"])
        self.challenge = secrets.token_bytes(cmd.le or 8)
        return Response(self.challenge, SW["ok"])

    def _external_authenticate(self, cmd: Command) -> Response:
        if self.ta is not None:
            sw = self.ta.external_authenticate(cmd.data)
            if sw == SW["ok"]:
                self.ta_rights = self.ta.rights or 0
                self.access = (self.access or "") + "+ta"
            return Response(b"", sw)
        info = self.data.mrz_information
        if info is None or self.challenge is None or len(cmd.data) != 40 or len(self.challenge) != 8:
            return Response(b"", SW["conditions"])
        k_enc, k_mac = bac_mod.bac_keys(info)
        e_ifd, m_ifd = cmd.data[:32], cmd.data[32:]
        if not crypto.constant_time_eq(crypto.retail_mac(k_mac, e_ifd), m_ifd):
            self.challenge = None
            return Response(b"", SW["auth"])
        s = crypto.des3_cbc_decrypt(k_enc, e_ifd)
        rnd_ifd, rnd_ic, k_ifd = s[:8], s[8:16], s[16:32]
        if rnd_ic != self.challenge:
            self.challenge = None
            return Response(b"", SW["auth"])
        k_ic = secrets.token_bytes(16)
        e_ic = crypto.des3_cbc_encrypt(k_enc, rnd_ic + rnd_ifd + k_ic)
        self.challenge = None
        self.sm = bac_mod.session_from_bac(k_ifd, k_ic, rnd_ic, rnd_ifd)
        self.access = "bac"
        self._pace_chip_key, self._ca_terminal_key, self.ta = None, None, None
        return Response(e_ic + crypto.retail_mac(k_mac, e_ic), SW["ok"])

    # --- PACE and CA ----------------------------------------------------------------------------------------
    def _mse(self, cmd: Command) -> Response:
        try:
            dos = tlv.decode(cmd.data, "MSE")
        except TLVError:
            return Response(b"", SW["bad_data"])
        d80 = tlv.find(dos, 0x80)
        if cmd.p1 == 0xC1 and cmd.p2 == 0xA4:  # PACE: Set AT for mutual authentication
            if d80 is None:
                return Response(b"", SW["bad_data"])
            oid = decode_oid(d80.value)
            info = next((i for i in self.data.pace_infos() if i.oid == oid), None)
            d83 = tlv.find(dos, 0x83)
            if info is None or d83 is None:
                return Response(b"", SW["bad_data"])
            kind = d83.value[0] if d83.value else 0
            if kind == PASSWORD_CAN:
                if self.data.can is None:
                    return Response(b"", SW["no_ref"])
                if self.data.counters.get("can", 1) <= 0:
                    return Response(b"", SW["blocked"])
                pw = Password.can(self.data.can)
            elif kind == PASSWORD_MRZ and self.data.mrz_information:
                pw = Password.mrz(self.data.mrz_information)
            else:
                return Response(b"", SW["no_ref"])
            self.sm = None
            self.access = None
            self.pace = PaceChip(info, pw)
            self.pace_password_kind = kind
            return Response(b"", SW["ok"])
        if cmd.p1 == 0x81 and cmd.p2 in (0xB6, 0xA4):  # TA: Set DST (certificate), Set AT
            if self.sm is None or "+ca" not in (self.access or ""):
                return Response(b"", SW["conditions"])
            if cmd.p2 == 0xB6 and self.ta is None:
                self.ta = self._ta_chip()
            if self.ta is None:
                return Response(b"", SW["conditions"])
            return Response(b"", self.ta.set_dst(cmd.data) if cmd.p2 == 0xB6 else self.ta.set_at(cmd.data))
        if cmd.p1 == 0x41 and cmd.p2 == 0xA4 and self.sm is not None:  # CA: Set AT
            if d80 is None or self.data.ca_key is None:
                return Response(b"", SW["no_ref"])
            from biostation.card.secinfo import CIPHERS
            oid = decode_oid(d80.value)
            cipher, klen = CIPHERS.get(int(oid.split(".")[-1]), ("AES", 16))
            self.ca_pending = (cipher, klen)
            return Response(b"", SW["ok"])
        if cmd.p1 == 0x41 and cmd.p2 == 0xA6 and self.sm is not None:  # CA v1: Set KAT with the key
            d91 = tlv.find(dos, 0x91)
            if d91 is None or self.data.ca_key is None:
                return Response(b"", SW["no_ref"])
            try:
                self._next_sm = ca_chip_agree(self.data.ca_key, d91.value, "3DES", 16)
            except CardError:
                return Response(b"", SW["bad_data"])
            self._ca_terminal_key, self.ta = d91.value, None
            self.access = (self.access or "") + "+ca"
            return Response(b"", SW["ok"])
        return Response(b"", SW["p1p2"])

    def _general_authenticate(self, cmd: Command) -> Response:
        try:
            dyn = tlv.decode_one(cmd.data, "GA", expect=0x7C)
            kids = dyn.children
        except TLVError:
            return Response(b"", SW["bad_data"])
        if self.ca_pending is not None and kids and kids[0].tag == 0x80 and self.sm is not None:
            cipher, klen = self.ca_pending
            self.ca_pending = None
            try:
                self._next_sm = ca_chip_agree(self.data.ca_key, kids[0].value, cipher, klen)
            except CardError:
                return Response(b"", SW["bad_data"])
            self._ca_terminal_key, self.ta = kids[0].value, None
            self.access = (self.access or "") + "+ca"
            return Response(tlv.encode(0x7C, b""), SW["ok"])
        p = self.pace
        if p is None:
            return Response(b"", SW["conditions"])
        step = kids[0].tag if kids else None
        try:
            if step is None:
                return Response(tlv.encode(0x7C, tlv.encode(0x80, p.encrypted_nonce())), SW["ok"])
            if step == 0x81:
                return Response(tlv.encode(0x7C, tlv.encode(0x82, p.map_nonce(kids[0].value))), SW["ok"])
            if step == 0x83:
                return Response(tlv.encode(0x7C, tlv.encode(0x84, p.key_agreement(kids[0].value))), SW["ok"])
            if step != 0x85:
                return Response(b"", SW["bad_data"])
            t_ic = p.authenticate(kids[0].value)
        except AccessDeniedError:
            self.pace = None
            if step == 0x85 and self.pace_password_kind == PASSWORD_CAN and "can" in self.data.counters:
                left = max(0, self.data.counters["can"] - 1)
                self.data.counters["can"] = left
                self.save()
                return Response(b"", (0x63C0 | left) if left else SW["blocked"])
            return Response(b"", SW["auth"])
        except CardError:
            self.pace = None
            return Response(b"", SW["bad_data"])
        counters = self.data.counters
        if self.pace_password_kind == PASSWORD_CAN and "can" in counters and counters["can"] != counters.get("can_max", 3):
            counters["can"] = counters.get("can_max", 3)  # a right CAN resets the counter
            self.save()
        self.sm = p.sm
        self.access = "pace"
        self._pace_chip_key, self._ca_terminal_key, self.ta = p.pk_eph, None, None
        self.pace = None
        return Response(tlv.encode(0x7C, tlv.encode(0x86, t_ic)), SW["ok"])

    # --- TA -------------------------------------------------------------------------------------------------
    def _ta_chip(self) -> TerminalAuthChip | None:
        """A TA run for this session, over the trust points and date of ``state["eac"]``."""
        import datetime as dt

        from biostation.card.cvc import decode_cvc

        eac = self.data.state.get("eac")
        if not eac:
            return None
        tps = [decode_cvc(bytes.fromhex(h)) for h in eac["trust_points"]]
        if self._pace_chip_key is not None:
            id_picc = bytes(comp_key(self._pace_chip_key))
        elif self.data.mrz_information:
            id_picc = id_picc_bac(self.data.mrz_information)
        else:
            id_picc = None
        return TerminalAuthChip(tps, dt.date.fromisoformat(eac["current_date"]), id_picc=id_picc,
                                ca_terminal_key=self._ca_terminal_key)

    def _pso(self, cmd: Command) -> Response:
        if (cmd.p1, cmd.p2) != (0x00, 0xBE):
            return Response(b"", SW["p1p2"])
        if self.ta is None:
            return Response(b"", SW["conditions"])
        sw = self.ta.verify_certificate(cmd.data)
        if self.ta.changed:  # a newer date or a CVCA link certificate: kept across sessions
            self.data.state["eac"] = {"trust_points": [c.encode().hex() for c in self.ta.trust_points],
                                      "current_date": self.ta.current_date.isoformat()}
            self.ta.changed = False
            self.save()
        return Response(b"", sw)

    # --- AA ---------------------------------------------------------------------------------------------------
    def _internal_authenticate(self, cmd: Command) -> Response:
        if self.sm is None or self.access is None:
            return Response(b"", SW["security"])
        if self.data.aa_key is None:
            return Response(b"", SW["ins"])
        if len(cmd.data) != 8:
            return Response(b"", SW["wrong_length"])
        return Response(aa_sign(self.data.aa_key, cmd.data, self.data.aa_hash), SW["ok"])
