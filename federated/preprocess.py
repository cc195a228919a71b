"""Preprocessing fitted on global statistics that the parties contribute by secure sum.

Steps, each a vector every party computes on its own rows; the server sees only
their sum (secure aggregation or CKKS, see ``federated.horizontal.securesum``):

1. **Schema** (:func:`describe_party`, in the clear): row count, column names and kinds,
   the set of levels of each text column, the label's values, and per numeric column
   the power of two above its largest absolute value (a scale that keeps the secure sums
   in range) and whether it holds only integers.
2. **Moments** (:func:`moments_vector`): per numeric column the fraction of rows with a
   value and the first two moments of ``x / scale``, each divided by the global row
   count ``N`` so every entry of the sum lies in ``[0, 1]``.
2b. **Centred** (:func:`centred_vector`): per numeric column the first two moments of
   ``x - mean`` about step 2's mean, split by the power of two of ``|x - mean|`` (each
   bucket scaled to ``[-1, 1]``), from which :func:`apply_centred` corrects the mean and
   takes the variance. ``E[x^2] - E[x]^2`` from step 2 alone loses the spread of a column
   far from zero (``1e9 + N(0, 100)``) to cancellation and fixed-point rounding; the
   trees' sketch grids (``federated.trees.binning``) use these moments too.
3. **Spread** (:func:`spread_vector`): the centred second moment (unused once step 2b
   ran) and a histogram on a grid of ``HIST_BINS`` bins over ``mean +- 6 sd``;
   :func:`narrow_grid` keeps the bins holding the two middle values (one bin for an odd
   count or when they share it).
4. **Histogram** (:func:`histogram_vector`): a histogram of ``HIST_BINS`` bins over those
   bins, from which each middle value is read to one fine bin (``12 sd / HIST_BINS**2``
   when they share a coarse bin; integer columns: rounded to an integer) and the median
   is their mean, as ``numpy.median``.

:func:`fit_transform_spec` turns the sums into a :class:`Transform`: numeric columns are
imputed with the global median and standardised with the global mean and standard
deviation of the imputed column (scikit-learn's ``SimpleImputer(strategy="median")`` then
``StandardScaler``); text columns are one-hot encoded over the union of every party's
levels (so a level only one bank has is a feature for all), missing and unseen levels
encode as all zeros.

Warnings
--------
What the coordinator learns in the clear: each party's row count, column kinds, the set
of levels of each text column per party (not their counts), the label's values, and the
order of magnitude (power of two) of each numeric column's largest absolute value. The
sums reveal global fractions, moments and a histogram of every numeric column, and (step
2b) the global moments of ``x - mean`` per power of two of ``|x - mean|``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from federated.data import (
    MAX_LEVELS,
    PartyTable,
    choose_positive,
    encode_label,
    feature_names,
    inferred_kind,
    label_levels,
    numeric_values,
    text_values,
)
from privacy.errors import InputError

__all__ = [
    "HIST_BINS", "HIST_SPAN", "PartySchema", "FeatureSpec", "Transform", "describe_party",
    "merge_schemas", "moments_vector", "apply_moments", "spread_vector", "narrow_grid",
    "histogram_vector", "fit_transform_spec", "CENTRED_BUCKETS", "centred_vector",
    "apply_centred", "numeric_id_error",
]

HIST_BINS = 1024
HIST_SPAN = 6.0  # the histogram covers mean +- HIST_SPAN standard deviations
ID_LIKE_ROWS = 50  # a text column whose values all differ over more rows is an identifier
CENTRED_BUCKETS = 64  # powers of two of |x - mean| kept apart in the centred pass

FloatArray = npt.NDArray[np.float64]

#: Words that name an identifier column (``customer_id``, ``AcctNo``, ``客户编号``).
_ID_WORDS = frozenset({"id", "ids", "no", "nbr", "num", "number", "key", "uuid", "guid",
                       "pk", "seq", "serial"})

_JOINED_ID = re.compile(r"(?:cust|customer|user|client|acct|account|row|member|card|loan|app|"
                        r"record|person|party|txn|trans|contract|order|case)(?:id|no|num)")


def _named_like_id(column: str) -> bool:
    """Whether a column's name says it holds identifiers (by its words or its ending)."""
    words = re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", column)
    lowered = [w.lower() for w in words]
    return (bool(lowered) and (lowered[-1] in _ID_WORDS or lowered[0] in ("id", "no")
                               or _JOINED_ID.fullmatch(lowered[-1]) is not None)
            or "编号" in column or column.endswith("号"))


