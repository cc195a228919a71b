"""One step of a vertical party: the action names and the method each one runs.

:func:`handle` is what a party's ClientApp calls for a message; :class:`LocalSend` runs
every party in this process (tests, and to check a protocol change without Flower) and
can record what each party received.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from federated.vertical import trees
from federated.vertical.guest import Guest
from federated.vertical.host import Host
from federated.vertical.party import Party
from federated.vertical.scoring import finish, load_model, write_scores
from privacy.errors import FederationError

__all__ = ["GUEST_ACTIONS", "HOST_ACTIONS", "ACTIONS", "handle", "LocalSend"]

Step = Callable[[Any, dict[str, Any]], dict[str, Any]]

_COMMON: dict[str, Step] = {
    "v.whoami": lambda p, m: {"party": p.name},
    "v.hello": lambda p, m: p.hello(m),
    "v.peers": lambda p, m: p.peers(m),
    "v.prepare": lambda p, m: p.prepare(m),
    "v.scores": lambda p, m: p.scores(m),
    "v.snapshot": lambda p, m: p.snapshot(m),
    "v.load_model": load_model,
    "v.finish": finish,
    "v.gb_prepare": trees.prepare,
}
GUEST_ACTIONS: dict[str, Step] = {
    **_COMMON,
    "v.psi_start": lambda p, m: p.psi_start(m),
    "v.psi_finish": lambda p, m: p.psi_finish(m),
    "v.align": lambda p, m: p.align(m),
    "v.keygen": lambda p, m: p.keygen(m),
    "v.fwd": lambda p, m: p.forward(m),
    "v.bwd": lambda p, m: p.backward(m),
    "v.score_request": lambda p, m: p.score_request(m),
    "v.guest_only": lambda p, m: p.guest_only(m),
    "v.iv_own": lambda p, m: p.iv_own(m),
    "v.iv_request": lambda p, m: p.iv_request(m),
    "v.iv_decrypt": lambda p, m: p.iv_decrypt(m),
    "v.write_scores": write_scores,
    "v.gb_keygen": trees.keygen,
    "v.gb_tree": trees.begin_tree,
    "v.gb_level": trees.level,
    "v.gb_routed": trees.routed,
    "v.gb_eval": trees.evaluate,
    "v.gb_eval_step": trees.evaluate_step,
    "v.gb_guest_only": trees.guest_only,
    "v.gb_importance": trees.importance,
}
HOST_ACTIONS: dict[str, Step] = {
    **_COMMON,
    "v.psi_respond": lambda p, m: p.psi_respond(m),
    "v.align": lambda p, m: p.align(m),
    "v.setup": lambda p, m: p.setup_keys(m),
    "v.fwd": lambda p, m: p.forward(m),
    "v.bwd": lambda p, m: p.backward(m),
    "v.iv_layout": lambda p, m: p.iv_layout(m),
    "v.iv_sum": lambda p, m: p.iv_sum(m),
    "v.iv_result": lambda p, m: p.iv_result(m),
    "v.gb_setup": trees.setup,
    "v.gb_hist": trees.histograms,
    "v.gb_route": trees.route_rows,
    "v.gb_eval_route": trees.evaluate_route,
}
ACTIONS = sorted(set(GUEST_ACTIONS) | set(HOST_ACTIONS))


def party_of(setup: dict[str, Any]) -> Party:
    """The guest or host object of a party's setup."""
    role = setup.get("role")
    if role == "guest":
        return Guest(setup)
    if role == "host":
        return Host(setup)
    raise FederationError(f"party {setup.get('party')!r}: unknown role {role!r}")


def handle(setup: dict[str, Any], action: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Run one action at the party described by ``setup``."""
    party = party_of(setup)
    table = GUEST_ACTIONS if party.role == "guest" else HOST_ACTIONS
    step = table.get(action)
    if step is None:
        raise FederationError(f"party {party.name!r}: a {party.role} has no step {action!r}")
    return step(party, payload)


class LocalSend:
    """Deliver every message by a direct call (all parties in this process).

    ``log`` keeps ``(party, action, payload)`` of every message a party received (deep
    copies), to check what each party learns.
    """

    def __init__(self, setups: dict[str, dict[str, Any]], *, record: bool = False) -> None:
        self.setups = setups
        self.record = record
        self.log: list[tuple[str, str, dict[str, Any]]] = []

    def __call__(self, party: str, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        if self.record:
            self.log.append((party, action, copy.deepcopy(payload)))
        return handle(self.setups[party], action, payload)
