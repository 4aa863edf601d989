"""Reads against the virtual card switched to answer like chips that nobody here wrote
(``drivers/simulated/vcard/quirks.py``): each quirk was seen on a third-party chip."""

from __future__ import annotations

import copy

import pytest
from cryptography.hazmat.primitives import serialization

from biostation.card import trust
from biostation.card.reader import read_document
from biostation.errors import AccessDeniedError
from biostation_drivers.simulated.card_reader import SimulatedCardReader
from biostation_drivers.simulated.vcard.card import CardData, VirtualCard
from biostation_drivers.simulated.vcard.profiles import build_profile
from biostation_drivers.simulated.vcard.quirks import QUIRKS, apply_quirks

TD3_MRZ = "L898902C/690806/940623"


@pytest.fixture(scope="module")
def td3():
    return build_profile("td3", face_bytes=5000)


@pytest.fixture(scope="module")
def cccd():
    return build_profile("cccd", face_bytes=5000)


def card_of(profile, *quirks) -> VirtualCard:
    d = copy.copy(profile.data)
    d.files = {k: copy.copy(v) for k, v in profile.data.files.items()}
    d.counters = dict(profile.data.counters)
    d.state = dict(profile.data.state)
    return apply_quirks(VirtualCard(d), quirks)


class Wire:
    """Transport that keeps the header (CLA INS P1 P2) and status word of every APDU."""

    def __init__(self, card: VirtualCard):
        self.reader = SimulatedCardReader.create(card)
        self.reader.power_on()
        self.log: list[tuple[bytes, int]] = []

    def transmit(self, apdu: bytes) -> bytes:
        resp = self.reader.transmit(apdu)
        self.log.append((bytes(apdu[:4]), int.from_bytes(resp[-2:], "big")))
        return resp

    def sfi_reads(self) -> list[int]:
        return [sw for head, sw in self.log if head[1] == 0xB0 and head[2] & 0x80]


def store_for(profile) -> trust.TrustStore:
    der = profile.pki.csca_cert.public_bytes(serialization.Encoding.DER)
    return trust.TrustStore([trust.load_certificate(der, "csca")])


def test_quirk_names_are_checked(td3):
    with pytest.raises(ValueError, match="unknown quirk"):
        card_of(td3, "no-such-quirk")
    with pytest.raises(ValueError, match="exclude"):
        card_of(td3, "sod-empty", "sod-missing")
    assert set(QUIRKS) == {"bac-sm-error", "no-sfi", "sod-empty", "sod-missing"}


def test_wrong_mrz_answered_6988_is_access_denied(td3):
    w = Wire(card_of(td3, "bac-sm-error"))
    with pytest.raises(AccessDeniedError, match="wrong MRZ") as ei:
        read_document(w, mrz="L898902C/690806/940624")
    assert "6988" in str(ei.value)
    assert w.log[-1] == (bytes([0x00, 0x82, 0x00, 0x00]), 0x6988)  # one attempt, answered 6988
    r = read_document(Wire(card_of(td3, "bac-sm-error")), mrz=TD3_MRZ, trust=store_for(td3))
    assert r.access == "BAC" and r.passive.status == "verified"


@pytest.mark.parametrize("profile, secret", [("td3", {"mrz": TD3_MRZ}), ("cccd", {})])
def test_chip_without_short_file_identifiers_is_read_by_fid(profile, secret, td3, cccd):
    p = {"td3": td3, "cccd": cccd}[profile]
    w = Wire(card_of(p, "no-sfi"))
    r = read_document(w, trust=store_for(p), **(secret or {"can": p.can}))
    assert r.passive.status == "verified" and r.active.ok
    by_fid = {f.fid: f.data for f in p.data.files.values()}
    from biostation.card import lds

    for name, raw in r.files.items():
        assert raw == by_fid[lds.FILES[name].fid], name  # byte for byte
    # SFI reads are tried on the master file's optional files and on the first application file
    # (refused: 6A82, inside SM for the latter); every later file goes by SELECT
    assert 1 <= len(w.sfi_reads()) <= 3
    reads = sum(1 for head, _ in w.log if head[1] == 0xB0)
    assert reads > 10


@pytest.mark.parametrize("quirk, reason", [("sod-missing", "absent on the chip"), ("sod-empty", "empty")])
def test_missing_or_empty_sod_reads_the_rest_and_fails_passive_auth(td3, quirk, reason):
    r = read_document(Wire(card_of(td3, quirk)), mrz=TD3_MRZ, trust=store_for(td3))
    assert set(r.files) >= {"EF.COM", "DG1", "DG2", "DG11", "DG12", "DG15"} and "EF.SOD" not in r.files
    assert r.holder()["mrz"]["document_number"] == "L898902C"
    assert r.active.ok
    assert r.passive.status == "failed"
    assert any(reason in p for p in r.passive.problems), r.passive.problems
    assert reason in r.skipped["EF.SOD"]
    s = r.summary()
    assert s["checks"]["passive_authentication"]["status"] == "failed"
    assert s["checks"]["passive_authentication"]["data_groups"]["DG1"] == "not covered"


def test_malformed_sod_is_a_failed_check_not_a_crash(td3):
    card = card_of(td3)
    card.data.files[0x011D].data = b"\x77\x03\x30\x01\x00"  # a SOD tag around garbage
    r = read_document(Wire(card), mrz=TD3_MRZ, trust=store_for(td3))
    assert r.passive.status == "failed" and any("malformed" in p for p in r.passive.problems)
    assert "DG1" in r.files


def test_card_data_stays_untouched_by_data_quirks(td3):
    card_of(td3, "sod-missing")
    assert 0x011D in td3.data.files and isinstance(td3.data, CardData)


def test_data_group_listed_but_absent_is_skipped_not_fatal(td3):
    card = card_of(td3, "no-sfi")
    del card.data.files[0x010B]  # DG11: in EF.COM and in the SOD, not on the chip
    r = read_document(Wire(card), mrz=TD3_MRZ, trust=store_for(td3))
    assert "DG11" not in r.files and "absent" in r.skipped["DG11"]
    assert r.passive.data_groups[11] == "not read" and r.passive.status == "verified"