def numeric_id_error(pt_: PartyTable, column: str, present: FloatArray | None = None
                     ) -> InputError | None:
    """The refusal of a numeric column that holds an identifier: whole numbers, a
    different one on every row (more than ``ID_LIKE_ROWS``), under an identifier's
    name. A model would learn the customers' numbers; None when it is not one.
    ``present`` (the column's non-missing values) is read from the table when needed."""
    if not _named_like_id(column):
        return None
    if present is None:
        x = numeric_values(pt_, column)
        present = x[~np.isnan(x)]
    n = present.size
    if n <= ID_LIKE_ROWS:
        return None
    if not np.all(present == np.round(present)) or np.unique(present).size != n:
        return None
    return pt_.error(f"numeric column {column!r} holds a different whole number on every "
                     f"one of its {n} rows and is named like an identifier: a model would "
                     "learn the customers' numbers; list it in exclude (or set id = "
                     f"\"{column}\" in the config), or list it in numeric if it really is a "
                     "feature", column=column)


@dataclass(frozen=True)
class PartySchema:
    """What one party discloses about its table before any statistic is summed."""

    party: str
    rows: int
    kinds: dict[str, str]
    levels: dict[str, list[str]] = field(default_factory=dict)
    label_levels: list[str] = field(default_factory=list)
    scale_exp: dict[str, int] = field(default_factory=dict)
    integral: dict[str, bool] = field(default_factory=dict)

    def to_json(self) -> str:
        """Canonical JSON."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str, *, party: str) -> PartySchema:
        """Parse and bound a schema a party sent (errors name the party)."""
        try:
            d = json.loads(text)
            s = cls(party=str(d["party"]), rows=int(d["rows"]),
                    kinds={str(k): str(v) for k, v in d["kinds"].items()},
                    levels={str(k): [str(x) for x in v] for k, v in d["levels"].items()},
                    label_levels=[str(x) for x in d["label_levels"]],
                    scale_exp={str(k): int(v) for k, v in d["scale_exp"].items()},
                    integral={str(k): bool(v) for k, v in d["integral"].items()})
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InputError(f"party {party!r}: malformed schema message ({exc})") from None
        if s.rows < 1:
            raise InputError(f"party {party!r}: the table has no rows")
        if any(len(v) > MAX_LEVELS for v in s.levels.values()) or len(s.kinds) > 100_000:
            raise InputError(f"party {party!r}: schema message exceeds the limits")
        if any(not -1100 < e < 1100 for e in s.scale_exp.values()):
            raise InputError(f"party {party!r}: schema message has an out-of-range scale")
        return s


def _feature_columns(pt_: PartyTable, label: str, exclude: Sequence[str],
                     numeric: Sequence[str] | None, categorical: Sequence[str] | None
                     ) -> dict[str, str]:
    cols = pt_.columns
    if label not in cols:
        raise pt_.error(f"label column {label!r} is missing")
    wanted: dict[str, str] = {}
    if numeric is not None or categorical is not None:
        wanted = {c: "numeric" for c in numeric or []}
        wanted.update({c: "categorical" for c in categorical or []})
        for c in wanted:
            if c not in cols:
                raise pt_.error(f"column {c!r} named in the config is missing")
        if numeric is not None and categorical is not None:
            return wanted
    drop = {label, *exclude}
    out: dict[str, str] = {}
    for c in cols:
        if c in drop:
            continue
        # a listed column has its listed kind; the others are inferred from the data
        out[c] = wanted.get(c) or inferred_kind(pt_, c)
    return out


def describe_party(pt_: PartyTable, *, label: str, exclude: Sequence[str] = (),
                   numeric: Sequence[str] | None = None,
                   categorical: Sequence[str] | None = None) -> PartySchema:
    """Step 1 on one party: its schema (see the module docstring)."""
    kinds = _feature_columns(pt_, label, exclude, numeric, categorical)
    levels: dict[str, list[str]] = {}
    scale_exp: dict[str, int] = {}
    integral: dict[str, bool] = {}
    for c, k in kinds.items():
        if k == "categorical":
            values = [v for v in text_values(pt_, c) if v is not None]
            lv = sorted(set(values))
            # decided here, on the party, before its levels (the values) leave the bank
            # (a column the config lists as categorical is taken at its word, up to
            # MAX_LEVELS levels, even if this bank's rows all differ)
            listed = categorical is not None and c in categorical
            if len(lv) > MAX_LEVELS or (not listed and len(values) > ID_LIKE_ROWS
                                        and len(lv) == len(values)):
                why = (f"more than {MAX_LEVELS}" if len(lv) > MAX_LEVELS else
                       f"every one of its {len(values)} values is different")
                raise pt_.error(f"text column {c!r} has {len(lv)} distinct values ({why}): "
                                "it looks like an identifier, and its values would be sent "
                                "to the coordinator as feature names; list it in exclude "
                                f"(or set id = \"{c}\" in the config)", column=c)
            levels[c] = lv
        elif k == "numeric":
            x = numeric_values(pt_, c)
            present = x[~np.isnan(x)]
            if numeric is None or c not in numeric:
                refused = numeric_id_error(pt_, c, present)
                if refused is not None:
                    raise refused
            top = float(np.max(np.abs(present))) if present.size else 0.0
            scale_exp[c] = math.frexp(top)[1] if top > 0 else 0
            integral[c] = bool(np.all(present == np.round(present)))
    return PartySchema(pt_.party, pt_.rows, kinds, levels, label_levels(pt_, label),
                       scale_exp, integral)


@dataclass(frozen=True)
class FeatureSpec:
    """The merged schema: which columns, their scales, levels and the label's event."""

    label: str
    positive: str
    rows: int
    numeric: list[str]
    categorical: dict[str, list[str]]
    scale: dict[str, float]
    integral: dict[str, bool]
    mean: dict[str, float] = field(default_factory=dict)
    sd: dict[str, float] = field(default_factory=dict)
    present: dict[str, float] = field(default_factory=dict)
    var: dict[str, float] = field(default_factory=dict)
    grid: dict[str, list[float]] = field(default_factory=dict)
    positive_rate: float = 0.5

    def to_json(self) -> str:
        """Canonical JSON (sent to every party with the statistic requests)."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> FeatureSpec:
        """Inverse of :meth:`to_json`."""
        try:
            d = json.loads(text)
            return cls(**d)
        except (ValueError, TypeError) as exc:
            raise InputError(f"malformed feature spec ({exc})") from None


def merge_schemas(schemas: Mapping[str, PartySchema], *, label: str,
                  positive: str | int | bool | None) -> FeatureSpec:
    """Check every party has the same features of the same kinds, and merge them.

    Raises
    ------
    InputError
        A party lacks a column the others have (or has one they lack), a column's kind
        differs between parties, or the label is unusable; the message names the party.
    """
    names = list(schemas)
    union: dict[str, set[str]] = {}
    for p, s in schemas.items():
        for c in s.kinds:
            union.setdefault(c, set()).add(p)
    for c, having in union.items():  # a column few parties have: blame those parties
        if 2 * len(having) < len(names):
            holders = [p for p in names if p in having]
            others = [p for p in names if p not in having]
            raise InputError(f"party {holders[0]!r}: extra column {c!r} (not at "
                             f"{', '.join(others)}); every party needs the same columns "
                             "(list it in exclude or drop it)")
    for p, s in schemas.items():
        missing = sorted(c for c in union if c not in s.kinds)
        if missing:
            others = sorted(union[missing[0]])
            raise InputError(f"party {p!r}: missing column {missing[0]!r} (present at "
                             f"{', '.join(others)}); every party needs the same columns")
    kinds: dict[str, str] = {}
    for c in union:
        seen = {p: schemas[p].kinds[c] for p in names if schemas[p].kinds[c] != "empty"}
        distinct = set(seen.values())
        if len(distinct) > 1:
            text = sorted(p for p, k in seen.items() if k == "categorical")
            num = sorted(p for p, k in seen.items() if k == "numeric")
            raise InputError(f"party {text[0]!r}: column {c!r} holds text there but numbers "
                             f"at {', '.join(num)}; fix the data or list it in numeric/"
                             "categorical")
        kinds[c] = distinct.pop() if distinct else "numeric"
    lv = sorted({x for s in schemas.values() for x in s.label_levels})
    if len(lv) > 2:  # name a party holding a value the others lack
        at = {x: [p for p in names if x in schemas[p].label_levels] for x in lv}
        odd = min(lv, key=lambda x: len(at[x]))
        if len(at[odd]) < len(names):
            raise InputError(f"party {at[odd][0]!r}: label {label!r} has the value {odd!r} "
                             f"(only at {', '.join(at[odd])}); the label must have exactly "
                             f"2 values across all parties, found {len(lv)}: {lv[:10]}")
    pos = choose_positive(lv, positive, label=label)
    numeric = [c for c in union if kinds[c] == "numeric"]
    categorical = {c: sorted({x for s in schemas.values() for x in s.levels.get(c, [])})
                   for c in union if kinds[c] == "categorical"}
    if not numeric and not categorical:
        raise InputError("no feature columns: every column is the label or excluded")
    feature_names(numeric, list(categorical.items()))
    scale = {c: math.ldexp(1.0, max(s.scale_exp.get(c, 0) for s in schemas.values()))
             for c in numeric}
    integral = {c: all(s.integral.get(c, True) for s in schemas.values()) for c in numeric}
    rows = sum(s.rows for s in schemas.values())
    return FeatureSpec(label, pos, rows, numeric, categorical, scale, integral)


def _numeric(pt_: PartyTable, spec: FeatureSpec) -> list[FloatArray]:
    return [numeric_values(pt_, c) / spec.scale[c] for c in spec.numeric]


def moments_vector(pt_: PartyTable, spec: FeatureSpec) -> FloatArray:
    """Step 2 on one party: ``[present, sum x/s, sum (x/s)^2]`` per column and the label
    events, all divided by the global row count."""
    n = float(spec.rows)
    out: list[float] = []
    for x in _numeric(pt_, spec):
        v = x[~np.isnan(x)]
        out += [v.size / n, float(v.sum()) / n, float(np.dot(v, v)) / n]
    out.append(float(encode_label(pt_, spec.label, spec.positive).sum()) / n)
    return np.asarray(out, dtype=np.float64)


def apply_moments(spec: FeatureSpec, total: FloatArray) -> FeatureSpec:
    """Global means, (approximate) standard deviations and presence from step 2's sum."""
    t = np.asarray(total, dtype=np.float64)
    expected = 3 * len(spec.numeric) + 1
    if t.shape != (expected,):
        raise InputError(f"moments sum has shape {t.shape}, expected ({expected},)")
    mean, sd, present = {}, {}, {}
    for i, c in enumerate(spec.numeric):
        frac, s1, s2 = (float(v) for v in t[3 * i: 3 * i + 3])
        present[c] = min(max(frac, 0.0), 1.0)
        if present[c] * spec.rows < 0.5:
            mean[c], sd[c] = 0.0, 1.0
            continue
        m = s1 / frac
        var = max(s2 / frac - m * m, 0.0)
        mean[c] = m * spec.scale[c]
        sd[c] = math.sqrt(var) * spec.scale[c]
    grid = {}
    for c in spec.numeric:
        half = HIST_SPAN * (sd[c] if sd[c] > 0 else max(abs(mean[c]), 1.0) * 1e-6)
        grid[c] = [mean[c] - half, mean[c] + half]
    return FeatureSpec(**{**spec.__dict__, "mean": mean, "sd": sd, "present": present,
                          "grid": grid, "positive_rate": float(min(max(t[-1], 0.0), 1.0))})


