"""Outbox fault drill: the central endpoint goes down for a while, comes back flaky, and every
transaction must be filed exactly once.

Several desks (each its own enrollment store and outbox) and one mobile team deliver to one
simulated central endpoint (``biostation.store.central_sim``: real HTTP on loopback, filing by
``Idempotency-Key``). The mobile team hands its transactions to desk 0 in a signed batch file
*and* later uploads them itself, so the same keys arrive by two paths. The endpoint is down
(connections refused) for ``--downtime`` seconds, then answers a share ``--fault-rate`` of requests
with a 503, a dropped connection, or a lost reply after filing (the nastiest case: filed, but the
desk never hears so).

Two clocks:

* default, simulated time: one fake clock that the drill advances to the next retry, so an outage
  of an hour takes seconds; the backoff is the production one (``--base``, ``--cap``).
* ``--realtime S``: sender threads (``OutboxSender``) on the wall clock, an outage of S seconds,
  a backoff of 50 ms to 1 s; figures include the wall time to drain after the endpoint is back.

    python benchmarks/outbox_faults.py                       # 3 desks x 40, 1 h down, 30 % faults
    python benchmarks/outbox_faults.py --desks 5 --txns 200 --downtime 7200 --fault-rate 0.5
    python benchmarks/outbox_faults.py --realtime 3

Prints the figures (transactions, downtime, attempts, deliveries, duplicates suppressed, lost
replies, retries per transaction, drain time, payloads held) and exits 1 if any transaction was
not filed exactly once or any payload is still held.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path


class FakeClock:
    def __init__(self, t: float = 1_800_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def make_station(path: Path, name: str, clock, n: int, rng: random.Random, prefix: str):
    from biostation.store import DataKey, EnrollmentStore

    path.mkdir(parents=True, exist_ok=True)
    s = EnrollmentStore(path / "enrollment.db", DataKey(hashlib.sha256(name.encode()).digest()), clock=clock)
    bodies = {}
    for i in range(n):
        sid = s.open_session(name, {"full_name": f"Nguyễn Văn {i}"}, session_id=f"{prefix}-S{i:04d}")
        s.put_blob(sid, "finger/01/image", rng.randbytes(4000), name)
        s.put_blob(sid, "finger/01/template", rng.randbytes(300), name)
        txn = f"{prefix}-T{i:04d}"
        bodies[txn] = b"1.001:" + rng.randbytes(2000)
        s.finish(sid, name, bodies[txn], txn_id=txn)
    return s, bodies


def trust(a, b) -> None:
    ident = b.identity()
    a.trust("admin", ident["station_id"], bytes.fromhex(ident["sign_pub"]), bytes.fromhex(ident["box_pub"]))


def held(store) -> tuple[int, int]:
    st = store.outbox_status()
    return st["payloads_held"], st["bytes_held"]


def run(args: argparse.Namespace) -> int:
    from biostation.store.batch import export_batch, import_batch
    from biostation.store.central_sim import SimulatedCentral
    from biostation.store.outbox import Backoff, Outbox, OutboxSender

    rng = random.Random(args.seed)
    realtime = args.realtime > 0
    clock = time.time if realtime else FakeClock()
    work = Path(tempfile.mkdtemp(prefix="outbox-faults-"))
    t_setup = time.perf_counter()
    desks, sent = [], {}
    for d in range(args.desks):
        s, b = make_station(work / f"desk{d}", f"desk-{d}", clock, args.txns, rng, f"D{d}")
        desks.append(s)
        sent.update(b)
    mobile, mb = make_station(work / "mobile", "team-1", clock, args.mobile, rng, "M")
    sent.update(mb)
    trust(mobile, desks[0])
    trust(desks[0], mobile)
    export_batch(mobile, desks[0].station_id, work / "mobile.bsb", actor="team-1")
    imp = import_batch(desks[0], work / "mobile.bsb", actor="clerk-0")
    stations = desks + [mobile]
    setup_s = time.perf_counter() - t_setup

    central = SimulatedCentral().go_up()
    url = central.url
    central.go_down()
    backoff = Backoff(0.05, 1.0) if realtime else Backoff(args.base, args.cap)
    outboxes = [Outbox(s, url, backoff=backoff, rng=random.Random(args.seed + i)) for i, s in enumerate(stations)]
    faults = ["503", "drop", "lost-ack"]
    total = len(sent)
    t0 = time.perf_counter()

    def fault_script(n: int) -> list[str]:
        return [rng.choice(faults) if rng.random() < args.fault_rate else "ok" for _ in range(n)]

    if realtime:
        senders = [OutboxSender(ob, idle_s=0.5).start() for ob in outboxes]
        time.sleep(args.realtime)
        peak = [held(s) for s in stations]
        central.script = fault_script(4 * total)
        central.retry_after = None
        central.go_up()
        t_up = time.perf_counter()
        deadline = t_up + 600
        while any(s.outbox_status()["counts"]["queued"] for s in stations) and time.perf_counter() < deadline:
            time.sleep(0.05)
        drain_s = time.perf_counter() - t_up
        for sn in senders:
            sn.stop(timeout_s=30)
        outage_attempts = None
        max_delay = None
    else:
        assert isinstance(clock, FakeClock)
        results = []

        def drive(until: float | None) -> None:
            while True:
                progressed = False
                for ob in outboxes:
                    if until is not None and clock.t >= until:
                        return
                    r = ob.step()
                    if r is not None:
                        results.append(r)
                        progressed = True
                if progressed:
                    continue
                waits = [w for w in (ob.wait_s() for ob in outboxes) if w is not None]
                if not waits:
                    return
                step = min(waits)
                if until is not None:
                    step = min(step, until - clock.t)
                clock.t += max(step, 1e-3)

        start = clock.t
        drive(start + args.downtime)
        outage_attempts = len(results)
        peak = [held(s) for s in stations]
        central.script = fault_script(4 * total)
        central.retry_after = None
        central.go_up()
        t_up = clock.t
        drive(None)
        drain_s = clock.t - t_up
        max_delay = max((r.delay_s or 0.0) for r in results)
    wall_s = time.perf_counter() - t0
    central.go_down()

    filed_ok = set(central.filed) == set(sent) and all(
        central.filed[k] == hashlib.sha256(v).hexdigest() for k, v in sent.items())
    acked = {t for s in stations for t in s.outbox_ids("acked")}
    attempts = [s.outbox_entry(t)["attempts"] for s in stations for t in s.outbox_ids()]
    left = [held(s) for s in stations]
    audits = all(s.verify_audit().ok for s in stations)
    for ob in outboxes:
        ob.close()
    for s in stations:
        s.close()

    print(f"outbox fault drill ({'real time' if realtime else 'simulated time'}; seed {args.seed})")
    print(f"  transactions        {total} ({args.desks} desks x {args.txns}, mobile team {args.mobile}; "
          f"{imp.queued} of them also handed to desk 0 in a batch)")
    print(f"  downtime            {args.realtime if realtime else args.downtime:g} s (connections refused), then "
          f"{args.fault_rate:.0%} of requests faulty")
    if outage_attempts is not None:
        print(f"  attempts in outage  {outage_attempts} (backoff {backoff.base_s:g} s doubling to {backoff.cap_s:g} s, "
              f"longest wait {max_delay:.0f} s)")
    print(f"  payloads held       at the end of the outage {sum(p for p, _ in peak)} "
          f"({sum(b for _, b in peak) / 1e6:.2f} MB); at the end {sum(p for p, _ in left)}")
    print(f"  POSTs               {central.posts} (503: {central.by_mode.get('503', 0)}, dropped: "
          f"{central.by_mode.get('drop', 0)}, lost replies: {central.by_mode.get('lost-ack', 0)})")
    print(f"  deliveries          {len(central.filed)} distinct transactions filed (of {total})")
    print(f"  duplicates          {central.duplicates} suppressed by Idempotency-Key "
          f"(lost replies retried + the mobile team's second path)")
    print(f"  attempts per txn    mean {statistics.mean(attempts):.2f}, max {max(attempts)} (over "
          f"{len(attempts)} outbox entries at {len(stations)} stations)")
    print(f"  drain after up      {drain_s:.1f} s {'wall' if realtime else 'simulated'}")
    print(f"  acked entries       {len(acked)} distinct ids; audit trails intact: {audits}")
    print(f"  wall time           setup {setup_s:.1f} s, drill {wall_s:.1f} s (machine shared; not a speed figure)")
    ok = filed_ok and sum(p for p, _ in left) == 0 and acked == set(sent) and audits and central.bad_digest == 0
    print("  verdict             " + ("every transaction filed exactly once, payloads purged" if ok else "FAILED"))
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--desks", type=int, default=3)
    ap.add_argument("--txns", type=int, default=40, help="transactions per desk")
    ap.add_argument("--mobile", type=int, default=10, help="transactions of the mobile team")
    ap.add_argument("--downtime", type=float, default=3600.0, help="outage in simulated seconds")
    ap.add_argument("--fault-rate", type=float, default=0.3, help="share of faulty requests once back up")
    ap.add_argument("--base", type=float, default=2.0, help="first retry delay (s)")
    ap.add_argument("--cap", type=float, default=600.0, help="longest retry delay (s)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--realtime", type=float, default=0.0, help="real-time drill with sender threads: outage (s)")
    return run(ap.parse_args(argv))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    sys.exit(main())
