"""Personalization with fingerprints: DG3 under EAC, the CVCA trust point, read-back through TA."""

from __future__ import annotations

import base64
import io
import json

import pytest
from cryptography.hazmat.primitives import serialization
from PIL import Image

from biostation.card import cvc
from biostation.card.perso.line import PersoLine
from biostation.card.pki import make_test_pki
from biostation.card.reader import read_document
from biostation.card.ta import Terminal
from biostation.card.trust import TrustStore
from biostation.records import FingerPosition
from biostation.store import Journal
from biostation_drivers.simulated.card_reader import SimulatedCardReader
from biostation_drivers.simulated.vcard.perso import Lifecycle, PersoCard, SimulatedEncoder
from biostation_drivers.simulated.vcard.profiles import synthetic_finger


@pytest.fixture(scope="module")
def pki():
    return make_test_pki()


@pytest.fixture(scope="module")
def eac():
    return cvc.make_test_hierarchy("VN")


@pytest.fixture(scope="module")
def trust(pki):
    t = TrustStore()
    t.add_der(pki.csca_cert.public_bytes(serialization.Encoding.DER))
    return t


def _png(arr) -> str:
    buf = io.BytesIO()
    Image.fromarray(arr, "L").save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _portrait() -> str:
    buf = io.BytesIO()
    Image.new("RGB", (240, 320), (180, 160, 150)).save(buf, "JPEG", quality=85)
    return base64.b64encode(buf.getvalue()).decode()


def order(i: int, fingers=(1, 2, 7), **over) -> dict:
    o = {"order_id": f"f{i:04d}", "id_number": f"0010990{i:05d}", "surname": "NGUYEN", "given_names": "VAN AN",
         "nationality": "VNM", "sex": "M", "date_of_birth": "1999-01-31", "date_of_expiry": "2039-01-31",
         "portrait": _portrait(),
         "fingers": [{"position": p, "image": _png(synthetic_finger(200, 240, seed=p)), "ppi": 500} for p in fingers]}
    o.update(over)
    return o


def test_line_writes_dg3_under_eac_and_reads_it_back(tmp_path, pki, eac, trust):
    orders = [order(1), order(2, fingers=(1, 3)),  # no index fingers: refused before any card
              order(3, fingers=[]) | {"fingers": [{"position": 2, "image": "bm90IGFuIGltYWdl"}]}]
    path = tmp_path / "orders.jsonl"
    path.write_text("".join(json.dumps(o) + "\n" for o in orders))
    terminal = Terminal(eac.chain, eac.terminal_signer(), eac.cvca)
    enc = SimulatedEncoder("sim0", card_dir=tmp_path / "cards")
    with Journal.open_exclusive(tmp_path / "j.db") as j:
        line = PersoLine(j, pki.signer(), trust, [enc], terminal=terminal)
        rep = line.load_orders(path)
        assert rep.rejected == {"f0002": "fingers: no image for finger position 2, 7",
                                "f0003": "fingers[0].image: not a decodable image"}
        summary = line.run()
        assert summary["orders"]["done"] == 1 and summary["cards"]["rejected"] == 0
        (oid, card_id, serial), = list(j.iter_done())
    card = PersoCard.load(tmp_path / "cards" / serial[-8:])
    assert card.lifecycle is Lifecycle.LOCKED and card.data.ca_key is not None
    assert card.data.files[0x0103].read == "eac"
    assert card.data.state["eac"]["trust_points"] == [eac.cvca.encode().hex()]

    def read(**kw):
        r = SimulatedCardReader.create(PersoCard.load(tmp_path / "cards" / serial[-8:]))
        r.open()
        r.power_on()
        return read_document(r, can="000001", trust=trust, **kw)

    doc = read(terminal=terminal)
    assert doc.terminal_auth == "passed" and doc.passive.status == "verified"
    assert [f.position for f in doc.fingerprints] == [FingerPosition.RIGHT_INDEX, FingerPosition.LEFT_INDEX]
    assert abs(int(doc.fingerprints[0].pixels().mean()) - int(synthetic_finger(200, 240, seed=2).mean())) <= 2
    # the written chip enforces EAC: no terminal, or a terminal without the DG3 right, reads no DG3
    assert "DG3" in read().skipped
    no_dg3 = cvc.reissue(eac, "inspection", chat=cvc.CHAT.inspection(cvc.ROLE_TERMINAL, cvc.READ_DG4))
    doc = read(terminal=Terminal([eac.dv, no_dg3], eac.terminal_signer()))
    assert doc.terminal_auth == "passed" and doc.fingerprint_status.startswith("not read: access denied")


def test_without_terminal_the_line_writes_no_dg3(tmp_path, pki, trust):
    path = tmp_path / "orders.jsonl"
    path.write_text(json.dumps(order(5)) + "\n")
    with Journal.open_exclusive(tmp_path / "j.db") as j:
        line = PersoLine(j, pki.signer(), trust, [SimulatedEncoder("sim0", card_dir=tmp_path / "cards")])
        line.load_orders(path)
        assert line.run()["orders"]["done"] == 1
        (_, _, serial), = list(j.iter_done())
    card = PersoCard.load(tmp_path / "cards" / serial[-8:])
    assert 0x0103 not in card.data.files and card.data.ca_key is None
