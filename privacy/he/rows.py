"""Row ids of an encrypted vector: which row each element belongs to.

Parties add their columns element by element, so element ``i`` of every contribution
must be the same customer. A contribution records the ids of its rows in order
(:class:`RowIds`): the id column's name, the count, a SHA-256 digest of the sequence and,
unless the party keeps them back, the ids themselves (so the key holder can write them
beside the totals). Aggregation refuses inputs whose ids or row order differ
(:func:`check_aligned`), naming the first row that differs when the ids travel.

The digest is ``SHA-256("covault-he-rows-v1" 0x00 || u64 count || (u32 len || id)*)``
over the UTF-8 ids; it is bound into signed contributions and aggregates.

Warnings
--------
Ids that travel are visible to whoever holds the file (aggregator, key holder); keep
them back (digest only) when they must not be, or use pseudonymous ids (PSI-aligned
tokens). A digest of few, guessable ids can be confirmed by guessing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from privacy.errors import HEError

__all__ = ["RowIds", "rows_digest", "check_aligned", "MAX_ID_BYTES"]

DOMAIN = b"covault-he-rows-v1\x00"
#: Longest id accepted (UTF-8 bytes).
MAX_ID_BYTES = 1024


def rows_digest(ids: Sequence[str]) -> str:
    """Hex SHA-256 of the id sequence (see the module docstring)."""
    h = hashlib.sha256(DOMAIN + len(ids).to_bytes(8, "big"))
    for i in ids:
        data = i.encode("utf-8")
        h.update(len(data).to_bytes(4, "big") + data)
    return h.hexdigest()


@dataclass(frozen=True)
class RowIds:
    """The ids of a vector's rows, in order.

    ``ids`` is ``None`` when only the digest travels (the party kept the ids back).
    """

    column: str
    count: int
    digest: str
    ids: tuple[str, ...] | None = None

    @classmethod
    def of(cls, column: str, ids: Iterable[str], *, keep_ids: bool = True) -> RowIds:
        """Row ids of ``ids`` (strings, distinct, non-empty) under column ``column``.

        Raises
        ------
        HEError
            An id is empty, too long, not a string, or repeated (naming its rows).
        """
        values = tuple(ids)
        if not column or len(column) > 256:
            raise HEError("the id column needs a name of 1 to 256 characters")
        seen: dict[str, int] = {}
        for row, v in enumerate(values, start=1):
            if not isinstance(v, str) or not v:
                raise HEError(f"row {row}: empty id in id column {column!r}")
            if len(v.encode("utf-8")) > MAX_ID_BYTES:
                raise HEError(f"row {row}: id longer than {MAX_ID_BYTES} bytes")
            if v in seen:
                raise HEError(f"id {v!r} appears twice in id column {column!r} (rows "
                              f"{seen[v]} and {row}); each row needs its own id")
            seen[v] = row
        return cls(column, len(values), rows_digest(values), values if keep_ids else None)

    def to_meta(self) -> dict[str, Any]:
        """What a file header carries (the ids go in a field of their own)."""
        return {"column": self.column, "count": self.count, "digest": self.digest,
                "ids": self.ids is not None}

    def same_rows(self, other: RowIds | None) -> bool:
        """Whether ``other`` names the same ids in the same order."""
        return other is not None and (self.count, self.digest) == (other.count, other.digest)

    def without_ids(self) -> RowIds:
        """The same rows with the digest only."""
        return RowIds(self.column, self.count, self.digest, None)


def _difference(a: RowIds, b: RowIds) -> str:
    if a.ids is None or b.ids is None:
        return (f"their id digests differ ({a.count} rows {a.digest[:12]}... vs "
                f"{b.count} rows {b.digest[:12]}...)")
    if set(a.ids) == set(b.ids):
        row = next(i for i, (x, y) in enumerate(zip(a.ids, b.ids, strict=True)) if x != y)
        return (f"they hold the same {a.count} ids in a different order (row {row + 1}: "
                f"{a.ids[row]!r} vs {b.ids[row]!r})")
    only = sorted(set(a.ids) ^ set(b.ids))
    near = _same_after_normalising(a.ids, b.ids)
    if near is not None:
        x, y = near
        return (f"they write ids differently: {x!r} in the first is {y!r} in the second, "
                "the same id once spaces, letter case and character widths are normalised "
                "(as PSI does); ids are compared exactly here, so write every id the same "
                "way in every file (trim spaces, one letter case, ASCII digits) before "
                "`he encrypt`, or encrypt the ids written by `psi` (its output rows) on "
                "every side")
    first = only[0]
    side = "first" if first in set(a.ids) else "second"
    return (f"they hold different ids ({len(only)} id(s) in one only, e.g. {first!r} in the "
            f"{side} only)")


def _same_after_normalising(a: Sequence[str], b: Sequence[str]) -> tuple[str, str] | None:
    """The first id of ``a`` absent from ``b`` that PSI's normalisation
    (:func:`privacy.psi.party.normalize_id`) maps onto an id of ``b``, with that id."""
    from privacy.psi.party import normalize_id

    exact, mine = set(b), set(a)
    by_norm: dict[str, str] = {}
    for v in b:
        if v not in mine:
            by_norm.setdefault(normalize_id(v), v)
    for v in a:
        if v not in exact:
            match = by_norm.get(normalize_id(v))
            if match is not None:
                return v, match
    return None


def check_aligned(vectors: Sequence[Any], labels: Sequence[str] | None = None
                  ) -> RowIds | None:
    """Check that every vector has the same row ids (or none has any); return them.

    ``labels`` name the inputs in messages (default: their contributors).

    Raises
    ------
    HEError
        Some inputs record ids and others not, or two inputs' ids or row order differ.
    """
    names = list(labels) if labels is not None else [
        ", ".join(getattr(v, "contributors", ())) or f"input {i + 1}"
        for i, v in enumerate(vectors)]
    rows: list[RowIds | None] = [getattr(v, "rows", None) for v in vectors]
    if not rows:
        return None
    first = rows[0]
    for name, r in zip(names[1:], rows[1:], strict=True):
        if (first is None) != (r is None):
            has, lacks = (names[0], name) if first is not None else (name, names[0])
            raise HEError(f"{has} records its row ids but {lacks} does not: encrypt every "
                          "input with the same --id-column so that rows can be matched")
        if first is not None and r is not None and not first.same_rows(r):
            raise HEError(f"{names[0]} and {name} are not aligned: {_difference(first, r)}; "
                          "every party must encrypt the same ids in the same row order "
                          "(sort each file by the id column, after aligning them with PSI)")
    if first is None:
        return None
    with_ids = next((r for r in rows if r is not None and r.ids is not None), None)
    return with_ids or first
