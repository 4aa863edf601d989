"""The personalization line end to end on virtual cards: bad orders, parallel encoders, read-back,
and a card torn at every APDU index of a personalization and of its read-back."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from PIL import Image

from biostation.card.perso.line import PersoLine
from biostation.card.pki import make_test_pki
from biostation.card.reader import read_document
from biostation.card.trust import TrustStore
from biostation.store import Journal
from biostation_drivers.simulated.card_reader import SimulatedCardReader
from biostation_drivers.simulated.vcard.perso import Lifecycle, PersoCard, SimulatedEncoder


@pytest.fixture(scope="module")
def pki():
    return make_test_pki()


@pytest.fixture(scope="module")
def trust(pki):
    t = TrustStore()
    t.add_der(pki.csca_cert.public_bytes(serialization.Encoding.DER))
    return t


def _portrait() -> str:
    buf = io.BytesIO()
    Image.new("RGB", (240, 320), (180, 160, 150)).save(buf, "JPEG", quality=85)
    return base64.b64encode(buf.getvalue()).decode()


def order(i: int, **over) -> dict:
    o = {"order_id": f"o{i:04d}", "id_number": f"0010990{i:05d}", "surname": "NGUYEN", "given_names": "VAN AN",
         "nationality": "VNM", "sex": "M", "date_of_birth": "1999-01-31", "date_of_expiry": "2039-01-31",
         "portrait": _portrait()}
    o.update(over)
    return {k: v for k, v in o.items() if v is not None}


def write_orders(path: Path, orders: list[dict], extra_lines: tuple[str, ...] = ()) -> Path:
    with path.open("w") as fh:
        for o in orders:
            fh.write(json.dumps(o) + "\n")
        for line in extra_lines:
            fh.write(line + "\n")
    return path


def audit_cards(journal: Journal, card_root: Path, trust, orders: dict[str, dict], every: int = 1) -> int:
    """Independent of the line: every done card (every ``every``-th), loaded from its saved
    state, reads back with PACE and verified PA and carries its own order's ID. Returns the
    cards checked."""
    n = 0
    for k, (oid, card_id, serial) in enumerate(journal.iter_done()):
        if k % every:
            continue
        enc = next(c["encoder"] for c in journal.cards(oid) if c["card_id"] == card_id)
        card = PersoCard.load(card_root / enc / serial[-8:])
        assert card.lifecycle is Lifecycle.LOCKED
        reader = SimulatedCardReader.create(card)
        reader.open()
        reader.power_on()
        doc = read_document(reader, can=orders[oid]["id_number"][-6:], trust=trust)
        assert doc.passive.status == "verified", doc.passive.problems
        assert doc.decoded["DG13"].fields["id_number"] == orders[oid]["id_number"]
        n += 1
    return n


def test_line_two_encoders_with_bad_orders(tmp_path, pki, trust):
    good = [order(i) for i in range(8)]
    bad = [order(100, date_of_birth="1999-13-01"),                    # not a date
           order(101, id_number="001199012345"),                       # sex digit says female
           order(102, portrait=base64.b64encode(b"\xff\xd8\xff" + b"\0" * 60_000).decode()),  # oversized
           order(103, mrz=["IDVNM0990120000001099012000<<1", "9901310M3901318VNM<<<<<<<<<<<2",
                           "NGUYEN<<VAN<AN<<<<<<<<<<<<<<<<"]),         # wrong check digits
           order(104, surname=None)]
    path = write_orders(tmp_path / "orders.jsonl", good + bad, ("{broken json",))
    encs = [SimulatedEncoder(f"sim{i}", card_dir=tmp_path / "cards" / f"sim{i}") for i in range(2)]
    events = []
    with Journal.open_exclusive(tmp_path / "j.db") as j:
        line = PersoLine(j, pki.signer(), trust, encs, on_event=lambda k, i: events.append((k, i)))
        rep = line.load_orders(path)
        assert rep.lines == 14 and rep.pending == 8
        assert set(rep.rejected) == {"o0100", "o0101", "o0102", "o0103", "o0104", "line:14"}
        assert rep.rejected["o0101"] == "id_number: sex digit does not match the sex"
        assert rep.rejected["o0102"].startswith("portrait:") and "larger than" in rep.rejected["o0102"]
        assert rep.rejected["o0103"].startswith("mrz: wrong check digit")
        assert rep.rejected["o0104"] == "missing field: surname"
        summary = line.run()
        assert summary["orders"] == {"pending": 0, "active": 0, "done": 8, "rejected": 6}
        assert summary["cards"]["done"] == 8 and summary["cards"]["rejected"] == 0
        assert all(s["cards_done"] > 0 for s in summary["encoders"].values())  # both encoders worked
        assert j.check() == []
        # bad orders never touched a card
        assert all(j.cards(oid) == [] for oid in rep.rejected)
        for oid in rep.rejected:
            assert j.order(oid)["reason"] == rep.rejected[oid]
        assert audit_cards(j, tmp_path / "cards", trust, {o["order_id"]: o for o in good}) == 8
        # a second load of the same file queues nothing again, a changed order is a conflict
        line2 = PersoLine(j, pki.signer(), trust, encs)
        assert line2.load_orders(path).added == 0
        changed = write_orders(tmp_path / "o2.jsonl", [order(0, surname="TRAN")])
        assert line2.load_orders(changed).conflicts == ["o0000"]
        assert line2.run()["orders"]["done"] == 8


def test_wrong_csca_fails_readback_and_no_order_is_done(tmp_path, pki):
    other = make_test_pki()
    wrong = TrustStore()
    wrong.add_der(other.csca_cert.public_bytes(serialization.Encoding.DER))
    path = write_orders(tmp_path / "orders.jsonl", [order(1)])
    with Journal.open_exclusive(tmp_path / "j.db", max_attempts=2) as j:
        line = PersoLine(j, pki.signer(), wrong, [SimulatedEncoder("sim0")])
        line.load_orders(path)
        s = line.run()
        assert s["orders"]["done"] == 0 and s["orders"]["rejected"] == 1
        cards = j.cards("o0001")
        assert [c["status"] for c in cards] == ["rejected", "rejected"]
        assert all(c["readback"]["ok"] is False and c["readback"]["pa"] == "failed" for c in cards)
        assert j.check() == []


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["before", "after"])
def test_tear_at_every_apdu_index(tmp_path, pki, trust, mode):
    """Order m's first card is torn at APDU m; its second card is whole. Indices cover the whole
    personalization (serial read, writes, secrets, lock) and the whole read-back."""
    probe = SimulatedEncoder("probe")
    with Journal.open_exclusive(tmp_path / "probe.db") as j:
        line = PersoLine(j, pki.signer(), trust, [probe])
        line.load_orders(write_orders(tmp_path / "p.jsonl", [order(0)]))
        line.run()
        s = line.stats["probe"]
        per_card = s.apdus_write + s.apdus_read + 1  # + the serial read (GET DATA)
    print(f"tearing {mode}: {per_card} indices (write {s.apdus_write}, read-back {s.apdus_read}, serial 1)")
    n = per_card
    orders = [order(i) for i in range(n)]
    enc = SimulatedEncoder("sim0", card_dir=tmp_path / "cards" / "sim0",
                           tear=lambda k: (k // 2, mode) if k % 2 == 0 else None)
    with Journal.open_exclusive(tmp_path / "j.db") as j:
        line = PersoLine(j, pki.signer(), trust, [enc])
        line.load_orders(write_orders(tmp_path / "o.jsonl", orders))
        summary = line.run()
        assert summary["orders"]["done"] == n, summary["orders"]
        assert summary["cards"] == {"writing": 0, "verifying": 0, "done": n, "rejected": n}
        assert j.check() == []
        for o in orders:
            cards = j.cards(o["order_id"])
            assert [c["status"] for c in cards] == ["rejected", "done"]
            assert "CardRemovedError" in cards[0]["reason"]
        assert len(enc.rejects) == n and len(enc.output) == n
        assert audit_cards(j, tmp_path / "cards", trust, {o["order_id"]: o for o in orders}, every=7) == -(-n // 7)


def test_reader_encoder_over_a_hal_reader_and_lazy_orders(tmp_path, pki, trust):
    """The encoder of real stations (a HAL card reader) drives the same line; orders are read
    again from the file when claimed, and a file edited after queueing is refused, not written."""
    from biostation.card.perso.line import ReaderEncoder

    card = PersoCard(state_dir=tmp_path / "card")
    reader = SimulatedCardReader.create(card, key="sim:station")
    reader.open()
    path = write_orders(tmp_path / "orders.jsonl", [order(1), order(2)])
    with Journal.open_exclusive(tmp_path / "j.db") as j:
        line = PersoLine(j, pki.signer(), trust, [ReaderEncoder(reader, "station", wait_s=1)])
        assert line.load_orders(path).pending == 2
        # the second order's line is edited after it was queued
        text = path.read_text().splitlines()
        text[1] = text[1].replace("VAN AN", "VAN BA")
        path.write_text("\n".join(text) + "\n")
        events = []
        line.on_event = lambda k, i: events.append((k, i))
        s = line.run()
        assert s["orders"]["done"] == 1 and s["orders"]["rejected"] == 1
        assert j.order("o0002")["reason"] == "the orders file changed after it was queued"
        assert j.cards("o0002") == []  # refused before a card was touched
        assert card.lifecycle is Lifecycle.LOCKED
        assert j.check() == []


def test_cli_status_and_run(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from biostation.cli import app

    monkeypatch.setenv("BIOSTATION_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("BIOSTATION_PERSO_SIGNER", "keyfile")
    r = CliRunner().invoke(app, ["perso", "pki"])
    assert r.exit_code == 0, r.output
    path = write_orders(tmp_path / "orders.jsonl", [order(1), order(2, sex="F")])
    r = CliRunner().invoke(app, ["perso", "run", str(path), "--simulated", "2", "--sim-apdu-ms", "0"])
    assert r.exit_code == 0, r.output
    assert "exactly-once holds" in r.output and "o0002 rejected: id_number: sex digit" in r.output
    r = CliRunner().invoke(app, ["perso", "status"])
    st = json.loads(r.output)
    assert st["orders"]["done"] == 1 and st["orders"]["rejected"] == 1 and st["audit"] == []


def test_extended_length_only_when_the_card_announces_it(tmp_path, pki, trust):
    from biostation.card.perso.line import ReaderEncoder
    from biostation_drivers.simulated.vcard.card import CardData

    big = base64.b64encode(_face(15_000)).decode()
    counts = {}
    for name, hist in (("short", b"\x80\x31\x80\x65\xb0\x83\x11\x00\x83"), ("extended", None)):
        data = CardData(lifecycle="blank", state={"serial": "00C0FFEE", "writes": 0})
        if hist is not None:
            data.historical_bytes = hist  # card capabilities without the extended Lc/Le bit
        card = PersoCard(data=data)
        reader = SimulatedCardReader.create(card, key=f"sim:{name}")
        reader.open()
        with Journal.open_exclusive(tmp_path / f"{name}.db") as j:
            line = PersoLine(j, pki.signer(), trust, [ReaderEncoder(reader, name, wait_s=1)])
            line.load_orders(write_orders(tmp_path / f"{name}.jsonl", [order(1, portrait=big)]))
            assert line.run()["orders"]["done"] == 1
            counts[name] = line.stats[name].apdus_write
    assert counts["extended"] * 2 < counts["short"], counts  # 44 against 100 for a 15 KB portrait


def _face(size: int) -> bytes:
    from biostation_drivers.simulated.vcard.profiles import synthetic_face_jpeg

    return synthetic_face_jpeg(size)
