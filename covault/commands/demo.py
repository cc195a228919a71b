"""``covault demo``: every capability, end to end, on built-in sample data."""

from __future__ import annotations

import importlib
import json
import time
from pathlib import Path
from typing import Any

import click

from covault.console import emit_json, format_option, handle_errors, out
from privacy.atomic import atomic_write_text
from privacy.keys import Kek

# Each step is a module of covault.demo with TITLE and run(ctx) -> dict.
STEPS = ["fields", "masking", "joint", "audit", "federated", "vertical"]


@click.command()
@click.option(
    "--out",
    "-o",
    "out_dir",
    default="demo-out",
    show_default=True,
    type=click.Path(file_okay=False),
)
@click.option("--step", "steps", multiple=True, type=click.Choice(STEPS), help="Run only these.")
@format_option
@handle_errors
def demo(out_dir: str, steps: tuple[str, ...], fmt: str) -> None:
    """Run every step on built-in sample data; outputs, summary.md and index.html (links
    to every step's files) go to OUT."""
    from covault.demo.context import DemoContext
    from covault.demo.report import index_html, markdown, text_lines

    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    kek_path = root / "keys" / "demo.kek"
    Kek.generate_key_file(kek_path)
    kek = Kek.from_key_file(kek_path)
    ctx = DemoContext(out=root, kek=kek)
    summary: dict[str, Any] = {}
    for name in steps or STEPS:
        module = importlib.import_module(f"covault.demo.{name}")
        started = time.perf_counter()
        if fmt == "text":
            out.print(f"[bold]▶ {module.TITLE}[/]")
        result = module.run(ctx)
        result["seconds"] = round(time.perf_counter() - started, 2)
        summary[name] = {"title": module.TITLE, **result}
        if fmt == "text":
            for line in text_lines(result):
                out.print(line, markup=False)
    atomic_write_text(root / "summary.json", json.dumps(summary, indent=2, ensure_ascii=False))
    atomic_write_text(root / "summary.md", markdown(summary, root))
    atomic_write_text(root / "index.html", index_html(summary, root))
    if fmt == "json":
        emit_json(summary)
    else:
        out.print(f"[green]demo finished[/]: {root / 'index.html'} links every output; "
                  f"summary in {root / 'summary.md'}", markup=True)
