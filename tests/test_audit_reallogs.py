"""Real logs (issue 13, item 5): bind parameters, --map and --tz for JSONL/CSV, the
expected log_line_prefix when lines do not match, exit 1 when too much is quarantined,
and holidays from a maintained library overridable by a file.

The pgAudit side against a real PostgreSQL server is in ``test_pgaudit_real.py``.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from covault.cli import main
from privacy.audit._binds import bind, parse_pg_array
from privacy.audit.adapters import (
    collect,
    parse_field_map,
    read_csv,
    read_events,
    read_jsonl,
    read_pgaudit_csvlog,
    read_pgaudit_stderr,
)
from privacy.audit.catalog import Catalog
from privacy.audit.detect import Detector
from privacy.audit.events import QueryEvent, parse_zone
from privacy.audit.pgaudit import guess_prefix
from privacy.audit.pipeline import InlineScorer, ProcessScorer
from privacy.audit.rules import Rules
from privacy.audit.store import AuditStore
from privacy.errors import ConfigError, InputError

TZ = timezone(timedelta(hours=8))
CATALOG = Catalog.from_mapping({"version": 1, "columns": {
    "customers.cust_id": {"class": "C2", "customer_key": True}}})


def run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args))


# --------------------------------------------------------------------------- bind parameters
def test_bind_puts_values_in_placeholders_only() -> None:
    sql = ("select * from customers where cust_id = $1 and note = '$1' and x = $$ $2 $$ "
           "and \"$1\" = $2 -- $1\n/* $2 */ and y = $10")
    vals = [str(i) for i in range(1, 11)]
    vals[0] = "C'1"
    out = bind(sql, vals)
    assert out.startswith("select * from customers where cust_id = 'C''1' and note = '$1'")
    assert "$$ $2 $$" in out and "\"$1\" = '2'" in out and "-- $1\n/* $2 */" in out
    assert out.endswith("y = '10'")
    assert bind("select 1 where a = $1 and b = $2", ["x", None]) == \
        "select 1 where a = 'x' and b = NULL"
    # JDBC-style ? only when the count matches; jsonb's ? operator is left alone
    assert bind("select * from t where id = ? and k = ?", ["1", "2"]) == \
        "select * from t where id = '1' and k = '2'"
    assert bind("select * from t where j ? 'k' and id = ?", ["1"]) == \
        "select * from t where j ? 'k' and id = ?"
    # a value pgAudit suppressed, or one that is missing, stays a placeholder
    assert bind("select $1, $2", ["<long param suppressed>"]) == "select $1, $2"
    assert bind("select 1", []) == "select 1"


def test_any_array_becomes_an_in_list() -> None:
    out = bind("select * from customers where cust_id = any($1::text[])",
               ['{C1,"C 2",NULL}'])
    assert "IN ('C1', 'C 2', NULL)" in out
    an = Detector(catalog=CATALOG).analyzer.analyze(bind(
        "select name from customers where cust_id = ANY ($1)", ["{1001,1002,1003}"]))
    assert an.customer_ids == ("1001", "1002", "1003")
    assert parse_pg_array("{{1,2},{3,4}}") is None and parse_pg_array("x") is None
    assert parse_pg_array("{}") == [] and parse_pg_array('{"a\\"b"}') == ['a"b']


def _audit(msg: str, user: str = "app", pid: int = 7, sec: int = 0) -> str:
    return (f"2026-04-01 10:00:{sec:02d}.000 +08 [{pid}] {user}@bank 10.0.0.5(5000) "
            f"jdbc LOG:  AUDIT: {msg}")


def test_pgaudit_parameter_field_is_kept_with_the_event() -> None:
    lines = [
        _audit('SESSION,1,1,READ,SELECT,,,select name from customers where cust_id = $1,'
               '10000042,1'),
        _audit('SESSION,2,1,READ,SELECT,,,"select a, b from customers where cust_id = $1 and '
               'x = $2","""C,1"",",0', sec=1),
        _audit("SESSION,3,1,READ,SELECT,,,select 1,<none>,1", sec=2),
        _audit("SESSION,4,1,READ,SELECT,,,select 2,<not logged>,1", sec=3),
        _audit("SESSION,5,1,READ,SELECT,,,select $1::text,<long param suppressed>,1", sec=4),
    ]
    events, bad = collect(read_pgaudit_stderr(lines))
    assert bad == []
    assert [e.parameters for e in events] == [("10000042",), ("C,1", None), None, None,
                                              ("<long param suppressed>",)]
    assert events[0].statement.endswith("cust_id = $1")  # the statement as logged
    assert events[0].bound_statement.endswith("cust_id = '10000042'")
    assert events[1].bound_statement.endswith("cust_id = 'C,1' and x = NULL")
    assert events[4].bound_statement == "select $1::text"
    # the same in a csvlog line
    msg = "AUDIT: SESSION,1,1,READ,SELECT,,,select name from customers where cust_id = $1,C9,1"
    row = ('2026-04-01 10:00:00.000 +08,"app","bank",7,"10.0.0.5:5000",s,1,"SELECT",'
           '2026-04-01 10:00:00 +08,3/4,0,LOG,00000,"' + msg + '",,,,,,,,,"jdbc",'
           '"client backend",,0')
    (ev,), bad = collect(read_pgaudit_csvlog([row]))
    assert bad == [] and ev.parameters == ("C9",)
    assert ev.event_id == events[0].event_id  # the same id from either log


