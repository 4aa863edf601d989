"""Simulated (in-process) smart-card reader.

It holds a *card*: any object with ``atr: bytes``, ``reset() -> None`` and
``process(apdu: bytes) -> bytes``. The station's simulated reader holds the card named by
``Settings.sim_card``: a virtual Vietnamese ID card (``cccd``, PACE with its CAN), a passport
(``td3``, BAC) or :class:`BlankCard` (``blank``: no application, every command answers 6D00,
like a chip before personalization). The virtual card and its test PKI are made on first use and
kept in ``<data_dir>/sim/card`` so counters and the CSCA survive restarts; its CAN and MRZ are in
the reader's info (a training card: nothing secret). For the real PC/SC path, the same virtual
card speaks the vpcd socket protocol behind pcscd instead (``biostation card simulate``).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from biostation.config import Settings
from biostation.errors import CardRemovedError
from biostation.hal import Attachment, CardReader, Feature

log = logging.getLogger(__name__)


class SimulatedCard(Protocol):
    atr: bytes

    def reset(self) -> None: ...

    def process(self, apdu: bytes) -> bytes: ...


class BlankCard:
    """A card with no application selected or installed."""

    atr = bytes.fromhex("3B8880010000000000000000")  # ISO 14443 contactless card, no historical bytes

    def reset(self) -> None:
        pass

    def process(self, apdu: bytes) -> bytes:
        return b"\x6d\x00"


def desk_holder(settings: Settings) -> Any:
    """The holder of the simulated desk's CCCD card, when the data set is there: the person the
    simulated camera shows (the chip holds another photo of them, as an ISO token JPEG of at most
    20 KB) and the index fingers of the simulated scanner's first applicant (an impression the
    scanner's single captures never serve). None without the data set or the face models: the
    card then carries synthetic pictures."""
    from biostation.records import FingerPosition

    from .applicants import Applicants
    from .vcard.profiles import Holder

    source = settings.resolved_camera_source()
    scanner_dir = settings.resolved_scanner_dir()
    if source is None or not source.is_file() or scanner_dir is None:
        return None
    chip_photo = next((p for p in sorted(source.parent.glob("*.jpg")) if p != source), source)
    try:
        from biostation.face import check_portrait, load_image, token_image
        from biostation.face.token import encode_jpeg_fit

        image = load_image(chip_photo)
        report = check_portrait(image)
        if report.face is None:
            return None
        face = encode_jpeg_fit(token_image(image, report.face.right_eye, report.face.left_eye), 20_000)
        people = Applicants(scanner_dir, lambda who: [])
        fingers = [(int(p), *people.finger(p, 8, who=0)) for p in (FingerPosition.RIGHT_INDEX,
                                                                    FingerPosition.LEFT_INDEX)]
    except Exception as exc:  # no face models, unreadable files: synthetic pictures instead
        log.info("simulated card: synthetic holder (%s)", type(exc).__name__)
        return None
    return Holder(face, fingers)


class ProfileCard:
    """The virtual ICAO 9303 card of a profile, built (or reloaded from ``folder``) on first use.
    ``holder()``: the biometrics of a fresh card's holder (see :func:`desk_holder`)."""

    def __init__(self, profile: str, folder: Path, holder: Callable[[], Any] | None = None):
        self.profile = profile
        self.folder = folder
        self.holder = holder
        self._card: Any = None
        self._info: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def _ensure(self) -> Any:
        with self._lock:
            if self._card is None:
                from biostation.card.pki import load_test_pki

                from .vcard.card import CardData, VirtualCard
                from .vcard.profiles import build_profile

                info_path = self.folder / "profile.json"
                if (self.folder / "card" / "card.json").is_file() and info_path.is_file():
                    data = CardData.load(self.folder / "card")
                    load_test_pki(self.folder / "pki")  # a damaged folder fails loudly
                    info = json.loads(info_path.read_text())
                else:
                    who = self.holder() if self.holder is not None and self.profile == "cccd" else None
                    prof = build_profile(self.profile, can_tries=None, holder=who)
                    self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
                    prof.pki.write(self.folder / "pki")
                    if prof.eac is not None:  # inspection-system credentials that may read its DG3
                        prof.eac.write(self.folder / "pki" / "eac")
                    data, info = prof.data, prof.info()
                    data.save(self.folder / "card")
                    info_path.write_text(json.dumps(info, ensure_ascii=False))
                info["csca"] = str(self.folder / "pki" / "csca.pem")
                if (self.folder / "pki" / "eac" / "is.cvcert").is_file():
                    info["terminal"] = str(self.folder / "pki" / "eac")
                self._info = info
                self._card = VirtualCard(data, state_dir=self.folder / "card")
            return self._card

    @property
    def info(self) -> dict[str, Any]:
        self._ensure()
        assert self._info is not None
        return self._info

    @property
    def atr(self) -> bytes:
        return self._ensure().atr

    def reset(self) -> None:
        self._ensure().reset()

    def process(self, apdu: bytes) -> bytes:
        return self._ensure().process(apdu)


