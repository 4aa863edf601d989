"""ICAO 9303 chip cards: read, verify and write eMRTDs (passports, ID cards such as Vietnam's CCCD).

Layers, bottom up (each takes only an APDU transport, ``transmit(bytes) -> bytes``, so the same
code runs over pyscard, the in-process virtual card or a recording):

* :mod:`.tlv` BER-TLV, :mod:`.apdu` command/response APDUs and :class:`ApduChannel`;
* :mod:`.crypto` KDF, 3DES/retail MAC, AES/CMAC; :mod:`.sm` secure messaging;
* :mod:`.bac`, :mod:`.pace` (generic mapping), :mod:`.auth` (active and chip authentication);
* :mod:`.cvc` (CV certificates of EAC, test CVCA/DV/IS hierarchy), :mod:`.ta` (terminal
  authentication, both sides), :mod:`.dg3` (fingerprints: ISO/IEC 19794-4 in CBEFF);
* :mod:`.mrz`, :mod:`.lds` (EF.COM, DG1..DG15 both ways), :mod:`.secinfo` (SecurityInfos),
  :mod:`.sod` (EF.SOD build/verify, passive authentication), :mod:`.trust` (CSCA store),
  :mod:`.pki` (test PKI), :mod:`.cccd` (Vietnamese ID number);
* :mod:`.reader`: :func:`read_document`, the whole read with every check.
"""

from .apdu import ApduChannel, Command, Response
from .reader import CardFiles, DocumentRead, read_document
from .sod import KeySigner, PassiveAuthResult, Signer, build_sod, passive_authentication
from .ta import Terminal, load_terminal
from .trust import TrustStore

__all__ = ["ApduChannel", "CardFiles", "Command", "DocumentRead", "KeySigner", "PassiveAuthResult", "Response",
           "Signer", "Terminal", "TrustStore", "build_sod", "load_terminal", "passive_authentication",
           "read_document"]
