"""Federated rounds: seconds and bytes per round, plain FedAvg vs CKKS vs secure aggregation.

10 simulated banks (400 synthetic borrowers each, ``federated.sample``) train a logistic
model of about 10,000 parameters (100 numeric columns and the one-hot levels of twelve
text columns, ten of them with 1,000 levels) through Flower's simulation engine; then 100
banks run plain FedAvg while the peak memory of the whole process tree (SuperLink,
ServerApp, Ray workers) is sampled from /proc.

Bars (issue 9): ckks and secagg <= 3x plain wall time per round; a plain round of 10
banks <= 1 s; 100 banks in <= 4 GiB. Round 1 includes Ray's start and is reported apart.

Run: ``.venv/bin/python benchmarks/bench_fl.py [--rounds 4] [--banks 10] [--big 100]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, table  # noqa: E402

from federated.sample import write_loan_books  # noqa: E402


def _tree_rss(root: int) -> int:
    """Resident bytes of ``root`` and all its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                parts = fh.read().rsplit(")", 1)[1].split()
            children.setdefault(int(parts[1]), []).append(int(entry))
            with open(f"/proc/{entry}/statm") as fh:
                rss[int(entry)] = int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


class PeakMemory:
    """Samples the process tree's resident memory in a background thread."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _tree_rss(os.getpid()))
            time.sleep(0.25)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def one_run(cfg: Path) -> dict[str, float]:
    from federated import run

    t0 = time.perf_counter()
    res = run(cfg)
    wall = time.perf_counter() - t0
    hist = res.history
    later = hist[1:] or hist
    return {"first": hist[0]["seconds"], "round": float(np.median([h["seconds"] for h in later])),
            "up": float(np.median([h["bytes_up"] for h in later])),
            "down": float(np.median([h["bytes_down"] for h in later])),
            "params": float(len(res.details["weights"])), "wall": wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--banks", type=int, default=10)
    ap.add_argument("--big", type=int, default=100, help="banks in the memory run (0: skip)")
    args = ap.parse_args()
    print(f"# federated rounds ({machine()})\n")
    rows = []
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for method in ("fedavg", "ckks", "secagg"):
            cfg = write_loan_books(folder / method, [400] * args.banks, rounds=args.rounds,
                                   method=method, extra_numeric=94, extra_text=10,
                                   levels=1000)
            results[method] = r = one_run(cfg)
            ratio = r["round"] / results["fedavg"]["round"]
            rows.append((method, f"{int(r['params'])}", f"{r['round']:.3f}", f"{ratio:.2f}x",
                         f"{r['up'] / 1e6:.2f}", f"{r['down'] / 1e6:.2f}", f"{r['first']:.2f}",
                         f"{r['wall']:.1f}"))
    print(f"{args.banks} banks x 400 rows, {args.rounds} rounds (median of rounds 2..):\n")
    print(table(rows, ("method", "params", "s/round", "vs plain", "MB up/round",
                       "MB down/round", "round 1 s", "run s")))
    if args.big:
        with tempfile.TemporaryDirectory() as tmp, PeakMemory() as mem:
            cfg = write_loan_books(Path(tmp), [100] * args.big, rounds=2, method="fedavg")
            r = one_run(cfg)
        print(f"\n{args.big} banks, plain FedAvg, 2 rounds: {r['round']:.2f} s/round, run "
              f"{r['wall']:.1f} s, peak memory of the process tree {mem.peak / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
