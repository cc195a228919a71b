"""Checking a ledger must not change it: read-only commands open it read-only.

Security review, issue 11 (finding 14): ``covault ledger verify/show/prove`` opened the
file they check for writing and switched it to WAL. Now they (and ``covault audit
verify``) open it with ``mode=ro`` (``immutable=1`` when no writer has it open), so the
file's bytes, modification time and journal mode stay as they were, no ``-wal``/``-shm``
file is created, and a missing file is refused (exit 2) without being created.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from covault.cli import main
from privacy.audit.events import QueryEvent
from privacy.audit.store import AuditStore, ledger_path_for
from privacy.errors import InputError
from privacy.ledger import Ledger, generate_signing_key, save_public_key

OLD = 1_000_000_000  # a fixed past mtime (2001): any write moves it


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def journal_byte(path: Path) -> int:
    """Header byte 18 of an SQLite file: 1 rollback journal, 2 WAL (read without SQLite)."""
    return path.read_bytes()[18]


def snapshot(*paths: Path) -> tuple[object, ...]:
    """Bytes, mtime and journal mode of each file, and what lies in their folders."""
    folders = sorted({p.parent for p in paths})
    return (tuple((p.read_bytes(), p.stat().st_mtime_ns, journal_byte(p)) for p in paths),
            tuple(sorted(q.name for q in d.iterdir()) for d in folders))


def age(*paths: Path) -> None:
    for p in paths:
        os.utime(p, (OLD, OLD))


@pytest.fixture(params=["wal", "delete"])
def ledger_files(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Path]:
    """A closed ledger of 5 records with a checkpoint kept outside; ``delete``: the file
    was switched to a rollback journal afterwards (e.g. to copy it as one file)."""
    db, cp, pub = tmp_path / "db" / "ledger.db", tmp_path / "cp.txt", tmp_path / "pub.pem"
    key = generate_signing_key()
    save_public_key(key, pub)
    with Ledger(db, origin="bank-a.example/disclosures") as lg:
        lg.append_many([("masking.run", {"run": i}) for i in range(5)])
        lg.checkpoint(key).save(cp)
    if request.param == "delete":
        con = sqlite3.connect(db)
        assert con.execute("PRAGMA journal_mode = DELETE").fetchone()[0] == "delete"
        con.close()
    assert journal_byte(db) == (2 if request.param == "wal" else 1)
    assert sorted(p.name for p in db.parent.iterdir()) == ["ledger.db"]
    age(db)
    return {"db": db, "cp": cp, "pub": pub}


COMMANDS = [
    ["show"],
    ["show", "--format", "json", "--last", "2"],
    ["verify"],
    ["verify", "--format", "json"],
    ["verify", "-c", "{cp}", "-p", "{pub}"],
    ["prove", "3"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c))
def test_read_only_commands_leave_the_file_as_it_was(
        ledger_files: dict[str, Path], command: list[str]) -> None:
    db = ledger_files["db"]
    args = [a.format(cp=ledger_files["cp"], pub=ledger_files["pub"]) for a in command]
    before = snapshot(db)
    r = run("ledger", args[0], db, *args[1:])
    assert r.exit_code == 0, r.output
    assert snapshot(db) == before


def test_verify_reads_what_an_open_writer_committed(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    with Ledger(db) as writer:  # still open: its commits sit in ledger.db-wal
        writer.append_many([("psi.result", {"n": i}) for i in range(9)])
        assert (tmp_path / "ledger.db-wal").exists()
        before = db.read_bytes()
        r = run("ledger", "verify", db, "--format", "json")
        assert r.exit_code == 0, r.output
        assert '"size": 9' in r.output
        assert db.read_bytes() == before
        writer.append("psi.result", {"n": 9})  # the writer is not blocked
    with Ledger(db, read_only=True) as reader:
        assert reader.size == 10


@pytest.mark.parametrize("command", [["show"], ["verify"], ["prove", "0"]])
def test_missing_ledger_is_exit_2_and_not_created(tmp_path: Path, command: list[str]) -> None:
    db = tmp_path / "nowhere" / "ledger.db"
    r = run("ledger", command[0], db, *command[1:])
    assert r.exit_code == 2 and "no such ledger file" in r.output
    assert not db.parent.exists()


def test_read_only_ledger_refuses_writes(ledger_files: dict[str, Path]) -> None:
    db = ledger_files["db"]
    before = snapshot(db)
    with Ledger(db, read_only=True) as lg:
        assert lg.size == 5 and lg.verify().size == 5
        with pytest.raises(InputError, match="read-only"):
            lg.append("masking.run", {"run": 5})
        with pytest.raises(InputError, match="read-only"):
            lg.checkpoint(generate_signing_key())
    assert snapshot(db) == before
    with pytest.raises(InputError, match="no such ledger file"):
        Ledger(db.with_name("missing.db"), read_only=True)
    assert not db.with_name("missing.db").exists()


def test_read_only_open_of_another_sqlite_file_changes_nothing(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    age(other)
    before = snapshot(other)
    r = run("ledger", "verify", other)
    assert r.exit_code == 2 and "not a covault ledger" in r.output
    assert snapshot(other) == before


# ------------------------------------------------------------------ audit verify

def _events(start: int, n: int) -> list[QueryEvent]:
    t0 = datetime(2026, 4, 1, 9, tzinfo=timezone(timedelta(hours=8)))
    return [QueryEvent(event_id=f"ev-{i:04d}", ts=t0 + timedelta(seconds=i), actor=f"a{i % 3}",
                       statement=f"SELECT name FROM customers WHERE id = {i}", rows=1,
                       status="ok") for i in range(start, start + n)]


def test_audit_verify_leaves_database_and_ledger_as_they_were(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    with AuditStore(db) as store:
        store.add_events(_events(0, 20))
    ledger = ledger_path_for(db)
    age(db, ledger)
    before = snapshot(db, ledger)
    r = run("audit", "verify", "--db", db)
    assert r.exit_code == 0, r.output
    assert snapshot(db, ledger) == before
    r = run("audit", "verify", "--db", tmp_path / "missing.db")
    assert r.exit_code == 2 and not (tmp_path / "missing.db").exists()
    assert not ledger_path_for(tmp_path / "missing.db").exists()


def test_audit_verify_does_not_write_the_ledger_it_checks(tmp_path: Path) -> None:
    # A batch committed without its ledger record (a crash between the two): verify
    # used to append the missing record before checking; now it reports it, and only
    # an ingest reconciles.
    db = tmp_path / "audit.db"
    ledger, saved = ledger_path_for(db), tmp_path / "saved.ledger.db"
    with AuditStore(db) as store:
        store.add_events(_events(0, 10))
    shutil.copy(ledger, saved)
    with AuditStore(db) as store:
        store.add_events(_events(10, 10))
    shutil.copy(saved, ledger)
    age(db, ledger)
    before = snapshot(db, ledger)
    r = run("audit", "verify", "--db", db)
    assert r.exit_code == 1 and "reconcile" in r.output
    assert snapshot(db, ledger) == before
    with AuditStore(db) as store:  # an ordinary open reconciles
        assert store.recovered == 1 and store.verify().batches == 2
