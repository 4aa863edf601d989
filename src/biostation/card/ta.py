"""Terminal authentication, version 1 as ICAO eMRTDs use it (Doc 9303-11 §7.1; BSI TR-03110).

After chip authentication, the inspection system proves to the chip that a CVCA the chip trusts
authorized it to read the fingerprints (DG3) and iris (DG4)::

    MSE:Set DST  00 22 81 B6  83 <CAR>          for each certificate of the chain (DV, then IS):
    PSO:Verify   00 2A 00 BE  7F4E body 5F37 sig   the chip checks it with the key named by CAR
    MSE:Set AT   00 22 81 A4  83 <CHR of the IS>
    GET CHALLENGE 00 84 00 00 08                 -> r_PICC
    EXTERNAL AUTHENTICATE 00 82 00 00  s = Sign(SK_IS, ID_PICC || r_PICC || Comp(PK_PCD))

``PK_PCD`` is the terminal's ephemeral chip-authentication key, so the signature binds the
terminal to *this* secure-messaging session: a signature recorded from another session, or
made for another chip, does not verify. ``ID_PICC`` is ``Comp(PK_PICC)`` of the chip's
ephemeral PACE key after PACE, or the document number with its check digit after BAC
(Doc 9303-11 §7.1.2). ``Comp`` of an EC point is its x-coordinate, of a DH value its SHA-1.

The chip side (:class:`TerminalAuthChip`, run by the virtual card) follows Doc 9303-11
§7.1.3-7.1.4.3: at most two trust points (CVCA keys; a verified CVCA link certificate adds
one and drops the least recent beyond two); a *current date* that only certificates move
forward (CVCA link and DV certificates, and terminal certificates of a domestic DV, set it to
their effective date when that is later); expired DV and terminal certificates refused,
expired link certificates accepted, an expired trust point not used for DV certificates; the
rights granted are the AND of the CHATs of the chain; one TA per session (a second EXTERNAL
AUTHENTICATE answers ``6982``); a refused TA leaves secure messaging running.

One attempt only: :func:`terminal_authentication` never retries; a refusal raises
:class:`~biostation.errors.TerminalAuthError` with the chip's status word and a reason.
Certificates and keys are never logged.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import AccessDeniedError, ApduError, TerminalAuthError, TLVError
from . import tlv
from .apdu import INS, ApduChannel, Command
from .cvc import (
    ROLE_CVCA,
    ROLE_DV_DOMESTIC,
    ROLE_DV_FOREIGN,
    ROLE_TERMINAL,
    CVCertificate,
    TerminalSigner,
    decode_cvc,
    ta_verify,
)

log = logging.getLogger(__name__)

__all__ = ["SW_TA", "TAResult", "Terminal", "TerminalAuthChip", "comp", "id_picc_bac", "load_terminal",
           "terminal_authentication"]

#: status words the chip side answers (ISO/IEC 7816-4 meanings)
SW_TA = {"ok": 0x9000, "failed": 0x6300, "bad_data": 0x6A80, "no_ref": 0x6A88, "conditions": 0x6985,
         "security": 0x6982}
MAX_TRUST_POINTS = 2


def comp(public_key: bytes) -> bytes:
    """Comp() of TR-03110 part 3 §A.2.2.3: the x-coordinate of an uncompressed EC point, or
    SHA-1 of a DH public value."""
    if public_key[:1] == b"\x04" and len(public_key) % 2 == 1:
        return public_key[1:1 + (len(public_key) - 1) // 2]
    return hashlib.sha1(public_key).digest()


def id_picc_bac(mrz_information: str) -> bytes:
    """ID_PICC after BAC: the document number with its check digit, as in the MRZ."""
    return mrz_information[:10].encode("ascii")


@dataclass
class Terminal:
    """An inspection system's TA credentials: the certificate chain the chip needs after its
    trust point (CVCA link certificates if any, the DV, the IS certificate last) and the IS
    key's signer (a key object or a PKCS#11 token, :class:`~biostation.card.cvc.TerminalSigner`).
    """

    chain: list[CVCertificate]
    signer: TerminalSigner = field(repr=False)
    #: the CVCA at the root of the chain: not sent (the chip holds it); personalization
    #: writes it to chips as their trust point
    cvca: CVCertificate | None = None

    @property
    def certificate(self) -> CVCertificate:
        return self.chain[-1]

    def check(self, today: dt.date) -> None:
        """TerminalAuthError when these credentials cannot work, before any APDU is sent."""
        if not self.chain:
            raise TerminalAuthError("no terminal certificate")
        cert = self.certificate
        if cert.role != ROLE_TERMINAL:
            raise TerminalAuthError(f"the last certificate of the chain ({cert.chr}) is not a terminal's")
        if cert.public_key.oid != self.signer.oid:
            raise TerminalAuthError(f"the terminal key signs {self.signer.oid}, its certificate names "
                                    f"{cert.public_key.oid}")
        if cert.expiration < today:
            raise TerminalAuthError(f"the terminal certificate {cert.chr} expired on {cert.expiration.isoformat()}")
        for a, b in zip(self.chain, self.chain[1:]):
            if b.car != a.chr:
                raise TerminalAuthError(f"chain broken: {b.chr} is issued by {b.car}, not by {a.chr}")


def load_terminal(folder: Path, signer: TerminalSigner | None = None) -> Terminal:
    """The terminal of a folder written by :meth:`biostation.card.cvc.TestHierarchy.write` (or laid
    out the same way: ``cvca.cvcert``, ``dv.cvcert``, ``is.cvcert``). ``signer``: the IS key's
    signer (a PKCS#11 token); default: the key file ``is.key``. TLVError for a malformed
    certificate, TerminalAuthError when the key is missing."""
    from cryptography.hazmat.primitives import serialization

    from .cvc import KeyTerminalSigner

    def read(name: str) -> bytes:
        try:
            return (folder / name).read_bytes()
        except OSError as exc:
            raise TerminalAuthError(f"terminal credentials: cannot read {folder / name} ({exc.strerror})") from None

    cvca = decode_cvc(read("cvca.cvcert"), source="cvca.cvcert")
    dom = cvca.public_key.params
    chain = [decode_cvc(read("dv.cvcert"), domain=dom, source="dv.cvcert"),
             decode_cvc(read("is.cvcert"), domain=dom, source="is.cvcert")]
    if signer is None:
        try:
            key = serialization.load_pem_private_key(read("is.key"), None)
        except (ValueError, TypeError):
            raise TerminalAuthError(f"terminal credentials: {folder / 'is.key'} is not a PEM private key") from None
        signer = KeyTerminalSigner(key, chain[-1].public_key.oid)
    return Terminal(chain, signer, cvca)


@dataclass
class TAResult:
    chr: str
    rights: int  # the IS certificate's CHAT rights (the chip ANDs them with its chain's)
    algorithm: str
    apdus: int

    def to_dict(self) -> dict[str, object]:
        return {"terminal": self.chr, "rights": self.rights, "algorithm": self.algorithm}


#: what a refusal means at each TA step (Doc 9303-11 §7.1.5), for the operator's message
_MEANING = {
    ("DST", 0x6A88): "the chip does not know this issuer: the chain does not lead to its CVCA trust point",
    ("PSO", 0x6300): "the certificate's signature does not verify with its issuer's key",
    ("PSO", 0x6A80): "certificate not accepted (expired for the chip's date, wrong terminal type or role)",
    ("AT", 0x6A88): "the chip did not accept the terminal certificate",
    ("EXT", 0x6300): "the terminal's signature does not verify (wrong key, or not for this session)",
    ("EXT", 0x6982): "terminal authentication was already performed in this session",
}


def _send(channel: ApduChannel, cmd: Command, what: str, step: str = "") -> bytes:
    """Send; a refusing status word becomes TerminalAuthError. SM failures and a removed card
    pass through unchanged: the session is gone, which is not a TA verdict."""
    try:
        return channel.send(cmd, what)
    except (ApduError, AccessDeniedError) as exc:
        sw = getattr(exc, "sw", None)
        meaning = _MEANING.get((step, sw)) if sw is not None else None
        raise TerminalAuthError(f"{what} refused" + (f": {meaning}" if meaning else ""), sw) from None


def terminal_authentication(channel: ApduChannel, terminal: Terminal, *, id_picc: bytes, ca_terminal_key: bytes,
                            today: dt.date | None = None) -> TAResult:
    """Run TA v1 on ``channel`` (inside the chip-authentication SM session).

    ``id_picc``: see the module docstring; ``ca_terminal_key``: the terminal's ephemeral public
    key of the chip authentication just run (uncompressed point). ``today``: the terminal's
    date, for its own pre-check of the IS certificate (default: UTC today). Raises
    TerminalAuthError (one attempt, no retry) or the channel's errors for transport faults.
    """
    terminal.check(today or dt.datetime.now(dt.UTC).date())
    n0 = channel.apdu_count
    for cert in terminal.chain:
        _send(channel, Command(0x00, INS.MSE, 0x81, 0xB6, tlv.encode(0x83, cert.car.encode("ascii"))),
              f"TA MSE:Set DST {cert.car}", "DST")
        _send(channel, Command(0x00, INS.PSO, 0x00, 0xBE, cert.pso_data()), f"TA PSO:Verify Certificate {cert.chr}",
              "PSO")
    is_cert = terminal.certificate
    _send(channel, Command(0x00, INS.MSE, 0x81, 0xA4, tlv.encode(0x83, is_cert.chr.encode("ascii"))),
          "TA MSE:Set AT", "AT")
    r_picc = _send(channel, Command(0x00, INS.GET_CHALLENGE, 0, 0, le=8), "TA GET CHALLENGE")
    if len(r_picc) != 8:
        raise TerminalAuthError(f"chip challenge of {len(r_picc)} bytes, 8 expected")
    signature = terminal.signer.sign(id_picc + r_picc + comp(ca_terminal_key))
    _send(channel, Command(0x00, INS.EXTERNAL_AUTHENTICATE, 0, 0, signature), "TA EXTERNAL AUTHENTICATE", "EXT")
    log.info("terminal authentication passed: %s", is_cert.chr)
    return TAResult(is_cert.chr, is_cert.chat.rights, is_cert.public_key.oid, channel.apdu_count - n0)


@dataclass
class _KeyRef:
    cert: CVCertificate
    rights: int  # AND of the CHAT rights from the trust point down to this certificate


class TerminalAuthChip:
    """The chip side of TA v1 for one session. ``trust_points``: the CVCA certificates the chip
    holds (decoded, with their domain parameters); ``current_date``: the chip's notion of today.
    ``id_picc`` and ``ca_terminal_key`` come from the session's PACE/BAC and CA.

    Each method takes the command's data and returns a status word (:data:`SW_TA`). After a
    successful :meth:`external_authenticate`, :attr:`rights` holds the effective CHAT rights.
    :attr:`trust_points` and :attr:`current_date` may change (CVCA link certificates, newer
    certificates): the card saves them.
    """

    def __init__(self, trust_points: list[CVCertificate], current_date: dt.date, *, id_picc: bytes | None,
                 ca_terminal_key: bytes | None):
        self.trust_points = list(trust_points)
        self.current_date = current_date
        self.id_picc = id_picc
        self.ca_terminal_key = ca_terminal_key
        self.rights: int | None = None
        self.changed = False
        self.reason = ""  # why the last refusal (for tests and logs; no key material)
        self._verified: dict[str, _KeyRef] = {}
        self._dst: _KeyRef | None = None
        self._terminal: _KeyRef | None = None
        self._at: _KeyRef | None = None
        self._challenge: bytes | None = None

    def _refuse(self, sw: str, reason: str) -> int:
        self.reason = reason
        return SW_TA[sw]

    def _lookup(self, ref: str) -> _KeyRef | None:
        for tp in self.trust_points:
            if tp.chr == ref:
                return _KeyRef(tp, tp.chat.rights)
        return self._verified.get(ref)

    def set_dst(self, data: bytes) -> int:
        try:
            d83 = tlv.find(tlv.decode(data, "MSE:Set DST"), 0x83)
        except TLVError:
            return self._refuse("bad_data", "malformed MSE:Set DST")
        if d83 is None:
            return self._refuse("bad_data", "MSE:Set DST without 83")
        ref = self._lookup(d83.value.decode("ascii", "replace"))
        if ref is None:
            self._dst = None
            return self._refuse("no_ref", "no trust point or verified certificate of that name")
        self._dst = ref
        return SW_TA["ok"]

    def verify_certificate(self, data: bytes) -> int:
        issuer = self._dst
        if issuer is None:
            return self._refuse("conditions", "PSO:Verify Certificate without MSE:Set DST")
        try:
            cert = decode_cvc(data, domain=issuer.cert.public_key.params, source="PSO:Verify Certificate", pso=True)
        except TLVError as exc:
            return self._refuse("bad_data", f"malformed certificate: {exc}")
        if cert.car != issuer.cert.chr:
            return self._refuse("bad_data", "CAR does not name the key set by MSE:Set DST")
        if not ta_verify(issuer.cert.public_key, cert.body, cert.signature):
            return self._refuse("failed", f"signature of {cert.chr} does not verify")
        if cert.chat.oid != issuer.cert.chat.oid:
            return self._refuse("bad_data", "terminal type of the CHAT differs from its issuer's")
        irole, role = issuer.cert.role, cert.role
        if not ((irole == ROLE_CVCA and role in (ROLE_CVCA, ROLE_DV_DOMESTIC, ROLE_DV_FOREIGN))
                or (irole in (ROLE_DV_DOMESTIC, ROLE_DV_FOREIGN) and role == ROLE_TERMINAL)):
            return self._refuse("bad_data", f"a {role} certificate cannot be issued by a {irole}")
        if role != ROLE_CVCA and cert.expiration < self.current_date:  # link certificates may be expired
            return self._refuse("bad_data", f"certificate {cert.chr} expired")
        if irole == ROLE_CVCA and role != ROLE_CVCA and issuer.cert.expiration < self.current_date:
            return self._refuse("bad_data", f"trust point {issuer.cert.chr} expired: it verifies link "
                                "certificates only")
        accurate = role in (ROLE_CVCA, ROLE_DV_DOMESTIC, ROLE_DV_FOREIGN) or irole == ROLE_DV_DOMESTIC
        if accurate and cert.effective > self.current_date:
            self.current_date = cert.effective
            self.changed = True
        ref = _KeyRef(cert, issuer.rights & cert.chat.rights)
        if role == ROLE_CVCA:  # a link certificate: the new CVCA key becomes a trust point
            tps = [tp for tp in self.trust_points if tp.chr != cert.chr] + [cert]
            self.trust_points = sorted(tps, key=lambda c: c.effective)[-MAX_TRUST_POINTS:]
            self.changed = True
        elif role == ROLE_TERMINAL:
            self._terminal = ref
        else:
            self._verified[cert.chr] = ref
        return SW_TA["ok"]

    def set_at(self, data: bytes) -> int:
        try:
            d83 = tlv.find(tlv.decode(data, "MSE:Set AT"), 0x83)
        except TLVError:
            return self._refuse("bad_data", "malformed MSE:Set AT")
        t = self._terminal
        if d83 is None or t is None or d83.value.decode("ascii", "replace") != t.cert.chr:
            self._at = None
            return self._refuse("no_ref", "MSE:Set AT does not name the verified terminal certificate")
        self._at = t
        return SW_TA["ok"]

    def get_challenge(self, n: int = 8) -> bytes:
        self._challenge = secrets.token_bytes(n)
        return self._challenge

    def external_authenticate(self, signature: bytes) -> int:
        challenge, self._challenge = self._challenge, None  # one signature per challenge
        if self.rights is not None:
            return self._refuse("security", "terminal authentication was already performed in this session")
        t = self._at
        if t is None or challenge is None:
            return self._refuse("conditions", "EXTERNAL AUTHENTICATE without MSE:Set AT and GET CHALLENGE")
        if self.id_picc is None or self.ca_terminal_key is None:
            return self._refuse("conditions", "terminal authentication needs PACE/BAC and chip authentication first")
        message = self.id_picc + challenge + comp(self.ca_terminal_key)
        if not ta_verify(t.cert.public_key, message, signature):
            return self._refuse("failed", "terminal signature does not verify")
        self.rights = t.rights
        self._at = None
        return SW_TA["ok"]
