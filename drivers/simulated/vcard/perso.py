"""The personalization lifecycle of the virtual eMRTD card.

A :class:`PersoCard` is a blank chip with an eMRTD applet, as it comes from the card
manufacturer. It takes the personalization commands of :mod:`biostation.card.perso.writer`
(SELECT applet, CREATE FILE, SELECT EF, UPDATE BINARY ``D6``/``D7``, PUT DATA for the MRZ key,
CAN and AA key, and the lock ``PUT DATA DE AD``) and moves through::

    BLANK --first write--> PERSONALIZED --lock--> LOCKED

Once LOCKED every write answers ``6985`` (conditions of use not satisfied) and the card serves
the reading protocol (PACE, BAC, secure messaging, READ BINARY, INTERNAL AUTHENTICATE) through
the virtual card of :mod:`biostation_drivers.simulated.vcard`, built from the files and secrets
written here. Before the lock, reading commands are refused with ``6985`` too: a half-written
chip never answers like an issued one.

State kept across restarts: with ``state_path`` every change is written to a JSON file (write to
a temporary file, then an atomic rename), so a card survives the test process or the runner
being killed and can be read back and audited afterwards with :meth:`PersoCard.load`.

Timing: ``timing`` gives the delay of a real contact chip, ``latency_s`` per APDU (command
processing and EEPROM writes: 10-20 ms on the chips in service) plus ``byte_s`` per byte each way
(115200 baud after PPS, 10 bits a byte: 87 us). Delays are slept, so encoder threads overlap.

Tearing: with ``tear_at=N`` the card leaves the field while it processes its N-th APDU (counted
from 0 since this object was made). ``tear_mode="before"`` drops the command; ``"after"`` applies
it and loses the answer (the EEPROM write finished, the response did not come back): both are
seen on real lines. From then on the card raises :class:`~biostation.errors.CardRemovedError`.

Secrets (MRZ key, CAN, AA key) are in the state file in clear: it is a simulator.
"""

from __future__ import annotations

import json
import os
import secrets as _secrets
import threading
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Callable

from biostation.card import tlv
from biostation.card.apdu import INS, Command, Response
from biostation.errors import CardRemovedError, TLVError

__all__ = ["Lifecycle", "PersoCard", "ChipTiming", "CONTACT_CHIP", "NO_DELAY"]

ATR = bytes.fromhex("3B8F8001804F0CA0000003060300030000000068")  # ISO 14443-4 card, PC/SC style ATR
AID = bytes.fromhex("A0000002471001")

SW_OK, SW_COND, SW_NOT_FOUND, SW_WRONG_LEN = 0x9000, 0x6985, 0x6A82, 0x6700
SW_INS, SW_P1P2, SW_DATA, SW_NO_EF, SW_EXISTS, SW_SPACE = 0x6D00, 0x6A86, 0x6A80, 0x6986, 0x6A89, 0x6A84


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


#: a contact chip: 15 ms per APDU, 115200 baud (10 bits a byte)
CONTACT_CHIP = ChipTiming(0.015, 10 / 115200)
NO_DELAY = ChipTiming()


@dataclass
class _State:
    serial: str  # 4-byte IC serial, hex
    lifecycle: str = Lifecycle.BLANK.value
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # "011E" -> {"size": n, "data": hex}
    mrz_seed: list[str] | None = None  # docno, birth, expiry
    can: str | None = None
    aa_key: str | None = None  # PKCS#8 DER hex
    writes: int = 0

    def to_json(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)


