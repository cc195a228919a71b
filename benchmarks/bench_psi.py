"""Benchmark: covault PSI end to end vs OpenMined PSI (``openmined-psi``).

covault: ``covault psi serve`` and ``covault psi join`` as two processes on loopback,
N x N ids (half shared), CSV in and CSV out, timed from the server's start to the
joiner's exit. Baseline: OpenMined PSI (P-256, BoringSSL, one thread, in process, raw
set, reveal intersection) at a smaller size in the same run. The ratio compares
per-element throughput ((|A| + |B|) / seconds).

Usage::

    .venv/bin/python benchmarks/bench_psi.py                 # 1,000,000 x 1,000,000
    .venv/bin/python benchmarks/bench_psi.py --n 50000 --baseline-n 20000

``openmined-psi`` comes with the ``bench`` extra (``pip install covault[bench]``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-c", "from covault.cli import main; main()", "psi"]


def write_ids(path: Path, start: int, n: int) -> None:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    ids = pa.array([f"CN{i:012d}" for i in range(start, start + n)])
    pcsv.write_csv(pa.table({"cust_id": ids, "row": pa.array(range(n))}), path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bench_covault(n: int, tmp: Path) -> dict[str, float]:
    a, b, out = tmp / "a.csv", tmp / "b.csv", tmp / "shared.csv"
    write_ids(a, 0, n)
    write_ids(b, n // 2, n)
    port = free_port()
    pki = tmp / "pki"  # sessions run over mutual TLS, as in production
    subprocess.run([*CLI, "certs", str(pki), "--client", "bank-a"], cwd=ROOT, check=True,
                   capture_output=True)
    server_tls = ["--cert", str(pki / "server.pem"), "--key", str(pki / "server.key"),
                  "--ca", str(pki / "ca.crt")]
    client_tls = ["--cert", str(pki / "bank-a.pem"), "--key", str(pki / "bank-a.key"),
                  "--ca", str(pki / "ca.crt")]
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    server = subprocess.Popen(
        [*CLI, "serve", "--ids", str(b), "-c", "cust_id", "--port", str(port), "--once",
         *server_tls, "--format", "json"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    joined = subprocess.run(
        [*CLI, "join", "--ids", str(a), "-c", "cust_id", "--connect", f"127.0.0.1:{port}",
         *client_tls, "-o", str(out), "--format", "json"],
        cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    s_out, s_err = server.communicate(timeout=600)
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    if joined.returncode or server.returncode:
        raise SystemExit(f"covault failed:\n{joined.stderr}\n{s_err}")
    summary = json.loads(joined.stdout)
    assert summary["intersection_size"] == n - n // 2, summary
    assert summary["rows_written"] == n - n // 2, summary
    return {"n": n, "seconds": elapsed, "throughput": 2 * n / elapsed, "cpu": cpu}


def bench_openmined(n: int) -> dict[str, float]:
    import private_set_intersection.python as psi

    client_items = [f"CN{i:012d}" for i in range(n)]
    server_items = [f"CN{i:012d}" for i in range(n // 2, n // 2 + n)]
    t0 = time.perf_counter()
    client = psi.client.CreateWithNewKey(True)
    server = psi.server.CreateWithNewKey(True)
    setup = server.CreateSetupMessage(0.0, len(client_items), server_items, psi.DataStructure.RAW)
    request = client.CreateRequest(client_items)
    response = server.ProcessRequest(request)
    got = client.GetIntersection(setup, response)
    elapsed = time.perf_counter() - t0
    assert len(got) == n - n // 2, len(got)
    return {"n": n, "seconds": elapsed, "throughput": 2 * n / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="ids per party (covault)")
    parser.add_argument("--baseline-n", type=int, default=100_000, help="ids per party (OpenMined)")
    parser.add_argument("--bar", type=float, default=150.0, help="seconds allowed for covault")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"cores: {cores}  load average: {os.getloadavg()}")
    base = bench_openmined(args.baseline_n)
    print(f"openmined-psi {base['n']:>9,} x {base['n']:,}: {base['seconds']:7.1f} s  "
          f"{base['throughput']:9,.0f} elements/s (1 thread, in process)")
    with tempfile.TemporaryDirectory() as tmp:
        ours = bench_covault(args.n, Path(tmp))
    print(f"covault psi   {ours['n']:>9,} x {ours['n']:,}: {ours['seconds']:7.1f} s  "
          f"{ours['throughput']:9,.0f} elements/s (serve + join, 2 processes, loopback)")
    print(f"covault CPU time (both processes and their workers): {ours['cpu']:.1f} s "
          f"= {ours['cpu'] / (2 * ours['n']) * 1e6:.1f} us per element")
    print(f"throughput ratio covault / openmined: {ours['throughput'] / base['throughput']:.2f}")
    verdict = "PASS" if ours["seconds"] <= args.bar else "FAIL"
    print(f"bar: {ours['seconds']:.1f} s <= {args.bar:.0f} s: {verdict}  "
          f"(load average after: {os.getloadavg()})")


if __name__ == "__main__":
    main()
