"""Vertical federated GBDT (SecureBoost-style, ``federated.trees.secureboost``): seconds
per tree, in one process, against covault's trainer on the joined columns.

Generated binned columns (seeded): a guest with ``--rows`` x ``--guest-cols`` and the
label, one host with ``--rows`` x ``--host-cols``; depth ``--depth``, ``--bins`` bins,
Paillier ``--key-bits`` (DJN short-exponent randomness). Every party's work is done in
turn on this machine (no transport): the guest's encryption of the packed gradients,
the host's homomorphic bin sums and re-randomisation, the guest's decryption and split
search. Baseline in the same run: ``train_local`` on the joined columns (plaintext).
The check: the largest difference between the two models' predictions.

The issue's size (bar <= 60 s per tree): ``--rows 100000 --guest-cols 30 --host-cols 300
--depth 5 --bins 32``. Run: ``.venv/bin/python benchmarks/bench_fl_secureboost.py``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, table  # noqa: E402

from federated.trees.booster import Layout, Params, train_local  # noqa: E402
from federated.trees.secureboost import Host, joint_layout, train_vertical  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=5_000)
    ap.add_argument("--guest-cols", type=int, default=10)
    ap.add_argument("--host-cols", type=int, default=30)
    ap.add_argument("--depth", type=int, default=5)
    ap.add_argument("--bins", type=int, default=32)
    ap.add_argument("--trees", type=int, default=2)
    ap.add_argument("--key-bits", type=int, default=2048)
    args = ap.parse_args()
    rng = np.random.default_rng(11)
    n, b = args.rows, args.bins
    guest = rng.integers(0, b + 1, (n, args.guest_cols)).astype(np.uint16)
    host = rng.integers(0, b + 1, (n, args.host_cols)).astype(np.uint16)
    logit = guest[:, 0] / (b / 2) - 1 + (host[:, 0] > b // 2) - 0.5 * (host[:, 1] == 0)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    g_layout = Layout([f"g{i}" for i in range(args.guest_cols)], [b] * args.guest_cols,
                      [False] * args.guest_cols)
    h_layout = Layout([f"h{i}" for i in range(args.host_cols)], [b] * args.host_cols,
                      [False] * args.host_cols)
    params = Params(trees=args.trees, max_depth=args.depth, learning_rate=0.3, max_bins=b)
    print(f"# bench_fl_secureboost — {machine()}")
    print(f"guest {n:,} x {args.guest_cols}, host {n:,} x {args.host_cols}, depth "
          f"{args.depth}, {b} bins, {args.trees} trees, Paillier {args.key_bits} bits")
    t0 = time.perf_counter()
    trained = Host("host", host, h_layout)
    model, _ = train_vertical(guest, y, g_layout, [trained], params, key_bits=args.key_bits)
    vertical = (time.perf_counter() - t0) / args.trees
    layout, _ = joint_layout(g_layout, [("host", h_layout)])
    joined = np.hstack([guest, host])
    t0 = time.perf_counter()
    pooled, _ = train_local(joined, y, layout, params)
    base = (time.perf_counter() - t0) / args.trees
    diff = float(np.max(np.abs(model.predict_proba(guest, {"host": trained})
                               - pooled.predict_proba(joined))))
    print(table([("vertical SecureBoost, in process (key generation included)", f"{vertical:.2f}"),
                 ("covault trainer on the joined columns (baseline)", f"{base:.3f}")],
                ("trainer", "s/tree")))
    print(f"ratio {vertical / base:,.0f}x; max |p_vertical - p_joined| = {diff:.2e}")


if __name__ == "__main__":
    main()
