"""The ``covault`` command line. Each command group lives in ``covault/commands/``."""

from __future__ import annotations

import importlib

import click

from covault import __version__

# (module under covault.commands, attribute): each is a click command or group.
_GROUPS: list[tuple[str, str]] = [
    ("keys", "keys"),
    ("fields", "fields"),
    ("demo", "demo"),
    ("he", "he"),
    ("psi", "psi"),
    ("scan", "scan"),
    ("ledger", "ledger"),
    ("mask", "mask"),
    ("audit", "audit"),
    ("fl", "fl"),
]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="covault")
def main() -> None:
    """covault: privacy-preserving data collaboration for banks.

    Field encryption and masking, query audit, homomorphic aggregation, private set
    intersection and federated learning. Every command takes --help.
    """


for _module, _attr in _GROUPS:
    main.add_command(getattr(importlib.import_module(f"covault.commands.{_module}"), _attr))
