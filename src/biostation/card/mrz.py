"""Machine readable zone (Doc 9303-3 §4.9 check digits, Doc 9303-5 TD1, Doc 9303-4 TD3).

:func:`parse` reads a TD1 (3 lines x 30) or TD3 (2 x 44) MRZ and reports every check digit
instead of raising on the first bad one, because a reader must *show* a mismatch. :func:`build_td1`
and :func:`build_td3` write one from fields (the virtual card and the personalization line use
them). :func:`bac_seed_info` gives the ``MRZ_information`` string BAC and PACE(MRZ) hash
(Doc 9303-11 §9.7.2): document number, date of birth and date of expiry, each with its check
digit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = [
    "MRZ",
    "MRZError",
    "bac_seed_info",
    "build_td1",
    "build_td3",
    "check_digit",
    "key_from_text",
    "parse",
]

_WEIGHTS = (7, 3, 1)


class MRZError(ValueError):
    """Text that is not an MRZ (wrong length or characters)."""


def _value(c: str) -> int:
    if c.isdigit():
        return ord(c) - 48
    if "A" <= c <= "Z":
        return ord(c) - 55
    if c == "<":
        return 0
    raise MRZError(f"character {c!r} is not allowed in an MRZ")


def check_digit(s: str) -> str:
    """Doc 9303-3 §4.9: weights 7, 3, 1 repeating; A=10..Z=35; ``<`` = 0; sum mod 10."""
    return str(sum(_value(c) * _WEIGHTS[i % 3] for i, c in enumerate(s)) % 10)


@dataclass
class MRZ:
    kind: str  # "TD1" or "TD3"
    lines: list[str]
    document_code: str
    issuing_state: str
    document_number: str
    date_of_birth: str  # YYMMDD
    sex: str
    date_of_expiry: str  # YYMMDD
    nationality: str
    surname: str
    given_names: str
    optional_data: str
    optional_data_2: str = ""
    checks: dict[str, bool] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return all(self.checks.values())

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def seed_info(self) -> str:
        return bac_seed_info(self.document_number, self.date_of_birth, self.date_of_expiry)

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "document_code": self.document_code, "issuing_state": self.issuing_state,
                "document_number": self.document_number, "date_of_birth": self.date_of_birth, "sex": self.sex,
                "date_of_expiry": self.date_of_expiry, "nationality": self.nationality, "surname": self.surname,
                "given_names": self.given_names, "optional_data": self.optional_data,
                "optional_data_2": self.optional_data_2, "checks": dict(self.checks)}


def _names(s: str) -> tuple[str, str]:
    s = s.rstrip("<")
    sur, _, given = s.partition("<<")
    return sur.replace("<", " ").strip(), given.replace("<", " ").strip()


def _clean(text: str) -> list[str]:
    raw = [ln.strip().upper() for ln in text.strip().replace("\r", "").split("\n") if ln.strip()]
    if len(raw) == 1:
        one = raw[0]
        if len(one) == 90:
            raw = [one[0:30], one[30:60], one[60:90]]
        elif len(one) == 88:
            raw = [one[:44], one[44:]]
    for ln in raw:
        if not re.fullmatch(r"[A-Z0-9<]+", ln):
            raise MRZError("an MRZ holds only A-Z, 0-9 and <")
    return raw


def parse(text: str) -> MRZ:
    """Parse a TD1 or TD3 MRZ (lines separated by newlines, or run together)."""
    lines = _clean(text)
    if len(lines) == 3 and all(len(ln) == 30 for ln in lines):
        return _parse_td1(lines)
    if len(lines) == 2 and all(len(ln) == 44 for ln in lines):
        return _parse_td3(lines)
    raise MRZError(f"not a TD1 (3x30) or TD3 (2x44) MRZ: {len(lines)} lines of {[len(x) for x in lines]}")


def _parse_td1(lines: list[str]) -> MRZ:
    l1, l2, l3 = lines
    docno, cd_doc, opt1 = l1[5:14], l1[14], l1[15:30]
    checks = {}
    if cd_doc == "<":  # long document number continues in the optional data (Doc 9303-5 note j)
        tail = opt1.partition("<")[0]
        docno, cd_doc = docno + tail[:-1], tail[-1:]
        checks["document_number"] = check_digit(docno) == cd_doc
    else:
        checks["document_number"] = check_digit(docno) == cd_doc
    checks["date_of_birth"] = check_digit(l2[0:6]) == l2[6]
    checks["date_of_expiry"] = check_digit(l2[8:14]) == l2[14]
    checks["composite"] = check_digit(l1[5:30] + l2[0:7] + l2[8:15] + l2[18:29]) == l2[29]
    sur, given = _names(l3)
    return MRZ("TD1", lines, l1[0:2].rstrip("<"), l1[2:5], docno.rstrip("<"), l2[0:6], l2[7], l2[8:14],
               l2[15:18], sur, given, opt1, l2[18:29], checks)


def _parse_td3(lines: list[str]) -> MRZ:
    l1, l2 = lines
    checks = {
        "document_number": check_digit(l2[0:9]) == l2[9],
        "date_of_birth": check_digit(l2[13:19]) == l2[19],
        "date_of_expiry": check_digit(l2[21:27]) == l2[27],
        "personal_number": (check_digit(l2[28:42]) == l2[42]) or (l2[28:43] == "<" * 15),
        "composite": check_digit(l2[0:10] + l2[13:20] + l2[21:43]) == l2[43],
    }
    sur, given = _names(l1[5:44])
    return MRZ("TD3", lines, l1[0:2].rstrip("<"), l1[2:5], l2[0:9].rstrip("<"), l2[13:19], l2[20], l2[21:27],
               l2[10:13], sur, given, l2[28:42], "", checks)


def bac_seed_info(document_number: str, date_of_birth: str, date_of_expiry: str) -> str:
    """``MRZ_information`` of Doc 9303-11 §9.7.2 (document number padded to 9 with ``<``)."""
    doc = document_number.upper().replace(" ", "<")
    if len(doc) < 9:
        doc = doc + "<" * (9 - len(doc))
    for d, name in ((date_of_birth, "date of birth"), (date_of_expiry, "date of expiry")):
        if not re.fullmatch(r"\d{6}", d):
            raise MRZError(f"{name} must be YYMMDD")
    return doc + check_digit(doc) + date_of_birth + check_digit(date_of_birth) + date_of_expiry + check_digit(date_of_expiry)


def key_from_text(text: str) -> str:
    """The BAC/PACE ``MRZ_information`` from what an operator types.

    Accepts a full TD1/TD3 MRZ, or ``DOCNO/YYMMDD/YYMMDD`` (document number, birth, expiry;
    separators ``/``, ``,`` or spaces).
    """
    t = text.strip().upper()
    parts = [p for p in re.split(r"[/, ;]+", t) if p]
    if len(parts) == 3 and all(re.fullmatch(r"\d{6}", p) for p in parts[1:]):
        return bac_seed_info(parts[0], parts[1], parts[2])
    return parse(text).seed_info()


def _field(s: str, n: int) -> str:
    s = re.sub(r"[^A-Z0-9<]", "<", s.upper().replace(" ", "<"))
    if len(s) > n:
        raise MRZError(f"{s!r} is longer than {n} characters")
    return s + "<" * (n - len(s))


def _name_field(surname: str, given: str, n: int) -> str:
    s = _field(surname, n)[:len(surname)] + "<<" + given.upper().replace(" ", "<")
    return _field(s[:n], n)


def build_td1(document_code: str, issuing_state: str, document_number: str, optional_1: str,
              date_of_birth: str, sex: str, date_of_expiry: str, nationality: str, optional_2: str,
              surname: str, given_names: str) -> list[str]:
    """Three 30-character lines with all check digits (Doc 9303-5 §4.2.2)."""
    docno = _field(document_number, 9)
    l1 = _field(document_code, 2) + _field(issuing_state, 3) + docno + check_digit(docno) + _field(optional_1, 15)
    l2 = (date_of_birth + check_digit(date_of_birth) + _field(sex, 1) + date_of_expiry + check_digit(date_of_expiry)
          + _field(nationality, 3) + _field(optional_2, 11))
    l2 += check_digit(l1[5:30] + l2[0:7] + l2[8:15] + l2[18:29])
    return [l1, l2, _name_field(surname, given_names, 30)]


def build_td3(document_code: str, issuing_state: str, surname: str, given_names: str, document_number: str,
              nationality: str, date_of_birth: str, sex: str, date_of_expiry: str,
              personal_number: str = "") -> list[str]:
    """Two 44-character lines with all check digits (Doc 9303-4 §4.2.2)."""
    l1 = _field(document_code, 2) + _field(issuing_state, 3) + _name_field(surname, given_names, 39)
    docno = _field(document_number, 9)
    pn = _field(personal_number, 14)
    pn_cd = check_digit(pn) if personal_number else "<"
    l2 = (docno + check_digit(docno) + _field(nationality, 3) + date_of_birth + check_digit(date_of_birth)
          + _field(sex, 1) + date_of_expiry + check_digit(date_of_expiry) + pn + pn_cd)
    l2 += check_digit(l2[0:10] + l2[13:20] + l2[21:43])
    return [l1, l2]
