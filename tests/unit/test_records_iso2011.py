"""ISO/IEC 19794-4:2011 and 19794-5:2011 records: byte layout field by field (the standards'
tables as MOSIP's biometrics-util reads them), the headers of real 2011 records, round trips,
malformed input, and the 2005 editions left byte for byte as they were."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import struct

import numpy as np
import pytest
from PIL import Image

from biostation.errors import RecordError, RecordFormatError
from biostation.records import iso19794_4, iso19794_5
from biostation.records.iso19794_1 import NFIQ2_QUALITY, CertificationBlock, QualityBlock

# Headers of two real 2011 records, from a SYNCBYTE SBI (2019), as published (truncated after the
# image data length) in mosip/mosip-functional-tests, authentication-partnerdemo-service/README.md
REAL_FIR_2011 = base64.b64decode("RklSADAyMAAAAC6AAAEBAQAALnAH4wsIETkBAeMAAAAAAAFZAEAADwIAQAIAQAIHAAEB9AH0AfQB9AgFHQEfAZ0AAC3"[:88])
REAL_FAC_2011 = base64.b64decode("RkFDADAzMAAAAFo7AAEAAAAAAFoqB+MKHQ4mDwAPAAAAAAABAAEDAQMAAAAAAAAAAAAAAAAAAAAAAAACAPABQAAAAQAAAABZ")

WHEN = dt.datetime(2026, 12, 3, 8, 15, 30, 250000, tzinfo=dt.UTC)


def _j2k(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG2000", irreversible=False, no_jp2=False)
    return buf.getvalue()


@pytest.fixture(scope="module")
def finger() -> np.ndarray:
    rng = np.random.default_rng(3)
    return rng.integers(0, 256, (41, 33), dtype=np.uint8)


def _finger_record(finger: np.ndarray, **kw) -> iso19794_4.FingerImageRecord:
    view = iso19794_4.FingerView(7, _j2k(finger), finger.shape[1], finger.shape[0], 61, 0,
                                 quality_blocks=[QualityBlock(61, *NFIQ2_QUALITY)], captured_at=WHEN)
    return iso19794_4.FingerImageRecord([view], iso19794_4.Compression.JPEG2000_LOSSLESS, (500, 500), (500, 500), 8,
                                        edition=2011, **kw)


def test_finger_2011_layout_field_by_field(finger):
    """ISO/IEC 19794-4:2011 table 2 (general header) and table 4 (representation header)."""
    rec = _finger_record(finger, device_technology=1, device_vendor=0x1234, capture_device_id=0x0042)
    data = iso19794_4.encode(rec)
    image = rec.views[0].data
    assert data[0:4] == b"FIR\x00" and data[4:8] == b"020\x00"
    assert struct.unpack(">I", data[8:12])[0] == len(data)  # record length: 4 bytes in 2011 (6 in 2005)
    assert struct.unpack(">H", data[12:14])[0] == 1  # representations
    assert data[14] == 0 and data[15] == 1  # certification flag, distinct finger positions
    r = data[16:]
    assert struct.unpack(">I", r[0:4])[0] == len(data) - 16  # representation length
    assert r[4:13] == bytes.fromhex("07EA 0C 03 08 0F 1E 00FA")  # 2026-12-03 08:15:30.250 UTC
    assert r[13] == 1 and r[14:16] == b"\x12\x34" and r[16:18] == b"\x00\x42"  # technology, vendor, type
    assert r[18] == 1 and r[19:24] == bytes([61, 0x01, 0x01, 0x00, 0x21])  # one quality block: NFIQ 2
    # no certification record (flag 0); then position, representation number, scale units
    assert r[24:27] == bytes([7, 0, 1])
    assert struct.unpack(">HHHH", r[27:35]) == (500, 500, 500, 500)
    assert r[35:38] == bytes([8, 5, 0])  # 8 bits, JPEG 2000 lossless (table 9), live-scan plain
    assert struct.unpack(">HH", r[38:42]) == (33, 41)
    assert struct.unpack(">I", r[42:46])[0] == len(image) and r[46:] == image
    back = iso19794_4.decode(data)
    assert back.edition == 2011 and iso19794_4.edition_of(data) == 2011
    assert np.array_equal(back.decode_view(0), finger)
    v = back.views[0]
    assert v.quality == 61 and v.quality_blocks == [QualityBlock(61, 0x0101, 0x0021)] and v.captured_at == WHEN
    assert (back.device_technology, back.device_vendor, back.capture_device_id) == (1, 0x1234, 0x42)
    assert back.compression == iso19794_4.Compression.JPEG2000_LOSSLESS
    assert iso19794_4.encode(back) == data  # the record's own edition by default


def test_finger_2011_certification_and_extended_data_round_trip(finger):
    rec = _finger_record(finger, certification_flag=True)
    rec.views[0].certifications = [CertificationBlock(0x0040, 2)]
    rec.views[0].extended = b"\x00\x03\x00\x07abc"  # a comment block (type 3), 7 bytes with its header
    rec.views.append(iso19794_4.FingerView(8, rec.views[0].data, 33, 41, 0, 0, representation=1))
    data = iso19794_4.encode(rec)
    assert data[14] == 1 and data[15] == 2
    r = data[16:]
    assert r[24:31] == bytes([1, 0x00, 0x40, 2, 7, 0, 1])  # certification record, then position 7
    back = iso19794_4.decode(data)
    assert back.views[0].certifications == [CertificationBlock(0x40, 2)] and back.views[0].extended.endswith(b"abc")
    assert back.views[1].quality_blocks == [] and back.views[1].captured_at is None and back.views[1].representation == 1
    assert iso19794_4.encode(back) == data
    rec.certification_flag = False  # certification blocks without the flag cannot be written
    with pytest.raises(RecordError, match="certification"):
        iso19794_4.encode(rec)


def test_finger_2011_matches_the_header_of_a_real_record():
    """Our encoder, given the real record's field values, writes its header byte for byte; our
    decoder reads those values back from it."""
    image_len = 0x2D00  # the published copy stops inside this field; the rest is extended data
    ext_len = 0x2E80 - 16 - 49 - 4 - image_len
    ext = struct.pack(">HH", 3, ext_len) + bytes(ext_len - 4)
    view = iso19794_4.FingerView(7, bytes(image_len), 287, 413, 89, 29, quality_blocks=[QualityBlock(89, 0x40, 0x0F)],
                                 certifications=[CertificationBlock(0x40, 2)] * 2,
                                 captured_at=dt.datetime(2019, 11, 8, 17, 57, 1, 483000), extended=ext)
    rec = iso19794_4.FingerImageRecord([view], iso19794_4.Compression.JPEG2000_LOSSLESS, (500, 500), (500, 500), 8,
                                       edition=2011, certification_flag=True)
    data = iso19794_4.encode(rec)
    assert data[:len(REAL_FIR_2011)] == REAL_FIR_2011
    back = iso19794_4.decode(REAL_FIR_2011 + data[len(REAL_FIR_2011):])
    v = back.views[0]
    assert (v.position, v.width, v.height, v.impression, v.quality) == (7, 287, 413, 29, 89)
    assert v.captured_at == dt.datetime(2019, 11, 8, 17, 57, 1, 483000, tzinfo=dt.UTC)
    assert back.image_ppi == (500, 500) and back.compression == iso19794_4.Compression.JPEG2000_LOSSLESS


def test_face_2011_layout_field_by_field():
    """ISO/IEC 19794-5:2011 tables 2 (general header), 4 (representation header), the facial
    information, landmark and image information blocks."""
    rgb = np.random.default_rng(5).integers(0, 256, (48, 40, 3), dtype=np.uint8)
    face = iso19794_5.face_from_image(_j2k(rgb), lossless=True, face_image_type=1, source_type=6,
                                      quality_blocks=[QualityBlock(77)], captured_at=WHEN, subject_height=0x55,
                                      spatial_sampling_level=1, gender=1)
    face.feature_points = [iso19794_5.FeaturePoint(1, 0x31, 12, 20, 3)]
    data = iso19794_5.encode([face], edition=2011)
    assert data[0:8] == b"FAC\x00030\x00" and struct.unpack(">I", data[8:12])[0] == len(data)
    assert data[12:14] == b"\x00\x01" and data[14] == 0 and data[15:17] == b"\x00\x00"  # 1 rep, no cert, temporal 0
    r = data[17:]
    assert struct.unpack(">I", r[0:4])[0] == len(data) - 17
    assert r[4:13] == bytes.fromhex("07EA 0C 03 08 0F 1E 00FA")
    assert r[13:18] == bytes([6, 0, 0, 0, 0])  # video frame, digital camera; vendor and type not given
    assert r[18:24] == bytes([1, 77, 0, 0, 0, 0])  # one quality block, no algorithm named
    info = r[24:41]
    assert info == bytes([0, 1, 1, 0, 0, 0x55, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])  # 1 landmark, male, height
    assert r[41:49] == bytes([1, 0x31, 0, 12, 0, 20, 0, 3])
    img = r[49:60]
    assert img[0] == 1 and img[1] == 2 and struct.unpack(">HH", img[2:6]) == (40, 48)  # full frontal, J2K lossless
    assert img[6] == 1 and img[7:9] == b"\x00\x00" and img[9] == 0 and img[10] == 1  # level, none, 0, 24-bit RGB
    assert struct.unpack(">I", r[60:64])[0] == len(face.image) and r[64:] == face.image
    assert iso19794_5.edition_of(data) == 2011
    [back] = iso19794_5.decode(data)
    assert np.array_equal(back.decode_image(), rgb)
    assert back.captured_at == WHEN and back.quality == 77 and back.feature_points[0].z == 3
    assert iso19794_5.encode([back], edition=2011) == data


def test_face_2011_matches_the_header_of_a_real_record():
    image_len = 0x5A3B - 17 - 4 - 9 - 5 - 6 - 17 - 11 - 4
    face = iso19794_5.FaceImage(bytes(image_len), 2, 240, 320, face_image_type=0, colour_space=0, source_type=0,
                                quality_blocks=[QualityBlock(0, 0x0103, 0x0103)], post_processing=1,
                                captured_at=dt.datetime(2019, 10, 29, 14, 38, 15, 15000))
    data = iso19794_5.encode([face], edition=2011)
    assert data[:len(REAL_FAC_2011)] == REAL_FAC_2011
    [back] = iso19794_5.decode(REAL_FAC_2011 + data[len(REAL_FAC_2011):])
    assert (back.width, back.height, back.image_type, back.face_image_type) == (240, 320, 2, 0)
    assert back.captured_at == dt.datetime(2019, 10, 29, 14, 38, 15, 15000, tzinfo=dt.UTC)


@pytest.mark.parametrize("mutate, match", [
    (lambda d: d[:-1], "length"),
    (lambda d: d[:4] + b"021\x00" + d[8:], "version"),
    (lambda d: d[:14] + b"\x02" + d[15:], "certification"),
    (lambda d: d[:16 + 4 + 2] + b"\x0d" + d[16 + 4 + 3:], "date"),  # month 13
    (lambda d: d[:16] + struct.pack(">I", 10 ** 6) + d[20:], "does not fit"),
    (lambda d: d[:16 + 19] + b"\xc8" + d[16 + 20:], "quality score"),
    (lambda d: d[:16 + 36] + b"\x09" + d[16 + 37:], "compression"),
    (lambda d: d[:16 + 26] + b"\x07" + d[16 + 27:], "scale units"),
])
def test_finger_2011_malformed_is_refused_with_the_reason(finger, mutate, match):
    data = iso19794_4.encode(_finger_record(finger))
    with pytest.raises(RecordFormatError, match=match):
        iso19794_4.decode(mutate(data))


def test_face_2011_malformed_is_refused():
    face = iso19794_5.FaceImage(b"\xff\x4f\xff\x51" + bytes(20), 2, 4, 4)
    data = iso19794_5.encode([face], edition=2011)
    for bad in (data[:14] + b"\x01" + data[15:],  # certification flag
                data[:17] + struct.pack(">I", 9999) + data[21:],  # representation longer than the record
                data[:-1]):
        with pytest.raises(RecordFormatError):
            iso19794_5.decode(bad)
    three_d = bytearray(data)
    three_d[17 + 4 + 9 + 5 + 1 + 17] = 0x81  # face image type: full frontal 3-D
    with pytest.raises(RecordFormatError, match="3-D"):
        iso19794_5.decode(bytes(three_d))
    with pytest.raises(RecordError):
        iso19794_5.encode([face], edition=2009)
    with pytest.raises(RecordError):
        iso19794_5.encode([iso19794_5.FaceImage(b"\x89PNG" + bytes(8), iso19794_5.IMAGE_PNG, 2, 2)])  # 2005: no PNG


def test_the_2005_editions_write_the_same_bytes_as_before():
    """Golden digests made by the 2005 code before the 2011 editions were added."""
    img = np.random.default_rng(7).integers(0, 256, (60, 50), dtype=np.uint8)
    fir = iso19794_4.from_images([(2, img, 64, 0), (13, img, None, 1)], compression=iso19794_4.Compression.RAW,
                                 capture_device_id=7)
    assert hashlib.sha256(fir).hexdigest() == "a4095b344a695bc4ca2b8ee4f258c51178aa9183cc6c8b76eb1302541a73b9ac"
    assert iso19794_4.decode(fir).edition == 2005 and iso19794_4.encode(iso19794_4.decode(fir)) == fir
    jpeg = bytes.fromhex("ffd8ffe0") + bytes(range(200))
    face = iso19794_5.FaceImage(jpeg, 0, 60, 80, gender=2, pose=(1, 2, 3),
                                feature_points=[iso19794_5.FeaturePoint(1, 0x31, 22, 40)], quality=5, device_type=9)
    fac = iso19794_5.encode([face])
    assert hashlib.sha256(fac).hexdigest() == "33a7ac521d54250920e614010a8e02247d7ff0b19b5558ed882c64015b4c257e"
    # a 2011-only data type is written as plain JPEG 2000 in a 2005 record
    j2 = iso19794_5.FaceImage(b"\xff\x4f\xff\x51" + bytes(9), iso19794_5.IMAGE_JPEG2000_LOSSLESS, 3, 3)
    assert iso19794_5.encode([j2])[14 + 20 + 1] == iso19794_5.IMAGE_JPEG2000