def test_pgaudit_statement_once_reuses_the_parameters() -> None:
    lines = [
        _audit("SESSION,1,1,READ,SELECT,TABLE,public.customers,select * from customers c join "
               "accounts a on a.cust = c.cust_id where c.cust_id = $1,10000042,1"),
        _audit("SESSION,1,1,READ,SELECT,TABLE,public.accounts,<previously logged>,"
               "<previously logged>,1"),
        _audit("SESSION,1,2,READ,SELECT,TABLE,public.accounts,<previously logged>,"
               "<previously logged>,1"),
    ]
    events, bad = collect(read_pgaudit_stderr(lines))
    assert bad == [] and len(events) == 2
    assert events[1].parameters == ("10000042",) and events[1].statement == events[0].statement


def test_detection_sees_bound_customer_ids_inline_and_in_a_scoring_process() -> None:
    """The wall: with `$1` in the text, the customer-id scenarios saw nothing."""
    def ev(i: int, cust: int, params: bool) -> QueryEvent:
        stmt = "SELECT name FROM customers WHERE cust_id = " + ("$1" if params else str(cust))
        return QueryEvent(event_id=f"e{i}", ts=datetime(2026, 4, 9, 10, tzinfo=TZ)
                          + timedelta(seconds=20 * i), actor="t1", actor_kind="human",
                          statement=stmt, rows=1, status="ok",
                          parameters=(str(cust),) if params else None)

    def found(events: list[QueryEvent], scorer: Any) -> set[str]:
        for e in events:
            scorer.score(e)
        return {a.scenarios[0] for a in scorer.finish().alerts}

    literal = [ev(i, 10_000_000 + i, False) for i in range(60)]
    bound = [ev(i, 10_000_000 + i, True) for i in range(60)]
    assert "ID_ENUMERATION" in found(literal, InlineScorer(Detector(catalog=CATALOG)))
    assert found(bound, InlineScorer(Detector(catalog=CATALOG))) == \
        found(literal, InlineScorer(Detector(catalog=CATALOG)))
    assert found(bound, ProcessScorer(Detector(catalog=CATALOG))) == \
        found(literal, InlineScorer(Detector(catalog=CATALOG)))
    unbound = [QueryEvent(**{**e.to_dict(), "ts": e.ts, "parameters": None}) for e in bound]
    assert "ID_ENUMERATION" not in found(unbound, InlineScorer(Detector(catalog=CATALOG)))


