"""Helpers for the deployment-mode tests (a SuperLink and one SuperNode per bank): a
sample config over three banks' loan books, and a drill that kills a SuperNode."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from federated.sample import write_loan_books

ROUNDS = 3


def deploy_config(folder: Path, *, mode: str, extra: str = "", rounds: int = ROUNDS) -> Path:
    """Three banks' loan books and a secagg config (``extra`` after the round timeout)."""
    config = write_loan_books(folder, [150, 300, 450], test_rows=300, rounds=rounds, seed=3,
                              mode=mode, method="secagg")
    text = config.read_text(encoding="utf-8").replace(
        "[aggregation]", "round_timeout = 25\n\n[aggregation]" + extra)
    config.write_text(text, encoding="utf-8")
    return config


class KillAfterRound:
    """Kill SuperNode ``index`` once ``after`` rounds are done (from ``progress``)."""

    def __init__(self, index: int, after: int) -> None:
        self.index, self.after = index, after
        self.federation: Any = None
        self.killed = False

    def on_start(self, federation: Any) -> None:
        self.federation = federation

    def progress(self, done: int, rounds: int) -> None:
        if done >= self.after and not self.killed:
            self.federation.kill_node(self.index)
            self.killed = True
