"""``date_shift``: move dates by a per-entity offset drawn from a keyed PRF.

The offset of an entity (``entity`` column, e.g. ``customer_id``) is taken from the
HMAC token (:class:`privacy.fields.Tokenizer`) of its id under the context
``<scope>.<entity>.date_shift``, so every date column of one customer moves by the same
number of days (intervals between a customer's dates are kept) and the shift is the same
in every run and for every holder of the keyset. Offsets are uniform in
``[-max_days, -1] U [1, max_days]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from masking.operators._base import (
    OpContext,
    Operator,
    OpResult,
    as_text,
    identifiers,
    parse_dates,
)
from privacy.columns import as_string_array, b64url_decode_rows, length_groups
from privacy.errors import PolicyError
from privacy.fields import Tokenizer
from privacy.normalize import Identifier

__all__ = ["DateShift"]


@dataclass(frozen=True)
class DateShift(Operator):
    """Shift dates consistently per entity through a keyed PRF.

    Parameters
    ----------
    max_days:
        Largest shift in days (>= 1).
    entity:
        Column holding the entity id; default: the date itself (consistent per value only).
    template:
        ``HMAC_SHA256`` or ``HMAC_SM3`` when both keysets are given.
    identifier:
        Normalisation of the ``entity`` ids before they are keyed
        (:mod:`privacy.normalize`): ``auto`` (default: per value, so a customer's mobile
        written as ``+86 187 8161 8495`` or ``18781618495`` shifts alike), ``none``, or
        a kind (``mobile``, ``resident_id``, ...). Dates keyed by themselves (no
        ``entity``) are never normalised.

    Warnings
    --------
    Text dates come back as ``YYYY-MM-DD`` (a time part is dropped). Without
    ``entity``, equal dates shift alike, so the shift hides little.
    """

    name = "date_shift"
    templates = ("HMAC_SHA256", "HMAC_SM3")
    max_days: int = 30
    entity: str | None = None
    template: str | None = None
    identifier: Identifier = "auto"

    def __post_init__(self) -> None:
        self.check(self.max_days >= 1, "max_days", "must be >= 1")
        if self.template is not None:
            self.check(self.template in self.templates, "template", "must be an HMAC template")

    def shifts(self, entity: pa.Array, ctx: OpContext) -> np.ndarray:
        """Days to add per row (0 where the entity id is null)."""
        ks = ctx.keys.get(self.templates, operator=self.name, column=ctx.column,
                          prefer=self.template)
        key_ctx = f"{ctx.scope}.{self.entity or ctx.column}.date_shift"
        ids = as_text(entity) if self.entity is None else identifiers(
            entity, self.identifier, None)
        tokens = as_string_array(Tokenizer(ks).encrypt_many(ids, key_ctx))
        out = np.zeros(len(entity), dtype=np.int64)
        span = 2 * self.max_days
        for idx, mat in length_groups(tokens):
            raw, _ = b64url_decode_rows(np.ascontiguousarray(mat[:, 4:]))
            word = raw[:, 5:13].copy().view(">u8").reshape(-1).astype(np.uint64)
            s = (word % np.uint64(span)).astype(np.int64)
            out[idx] = np.where(s < self.max_days, s - self.max_days, s - self.max_days + 1)
        return out

    def apply(self, values: pa.Array, ctx: OpContext) -> OpResult:
        if self.entity is None:
            entity = values
        else:
            if ctx.batch is None or self.entity not in ctx.batch.schema.names:
                raise PolicyError(
                    f"column {ctx.column!r}: date_shift entity column {self.entity!r} "
                    "is not in the input"
                )
            entity = ctx.batch.column(self.entity)
        dates, ok, null = parse_dates(values)
        days = self.shifts(entity, ctx)
        no_entity = np.asarray(entity.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        base = pc.cast(dates, pa.int32()).fill_null(0).to_numpy(zero_copy_only=False)
        good = ok & ~no_entity
        moved = pa.array((base + days).astype(np.int32), mask=~good).cast(pa.date32())
        if pa.types.is_date(values.type):
            out = moved.cast(values.type)
        elif pa.types.is_timestamp(values.type):
            out = pc.add(values, pa.array(days * 86_400_000_000, pa.duration("us")))
            out = pc.if_else(pa.array(good), out, pa.scalar(None, values.type))
        else:
            out = pc.strftime(moved.cast(pa.timestamp("s")), format="%Y-%m-%d")
        bad = ~good & ~null
        reason = "not a date, or the entity id is null"
        return OpResult(out, bad if bad.any() else None, reason)
