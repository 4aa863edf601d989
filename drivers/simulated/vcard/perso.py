"""The personalization lifecycle of the virtual eMRTD card.

A :class:`PersoCard` is a blank chip with an eMRTD applet, as it comes from the card
manufacturer. It takes the personalization commands of :mod:`biostation.card.perso.writer`
(SELECT applet, CREATE FILE, SELECT EF, UPDATE BINARY ``D6``/``D7``, PUT DATA for the MRZ key,
CAN, AA key, CA key and EAC trust point, and the lock ``PUT DATA DE AD``) and moves through::

    BLANK --first write--> PERSONALIZED --lock--> LOCKED

It *is* the virtual card of :mod:`biostation_drivers.simulated.vcard.card` (a ``VirtualCard``
over ``CardData`` with lifecycle ``blank``): the personalization instructions go into its
handler table and a ``before_dispatch`` hook enforces the lifecycle. Once LOCKED every write
answers ``6985`` (conditions of use not satisfied) and the card serves the reading protocol
(PACE, BAC, secure messaging, READ BINARY, INTERNAL AUTHENTICATE) from the files and secrets
written. Before the lock, reading commands are refused with ``6985`` too: a half-written chip
never answers like an issued one.

State kept across restarts: with ``state_dir`` every change is saved (``CardData.save``: the
files, then an atomic rename of ``card.json``), so a card survives the test process or the
runner being killed and can be read back and audited afterwards with :meth:`PersoCard.load`.

Timing: ``timing`` gives the delay of a real contact chip, ``latency_s`` per APDU (command
processing and EEPROM writes: 10-20 ms on the chips in service) plus ``byte_s`` per byte each way
(115200 baud after PPS, 10 bits a byte: 87 us). Delays are slept, so encoder threads overlap.

Tearing: with ``tear_at=N`` the card leaves the field while it processes its N-th APDU (counted
from 0 since this object was made). ``tear_mode="before"`` drops the command; ``"after"`` applies
it and loses the answer (the EEPROM write finished, the response did not come back): both are
seen on real lines. From then on the card raises :class:`~biostation.errors.CardRemovedError`.

Fault drills: ``on_apdu(phase)`` is called with ``"before"`` as each APDU arrives and with
``"after"`` once it has taken effect, before its answer leaves; a drill that stops the whole
process there (``kill -9`` at a chosen APDU) leaves the card exactly as a power cut would.

Secrets (MRZ key, CAN, AA key) are in the state file in clear: it is a simulator.
"""

from __future__ import annotations

import os
import secrets as _secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from biostation.card import tlv
from biostation.card.apdu import INS, Command, Response
from biostation.card.lds import FILES
from biostation.card.mrz import bac_seed_info
from biostation.errors import CardRemovedError, TLVError

from .card import ACCESS_ALWAYS, ACCESS_EAC, ACCESS_SM, SW, CardData, CardFile, VirtualCard

__all__ = ["Lifecycle", "PersoCard", "ChipTiming", "CONTACT_CHIP", "NO_DELAY", "SimulatedEncoder"]

_FID_INFO = {f.fid: f for f in FILES.values()}
#: reading commands a chip refuses until it is locked: a half-made chip never acts as an issued one
_READING = (INS.READ_BINARY, INS.READ_BINARY_ODD, INS.GET_CHALLENGE, INS.EXTERNAL_AUTHENTICATE, INS.MSE,
            INS.GENERAL_AUTHENTICATE, INS.INTERNAL_AUTHENTICATE)
_WRITING = (INS.CREATE_FILE, INS.UPDATE_BINARY, INS.UPDATE_BINARY | 1, INS.PUT_DATA)


class Lifecycle(str, Enum):
    BLANK = "blank"
    PERSONALIZED = "personalized"
    LOCKED = "locked"


@dataclass(frozen=True)
class ChipTiming:
    latency_s: float = 0.0
    byte_s: float = 0.0

    def delay(self, n_bytes: int) -> float:
        return self.latency_s + self.byte_s * n_bytes


#: ATR historical bytes whose card capabilities (tag 7) do not announce extended Lc/Le
SHORT_ONLY_HISTORICAL = bytes.fromhex("8073802180")  # tag 7: third byte without bit 0x40

