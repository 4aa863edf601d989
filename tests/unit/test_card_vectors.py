"""Every worked example of ``../shared/specs/icao9303-vectors.md`` (ICAO Doc 9303-11 Appendix D and G).

BAC (D.3), secure messaging (D.4), PACE-ECDH-GM on brainpoolP256r1 (G.1) and PACE-DH-GM on the
RFC 5114 group (G.2). The BAC, SM and G.1 exchanges run through the real code paths against a
scripted transport that checks every command APDU byte for byte. The G.2 values that the
vectors file abbreviates are spelled out below from Doc 9303-11 Appendix G.2 (the same figures
are printed in zienit/icao-examples ``PACE_DH_GMTest.java``).
"""

from __future__ import annotations

import pytest

from biostation.card import bac, crypto, mrz, pace
from biostation.card.apdu import ApduChannel, Command, Response
from biostation.card.secinfo import PaceInfo, parse_security_infos
from biostation.card.sm import SecureMessaging
from biostation.errors import SecureMessagingError

H = bytes.fromhex


def parity_free(b: bytes) -> bytes:
    return bytes(x & 0xFE for x in b)


class Script:
    def __init__(self, steps):
        self.steps = list(steps)

    def transmit(self, apdu: bytes) -> bytes:
        want, resp = self.steps.pop(0)
        if want is not None:
            assert apdu.hex().upper() == want.upper()
        return H(resp)


# --- Appendix D: BAC and secure messaging --------------------------------------------------------

def test_d1_mrz_information_and_check_digits():
    line2 = "L898902C<3UTO6908061F9406236ZE184226B<<<<<14"
    assert mrz.check_digit("L898902C<") == "3"
    assert mrz.check_digit("690806") == "1"
    assert mrz.check_digit("940623") == "6"
    assert mrz.bac_seed_info("L898902C", "690806", "940623") == "L898902C<369080619406236"
    td3 = mrz.parse("P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\n" + line2)
    assert td3.valid and td3.seed_info() == "L898902C<369080619406236"
    assert td3.surname == "ERIKSSON" and td3.given_names == "ANNA MARIA"


def test_d2_bac_keys():
    k_enc, k_mac = bac.bac_keys("L898902C<369080619406236")
    assert k_enc == H("AB94FDECF2674FDFB9B391F85D7F76F2")
    assert k_mac == H("7962D9ECE03D1ACD4C76089DCE131543")
    assert parity_free(k_enc) == parity_free(H("AB94FCEDF2664EDFB9B291F85D7F77F2"))


def test_d3_bac_exchange_and_session_keys():
    t = Script([
        ("0084000008", "4608F919887022129000"),
        ("0082000028" + "72C29C2371CC9BDB65B779B8E8D37B29ECC154AA56A8799FAE2F498F76ED92F2" + "5F1448EEA8AD90A7" + "28",
         "46B9342A41396CD7386BF5803104D7CEDC122B9132139BAF2EEDC94EE178534F2F2D235D074D7449" + "9000"),
    ])
    ch = ApduChannel(t)
    sm = bac.perform_bac(ch, "L898902C<369080619406236", rnd_ifd=H("781723860C06C226"),
                         k_ifd=H("0B795240CB7049B01C19B33E32804F0B"))
    assert parity_free(sm.keys.enc) == parity_free(H("979EC13B1CBFE9DCD01AB0FED307EAE5"))
    assert parity_free(sm.keys.mac) == parity_free(H("F1CB1F1FB5ADF208806B89DC579DC1F8"))
    assert sm.ssc == 0x887022120C06C226
    assert ch.sm is sm


def test_d4_secure_messaging_3des_full_sequence():
    sm = SecureMessaging(H("979EC13B1CBFE9DCD01AB0FED307EAE5"), H("F1CB1F1FB5ADF208806B89DC579DC1F8"),
                         0x887022120C06C226, "3DES")
    t = Script([
        ("0CA4020C158709016375432908C044F68E08BF8B92D635FF24F800", "990290008E08FA855A5D4C50A8ED9000"),
        ("0CB000000D9701048E08ED6705417E96BA5500", "8709019FF0EC34F9922651990290008E08AD55CC17140B2DED9000"),
        ("0CB000040D9701128E082EA28A70F3C7B53500",
         "871901FB9235F4E4037F2327DCC8964F1F9B8C30F42C8E2FFF224A990290008E08C8B2787EAEA07D749000"),
    ])
    ch = ApduChannel(t)
    ch.sm = sm
    assert ch.send(Command(0x00, 0xA4, 0x02, 0x0C, H("011E"))) == b""
    assert ch.send(Command(0x00, 0xB0, 0, 0, le=4)) == H("60145F01")
    rest = ch.send(Command(0x00, 0xB0, 0, 4, le=0x12))
    assert H("60145F01") + rest == H("60145F0104303130365F36063034303030305C026175")
    assert sm.ssc & 0xFFFFFFFF == 0x0C06C22C


