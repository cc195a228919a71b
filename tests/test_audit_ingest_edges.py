"""Query-log ingestion at its edges: timestamps that cannot be converted to every zone,
event ids reused for other content, and CSV quotes that are never closed.

Each case once crashed (a traceback), or lost records without a word; the contract is a
quarantine entry naming what was wrong and where, while the good records are stored.
"""

from __future__ import annotations

import json
import sqlite3
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from covault.cli import main
from privacy.audit._logio import csv_records
from privacy.audit.adapters import collect, read_csv, read_jsonl
from privacy.audit.events import (
    MalformedLine,
    QueryEvent,
    check_timestamp,
    parse_timestamp,
    restore_event,
)
from privacy.audit.pgaudit import _tz_table, read_pgaudit_csvlog, read_pgaudit_stderr
from privacy.audit.store import AuditStore, UnreadableEventWarning
from privacy.errors import ConfigError, InputError


def run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _line(**fields: Any) -> str:
    base = {"ts": "2026-03-01T09:30:00+08:00", "actor": "alice", "statement": "select 1"}
    return json.dumps({**base, **fields}) + "\n"


def _quarantine(db: Path) -> list[tuple[int, str]]:
    con = sqlite3.connect(db)
    try:
        return [(int(n), str(r)) for n, r in
                con.execute("SELECT line, reason FROM quarantine ORDER BY id")]
    finally:
        con.close()


# --------------------------------------------------------------------------- timestamps
@pytest.mark.parametrize("text", [
    "9999-12-31T23:59:59-08:00",   # UTC instant in year 10000
    "0001-01-01T00:00:00+08:00",   # UTC instant in year 0
    "0001-06-01T00:00:00Z",        # representable, but not in every zone
    "9999-06-01T00:00:00Z",
    "0002-01-01T05:00:00+08:00",   # 0001-12-31 in UTC
])
def test_timestamps_out_of_range_are_input_errors(text: str) -> None:
    with pytest.raises(InputError, match=r"field 'ts': timestamp .* is out of range"):
        parse_timestamp(text)
    # the same when a naive one gets the log's zone
    naive = text[:19]
    with pytest.raises(InputError, match="out of range"):
        parse_timestamp(naive, default_tz=timezone(timedelta(hours=14)) if naive < "5"
                        else timezone(timedelta(hours=-14)))


@pytest.mark.parametrize("text", ["0002-01-01T00:00:00Z", "0002-01-01T00:00:00-08:00",
                                  "9998-12-31T23:59:59.999999Z", "9998-12-31T12:00:00+08:00",
                                  "1969-12-31T23:59:59Z", "2026-03-01T09:30:00+08:00"])
def test_timestamps_at_the_edges_of_the_range_are_kept(text: str) -> None:
    ts = parse_timestamp(text)
    # every one of them converts to any zone detection might use
    for hours in (-23, 0, 23):
        ts.astimezone(timezone(timedelta(hours=hours, minutes=59 if hours > 0 else 0)))
    assert check_timestamp(ts) is ts


def test_a_constructed_event_is_checked_too() -> None:
    far = datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-8)))
    with pytest.raises(InputError, match="field 'ts'.*out of range"):
        QueryEvent(event_id="e", ts=far, actor="a", statement="s")
    # an older store's readback, unchecked, is what verification uses
    assert parse_timestamp("9999-12-31T23:59:59-08:00", bounded=False).year == 9999


def test_jsonl_and_csv_quarantine_extreme_timestamps_and_keep_the_rest(tmp_path: Path) -> None:
    # without event_id the content-addressed id converts ts to UTC: that crashed
    log = _write(tmp_path / "a.jsonl", _line(ts="0001-01-01T00:00:00+08:00")
                 + _line() + _line(event_id="x-1", ts="9999-12-31T23:59:59-08:00"))
    events, bad = collect(read_jsonl(log))
    assert len(events) == 1
    assert [(b.line_no, "field 'ts'" in b.reason and "out of range" in b.reason)
            for b in bad] == [(1, True), (3, True)]
    csv = _write(tmp_path / "a.csv", "ts,actor,statement\n0001-01-01T00:00:00+08:00,t1,s\n"
                 "2026-03-01T09:30:00+08:00,t2,s\n")
    events, bad = collect(read_csv(csv))
    assert [e.actor for e in events] == ["t2"]
    assert bad[0].line_no == 2 and "field 'ts'" in bad[0].reason
    naive = _write(tmp_path / "n.jsonl", _line(event_id="n1", ts="0001-01-01T05:00:00"))
    _, bad = collect(read_jsonl(naive, default_tz=timezone(timedelta(hours=8))))
    assert "out of range" in bad[0].reason


