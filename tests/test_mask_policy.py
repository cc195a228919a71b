"""Masking policies: validation with file:line, precedence, presets, hash, YAML round trip."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from masking.conditions import Condition
from masking.policy import Policy, policy_schema
from masking.presets import PRESETS, preset_text
from privacy.errors import PolicyError


def write(tmp_path: Path, text: str, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str) -> PolicyError:
    path = write(tmp_path, text)
    with pytest.raises(PolicyError) as info:
        Policy.load(path)
    return info.value


BAD = [
    (  # unknown option: the line of the option key
        """
        version: 1
        views:
          display:
            columns:
              - name: id_no
                operator: mask
                options:
                  keep_first: 6
                  keep: 4
        """,
        9, "operator 'mask' has unknown option 'keep'",
    ),
    (
        """
        version: 1
        columns:
          - name: id_no
            operator: maks
        """,
        4, "unknown operator 'maks'",
    ),
    (
        """
        version: 1
        columns:
          - name: id_no
            opertor: keep
        """,
        4, "unknown key 'opertor'",
    ),
    ("version: 1\ncolumns: [name: x\n", 3, "malformed YAML"),
    ("version: 1\ndefault: drop\ndefault: keep\n", 3, "duplicate key 'default'"),
    ("version: 2\n", 1, "version"),
    ("version: 1\ncolumns:\n  - pii: passport_no\n    operator: drop\n", 3, "unknown PII type"),
    ("version: 1\ncolumns:\n  - name: a\n    glob: b\n", 3, "exactly one of name, glob"),
    ("version: 1\ncolumns:\n  - name: a\n    options: {x: 1}\n", 3, "without an 'operator'"),
    ("version: 1\nviews:\n  v:\n    columns:\n      - name: a\n", 5, "needs an operator"),
    ("version: 1\nviews:\n  v:\n    inherit: w\n", 4, "inherits 'w'"),
    ("version: 1\nviews:\n  v: {inherit: w}\n  w: {inherit: v}\n", 3, "cycle"),
    (
        "version: 1\ncolumns:\n  - name: a\n    operator: generalize\n    options: {to: x}\n",
        5, "option 'to'",
    ),
    ("version: 1\nextends: nothing\n", 2, "unknown preset 'nothing'"),
    ("- just\n- a list\n", 1, "YAML mapping"),
]


@pytest.mark.parametrize(("text", "line", "message"), BAD)
def test_errors_name_file_and_line(tmp_path: Path, text: str, line: int, message: str) -> None:
    err = error_of(tmp_path, text)
    assert f"policy.yaml:{line}:" in str(err), str(err)
    assert message in str(err)
    assert err.line == line


def test_empty_and_missing_files(tmp_path: Path) -> None:
    assert "empty" in str(error_of(tmp_path, "\n"))
    with pytest.raises(PolicyError, match="no such policy file"):
        Policy.load(tmp_path / "nope.yaml")


def test_preset_loads_with_views() -> None:
    assert "jrt0171" in PRESETS
    policy = Policy.preset("jrt0171")
    assert {"display", "analytics", "partner_export"} <= set(policy.view_names)
    display = policy.view("display")
    mobile = display.rule_for("mobile", "cn_mobile", frozenset())
    assert mobile is not None and mobile.operator is not None
    assert mobile.operator.options() == {"keep_first": 3, "keep_last": 4}
    c3 = display.rule_for("card_cvn2", "none", frozenset({"c3"}))
    assert c3 is not None and c3.operator is not None and c3.operator.drops
    assert preset_text("jrt0171").startswith("#")


def test_precedence(tmp_path: Path) -> None:
    policy = Policy.load(write(tmp_path, """
        version: 1
        default: keep
        columns:
          - {tag: secret, operator: drop}
          - {name: note, operator: redact}
        views:
          base:
            columns:
              - {pii: cn_mobile, operator: hash}
              - {glob: "mob*", operator: "null"}
          child:
            inherit: base
            columns:
              - {tag: secret, operator: redact}
        """))
    base = policy.view("base")
    assert base.rule_for("mobile", "cn_mobile", frozenset()).operator.name == "null"  # glob>pii
    assert base.rule_for("phone", "cn_mobile", frozenset()).operator.name == "hash"
    assert base.rule_for("note", "none", frozenset()).operator.name == "redact"  # top level
    assert base.rule_for("other", "none", frozenset()) is None
    assert base.default == "keep"
    child = policy.view("child")
    assert child.rule_for("x", "none", frozenset({"secret"})).operator.name == "redact"
    assert child.rule_for("mobile", "cn_mobile", frozenset()).operator.name == "null"
    with pytest.raises(PolicyError, match="no view 'nope'"):
        policy.view("nope")
    with pytest.raises(PolicyError, match="choose a view"):
        policy.view(None)


def test_extends_puts_own_rules_first(tmp_path: Path) -> None:
    policy = Policy.load(write(tmp_path, """
        version: 1
        extends: jrt0171
        context: shared
        views:
          display:
            columns:
              - {pii: cn_mobile, operator: redact}
          mine:
            inherit: display
            columns:
              - {name: income, operator: round, options: {to: 1000}}
        """))
    assert policy.context == "shared"
    display = policy.view("display")
    assert display.rule_for("m", "cn_mobile", frozenset()).operator.name == "redact"
    assert display.rule_for("c", "bank_card", frozenset()).operator.name == "mask"
    mine = policy.view("mine")
    assert mine.rule_for("income", "none", frozenset()).operator.name == "round"
    assert mine.rule_for("c", "bank_card", frozenset()).operator.name == "mask"
    assert policy.hash != Policy.preset("jrt0171").hash


def test_hash_is_stable_and_content_sensitive(tmp_path: Path) -> None:
    a = Policy.from_yaml("version: 1\ncolumns: [{name: a, operator: keep}]\n")
    b = Policy.from_yaml("# comment\nversion: 1\ncolumns:\n  - operator: keep\n    name: a\n")
    c = Policy.from_yaml("version: 1\ncolumns: [{name: a, operator: redact}]\n")
    assert a.hash == b.hash != c.hash
    assert len(a.hash) == 64


def test_json_schema() -> None:
    schema = policy_schema()
    text = str(schema)
    assert "tokenize" in text and "cn_resident_id" in text and "k_anonymity" in text
    assert schema["properties"]["version"]


def test_row_filter_conditions() -> None:
    batch = pa.record_batch({
        "city": ["北京", "上海", None, "广州"],
        "income": ["100", "5000", "300", None],
        "email": ["a@b.cn", None, "c@d.cn", "e@f.cn"],
    })
    cond = Condition.model_validate({
        "or": [
            {"and": [{"column": "income", "ge": 200},
                     {"not": {"column": "email", "is_null": True}}]},
            {"column": "city", "in": ["北京"]},
        ]
    })
    assert cond.evaluate(batch).tolist() == [True, False, True, False]
    assert Condition.model_validate({"column": "city", "matches": "^上"}).evaluate(batch).tolist() \
        == [False, True, False, False]
    assert Condition.model_validate({"column": "city", "not_in": ["北京"]}).evaluate(batch) \
        .tolist() == [False, True, False, True]
    assert cond.columns() == {"city", "income", "email"}
    with pytest.raises(ValueError):
        Condition.model_validate({"column": "a", "eq": 1, "ne": 2})


# ---- YAML round trip ---------------------------------------------------------------------

_names = st.text(alphabet="abcdefgh_", min_size=1, max_size=8)
_simple_ops = st.sampled_from([
    ("keep", {}), ("drop", {}), ("redact", {}), ("null", {}), ("hash", {}), ("tokenize", {}),
    ("mask", {"keep_first": 3, "keep_last": 4}), ("generalize", {"to": "year"}),
    ("round", {"to": 1000}), ("mask_name", {"keep": "given"}),
])
_selector = st.one_of(
    st.builds(lambda n: {"name": n}, _names),
    st.builds(lambda n: {"glob": n + "*"}, _names),
    st.builds(lambda p: {"pii": p}, st.sampled_from(["cn_mobile", "bank_card", "cn_name"])),
    st.builds(lambda t: {"tag": t}, _names),
)
_rule = st.builds(
    lambda sel, op, inv: {**sel, "operator": op[0], **({"options": op[1]} if op[1] else {}),
                          **({"on_invalid": inv} if inv != "fail" else {})},
    _selector, _simple_ops, st.sampled_from(["fail", "redact", "null"]),
)
_policy = st.builds(
    lambda default, cols, views: {"version": 1, "default": default, "columns": cols,
                                  "views": {k: {"columns": v} for k, v in views.items()}},
    st.sampled_from(["drop", "keep"]),
    st.lists(_rule, max_size=4),
    st.dictionaries(_names, st.lists(_rule, min_size=1, max_size=4), max_size=3),
)


@settings(max_examples=60, deadline=None)
@given(_policy)
def test_yaml_round_trip(data: dict) -> None:  # type: ignore[type-arg]
    policy = Policy.from_data(data)
    again = Policy.from_yaml(policy.to_yaml())
    assert again.hash == policy.hash
    assert again.canonical() == policy.canonical()
    for view in policy.view_names:
        for rules_a, rules_b in zip(policy.view(view).levels, again.view(view).levels,
                                    strict=True):
            assert [r.operator for r in rules_a] == [r.operator for r in rules_b]


def test_row_filter_comparing_a_nested_column_is_a_policy_error() -> None:
    # Arrow cannot cast lists or structs to text: an Arrow traceback, exit 1
    batch = pa.table({"tags": pa.array([["a"], None]), "addr": pa.array([{"c": "北京"}, None])})
    for cond in ({"column": "tags", "eq": "a"}, {"column": "addr", "matches": "北"}):
        with pytest.raises(PolicyError, match=r"row_filter compares column '\w+', which "
                                              r"holds nested values"):
            Condition.model_validate(cond).evaluate(batch)
    is_null = Condition.model_validate({"column": "tags", "is_null": True})
    assert is_null.evaluate(batch).tolist() == [False, True]
