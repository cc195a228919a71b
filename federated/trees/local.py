"""Run the federated trees in one process: the same coordinator, ClientApp and secure sum,
with Flower messages handed to each party's ClientApp directly instead of through a
SuperLink.

For tests and benchmarks: it measures the protocol (histograms, secure aggregation,
message encoding, ledgers) without Flower's transport, whose simulation engine polls
for messages every 0.1 s. ``drop={"bank_2": 5}`` makes a party stop answering after
its fifth message (a dropout drill); ``tamper(party, message)`` may alter a message on
its way to a party (a bad-input drill).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from privacy.errors import FederationError, InputError

__all__ = ["InProcessGrid", "run_in_process"]


class InProcessGrid:
    """A Flower ``Grid`` look-alike that calls each party's ClientApp in this process."""

    def __init__(self, client_app: Any, plan_path: str, parties: list[str], *,
                 drop: Mapping[str, int] | None = None,
                 tamper: Callable[[str, Any], None] | None = None) -> None:
        from flwr.app import Context, RecordDict
        from flwr.supercore.task_identity import TaskIdentity

        if TaskIdentity._run_id is None:  # what a ServerApp process has set
            TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 0, 1
        self.app = client_app
        self.names = {100 + i: p for i, p in enumerate(parties)}
        self.contexts = {
            node: Context(run_id=1, node_id=node,
                          node_config={"partition-id": i, "num-partitions": len(parties)},
                          state=RecordDict(), run_config={"plan": plan_path})
            for i, node in enumerate(self.names)}
        self.drop = dict(drop or {})
        self.tamper = tamper
        self.sent = {p: 0 for p in parties}
        #: per exchange: (action, seconds of all parties' handlers, of the slowest one)
        self.log: list[tuple[str, float, float]] = []

    def get_node_ids(self) -> list[int]:
        """Node ids, one per party."""
        return list(self.names)

    def send_and_receive(self, messages: Any, *, timeout: float | None = None) -> list[Any]:
        """Deliver each message and collect the replies (a dropped party gives none)."""
        out = []
        times = [0.0]
        action = ""
        for msg in messages:
            action = msg.metadata.message_type
            node = msg.metadata.dst_node_id
            party = self.names[node]
            self.sent[party] += 1
            if party in self.drop and self.sent[party] > self.drop[party]:
                continue
            if self.tamper is not None:
                self.tamper(party, msg)
            t0 = time.perf_counter()
            out.append(self.app(msg, self.contexts[node]))
            times.append(time.perf_counter() - t0)
        self.log.append((action, sum(times), max(times)))
        return out


def run_in_process(config: Any, *, ledger: str | Path | None = None,
                   drop: Mapping[str, int] | None = None,
                   tamper: Callable[[str, Any], None] | None = None,
                   log: list[tuple[str, float, float]] | None = None) -> Any:
    """Train a ``model = "gbdt"`` horizontal config in this process; an ``FLResult``.
    ``log`` receives the grid's per-exchange party timings (see :class:`InProcessGrid`).

    Raises
    ------
    ConfigError, InputError, FederationError
        As :func:`federated.run` does.
    """
    from federated.config import FLConfig, load_config
    from federated.runner import FLResult, _party_input_error, _plan, preflight
    from federated.trees.client import app as client_app
    from federated.trees.server import TreeCoordinator

    cfg = config if isinstance(config, FLConfig) else load_config(config)
    if cfg.model != "gbdt" or cfg.kind != "horizontal":
        raise InputError("run_in_process runs model = \"gbdt\", kind = \"horizontal\" configs")
    preflight(cfg)
    with tempfile.TemporaryDirectory(prefix="covault-gbdt-") as tmp:
        work = Path(tmp)
        plan = _plan(cfg, work, Path(ledger).resolve() if ledger else None)
        plan_path = work / "plan.json"
        plan_path.write_text(json.dumps(plan), encoding="utf-8")
        grid = InProcessGrid(client_app, str(plan_path), cfg.party_names, drop=drop,
                             tamper=tamper)
        coordinator = TreeCoordinator(grid, plan)
        try:
            result = coordinator.run()
        except FederationError as exc:  # as the runner: a party's own bad input
            if _party_input_error(str(exc)):
                raise InputError(str(exc)) from None
            raise
        finally:
            if log is not None:
                log.extend(grid.log)
            if coordinator.ledger is not None:
                coordinator.ledger.close()
    return FLResult.from_dict(result)