def test_cli_ingest_detect_with_extreme_timestamps(tmp_path: Path) -> None:
    log = _write(tmp_path / "y.jsonl", _line(event_id="x-1", ts="9999-12-31T23:59:59-08:00")
                 + _line(event_id="x-2", ts="0001-01-01T00:00:00+08:00") + _line(event_id="ok")
                 + _line(event_id="ok2", actor="bob"))
    db = tmp_path / "a.db"
    r = run("audit", "ingest", str(log), "--db", str(db), "--detect")
    assert r.exit_code == 0, r.output
    assert "2 new events" in r.output and "2 quarantined" in r.output
    assert "quarantined line 1: field 'ts': timestamp 9999-12-31T23:59:59-08:00" in r.output
    assert [n for n, _ in _quarantine(db)] == [1, 2]
    r = run("audit", "detect", "--db", str(db))
    assert r.exit_code == 0, r.output


def test_pgaudit_extreme_timestamps_and_impossible_zones(tmp_path: Path) -> None:
    head = " [4200] teller01@corebank 10.1.2.3(52344) teller-ui LOG:  AUDIT: SESSION,"
    log = _write(tmp_path / "pg.log", "".join(
        f"{ts}{head}{i},1,READ,SELECT,,,select 1,<not logged>,1\n" for i, ts in enumerate([
            "9999-12-31 23:59:59.999 -12", "0001-01-01 00:00:00.000 +14",
            "2026-03-02 01:30:05.200 +99", "2026-03-02 01:30:05.200 +05:75",
            "2026-03-02 01:30:05.200 +08"], 1)))
    events, bad = collect(read_pgaudit_stderr(log))
    assert len(events) == 1 and events[0].ts.utcoffset() == timedelta(hours=8)
    assert [b.line_no for b in bad] == [1, 2, 3, 4]
    assert "'9999-12-31 23:59:59.999 -12' is out of range" in bad[0].reason
    assert "'0001-01-01 00:00:00.000 +14' is out of range" in bad[1].reason
    assert "time zone '+99' is not a possible UTC offset" in bad[2].reason
    assert "'+05:75' is not a possible UTC offset" in bad[3].reason
    row = ("{ts},teller01,corebank,4200,10.1.2.3:52344,65e2c3a1.1068,1,SELECT,"
           "2026-03-02 09:30:04 +08,3/2,0,LOG,00000,\"AUDIT: SESSION,{n},1,READ,SELECT,,,"
           "select 1,<not logged>,1\",,,,,,,,,teller-ui,client backend,,0\n")
    csvlog = _write(tmp_path / "pg.csv", row.format(ts="0001-01-01 00:00:00.100 +08", n=1)
                    + row.format(ts="2026-03-02 09:30:05.200 +08", n=2))
    events, bad = collect(read_pgaudit_csvlog(csvlog))
    assert len(events) == 1 and bad[0].line_no == 1 and "out of range" in bad[0].reason
    with pytest.raises(ConfigError, match=r"timezones\['X'\].*not a possible UTC offset"):
        _tz_table({"X": "+99"})


def _poisoned(db: Path) -> None:
    """A store as an older version left it: events whose ts no zone conversion survives."""
    far = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-8)))
    early = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=8)))
    ok = datetime(2026, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=8)))
    evs = [restore_event(eid, ts, "alice", None, None, None, None, None, None, "select 1",
                         None, None, None) for eid, ts in (("x-1", far), ("x-2", early))]
    evs.append(QueryEvent(event_id="good", ts=ok, actor="bob", statement="select 2"))
    with AuditStore(db) as store:
        store.add_events(evs)


