"""Operators that keep, drop or replace a column wholesale: keep, drop, redact, null,
constant."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from masking.operators._base import OpContext, Operator, OpResult

__all__ = ["Keep", "Drop", "Redact", "Null", "Constant"]


@dataclass(frozen=True)
class Keep(Operator):
    """Pass the column through unchanged.

    Warnings
    --------
    ``keep`` releases the values as they are: use it only for columns that hold no
    personal information, or that the recipient may see in full.
    """

    name = "keep"
    reads_values = False

    def apply(self, values: pa.Array, ctx: OpContext) -> OpResult:
        return OpResult(values)


@dataclass(frozen=True)
class Drop(Operator):
    """Remove the column from the output (the engine does the removal)."""

    name = "drop"
    reads_values = False
    drops = True

    def apply(self, values: pa.Array, ctx: OpContext) -> OpResult:
        return OpResult(values)


@dataclass(frozen=True)
class Redact(Operator):
    """Replace every non-null value with ``replacement``; nulls stay null.

    Parameters
    ----------
    replacement:
        The text written instead of each value (default ``"******"``).
    """

    name = "redact"
    reads_values = False
    replacement: str = "******"

    def apply(self, values: pa.Array, ctx: OpContext) -> OpResult:
        filled = pa.scalar(self.replacement, pa.string())
        out = pc.if_else(values.is_valid(), filled, pa.scalar(None, pa.string()))
        return OpResult(out)


@dataclass(frozen=True)
class Null(Operator):
    """Replace every value with null; the column keeps its type."""

    name = "null"
    reads_values = False
    keeps_nulls = False

    def apply(self, values: pa.Array, ctx: OpContext) -> OpResult:
        return OpResult(pa.nulls(len(values), values.type))


@dataclass(frozen=True)
class Constant(Operator):
    """Replace every value (nulls included) with one constant.

    Parameters
    ----------
    value:
        The constant; text, number or boolean. Required.
    """

    name = "constant"
    reads_values = False
    keeps_nulls = False
    value: str | int | float | bool | None = None

    def __post_init__(self) -> None:
        self.check(self.value is not None, "value", "is required (the constant to write)")
        if isinstance(self.value, int) and not isinstance(self.value, bool):
            self.check(-(2**63) <= self.value < 2**63, "value",
                       f"{self.value} does not fit a 64-bit integer column "
                       "(quote it to write it as text)")

    def apply(self, values: pa.Array, ctx: OpContext) -> OpResult:
        scalar: Any = pa.scalar(self.value)
        if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
            scalar = pa.scalar(str(self.value), pa.string())
        return OpResult(pa.repeat(scalar, len(values)))
