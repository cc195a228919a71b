"""A failed k-anonymity gate says what to do: the worst classes and the changes that pass.

Every option the advice lists is applied here with the real operator (or by dropping the
column) and the gate is run again: it must pass. The old message named only k.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from click.testing import CliRunner

from covault.cli import main
from masking.operators._base import OpContext
from masking.operators.generalize import Generalize
from masking.policy import GateModel
from masking.risk import apply_gate, k_anonymity
from masking.risk_advice import k_anonymity_advice
from privacy.errors import RiskGateError


def _table(n: int = 640) -> pa.Table:
    """4 birth years x 4 cities x 2 genders, 20 rows each; a birth date is shared by the
    8 rows of one year in a block of 32; incomes nearly unique. k = 1 as it stands."""
    dates, cities, genders, incomes = [], [], [], []
    for i in range(n):
        block = i // 32
        dates.append(dt.date(1960 + i % 4, block % 12 + 1, block // 12 + 1).isoformat())
        cities.append(["北京", "上海", "广州", "深圳"][(i // 4) % 4])
        genders.append("MF"[(i // 16) % 2])
        incomes.append(10_000 + (i * 7919) % 490_000)
    return pa.table({"birth_date": dates, "city": cities, "gender": genders,
                     "income": pa.array(incomes, pa.int64())})


def _gate(quasi: list[str], k: int = 5, max_suppression: float = 0.02) -> GateModel:
    return GateModel.model_validate(
        {"k_anonymity": {"quasi": quasi, "k": k, "max_suppression": max_suppression}})


def _apply(table: pa.Table, setting: dict[str, object], quasi: list[str]
           ) -> tuple[pa.Table, list[str]]:
    """Apply one option's setting the way a policy change would."""
    if "drop" in setting:
        col = str(setting["drop"])
        return table.drop_columns([col]), [q for q in quasi if q != col]
    if "changes" in setting:
        for change in setting["changes"]:  # type: ignore[attr-defined]
            table, quasi = _apply(table, change, quasi)
        return table, quasi
    col = str(setting["column"])
    op = Generalize(**setting["options"])  # type: ignore[arg-type]
    ctx = OpContext(column=col, context="test")
    out = op.apply(table.column(col).combine_chunks(), ctx).values
    return table.set_column(table.schema.get_field_index(col), col, out), quasi


def test_gate_failure_lists_smallest_classes_and_passing_options() -> None:
    table = _table()
    quasi = ["birth_date", "city", "gender"]
    with pytest.raises(RiskGateError) as info:
        apply_gate(table, _gate(quasi))
    text = str(info.value)
    first = text.splitlines()[0]
    assert first.startswith("k-anonymity gate not met: k >= 5 required, found 1")
    assert "smallest of" in text and "classes (quasi: birth_date, city, gender)" in text
    # a smallest class with its size and its values
    assert "  1 row: birth_date=1960-01-01, city=北京, gender=M" in text
    assert "would pass k >= 5" in text
    assert "drop column 'birth_date' from the view" in text
    assert "column 'birth_date': generalize {to: year}" in text
    advice = info.value.advice  # type: ignore[attr-defined]
    assert advice["k"] == 1 and advice["k_required"] == 5
    assert advice["smallest"][0]["size"] == 1
    assert set(advice["smallest"][0]["values"]) == set(quasi)


@pytest.mark.parametrize("quasi", [
    ["birth_date", "city", "gender"],
    ["birth_date", "city", "gender", "income"],
    ["city", "gender", "income"],
])
def test_every_listed_option_passes_when_applied(quasi: list[str]) -> None:
    table = _table()
    advice = k_anonymity_advice(table, quasi, 5, 0.02)
    structural = [o for o in advice.options if o.kind in ("drop", "generalize", "combined")]
    assert structural, advice.lines()
    for option in structural:
        changed, q = _apply(table, option.setting, quasi)
        gated, report = apply_gate(changed, _gate(q))  # raises if the advice was wrong
        assert report["suppressed"] == option.suppressed
        assert k_anonymity(changed, q) == option.k
    for option in advice.options:
        if option.kind == "max_suppression":
            apply_gate(table, _gate(quasi, max_suppression=option.setting["max_suppression"]))
        if option.kind == "k":
            apply_gate(table, _gate(quasi, k=option.setting["k"]))


