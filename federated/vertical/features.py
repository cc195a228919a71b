"""One party's features in a vertical run: fitted on its own aligned training rows.

Each party holds different columns of the same customers, so each fits its own
preprocessing on its own rows -- the same :class:`~federated.preprocess.Transform` as a
horizontal run (median imputation, standardisation, one-hot encoding) -- and nothing about
it leaves the party. On top, :class:`Whitening` rotates the party's block to
uncorrelated unit-variance components (``W = V diag(1/sqrt(lambda))`` from the block's
covariance, directions with ``lambda <= 1e-9 * max`` dropped). It is a change of basis
within the party, so the joint model spans the same functions; it makes the encrypted
gradient descent converge in a few epochs (each block's Hessian becomes the identity).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from federated.data import MAX_LEVELS, PartyTable, inferred_kind, numeric_values, text_values
from federated.preprocess import Transform, numeric_id_error
from privacy.errors import InputError

__all__ = ["fit_transform", "Whitening", "take_rows", "feature_kinds"]

FloatArray = npt.NDArray[np.float64]


def take_rows(pt_: PartyTable, rows: npt.NDArray[np.int64]) -> PartyTable:
    """The table restricted to ``rows`` (in that order); its errors name the file's rows
    (and lines)."""
    import pyarrow as pa

    source = (np.arange(pt_.rows, dtype=np.int64) if pt_.source_rows is None
              else np.asarray(pt_.source_rows, dtype=np.int64))
    return PartyTable(pt_.party, pt_.path, pt_.table.take(pa.array(rows, type=pa.int64())),
                      csv_rows=pt_.csv_rows, source_rows=source[np.asarray(rows, dtype=np.int64)])


def feature_kinds(pt_: PartyTable, *, exclude: list[str], numeric: list[str] | None,
                  categorical: list[str] | None) -> dict[str, str]:
    """Column -> ``numeric``/``categorical`` for the party's feature columns (listed kinds
    win; the rest inferred from the Arrow type)."""
    listed = {c: "numeric" for c in numeric or []}
    listed.update({c: "categorical" for c in categorical or []})
    for c in listed:
        if c not in pt_.columns:
            raise pt_.error(f"column {c!r} named in the config is missing")
    out = {}
    for c in pt_.columns:
        if c in exclude:
            continue
        out[c] = listed.get(c) or inferred_kind(pt_, c)
        if c not in listed and out[c] == "numeric":  # a second id column is no feature
            refused = numeric_id_error(pt_, c)
            if refused is not None:
                raise refused
    if not out:
        raise pt_.error("no feature columns (every column is the id, the label or excluded)")
    return out


def fit_transform(pt_: PartyTable, kinds: dict[str, str], *, label: str = "",
                  positive: str = "") -> Transform:
    """Fit imputation, scaling and levels on the party's own rows.

    Raises
    ------
    InputError
        A feature column is all missing, constant, or has more than ``MAX_LEVELS``
        levels; the message names the party and the column.
    """
    numeric: list[tuple[str, float, float, float]] = []
    cats: list[tuple[str, list[str]]] = []
    for c, kind in kinds.items():
        if kind == "numeric":
            x = numeric_values(pt_, c)
            present = x[~np.isnan(x)]
            if present.size == 0:
                raise pt_.error("feature column is empty on the aligned rows (all values "
                                "missing): exclude it", column=c)
            med = float(np.median(present))
            filled = np.where(np.isnan(x), med, x)
            mu, sd = float(filled.mean()), float(filled.std())
            if not sd > 1e-12 * max(abs(mu), 1.0):
                raise pt_.error(f"feature column is constant ({float(present[0]):g}) on the "
                                "aligned rows: exclude it", column=c)
            numeric.append((c, med, mu, sd))
        else:
            values = text_values(pt_, c)
            levels = sorted({v for v in values if v is not None})
            if not levels:
                raise pt_.error("feature column is empty on the aligned rows (all values "
                                "missing): exclude it", column=c)
            if len(levels) > MAX_LEVELS:
                raise pt_.error(f"{len(levels)} distinct values (at most {MAX_LEVELS} for a "
                                "categorical column): list it in numeric or exclude it",
                                column=c)
            if len(levels) == 1 and all(v is not None for v in values):
                raise pt_.error(f"feature column is constant ({levels[0]!r}) on the aligned "
                                "rows: exclude it", column=c)
            cats.append((c, levels))
    return Transform(label, positive, numeric, cats)


@dataclass(frozen=True)
class Whitening:
    """``X -> (X - mean) @ W``: the party's block as uncorrelated unit-variance columns."""

    mean: FloatArray
    W: FloatArray

    @classmethod
    def fit(cls, X: FloatArray) -> Whitening:
        """From the party's training matrix (rows x features)."""
        mean = X.mean(axis=0)
        C = np.cov(X - mean, rowvar=False, bias=True) if X.shape[1] > 1 else np.atleast_2d(
            np.var(X - mean, axis=0))
        vals, vecs = np.linalg.eigh(np.atleast_2d(C))
        keep = vals > 1e-9 * max(float(vals.max()), 1e-300)
        if not np.any(keep):
            raise InputError("the party's features have no variance on the aligned rows")
        return cls(mean, vecs[:, keep] / np.sqrt(vals[keep]))

    @property
    def width(self) -> int:
        """Number of output components."""
        return int(self.W.shape[1])

    def apply(self, X: FloatArray) -> FloatArray:
        """Whitened rows."""
        return np.asarray((X - self.mean) @ self.W, dtype=np.float64)

    def to_json(self) -> str:
        """For the party's model file."""
        return json.dumps({"mean": self.mean.tolist(), "W": self.W.tolist()})

    @classmethod
    def from_json(cls, text: str) -> Whitening:
        """Inverse of :meth:`to_json`."""
        d: dict[str, Any] = json.loads(text)
        return cls(np.asarray(d["mean"], dtype=np.float64), np.asarray(d["W"], dtype=np.float64))
