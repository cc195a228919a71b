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


#: Where each protocol's client lives in the node state: ``"recovery"`` (two exchanges a
#: sum, ``privacy.secagg``) or ``"pairwise"`` (one exchange, ``privacy.secagg.pairwise``).
_STATE_KEYS = {"recovery": "secagg", "pairwise": "secagg_pairwise"}


def _codec(mode: str) -> tuple[Any, Any, Any]:
    """(client class, load, dump) of ``mode``'s client."""
    from privacy.secagg import PairwiseSumClient, SecAggClient, dump_client, load_client
    from privacy.secagg.pairwise import dump_pairwise_client, load_pairwise_client

    if mode == "pairwise":
        return PairwiseSumClient, load_pairwise_client, dump_pairwise_client
    if mode == "recovery":
        return SecAggClient, load_client, dump_client
    raise InputError(f"unknown secure aggregation mode {mode!r}")


def _load(context: Any, mode: str = "recovery") -> Any:
    blob = state_get(context, _STATE_KEYS[mode])
    if not isinstance(blob, bytes):
        raise InputError(f"secure aggregation ({mode}) was not set up on this party")
    return _codec(mode)[1](blob)


def _save(context: Any, client: Any, mode: str = "recovery") -> None:
    state_put(context, **{_STATE_KEYS[mode]: _codec(mode)[2](client)})


def advertise(config: dict[str, Any], context: Any) -> dict[str, Any]:
    """Make this party's key pairs (for the id the coordinator assigned); the public keys.

    ``mode = "pairwise"`` sets up the one-exchange sums (``privacy.secagg.pairwise``)
    instead of the protocol with dropout recovery."""
    from privacy.secagg import SecAggConfig

    cfg = SecAggConfig(threshold=int(config["threshold"]), frac_bits=int(config["frac-bits"]),
                       max_abs=float(config["max-abs"]))
    mode = str(config.get("mode", "recovery"))
    client = _codec(mode)[0](int(config["secagg-id"]), cfg)
    advert = client.advertise()
    _save(context, client, mode)
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
    client = _load(context, "pairwise")
    out = client.masked_input(x, int(config["secure-round"]), _bytes(config, "secagg-roster"),
                              _bytes(config, "secagg-participants"))
    _save(context, client, "pairwise")
    return bytes(out)
