"""Time and APDU count to read a 20 KB DG2 from a CCCD-like chip, through the real PC/SC stack.

    .venv/bin/python benchmarks/bench_card_read.py [--repeat N] [--face-kb 20] [--slot 0]

The virtual card (``drivers/simulated/vcard``) sits behind pcscd's vpcd reader (pcscd is
started for the run when none is running) and is read with pyscard through ``PcscReader``,
after PACE-ECDH-GM (brainpoolP256r1, AES-128) with the CAN. Printed side by side, one run:

* DG2 alone: short APDUs (223-byte READ BINARY under secure messaging) vs extended length
  (4096-byte reads): median and p95 time, APDUs for DG2, bytes per APDU;
* the same reads in-process (no pcscd, no sockets), so the stack's share shows;
* a whole document read (PACE, CA, every DG, AA, passive authentication), time and APDUs.
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--face-kb", type=int, default=20)
    ap.add_argument("--slot", type=int, default=0, choices=(0, 1))
    args = ap.parse_args()

    from biostation_drivers.pcsc_reader import PcscReader
    from biostation_drivers.simulated.card_reader import SimulatedCardReader
    from biostation_drivers.simulated.vcard.card import VirtualCard
    from biostation_drivers.simulated.vcard.pcscd import ensure_pcscd, vpcd_slot
    from biostation_drivers.simulated.vcard.profiles import build_profile
    from biostation_drivers.simulated.vcard.vpcd import VpcdClient

    from biostation.card.reader import read_document

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
