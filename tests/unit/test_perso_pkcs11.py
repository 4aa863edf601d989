"""The PKCS#11 Document Signer against the real SoftHSM2 module."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import pytest

from biostation.card.pkcs11 import DEFAULT_MODULE
from biostation.errors import ConfigError

pytestmark = pytest.mark.skipif(not (Path(DEFAULT_MODULE).is_file() and shutil.which("softhsm2-util")),
                                reason="SoftHSM2 not installed (apt-get install softhsm2)")

LABEL, PIN, SO_PIN = "biostation-test", "4321", "87654321"


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory):
    """One SoftHSM2 token per test session: SoftHSM reads SOFTHSM2_CONF once per process."""
    from biostation.card.pkcs11 import softhsm_token

    conf = softhsm_token(tmp_path_factory.getbasetemp() / "softhsm", LABEL, PIN, SO_PIN)
    os.environ.setdefault("SOFTHSM2_CONF", str(conf))
    if os.environ["SOFTHSM2_CONF"] != str(conf):
        pytest.skip("another SOFTHSM2_CONF is already in use in this process")
    return conf


def _cert(key, name="DS"):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    n = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    c = (x509.CertificateBuilder().subject_name(n).issuer_name(n).public_key(key.public_key()).serial_number(7)
         .not_valid_before(dt.datetime(2024, 1, 1)).not_valid_after(dt.datetime(2034, 1, 1)).sign(key, hashes.SHA256()))
    return c.public_bytes(serialization.Encoding.DER)


def test_ec_signer_signs_in_token(softhsm):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    from biostation.card.pkcs11 import Pkcs11Signer, import_private_key

    key = ec.generate_private_key(ec.SECP256R1())
    import_private_key(DEFAULT_MODULE, LABEL, PIN, "ds-ec", key)
    s = Pkcs11Signer(LABEL, "ds-ec", PIN, _cert(key))
    msg = b"signed attributes" * 10
    sig = s.sign(msg, "sha256")
    key.public_key().verify(sig, msg, ec.ECDSA(hashes.SHA256()))  # DER, verifies with the certificate
    key.public_key().verify(s.sign(msg, "sha384"), msg, ec.ECDSA(hashes.SHA384()))
    assert PIN not in repr(s)
    s.close()


def test_sod_signed_in_token_passes_passive_authentication(softhsm):
    from cryptography.hazmat.primitives import serialization

    from biostation.card.pkcs11 import Pkcs11Signer, import_private_key
    from biostation.card.pki import make_test_pki
    from biostation.card.sod import build_sod, passive_authentication
    from biostation.card.trust import TrustStore

    pki = make_test_pki()  # brainpoolP256r1, as several states use
    import_private_key(DEFAULT_MODULE, LABEL, PIN, "ds-pki", pki.ds_key)
    s = Pkcs11Signer(LABEL, "ds-pki", PIN, pki.ds_cert)
    dgs = {1: b"\x61\x03\x5f\x1f\x00", 2: b"\x75\x00"}
    sod = build_sod(dgs, s)
    trust = TrustStore()
    trust.add_der(pki.csca_cert.public_bytes(serialization.Encoding.DER))
    r = passive_authentication(sod, dgs, trust)
    assert r.status == "verified", r.problems
    s.close()


@pytest.mark.parametrize("pss", [False, True])
def test_rsa_signer(softhsm, pss):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    from biostation.card.pkcs11 import Pkcs11Signer, import_private_key

    key = rsa.generate_private_key(65537, 2048)
    label = f"ds-rsa-{pss}"
    import_private_key(DEFAULT_MODULE, LABEL, PIN, label, key)
    s = Pkcs11Signer(LABEL, label, PIN, _cert(key), pss=pss)
    sig = s.sign(b"abc", "sha256")
    pad = padding.PSS(padding.MGF1(hashes.SHA256()), 32) if pss else padding.PKCS1v15()
    key.public_key().verify(sig, b"abc", pad, hashes.SHA256())
    s.close()


def test_key_generated_in_token_is_not_extractable(softhsm):
    import pkcs11
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    from biostation.card.pkcs11 import generate_keypair

    spki = generate_keypair(DEFAULT_MODULE, LABEL, PIN, "ds-gen")
    assert load_der_public_key(spki).curve.name == "secp256r1"
    tok = pkcs11.lib(DEFAULT_MODULE).get_token(token_label=LABEL)
    with tok.open(user_pin=PIN) as sess:
        priv = sess.get_key(object_class=pkcs11.ObjectClass.PRIVATE_KEY, label="ds-gen")
        assert priv[pkcs11.Attribute.SENSITIVE] and not priv[pkcs11.Attribute.EXTRACTABLE]


def test_errors_are_typed(softhsm):
    from cryptography.hazmat.primitives.asymmetric import ec

    from biostation.card.pkcs11 import Pkcs11Signer, import_private_key

    key = ec.generate_private_key(ec.SECP256R1())
    import_private_key(DEFAULT_MODULE, LABEL, PIN, "ds-x", key)
    with pytest.raises(ConfigError, match="wrong PIN"):
        Pkcs11Signer(LABEL, "ds-x", "0000", _cert(key))
    with pytest.raises(ConfigError, match="NoSuchKey"):
        Pkcs11Signer(LABEL, "no-such-key", PIN, _cert(key))
    with pytest.raises(ConfigError, match="NoSuchToken"):
        Pkcs11Signer("no-such-token", "ds-x", PIN, _cert(key))
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(ConfigError, match="does not match"):
        Pkcs11Signer(LABEL, "ds-x", PIN, _cert(other))
    with pytest.raises(ConfigError, match="not found"):
        Pkcs11Signer(LABEL, "ds-x", PIN, _cert(key), module="/nonexistent/lib.so")


def test_terminal_authentication_key_in_token(softhsm):
    """The inspection system's TA key signs in the token: a chip accepts it and DG3 is read."""
    from biostation.card import cvc
    from biostation.card.pkcs11 import Pkcs11TerminalSigner, import_private_key
    from biostation.card.reader import read_document
    from biostation.card.ta import Terminal
    from biostation_drivers.simulated.card_reader import SimulatedCardReader
    from biostation_drivers.simulated.vcard.card import VirtualCard
    from biostation_drivers.simulated.vcard.profiles import build_profile

    h = cvc.make_test_hierarchy()
    import_private_key(DEFAULT_MODULE, LABEL, PIN, "is-ta", h.is_key)
    signer = Pkcs11TerminalSigner(LABEL, "is-ta", PIN, h.inspection.public_key.oid)
    assert cvc.ta_verify(h.inspection.public_key, b"challenge", signer.sign(b"challenge"))
    prof = build_profile("cccd", eac=h, can_tries=None)
    r = SimulatedCardReader.create(VirtualCard(prof.data))
    r.power_on()
    doc = read_document(r, can=prof.can, terminal=Terminal(h.chain, signer))
    assert doc.terminal_auth == "passed" and len(doc.fingerprints) == 2
    with pytest.raises(ConfigError, match="only the ECDSA"):
        Pkcs11TerminalSigner(LABEL, "is-ta", PIN, "0.4.0.127.0.7.2.2.2.1.4")
    signer.close()


