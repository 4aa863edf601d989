"""The personalization APDU sequence for a blank eMRTD applet.

The commands are those of the open-source eMRTD applets (the JMRTD passport applet and its
forks, which the usual Java Card issuance tools drive), sent in plain before the applet is locked:

=====================  ==========================================================================
step                   command
=====================  ==========================================================================
select the applet      ``00 A4 04 0C 07 A0000002471001``  (the eMRTD AID, Doc 9303-10 §3.6.2)
create a file          ``00 E0 00 00 06 63 04 <size:2> <FID:2>``  (CREATE FILE, FCP tag 63)
select it              ``00 A4 02 0C 02 <FID>``
write it in chunks     ``00 D6 <offset:2> <data>`` (UPDATE BINARY; offset < 32768), beyond that
                       ``00 D7 00 00 <54 offset><53 data>`` (odd INS with offset DO, ISO 7816-4 §7.2)
BAC / PACE-MRZ key     ``00 DA 00 62 <62 { 5F1F doc no, 5F18 birth, 5F19 expiry }>`` (PUT DATA)
PACE CAN               ``00 DA 00 66 <66 { 80 CAN }>``  (the JMRTD applet has no PACE: our tag)
AA private key         ``00 DA 00 63 <63 { PKCS#8 EC key }>``  (EC AA: our tag; 60/61 are the
                       applet's RSA modulus/exponent)
CA private key         ``00 DA 00 64 <64 { PKCS#8 EC key }>``  (chip authentication: our tag)
EAC trust point        ``00 DA 00 65 <65 { 7F21 CVCA certificate }>``  (TA trust point; the
                       chip's current date starts at the certificate's effective date: our tag)
lock                   ``00 DA DE AD``  (the applet refuses every write from then on)
=====================  ==========================================================================

:func:`plan` lists the steps for a :class:`~biostation.card.perso.image.ChipImage` (pure: the
fault tests tear a card at each index of this list); :func:`write` sends them on an
:class:`~biostation.card.apdu.ApduChannel`. Keys and personal data travel in the command data,
which is never logged; labels name the step only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from ...errors import CardError, PersoError
from .. import tlv
from ..apdu import INS, ApduChannel, Command
from ..lds import FILES
from .image import ChipImage

__all__ = ["PersoStep", "plan", "write", "EMRTD_AID", "P2_MRZ", "P2_CAN", "P2_AA_EC", "P2_CA_EC", "P2_CVCA", "LOCK_P1P2",
           "DEFAULT_CHUNK", "DEFAULT_EXTENDED_CHUNK", "cplc_serial", "GET_CPLC"]

EMRTD_AID = bytes.fromhex("A0000002471001")
P2_MRZ, P2_AA_EC, P2_CAN, P2_CA_EC, P2_CVCA = 0x62, 0x63, 0x66, 0x64, 0x65
LOCK_P1P2 = 0xDEAD
#: UPDATE BINARY data per APDU: a short APDU carries up to 255 bytes; 223 leaves room for a
#: secure-messaging wrapper on applets that take writes under SM
DEFAULT_CHUNK = 223
#: with extended length (Java Card 3 applets that implement ExtendedLength): fewer APDUs, and the
#: per-APDU latency of a contact chip (10-20 ms) is paid ~5x less often
DEFAULT_EXTENDED_CHUNK = 1024
#: GlobalPlatform GET DATA for the Card Production Life Cycle data (IC serial number inside)
GET_CPLC = Command(0x80, 0xCA, 0x9F, 0x7F, le=256)


@dataclass(frozen=True)
class PersoStep:
    """One APDU of the sequence. ``file`` names the file it writes (None for other steps);
    ``last_of_file`` marks the APDU that completes that file."""

    label: str
    command: Command
    file: str | None = None
    last_of_file: bool = False


def _bac_seed_tlv(mrz_information: str) -> bytes:
    # MRZ_information = docno(9) cd dob(6) cd doe(6) cd
    docno, dob, doe = mrz_information[0:9], mrz_information[10:16], mrz_information[17:23]
    return tlv.encode(0x62, [tlv.encode(0x5F1F, docno.encode("ascii")), tlv.encode(0x5F18, dob.encode("ascii")),
                             tlv.encode(0x5F19, doe.encode("ascii"))])


def plan(image: ChipImage, chunk: int = DEFAULT_CHUNK) -> list[PersoStep]:
    """The full APDU sequence for ``image``: files (EF.SOD last), secrets, lock.

    ``chunk`` above 255 makes extended-length UPDATE BINARY commands: only for a card that
    announces extended length (ATR card capabilities), on a channel with ``extended=True``.
    """
    from cryptography.hazmat.primitives import serialization

    if not 1 <= chunk <= 65535:
        raise PersoError(f"chunk of {chunk} bytes: must be 1..65535 (above 255 only for extended length)")
    steps = [PersoStep("select applet", Command(0x00, INS.SELECT, 0x04, 0x0C, EMRTD_AID))]
    for name, data in image.files.items():
        if name not in FILES:
            raise PersoError(f"no file identifier for {name}")
        fid = FILES[name].fid
        if not data or len(data) > 0xFFFF:
            raise PersoError(f"{name}: {len(data)} bytes does not fit an elementary file")
        steps.append(PersoStep(f"create {name}", Command(0x00, INS.CREATE_FILE, 0, 0,
                                                         tlv.encode(0x63, len(data).to_bytes(2, "big") + fid.to_bytes(2, "big")))))
        steps.append(PersoStep(f"select {name}", Command(0x00, INS.SELECT, 0x02, 0x0C, fid.to_bytes(2, "big"))))
        for off in range(0, len(data), chunk):
            part = data[off:off + chunk]
            last = off + chunk >= len(data)
            if off <= 0x7FFF:
                cmd = Command(0x00, INS.UPDATE_BINARY, off >> 8, off & 0xFF, part)
            else:
                body = tlv.encode(0x54, off.to_bytes(3, "big")) + tlv.encode(0x53, part)
                cmd = Command(0x00, INS.UPDATE_BINARY | 1, 0, 0, body)
            steps.append(PersoStep(f"write {name} @{off}", cmd, name, last))
    steps.append(PersoStep("put MRZ key", Command(0x00, INS.PUT_DATA, 0x00, P2_MRZ, _bac_seed_tlv(image.mrz_information))))
    if image.can:
        steps.append(PersoStep("put CAN", Command(0x00, INS.PUT_DATA, 0x00, P2_CAN,
                                                  tlv.encode(P2_CAN, tlv.encode(0x80, image.can.encode("ascii"))))))
    if image.aa_key is not None:
        der = image.aa_key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption())
        steps.append(PersoStep("put AA key", Command(0x00, INS.PUT_DATA, 0x00, P2_AA_EC, tlv.encode(P2_AA_EC, der))))
    if image.ca_key is not None:
        der = image.ca_key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption())
        steps.append(PersoStep("put CA key", Command(0x00, INS.PUT_DATA, 0x00, P2_CA_EC, tlv.encode(P2_CA_EC, der))))
    if image.cvca is not None:
        steps.append(PersoStep("put CVCA trust point", Command(0x00, INS.PUT_DATA, 0x00, P2_CVCA,
                                                               tlv.encode(P2_CVCA, image.cvca.encode()))))
    steps.append(PersoStep("lock", Command(0x00, INS.PUT_DATA, LOCK_P1P2 >> 8, LOCK_P1P2 & 0xFF)))
    return steps


def write(channel: ApduChannel, steps: list[PersoStep],
          on_step: Callable[[int, PersoStep], None] | None = None) -> float:
    """Send every step; typed CardError (ApduError with ``.sw``, CardRemovedError, ...) on the
    first that fails, with the step label in the message. Returns the seconds spent."""
    t0 = time.perf_counter()
    for i, step in enumerate(steps):
        try:
            channel.send(step.command, step.label)
        except CardError as exc:
            exc.step_index = i  # type: ignore[attr-defined]
            raise
        if on_step is not None:
            on_step(i, step)
    return time.perf_counter() - t0


def cplc_serial(channel: ApduChannel) -> str:
    """The chip's IC serial number from its CPLC data (GlobalPlatform Card Spec. 2.3 §H.6:
    IC fabricator 2, IC type 2, OS id 2, OS date 2, OS level 2, fabrication date 2, IC serial 4,
    ...), as hex with the fabricator and type in front so serials of different fabs differ."""
    data = channel.send(GET_CPLC, "GET DATA CPLC")
    if data[:2] == b"\x9f\x7f":
        data = tlv.decode_one(data, "CPLC", allow_trailing=True).value
    if len(data) < 16:
        raise PersoError(f"CPLC data of {len(data)} bytes: no IC serial number")
    return (data[0:4] + data[12:16]).hex().upper()