def test_d4_bad_mac_is_refused_and_drops_the_session():
    sm = SecureMessaging(H("979EC13B1CBFE9DCD01AB0FED307EAE5"), H("F1CB1F1FB5ADF208806B89DC579DC1F8"),
                         0x887022120C06C226, "3DES")
    t = Script([(None, "990290008E08FA855A5D4C50A8EE9000")])  # last MAC byte flipped
    ch = ApduChannel(t)
    ch.sm = sm
    with pytest.raises(SecureMessagingError, match="MAC"):
        ch.send(Command(0x00, 0xA4, 0x02, 0x0C, H("011E")))
    assert ch.sm is None
    # a bare 9000 with no MAC is refused too
    sm2 = SecureMessaging(H("979EC13B1CBFE9DCD01AB0FED307EAE5"), H("F1CB1F1FB5ADF208806B89DC579DC1F8"), 0)
    with pytest.raises(SecureMessagingError):
        sm2.unprotect(Response(b"", 0x9000))


def test_sm_chip_side_round_trip_both_ciphers():
    for cipher, klen in (("3DES", 16), ("AES", 16), ("AES", 24), ("AES", 32)):
        term = SecureMessaging(bytes(range(klen)), bytes(range(1, klen + 1)), 5, cipher)
        chip = SecureMessaging(bytes(range(klen)), bytes(range(1, klen + 1)), 5, cipher)
        cmd = Command(0x00, 0xD6, 0, 3, b"hello card", le=None)
        got = chip.unwrap_command(term.protect(cmd))
        assert (got.ins, got.p2, got.data, got.le) == (0xD6, 3, b"hello card", None)
        resp = term.unprotect(chip.wrap_response(Response(b"x" * 40, 0x9000)))
        assert resp.data == b"x" * 40 and resp.sw == 0x9000


# --- Appendix G.1: PACE ECDH-GM, brainpoolP256r1, AES-128 ----------------------------------------

G1 = {
    "card_access": "31143012060A04007F0007020204020202010202010D",
    "z": "95A3A016522EE98D01E76CB6B98B42C3",
    "s": "3F00C4D39D153F2B2A214A078D899B22",
    "pcd_map_sk": "7F4EF07B9EA82FD78AD689B38D0BC78CF21F249D953BC46F4C6E19259C010F99",
    "pcd_map_pk": "047ACF3EFC982EC45565A4B155129EFBC74650DCBFA6362D896FC70262E0C2CC5E544552DCB6725218799115B55C9BAA6D9F6BC3A9618E70C25AF71777A9C4922D",
    "picc_map_pk": "04824FBA91C9CBE26BEF53A0EBE7342A3BF178CEA9F45DE0B70AA601651FBA3F5730D8C879AAA9C9F73991E61B58F4D52EB87A0A0C709A49DC63719363CCD13C54",
    "H": "0460332EF2450B5D247EF6D3868397D398852ED6E8CAF6FFEEF6BF85CA57057FD50840CA7415BAF3E43BD414D35AA4608B93A2CAF3A4E3EA4E82C9C13D03EB7181",
    "G~": "048CED63C91426D4F0EB1435E7CB1D74A46723A0AF21C89634F65A9AE87A9265E28C879506743F8611AC33645C5B985C80B5F09A0B83407C1B6A4D857AE76FE522",
    "pcd_eph_sk": "A73FB703AC1436A18E0CFA5ABB3F7BEC7A070E7A6788486BEE230C4A22762595",
    "pcd_eph_pk": "042DB7A64C0355044EC9DF190514C625CBA2CEA48754887122F3A5EF0D5EDD301C3556F3B3B186DF10B857B58F6A7EB80F20BA5DC7BE1D43D9BF850149FBB36462",
    "picc_eph_pk": "049E880F842905B8B3181F7AF7CAA9F0EFB743847F44A306D2D28C1D9EC65DF6DB7764B22277A2EDDC3C265A9F018F9CB852E111B768B326904B59A0193776F094",
    "K": "28768D20701247DAE81804C9E780EDE582A9996DB4A315020B2733197DB84925",
    "ks_enc": "F5F0E35C0D7161EE6724EE513A0D9A7F",
    "ks_mac": "FE251C7858B356B24514B3BD5F4297D1",
    "t_ifd": "C2B0BD78D94BA866",
    "t_ic": "3ABB9674BCE93C08",
}
G_PASSWORD = "T22000129364081251010318"


