"""Bad input never crashes or hangs: random bytes into every decoder and into the virtual card;
plus FID selection, a slow card, and the PC/SC driver's registration."""

from __future__ import annotations

import time
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from biostation.card import lds, secinfo, sod, tlv, trust
from biostation.card.apdu import ApduChannel, Command, Response
from biostation.card.reader import CardFiles, read_document
from biostation.card.sm import SecureMessaging
from biostation.errors import CardError, SecureMessagingError, TLVError
from biostation_drivers.simulated.card_reader import SimulatedCardReader
from biostation_drivers.simulated.vcard.card import Faults, VirtualCard
from biostation_drivers.simulated.vcard.profiles import build_profile

ROOT = Path(__file__).resolve().parents[2]
DECODERS = [lds.decode_com, lds.decode_dg1, lds.decode_dg2, lds.decode_dg11, lds.decode_dg12, lds.decode_dg13,
            lds.decode_dg14, lds.decode_dg15, sod.decode_sod, lambda b: secinfo.parse_security_infos(b),
            lambda b: trust.load_certificate(b, "x.der"), lambda b: list(tlv.walk(tlv.decode(b, "f")))]


@pytest.fixture(scope="module")
def cccd():
    return build_profile("cccd", face_bytes=3000)


def _tlvish():
    # random bytes, and random bytes behind plausible headers so decoders get past the first tag
    heads = st.sampled_from([b"", b"\x60", b"\x61\x5b\x5f\x1f", b"\x75\x82\x01\x00\x7f\x61", b"\x6d\x20\x30\x1e",
                             b"\x6e\x81\x80\x31", b"\x77\x82\x07\x8a\x30\x82", b"\x31\x14\x30\x12\x06\x0a",
                             b"\x30\x82\x01\x00\x30\x81"])
    return st.tuples(heads, st.binary(max_size=300)).map(lambda t: t[0] + t[1])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=_tlvish(), which=st.integers(0, len(DECODERS) - 1))
def test_decoders_raise_only_typed_errors(data, which):
    try:
        DECODERS[which](data)
    except (TLVError, CardError):
        pass  # typed errors only: no IndexError, UnicodeDecodeError, asn1crypto ValueError


@settings(max_examples=200, deadline=None)
@given(mutation=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=4))
def test_mutated_real_files_fail_with_file_and_offset(cccd, mutation):
    raw = bytearray(cccd.data.files[0x010D].data)  # DG13
    for pos, val in mutation:
        raw[pos % len(raw)] = val
    try:
        lds.decode_dg13(bytes(raw))
    except TLVError as exc:
        assert exc.source == "DG13" and exc.offset is not None and 0 <= exc.offset <= len(raw)
    except UnicodeDecodeError:  # pragma: no cover - must not happen: text errors are TLVErrors
        raise


@settings(max_examples=300, deadline=None)
@given(apdu=st.binary(min_size=0, max_size=300))
def test_virtual_card_answers_any_bytes_with_a_status_word(cccd, apdu):
    card = VirtualCard(cccd.data)
    resp = card.process(apdu)
    assert len(resp) >= 2


def test_sm_rejects_garbage_and_replays():
    term = SecureMessaging(bytes(16), bytes(range(16)), 0, "AES")
    chip = SecureMessaging(bytes(16), bytes(range(16)), 0, "AES")
    wrapped = chip.wrap_response(Response(b"data", 0x9000))
    assert term.unprotect(wrapped).data == b"data"
    with pytest.raises(SecureMessagingError):  # the same response again: SSC moved on, MAC fails
        term.unprotect(wrapped)
    for junk in (b"\x87\x05\x01abcd", b"\x99\x02\x90\x00", b"\xff\xff", b"\x8e\x08" + bytes(8)):
        with pytest.raises(SecureMessagingError):
            term.unprotect(Response(junk, 0x9000))


def test_read_by_fid_and_by_sfi_agree(cccd):
    ch = ApduChannel(_powered(VirtualCard(cccd.data)))
    files = CardFiles(ch)
    from biostation.card.pace import Password, perform_pace
    info = secinfo.parse_security_infos(files.read("EF.CardAccess")).pace[0]
    perform_pace(ch, Password.can(cccd.can), info)
    files.select_application()
    by_sfi = files.read("DG13", use_sfi=True)
    by_fid = files.read("DG13", use_sfi=False)
    assert by_sfi == by_fid == cccd.data.files[0x010D].data


def test_slow_card_still_reads(cccd):
    fast = read_document(_powered(VirtualCard(cccd.data)), can=cccd.can, data_groups=[1], active_auth=False,
                         chip_auth=False)
    t = time.monotonic()
    slow = read_document(_powered(VirtualCard(cccd.data, Faults(delay_s=0.01))), can=cccd.can, data_groups=[1],
                         active_auth=False, chip_auth=False)
    elapsed = time.monotonic() - t
    assert slow.files["DG1"] == fast.files["DG1"]
    assert elapsed >= 0.01 * slow.apdu_count


def _powered(card):
    rd = SimulatedCardReader.create(card)
    rd.power_on()
    return rd


def test_pcsc_driver_is_declared_and_binds_pcsc_attachments(settings):
    eps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["biostation.drivers"]
    assert eps["pcsc-reader"] == "biostation_drivers.pcsc_reader:PcscReader"
    from biostation.hal import Attachment, CardReader
    from biostation_drivers.pcsc_reader import PcscReader

    assert issubclass(PcscReader, CardReader)
    assert PcscReader.discover(Attachment("pcsc", "pcsc:Virtual PCD 00 00", "Virtual PCD 00 00")) > 0
    assert PcscReader.discover(Attachment("usb", "usb:1-2", vid=1, pid=2)) == 0


def test_chained_plain_command_reaches_the_card(cccd):
    card = VirtualCard(cccd.data)
    seen = []
    card.register(0xDA, lambda cmd: (seen.append(len(cmd.data)), Response(b"", 0x9000))[1])
    ch = ApduChannel(_powered(card))
    ch.send(Command(0x00, 0xDA, 0, 0, bytes(700)))
    assert seen == [700]
