"""End-to-end reads against the in-process virtual card (no pcscd): PACE, BAC, checks, faults."""

from __future__ import annotations

import copy

import pytest
from cryptography.hazmat.primitives import serialization

from biostation.card import lds, trust
from biostation.card.apdu import ApduChannel
from biostation.card.reader import CardFiles, read_document
from biostation.errors import AccessDeniedError, CardRemovedError, SecureMessagingError
from biostation_drivers.simulated.card_reader import SimulatedCardReader
from biostation_drivers.simulated.vcard.card import CardData, Faults, VirtualCard
from biostation_drivers.simulated.vcard.profiles import build_profile


@pytest.fixture(scope="module")
def cccd():
    return build_profile("cccd")


@pytest.fixture(scope="module")
def td3():
    return build_profile("td3", face_bytes=5000)


def clone(data: CardData) -> CardData:
    d = copy.copy(data)
    d.files = {k: copy.copy(v) for k, v in data.files.items()}
    d.counters = dict(data.counters)
    d.state = dict(data.state)
    return d


def store_for(profile) -> trust.TrustStore:
    der = profile.pki.csca_cert.public_bytes(serialization.Encoding.DER)
    return trust.TrustStore([trust.load_certificate(der, "csca")])


class Counting:
    """Transport wrapper that records the INS of every APDU (plain or SM)."""

    def __init__(self, card):
        self.card = card
        self.ins = []

    def transmit(self, apdu: bytes) -> bytes:
        self.ins.append(apdu[1])
        return self.card.process(apdu)


def reader_with(card) -> SimulatedCardReader:
    r = SimulatedCardReader.create(card)
    r.power_on()
    return r


def test_cccd_read_with_pace_can_all_checks_pass(cccd):
    card = VirtualCard(clone(cccd.data))
    r = read_document(reader_with(card), can=cccd.can, trust=store_for(cccd))
    assert r.access.startswith("PACE PACE-ECDH-GM AES-128 paramId 13 (CAN)")
    assert r.passive.status == "verified"
    assert r.passive.data_groups == {1: "valid", 2: "valid", 3: "not read", 13: "valid", 14: "valid", 15: "valid"}
    assert r.active.ok and r.chip_auth == "passed" and card.access == "pace+ca"
    assert r.cccd["ok"] and r.cccd["id"]["number"] == "001099012345"
    assert r.skipped == {"DG3": "needs terminal authentication (EAC), not performed"}
    h = r.holder()
    assert h["dg13"]["full_name"] == "Nguyễn Văn An" and h["faces"][0]["bytes"] == 20_000
    assert r.decoded["DG2"].faces[0].image.startswith(b"\xff\xd8")


def test_cccd_read_with_pace_mrz(cccd):
    r = read_document(reader_with(VirtualCard(clone(cccd.data))), mrz=cccd.mrz, trust=store_for(cccd))
    assert r.access.endswith("(MRZ)") and r.passive.status == "verified"


def test_td3_bac_fallback_and_rsa_active_authentication(td3):
    r = read_document(reader_with(VirtualCard(clone(td3.data))), mrz="L898902C/690806/940623", trust=store_for(td3))
    assert r.access == "BAC" and r.passive.status == "verified"
    assert r.active.ok and "9796-2" in r.active.algorithm
    with pytest.raises(AccessDeniedError, match="BAC needs the MRZ"):
        read_document(reader_with(VirtualCard(clone(td3.data))), can="123456")


def test_files_are_protected_before_authentication(cccd):
    ch = ApduChannel(reader_with(VirtualCard(clone(cccd.data))))
    files = CardFiles(ch)
    assert files.read("EF.CardAccess")[:1] == b"\x31"  # the one file readable in the clear
    files.select_application()
    with pytest.raises(AccessDeniedError) as ei:
        files.read("DG1")
    assert ei.value.sw == 0x6982


def test_wrong_can_is_one_attempt_then_counter_then_blocked(cccd):
    card = VirtualCard(clone(cccd.data))
    t = Counting(card)
    with pytest.raises(AccessDeniedError, match="wrong CAN") as ei:
        read_document(t, can="000000")
    assert ei.value.__cause__ is None
    assert t.ins.count(0x86) == 4 and t.ins.count(0x22) == 1  # one PACE run: no retry storm
    assert card.data.counters["can"] == 2
    for _ in range(2):
        with pytest.raises(AccessDeniedError):
            read_document(Counting(card), can="000000")
    assert card.data.counters["can"] == 0
    with pytest.raises(AccessDeniedError, match="6983|blocked"):
        read_document(Counting(card), can=cccd.can)  # even the right CAN: the counter is spent


def test_right_can_resets_the_counter(cccd):
    card = VirtualCard(clone(cccd.data))
    with pytest.raises(AccessDeniedError):
        read_document(Counting(card), can="999999")
    assert card.data.counters["can"] == 2
    read_document(Counting(card), can=cccd.can, active_auth=False)
    assert card.data.counters["can"] == 3


