"""Bad input found by a new user's trial of the audit and masking commands.

Bad input is refused with an error naming the file and line (or the option), exit 2
from the CLI, nothing changed; warnings are printed as one-line covault warnings:

1. a ``source_ip`` watch list holding something that is not an IP address or network;
2. a privilege change window that ends before it starts (it runs past midnight, as a
   rota's night shift does) or starts and ends at the same time;
3. ``audit triage --comment`` (and ``audit suppress``'s texts) of bytes that are not UTF-8;
4. events an older version stored with out-of-range timestamps, skipped on replay: the
   CLI prints ``warning: ...``, not Python's warning format with source paths;
5. an FPE value the operator cannot take names the input file besides column and row.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from covault.cli import main
from privacy.audit.events import QueryEvent, restore_event
from privacy.audit.lists import ListSet
from privacy.audit.privilege import PrivilegeJudge
from privacy.audit.rules import Rules
from privacy.audit.store import AuditStore
from privacy.errors import ConfigError
from privacy.keys import Kek, Keyset

REPO = Path(__file__).resolve().parents[1]
CST = timezone(timedelta(hours=8))


def run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture()
def store(tmp_path: Path) -> Path:
    """A store with one alert (a clerk granting itself everything at night)."""
    ev = tmp_path / "ev.jsonl"
    ev.write_text(
        json.dumps(
            {
                "event_id": "g1",
                "ts": "2026-03-30T01:06:52+08:00",
                "actor": "bob",
                "statement": "GRANT ALL ON customers TO bob",
            }
        )
        + "\n",
        encoding="utf-8",
    )
    db = tmp_path / "db" / "a.db"
    db.parent.mkdir()
    r = run("audit", "ingest", str(ev), "--db", str(db), "--detect")
    assert r.exit_code == 0, r.output
    return db


# ------------------------------------------------------------- 1. source_ip watch lists
LISTS = """\
version: 1
lists:
  - name: intel
    type: deny
    kind: source_ip
    owner: soc
    reason: known bad hosts
    expires: 2030-01-01
    values:
      - 198.51.100.23
      - {value}
