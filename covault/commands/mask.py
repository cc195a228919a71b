"""``covault mask``: masking policies applied to whole tables, risk gates, reveal."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from covault.console import emit_json, format_option, handle_errors, print_table, refuse_overwrite
from covault.keyopts import kek_options, open_keyset
from masking.io import FORMATS
from masking.policy import Policy, ResolvedView, policy_schema
from masking.presets import PRESETS, preset_text
from privacy.errors import InputError, RiskGateError
from privacy.keys import Keyset

_FORMAT = click.Choice(FORMATS)


@click.group("mask")
def mask() -> None:
    """Mask tables with policies (YAML): apply, check, diff, risk gates, reveal.

    A policy maps columns (by name, glob, detected PII type or tag) to operators per
    view (display, analytics, partner_export, ...). `covault mask schema` prints the
    policy language's JSON Schema; `covault mask preset jrt0171` prints the JR/T 0171
    preset to start from.
    """


def _policy(policy_path: str | None, preset: str | None) -> Policy:
    if (policy_path is None) == (preset is None):
        raise InputError("give exactly one of --policy FILE or --preset NAME")
    if policy_path is not None:
        return Policy.load(policy_path)
    assert preset is not None
    return Policy.preset(preset)


def _refuse_overwrite(input_path: str, output: str, force: bool) -> None:
    """Refuse an existing OUTPUT without ``--force`` (before any work). An OUTPUT that is
    the INPUT is left to :func:`masking.files.mask_file`, which refuses it even with
    ``--force``."""
    with contextlib.suppress(OSError):
        if Path(input_path).resolve() == Path(output).resolve():
            return
    refuse_overwrite(output, force=force)


def _keysets(paths: tuple[str, ...], kek_file: str | None, passphrase_env: str) -> list[Keyset]:
    return [open_keyset(p, kek_file, passphrase_env) for p in paths]


@contextlib.contextmanager
def _progress(label: str) -> Iterator[Callable[[int], None]]:
    if not sys.stderr.isatty():
        yield lambda n: None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from covault.console import err

    with Progress(SpinnerColumn(), TextColumn("{task.description}"),
                  TextColumn("{task.completed:,} rows"), TimeElapsedColumn(),
                  console=err, transient=True) as bar:
        task = bar.add_task(label, total=None)
        yield lambda n: bar.advance(task, n)


_policy_options = [
    click.option("--policy", "-p", "policy_path", type=click.Path(dir_okay=False),
                 help="Policy file (YAML)."),
    click.option("--preset", type=click.Choice(PRESETS), help="A built-in preset instead."),
    click.option("--view", "-v", default=None, help="The view (purpose) to apply."),
]


def _with(options: list[Any]) -> Callable[[Any], Any]:
    def deco(fn: Any) -> Any:
        for option in reversed(options):
            fn = option(fn)
        return fn

    return deco


@mask.command("schema")
@handle_errors
def schema() -> None:
    """Print the JSON Schema of the policy language."""
    click.echo(json.dumps(policy_schema(), ensure_ascii=False, indent=2))


@mask.command("preset")
@click.argument("name", type=click.Choice(PRESETS))
@handle_errors
def preset_cmd(name: str) -> None:
    """Print a built-in preset's YAML (copy it to start a policy)."""
    click.echo(preset_text(name), nl=False)


@mask.command("check")
@click.argument("policy_path", metavar="POLICY", type=click.Path(dir_okay=False))
@format_option
@handle_errors
def check(policy_path: str, fmt: str) -> None:
    """Validate a policy file; errors name file:line and exit 2."""
    policy = Policy.load(policy_path)
    views = {name: _effective(policy.view(name)) for name in policy.view_names}
    if fmt == "json":
        emit_json({"ok": True, "policy": policy_path, "hash": policy.hash, "views": views})
        return
    click.echo(f"{policy_path}: ok (policy hash {policy.hash})")
    for name, rules in views.items():
        click.echo(f"  view {name}: {len(rules)} rules")


def _effective(view: ResolvedView) -> dict[str, str]:
    """Selector -> operator as the view resolves it (winning rule per selector)."""
    out: dict[str, str] = {"(default)": view.default}
    for rules in reversed(view.levels):
        for rule in reversed(rules):
            if rule.operator is not None:
                out[rule.model.label()] = rule.operator.describe()
    return out


@mask.command("diff")
@click.argument("before", type=click.Path(dir_okay=False))
@click.argument("after", type=click.Path(dir_okay=False))
@click.option("--view", "-v", "views", multiple=True, help="Only these views (repeat).")
@click.option("--input", "input_path", type=click.Path(dir_okay=False), default=None,
              help="Compare per column of this file (detection on its first rows).")
