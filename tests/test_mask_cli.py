"""`covault mask` end to end with CliRunner on the sample customers."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from covault.cli import main
from covault.demo.context import sample_customers_path
from masking.policy import Policy
from privacy.keys import Kek, Keyset
from privacy.ledger import Ledger

SAMPLE = str(sample_customers_path())

POLICY = """
version: 1
extends: jrt0171
context: joint
columns:
  - {name: city, operator: keep}
  - {name: gender, operator: keep}
  - {name: card_no, pii: bank_card}
views:
  partner_export:
    columns:
      - {name: card_no, operator: fpe, options: {keep_prefix: 6, keep_suffix: 4}}
  gated:
    inherit: partner_export
    gate:
      k_anonymity: {quasi: [city, gender], k: 100}
"""


@pytest.fixture()
def env(tmp_path: Path) -> dict[str, object]:
    kek_file = tmp_path / "kek.hex"
    kek_file.write_text(bytes(range(32)).hex())
    kek_file.chmod(0o600)
    kek = Kek.from_key_file(kek_file)
    keysets = []
    for template in ("AES256_SIV", "HMAC_SHA256", "FF1_AES256"):
        path = tmp_path / f"{template.lower()}.json"
        Keyset.create(template).save(path, kek)
        keysets += ["-k", str(path)]
    policy = tmp_path / "policy.yaml"
    policy.write_text(textwrap.dedent(POLICY), encoding="utf-8")
    return {"dir": tmp_path, "keys": keysets + ["--kek-file", str(kek_file)],
            "policy": str(policy)}


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_apply_csv_to_parquet_with_metadata_and_ledger(env: dict) -> None:  # type: ignore[type-arg]
    out = env["dir"] / "out.parquet"
    ledger = env["dir"] / "ledger.db"
    code, text = invoke("mask", "apply", SAMPLE, "-o", str(out), "-p", env["policy"],
                        "-v", "partner_export", *env["keys"], "--ledger", str(ledger),
                        "--format", "json")
    assert code == 0, text
    summary = json.loads(text)
    assert summary["rows_in"] == summary["rows_out"] == 500
    meta = pq.read_schema(out).metadata
    policy_hash = Policy.load(env["policy"]).hash
    assert meta[b"covault.policy_hash"] == policy_hash.encode()
    assert meta[b"covault.view"] == b"partner_export"
    table = pq.read_table(out)
    assert table.column_names[:2] == ["id_no", "mobile"] and "name" not in table.column_names
    card = table.column("card_no")[0].as_py()
    source = pacsv.read_csv(SAMPLE, convert_options=pacsv.ConvertOptions(
        column_types={"card_no": "string"})).column("card_no")[0].as_py()
    assert len(card) == len(source) and card[:6] == source[:6] and card != source
    with Ledger(ledger) as log:
        record = log.get(0)
    assert record.kind == "masking.run"
    assert record.payload["policy_hash"] == policy_hash and record.payload["rows_out"] == 500
    assert record.payload["columns"]["card_no"].startswith("fpe")


def test_reveal_round_trip(env: dict) -> None:  # type: ignore[type-arg]
    masked = env["dir"] / "masked.csv"
    code, text = invoke("mask", "apply", SAMPLE, "-o", str(masked), "-p", env["policy"],
                        "-v", "partner_export", *env["keys"])
    assert code == 0, text
    assert (env["dir"] / "masked.csv.meta.json").is_file()
    revealed = env["dir"] / "revealed.csv"
    ledger = env["dir"] / "l.db"
    code, text = invoke("mask", "reveal", str(masked), "-o", str(revealed), "-p", env["policy"],
                        "-v", "partner_export", *env["keys"], "--columns", "id_no,card_no",
                        "--reason", "court order 42", "--ledger", str(ledger))
    assert code == 0, text
    strings = pacsv.ConvertOptions(column_types={"id_no": "string", "card_no": "string"})
    original = pacsv.read_csv(SAMPLE, convert_options=strings)
    back = pacsv.read_csv(revealed, convert_options=strings)
    assert back.column("id_no").equals(original.column("id_no"))
    assert back.column("card_no").equals(original.column("card_no"))
    with Ledger(ledger) as log:
        assert log.get(0).kind == "masking.reveal.started"
        record = log.get(1)
    assert record.kind == "masking.reveal" and record.payload["reason"] == "court order 42"
    assert record.payload["columns"] == ["id_no", "card_no"] and record.payload["rows"] == 500
    code, text = invoke("mask", "reveal", str(masked), "-o", str(env["dir"] / "x.csv"),
                        "-p", env["policy"], "-v", "partner_export", *env["keys"],
                        "--columns", "mobile")
    assert code == 2 and "not reversible" in text
    assert not (env["dir"] / "x.csv").exists()


def test_bad_inputs_exit_2_and_leave_no_output(env: dict) -> None:  # type: ignore[type-arg]
    d: Path = env["dir"]
    bad_policy = d / "bad.yaml"
    bad_policy.write_text("version: 1\ncolumns:\n  - name: id_no\n    operator: mask\n"
                          "    options: {keep: 4}\n")
    ragged = d / "ragged.csv"
    ragged.write_text("a,b\n1,2\n3\n")
    unfit = d / "unfit.csv"
    unfit.write_text("card_no\n6222021234567890\n12x4\n")
    fpe_policy = d / "fpe.yaml"
    fpe_policy.write_text("version: 1\ncolumns:\n  - {name: card_no, operator: fpe}\n")
    cases = [
        (SAMPLE, ["-p", str(bad_policy)], "bad.yaml:5"),
        (str(ragged), ["--preset", "jrt0171", "-v", "display"], "ragged.csv:3"),
        (str(unfit), ["-p", str(fpe_policy), *env["keys"]], "row 2"),
        (SAMPLE, ["-p", env["policy"], "-v", "partner_export"], "needs a keyset"),
        (SAMPLE, ["-p", env["policy"], "-v", "nope"], "no view 'nope'"),
    ]
    for source, args, message in cases:
        out = d / "out.csv"
        code, text = invoke("mask", "apply", source, "-o", str(out), *args)
        assert code == 2, text
        assert message in text, text
        assert not out.exists() and not (d / "out.csv.meta.json").exists()


def test_gate_failure_exits_1_without_output(env: dict) -> None:  # type: ignore[type-arg]
    out = env["dir"] / "gated.parquet"
    code, text = invoke("mask", "apply", SAMPLE, "-o", str(out), "-p", env["policy"],
                        "-v", "gated", *env["keys"])
    assert code == 1 and "k-anonymity gate not met" in text
    assert not out.exists()


def test_check_schema_diff_preset(env: dict) -> None:  # type: ignore[type-arg]
    code, text = invoke("mask", "check", env["policy"], "--format", "json")
    assert code == 0 and json.loads(text)["ok"]
    bad = env["dir"] / "bad.yaml"
    bad.write_text("version: 1\nviews:\n  v:\n    columns:\n      - {name: a, operator: maks}\n")
    code, text = invoke("mask", "check", str(bad))
    assert code == 2 and "bad.yaml:5" in text and "unknown operator 'maks'" in text
    code, text = invoke("mask", "schema")
    assert code == 0 and json.loads(text)["title"] == "covault masking policy"
    preset = env["dir"] / "preset.yaml"
    code, text = invoke("mask", "preset", "jrt0171")
    assert code == 0
    preset.write_text(text, encoding="utf-8")
    code, text = invoke("mask", "diff", str(preset), env["policy"], "--format", "json")
    assert code == 1, text  # differences found, like diff(1)
    changes = json.loads(text)["changes"]
    assert {"view": "partner_export", "target": "name: card_no", "path": "",
            "change": "added", "before": None,
            "after": {"operator": "fpe", "options": {"keep_prefix": 6, "keep_suffix": 4},
                      "from": "partner_export"}} in changes
    code, text = invoke("mask", "diff", str(preset), env["policy"], "--input", SAMPLE,
                        "-v", "partner_export", "--format", "json")
    assert code == 1, text
    by_col = {(c["target"], c["path"]): c for c in json.loads(text)["changes"]}
    assert by_col[("column: card_no", "operator")]["before"] == "tokenize"
    assert by_col[("column: city", "operator")]["after"] == "keep"


def test_risk_json(env: dict) -> None:  # type: ignore[type-arg]
    code, text = invoke("mask", "risk", SAMPLE, "--quasi", "city,gender", "--sensitive",
                        "income", "--k", "5", "--format", "json")
    assert code == 0, text
    report = json.loads(text)
    assert report["rows"] == 500 and report["k"] >= 5 and report["ok"]
    assert 0 <= report["t"] <= 1 and report["l"] >= 2
    code, text = invoke("mask", "risk", SAMPLE, "--quasi", "city,gender,birth_date", "--k", "2")
    assert code == 1 and "k = 1 < 2" in text


def test_column_names_that_look_like_markup_are_printed_as_written(tmp_path: Path) -> None:
    # rich read "[bold]id[/bold]" as markup: the tables of scan and mask apply showed
    # "id", and a column named "[x]" vanished
    src = tmp_path / "in.csv"
    src.write_text("[bold]id[/bold],[x]\n11010519491231002X,13800138000\n", encoding="utf-8")
    policy = tmp_path / "p.yaml"
    policy.write_text("version: 1\ndefault: keep\n", encoding="utf-8")
    for args in (["scan", str(src)],
                 ["mask", "apply", str(src), "-o", str(tmp_path / "o.csv"), "-p", str(policy)]):
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 0, r.output
        assert "│ [bold]id[/bold]" in r.output and "│ [x]" in r.output, r.output
