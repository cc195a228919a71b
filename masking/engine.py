"""Apply a masking policy to tables: Arrow, pandas or polars in, the same kind out.

:class:`MaskingEngine` resolves every input column to one operator for a view (the
*plan*: declared or detected PII type, winning rule, context), then transforms each
record batch column by column. Row count is kept, except for rows removed by the view's
``row_filter`` or suppressed by its risk ``gate``; column order is kept; columns no rule
selects are dropped unless the policy's ``default`` is ``keep``.

PII detection (:func:`masking.pii.detect.scan_table`) runs once, on the first batch (a
sample), and only when the view has ``pii`` or ``tag`` selectors and some column has no
declared type. :meth:`MaskingEngine.stream` masks batches lazily for files of any size;
a gated view needs the whole output at once (:meth:`MaskingEngine.apply`).

The plan travels with the output (:meth:`Plan.metadata`): policy hash, view, every
column's operator, options, context and, for ``fpe`` columns (FF1 output cannot carry a
key id), the id of the key used. It is authenticated with one HMAC per keyset used
(:func:`sign_plan`), so ``covault mask reveal`` trusts only a plan written by a holder
of the keyset (:func:`verify_plan`).

Warnings
--------
Detection is a heuristic over a sample: a column it misses follows ``default`` (drop,
unless the policy says keep). Declare types (``name: ..., pii: ...``) for production
policies.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from masking.coltypes import is_nested
from masking.conditions import Condition
from masking.operators import OPERATORS, KeyProvider, OpContext, Operator
from masking.operators.basic import Drop, Keep
from masking.policy import GateModel, Policy, Rule
from privacy.columns import first_non_utf8
from privacy.errors import DecryptionError, InputError, KeysetError, PolicyError
from privacy.fields import metadata_mac, verify_metadata_mac
from privacy.keys import Keyset, format_key_id

__all__ = [
    "MaskingEngine",
    "Plan",
    "ColumnPlan",
    "METADATA_HASH",
    "METADATA_VIEW",
    "METADATA_PLAN",
    "METADATA_MAC",
    "sign_plan",
    "verify_plan",
]

METADATA_HASH = "covault.policy_hash"
METADATA_VIEW = "covault.view"
METADATA_PLAN = "covault.plan"
METADATA_MAC = "covault.plan_mac"
PLAN_MAC_PURPOSE = "covault.plan"
REDACTED = "******"


def _plan_bytes(policy_hash: str, view: str, plan: Mapping[str, Any]) -> bytes:
    doc = {"policy_hash": policy_hash, "view": view, "plan": plan}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def sign_plan(keysets: Iterable[Keyset], policy_hash: str, view: str,
              plan: Mapping[str, Any]) -> dict[str, str]:
    """Template -> ``mac:`` tag of the canonical column plan, one per keyset.

    ``plan`` is the JSON form of :meth:`Plan.describe` (as stored in the metadata).
    Each tag is an HMAC-SHA256 under a key derived from the keyset's primary key
    (:func:`privacy.fields.metadata_mac`); it names that key, so it still verifies
    after a rotation.
    """
    data = _plan_bytes(policy_hash, view, plan)
    return {ks.template: metadata_mac(ks, data, PLAN_MAC_PURPOSE) for ks in keysets}


def verify_plan(keyset: Keyset, macs: Mapping[str, str], policy_hash: str, view: str,
                plan: Mapping[str, Any], *, source: str) -> None:
    """Check the plan's tag under ``keyset``; :class:`InputError` (exit 2) when the tag
    is missing or does not match, naming ``source``."""
    tag = macs.get(keyset.template)
    if not isinstance(tag, str):
        raise InputError(
            f"the column plan carries no authentication tag for the {keyset.template} "
            "keyset; refusing to trust it (was the metadata edited, or the file masked "
            "without this keyset?)", file=source)
    try:
        verify_metadata_mac(keyset, _plan_bytes(policy_hash, view, plan), tag,
                            PLAN_MAC_PURPOSE)
    except DecryptionError as exc:
        raise InputError(
            f"the column plan does not authenticate under the {keyset.template} keyset "
            f"({exc}); the metadata was altered or the file was masked with another "
            "keyset; refusing to reveal", file=source) from None


@dataclass(frozen=True)
class ColumnPlan:
    """How one input column is treated in a view."""

    column: str
    pii: str
    operator: Operator
    rule: Rule | None
    context: str
    on_invalid: str = "fail"
    key_id: int | None = None  # recorded for operators whose output names no key (fpe)

    @property
    def source(self) -> str:
        """Where the decision comes from: the rule's ``file:line`` or the default."""
        return self.rule.where if self.rule is not None else "default"

    def describe(self) -> dict[str, Any]:
        out = {"operator": self.operator.name, "options": self.operator.options(),
               "context": self.context, "pii": self.pii, "on_invalid": self.on_invalid}
        if self.key_id is not None:
            out["key_id"] = format_key_id(self.key_id)
        return out


