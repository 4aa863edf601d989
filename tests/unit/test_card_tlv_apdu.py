"""BER-TLV and APDU layer: encodings, error offsets, GET RESPONSE, 6Cxx, chaining, SW mapping."""

from __future__ import annotations

import pytest

from biostation.card import tlv
from biostation.card.apdu import ApduChannel, Command, Response, check_sw
from biostation.errors import AccessDeniedError, ApduError, SecureMessagingError, TLVError


def test_tlv_round_trip_nested_and_long_lengths():
    inner = tlv.encode(0x5F1F, b"A" * 200) + tlv.encode(0x80, b"")
    outer = tlv.encode(0x7F61, tlv.encode(0x02, b"\x01") + tlv.encode(0x7F60, inner))
    top = tlv.decode_one(outer, "DG2")
    assert top.tag == 0x7F61 and top.constructed
    kids = top.children
    assert [k.tag for k in kids] == [0x02, 0x7F60]
    grand = kids[1].children
    assert grand[0].tag == 0x5F1F and grand[0].value == b"A" * 200
    # offsets are positions in the whole file
    assert outer[grand[0].offset:grand[0].offset + 2] == b"\x5f\x1f"
    assert tlv.encode_length(200) == b"\x81\xc8"
    assert tlv.encode_length(0x1234) == b"\x82\x12\x34"
    assert tlv.total_length(outer[:8]) == len(outer)


def test_tlv_errors_name_file_and_offset():
    good = tlv.encode(0x61, tlv.encode(0x5F1F, b"P<UTO") + tlv.encode(0x5F2B, b"19700101"))
    bad = good[:-3]  # truncated inside the last child
    with pytest.raises(TLVError) as ei:
        tlv.decode_one(bad, "DG1")
    assert ei.value.source == "DG1" and ei.value.offset == 0
    # the outer length is consistent but a child claims too much: offset of that child
    broken = bytearray(good)
    broken[2 + 2 + 1 + 5 + 2] = 0x40  # length of 5F2B
    with pytest.raises(TLVError) as ei:
        _ = tlv.decode_one(bytes(broken), "DG1").children
    assert ei.value.offset == 2 + 2 + 1 + 5 and "DG1" in str(ei.value)
    with pytest.raises(TLVError, match="indefinite"):
        tlv.decode(b"\x30\x80\x00\x00", "EF.SOD")
    with pytest.raises(TLVError):
        tlv.decode_one(b"", "EF.COM")
    with pytest.raises(TLVError, match="after the end"):
        tlv.decode_one(tlv.encode(0x60, b"x") + b"zz", "EF.COM")


@pytest.mark.parametrize("cmd, wire", [
    (Command(0x00, 0xA4, 0x02, 0x0C, bytes.fromhex("011E")), "00A4020C02011E"),
    (Command(0x00, 0x84, 0, 0, le=8), "0084000008"),
    (Command(0x00, 0xB0, 0, 0, le=256), "00B0000000"),
    (Command(0x00, 0xB0, 0, 0, le=0x1000), "00B0000000" + "1000"),
    (Command(0x00, 0x86, 0, 0, b"\x7c\x00", le=65536), "00860000000002" + "7C00" + "0000"),
])
def test_command_encodings_round_trip(cmd, wire):
    assert cmd.to_bytes().hex().upper() == wire
    assert Command.parse(bytes.fromhex(wire)).to_bytes() == cmd.to_bytes()


def test_command_parse_rejects_bad_lengths():
    for raw in ("00A4", "00A4020C05011E", "00A4020C0000030102"):
        with pytest.raises(ValueError):
            Command.parse(bytes.fromhex(raw))


class Script:
    """A transport that answers from a list of (expected command hex or None, response hex)."""

    def __init__(self, steps):
        self.steps = list(steps)
        self.seen = []

    def transmit(self, apdu: bytes) -> bytes:
        self.seen.append(apdu.hex().upper())
        want, resp = self.steps.pop(0)
        if want is not None:
            assert apdu.hex().upper() == want
        return bytes.fromhex(resp)


def test_channel_get_response_and_wrong_le():
    t = Script([("00B0000010", "AABB6104"), ("00C0000004", "CCDDEEFF9000")])
    ch = ApduChannel(t)
    assert ch.send(Command(0, 0xB0, 0, 0, le=16)) == bytes.fromhex("AABBCCDDEEFF")
    assert ch.apdu_count == 2
    t = Script([("00B0000000", "6C05"), ("00B0000005", "01020304059000")])
    assert ApduChannel(t).send(Command(0, 0xB0, 0, 0, le=256)) == bytes(range(1, 6))


def test_channel_chains_long_commands():
    data = bytes(600)
    t = Script([(None, "9000"), (None, "9000"), (None, "9000")])
    ApduChannel(t).send(Command(0x00, 0xD6, 0, 0, data))
    assert [s[:2] for s in t.seen] == ["10", "10", "00"]
    assert [int(s[8:10], 16) for s in t.seen] == [255, 255, 90]
    # with extended length the same command goes in one APDU
    t = Script([(None, "9000")])
    ApduChannel(t, extended=True).send(Command(0x00, 0xD6, 0, 0, data))
    assert len(t.seen) == 1 and t.seen[0][8:14] == "000258"


@pytest.mark.parametrize("sw, exc", [(0x6982, AccessDeniedError), (0x63C2, AccessDeniedError),
                                     (0x6988, SecureMessagingError), (0x6A82, ApduError)])
def test_status_words_map_to_typed_errors(sw, exc):
    with pytest.raises(exc) as ei:
        check_sw(Response(b"", sw), "SELECT DG3")
    assert "SELECT DG3" in str(ei.value)
    if sw == 0x63C2:
        assert ei.value.retries_left == 2
