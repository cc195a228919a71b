"""Global bins for the trees, from a mergeable sketch that every party contributes.

The sketch of a numeric column is a histogram of the party's training rows on a fine
grid of ``SKETCH_BINS`` equal cells over ``mean +- 6 sd`` (the global moments and the
centred pass of ``federated.preprocess``, summed securely before the sketch) plus one
cell for each tail. Histograms merge by addition, so the coordinator learns only the
*global* histogram (the secure sum of the parties' ones), never a party's. It places up
to ``max_bins - 1`` cuts on cell edges at the global quantiles ``k / max_bins`` and
drops every cut that would leave a bin without rows: each bin holds training rows, as
each bin of a pooled XGBoost does.

A row's code is ``1 + (number of cuts <= x)`` (``1..bins``), 0 when the value is missing.
A categorical column has one code per level of the union of every party's levels (as the
LR preprocessing), 0 for missing and unseen values.

Warnings
--------
Besides the preprocessing's disclosures, the coordinator learns each numeric column's
global histogram on the fine grid (counts of training rows per cell) and the global
counts of training and validation rows and events. Values beyond ``mean +- 6 sd`` share
a tail cell: the bins cannot separate them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from federated.data import MAX_LEVELS, PartyTable, feature_names, numeric_values, text_values
from federated.preprocess import FeatureSpec
from federated.trees.booster import Layout
from privacy.errors import InputError

__all__ = ["SKETCH_BINS", "Binner", "grid_edges", "sketch_vector", "binner_from_sketch",
           "local_binner", "validation_mask"]

SKETCH_BINS = 2048
_PARSED: dict[str, Binner] = {}

FloatArray = npt.NDArray[np.float64]


def grid_edges(lo: float, hi: float) -> FloatArray:
    """The ``SKETCH_BINS + 1`` edges of the sketch grid (the same floats on every party):
    edge ``j`` separates cell ``j`` from cell ``j + 1``; cell 0 is the lower tail."""
    return lo + (hi - lo) / SKETCH_BINS * np.arange(SKETCH_BINS + 1, dtype=np.float64)


def validation_mask(rows: int, fraction: float, *, seed: int, party: str) -> npt.NDArray[np.bool_]:
    """Which of a party's rows are held out for validation (reproducible from the seed
    and the party's name, so a pooled reference can rebuild the same split)."""
    digest = hashlib.sha256(f"covault-gbdt-validation:{seed}:{party}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "big"))
    return rng.random(rows) < fraction


def sketch_vector(pt: PartyTable, spec: FeatureSpec, train: npt.NDArray[np.bool_],
                  y: FloatArray) -> FloatArray:
    """One party's sketch: per numeric column the counts of its training rows in the
    ``SKETCH_BINS + 2`` cells of the column's grid, then ``[training rows, validation
    rows, training events, validation events]``.

    Raises
    ------
    InputError
        A feature column has no value at this party (all null); the message names the
        party and the column.
    """
    out: list[FloatArray] = []
    for c in spec.numeric:
        x = numeric_values(pt, c)
        if not np.any(~np.isnan(x)):
            raise pt.error(f"feature column {c!r} has no values here (all null): the trees "
                           "cannot use it; list it in exclude", column=c)
        v = x[train & ~np.isnan(x)]
        lo, hi = spec.grid[c]
        edges = grid_edges(lo, hi)
        cell = np.searchsorted(edges, v, side="right")  # 0 = below lo, SKETCH_BINS+1 above hi
        out.append(np.bincount(cell, minlength=SKETCH_BINS + 2).astype(np.float64))
    for c in spec.categorical:
        vals = text_values(pt, c)
        if all(v is None for v in vals):
            raise pt.error(f"feature column {c!r} has no values here (all null): the trees "
                           "cannot use it; list it in exclude", column=c)
    valid = ~train
    out.append(np.array([train.sum(), valid.sum(), y[train].sum(), y[valid].sum()],
                        dtype=np.float64))
    return np.concatenate(out)


@dataclass(frozen=True)
class Binner:
    """Cuts of the numeric columns and levels of the categorical ones."""

    numeric: list[str]
    cuts: list[list[float]]
    categorical: list[str]
    levels: list[list[str]]

    def __post_init__(self) -> None:
        # two features of one name raise
        feature_names(self.numeric, list(zip(self.categorical, self.levels, strict=False)))

    def _layout(self) -> Layout:
        """The binned columns (numeric first) as the booster sees them."""
        return Layout(self.numeric + self.categorical,
                      [len(c) + 1 for c in self.cuts] + [len(lv) for lv in self.levels],
                      [False] * len(self.numeric) + [True] * len(self.categorical),
                      dict(zip(self.categorical, self.levels, strict=True)))

    def to_json(self) -> str:
        """Canonical JSON (floats round-trip exactly)."""
        if "_json" not in self.__dict__:  # frozen: cache beside the fields
            self.__dict__["_json"] = json.dumps(
                {"categorical": self.categorical, "cuts": self.cuts, "levels": self.levels,
                 "numeric": self.numeric}, sort_keys=True)
        return str(self.__dict__["_json"])

    @classmethod
    def from_json(cls, text: str) -> Binner:
        """Inverse of :meth:`to_json`, with bounds checked (parsed once per process)."""
        key = hashlib.sha256(text.encode()).hexdigest()
        if key not in _PARSED:
            if len(_PARSED) >= 32:
                _PARSED.clear()
            _PARSED[key] = cls._parse(text)
        return _PARSED[key]

    @classmethod
    def _parse(cls, text: str) -> Binner:
        try:
            d = json.loads(text)
            b = cls([str(x) for x in d["numeric"]],
                    [[float(v) for v in c] for c in d["cuts"]],
                    [str(x) for x in d["categorical"]],
                    [[str(v) for v in lv] for lv in d["levels"]])
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"malformed bins ({exc})") from None
        if len(b.cuts) != len(b.numeric) or len(b.levels) != len(b.categorical):
            raise InputError("malformed bins (columns and cuts differ in number)")
        if any(len(c) > 255 or list(c) != sorted(set(c)) for c in b.cuts):
            raise InputError("malformed bins (cuts must be increasing, at most 255)")
        if any(not 1 <= len(lv) <= 60_000 for lv in b.levels):
            raise InputError("malformed bins (a categorical column without levels)")
        return b

    @property
    def digest(self) -> str:
        """SHA-256 of the canonical JSON (every party must hold the same bins)."""
        if "_digest" not in self.__dict__:
            self.__dict__["_digest"] = hashlib.sha256(self.to_json().encode()).hexdigest()
        return str(self.__dict__["_digest"])

    @property
    def layout(self) -> Layout:
        """The binned columns (numeric first) as the booster sees them (cached)."""
        if "_layout" not in self.__dict__:
            self.__dict__["_layout"] = self._layout()
        return self.__dict__["_layout"]  # type: ignore[no-any-return]

    def codes(self, pt: PartyTable) -> npt.NDArray[np.uint16]:
        """The table's rows as bin codes (rows x columns, numeric columns first)."""
        cols: list[npt.NDArray[np.uint16]] = []
        for c, cuts in zip(self.numeric, self.cuts, strict=True):
            if c not in pt.columns:
                raise pt.error(f"column {c!r} is missing")
            x = numeric_values(pt, c)
            code = 1 + np.searchsorted(np.asarray(cuts, dtype=np.float64), x, side="right")
            cols.append(np.where(np.isnan(x), 0, code).astype(np.uint16))
        for c, levels in zip(self.categorical, self.levels, strict=True):
            if c not in pt.columns:
                raise pt.error(f"column {c!r} is missing")
            index = {lv: j + 1 for j, lv in enumerate(levels)}
            cols.append(np.fromiter((index.get(v, 0) if v is not None else 0
                                     for v in text_values(pt, c)), dtype=np.uint16,
                                    count=pt.rows))
        if not cols:
            return np.zeros((pt.rows, 0), dtype=np.uint16)
        return np.column_stack(cols).astype(np.uint16)


