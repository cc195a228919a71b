"""``covault scan``: find personal data in a table file and suggest a masking policy."""

from __future__ import annotations

import datetime as _dt

import click

from covault.console import (
    atomic_output,
    emit_json,
    format_option,
    handle_errors,
    print_table,
    refuse_overwrite,
)
from masking.io import FORMATS, read_head
from masking.pii import ColumnScan, scan_table
from masking.pii.intext import STRUCTURED_TEXT_TYPES
from masking.pii.names import names_available
from masking.pii.suggest import suggest_policy

#: How many rows per sampled value are read from the head of the file.
HEAD_FACTOR = 10


@click.command("scan")
@click.argument("input_path", metavar="INPUT")
@click.option(
    "--input-format",
    type=click.Choice(FORMATS),
    default=None,
    help="csv, parquet or jsonl (default: from the file extension).",
)
@click.option(
    "--sample",
    default=1000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Values sampled per column.",
)
@click.option("--seed", default=0, show_default=True, help="Seed of the random sample.")
@click.option(
    "--threshold",
    default=0.8,
    show_default=True,
    type=click.FloatRange(0.0, 1.0, min_open=True),
    help="Minimum confidence to report a PII type.",
)
@click.option(
    "--today",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Reference date for birth dates in ids (default: today).",
)
@click.option(
    "--suggest-policy",
    "policy_out",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write a starter masking policy (YAML) for review to this file.",
)
@click.option(
    "--text/--no-text",
    "in_text",
    default=True,
    show_default=True,
    help="Also count ids, USCC, cards, mobiles and e-mails inside text columns of type none.",
)
@click.option(
    "--names",
    is_flag=True,
    help="Also count Chinese person names inside text (needs covault[names]).",
)
@click.option("--force", is_flag=True, help="Overwrite an existing --suggest-policy file.")
@format_option
@handle_errors
def scan(
    input_path: str,
    input_format: str | None,
    sample: int,
    seed: int,
    threshold: float,
    today: _dt.datetime | None,
    policy_out: str | None,
    in_text: bool,
    names: bool,
    force: bool,
    fmt: str,
) -> None:
    """Detect PII columns (China pack) in a CSV, Parquet or JSON Lines file.

    Reads at most 10 x --sample rows from the start of INPUT, samples --sample values
    per column from them, and reports each column's PII type, confidence and JR/T 0171
    class. A file sorted by a PII column, or whose first rows are unrepresentative,
    may need a larger --sample. Text columns of no PII type (remarks, notes) are also
    searched inside their cells, and the identifiers found are counted per type.
    """
    refuse_overwrite(policy_out, force=force)
    if names and not in_text:
        raise click.UsageError("--names counts names inside text; it cannot go with --no-text")
    text_types = None
    if in_text:
        text_types = STRUCTURED_TEXT_TYPES + (("cn_name",) if names else ())
        if names and not names_available():
            raise click.UsageError("--names needs the name model: pip install 'covault[names]'")
    head = read_head(input_path, sample * HEAD_FACTOR, input_format=input_format)
    scans = scan_table(
        head,
        sample=sample,
        seed=seed,
        threshold=threshold,
        today=today.date() if today else None,
        text_types=text_types,
    )
    if policy_out is not None:
        with atomic_output(policy_out, "w") as fh:
            fh.write(suggest_policy(scans, source=input_path))
    if fmt == "json":
        emit_json(
            {
                "columns": [
                    {
                        "name": s.name,
                        "pii": s.pii,
                        "confidence": s.confidence,
                        "jrt_class": s.jrt_class,
                        "in_text": None if s.in_text is None else {
                            "cells": s.in_text.cells,
                            "cells_with_pii": s.in_text.cells_with_pii,
                            "counts": s.in_text.counts,
                        },
                    }
                    for s in scans
                ]
            }
        )
        return
    from rich.markup import escape  # a column named "[bold]id" is a name, not markup

    print_table(
        f"PII scan of {escape(input_path)} ({len(head)} rows read)",
        ["column", "PII type", "confidence", "JR/T 0171", "PII in text"],
        [(escape(s.name), s.pii, f"{s.confidence:.2f}", s.jrt_class or "-", _in_text(s))
         for s in scans],
    )
    if policy_out is not None:
        click.echo(f"starter policy written to {policy_out}; review it before use", err=True)


def _in_text(s: ColumnScan) -> str:
    """``cn_mobile 412, cn_resident_id 398 (in 610/1000 cells)``, or ``-``."""
    if s.in_text is None or not s.in_text.counts:
        return "-"
    found = ", ".join(f"{t} {n}" for t, n in s.in_text.counts.items())
    return f"{found} (in {s.in_text.cells_with_pii}/{s.in_text.cells} cells)"
