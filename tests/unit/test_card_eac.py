"""Extended Access Control: CV certificates, terminal authentication (both sides), DG3 fingers.

Public vector: the BSI test-PKI CVCA certificate DETESTeID00004 (self-signed, ECDSA-SHA-256 on
brainpoolP256r1), as published in the PersoSim simulator's test suite
(de.persosim.simulator, CardVerifiableCertificateTest).
"""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives import serialization

from biostation.card import cvc, dg3, lds, tlv, trust
from biostation.card.apdu import ApduChannel, Command
from biostation.card.reader import CardFiles, read_document
from biostation.card.ta import SW_TA, Terminal, TerminalAuthChip, comp, id_picc_bac
from biostation.errors import AccessDeniedError, CardError, ImageError, TerminalAuthError, TLVError
from biostation.records import FingerPosition
from biostation_drivers.simulated.card_reader import SimulatedCardReader
from biostation_drivers.simulated.vcard.card import CardData, VirtualCard
from biostation_drivers.simulated.vcard.profiles import build_profile, synthetic_finger

BSI_CVCA = bytes.fromhex(
    "7F218201B67F4E82016E5F290100420E44455445535465494430303030347F4982011D060A04007F000702020202038120A9FB57"
    "DBA1EEA9BC3E660A909D838D726E3BF623D52620282013481D1F6E537782207D5A0975FC2C3057EEF67530417AFFE7FB8055C126"
    "DC5C6CE94A4B44F330B5D9832026DC5C6CE94A4B44F330B5D9BBD77CBF958416295CF7E1CE6BCCDC18FF8C07B68441048BD2AEB9"
    "CB7E57CB2C4B482FFC81B7AFB9DE27E1E3BD23C23A4453BD9ACE3262547EF835C3DAC4FD97F8461A14611DC9C27745132DED8E54"
    "5C1D54C72F0469978520A9FB57DBA1EEA9BC3E660A909D838D718C397AA3B561A6F7901E0E82974856A786410474FF63AB838C73"
    "C303AC003DFEE95CF8BF55F91E8FEBCB7395D942036E47CF1845EC786EC95BB453AAC288AD023B6067913CF9B63F908F49304E5C"
    "FC8B3050DD8701015F200E44455445535465494430303030347F4C12060904007F0007030102025305FC0F13FFFF5F2506010200"
    "0501015F24060105000501015F37408CAC3E842EB053EE10E9D57FB373FF4E9C36D1EDF966D6535978D498309B00D59C51D83965"
    "F4B1C75557FA6B6CA03D360A782B9BC172CE391623D6BB48B9B1AA")

TODAY = dt.datetime.now(dt.UTC).date()


@pytest.fixture(scope="module")
def prof():
    return build_profile("cccd", can_tries=None)


def store_for(profile) -> trust.TrustStore:
    der = profile.pki.csca_cert.public_bytes(serialization.Encoding.DER)
    return trust.TrustStore([trust.load_certificate(der, "csca")])


def clone(data: CardData) -> CardData:
    d = copy.copy(data)
    d.files = {k: copy.copy(v) for k, v in data.files.items()}
    d.state = copy.deepcopy(data.state)
    return d


class Counting:
    def __init__(self, card):
        self.card, self.ins = card, []

    def transmit(self, apdu: bytes) -> bytes:
        self.ins.append(apdu[1])
        return self.card.process(apdu)


def fresh(prof):
    card = VirtualCard(clone(prof.data))
    r = SimulatedCardReader.create(card)
    r.power_on()
    return card, r


# --- CV certificates --------------------------------------------------------------------------------