def test_g1_primitives():
    info = parse_security_infos(H(G1["card_access"])).pace[0]
    assert (info.agreement, info.mapping, info.cipher, info.key_length, info.parameter_id) == \
        ("ECDH", "GM", "AES", 16, 13)
    pw = pace.Password.mrz(G_PASSWORD)
    assert pw.key_seed() == H("7E2D2A41C74EA0B38CD36F863939BFA8E9032AAD")
    kpi = pace.derive_kpi(pw, info)
    assert kpi == H("89DED1B26624EC1E634C1989302849DD")
    assert pace.decrypt_nonce(kpi, H(G1["z"]), "AES") == H(G1["s"])
    c = pace.domain(13)
    sk = int(G1["pcd_map_sk"], 16)
    assert c.encode(c.mul(sk, c.g)) == H(G1["pcd_map_pk"])
    assert c.encode(c.shared(sk, H(G1["picc_map_pk"]), "map")) == H(G1["H"])
    mapped = c.map_generator(int(G1["s"], 16), sk, H(G1["picc_map_pk"]))
    assert c.encode(mapped.g) == H(G1["G~"])
    eph = int(G1["pcd_eph_sk"], 16)
    assert mapped.encode(mapped.mul(eph, mapped.g)) == H(G1["pcd_eph_pk"])
    k = mapped.secret_bytes(eph, H(G1["picc_eph_pk"]))
    assert k == H(G1["K"])
    enc, mac = pace.session_keys(k, info)
    assert (enc, mac) == (H(G1["ks_enc"]), H(G1["ks_mac"]))
    assert pace.auth_token(mac, info, c, H(G1["picc_eph_pk"])) == H(G1["t_ifd"])
    assert pace.auth_token(mac, info, c, H(G1["pcd_eph_pk"])) == H(G1["t_ic"])


def test_g1_full_pace_exchange_apdu_by_apdu():
    info = parse_security_infos(H(G1["card_access"])).pace[0]
    keys = iter([int(G1["pcd_map_sk"], 16), int(G1["pcd_eph_sk"], 16)])
    t = Script([
        ("0022C1A40F800A04007F00070202040202830101", "9000"),
        ("10860000027C0000", "7C128010" + G1["z"] + "9000"),
        ("10860000457C438141" + G1["pcd_map_pk"] + "00", "7C438241" + G1["picc_map_pk"] + "9000"),
        ("10860000457C438341" + G1["pcd_eph_pk"] + "00", "7C438441" + G1["picc_eph_pk"] + "9000"),
        ("008600000C7C0A8508" + G1["t_ifd"] + "00", "7C0A8608" + G1["t_ic"] + "9000"),
    ])
    ch = ApduChannel(t)
    sm = pace.perform_pace(ch, pace.Password.mrz(G_PASSWORD), info, rng=lambda order: next(keys))
    assert ch.sm is sm and sm.ssc == 0 and sm.block == 16
    assert (sm.keys.enc, sm.keys.mac) == (H(G1["ks_enc"]), H(G1["ks_mac"]))


