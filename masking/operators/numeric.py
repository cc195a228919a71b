"""Numeric operators: ``round`` (to a multiple or to digits), ``top_bottom`` coding and
``noise`` (differential privacy: clamp to declared bounds, then OpenDP's Laplace
mechanism with fresh randomness every run).

Text columns (CSV) are parsed as numbers; text that is not a number is invalid (the
rule's ``on_invalid`` decides). Result types depend on the options and the input type
only (so every batch of a stream agrees): ``round`` gives ``int64`` when rounding to a
whole multiple or to ``digits <= 0``; ``top_bottom`` keeps integer columns ``int64``;
everything else is ``float64``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from masking.operators._base import (
    BoolArray,
    OpContext,
    Operator,
    OpResult,
    OptionError,
    parse_numbers,
)

__all__ = ["Round", "TopBottom", "Noise", "laplace_noise"]


def _column(x: npt.NDArray[np.float64], ok: BoolArray, integral: bool) -> pa.Array:
    """The result column; its type depends on the options only (never on the data), so
    every batch of a stream gets the same type."""
    mask = ~ok
    if integral:
        safe = ok & (np.abs(x) < 2**63)
        return pa.array(np.where(safe, x, 0).astype(np.int64), mask=~safe)
    return pa.array(np.where(ok, x, 0.0), type=pa.float64(), mask=mask)


def _result(out: pa.Array, ok: BoolArray, null: BoolArray) -> OpResult:
    bad = ~ok & ~null
    return OpResult(out, bad if bad.any() else None, "not a number")


@dataclass(frozen=True)
class Round(Operator):
    """Round to a multiple (``to: 1000``) or to decimal ``digits`` (``-3`` = thousands).

    Parameters
    ----------
    to:
        Round to the nearest multiple of this (> 0).
    digits:
        Decimal digits kept (used when ``to`` is not given; default 0).
    """

    name = "round"
    to: float | None = None
    digits: int = 0

    def __post_init__(self) -> None:
        if self.to is not None:
            self.check(self.to > 0, "to", "must be > 0")

    def apply(self, values: pa.Array, ctx: OpContext) -> OpResult:
        x, ok, null = parse_numbers(values)
        if self.to is not None:
            y = np.round(x / self.to) * self.to
            integral = float(self.to).is_integer()
        else:
            y = np.round(x, self.digits)
            integral = self.digits <= 0
        return _result(_column(y, ok, integral), ok, null)


@dataclass(frozen=True)
class TopBottom(Operator):
    """Top and bottom coding: values above ``top`` become ``top``, below ``bottom``
    become ``bottom`` (rare extremes are the easiest to re-identify).

    Parameters
    ----------
    bottom, top:
        The bounds; at least one.
    """

    name = "top_bottom"
    bottom: float | None = None
    top: float | None = None

    def __post_init__(self) -> None:
        self.check(self.bottom is not None or self.top is not None, "top", "give top or bottom")
        if self.bottom is not None and self.top is not None:
            self.check(self.bottom <= self.top, "top", "must be >= bottom")

    def apply(self, values: pa.Array, ctx: OpContext) -> OpResult:
        x, ok, null = parse_numbers(values)
        lo = -np.inf if self.bottom is None else self.bottom
        hi = np.inf if self.top is None else self.top
        integral = pa.types.is_integer(values.type)
        return _result(_column(np.clip(x, lo, hi), ok, integral), ok, null)


# Laplace noise through OpenDP: options that must not be given, and why.
_REFUSED = {
    "seed": "refused: a fixed seed makes the noise reproducible, and the seed travels with "
            "the output (its column plan), so anyone who reads it regenerates the noise and "
            "subtracts it exactly; every release draws fresh randomness from the operating "
            "system. Remove 'seed'",
    "sensitivity": "refused: the sensitivity is upper - lower, from the declared bounds (values "
                   "are clamped to them first), so it cannot be understated. Remove "
                   "'sensitivity' and declare 'lower' and 'upper'",
}
_CHUNK = 65_536  # values per OpenDP call (bounds the Python lists it takes)
_GRID_BITS = 40  # noise granularity 2^k with k = floor(log2(scale)) - 40


@lru_cache(maxsize=64)
def _laplace(n: int, span: float, epsilon: float) -> Any:
    """An OpenDP Laplace measurement over ``n`` floats whose privacy loss for an L1 change
    of ``span`` (one value moved across the bounds) is at most ``epsilon``."""
    import opendp.prelude as dp

    dp.enable_features("contrib")  # make_laplace is in OpenDP's contrib set
    space = (dp.vector_domain(dp.atom_domain(T=float, nan=False), size=n),
             dp.l1_distance(T=float))
    scale = span / epsilon
    k = math.floor(math.log2(scale)) - _GRID_BITS
    for _ in range(8):  # OpenDP rounds its map up (discretisation); widen until it fits
        meas = space >> dp.m.then_laplace(scale=scale, k=k)
        if meas.check(span, epsilon):
            return meas
        scale *= (meas.map(span) / epsilon) * (1 + 2.0**-30)
    raise AssertionError(f"no Laplace scale found for span {span} and epsilon {epsilon}")


def laplace_noise(x: npt.NDArray[np.float64], lower: float, upper: float,
                  epsilon: float) -> npt.NDArray[np.float64]:
    """``x`` clamped to ``[lower, upper]`` plus Laplace noise from OpenDP, calibrated so
    that changing any one value costs at most ``epsilon`` (scale ``(upper-lower)/epsilon``,
    a hair wider for OpenDP's discretisation). Fresh randomness on every call."""
    clamped = np.clip(x, lower, upper)
    out = np.empty(len(x), dtype=np.float64)
    for start in range(0, len(x), _CHUNK):
        part = clamped[start:start + _CHUNK]
        meas = _laplace(len(part), upper - lower, epsilon)
        out[start:start + len(part)] = meas(part.tolist())
    return out


@dataclass(frozen=True)
class Noise(Operator):
    """Differential privacy per value: clamp to ``[lower, upper]``, then add Laplace noise
    of scale ``(upper - lower) / epsilon`` drawn by OpenDP (discrete sampling, immune to
    the floating-point attacks on naive Laplace), from fresh system randomness each run.

    What ``epsilon`` protects: any one row's value in this column, for this release
    (neighbouring tables differ in one value within the bounds). Privacy loss adds up
    across noise columns and releases of the same rows; ``covault mask apply`` records
    each release's epsilon in the ledger and enforces the policy's ``dp.budget``.

    Parameters
    ----------
    epsilon:
        Privacy loss of one release of this column (> 0); smaller is noisier. Required.
    lower, upper:
        Bounds the values are clamped to before noise (``lower < upper``); their spread is
        the sensitivity. Required: without them no finite epsilon holds.

    Notes
    -----
    There is no ``seed`` and no keyed stream: a reproducible noise stream can be
    subtracted by whoever learns its seed or sees two releases. Nulls stay null (whether
    a value is present is not protected). Output is ``float64``.
    """

    name = "noise"
    deterministic = False
    epsilon: float | None = None
    lower: float | None = None
    upper: float | None = None

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None = None) -> Noise:
        for key in _REFUSED:  # seed first: the worse of the two
            if key in (options or {}):
                raise OptionError(key, f"operator 'noise': option {key!r}: {_REFUSED[key]}")
        return super().from_options(options)

    def __post_init__(self) -> None:
        self.check(self.epsilon is not None, "epsilon",
                   "required: the privacy loss of one release (e.g. epsilon: 1.0)")
        assert self.epsilon is not None
        self.check(math.isfinite(self.epsilon) and self.epsilon > 0, "epsilon",
                   "must be a finite number > 0")
        for bound in ("lower", "upper"):
            value = getattr(self, bound)
            self.check(value is not None, bound,
                       "required: noise needs both bounds, 'lower' and 'upper' (values are "
                       "clamped to them, and upper - lower is the sensitivity)")
            self.check(math.isfinite(value), bound, "must be a finite number")
        assert self.lower is not None and self.upper is not None
        self.check(self.lower < self.upper, "upper", "must be > lower")
        self.check(math.isfinite(self.upper - self.lower), "upper",
                   "upper - lower must be a finite number")

    @property
    def scale(self) -> float:
        """The nominal Laplace scale, ``(upper - lower) / epsilon``."""
        assert self.epsilon is not None and self.lower is not None and self.upper is not None
        return (self.upper - self.lower) / self.epsilon

    def apply(self, values: pa.Array, ctx: OpContext) -> OpResult:
        assert self.epsilon is not None and self.lower is not None and self.upper is not None
        x, ok, null = parse_numbers(values)
        ok = ok & ~np.isnan(x)  # NaN has no place within the bounds: invalid
        x = np.where(ok, x, self.lower)
        noisy = laplace_noise(x, self.lower, self.upper, self.epsilon)
        return _result(_column(noisy, ok, False), ok, null)
