"""The virtual eMRTD card: product code (simulated devices are product code, see house style §4).

``card.py`` is the chip (file system and secrets as data, APDU dispatch table), ``profiles.py``
builds complete signed documents (``cccd``, ``td3``), ``vpcd.py`` connects the chip to pcscd's
vpcd reader driver so it appears as a real PC/SC reader. ``perso.py`` (personalization
lifecycle) hooks into ``VirtualCard.handlers`` / ``before_dispatch`` and ``CardData.lifecycle``.
"""

from .card import (
           ACCESS_ALWAYS,
           ACCESS_EAC,
           ACCESS_NEVER,
           ACCESS_SM,
           CardData,
           CardFile,
           Faults,
           VirtualCard,
)

__all__ = ["ACCESS_ALWAYS", "ACCESS_EAC", "ACCESS_NEVER", "ACCESS_SM", "CardData", "CardFile", "Faults",
           "VirtualCard"]
