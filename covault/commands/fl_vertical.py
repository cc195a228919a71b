"""``covault fl score`` (vertical: jointly; horizontal: at one bank) and ``covault fl iv``."""

from __future__ import annotations

import click

from covault.commands.fl_run import print_iv
from covault.console import (
    check_outputs,
    emit_json,
    force_option,
    format_option,
    handle_errors,
    out,
)


@click.command("score")
@click.argument("config_path", metavar="[CONFIG.toml]", required=False,
                type=click.Path(dir_okay=False))
@click.option("-o", "--out", "out_path", type=click.Path(dir_okay=False), required=True,
              help="CSV of scores: the id (or row number) and the probability.")
@click.option("--result", "result_path", type=click.Path(dir_okay=False), default=None,
              help="Horizontal model: the result JSON of `covault fl run -o` (scored here, "
                   "at this bank; no CONFIG.toml).")
@click.option("--data", "data_path", type=click.Path(dir_okay=False), default=None,
              help="Horizontal model: the customers to score (CSV or Parquet with the "
                   "training columns; the label may be absent).")
@click.option("--id", "id_column", default=None,
              help="Horizontal model: the id column to write beside each score (read as "
                   "text, as written) [default: the row number].")
@force_option
@click.option("--ledger", "ledger_path", type=click.Path(dir_okay=False), default=None,
              help="Vertical model: the coordinator's ledger database (parties' ledgers "
                   "beside it).")
@format_option
@handle_errors
def score(config_path: str | None, out_path: str, result_path: str | None,
          data_path: str | None, id_column: str | None, force: bool,
          ledger_path: str | None, fmt: str) -> None:
    """Score new customers with a trained model.

    Vertical (CONFIG.toml): each party reads its own [[party]] score file and its own
    model part ([[party]] model, written by `covault fl run`); the files are aligned by
    PSI on the id column, each host contributes its partial scores encrypted, and only
    the guest learns and writes the scores.

    Horizontal (--result RESULT.json --data FILE): every bank holds the global model, so
    a bank scores its own customers locally (logistic regression or trees); nothing
    leaves the bank.
    """
    check_outputs([("--out", out_path)], [("--result", result_path), ("--data", data_path),
                                          ("CONFIG.toml", config_path)], force=force)
    if result_path is not None or data_path is not None:
        if config_path is not None or result_path is None or data_path is None:
            raise click.UsageError("a horizontal model is scored with --result RESULT.json --data "
                             "FILE and no CONFIG.toml")
        from federated.local_scoring import score_file

        result = score_file(result_path, data_path, out_path, id_column=id_column)
    else:
        if config_path is None:
            raise click.UsageError("give CONFIG.toml (vertical model) or --result and --data "
                             "(horizontal model)")
        if id_column is not None:
            raise click.UsageError("--id is for a horizontal model (the config names a vertical "
                             "run's id column)")
        from federated.runner import score as score_job

        result = score_job(config_path, out_path, ledger=ledger_path)
    if fmt == "json":
        emit_json(result)
        return
    out.print(f"scored {result.get('written')} customers; wrote {result.get('output')}")


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
