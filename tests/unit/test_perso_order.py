"""Order validation: bad orders are refused with a reason before a card is touched."""

from __future__ import annotations

import base64
import datetime as dt
import io

import pytest
from PIL import Image

from biostation.card import mrz as mrzlib
from biostation.card.perso.order import parse_line, validate, validate_vn_id
from biostation.errors import OrderRejected


def portrait(w=240, h=320, quality=80) -> bytes:
    im = Image.new("RGB", (w, h), (200, 180, 160))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def good(**over):
    o = {"order_id": "HN-1", "issuing_state": "VNM", "id_number": "001099012345", "surname": "NGUYEN",
         "given_names": "VAN AN", "nationality": "VNM", "sex": "M", "date_of_birth": "1999-01-31",
         "date_of_expiry": "2039-01-31", "portrait": base64.b64encode(portrait()).decode()}
    o.update(over)
    return {k: v for k, v in o.items() if v is not None}


def reason(raw, **kw) -> str:
    with pytest.raises(OrderRejected) as ei:
        validate(raw, **kw)
    return ei.value.reason


def test_good_order_builds_cccd_mrz():
    o = validate(good())
    assert o.document_number == "099012345" and o.can == "012345"
    m = mrzlib.parse("\n".join(o.mrz_lines))
    assert m.valid and m.kind == "TD1"
    assert m.optional_data.startswith("001099012345<<")
    assert o.mrz_information == mrzlib.bac_seed_info("099012345", "990131", "390131")
    assert "NGUYEN" not in repr(o)  # no personal data in logs


@pytest.mark.parametrize("field", ["order_id", "surname", "sex", "date_of_birth", "date_of_expiry", "nationality"])
def test_missing_fields(field):
    assert reason(good(**{field: None})) == f"missing field: {field}"


def test_missing_portrait_and_id():
    assert reason(good(portrait=None)) == "missing field: portrait"
    assert reason(good(id_number=None)) == "missing field: id_number"


def test_mrz_with_wrong_check_digit_is_rejected():
    o = validate(good())
    lines = list(o.mrz_lines)
    l2 = lines[1]
    bad_cd = str((int(l2[6]) + 1) % 10)
    lines[1] = l2[:6] + bad_cd + l2[7:]
    r = reason(good(mrz=lines))
    assert r.startswith("mrz: wrong check digit") and "date_of_birth" in r
    # a valid MRZ that does not agree with the order's fields
    other = mrzlib.build_td1("ID", "VNM", "099012345", "", "990131", "M", "400131", "VNM", "", "NGUYEN", "VAN AN")
    assert reason(good(mrz=other)) == "mrz: date_of_expiry differs from the order"
    assert validate(good(mrz=o.mrz_lines)).mrz_lines == o.mrz_lines


@pytest.mark.parametrize("idn, why", [
    ("00109901234", "12 digits"),
    ("00109901234A", "12 digits"),
    ("003099012345", "province code 003"),
    ("097099012345", "province code 097"),
    ("001299012345", "century digit"),   # 2 = male born 2000-2099, but born 1999
    ("001199012345", "sex digit"),       # 1 = female
    ("001098012345", "year digits"),
])
def test_vietnamese_id_rules(idn, why):
    with pytest.raises(OrderRejected) as ei:
        validate_vn_id(idn, dt.date(1999, 1, 31), "M")
    assert why in ei.value.reason


def test_vietnamese_id_accepts_21st_century_women():
    validate_vn_id("079305000123", dt.date(2005, 6, 1), "F")  # 079 HCMC, 3 = female 2000s, 05


def test_document_number_must_follow_id():
    assert "last 9 digits" in reason(good(document_number="123456789"))


def test_oversized_and_broken_portraits():
    big = portrait(1600, 2000, quality=95)
    assert len(big) > 48 * 1024
    assert "larger than" in reason(good(portrait=base64.b64encode(big).decode()))
    assert "larger than" in reason(good(), max_portrait_bytes=1000)
    assert reason(good(portrait=base64.b64encode(b"GIF89a....").decode())) == "portrait: not a JPEG or JPEG 2000 image"
    assert reason(good(portrait=base64.b64encode(b"\xff\xd8\xff\xe0garbage").decode())) == \
        "portrait: the jpeg image does not decode"
    assert reason(good(portrait="***")) == "portrait: not valid base64"


def test_portrait_file_relative_to_orders(tmp_path):
    (tmp_path / "p.jpg").write_bytes(portrait())
    o = validate(good(portrait=None, portrait_file="p.jpg"), base_dir=tmp_path)
    assert o.portrait_size == (240, 320)
    assert reason(good(portrait=None, portrait_file="nope.jpg"), base_dir=tmp_path) == "portrait_file: not found"


def test_other_bad_values():
    assert "sex" in reason(good(sex="Q"))
    assert "before the date of birth" in reason(good(date_of_expiry="1990-01-01"))
    assert "YYYY-MM-DD" in reason(good(date_of_birth="31/01/1999"))
    assert "can" in reason(good(can="12ab56"))
    assert "already expired" in reason(good(), today=dt.date(2040, 1, 1))


def test_parse_line():
    assert parse_line("{not json", 3)[0] == "line:3"
    assert parse_line("[1,2]", 4)[2] == "not a JSON object"
    assert parse_line('{"surname": "X"}', 5)[2] == "missing field: order_id"
    oid, raw, err = parse_line('{"order_id": "A"}', 6)
    assert (oid, err) == ("A", None)