def test_wrong_mrz_on_bac_card(td3):
    with pytest.raises(AccessDeniedError, match="wrong MRZ"):
        read_document(reader_with(VirtualCard(clone(td3.data))), mrz="L898902C/690806/940624")


def test_card_pulled_mid_dg2_raises_and_returns_nothing(cccd):
    card = VirtualCard(clone(cccd.data), Faults(pull_in_file=0x0102, pull_after_bytes=9000))
    rd = reader_with(card)
    events = []
    rd.bus.subscribe(lambda e: events.append(e.kind.value))
    result = None
    with pytest.raises(CardRemovedError):
        result = read_document(rd, can=cccd.can)
    assert result is None  # nothing partial comes back
    assert not rd.powered and "card.removed" in events  # the reader dropped the session and said so


def test_bad_mac_from_the_card_stops_the_read(cccd):
    card = VirtualCard(clone(cccd.data), Faults(bad_mac_at=3))
    with pytest.raises(SecureMessagingError, match="MAC"):
        read_document(reader_with(card), can=cccd.can)


def test_unknown_csca_shows_data_as_unverified(cccd, td3):
    r = read_document(reader_with(VirtualCard(clone(cccd.data))), can=cccd.can, trust=store_for(td3))
    assert r.passive.status == "unverified" and any("unknown CSCA" in p for p in r.passive.problems)
    assert r.holder()["dg13"]["id_number"] == "001099012345"  # data still shown
    r = read_document(reader_with(VirtualCard(clone(cccd.data))), can=cccd.can)
    assert r.passive.status == "unverified"


def test_tampered_data_group_and_id_mismatch_are_reported(cccd):
    data = clone(cccd.data)
    fields = lds.decode_dg13(data.files[0x010D].data).fields
    fields["id_number"] = "001199012345"  # sex digit says female, MRZ says 001099012345
    data.files[0x010D].data = lds.encode_dg13(fields)
    r = read_document(reader_with(VirtualCard(data)), can=cccd.can, trust=store_for(cccd))
    assert r.passive.data_groups[13] == "MISMATCH" and r.passive.status == "failed"
    assert not r.cccd["ok"] and r.cccd["checks"]["mrz_document_number"] is False


def test_extended_length_reads_dg2_in_fewer_apdus(cccd):
    short = read_document(reader_with(VirtualCard(clone(cccd.data))), can=cccd.can, data_groups=[2],
                          active_auth=False, chip_auth=False, extended=False)
    ext = read_document(reader_with(VirtualCard(clone(cccd.data))), can=cccd.can, data_groups=[2],
                        active_auth=False, chip_auth=False, extended=True, max_read=8192)
    auto = read_document(reader_with(VirtualCard(clone(cccd.data))), can=cccd.can, data_groups=[2],
                         active_auth=False, chip_auth=False)  # the card announces 64 KiB in EF.ATR/INFO
    assert ext.files["DG2"] == short.files["DG2"] == auto.files["DG2"]
    assert ext.apdu_count < short.apdu_count - 80
    assert auto.apdu_count < short.apdu_count - 80
    # a card that announces nothing gets short APDUs
    data = clone(cccd.data)
    data.historical_bytes = b""
    del data.files[0x2F01]
    plain = read_document(reader_with(VirtualCard(data)), can=cccd.can, data_groups=[2], active_auth=False,
                          chip_auth=False)
    assert plain.apdu_count >= short.apdu_count


def test_odd_read_binary_beyond_32k(cccd):
    data = clone(cccd.data)
    big = lds.encode_dg2([lds.FaceImage(b"\xff\xd8" + bytes(40_000), 0, 480, 640)])
    data.files[0x0102].data = big
    ch = ApduChannel(reader_with(VirtualCard(data)), extended=True)
    from biostation.card.pace import Password, perform_pace
    from biostation.card.secinfo import parse_security_infos
    files = CardFiles(ch, max_read=4096)
    info = parse_security_infos(files.read("EF.CardAccess")).pace[0]
    perform_pace(ch, Password.can(cccd.can), info)
    files.select_application()
    assert files.read("DG2") == big


def test_card_state_saves_and_loads(cccd, tmp_path):
    data = clone(cccd.data)
    data.counters["can"] = 1
    data.lifecycle = "locked"
    data.save(tmp_path)
    back = CardData.load(tmp_path)
    assert back.counters["can"] == 1 and back.lifecycle == "locked"
    assert {f: x.data for f, x in back.files.items()} == {f: x.data for f, x in data.files.items()}
    r = read_document(reader_with(VirtualCard(back)), can=cccd.can, trust=store_for(cccd))
    assert r.active.ok and r.chip_auth == "passed"