def test_parameters_in_jsonl_csv_and_the_store(tmp_path: Path) -> None:
    line = {"ts": "2026-04-01T10:00:00+08:00", "actor": "app",
            "statement": "select * from customers where cust_id = ?", "parameters": [10000042]}
    (ev,), bad = collect(read_jsonl([json.dumps(line)]))
    assert bad == [] and ev.parameters == ("10000042",)
    assert ev.bound_statement.endswith("cust_id = '10000042'")
    csv_text = ["ts,actor,statement,parameters",
                '2026-04-01T10:00:00+08:00,app,select $1,"[""a"", null]"']
    (ev2,), bad = collect(read_csv(csv_text))
    assert bad == [] and ev2.parameters == ("a", None)
    _, bad = collect(read_jsonl([json.dumps({**line, "parameters": [True]})]))
    assert "parameters" in bad[0].reason
    plain = {k: v for k, v in line.items() if k != "parameters"}
    (p,), _ = collect(read_jsonl([json.dumps(plain)]))
    assert p.event_id != ev.event_id
    store = AuditStore(tmp_path / "a.db")
    try:
        store.add_events([ev, p])
        assert store.event(ev.event_id) == ev and store.event(p.event_id) == p
        assert store.verify().events == 2
    finally:
        store.close()


def test_ids_of_events_without_parameters_did_not_change() -> None:
    """Adding the field must not change content-addressed ids: re-ingesting a file stored
    before adds nothing."""
    line = json.dumps({"ts": "2026-04-01T10:00:00+08:00", "actor": "app",
                       "statement": "select 1"})
    (ev,), _ = collect(read_jsonl([line]))
    import hashlib

    canon = json.dumps({"actor": "app", "actor_kind": None, "client": None, "database": None,
                        "department": None, "duration_ms": None, "role": None, "rows": None,
                        "source_ip": None, "statement": "select 1", "status": None,
                        "ts": "2026-04-01T02:00:00+00:00"}, sort_keys=True,
                       separators=(",", ":"))
    base = hashlib.sha256(canon.encode()).digest()
    assert ev.event_id == "rec:" + hashlib.sha256(base + b"\0" + b"0").hexdigest()[:32]


# --------------------------------------------------------------------------- --map and --tz
LINES = [
    {"time": "2026-04-01 10:00:00", "user": "alice", "client_ip": "10.0.0.7",
     "sql": "select 1", "session_id": "s1"},
    {"time": "2026-04-01 10:05:00", "user": "bob", "client_ip": "10.0.0.8",
     "sql": "select 2", "session_id": "s2"},
]


def _jsonl(tmp_path: Path, rows: list[dict[str, Any]]) -> Path:
    p = tmp_path / "log.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return p


def test_map_and_tz_read_a_log_with_other_names(tmp_path: Path) -> None:
    """The wall: other field names and naive timestamps were quarantined with no way to
    map them, and the ingest exited 0."""
    log = _jsonl(tmp_path, LINES)
    db = str(tmp_path / "a.db")
    r = run("audit", "ingest", str(log), "--db", db)
    assert r.exit_code == 1, r.output
    assert "2 of 2 records (100%)" in r.output
    assert "--map" in r.output and "more than --max-quarantine-share 0.5" in r.output
    maps = ["--map", "time=ts", "--map", "user=actor", "--map", "client_ip=source_ip",
            "--map", "sql=statement", "--map", "session_id="]
    r = run("audit", "ingest", str(log), "--db", db, *maps)
    assert r.exit_code == 1 and "no UTC offset" in r.output and "--tz" in r.output
    r = run("audit", "ingest", str(log), "--db", db, *maps, "--tz", "Asia/Shanghai", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["added"] == 2
    r = run("audit", "ingest", str(log), "--db", db, *maps, "--tz", "+08:00", "--json")
    assert json.loads(r.output)["duplicates"] == 2  # the same instants, the same ids
    store = AuditStore(db)
    try:
        evs = list(store.events())
    finally:
        store.close()
    assert [(e.actor, e.source_ip, e.ts.utcoffset()) for e in evs] == [
        ("alice", "10.0.0.7", timedelta(hours=8)), ("bob", "10.0.0.8", timedelta(hours=8))]


def test_map_renames_csv_columns() -> None:
    text = ["when,who,query,extra", "2026-04-01T10:00:00Z,alice,select 1,x"]
    (ev,), bad = collect(read_events(text, "csv", field_map=parse_field_map(
        ["when=ts", "who=actor", "query=statement", "extra="])))
    assert bad == [] and ev.actor == "alice"
    with pytest.raises(InputError, match=r"--map extra=FIELD"):
        collect(read_csv(text[:1] + text[1:], field_map={"when": "ts", "who": "actor",
                                                        "query": "statement"}))
    (ev,), _ = collect(read_csv(["at,actor,statement", "2026-04-01 10:00:00,a,select 1"],
                                field_map={"at": "ts"}, default_tz=parse_zone("-05:00")))
    assert ev.ts.utcoffset() == timedelta(hours=-5)


@pytest.mark.parametrize(("args", "message"), [
    (["--map", "client_ip"], "expected SRC=DST"),
    (["--map", "client_ip=ip_address"], "'ip_address' is not an event field"),
    (["--map", "a=actor", "--map", "b=actor"], "both map to 'actor'"),
    (["--tz", "Mars/Olympus"], "unknown time zone 'Mars/Olympus'"),
    (["--tz", "+08:00", "--tz", "UTC"], "give the log's zone once"),
    (["--tz", "CST=+08:00"], "--tz ABBR=ZONE maps pgAudit"),
    (["--prefix", "%m [%p] "], "--prefix applies to pgAudit"),
])
def test_bad_options_are_exit_2_with_one_line(tmp_path: Path, args: list[str],
                                              message: str) -> None:
    log = _jsonl(tmp_path, LINES)
    r = run("audit", "ingest", str(log), "--db", str(tmp_path / "a.db"), *args)
    assert r.exit_code == 2, r.output
    assert message in r.output and len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "a.db").exists()  # refused before anything was written