def test_bsi_cvca_vector_decodes_verifies_and_reencodes():
    c = cvc.decode_cvc(BSI_CVCA)
    assert (c.car, c.chr) == ("DETESTeID00004", "DETESTeID00004") and c.self_signed
    assert c.chat.oid == "0.4.0.127.0.7.3.1.2.2" and c.role == cvc.ROLE_CVCA
    assert (c.effective, c.expiration) == (dt.date(2012, 5, 11), dt.date(2015, 5, 11))
    assert c.public_key.oid == "0.4.0.127.0.7.2.2.2.2.3" and c.public_key.params == 13  # ECDSA-SHA-256, bpP256r1
    assert cvc.verify_certificate(c, c.public_key)
    assert c.encode() == BSI_CVCA  # domain parameters and point written back byte for byte
    bad = bytearray(BSI_CVCA)
    bad[-1] ^= 1
    assert not cvc.verify_certificate(cvc.decode_cvc(bytes(bad)), c.public_key)


@pytest.mark.parametrize("key_type", ["ec", "rsa"])
def test_hierarchy_chain_verifies(key_type):
    h = cvc.make_test_hierarchy("VN", key_type)
    root = cvc.decode_cvc(h.cvca.encode())
    dv = cvc.decode_cvc(h.dv.encode(), domain=root.public_key.params)
    is_ = cvc.decode_cvc(h.inspection.encode(), domain=root.public_key.params)
    assert cvc.verify_certificate(root, root.public_key) and cvc.verify_certificate(dv, root.public_key)
    assert cvc.verify_certificate(is_, dv.public_key) and not cvc.verify_certificate(is_, root.public_key)
    assert is_.chat.rights == cvc.READ_DG3 | cvc.READ_DG4 and is_.role == cvc.ROLE_TERMINAL
    assert dv.role == cvc.ROLE_DV_DOMESTIC and is_.car == dv.chr


def test_malformed_certificates_are_typed_errors():
    with pytest.raises(TLVError):
        cvc.decode_cvc(BSI_CVCA[:100])
    h = cvc.make_test_hierarchy()
    with pytest.raises(TLVError, match="domain parameters"):
        cvc.decode_cvc(h.dv.encode())  # a DV key has no curve of its own and none was given


# --- reading DG3 through terminal authentication --------------------------------------------------

def test_read_with_terminal_gets_both_index_fingers(prof):
    card, r = fresh(prof)
    doc = read_document(r, can=prof.can, terminal=prof.terminal())
    assert doc.terminal_auth == "passed" and doc.fingerprint_status == "read" and not doc.skipped
    assert card.access == "pace+ca+ta"
    assert [f.position for f in doc.fingerprints] == [FingerPosition.RIGHT_INDEX, FingerPosition.LEFT_INDEX]
    assert doc.require_fingerprints() == doc.fingerprints
    px = doc.fingerprints[0].pixels()
    assert px.shape == (320, 256) and np.abs(px.astype(int) - synthetic_finger(seed=2)).mean() < 8
    assert doc.passive.data_groups[3] == "valid"  # DG3 hashed in the SOD
    assert doc.summary()["fingerprints"]["fingers"][0]["format"] == "jp2"


def test_dg3_refused_without_terminal_authentication(prof):
    card, r = fresh(prof)
    doc = read_document(r, can=prof.can)
    assert doc.skipped["DG3"].startswith("needs terminal authentication") and doc.fingerprints == []
    with pytest.raises(TerminalAuthError, match="needs terminal authentication"):
        doc.require_fingerprints()
    # after PACE and CA the chip still refuses DG3 without TA
    card, r = fresh(prof)
    ch = ApduChannel(r)
    files = CardFiles(ch)
    from biostation.card.auth import chip_authentication
    from biostation.card.pace import Password, perform_pace
    from biostation.card.secinfo import parse_security_infos

    perform_pace(ch, Password.can(prof.can), parse_security_infos(files.read("EF.CardAccess")).pace[0])
    files.select_application()
    chip_authentication(ch, lds.decode_dg14(files.read("DG14")))
    with pytest.raises(AccessDeniedError) as ei:
        files.read("DG3")
    assert ei.value.sw == 0x6982


