"""``covault fl report``: turn a federated run's result JSON into one HTML file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from covault.console import atomic_output, emit_json, format_option, handle_errors, out
from federated.report import render_report
from privacy.errors import InputError


def load_result(path: str) -> dict[str, Any]:
    """Read a result JSON file: an object with a ``kind``.

    Raises
    ------
    InputError
        The file is missing or unreadable, not UTF-8 JSON, not an object, or has no
        ``kind``; the message names the file.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise InputError(f"cannot read the result: {why}", file=path) from exc
    try:
        result = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc.msg} (column {exc.colno})", file=path,
                         line=exc.lineno) from exc
    if not isinstance(result, dict):
        raise InputError(f"expected a JSON object (a federated run's result), got "
                         f"{type(result).__name__}", file=path)
    if "kind" not in result:
        raise InputError("missing 'kind' (horizontal or vertical): is this a federated "
                         "run's result?", file=path)
    return result


@click.command("report")
@click.argument("result_path", metavar="RESULT.json")
@click.option("--out", "-o", "out_path", required=True, type=click.Path(dir_okay=False),
              help="HTML file to write (atomically).")
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
@format_option
@handle_errors
def report(result_path: str, out_path: str, force: bool, fmt: str) -> None:
    """Write the HTML report of a federated run from its RESULT.json.

    One self-contained file (inline charts, no scripts, nothing loaded from the
    network): summary, learning curves, cost per round, ROC and calibration, per-party
    gain over local-only models, and for vertical runs guest-only vs joint and IV.
    """
    if Path(out_path).exists() and not force:
        raise InputError(f"{out_path} exists; pass --force to overwrite it")
    page = render_report(load_result(result_path))
    with atomic_output(out_path, "w") as fh:
        fh.write(page)
    if fmt == "json":
        emit_json({"report": out_path})
        return
    out.print(f"wrote {out_path}", markup=False)
