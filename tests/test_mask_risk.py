"""Risk measures against brute-force definitions, and the gate."""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from masking.policy import GateModel
from masking.risk import (
    apply_gate,
    equivalence_classes,
    k_anonymity,
    l_diversity,
    risk_report,
    t_closeness,
)
from privacy.errors import InputError, RiskGateError


def brute(rows: list[tuple[object, ...]], sens: list[object], ordered: bool
          ) -> tuple[int, int, float]:
    classes: dict[tuple[object, ...], list[object]] = defaultdict(list)
    for q, s in zip(rows, sens, strict=True):
        classes[q].append(s)
    k = min(len(v) for v in classes.values())
    l_ = min(len(set(v)) for v in classes.values())
    values = sorted(set(sens)) if ordered else list(dict.fromkeys(sens))
    total = Counter(sens)
    q = np.array([total[v] / len(sens) for v in values])
    t = 0.0
    for members in classes.values():
        c = Counter(members)
        p = np.array([c[v] / len(members) for v in values])
        if ordered:
            emd = np.abs(np.cumsum(p - q))[:-1].sum() / (len(values) - 1) if len(values) > 1 else 0
        else:
            emd = 0.5 * np.abs(p - q).sum()
        t = max(t, float(emd))
    return k, l_, t


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.sampled_from([1, 2]),
                          st.integers(0, 6)), min_size=1, max_size=60),
       st.booleans())
def test_measures_match_brute_force(data: list[tuple[str, int, int]], ordered: bool) -> None:
    table = pa.table({
        "city": [d[0] for d in data],
        "band": [d[1] for d in data],
        "s": [d[2] if ordered else f"v{d[2]}" for d in data],
    })
    k, l_, t = brute([(d[0], d[1]) for d in data],
                     [d[2] if ordered else f"v{d[2]}" for d in data], ordered)
    assert k_anonymity(table, ["city", "band"]) == k
    assert l_diversity(table, ["city", "band"], "s") == l_
    assert t_closeness(table, ["city", "band"], "s", ordered=ordered) == pytest.approx(t, abs=1e-9)


def test_nulls_are_a_class_and_report() -> None:
    table = pa.table({"a": ["x", None, None, "x"], "s": ["1", "2", "3", "1"]})
    cls, sizes = equivalence_classes(table, ["a"])
    assert sorted(sizes.tolist()) == [2, 2] and cls[1] == cls[2]
    report = risk_report(table, ["a"], "s", k=3)
    assert (report.k, report.l, report.rows_below_k, report.classes) == (2, 1, 4, 2)
    with pytest.raises(InputError, match="'b' is not in the table"):
        k_anonymity(table, ["b"])



def test_nested_columns_are_refused_by_name() -> None:
    # Arrow cannot group lists or structs: `mask risk` and view gates ended in a traceback
    table = pa.table({"a": ["x", "y"], "tags": pa.array([["p"], []]),
                      "addr": pa.array([{"city": "北京"}, {"city": "上海"}])})
    with pytest.raises(InputError, match=r"column 'tags' holds nested values \(list"):
        k_anonymity(table, ["a", "tags"])
    with pytest.raises(InputError, match=r"column 'addr' holds nested values \(struct"):
        l_diversity(table, ["a"], "addr")
    with pytest.raises(InputError, match="column 'tags' holds nested values"):
        risk_report(table, ["a"], "tags")

def test_many_quasi_identifiers_do_not_overflow() -> None:
    rng = np.random.default_rng(0)
    table = pa.table({f"q{i}": rng.integers(0, 1000, 500) for i in range(12)})
    assert k_anonymity(table, [f"q{i}" for i in range(12)]) == 1


def test_gate_suppresses_or_fails() -> None:
    table = pa.table({"city": ["a"] * 10 + ["b"] * 5 + ["c"], "s": list(range(16))})
    gate = GateModel.model_validate({"k_anonymity": {"quasi": ["city"], "k": 5,
                                                     "max_suppression": 0.1}})
    out, report = apply_gate(table, gate)
    assert out.num_rows == 15 and report["suppressed"] == 1
    strict = GateModel.model_validate({"k_anonymity": {"quasi": ["city"], "k": 6,
                                                       "max_suppression": 0.1}})
    with pytest.raises(RiskGateError, match="k >= 6 required, found 1"):
        apply_gate(table, strict)
    ldiv = GateModel.model_validate({"l_diversity": {"quasi": ["city"], "sensitive": "s",
                                                     "l": 2, "max_suppression": 0.1}})
    assert apply_gate(table, ldiv)[0].num_rows == 15
    tclose = GateModel.model_validate({"t_closeness": {"quasi": ["city"], "sensitive": "s",
                                                       "t": 0.01}})
    with pytest.raises(RiskGateError, match="t-closeness"):
        apply_gate(table, tclose)
