"""`covault mask diff`: every change that alters an output is reported (issue 13, item 3).

Before, the diff compared only "selector -> operator name(options)", so weakening a
k-anonymity gate, adding a row filter or changing a token context said "no differences".
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from covault.cli import main
from masking.policy import KAnonymity, LDiversity, Policy, TCloseness
from masking.policy_diff import diff_policies

BASE: dict[str, Any] = {
    "version": 1,
    "context": "cif.customers",
    "default": "drop",
    "dp": {"dataset": "cif.customers", "budget": 3.0},
    "columns": [
        {"name": "id_no", "pii": "cn_resident_id"},
        {"name": "amount", "type": "float64"},
        {"name": "city", "operator": "keep"},
        {"name": "age", "operator": "keep"},
    ],
    "views": {
        "display": {
            "columns": [{"pii": "cn_mobile", "operator": "mask",
                         "options": {"keep_first": 3, "keep_last": 4}}],
        },
        "partner_export": {
            "inherit": "display",
            "gate": {"k_anonymity": {"quasi": ["age", "city"], "k": 5,
                                     "max_suppression": 0.02}},
            "columns": [
                {"name": "card_no", "operator": "tokenize", "context": "shared.card_no"},
                {"name": "mobile", "operator": "hash", "options": {"template": "HMAC_SHA256"}},
                {"glob": "*_no", "operator": "drop"},
                {"glob": "id*", "operator": "hash"},
            ],
        },
    },
}


def write(path: Path, doc: dict[str, Any]) -> str:
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return str(path)


def diff(tmp_path: Path, after: dict[str, Any], *args: str) -> tuple[int, str]:
    a, b = write(tmp_path / "old.yaml", BASE), write(tmp_path / "new.yaml", after)
    res = CliRunner().invoke(main, ["mask", "diff", a, b, *args])
    return res.exit_code, res.output


def changes(tmp_path: Path, after: dict[str, Any], *args: str) -> list[dict[str, Any]]:
    code, text = diff(tmp_path, after, "--format", "json", *args)
    assert code in (0, 1), text
    doc = json.loads(text)
    assert (code == 0) == doc["identical"] == (not doc["changes"])
    return list(doc["changes"])


def edit(**paths: Any) -> dict[str, Any]:
    doc = copy.deepcopy(BASE)
    for dotted, value in paths.items():
        *head, last = dotted.split("__")
        node: Any = doc
        for part in head:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if value is None:
            del node[int(last) if isinstance(node, list) else last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return doc


def test_identical_policies_exit_0(tmp_path: Path) -> None:
    code, text = diff(tmp_path, copy.deepcopy(BASE))
    assert code == 0 and "no differences" in text
    # writing defaults out, or reordering keys, changes nothing that matters
    same = edit(views__partner_export__columns__0__on_invalid="fail",
                views__display__columns__0__options={"keep_last": 4, "keep_first": "3"})
    code, text = diff(tmp_path, same)
    assert code == 0 and "no differences" in text, text


def test_weakened_k_anonymity_gate(tmp_path: Path) -> None:
    after = edit(views__partner_export__gate__k_anonymity__k=2)
    got = changes(tmp_path, after)
    assert got == [{"view": "partner_export", "target": "gate", "path": "k_anonymity.k",
                    "change": "changed", "before": 5, "after": 2}]
    code, text = diff(tmp_path, after)
    assert code == 1 and "k_anonymity.k" in text and "no differences" not in text


def test_row_filter_added(tmp_path: Path) -> None:
    after = edit(views__partner_export__row_filter={"column": "consent", "eq": "Y"})
    assert changes(tmp_path, after) == [
        {"view": "partner_export", "target": "row_filter", "path": "", "change": "added",
         "before": None, "after": {"column": "consent", "eq": "Y"}}]


def test_token_context_changed(tmp_path: Path) -> None:
    after = edit(views__partner_export__columns__0__context="other.card_no")
    assert changes(tmp_path, after) == [
        {"view": "partner_export", "target": "name: card_no", "path": "context",
         "change": "changed", "before": "shared.card_no", "after": "other.card_no"}]
    # the policy-wide context prefix of every keyed operator
    got = changes(tmp_path, edit(context="cif.accounts"))
    assert got == [{"view": None, "target": "context", "path": "", "change": "changed",
                    "before": "cif.customers", "after": "cif.accounts"}]


@pytest.mark.parametrize("after,where", [
    (edit(default="keep"), (None, "default", "")),
    (edit(dp={"dataset": "cif.customers", "budget": 9.0}), (None, "dp", "budget")),
    (edit(views__partner_export__columns__1__options={"template": "HMAC_SM3"}),
     ("partner_export", "name: mobile", "options.template")),
    (edit(views__partner_export__columns__0__on_invalid="null"),
     ("partner_export", "name: card_no", "on_invalid")),
    (edit(views__display__columns__0__options={"keep_first": 3, "keep_last": 2}),
     ("display", "pii: cn_mobile", "options.keep_last")),
    (edit(views__partner_export__gate__k_anonymity__quasi=["age"]),
     ("partner_export", "gate", "k_anonymity.quasi")),
    (edit(views__partner_export__gate__k_anonymity__max_suppression=0.5),
     ("partner_export", "gate", "k_anonymity.max_suppression")),
    (edit(views__partner_export__default="keep"), ("partner_export", "default", "")),
    (edit(views__partner_export__inherit=None), ("partner_export", "inherits", "")),
    (edit(columns__0__pii="cn_mobile"), (None, "(columns) name: id_no", "pii")),
    (edit(columns__1__type="int64"), (None, "(columns) name: amount", "type")),
    (edit(columns__2__operator="mask"), (None, "(columns) name: city", "operator")),
    (edit(extends="jrt0171"), (None, "extends", "")),
])
def test_each_setting_is_reported(tmp_path: Path, after: dict[str, Any],
                                  where: tuple[str | None, str, str]) -> None:
    got = [(c["view"], c["target"], c["path"]) for c in changes(tmp_path, after)]
    assert where in got, got


def test_inherited_change_is_reported_in_the_inheriting_view(tmp_path: Path) -> None:
    after = edit(views__display__columns__0__operator="drop",
                 views__display__columns__0__options=None)
    got = {(c["view"], c["target"], c["path"]) for c in changes(tmp_path, after)}
    assert ("display", "pii: cn_mobile", "operator") in got
    assert ("partner_export", "pii: cn_mobile", "operator") in got
    assert changes(tmp_path, after, "-v", "display")[0]["view"] == "display"


def test_rules_added_removed_renamed(tmp_path: Path) -> None:
    cols = copy.deepcopy(BASE["views"]["partner_export"]["columns"])
    cols[0] = {**cols[0], "name": "card_number"}  # renamed
    del cols[1]  # removed
    cols.append({"name": "income", "operator": "round", "options": {"to": 1000}})  # added
    got = {(c["target"], c["change"]) for c in
           changes(tmp_path, edit(views__partner_export__columns=cols))}
    assert {("name: card_no", "removed"), ("name: card_number", "added"),
            ("name: mobile", "removed"), ("name: income", "added")} <= got


def test_rule_order_that_decides_a_column(tmp_path: Path) -> None:
    cols = copy.deepcopy(BASE["views"]["partner_export"]["columns"])
    cols[2], cols[3] = cols[3], cols[2]  # "id_no": glob *_no (drop) vs id* (hash)
    got = changes(tmp_path, edit(views__partner_export__columns=cols))
    assert [(c["target"], c["path"]) for c in got] == [("rule order", "partner_export")]
    assert got[0]["before"] == ["glob: *_no", "glob: id*"]
    # name rules cannot tie: their order is no change
    cols = copy.deepcopy(BASE["views"]["partner_export"]["columns"])
    cols[0], cols[1] = cols[1], cols[0]
    assert changes(tmp_path, edit(views__partner_export__columns=cols)) == []


def test_views_added_and_removed(tmp_path: Path) -> None:
    after = edit(views__display=None, views__partner_export__inherit=None)
    after["views"]["regulator"] = {"default": "keep"}
    got = {(c["view"], c["target"], c["change"]) for c in changes(tmp_path, after)}
    assert ("display", "view", "removed") in got and ("regulator", "view", "added") in got


@pytest.mark.parametrize("model,gate_key,base", [
    (KAnonymity, "k_anonymity", {"quasi": ["age"]}),
    (LDiversity, "l_diversity", {"quasi": ["age"], "sensitive": "income"}),
    (TCloseness, "t_closeness", {"quasi": ["age"], "sensitive": "income"}),
])
def test_every_gate_option_is_compared(model: Any, gate_key: str,
                                       base: dict[str, Any]) -> None:
    """Generic: each option of each gate criterion, present or future, is compared."""
    samples = {"quasi": ["city"], "sensitive": "city", "k": 3, "l": 3, "t": 0.5,
               "ordered": True, "max_suppression": 0.1}
    for option in model.model_fields:
        doc_a = {"version": 1, "views": {"v": {"gate": {gate_key: base}}}}
        doc_b = copy.deepcopy(doc_a)
        doc_b["views"]["v"]["gate"][gate_key][option] = samples[option]
        got = diff_policies(Policy.from_data(doc_a), Policy.from_data(doc_b))
        assert [(c.target, c.path) for c in got] == [("gate", f"{gate_key}.{option}")], option


def test_per_column_with_input(tmp_path: Path) -> None:
    data = tmp_path / "t.csv"
    data.write_text("card_no,city,mobile,id_no,amount,age\n"
                    "6222021234567890,北京,13812345678,x,1.5,30\n", encoding="utf-8")
    after = edit(views__partner_export__columns__0__context="other.card_no")
    got = changes(tmp_path, after, "--input", str(data), "-v", "partner_export")
    assert {"view": "partner_export", "target": "column: card_no", "path": "context",
            "change": "changed", "before": "shared.card_no", "after": "other.card_no"} in got
    after = edit(views__partner_export__gate__k_anonymity__k=2)
    got = changes(tmp_path, after, "--input", str(data), "-v", "partner_export")
    assert [(c["target"], c["path"]) for c in got] == [("gate", "k_anonymity.k")]


def test_bad_input_exits_2(tmp_path: Path) -> None:
    code, text = diff(tmp_path, copy.deepcopy(BASE), "-v", "nope")
    assert code == 2 and "'nope' is in neither policy" in text
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\ncolumns:\n  - {name: a, type: money}\n", encoding="utf-8")
    res = CliRunner().invoke(main, ["mask", "diff", write(tmp_path / "a.yaml", BASE),
                                    str(bad)])
    assert res.exit_code == 2 and "bad.yaml:3" in res.output
    assert "unknown column type 'money'" in res.output
