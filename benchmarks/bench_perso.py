"""Personalization line throughput: cards per hour per encoder, where the time goes, and scaling
over encoders in parallel.

The virtual card runs at the timing of a contact chip (default 15 ms per APDU, within the
10-20 ms of chips in service, plus 10 bits a byte at 115200 baud both ways); the Document
Signer signs in SoftHSM2 through PKCS#11 (the production path) and, for comparison, with a key
file. The portrait is a LONDON_FRL face (``../shared``) re-encoded to a 480x640 JPEG of about
20 KB, or a synthetic one of that size when the data set is absent. Every card is written,
locked and read back (PACE-CAN, PA, AA), and the journal commits every step.

    python benchmarks/bench_perso.py                      # 1, 2 and 4 encoders, 2 cards each
    python benchmarks/bench_perso.py --encoders 1 8 --cards 3 --apdu-ms 10

Prints one line per configuration: cards/h in total and per encoder, the scaling ratio against
one encoder, and the shares of signing, APDU writing, read-back, journal and card handling.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LABEL, PIN, SO_PIN = "bench-ds", "1234", "12345678"


def portrait(target: int = 20_000) -> tuple[bytes, str]:
    from PIL import Image

    src = ROOT.parent / "shared" / "data" / "faces" / "LONDON_FRL" / "001" / "1_neutral.jpg"
    if src.is_file():
        im = Image.open(src).convert("RGB")
        # ISO 19794-5 full frontal token-like crop: 3:4, the face centred
        w, h = im.size
        cw = int(h * 0.75)
        im = im.crop(((w - cw) // 2, 0, (w + cw) // 2, h)).resize((480, 640))
        for q in range(90, 10, -5):
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=q)
            if len(buf.getvalue()) <= target:
                return buf.getvalue(), f"LONDON_FRL 001 480x640 JPEG q{q}"
    from biostation_drivers.simulated.vcard.profiles import synthetic_face_jpeg

    return synthetic_face_jpeg(target), "synthetic 480x640 JPEG"


def orders(path: Path, n: int, face: bytes) -> None:
    p = base64.b64encode(face).decode()
    with path.open("w") as fh:
        for i in range(n):
            fh.write(json.dumps({"order_id": f"b{i:05d}", "id_number": f"001099{i:06d}", "surname": "NGUYEN",
                                 "given_names": "VAN AN", "nationality": "VNM", "sex": "M",
                                 "date_of_birth": "1999-01-31", "date_of_expiry": "2039-01-31",
                                 "portrait": p}) + "\n")


def run_line(work: Path, signer, trust, n_enc: int, cards: int, face: bytes, apdu_ms: float, baud: int,
             extended: bool = True) -> dict:
    from biostation.card.perso.line import PersoLine
    from biostation.store import Journal
    from biostation_drivers.simulated.vcard.perso import ChipTiming, SimulatedEncoder

    work.mkdir(parents=True)
    orders(work / "orders.jsonl", n_enc * cards, face)
    timing = ChipTiming(apdu_ms / 1000, 10 / baud if baud else 0.0)
    encs = [SimulatedEncoder(f"sim{i}", card_dir=work / "cards" / f"sim{i}", timing=timing, extended_length=extended)
            for i in range(n_enc)]
    with Journal.open_exclusive(work / "journal.db") as j:
        line = PersoLine(j, signer, trust, encs)
        line.load_orders(work / "orders.jsonl")
        s = line.run()
        assert j.check() == [] and s["orders"]["done"] == n_enc * cards, s["orders"]
    return s


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--encoders", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--cards", type=int, default=2, help="cards per encoder")
    ap.add_argument("--apdu-ms", type=float, default=15.0)
    ap.add_argument("--baud", type=int, default=115200)
    ap.add_argument("--face-bytes", type=int, default=20_000)
    a = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-perso-"))
    from biostation.card.pkcs11 import DEFAULT_MODULE, softhsm_token

    os.environ["SOFTHSM2_CONF"] = str(softhsm_token(tmp / "softhsm", LABEL, PIN, SO_PIN))
    from cryptography.hazmat.primitives import serialization

    from biostation.card.pkcs11 import Pkcs11Signer, import_private_key
    from biostation.card.pki import make_test_pki
    from biostation.card.trust import TrustStore

    pki = make_test_pki()
    import_private_key(DEFAULT_MODULE, LABEL, PIN, "ds", pki.ds_key)
    hsm = Pkcs11Signer(LABEL, "ds", PIN, pki.ds_cert)
    trust = TrustStore()
    trust.add_der(pki.csca_cert.public_bytes(serialization.Encoding.DER))
    face, what = portrait(a.face_bytes)

    # signing alone: the HSM against the key file, same SOD
    from biostation.card.sod import build_sod

    dgs = {1: b"\x61\x03\x5f\x1f\x00", 2: face}
    for name, signer in (("pkcs11/SoftHSM2", hsm), ("key file", pki.signer())):
        t = time.perf_counter()
        for _ in range(50):
            build_sod(dgs, signer)
        print(f"SOD build+sign, {name:16s}: {(time.perf_counter() - t) / 50 * 1000:6.2f} ms")

    print(f"chip: {a.apdu_ms:g} ms/APDU, {a.baud} baud; portrait {len(face)} B ({what}); "
          f"{a.cards} cards per encoder; signer pkcs11/SoftHSM2; CPU cores {os.cpu_count()}")
    run_line(tmp / "warmup", hsm, trust, 1, 1, face, 0.0, 0)  # imports, first PACE: not measured

    def show(label: str, s: dict, n: int, base: float | None) -> float:
        t = s["total"]
        done = max(t["cards_done"], 1)
        per = s["cards_per_hour"] / n
        share = ", ".join(f"{k} {v * 100:.2f}%" for k, v in t["share"].items())
        ratio = f" (x{s['cards_per_hour'] / base:4.2f} vs 1 encoder)" if base else ""
        print(f"{label}: {s['cards_per_hour']:6.0f} cards/h total, {per:5.0f} per encoder{ratio}, "
              f"{t['busy_s'] / done:5.2f} s/card, APDUs/card write {t['apdus_write'] / done:.0f} "
              f"read {t['apdus_read'] / done:.0f}; time: {share}")
        return s["cards_per_hour"]

    # one encoder: short APDUs (223-byte writes and reads) against extended length, same run
    short = run_line(tmp / "short", hsm, trust, 1, a.cards, face, a.apdu_ms, a.baud, extended=False)
    show("1 encoder, short APDUs   ", short, 1, None)
    base = None
    for n in a.encoders:
        s = run_line(tmp / f"enc{n}", hsm, trust, n, a.cards, face, a.apdu_ms, a.baud)
        v = show(f"{n} encoder(s), extended   ", s, n, base)
        base = base or v
    hsm.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
