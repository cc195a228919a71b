"""Query events, log adapters (JSONL, CSV, pgAudit stderr/csvlog) and the catalogue."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privacy.audit.adapters import (
    collect,
    compile_prefix,
    read_csv,
    read_events,
    read_jsonl,
    read_pgaudit_csvlog,
    read_pgaudit_stderr,
)
from privacy.audit.catalog import Catalog
from privacy.audit.events import MalformedLine, QueryEvent, json_dumps
from privacy.errors import ConfigError, InputError

VECTORS = Path(__file__).parent / "vectors"
CST8 = timezone(timedelta(hours=8))


def _event(**kw: object) -> dict[str, object]:
    base: dict[str, object] = {
        "event_id": "e1", "ts": "2026-03-01T09:30:00+08:00", "actor": "teller01",
        "statement": "select 1",
    }
    base.update(kw)
    return base


# ----------------------------------------------------------------------------- events
def test_from_dict_minimal_and_round_trip() -> None:
    ev = QueryEvent.from_dict(_event(rows=3, status="ok", duration_ms=2, actor_kind="human"))
    assert ev.ts == datetime(2026, 3, 1, 9, 30, tzinfo=CST8)
    assert ev.duration_ms == 2.0 and ev.rows == 3
    assert QueryEvent.from_json(ev.to_json()) == ev
    assert QueryEvent.from_dict(ev.to_dict()) == ev
    assert "\n" not in ev.to_json()


def test_z_suffix_means_utc() -> None:
    ev = QueryEvent.from_dict(_event(ts="2026-03-01T01:30:00Z"))
    assert ev.ts_utc == datetime(2026, 3, 1, 1, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("patch", "field", "expected"),
    [
        ({"ts": "2026-03-01T09:30:00"}, "ts", "offset"),
        ({"ts": "yesterday"}, "ts", "ISO 8601"),
        ({"ts": 1700000000}, "ts", "string"),
        ({"rows": "12"}, "rows", "integer"),
        ({"rows": -1}, "rows", "non-negative"),
        ({"rows": True}, "rows", "integer"),
        ({"duration_ms": "fast"}, "duration_ms", "number"),
        ({"duration_ms": float("nan")}, "duration_ms", "number"),
        ({"status": "fine"}, "status", "'ok'"),
        ({"actor_kind": "robot"}, "actor_kind", "'human'"),
        ({"actor": ""}, "actor", "non-empty string"),
        ({"source_ip": 10}, "source_ip", "string"),
        ({"statement": None}, "statement", "required"),
        ({"event_id": None}, "event_id", "required"),
        ({"colour": "red"}, "colour", "unknown field"),
    ],
)
def test_validation_names_field_and_expectation(
    patch: dict[str, object], field: str, expected: str
) -> None:
    with pytest.raises(InputError) as err:
        QueryEvent.from_dict(_event(**patch), file="log.jsonl", line=7)
    msg = str(err.value)
    assert repr(field) in msg and expected in msg
    assert msg.startswith("log.jsonl:7:")


def test_constructor_rejects_naive_datetime() -> None:
    with pytest.raises(InputError, match="'ts'"):
        QueryEvent(event_id="x", ts=datetime(2026, 1, 1), actor="a", statement="s")


def test_events_are_frozen() -> None:
    ev = QueryEvent.from_dict(_event())
    with pytest.raises(AttributeError):
        ev.actor = "mallory"  # type: ignore[misc]


text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@settings(max_examples=60, deadline=None)
@given(
    actor=text.filter(bool), statement=text, rows=st.none() | st.integers(0, 10**12),
    minutes=st.integers(-14 * 60, 14 * 60), status=st.sampled_from([None, "ok", "error", "denied"]),
    client=st.none() | text,
)
def test_json_round_trip_property(
    actor: str, statement: str, rows: int | None, minutes: int, status: str | None,
    client: str | None,
) -> None:
    ts = datetime(2026, 5, 1, 12, 0, 0, 123000, tzinfo=timezone(timedelta(minutes=minutes)))
    ev = QueryEvent(event_id="id", ts=ts, actor=actor, statement=statement, rows=rows,
                    status=status, client=client)  # type: ignore[arg-type]
    back = QueryEvent.from_json(ev.to_json())
    assert back == ev and back.ts.utcoffset() == ev.ts.utcoffset()


# ----------------------------------------------------------------------------- JSONL
def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_jsonl_line_numbers_malformed_and_ids(tmp_path: Path) -> None:
    good = {k: v for k, v in _event().items() if k != "event_id"}
    lines = [
        json.dumps(good),
        "",
        "{not json",
        json.dumps([1, 2]),
        json.dumps({**good, "rows": "many"}),
        json.dumps(good),  # identical content: a second, distinct event
        json.dumps(_event(event_id="given-id")),
    ]
    path = _write(tmp_path / "a.jsonl", lines)
    recs = list(read_jsonl(path))
    assert [n for n, _ in recs] == [1, 3, 4, 5, 6, 7]
    bad = {n: r for n, r in recs if isinstance(r, MalformedLine)}
    assert set(bad) == {3, 4, 5}
    assert "JSON" in bad[3].reason and "object" in bad[4].reason and "'rows'" in bad[5].reason
    assert bad[5].raw == lines[4]
    events = [r for _, r in recs if isinstance(r, QueryEvent)]
    assert events[0].event_id.startswith("rec:") and events[0].event_id != events[1].event_id
    assert events[2].event_id == "given-id"
    # same file twice (or a copy under another name) -> same ids
    copy = tmp_path / "copy.jsonl"
    copy.write_bytes(path.read_bytes())
    again = [r.event_id for _, r in read_jsonl(copy) if isinstance(r, QueryEvent)]
    assert again == [e.event_id for e in events]


def test_jsonl_invalid_utf8_is_quarantined(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl"
    path.write_bytes(b'{"a": "\xff"}\n')
    (n, rec), = list(read_jsonl(path))
    assert n == 1 and isinstance(rec, MalformedLine) and "UTF-8" in rec.reason


# ----------------------------------------------------------------------------- CSV
def test_csv_reader(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_text(
        "ts,actor,statement,rows,duration_ms,client\n"
        "2026-03-01T09:30:00+08:00,teller01,select 1,1,0.5,psql\n"
        '2026-03-01T09:31:00+08:00,teller01,"select *\n  from customers",20,,\n'
        "2026-03-01T09:32:00+08:00,teller01,select 2,lots,,\n"
        "2026-03-01T09:33:00,teller01,select 3,,,\n"
        "2026-03-01T09:34:00+08:00,teller01\n",
        encoding="utf-8",
    )
    recs = list(read_csv(path))
    assert [n for n, _ in recs] == [2, 3, 5, 6, 7]
    events, bad = collect(recs)
    assert events[0].duration_ms == 0.5 and events[0].client == "psql"
    assert events[1].statement == "select *\n  from customers" and events[1].client is None
    assert [b.line_no for b in bad] == [5, 6, 7]
    assert "'rows'" in bad[0].reason and "'ts'" in bad[1].reason and "fields" in bad[2].reason
    # JSONL and CSV of the same content agree on the derived id
    jpath = _write(tmp_path / "q.jsonl", [events[0].to_json()])
    (_, jev), = list(read_jsonl(jpath))
    assert isinstance(jev, QueryEvent) and jev.event_id == events[0].event_id


def test_csv_bad_header(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text("ts,actor,query\n", encoding="utf-8")
    with pytest.raises(InputError, match="'query'"):
        list(read_csv(path))
    path.write_text("ts,actor\n", encoding="utf-8")
    with pytest.raises(InputError, match="'statement'"):
        list(read_csv(path))


# ----------------------------------------------------------------------------- pgAudit
def test_pgaudit_stderr_sample() -> None:
    recs = list(read_pgaudit_stderr(VECTORS / "pgaudit_stderr.log"))
    by_line = dict(recs)
    events, bad = collect(recs)
    assert [b.line_no for b in bad] == [1, 10, 11, 17]
    assert "continuation" in by_line[1].reason  # type: ignore[union-attr]
    assert "log_line_prefix" in by_line[10].reason  # type: ignore[union-attr]
    assert "rows" in by_line[11].reason  # type: ignore[union-attr]
    assert "CST" in by_line[17].reason  # type: ignore[union-attr]
    assert sorted(n for n, r in recs if isinstance(r, QueryEvent)) == [3, 4, 8, 12, 13, 15, 18]
    first = by_line[3]
    assert isinstance(first, QueryEvent)
    assert first.actor == "teller01" and first.database == "corebank"
    assert first.source_ip == "10.1.2.3" and first.client == "teller-ui"
    assert first.rows == 1 and first.status == "ok"
    assert first.ts == datetime(2026, 3, 2, 1, 30, 5, 200000, tzinfo=timezone.utc)
    multi = by_line[4]
    assert isinstance(multi, QueryEvent) and multi.rows == 2
    assert multi.statement == ("select c.name, a.balance\n  from customers c\n"
                               "  join accounts a on a.cust_id = c.cust_id\n"
                               " where c.cust_id in (1001, 1002)")
    assert by_line[8].rows == 5000  # type: ignore[union-attr]  # second relation merged
    denied, err = by_line[13], by_line[15]
    assert isinstance(denied, QueryEvent) and denied.status == "denied"
    assert denied.statement == "select * from salaries"
    assert isinstance(err, QueryEvent) and err.status == "error" and err.rows is None
    assert err.statement.endswith("OR 1=1 --'")
    copy = by_line[12]
    assert isinstance(copy, QueryEvent) and copy.actor == "batch" and copy.client == "etl"
    assert len({e.event_id for e in events}) == len(events)


def test_pgaudit_stderr_timezone_mapping_and_idempotent_ids() -> None:
    path = VECTORS / "pgaudit_stderr.log"
    recs = dict(read_pgaudit_stderr(path, timezones={"CST": "+08:00"}))
    grant = recs[17]
    assert isinstance(grant, QueryEvent)
    assert grant.ts_utc == datetime(2026, 3, 2, 1, 31, tzinfo=timezone.utc)
    ids1 = [r.event_id for r in recs.values() if isinstance(r, QueryEvent)]
    ids2 = [r.event_id for _, r in read_pgaudit_stderr(path, timezones={"CST": "+08:00"})
            if isinstance(r, QueryEvent)]
    assert ids1 == ids2


def test_pgaudit_csvlog_sample_and_cross_format_ids() -> None:
    recs = list(read_pgaudit_csvlog(VECTORS / "pgaudit_csvlog.log"))
    by_line = dict(recs)
    events, bad = collect(recs)
    assert [b.line_no for b in bad] == [7, 9]
    assert "columns" in bad[0].reason and "SESSION" in bad[1].reason
    assert sorted(n for n, r in recs if isinstance(r, QueryEvent)) == [2, 3, 8, 10]
    multi = by_line[3]
    assert isinstance(multi, QueryEvent) and multi.statement.count("\n") == 3
    assert multi.ts.utcoffset() == timedelta(hours=8) and multi.source_ip == "10.1.2.3"
    denied = by_line[8]
    assert isinstance(denied, QueryEvent) and denied.status == "denied"
    nolog = by_line[10]
    assert isinstance(nolog, QueryEvent) and nolog.rows is None and nolog.source_ip == "[local]"
    # the same statements in the stderr sample get the same ids
    stderr = dict(read_pgaudit_stderr(VECTORS / "pgaudit_stderr.log"))
    assert by_line[2].event_id == stderr[3].event_id  # type: ignore[union-attr]
    assert by_line[3].event_id == stderr[4].event_id  # type: ignore[union-attr]


def test_read_events_dispatch_and_unknown_format() -> None:
    recs = list(read_events(VECTORS / "pgaudit_csvlog.log", "pgaudit-csvlog"))
    assert len(recs) == 6
    with pytest.raises(InputError, match="unknown audit log format"):
        read_events(VECTORS / "pgaudit_csvlog.log", "syslog")


def test_stderr_from_iterable_with_epoch_prefix() -> None:
    lines = ["1767225600.250 [77] app@bank LOG:  AUDIT: SESSION,1,1,READ,SELECT,,,select 1,"
             "<not logged>,1"]
    (n, ev), = list(read_pgaudit_stderr(lines, prefix="%n [%p] %u@%d "))
    assert n == 1 and isinstance(ev, QueryEvent)
    assert ev.ts == datetime(2026, 1, 1, 0, 0, 0, 250000, tzinfo=timezone.utc)
    assert ev.source_ip is None and ev.database == "bank"


@pytest.mark.parametrize("prefix", ["%u@%d ", "%m %m [%p] ", "%m [%p] %Z ", "%m [%p] %"])
def test_bad_prefix_is_config_error(prefix: str) -> None:
    with pytest.raises(ConfigError):
        compile_prefix(prefix)


def test_bad_timezone_mapping() -> None:
    with pytest.raises(ConfigError, match="CST"):
        list(read_pgaudit_stderr([], timezones={"CST": "Mars/Olympus"}))


# ----------------------------------------------------------------------------- catalogue
CATALOG_YAML = """\
version: 1
columns:
  customers.id_no: {class: C3, tags: [cn_resident_id], customer_key: true}
  customers.name: {class: C3, tags: [cn_name]}
  customers.created: {}
  crm.accounts.cust_id: {class: c2, customer_key: true}
