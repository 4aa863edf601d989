"""LDS codecs, EF.SOD building and passive authentication (BSI TR-03105-5 sample in ../shared)."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest

from biostation.card import lds, mrz, pki, sod, tlv, trust
from biostation.errors import TLVError, VerificationError


@pytest.fixture
def pa_sample(shared):
    d = shared / "specs" / "icao-pa-sample"
    return {name: (d / f).read_bytes() for name, f in (
        ("com", "EF_COM.bin"), ("sod", "EF_SOD.bin"), (1, "Datagroup1.bin"), (14, "Datagroup14.bin"),
        (15, "Datagroup15.bin"))}


def test_pa_sample_file_is_the_documented_one(pa_sample):
    assert hashlib.sha256(pa_sample["sod"]).hexdigest() == \
        "68f32f11f8541003f80a2fcf95eb288ce01d4e10834fbf9c2c6bc2a27c399b36"


def test_pa_sample_lds_files_decode(pa_sample):
    com = lds.decode_com(pa_sample["com"])
    assert com.lds_version == "0107" and com.data_groups == [1, 2, 3, 4, 14]
    dg1 = lds.decode_dg1(pa_sample[1])
    assert dg1.mrz.kind == "TD3" and dg1.mrz.valid
    assert dg1.mrz.surname == "MUSTERMANN" and dg1.mrz.given_names == "ERIKA"
    assert dg1.mrz.document_number == "C11T002JM"
    infos = lds.decode_dg14(pa_sample[14]).security_infos
    assert infos.chip_auth and infos.chip_auth_keys and infos.terminal_auth
    key = lds.decode_dg15(pa_sample[15]).public_key()
    assert key.key_size >= 1024


def test_pa_sample_passive_authentication(pa_sample):
    s = sod.decode_sod(pa_sample["sod"])
    assert s.hash_algorithm == "sha256" and sorted(s.dg_hashes) == [1, 2, 3, 4, 14]
    assert s.dg_hashes[1].hex().upper() == "4170CA879FCE6A22FFEF1567FF88079F415C66EAD250AB5F23781AC2CDBF42B6"
    r = sod.passive_authentication(s, {1: pa_sample[1], 14: pa_sample[14]})
    assert r.signature_valid and r.message_digest_valid  # RSASSA-PSS SHA-256 over the SET OF signedAttrs
    assert r.data_groups == {1: "valid", 2: "not read", 3: "not read", 4: "not read", 14: "valid"}
    assert r.ds_expired and "HJP PB DS" in r.ds_subject and r.ds_serial == "142FD5CF927"
    # the CSCA of the set is not shipped: the result is "unverified", not hidden and not "verified"
    assert r.chain_valid is None and r.status == "unverified"


def test_pa_sample_dg15_is_not_covered(pa_sample):
    r = sod.passive_authentication(pa_sample["sod"], {1: pa_sample[1], 14: pa_sample[14], 15: pa_sample[15]})
    assert r.data_groups[15] == "not covered" and r.status == "failed"
    assert any("DG15" in p for p in r.problems)
    with pytest.raises(VerificationError, match="DG15"):
        r.raise_for_status(allow_unverified=True)


def test_pa_sample_tampered_dg_and_unknown_csca(pa_sample, tmp_path):
    bad = bytearray(pa_sample[1])
    bad[-1] ^= 1
    r = sod.passive_authentication(pa_sample["sod"], {1: bytes(bad)})
    assert r.data_groups[1] == "MISMATCH" and r.status == "failed"
    other = pki.make_test_pki("UT")
    other.write(tmp_path)
    r = sod.passive_authentication(pa_sample["sod"], {1: pa_sample[1]}, trust.TrustStore.load(tmp_path))
    assert r.status == "unverified" and any("unknown CSCA" in p for p in r.problems)


@pytest.mark.parametrize("key_type, pss", [("ec", False), ("rsa", True)])
def test_built_sod_verifies_against_its_csca(tmp_path, key_type, pss):
    p = pki.make_test_pki(key_type=key_type)
    dgs = {1: lds.encode_dg1(mrz.build_td3("P", "UTO", "ERIKSSON", "ANNA MARIA", "L898902C", "UTO", "690806", "F",
                                           "940623")), 2: b"\x75\x01\x00"}
    raw = sod.build_sod(dgs, p.signer(pss=pss), lds_version=("0108", "040000"))
    paths = p.write(tmp_path)
    store = trust.TrustStore.load(paths["csca"])
    r = sod.passive_authentication(raw, dgs, store)
    assert r.status == "verified", r.problems
    # a different CSCA with the same name is caught by the signature, not trusted by name
    impostor = pki.make_test_pki(key_type=key_type)
    r = sod.passive_authentication(raw, dgs, trust.TrustStore([trust.load_certificate(
        impostor.csca_cert.public_bytes(__import__("cryptography.hazmat.primitives.serialization",
                                                   fromlist=["Encoding"]).Encoding.DER), "x")]))
    assert r.status == "failed" and r.chain_valid is False
    # an expired DS stays verifiable (documents outlive their signer's key usage period)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=4 * 365)
    r = sod.passive_authentication(raw, dgs, store, now=later)
    assert r.ds_expired and r.status == "verified"


def test_malformed_sod_names_file_and_offset(pa_sample):
    raw = bytearray(pa_sample["sod"])
    top = tlv.decode_one(bytes(raw), "EF.SOD", expect=0x77)
    target = [t for t in tlv.walk(top.children) if t.constructed][6]  # a SEQUENCE deep inside
    at = target.offset + len(tlv.encode_tag(target.tag))
    raw[at] = 0x85  # its length now claims 5 length bytes
    with pytest.raises(TLVError) as ei:
        sod.decode_sod(bytes(raw))
    assert ei.value.source == "EF.SOD" and ei.value.offset == at
    with pytest.raises(TLVError, match="EF.SOD"):
        sod.decode_sod(pa_sample["sod"][:500])


def test_malformed_certificate_in_trust_folder_is_reported(tmp_path):
    p = pki.make_test_pki()
    p.write(tmp_path)
    (tmp_path / "broken.der").write_bytes(b"\x30\x82\x01\x00\x30\x03\x02\x01")
    store = trust.TrustStore.load(tmp_path)
    assert len(store) == 2 and len(store.problems) == 1
    assert "broken.der" in store.problems[0] and "byte" in store.problems[0]
    with pytest.raises(TLVError) as ei:
        trust.TrustStore.load(tmp_path / "broken.der")
    assert ei.value.source == "broken.der"


def test_dg2_round_trip_and_image_kind():
    jpeg = b"\xff\xd8\xff\xe0" + bytes(200)
    jp2 = b"\x00\x00\x00\x0cjP  \r\n\x87\n" + bytes(100)
    dg2 = lds.encode_dg2([lds.FaceImage(jpeg, lds.IMAGE_JPEG, 480, 640), lds.FaceImage(jp2, lds.IMAGE_JPEG2000, 240, 320)])
    faces = lds.decode_dg2(dg2).faces
    assert [(f.extension, f.width, f.height, f.image) for f in faces] == [("jpg", 480, 640, jpeg),
                                                                          ("jp2", 240, 320, jp2)]
    with pytest.raises(TLVError) as ei:
        lds.decode_dg2(dg2[:60] + bytes(len(dg2) - 60))
    assert ei.value.source == "DG2"


def test_dg11_dg12_dg13_round_trip():
    f11 = {"full_name": "NGUYEN<<VAN A", "place_of_birth": "Hà Nội", "address": "1 Tràng Tiền"}
    assert lds.decode_dg11(lds.encode_dg11(f11)).fields == f11
    f12 = {"issuing_authority": "Cục Cảnh sát QLHC về TTXH", "date_of_issue": "20240101"}
    assert lds.decode_dg12(lds.encode_dg12(f12)).fields == f12
    f13 = {"id_number": "001099012345", "full_name": "Nguyễn Văn A", "date_of_birth": "01/01/1999", "sex": "Nam",
           "parents": {"father": "Nguyễn Văn B", "mother": "Trần Thị C"}, "spouse": "", "date_of_expiry": "01/01/2039"}
    raw = lds.encode_dg13(f13)
    assert raw[:1] == b"\x6d" and bytes.fromhex("0606" + "28D316010008") in raw
    assert lds.decode_dg13(raw).fields == f13


def test_dg13_fields_are_read_by_number_not_position():
    def field(n, tag, v):
        return tlv.encode(0x30, tlv.encode(0x02, bytes([n])) + tlv.encode(tag, v.encode()))
    body = tlv.encode(0x02, b"\x01") + bytes.fromhex("060628D316010008") + tlv.encode(
        0x31, field(12, 0x0C, "Không thời hạn") + field(1, 0x13, "079203001122") + field(99, 0x0C, "x"))
    d = lds.decode_dg13(tlv.encode(0x6D, tlv.encode(0x30, body)))
    assert d.fields == {"date_of_expiry": "Không thời hạn", "id_number": "079203001122", "field_99": "x"}


def test_efcom_round_trip_and_errors():
    raw = lds.encode_com(lds.EFCom("0107", "040000", [1, 2, 13, 14, 15]))
    assert lds.decode_com(raw).data_groups == [1, 2, 13, 14, 15]
    with pytest.raises(TLVError) as ei:
        lds.decode_com(raw[:-1] + b"\x99")
    assert ei.value.source == "EF.COM" and ei.value.offset == len(raw) - 1