@dataclass(frozen=True)
class Plan:
    """A view resolved against a schema: one :class:`ColumnPlan` per input column."""

    view: str
    policy_hash: str
    scope: str
    columns: list[ColumnPlan]
    row_filter: Condition | None = None
    gate: GateModel | None = None
    keys: KeyProvider = field(default_factory=KeyProvider)

    @property
    def output_columns(self) -> list[str]:
        return [c.column for c in self.columns if not c.operator.drops]

    def describe(self) -> dict[str, dict[str, Any]]:
        """Column -> operator, options, context (what the output metadata records)."""
        return {c.column: c.describe() for c in self.columns}

    @property
    def key_ids(self) -> dict[str, str]:
        """Column -> key id (``0x...``) for the columns whose output names no key (fpe)."""
        return {c.column: format_key_id(c.key_id) for c in self.columns
                if c.key_id is not None}

    def metadata(self) -> dict[str, str]:
        """What the output carries: policy hash, view, plan, and the plan's tags (one
        per keyset held; none without keysets)."""
        text = json.dumps(self.describe(), ensure_ascii=False, default=str)
        meta = {METADATA_HASH: self.policy_hash, METADATA_VIEW: self.view, METADATA_PLAN: text}
        macs = sign_plan(self.keys.keysets(), self.policy_hash, self.view, json.loads(text))
        if macs:
            meta[METADATA_MAC] = json.dumps(macs, sort_keys=True)
        return meta


