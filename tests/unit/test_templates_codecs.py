"""Template codecs: the SecuGen ISO set, exact round trips, and fuzzed malformed input."""

from __future__ import annotations

import json
import math
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from biostation.errors import TemplateError, TemplateFormatError, TemplateVersionError
from biostation.templates import (
    MINUTIA_DTYPE,
    Template,
    TemplateFormat,
    TemplateRecord,
    decode,
    encode,
    load_template,
    minutiae_array,
)

ALL = list(TemplateFormat)


def iso_files(shared):
    files = sorted((shared / "data" / "fvc2002" / "iso_secugen").glob("DB*_B/*.iso"))
    assert len(files) == 320
    return files


def test_every_secugen_file_loads_and_round_trips(shared):
    counts = []
    for f in iso_files(shared):
        data = f.read_bytes()
        rec = decode(data)
        assert len(rec.views) == 1
        t = rec.views[0]
        assert (t.width, t.height) == (300, 400) and abs(t.dpi - 500.38) < 1e-9
        counts.append(len(t.minutiae))
        assert encode(rec, TemplateFormat.ISO_19794_2) == data
        for fmt in (TemplateFormat.ANSI_378, TemplateFormat.NATIVE, TemplateFormat.JSON):
            b = encode(rec, fmt)
            back = decode(b, fmt)
            assert encode(back, fmt) == b
            if fmt is not TemplateFormat.ANSI_378:
                assert back.views == rec.views
    assert 10 < np.mean(counts) < 80


def test_known_minutiae_of_one_file(shared):
    t = load_template(shared / "data" / "fvc2002" / "iso_secugen" / "DB1_B" / "101_1.iso")
    # first minutia bytes: 80 a5 00 30 6b 00 -> bifurcation at (165, 48), angle code 0x6b
    m = t.minutiae[0]
    assert (int(m["x"]), int(m["y"]), int(m["kind"]), int(m["quality"])) == (165, 48, 2, 0)
    assert math.isclose(float(m["angle"]), 0x6B * 2 * math.pi / 256, rel_tol=1e-6)
    assert len(t.minutiae) == 25


def _random_template(rng, n, dpi=500.0, w=400, h=500):
    m = np.zeros(n, MINUTIA_DTYPE)
    m["x"] = rng.integers(0, w, n)
    m["y"] = rng.integers(0, h, n)
    m["angle"] = (rng.integers(0, 256, n) * 2 * np.pi / 256).astype(np.float32)
    m["kind"] = rng.integers(0, 3, n)
    m["quality"] = rng.integers(0, 101, n)
    return Template(width=w, height=h, dpi=dpi, minutiae=m, finger_position=int(rng.integers(0, 11)),
                    impression_type=int(rng.integers(0, 4)), quality=int(rng.integers(0, 101)))


def test_multi_view_record_with_extended_data_round_trips():
    rng = np.random.default_rng(1)
    views = [_random_template(rng, n) for n in (0, 1, 255)]
    views[1].extended = [(0x0001, b"\x01\x02\x03"), (0x0102, b"")]
    views[1].view_number = 3
    rec = TemplateRecord(views=views, capture_equipment=0x1234)
    for fmt in (TemplateFormat.ISO_19794_2, TemplateFormat.ANSI_378):
        b = encode(rec, fmt)
        back = decode(b)  # sniffed: ISO and ANSI share the magic
        assert [len(v.minutiae) for v in back.views] == [0, 1, 255]
        assert back.views[1].extended == views[1].extended and back.views[1].view_number == 3
        assert back.capture_equipment == 0x1234
        assert encode(back, fmt) == b
    for fmt in (TemplateFormat.NATIVE, TemplateFormat.JSON):
        assert decode(encode(rec, fmt), fmt).views == views


def test_iso_angles_quantize_to_the_nearest_code():
    t = Template(width=100, height=100, minutiae=minutiae_array([(1, 2, 2 * np.pi - 1e-4, 1, 50)]))
    back = decode(encode(t, "iso19794-2")).views[0]
    assert float(back.minutiae["angle"][0]) == 0.0  # 2 pi wraps to code 0
    back = decode(encode(t, "ansi378")).views[0]
    assert float(back.minutiae["angle"][0]) == 0.0


def test_native_keeps_float_angles_and_reason():
    t = Template(width=10, height=10, dpi=1000.0, minutiae=minutiae_array([(1, 2, 0.123456, 1, 50)]),
                 reason="")
    empty = Template(width=10, height=10, reason="no ridges found")
    rec = decode(encode(TemplateRecord(views=[t, empty]), "native"))
    assert rec.views == [t, empty]