def _cuts(counts: FloatArray, lo: float, hi: float, max_bins: int) -> list[float]:
    edges = grid_edges(lo, hi)  # edge j separates cell j (below) from cell j+1
    cum = np.cumsum(np.rint(np.maximum(counts, 0.0)))
    total = cum[-1]
    chosen: list[int] = []
    for k in range(1, max_bins):
        j = int(np.searchsorted(cum, total * k / max_bins, side="left"))
        j = min(j, SKETCH_BINS)
        below = cum[j]
        if below <= 0 or below >= total:
            continue
        if chosen and cum[chosen[-1]] >= below:
            continue
        chosen.append(j)
    return [float(edges[j]) for j in chosen]


def binner_from_sketch(spec: FeatureSpec, total: FloatArray, *, max_bins: int,
                       parties: list[str]) -> tuple[Binner, dict[str, float]]:
    """The bins from the summed sketch, and the global row and event counts.

    Raises
    ------
    InputError
        A column holds a single value (or only one level) at every party: it cannot
        split; the message names the column and the parties.
    """
    per = SKETCH_BINS + 2
    t = np.asarray(total, dtype=np.float64)
    if t.shape != (per * len(spec.numeric) + 4,):
        raise InputError(f"sketch sum has shape {t.shape}, expected "
                         f"({per * len(spec.numeric) + 4},)")
    who = ", ".join(repr(p) for p in parties)
    cuts = []
    for i, c in enumerate(spec.numeric):
        counts = t[i * per: (i + 1) * per]
        if np.count_nonzero(np.rint(counts)) <= 1:
            raise InputError(f"feature column {c!r} holds a single value at every party "
                             f"({who}): it cannot split; list it in exclude")
        lo, hi = spec.grid[c]
        cuts.append(_cuts(counts, lo, hi, max_bins))
    for c, levels in spec.categorical.items():
        if len(levels) < 2:
            raise InputError(f"feature column {c!r} holds a single level at every party "
                             f"({who}): it cannot split; list it in exclude")
    n_train, n_valid, e_train, e_valid = (float(v) for v in np.rint(t[-4:]))
    counts = {"train_rows": n_train, "valid_rows": n_valid, "train_events": e_train,
              "valid_events": e_valid}
    if n_train < 1 or not 0 < e_train < n_train:
        raise InputError("the training rows hold a single label value across all parties")
    binner = Binner(list(spec.numeric), cuts, list(spec.categorical),
                    [list(v) for v in spec.categorical.values()])
    return binner, counts