def test_g1_chip_side_reproduces_the_vectors():
    info = parse_security_infos(H(G1["card_access"])).pace[0]
    # the chip's private keys are not in the appendix; check the chip side against the terminal
    chip = pace.PaceChip(info, pace.Password.mrz(G_PASSWORD), nonce=H(G1["s"]))
    assert chip.encrypted_nonce() == H(G1["z"])
    term_keys = iter([int(G1["pcd_map_sk"], 16), int(G1["pcd_eph_sk"], 16)])

    class ChipTransport:
        def transmit(self, apdu: bytes) -> bytes:
            from biostation.card import tlv
            cmd = Command.parse(apdu)
            if cmd.ins == 0x22:
                return H("9000")
            inner = tlv.decode_one(cmd.data, expect=0x7C).children
            if not inner:
                return tlv.encode(0x7C, tlv.encode(0x80, chip.encrypted_nonce())) + H("9000")
            d = inner[0]
            if d.tag == 0x81:
                return tlv.encode(0x7C, tlv.encode(0x82, chip.map_nonce(d.value))) + H("9000")
            if d.tag == 0x83:
                return tlv.encode(0x7C, tlv.encode(0x84, chip.key_agreement(d.value))) + H("9000")
            return tlv.encode(0x7C, tlv.encode(0x86, chip.authenticate(d.value))) + H("9000")

    sm = pace.perform_pace(ApduChannel(ChipTransport()), pace.Password.mrz(G_PASSWORD), info,
                           rng=lambda order: next(term_keys))
    assert sm.keys.enc == chip.sm.keys.enc


# --- Appendix G.2: PACE DH-GM, RFC 5114 1024/160, AES-128 -----------------------------------------

G2 = {
    "z": "854D8DF5827FA6852D1A4FA701CDDDCA",
    "s": "FA5B7E3E49753A0DB9178B7B9BD898C8",
    "pcd_map_sk": "5265030F751F4AD18B08AC565FC7AC952E41618D",
    "pcd_map_pk": "23FB3749EA030D2A25B278D2A562047ADE3F01B74F17A15402CB7352CA7D2B3EB71C343DB13D1DEBCE9A3666DBCFC920"
                  "B49174A602CB47965CAA73DC702489A44D41DB914DE9613DC5E98C94160551C0DF86274B9359BC0490D01B03AD54022D"
                  "CB4F57FAD6322497D7A1E28D46710F461AFE710FBBBC5F8BA166F4311975EC6C",
    "picc_map_pk": "78879F57225AA8080D52ED0FC890A4B25336F699AA89A2D3A189654AF70729E623EA5738B26381E4DA19E004706FACE7"
                   "B235C2DBF2F38748312F3C98C2DD4882A41947B324AA1259AC22579DB93F7085655AF30889DBB845D9E6783FE42C9F24"
                   "49400306254C8AE8EE9DD812A804C0B66E8CAFC14F84D8258950A91B44126EE6",
    "h": "5BABEBEF5B74E5BA94B5C063FDA15F1F1CDE94873EE0A5D3A2FCAB49F258D07F544F13CB66658C3AFEE9E727389BE3F6"
         "CBBBD32128A8C21DD6EEA3CF7091CDDFB08B8D007D40318DCCA4FFBF51208790FB4BD111E5A968ED6B6F08B26CA87C41"
         "0B3CE0C310CE104EABD16629AA48620C1279270CB0750C0D37C57FFFE302AE7F",
    "g~": "7C9CBFE98F9FBDDA8D143506FA7D9306F4CB17E3C71707AFF5E1C1A12370249684D64EE37AF44B8DBD9D45BF6023919C"
          "BAA027AB97ACC771666C8E98FF483301BFA4872DEDE9034EDFACB70814166B7F360676829B826BEA57291B5AD69FBC84"
          "EF1E779032A305803F74341793E869742D401325B37EE8565FFCDEE618342DC5",
    "pcd_eph_sk": "89CCD99B0E8D3B1F11E1296DCA68EC53411CF2CA",
    "pcd_eph_pk": "907D89E2D425A178AA81AF4A7774EC8E388C115CAE67031E85EECE520BD911551B9AE4D04369F29A02626C86FBC674"
                  "7CC7BC352645B6161A2A42D44EDA80A08FA8D61B76D3A154AD8A5A51786B0BC07147057871A922212C5F67F431731722"
                  "36B7747D1671E6D692A3C7D40A0C3C5CE397545D015C175EB5130551EDBC2EE5D4",
    "picc_eph_pk": "075693D9AE941877573E634B6E644F8E60AF17A0076B8B123D9201074D36152BD8B3A213F53820C42ADC79AB5D0AEEC3"
                   "AEFB91394DA476BD97B9B14D0A65C1FC71A0E019CB08AF55E1F729005FBA7E3FA5DC41899238A250767A6D46DB974064"
                   "386CD456743585F8E5D90CC8B4004B1F6D866C79CE0584E49687FF61BC29AEA1",
    "K": "6BABC7B3A72BCD7EA385E4C62DB2625BD8613B24149E146A629311C4CA6698E38B834B6A9E9CD7184BA8834AFF5043D4"
         "36950C4C1E7832367C10CB8C314D40E5990B0DF7013E64B4549E2270923D06F08CFF6BD3E977DDE6ABE4C31D55C0FA2E"
         "465E553E77BDF75E3193D3834FC26E8EB1EE2FA1E4FC97C18C3F6CFFFE2607FD",
    "ks_enc": "2F7F46ADCC9E7E521B45D192FAFA9126",
    "ks_mac": "805A1D27D45A5116F73C54469462B7D8",
    "t_ifd": "B46DD9BD4D98381F",
    "t_ic": "917F37B5C0E6D8D1",
}


