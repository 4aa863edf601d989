"""MOSIP Secure Biometric Interface (SBI 0.9.5): the station's scanners and cameras for national
registration clients, each on its own loopback port (see :mod:`.server`)."""

from .device import SbiDevice
from .keys import DeviceKeys, jws_sign
from .protocol import ERRORS, SPEC_VERSION, SbiError, chain_hash
from .server import SbiService, bind_first_free, create_sbi_app

__all__ = ["ERRORS", "SPEC_VERSION", "DeviceKeys", "SbiDevice", "SbiError", "SbiService", "bind_first_free",
           "chain_hash", "create_sbi_app", "jws_sign"]