#: a contact chip: 15 ms per APDU, 115200 baud (10 bits a byte)
CONTACT_CHIP = ChipTiming(0.015, 10 / 115200)
NO_DELAY = ChipTiming()


class PersoCard(VirtualCard):
    """A blank virtual eMRTD chip that can be personalized once.

    A :class:`~biostation_drivers.simulated.vcard.card.VirtualCard` whose
    :class:`~biostation_drivers.simulated.vcard.card.CardData` starts empty with lifecycle
    ``blank``; the personalization instructions are registered in its handler table and a
    ``before_dispatch`` hook enforces the lifecycle. ``state_dir``: the card saves itself there
    (``CardData.save``) after every change. Thread-safe (one lock per card).
    """

    def __init__(self, serial: str | None = None, *, state_dir: str | os.PathLike[str] | None = None,
                 timing: ChipTiming = NO_DELAY, tear_at: int | None = None, tear_mode: str = "before",
                 capacity: int = 144 * 1024, data: CardData | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 on_apdu: Callable[[str], None] | None = None):
        if tear_mode not in ("before", "after"):
            raise ValueError("tear_mode: 'before' or 'after'")
        if data is None:
            data = CardData(lifecycle=Lifecycle.BLANK.value, aa_hash="sha256",
                            state={"serial": serial or _secrets.token_hex(4).upper(), "writes": 0})
        super().__init__(data, state_dir=Path(state_dir) if state_dir is not None else None)
        self.timing = timing
        self.tear_at = tear_at
        self.tear_mode = tear_mode
        self.capacity = capacity
        self.apdus = 0
        self.torn = False
        self.on_apdu = on_apdu
        self._sleep = sleep
        self._lock = threading.Lock()
        self.register(INS.CREATE_FILE, self._create)
        self.register(INS.UPDATE_BINARY, self._update)
        self.register(INS.UPDATE_BINARY | 1, self._update)
        self.register(INS.PUT_DATA, self._put_data)
        self.before_dispatch.append(PersoCard._gate)
        self.save()

    @classmethod
    def load(cls, state_dir: str | os.PathLike[str], **kw: Any) -> PersoCard:
        """The card saved in ``state_dir`` (lifecycle, files, secrets), freshly powered."""
        return cls(state_dir=state_dir, data=CardData.load(Path(state_dir)), **kw)

    # --- what tests and audits look at -----------------------------------------------------------------
    @property
    def serial(self) -> str:
        return str(self.data.state["serial"])

    @property
    def lifecycle(self) -> Lifecycle:
        return Lifecycle(self.data.lifecycle)

    def file(self, fid: int) -> bytes | None:
        f = self.data.files.get(fid)
        return None if f is None else f.data

    # --- the simulated-card protocol, with timing and tearing ------------------------------------------
    def process(self, apdu: bytes) -> bytes:
        with self._lock:
            if self.torn:
                raise CardRemovedError("the card left the field")
            index = self.apdus
            self.apdus += 1
            tearing = self.tear_at is not None and index == self.tear_at
            if tearing and self.tear_mode == "before":
                self._tear(len(apdu))
            if self.on_apdu is not None:
                self.on_apdu("before")
            resp = super().process(apdu)
            if self.on_apdu is not None:
                self.on_apdu("after")
            if self.timing != NO_DELAY:
                self._sleep(self.timing.delay(len(apdu) + len(resp)))
            if tearing:
                self._tear(0)
            return resp

    def _tear(self, n: int) -> None:
        self.torn = True
        self.pull()
        if self.timing != NO_DELAY:
            self._sleep(self.timing.delay(n) / 2)
        raise CardRemovedError("the card left the field")

    # --- lifecycle gate (a before_dispatch hook) ----------------------------------------------------------
    def _gate(self, cmd: Command) -> Response | None:
        if cmd.cla & 0x80 and cmd.ins == 0xCA:
            return self._cplc(cmd)
        if self.data.lifecycle == Lifecycle.LOCKED.value:
            if cmd.ins in _WRITING:
                return Response(b"", SW["conditions"])
            return None
        if cmd.ins in _READING:
            return Response(b"", SW["conditions"])
        return None

    def _cplc(self, cmd: Command) -> Response:
        if (cmd.p1, cmd.p2) != (0x9F, 0x7F):
            return Response(b"", SW["no_ref"])
        # fabricator 4790 and the rest made up; the IC serial number at bytes 12..15
        body = bytes.fromhex("4790" "5040" "4791" "6352" "0100" "6001") + bytes.fromhex(self.serial) + bytes(26)
        return Response(tlv.encode(0x9F7F, body), SW["ok"])

    # --- personalization instructions ----------------------------------------------------------------------
    def _create(self, cmd: Command) -> Response:
        if not self.app_selected:
            return Response(b"", SW["conditions"])
        t = tlv.decode_one(cmd.data, "CREATE FILE", expect=0x63)
        if len(t.value) != 4:
            return Response(b"", SW["bad_data"])
        size, fid = int.from_bytes(t.value[:2], "big"), int.from_bytes(t.value[2:], "big")
        if fid in self.data.files:
            return Response(b"", 0x6A89)  # file already exists
        if sum(len(f.data) for f in self.data.files.values()) + size > self.capacity:
            return Response(b"", 0x6A84)  # not enough memory
        info = _FID_INFO.get(fid)
        in_mf = fid in (0x011C, 0x2F01)  # EF.CardAccess, EF.ATR/INFO: in the master file, readable by all
        read = ACCESS_ALWAYS if in_mf else ACCESS_EAC if fid in (0x0103, 0x0104) else ACCESS_SM
        self.data.files[fid] = CardFile(fid, bytes(size), info.sfi if info else None, read, in_mf)
        self._changed()
        return Response(b"", SW["ok"])

    def _update(self, cmd: Command) -> Response:
        f = self.current
        if f is None:
            return Response(b"", 0x6986)  # no current EF
        if cmd.ins == INS.UPDATE_BINARY:
            if cmd.p1 & 0x80:
                return Response(b"", SW["p1p2"])  # short-EF addressing is not offered for writing
            off, data = (cmd.p1 << 8) | cmd.p2, cmd.data
        else:
            dos = tlv.decode(cmd.data, "UPDATE BINARY")
            o, d = tlv.find(dos, 0x54), tlv.find(dos, 0x53)
            if o is None or d is None:
                return Response(b"", SW["bad_data"])
            off, data = int.from_bytes(o.value, "big"), d.value
        if off + len(data) > len(f.data):
            return Response(b"", SW["offset"])
        f.data = f.data[:off] + bytes(data) + f.data[off + len(data):]
        self._changed()
        return Response(b"", SW["ok"])

    def _put_data(self, cmd: Command) -> Response:
        from cryptography.hazmat.primitives import serialization

        if not self.app_selected:
            return Response(b"", SW["conditions"])
        p1p2 = (cmd.p1 << 8) | cmd.p2
        d = self.data
        if p1p2 == 0xDEAD:
            if not d.files or d.mrz_information is None:
                return Response(b"", SW["conditions"])  # nothing to protect the data with yet
            d.lifecycle = Lifecycle.LOCKED.value
            self.save()
            return Response(b"", SW["ok"])
        if p1p2 == 0x0062:
            t = tlv.decode_one(cmd.data, "PUT DATA MRZ", expect=0x62)
            parts = [t.find(tag) for tag in (0x5F1F, 0x5F18, 0x5F19)]
            if any(p is None for p in parts):
                return Response(b"", SW["bad_data"])
            try:
                d.mrz_information = bac_seed_info(*(p.value.decode("ascii") for p in parts))  # type: ignore[union-attr]
            except (ValueError, UnicodeDecodeError):
                return Response(b"", SW["bad_data"])
        elif p1p2 == 0x0066:
            c = tlv.decode_one(cmd.data, "PUT DATA CAN", expect=0x66).find(0x80)
            if c is None or not c.value.isdigit():
                return Response(b"", SW["bad_data"])
            d.can = c.value.decode()
        elif p1p2 in (0x0063, 0x0064):
            t = tlv.decode_one(cmd.data, "PUT DATA key", expect=p1p2)
            try:
                key = serialization.load_der_private_key(t.value, None)
            except (ValueError, TypeError):
                return Response(b"", SW["bad_data"])
            if p1p2 == 0x0063:
                d.aa_key = key
            else:
                d.ca_key = key
        elif p1p2 == 0x0065:  # the CVCA trust point of terminal authentication
            from biostation.card.cvc import decode_cvc

            t = tlv.decode_one(cmd.data, "PUT DATA CVCA", expect=0x65)
            try:
                cert = decode_cvc(t.value)
            except TLVError:
                return Response(b"", SW["bad_data"])
            if not cert.self_signed:
                return Response(b"", SW["bad_data"])
            d.state["eac"] = {"trust_points": [t.value.hex()], "current_date": cert.effective.isoformat()}
        else:
            return Response(b"", SW["p1p2"])
        self._changed()
        return Response(b"", SW["ok"])

    def _changed(self) -> None:
        self.data.state["writes"] = int(self.data.state.get("writes", 0)) + 1
        if self.data.lifecycle == Lifecycle.BLANK.value:
            self.data.lifecycle = Lifecycle.PERSONALIZED.value
        self.save()

    def __repr__(self) -> str:
        return f"PersoCard({self.serial}, {self.data.lifecycle}, {len(self.data.files)} files)"