class MaskingEngine:
    """Apply a :class:`~masking.policy.Policy` to tables.

    Parameters
    ----------
    policy:
        The validated policy.
    keyset:
        ``None``, one keyset, a mapping template -> keyset, or a list of keysets: each
        keyed operator takes the keyset of its template.
    context:
        Prefix of keyed operators' contexts when the policy sets none (default: the
        table name given to :meth:`apply`, else ``"table"``).
    sample:
        Values sampled per column for PII detection.
    today:
        Reference date for detection of resident ids (default: today).

    Examples
    --------
    >>> from masking.policy import Policy
    >>> engine = MaskingEngine(Policy.preset("jrt0171"))
    >>> masked = engine.apply(table, view="display")  # doctest: +SKIP
    """

    def __init__(
        self,
        policy: Policy,
        keyset: None | Keyset | Mapping[str, Keyset] | Iterable[Keyset] = None,
        *,
        context: str | None = None,
        sample: int = 1000,
        today: _dt.date | None = None,
    ) -> None:
        self.policy = policy
        self.keys = KeyProvider(keyset)
        self.context = context
        self.sample = sample
        self.today = today

    # -- planning
    def plan(self, sample: pa.Table | pa.RecordBatch, view: str | None,
             *, table_name: str | None = None, check_keys: bool = True) -> Plan:
        """Resolve ``view`` for the columns of ``sample`` (detection runs on it).

        Raises :class:`~privacy.errors.KeysetError` when a keyed operator has no keyset
        (unless ``check_keys`` is false, for dry runs and diffs).
        """
        rv = self.policy.view(view)
        names = list(sample.schema.names)
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise InputError(f"column {dup!r} appears twice in the input")
        pii, tags = self._types(sample, rv.levels)
        self._check_named(rv.levels, names)
        scope = self.policy.context or self.context or table_name or "table"
        columns = []
        for name in names:
            rule = rv.rule_for(name, pii[name], tags[name])
            if rule is None:
                op: Operator = Keep() if rv.default == "keep" else Drop()
                columns.append(ColumnPlan(name, pii[name], op, None, f"{scope}.{name}"))
                continue
            assert rule.operator is not None
            ctx = rule.model.context or f"{scope}.{name}"
            op = rule.operator
            _check_column_type(rule, op, name, sample.schema.field(name).type)
            key_id = None
            if op.templates and op.key_required and (check_keys or op.records_key_id):
                try:
                    ks = self.keys.get(op.templates, operator=op.name, column=name,
                                       prefer=getattr(op, "template", None))
                except KeysetError:
                    if check_keys:
                        raise
                else:
                    key_id = ks.primary_id if op.records_key_id else None
            columns.append(ColumnPlan(name, pii[name], op, rule, ctx, rule.model.on_invalid,
                                      key_id))
            entity = getattr(op, "entity", None)
            if entity is not None and entity not in names:
                raise rule.error(f"date_shift entity column {entity!r} is not in the input")
            if entity is not None and is_nested(sample.schema.field(entity).type):
                raise rule.error(f"date_shift entity column {entity!r} holds nested values "
                                 f"({sample.schema.field(entity).type}); it needs one id "
                                 "per row")
        plan = Plan(rv.name, self.policy.hash, scope, columns, rv.row_filter, rv.gate, self.keys)
        self._check_filter_and_gate(plan, names)
        return plan

    def _types(self, sample: pa.Table | pa.RecordBatch, levels: list[list[Rule]]
               ) -> tuple[dict[str, str], dict[str, frozenset[str]]]:
        names = list(sample.schema.names)
        pii: dict[str, str] = {n: "" for n in names}
        tags: dict[str, set[str]] = {n: set() for n in names}
        decls = self.policy.declarations()
        for name in names:
            hits = [r for r in decls if r.matches(name, "", frozenset())]
            hits.sort(key=lambda r: 0 if r.selector[0] == "name" else 1)
            for r in hits:
                if r.model.pii and not pii[name]:
                    pii[name] = r.model.pii
                tags[name] |= {t.lower() for t in r.model.tags}
        needs = any(r.selector[0] in ("pii", "tag") for rules in levels for r in rules)
        todo = [n for n in names if not pii[n]]
        if needs and todo:
            from masking.pii.detect import scan_table

            table = sample if isinstance(sample, pa.Table) else pa.Table.from_batches([sample])
            for s in scan_table(table.select(todo), sample=self.sample, today=self.today):
                pii[s.name] = s.pii
                if s.jrt_class:
                    tags[s.name].add(s.jrt_class.lower())
        return ({n: pii[n] or "none" for n in names},
                {n: frozenset(t) for n, t in tags.items()})

    def _check_named(self, levels: list[list[Rule]], names: list[str]) -> None:
        rules = [r for rules in levels for r in rules] + self.policy.declarations()
        for r in rules:
            kind, value = r.selector
            if kind == "name" and r.model.required and value not in names:
                # a header cell with spaces ("id_no ") or an empty one (a row index) was
                # invisible in the list, and the rule looked wrong for no reason
                shown = ", ".join(n if n and n == n.strip() else repr(n) for n in names)
                near = [n for n in names if n.strip().casefold() == value.strip().casefold()]
                hint = (f"; the input's {near[0]!r} differs only in case or surrounding "
                        "spaces" if near else "")
                raise r.error(
                    f"names column {value!r}, which is not in the input (columns: "
                    f"{shown}){hint}; set 'required: false' if it may be absent"
                )

    @staticmethod
    def _check_filter_and_gate(plan: Plan, names: list[str]) -> None:
        if plan.row_filter is not None:
            missing = sorted(plan.row_filter.columns() - set(names))
            if missing:
                raise PolicyError(f"view {plan.view!r}: row_filter names column {missing[0]!r}, "
                                  "which is not in the input")
        if plan.gate is not None:
            out = set(plan.output_columns)
            for crit in (plan.gate.k_anonymity, plan.gate.l_diversity, plan.gate.t_closeness):
                if crit is None:
                    continue
                wanted = list(crit.quasi) + [getattr(crit, "sensitive", None) or ""]
                lost = [c for c in wanted if c and c not in out]
                if lost:
                    raise PolicyError(f"view {plan.view!r}: gate names column {lost[0]!r}, which "
                                      "is not in the output (missing or dropped)")

    # -- masking
    def mask_batch(self, plan: Plan, batch: pa.RecordBatch, row_offset: int = 0, *,
                   source: str | None = None) -> pa.RecordBatch:
        """Mask one batch under ``plan`` (row filter applied, gate not); a value an
        operator cannot take is an :class:`InputError` naming ``source`` (the input
        file, when there is one), the column and the row."""
        rows: np.ndarray | None = None
        if plan.row_filter is not None:
            keep = plan.row_filter.evaluate(batch)
            rows = np.flatnonzero(keep)
            batch = batch.filter(pa.array(keep))
        arrays, names = [], []
        for cp in plan.columns:
            if cp.operator.drops:
                continue
            values = batch.column(cp.column)
            ctx = OpContext(column=cp.column, context=cp.context, scope=plan.scope,
                            keys=plan.keys, batch=batch, row_offset=row_offset,
                            key_id=cp.key_id, pii=cp.pii)
            if cp.operator.reads_values:
                entity = getattr(cp.operator, "entity", None)  # date_shift reads it too
                for name in (cp.column, entity) if entity is not None else (cp.column,):
                    bad = first_non_utf8(batch.column(name))
                    if bad is not None:
                        raise InputError(
                            f"bytes that are not UTF-8 text, which operator "
                            f"{cp.operator.name!r} reads as text (rule at {cp.source}); "
                            "decode the column to UTF-8 first", file=source, column=name,
                            row=row_offset + (int(rows[bad]) if rows is not None else bad) + 1)
            result = cp.operator.apply(values, ctx)
            out = result.values
            if isinstance(out, pa.ChunkedArray):
                out = out.combine_chunks()
            if pa.types.is_large_string(out.type) or pa.types.is_string_view(out.type):
                out = out.cast(pa.string())
            if result.invalid is not None and result.invalid.any():
                out = _on_invalid(cp, out, result.invalid, result.reason, rows, row_offset,
                                  source)
            if len(out) != batch.num_rows:
                raise AssertionError(f"operator {cp.operator.name} changed the row count")
            arrays.append(out)
            names.append(cp.column)
        return pa.RecordBatch.from_arrays(arrays, names=names)

    def stream(self, batches: Iterable[pa.RecordBatch], view: str | None, *,
               table_name: str | None = None, plan: Plan | None = None
               ) -> Iterator[pa.RecordBatch]:
        """Mask batches lazily; the plan comes from the first batch. No gate here."""
        offset = 0
        for batch in batches:
            if plan is None:
                plan = self.plan(batch, view, table_name=table_name)
            yield self.mask_batch(plan, batch, offset)
            offset += batch.num_rows

    def apply(self, data: Any, view: str | None = None, *, table_name: str | None = None) -> Any:
        """Mask a pyarrow Table/RecordBatch, pandas or polars DataFrame; same kind out.

        The view's gate, if any, runs on the whole output (suppressing rows or raising
        :class:`~privacy.errors.RiskGateError`). The Arrow result carries the policy hash
        and view in its schema metadata.
        """
        table, back = _to_arrow(data)
        plan = self.plan(table, view, table_name=table_name)
        batches = [self.mask_batch(plan, b, off) for b, off in _batches_with_offsets(table)]
        out = pa.Table.from_batches(batches) if batches else _empty_output(plan, table, self)
        if plan.gate is not None:
            from masking.risk import apply_gate

            out, _ = apply_gate(out, plan.gate)
        out = out.replace_schema_metadata({**(out.schema.metadata or {}), **{
            k.encode(): v.encode() for k, v in plan.metadata().items()}})
        return back(out)




