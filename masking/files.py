"""File to file: mask a CSV / Parquet / JSON Lines file, or reveal masked columns.

Both stream record batches (a gated view collects its masked output first, since a risk
gate looks at the whole table), write atomically (no output on any error, SIGTERM
included; a killed run's temporary file is removed by the next run of the same output),
never touch the input, stamp the policy hash, view and authenticated column plan into
the output's metadata, and append a record to a disclosure ledger when one is given.
CSV columns are typed first (the policy's declared ``type``, else conservative inference,
:mod:`masking.coltypes`), so numbers stay numbers in Parquet and JSON Lines outputs.

A reveal trusts only a column plan whose tag verifies under the keyset that decrypts
the column (:func:`masking.engine.verify_plan`), decrypts ``fpe`` columns with the key
id the plan records, and with a ledger writes ``masking.reveal.started`` before the
first plaintext is written, then ``masking.reveal`` (finished) or
``masking.reveal.aborted``: a reveal killed outright leaves a started record with no end.

A mask run with ``noise`` columns is a differentially private release: with a ledger it
appends one ``masking.dp_release`` record per noise column (dataset id, column, epsilon),
in the same transaction as its ``masking.run`` record. When the policy sets
``dp.budget``, the run needs a ledger and refuses (nothing written) when the epsilon
the ledger shows spent on the dataset plus this release would exceed the budget.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import os
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from masking.engine import (
    METADATA_HASH,
    METADATA_MAC,
    METADATA_PLAN,
    METADATA_VIEW,
    ColumnPlan,
    MaskingEngine,
    Plan,
    verify_plan,
)
from masking.io import infer_types_of, iter_batches, read_head
from masking.operators import KeyProvider, OpContext, Operator, build_operator
from masking.operators.basic import Keep
from masking.operators.numeric import Noise
from masking.policy import Policy
from masking.writer import open_writer, read_metadata
from privacy.errors import CovaultError, InputError, KeyNotFoundError, PolicyError
from privacy.keys import Keyset, format_key_id

__all__ = ["mask_file", "reveal_file", "DP_RELEASE", "dp_spent"]

#: Ledger kind of one noise column's release (dataset, column, epsilon).
DP_RELEASE = "masking.dp_release"

Progress = Callable[[int], None]
Keysets = None | Keyset | Mapping[str, Keyset] | Iterable[Keyset]


def _distinct(input_path: str | os.PathLike[str], output: str | os.PathLike[str]) -> None:
    if not Path(input_path).is_file():
        raise InputError("no such file", file=str(input_path))
    if Path(input_path).resolve() == Path(output).resolve():
        raise InputError("the output would overwrite the input; choose another path",
                         file=str(output))


def _batches(path: str | os.PathLike[str], fmt: str | None, size: int, *,
             types: Mapping[str, pa.DataType] | None = None,
             origins: Mapping[str, str] | None = None,
             ) -> tuple[pa.RecordBatch, Iterator[pa.RecordBatch]]:
    """The first batch and the rest, the columns named in ``types`` converted."""
    it = iter_batches(path, input_format=fmt, batch_size=size, types=types, origins=origins)
    first = next(it, None)
    if first is None:
        head = read_head(path, 1, input_format=fmt)
        first = pa.RecordBatch.from_pylist([], schema=head.schema)
    return first, it


def _input_types(policy: Policy, path: str | os.PathLike[str], fmt: str | None, size: int,
                 text: Iterable[str] = ()) -> tuple[dict[str, pa.DataType], dict[str, str]]:
    """Column types for a masking run, and where the declared ones are declared.

    Declared types (the policy's ``type``) win; the other CSV columns are inferred
    (:mod:`masking.coltypes`), except that a column of whole numbers holding personal
    identifiers (mobiles, cards, resident ids: declared or detected PII other than dates)
    stays text, as do the ``text`` columns.
    """
    decls = [r for r in policy.declarations() if r.model.type is not None]
    declared: dict[str, pa.DataType] = dict.fromkeys(text, pa.string())
    origins: dict[str, str] = {}
    if decls:
        names = read_head(path, 1, input_format=fmt).schema.names
        for n, (t, rule) in policy.column_types(names).items():
            declared.setdefault(n, t)
            origins[n] = rule.where
    inferred = infer_types_of(path, input_format=fmt, batch_size=size, skip=declared)
    whole = [n for n, t in inferred.items() if pa.types.is_integer(t)]
    if whole:
        pii = {n: "" for n in whole}
        for r in sorted(policy.declarations(), key=lambda r: r.selector[0] != "name"):
            for n in whole:
                if r.model.pii and not pii[n] and r.matches(n, "", frozenset()):
                    pii[n] = r.model.pii
        todo = [n for n in whole if not pii[n]]
        if todo:
            from masking.pii.detect import scan_table

            head = read_head(path, 1000, input_format=fmt).select(todo)
            pii.update({s.name: s.pii for s in scan_table(head)})
        for n in whole:
            if pii[n] not in ("", "none", "date"):
                inferred[n] = pa.string()
    return {**inferred, **declared}, origins


def _record(ledger: str | os.PathLike[str] | None, kind: str, payload: dict[str, Any]) -> None:
    if ledger is None:
        return
    from privacy.ledger import Ledger

    with Ledger(ledger) as log:
        log.append(kind, payload)


# ---- differential privacy: the budget per dataset ------------------------------------------


def _digest(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return "sha256:" + h.hexdigest()


def dp_spent(log: Any, dataset: str) -> float:
    """Epsilon the ledger ``log`` records as spent on ``dataset`` (sum of its
    ``masking.dp_release`` records: composition adds up over columns and releases)."""
    total = 0.0
    for rec in log.records(DP_RELEASE):
        if rec.payload.get("dataset") == dataset:
            total += float(rec.payload.get("epsilon", 0.0))
    return total


class _DpRelease:
    """The noise columns of one run, their dataset id and the budget check."""

    def __init__(self, policy: Policy, plan: Plan, input_path: str | os.PathLike[str],
                 ledger: str | os.PathLike[str] | None) -> None:
        self.columns = [(c.column, c.operator) for c in plan.columns
                        if isinstance(c.operator, Noise)]
        self.budget = policy.dp.budget
        self.dataset = policy.dp.dataset or (_digest(input_path) if self.columns else "")
        self.epsilon = sum(float(op.epsilon or 0.0) for _, op in self.columns)
        self.ledger = ledger
        self.spent: float | None = None
        if self.columns and self.budget is not None and ledger is None:
            raise PolicyError(
                f"the policy sets a privacy budget (dp.budget: {self.budget:g}) for dataset "
                f"{self.dataset!r}; pass --ledger FILE so that what this release spends can "
                "be checked against it and recorded")

    def check(self, spent: float) -> None:
        """Refuse (:class:`PolicyError`, exit 2) when ``spent`` (what the ledger shows on
        the dataset) plus this release would exceed the budget."""
        self.spent = spent
        if not self.columns or self.budget is None:
            return
        if spent + self.epsilon > self.budget * (1 + 1e-9):
            cols = ", ".join(f"{name} {op.epsilon:g}" for name, op in self.columns)
            raise PolicyError(
                f"privacy budget of dataset {self.dataset!r} exhausted: the ledger shows "
                f"epsilon {spent:g} of {self.budget:g} spent, and this release needs "
                f"{self.epsilon:g} more ({cols}); nothing was written")

    def check_now(self) -> None:
        """The budget check before anything is written (the ledger opened read-only)."""
        if not self.columns or self.ledger is None:
            return
        from privacy.ledger import Ledger

        spent = 0.0
        if Path(self.ledger).exists():
            with Ledger(self.ledger, read_only=True) as log:
                spent = dp_spent(log, self.dataset)
        self.check(spent)

    def records(self, run: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        return [(DP_RELEASE, {"dataset": self.dataset, "column": name,
                              "epsilon": float(op.epsilon or 0.0), "mechanism": "laplace",
                              "lower": op.lower, "upper": op.upper,
                              "policy_hash": run["policy_hash"], "view": run["view"],
                              "output": run["output"], "rows": run["rows_out"]})
                for name, op in self.columns]

    def summary(self) -> dict[str, Any] | None:
        if not self.columns:
            return None
        out: dict[str, Any] = {"dataset": self.dataset, "epsilon": self.epsilon,
                               "columns": {n: op.epsilon for n, op in self.columns}}
        if self.spent is not None:
            out["spent_before"] = self.spent
        if self.budget is not None:
            out["budget"] = self.budget
        return out


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
    types, origins = _input_types(policy, input_path, input_format, batch_size)
    first, rest = _batches(input_path, input_format, batch_size, types=types, origins=origins)
    table_name = Path(input_path).name.split(".")[0]
    plan = engine.plan(first, view, table_name=table_name)
    release = _DpRelease(policy, plan, input_path, ledger)
    release.check_now()  # refuse before anything is written
    rows_in, gate_report = 0, None
    with open_writer(output, output_format=output_format, metadata=plan.metadata()) as out:

        def masked() -> Iterator[pa.RecordBatch]:
            nonlocal rows_in
            for batch in _chain(first, rest):
                yield engine.mask_batch(plan, batch, rows_in, source=str(input_path))
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
            "key_ids": plan.key_ids,
            "gate": gate_report,
        }
        dp = release.summary()
        if dp is not None:
            summary["dp"] = dp
        run = {k: v for k, v in summary.items() if k != "gate"} | {
            "suppressed": (gate_report or {}).get("suppressed", 0)}
        if ledger is not None:
            from privacy.ledger import Ledger

            with Ledger(ledger) as log:
                if release.columns:  # again: another run may have spent since the first check
                    release.check(dp_spent(log, release.dataset))
                log.append_many([("masking.run", run), *release.records(summary)])
    return summary


def _chain(first: pa.RecordBatch, rest: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    if first.num_rows:
        yield first
    yield from rest


def _key_id(value: Any, column: str, source: str) -> int | None:
    if value is None:
        return None
    try:
        if isinstance(value, str) and value.lower().startswith("0x"):
            key_id = int(value, 16)
            if 0 < key_id < 2**32:
                return key_id
    except ValueError:
        pass
    raise InputError(f"malformed key id {value!r} recorded for column {column!r}", file=source)


def _reveal_plan(policy: Policy, view: str | None, meta: Mapping[str, str],
                 keys: KeyProvider, columns: list[str], table_name: str, source: str) -> Plan:
    """The recorded plan, once its tag verifies under every keyset the reveal uses."""
    if METADATA_HASH in meta and meta[METADATA_HASH] != policy.hash:
        raise PolicyError(
            f"the input was masked under policy {meta[METADATA_HASH][:16]}..., not this policy "
            f"({policy.hash[:16]}...); reveal needs the policy it was masked with"
        )
    missing = [k for k in (METADATA_HASH, METADATA_VIEW, METADATA_PLAN, METADATA_MAC)
               if k not in meta]
    if missing:
        raise InputError(
            f"the input carries no authenticated column plan (no {missing[0]} in its "
            "metadata); only outputs of `covault mask apply` with the keysets can be "
            "revealed, with their metadata (Parquet schema metadata or OUTPUT.meta.json) "
            "as written", file=source)
    try:
        recorded = json.loads(meta[METADATA_PLAN])
        macs = json.loads(meta[METADATA_MAC])
    except (ValueError, RecursionError):  # JSONDecodeError, huge integers, deep nesting
        raise InputError("the column plan in the metadata is not valid JSON",
                         file=source) from None
    if not isinstance(recorded, dict) or not isinstance(macs, dict) or not all(
            isinstance(d, dict) and isinstance(d.get("operator"), str)
            and isinstance(d.get("context"), str) and isinstance(d.get("options") or {}, dict)
            for d in recorded.values()):
        raise InputError("the column plan in the metadata is malformed", file=source)
    recorded_view = meta[METADATA_VIEW]
    if view is not None and view != recorded_view:
        raise PolicyError(f"the input was masked under view {recorded_view!r}, not {view!r}")
    verifiers: dict[str, Keyset] = {}
    for name in columns:
        d = recorded.get(name)
        op = build_operator(d["operator"], d.get("options")) if d is not None else None
        if op is None or not op.reversible:
            used = op.name if op is not None else "no recorded operator"
            raise PolicyError(f"column {name!r} was masked with {used!r}, which is not "
                              "reversible (only tokenize, encrypt and fpe are)")
        ks = keys.get(op.templates, operator=op.name, column=name,
                      prefer=getattr(op, "template", None))
        verifiers[ks.template] = ks
    for ks in verifiers.values():
        verify_plan(ks, macs, meta[METADATA_HASH], recorded_view, recorded, source=source)
    plan_columns = [  # only revealed columns need their operator (others pass through)
        ColumnPlan(name, d.get("pii", ""),
                   build_operator(d["operator"], d.get("options")) if name in columns
                   else Keep(), None, d["context"], d.get("on_invalid", "fail"),
                   _key_id(d.get("key_id"), name, source))
        for name, d in recorded.items()
    ]
    scope = policy.context or table_name
    return Plan(recorded_view, policy.hash, scope, plan_columns, keys=keys)


def _check_key_ids(plan: Plan, keys: KeyProvider, columns: list[str], source: str
                   ) -> dict[str, str]:
    """Column -> recorded key id of the revealed columns whose values name no key (fpe);
    refuses a column with no recorded key id, or one the keyset does not hold enabled."""
    by_name = {c.column: c for c in plan.columns}
    out: dict[str, str] = {}
    for name in columns:
        cp = by_name[name]
        if not cp.operator.records_key_id:
            continue
        if cp.key_id is None:
            raise InputError(
                f"column {name!r} was masked with {cp.operator.name!r}, whose output carries "
                "no key id, and the input records none; refusing to reveal it with a "
                "guessed key", file=source)
        ks = keys.get(cp.operator.templates, operator=cp.operator.name, column=name)
        status = {i.key_id: i.status for i in ks.info()}
        if status.get(cp.key_id) != "enabled":
            held = ", ".join(format_key_id(k) for k in ks.key_ids)
            state = "is disabled in" if cp.key_id in status else "is not in"
            raise InputError(
                f"column {name!r} was encrypted with {ks.template} key "
                f"{format_key_id(cp.key_id)}, which {state} this keyset (it holds {held}); "
                "refusing to reveal", file=source)
        out[name] = format_key_id(cp.key_id)
    return out


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
    is given: ``masking.reveal.started`` before anything is decrypted, ``masking.reveal``
    when the output is complete, ``masking.reveal.aborted`` when the run fails or is
    interrupted. Other columns pass through unchanged.

    Raises
    ------
    InputError
        The input's column plan is missing, malformed, or does not authenticate under
        the keyset of a revealed column; an ``fpe`` column records no key id, or one
        the keyset does not hold. Nothing is written or recorded.
    """
    _distinct(input_path, output)
    if not columns:
        raise InputError("name the columns to reveal")
    source = str(input_path)
    keys = KeyProvider(keyset)
    meta = read_metadata(input_path, input_format)
    # revealed columns stay text (tokens, ciphertexts); the others are typed as in a run
    types, _ = _input_types(policy, input_path, input_format, batch_size, text=columns)
    first, rest = _batches(input_path, input_format, batch_size, types=types)
    for name in columns:
        if name not in first.schema.names:
            raise InputError(f"column {name!r} is not in the input", file=source)
    plan = _reveal_plan(policy, view, meta, keys, columns, Path(input_path).name.split(".")[0],
                        source)
    key_ids = _check_key_ids(plan, keys, columns, source)
    by_name = {c.column: c for c in plan.columns}
    record = {"run": secrets.token_hex(8), "policy_hash": plan.policy_hash, "view": plan.view,
              "input": source, "output": str(output), "columns": columns,
              "key_ids": key_ids, "who": os.environ.get("USER") or _user(),
              "reason": reason or ""}
    _record(ledger, "masking.reveal.started", record)
    rows = 0
    meta_out = {k: v for k, v in meta.items()} | {"covault.revealed": ",".join(columns)}
    try:
        with open_writer(output, output_format=output_format, metadata=meta_out) as out:
            for batch in _chain(first, rest):
                arrays = []
                for name in batch.schema.names:
                    values = batch.column(name)
                    if name in columns:
                        cp = by_name[name]
                        ctx = OpContext(column=name, context=cp.context, scope=plan.scope,
                                        keys=keys, key_id=cp.key_id)
                        values = _reverse(cp.operator, values, ctx, source, rows)
                    arrays.append(values)
                out.write(pa.RecordBatch.from_arrays(arrays, names=batch.schema.names))
                rows += batch.num_rows
                if progress is not None:
                    progress(batch.num_rows)
            out.close(first.schema)
            summary = record | {"rows": rows, "status": "finished"}
            _record(ledger, "masking.reveal", summary)
    except BaseException as exc:
        with contextlib.suppress(Exception):
            _record(ledger, "masking.reveal.aborted",
                    record | {"rows": rows, "status": "aborted", "error": type(exc).__name__})
        raise
    return summary


def _reverse(op: Operator, values: pa.Array, ctx: OpContext, source: str,
             offset: int) -> pa.Array:
    """``op.reverse`` of one batch's column; a value that does not reverse is an
    :class:`InputError` naming the file, the column and the row of the file (1-based).
    The ciphers name the row of the batch, 0-based, or none at all (AES-GCM, a key id
    the keyset lacks), so the failing row is found again here by halving the batch."""
    try:
        return op.reverse(values, ctx)
    except (CovaultError, pa.ArrowInvalid) as exc:
        fails = _fails(op, ctx)
        lo, hi = 0, len(values)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if fails(values.slice(lo, mid - lo)) else (mid, hi)
        if hi - lo != 1 or not fails(values.slice(lo, 1)):
            raise
        if isinstance(exc, InputError):
            detail = exc.detail  # FF1: the character and position, without the row
        elif isinstance(exc, KeyNotFoundError):
            detail = str(exc)
        else:
            detail = ("the value does not decrypt under this keyset for this column "
                      "(altered, or made with another key or for another column)")
        raise InputError(f"cannot reveal: {detail}", file=source, column=ctx.column,
                         row=offset + lo + 1) from None


def _fails(op: Operator, ctx: OpContext) -> Callable[[pa.Array], bool]:
    def fails(part: pa.Array) -> bool:
        try:
            op.reverse(part, ctx)
        except (CovaultError, pa.ArrowInvalid):
            return True
        return False
    return fails


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
