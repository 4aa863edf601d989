"""Time and APDU count to read a 20 KB DG2 from a CCCD-like chip, through the real PC/SC stack.

    .venv/bin/python benchmarks/bench_card_read.py [--repeat N] [--face-kb 20] [--slot 0]

The virtual card (``drivers/simulated/vcard``) sits behind pcscd's vpcd reader (pcscd is
started for the run when none is running) and is read with pyscard through ``PcscReader``,
after PACE-ECDH-GM (brainpoolP256r1, AES-128) with the CAN. Printed side by side, one run:

* DG2 alone: short APDUs (223-byte READ BINARY under secure messaging) vs extended length
  (4096-byte reads): median and p95 time, APDUs for DG2, bytes per APDU;
* the same reads in-process (no pcscd, no sockets), so the stack's share shows;
* a whole document read (PACE, CA, every DG, AA, passive authentication), time and APDUs;
* the read with Extended Access Control (``--eac-repeat`` runs, in-process and through pcscd):
  p50 / p95 per step (PACE, chip authentication, terminal authentication with the DV and IS
  certificates, DG3 with two JPEG 2000 index fingers, the whole read), and the APDUs TA costs.
  ``--eac-only`` skips the DG2 tables.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time


def _dg2_apdus(reader_dev, can, **kw):
    """Read DG2 only; returns (seconds for DG2, APDUs for DG2, DG2 size)."""
    counter = {"n": 0}

    class Counting:
        def transmit(self, apdu):
            counter["n"] += 1
            return reader_dev.transmit(apdu)

    from biostation.card import lds
    from biostation.card.apdu import ApduChannel
    from biostation.card.pace import Password, perform_pace
    from biostation.card.reader import CardFiles
    from biostation.card.secinfo import parse_security_infos

    ch = ApduChannel(Counting(), extended=kw.get("extended", False))
    files = CardFiles(ch, kw.get("max_read"))
    info = parse_security_infos(files.read("EF.CardAccess")).pace[0]
    perform_pace(ch, Password.can(can), info)
    files.select_application()
    before = counter["n"]
    t = time.perf_counter()
    raw = files.read(lds.FILES["DG2"])
    dt = time.perf_counter() - t
    return dt, counter["n"] - before, len(raw)


def _pct(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))]


def _eac_table(prof, readers, repeat):
    """p50/p95 of each step of an EAC read (ms), and TA's APDU count."""
    from biostation.card.reader import read_document

    steps = ("access_control", "chip_auth", "terminal_auth", "read_DG3", "read_DG2", "total")
    terminal = prof.terminal()
    print(f"EAC read (PACE-CAN, CA, TA with DV+IS certificates ECDSA-SHA-256 brainpoolP256r1, DG3 2 fingers), "
          f"{repeat} runs per path, extended length")
    print(f"{'path':12} {'step':16} {'p50 ms':>8} {'p95 ms':>8}")
    for path, rd in readers.items():
        got = {k: [] for k in steps}
        apdus = 0
        for _ in range(repeat):
            t = time.perf_counter()
            r = read_document(rd, can=prof.can, terminal=terminal)
            got["total"].append((time.perf_counter() - t) * 1000)
            assert r.terminal_auth == "passed" and len(r.fingerprints) == 2, r.terminal_auth
            for k in steps[:-1]:
                got[k].append(r.timings[k] * 1000)
            apdus = r.apdu_count
        for k in steps:
            print(f"{path:12} {k:16} {_pct(got[k], 0.5):8.2f} {_pct(got[k], 0.95):8.2f}")
        print(f"{path:12} {'APDUs (whole read)':16} {apdus:8d}; DG3 {len(r.files['DG3'])} bytes")
    print()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--face-kb", type=int, default=20)
    ap.add_argument("--slot", type=int, default=0, choices=(0, 1))
    ap.add_argument("--eac-repeat", type=int, default=30)
    ap.add_argument("--eac-only", action="store_true")
    args = ap.parse_args()

    from biostation.card.reader import read_document
    from biostation_drivers.pcsc_reader import PcscReader
    from biostation_drivers.simulated.card_reader import SimulatedCardReader
    from biostation_drivers.simulated.vcard.card import VirtualCard
    from biostation_drivers.simulated.vcard.pcscd import ensure_pcscd, vpcd_slot
    from biostation_drivers.simulated.vcard.profiles import build_profile
    from biostation_drivers.simulated.vcard.vpcd import VpcdClient

    prof = build_profile("cccd", face_bytes=args.face_kb * 1000, can_tries=None)
    daemon = ensure_pcscd()
    name, port = vpcd_slot(args.slot)
    client = VpcdClient(VirtualCard(prof.data), port=port).start()
    try:
        time.sleep(0.5)
        dev = PcscReader.open_by_name(name)
        dev.wait_for_card(5)
        dev.power_on()
        local = SimulatedCardReader.create(VirtualCard(prof.data))
        local.power_on()
        modes = {"short (223 B/read)": {"extended": False}, "extended (4096 B/read)": {"extended": True, "max_read": 4096}}
        _eac_table(prof, {"pcscd+vpcd": dev, "in-process": local}, args.eac_repeat)
        if args.eac_only:
            dev.close()
            return 0
        print(f"DG2 read, {args.repeat} runs each, card behind {'pcscd started here' if daemon.started_here else 'running pcscd'}"
              f" / vpcd '{name}', after PACE-ECDH-GM brainpoolP256r1 AES-128")
        print(f"{'mode':26} {'path':12} {'DG2 bytes':>9} {'APDUs':>6} {'B/APDU':>7} {'median ms':>10} {'p95 ms':>8}")
        for label, kw in modes.items():
            for path, rd in (("pcscd+vpcd", dev), ("in-process", local)):
                times, n, size = [], 0, 0
                for _ in range(args.repeat):
                    dt, n, size = _dg2_apdus(rd, prof.can, **kw)
                    times.append(dt * 1000)
                times.sort()
                p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
                print(f"{label:26} {path:12} {size:9d} {n:6d} {size / n:7.0f} {statistics.median(times):10.2f} {p95:8.2f}")
        for label, kw in modes.items():
            t = time.perf_counter()
            r = read_document(dev, can=prof.can, **kw)
            print(f"whole document, {label}: {(time.perf_counter() - t) * 1000:.0f} ms, {r.apdu_count} APDUs, "
                  f"PA {r.passive.status} (no CSCA given), AA {'ok' if r.active.ok else 'FAILED'}, CA {r.chip_auth}")
        dev.close()
    finally:
        client.stop()
        daemon.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
