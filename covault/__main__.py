"""``python -m covault``: the same as the ``covault`` command."""

from covault.cli import main

main(prog_name="covault")