"""


def test_catalog_load_and_lookups(tmp_path: Path) -> None:
    path = tmp_path / "cat.yaml"
    path.write_text(CATALOG_YAML, encoding="utf-8")
    cat = Catalog.load(path)
    assert len(cat) == 4
    assert cat.column_class("customers", "ID_NO") == "C3"
    assert cat.column_class("public.customers", "id_no") == "C3"
    assert cat.column_class("accounts", "cust_id") == "C2"
    assert cat.column_class("customers", "created") is None
    assert cat.has_column("customers", "created") and not cat.has_column("customers", "email")
    assert cat.is_customer_key("crm.accounts", "cust_id")
    assert {c.qualified for c in cat.customer_key_columns()} == {
        "customers.id_no", "crm.accounts.cust_id"}
    assert len(cat.sensitive_columns()) == 3
    json_path = tmp_path / "cat.json"
    json_path.write_text(json.dumps({"columns": {"customers.id_no": {"class": "C3"}}}))
    assert Catalog.load(json_path).column_class("customers", "id_no") == "C3"


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ("columns:\n  t.a: {class: C4}\n", 2, "unknown class"),
        ("columns:\n  t.a: {clas: C3}\n", 2, "unknown key 'clas'"),
        ("columns:\n  t.a: {}\n  t.b: {tags: x}\n", 3, "tags"),
        ("columns:\n  t.a: {}\n  t.a: {}\n", 3, "duplicate"),
        ("version: 1\nrules: []\ncolumns: {}\n", 2, "unknown key 'rules'"),
        ("columns:\n  nodot: {}\n", 2, "table.column"),
        ("columns:\n  t.a: {customer_key: maybe}\n", 2, "customer_key"),
        ("columns: [\n", 2, "YAML"),
    ],
)
def test_catalog_errors_have_file_and_line(
    tmp_path: Path, text: str, line: int, needle: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        Catalog.load(path)
    assert err.value.line == line, str(err.value)
    assert str(err.value).startswith(f"{path}:{line}:") and needle in str(err.value)


def test_catalog_digest_tracks_content() -> None:
    a = Catalog.from_mapping({"columns": {"t.a": {"class": "C3"}}})
    b = Catalog.from_mapping({"columns": {"t.a": {"class": "C2"}}})
    assert a.digest != b.digest
    assert a.digest == Catalog.from_mapping({"columns": {"t.a": {"class": "C3"}}}).digest


@settings(max_examples=300, deadline=None)
@given(when=st.datetimes(
           # local times whose UTC instant lies in the range events keep (TS_MIN..TS_MAX;
           # outside it the event is refused, tested in test_audit_ingest_edges.py)
           min_value=datetime(2, 1, 3), max_value=datetime(9998, 12, 30),
           timezones=st.one_of(
           st.timezones(),
           # whole seconds: Python 3.11's fromisoformat reads "+00:00:00.000001" as UTC
           st.builds(timezone, st.timedeltas(min_value=timedelta(hours=-23, minutes=-59),
                                             max_value=timedelta(hours=23, minutes=59))
                     .map(lambda d: timedelta(seconds=round(d.total_seconds())))))),
       text=st.text(), rows=st.none() | st.integers(0, 2**63 - 1),
       duration=st.none() | st.floats(0, 1e300))
def test_json_line_is_the_event_as_a_dict(when: datetime, text: str, rows: int | None,
                                          duration: float | None) -> None:
    """The fast serialisation gives the same text as serialising the dict, and reads back."""
    event = QueryEvent(event_id=text or "x", ts=when, actor="a" + text, statement=text,
                       rows=rows, duration_ms=duration, client=text or None)
    line = event.to_json()
    assert line == json_dumps(event.to_dict())
    assert json.loads(line) == json.loads(json.dumps(event.to_dict()))
    back = QueryEvent.from_json(line)
    assert back.to_json() == line and back.ts.timestamp() == event.ts.timestamp()
