"""The enrollment builder: what it writes reads back the same, and bad input is refused up front."""

from __future__ import annotations

import datetime as dt
import io
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from biostation.errors import RecordError, TemplateError
from biostation.records import (
    FingerImage,
    FingerPosition,
    ImpressionKind,
    Portrait,
    Segment,
    TransactionHeader,
    build_records,
    build_transaction,
    iso19794_4,
    iso19794_5,
    read_minutiae,
    read_transaction,
)
from biostation.templates import TemplateFormat, decode, encode, minutiae_array
from biostation.templates.model import Template

HEADER = TransactionHeader("ENR", "NIDA00001", "STATION042", "20261203-000117",
                           when=dt.datetime(2026, 12, 3, 8, 15, 30, tzinfo=dt.UTC))


SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"


@pytest.fixture(scope="module")
def finger():
    path = SHARED / "data" / "fvc2002" / "DB1_B" / "101_1.tif"
    if not path.is_file():
        pytest.skip("../shared data set not present")
    return np.asarray(Image.open(path).convert("L"))


@pytest.fixture(scope="module")
def slap(finger):
    s = np.full((800, 1200), 235, np.uint8)
    s[200:574, 100:488] = finger
    s[220:594, 520:908] = finger[:, ::-1]
    return s


@pytest.fixture(scope="module")
def portrait():
    rgb = np.zeros((320, 240, 3), np.uint8)
    rgb[..., 0] = np.linspace(0, 255, 240, dtype=np.uint8)[None, :]
    rgb[..., 1] = 90
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def _template(position=2, quality=64):
    m = minutiae_array([(10, 20, 0.0, 1, 80), (200, 300, math.pi / 2, 2, 60), (387, 373, 6.27, 1, 40)])
    return Template(width=388, height=374, dpi=500, minutiae=m).labelled(finger_position=position, quality=quality)


@pytest.fixture(scope="module")
def built(finger, slap, portrait):
    fingers = [FingerImage(FingerPosition.RIGHT_INDEX, finger, nfiq2=64),
               FingerImage(FingerPosition.PLAIN_LEFT_FOUR, slap, impression=ImpressionKind.SLAP,
                           segments=[Segment(FingerPosition.LEFT_INDEX, 100, 487, 200, 573, nfiq2=71),
                                     Segment(FingerPosition.LEFT_MIDDLE, 520, 907, 220, 593)])]
    demographics = {18: "NGUY\u1ec4N V\u0102N AN", 22: "19900417", 24: "M", 41: [["12 HANG BAC", "HA NOI"]]}
    return build_records(demographics, fingers, Portrait(portrait), [_template(2, 64), _template(7, 71)],
                         header=HEADER)


def test_transaction_reads_back_the_same(built):
    tx = read_transaction(built.nist)
    assert tx.encode() == built.nist
    assert [(r.type, r.idc) for r in tx] == [(1, 0), (2, 0), (14, 1), (14, 2), (10, 3), (9, 1), (9, 2)]
    t1 = tx.type1
    assert t1.text(2) == "0502" and t1.text(4) == "ENR" and t1.text(9) == "20261203-000117"
    assert t1.text(5) == "20261203" and t1.text(14) == "20261203081530Z"
    assert t1.subfields(15) == [["003", "UTF-8"]]  # the name is not ASCII
    t2 = tx.records[1]
    assert t2.text(18) == "NGUY\u1ec4N V\u0102N AN" and t2.subfields(41) == [["12 HANG BAC", "HA NOI"]]


def test_finger_records_carry_position_quality_segments_and_wsq(built, finger, slap):
    tx = read_transaction(built.nist)
    single, four = tx.of_type(14)
    assert single.integer(13) == 2 and single.integer(3) == 0 and single.text(11) == "WSQ20"
    assert single.subfields(24) == [["2", "64", "0101", "33"]]  # NFIQ 2, CBEFF owner 0x0101, product 0x21
    assert (single.integer(9), single.integer(12)) == (500, 8)
    img = single.image()
    assert img.shape == finger.shape
    assert float(np.abs(img.astype(int) - finger).mean()) < 8  # WSQ is lossy, not wrong
    assert four.integer(13) == 14
    assert four.subfields(21) == [["7", "100", "487", "200", "573"], ["8", "520", "907", "220", "593"]]
    assert four.subfields(24) == [["7", "71", "0101", "33"]]  # only the segment whose score is known
    assert four.image().shape == slap.shape


def test_face_record_keeps_the_portrait_bytes(built, portrait):
    tx = read_transaction(built.nist)
    face = tx.of_type(10)[0]
    assert face.data == portrait
    assert (face.text(3), face.text(11), face.text(12), face.integer(6), face.integer(7)) == ("FACE", "JPEGB", "SRGB", 240, 320)
    assert face.image().shape == (320, 240, 3)
    [iso_face] = iso19794_5.decode(built.face_image)
    assert iso_face.image == portrait and (iso_face.width, iso_face.height) == (240, 320)


