"""Ready-made cards for the virtual chip: a Vietnamese CCCD-like ID card and a TD3 passport.

Both are complete, signed documents: every data group, EF.COM and an EF.SOD signed by a Document
Signer of a test PKI (:func:`biostation.card.pki.make_test_pki`), so passive authentication
verifies against the CSCA the profile hands back.

* ``cccd``: TD1 MRZ (IDVNM, doc number = last 9 digits of the 12-digit ID), DG1, DG2 (a
  synthetic JPEG face, 20 KB by default), DG3 (two synthetic index-finger images, JPEG 2000 in
  ISO/IEC 19794-4, readable after terminal authentication with the profile's test CVCA ->
  DV -> IS hierarchy: :meth:`Profile.terminal`), DG13 in the CCCD layout, DG14
  (chip authentication ECDH brainpoolP256r1 AES-128, active authentication ECDSA-SHA256),
  DG15 (EC key). EF.CardAccess as observed on real cards: TA, CA and PACE-ECDH-GM-AES-128 on
  brainpoolP256r1. CAN = last 6 digits of the ID.
* ``td3``: a BAC-only passport (no EF.CardAccess) with DG1, DG2, DG11, DG12 and an RSA
  active-authentication key (ISO/IEC 9796-2); it exercises the BAC fallback.

The holder data are invented (no real person).
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from biostation.card import cvc, dg3, lds, mrz, sod
from biostation.card.pki import TestPKI, make_test_pki
from biostation.card.secinfo import (
    ID_AA,
    ID_TA,
    ActiveAuthInfo,
    ChipAuthInfo,
    ChipAuthPublicKeyInfo,
    PaceInfo,
    SecurityInfo,
    encode_security_infos,
)

from .card import ACCESS_ALWAYS, ACCESS_EAC, ACCESS_SM, CardData

__all__ = ["PROFILES", "Holder", "Profile", "build_profile", "eac_state", "synthetic_face_jpeg", "synthetic_finger"]

PROFILES = ("cccd", "td3")


@dataclass
class Profile:
    data: CardData
    pki: TestPKI
    can: str | None
    mrz: str  # the MRZ text, lines joined by newlines
    name: str
    eac: cvc.TestHierarchy | None = None  # the CVCA the chip trusts, a DV and an IS under it

    def info(self) -> dict[str, Any]:
        return {"profile": self.name, "can": self.can, "mrz": self.mrz}

    def terminal(self) -> Any:
        """Inspection-system credentials that may read DG3/DG4 of this card."""
        from biostation.card.ta import Terminal

        if self.eac is None:
            raise ValueError(f"profile {self.name} has no EAC hierarchy")
        return Terminal(self.eac.chain, self.eac.terminal_signer(), self.eac.cvca)


def synthetic_finger(width: int = 256, height: int = 320, seed: int = 1) -> Any:
    """A fingerprint-like grayscale image (uint8): curved ridges about 9 pixels apart inside an
    elliptic contact area on a light background. Not a real finger; enough for codecs and reads."""
    import numpy as np

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    cx, cy = width * (0.45 + 0.1 * rng.random()), height * (0.4 + 0.1 * rng.random())
    r = np.hypot(xx - cx, (yy - cy) * 0.8)
    ridges = np.sin(r / 1.45 + 2.0 * np.arctan2(yy - cy, xx - cx) * (0.3 + 0.2 * rng.random()))
    inside = ((xx - width / 2) / (width * 0.42)) ** 2 + ((yy - height / 2) / (height * 0.46)) ** 2 < 1
    img = np.where(inside, 128 - 90 * ridges, 235) + rng.normal(0, 6, ridges.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def eac_state(hierarchy: cvc.TestHierarchy) -> dict[str, Any]:
    """What the chip keeps for terminal authentication: the CVCA trust point and its current
    date (the CVCA's effective date)."""
    return {"trust_points": [hierarchy.cvca.encode().hex()], "current_date": hierarchy.cvca.effective.isoformat()}


def synthetic_face_jpeg(size: int = 20_000, width: int = 480, height: int = 640, seed: int = 7) -> bytes:
    """A JPEG portrait-like picture of exactly ``size`` bytes (a COM segment pads it).

    A smooth oval on a gradient with mild noise: it compresses like a photo, not like a flat
    test card, and needs no data files.
    """
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    bg = 180 + 40 * (yy / height)
    face = ((xx - width / 2) / (width * 0.28)) ** 2 + ((yy - height * 0.45) / (height * 0.3)) ** 2 < 1
    img = np.stack([bg, bg * 0.95, bg * 0.9], -1)
    img[face] = (205, 160, 130)
    img += rng.normal(0, 6, img.shape)
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")
    for q in (85, 75, 60, 45, 30, 20, 10, 5):
        buf = io.BytesIO()
        pil.save(buf, "JPEG", quality=q)
        jpeg = buf.getvalue()
        if len(jpeg) <= size - 4 or q == 5:
            break
    if len(jpeg) > size - 4:  # too big even at the lowest quality: shrink
        pil = pil.resize((width // 2, height // 2))
        buf = io.BytesIO()
        pil.save(buf, "JPEG", quality=30)
        jpeg = buf.getvalue()
    pad = size - len(jpeg)
    if pad >= 4:
        segs = []
        while pad >= 4:  # COM segments hold at most 65533 bytes each
            n = min(pad - 4, 65533) if pad - 4 <= 65533 else 65533
            segs.append(b"\xff\xfe" + struct.pack(">H", n + 2) + bytes(n))
            pad -= n + 4
        jpeg = jpeg[:2] + b"".join(segs) + jpeg[2:]
    return jpeg


def _spki(key: Any) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _finish(data: CardData, dgs: dict[int, bytes], com: list[int], pki: TestPKI) -> None:
    data.add(0x011E, lds.encode_com(lds.EFCom("0108", "040000", com)), 0x1E, ACCESS_SM)
    for n, raw in dgs.items():
        data.add(0x0100 + n, raw, n, ACCESS_EAC if n in (3, 4) else ACCESS_SM)
    data.add(0x011D, sod.build_sod(dgs, pki.signer(), lds_version=("0108", "040000")), 0x1D, ACCESS_SM)


def build_profile(name: str = "cccd", pki: TestPKI | None = None, face_bytes: int = 20_000,
                  id_number: str = "001099012345", can_tries: int | None = 3,
                  eac: cvc.TestHierarchy | None = None, fingerprints: bool = True,
                  holder: Holder | None = None) -> Profile:
    """A fresh card of profile ``name`` (``cccd`` or ``td3``). ``can_tries``: CAN retry counter
    (None: unlimited; wrong tries answer 6300). ``eac``: the CVCA hierarchy the cccd chip
    trusts (default: a fresh one); ``fingerprints=False`` makes a cccd card without DG3.
    ``holder``: a real person's chip photo and index fingers for DG2/DG3 of a cccd card (default:
    synthetic ones, which no face or finger comparison can match)."""
    if name == "cccd":
        return _cccd(pki or make_test_pki("VN"), face_bytes, id_number, can_tries,
                     eac or cvc.make_test_hierarchy("VN"), fingerprints, holder)
    if name == "td3":
        return _td3(pki or make_test_pki("UT"), face_bytes)
    raise ValueError(f"unknown profile {name!r} (known: {', '.join(PROFILES)})")


@dataclass
class Holder:
    """The biometrics of a card's holder: ``face_jpeg`` the DG2 portrait (an ISO token, JPEG) and
    ``fingers`` ``(position, uint8 image, ppi)`` for DG3."""

    face_jpeg: bytes
    fingers: list[tuple[int, Any, int]]


def _cccd(pki: TestPKI, face_bytes: int, id_number: str, can_tries: int | None, eac: cvc.TestHierarchy,
          fingerprints: bool, holder: Holder | None = None) -> Profile:
    doc9 = id_number[3:]
    yy = id_number[4:6]
    dob, doe = f"{yy}0101", f"{(int(yy) + 40) % 100:02d}0101"
    lines = mrz.build_td1("ID", "VNM", doc9, id_number + "<<" + mrz.check_digit(id_number), dob,
                          "M" if int(id_number[3]) % 2 == 0 else "F", doe, "VNM", "", "NGUYEN", "VAN AN")
    century = 1900 + 100 * (int(id_number[3]) // 2)
    aa_key = ec.generate_private_key(ec.BrainpoolP256R1())
    ca_key = ec.generate_private_key(ec.BrainpoolP256R1())
    dg13 = {"id_number": id_number, "full_name": "Nguyễn Văn An", "date_of_birth": f"01/01/{century + int(yy)}",
            "sex": "Nam" if int(id_number[3]) % 2 == 0 else "Nữ", "nationality": "Việt Nam", "ethnicity": "Kinh",
            "religion": "Không", "place_of_origin": "Xã Yên Hòa, Huyện Yên Mô, Ninh Bình",
            "place_of_residence": "Số 1 Tràng Tiền, Hoàn Kiếm, Hà Nội", "identifying_marks": "Nốt ruồi cách 2cm trên mép phải",
            "date_of_issue": "01/07/2024", "date_of_expiry": f"01/01/{century + int(yy) + 40}",
            "parents": {"father": "Nguyễn Văn Bình", "mother": "Trần Thị Cúc"}, "spouse": ""}
    pace_info = PaceInfo(PaceInfo.oid_for("ECDH", "GM", "AES", 16), version=2, parameter_id=13)
    ca_info = ChipAuthInfo("0.4.0.127.0.7.2.2.3.2.2", version=1)
    card_access = encode_security_infos([SecurityInfo(ID_TA, b"\x30\x0d\x06\x08\x04\x00\x7f\x00\x07\x02\x02\x02"
                                                      b"\x02\x01\x01"), ca_info, pace_info])
    dg14 = encode_security_infos([ca_info, pace_info,
                                  ChipAuthPublicKeyInfo("0.4.0.127.0.7.2.2.1.2", public_key_info=_spki(ca_key)),
                                  ActiveAuthInfo(ID_AA, version=1, signature_algorithm="0.4.0.127.0.7.1.1.4.1.3")])
    dgs = {1: lds.encode_dg1(lines),
           2: lds.encode_dg2([lds.FaceImage(holder.face_jpeg if holder else synthetic_face_jpeg(face_bytes),
                                            lds.IMAGE_JPEG, 480, 640)]),
           3: dg3.encode_dg3([dg3.finger_from_pixels(img, p, ppi=ppi) for p, img, ppi in holder.fingers]
                             if holder else [dg3.finger_from_pixels(synthetic_finger(seed=p), p) for p in (2, 7)]),
           13: lds.encode_dg13(dg13), 14: lds.encode_dg14(dg14), 15: lds.encode_dg15(_spki(aa_key))}
    data = CardData(can=id_number[6:], mrz_information=mrz.parse("\n".join(lines)).seed_info(), aa_key=aa_key,
                    aa_hash="sha256", ca_key=ca_key,
                    counters={"can": can_tries, "can_max": can_tries} if can_tries else {},
                    state={"eac": eac_state(eac)})
    if not fingerprints:
        del dgs[3]
    data.add(0x011C, card_access, 0x1C, ACCESS_ALWAYS, in_mf=True)
    # EF.ATR/INFO: extended length information, 64 KiB commands and responses
    data.add(0x2F01, bytes.fromhex("7F66080202FFFF0202FFFF"), 0x01, ACCESS_ALWAYS, in_mf=True)
    _finish(data, dgs, sorted(dgs), pki)
    return Profile(data, pki, id_number[6:], "\n".join(lines), "cccd", eac)


def _td3(pki: TestPKI, face_bytes: int) -> Profile:
    lines = mrz.build_td3("P", "UTO", "ERIKSSON", "ANNA MARIA", "L898902C", "UTO", "690806", "F", "940623",
                          "ZE184226B")
    aa_key = rsa.generate_private_key(65537, 2048)
    dgs = {1: lds.encode_dg1(lines),
           2: lds.encode_dg2([lds.FaceImage(synthetic_face_jpeg(face_bytes), lds.IMAGE_JPEG, 480, 640)]),
           11: lds.encode_dg11({"full_name": "ERIKSSON<<ANNA<MARIA", "place_of_birth": "ZENITH, UTOPIA"}),
           12: lds.encode_dg12({"issuing_authority": "UTOPIA PASSPORT OFFICE", "date_of_issue": "19890623"}),
           15: lds.encode_dg15(_spki(aa_key))}
    data = CardData(mrz_information=mrz.parse("\n".join(lines)).seed_info(), aa_key=aa_key, aa_hash="sha1")
    _finish(data, dgs, [1, 2, 11, 12, 15], pki)
    return Profile(data, pki, None, "\n".join(lines), "td3")