def _bucket_exponents(spec: FeatureSpec, c: str) -> int:
    """The exponent just above every ``|x - mean|`` of column ``c`` (``|x|, |mean| <= scale``)."""
    return math.frexp(spec.scale[c])[1] + 1


def centred_vector(pt_: PartyTable, spec: FeatureSpec) -> FloatArray:
    """Step 2b on one party: the first two moments of ``d = x - mean`` about the global
    mean of step 2, split by the power of two of ``|d|``.

    Per column and per bucket ``j`` (rows with ``2**(top-j-1) <= |d| < 2**(top-j)``) it
    sends ``sum d / 2**(top-j)`` and ``sum (d / 2**(top-j))**2``, over ``N``: each entry
    lies in ``[-1, 1]`` and a bucket holding any row sums to at least ``1 / (4 N)``, so the
    fixed-point secure sum keeps the spread of a column whose values are far from zero
    (``1e9 + N(0, 100)``), which ``sum x**2 - (sum x)**2`` loses to cancellation.
    """
    n = float(spec.rows)
    out: list[FloatArray] = []
    for c in spec.numeric:
        x = numeric_values(pt_, c)
        d = x[~np.isnan(x)] - spec.mean[c]
        top = _bucket_exponents(spec, c)
        _, ex = np.frexp(d)
        j = top - ex.astype(np.int64)
        keep = (d != 0) & (j >= 0) & (j < CENTRED_BUCKETS)
        u = np.ldexp(d[keep], -ex[keep])  # |u| in [1/2, 1)
        s1 = np.bincount(j[keep], weights=u, minlength=CENTRED_BUCKETS)
        s2 = np.bincount(j[keep], weights=u * u, minlength=CENTRED_BUCKETS)
        out.append(np.concatenate([s1, s2]) / n)
    return np.concatenate(out) if out else np.zeros(0)


