"""The party's side of secure aggregation over Flower messages (``privacy.secagg``).

The :class:`~privacy.secagg.SecAggClient` (its private keys and received shares) is kept
in the node's own Flower state between messages, serialised; it never leaves the node.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from federated.horizontal.node_state import state_get, state_put
from privacy.errors import InputError

__all__ = ["advertise", "setup", "masked_input", "unmask"]


def _bytes(config: dict[str, Any], key: str) -> bytes:
    value = config.get(key)
    if not isinstance(value, bytes):
        raise InputError(f"secure aggregation message has no {key!r} bytes")
    return value


def _load(context: Any) -> Any:
    from privacy.secagg import load_client

    blob = state_get(context, "secagg")
    if not isinstance(blob, bytes):
        raise InputError("secure aggregation was not set up on this party")
    return load_client(blob)


def _save(context: Any, client: Any) -> None:
    from privacy.secagg import dump_client

    state_put(context, secagg=dump_client(client))


def advertise(config: dict[str, Any], context: Any) -> dict[str, Any]:
    """Make this party's key pairs (for the id the coordinator assigned); the public keys.

    ``mode = "pairwise"`` sets up the one-exchange sums (``privacy.secagg.pairwise``)
    instead of the protocol with dropout recovery."""
    from privacy.secagg import PairwiseSumClient, SecAggClient, SecAggConfig
    from privacy.secagg.pairwise import dump_pairwise_client

    cfg = SecAggConfig(threshold=int(config["threshold"]), frac_bits=int(config["frac-bits"]),
                       max_abs=float(config["max-abs"]))
    mode = config.get("mode", "recovery")
    if mode == "pairwise":
        pairwise = PairwiseSumClient(int(config["secagg-id"]), cfg)
        state_put(context, secagg_pairwise=dump_pairwise_client(pairwise))
        return {"advert": pairwise.advertise()}
    if mode != "recovery":
        raise InputError(f"unknown secure aggregation mode {mode!r}")
    client = SecAggClient(int(config["secagg-id"]), cfg)
    advert = client.advertise()
    _save(context, client)
    return {"advert": advert}


def setup(config: dict[str, Any], context: Any) -> dict[str, Any]:
    """Check the roster; encrypted shares of this party's secrets for every other party."""
    client = _load(context)
    out = client.setup(_bytes(config, "roster"))
    _save(context, client)
    return {"setup": out}


def masked_input(x: npt.NDArray[np.float64], config: dict[str, Any], context: Any, *,
                 party: str) -> bytes:
    """This round's masked vector (with the next round's seed shares), or, when the
    request carries a roster, its one-exchange masked vector."""
    if "secagg-roster" in config:
        return _pairwise_input(x, config, context)
    client = _load(context)
    out = client.masked_input(x, int(config["secure-round"]),
                              _bytes(config, "secagg-participants"),
                              _bytes(config, "secagg-inbox"))
    _save(context, client)
    return bytes(out)


def unmask(config: dict[str, Any], context: Any) -> dict[str, Any]:
    """The shares the coordinator asked for, after the client's own checks."""
    client = _load(context)
    out = client.unmask(_bytes(config, "request"))
    _save(context, client)
    return {"unmask": out}


def _pairwise_input(x: npt.NDArray[np.float64], config: dict[str, Any], context: Any
                    ) -> bytes:
    from privacy.secagg.pairwise import dump_pairwise_client, load_pairwise_client

    blob = state_get(context, "secagg_pairwise")
    if not isinstance(blob, bytes):
        raise InputError("one-exchange secure aggregation was not set up on this party")
    client = load_pairwise_client(blob)
    out = client.masked_input(x, int(config["secure-round"]), _bytes(config, "secagg-roster"),
                              _bytes(config, "secagg-participants"))
    state_put(context, secagg_pairwise=dump_pairwise_client(client))
    return out
