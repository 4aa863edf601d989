"""SBI device keys made and used inside a PKCS#11 token (SoftHSM2): the JWS answers verify with
jwcrypto, and the private key cannot leave the token."""

from __future__ import annotations

import base64
import json
import os
import shutil
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from jwcrypto import jwk, jws
from pydantic import SecretStr

from biostation.card.pkcs11 import DEFAULT_MODULE
from biostation.hal import DriverRegistry
from biostation.station.sbi import SbiService
from biostation_drivers.simulated.scanner import SimulatedScanner

pytestmark = pytest.mark.skipif(not (Path(DEFAULT_MODULE).is_file() and shutil.which("softhsm2-util")),
                                reason="SoftHSM2 not installed (apt-get install softhsm2)")

LABEL, PIN, SO_PIN = "biostation-test", "4321", "87654321"


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory):
    """The same SoftHSM2 token as the personalization tests (SoftHSM reads SOFTHSM2_CONF once
    per process)."""
    from biostation.card.pkcs11 import softhsm_token

    conf = softhsm_token(tmp_path_factory.getbasetemp() / "softhsm", LABEL, PIN, SO_PIN)
    os.environ.setdefault("SOFTHSM2_CONF", str(conf))
    if os.environ["SOFTHSM2_CONF"] != str(conf):
        pytest.skip("another SOFTHSM2_CONF is already in use in this process")
    return conf


def test_device_key_in_token_signs_device_info(softhsm, settings):
    import pkcs11

    from biostation.card.pkcs11 import open_token_session

    s = settings.model_copy(update={"sbi_port_first": 0, "sbi_key_source": "pkcs11", "sbi_pkcs11_token": LABEL,
                                    "sbi_pkcs11_pin": SecretStr(PIN)})
    reg = DriverRegistry(s, drivers=[])
    scanner = reg.add(SimulatedScanner.create(settings=s, key="sim:hsm1"))
    svc = SbiService(s, reg)
    with svc.running_in_thread():
        port = svc.ports[scanner.device_id]
        r = httpx.request("MOSIPDINFO", f"http://127.0.0.1:{port}/info", timeout=30)
    token = r.json()[0]["deviceInfo"]
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    cert = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0]))
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(svc.keys.ca_path.read_bytes()))
    obj = jws.JWS()
    obj.deserialize(token)
    obj.verify(jwk.JWK.from_pem(cert.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)),
               alg="RS256")
    assert json.loads(obj.payload)["deviceId"] == scanner.device_id
    # the key pair is in the token, its private half sensitive and not extractable; no key file
    assert not list(svc.keys.folder.glob("sim*.key"))
    _, session = open_token_session(DEFAULT_MODULE, LABEL, PIN)
    try:
        priv = session.get_key(object_class=pkcs11.ObjectClass.PRIVATE_KEY, label="sbi-sim_hsm1")
        assert priv[pkcs11.Attribute.SENSITIVE] and not priv[pkcs11.Attribute.EXTRACTABLE]
    finally:
        session.close()
