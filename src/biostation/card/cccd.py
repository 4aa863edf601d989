"""The Vietnamese 12-digit personal identification number (số định danh cá nhân) and its cross-checks.

Structure (Circular 07/2016/TT-BCA, Art. 7, on Decree 137/2015/ND-CP): digits 1-3 the province
(or centrally-run city) code of the place of birth registration, from the administrative unit
codes of Decision 124/2004/QD-TTg; digit 4 century and sex (0/1: 20th century male/female, 2/3:
21st, 4/5: 22nd, 6/7: 23rd, 8/9: 24th); digits 5-6 the last two digits of the year of birth;
digits 7-12 a serial number.

On the CCCD chip (``../shared/specs/vn-cccd-chip.md``) the same number is DG13 field 1, the TD1
MRZ document number is its *last 9 digits*, the MRZ optional data starts with all 12, and the
PACE CAN printed on the card is commonly its last 6 digits. :func:`cross_check` compares all of
them and reports every mismatch; it never hides one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .mrz import MRZ

__all__ = ["PROVINCES", "IdNumber", "can_from_id", "cross_check", "parse_id"]

#: province codes (Decision 124/2004/QD-TTg) of the 63 provinces and cities
PROVINCES = {
    "001": "Hà Nội", "002": "Hà Giang", "004": "Cao Bằng", "006": "Bắc Kạn", "008": "Tuyên Quang",
    "010": "Lào Cai", "011": "Điện Biên", "012": "Lai Châu", "014": "Sơn La", "015": "Yên Bái",
    "017": "Hòa Bình", "019": "Thái Nguyên", "020": "Lạng Sơn", "022": "Quảng Ninh", "024": "Bắc Giang",
    "025": "Phú Thọ", "026": "Vĩnh Phúc", "027": "Bắc Ninh", "030": "Hải Dương", "031": "Hải Phòng",
    "033": "Hưng Yên", "034": "Thái Bình", "035": "Hà Nam", "036": "Nam Định", "037": "Ninh Bình",
    "038": "Thanh Hóa", "040": "Nghệ An", "042": "Hà Tĩnh", "044": "Quảng Bình", "045": "Quảng Trị",
    "046": "Thừa Thiên Huế", "048": "Đà Nẵng", "049": "Quảng Nam", "051": "Quảng Ngãi", "052": "Bình Định",
    "054": "Phú Yên", "056": "Khánh Hòa", "058": "Ninh Thuận", "060": "Bình Thuận", "062": "Kon Tum",
    "064": "Gia Lai", "066": "Đắk Lắk", "067": "Đắk Nông", "068": "Lâm Đồng", "070": "Bình Phước",
    "072": "Tây Ninh", "074": "Bình Dương", "075": "Đồng Nai", "077": "Bà Rịa - Vũng Tàu",
    "079": "Hồ Chí Minh", "080": "Long An", "082": "Tiền Giang", "083": "Bến Tre", "084": "Trà Vinh",
    "086": "Vĩnh Long", "087": "Đồng Tháp", "089": "An Giang", "091": "Kiên Giang", "092": "Cần Thơ",
    "093": "Hậu Giang", "094": "Sóc Trăng", "095": "Bạc Liêu", "096": "Cà Mau",
}


@dataclass
class IdNumber:
    number: str
    province_code: str
    province: str | None
    sex: str  # "M" or "F"
    century: int  # 1900, 2000, ...
    birth_year: int
    problems: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, "province_code": self.province_code, "province": self.province,
                "sex": self.sex, "birth_year": self.birth_year, "valid": self.valid, "problems": list(self.problems)}


def parse_id(number: str) -> IdNumber:
    """Decode a 12-digit ID. ValueError if it is not 12 digits; other faults go in ``problems``."""
    n = number.strip()
    if not re.fullmatch(r"\d{12}", n):
        raise ValueError("a Vietnamese personal ID number has exactly 12 digits")
    code, g, yy = n[:3], int(n[3]), int(n[4:6])
    century = 1900 + 100 * (g // 2)
    rec = IdNumber(n, code, PROVINCES.get(code), "F" if g % 2 else "M", century, century + yy)
    if rec.province is None:
        rec.problems.append(f"province code {code} is not a province of birth registration")
    return rec


def can_from_id(number: str) -> str:
    """The CAN Vietnamese readers use: the last 6 digits of the ID number."""
    return parse_id(number).number[6:]


_SEX_WORDS = {"nam": "M", "nữ": "F", "nu": "F", "male": "M", "female": "F", "m": "M", "f": "F"}


def cross_check(id_number: str | None, dg13: dict[str, Any] | None, mrz: MRZ | None,
                today_year: int | None = None) -> dict[str, Any]:
    """Compare the ID number with DG13 and the MRZ. Returns ``{"ok": bool, "checks": {...}, "problems": [...]}``.

    ``id_number`` defaults to DG13 field 1, else the 12 digits at the start of the TD1 optional data.
    """
    checks: dict[str, bool] = {}
    problems: list[str] = []
    dg13 = dg13 or {}
    mrz_id = None
    if mrz is not None and mrz.kind == "TD1":
        m = re.match(r"(\d{12})", mrz.optional_data)
        mrz_id = m.group(1) if m else None
    number = id_number or dg13.get("id_number") or mrz_id
    if not number:
        return {"ok": False, "id": None, "checks": {}, "problems": ["no 12-digit ID number on the card"]}
    try:
        rec = parse_id(number)
    except ValueError as exc:
        return {"ok": False, "id": None, "checks": {"id_format": False}, "problems": [str(exc)]}
    checks["id_format"] = True
    checks["province_code"] = rec.province is not None
    problems += rec.problems
    if today_year is not None and rec.birth_year > today_year:
        checks["birth_year_plausible"] = False
        problems.append(f"ID says born in {rec.birth_year}, in the future")
    if "id_number" in dg13:
        checks["dg13_id"] = dg13["id_number"] == rec.number
        if not checks["dg13_id"]:
            problems.append("DG13 ID number differs from the ID number")
    dob = dg13.get("date_of_birth")
    if dob:
        m = re.fullmatch(r"(\d{2})/(\d{2})/(\d{4})", dob)
        checks["dg13_birth_year"] = bool(m) and int(m.group(3)) == rec.birth_year
        if not checks["dg13_birth_year"]:
            problems.append(f"DG13 date of birth {dob} does not match year {rec.birth_year} in the ID")
        if m and mrz is not None:
            checks["mrz_birth_date"] = mrz.date_of_birth == m.group(3)[2:] + m.group(2) + m.group(1)
            if not checks["mrz_birth_date"]:
                problems.append("MRZ date of birth differs from DG13")
    sex = dg13.get("sex")
    if sex:
        s = _SEX_WORDS.get(sex.strip().lower())
        checks["dg13_sex"] = s == rec.sex
        if not checks["dg13_sex"]:
            problems.append(f"DG13 sex {sex!r} does not match the ID's sex digit")
    if mrz is not None:
        if mrz.sex in ("M", "F"):
            checks["mrz_sex"] = mrz.sex == rec.sex
            if not checks["mrz_sex"]:
                problems.append("MRZ sex does not match the ID's sex digit")
        checks["mrz_birth_year"] = mrz.date_of_birth[:2] == number[4:6]
        if not checks["mrz_birth_year"]:
            problems.append("MRZ year of birth does not match the ID")
        if mrz.kind == "TD1":
            checks["mrz_document_number"] = mrz.document_number == rec.number[3:]
            if not checks["mrz_document_number"]:
                problems.append("MRZ document number is not the last 9 digits of the ID")
            checks["mrz_optional_data"] = mrz_id == rec.number
            if not checks["mrz_optional_data"]:
                problems.append("MRZ optional data does not carry the ID number")
        checks["mrz_check_digits"] = mrz.valid
        if not mrz.valid:
            problems.append("MRZ check digits fail: " + ", ".join(k for k, v in mrz.checks.items() if not v))
    return {"ok": all(checks.values()), "id": rec.to_dict(), "checks": checks, "problems": problems}