class SimulatedCardReader(CardReader):
    id = "simulated-card-reader"
    full_name = "Simulated contactless reader"
    features = Feature.SIMULATED | Feature.CARD_CONTACTLESS | Feature.CARD_ENCODE

    @classmethod
    def probe(cls, settings: Settings) -> list[Attachment]:
        return [Attachment("sim", "sim:reader0", cls.full_name)]

    @classmethod
    def discover(cls, attachment: Attachment) -> int:
        return 50 if attachment.bus == "sim" and attachment.key.startswith("sim:reader") else 0

    @classmethod
    def create(cls, card: SimulatedCard | None = None, key: str = "sim:reader-test",
               settings: Settings | None = None) -> SimulatedCardReader:
        dev = cls(Attachment("sim", key, cls.full_name), settings or Settings(sim_time_scale=0.0))
        dev.insert(card if card is not None else BlankCard())
        return dev

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        profile = self.settings.sim_card
        self._card: SimulatedCard | None = (
            BlankCard() if profile == "blank" else ProfileCard(profile, self.settings.data_dir / "sim" / "card",
                                                                 holder=lambda: desk_holder(self.settings)))
        self._card_lock = threading.Lock()

    def trust_anchor(self) -> Path | None:
        """CSCA certificate of the simulated card, for reads of it; None for other cards."""
        card = self._card
        return Path(card.info["csca"]) if isinstance(card, ProfileCard) else None

    def terminal_credentials(self) -> Path | None:
        """The inspection-system credentials (CV certificates, IS key) the simulated card's chip
        trusts, for reads of its DG3; None for other cards."""
        card = self._card
        folder = card.info.get("terminal") if isinstance(card, ProfileCard) else None
        return Path(folder) if folder else None

    def insert(self, card: SimulatedCard) -> None:
        with self._card_lock:
            self._card = card

    def remove(self) -> None:
        with self._card_lock:
            self._card = None

    def _card_or_raise(self) -> SimulatedCard:
        card = self._card
        if card is None:
            raise CardRemovedError(f"no card on {self.device_id}")
        return card

    def _do_card_present(self) -> bool:
        return self._card is not None

    def _do_power_on(self) -> bytes:
        card = self._card_or_raise()
        card.reset()
        return card.atr

    def _do_transmit(self, apdu: bytes) -> bytes:
        return self._card_or_raise().process(apdu)

    def _do_info(self) -> dict[str, Any]:
        card = self._card
        out: dict[str, Any] = {"vendor": "biostation", "model": "simulated", "serial": self.attachment.key,
                               "card": type(card).__name__ if card else None}
        if isinstance(card, ProfileCard):
            # a training card: its CAN and MRZ are printed on it, nothing secret
            out.update(card=f"virtual {card.profile}", can=card.info.get("can"), mrz=card.info.get("mrz"))
        return out
