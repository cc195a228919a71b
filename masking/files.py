"""File to file: mask a CSV / Parquet / JSON Lines file, or reveal masked columns.

Both stream record batches (a gated view collects its masked output first, since a risk
gate looks at the whole table), write atomically (no output on any error), never touch
the input, stamp the policy hash and view into the output's metadata, and append a
record to a disclosure ledger when one is given.
"""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from masking.engine import METADATA_HASH, METADATA_PLAN, ColumnPlan, MaskingEngine, Plan
from masking.io import iter_batches, read_head
from masking.operators import KeyProvider, OpContext, build_operator
from masking.policy import Policy
from masking.writer import open_writer, read_metadata
from privacy.errors import InputError, PolicyError
from privacy.keys import Keyset

__all__ = ["mask_file", "reveal_file"]

Progress = Callable[[int], None]
Keysets = None | Keyset | Mapping[str, Keyset] | Iterable[Keyset]


def _distinct(input_path: str | os.PathLike[str], output: str | os.PathLike[str]) -> None:
    if not Path(input_path).is_file():
        raise InputError("no such file", file=str(input_path))
    if Path(input_path).resolve() == Path(output).resolve():
        raise InputError("the output would overwrite the input; choose another path",
                         file=str(output))


def _batches(path: str | os.PathLike[str], fmt: str | None, size: int
             ) -> tuple[pa.RecordBatch, Iterator[pa.RecordBatch]]:
    it = iter_batches(path, input_format=fmt, batch_size=size)
    first = next(it, None)
    if first is None:
        head = read_head(path, 1, input_format=fmt)
        first = pa.RecordBatch.from_pylist([], schema=head.schema)
    return first, it


def _record(ledger: str | os.PathLike[str] | None, kind: str, payload: dict[str, Any]) -> None:
    if ledger is None:
        return
    from privacy.ledger import Ledger

    with Ledger(ledger) as log:
        log.append(kind, payload)


def mask_file(
    policy: Policy,
    input_path: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    view: str | None,
    keyset: Keysets = None,
    input_format: str | None = None,
    output_format: str | None = None,
    batch_size: int = 65_536,
    ledger: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Mask ``input_path`` into ``output`` under ``view``; returns a summary.

    Raises
    ------
    PolicyError, InputError, KeysetError
        Bad policy, bad input (with file, row), missing keyset; no output is written.
    RiskGateError
        The view's gate is not met; no output is written.
    """
    _distinct(input_path, output)
    engine = MaskingEngine(policy, keyset)
    first, rest = _batches(input_path, input_format, batch_size)
    table_name = Path(input_path).name.split(".")[0]
    plan = engine.plan(first, view, table_name=table_name)
    rows_in, gate_report = 0, None
    with open_writer(output, output_format=output_format, metadata=plan.metadata()) as out:

        def masked() -> Iterator[pa.RecordBatch]:
            nonlocal rows_in
            for batch in _chain(first, rest):
                yield engine.mask_batch(plan, batch, rows_in)
                rows_in += batch.num_rows
                if progress is not None:
                    progress(batch.num_rows)

        empty = engine.mask_batch(plan, first.slice(0, 0)).schema
        if plan.gate is not None:
            from masking.risk import apply_gate

            table = pa.Table.from_batches(list(masked()), schema=empty)
            table, gate_report = apply_gate(table, plan.gate)
            for batch in table.combine_chunks().to_batches():
                out.write(batch)
        else:
            for batch in masked():
                out.write(batch)
        out.close(empty)
        summary = {
            "policy_hash": plan.policy_hash,
            "view": plan.view,
            "input": str(input_path),
            "output": str(output),
            "rows_in": rows_in,
            "rows_out": out.rows,
            "columns": {c.column: c.operator.describe() for c in plan.columns},
            "gate": gate_report,
        }
        _record(ledger, "masking.run", {k: v for k, v in summary.items() if k != "gate"}
                | {"suppressed": (gate_report or {}).get("suppressed", 0)})
    return summary


def _chain(first: pa.RecordBatch, rest: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    if first.num_rows:
        yield first
    yield from rest


def _reveal_plan(policy: Policy, view: str | None, meta: Mapping[str, str],
                 first: pa.RecordBatch, keys: KeyProvider, table_name: str) -> Plan:
    if METADATA_HASH in meta and meta[METADATA_HASH] != policy.hash:
        raise PolicyError(
            f"the input was masked under policy {meta[METADATA_HASH][:16]}..., not this policy "
            f"({policy.hash[:16]}...); reveal needs the policy it was masked with"
        )
    if METADATA_PLAN not in meta:
        return MaskingEngine(policy, keys.keysets()).plan(first, view, table_name=table_name)
    recorded = json.loads(meta[METADATA_PLAN])
    columns = [
        ColumnPlan(name, d.get("pii", ""), build_operator(d["operator"], d.get("options")),
                   None, d["context"], d.get("on_invalid", "fail"))
        for name, d in recorded.items()
    ]
    scope = policy.context or table_name
    return Plan(meta.get("covault.view", view or ""), policy.hash, scope, columns, keys=keys)


def reveal_file(
    policy: Policy,
    input_path: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    view: str | None,
    keyset: Keysets,
    columns: list[str],
    reason: str | None = None,
    input_format: str | None = None,
    output_format: str | None = None,
    ledger: str | os.PathLike[str] | None = None,
    batch_size: int = 65_536,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Reverse ``tokenize``/``encrypt``/``fpe`` columns of a masked file with the keyset.

    An authorized act: it is recorded in the ledger (who, reason, columns, rows) when one
    is given. Other columns pass through unchanged.
    """
    _distinct(input_path, output)
    if not columns:
        raise InputError("name the columns to reveal")
    keys = KeyProvider(keyset)
    meta = read_metadata(input_path, input_format)
    first, rest = _batches(input_path, input_format, batch_size)
    plan = _reveal_plan(policy, view, meta, first, keys, Path(input_path).name.split(".")[0])
    by_name = {c.column: c for c in plan.columns}
    for name in columns:
        if name not in first.schema.names:
            raise InputError(f"column {name!r} is not in the input", file=str(input_path))
        cp = by_name.get(name)
        if cp is None or not cp.operator.reversible:
            used = cp.operator.name if cp else "no recorded operator"
            raise PolicyError(f"column {name!r} was masked with {used!r}, which is not "
                              "reversible (only tokenize, encrypt and fpe are)")
    rows = 0
    meta_out = {k: v for k, v in meta.items()} | {"covault.revealed": ",".join(columns)}
    with open_writer(output, output_format=output_format, metadata=meta_out) as out:
        for batch in _chain(first, rest):
            arrays = []
            for name in batch.schema.names:
                values = batch.column(name)
                if name in columns:
                    cp = by_name[name]
                    ctx = OpContext(column=name, context=cp.context, scope=plan.scope, keys=keys)
                    values = cp.operator.reverse(values, ctx)
                arrays.append(values)
            out.write(pa.RecordBatch.from_arrays(arrays, names=batch.schema.names))
            rows += batch.num_rows
            if progress is not None:
                progress(batch.num_rows)
        out.close(first.schema)
        summary = {"policy_hash": plan.policy_hash, "view": plan.view, "input": str(input_path),
                   "output": str(output), "columns": columns, "rows": rows,
                   "who": os.environ.get("USER") or _user(), "reason": reason or ""}
        _record(ledger, "masking.reveal", summary)
    return summary


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
