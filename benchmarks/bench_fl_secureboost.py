"""Vertical federated GBDT (SecureBoost-style, ``federated.trees.secureboost``): seconds
per tree, in one process, against covault's trainer on the joined columns.

Generated binned columns (seeded): a guest with ``--rows`` x ``--guest-cols`` and the
label, one host with ``--rows`` x ``--host-cols``; depth ``--depth``, ``--bins`` bins,
Paillier ``--key-bits`` (DJN short-exponent randomness). Every party's work is done in
turn on this machine (no transport): the guest's encryption of the packed gradients,
the host's homomorphic bin sums and re-randomisation, the guest's decryption and split
search. Baseline in the same run: ``train_local`` on the joined columns (plaintext).
The check: the largest difference between the two models' predictions.

Then the same sizes through the vertical runner (``kind = "vertical"``, ``model =
"gbdt"``: :func:`federated.vertical.boosting.run_vertical_gbdt` with every party in this
process, :class:`~federated.vertical.dispatch.LocalSend`): generated CSV files
(``federated.vertical.sample``, every customer at both parties, numeric columns), PSI
alignment, each party's own binning, every step through the party's state folder, and
an evaluation of each tree on the validation rows; seconds per tree, PSI apart
(``--no-runner`` skips it).

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
    ap.add_argument("--no-runner", dest="runner", action="store_false",
                    help="Skip the run through the vertical runner.")
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
    if args.runner:
        per_tree, psi = _runner(args)
        print(f"vertical runner (every step through the parties' state folders, each tree "
              f"evaluated): {per_tree:.2f} s/tree ({per_tree / vertical:.2f}x the core); PSI "
              f"alignment {psi:.1f} s")


def _runner(args: argparse.Namespace) -> tuple[float, float]:
    """Seconds per tree and PSI seconds of the vertical runner on generated files."""
    import tempfile

    from federated.config import load_config
    from federated.runner import _vertical_setups
    from federated.vertical.boosting import run_vertical_gbdt
    from federated.vertical.dispatch import LocalSend
    from federated.vertical.sample import write_vertical

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config = write_vertical(folder, args.rows, seed=3, guest_numeric=args.guest_cols,
                                guest_text=0, host_numeric=args.host_cols, host_text=0,
                                keep=1.0, trees={"rounds": args.trees})
        (folder / "work" / "state").mkdir(parents=True)
        send = LocalSend(_vertical_setups(load_config(config), folder / "work", None))
        cfg = {"seed": 1, "rounds": args.trees,
               "gbdt": {"max_depth": args.depth, "max_bins": args.bins,
                        "paillier_bits": args.key_bits}}
        result = run_vertical_gbdt(send, cfg, "bank", ["partner_1"])
    return float(result["seconds"]["per_tree"]), float(result["seconds"]["psi"])


if __name__ == "__main__":
    main()
