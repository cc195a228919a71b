"""Edge cases of the query-audit configuration files and of the audit commands' text.

Rules, holidays, lists and rota files: every bad value is a ConfigError naming the file
and line (exit 2 from the CLI, no traceback). Audit text output: control characters
from data are shown escaped, JSON keeps the exact data.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from covault.cli import main
from covault.console import json_text, terminal_safe
from privacy.audit.lists import ListSet
from privacy.audit.rota import Rota
from privacy.audit.rules import Rules
from privacy.errors import ConfigError

NASTY_ACTOR = "evil\x1b[2J\x1b[31mroot\u202e"
NASTY_STMT = "GRANT ALL ON customers TO x; -- \x1b]0;pwned\x07 \x9b31m"


def run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def rules_error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        Rules.from_text(text, "r.yaml")
    assert info.value.file == "r.yaml" and info.value.line is not None
    return info.value


# --------------------------------------------------------------------------- rules
@pytest.mark.parametrize("zone", ["+99:00", "+24:00", "-24:00", "+08:60"])
def test_rules_time_zone_out_of_range_is_an_error_at_its_line(zone: str) -> None:
    e = rules_error(f'version: 1\ncalendar:\n  timezone: "{zone}"\n')
    assert e.line == 3 and "calendar.timezone" in str(e) and "out of range" in str(e)


def test_rules_time_zone_forms_of_tz_option_accepted() -> None:
    for zone, hours in (("+08:00", 8), ("-0530", -5.5), ("UTC", 0)):
        cal = Rules.from_text(f'calendar: {{timezone: "{zone}"}}\n').calendar
        offset = cal.tz.utcoffset(datetime(2026, 1, 1))
        assert offset is not None and offset.total_seconds() == hours * 3600
    assert "Shanghai" in str(Rules.from_text('calendar: {timezone: Asia/Shanghai}\n').calendar.tz)
    e = rules_error("calendar:\n  timezone: +8:00\n")  # YAML 1.1: the number 480
    assert e.line == 2 and "quotes" in str(e)


@pytest.mark.parametrize("dates,words", [
    ('["9999-12-30..9999-12-31"]', "out of range"),
    ('["9999-12-31"]', "out of range"),
    ('["0001-01-01"]', "out of range"),
    ('["2026-01-01..2027-06-30"]', "spans 546 days"),
    ('["2026-05-01.."]', "open range"),
    ('["..2026-05-03"]', "open range"),
    ('["2026-W18-1"]', "expected YYYY-MM-DD"),
    ('[20260501]', "expected YYYY-MM-DD"),
    ('[null]', "expected YYYY-MM-DD"),
])
def test_rules_holiday_dates_are_bounded(dates: str, words: str) -> None:
    e = rules_error(f"version: 1\ncalendar:\n  holidays: {dates}\n")
    assert e.line == 3 and words in str(e) and "calendar.holidays.0" in str(e)


def test_rules_holiday_range_of_a_year_is_fine() -> None:
    cal = Rules.from_text('calendar: {holidays_from: none, holidays: '
                          '["2026-01-01..2026-12-31"]}\n').calendar
    assert len(cal.holidays) == 365 and not cal.is_workday(date(2026, 6, 1))


def test_rules_date_both_holiday_and_workday_names_the_line() -> None:
    e = rules_error('calendar:\n  holidays: ["2026-05-01"]\n  workdays:\n'
                    '    - "2026-04-30"\n    - "2026-04-29..2026-05-02"\n')
    assert e.line == 5 and "2026-05-01 is listed both" in str(e)


@pytest.mark.parametrize("key,value", [
    ("learning_days", ".nan"), ("learning_days", ".inf"), ("alert_threshold", ".nan"),
    ("alert_threshold", "-.inf"), ("learning_active_days", ".inf"),
    ("alert_threshold", "true"), ("learning_days", "1.0e+300"),
])
def test_rules_numbers_must_be_finite(key: str, value: str) -> None:
    e = rules_error(f"version: 1\n{key}: {value}\n")
    assert e.line == 2 and key in str(e) and "expected a number" in str(e)


@pytest.mark.parametrize("body,where", [
    ("scenarios:\n  BULK_EXPORT: {factor: .nan}\n", "scenarios.BULK_EXPORT.factor"),
    ("scenarios:\n  SLOW_DRIP: {sigmas: .inf}\n", "scenarios.SLOW_DRIP.sigmas"),
    ("scenarios:\n  BULK_EXPORT: {window: -5}\n", "scenarios.BULK_EXPORT.window"),
    ("scenarios:\n  BULK_EXPORT: {window: .nan}\n", "scenarios.BULK_EXPORT.window"),
    ("scenarios:\n  ERROR_BURST: {within: 0}\n", "scenarios.ERROR_BURST.within"),
    ("scenarios:\n  BULK_EXPORT: {min_rows: 0}\n", "scenarios.BULK_EXPORT.min_rows"),
    ("scenarios:\n  OFF_HOURS: {self_share: 2}\n", "scenarios.OFF_HOURS.self_share"),
    ("scenarios:\n  WATCHLIST: {expired_score: 500}\n", "scenarios.WATCHLIST.expired_score"),
    ("merge_within: -100\n", "merge_within"),
    ("merge_within: 99999d\n", "merge_within"),
    ("routines: {hour_slack: 100000000}\n", "routines.hour_slack"),
    ("routines: {factor: .nan}\n", "routines.factor"),
])
def test_rules_bad_settings_name_their_path(body: str, where: str) -> None:
    e = rules_error("version: 1\n" + body)
    assert where in str(e) and e.line in (2, 3)


def test_rules_nested_lists_are_refused_not_crashed() -> None:
    e = rules_error("version: 1\nsubsumes: {BULK_EXPORT: [[MANY_CUSTOMERS]]}\n")
    assert e.line == 2 and "subsumes.BULK_EXPORT.0" in str(e)
    e = rules_error("scenarios:\n  OFF_HOURS: {actor_kinds: [[human]]}\n")
    assert "actor_kinds" in str(e)


@pytest.mark.parametrize("value", ["true", "1.0", '"1"', "2"])
def test_rules_version_must_be_the_integer_one(value: str) -> None:
    e = rules_error(f"version: {value}\n")
    assert e.line == 1 and "unsupported version" in str(e)


def test_rules_rule_version_must_be_a_name() -> None:
    assert "rule_version" in str(rules_error("rule_version: {a: 1}\n"))
    assert Rules.from_text('rule_version: "bank-a-2026.04"\n').rule_version == "bank-a-2026.04"


def test_working_hours_reversed_or_unquoted() -> None:
    e = rules_error('calendar:\n  working_hours:\n    start: "19:00"\n    end: "08:00"\n')
    assert e.line == 4 and "rota file" in str(e)
    e = rules_error("calendar:\n  working_hours: {start: 09:00, end: 18:00}\n")
    assert "quotes" in str(e) and '"18:00"' in str(e) and "1080" in str(e)
    e = rules_error('calendar:\n  working_hours: {start: "09:00+08:00", end: "18:00"}\n')
    assert "'09:00+08:00'" in str(e)
    cal = Rules.from_text('calendar: {working_hours: {start: "07:30", end: "22:00"}}\n').calendar
    assert (cal.start.hour, cal.start.minute, cal.end.hour) == (7, 30, 22)


# --------------------------------------------------------------------------- holidays file
def _holidays(tmp_path: Path, text: str) -> ConfigError:
    f = tmp_path / "h.yaml"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        Rules.default().with_holidays_file(f)
    assert info.value.file == str(f)
    return info.value


def test_holidays_file_checked_as_inline_lists(tmp_path: Path) -> None:
    e = _holidays(tmp_path, 'holidays: ["2026-05-01"]\nworkdays: ["2026-05-01"]\n')
    assert e.line == 2 and "listed both" in str(e)
    e = _holidays(tmp_path, 'holidays:\n  - "2026-04-01"\n  - "2026-05-01.."\n')
    assert e.line == 3 and "open range" in str(e)
    e = _holidays(tmp_path, 'holidays: ["9999-12-31"]\nworkdays: ["9999-12-31..9999-12-31"]\n')
    assert e.line == 1 and "out of range" in str(e)


def test_holidays_file_from_rules_file_is_checked(tmp_path: Path) -> None:
    (tmp_path / "h.yaml").write_text('holidays: ["2026-05-01"]\nworkdays: ["2026-05-01"]\n',
                                     encoding="utf-8")
    rules = tmp_path / "r.yaml"
    rules.write_text("calendar: {holidays_file: h.yaml}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        Rules.load(rules)
    assert info.value.file == str(tmp_path / "h.yaml") and info.value.line == 2


def test_holidays_file_good_one_still_overrides(tmp_path: Path) -> None:
    f = tmp_path / "h.yaml"
    f.write_text('holidays: ["2026-05-11..2026-05-12"]\nworkdays: ["2026-05-09"]\n',
                 encoding="utf-8")
    cal = Rules.default().with_holidays_file(f).calendar
    assert not cal.is_workday(date(2026, 5, 12)) and cal.is_workday(date(2026, 5, 9))


# --------------------------------------------------------------------------- lists
def _lists(tmp_path: Path, extra: str, values: str = "[a]", owner: str = "me") -> ConfigError:
    f = tmp_path / "l.yaml"
    f.write_text("version: 1\nlists:\n  - {name: l1, type: allow, kind: actor, owner: "
                 f"{owner}, reason: r, expires: 2027-01-01, values: {values}{extra}}}\n",
                 encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        ListSet.load(f)
    assert info.value.file == str(f) and info.value.line == 3
    return info.value


def test_lists_nested_or_odd_elements(tmp_path: Path) -> None:
    assert "lists.0.scenarios.0" in str(_lists(tmp_path, ", scenarios: [[WATCHLIST]]"))
    assert "lists.0.values.1" in str(_lists(tmp_path, "", "[a, true]"))
    assert "lists.0.values.1" in str(_lists(tmp_path, "", "[a, {x: 1}]"))
    assert "lists.0.owner" in str(_lists(tmp_path, "", owner="[a, b]"))


def test_lists_version_true_refused(tmp_path: Path) -> None:
    f = tmp_path / "l.yaml"
    f.write_text("version: true\nlists: []\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unsupported version"):
        ListSet.load(f)


# --------------------------------------------------------------------------- rota
ROTA_NIGHT = """\
version: 1
shifts:
  night: {start: "22:00", end: "07:00"}
  early: {start: "06:00", end: "14:00"}
