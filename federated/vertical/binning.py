"""Binning and WOE/IV: each party bins its own columns; only per-bin counts are shared.

Numeric columns get quantile bins (``bins``, default 10, edges from the party's aligned
training rows, repeated edges merged; a column with at most ``bins`` distinct values gets
one bin per value) and one bin for missing values; text columns get one
bin per level (the 49 most frequent, the rest as ``other``) and one for missing values.
With ``pos_b``/``neg_b`` the events/non-events in bin ``b`` and ``P``/``N`` their totals,
``WOE_b = ln(((pos_b + 0.5) / P) / ((neg_b + 0.5) / N))`` and
``IV = sum_b (pos_b / P - neg_b / N) * WOE_b``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from federated.data import PartyTable, numeric_values, text_values

__all__ = ["ColumnBins", "bin_columns", "indicator_matrix", "woe_iv", "iv_strength"]

FloatArray = npt.NDArray[np.float64]
MAX_TEXT_BINS = 50


@dataclass(frozen=True)
class ColumnBins:
    """One column's bins: a label per bin and each row's bin number."""

    column: str
    labels: list[str]
    index: npt.NDArray[np.int64]


def _numeric_bins(c: str, x: FloatArray, bins: int) -> ColumnBins:
    present = x[~np.isnan(x)]
    distinct = np.unique(present)
    if distinct.size <= bins:  # few values (counts, flags): one bin per value
        edges = distinct[1:]
    else:
        edges = np.unique(np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1]))
    idx = np.searchsorted(edges, np.where(np.isnan(x), 0.0, x), side="right").astype(np.int64)
    bounds = [-np.inf, *edges.tolist(), np.inf]
    labels = [f"[{lo:.6g}, {hi:.6g})" for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
    idx[np.isnan(x)] = len(labels)
    return ColumnBins(c, [*labels, "missing"], idx)


def _text_bins(c: str, values: npt.NDArray[np.object_]) -> ColumnBins:
    present = [v for v in values if v is not None]
    levels, counts = np.unique(np.asarray(present, dtype=object).astype(str), return_counts=True)
    order = sorted(range(len(levels)), key=lambda i: (-counts[i], levels[i]))
    keep = [str(levels[i]) for i in order[:MAX_TEXT_BINS - 1]] if len(levels) > MAX_TEXT_BINS \
        else [str(levels[i]) for i in order]
    pos = {lv: i for i, lv in enumerate(keep)}
    other = len(keep)
    labels = keep + (["other"] if len(levels) > len(keep) else [])
    missing = len(labels)
    idx = np.asarray([missing if v is None else pos.get(str(v), other) for v in values],
                     dtype=np.int64)
    return ColumnBins(c, [*labels, "missing"], idx)


def bin_columns(pt_: PartyTable, kinds: dict[str, str], *, bins: int = 10) -> list[ColumnBins]:
    """Bins of each feature column of a (row-aligned) table."""
    out = []
    for c, kind in kinds.items():
        if kind == "numeric":
            out.append(_numeric_bins(c, numeric_values(pt_, c), bins))
        else:
            out.append(_text_bins(c, text_values(pt_, c)))
    return out


def indicator_matrix(columns: list[ColumnBins], rows: npt.NDArray[np.int64]) -> FloatArray:
    """0/1 matrix (rows x all bins, columns in order) marking each row's bin per column."""
    width = sum(len(cb.labels) for cb in columns)
    M = np.zeros((rows.size, width))
    offset = 0
    for cb in columns:
        M[np.arange(rows.size), offset + cb.index[rows]] = 1.0
        offset += len(cb.labels)
    return M


def woe_iv(positives: FloatArray, totals: FloatArray) -> tuple[FloatArray, float]:
    """Per-bin WOE and the column's IV from per-bin event counts and row counts."""
    pos = np.asarray(positives, dtype=np.float64)
    neg = np.asarray(totals, dtype=np.float64) - pos
    P, N = max(pos.sum(), 1.0), max(neg.sum(), 1.0)
    woe = np.log(((pos + 0.5) / P) / ((neg + 0.5) / N))
    iv = float(np.sum((pos / P - neg / N) * woe))
    return woe, iv


def iv_strength(iv: float) -> str:
    """The usual credit-scoring reading of an IV."""
    if iv < 0.02:
        return "not predictive"
    if iv < 0.1:
        return "weak"
    if iv < 0.3:
        return "medium"
    return "strong" if iv <= 0.5 else "suspiciously strong (check for leakage)"
