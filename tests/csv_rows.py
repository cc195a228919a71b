"""Editing a party's CSV file in place, row by row (bad-input tests)."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any


def rewrite(path: Path, change: Callable[[list[dict[str, Any]]], Any]) -> None:
    """Read ``path``'s rows as dicts, let ``change`` edit the list, write it back."""
    rows = list(csv.DictReader(path.open()))
    change(rows)
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