def local_binner(pt: PartyTable, kinds: dict[str, str], *, max_bins: int) -> Binner:
    """Bins of one party's own columns from its rows (a vertical party bins alone: no
    other party holds its columns).

    A numeric column gets up to ``max_bins`` quantile bins, cut at values its rows hold
    (so every bin holds rows; a column with at most ``max_bins`` distinct values gets a
    bin per value); a categorical column one code per level, sorted (at most
    ``MAX_LEVELS``).

    Raises
    ------
    InputError
        A feature column is all null or holds a single value on these rows (it cannot
        split), or a categorical one has too many levels; the message names the party,
        its file and the column.
    """
    numeric = [c for c, k in kinds.items() if k == "numeric"]
    categorical = [c for c, k in kinds.items() if k != "numeric"]
    cuts: list[list[float]] = []
    for c in numeric:
        x = numeric_values(pt, c)
        v = np.sort(x[~np.isnan(x)])
        distinct = np.unique(v)
        _check_usable(pt, c, distinct.size)
        if distinct.size <= max_bins:
            cut = distinct[1:]
        else:
            q = np.unique(v[(np.arange(1, max_bins) * v.size) // max_bins])
            cut = q[q > v[0]]
        cuts.append([float(a) for a in cut])
    levels: list[list[str]] = []
    for c in categorical:
        values = sorted({str(v) for v in text_values(pt, c) if v is not None})
        _check_usable(pt, c, len(values))
        if len(values) > MAX_LEVELS:
            raise pt.error(f"feature column {c!r} has {len(values)} levels (at most "
                           f"{MAX_LEVELS}): list it in exclude, or as numeric", column=c)
        levels.append(values)
    return Binner(numeric, cuts, categorical, levels)


def _check_usable(pt: PartyTable, column: str, distinct: int) -> None:
    if distinct == 0:
        raise pt.error(f"feature column {column!r} has no values on the training rows (all "
                       "null): the trees cannot use it; list it in exclude", column=column)
    if distinct == 1:
        raise pt.error(f"feature column {column!r} is constant on the training rows: the "
                       "trees cannot split on it; list it in exclude", column=column)


def as_json_counts(counts: dict[str, float]) -> dict[str, Any]:
    """Counts as integers for the result."""
    return {k: int(v) for k, v in counts.items()}
