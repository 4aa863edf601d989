"""Other chips' ways, switched on in the virtual card: answers that real chips give and ours does not.

Each quirk changes the card the way a chip from another maker was seen to behave, so the reader's
handling of it stays tested without that chip:

* ``bac-sm-error``: a wrong MRZ (a BAC cryptogram that does not check) is answered ``6988``
  ("incorrect SM data objects") instead of ``6300``, although no session exists yet.
* ``no-sfi``: READ BINARY by short file identifier (P1 bit 8) is answered ``6A82``; files are
  reached only by SELECT with their FID.
* ``sod-empty``: EF.SOD exists but holds no bytes (a chip personalized without it being written).
* ``sod-missing``: there is no EF.SOD at all (SELECT and READ BINARY answer ``6A82``).

:func:`apply_quirks` installs them on a :class:`~.card.VirtualCard` through its public hooks
(``handlers`` via ``register``, ``before_dispatch``) and its data, so ``card.py`` itself knows
nothing of them. ``biostation card simulate --quirk NAME`` switches them on behind pcscd.
"""

from __future__ import annotations

from collections.abc import Iterable

from biostation.card.apdu import INS, Command, Response

from .card import VirtualCard

__all__ = ["QUIRKS", "apply_quirks"]

QUIRKS = ("bac-sm-error", "no-sfi", "sod-empty", "sod-missing")

_SOD_FID = 0x011D


def apply_quirks(card: VirtualCard, quirks: Iterable[str]) -> VirtualCard:
    """Switch ``quirks`` (names from :data:`QUIRKS`) on in ``card``; returns the card.

    ValueError names an unknown quirk. The data quirks (``sod-*``) change ``card.data``: give a
    copy when the same data serve other cards (a card that keeps state saves them with it).
    """
    quirks = list(dict.fromkeys(quirks))
    unknown = [q for q in quirks if q not in QUIRKS]
    if unknown:
        raise ValueError(f"unknown quirk(s) {', '.join(unknown)} (known: {', '.join(QUIRKS)})")
    if "sod-empty" in quirks and "sod-missing" in quirks:
        raise ValueError("sod-empty and sod-missing exclude each other")
    if "bac-sm-error" in quirks:
        plain = card.handlers[INS.EXTERNAL_AUTHENTICATE]

        def external_authenticate(cmd: Command) -> Response:
            r = plain(cmd)
            return Response(b"", 0x6988) if r.sw == 0x6300 else r

        card.register(INS.EXTERNAL_AUTHENTICATE, external_authenticate)
    if "no-sfi" in quirks:
        def refuse_sfi(_card: VirtualCard, cmd: Command) -> Response | None:
            if cmd.ins == INS.READ_BINARY and cmd.p1 & 0x80:
                return Response(b"", 0x6A82)
            return None

        card.before_dispatch.append(refuse_sfi)
    if "sod-missing" in quirks:
        card.data.files.pop(_SOD_FID, None)
    if "sod-empty" in quirks and _SOD_FID in card.data.files:
        card.data.files[_SOD_FID].data = b""
    return card