"""


@pytest.mark.parametrize(
    "value,what",
    [
        ("10.0.0.300", "address"),
        ("10.0.0.0/33", "network"),
        ("abc", "address"),
        ("'10.0.0.1 '", "address"),
        ("'10.0.0.0/8/8'", "network"),
        ("'::g'", "address"),
    ],
)
def test_source_ip_list_refuses_what_is_not_an_address(
    tmp_path: Path, value: str, what: str
) -> None:
    f = tmp_path / "lists.yaml"
    f.write_text(LISTS.format(value=value), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        ListSet.load(f)
    e = info.value
    assert e.file == str(f) and e.line == 11
    assert f"bad IP {what} {value.strip(chr(39))!r}" in str(e) and "lists.0.values.1" in str(e)


def test_source_ip_list_networks_and_address_forms_match(tmp_path: Path) -> None:
    f = tmp_path / "lists.yaml"
    f.write_text(
        LISTS.format(value="10.1.0.0/16") + "      - 2001:DB8::1\n      - 192.0.2.7/24\n",
        encoding="utf-8",
    )
    ls = ListSet.load(f)
    now = datetime(2026, 6, 1, tzinfo=timezone.utc)
    for ip in ("198.51.100.23", "10.1.255.4", "2001:db8::1", "2001:0db8:0::1", "192.0.2.200"):
        hits = ls.lookup("source_ip", ip, now, "deny")
        assert [m.entry.name for m in hits] == ["intel"] and hits[0].value == ip, ip
    for ip in ("10.2.0.1", "198.51.100.24", "db-host", "2001:db8::2"):
        assert ls.lookup("source_ip", ip, now) == [], ip


def test_cli_bad_source_ip_list_exit_2_naming_file_line_value(store: Path, tmp_path: Path) -> None:
    f = tmp_path / "lists.yaml"
    text = LISTS.format(value="10.0.0.300")
    f.write_text(text, encoding="utf-8")
    before = snapshot(store.parent)
    r = run("audit", "detect", "--db", str(store), "--lists", str(f))
    assert r.exit_code == 2, r.output
    assert f"{f}:11:" in r.output and "'10.0.0.300'" in r.output
    assert "Traceback" not in r.output
    assert snapshot(store.parent) == before and f.read_text(encoding="utf-8") == text


# ------------------------------------------------------- 2. change windows past midnight
def rules(window: str) -> Rules:
    return Rules.from_text(
        'version: 1\ncalendar: {timezone: "+08:00"}\nprivileges:\n'
        f"  change_windows:\n    - {window}\n",
        "r.yaml",
    )


def test_change_window_across_midnight_runs_into_the_next_day() -> None:
    r = rules('{days: [mon], start: "22:00", end: "06:00"}')
    judge = PrivilegeJudge(
        r.privileges, r.calendar, score=85, routine_score=25, off_window_score=60
    )

    def inside(day: int, hour: int, minute: int = 0) -> bool:  # 2026-06-01 is a Monday
        return judge.in_window(datetime(2026, 6, day, hour, minute, tzinfo=CST))

    assert inside(1, 23) and inside(2, 5) and inside(1, 22) and inside(2, 5, 59)
    assert not inside(1, 12) and not inside(2, 6) and not inside(1, 21, 59)
    assert not inside(1, 5)  # Monday morning belongs to Sunday night's window
    assert not inside(2, 23) and not inside(3, 5)  # Tuesday has no window
    # the same instant given in UTC
    assert judge.in_window(datetime(2026, 6, 1, 15, 0, tzinfo=timezone.utc))  # 23:00 +08
    # Sunday night runs into Monday morning
    r = rules('{days: [sun], start: "23:30", end: "00:30"}')
    judge = PrivilegeJudge(
        r.privileges, r.calendar, score=85, routine_score=25, off_window_score=60
    )
    assert judge.in_window(datetime(2026, 6, 1, 0, 15, tzinfo=CST))
    assert judge.in_window(datetime(2026, 5, 31, 23, 45, tzinfo=CST))
    assert not judge.in_window(datetime(2026, 6, 1, 23, 45, tzinfo=CST))


@pytest.mark.parametrize(
    "window,words",
    [
        ('{start: "22:00", end: "22:00"}', "starts and ends at 22:00"),
        ('{start: "00:00", end: "00:00"}', "starts and ends at 00:00"),
        ('{start: 22:00, end: "06:00"}', "in quotes"),  # YAML 1.1: the number 1320
        ('{start: "22:00:30", end: "06:00"}', "expected a time 'HH:MM'"),
    ],
)
def test_change_window_that_cannot_be_meant_is_an_error_at_its_line(
    window: str, words: str
) -> None:
    with pytest.raises(ConfigError) as info:
        rules(window)
    e = info.value
    assert e.file == "r.yaml" and e.line == 5 and words in str(e)
    assert "privileges.change_windows.0" in str(e)


def test_cli_change_window_of_no_length_exit_2(store: Path, tmp_path: Path) -> None:
    f = tmp_path / "r.yaml"
    f.write_text(
        "version: 1\nprivileges:\n  change_windows:\n"
        '    - {days: [mon], start: "08:00", end: "08:00"}\n',
        encoding="utf-8",
    )
    before = snapshot(store.parent)
    r = run("audit", "detect", "--db", str(store), "--rules", str(f))
    assert r.exit_code == 2 and f"{f}:4:" in r.output and "starts and ends" in r.output
    assert snapshot(store.parent) == before


# ------------------------------------------------ 3. comments that are not UTF-8 text
def _alert_id(store: Path) -> str:
    r = run("audit", "alerts", "--db", str(store), "--format", "json")
    return str(json.loads(r.output.splitlines()[0])["alert_id"])


def _triage(store: Path, aid: str, *extra: str | bytes) -> list[str | bytes]:
    return ["audit", "triage", aid, "--db", str(store), "--state", "in_progress", *extra]


def test_triage_comment_not_utf8_exit_2_nothing_changed(store: Path) -> None:
    aid = _alert_id(store)
    before = snapshot(store.parent)
    # what Python makes of the argument bytes b"ok \xff\xfe" (surrogateescape)
    r = run(*_triage(store, aid, "--comment", "ok \udcff\udcfe"))
    assert r.exit_code == 2
    assert "error: --comment is not valid UTF-8 text (byte 0xff at character 4)" in r.stderr
    assert "JSON" not in r.output and "surrogates" not in r.output
    assert snapshot(store.parent) == before
    r = run(*_triage(store, aid, "--comment", "ok", "--analyst", "\udce4"))
    assert r.exit_code == 2 and "--analyst is not valid UTF-8" in r.stderr
    assert snapshot(store.parent) == before
    r = run(*_triage(store, aid, "--comment", "调查中 ok"))
    assert r.exit_code == 0, r.output


def test_triage_comment_raw_bytes_from_a_shell(store: Path) -> None:
    aid = _alert_id(store)
    env = dict(os.environ, PYTHONPATH=str(REPO), LANG="C.UTF-8", LC_ALL="C.UTF-8")
    cmd = [sys.executable, "-m", "covault", *_triage(store, aid, "--comment", b"\xff\xfe")]
    r = subprocess.run(cmd, env=env, capture_output=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.decode() == (
        "error: --comment is not valid UTF-8 text (byte 0xff at character 1): give it as UTF-8\n"
    )


def test_suppress_texts_not_utf8_exit_2(store: Path) -> None:
    before = snapshot(store.parent)
    r = run(
        "audit",
        "suppress",
        "--db",
        str(store),
        "--actor",
        "bob",
        "--reason",
        "\udce4\udcb8",
        "--comment",
        "c",
        "--expires",
        "2030-01-01",
    )
    assert r.exit_code == 2 and "--reason is not valid UTF-8 text (byte 0xe4" in r.stderr
    assert snapshot(store.parent) == before


# ----------------------------------------------- 4. events an older version stored
def _poisoned(db: Path) -> None:
    """A store as an older version left it: events whose ts no zone conversion survives."""
    far = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-8)))
    early = datetime(1, 1, 1, tzinfo=CST)
    evs = [
        restore_event(
            eid, ts, "alice", None, None, None, None, None, None, "select 1", None, None, None
        )
        for eid, ts in (("x-1", far), ("x-2", early))
    ]
    evs.append(
        QueryEvent(
            event_id="good",
            ts=datetime(2026, 3, 1, 9, 30, tzinfo=CST),
            actor="bob",
            statement="select 2",
        )
    )
    with AuditStore(db) as store:
        store.add_events(evs)


def test_cli_prints_skipped_old_events_as_covault_warnings(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    _poisoned(db)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("PYTHONWARNINGS", None)
    r = subprocess.run(
        [sys.executable, "-m", "covault", "audit", "detect", "--db", str(db)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "scored 1 events" in r.stdout
    lines = r.stderr.splitlines()
    assert len(lines) == 2, r.stderr
    assert all(line.startswith(f"warning: {db}: stored event ") for line in lines)
    assert "'x-1' (seq 1) skipped" in r.stderr and "'x-2' (seq 2) skipped" in r.stderr
    assert "UnreadableEventWarning" not in r.stderr and ".py:" not in r.stderr


def test_cli_warning_hook_is_scoped_to_the_command(tmp_path: Path) -> None:
    import warnings

    db = tmp_path / "old.db"
    _poisoned(db)
    shown = warnings.showwarning
    r = CliRunner().invoke(main, ["audit", "detect", "--db", str(db)])
    assert r.exit_code == 0, r.output
    assert "warning: " in r.stderr and "'x-1' (seq 1) skipped" in r.stderr
    assert "UnreadableEventWarning" not in r.output
    assert warnings.showwarning is shown


# ----------------------------------------------------------- 5. FPE names the file
def test_fpe_value_error_names_input_file_column_and_row(tmp_path: Path) -> None:
    kek_file = tmp_path / "kek.hex"
    kek_file.write_text(bytes(range(32)).hex())
    kek_file.chmod(0o600)
    ks = tmp_path / "ff1.json"
    Keyset.create("FF1_AES256").save(ks, Kek.from_key_file(kek_file))
    src = tmp_path / "accounts.csv"
    text = "acct,name\n12345678,a\n1234x678,b\n"
    src.write_text(text, encoding="utf-8")
    pol = tmp_path / "p.yaml"
    pol.write_text(
        "version: 1\ndefault: keep\nviews:\n  v:\n    columns:\n"
        "      - {name: acct, operator: fpe}\n",
        encoding="utf-8",
    )
    out = tmp_path / "o.csv"
    r = run(
        "mask",
        "apply",
        str(src),
        "-o",
        str(out),
        "-p",
        str(pol),
        "-v",
        "v",
        "-k",
        str(ks),
        "--kek-file",
        str(kek_file),
    )
    assert r.exit_code == 2, r.output
    assert f"error: {src}: column 'acct': row 2: operator 'fpe'" in r.stderr
    assert f"rule at {pol}:6" in r.stderr
    assert not out.exists() and src.read_text(encoding="utf-8") == text
