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


def _no_reprs(text: str) -> None:
    """No Python reprs: dicts, lists, quoted strings, True/False/None."""
    for bad in ("{'", "['", "': ", "True", "False", "None"):
        assert bad not in text, f"{bad!r} in\n{text}"


def test_demo_summary_reads_as_a_report_with_an_index(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = CliRunner().invoke(main, ["demo", "--out", str(out), "--step", "fields",
                                       "--step", "masking"])
    assert result.exit_code == 0, result.output
    _no_reprs(result.output)
    assert "  example:\n    id_no: " in result.output  # nested values indented
    assert "decrypts after rotation: yes" in result.output
    summary_md = (out / "summary.md").read_text()
    _no_reprs(summary_md)
    assert "- **views**:\n  - **display**:\n" in summary_md
    assert "[masking/policy.yaml](masking/policy.yaml)" in summary_md
    index = (out / "index.html").read_text()
    assert index.startswith("<!DOCTYPE html>")
    for rel in ("fields/customers_encrypted.csv", "masking/policy.yaml",
                "masking/customers_partner.parquet", "ledger.db", "summary.md"):
        assert f'href="{rel}"' in index
    assert 'href="keys/demo.kek"' not in index  # the KEK is named, not linked
    assert "<script" not in index and "http://" not in index and "https://" not in index
    _no_reprs(index)


def test_demo_index_escapes_values(tmp_path: Path) -> None:
    from covault.demo.report import index_html, markdown, text_lines

    (tmp_path / "evil").mkdir()
    (tmp_path / "evil" / '<b onload="x">.csv').write_text("x")
    summary = {"evil": {"title": "<script>alert(1)</script>", "seconds": 0.5,
                        "note": '"><img src=x onerror=alert(1)>',
                        "nested": {"<k>": ["a&b", 1.25, None, True]}}}
    page = index_html(summary, tmp_path)
    assert "<script>" not in page and "<img" not in page and "<b onload" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "a&amp;b, 1.25, —, yes" in page
    assert 'href="evil/%3Cb%20onload%3D%22x%22%3E.csv"' in page
    assert "a&b, 1.25, —, yes" in "\n".join(text_lines(summary["evil"]))
    assert "\\<script\\>" in markdown(summary, tmp_path)
