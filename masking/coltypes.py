"""Column types of text tables: declared in a policy, or inferred from the values.

CSV holds text only. A masking run types each column before masking, so that numbers
stay numbers in Parquet and JSON Lines outputs (a kept ``income`` is ``int64``, not
``"52000"``), and the masked columns take the type their operator gives (tokens are
text).

Declared types
--------------
A policy's top-level rule ``{name: amount, type: float64}`` (or ``glob:``) declares a
column's type; a value that does not convert is an :class:`~privacy.errors.InputError`
naming the column, the row and the value. :data:`TYPE_NAMES` lists the names.

Inferred types (conservative)
-----------------------------
A column not declared is typed only when *every* non-empty value of the whole file is a
canonical literal of one type, so that no value loses anything a reader could need:

========  ==================================================================
bool      ``true`` / ``false`` (any case)
int64     ``-?(0|[1-9][0-9]*)`` with at most 15 digits
float64   ``-?(0|[1-9][0-9]*)(\\.[0-9]+)?`` (an optional exponent) with at most 15
          significant digits, so the float holds the written value exactly
date      ``YYYY-MM-DD``, a valid calendar date
string    everything else
========  ==================================================================

So ids and postcodes with leading zeros (``"007"``, ``"010020"``), values with a sign or
spaces, and numbers of more than 15 digits (cards, resident ids: identifiers that every
float-based reader would round) stay text. Empty cells are null and do not decide the
type; a column with no value at all stays text. Every column stays nullable.

Warnings
--------
Operators that work on text (``mask``, ``hash``, ``tokenize``) see a typed value's
canonical text: ``12.5`` for a ``float64`` cell written ``12.50``. Declare
``type: string`` for a column whose exact text must be masked or tokenized.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from privacy.errors import InputError

__all__ = ["TYPE_NAMES", "parse_type", "type_name", "is_nested", "TypeInference", "cast_batch"]

#: Type names a policy may declare (``decimal(P,S)`` with precision 1..38, scale 0..P).
TYPE_NAMES = ("string", "int64", "float64", "bool", "date", "timestamp", "decimal(P,S)")

_SIMPLE: dict[str, pa.DataType] = {
    "string": pa.string(), "int64": pa.int64(), "float64": pa.float64(),
    "bool": pa.bool_(), "date": pa.date32(), "timestamp": pa.timestamp("us"),
}
_DECIMAL = re.compile(r"^decimal\(\s*(\d+)\s*,\s*(\d+)\s*\)$")

# Canonical literals (see the module docstring); digits are counted separately.
_PATTERNS: dict[str, str] = {
    "bool": r"^(?i:true|false)$",
    "int64": r"^-?(?:0|[1-9][0-9]*)$",
    "float64": r"^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]{1,3})?$",
    "date": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
}
_MAX_DIGITS = 15


def parse_type(text: str) -> pa.DataType:
    """The Arrow type of a declared type name (see :data:`TYPE_NAMES`).

    Raises
    ------
    ValueError
        Unknown name, or a decimal's precision/scale out of range.
    """
    name = text.strip().lower()
    if name in _SIMPLE:
        return _SIMPLE[name]
    m = _DECIMAL.match(name)
    if m:
        precision, scale = int(m.group(1)), int(m.group(2))
        if not 1 <= precision <= 38 or scale > precision:
            raise ValueError(f"decimal({precision},{scale}): precision must lie in 1..38 "
                             "and scale in 0..precision")
        return pa.decimal128(precision, scale)
    raise ValueError(f"unknown column type {text!r}; expected one of {', '.join(TYPE_NAMES)}")


def type_name(t: pa.DataType) -> str:
    """The policy name of an Arrow type (its Arrow name for types a policy cannot name)."""
    for name, simple in _SIMPLE.items():
        if t == simple:
            return name
    if pa.types.is_decimal(t):
        return f"decimal({t.precision},{t.scale})"
    return str(t)


def is_nested(t: pa.DataType) -> bool:
    """Whether a column of type ``t`` holds lists, structs or maps (also as dictionary
    values): no value-reading operator, comparison, grouping or CSV writer takes them."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    return bool(pa.types.is_nested(t))


