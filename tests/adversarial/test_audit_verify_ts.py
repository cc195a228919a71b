"""Issue 11 (12): `covault audit verify` must cover every stored column of an event.

Only an event's JSON ``data`` was hashed into its batch's Merkle root. The ``ts`` column,
which orders replay (:meth:`AuditStore.events` reads ``ORDER BY ts, seq``, so detection,
baselines and reports see events in that order), and the ``actor`` and ``event_id``
columns (which select an actor's events and look events up) could be rewritten in the
SQLite file and ``audit verify`` still said "verified". Likewise a quarantined line's raw
text and source. Now each event's ``event_id``, ``ts`` and ``actor`` are recomputed from
its hashed content and compared with the stored columns, its ``seq`` and ``batch`` must
lie in the ledgered range of its batch, and the quarantine digest covers every field.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from covault.cli import main
from privacy.audit import store as store_module
from privacy.audit.adapters import read_jsonl
from privacy.audit.events import QueryEvent
from privacy.audit.store import AuditStore

TZ = timezone(timedelta(hours=8))
T0 = datetime(2026, 4, 1, 9, tzinfo=TZ)


def _events(n: int) -> list[QueryEvent]:
    return [QueryEvent(event_id=f"ev-{i:04d}", ts=T0 + timedelta(minutes=i), actor=f"a{i % 3}",
                       statement=f"SELECT name FROM customers WHERE cust_id = {i}", rows=1,
                       status="ok") for i in range(n)]


def _make_store(tmp_path: Path) -> Path:
    """An audit store of 30 events in 3 batches, with 2 quarantined lines."""
    log = tmp_path / "log.jsonl"
    lines = [e.to_json() for e in _events(30)]
    lines.insert(4, "{not json")
    lines.insert(20, '{"event_id": "x"}')
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    db = tmp_path / "audit.db"
    with AuditStore(db) as s:
        rep = s.ingest(read_jsonl(log), source=str(log), batch_size=11)
        assert rep.added == 30 and rep.batches == 3 and len(rep.quarantined) == 2
    return db


def _edit(db: Path, *sql: str) -> None:
    con = sqlite3.connect(db)
    for table in ("events", "quarantine"):
        con.execute(f"DROP TRIGGER {table}_no_update")
    for statement in sql:
        con.execute(statement)
    con.commit()
    con.close()


def _verify(db: Path) -> Result:
    # catch_exceptions=False: a traceback fails the test instead of passing as exit 1
    return CliRunner().invoke(main, ["audit", "verify", "--db", str(db)],
                              catch_exceptions=False)


def test_untouched_store_verifies(tmp_path: Path) -> None:
    db = _make_store(tmp_path)
    res = _verify(db)
    assert res.exit_code == 0, res.output
    assert "verified: 30 events in 3 batches, 2 quarantined lines" in res.output


@pytest.mark.parametrize("sql", [
    # a later time: the event replays after others, outside its real hour
    "UPDATE events SET ts = ts + 3600 WHERE event_id = 'ev-0007'",
    # the smallest change a REAL can hold
    "UPDATE events SET ts = ts + 0.000001 WHERE event_id = 'ev-0007'",
    # text where a number belongs (REAL affinity keeps it as text)
    "UPDATE events SET ts = 't' || ts WHERE event_id = 'ev-0007'",
    "UPDATE events SET actor = 'a9' WHERE event_id = 'ev-0007'",
    "UPDATE events SET event_id = 'ev-9999' WHERE event_id = 'ev-0007'",
    "UPDATE events SET hash = zeroblob(32) WHERE event_id = 'ev-0007'",
    "UPDATE events SET data = replace(data, 'cust_id = 7', 'cust_id = 8') "
    "WHERE event_id = 'ev-0007'",
    # into another batch, and past every batch
    "UPDATE events SET batch = 3 WHERE event_id = 'ev-0007'",
    "UPDATE events SET seq = 1000 WHERE event_id = 'ev-0007'",
])
def test_an_edited_event_column_fails_verification_naming_the_event(
        tmp_path: Path, sql: str) -> None:
    db = _make_store(tmp_path)
    _edit(db, sql)
    res = _verify(db)
    assert res.exit_code == 1, res.output
    assert res.output.startswith("finding: audit store verification failed: event seq ")
    assert "ev-0007" in res.output or "ev-9999" in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_swapped_timestamps_reorder_replay_and_fail_verification(tmp_path: Path) -> None:
    """The attack: swap two events' ts so that replay (detection, baselines, reports)
    sees them in another order; every hashed byte stays as it was."""
    db = _make_store(tmp_path)
    with AuditStore(db, read_only=True) as s:
        before = [e.event_id for e in s.events()]
    _edit(db, "UPDATE events SET ts = (SELECT ts FROM events WHERE event_id = 'ev-0002') + "
              "(SELECT ts FROM events WHERE event_id = 'ev-0025') - ts "
              "WHERE event_id IN ('ev-0002', 'ev-0025')")
    with AuditStore(db, read_only=True) as s:
        after = [e.event_id for e in s.events()]
    assert after != before and sorted(after) == sorted(before)
    res = _verify(db)
    assert res.exit_code == 1, res.output
    assert "event seq" in res.output and "'ev-0002'" in res.output


@pytest.mark.parametrize("sql", [
    "UPDATE quarantine SET raw = '{\"event_id\": \"y\"}' WHERE raw = '{\"event_id\": \"x\"}'",
    "UPDATE quarantine SET source = 'elsewhere.jsonl' WHERE line = 5",
    "UPDATE quarantine SET batch = 7 WHERE line = 5",
])
def test_an_edited_quarantine_row_fails_verification(tmp_path: Path, sql: str) -> None:
    db = _make_store(tmp_path)
    _edit(db, sql)
    res = _verify(db)
    assert res.exit_code == 1, res.output
    assert "quarantine rows" in res.output


def test_a_store_written_before_the_v2_quarantine_digest_still_verifies(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches ledgered with the old digest (line and reason) verify as they were."""
    monkeypatch.setattr(store_module, "_qdigest",
                        lambda rows: store_module._qdigest_v1((ln, r) for _, ln, r, _ in rows))
    db = _make_store(tmp_path)
    monkeypatch.undo()
    with AuditStore(db, read_only=True) as s:
        assert all(not p["qdigest"].startswith("v2:") for p in
                   (r.payload for r in s.ledger.records() if r.kind == "audit.events"))
    assert _verify(db).exit_code == 0
    _edit(db, "UPDATE events SET ts = ts - 60 WHERE event_id = 'ev-0003'")
    res = _verify(db)
    assert res.exit_code == 1 and "ev-0003" in res.output


def test_events_with_sub_second_offsets_verify(tmp_path: Path) -> None:
    """The ts column is the time read back from the hashed content, also for an offset
    with fractions of a second (which Python's fromisoformat may not read back)."""
    db = tmp_path / "audit.db"
    odd = [timezone(timedelta(microseconds=1)), timezone(timedelta(hours=8, microseconds=5)),
           timezone(timedelta(hours=-3, seconds=30))]
    with AuditStore(db) as s:
        s.add_events([QueryEvent(event_id=f"tz-{i}", ts=T0.replace(tzinfo=tz), actor="a",
                                 statement="select 1") for i, tz in enumerate(odd)])
    assert _verify(db).exit_code == 0