rota:
  - {shift: night, actors: [alice], days: [mon]}
  - {shift: early, actors: [alice], days: [tue]}
"""


def rota_error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        Rota.from_text(text, "ro.yaml")
    assert info.value.file == "ro.yaml"
    return info.value


def test_rota_night_shift_overlapping_next_morning_is_refused() -> None:
    e = rota_error(ROTA_NIGHT)
    assert e.line == 7 and "early" in str(e) and "night" in str(e) and "tue" in str(e)
    # the other order: the early shift given first, the night shift the evening before
    swapped = ROTA_NIGHT.replace("  - {shift: night, actors: [alice], days: [mon]}\n", "")
    swapped += "  - {shift: night, actors: [alice], days: [mon]}\n"
    assert rota_error(swapped).line == 7
    # Sunday night into Monday morning wraps the week
    e = rota_error(ROTA_NIGHT.replace("days: [mon]", "days: [sun]").replace(
        "days: [tue]", "days: [mon]"))
    assert "mon" in str(e)


def test_rota_night_shift_without_overlap_is_fine() -> None:
    ok = Rota.from_text(ROTA_NIGHT.replace('"06:00"', '"07:00"'))
    assert len(ok.entries) == 2
    # different dates: the night shift's last Monday is before the early shift's Tuesdays
    dated = ROTA_NIGHT.replace("days: [mon]}", "days: [mon], until: 2026-06-01}").replace(
        "days: [tue]}", "days: [tue], from: 2026-06-03}")
    assert len(Rota.from_text(dated).entries) == 2
    # ...but the Tuesday right after the last Monday clashes
    dated = dated.replace("from: 2026-06-03", "from: 2026-06-02")
    assert rota_error(dated).line == 7
    # open-ended entries reaching date.max do not overflow
    far = ROTA_NIGHT.replace("days: [mon]}", "days: [mon], from: 2026-01-01, "
                             "until: 9999-12-31}")
    assert rota_error(far).line == 7


@pytest.mark.parametrize("slack,words", [("-36000", "bad duration"), (".nan", "bad duration"),
                                         ("13h", "too long")])
def test_rota_slack_bounds(slack: str, words: str) -> None:
    e = rota_error(f"version: 1\nslack: {slack}\nshifts:\n  day: {{start: \"09:00\", "
                   "end: \"18:00\"}\n")
    assert e.line == 2 and words in str(e)


def test_rota_times_and_version() -> None:
    e = rota_error("version: 1\nshifts:\n  day: {start: 09:00, end: 18:00}\n")
    assert e.line == 3 and "quotes" in str(e)
    assert "unsupported version" in str(rota_error("version: true\nshifts: {}\n"))


# --------------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("edges")
    ev = d / "esc.jsonl"
    ev.write_text(json.dumps({"event_id": "esc1", "ts": "2026-03-30T01:06:52+08:00",
                              "actor": NASTY_ACTOR, "statement": NASTY_STMT}) + "\n",
                  encoding="utf-8")
    db = d / "esc.db"
    r = run("audit", "ingest", str(ev), "--db", str(db), "--detect")
    assert r.exit_code == 0, r.output
    assert "\x1b" not in r.output and "evil\\x1b[2J" in r.output
    return db


@pytest.mark.parametrize("name,text", [
    ("tz.yaml", 'version: 1\ncalendar:\n  timezone: "+99:00"\n'),
    ("hol.yaml", 'version: 1\ncalendar:\n  holidays: ["9999-12-30..9999-12-31"]\n'),
    ("nan.yaml", "version: 1\nlearning_days: .nan\n"),
    ("subs.yaml", "version: 1\nsubsumes: {BULK_EXPORT: [[MANY_CUSTOMERS]]}\n"),
])
def test_cli_bad_rules_exit_2_with_file_and_line(store: Path, tmp_path: Path, name: str,
                                                 text: str) -> None:
    f = tmp_path / name
    f.write_text(text, encoding="utf-8")
    before = store.read_bytes()
    r = CliRunner().invoke(main, ["audit", "detect", "--db", str(store), "--rules", str(f)])
    assert r.exit_code == 2, r.output
    assert f"{f}:" in r.output and "Traceback" not in r.output
    assert store.read_bytes() == before and f.read_text(encoding="utf-8") == text


def test_cli_rota_and_holidays_files_exit_2(store: Path, tmp_path: Path) -> None:
    ro = tmp_path / "ro.yaml"
    ro.write_text(ROTA_NIGHT, encoding="utf-8")
    r = CliRunner().invoke(main, ["audit", "detect", "--db", str(store), "--rota", str(ro)])
    assert r.exit_code == 2 and f"{ro}:7:" in r.output
    h = tmp_path / "h.yaml"
    h.write_text('holidays: ["2026-05-01"]\nworkdays: ["2026-05-01"]\n', encoding="utf-8")
    r = CliRunner().invoke(main, ["audit", "detect", "--db", str(store), "--holidays", str(h)])
    assert r.exit_code == 2 and f"{h}:2:" in r.output


def _alert_id(store: Path) -> str:
    r = run("audit", "alerts", "--db", str(store), "--format", "json")
    return str(json.loads(r.output.splitlines()[0])["alert_id"])


def test_alerts_text_escapes_control_characters(store: Path) -> None:
    r = run("audit", "alerts", "--db", str(store))
    assert r.exit_code == 0
    for raw in ("\x1b", "\x07", "\x9b", "\u202e"):
        assert raw not in r.output
    assert "evil\\x1b[2J\\x1b[31mroot\\u202e" in r.output


def test_alerts_json_keeps_exact_data(store: Path) -> None:
    r = run("audit", "alerts", "--db", str(store), "--format", "json")
    line = r.output.splitlines()[0]
    for raw in ("\x1b", "\x07", "\x9b", "\u202e"):
        assert raw not in line
    assert json.loads(line)["actor"] == NASTY_ACTOR


def test_show_and_triage_escape_the_comment(store: Path) -> None:
    aid = _alert_id(store)
    comment = "looked\x1b[2J at \x1b]0;t\x07 it\x9b31m\rX"
    r = run("audit", "triage", aid, "--db", str(store), "--state", "in_progress",
            "--comment", comment)
    assert r.exit_code == 0, r.output
    r = run("audit", "show", aid, "--db", str(store))
    assert r.exit_code == 0
    for raw in ("\x1b", "\x07", "\x9b", "\u202e", "\r"):
        assert raw not in r.output
    flat = " ".join(r.output.split())  # the text is wrapped at 80 columns
    assert "looked\\x1b[2J at \\x1b]0;t\\x07 it\\x9b31m" in flat
    assert "-- \\x1b]0;pwned\\x07" in flat
    r = run("audit", "show", aid, "--db", str(store), "--format", "json")
    rep = json.loads(r.output)
    assert rep["alert"]["actor"] == NASTY_ACTOR
    assert any(t.get("comment") == comment for t in rep["alert"]["history"])


def test_queue_text_escapes_actor(store: Path) -> None:
    r = run("audit", "queue", "--db", str(store))
    assert r.exit_code == 0 and "\x1b" not in r.output and "evil\\x1b" in r.output


def test_terminal_safe_and_json_text() -> None:
    assert terminal_safe("plain\ttext\nnext 中文") == "plain\ttext\nnext 中文"
    assert terminal_safe("a\x1bb\x00\x7f\x85\u2028\u200f\ud800") == \
        "a\\x1bb\\x00\\x7f\\x85\\u2028\\u200f\\ud800"
    data = {"k\x9b": "v\x1b\u202e\u2028\x85 中文"}
    text = json_text(data)
    assert json.loads(text) == data and text.isascii() is False
    assert all(c not in text for c in "\x1b\x9b\u202e\u2028\x85")


def test_error_messages_escape_control_characters(store: Path, tmp_path: Path) -> None:
    f = tmp_path / "r.yaml"
    f.write_text('version: 1\n"bad\\e[2Jkey": 1\n', encoding="utf-8")
    r = CliRunner().invoke(main, ["audit", "detect", "--db", str(store),
                                  "--rules", str(f)])
    assert r.exit_code == 2 and "\x1b" not in r.output and "bad\\x1b[2Jkey" in r.output
