"""`covault audit` end to end: simulate, ingest, detect, triage, report, verify."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from covault.cli import main


def run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("cli")
    ev, ans, bundle, db = d / "ev.jsonl", d / "ans.json", d / "b", d / "audit.db"
    r = run("audit", "simulate", "--seed", "2", "--actors", "40", "--days", "15",
            "--service-rate", "500", "-o", str(ev), "--answers", str(ans), "--bundle", str(bundle))
    assert r.exit_code == 0, r.output
    with ev.open("a", encoding="utf-8") as fh:
        fh.write("this is not json\n")
    r = run("audit", "ingest", str(ev), "--format", "jsonl", "--db", str(db))
    assert r.exit_code == 0, r.output
    n_lines = sum(1 for _ in ev.open(encoding="utf-8"))
    assert f"quarantined line {n_lines}: not valid JSON" in r.output
    r = run("audit", "detect", "--db", str(db), "--rules", str(bundle / "rules.yaml"),
            "--lists", str(bundle / "lists.yaml"), "--catalog", str(bundle / "catalog.yaml"),
            "--keyset", str(bundle / "watch-keyset.json"), "--kek-file",
            str(bundle / "watch.kek"), "--format", "json")
    assert r.exit_code == 0, r.output
    (d / "alerts.jsonl").write_text(r.output, encoding="utf-8")
    return {"dir": d, "db": db, "ev": ev, "ans": ans, "bundle": bundle}


def test_detect_json_is_one_alert_per_line(world: dict[str, Path]) -> None:
    lines = (world["dir"] / "alerts.jsonl").read_text(encoding="utf-8").splitlines()
    alerts = [json.loads(x) for x in lines if x.startswith("{")]
    assert len(alerts) >= 14
    for a in alerts:
        assert {"alert_id", "actor", "scenarios", "score", "reasons", "event_ids", "first_ts",
                "last_ts", "rule_version", "model_version"} <= set(a)
    assert {a["scenarios"][0] for a in alerts} >= {"INJECTION", "WATCHLIST", "BULK_EXPORT"}


def test_ingest_again_adds_nothing(world: dict[str, Path]) -> None:
    r = run("audit", "ingest", str(world["ev"]), "--db", str(world["db"]), "--json")
    rep = json.loads(r.output)
    assert rep["added"] == 0 and rep["duplicates"] > 1000 and rep["quarantined"] == 1


def test_alerts_triage_and_evaluate(world: dict[str, Path]) -> None:
    db = str(world["db"])
    r = run("audit", "alerts", "--db", db, "--format", "json")
    first = json.loads(r.output.splitlines()[0])
    aid = first["alert_id"]
    r = run("audit", "triage", aid, "--db", db, "--state", "closed", "--comment", "x")
    assert r.exit_code == 2 and "needs --reason" in r.output
    r = run("audit", "triage", aid, "--db", db, "--state", "in_progress", "--comment", "look")
    assert r.exit_code == 0 and "new -> in_progress" in r.output
    r = run("audit", "triage", aid, "--db", db, "--state", "closed", "--reason",
            "true_positive", "--comment", "confirmed")
    assert r.exit_code == 0, r.output
    r = run("audit", "triage", aid, "--db", db, "--state", "escalated", "--comment", "no")
    assert r.exit_code == 2 and "cannot go from 'closed'" in r.output
    r = run("audit", "alerts", "--db", db, "--state", "closed", "--format", "json")
    assert [json.loads(x)["alert_id"] for x in r.output.splitlines()] == [aid]
    r = run("audit", "suppress", "--db", db, "--scenario", "OFF_HOURS", "--reason", "r",
            "--comment", "c", "--expires", "2099-01-01")
    assert r.exit_code == 0 and "SUP-" in r.output
    r = run("audit", "evaluate", "--db", db, "--answers", str(world["ans"]), "--format", "json")
    res = json.loads(r.output)
    assert sum(s["detected"] for s in res["scenarios"].values()) >= 12


def test_report_is_self_contained(world: dict[str, Path]) -> None:
    out = world["dir"] / "report.html"
    r = run("audit", "report", "--db", str(world["db"]), "-o", str(out))
    assert r.exit_code == 0, r.output
    html = out.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and html.count("<svg") >= 3
    assert "<script" not in html and not re.search(r"(src|href)=['\"]?https?:", html)
    assert "Alerts over time" in html and "Top actors" in html
    assert re.search(r"AL-[0-9a-f]{16}", html)


def test_verify_checkpoint_and_tamper(world: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    db = tmp_path / "copy.db"
    for f in world["dir"].iterdir():
        if f.name.startswith("audit."):
            shutil.copy(f, tmp_path / f.name.replace("audit.", "copy."))
    r = run("audit", "verify", "--db", str(db))
    assert r.exit_code == 0, r.output
    key, cp = tmp_path / "k.pem", tmp_path / "cp.txt"
    r = run("audit", "checkpoint", "--db", str(db), "--key", str(key), "-o", str(cp))
    assert r.exit_code == 2 and "--generate" in r.output
    r = run("audit", "checkpoint", "--db", str(db), "--key", str(key), "--generate",
            "--unencrypted-key", "-o", str(cp))
    assert r.exit_code == 0, r.output
    r = run("audit", "verify", "--db", str(db), "--checkpoint", str(cp), "--public-key",
            str(key) + ".pub", "--format", "json")
    assert r.exit_code == 0 and json.loads(r.output)["checkpoint_size"] > 0
    assert json.loads(r.output)["signer_pinned"] is True
    # a checkpoint checked only against keys recorded in the ledger must be asked for
    r = run("audit", "verify", "--db", str(db), "--checkpoint", str(cp))
    assert r.exit_code == 2 and "--unpinned" in r.output
    r = run("audit", "verify", "--db", str(db), "--checkpoint", str(cp), "--unpinned",
            "--format", "json")
    assert r.exit_code == 0 and json.loads(r.stdout)["signer_pinned"] is False
    assert "not pinned" in r.stderr
    con = sqlite3.connect(db)
    con.execute("DROP TRIGGER events_no_update")
    con.execute("UPDATE events SET data = replace(data, '\"actor\":\"', '\"actor\":\"x') "
                "WHERE seq = 77")
    con.commit()
    con.close()
    r = run("audit", "verify", "--db", str(db))
    assert r.exit_code == 1 and "verification failed" in r.output


def test_bad_rules_file_is_exit_2_with_location(world: dict[str, Path], tmp_path: Path) -> None:
    rules = tmp_path / "r.yaml"
    rules.write_text("version: 1\ncustom:\n  - id: x\n    columns: [nope.nothing]\n",
                     encoding="utf-8")
    r = run("audit", "detect", "--db", str(world["db"]), "--rules", str(rules), "--catalog",
            str(world["bundle"] / "catalog.yaml"))
    assert r.exit_code == 2 and re.search(r"r\.yaml:4: .*not in the catalogue", r.output)
    r = run("audit", "verify", "--db", str(tmp_path / "missing.db"))
    assert r.exit_code == 2


def test_help_texts() -> None:
    for cmd in ("ingest", "detect", "alerts", "triage", "suppress", "verify", "checkpoint",
                "report", "simulate", "evaluate"):
        r = run("audit", cmd, "--help")
        assert r.exit_code == 0 and len(r.output) > 100


def _stored_alerts(db: Path) -> dict[str, tuple[Any, ...]]:
    con = sqlite3.connect(db)
    try:
        rows = [json.loads(d) for (d,) in con.execute("SELECT data FROM alerts")]
    finally:
        con.close()
    return {a["alert_id"]: (a["scenarios"], a["score"], a["event_count"], a["event_ids"])
            for a in rows}


def test_ingest_detect_is_one_pass_with_the_same_alerts(world: dict[str, Path]) -> None:
    b, d = world["bundle"], world["dir"]
    opts = ("--rules", str(b / "rules.yaml"), "--lists", str(b / "lists.yaml"), "--catalog",
            str(b / "catalog.yaml"), "--keyset", str(b / "watch-keyset.json"), "--kek-file",
            str(b / "watch.kek"), "--no-model")
    lines = world["ev"].read_text(encoding="utf-8").splitlines(keepends=True)
    half = d / "half.jsonl"
    half.write_text("".join(lines[: len(lines) // 2]), encoding="utf-8")
    want = {json.loads(x)["alert_id"]: json.loads(x)
            for x in (d / "alerts.jsonl").read_text(encoding="utf-8").splitlines()
            if x.startswith("{")}
    one, two = d / "one.db", d / "two.db"
    r = run("audit", "ingest", str(world["ev"]), "--db", str(one), "--detect", *opts, "--json")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    assert rep["detection"]["scored"] == rep["added"] == len(lines) - 1
    assert rep["detection"]["alerts"] == len(want)
    got = _stored_alerts(one)
    assert got == {k: (a["scenarios"], a["score"], a["event_count"], a["event_ids"])
                   for k, a in want.items()}
    # half, then the whole file: stored events are replayed, duplicates are not rescored
    assert run("audit", "ingest", str(half), "--db", str(two), "--detect", *opts).exit_code == 0
    r = run("audit", "ingest", str(world["ev"]), "--db", str(two), "--detect", *opts, "--json")
    rep = json.loads(r.stdout)
    assert rep["detection"]["scored"] == len(lines) - 1
    assert rep["duplicates"] == len(lines) // 2
    assert _stored_alerts(two) == got
