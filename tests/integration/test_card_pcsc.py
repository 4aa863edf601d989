"""A CCCD-like card read end to end through the real PC/SC stack: virtual card -> vpcd ->
pcscd -> pyscard -> PcscReader -> PACE, secure messaging, passive/active/chip authentication.

Also the faults through the stack (wrong CAN, card pulled mid-read) and the CLI. Prints the time
and APDU count of a 20 KB DG2 read (short and extended APDUs); ``benchmarks/card_read.py`` is
the measurement to quote.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from biostation.card import trust
from biostation.card.reader import read_document
from biostation.errors import AccessDeniedError, CardRemovedError

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cccd():
    from biostation_drivers.simulated.vcard.profiles import build_profile

    return build_profile("cccd", face_bytes=20_000)


def fresh_card(profile, **faults):
    import copy

    from biostation_drivers.simulated.vcard.card import Faults, VirtualCard

    data = copy.copy(profile.data)
    data.files = {k: copy.copy(v) for k, v in profile.data.files.items()}
    data.counters = dict(profile.data.counters)
    return VirtualCard(data, Faults(**faults))


@pytest.fixture
def open_reader():
    from biostation_drivers.pcsc_reader import PcscReader

    opened = []

    def open_(name: str):
        dev = PcscReader.open_by_name(name)
        opened.append(dev)
        dev.wait_for_card(5.0)
        dev.power_on()
        return dev

    yield open_
    for dev in opened:
        dev.close()


def csca_store(profile) -> trust.TrustStore:
    der = profile.pki.csca_cert.public_bytes(serialization.Encoding.DER)
    return trust.TrustStore([trust.load_certificate(der, "csca.der")])


def test_cccd_read_through_pcscd_with_pace(vpcd_card, open_reader, cccd):
    card = fresh_card(cccd)
    _, name = vpcd_card(card)
    dev = open_reader(name)
    assert dev.atr == card.atr
    r = read_document(dev, can=cccd.can, trust=csca_store(cccd))
    assert r.access.startswith("PACE PACE-ECDH-GM AES-128 paramId 13")
    assert r.passive.status == "verified", r.passive.problems
    assert r.active.ok and r.chip_auth == "passed" and r.cccd["ok"]
    assert len(r.decoded["DG2"].faces[0].image) == 20_000
    assert dev.apdu_count == r.apdu_count
    dev.power_off()


def test_eac_read_through_pcscd(vpcd_card, open_reader, cccd):
    _, name = vpcd_card(fresh_card(cccd))
    dev = open_reader(name)
    r = read_document(dev, can=cccd.can, trust=csca_store(cccd), terminal=cccd.terminal())
    assert r.terminal_auth == "passed" and r.passive.data_groups[3] == "valid"
    assert [int(f.position) for f in r.fingerprints] == [2, 7] and r.fingerprints[1].pixels().shape == (320, 256)
    dev.power_off()


def test_dg2_read_time_and_apdu_count(vpcd_card, open_reader, cccd, capsys):
    _, name = vpcd_card(fresh_card(cccd))
    figures = {}
    for label, kw in (("short", {"extended": False}), ("extended", {"extended": True, "max_read": 4096})):
        dev = open_reader(name)
        r = read_document(dev, can=cccd.can, data_groups=[2], active_auth=False, chip_auth=False, **kw)
        figures[label] = (r.timings["read_DG2"], r.apdu_count, len(r.files["DG2"]))
        dev.power_off()
    with capsys.disabled():
        for label, (s, n, size) in figures.items():
            print(f"\n  DG2 {size} bytes via pcscd/vpcd, {label} APDUs: {s * 1000:.1f} ms, {n} APDUs in the whole read")
    assert figures["extended"][1] < figures["short"][1]


def test_wrong_can_through_the_stack(vpcd_card, open_reader, cccd):
    card = fresh_card(cccd)
    _, name = vpcd_card(card)
    dev = open_reader(name)
    before = card.apdu_count
    with pytest.raises(AccessDeniedError, match="wrong CAN"):
        read_document(dev, can="999999")
    assert card.apdu_count - before <= 7  # CardAccess, MSE, 4x GA: one attempt, no retry storm
    assert card.data.counters["can"] == 2


def test_card_pulled_mid_read_through_the_stack(vpcd_card, open_reader, cccd):
    card = fresh_card(cccd, pull_in_file=0x0102, pull_after_bytes=10_000)
    _, name = vpcd_card(card)
    dev = open_reader(name)
    with pytest.raises(CardRemovedError):
        read_document(dev, can=cccd.can)
    assert not dev.powered
    time.sleep(0.3)
    assert dev.card_present() is False


@pytest.mark.slow
def test_cli_simulate_then_read(pcscd, tmp_path):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    sim = subprocess.Popen([sys.executable, "-m", "biostation", "card", "simulate", "--profile", "cccd",
                            "--port", "35964", "--state", str(tmp_path / "state")],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        line = sim.stdout.readline()
        info = json.loads(line)
        assert info["reader"] == "Virtual PCD 00 01" and info["can"] == "012345"
        out = tmp_path / "out"
        res = subprocess.run([sys.executable, "-m", "biostation", "card", "read", "--reader", info["reader"],
                              "--can", info["can"], "--csca", info["csca"], "--out", str(out)],
                             capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
        assert res.returncode == 0, res.stderr
        summary = json.loads(res.stdout)
        assert summary["checks"]["passive_authentication"]["status"] == "verified"
        assert summary["holder"]["dg13"]["id_number"] == "001099012345"
        assert (out / "face_1.jpg").read_bytes()[:2] == b"\xff\xd8" and (out / "DG2.bin").is_file()
        assert summary["fingerprints"]["status"].startswith("not read: needs terminal authentication")
        res = subprocess.run([sys.executable, "-m", "biostation", "card", "read", "--reader", info["reader"],
                              "--can", info["can"], "--csca", info["csca"], "--terminal", info["terminal"],
                              "--out", str(out)], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
        assert res.returncode == 0, res.stderr
        summary = json.loads(res.stdout)
        assert summary["checks"]["terminal_authentication"] == "passed"
        assert [f["position"] for f in summary["fingerprints"]["fingers"]] == ["right_index", "left_index"]
        assert (out / "finger_2.jp2").read_bytes()[:4] == b"\x00\x00\x00\x0c"
        res = subprocess.run([sys.executable, "-m", "biostation", "card", "read", "--reader", info["reader"],
                              "--mrz", "099012345/990101/390101"], capture_output=True, text=True, env=env,
                             cwd=ROOT, timeout=60)
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["checks"]["passive_authentication"]["status"] == "unverified"
        res = subprocess.run([sys.executable, "-m", "biostation", "card", "read", "--reader", info["reader"],
                              "--can", "111111"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
        assert res.returncode == 3 and "access denied" in res.stderr
    finally:
        sim.terminate()
        sim.wait(10)
    # the wrong CAN was remembered in the state folder
    assert json.loads((tmp_path / "state" / "card" / "card.json").read_text())["counters"]["can"] == 2


@pytest.mark.slow
def test_cli_exit_codes_against_a_chip_that_answers_like_others(pcscd, tmp_path):
    """``card simulate --quirk``: a BAC passport that answers 6988 to a wrong MRZ, has no short
    file identifiers and no EF.SOD. A wrong MRZ exits 3; the right one reads every other file,
    shows it and exits 1 (passive authentication failed, with the reason)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    sim = subprocess.Popen([sys.executable, "-m", "biostation", "card", "simulate", "--profile", "td3",
                            "--port", "35964", "--face-kb", "5", "--quirk", "bac-sm-error", "--quirk", "no-sfi",
                            "--quirk", "sod-missing"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        info = json.loads(sim.stdout.readline())
        read = [sys.executable, "-m", "biostation", "card", "read", "--reader", info["reader"], "--csca", info["csca"]]
        res = subprocess.run(read + ["--mrz", "L898902C/690806/940624"], capture_output=True, text=True, env=env,
                             cwd=ROOT, timeout=60)
        assert res.returncode == 3 and "access denied" in res.stderr and "6988" in res.stderr, res.stderr
        out = tmp_path / "out"
        res = subprocess.run(read + ["--mrz", "L898902C/690806/940623", "--out", str(out)], capture_output=True,
                             text=True, env=env, cwd=ROOT, timeout=60)
        assert res.returncode == 1, res.stderr
        summary = json.loads(res.stdout)
        pa = summary["checks"]["passive_authentication"]
        assert pa["status"] == "failed" and "EF.SOD absent on the chip" in pa["problems"][0]
        assert summary["holder"]["mrz"]["document_number"] == "L898902C"
        assert summary["skipped"]["EF.SOD"].startswith("absent")
        assert (out / "DG1.bin").is_file() and (out / "face_1.jpg").is_file()
    finally:
        sim.terminate()
        sim.wait(10)