def apply_centred(spec: FeatureSpec, total: FloatArray) -> FeatureSpec:
    """After step 2b: the mean corrected by the centred first moment, the variance from
    the centred second moment, and the histogram grids from that standard deviation."""
    per = 2 * CENTRED_BUCKETS
    mean, sd, var, grid = dict(spec.mean), dict(spec.sd), dict(spec.var), dict(spec.grid)
    for c, block in zip(spec.numeric, _blocks(spec, total, per, "centred"), strict=True):
        m = spec.present[c] * spec.rows
        if m < 0.5:
            continue
        top = _bucket_exponents(spec, c)
        w = np.ldexp(1.0, top - np.arange(CENTRED_BUCKETS))
        n_over_m = spec.rows / m
        s1, s2 = block[:CENTRED_BUCKETS], block[CENTRED_BUCKETS:]
        # a bucket holding a row sums to >= 1/(4N); below 1/(8N) it is the secure sum's
        # noise (CKKS, rounding), which the bucket's weight 4**e would blow up
        live = s2 >= 1.0 / (8.0 * spec.rows)
        delta = float(np.dot(np.where(live, s1, 0.0), w)) * n_over_m
        m2 = float(np.dot(np.where(live, s2, 0.0), w * w)) * n_over_m
        v = max(m2 - delta * delta, 0.0)
        mean[c] = spec.mean[c] + delta
        var[c] = v
        sd[c] = math.sqrt(v)
        half = HIST_SPAN * (sd[c] if sd[c] > 0 else max(abs(mean[c]), 1.0) * 1e-6)
        grid[c] = [mean[c] - half, mean[c] + half]
    return FeatureSpec(**{**spec.__dict__, "mean": mean, "sd": sd, "var": var, "grid": grid})