class SimulatedEncoder:
    """An encoding station fed with blank :class:`PersoCard` chips, for the line and its tests.

    Each :meth:`load` inserts a fresh blank card into a simulated reader and powers it.
    ``card_dir``: every card keeps its state in ``<card_dir>/<serial>/`` (kept after the
    process ends, for audits). ``tear(k) -> (index, mode) | None`` decides whether the k-th card
    this encoder loads (from 0) is torn, at which of its APDUs. ``hopper``: how many blank cards
    there are (None: no end). ``extended_length``: whether the cards' ATR announces extended
    Lc/Le. ``on_apdu``: handed to every card loaded (see :class:`PersoCard`). :attr:`output` and
    :attr:`rejects` list the serials sent out.
    """

    def __init__(self, name: str, *, card_dir: str | os.PathLike[str] | None = None, timing: ChipTiming = NO_DELAY,
                 tear: Callable[[int], tuple[int, str] | None] | None = None, hopper: int | None = None,
                 extended_length: bool = True, on_apdu: Callable[[str], None] | None = None):
        from biostation_drivers.simulated.card_reader import SimulatedCardReader

        self.name = name
        self.card_dir = Path(card_dir) if card_dir is not None else None
        if self.card_dir is not None:
            self.card_dir.mkdir(parents=True, exist_ok=True)
        self.timing = timing
        self.tear = tear
        self.hopper = hopper
        self.extended_length = extended_length
        self.on_apdu = on_apdu
        self.reader = SimulatedCardReader.create(key=f"sim:encoder-{name}")
        self.reader.remove()  # the station starts empty
        self.reader.open()
        self.loaded = 0
        self.card: PersoCard | None = None
        self.output: list[str] = []
        self.rejects: list[str] = []

    def load(self) -> Any:
        from biostation.errors import DeviceTimeoutError

        if self.hopper is not None and self.loaded >= self.hopper:
            raise DeviceTimeoutError(f"encoder {self.name}: hopper empty", self.reader.device_id)
        t = self.tear(self.loaded) if self.tear is not None else None
        serial = _secrets.token_hex(4).upper()
        path = None
        if self.card_dir is not None:
            while (self.card_dir / serial).exists():
                serial = _secrets.token_hex(4).upper()
            path = self.card_dir / serial
        data = CardData(lifecycle=Lifecycle.BLANK.value, aa_hash="sha256", state={"serial": serial, "writes": 0})
        if not self.extended_length:
            data.historical_bytes = SHORT_ONLY_HISTORICAL
        self.card = PersoCard(serial, state_dir=path, timing=self.timing, tear_at=t[0] if t else None,
                              tear_mode=t[1] if t else "before", data=data, on_apdu=self.on_apdu)
        self.loaded += 1
        self.reader.insert(self.card)
        self.reader.power_on()
        return self.reader

    def repower(self) -> None:
        self.reader.reset(cold=True)

    def unload(self, good: bool) -> None:
        card = self.card
        try:
            self.reader.power_off()
        except Exception:
            pass
        self.reader.remove()
        if card is not None:
            (self.output if good else self.rejects).append(card.serial)
        self.card = None
