"""Re-identification risk: k-anonymity, distinct l-diversity and t-closeness.

Rows with equal values in every quasi-identifier form an *equivalence class* (nulls
are a value of their own). Class codes come from dictionary-encoding each quasi column
and combining the codes in numpy; class sizes, distinct sensitive values and per-class
value counts come from ``pyarrow`` ``group_by`` over those codes: no Python loop per row
or per class.

* **k-anonymity**: ``k`` is the size of the smallest class.
* **distinct l-diversity**: ``l`` is the fewest distinct sensitive values in a class.
* **t-closeness**: ``t`` is the largest Earth Mover's Distance between a class's
  sensitive distribution and the whole table's; equal ground distance for categorical
  values (EMD = half the L1 distance), ordered distance for numeric values
  (EMD = sum over the first m-1 ranks of |cumulative difference| / (m - 1)), after
  Li, Li and Venkatasubramanian (ICDE 2007).

:func:`apply_gate` checks a view's gate on masked output: rows in classes that violate
a criterion are suppressed when they are at most ``max_suppression`` of the rows, else
:class:`~privacy.errors.RiskGateError` is raised; for k-anonymity its message lists the
smallest classes and the single changes that would pass (:mod:`masking.risk_advice`), also
on the exception as ``advice`` (a dict).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from masking.coltypes import is_nested
from masking.operators._base import parse_numbers
from privacy.errors import InputError, RiskGateError

__all__ = [
    "equivalence_classes",
    "k_anonymity",
    "l_diversity",
    "t_closeness",
    "RiskReport",
    "risk_report",
    "apply_gate",
]

IntArray = npt.NDArray[np.int64]
_LIMIT = 2**62


def _column(table: pa.Table, name: str) -> pa.Array:
    if name not in table.schema.names:
        raise InputError(f"column {name!r} is not in the table (columns: "
                         f"{', '.join(table.schema.names)})")
    col = table.column(name)
    if is_nested(col.type):  # Arrow cannot group by them: a traceback, exit 1
        raise InputError(f"column {name!r} holds nested values ({col.type}); a quasi-"
                         "identifier or sensitive column needs one plain value per row "
                         "(flatten it, or leave it out)")
    return col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col


def _codes(values: pa.Array) -> tuple[IntArray, int]:
    enc = pc.dictionary_encode(values, null_encoding="encode")
    idx = np.asarray(enc.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    return idx, max(len(enc.dictionary), 1)


def equivalence_classes(table: pa.Table, quasi: list[str]) -> tuple[IntArray, IntArray]:
    """``(class_of_row, class_sizes)``: a class id per row (0..C-1) and each class's size."""
    if not quasi:
        raise InputError("at least one quasi-identifier column is needed")
    key = np.zeros(table.num_rows, dtype=np.int64)
    span = 1
    for name in quasi:
        idx, card = _codes(_column(table, name))
        if span * card >= _LIMIT:
            _, key = np.unique(key, return_inverse=True)
            span = int(key.max()) + 1 if len(key) else 1
        key = key * card + idx
        span *= card
    if table.num_rows == 0:
        return key, np.zeros(0, dtype=np.int64)
    classes = pa.table({"c": key}).group_by("c", use_threads=False).aggregate([("c", "count")])
    ids = classes.column("c").to_numpy()
    order = np.argsort(ids)
    sizes = classes.column("c_count").to_numpy()[order].astype(np.int64)
    return np.searchsorted(ids[order], key).astype(np.int64), sizes


@dataclass(frozen=True)
class RiskReport:
    """Risk measures of a table for given quasi-identifiers (and sensitive column)."""

    rows: int
    classes: int
    k: int
    rows_below_k: int | None = None
    l: int | None = None  # noqa: E741
    t: float | None = None
    sensitive: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def k_anonymity(table: pa.Table, quasi: list[str]) -> int:
    """The size of the smallest equivalence class (0 for an empty table)."""
    _, sizes = equivalence_classes(table, quasi)
    return int(sizes.min()) if len(sizes) else 0


def _distinct_per_class(cls: IntArray, values: pa.Array, n_classes: int) -> IntArray:
    t = pa.table({"c": cls, "v": values})
    g = t.group_by("c", use_threads=False).aggregate(
        [("v", "count_distinct", pc.CountOptions("all"))])
    out = np.zeros(n_classes, dtype=np.int64)
    out[g.column("c").to_numpy()] = g.column("v_count_distinct").to_numpy()
    return out


def l_diversity(table: pa.Table, quasi: list[str], sensitive: str) -> int:
    """Distinct l-diversity: fewest distinct ``sensitive`` values (null counts as one)
    in any class."""
    cls, sizes = equivalence_classes(table, quasi)
    if not len(sizes):
        return 0
    return int(_distinct_per_class(cls, _column(table, sensitive), len(sizes)).min())