def _histogram(x: FloatArray, lo: float, hi: float, n: float) -> FloatArray:
    """Fractions of ``x`` in ``HIST_BINS`` equal bins over ``[lo, hi)`` plus two tails."""
    width = (hi - lo) / HIST_BINS
    idx = np.clip(np.floor((x - lo) / width) + 1, 0, HIST_BINS + 1).astype(np.int64)
    return np.bincount(idx, minlength=HIST_BINS + 2).astype(np.float64) / n


def spread_vector(pt_: PartyTable, spec: FeatureSpec) -> FloatArray:
    """Step 3 on one party: per column the centred second moment of ``x / scale`` and a
    histogram on the column's grid (``HIST_BINS`` bins plus two tails), over ``N``."""
    n = float(spec.rows)
    out: list[FloatArray] = []
    for c in spec.numeric:
        x = numeric_values(pt_, c)
        v = x[~np.isnan(x)]
        d = (v - spec.mean[c]) / spec.scale[c]
        lo, hi = spec.grid[c]
        out.append(np.concatenate([[float(np.dot(d, d)) / n], _histogram(v, lo, hi, n)]))
    return np.concatenate(out) if out else np.zeros(0)


def histogram_vector(pt_: PartyTable, spec: FeatureSpec) -> FloatArray:
    """Step 4 on one party: histograms on the narrowed grids (see :func:`narrow_grid`)."""
    n = float(spec.rows)
    out = [np.zeros(0)]
    for c in spec.numeric:
        x = numeric_values(pt_, c)
        lo, hi = spec.grid[c]
        out.append(_histogram(x[~np.isnan(x)], lo, hi, n))
    return np.concatenate(out)