def _digits(values: pa.Array, kind: str) -> bool:
    """Whether every value has at most 15 (significant) digits."""
    text = values
    if kind == "float64":
        text = pc.replace_substring_regex(text, r"[eE].*$", "")
    digits = pc.replace_substring_regex(text, r"[^0-9]", "")
    if kind == "float64":
        digits = pc.utf8_ltrim(digits, "0")
    longest = pc.max(pc.utf8_length(digits)).as_py()
    return longest is None or longest <= _MAX_DIGITS


class TypeInference:
    """Infers column types batch by batch (feed every batch of the file, then
    :meth:`types`); see the module docstring for the rules."""

    _ORDER = ("bool", "int64", "float64", "date")

    def __init__(self, names: Iterable[str]) -> None:
        self._viable: dict[str, set[str]] = {n: set(self._ORDER) for n in names}
        self._seen: dict[str, bool] = dict.fromkeys(self._viable, False)

    def update(self, batch: pa.RecordBatch) -> None:
        """Narrow the candidate types with one batch of text columns."""
        for name, viable in self._viable.items():
            if not viable:
                continue
            col = batch.column(name)
            if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
                viable.clear()
                continue
            values = col.drop_null()
            if len(values) == 0:
                continue
            self._seen[name] = True
            for kind in list(viable):
                ok = pc.all(pc.match_substring_regex(values, _PATTERNS[kind])).as_py()
                if ok and kind in ("int64", "float64"):
                    ok = _digits(values, kind)
                if ok and kind == "date":
                    try:
                        pc.cast(values, pa.date32())
                    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                        ok = False
                if not ok:
                    viable.discard(kind)

    def types(self) -> dict[str, pa.DataType]:
        """Column -> inferred type (``string`` where no other type fits every value)."""
        out: dict[str, pa.DataType] = {}
        for name, viable in self._viable.items():
            kind = next((k for k in self._ORDER if k in viable), None)
            out[name] = _SIMPLE[kind] if kind is not None and self._seen[name] else pa.string()
        return out


def _convert(values: pa.Array, t: pa.DataType) -> pa.Array:
    if pa.types.is_boolean(t) and (pa.types.is_string(values.type)
                                   or pa.types.is_large_string(values.type)):
        values = pc.utf8_lower(values)
    return pc.cast(values, t)


def cast_batch(batch: pa.RecordBatch, types: Mapping[str, pa.DataType], *,
               source: str | None = None, row_offset: int = 0,
               declared: Mapping[str, Any] | None = None) -> pa.RecordBatch:
    """``batch`` with the columns named in ``types`` converted to those types.

    ``declared`` maps the columns whose type a policy declared to where (``file:line``);
    a value that does not convert raises :class:`InputError` naming the column, the row
    (``row_offset`` + its index + 1) and the declaration.
    """
    if not any(n in types and batch.column(n).type != types[n] for n in batch.schema.names):
        return batch
    arrays = []
    for name in batch.schema.names:
        col = batch.column(name)
        t = types.get(name)
        if t is not None and col.type != t:
            try:
                col = _convert(col, t)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
                raise _cast_error(batch.column(name), name, t, source, row_offset,
                                  (declared or {}).get(name)) from None
        arrays.append(col)
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def _cast_error(col: pa.Array, name: str, t: pa.DataType, source: str | None,
                row_offset: int, where: Any) -> InputError:
    bad, value = 0, None
    for i, v in enumerate(col.to_pylist()):
        if v is None:
            continue
        try:
            _convert(pa.array([v], col.type), t)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            bad, value = i, v
            break
    origin = f", declared at {where}" if where else ""
    return InputError(f"value {value!r} is not a valid {type_name(t)} (the column's type"
                      f"{origin}); fix the value or declare another type", file=source,
                      column=name, row=row_offset + bad + 1)
