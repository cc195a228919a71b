"""Field-encryption throughput: covault batch forms vs libffx value by value.

Usage: python benchmarks/bench_fields.py [--n 1000000] [--baseline-n 20000]

Prints values/s over N values for FieldCipher, DeterministicCipher and Tokenizer
(batch forms, Arrow column in and out) and for batched FF1 on 16- and 19-digit
strings, and, in the same run, libffx FF1 value by value as the baseline.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).parent))
from _common import best_of, machine, table  # noqa: E402

from privacy.fields import DeterministicCipher, FieldCipher, Tokenizer  # noqa: E402
from privacy.fpe import FF1  # noqa: E402
from privacy.keys import Keyset  # noqa: E402

CTX = "cif.customers.id_no"


def digits(n: int, width: int, seed: int) -> pa.Array:
    rng = random.Random(seed)
    return pa.array([f"{rng.randrange(10**width):0{width}d}" for _ in range(n)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--baseline-n", type=int, default=20_000)
    args = ap.parse_args()
    n = args.n
    print(f"# bench_fields: {n:,} values; {machine()}")
    ids = digits(n, 18, 1)
    rows: list[tuple[str, ...]] = []
    results: dict[str, float] = {}

    def record(name: str, seconds: float, count: int) -> None:
        results[name] = count / seconds
        rows.append((name, f"{count:,}", f"{seconds:.3f}", f"{count / seconds:,.0f}"))

    for name, cipher in [
        ("FieldCipher AES256_GCM encrypt_many", FieldCipher(Keyset.create("AES256_GCM"))),
        (
            "DeterministicCipher AES256_SIV encrypt_many",
            DeterministicCipher(Keyset.create("AES256_SIV")),
        ),
        ("Tokenizer HMAC_SHA256 encrypt_many", Tokenizer(Keyset.create("HMAC_SHA256"))),
    ]:
        seconds, tokens = best_of(lambda c=cipher: c.encrypt_many(ids, CTX), repeat=2)
        record(name + " (18-char ids)", seconds, n)
        if hasattr(cipher, "decrypt_many"):
            seconds, back = best_of(lambda c=cipher, t=tokens: c.decrypt_many(t, CTX), repeat=2)
            assert back.equals(ids)
            record(name.replace("encrypt", "decrypt"), seconds, n)

    ff1 = FF1(Keyset.create("FF1_AES256").key_material(), 10, b"cards")
    for width in (16, 19):
        col = digits(n, width, width)
        seconds, enc = best_of(lambda c=col: ff1.encrypt_many(c), repeat=3)
        record(f"FF1 encrypt_many ({width}-digit)", seconds, n)
        seconds, back = best_of(lambda e=enc: ff1.decrypt_many(e), repeat=2)
        assert back.equals(col)
        record(f"FF1 decrypt_many ({width}-digit)", seconds, n)

    from ffx import FF1 as LibFF1

    lib = LibFF1(Keyset.create("FF1_AES256").key_material(), radix=10)
    sample = digits(args.baseline_n, 16, 99).to_pylist()
    started = time.perf_counter()
    for v in sample:
        lib.encrypt(v, tweak=b"cards")
    baseline = "libffx FF1 value by value (16-digit, baseline)"
    record(baseline, time.perf_counter() - started, len(sample))

    print(table(rows, ("what", "values", "seconds", "values/s")))
    base = results[baseline]
    for width in (16, 19):
        speed = results[f"FF1 encrypt_many ({width}-digit)"]
        print(f"FF1 {width}-digit batched vs libffx: {speed / base:.1f}x")
    det = results["DeterministicCipher AES256_SIV encrypt_many (18-char ids)"]
    ff1_min = min(results["FF1 encrypt_many (16-digit)"], results["FF1 encrypt_many (19-digit)"])
    print(
        f"bars: deterministic >= 700,000/s: {'PASS' if det >= 700_000 else 'FAIL'}; "
        f"FF1 16/19-digit >= 2,000,000/s: {'PASS' if ff1_min >= 2_000_000 else 'FAIL'}"
    )


if __name__ == "__main__":
    main()