def test_certificate_without_the_dg3_right_reads_no_dg3(prof):
    h = prof.eac
    is4 = cvc.reissue(h, "inspection", chat=cvc.CHAT.inspection(cvc.ROLE_TERMINAL, cvc.READ_DG4))
    card, r = fresh(prof)
    doc = read_document(r, can=prof.can, terminal=Terminal([h.dv, is4], h.terminal_signer()), trust=store_for(prof))
    assert doc.terminal_auth == "passed"  # TA itself succeeds ...
    assert doc.fingerprint_status.startswith("not read: access denied") and "6982" in doc.skipped["DG3"]
    with pytest.raises(AccessDeniedError):
        doc.require_fingerprints()
    assert doc.passive.status == "verified"  # ... and the rest of the document is read and checked


def _failed_read(prof, terminal):
    card, _ = fresh(prof)
    t = Counting(card)
    doc = read_document(t, can=prof.can, terminal=terminal, trust=store_for(prof))
    assert doc.terminal_auth.startswith("FAILED") and doc.fingerprints == []
    assert doc.skipped["DG3"].startswith("terminal authentication failed")
    with pytest.raises(TerminalAuthError) as ei:
        doc.require_fingerprints()
    assert ei.value.sw is not None or "expired" in ei.value.reason
    assert doc.passive.status == "verified" and doc.active.ok  # the session survives a TA refusal
    assert t.ins.count(0x82) <= 1 and t.ins.count(0x84) <= 1  # one attempt: no retry storm
    return doc, card


def test_chat_of_another_terminal_type_is_refused(prof):
    h = prof.eac
    at = cvc.reissue(h, "inspection", chat=cvc.CHAT(cvc.ID_AT, b"\x00\x00\x00\x00\x03"))
    doc, card = _failed_read(prof, Terminal([h.dv, at], h.terminal_signer()))
    assert "PSO:Verify Certificate" in doc.terminal_auth and "6A80" in doc.terminal_auth


def test_chain_to_another_cvca_is_refused(prof):
    other = cvc.make_test_hierarchy("VN", seq=7)
    doc, _ = _failed_read(prof, Terminal(other.chain, other.terminal_signer()))
    assert "MSE:Set DST VNCVCA00007" in doc.terminal_auth and "6A88" in doc.terminal_auth
    assert "does not lead to its CVCA trust point" in doc.terminal_auth
    # the right CAR, but the DV signed by another key: the signature check fails
    forged = cvc.issue(cvc.KeyTerminalSigner(other.cvca_key, other.cvca.public_key.oid), prof.eac.cvca.chr,
                       other.dv.chr, other.dv.public_key, other.dv.chat, other.dv.effective, other.dv.expiration)
    doc, _ = _failed_read(prof, Terminal([forged, other.inspection], other.terminal_signer()))
    assert "6300" in doc.terminal_auth


def test_wrong_terminal_key_fails_external_authenticate(prof):
    h = prof.eac
    impostor = cvc.KeyTerminalSigner(cvc.make_test_hierarchy().is_key, h.inspection.public_key.oid)
    doc, _ = _failed_read(prof, Terminal(h.chain, impostor))
    assert "EXTERNAL AUTHENTICATE" in doc.terminal_auth and "6300" in doc.terminal_auth
    assert "signature does not verify" in doc.terminal_auth


def test_expired_is_certificate(prof):
    h = prof.eac
    old = cvc.reissue(h, "inspection", effective=TODAY - dt.timedelta(days=40),
                      expiration=TODAY - dt.timedelta(days=10))
    card, _ = fresh(prof)
    t = Counting(card)
    doc = read_document(t, can=prof.can, terminal=Terminal([h.dv, old], h.terminal_signer()))
    assert "expired" in doc.terminal_auth and 0x2A not in t.ins  # the terminal stops before sending
    # the chip's own check: its date moved past the IS expiry with a newer DV certificate
    dv_new = cvc.reissue(h, "dv", effective=TODAY + dt.timedelta(days=10))
    soon = cvc.reissue(h, "inspection", expiration=TODAY + dt.timedelta(days=5))
    card, r = fresh(prof)
    doc = read_document(r, can=prof.can, terminal=Terminal([dv_new, soon], h.terminal_signer()))
    assert "PSO:Verify Certificate VNIS00001" in doc.terminal_auth and "6A80" in doc.terminal_auth
    assert card.data.state["eac"]["current_date"] == (TODAY + dt.timedelta(days=10)).isoformat()  # kept