def _blocks(spec: FeatureSpec, total: FloatArray, per: int, what: str) -> list[FloatArray]:
    t = np.asarray(total, dtype=np.float64)
    if t.shape != (per * len(spec.numeric),):
        raise InputError(f"{what} sum has shape {t.shape}, expected ({per * len(spec.numeric)},)")
    return [t[i * per: (i + 1) * per] for i in range(len(spec.numeric))]


def _middle_targets(spec: FeatureSpec, c: str) -> tuple[float, float]:
    """Cumulative fractions at the centres of the two middle present values (ranks
    ``m//2`` and ``m//2 + 1`` of ``m``; the same rank twice for an odd ``m``)."""
    n = float(spec.rows)
    m = max(int(round(spec.present[c] * n)), 1)
    return (((m + 1) // 2) - 0.5) / n, ((m // 2 + 1) - 0.5) / n


def _bin_at(hist: FloatArray, target: float) -> tuple[int, float]:
    """The bin (0 = lower tail) where the cumulative fraction reaches ``target`` and the
    fraction of rows below that bin."""
    cum = np.cumsum(np.maximum(hist, 0.0))
    k = int(min(np.searchsorted(cum, target), HIST_BINS + 1))
    return k, float(cum[k - 1]) if k > 0 else 0.0


def narrow_grid(spec: FeatureSpec, total: FloatArray) -> FeatureSpec:
    """After step 3: exact variances, and each grid narrowed to the bins holding its two
    middle values (one bin for an odd count)."""
    var, grid = dict(spec.var), dict(spec.grid)
    for c, block in zip(spec.numeric, _blocks(spec, total, HIST_BINS + 3, "spread"), strict=True):
        p = spec.present[c]
        if p * spec.rows < 0.5:
            continue
        if c not in var:  # the centred pass (step 2b) already gave it without cancellation
            var[c] = max(float(block[0]) / p, 0.0) * spec.scale[c] ** 2
        lo, hi = spec.grid[c]
        width = (hi - lo) / HIST_BINS
        t1, t2 = _middle_targets(spec, c)
        k1 = min(max(_bin_at(block[1:], t1)[0], 1), HIST_BINS)
        k2 = min(max(_bin_at(block[1:], t2)[0], 1), HIST_BINS)
        grid[c] = [lo + (k1 - 1) * width, lo + k2 * width]
    return FeatureSpec(**{**spec.__dict__, "var": var, "grid": grid})


def _median(spec: FeatureSpec, c: str, hist: FloatArray) -> float:
    lo, hi = spec.grid[c]
    integral = spec.integral.get(c, False)

    def at(target: float) -> float:
        k, below = _bin_at(hist, target)
        if k == 0:
            v = lo
        elif k >= HIST_BINS + 1:
            v = hi
        else:
            inside = float(hist[k])
            frac = (target - below) / inside if inside > 0 else 0.5
            v = lo + (k - 1 + min(max(frac, 0.0), 1.0)) * (hi - lo) / HIST_BINS
        return float(round(v)) if integral else float(v)

    t1, t2 = _middle_targets(spec, c)
    return at(t1) if t1 == t2 else (at(t1) + at(t2)) / 2.0


def fit_transform_spec(spec: FeatureSpec, total: FloatArray) -> Transform:
    """The final :class:`Transform` from step 4's sum (histograms on narrowed grids)."""
    numeric: list[tuple[str, float, float, float]] = []
    for c, hist in zip(spec.numeric, _blocks(spec, total, HIST_BINS + 2, "histogram"),
                       strict=True):
        p = spec.present[c]
        if p * spec.rows < 0.5:
            numeric.append((c, 0.0, 0.0, 1.0))
            continue
        med = _median(spec, c, hist)
        mu = spec.mean[c]
        mean_imp = p * mu + (1 - p) * med
        var_imp = p * (spec.var[c] + (mu - mean_imp) ** 2) + (1 - p) * (med - mean_imp) ** 2
        sd = math.sqrt(var_imp)
        numeric.append((c, med, mean_imp, sd if sd > 1e-12 * max(abs(mean_imp), 1.0) else 1.0))
    cats = [(c, list(v)) for c, v in spec.categorical.items()]
    return Transform(spec.label, spec.positive, numeric, cats, spec.positive_rate)


@dataclass(frozen=True)
class Transform:
    """Median imputation, standardisation and one-hot encoding with global parameters.

    ``numeric`` holds ``(column, median, mean, sd)``; ``categorical`` holds
    ``(column, levels)``. Feature order: numeric columns, then each level of each text
    column; the model adds an intercept.
    """

    label: str
    positive: str
    numeric: list[tuple[str, float, float, float]]
    categorical: list[tuple[str, list[str]]]
    positive_rate: float = 0.5

    def __post_init__(self) -> None:
        self.feature_names  # noqa: B018 (two features of one name raise)

    @property
    def feature_names(self) -> list[str]:
        """Names of the model's input columns."""
        return feature_names([c for c, *_ in self.numeric], self.categorical)

    def to_json(self) -> str:
        """Canonical JSON (sent to every party)."""
        return json.dumps({"label": self.label, "positive": self.positive,
                           "numeric": [list(x) for x in self.numeric],
                           "categorical": [[c, lv] for c, lv in self.categorical],
                           "positive_rate": self.positive_rate}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Transform:
        """Inverse of :meth:`to_json`."""
        try:
            d = json.loads(text)
            return cls(str(d["label"]), str(d["positive"]),
                       [(str(c), float(m), float(mu), float(sd)) for c, m, mu, sd in d["numeric"]],
                       [(str(c), [str(x) for x in lv]) for c, lv in d["categorical"]],
                       float(d.get("positive_rate", 0.5)))
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"malformed preprocessing spec ({exc})") from None

    @property
    def digest(self) -> str:
        """SHA-256 of the canonical JSON (stamped into ledgers and results)."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    def features(self, pt_: PartyTable) -> FloatArray:
        """The model's input matrix for a table (rows x features, float64)."""
        cols: list[FloatArray] = []
        for c, med, mu, sd in self.numeric:
            if c not in pt_.columns:
                raise pt_.error(f"column {c!r} is missing")
            x = numeric_values(pt_, c)
            x = np.where(np.isnan(x), med, x)
            cols.append((x - mu) / sd)
        for c, levels in self.categorical:
            if c not in pt_.columns:
                raise pt_.error(f"column {c!r} is missing")
            values = text_values(pt_, c)
            index = {lv: j for j, lv in enumerate(levels)}
            onehot = np.zeros((pt_.rows, len(levels)))
            rows = [(i, index[v]) for i, v in enumerate(values) if v in index]
            if rows:
                r, k = zip(*rows, strict=True)
                onehot[list(r), list(k)] = 1.0
            cols.extend(onehot.T)
        if not cols:
            return np.zeros((pt_.rows, 0))
        return np.column_stack(cols).astype(np.float64)

    def labels(self, pt_: PartyTable) -> FloatArray:
        """The label as 0/1 (1 = ``positive``)."""
        return encode_label(pt_, self.label, self.positive)


def as_float_list(values: Any) -> list[float]:
    """A JSON-friendly list of floats."""
    return [float(v) for v in np.asarray(values, dtype=np.float64).ravel()]