class PersoCard:
    """A blank virtual eMRTD chip that can be personalized once.

    Implements the simulated-card protocol of ``drivers/simulated/card_reader.py``
    (``atr``, ``reset()``, ``process(apdu) -> response``). Thread-safe (one lock per card).
    """

    atr = ATR

    def __init__(self, serial: str | None = None, *, state_path: str | os.PathLike[str] | None = None,
                 timing: ChipTiming = NO_DELAY, tear_at: int | None = None, tear_mode: str = "before",
                 capacity: int = 144 * 1024, reader_factory: Callable[["PersoCard"], Any] | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        if tear_mode not in ("before", "after"):
            raise ValueError("tear_mode: 'before' or 'after'")
        self.state = _State(serial or _secrets.token_hex(4).upper())
        self.state_path = Path(state_path) if state_path is not None else None
        self.timing = timing
        self.tear_at = tear_at
        self.tear_mode = tear_mode
        self.capacity = capacity
        self.apdus = 0
        self.torn = False
        self._sleep = sleep
        self._lock = threading.Lock()
        self._selected_app = False
        self._selected: str | None = None
        self._reader_factory = reader_factory
        self._reader: Any = None
        if self.state_path is not None:
            self._save()

    # --- persistence ------------------------------------------------------------------------------
    @classmethod
    def load(cls, state_path: str | os.PathLike[str], **kw: Any) -> "PersoCard":
        """The card saved at ``state_path`` (its lifecycle, files and secrets), powered off."""
        path = Path(state_path)
        raw = json.loads(path.read_text())
        card = cls.__new__(cls)
        cls.__init__(card, raw["serial"], state_path=None, **kw)
        card.state = _State(**raw)
        card.state_path = path
        return card

    def _save(self) -> None:
        if self.state_path is None:
            return
        tmp = self.state_path.with_name(self.state_path.name + ".tmp")
        tmp.write_text(self.state.to_json())
        os.replace(tmp, self.state_path)  # atomic: a kill leaves the old or the new state

    # --- what the tests and the reader look at ------------------------------------------------------
    @property
    def serial(self) -> str:
        return self.state.serial

    @property
    def lifecycle(self) -> Lifecycle:
        return Lifecycle(self.state.lifecycle)

    def file(self, fid: int) -> bytes | None:
        f = self.state.files.get(f"{fid:04X}")
        return None if f is None else bytes.fromhex(f["data"])

    @property
    def files(self) -> dict[int, bytes]:
        return {int(k, 16): bytes.fromhex(v["data"]) for k, v in self.state.files.items()}

    @property
    def mrz_seed(self) -> tuple[str, str, str] | None:
        return tuple(self.state.mrz_seed) if self.state.mrz_seed else None  # type: ignore[return-value]

    @property
    def can(self) -> str | None:
        return self.state.can

    @property
    def aa_key_der(self) -> bytes | None:
        return bytes.fromhex(self.state.aa_key) if self.state.aa_key else None

    # --- the simulated-card protocol ------------------------------------------------------------------
    def reset(self) -> None:
        if self.torn:
            raise CardRemovedError("the card left the field")
        self._selected_app = False
        self._selected = None
        self._reader = None

    def process(self, apdu: bytes) -> bytes:
        with self._lock:
            if self.torn:
                raise CardRemovedError("the card left the field")
            index = self.apdus
            self.apdus += 1
            tearing = self.tear_at is not None and index == self.tear_at
            if tearing and self.tear_mode == "before":
                self._tear(len(apdu))
            resp = self._process(apdu)
            if self.timing is not NO_DELAY:
                self._sleep(self.timing.delay(len(apdu) + len(resp)))
            if tearing:
                self._tear(0)
            return resp

    def _tear(self, n: int) -> None:
        self.torn = True
        if self.timing is not NO_DELAY:
            self._sleep(self.timing.delay(n) / 2)
        raise CardRemovedError("the card left the field")

    # --- commands ----------------------------------------------------------------------------------------
    def _process(self, raw: bytes) -> bytes:
        try:
            cmd = Command.parse(raw)
        except ValueError:
            return Response(b"", SW_WRONG_LEN).to_bytes()
        if self.lifecycle is Lifecycle.LOCKED:
            if cmd.ins in (INS.CREATE_FILE, INS.UPDATE_BINARY, INS.UPDATE_BINARY | 1, INS.PUT_DATA):
                return Response(b"", SW_COND).to_bytes()
            if cmd.cla & 0x80 and cmd.ins == 0xCA:
                return self._cplc(cmd)
            return self._locked(raw)
        handler = self._HANDLERS.get((cmd.cla & 0x80, cmd.ins))
        if handler is None:
            # reading commands before the lock: a half-made chip does not act as an issued one
            return Response(b"", SW_COND if cmd.ins in (INS.READ_BINARY, INS.GET_CHALLENGE, INS.MSE,
                                                        INS.GENERAL_AUTHENTICATE) else SW_INS).to_bytes()
        try:
            return handler(self, cmd).to_bytes()
        except TLVError:
            return Response(b"", SW_DATA).to_bytes()

    def _select(self, cmd: Command) -> Response:
        if cmd.p1 == 0x04:
            if cmd.data != AID:
                return Response(b"", SW_NOT_FOUND)
            self._selected_app, self._selected = True, None
            return Response(b"", SW_OK)
        if cmd.p1 == 0x02 and len(cmd.data) == 2 and self._selected_app:
            key = cmd.data.hex().upper()
            if key not in self.state.files:
                return Response(b"", SW_NOT_FOUND)
            self._selected = key
            return Response(b"", SW_OK)
        return Response(b"", SW_P1P2 if cmd.p1 not in (0x02, 0x04) else SW_COND)

    def _create(self, cmd: Command) -> Response:
        if not self._selected_app:
            return Response(b"", SW_COND)
        t = tlv.decode_one(cmd.data, "CREATE FILE", expect=0x63)
        if len(t.value) != 4:
            return Response(b"", SW_DATA)
        size, fid = int.from_bytes(t.value[:2], "big"), t.value[2:].hex().upper()
        if fid in self.state.files:
            return Response(b"", SW_EXISTS)
        used = sum(f["size"] for f in self.state.files.values())
        if used + size > self.capacity:
            return Response(b"", SW_SPACE)
        self.state.files[fid] = {"size": size, "data": "00" * size}
        self._changed()
        return Response(b"", SW_OK)

    def _update(self, cmd: Command) -> Response:
        if self._selected is None:
            return Response(b"", SW_NO_EF)
        if cmd.ins == INS.UPDATE_BINARY:
            if cmd.p1 & 0x80:
                return Response(b"", SW_P1P2)  # short-EF addressing is not offered
            off, data = (cmd.p1 << 8) | cmd.p2, cmd.data
        else:
            dos = tlv.decode(cmd.data, "UPDATE BINARY")
            o, d = tlv.find(dos, 0x54), tlv.find(dos, 0x53)
            if o is None or d is None:
                return Response(b"", SW_DATA)
            off, data = int.from_bytes(o.value, "big"), d.value
        f = self.state.files[self._selected]
        if off + len(data) > f["size"]:
            return Response(b"", 0x6B00)
        buf = bytearray.fromhex(f["data"])
        buf[off:off + len(data)] = data
        f["data"] = buf.hex()
        self._changed()
        return Response(b"", SW_OK)

    def _put_data(self, cmd: Command) -> Response:
        if not self._selected_app:
            return Response(b"", SW_COND)
        p1p2 = (cmd.p1 << 8) | cmd.p2
        if p1p2 == 0xDEAD:
            if not self.state.files or self.state.mrz_seed is None:
                return Response(b"", SW_COND)  # nothing to protect the data with yet
            self.state.lifecycle = Lifecycle.LOCKED.value
            self._save()
            return Response(b"", SW_OK)
        if p1p2 == 0x0062:
            t = tlv.decode_one(cmd.data, "PUT DATA MRZ", expect=0x62)
            parts = [t.find(tag) for tag in (0x5F1F, 0x5F18, 0x5F19)]
            if any(p is None for p in parts):
                return Response(b"", SW_DATA)
            self.state.mrz_seed = [p.value.decode("ascii", "replace") for p in parts]  # type: ignore[union-attr]
        elif p1p2 == 0x0066:
            t = tlv.decode_one(cmd.data, "PUT DATA CAN", expect=0x66)
            c = t.find(0x80)
            if c is None or not c.value.isdigit():
                return Response(b"", SW_DATA)
            self.state.can = c.value.decode()
        elif p1p2 == 0x0063:
            t = tlv.decode_one(cmd.data, "PUT DATA AA", expect=0x63)
            self.state.aa_key = t.value.hex()
        else:
            return Response(b"", SW_P1P2)
        self._changed()
        return Response(b"", SW_OK)

    def _cplc(self, cmd: Command) -> Response:
        if (cmd.p1, cmd.p2) != (0x9F, 0x7F):
            return Response(b"", 0x6A88)
        # fabricator 4790 (a made-up one), IC type, OS id/date/level, fab date, then the serial
        body = bytes.fromhex("4790" "5040" "4791" "6352" "0100" "6001") + bytes.fromhex(self.serial) + bytes(26)
        return Response(tlv.encode(0x9F7F, body), SW_OK)

    def _changed(self) -> None:
        self.state.writes += 1
        if self.state.lifecycle == Lifecycle.BLANK.value:
            self.state.lifecycle = Lifecycle.PERSONALIZED.value
        self._save()

    _HANDLERS: dict[tuple[int, int], Callable[["PersoCard", Command], Response]] = {
        (0x00, INS.SELECT): _select,
        (0x00, INS.CREATE_FILE): _create,
        (0x00, INS.UPDATE_BINARY): _update,
        (0x00, INS.UPDATE_BINARY | 1): _update,
        (0x00, INS.PUT_DATA): _put_data,
        (0x80, 0xCA): _cplc,
    }

    # --- after the lock: the reading protocol ---------------------------------------------------------
    def _locked(self, raw: bytes) -> bytes:
        if self._reader is None:
            if self._reader_factory is None:
                from . import issued_card  # the virtual card of the card-reading line

                self._reader = issued_card(self)
            else:
                self._reader = self._reader_factory(self)
        return self._reader.process(raw)

    def __repr__(self) -> str:
        return f"PersoCard({self.serial}, {self.state.lifecycle}, {len(self.state.files)} files)"


class SimulatedEncoder:
    """An encoding station fed with blank :class:`PersoCard` chips, for the line and its tests.

    Each :meth:`load` inserts a fresh blank card into a simulated reader and powers it.
    ``card_dir``: every card keeps its state in ``<card_dir>/<serial>.json`` (kept after the
    process ends, for audits). ``tear(k) -> (index, mode) | None`` decides whether the k-th card
    this encoder loads (from 0) is torn, at which of its APDUs. ``hopper``: how many blank cards
    there are (None: no end). :attr:`output` and :attr:`rejects` list the serials sent out.
    """

    def __init__(self, name: str, *, card_dir: str | os.PathLike[str] | None = None, timing: ChipTiming = NO_DELAY,
                 tear: Callable[[int], tuple[int, str] | None] | None = None, hopper: int | None = None,
                 reader_factory: Callable[[PersoCard], Any] | None = None):
        from biostation_drivers.simulated.card_reader import SimulatedCardReader

        self.name = name
        self.card_dir = Path(card_dir) if card_dir is not None else None
        if self.card_dir is not None:
            self.card_dir.mkdir(parents=True, exist_ok=True)
        self.timing = timing
        self.tear = tear
        self.hopper = hopper
        self.reader_factory = reader_factory
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
            while (self.card_dir / f"{serial}.json").exists():
                serial = _secrets.token_hex(4).upper()
            path = self.card_dir / f"{serial}.json"
        self.card = PersoCard(serial, state_path=path, timing=self.timing, tear_at=t[0] if t else None,
                              tear_mode=t[1] if t else "before", reader_factory=self.reader_factory)
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