def test_g2_dh_generic_mapping():
    info = PaceInfo(PaceInfo.oid_for("DH", "GM", "AES", 16), version=2, parameter_id=0)
    assert info.oid == "0.4.0.127.0.7.2.2.4.1.2"
    kpi = pace.derive_kpi(pace.Password.mrz(G_PASSWORD), info)
    assert pace.decrypt_nonce(kpi, H(G2["z"]), "AES") == H(G2["s"])
    grp = pace.domain(0)
    sk = int(G2["pcd_map_sk"], 16)
    assert pow(grp.g, sk, grp.p).to_bytes(128, "big") == H(G2["pcd_map_pk"])
    assert pow(int(G2["picc_map_pk"], 16), sk, grp.p) == int(G2["h"], 16)
    mapped = grp.map_generator(int(G2["s"], 16), sk, H(G2["picc_map_pk"]))
    assert mapped.g == int(G2["g~"], 16)
    eph = int(G2["pcd_eph_sk"], 16)
    assert pow(mapped.g, eph, grp.p).to_bytes(128, "big") == H(G2["pcd_eph_pk"])
    k = mapped.secret_bytes(eph, H(G2["picc_eph_pk"]))
    assert k == H(G2["K"])
    assert pace.session_keys(k, info) == (H(G2["ks_enc"]), H(G2["ks_mac"]))
    assert pace.auth_token(H(G2["ks_mac"]), info, grp, H(G2["picc_eph_pk"])) == H(G2["t_ifd"])
    assert pace.auth_token(H(G2["ks_mac"]), info, grp, H(G2["pcd_eph_pk"])) == H(G2["t_ic"])


@pytest.mark.parametrize("param_id, cipher, klen", [(12, "AES", 16), (15, "AES", 24), (17, "AES", 32),
                                                    (13, "3DES", 16), (18, "AES", 32), (0, "3DES", 16)])
def test_pace_terminal_and_chip_agree_on_other_suites(param_id, cipher, klen):
    agreement = "DH" if param_id == 0 else "ECDH"
    info = PaceInfo(PaceInfo.oid_for(agreement, "GM", cipher, klen), version=2, parameter_id=param_id)
    pw = pace.Password.can("123456")
    chip = pace.PaceChip(info, pw)
    dom = pace.domain(param_id)
    s = pace.decrypt_nonce(pace.derive_kpi(pw, info), chip.encrypted_nonce(), cipher)
    assert s == chip.s
    sk, pk = dom.keypair(pace._rng)
    mapped = dom.map_generator(int.from_bytes(s, "big"), sk, chip.map_nonce(pk))
    e_sk, e_pk = mapped.keypair(pace._rng)
    chip_eph = chip.key_agreement(e_pk)
    enc, mac = pace.session_keys(mapped.secret_bytes(e_sk, chip_eph), info)
    t_ic = chip.authenticate(pace.auth_token(mac, info, dom, chip_eph))
    assert t_ic == pace.auth_token(mac, info, dom, e_pk)
    assert chip.sm.keys.enc == enc and len(enc) == klen


def test_bac_retail_mac_and_kdf_primitives():
    assert crypto.retail_mac(H("7962D9ECE03D1ACD4C76089DCE131543"),
                             H("72C29C2371CC9BDB65B779B8E8D37B29ECC154AA56A8799FAE2F498F76ED92F2")) == H("5F1448EEA8AD90A7")