def test_cli_pki_puts_the_is_key_in_the_token_and_run_writes_dg3(softhsm, tmp_path, monkeypatch):
    import base64
    import io
    import json

    from PIL import Image
    from typer.testing import CliRunner

    from biostation.cli import app
    from biostation_drivers.simulated.vcard.profiles import synthetic_finger

    for k, v in {"DATA_DIR": str(tmp_path / "data"), "PERSO_SIGNER": "pkcs11", "PERSO_PKCS11_TOKEN": LABEL,
                 "PERSO_PKCS11_KEY": "ds-cli-eac", "PERSO_PKCS11_PIN": PIN,
                 "PERSO_PKCS11_MODULE": DEFAULT_MODULE}.items():
        monkeypatch.setenv(f"BIOSTATION_{k}", v)
    r = CliRunner().invoke(app, ["perso", "pki", "--pkcs11"])
    assert r.exit_code == 0, r.output
    eac = tmp_path / "data" / "perso" / "pki" / "eac"
    assert (eac / "is.cvcert").is_file() and "ds-cli-eac-is" in r.output
    assert not any((eac / f"{n}.key").exists() for n in ("cvca", "dv", "is"))  # the EAC keys live in the token
    # a token key issues certificates too: a new IS certificate signed by the DV key in the token
    from biostation.card import cvc
    from biostation.card.pkcs11 import Pkcs11TerminalSigner

    dv = cvc.decode_cvc((eac / "dv.cvcert").read_bytes(), domain=cvc.decode_cvc(
        (eac / "cvca.cvcert").read_bytes()).public_key.params)
    dv_signer = Pkcs11TerminalSigner(LABEL, "ds-cli-eac-dv", PIN, dv.public_key.oid)
    new_is = cvc.issue(dv_signer, dv.chr, "VNIS00002", dv.public_key, cvc.CHAT.inspection(cvc.ROLE_TERMINAL),
                       dv.effective, dv.expiration)
    assert cvc.verify_certificate(new_is, dv.public_key)
    dv_signer.close()

    def png(a):
        b = io.BytesIO()
        Image.fromarray(a, "L").save(b, "PNG")
        return base64.b64encode(b.getvalue()).decode()

    b = io.BytesIO()
    Image.new("RGB", (240, 320), (180, 160, 150)).save(b, "JPEG")
    o = {"order_id": "c1", "id_number": "001099000001", "surname": "NGUYEN", "nationality": "VNM", "sex": "M",
         "date_of_birth": "1999-01-31", "date_of_expiry": "2039-01-31",
         "portrait": base64.b64encode(b.getvalue()).decode(),
         "fingers": [{"position": p, "image": png(synthetic_finger(seed=p))} for p in (2, 7)]}
    (tmp_path / "o.jsonl").write_text(json.dumps(o) + "\n")
    r = CliRunner().invoke(app, ["perso", "run", str(tmp_path / "o.jsonl"), "--simulated", "1", "--sim-apdu-ms",
                                 "0", "--sim-baud", "0", "--card-dir", str(tmp_path / "cards"), "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output[r.output.index("{"):])
    assert summary["orders"]["done"] == 1 and summary["cards"]["rejected"] == 0
    assert len(list((tmp_path / "cards").glob("sim0/*/0103.bin"))) == 1  # DG3 written, read back through TA
