"""One module per command group of the ``covault`` CLI."""