def _check_column_type(rule: Rule, op: Operator, column: str, t: pa.DataType) -> None:
    """Refuse, before any row is read, an operator that reads values on a column of
    lists, structs or maps: no operator can take such a value (Arrow cannot even read it
    as text), and the run ended in a traceback in the middle of the first batch."""
    if not op.reads_values or not is_nested(t):
        return
    type_free = sorted(n for n, cls in OPERATORS.items() if not cls.reads_values)
    raise rule.error(
        f"column {column!r} holds nested values ({t}), which operator {op.name!r} cannot "
        f"take; use {', '.join(type_free)} for it, or flatten the column before masking")


def _on_invalid(cp: ColumnPlan, out: pa.Array, invalid: np.ndarray, reason: str,
                rows: np.ndarray | None, offset: int, source: str | None) -> pa.Array:
    if cp.on_invalid == "fail":
        i = int(np.argmax(invalid))
        row = offset + (int(rows[i]) if rows is not None else i) + 1
        raise InputError(
            f"operator {cp.operator.name!r} cannot take this value: {reason} (rule at "
            f"{cp.source}; set on_invalid: redact or null to let such values through)",
            file=source, column=cp.column, row=row,
        )
    mask = pa.array(invalid)
    if cp.on_invalid == "redact" and pa.types.is_string(out.type):
        return pc.if_else(mask, pa.scalar(REDACTED, pa.string()), out)
    return pc.if_else(mask, pa.scalar(None, out.type), out)


def _batches_with_offsets(table: pa.Table) -> Iterator[tuple[pa.RecordBatch, int]]:
    offset = 0
    for batch in table.combine_chunks().to_batches():
        yield batch, offset
        offset += batch.num_rows


def _empty_output(plan: Plan, table: pa.Table, engine: MaskingEngine) -> pa.Table:
    empty = pa.RecordBatch.from_pylist([], schema=table.schema)
    return pa.Table.from_batches([engine.mask_batch(plan, empty)])


def _to_arrow(data: Any) -> tuple[pa.Table, Any]:
    if isinstance(data, pa.Table):
        return data, lambda t: t
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data]), lambda t: t.combine_chunks().to_batches()[0] \
            if t.num_rows else pa.RecordBatch.from_pylist([], schema=t.schema)
    module = type(data).__module__.split(".")[0]
    if module == "pandas":
        return pa.Table.from_pandas(data, preserve_index=False), lambda t: t.to_pandas()
    if module == "polars":
        import polars as pl

        return data.to_arrow(), lambda t: pl.from_arrow(t)
    raise InputError(
        f"cannot mask a {type(data).__name__}: expected a pyarrow Table/RecordBatch, "
        "a pandas DataFrame or a polars DataFrame"
    )
