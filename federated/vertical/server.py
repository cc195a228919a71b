"""The vertical ServerApp: relays the steps of :mod:`federated.vertical.protocol`.

It finds which node is which party, then runs the protocol with a ``send`` that goes
over Flower's Grid (:class:`~federated.horizontal.grid.PartyGrid`: byte counts, one
ledger record per exchange, errors naming the party), and writes the result (or the
error) to the file the runner named.
"""

from __future__ import annotations

import time
from typing import Any

from federated.horizontal.grid import PartyGrid
from federated.serverapp import run_plan_job
from federated.vertical import wire
from federated.vertical.boosting import run_vertical_gbdt
from federated.vertical.client import message_type
from federated.vertical.protocol import iv_vertical, run_vertical, score_vertical
from privacy.errors import FederationError

__all__ = ["app"]


def _nodes(grid: Any, parties: list[str], timeout: float, ledger: Any) -> PartyGrid:
    deadline = time.monotonic() + 120
    while True:
        ids = list(grid.get_node_ids())
        if len(ids) >= len(parties):
            break
        if time.monotonic() > deadline:
            raise FederationError(f"only {len(ids)} of {len(parties)} parties connected")
        time.sleep(0.2)
    probe = PartyGrid(grid, {f"node {i}": i for i in ids}, timeout=timeout, ledger=ledger)
    replies = probe.exchange(message_type("v.whoami"),
                             {f"node {i}": wire.to_content({}) for i in ids}, required=True)
    nodes: dict[str, int] = {}
    for who, msg in replies.items():
        name = str(wire.from_content(msg.content, sender=who).get("party"))
        if name not in parties:
            raise FederationError(f"{who} says it is party {name!r}, which the config does "
                                  "not list")
        nodes[name] = msg.metadata.src_node_id
    absent = [p for p in parties if p not in nodes]
    if absent:
        raise FederationError(f"party {absent[0]!r} did not connect")
    return PartyGrid(grid, {p: nodes[p] for p in parties}, timeout=timeout, ledger=ledger)


def run_plan(grid: Any, plan: dict[str, Any]) -> dict[str, Any]:
    """Run the plan's job (training or scoring) over the grid."""
    cfg = plan["config"]
    guest = next(p["name"] for p in cfg["party"] if p["role"] == "guest")
    hosts = [p["name"] for p in cfg["party"] if p["role"] == "host"]
    ledger = None
    if plan.get("ledger"):
        from privacy.ledger import Ledger

        ledger = Ledger(plan["ledger"], origin="coordinator")
    pgrid = _nodes(grid, [guest, *hosts], float(cfg["round_timeout"]), ledger)
    epoch = {"n": 0}

    def send(party: str, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        reply = pgrid.exchange(message_type(action), {party: wire.to_content(payload)},
                               round_id=epoch["n"], required=True)[party]
        return wire.from_content(reply.content, sender=party)

    def progress(done: int, total: int) -> None:
        epoch["n"] = done
        print(f"[ROUND {done + 1}/{total}]", flush=True)

    try:
        if plan.get("job") == "score":
            result = score_vertical(send, cfg, guest, hosts)
        elif plan.get("job") == "iv":
            result = iv_vertical(send, cfg, guest, hosts)
        elif cfg.get("model") == "gbdt":
            result = run_vertical_gbdt(send, cfg, guest, hosts, progress=progress)
        else:
            result = run_vertical(send, cfg, guest, hosts, progress=progress)
    finally:
        if ledger is not None:
            ledger.close()
    result["traffic"] = {"up": pgrid.traffic.up, "down": pgrid.traffic.down,
                         "per_party": pgrid.traffic.per_party}
    return result


def _make_app() -> Any:
    from flwr.serverapp import ServerApp

    return ServerApp()


app = _make_app()


@app.main()
def main(grid: Any, context: Any) -> None:
    """Entry point Flower calls in the ServerApp process."""
    run_plan_job(context, lambda plan: run_plan(grid, plan))
