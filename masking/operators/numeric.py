"""Numeric operators: ``round`` (to a multiple or to digits), ``top_bottom`` coding and
``noise`` (Laplace, with a stated epsilon and sensitivity).

Text columns (CSV) are parsed as numbers; text that is not a number is invalid (the
rule's ``on_invalid`` decides). Result types depend on the options and the input type
only (so every batch of a stream agrees): ``round`` gives ``int64`` when rounding to a
whole multiple or to ``digits <= 0``; ``top_bottom`` keeps integer columns ``int64``;
everything else is ``float64``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from masking.operators._base import BoolArray, OpContext, Operator, OpResult, parse_numbers
from privacy.fields import Tokenizer

__all__ = ["Round", "TopBottom", "Noise"]


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


@dataclass(frozen=True)
class Noise(Operator):
    """Add Laplace noise of scale ``sensitivity / epsilon`` to each value.

    The random stream is, in order of preference: seeded by ``seed`` (reproducible, for
    tests); derived from an HMAC keyset, the column context and the row position
    (reproducible by key holders, unpredictable to others); or fresh OS randomness.

    Parameters
    ----------
    epsilon:
        Privacy parameter (> 0); smaller is noisier.
    sensitivity:
        How much one person can change a value (> 0), e.g. a cap on income.
    seed:
        Fixed seed (tests and demos only).

    Warnings
    --------
    This is per-value (local) noise: epsilon holds per value and per release; repeated
    releases with fresh randomness add up. Bound the values first (``top_bottom``) so
    that ``sensitivity`` is true.
    """

    name = "noise"
    templates = ("HMAC_SHA256", "HMAC_SM3")
    key_required = False
    deterministic = False
    epsilon: float = 1.0
    sensitivity: float = 1.0
    seed: int | None = None

    def __post_init__(self) -> None:
        self.check(self.epsilon > 0, "epsilon", "must be > 0")
        self.check(self.sensitivity > 0, "sensitivity", "must be > 0")

    def _rng(self, ctx: OpContext) -> np.random.Generator:
        if self.seed is not None:
            return np.random.default_rng([self.seed, ctx.row_offset])
        held = [t for t in self.templates if t in ctx.keys.templates]
        if held:
            ks = ctx.keys.get(self.templates, operator=self.name, column=ctx.column)
            token = Tokenizer(ks).encrypt(f"noise@{ctx.row_offset}", ctx.context)
            return np.random.default_rng(int.from_bytes(token.encode("ascii"), "big"))
        return np.random.default_rng(secrets.randbits(128))

    def apply(self, values: pa.Array, ctx: OpContext) -> OpResult:
        x, ok, null = parse_numbers(values)
        noisy = x + self._rng(ctx).laplace(0.0, self.sensitivity / self.epsilon, len(x))
        return _result(_column(noisy, ok, False), ok, null)
