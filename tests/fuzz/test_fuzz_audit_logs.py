"""Fuzz the query logs ``audit ingest`` reads: JSON Lines and CSV events
(``privacy/audit/adapters.py``) and PostgreSQL pgAudit logs, stderr and csvlog
(``privacy/audit/pgaudit.py``).

The contract is stricter than elsewhere: a log is never refused as a whole for a bad
line. Every physical line ends up either in an event or quarantined as a
``MalformedLine`` with its raw bytes (issue 11, finding 10); only a header that is
unusable (CSV) or an unknown format refuses the file. Each event serialises (what the
store writes), and a sample goes through ``covault audit ingest`` into a database.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from covault.cli import main
from privacy.audit.adapters import collect, read_events
from privacy.audit.events import QueryEvent

from ._fuzz import (
    DEEP_LIST,
    HUGE_INT,
    World,
    cli,
    fuzz_settings,
    mutate_json,
    mutate_text,
    note,
    outcome,
    random_bytes,
)

VECTORS = Path(__file__).parent.parent / "vectors"
EVENTS = [
    {"event_id": "e1", "ts": "2026-03-01T09:30:00+08:00", "actor": "teller01",
     "statement": "select name from customers where id_no = '110101199003077777'",
     "rows": 1, "duration_ms": 2.5, "status": "ok", "actor_kind": "human",
     "source_ip": "10.1.2.3", "client": "psql", "parameters": ["a", 1]},
    {"ts": "2026-03-01T09:31:00Z", "actor": "batch", "statement": "copy customers to stdout",
     "rows": 5000},
]
CSV = (
    "ts,actor,statement,rows,duration_ms,client\n"
    "2026-03-01T09:30:00+08:00,teller01,select 1,1,0.5,psql\n"
    '2026-03-01T09:31:00+08:00,teller01,"select *\n  from customers",20,,\n'
    "2026-03-01T09:32:00+08:00,teller01,select 2,3,,\n"
)
FORMATS = {"jsonl": ("jsonl", b'": '), "csv": ("csv", b","),
           "pgaudit-stderr": ("log", b","), "pgaudit-csvlog": ("log", b",")}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    d = tmp_path_factory.mktemp("fuzz-audit")
    return World(dir=d, samples={
        "jsonl": "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in EVENTS).encode(),
        "csv": CSV.encode(),
        "pgaudit-stderr": (VECTORS / "pgaudit_stderr.log").read_bytes(),
        "pgaudit-csvlog": (VECTORS / "pgaudit_csvlog.log").read_bytes(),
    })


def _ingest(path: Path, fmt: str) -> tuple[list[QueryEvent], list[Any]]:
    options: dict[str, Any] = {}
    if fmt.startswith("pgaudit"):
        options["timezones"] = {"CST": "+08:00"}
    events, bad = collect(read_events(path, fmt, **options))
    for e in events:
        assert QueryEvent.from_json(e.to_json()) == e  # what the store writes and reads
    for m in bad:
        assert m.line_no >= 1 and isinstance(m.reason, str) and m.reason
    return events, bad


def _check(world: World, fmt: str, blob: bytes) -> None:
    path: Path = world["dir"] / f"fuzz.{FORMATS[fmt][0]}"
    path.write_bytes(blob)
    got = outcome(f"audit log ({fmt})", lambda: _ingest(path, fmt))
    if isinstance(got, tuple):
        events, bad = got
        note(f"audit log ({fmt})", f"{'some lines quarantined' if bad else 'all lines read'}")


@pytest.mark.parametrize("fmt", FORMATS)
def test_valid_logs(world: World, fmt: str) -> None:
    _check(world, fmt, world["samples"][fmt])
    path: Path = world["dir"] / f"fuzz.{FORMATS[fmt][0]}"
    events, bad = _ingest(path, fmt)
    assert len(events) == {"jsonl": 2, "csv": 3, "pgaudit-stderr": 8, "pgaudit-csvlog": 4}[fmt]


@fuzz_settings(30)
@given(st.sampled_from(sorted(FORMATS)), random_bytes())
@example("jsonl", b'{"ts": "2026-03-01T09:30:00Z", "actor": "a", "statement": "s", "rows": '
         + HUGE_INT.encode() + b"}\n")
@example("jsonl", DEEP_LIST.encode() + b"\n")
@example("jsonl", b'{"ts": "2026-03-01T09:30:00Z", "actor": "\\ud800", "statement": "s"}\n')
@example("csv", b"ts,actor,statement\n2026-03-01T09:30:00Z,\xff\xfe,select 1\n")
@example("pgaudit-stderr", b"\xff\n\tcontinued\n")
def test_random_bytes(world: World, fmt: str, blob: bytes) -> None:
    _check(world, fmt, blob)


@fuzz_settings(80)
@given(st.sampled_from(sorted(FORMATS)), st.data())
def test_line_mutations(world: World, fmt: str, data: st.DataObject) -> None:
    _check(world, fmt, mutate_text(data, world["samples"][fmt], sep=FORMATS[fmt][1]))


@fuzz_settings(60)
@given(st.data())
def test_jsonl_field_mutations(world: World, data: st.DataObject) -> None:
    lines = [mutate_json(data, e) for e in EVENTS]
    _check(world, "jsonl", ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass"))


@fuzz_settings(12, deadline_s=20)
@given(st.sampled_from(sorted(FORMATS)), st.data())
def test_cli_ingest(world: World, fmt: str, data: st.DataObject) -> None:
    d: Path = world["dir"]
    path = d / f"cli.{FORMATS[fmt][0]}"
    path.write_bytes(mutate_text(data, world["samples"][fmt], sep=FORMATS[fmt][1]))
    db = d / "cli-audit.db"
    for leftover in d.glob("cli-audit*"):
        leftover.unlink()
    args = ["audit", "ingest", str(path), "--format", fmt, "--db", str(db),
            "--max-quarantine-share", "1"]
    if fmt.startswith("pgaudit"):
        args += ["--tz", "CST=+08:00"]
    cli(f"audit log ({fmt})", main, args)