class Recording:
    def __init__(self, signer):
        self.signer, self.oid, self.signatures = signer, signer.oid, []

    def sign(self, data: bytes) -> bytes:
        self.signatures.append(self.signer.sign(data))
        return self.signatures[-1]


def test_replayed_signature_is_refused(prof):
    rec = Recording(prof.eac.terminal_signer())
    _, r = fresh(prof)
    assert read_document(r, can=prof.can, terminal=Terminal(prof.eac.chain, rec)).terminal_auth == "passed"

    class Replay:
        oid = rec.oid

        def sign(self, data: bytes) -> bytes:
            return rec.signatures[0]  # the signature of the earlier session

    doc, _ = _failed_read(prof, Terminal(prof.eac.chain, Replay()))
    assert "EXTERNAL AUTHENTICATE" in doc.terminal_auth


def test_card_without_dg3_is_reported(prof):
    p = build_profile("cccd", pki=prof.pki, eac=prof.eac, fingerprints=False)
    r = SimulatedCardReader.create(VirtualCard(p.data))
    r.power_on()
    doc = read_document(r, can=p.can, terminal=p.terminal())
    assert doc.fingerprint_status == "absent: the card carries no DG3" and doc.terminal_auth == "not performed"
    with pytest.raises(CardError, match="the card carries no DG3"):
        doc.require_fingerprints()


# --- the chip side alone ---------------------------------------------------------------------------

def _chip(h, current=TODAY - dt.timedelta(days=1), id_picc=b"ID", ca=b"\x04" + bytes(64)):
    return TerminalAuthChip([cvc.decode_cvc(h.cvca.encode())], current, id_picc=id_picc, ca_terminal_key=ca)


def _dst(ref: str) -> bytes:
    return tlv.encode(0x83, ref.encode())


def test_chip_one_challenge_one_signature_and_bac_identifier():
    h = cvc.make_test_hierarchy()
    ida = id_picc_bac("L898902C<369080619406236")
    chip = _chip(h, id_picc=ida)
    for c in h.chain:
        assert chip.set_dst(_dst(c.car)) == SW_TA["ok"] and chip.verify_certificate(c.pso_data()) == SW_TA["ok"]
    assert chip.set_at(_dst(h.inspection.chr)) == SW_TA["ok"]
    r = chip.get_challenge()
    sig = h.terminal_signer().sign(b"L898902C<3" + r + comp(b"\x04" + bytes(64)))
    assert chip.external_authenticate(sig) == SW_TA["ok"] and chip.rights == cvc.READ_DG3 | cvc.READ_DG4
    assert chip.external_authenticate(sig) == SW_TA["security"]  # one TA per session
    chip2 = _chip(h, id_picc=ida)
    for c in h.chain:
        chip2.set_dst(_dst(c.car))
        chip2.verify_certificate(c.pso_data())
    chip2.set_at(_dst(h.inspection.chr))
    chip2.get_challenge()
    assert chip2.external_authenticate(sig) == SW_TA["failed"]  # signed for another challenge
    assert chip2.external_authenticate(sig) == SW_TA["conditions"]  # and that challenge is spent


def _link(h, key, chr_, car_key, car, eff, exp):
    return cvc.issue(cvc.KeyTerminalSigner(car_key, h.cvca.public_key.oid), car, chr_,
                     cvc.CVPublicKey.from_key(key.public_key(), h.cvca.public_key.oid, True),
                     cvc.CHAT.inspection(cvc.ROLE_CVCA), eff, exp)


