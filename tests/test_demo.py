"""`covault demo` runs every step end to end and writes its summary."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from covault.cli import main
from covault.commands.demo import STEPS


def test_demo_runs_every_step(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = CliRunner().invoke(main, ["demo", "--out", str(out), "--format", "json"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary) == STEPS
    assert (out / "summary.md").read_text().startswith("# covault demo")
    fields = summary["fields"]
    assert fields["decrypts_after_rotation"] is True
    assert fields["rows"] == 500
    assert (out / fields["output"]).exists()


def test_demo_masking_step_outputs(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = CliRunner().invoke(main, ["demo", "--out", str(out), "--step", "masking"])
    assert result.exit_code == 0, result.output
    masking = json.loads((out / "summary.json").read_text())["masking"]
    assert masking["detected"]["id_no"] == "cn_resident_id"
    for view in masking["views"].values():
        assert (out / view["output"]).exists()
        assert view["rows_out"] <= view["rows_in"]


def test_demo_federated_step(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = CliRunner().invoke(main, ["demo", "--out", str(out), "--step", "federated"])
    assert result.exit_code == 0, result.output
    fl = json.loads((out / "summary.json").read_text())["federated"]
    assert fl["aggregation"] == "secagg" and fl["rounds"] == 10
    assert [b.split()[0] for b in fl["banks"].split("; ")] == ["bank_1", "bank_2", "bank_3"]
    assert 0.5 < fl["global_auc"] <= 1
    assert (out / fl["report"]).read_text().startswith("<!DOCTYPE html>")
    assert len(fl["ledgers"]) == 4  # the coordinator's and one per bank


def test_demo_vertical_step(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = CliRunner().invoke(main, ["demo", "--out", str(out), "--step", "vertical"])
    assert result.exit_code == 0, result.output
    v = json.loads((out / "summary.json").read_text())["vertical"]
    assert v["shared_customers"] > 2000
    assert v["joint_auc"] > v["bank_alone_auc"] + 0.05
    assert v["model_parts"] == ["bank.model.json", "partner_1.model.json"]
    report = (out / v["report"]).read_text()
    assert "Information value" in report and "Guest only vs joint" in report
