"""Enrollment store write costs: what saving a desk's session costs, and what sealing adds.

One session as a desk writes it: demographics, ten finger images (``--image-kb`` each, an
uncompressed 500 ppi flat is about 150 KB, a WSQ one 15-40 KB), ten templates, a portrait,
two decisions, then ``finish`` with an ANSI/NIST-ITL transaction (``--txn-kb``); every call is
one committed, fsynced transaction with its audit line. Side by side in one run:

* the store as shipped (AES-256-GCM sealing, WAL, ``synchronous=FULL``);
* the sealing alone (AES-GCM over the same bytes, no database);

so the share of sealing in the cost of a session is read off one line.

    taskset -c 1 python benchmarks/bench_store.py                     # 20 sessions
    taskset -c 1 python benchmarks/bench_store.py --sessions 50 --image-kb 40

Prints sessions per second, milliseconds per session and per call, MB/s sealed, and the
on-disk size per session.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def session(store, i: int, images: list[bytes], templates: list[bytes], portrait: bytes, txn: bytes) -> int:
    calls = 0
    sid = store.open_session("op-1", {"full_name": "Nguyễn Thị Minh Khai", "id_number": f"0010990{i:05d}"})
    calls += 1
    for f in range(10):
        store.put_blob(sid, f"finger/{f + 1:02d}/image", images[f], "op-1", {"ppi": 500, "nfiq2": 60})
        store.put_blob(sid, f"finger/{f + 1:02d}/template", templates[f], "op-1", {"format": "iso19794-2"})
        calls += 2
    store.put_blob(sid, "portrait", portrait, "op-1", {"format": "jpeg"})
    store.add_decision(sid, "op-1", "chip", "match", details={"document_number": "C0123456"})
    store.add_decision(sid, "op-1", "face-1:1", "match", score=0.71, threshold=0.42)
    store.finish(sid, "op-1", txn)
    return calls + 4


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--image-kb", type=int, default=150)
    ap.add_argument("--txn-kb", type=int, default=600)
    args = ap.parse_args(argv)

    from biostation.store import DataKey, EnrollmentStore

    rnd = os.urandom
    images = [rnd(args.image_kb * 1024) for _ in range(10)]
    templates = [rnd(600) for _ in range(10)]
    portrait = rnd(30 * 1024)
    txn = rnd(args.txn_kb * 1024)
    key = DataKey.generate()
    work = Path(tempfile.mkdtemp(prefix="bench-store-"))
    store = EnrollmentStore(work / "enrollment.db", key)
    per_session, calls = [], 0
    t_all = time.perf_counter()
    for i in range(args.sessions):
        t = time.perf_counter()
        calls += session(store, i, images, templates, portrait, txn)
        per_session.append(time.perf_counter() - t)
    total = time.perf_counter() - t_all
    store.checkpoint()
    size = sum(p.stat().st_size for p in work.glob("enrollment.db*"))
    store.close()

    payload = sum(map(len, images)) + sum(map(len, templates)) + len(portrait) + 2 * len(txn)  # txn: record + outbox
    t = time.perf_counter()
    for _ in range(args.sessions):
        for blob in (*images, *templates, portrait, txn, txn):
            key.seal(blob, b"bench")
    seal_s = time.perf_counter() - t

    mb = payload * args.sessions / 1e6
    print(f"enrollment store, {args.sessions} sessions of {payload / 1e6:.2f} MB sealed each "
          f"(10 images x {args.image_kb} KB, transaction {args.txn_kb} KB); {calls // args.sessions} "
          "committed calls per session")
    print(f"  store as shipped    {args.sessions / total:.2f} sessions/s; per session median "
          f"{statistics.median(per_session) * 1e3:.0f} ms (max {max(per_session) * 1e3:.0f} ms); "
          f"per call {total / calls * 1e3:.1f} ms")
    print(f"  sealing alone       {mb / seal_s:.0f} MB/s; {seal_s / args.sessions * 1e3:.1f} ms per session "
          f"= {seal_s / total:.1%} of the store's time")
    print(f"  on disk             {size / args.sessions / 1e6:.2f} MB per session after a checkpoint "
          f"(plaintext {payload / 1e6:.2f} MB)")
    print("  (shared 2-core machine: figures are indicative; fsync cost depends on the disk)")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    sys.exit(main())
