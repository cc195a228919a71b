"""Alert review in the terminal (issue 13, item 6): `audit show`, id prefixes everywhere,
one score in every command, and layouts that read at 80 columns."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from covault.audit_view import alert_blocks
from covault.cli import main
from covault.console import out
from privacy.audit.alerts import Alert, score_of
from privacy.audit.store import AuditStore
from privacy.audit.triage import Triage
from privacy.errors import AuditError

TZ = timezone(timedelta(hours=8))


def run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture(autouse=True)
def eighty_columns() -> Iterator[None]:
    """The console as an 80-column terminal, whatever runs the tests."""
    old = out.width
    out.width = 80
    yield
    out.width = old


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    d = tmp_path_factory.mktemp("review")
    ev, ans, b, db = d / "ev.jsonl", d / "ans.json", d / "b", d / "audit.db"
    r = run("audit", "simulate", "--seed", "2", "--actors", "40", "--days", "15",
            "--service-rate", "500", "-o", str(ev), "--answers", str(ans), "--bundle", str(b))
    assert r.exit_code == 0, r.output
    assert run("audit", "ingest", str(ev), "--db", str(db)).exit_code == 0
    opts = ["--db", str(db), "--rules", str(b / "rules.yaml"), "--lists", str(b / "lists.yaml"),
            "--catalog", str(b / "catalog.yaml"), "--keyset", str(b / "watch-keyset.json"),
            "--kek-file", str(b / "watch.kek"), "--no-model"]
    old = out.width
    out.width = 80
    try:
        text = run("audit", "detect", *opts)
    finally:
        out.width = old
    assert text.exit_code == 0, text.output
    js = run("audit", "detect", *opts, "--format", "json")
    assert js.exit_code == 0
    return {"db": str(db), "detect_text": text.stdout,
            "detect_json": [json.loads(x) for x in js.output.splitlines() if x.startswith("{")]}


def _blocks(text: str) -> dict[str, int]:
    """alert id -> score, from the text layout."""
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r"^(AL-[0-9a-f]{16})  score +(\d+)", text, re.M)}


# --------------------------------------------------------------------------- one score
def test_one_score_everywhere(world: dict[str, Any]) -> None:
    """The wall: `detect` printed int(score) (86) where `alerts` printed round(score)
    (87) for the same alert. Now every command prints the stored score."""
    db = world["db"]
    from_detect_json = {a["alert_id"]: a["score"] for a in world["detect_json"]}
    from_detect_text = _blocks(world["detect_text"])
    alerts = [json.loads(x) for x in run("audit", "alerts", "--db", db, "--format",
                                         "json").output.splitlines()]
    from_alerts_json = {a["alert_id"]: a["score"] for a in alerts}
    from_alerts_text = _blocks(run("audit", "alerts", "--db", db).output)
    assert len(from_detect_json) >= 14
    assert from_detect_text == from_detect_json == from_alerts_json == from_alerts_text
    for aid in list(from_alerts_json)[:3]:
        shown = json.loads(run("audit", "show", aid, "--db", db, "--format", "json").output)
        assert shown["alert"]["score"] == from_alerts_json[aid]


def test_score_rounds_half_up_in_one_place() -> None:
    now = datetime(2026, 4, 1, 10, tzinfo=TZ)
    a = Alert("AL-0000000000000001", "t1", ["BULK_EXPORT"], 86.6, {"BULK_EXPORT": "r"},
              ["e1"], 1, now, now, now, "r1", "m1")
    assert a.to_dict()["score"] == 87 == score_of(86.6)
    assert score_of(86.5) == 87 and score_of(86.49) == 86 and score_of(100.4) == 100
    text = "\n".join(alert_blocks([a.to_dict()], 80))
    assert "score  87" in text


# --------------------------------------------------------------------------- 80 columns
def test_alerts_read_at_80_columns(world: dict[str, Any]) -> None:
    """The wall: at 80 columns the table cut ids and reasons. Now every line fits, every
    id is whole and usable, and the primary reason is there in full."""
    db = world["db"]
    text = run("audit", "alerts", "--db", db).output
    assert max(len(line) for line in text.splitlines()) <= 80
    flat = " ".join(text.split())
    alerts = [json.loads(x) for x in run("audit", "alerts", "--db", db, "--format",
                                         "json").output.splitlines()]
    for a in alerts:
        assert re.search(rf"^{a['alert_id']}  score", text, re.M), a["alert_id"]
        assert " ".join(a["reasons"][0].split()) in flat
    assert max(len(line) for line in world["detect_text"].splitlines()) <= 80
    # an id copied from the list works as it is
    first = re.search(r"^(AL-[0-9a-f]{16})", text, re.M)
    assert first is not None
    assert run("audit", "show", first.group(1), "--db", db).exit_code == 0


# --------------------------------------------------------------------------- audit show
def test_show_prints_reasons_evidence_and_activity(world: dict[str, Any]) -> None:
    db = world["db"]
    alerts = [json.loads(x) for x in run("audit", "alerts", "--db", db, "--format",
                                         "json").output.splitlines()]
    a = max(alerts, key=lambda x: len(x["scenarios"]))
    assert len(a["reasons"]) >= 2
    r = run("audit", "show", a["alert_id"], "--db", db)
    assert r.exit_code == 0, r.output
    text = r.output
    assert max(len(line) for line in text.splitlines()) <= 80
    flat = " ".join(text.split())
    for reason in a["reasons"]:
        assert " ".join(reason.split()) in flat  # every reason, in full
    assert "Evidence (" in text and f"Activity of {a['actor']}" in text
    js = json.loads(run("audit", "show", a["alert_id"], "--db", db, "--format",
                        "json").output)
    assert js["alert"]["alert_id"] == a["alert_id"] and js["alert"]["reasons"] == a["reasons"]
    ev_ids = [e["event_id"] for e in js["evidence"]]
    assert ev_ids and set(ev_ids) <= set(a["event_ids"])
    for e in js["evidence"]:
        assert " ".join(e["statement"].split())[:60] in flat
        assert e["actor"] == a["actor"]
    assert js["evidence_total"] == a["event_count"]
    days = js["activity"]["days"]
    assert days and days[-1]["day"] == a["last_ts"][:10]
    assert sum(d["events"] for d in days) >= len(js["activity"]["recent"]) > 0
    assert all(e["actor"] == a["actor"] and e["ts"] <= a["last_ts"]
               for e in js["activity"]["recent"])
    assert all(o["alert_id"] != a["alert_id"] for o in js["other_alerts"])


def test_show_help_and_bad_input(world: dict[str, Any], tmp_path: Path) -> None:
    r = run("audit", "show", "--help")
    assert r.exit_code == 0 and "unique prefix" in r.output
    r = CliRunner().invoke(main, ["audit", "show", "AL-zzzz", "--db", world["db"]])
    assert r.exit_code == 2 and "unknown alert 'AL-zzzz'" in r.output
    assert len(r.output.strip().splitlines()) == 1


# --------------------------------------------------------------------------- prefixes
@pytest.fixture()
def twins(tmp_path: Path) -> Iterator[str]:
    """A store with two alerts whose ids share the prefix AL-abc1."""
    db = tmp_path / "audit.db"
    store = AuditStore(db)
    now = datetime(2026, 4, 1, 10, tzinfo=TZ).isoformat()
    rows = [{"alert_id": aid, "actor": "t1", "scenarios": ["BULK_EXPORT"], "score": 80,
             "reasons": ["r"], "event_ids": [], "event_count": 0, "first_ts": now,
             "last_ts": now, "detected_ts": now, "rule_version": "r", "model_version": "m"}
            for aid in ("AL-abc1000000000001", "AL-abc1000000000002", "AL-ff00000000000003")]
    Triage(store).save_alerts(rows)
    store.close()
    yield str(db)


def test_unique_prefixes_everywhere_and_ambiguous_ones_listed(twins: str) -> None:
    store = AuditStore(twins)
    try:
        tri = Triage(store)
        assert tri.resolve("AL-ff") == "AL-ff00000000000003"
        assert tri.resolve("ff0") == "AL-ff00000000000003"  # AL- may be left out
        assert tri.resolve("al-ABC1000000000002") == "AL-abc1000000000002"  # any case
        with pytest.raises(AuditError, match="ambiguous.*AL-abc1000000000001, "
                                             "AL-abc1000000000002"):
            tri.resolve("AL-abc1")
        with pytest.raises(AuditError, match="unknown alert"):
            tri.resolve("AL-0")
        with pytest.raises(AuditError, match="unknown alert"):
            tri.resolve("AL-%")  # LIKE wildcards are taken literally
    finally:
        store.close()
    r = run("audit", "triage", "ff", "--db", twins, "--state", "in_progress", "--comment", "c")
    assert r.exit_code == 0 and "AL-ff00000000000003: new -> in_progress" in r.output
    r = CliRunner().invoke(main, ["audit", "triage", "abc1", "--db", twins, "--state",
                                  "in_progress", "--comment", "c"])
    assert r.exit_code == 2
    assert "AL-abc1000000000001" in r.output and "AL-abc1000000000002" in r.output
    r = CliRunner().invoke(main, ["audit", "show", "AL-abc1", "--db", twins])
    assert r.exit_code == 2 and "ambiguous" in r.output
    r = run("audit", "show", "AL-abc10000000000012"[:-1], "--db", twins, "--format", "json")
    assert json.loads(r.output)["alert"]["alert_id"] == "AL-abc1000000000001"
    # the triage action is ledgered under the full id
    shown = json.loads(run("audit", "show", "ff", "--db", twins, "--format", "json").output)
    assert shown["alert"]["state"] == "in_progress"
    assert shown["alert"]["history"][0]["to_state"] == "in_progress"
    assert run("audit", "verify", "--db", twins).exit_code == 0