def test_replay_of_a_store_poisoned_by_an_older_version(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    _poisoned(db)
    with AuditStore(db) as store:
        with pytest.warns(UnreadableEventWarning) as caught:
            got = [e.event_id for e in store.events()]
        assert got == ["good"]
        texts = " | ".join(str(w.message) for w in caught)
        assert "stored event 'x-1' (seq 1) skipped" in texts and "'x-2' (seq 2)" in texts
        assert [(s, i) for s, i, _ in store.skipped] == [(2, "x-2"), (1, "x-1")]
        with pytest.warns(UnreadableEventWarning):
            assert [e.event_id for e in store.events_by_id(["x-1", "good"])] == ["good"]
        with pytest.raises(InputError, match="stored event 'x-1' cannot be read: field 'ts'"):
            store.event("x-1")
        assert store.verify().events == 3  # still intact: verification does not refuse it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnreadableEventWarning)
        r = run("audit", "detect", "--db", str(db))
        assert r.exit_code == 0, r.output
        assert "scored 1 events" in r.output
        log = _write(tmp_path / "more.jsonl", _line(event_id="more"))
        r = run("audit", "ingest", str(log), "--db", str(db), "--detect")
        assert r.exit_code == 0, r.output


# --------------------------------------------------------------------------- reused ids
def test_an_id_reused_for_other_content_is_quarantined(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    base = _write(tmp_path / "base.jsonl", _line(event_id="e1") + _line(event_id="e2"))
    reuse = _write(tmp_path / "reuse.jsonl", _line(event_id="e1", actor="mallory",
                                                   statement="COPY customers TO STDOUT")
                   + _line(event_id="e2") + _line(event_id="e3"))
    with AuditStore(db) as store:
        assert store.ingest(read_jsonl(base), source=str(base)).added == 2
        seen: list[str] = []
        rep = store.ingest(read_jsonl(reuse), source=str(reuse), on_event=lambda e:
                           seen.append(e.event_id))
        assert (rep.read, rep.added, rep.duplicates, rep.conflicts) == (3, 1, 1, 1)
        assert seen == ["e3"]
        assert rep.quarantined == [(1, "event_id 'e1' already stored with different content "
                                       f"(first stored at seq 1, batch 1, from {base})")]
        assert store.event("e1").actor == "alice"  # type: ignore[union-attr]
        q = store.quarantine()
        assert q[0]["line"] == 1 and json.loads(q[0]["raw"])["actor"] == "mallory"
        # again: the conflict is reported again, nothing new is stored
        rep = store.ingest(read_jsonl(reuse), source=str(reuse))
        assert (rep.added, rep.duplicates, rep.conflicts) == (0, 2, 1)
        assert store.verify().quarantined == 1


def test_an_id_reused_within_one_file_and_across_batches(tmp_path: Path) -> None:
    log = _write(tmp_path / "dup.jsonl", _line(event_id="z1")
                 + _line(event_id="z1", actor="b", statement="DROP TABLE customers")
                 + _line(event_id="z1") + _line(event_id="z2") + _line(event_id="z2", rows=5))
    with AuditStore(tmp_path / "a.db") as store:
        rep = store.ingest(read_jsonl(log), source="dup.jsonl")
        assert (rep.added, rep.duplicates, rep.conflicts) == (2, 1, 2)
        assert rep.quarantined == [
            (2, "event_id 'z1' already stored with different content (first at line 1 of "
                "dup.jsonl)"),
            (5, "event_id 'z2' already stored with different content (first at line 4 of "
                "dup.jsonl)")]
    with AuditStore(tmp_path / "b.db") as store:  # one event a batch
        rep = store.ingest(read_jsonl(log), source="dup.jsonl", batch_size=1)
        assert (rep.added, rep.duplicates, rep.conflicts) == (2, 1, 2)
        assert rep.quarantined[0] == (2, "event_id 'z1' already stored with different "
                                         "content (first stored at seq 1, batch 1, from "
                                         "dup.jsonl)")
        store.verify()


def test_the_same_event_serialised_otherwise_is_a_duplicate(tmp_path: Path) -> None:
    """Hashes differ (another offset for the same instant), field values do not."""
    with AuditStore(tmp_path / "a.db") as store:
        store.ingest(read_jsonl([_line(event_id="e1", ts="2026-03-01T01:30:00Z")]))
        rep = store.ingest(read_jsonl([_line(event_id="e1", ts="2026-03-01T09:30:00+08:00")]))
        assert (rep.added, rep.duplicates, rep.conflicts, rep.quarantined) == (0, 1, 0, [])


def test_cli_summary_shows_the_conflict(tmp_path: Path) -> None:
    db = str(tmp_path / "a.db")
    base = _write(tmp_path / "base.jsonl", _line(event_id="sim3-0"))
    assert run("audit", "ingest", str(base), "--db", db).exit_code == 0
    reuse = _write(tmp_path / "reuse.jsonl", _line(event_id="sim3-0", actor="mallory")
                   + _line(event_id="new-1"))
    r = run("audit", "ingest", str(reuse), "--db", db, "--detect")
    assert r.exit_code == 0, r.output
    assert "1 new events, 0 already stored, 1 quarantined" in r.output
    assert "quarantined line 1: event_id 'sim3-0' already stored with different content" \
        in r.output
    r = run("audit", "ingest", str(base), "--db", db, "--json")
    assert json.loads(r.output)["duplicates"] == 1


# --------------------------------------------------------------------------- CSV quotes
def test_csv_unterminated_quote_does_not_swallow_the_records_after_it(tmp_path: Path) -> None:
    log = _write(tmp_path / "u.csv", "ts,actor,statement\n"
                 "2026-03-01T09:30:00+08:00,t1,\"select 1\n"
                 "2026-03-01T09:31:00+08:00,t2,select 2\n"
                 "2026-03-01T09:32:00+08:00,mallory,COPY customers TO STDOUT\n")
    events, bad = collect(read_csv(log))
    assert [e.actor for e in events] == ["t2", "mallory"]
    assert bad == [MalformedLine(2, "quoted field opened at line 2 is never closed "
                                    "(unexpected end of data)",
                                 "2026-03-01T09:30:00+08:00,t1,\"select 1")]
    db = tmp_path / "a.db"
    r = run("audit", "ingest", str(log), "--format", "csv", "--db", str(db))
    assert r.exit_code == 0, r.output
    assert "read 3 records: 2 new events" in r.output
    assert _quarantine(db) == [(2, bad[0].reason)]


def test_csv_quoted_fields_that_span_lines_still_work_and_bad_quotes_are_named() -> None:
    lines = ["h", "\"a", "b\",c", "x,\"y\"z", "\"p\"\"q\"", "ok", "m,\"n", "o\",\"open", "tail"]
    got = list(csv_records(lines))
    assert got[0] == (1, ["h"], ["h"])
    assert got[1] == (2, ["a\nb", "c"], ["\"a", "b\",c"])
    assert got[2][0] == 4 and got[2][1] == "not valid CSV: ',' expected after '\"'"
    assert got[3] == (5, ["p\"q"], ["\"p\"\"q\""])  # a doubled quote inside quotes
    assert got[4] == (6, ["ok"], ["ok"])
    # a closed multi-line field, then a quote never closed: it opened on line 8
    assert got[5] == (7, "quoted field opened at line 8 is never closed (unexpected end "
                         "of data)", ["m,\"n", "o\",\"open"])
    assert got[6] == (9, ["tail"], ["tail"])
    assert len(got) == 7


def test_csv_header_with_an_open_quote_is_an_input_error(tmp_path: Path) -> None:
    log = _write(tmp_path / "h.csv", "ts,actor,\"statement\n2026-03-01T09:30:00Z,a,s\n")
    with pytest.raises(InputError, match="line 1: header: quoted field opened at line 1"):
        list(read_csv(log))


def test_pgaudit_csvlog_with_an_open_quote_keeps_the_next_record(tmp_path: Path) -> None:
    pre = ("2026-03-02 09:30:0{s}.200 +08,{u},corebank,4200,10.1.2.3:52344,65e2c3a1.1068,1,"
           "SELECT,2026-03-02 09:30:04 +08,3/2,0,LOG,00000,")
    log = _write(tmp_path / "pg.csv",
                 pre.format(s=5, u="teller01") + "\"AUDIT: SESSION,1,1,READ,SELECT,,,select 1,"
                 "<not logged>,1,,,,,,,,,teller-ui,client backend,,0\n"
                 + pre.format(s=6, u="mallory") + "\"AUDIT: SESSION,1,1,READ,COPY,,,copy "
                 "customers to stdout,<not logged>,1\",,,,,,,,,teller-ui,client backend,,0\n")
    events, bad = collect(read_pgaudit_csvlog(log))
    assert [e.actor for e in events] == ["mallory"]
    assert [b.line_no for b in bad] == [1]
    assert bad[0].reason == ("not valid CSV at line 2: ',' expected after '\"' (in a quoted "
                             "field opened at line 1)")
