"""kill -9 during ingest, then ingest again: nothing lost, nothing duplicated, verify passes."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from privacy.audit.store import AuditStore

N = 150_000


def _write_log(path: Path) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for i in range(N):
            fh.write(json.dumps({
                "event_id": f"crash-{i:07d}", "ts": f"2026-04-01T{9 + i // 36000:02d}:"
                f"{(i // 600) % 60:02d}:{(i // 10) % 60:02d}.{i % 10}00000+08:00",
                "actor": f"u{i % 50}", "statement": f"SELECT name FROM customers WHERE "
                f"cust_id = {i}", "rows": 1, "status": "ok"}) + "\n")
            if i == 777:
                fh.write("{broken line\n")


def _count(db: Path) -> int:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            return int(con.execute("SELECT count(*) FROM events").fetchone()[0])
        finally:
            con.close()
    except sqlite3.Error:
        return 0


@pytest.mark.slow
def test_kill_9_during_ingest_then_ingest_again(tmp_path: Path) -> None:
    log, db = tmp_path / "big.jsonl", tmp_path / "audit.db"
    _write_log(log)
    cmd = [sys.executable, "-c", "from covault.cli import main; main()", "audit", "ingest",
           str(log), "--db", str(db),
           "--json"]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if _count(db) >= 20_000:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "ingest finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    partial = _count(db)
    assert 0 < partial < N
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["added"] == N - partial
    assert rep["duplicates"] == partial
    assert [q["line"] for q in rep["quarantined_lines"]] == [779]
    with AuditStore(db) as store:
        assert store.count() == N
        n_ids = store.db.execute("SELECT count(DISTINCT event_id) FROM events").fetchone()[0]
        assert n_ids == N
        assert len(store.quarantine()) == 1
        v = store.verify()
        assert v.events == N and v.quarantined == 1
