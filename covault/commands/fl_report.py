"""``covault fl report``: turn a federated run's result JSON into one HTML file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from covault.console import atomic_output, emit_json, format_option, handle_errors, out
from federated.report import render_report
from privacy.errors import InputError

#: The keys a result of each kind holds (what ``covault fl run --format json`` writes)
#: and their JSON types; a vertical result also has ``epochs`` (or ``rounds``: trees).
REQUIRED: dict[str, list[tuple[str, type]]] = {
    "horizontal": [("rounds", int), ("aggregation", str), ("global", dict),
                   ("parties", dict), ("history", list)],
    "vertical": [("global", dict), ("parties", dict), ("history", list)],
}
_JSON = {int: "integer", str: "string", dict: "object", list: "array", float: "number",
         bool: "boolean", type(None): "null"}


def load_result(path: str) -> dict[str, Any]:
    """Read a result JSON file: an object with a ``kind`` and that kind's keys.

    Raises
    ------
    InputError
        The file is missing or unreadable, not UTF-8 JSON, not an object, has no or an
        unknown ``kind``, or lacks a key of that kind (or holds it with the wrong JSON
        type); the message names the file and what is missing.
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
    kind = result["kind"]
    if not isinstance(kind, str) or kind not in REQUIRED:
        raise InputError(f"'kind' is {repr(kind)[:60]}, expected \"horizontal\" or "
                         "\"vertical\"", file=path)
    missing = [repr(k) for k, _ in REQUIRED[kind] if k not in result]
    if kind == "vertical" and "epochs" not in result and "rounds" not in result:
        missing.append("'epochs' (or 'rounds' for trees)")
    if missing:
        raise InputError(f"not a whole {kind} run's result: missing {', '.join(missing)}",
                         file=path)
    for key, want in REQUIRED[kind]:
        if not isinstance(result[key], want) or isinstance(result[key], bool):
            got = _JSON.get(type(result[key]), type(result[key]).__name__)
            raise InputError(f"{key!r} must be a JSON {_JSON[want]}, not {got}", file=path)
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