def test_max_quarantine_share(tmp_path: Path) -> None:
    good = {"ts": "2026-04-01T10:00:00+08:00", "actor": "a", "statement": "select 1"}
    log = tmp_path / "log.jsonl"
    log.write_text(json.dumps(good) + "\nnot json\n" + json.dumps({**good, "actor": "b"})
                   + "\n", encoding="utf-8")
    r = run("audit", "ingest", str(log), "--db", str(tmp_path / "a.db"))
    assert r.exit_code == 0 and "quarantined 1 of 3 records (33%)" in r.output
    r = run("audit", "ingest", str(log), "--db", str(tmp_path / "b.db"),
            "--max-quarantine-share", "0.2")
    assert r.exit_code == 1 and "finding:" in r.output
    r = run("audit", "ingest", str(log), "--db", str(tmp_path / "c.db"),
            "--max-quarantine-share", "2")
    assert r.exit_code == 2


# --------------------------------------------------------------------------- log_line_prefix
PGBADGER = "%t [%p]: user=%u,db=%d,app=%a,client=%h "


def _pgbadger_log() -> list[str]:
    return [
        "2026-04-01 10:00:00 CST [811]: user=,db=,app=,client= LOG:  database system is "
        "ready to accept connections",
        "2026-04-01 10:00:01 CST [900]: user=app,db=bank,app=jdbc,client=10.0.0.5 LOG:  "
        "AUDIT: SESSION,1,1,READ,SELECT,,,select 1,<none>,1",
        "2026-04-01 10:00:02 CST [900]: user=app,db=bank,app=jdbc,client=10.0.0.5 LOG:  "
        "AUDIT: SESSION,2,1,READ,SELECT,,,select 2,<none>,1",
    ]


def test_prefix_mismatch_names_the_expected_and_the_detected_prefix(tmp_path: Path) -> None:
    assert guess_prefix(_pgbadger_log()) == PGBADGER
    log = tmp_path / "postgresql.log"
    log.write_text("\n".join(_pgbadger_log()) + "\n", encoding="utf-8")
    db = str(tmp_path / "a.db")
    r = run("audit", "ingest", str(log), "--format", "pgaudit", "--db", db)
    assert r.exit_code == 1
    assert "does not match log_line_prefix '%m [%p] %q%u@%d %r %a '" in r.output
    assert "expected log_line_prefix '%m [%p] %q%u@%d %r %a '" in r.output
    assert f"the lines match log_line_prefix '{PGBADGER}'" in r.output
    r = run("audit", "ingest", str(log), "--format", "pgaudit", "--db", db, "--prefix",
            "auto", "--tz", "CST=+08:00", "--json")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    assert rep["added"] == 2 and rep["log_line_prefix"] == PGBADGER
    r = run("audit", "ingest", str(log), "--format", "pgaudit", "--db", db, "--prefix",
            PGBADGER, "--tz", "Asia/Shanghai", "--json")
    assert r.exit_code == 0 and json.loads(r.output)["duplicates"] == 2
    junk = tmp_path / "junk.log"
    junk.write_text("hello\nworld\n", encoding="utf-8")
    r = run("audit", "ingest", str(junk), "--format", "pgaudit", "--db", db, "--prefix", "auto")
    assert r.exit_code == 2 and "no known log_line_prefix matches" in r.output