def test_chip_link_certificates_trust_points_and_date_rules():
    """Doc 9303-11 §7.1.4.3: link certificates add trust points (two at most), DV certificates
    move the date, terminal certificates only under a domestic DV."""
    h = cvc.make_test_hierarchy()
    chip = _chip(h)
    k2, k3 = cvc._new_key("ec"), cvc._new_key("ec")
    link2 = _link(h, k2, "VNCVCA00002", h.cvca_key, h.cvca.chr, TODAY, TODAY + dt.timedelta(days=900))
    chip.set_dst(_dst(h.cvca.chr))
    assert chip.verify_certificate(link2.pso_data()) == SW_TA["ok"]
    assert [t.chr for t in chip.trust_points] == ["VNCVCA00001", "VNCVCA00002"] and chip.current_date == TODAY
    link3 = _link(h, k3, "VNCVCA00003", k2, "VNCVCA00002", TODAY + dt.timedelta(days=1), TODAY - dt.timedelta(days=1))
    chip.set_dst(_dst("VNCVCA00002"))
    assert chip.verify_certificate(link3.pso_data()) == SW_TA["ok"]  # an expired link certificate is accepted
    assert [t.chr for t in chip.trust_points] == ["VNCVCA00002", "VNCVCA00003"]  # the oldest is dropped
    assert chip.set_dst(_dst("VNCVCA00001")) == SW_TA["no_ref"]
    # a foreign DV moves the date; a terminal under it does not
    sign2 = cvc.KeyTerminalSigner(k2, h.cvca.public_key.oid)
    day = TODAY + dt.timedelta(days=1)
    fdv_key = cvc._new_key("ec")
    fdv = cvc.issue(sign2, "VNCVCA00002", "XXDV00001",
                    cvc.CVPublicKey.from_key(fdv_key.public_key(), h.dv.public_key.oid),
                    cvc.CHAT.inspection(cvc.ROLE_DV_FOREIGN), day + dt.timedelta(days=2), day + dt.timedelta(days=30))
    chip.set_dst(_dst("VNCVCA00002"))
    assert chip.verify_certificate(fdv.pso_data()) == SW_TA["ok"] and chip.current_date == day + dt.timedelta(days=2)
    term = cvc.issue(cvc.KeyTerminalSigner(fdv_key, h.dv.public_key.oid), "XXDV00001", "XXIS00001",
                     h.inspection.public_key, cvc.CHAT.inspection(cvc.ROLE_TERMINAL), day + dt.timedelta(days=9),
                     day + dt.timedelta(days=20))
    chip.set_dst(_dst("XXDV00001"))
    assert chip.verify_certificate(term.pso_data()) == SW_TA["ok"] and chip.current_date == day + dt.timedelta(days=2)


def test_terminal_precheck_refuses_before_any_apdu():
    h = cvc.make_test_hierarchy()
    with pytest.raises(TerminalAuthError, match="not a terminal"):
        Terminal([h.dv], h.terminal_signer()).check(TODAY)
    with pytest.raises(TerminalAuthError, match="chain broken"):
        Terminal([cvc.make_test_hierarchy(seq=3).dv, h.inspection], h.terminal_signer()).check(TODAY)


# --- DG3 codec --------------------------------------------------------------------------------------

def test_dg3_roundtrip_raw_and_jp2_and_subtypes():
    img = synthetic_finger(200, 240, seed=5)
    d = dg3.encode_dg3([dg3.finger_from_pixels(img, 1, fmt="raw"), dg3.finger_from_pixels(img, 10)])
    out = dg3.decode_dg3(d)
    assert [f.position for f in out.fingers] == [FingerPosition.RIGHT_THUMB, FingerPosition.LEFT_LITTLE]
    assert (out.fingers[0].pixels() == img).all() and out.fingers[1].format == "jp2"
    assert [dg3.subtype_of(p) for p in (1, 2, 6, 7, 10)] == [0x05, 0x09, 0x06, 0x0A, 0x16]


