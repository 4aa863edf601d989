"""WSQ through the wsq package, ISO/IEC 19794-4:2005 and 19794-5:2005 records."""

from __future__ import annotations

import io
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from biostation.card import lds
from biostation.errors import RecordError, RecordFormatError, RecordImageError, TLVError
from biostation.records import iso19794_4, iso19794_5, wsq

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"


@pytest.fixture(scope="module")
def finger():
    path = SHARED / "data" / "fvc2002" / "DB2_B" / "101_1.tif"
    if not path.is_file():
        pytest.skip("../shared data set not present")
    return np.asarray(Image.open(path).convert("L"))


def test_wsq_round_trip_reaches_the_nist_bitrate_and_names_the_resolution(finger):
    data = wsq.encode(finger, ppi=569)
    info = wsq.info(data)
    assert (info.width, info.height) == (finger.shape[1], finger.shape[0])
    assert info.ppi == 569 and info.bitrate == wsq.BITRATE == 0.75
    assert info.nistcom["PIX_DEPTH"] == "8"
    bpp = 8 * len(data) / finger.size
    assert bpp <= wsq.BITRATE * 1.05  # the coder keeps to its target (blank areas go below it)
    back = wsq.decode(data)
    assert back.shape == finger.shape and back.dtype == np.uint8
    assert float(np.abs(back.astype(int) - finger).mean()) < 8
    assert wsq.info(wsq.encode(finger)).ppi == 500


@pytest.mark.parametrize("bad", [np.zeros((10, 10), np.uint8), np.zeros((100, 100), np.float32),
                                 np.zeros((100, 100, 3), np.uint8), [[1, 2], [3, 4]]])
def test_wsq_refuses_what_it_cannot_encode(bad):
    with pytest.raises(RecordImageError):
        wsq.encode(bad)


@pytest.mark.parametrize("cut", [0, 1, 2, 5, 40, 120])
def test_wsq_truncated_or_foreign_bytes_raise_record_image_errors(finger, cut):
    data = wsq.encode(finger)
    with pytest.raises(RecordImageError):
        wsq.decode(data[:cut])
    with pytest.raises(RecordImageError):
        wsq.decode(b"\x89PNG" + data[4:])


# --- ISO/IEC 19794-4:2005 ------------------------------------------------------------------------

def test_finger_image_record_round_trip(finger):
    data = iso19794_4.from_images([(2, finger, 64, 0), (13, np.tile(finger, (1, 3)), None, 0)], ppi=500)
    assert data[:8] == b"FIR\x00010\x00" and int.from_bytes(data[8:14], "big") == len(data)
    rec = iso19794_4.decode(data)
    assert iso19794_4.encode(rec) == data
    assert [(v.position, v.quality, v.width, v.height) for v in rec.views] == [
        (2, 64, finger.shape[1], finger.shape[0]), (13, 0, 3 * finger.shape[1], finger.shape[0])]
    assert rec.decode_view(1).shape == (finger.shape[0], 3 * finger.shape[1])
    raw = iso19794_4.decode(iso19794_4.from_images([(1, finger, 50, 1)], compression=iso19794_4.Compression.RAW))
    assert np.array_equal(raw.decode_view(0), finger) and raw.views[0].impression == 1


@pytest.mark.parametrize("mutate, match", [
    (lambda d: d[:-1], "length"),
    (lambda d: b"FMR" + d[3:], "FIR"),
    (lambda d: d[:4] + b"099\x00" + d[8:], "version"),  # "020" is the 2011 edition, read since
    (lambda d: d[:29] + b"\x09" + d[30:], "compression"),
    (lambda d: d[:32] + b"\x00\x10\x00\x00" + d[36:], "does not fit"),
    (lambda d: d[:39] + b"\xc8" + d[40:], "quality"),
])
def test_finger_image_record_malformed(finger, mutate, match):
    data = iso19794_4.from_images([(2, finger, 64, 0)])
    with pytest.raises(RecordFormatError, match=match):
        iso19794_4.decode(mutate(data))


def test_finger_image_record_refuses_bad_values(finger):
    with pytest.raises(RecordError):
        iso19794_4.from_images([(12, finger, 50, 0)])  # 11 and 12 are not ISO finger positions
    with pytest.raises(RecordError):
        iso19794_4.from_images([(2, finger, 150, 0)])


# --- ISO/IEC 19794-5:2005 ------------------------------------------------------------------------

def _jpeg():
    buf = io.BytesIO()
    Image.new("RGB", (60, 80), (200, 150, 120)).save(buf, "JPEG")
    return buf.getvalue()


def test_face_record_round_trip_with_feature_points_and_pose():
    face = iso19794_5.face_from_image(_jpeg(), gender=2, pose=(1, 2, 3))
    face.feature_points = [iso19794_5.FeaturePoint(1, 0x31, 22, 40), iso19794_5.FeaturePoint(1, 0x32, 38, 40)]
    face.property_mask = 0x000003
    data = iso19794_5.encode([face])
    [back] = iso19794_5.decode(data)
    assert back == face and (back.width, back.height, back.colour_space) == (60, 80, 1)
    assert back.decode_image().shape == (80, 60, 3)
    # the card's DG2 codec is this one: same faces through DG2
    assert lds.decode_dg2(lds.encode_dg2([face])).faces == [face]


@pytest.mark.parametrize("mutate", [lambda d: d[:10], lambda d: b"FIR" + d[3:], lambda d: d[:4] + b"030\x00" + d[8:],
                                    lambda d: d[:14] + b"\xff" * 4 + d[18:], lambda d: d[:8] + b"\xff" * 4 + d[12:]])
def test_face_record_malformed(mutate):
    data = iso19794_5.encode([iso19794_5.face_from_image(_jpeg())])
    with pytest.raises(RecordFormatError):
        iso19794_5.decode(mutate(data))


def test_dg2_still_names_the_file_and_offset_on_bad_face_records():
    good = lds.encode_dg2([iso19794_5.face_from_image(_jpeg())])
    bad = good.replace(b"FAC\x00010\x00", b"FAC\x00099\x00")
    with pytest.raises(TLVError) as ei:
        lds.decode_dg2(bad)
    assert ei.value.source == "DG2" and ei.value.offset is not None


def test_face_from_image_accepts_arrays_and_refuses_other_formats():
    rgb = np.zeros((40, 30, 3), np.uint8)
    face = iso19794_5.face_from_image(rgb)
    assert face.image[:2] == b"\xff\xd8" and (face.width, face.height) == (30, 40)
    with pytest.raises(RecordImageError):
        iso19794_5.face_from_image(b"GIF89a")
    with pytest.raises(RecordImageError):
        iso19794_5.face_from_image(np.zeros((4, 4, 4), np.uint8))


def test_random_damage_to_iso_records_raises_only_record_format_errors(finger):
    rng = random.Random(5)
    fir = iso19794_4.from_images([(2, finger, 64, 0), (3, finger, 0, 0)], compression=iso19794_4.Compression.RAW)
    fac = iso19794_5.encode([iso19794_5.face_from_image(_jpeg()), iso19794_5.face_from_image(_jpeg())])
    for data, decode in ((fir, iso19794_4.decode), (fac, iso19794_5.decode)):
        for _ in range(300):
            d = bytearray(data)
            if rng.random() < 0.3:
                d = d[:rng.randrange(len(d))]
            else:
                for _k in range(rng.randrange(1, 4)):
                    d[rng.randrange(min(len(d), 80))] = rng.randrange(256)
            try:
                decode(bytes(d))
            except RecordFormatError:
                pass