def test_type9_minutiae_match_the_templates(built):
    tx = read_transaction(built.nist)
    t9 = tx.of_type(9)
    assert [r.idc for r in t9] == [1, 2]  # linked to the Type-14 of the same finger (the slap for 7)
    for rec, want in zip(t9, [_template(2, 64), _template(7, 71)]):
        got = read_minutiae(rec)
        assert (got.finger_position, got.quality, got.width, got.height) == (want.finger_position, want.quality,
                                                                             388, 374)
        assert np.array_equal(got.minutiae[["x", "y", "kind", "quality"]], want.minutiae[["x", "y", "kind", "quality"]])
        diff = np.angle(np.exp(1j * (got.minutiae["angle"] - want.minutiae["angle"])))
        assert np.abs(diff).max() <= math.radians(1.0) + 1e-6  # 2-degree units


def test_iso_records_carry_position_and_quality(built, finger):
    fir = iso19794_4.decode(built.finger_images)
    assert [(v.position, v.quality, v.impression) for v in fir.views] == [(2, 64, 0), (14, 0, 0)]
    assert fir.compression == iso19794_4.Compression.WSQ and fir.image_ppi == (500, 500)
    assert fir.acquisition_level == 31
    assert fir.decode_view(0).shape == finger.shape
    views = [decode(b).views[0] for b in built.templates]
    assert [(v.finger_position, v.quality) for v in views] == [(2, 64), (7, 71)]


def test_templates_written_by_the_iso_and_ansi_codecs_keep_position_and_quality():
    t = _template(9, 57)
    for fmt in (TemplateFormat.ISO_19794_2, TemplateFormat.ANSI_378):
        back = decode(encode(t, fmt), fmt).views[0]
        assert (back.finger_position, back.quality) == (9, 57)
    with pytest.raises(TemplateError):
        t.labelled(quality=101)
    with pytest.raises(TemplateError):
        t.labelled(finger_position=16)


def _fingers(finger, **kw):
    return [FingerImage(FingerPosition.RIGHT_THUMB, finger, **kw)]


@pytest.mark.parametrize("change, match", [
    (lambda f: {"fingers": _fingers(f) * 2}, "same position"),
    (lambda f: {"fingers": _fingers(f, nfiq2=101)}, "NFIQ 2"),
    (lambda f: {"fingers": _fingers(f, nfiq2=True)}, "NFIQ 2"),
    (lambda f: {"fingers": [FingerImage(0, f)]}, "unknown"),
    (lambda f: {"fingers": [FingerImage(11, f)]}, "finger position"),
    (lambda f: {"fingers": [FingerImage(1, f.astype(np.float32))]}, "uint8"),
    (lambda f: {"fingers": [FingerImage(1, f, dpi=72)]}, "dpi"),
    (lambda f: {"fingers": [FingerImage(1, f, segments=[Segment(2, 0, 5, 0, 5)])]}, "slap"),
    (lambda f: {"fingers": [FingerImage(13, f, segments=[Segment(2, 0, 5000, 0, 5)])]}, "outside"),
    (lambda f: {"fingers": [FingerImage(1, f, impression="smudged")]}, "impression"),
    (lambda f: {"demographics": {"name": "x"}}, "field number"),
    (lambda f: {"demographics": {1: "x"}}, "field number"),
    (lambda f: {"demographics": {18: "A\x1dB"}}, "separator"),
    (lambda f: {"templates": [Template(width=10, height=10)]}, "finger position"),
    (lambda f: {"templates": [_template(2), _template(2)]}, "same finger"),
    (lambda f: {"face": Portrait(b"GIF89a....")}, "JPEG"),
])
def test_bad_input_is_refused_with_a_record_error(finger, change, match):
    kw = {"demographics": {18: "X"}, "fingers": _fingers(finger), "face": None, "templates": []}
    kw.update(change(finger))
    with pytest.raises(RecordError, match=match):
        build_transaction(kw["demographics"], kw["fingers"], kw["face"], kw["templates"], header=HEADER)


def test_header_text_must_be_ascii(finger):
    bad = TransactionHeader("ENR", "NIDA", "STATI\u00d3N", "1")
    with pytest.raises(RecordError, match="ASCII"):
        build_transaction({}, _fingers(finger), header=bad)


def test_extract_cli_writes_finger_position_and_nfiq2_into_iso_templates(finger, tmp_path):
    from typer.testing import CliRunner

    from biostation.cli import app
    from biostation.fingerprint import nfiq2
    from biostation.templates import load_template

    src = SHARED / "data" / "fvc2002" / "DB1_B" / "101_1.tif"
    r = CliRunner().invoke(app, ["extract", str(src), "-o", str(tmp_path / "a.iso"), "--finger", "7", "--nfiq2"])
    assert r.exit_code == 0, r.output
    t = load_template(tmp_path / "a.iso")
    assert t.finger_position == 7 and t.quality == nfiq2(finger).score > 0
    r = CliRunner().invoke(app, ["extract", str(src), "-o", str(tmp_path / "b.iso")])
    assert (load_template(tmp_path / "b.iso").finger_position, load_template(tmp_path / "b.iso").quality) == (0, 0)