def test_malformed_dg3_is_typed():
    img = synthetic_finger(64, 64)
    good = dg3.encode_dg3([dg3.finger_from_pixels(img, 2)])
    with pytest.raises(TLVError):
        dg3.decode_dg3(good[:40])
    fir_at = good.index(b"FIR\x00")
    bad = bytearray(good)
    bad[fir_at + 32 + 4] = 77  # finger position 77 does not exist
    with pytest.raises(TLVError, match="finger position 77"):
        dg3.decode_dg3(bytes(bad))
    broken = bytearray(good)
    img_at = fir_at + 32 + 14
    broken[img_at + 60:img_at + 200] = bytes(140)  # inside the JPEG 2000 codestream
    f = dg3.decode_dg3(bytes(broken)).fingers[0]
    with pytest.raises(ImageError, match="right_index"):
        f.pixels()
    with pytest.raises(ImageError):
        dg3.finger_from_pixels(np.zeros((10, 10, 3), np.uint8), 2)


def test_dg3_records_are_those_of_the_records_codec():
    """One ISO/IEC 19794-4 codec in the project: what DG3 holds is what biostation.records reads,
    a 2011-edition record in DG3 is read too, and a 2005 record with quality 254 (earlier
    versions wrote it for "not computed") still reads."""
    from biostation.records import iso19794_4

    img = synthetic_finger(64, 80, seed=2)
    d = dg3.encode_dg3([dg3.finger_from_pixels(img, 2, fmt="raw")])
    fir = d[d.index(b"FIR\x00"):]
    rec = iso19794_4.decode(fir)
    assert rec.edition == 2005 and rec.views[0].position == 2 and (rec.decode_view(0) == img).all()

    bit = tlv.encode(0x7F60, dg3._bht(dg3.subtype_of(2), dg3.FORMAT_FINGER_IMAGE)
                     + tlv.encode(0x5F2E, iso19794_4.encode(rec, iso19794_4.EDITION_2011)))
    f2011 = dg3.decode_dg3(tlv.encode(0x63, tlv.encode(0x7F61, [tlv.encode(0x02, b"\x01"), bit]))).fingers[0]
    assert f2011.position == FingerPosition.RIGHT_INDEX and (f2011.pixels() == img).all()

    legacy = bytearray(d)
    legacy[d.index(b"FIR\x00") + 32 + 7] = 254
    assert dg3.decode_dg3(bytes(legacy)).fingers[0].quality == 254


def test_reader_reports_malformed_dg3(prof):
    data = clone(prof.data)
    data.files[0x0103].data = dg3.encode_dg3([dg3.finger_from_pixels(synthetic_finger(64, 64), 2)])[:-5] + b"\x00" * 5
    raw = bytearray(data.files[0x0103].data)
    at = raw.index(b"FIR\x00") + 8
    raw[at:at + 6] = (10 ** 6).to_bytes(6, "big")  # record length beyond the data
    data.files[0x0103].data = bytes(raw)
    r = SimulatedCardReader.create(VirtualCard(data))
    r.power_on()
    doc = read_document(r, can=prof.can, terminal=prof.terminal())
    assert doc.terminal_auth == "passed" and doc.fingerprint_status.startswith("malformed")
    with pytest.raises(TLVError):
        doc.require_fingerprints()
    assert doc.passive.data_groups[3] == "INVALID" or doc.passive.data_groups[3] != "valid"


def test_pso_needs_chip_authentication_first(prof):
    card, r = fresh(prof)
    ch = ApduChannel(r)
    files = CardFiles(ch)
    from biostation.card.pace import Password, perform_pace
    from biostation.card.secinfo import parse_security_infos

    perform_pace(ch, Password.can(prof.can), parse_security_infos(files.read("EF.CardAccess")).pace[0])
    resp = ch.transmit(Command(0x00, 0x22, 0x81, 0xB6, _dst(prof.eac.cvca.chr)))
    assert resp.sw == 0x6985