@format_option
@handle_errors
def diff(before: str, after: str, views: tuple[str, ...], input_path: str | None,
         fmt: str) -> None:
    """Show every difference between two policies that can change an output.

    Policy-wide settings (context, default, dp, extends), top-level column rules and
    declarations (pii, tags, type), and per view its resolved settings (default,
    row_filter, gate with every option), inherited views and the winning rule per
    selector (operator, options, context, on_invalid, ...), down to the changed option:
    `gate > k_anonymity.k: 5 -> 2`. With --input, rules are compared per column of the
    file instead.

    Exit 0 when the policies do the same, 1 when they differ (like diff), 2 on a bad
    policy or input.
    """
    from rich.markup import escape

    from masking.policy_diff import diff_policies, render

    p1, p2 = Policy.load(before), Policy.load(after)
    for name in views:
        if name not in p1.view_names and name not in p2.view_names:
            raise InputError(f"--view {name!r} is in neither policy (views: "
                             f"{', '.join(dict.fromkeys(p1.view_names + p2.view_names))})")
    columns = None
    if input_path is not None:
        names = list(views) or list(dict.fromkeys(p1.view_names + p2.view_names)) or [None]
        columns = {name: (_columns(p1, name, input_path), _columns(p2, name, input_path))
                   for name in names}
    changes = diff_policies(p1, p2, list(views) or None, columns=columns)
    if fmt == "json":
        emit_json({"before": p1.hash, "after": p2.hash, "identical": not changes,
                   "changes": [c.as_dict() for c in changes]})
    elif not changes:
        same = "" if p1.hash == p2.hash else " (the texts differ, not what they do)"
        click.echo(f"no differences{same}")
    else:
        print_table(f"{before} -> {after}: {len(changes)} change(s)",
                    ["view", "what", "change", "before", "after"],
                    [(escape(c.view or "(policy)"), escape(c.where), c.kind,
                      escape(render(c.before)), escape(render(c.after))) for c in changes])
    if changes:
        sys.exit(1)


def _columns(policy: Policy, view: str | None, input_path: str) -> dict[str, Any]:
    """Column -> what the view does to it (operator, options, context, ...), for a view
    of ``policy`` on the first rows of ``input_path``; empty without such a view."""
    if view is not None and view not in policy.view_names:
        return {}
    from masking.engine import MaskingEngine
    from masking.io import read_head

    head = read_head(input_path, 5000)
    plan = MaskingEngine(policy).plan(head, view, check_keys=False)
    return {c.column: json.loads(json.dumps(c.describe(), ensure_ascii=False, default=str))
            for c in plan.columns}


@mask.command("apply")
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False))
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False),
              help="Output file (.csv, .parquet or .jsonl).")
@_with(_policy_options)
@click.option("--keyset", "-k", "keysets", multiple=True, type=click.Path(dir_okay=False),
              help="Keyset file; repeat. Each file's template serves its operators.")
@click.option("--ledger", type=click.Path(dir_okay=False), default=None,
              help="Append a record of this run to this disclosure ledger.")
@click.option("--input-format", type=_FORMAT, default=None, help="Default: from extension.")
@click.option("--output-format", type=_FORMAT, default=None, help="Default: from extension.")
@click.option("--batch-size", default=65_536, show_default=True, type=click.IntRange(min=1))
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
@kek_options
@format_option
@handle_errors
def apply(input_path: str, output: str, policy_path: str | None, preset: str | None,
          view: str | None, keysets: tuple[str, ...], ledger: str | None,
          input_format: str | None, output_format: str | None, batch_size: int,
          force: bool, kek_file: str | None, passphrase_env: str, fmt: str) -> None:
    """Mask INPUT into OUTPUT under a view of a policy or preset.

    Streams record batches; writes atomically (no output on any error); stamps the
    policy hash and view into the output (Parquet metadata, or OUTPUT.meta.json).
    An existing OUTPUT is refused unless --force is given.
    Exit 1 when the view's risk gate is not met, 2 on bad input or policy.
    """
    from masking.files import mask_file

    _refuse_overwrite(input_path, output, force)
    policy = _policy(policy_path, preset)
    keys = _keysets(keysets, kek_file, passphrase_env)
    with _progress(f"masking {input_path}") as progress:
        summary = mask_file(policy, input_path, output, view=view, keyset=keys,
                            input_format=input_format, output_format=output_format,
                            batch_size=batch_size, ledger=ledger, progress=progress)
    if fmt == "json":
        emit_json(summary)
        return
    gate = summary.get("gate") or {}
    click.echo(f"{summary['rows_in']:,} rows in, {summary['rows_out']:,} rows out "
               f"({gate.get('suppressed', 0):,} suppressed by the gate) -> {output}")
    from rich.markup import escape  # column names and options are data, not markup

    print_table(f"view {escape(summary['view'])} (policy {summary['policy_hash'][:16]})",
                ["column", "operator"], [(escape(c), escape(op))
                                         for c, op in summary["columns"].items()])