def test_cloned_chip_fails_active_and_chip_authentication(cccd):
    from cryptography.hazmat.primitives.asymmetric import ec

    from biostation.errors import VerificationError

    data = clone(cccd.data)
    data.aa_key = ec.generate_private_key(ec.BrainpoolP256R1())  # a copy of the files, not of the keys
    r = read_document(reader_with(VirtualCard(data)), can=cccd.can, trust=store_for(cccd))
    assert r.passive.status == "verified" and r.active.ok is False and "does not verify" in r.active.detail
    data = clone(cccd.data)
    data.ca_key = ec.generate_private_key(ec.BrainpoolP256R1())
    with pytest.raises(VerificationError, match="chip authentication failed"):
        read_document(reader_with(VirtualCard(data)), can=cccd.can, trust=store_for(cccd))


def _master_list(cert_ders, signer_key=None, signer_cert=None) -> bytes:
    import hashlib

    from asn1crypto import cms
    from asn1crypto import x509 as ax509

    from biostation.card.sod import KeySigner
    from biostation.card.trust import CscaMasterList

    ml = CscaMasterList({"version": 0, "cert_list": [ax509.Certificate.load(d) for d in cert_ders]}).dump()
    sd = {"version": "v3", "digest_algorithms": [{"algorithm": "sha256"}],
          "encap_content_info": {"content_type": "2.23.136.1.1.2", "content": ml}, "signer_infos": []}
    if signer_key is not None:
        cert = ax509.Certificate.load(signer_cert.public_bytes(serialization.Encoding.DER))
        attrs = cms.CMSAttributes([{"type": "content_type", "values": ["2.23.136.1.1.2"]},
                                   {"type": "message_digest", "values": [hashlib.sha256(ml).digest()]}])
        sig = KeySigner(signer_key, signer_cert).sign(b"\x31" + attrs.dump()[1:], "sha256")
        sd["certificates"] = [cert]
        sd["signer_infos"] = [{"version": "v1", "sid": cms.SignerIdentifier({"issuer_and_serial_number": {
            "issuer": cert.issuer, "serial_number": cert.serial_number}}), "digest_algorithm": {"algorithm": "sha256"},
            "signed_attrs": attrs, "signature_algorithm": {"algorithm": "sha256_ecdsa"}, "signature": sig}]
    return cms.ContentInfo({"content_type": "signed_data", "content": cms.SignedData(sd)}).dump()


def test_trust_store_reads_an_icao_master_list(cccd, td3, tmp_path):
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    ders = [p.pki.csca_cert.public_bytes(serialization.Encoding.DER) for p in (cccd, td3)]
    (tmp_path / "unsigned.ml").write_bytes(_master_list(ders))
    store = trust.TrustStore.load(tmp_path)
    assert len(store) == 2 and store.problems == ["unsigned.ml: master list is not signed"]
    r = read_document(reader_with(VirtualCard(clone(cccd.data))), can=cccd.can, trust=store)
    assert r.passive.status == "verified"
    # a properly signed list: signer certificate issued by the VN CSCA it carries
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    signer = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ML signer")]))
              .issuer_name(cccd.pki.csca_cert.subject).public_key(key.public_key())
              .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
              .not_valid_after(now + dt.timedelta(days=30)).sign(cccd.pki.csca_key, hashes.SHA256()))
    signed = tmp_path / "signed"
    signed.mkdir()
    (signed / "vn.mls").write_bytes(_master_list(ders, key, signer))
    store = trust.TrustStore.load(signed)
    assert len(store) == 2 and store.problems == []
    raw = bytearray(_master_list(ders, key, signer))
    raw[-3] ^= 0xFF  # inside the signature
    (signed / "vn.mls").write_bytes(bytes(raw))
    assert "does not verify" in trust.TrustStore.load(signed).problems[0]


@pytest.mark.parametrize("agreement, cipher, klen, param_id", [
    ("ECDH", "AES", 32, 12), ("ECDH", "AES", 24, 16), ("ECDH", "3DES", 16, 13), ("DH", "AES", 16, 0),
])
def test_other_pace_suites_end_to_end(cccd, agreement, cipher, klen, param_id):
    from biostation.card.secinfo import PaceInfo, encode_security_infos

    data = clone(cccd.data)
    info = PaceInfo(PaceInfo.oid_for(agreement, "GM", cipher, klen), version=2, parameter_id=param_id)
    data.files[0x011C].data = encode_security_infos([info])
    r = read_document(reader_with(VirtualCard(data)), can=cccd.can, trust=store_for(cccd), extended=False)
    assert info.describe() in r.access and r.passive.status == "verified" and r.active.ok


def test_unsupported_pace_falls_back_to_bac_with_the_mrz(cccd):
    from biostation.card.secinfo import PaceInfo, encode_security_infos

    data = clone(cccd.data)
    im = PaceInfo(PaceInfo.oid_for("ECDH", "IM", "AES", 16), version=2, parameter_id=13)
    data.files[0x011C].data = encode_security_infos([im])
    r = read_document(reader_with(VirtualCard(data)), mrz=cccd.mrz, trust=store_for(cccd))
    assert r.access.startswith("BAC (PACE not used: PACE mapping IM is not supported")
    assert r.passive.status == "verified"
    with pytest.raises(AccessDeniedError, match="BAC needs the MRZ"):
        read_document(reader_with(VirtualCard(clone(data))), can=cccd.can)
