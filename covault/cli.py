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


def _max_field_bytes(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    from masking.io import DEFAULT_MAX_FIELD_BYTES, parse_size, set_max_field_bytes
    from privacy.errors import InputError

    try:  # every invocation sets it, so one run's setting never leaks into the next
        set_max_field_bytes(DEFAULT_MAX_FIELD_BYTES if value is None else parse_size(value))
    except InputError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="covault")
@click.option("--max-field-bytes", metavar="SIZE", envvar="COVAULT_MAX_FIELD_BYTES",
              callback=_max_field_bytes, expose_value=False, is_eager=True,
              help="Largest CSV field any command reads, e.g. 16M [default: 1M; env "
                   "COVAULT_MAX_FIELD_BYTES]. A row may hold 1 MiB besides its largest field.")
@click.pass_context
def main(ctx: click.Context) -> None:
    """covault: privacy-preserving data collaboration for banks.

    Field encryption and masking, query audit, homomorphic aggregation, private set
    intersection and federated learning. Every command takes --help.
    """
    from covault.console import one_line_warnings

    ctx.with_resource(one_line_warnings())


for _module, _attr in _GROUPS:
    main.add_command(getattr(importlib.import_module(f"covault.commands.{_module}"), _attr))