@mask.command("risk")
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False))
@click.option("--quasi", required=True, help="Quasi-identifier columns, comma-separated.")
@click.option("--sensitive", default=None, help="Sensitive column (for l and t).")
@click.option("--k", "k", type=click.IntRange(min=1), default=None, help="Required k.")
@click.option("--l", "l_req", type=click.IntRange(min=1), default=None, help="Required l.")
@click.option("--t", "t_req", type=click.FloatRange(0, 1), default=None, help="Required t.")
@click.option("--input-format", type=_FORMAT, default=None)
@format_option
@handle_errors
def risk(input_path: str, quasi: str, sensitive: str | None, k: int | None,
         l_req: int | None, t_req: float | None, input_format: str | None, fmt: str) -> None:
    """Measure k-anonymity, l-diversity and t-closeness of a table; exit 1 if a required
    level (--k, --l, --t) is not met."""
    import pyarrow as pa

    from masking.io import iter_batches
    from masking.risk import risk_report

    cols = [c.strip() for c in quasi.split(",") if c.strip()]
    if (l_req is not None or t_req is not None) and sensitive is None:
        raise InputError("--l and --t need --sensitive")
    wanted = cols + ([sensitive] if sensitive else [])
    batches = [b.select(wanted) if set(wanted) <= set(b.schema.names) else b
               for b in iter_batches(input_path, input_format=input_format)]
    table = pa.Table.from_batches(batches)
    report = risk_report(table, cols, sensitive, k=k).as_dict()
    failed = []
    advice = None
    if k is not None and report["k"] < k:
        from masking.risk_advice import k_anonymity_advice

        failed.append(f"k = {report['k']} < {k}")
        advice = k_anonymity_advice(table, cols, k)
        report["advice"] = advice.as_dict()
    if l_req is not None and (report["l"] or 0) < l_req:
        failed.append(f"l = {report['l']} < {l_req}")
    if t_req is not None and (report["t"] or 0) > t_req:
        failed.append(f"t = {report['t']} > {t_req}")
    report["quasi"] = cols
    report["ok"] = not failed
    if fmt == "json":
        emit_json(report)
    else:
        from rich.markup import escape

        print_table(f"re-identification risk of {escape(input_path)}", ["measure", "value"],
                    [(key, report[key]) for key in ("rows", "classes", "k", "rows_below_k",
                                                    "l", "t") if report[key] is not None])
    if failed:
        lines = advice.lines() if advice is not None else []
        raise RiskGateError("\n".join(["; ".join(failed), *lines]))


@mask.command("reveal")
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False))
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False))
@_with(_policy_options)
@click.option("--keyset", "-k", "keysets", multiple=True, required=True,
              type=click.Path(dir_okay=False), help="Keyset file; repeat.")
@click.option("--columns", required=True, help="Columns to reveal, comma-separated.")
@click.option("--reason", default=None,
              help="Why (recorded in the ledger); required with --ledger.")
@click.option("--ledger", type=click.Path(dir_okay=False), default=None,
              help="Record this re-identification in this ledger (needs --reason).")
@click.option("--input-format", type=_FORMAT, default=None)
@click.option("--output-format", type=_FORMAT, default=None)
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
@kek_options
@format_option
@handle_errors
def reveal(input_path: str, output: str, policy_path: str | None, preset: str | None,
           view: str | None, keysets: tuple[str, ...], columns: str, reason: str | None,
           ledger: str | None, input_format: str | None, output_format: str | None,
           force: bool, kek_file: str | None, passphrase_env: str, fmt: str) -> None:
    """Re-identify tokenize/encrypt/fpe columns of a masked file with the keyset.

    An authorized act: with --ledger it is recorded (who = $USER, reason, columns, rows),
    and --reason is then required. An existing OUTPUT is refused unless --force is given.
    """
    from masking.files import reveal_file

    _refuse_overwrite(input_path, output, force)
    if ledger is not None and (reason is None or not reason.strip()):
        raise InputError(
            "--reason is required with --ledger: say why these values are re-identified "
            "(it is recorded with the reveal)")

    policy = _policy(policy_path, preset)
    keys = _keysets(keysets, kek_file, passphrase_env)
    cols = [c.strip() for c in columns.split(",") if c.strip()]
    with _progress(f"revealing {input_path}") as progress:
        summary = reveal_file(policy, input_path, output, view=view, keyset=keys, columns=cols,
                              reason=reason, input_format=input_format,
                              output_format=output_format, ledger=ledger, progress=progress)
    if fmt == "json":
        emit_json(summary)
    else:
        click.echo(f"revealed {', '.join(cols)} in {summary['rows']:,} rows -> {output}")