def test_generalisation_is_the_finest_that_passes() -> None:
    table = _table()
    gen = [o.setting["options"] for o in k_anonymity_advice(
        table, ["birth_date", "gender"], 5, 0.0).options if o.kind == "generalize"]
    assert gen == [{"to": "quarter"}]  # months leave classes of 4
    gen = [o.setting["options"] for o in k_anonymity_advice(
        table, ["birth_date", "gender"], 13, 0.0).options if o.kind == "generalize"]
    assert gen == [{"to": "year"}]  # the fourth quarter has classes of 12


def test_bands_and_buckets_coarsen_by_multiples() -> None:
    rows = 120  # 6 age bands x 4 income buckets, 5 rows each
    ages = [(i % 6) * 10 for i in range(rows)]
    incomes = [((i // 6) % 4) * 10000 for i in range(rows)]
    table = pa.table({"age": [f"{a}-{a + 9}" for a in ages],
                      "income": [f"[{v}, {v + 10000})" for v in incomes]})
    advice = k_anonymity_advice(table, ["age", "income"], 8, 0.0)
    settings = {o.setting["column"]: o.setting["options"] for o in advice.options
                if o.kind == "generalize"}
    assert settings == {"age": {"to": "age_band", "width": 20},
                        "income": {"to": "bucket", "width": 20000.0}}, advice.lines()
    # what those settings give from the raw values: 20-year bands, 20,000 buckets
    assert k_anonymity(pa.table({"a": [a // 20 for a in ages], "i": incomes}), ["a", "i"]) == 10
    assert k_anonymity(pa.table({"a": ages, "i": [v // 20000 for v in incomes]}),
                       ["a", "i"]) == 10


def test_risk_command_prints_the_advice(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    pacsv.write_csv(_table(), path)
    runner = CliRunner()
    res = runner.invoke(main, ["mask", "risk", str(path), "--quasi", "birth_date,city,gender",
                               "--k", "5"])
    assert res.exit_code == 1
    assert "smallest of" in res.output and "would pass k >= 5" in res.output
    assert "drop column 'birth_date'" in res.output or "generalize {to: year}" in res.output
    res = runner.invoke(main, ["mask", "risk", str(path), "--quasi", "birth_date,city,gender",
                               "--k", "5", "--format", "json"])
    assert res.exit_code == 1
    report = json.loads(res.output.splitlines()[0])
    assert report["advice"]["options"] and report["advice"]["smallest"][0]["size"] == 1


def test_suppression_and_k_options_when_some_rows_pass() -> None:
    table = pa.table({"c": ["a"] * 50 + ["b"] * 3 + ["c"] * 2})
    advice = k_anonymity_advice(table, ["c"], 5, 0.05)
    kinds = {o.kind: o for o in advice.options}
    assert kinds["max_suppression"].setting == {"max_suppression": 0.091}
    assert kinds["max_suppression"].suppressed == 5
    assert kinds["k"].setting == {"k": 3}  # classes of 3 and 2: k = 3 suppresses 2 rows
    apply_gate(table, _gate(["c"], max_suppression=0.091))
    apply_gate(table, _gate(["c"], k=3, max_suppression=0.05))
    assert [c.size for c in advice.smallest] == [2, 3, 50]


def test_passing_table_has_no_options() -> None:
    table = _table()
    advice = k_anonymity_advice(table, ["city", "gender"], 5, 0.0)
    assert advice.violating_rows == 0 and advice.options == []