def _emd_per_class(cls: IntArray, values: pa.Array, n_classes: int,
                   ordered: bool | None) -> npt.NDArray[np.float64]:
    nums, ok, null = parse_numbers(values)
    if ordered is None:
        ordered = bool(ok.any()) and bool(np.all(ok | null))
    if ordered:
        keep = ok
        uniq, vcode = np.unique(nums[keep], return_inverse=True)
        m = len(uniq)
    else:
        keep = ~null
        vcode, m = _codes(values.filter(pa.array(keep)))
    cls = cls[keep]
    if len(cls) == 0 or m <= 1:
        return np.zeros(n_classes)
    q = np.bincount(vcode, minlength=m) / len(vcode)
    g = (pa.table({"c": cls, "v": vcode}).group_by(["c", "v"], use_threads=False)
         .aggregate([("c", "count")]))
    c = g.column("c").to_numpy().astype(np.int64)
    v = g.column("v").to_numpy().astype(np.int64)
    cnt = g.column("c_count").to_numpy().astype(np.float64)
    order = np.lexsort((v, c))
    c, v, cnt = c[order], v[order], cnt[order]
    size = np.bincount(c, weights=cnt, minlength=n_classes)
    p = cnt / size[c]
    emd = np.zeros(n_classes)
    if not ordered:
        np.add.at(emd, c, np.abs(p - q[v]) - q[v])
        return 0.5 * (emd + 1.0) * (size > 0)
    qx = np.cumsum(q)[: m - 1]  # Q(i), i = 0..m-2
    sx = np.concatenate([[0.0], np.cumsum(qx)])  # sx[i] = sum of Q(0..i-1)
    first = np.ones(len(c), dtype=bool)
    first[1:] = c[1:] != c[:-1]
    last = np.ones(len(c), dtype=bool)
    last[:-1] = c[1:] != c[:-1]
    pcum = np.cumsum(p)
    starts = np.flatnonzero(first)
    before = np.concatenate([[0.0], pcum[starts[1:] - 1]])
    pcum -= np.repeat(before, np.diff(np.append(starts, len(c))))
    # Leading stretch before a class's first value: P = 0, so |P - Q| = Q.
    np.add.at(emd, c[first], sx[v[first]])
    nxt = np.empty(len(c), dtype=np.int64)
    nxt[:-1] = v[1:]
    nxt[last] = m - 1
    a, b = v, np.minimum(nxt, m - 1)  # segment [a, b) with constant P = pcum
    a = np.minimum(a, m - 1)
    split = np.clip(np.searchsorted(qx, pcum, side="left"), a, b)
    seg = pcum * (split - a) - (sx[split] - sx[a]) + (sx[b] - sx[split]) - pcum * (b - split)
    np.add.at(emd, c, seg)
    return emd / (m - 1)


def t_closeness(table: pa.Table, quasi: list[str], sensitive: str,
                *, ordered: bool | None = None) -> float:
    """The largest EMD between a class's ``sensitive`` distribution and the table's.

    ``ordered`` chooses the ground distance; default: ordered when every non-null value
    is a number.
    """
    cls, sizes = equivalence_classes(table, quasi)
    if not len(sizes):
        return 0.0
    return float(_emd_per_class(cls, _column(table, sensitive), len(sizes), ordered).max())


def risk_report(table: pa.Table, quasi: list[str], sensitive: str | None = None,
                *, k: int | None = None, ordered: bool | None = None) -> RiskReport:
    """k (and l, t when ``sensitive`` is given) in one pass over the classes."""
    cls, sizes = equivalence_classes(table, quasi)
    kmin = int(sizes.min()) if len(sizes) else 0
    below = int(sizes[sizes < k].sum()) if k is not None else None
    l_val = t_val = None
    if sensitive is not None and len(sizes):
        values = _column(table, sensitive)
        l_val = int(_distinct_per_class(cls, values, len(sizes)).min())
        t_val = round(float(_emd_per_class(cls, values, len(sizes), ordered).max()), 6)
    return RiskReport(table.num_rows, len(sizes), kmin, below, l_val, t_val, sensitive)


def apply_gate(table: pa.Table, gate: Any) -> tuple[pa.Table, dict[str, Any]]:
    """Check a view's gate (:class:`masking.policy.GateModel`) on masked output.

    Returns the table with violating rows suppressed and a report; raises
    :class:`RiskGateError` when a criterion would need more suppression than allowed.
    """
    total = table.num_rows
    report: dict[str, Any] = {"rows_in": total, "suppressed": 0, "criteria": {}}
    checks = [("k_anonymity", gate.k_anonymity), ("l_diversity", gate.l_diversity),
              ("t_closeness", gate.t_closeness)]
    for name, crit in checks:
        if crit is None or table.num_rows == 0:
            continue
        cls, sizes = equivalence_classes(table, list(crit.quasi))
        measure: float
        if name == "k_anonymity":
            measure, bad_class = int(sizes.min()), sizes < crit.k
            target = f"k >= {crit.k}"
        elif name == "l_diversity":
            distinct = _distinct_per_class(cls, _column(table, crit.sensitive), len(sizes))
            measure, bad_class = int(distinct.min()), distinct < crit.l
            target = f"l >= {crit.l}"
        else:
            emd = _emd_per_class(cls, _column(table, crit.sensitive), len(sizes), crit.ordered)
            measure, bad_class = round(float(emd.max()), 6), emd > crit.t
            target = f"t <= {crit.t}"
        bad_rows = bad_class[cls]
        n_bad = int(bad_rows.sum())
        share = n_bad / total if total else 0.0
        report["criteria"][name] = {"measure": measure, "target": target, "violating_rows": n_bad}
        if n_bad == 0:
            continue
        if report["suppressed"] + n_bad > crit.max_suppression * total:
            message = (
                f"{name.replace('_', '-')} gate not met: {target} required, found "
                f"{measure}; {n_bad} rows ({share:.1%}) are in violating classes, more than "
                f"max_suppression {crit.max_suppression:.1%} allows (quasi: "
                f"{', '.join(crit.quasi)})"
            )
            advice = None
            if name == "k_anonymity":
                from masking.risk_advice import k_anonymity_advice

                left = max(crit.max_suppression * total - report["suppressed"], 0.0)
                advice = k_anonymity_advice(table, list(crit.quasi), crit.k,
                                            left / table.num_rows)
                message += "\n" + "\n".join(advice.lines())
            error = RiskGateError(message)
            error.advice = advice.as_dict() if advice else None  # type: ignore[attr-defined]
            raise error
        table = table.filter(pa.array(~bad_rows))
        report["suppressed"] += n_bad
    report["rows_out"] = table.num_rows
    return table, report