def test_dg3_carries_19794_2_templates():
    from biostation.templates import codecs
    from biostation.templates.model import Template, minutiae_array

    t = Template(256, 320, 500.0, minutiae_array([(40, 50, 1.0, 1, 80), (120, 200, 2.5, 2, 60)]), finger_position=2)
    rec = codecs.encode(t, "iso19794-2")
    d = dg3.encode_dg3([dg3.finger_from_pixels(synthetic_finger(), 2)],
                       [dg3.FingerTemplate(FingerPosition.RIGHT_INDEX, rec)])
    out = dg3.decode_dg3(d)
    assert len(out.fingers) == 1 and out.templates[0].position == FingerPosition.RIGHT_INDEX
    view = out.templates[0].decode().views[0]
    assert len(view.minutiae) == 2 and (view.width, view.height) == (256, 320)
    with pytest.raises(TLVError, match="19794-2 template does not decode"):
        dg3.decode_dg3(dg3.encode_dg3([], [dg3.FingerTemplate(FingerPosition.RIGHT_INDEX, rec[:30])]))


def test_rsa_terminal_authentication_end_to_end(prof):
    h = cvc.make_test_hierarchy("VN", "rsa")
    p = build_profile("cccd", pki=prof.pki, eac=h, can_tries=None)
    r = SimulatedCardReader.create(VirtualCard(p.data))
    r.power_on()
    doc = read_document(r, can=p.can, terminal=p.terminal())
    assert doc.terminal_auth == "passed" and len(doc.fingerprints) == 2
    assert h.inspection.public_key.oid == "0.4.0.127.0.7.2.2.2.1.4"  # id-TA-RSA-PSS-SHA-256


def test_bac_chip_authentication_then_terminal_authentication(prof):
    """Without PACE the chip identifier is the document number with its check digit."""
    data = clone(prof.data)
    del data.files[0x011C]  # no EF.CardAccess: the reader falls back to BAC
    r = SimulatedCardReader.create(VirtualCard(data))
    r.power_on()
    doc = read_document(r, mrz=prof.mrz, terminal=prof.terminal(), trust=store_for(prof))
    assert doc.access == "BAC" and doc.chip_auth == "passed" and doc.terminal_auth == "passed"
    assert doc.fingerprint_status == "read" and doc.passive.data_groups[3] == "valid"


def test_image_size_must_match_the_record():
    f = dg3.finger_from_pixels(synthetic_finger(64, 80), 2)
    f.width = 30000  # a record that lies about the image: refused before decoding
    with pytest.raises(ImageError, match="the record says 30000x80"):
        f.pixels()


def test_mutated_certificates_and_dg3_raise_only_typed_errors():
    import random

    rng = random.Random(3)
    h = cvc.make_test_hierarchy()
    sources = [h.cvca.encode(), dg3.encode_dg3([dg3.finger_from_pixels(synthetic_finger(64, 64), 2),
                                                dg3.finger_from_pixels(synthetic_finger(64, 64), 7, fmt="raw")])]
    for trial in range(600):
        b = bytearray(sources[trial % 2])
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(b))
            if rng.random() < 0.7:
                b[i] = rng.randrange(256)
            else:
                del b[i:i + rng.randint(1, 12)]
        try:
            if trial % 2 == 0:
                c = cvc.decode_cvc(bytes(b))
                cvc.verify_certificate(c, c.public_key)
            else:
                for f in dg3.decode_dg3(bytes(b)).fingers:
                    try:
                        f.pixels()
                    except ImageError:
                        pass
        except TLVError:
            pass


def test_simulated_reader_card_hands_out_its_terminal(tmp_path):
    from biostation.card.ta import load_terminal
    from biostation.card.trust import TrustStore
    from biostation_drivers.simulated.card_reader import ProfileCard

    card = ProfileCard("cccd", tmp_path / "sim")
    info = card.info
    r = SimulatedCardReader.create(card)
    r.power_on()
    doc = read_document(r, can=info["can"], trust=TrustStore.load(Path(info["csca"])),
                        terminal=load_terminal(Path(info["terminal"])))
    assert doc.terminal_auth == "passed" and len(doc.fingerprints) == 2 and doc.passive.status == "verified"
