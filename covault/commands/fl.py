"""``covault fl``: federated learning runs, certificates and reports."""

from __future__ import annotations

import click


@click.group("fl")
def fl() -> None:
    """Federated learning across banks (horizontal) and with partners (vertical)."""


from covault.commands.fl_report import report  # noqa: E402
from covault.commands.fl_run import certs, run  # noqa: E402
from covault.commands.fl_vertical import iv, score  # noqa: E402

fl.add_command(report)
fl.add_command(run)
fl.add_command(certs)
fl.add_command(score)
fl.add_command(iv)
