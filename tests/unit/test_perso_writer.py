"""The personalization APDU sequence and the virtual card's lifecycle (blank, personalized,
locked), persistence across restarts and tearing."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from biostation.card.apdu import ApduChannel, Command
from biostation.card.lds import FILES
from biostation.card.perso.image import build_image
from biostation.card.perso.order import validate
from biostation.card.perso.writer import cplc_serial, plan, write
from biostation.card.pki import make_test_pki
from biostation.errors import ApduError, CardRemovedError
from biostation_drivers.simulated.vcard.perso import Lifecycle, PersoCard, SimulatedEncoder


@pytest.fixture(scope="module")
def pki():
    return make_test_pki()


def _portrait(w=240, h=320, noise=False) -> bytes:
    import numpy as np

    rng = np.random.default_rng(1)
    arr = rng.integers(0, 255, (h, w, 3), dtype=np.uint8) if noise else np.full((h, w, 3), 180, np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _order(portrait: bytes | None = None, oid: str = "HN-1"):
    return validate({"order_id": oid, "issuing_state": "VNM", "id_number": "001099012345", "surname": "NGUYEN",
                     "given_names": "VAN AN", "nationality": "VNM", "sex": "M", "date_of_birth": "1999-01-31",
                     "date_of_expiry": "2039-01-31",
                     "portrait": base64.b64encode(portrait or _portrait()).decode()},
                    max_portrait_bytes=200_000)


def test_plan_shape(pki):
    image = build_image(_order(), pki.signer())
    steps = plan(image)
    assert steps[0].label == "select applet" and steps[-1].label == "lock"
    files = [s.file for s in steps if s.last_of_file]
    assert files[-1] == "EF.SOD" and set(files) == set(image.files)
    assert {"put MRZ key", "put CAN", "put AA key"} <= {s.label for s in steps}
    assert all(len(s.command.data) <= 255 for s in steps)
    assert "NGUYEN" not in " ".join(s.label for s in steps) + repr(steps[3].command)


def test_large_file_uses_odd_update_binary(pki):
    big = _portrait(200, 250, noise=True)
    assert 40_000 < len(big) < 60_000
    image = build_image(_order(big), pki.signer())
    assert len(image.files["DG2"]) > 0x7FFF
    steps = plan(image)
    assert any(s.command.ins == 0xD7 for s in steps)
    card = PersoCard()
    write(ApduChannel(_Plain(card)), steps)
    assert card.file(FILES["DG2"].fid) == image.files["DG2"]


class _Plain:
    """Transport straight to a card object (no reader)."""

    def __init__(self, card):
        self.card = card

    def transmit(self, apdu: bytes) -> bytes:
        return self.card.process(apdu)


def test_lifecycle_and_persistence(pki, tmp_path):
    image = build_image(_order(), pki.signer())
    path = tmp_path / "card"
    card = PersoCard("0A0B0C0D", state_dir=path)
    assert card.lifecycle is Lifecycle.BLANK
    ch = ApduChannel(_Plain(card))
    assert cplc_serial(ch).endswith("0A0B0C0D")
    steps = plan(image)
    write(ch, steps[:-1])
    assert card.lifecycle is Lifecycle.PERSONALIZED
    # before the lock the chip does not answer like an issued one
    with pytest.raises(ApduError) as ei:
        ch.send(Command(0x00, 0xB0, 0, 0, le=8))
    assert ei.value.sw == 0x6985
    write(ch, steps[-1:])
    assert card.lifecycle is Lifecycle.LOCKED
    # writes are refused after the lock
    update = next(s.command for s in steps if s.command.ins == 0xD6)
    put_mrz = next(s.command for s in steps if s.label == "put MRZ key")
    for cmd in (steps[1].command, update, put_mrz):
        with pytest.raises(ApduError) as ei:
            ch.send(cmd)
        assert ei.value.sw == 0x6985
    # the state survives a restart (a new process loading the file)
    again = PersoCard.load(path)
    assert again.lifecycle is Lifecycle.LOCKED and again.serial == "0A0B0C0D"
    assert {n: again.file(FILES[n].fid) for n in image.files} == image.files
    assert again.data.mrz_information == image.mrz_information and again.data.can == "012345"
    assert again.data.aa_key is not None


def test_lock_refused_on_a_blank_card():
    card = PersoCard()
    ch = ApduChannel(_Plain(card))
    ch.send(Command(0x00, 0xA4, 0x04, 0x0C, bytes.fromhex("A0000002471001")))
    with pytest.raises(ApduError):
        ch.send(Command(0x00, 0xDA, 0xDE, 0xAD))
    assert card.lifecycle is Lifecycle.BLANK


@pytest.mark.parametrize("mode", ["before", "after"])
def test_tearing_at_each_kind_of_step(pki, tmp_path, mode):
    image = build_image(_order(), pki.signer())
    steps = plan(image)
    n = len(steps)
    for idx in sorted({0, 1, 2, 3, n // 2, n - 2, n - 1}):
        path = tmp_path / f"{mode}-{idx}"
        card = PersoCard(state_dir=path, tear_at=idx, tear_mode=mode)
        with pytest.raises(CardRemovedError):
            write(ApduChannel(_Plain(card)), steps)
        with pytest.raises(CardRemovedError):
            card.process(bytes.fromhex("00A4040C07A0000002471001"))
        saved = PersoCard.load(path)
        locked = saved.lifecycle is Lifecycle.LOCKED
        # only a tear *after* the lock APDU leaves a locked card
        assert locked == (mode == "after" and idx == n - 1)


def test_simulated_encoder_feeds_fresh_cards(tmp_path):
    enc = SimulatedEncoder("e0", card_dir=tmp_path, hopper=2)
    r = enc.load()
    s1 = cplc_serial(ApduChannel(r))
    enc.unload(False)
    enc.load()
    s2 = cplc_serial(ApduChannel(r))
    enc.unload(True)
    assert s1 != s2 and enc.rejects == [s1[-8:]] and enc.output == [s2[-8:]]
    assert len(list(tmp_path.glob("*/card.json"))) == 2
    from biostation.errors import DeviceTimeoutError

    with pytest.raises(DeviceTimeoutError):
        enc.load()
