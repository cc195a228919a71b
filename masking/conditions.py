"""Row-filter conditions: ``and`` / ``or`` / ``not`` over comparisons of column values.

A policy's ``row_filter`` keeps the rows for which its condition is true; a comparison
with a null value is false (so ``not`` of it is true), as in most query languages.

.. code-block:: yaml

    row_filter:
      and:
        - {column: status, ne: closed}
        - or:
            - {column: city, in: [北京, 上海]}
            - {column: income, ge: 100000}
        - not: {column: email, is_null: true}

Comparisons: ``eq ne lt le gt ge`` (numbers compare numerically, also on text
columns), ``in`` / ``not_in`` (lists), ``is_null`` (true/false), ``matches`` (an RE2
regular expression searched in the text).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from masking.coltypes import is_nested
from privacy.errors import PolicyError

__all__ = ["Condition", "COMPARISONS", "check_regex"]

Scalar = str | int | float | bool
COMPARISONS = ("eq", "ne", "lt", "le", "gt", "ge", "in_", "not_in", "is_null", "matches")
_FUNCS = {
    "eq": pc.equal, "ne": pc.not_equal, "lt": pc.less, "le": pc.less_equal,
    "gt": pc.greater, "ge": pc.greater_equal,
}


class Condition(BaseModel):
    """One node of a row filter: a combination (``and``/``or``/``not``) or a comparison
    of one ``column`` with exactly one operator."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    and_: list[Condition] | None = Field(None, alias="and")
    or_: list[Condition] | None = Field(None, alias="or")
    not_: Condition | None = Field(None, alias="not")
    column: str | None = None
    eq: Scalar | None = None
    ne: Scalar | None = None
    lt: float | str | None = None
    le: float | str | None = None
    gt: float | str | None = None
    ge: float | str | None = None
    in_: list[Scalar] | None = Field(None, alias="in")
    not_in: list[Scalar] | None = None
    is_null: bool | None = None
    matches: str | None = None

    @field_validator("matches")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        """Compile ``matches`` with the engine that runs it (RE2, through Arrow), so that
        ``covault mask check`` refuses a pattern ``apply`` could not use."""
        if v is not None:
            check_regex(v)
        return v

    @model_validator(mode="after")
    def _one_thing(self) -> Condition:
        combos = [n for n in ("and_", "or_", "not_") if getattr(self, n) is not None]
        tests = [n for n in COMPARISONS if getattr(self, n) is not None]
        if combos:
            if len(combos) > 1 or tests or self.column is not None:
                raise ValueError("a condition is one of and / or / not, or one comparison")
            return self
        if self.column is None:
            raise ValueError("a comparison needs 'column' (or use and / or / not)")
        if len(tests) != 1:
            raise ValueError(
                "a comparison needs exactly one of eq, ne, lt, le, gt, ge, in, not_in, "
                f"is_null, matches (found {len(tests)})"
            )
        return self

    def columns(self) -> set[str]:
        """Every column the condition reads."""
        out = {self.column} if self.column else set()
        for sub in (self.and_ or []) + (self.or_ or []) + ([self.not_] if self.not_ else []):
            out |= sub.columns()
        return out

    def evaluate(self, batch: pa.RecordBatch | pa.Table) -> np.ndarray:
        """Boolean numpy mask of the rows for which the condition holds."""
        if self.and_ is not None:
            out = np.ones(batch.num_rows, dtype=bool)
            for sub in self.and_:
                out &= sub.evaluate(batch)
            return out
        if self.or_ is not None:
            out = np.zeros(batch.num_rows, dtype=bool)
            for sub in self.or_:
                out |= sub.evaluate(batch)
            return out
        if self.not_ is not None:
            return ~self.not_.evaluate(batch)
        assert self.column is not None
        if self.column not in batch.schema.names:
            raise PolicyError(f"row_filter names column {self.column!r}, which is not in the input")
        values = batch.column(self.column)
        if is_nested(values.type) and self.is_null is None:  # Arrow: a traceback, exit 1
            raise PolicyError(f"row_filter compares column {self.column!r}, which holds "
                              f"nested values ({values.type}); only is_null applies to it")
        hit = self._compare(values)
        return np.asarray(hit.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)

    def _compare(self, values: Any) -> Any:
        if self.is_null is not None:
            return values.is_null() if self.is_null else values.is_valid()
        if self.matches is not None:
            return pc.match_substring_regex(pc.cast(values, pa.string()), self.matches)
        if self.in_ is not None or self.not_in is not None:
            wanted = self.in_ if self.in_ is not None else self.not_in
            assert wanted is not None
            hit = pc.is_in(_text(values), value_set=pa.array([str(v) for v in wanted]))
            hit = pc.if_else(values.is_valid(), hit, pa.scalar(None, pa.bool_()))
            return hit if self.in_ is not None else pc.invert(hit)
        for name, fn in _FUNCS.items():
            target = getattr(self, name)
            if target is not None:
                return _compare(fn, values, target)
        raise AssertionError("validated condition has no comparison")


def check_regex(pattern: str) -> None:
    """Raise :class:`ValueError` (with RE2's reason) unless ``pattern`` is a regular
    expression Arrow's ``match_substring_regex`` (RE2 syntax) accepts."""
    try:
        pc.match_substring_regex(pa.array([""], pa.string()), pattern)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        reason = str(exc).removeprefix("Invalid regular expression: ")
        raise ValueError(f"not a valid RE2 regular expression {pattern!r}: {reason}") from None


def _text(values: Any) -> Any:
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        return values
    if pa.types.is_floating(values.type):
        return pc.cast(values, pa.string())
    return pc.cast(values, pa.string())


def _compare(fn: Any, values: Any, target: Any) -> Any:
    numeric_target = isinstance(target, (int, float)) and not isinstance(target, bool)
    t = values.type
    if numeric_target and (pa.types.is_string(t) or pa.types.is_large_string(t)):
        from masking.operators._base import parse_numbers

        nums, ok, _ = parse_numbers(values)
        return fn(pa.array(nums, mask=~ok), float(target))
    if isinstance(target, bool) or not numeric_target:
        if pa.types.is_boolean(t) and isinstance(target, bool):
            return fn(values, target)
        return fn(_text(values), str(target))
    return fn(values, target)