def test_ansi_long_length_form():
    rng = np.random.default_rng(2)
    rec = TemplateRecord(views=[_random_template(rng, 255) for _ in range(50)])  # > 65535 bytes
    b = encode(rec, "ansi378")
    assert len(b) > 0xFFFF and b[8:10] == b"\0\0"
    assert encode(decode(b), "ansi378") == b


def test_other_versions_are_typed_errors(shared):
    data = bytearray((shared / "data" / "fvc2002" / "iso_secugen" / "DB1_B" / "101_1.iso").read_bytes())
    data[4:8] = b"030\0"  # ISO 19794-2:2011
    with pytest.raises(TemplateVersionError):
        decode(bytes(data), "iso19794-2")
    native = bytearray(encode(Template(width=5, height=5), "native"))
    native[4] = 2
    with pytest.raises(TemplateVersionError):
        decode(bytes(native))


def test_writer_refuses_unrepresentable_templates():
    t = Template(width=10, height=10, minutiae=minutiae_array([(20, 2, 0.0, 1, 0)]))  # outside the image
    with pytest.raises(TemplateError):
        encode(t, "iso19794-2")
    a = Template(width=10, height=10, dpi=500)
    b = Template(width=10, height=10, dpi=1000)
    with pytest.raises(TemplateError):
        encode(TemplateRecord(views=[a, b]), "iso19794-2")


# --- fuzzing: malformed input is a typed error, never IndexError/struct.error ------------------

def _seed_records():
    rng = np.random.default_rng(3)
    t = _random_template(rng, 12)
    t.extended = [(1, b"abcd")]
    rec = TemplateRecord(views=[t, _random_template(rng, 3)])
    return {fmt: encode(rec, fmt) for fmt in ALL}


SEEDS = _seed_records()


def _decode_typed(data: bytes, fmt) -> None:
    try:
        decode(data, fmt)
    except (TemplateFormatError, TemplateVersionError):
        pass


@pytest.mark.parametrize("fmt", ALL)
@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fuzz_truncation_and_byte_flips(fmt, data):
    seed = SEEDS[fmt]
    cut = data.draw(st.integers(0, len(seed)))
    _decode_typed(seed[:cut], fmt)
    buf = bytearray(seed)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(buf) - 1))
        buf[i] = data.draw(st.integers(0, 255))
    _decode_typed(bytes(buf), fmt)
    _decode_typed(bytes(buf), None)


@hsettings(max_examples=200, deadline=None)
@given(count=st.integers(0, 255), views=st.integers(0, 255), length=st.integers(0, 2**32 - 1),
       angle=st.integers(0, 255), xy=st.integers(0, 0xFFFF), tail=st.binary(max_size=64))
def test_fuzz_iso_fields(count, views, length, angle, xy, tail):
    head = b"FMR\0 20\0" + struct.pack(">IHHHHHBB", length, 0, 300, 400, 197, 197, views, 0)
    body = struct.pack(">BBBB", 1, 0, 50, count) + struct.pack(">HHBB", xy, xy, angle, 0) * min(count, 3) + tail
    data = head + body
    for fmt in ("iso19794-2", "ansi378", None):
        _decode_typed(data, fmt)
    fixed = bytearray(data)
    fixed[8:12] = struct.pack(">I", len(data))  # right length, other fields wild
    _decode_typed(bytes(fixed), "iso19794-2")


def test_bad_angle_codes_and_counts():
    t = Template(width=100, height=100, minutiae=minutiae_array([(1, 2, 0.5, 1, 0)]))
    b = bytearray(encode(t, "ansi378"))
    b[26 + 4 + 4] = 180  # ANSI angle code over 179
    with pytest.raises(TemplateFormatError, match="angle"):
        decode(bytes(b), "ansi378")
    b = bytearray(encode(t, "iso19794-2"))
    b[24 + 3] = 200  # minutia count over what the record holds
    with pytest.raises(TemplateFormatError, match="truncated"):
        decode(bytes(b), "iso19794-2")
    b = bytearray(encode(t, "iso19794-2"))
    b[22] = 200  # finger view count over the limit
    with pytest.raises(TemplateFormatError):
        decode(bytes(b), "iso19794-2")
    with pytest.raises(TemplateFormatError):
        decode(b"", None)
    with pytest.raises(TemplateFormatError):
        decode(b"{]", "json")


def test_json_with_an_infinite_angle_is_a_format_error():
    """Found by the fuzzer: well-formed JSON describing an invalid template is still bad input."""
    t = Template(300, 300, 500, minutiae_array([(10, 20, 1.0, 1, 50)]))
    raw = encode(t, TemplateFormat.JSON).decode()
    doc = json.loads(raw)
    doc["views"][0]["minutiae"][0][2] = 1e999
    with pytest.raises(TemplateFormatError, match="angles"):
        decode(json.dumps(doc).encode(), TemplateFormat.JSON)
