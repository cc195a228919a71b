"""The vertical ClientApp: one party (guest or host) answering the coordinator's steps.

Each ``query.v_*`` message runs one step of :mod:`federated.vertical.dispatch` on the
party's own files and state folder; the party's setup (role, files, id column) comes
from the run's plan. The ledger mod of the horizontal app records every message received
and sent; alignment steps also record the intersection size.
"""

from __future__ import annotations

from typing import Any

from federated.horizontal.message_ledger import ledger_mod
from federated.horizontal.party import Party as NodeParty
from federated.horizontal.party import load_plan
from federated.vertical import wire
from federated.vertical.dispatch import ACTIONS, handle
from federated.vertical.protocol import LEARNS, LEARNS_TREES
from privacy.errors import CovaultError, InputError

__all__ = ["app", "message_type", "setup_of"]


def message_type(action: str) -> str:
    """Flower message type of an action (``v.hello`` -> ``query.v_hello``)."""
    return "query." + action.replace(".", "_")


def setup_of(context: Any) -> dict[str, Any]:
    """This node's party setup from the plan."""
    name = NodeParty.from_context(context).name
    plan = load_plan(str(context.run_config["plan"]))
    setups = plan.get("vertical", {})
    if name not in setups:
        raise InputError(f"party {name!r} is not in the run's plan")
    return dict(setups[name])


def _record(setup: dict[str, Any], action: str, payload: dict[str, Any],
            reply: dict[str, Any]) -> None:
    """The intersection size after alignment, and what the party learned at the end."""
    if action not in ("v.align", "v.finish") or not setup.get("ledger"):
        return
    from privacy.ledger import Ledger

    learns = LEARNS_TREES if setup.get("model_kind") == "gbdt" else LEARNS
    with Ledger(setup["ledger"], origin=str(setup["party"])) as led:
        if action == "v.align":
            led.append("fl.vertical.intersection", {"run": setup.get("run"),
                                                    "split": payload.get("split"),
                                                    "size": int(reply["size"])})
        else:
            led.append("fl.vertical.learned", {"run": setup.get("run"),
                                               "role": setup.get("role"),
                                               "learned": learns[str(setup.get("role"))]})


def _step(action: str) -> Any:
    def run(msg: Any, context: Any) -> Any:
        from flwr.app import Error, Message

        try:
            setup = setup_of(context)
            payload = wire.from_content(msg.content, sender="coordinator")
            reply = handle(setup, action, payload)
            _record(setup, action, payload, reply)
            return Message(wire.to_content(reply), reply_to=msg)
        except CovaultError as exc:
            return Message(Error(code=0, reason=f"{type(exc).__name__}: {exc}"), reply_to=msg)

    run.__name__ = action.replace(".", "_")
    return run


def _make_app() -> Any:
    from flwr.clientapp import ClientApp

    client = ClientApp(mods=[ledger_mod])
    for action in ACTIONS:
        client.query(action.replace(".", "_"))(_step(action))
    return client


app = _make_app()
