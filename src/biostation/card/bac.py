"""Basic Access Control, Doc 9303-11 §4.3 and Appendix D.

The terminal proves it read the MRZ: both sides derive K_Enc/K_MAC from SHA-1 of the
``MRZ_information`` (:func:`biostation.card.mrz.bac_seed_info`), exchange nonces in one
GET CHALLENGE + EXTERNAL AUTHENTICATE, and derive 3DES session keys and the SSC.

BAC is the fallback for chips without PACE; it gives weak protection (the keys come from guessable
dates), so readers try PACE first (:mod:`biostation.card.reader`).
"""

from __future__ import annotations

import hashlib
import os

from ..errors import AccessDeniedError, ApduError, SecureMessagingError
from . import crypto
from .apdu import INS, ApduChannel, Command
from .sm import SecureMessaging

__all__ = ["bac_keys", "perform_bac", "session_from_bac"]


def bac_keys(mrz_information: str) -> tuple[bytes, bytes]:
    """(K_Enc, K_MAC) of the document basic access keys."""
    seed = hashlib.sha1(mrz_information.encode("ascii")).digest()[:16]
    return crypto.kdf(seed, crypto.ENC), crypto.kdf(seed, crypto.MAC)


def session_from_bac(k_ifd: bytes, k_ic: bytes, rnd_ic: bytes, rnd_ifd: bytes) -> SecureMessaging:
    seed = bytes(a ^ b for a, b in zip(k_ifd, k_ic))
    ssc = int.from_bytes(rnd_ic[4:] + rnd_ifd[4:], "big")
    return SecureMessaging(crypto.kdf(seed, crypto.ENC), crypto.kdf(seed, crypto.MAC), ssc, "3DES")


def perform_bac(channel: ApduChannel, mrz_information: str, *, rnd_ifd: bytes | None = None,
                k_ifd: bytes | None = None) -> SecureMessaging:
    """Run BAC on ``channel`` and install the SM session on it; returns the session.

    One GET CHALLENGE and one EXTERNAL AUTHENTICATE: a wrong MRZ costs the card one failed
    attempt, never a retry loop. AccessDeniedError when the card refuses the cryptogram
    (``6300``, ``6982``, or ``6987``/``6988`` as some chips answer before any session exists)
    or answers one that does not check against our keys.
    ``rnd_ifd``/``k_ifd`` are for test vectors only; by default they are fresh random bytes.
    """
    k_enc, k_mac = bac_keys(mrz_information)
    channel.sm = None
    rnd_ic = channel.send(Command(0x00, INS.GET_CHALLENGE, 0, 0, le=8), "BAC GET CHALLENGE")
    if len(rnd_ic) != 8:
        raise ApduError(f"GET CHALLENGE gave {len(rnd_ic)} bytes, expected 8", 0x9000)
    rnd_ifd = rnd_ifd or os.urandom(8)
    k_ifd = k_ifd or os.urandom(16)
    e_ifd = crypto.des3_cbc_encrypt(k_enc, rnd_ifd + rnd_ic + k_ifd)
    m_ifd = crypto.retail_mac(k_mac, e_ifd)
    try:
        resp = channel.send(Command(0x00, INS.EXTERNAL_AUTHENTICATE, 0, 0, e_ifd + m_ifd, le=40),
                            "BAC MUTUAL AUTHENTICATE")
    except ApduError as exc:
        if exc.sw in (0x6300, 0x6A80, 0x6700):  # some chips answer 6A80 to a wrong cryptogram
            raise AccessDeniedError(f"BAC refused by the chip: wrong MRZ data? (SW {exc.sw:04X})") from None
        raise
    except (AccessDeniedError, SecureMessagingError) as exc:
        # no session exists yet, so 6987/6988 cannot be about SM objects: chips that check the
        # cryptogram's MAC as "SM data" answer them to a wrong MRZ
        raise AccessDeniedError(f"BAC refused by the chip: wrong MRZ data? ({exc})") from None
    if len(resp) != 40:
        raise AccessDeniedError(f"BAC: chip answered {len(resp)} bytes, expected 40")
    e_ic, m_ic = resp[:32], resp[32:]
    if not crypto.constant_time_eq(crypto.retail_mac(k_mac, e_ic), m_ic):
        raise SecureMessagingError("BAC: MAC of the chip's cryptogram does not verify")
    r = crypto.des3_cbc_decrypt(k_enc, e_ic)
    if r[:8] != rnd_ic or r[8:16] != rnd_ifd:
        raise AccessDeniedError("BAC: the chip's answer does not echo our nonces")
    sm = session_from_bac(k_ifd, r[16:32], rnd_ic, rnd_ifd)
    channel.sm = sm
    return sm