def test_python_read_events_takes_the_cli_format_name(tmp_path: Path) -> None:
    log = tmp_path / "postgresql.log"
    log.write_text("\n".join(_pgbadger_log()) + "\n", encoding="utf-8")
    events, bad = collect(read_events(log, "pgaudit", prefix=PGBADGER,
                                      timezones={"CST": "+08:00"}))
    assert len(events) == 2 and bad == []


# --------------------------------------------------------------------------- holidays
def test_holidays_come_from_the_library() -> None:
    import chinese_calendar

    cal = Rules.default().calendar
    assert cal.source == "chinese-calendar"
    assert set(chinese_calendar.holidays) <= cal.holidays
    assert set(chinese_calendar.workdays) <= cal.workdays
    assert not cal.is_workday(date(2026, 4, 6)) and cal.is_workday(date(2026, 2, 14))
    assert not cal.is_workday(date(2019, 10, 4))  # years before the old table, too
    assert cal.covers(date(2026, 1, 1)) and min(cal.years) <= 2010


def test_holidays_file_overrides_the_library(tmp_path: Path) -> None:
    f = tmp_path / "cn-2027.yaml"
    f.write_text('holidays: ["2027-10-01..2027-10-07", "2026-04-07"]\n'
                 'workdays: ["2027-09-26", "2026-04-06"]\n', encoding="utf-8")
    rules_path = tmp_path / "rules.yaml"
    rules_path.write_text("version: 1\ncalendar:\n  holidays_file: cn-2027.yaml\n",
                          encoding="utf-8")
    cal = Rules.load(rules_path).calendar
    assert not cal.is_workday(date(2027, 10, 4)) and cal.is_workday(date(2027, 9, 26))
    assert cal.is_workday(date(2026, 4, 6)) and not cal.is_workday(date(2026, 4, 7))
    assert cal.covers(date(2027, 6, 1))
    assert Rules.default().with_holidays_file(f).calendar.holidays == cal.holidays
    none = Rules.from_text("calendar:\n  holidays_from: none\n  holidays: ['2026-04-06']\n")
    assert none.calendar.holidays == frozenset({date(2026, 4, 6)})
    assert not none.calendar.workdays
    bad = tmp_path / "bad.yaml"
    bad.write_text('holidays:\n  - "2027-13-01"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.yaml:2: holidays\.0: bad date"):
        Rules.default().with_holidays_file(bad)
    with pytest.raises(ConfigError, match="holidays_from"):
        Rules.from_text("calendar:\n  holidays_from: moon\n")


def test_cli_holidays_option_and_note_for_unknown_years(tmp_path: Path) -> None:
    rows = [{"ts": f"2027-10-0{d}T23:00:00+08:00", "actor": "t1", "actor_kind": "human",
             "statement": "select 1"} for d in (4, 5)]
    log = _jsonl(tmp_path, rows)
    db = str(tmp_path / "a.db")
    assert run("audit", "ingest", str(log), "--db", db).exit_code == 0
    r = run("audit", "detect", "--db", db, "--no-model")
    assert r.exit_code == 0 and "of 2027 are not known" in r.output and "--holidays" in r.output
    f = tmp_path / "h.yaml"
    f.write_text('holidays: ["2027-10-01..2027-10-07"]\n', encoding="utf-8")
    r = run("audit", "detect", "--db", db, "--no-model", "--holidays", str(f))
    assert r.exit_code == 0 and "are not known" not in r.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("holidays: [nope]\n", encoding="utf-8")
    r = run("audit", "detect", "--db", db, "--holidays", str(bad))
    assert r.exit_code == 2 and "bad.yaml:1" in r.output
