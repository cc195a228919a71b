"""The audit database: idempotent ingest, quarantine, append-only, ledger, tamper checks."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from privacy.audit.adapters import read_jsonl
from privacy.audit.events import QueryEvent
from privacy.audit.store import AuditStore, ledger_path_for
from privacy.errors import IntegrityError
from privacy.ledger import generate_signing_key

TZ = timezone(timedelta(hours=8))


def events(n: int, start: int = 0) -> list[QueryEvent]:
    t0 = datetime(2026, 4, 1, 9, tzinfo=TZ)
    return [QueryEvent(event_id=f"ev-{i:06d}", ts=t0 + timedelta(seconds=i), actor=f"a{i % 7}",
                       statement=f"SELECT name FROM customers WHERE cust_id = {i}", rows=1,
                       status="ok") for i in range(start, start + n)]


def write_jsonl(path: Path, evs: list[QueryEvent], bad: dict[int, str] | None = None) -> None:
    lines = [e.to_json() for e in evs]
    for pos, text in sorted((bad or {}).items()):
        lines.insert(pos - 1, text)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture()
def store(tmp_path: Path) -> AuditStore:
    s = AuditStore(tmp_path / "audit.db")
    yield s  # type: ignore[misc]
    s.close()


def test_ingest_twice_adds_nothing_and_quarantines_with_line_numbers(
        store: AuditStore, tmp_path: Path) -> None:
    f = tmp_path / "log.jsonl"
    write_jsonl(f, events(12000), {3: "{not json", 7: '{"event_id": "x"}'})
    rep = store.ingest(read_jsonl(f), source=str(f), batch_size=5000)
    assert rep.added == 12000 and rep.duplicates == 0 and rep.batches == 3
    assert [ln for ln, _ in rep.quarantined] == [3, 7]
    assert "not valid JSON" in rep.quarantined[0][1]
    rep2 = store.ingest(read_jsonl(f), source=str(f))
    assert rep2.added == 0 and rep2.duplicates == 12000 and rep2.batches == 0
    assert store.count() == 12000
    assert [q["line"] for q in store.quarantine()] == [3, 7]
    assert store.verify().events == 12000
    assert ledger_path_for(store.path).exists()


def test_events_come_back_in_time_order_and_unchanged(store: AuditStore) -> None:
    evs = events(50)
    store.add_events(list(reversed(evs)))
    assert list(store.events(chunk=7)) == evs
    assert store.event("ev-000003") == evs[3]
    assert store.event("nope") is None


def test_events_are_append_only(store: AuditStore) -> None:
    store.add_events(events(5))
    for sql in ("UPDATE events SET actor = 'x'", "DELETE FROM events",
                "DELETE FROM batches", "UPDATE batches SET count = 0"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            store.db.execute(sql)
    assert not any(name.startswith(("delete", "edit", "update")) for name in dir(store))


def _tamper(path: Path, *sql: str) -> None:
    db = sqlite3.connect(path)
    db.execute("DROP TRIGGER events_no_update")
    db.execute("DROP TRIGGER events_no_delete")
    for s in sql:
        db.execute(s)
    db.commit()
    db.close()


@pytest.mark.parametrize("sql", [
    "UPDATE events SET data = replace(data, 'cust_id = 3', 'cust_id = 4') WHERE seq = 4",
    "DELETE FROM events WHERE seq = 10",
    "INSERT INTO events (event_id, ts, actor, data, hash, batch) SELECT 'zz', ts, actor, data, "
    "hash, batch FROM events WHERE seq = 1",
])
def test_verify_detects_tampering(tmp_path: Path, sql: str) -> None:
    path = tmp_path / "audit.db"
    with AuditStore(path) as s:
        s.add_events(events(100))
        s.verify()
    _tamper(path, sql)
    with AuditStore(path) as s, pytest.raises(IntegrityError):
        s.verify()


def test_verify_detects_hash_and_data_rewritten_together(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    with AuditStore(path) as s:
        s.add_events(events(30))
    import hashlib

    db = sqlite3.connect(path)
    data = db.execute("SELECT data FROM events WHERE seq = 2").fetchone()[0]
    new = data.replace('"rows":1', '"rows":9')
    db.execute("DROP TRIGGER events_no_update")
    db.execute("UPDATE events SET data = ?, hash = ? WHERE seq = 2",
               (new, hashlib.sha256(new.encode()).digest()))
    db.commit()
    db.close()
    with AuditStore(path) as s, pytest.raises(IntegrityError, match="batch"):
        s.verify()


def test_checkpoint_catches_a_consistently_rewritten_ledger(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    key = generate_signing_key()
    with AuditStore(path) as s:
        s.add_events(events(20))
        cp = s.checkpoint(key)
        s.add_events(events(20, start=20))
        assert s.verify(cp, public_key=key).checkpoint_size == cp.size
    # A rebuilt store+ledger with other content cannot extend the old checkpoint.
    for f in tmp_path.iterdir():
        f.unlink()
    with AuditStore(path) as s:
        s.add_events(events(40, start=100))
        s.verify()
        with pytest.raises(IntegrityError):
            s.verify(cp, public_key=key)


def test_crash_between_commit_and_ledger_append_is_reconciled(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "audit.db"
    s = AuditStore(path)
    s.add_events(events(10))

    def boom(*a: object, **k: object) -> int:
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(s.ledger, "append", boom)
    with pytest.raises(KeyboardInterrupt):
        s.add_events(events(10, start=10))
    s.close()
    monkeypatch.undo()
    with AuditStore(path) as s2:
        assert s2.recovered == 1
        rep = s2.verify()
        assert rep.events == 20 and rep.batches == 2


def test_not_a_store(tmp_path: Path) -> None:
    from privacy.errors import SerializationError

    bad = tmp_path / "x.db"
    bad.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(SerializationError):
        AuditStore(bad)


def test_on_event_sees_each_new_event_once_in_input_order(store: AuditStore,
                                                           tmp_path: Path) -> None:
    f = tmp_path / "log.jsonl"
    evs = events(7000)
    write_jsonl(f, evs[:3000] + [evs[10]] + evs[3000:], {5: "{not json"})
    seen: list[str] = []
    rep = store.ingest(read_jsonl(f), source=str(f), batch_size=2000, on_event=lambda e:
                       seen.append(e.event_id))
    assert rep.added == 7000 and rep.duplicates == 1
    assert seen == [e.event_id for e in evs]
    again: list[str] = []
    write_jsonl(f, events(500, start=6800))  # 200 stored, 300 new
    rep = store.ingest(read_jsonl(f), source=str(f), on_event=lambda e: again.append(e.event_id))
    assert rep.added == 300 and again == [e.event_id for e in events(300, start=7000)]
    assert store.verify().events == 7300
