"""What one chip receives: the LDS files, signed, and the chip's secrets.

:func:`build_image` turns a validated :class:`~biostation.card.perso.order.Order` into a
:class:`ChipImage` with the encoders of :mod:`biostation.card.lds` and the SOD builder of
:mod:`biostation.card.sod`:

* EF.CardAccess: PACE (id-PACE-ECDH-GM-AES-CBC-CMAC-128, paramId 13 = brainpoolP256r1, the
  set the Vietnamese CCCD announces, ``shared/specs/vn-cccd-chip.md``);
* EF.COM; DG1 (the TD1 MRZ); DG2 (ISO/IEC 19794-5 record of the portrait, in CBEFF);
  DG13 (CCCD fields) when the order is Vietnamese; DG14 (the PACE info, and the active
  authentication info when AA is on); DG15 (the AA public key) when AA is on;
* DG3 (ISO/IEC 19794-4 finger images, JPEG 2000, in CBEFF) with the fingers ``finger_positions``
  names (the two index fingers by default) when the order carries fingers and the line has a
  CVCA trust point; the chip then also gets chip authentication (DG14: ECDH on P-256, AES-128,
  with its private key), the terminal-authentication info in EF.CardAccess, the CVCA
  certificate as trust point, and DG3 readable only after terminal authentication with the
  right to read fingerprints. Without a trust point, fingers are not written (a DG3 that no
  terminal could ever read is worse than none);
* EF.SOD: CMS SignedData over the data-group hashes, signed by the Document Signer (a
  :class:`~biostation.card.sod.Signer`: :class:`~biostation.card.pkcs11.Pkcs11Signer` in
  production, a key file in development).

Secrets: the BAC/PACE-MRZ seed (``MRZ_information``), the CAN, and the AA private key (an EC
P-256 key made fresh for each chip, Doc 9303-11 §6.1 ECDSA active authentication). They go to
the chip by PUT DATA and are never logged.

Cost: one ``Signer.sign`` (the only step that touches the HSM) plus encoding, a few ms.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .. import dg3 as dg3_mod
from .. import lds
from ..cvc import CVCertificate
from ..secinfo import (
    ID_AA,
    ID_TA,
    ActiveAuthInfo,
    ChipAuthInfo,
    ChipAuthPublicKeyInfo,
    PaceInfo,
    SecurityInfo,
    encode_security_infos,
)
from ..sod import Signer, build_sod
from .order import Order

__all__ = ["ChipImage", "build_image", "PACE_INFO", "ECDSA_SHA256_OID", "CA_INFO", "TA_INFO", "INDEX_FINGERS"]

#: the PACE set of the CCCD: ECDH generic mapping, AES-128, brainpoolP256r1 (paramId 13)
PACE_INFO = PaceInfo(PaceInfo.oid_for("ECDH", "GM", "AES", 16), b"", 2, 13)
#: ecdsa-plain-SHA256 (BSI TR-03111), the AA algorithm the CCCD profile announces
ECDSA_SHA256_OID = "0.4.0.127.0.7.1.1.4.1.3"
#: chip authentication id-CA-ECDH-AES-CBC-CMAC-128, version 1 (EAC1: CA, then TA)
CA_INFO = ChipAuthInfo("0.4.0.127.0.7.2.2.3.2.2", b"", 1)
#: TerminalAuthenticationInfo, version 1: SEQUENCE { id-TA, INTEGER 1 }
TA_INFO = SecurityInfo(ID_TA, bytes.fromhex("300d060804007f0007020202020101"))
#: right and left index fingers: what DG3 holds unless the line names others
INDEX_FINGERS = (2, 7)


@dataclass
class ChipImage:
    """The files (name -> bytes, in writing order, EF.SOD last) and the secrets of one chip."""

    order_id: str
    files: dict[str, bytes]
    mrz_information: str
    can: str | None
    aa_key: Any = field(default=None, repr=False)  # cryptography EC private key, or None
    timings: dict[str, float] = field(default_factory=dict)
    ca_key: Any = field(default=None, repr=False)  # chip-authentication private key, or None
    cvca: CVCertificate | None = None  # the trust point of terminal authentication, or None

    @property
    def data_groups(self) -> dict[int, bytes]:
        return {int(n[2:]): v for n, v in self.files.items() if n.startswith("DG")}

    @property
    def size(self) -> int:
        return sum(len(v) for v in self.files.values())

    def __repr__(self) -> str:
        return f"ChipImage({self.order_id!r}, files={list(self.files)}, {self.size} B)"


def _dg13(order: Order) -> bytes:
    fields: dict[str, Any] = {
        "id_number": order.id_number or "",
        "full_name": f"{order.surname} {order.given_names}".strip(),
        "date_of_birth": order.date_of_birth.strftime("%d/%m/%Y"),
        "sex": {"M": "Nam", "F": "Nữ"}.get(order.sex, ""),
        "nationality": "Việt Nam" if order.nationality == "VNM" else order.nationality,
        "date_of_expiry": order.date_of_expiry.strftime("%d/%m/%Y"),
    }
    for n, v in order.dg13.items():
        name = lds.CCCD_FIELDS.get(n)
        if name is not None:
            fields[name] = v
    # the DG13 field order is by number, as on issued cards
    by_name = {v: k for k, v in lds.CCCD_FIELDS.items()}
    ordered = dict(sorted(fields.items(), key=lambda kv: by_name[kv[0]]))
    return lds.encode_dg13(ordered)


def build_image(order: Order, signer: Signer, *, active_auth: bool = True, hash_name: str = "sha256",
                lds_version: tuple[str, str] = ("0108", "040000"), cvca: CVCertificate | None = None,
                finger_positions: tuple[int, ...] = INDEX_FINGERS) -> ChipImage:
    """Encode and sign everything one chip gets. ``timings`` holds ``encode_s`` and ``sign_s``.
    ``cvca``: the CVCA certificate the chip trusts for terminal authentication (DG3 is written
    only with one)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    t0 = time.perf_counter()
    dgs: dict[int, bytes] = {}
    dgs[1] = lds.encode_dg1(order.mrz_lines)
    face = lds.FaceImage(order.portrait, lds.IMAGE_JPEG if order.portrait_format == "jpeg" else lds.IMAGE_JPEG2000,
                         order.portrait_size[0], order.portrait_size[1],
                         gender={"M": 1, "F": 2}.get(order.sex, 0))
    dgs[2] = lds.encode_dg2([face])
    if order.issuing_state == "VNM":
        dgs[13] = _dg13(order)
    infos: list[Any] = [PACE_INFO]
    aa_key = ca_key = None
    card_access_infos: list[Any] = [PACE_INFO]
    fingers = [p for p in finger_positions if p in order.fingers]
    if cvca is not None and fingers:
        dgs[3] = dg3_mod.encode_dg3([dg3_mod.finger_from_pixels(order.fingers[p][0], p, ppi=order.fingers[p][1])
                                     for p in fingers])
        ca_key = ec.generate_private_key(ec.SECP256R1())
        spki = ca_key.public_key().public_bytes(serialization.Encoding.DER,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
        infos += [CA_INFO, ChipAuthPublicKeyInfo("0.4.0.127.0.7.2.2.1.2", b"", spki), TA_INFO]
        card_access_infos += [CA_INFO, TA_INFO]
    if active_auth:
        aa_key = ec.generate_private_key(ec.SECP256R1())
        spki = aa_key.public_key().public_bytes(serialization.Encoding.DER,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
        dgs[15] = lds.encode_dg15(spki)
        infos.append(ActiveAuthInfo(ID_AA, b"", 1, ECDSA_SHA256_OID))
    dgs[14] = lds.encode_dg14(encode_security_infos(infos))
    com = lds.encode_com(lds.EFCom(lds_version[0], lds_version[1], sorted(dgs)))
    card_access = encode_security_infos(card_access_infos)
    t1 = time.perf_counter()
    sod = build_sod(dgs, signer, hash_name)
    t2 = time.perf_counter()
    files = {"EF.CardAccess": card_access, "EF.COM": com}
    files.update({f"DG{n}": dgs[n] for n in sorted(dgs)})
    files["EF.SOD"] = sod
    return ChipImage(order.order_id, files, order.mrz_information, order.can, aa_key,
                     {"encode_s": t1 - t0, "sign_s": t2 - t1}, ca_key, cvca if 3 in dgs else None)
