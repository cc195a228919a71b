"""Benchmark privacy.ledger: batched vs one-at-a-time appends, verify(), proofs.

Usage::

    .venv/bin/python benchmarks/bench_ledger.py [--records 100000] [--single 2000]

Batched: one ``append_many`` of ``--records`` records (one transaction). Baseline, in the
same run: ``--single`` calls of ``append`` (one durable transaction each, so one fsync
each with ``synchronous=FULL``). Then ``verify()`` over the batched log, and an
inclusion / consistency proof at an old size (O(n) from the stored leaf hashes).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from privacy.ledger import Ledger, generate_signing_key, verify_consistency, verify_inclusion


def _payload(i: int) -> dict[str, object]:
    return {"run": i, "policy": "jrt0171-display", "rows": 1000 + i % 97,
            "columns": ["id_no", "mobile", "card_no"], "partner": "bank-b.example"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--single", type=int, default=2_000)
    args = parser.parse_args()
    print(f"os.cpu_count() = {os.cpu_count()}")
    with tempfile.TemporaryDirectory() as tmp:
        with Ledger(Path(tmp) / "single.db", origin="bench/single") as led:
            t = time.perf_counter()
            for i in range(args.single):
                led.append("masking.run", _payload(i))
            single = args.single / (time.perf_counter() - t)
        with Ledger(Path(tmp) / "batch.db", origin="bench/batch") as led:
            t = time.perf_counter()
            led.append_many(("masking.run", _payload(i)) for i in range(args.records))
            batched = args.records / (time.perf_counter() - t)
            cp = led.checkpoint(generate_signing_key())
            led.append_many(("masking.run", _payload(i)) for i in range(10))
            t = time.perf_counter()
            report = led.verify(cp)
            verify_s = time.perf_counter() - t
            n, old = report.size, args.records // 3
            t = time.perf_counter()
            verify_inclusion(led.get(old).leaf_hash, old, n, led.inclusion_proof(old), led.root())
            incl_s = time.perf_counter() - t
            t = time.perf_counter()
            verify_consistency(old, n, led.root_at(old), led.root(), led.consistency_proof(old))
            cons_s = time.perf_counter() - t
            db_mb = (Path(tmp) / "batch.db").stat().st_size / 1e6
    print(f"append one-at-a-time ({args.single:,} x append):   {single:12,.0f} records/s")
    print(f"append_many (1 x {args.records:,}):              {batched:12,.0f} records/s"
          f"   ({batched / single:,.0f}x the one-at-a-time baseline)")
    print(f"verify() of {n:,} records + checkpoint:      {verify_s:12.2f} s"
          f"   ({n / verify_s:,.0f} records/s)")
    print(f"inclusion proof + check at size {n:,}:       {incl_s * 1e3:12.1f} ms")
    print(f"root_at + consistency proof {old:,}->{n:,}: {cons_s * 1e3:12.1f} ms")
    print(f"database size: {db_mb:.1f} MB")


if __name__ == "__main__":
    main()
