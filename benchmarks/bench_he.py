"""Homomorphic secure sum: P parties x N int64 values, end to end (encrypt, aggregate, decrypt).

Compares covault packed Paillier (DJN randomness, process pool) at 2048 and 3072 bits,
covault BFV (TenSEAL, int64 via limbs), and plain phe value by value (measured on a
sample and extrapolated). Every covault sum is checked to be exact. Paillier keys use the
default DJN exponent (bits/2); --fast-randomness measures the opt-in short exponent
(2*kappa bits) instead.

    .venv/bin/python benchmarks/bench_he.py            # 5 x 1,000,000 values
    .venv/bin/python benchmarks/bench_he.py --quick    # 5 x 20,000 values, sanity run
    .venv/bin/python benchmarks/bench_he.py --only paillier-2048 --fast-randomness
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from privacy.he.ckks import TensealVector, generate_context
from privacy.he.packing import PackingLayout
from privacy.he.paillier import EncryptedVector, default_workers, generate_keypair


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def report(name: str, stages: dict[str, float], exact: bool, extra: str = "") -> float:
    total = sum(stages.values())
    parts = "  ".join(f"{k} {v:7.2f}s" for k, v in stages.items())
    print(f"{name:<22} {parts}  total {total:7.2f}s  exact={exact} {extra}", flush=True)
    return total


def bench_paillier(bits: int, data: list[np.ndarray], expected: list[int],
                   fast_randomness: bool = False) -> float:
    layout = PackingLayout(64, len(data))
    (pub, priv), kg = timed(lambda: generate_keypair(bits, fast_randomness=fast_randomness))
    vecs, t_enc = timed(lambda: [EncryptedVector.encrypt(pub, d, layout, contributor=f"p{i}")
                                 for i, d in enumerate(data)])
    agg, t_agg = timed(lambda: EncryptedVector.sum(vecs).rerandomised())
    out, t_dec = timed(lambda: agg.decrypt(priv))
    exact = out.tolist() == expected
    cts = len(agg.ciphertexts)
    return report(f"covault paillier-{bits}", {"encrypt": t_enc, "aggregate": t_agg,
                                              "decrypt": t_dec}, exact,
                  f"(keygen {kg:.1f}s, {layout.slots(bits)} values/ct, {cts} ct/party, "
                  f"{pub.exponent_bits}-bit DJN exponent)")


def bench_bfv(params: str, data: list[np.ndarray], expected: list[int]) -> float:
    ctx, kg = timed(lambda: generate_context(params, layout=PackingLayout(64, len(data))))
    pub = ctx.public()
    vecs, t_enc = timed(lambda: [pub.encrypt(d, contributor=f"p{i}") for i, d in enumerate(data)])
    agg, t_agg = timed(lambda: TensealVector.sum(vecs))
    out, t_dec = timed(lambda: agg.decrypt(ctx))
    exact = out.tolist() == expected
    return report(f"covault {params}", {"encrypt": t_enc, "aggregate": t_agg, "decrypt": t_dec},
                  exact, f"(t {ctx.plain_modulus.bit_length()} bits, {agg.n_limbs} limbs, "
                         f"{len(agg.chunks)} ct/party)")


def bench_phe(bits: int, sample: int, parties: int, n: int) -> float:
    from phe import paillier

    pk, sk = paillier.generate_paillier_keypair(n_length=bits)
    xs = np.random.default_rng(9).integers(-(2**62), 2**62, size=sample).tolist()
    encs, t_enc = timed(lambda: [pk.encrypt(x) for x in xs])
    s, t_add = timed(lambda: [e + e for e in encs])
    dec, t_dec = timed(lambda: [sk.decrypt(e) for e in s])
    assert dec == [2 * x for x in xs]
    f = n / sample
    stages = {"encrypt": t_enc * f * parties, "aggregate": t_add * f * (parties - 1),
              "decrypt": t_dec * f}
    return report(f"phe-{bits} (extrapol.)", stages, True, f"(measured on {sample} values)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sanity run")
    ap.add_argument("--values", type=int, default=1_000_000)
    ap.add_argument("--parties", type=int, default=5)
    ap.add_argument("--phe-sample", type=int, default=10_000)
    ap.add_argument("--bfv-params", default="bfv-128-8192")
    ap.add_argument("--only", default="phe,paillier-2048,paillier-3072,bfv",
                    help="comma-separated subset of: phe,paillier-2048,paillier-3072,bfv")
    ap.add_argument("--fast-randomness", action="store_true",
                    help="Paillier keys with the opt-in short DJN exponent (2*kappa bits)")
    args = ap.parse_args()
    n = 20_000 if args.quick else args.values
    sample = 300 if args.quick else args.phe_sample
    print(f"cpu_count={os.cpu_count()} usable={default_workers()} parties={args.parties} "
          f"values/party={n:,} (int64, full range)")
    print("note: the machine's cores may be shared with other jobs; figures are wall-clock.")
    rng = np.random.default_rng(2024)
    data = [rng.integers(-(2**63), 2**63 - 1, size=n, dtype=np.int64, endpoint=True)
            for _ in range(args.parties)]
    expected = np.sum([d.astype(object) for d in data], axis=0).tolist()
    only = set(args.only.split(","))
    base = bench_phe(2048, sample, args.parties, n) if "phe" in only else None
    fast = args.fast_randomness
    t2048 = bench_paillier(2048, data, expected, fast) if "paillier-2048" in only else None
    if "paillier-3072" in only:
        bench_paillier(3072, data, expected, fast)
    tbfv = bench_bfv(args.bfv_params, data, expected) if "bfv" in only else None
    if base and t2048:
        print(f"speed-up paillier-2048 vs phe-2048: {base / t2048:.0f}x")
    if t2048 is not None:
        print(f"bar paillier-2048 <= 120 s: {'met' if t2048 <= 120 else 'MISSED'}")
    if tbfv is not None:
        print(f"bar BFV <= 10 s: {'met' if tbfv <= 10 else 'MISSED'}")


if __name__ == "__main__":
    main()
