"""What a failed k-anonymity gate should say: the worst classes and what would pass.

When a table does not reach ``k`` within the suppression a gate allows, a message that
only says "k = 1" leaves the policy author guessing. :func:`k_anonymity_advice` computes,
on the same (masked) table:

* the smallest equivalence classes, with their sizes and quasi-identifier values;
* every change of one setting that makes the gate pass, each checked by recomputing the
  classes: the ``max_suppression`` the current classes need, the largest ``k`` the
  current ``max_suppression`` allows, dropping one quasi-identifier column, or
  generalising one column one or more levels further.

Generalisations are offered only where the coarser value follows exactly from the value
in the table, so the advice holds for the policy change it names: dates to month,
quarter or year (``generalize {to: ...}``); age bands and numeric buckets to a multiple
of their width; plain numbers to buckets; Chinese addresses to district, city or
province. A column that is already a year, or free categories (gender, city names),
can only be dropped.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["KAdvice", "Option", "SmallClass", "k_anonymity_advice"]

IntArray = npt.NDArray[np.int64]

_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")
_BAND = re.compile(r"^(\d+)-(\d+)$")
_BUCKET = re.compile(r"^\[(-?[\d.]+(?:e[+-]?\d+)?), (-?[\d.]+(?:e[+-]?\d+)?)\)$")
_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?$")
_ADDRESS_MARK = re.compile(r"省|自治区|特别行政区|市|自治州|区|县|旗")
_SHOW = 40  # characters of a value shown in a message


@dataclass(frozen=True)
class SmallClass:
    """One equivalence class: its size and its quasi-identifier values."""

    size: int
    values: dict[str, Any]

    def text(self) -> str:
        shown = ", ".join(f"{k}={_short(v)}" for k, v in self.values.items())
        return f"{self.size} row{'s' if self.size != 1 else ''}: {shown}"


@dataclass(frozen=True)
class Option:
    """A change of one setting that makes the gate pass, with its checked outcome."""

    kind: str  # "max_suppression", "k", "drop", "generalize"
    change: str  # what to change, for people
    k: int  # the smallest class after the change, before suppression
    suppressed: int  # rows the gate would then suppress
    setting: dict[str, Any] = field(default_factory=dict)  # the new setting, for programs

    def text(self, rows: int) -> str:
        share = self.suppressed / rows if rows else 0.0
        return (f"{self.change} (then k = {self.k} before suppression, {self.suppressed} "
                f"rows = {share:.1%} suppressed)")


@dataclass(frozen=True)
class KAdvice:
    """The state of a k-anonymity criterion and the options that would meet it."""

    quasi: list[str]
    k_required: int
    max_suppression: float
    rows: int
    classes: int
    k: int
    violating_rows: int
    smallest: list[SmallClass]
    options: list[Option]

    def lines(self) -> list[str]:
        """The advice as message lines (after the one-line verdict)."""
        out = [f"smallest of {self.classes} classes (quasi: {', '.join(self.quasi)}):"]
        out += [f"  {c.text()}" for c in self.smallest]
        if self.options:
            out.append(f"would pass k >= {self.k_required} (checked on this table):")
            out += [f"  - {o.text(self.rows)}" for o in self.options]
        else:
            out.append("no single change of one setting passes; combine them, or add rows")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "quasi": self.quasi, "k_required": self.k_required,
            "max_suppression": self.max_suppression, "rows": self.rows,
            "classes": self.classes, "k": self.k, "violating_rows": self.violating_rows,
            "smallest": [{"size": c.size, "values": c.values} for c in self.smallest],
            "options": [{"kind": o.kind, "change": o.change, "k": o.k,
                         "suppressed": o.suppressed, "setting": o.setting}
                        for o in self.options],
        }


def _short(value: Any) -> str:
    if value is None:
        return "null"
    text = str(value)
    return text if len(text) <= _SHOW else text[: _SHOW - 1] + "…"


def _encode(values: pa.Array | pa.ChunkedArray) -> tuple[IntArray, list[Any]]:
    """Dictionary codes per row (nulls a value of their own) and the distinct values."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    enc = pc.dictionary_encode(values, null_encoding="encode")
    codes = np.asarray(enc.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    return codes, enc.dictionary.to_pylist()


def _classes(codes: list[IntArray], n: int) -> tuple[IntArray, IntArray]:
    """Class id per row and class sizes from per-column codes."""
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    key = np.zeros(n, dtype=np.int64)
    for c in codes:
        card = int(c.max()) + 1 if len(c) else 1
        if key.max(initial=0) >= (2**62) // max(card, 1):
            _, key = np.unique(key, return_inverse=True)
            key = key.astype(np.int64)
        key = key * card + c
    _, cls, sizes = np.unique(key, return_inverse=True, return_counts=True)
    return cls.astype(np.int64), sizes.astype(np.int64)


def _violating(sizes: IntArray, k: int) -> int:
    return int(sizes[sizes < k].sum())


# -- generalisation ladders ------------------------------------------------------------

Ladder = list[tuple[str, dict[str, Any], Callable[[Any], Any]]]


def _nice_widths(span: float) -> list[float]:
    """1-2-5 widths from about span/100 up to the span."""
    if span <= 0:
        return []
    out: list[float] = []
    exp = math.floor(math.log10(span / 100)) if span >= 1e-9 else 0
    while len(out) < 12:
        for m in (1, 2, 5):
            w = m * 10.0**exp
            if span / 100 <= w <= span:
                out.append(w)
        exp += 1
        if 10.0**exp > span:
            break
    return out


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _ladder(distinct: list[Any]) -> Ladder:
    """Coarser levels of a column whose values all share one recognised shape."""
    vals = [v for v in distinct if v is not None]
    if not vals:
        return []
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
        nums = [float(v) for v in vals]
        return _number_ladder(nums)
    if not all(isinstance(v, str) for v in vals):
        return []
    text: list[str] = [v.strip() for v in vals]
    if all(_DATE.match(t) for t in text):
        return [("month", {"to": "month"}, lambda t: t.strip()[:7]),
                ("quarter", {"to": "quarter"},
                 lambda t: f"{t.strip()[:4]}-Q{(int(t.strip()[5:7]) - 1) // 3 + 1}"),
                ("year", {"to": "year"}, lambda t: t.strip()[:4])]
    if all(_MONTH.match(t) for t in text):
        return [("quarter", {"to": "quarter"},
                 lambda t: f"{t.strip()[:4]}-Q{(int(t.strip()[5:7]) - 1) // 3 + 1}"),
                ("year", {"to": "year"}, lambda t: t.strip()[:4])]
    if all(_QUARTER.match(t) for t in text):
        return [("year", {"to": "year"}, lambda t: t.strip()[:4])]
    bands = [_BAND.match(t) for t in text]
    if all(bands):
        lows = [int(m.group(1)) for m in bands if m]
        widths = {int(m.group(2)) - int(m.group(1)) + 1 for m in bands if m}
        if len(widths) == 1 and (w := widths.pop()) > 0 and all(lo % w == 0 for lo in lows):
            top = max(lows) + w
            out: Ladder = []
            for mult in (2, 3, 4, 5, 10, 20):
                big = w * mult
                if big >= 2 * top:
                    break
                out.append((f"age_band width {big}", {"to": "age_band", "width": big},
                            partial(_band_of, width=big)))
            return out
        return []
    buckets = [_BUCKET.match(t) for t in text]
    if all(buckets):
        edges = [(float(m.group(1)), float(m.group(2))) for m in buckets if m]
        widths_f = {round(b - a, 9) for a, b in edges}
        if len(widths_f) == 1 and (wf := widths_f.pop()) > 0 and all(
                abs(a / wf - round(a / wf)) < 1e-9 for a, _ in edges):
            lo, hi = min(a for a, _ in edges), max(b for _, b in edges)
            out = []
            for mult in (2, 5, 10, 20, 50, 100):
                wide = wf * mult
                if wide >= 2 * (hi - lo) + wf:
                    break
                out.append((f"bucket width {_fmt(wide)}", {"to": "bucket", "width": wide},
                            partial(_rebucket, width=wide)))
            return out
        return []
    if all(_NUMBER.match(t) for t in text):
        if all(len(t) == 4 and t.isdigit() for t in text):
            return []  # years: coarser bands do not follow from a year alone
        return _number_ladder([float(t) for t in text])
    if sum(bool(_ADDRESS_MARK.search(t)) for t in text) >= 0.9 * len(text):
        from masking.operators.generalize import ADDRESS_PATTERNS

        out = []
        for level in ("district", "city", "province"):
            pattern = re.compile(ADDRESS_PATTERNS[level])
            out.append((f"{level}", {"to": level}, partial(_cut_address, pattern=pattern)))
        return out
    return []


def _number_ladder(nums: list[float]) -> Ladder:
    span = max(nums) - min(nums)
    out: Ladder = []
    for w in _nice_widths(span):
        out.append((f"bucket width {_fmt(w)}", {"to": "bucket", "width": w},
                    partial(_bucket_of, width=w)))
    return out


def _band_of(text: str, width: int) -> str:
    lo = int(text.strip().split("-")[0]) // width * width
    return f"{lo}-{lo + width - 1}"


def _bucket_of(x: float | str, width: float) -> str:
    lo = math.floor(float(x) / width) * width
    return f"[{_fmt(lo)}, {_fmt(lo + width)})"


def _rebucket(text: str, width: float) -> str:
    m = _BUCKET.match(text.strip())
    if m is None:
        raise ValueError(f"not a bucket: {text!r}")
    return _bucket_of(float(m.group(1)), width)


def _cut_address(text: str, pattern: re.Pattern[str]) -> str:
    m = pattern.match(text)
    return m.group("g") if m else text


def _regeneralise(codes: IntArray, distinct: list[Any],
                  fn: Callable[[Any], Any]) -> tuple[IntArray, int] | None:
    """New codes after mapping each distinct value; None when nothing gets coarser."""
    mapped = [None if v is None else fn(v) for v in distinct]
    index: dict[Any, int] = {}
    remap = np.array([index.setdefault(m, len(index)) for m in mapped], dtype=np.int64)
    if len(index) >= len(distinct):
        return None
    return remap[codes] if len(codes) else codes, len(index)


# -- the advice ---------------------------------------------------------------------------

def k_anonymity_advice(table: pa.Table, quasi: list[str], k: int,
                       max_suppression: float = 0.0, *, worst: int = 5) -> KAdvice:
    """The smallest classes of ``table`` over ``quasi`` and the single changes that make
    ``k``-anonymity hold with at most ``max_suppression`` of the rows suppressed.

    Every option is checked by recomputing the classes with that change; see the module
    docstring for the generalisations considered.
    """
    n = table.num_rows
    budget = math.floor(max_suppression * n + 1e-9)
    encoded = {q: _encode(table.column(q)) for q in quasi}
    codes = [encoded[q][0] for q in quasi]
    cls, sizes = _classes(codes, n)
    kmin = int(sizes.min()) if len(sizes) else 0
    violating = _violating(sizes, k)

    smallest: list[SmallClass] = []
    if len(sizes):
        _, first_row = np.unique(cls, return_index=True)
        order = np.lexsort((first_row, sizes))[:worst]
        for c in order.tolist():
            row = int(first_row[c])
            smallest.append(SmallClass(int(sizes[c]), {
                q: encoded[q][1][int(encoded[q][0][row])] for q in quasi}))

    options: list[Option] = []
    if violating:
        share = math.ceil(violating / n * 1000) / 1000 if n else 0.0
        if violating < n:  # suppressing every row passes only on paper
            options.append(Option("max_suppression", f"max_suppression: {share:g}", kmin,
                                  violating, {"max_suppression": share}))
        # the largest k that the allowed suppression reaches
        best = 0
        for cand in range(k - 1, 1, -1):
            if _violating(sizes, cand) <= budget:
                best = cand
                break
        if best >= 2:
            options.append(Option("k", f"k: {best} (the most this table reaches with "
                                  f"max_suppression {max_suppression:g})", kmin,
                                  _violating(sizes, best), {"k": best}))
        if len(quasi) > 1:
            for i, q in enumerate(quasi):
                _, s = _classes(codes[:i] + codes[i + 1:], n)
                bad = _violating(s, k)
                if bad <= budget:
                    options.append(Option(
                        "drop", f"drop column {q!r} from the view (and from the gate's quasi)",
                        int(s.min()), bad, {"drop": q}))
        levels = {q: _levels(*encoded[q]) for q in quasi}
        for i, q in enumerate(quasi):
            for setting, new in levels[q]:
                _, s = _classes(codes[:i] + [new] + codes[i + 1:], n)
                bad = _violating(s, k)
                if bad <= budget:
                    options.append(Option("generalize", _describe(q, setting), int(s.min()),
                                          bad, {"column": q, "operator": "generalize",
                                                "options": setting}))
                    break  # the finest level that passes
        if not any(o.kind in ("drop", "generalize") for o in options):
            combined = _greedy(quasi, codes, levels, n, k, budget)
            if combined is not None:
                options.append(combined)
    return KAdvice(list(quasi), k, max_suppression, n, len(sizes), kmin, violating,
                   smallest, options)


def _describe(column: str, setting: dict[str, Any]) -> str:
    opts = ", ".join(f"{key}: {_fmt(v) if isinstance(v, float) else v}"
                     for key, v in setting.items())
    return f"column {column!r}: generalize {{{opts}}}"


def _levels(codes: IntArray, distinct: list[Any]) -> list[tuple[dict[str, Any], IntArray]]:
    """Each coarser level of a column that merges values: (setting, codes)."""
    distinct = [v.isoformat() if isinstance(v, _dt.date) and not isinstance(v, _dt.datetime)
                else v for v in distinct]  # a date column reads as its ISO text
    out = []
    for _label, setting, fn in _ladder(distinct):
        try:
            new = _regeneralise(codes, distinct, fn)
        except (ValueError, AttributeError, IndexError):
            break  # a value the shape test let through: stop rather than guess
        if new is not None:
            out.append((setting, new[0]))
    return out


def _greedy(quasi: list[str], codes: list[IntArray],
            levels: dict[str, list[tuple[dict[str, Any], IntArray]]],
            n: int, k: int, budget: int) -> Option | None:
    """Changes of several columns that together pass, after Sweeney's Datafly: take the
    column with the most distinct values one level coarser (or drop it once it has no
    coarser level) until the gate passes; then undo every step not needed."""
    state: dict[str, int] = dict.fromkeys(quasi, 0)  # 0 as is, i level i, -1 dropped
    dropped = np.zeros(n, dtype=np.int64)

    def column(q: str, level: int) -> IntArray:
        if level < 0:
            return dropped
        return codes[quasi.index(q)] if level == 0 else levels[q][level - 1][1]

    def violating(st: dict[str, int]) -> tuple[int, IntArray]:
        sizes = _classes([column(q, st[q]) for q in quasi], n)[1]
        return _violating(sizes, k), sizes

    bad, sizes = violating(state)
    while bad > budget:
        live = [q for q in quasi if state[q] >= 0]
        q = max(live, key=lambda c: len(np.unique(column(c, state[c]))))
        if state[q] < len(levels[q]):
            state[q] += 1
        elif len(live) > 1:
            state[q] = -1
        else:
            return None
        bad, sizes = violating(state)
    for q in quasi:  # the finest level of each column that still passes
        while state[q] != 0:
            finer = dict(state)
            finer[q] = len(levels[q]) if state[q] < 0 else state[q] - 1
            trial_bad, trial_sizes = violating(finer)
            if trial_bad > budget:
                break
            state, bad, sizes = finer, trial_bad, trial_sizes
    steps: list[str] = []
    settings: list[dict[str, Any]] = []
    for q in quasi:
        if state[q] < 0:
            steps.append(f"drop column {q!r}")
            settings.append({"drop": q})
        elif state[q] > 0:
            setting = levels[q][state[q] - 1][0]
            steps.append(_describe(q, setting))
            settings.append({"column": q, "operator": "generalize", "options": setting})
    return Option("combined", "together: " + "; ".join(steps), int(sizes.min()), bad,
                  {"changes": settings})
