"""``covault fl score`` and ``covault fl iv``: the vertical jobs besides training."""

from __future__ import annotations

from pathlib import Path

import click

from covault.commands.fl_run import print_iv
from covault.console import emit_json, format_option, handle_errors, out
from privacy.errors import InputError


@click.command("score")
@click.argument("config_path", metavar="CONFIG.toml", type=click.Path(dir_okay=False))
@click.option("-o", "--out", "out_path", type=click.Path(dir_okay=False), required=True,
              help="CSV the guest writes: the id and the probability of each customer "
                   "every party's score file holds.")
@click.option("--force", is_flag=True, help="Overwrite an existing --out file.")
@click.option("--ledger", "ledger_path", type=click.Path(dir_okay=False), default=None,
              help="The coordinator's ledger database (parties' ledgers beside it).")
@format_option
@handle_errors
def score(config_path: str, out_path: str, force: bool, ledger_path: str | None,
          fmt: str) -> None:
    """Score new customers jointly with a trained vertical model.

    Each party reads its own [[party]] score file and its own model part ([[party]]
    model, written by `covault fl run`); the files are aligned by PSI on the id column,
    each host contributes its partial scores encrypted, and only the guest learns and
    writes the scores.
    """
    from federated.runner import score as score_job

    if Path(out_path).exists() and not force:
        raise InputError(f"{out_path} exists; pass --force to overwrite it")
    result = score_job(config_path, out_path, ledger=ledger_path)
    if fmt == "json":
        emit_json(result)
        return
    out.print(f"scored {result.get('written')} customers shared by every party; wrote "
              f"{result.get('output')}")


@click.command("iv")
@click.argument("config_path", metavar="CONFIG.toml", type=click.Path(dir_okay=False))
@click.option("--ledger", "ledger_path", type=click.Path(dir_okay=False), default=None,
              help="The coordinator's ledger database (parties' ledgers beside it).")
@format_option
@handle_errors
def iv(config_path: str, ledger_path: str | None, fmt: str) -> None:
    """Information value of every guest and host column (federated binning and WOE).

    Hosts bin their own columns and sum the guest's encrypted labels per bin; the guest
    learns only per-bin counts, the hosts learn no labels. Prints one row per column
    (strongest first); --format json prints {"intersection", "iv", "party"}.
    """
    from federated.runner import information_value

    result = information_value(config_path, ledger=ledger_path)
    if fmt == "json":
        emit_json(result)
        return
    out.print(f"{result['intersection']} shared customers")
    print_iv(result["iv"], result.get("party"))
