"""biostation: open station software for national ID issuance.

The station daemon (``biostation serve``) drives fingerprint scanners, cameras and smart-card
readers through the HAL (:mod:`biostation.hal`) and the cores: fingerprint extraction and
quality, the minutiae matcher and 1:N gallery, face capture checks, ICAO 9303 chip reading and
personalization, record formats and a durable local store. Each core works on arrays and bytes
and runs without the daemon.
"""

from ._version import __version__
from .config import Settings, get_settings
from .errors import BiostationError

__all__ = ["__version__", "Settings", "get_settings", "BiostationError"]
