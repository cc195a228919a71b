"""A client's state as bytes, for transports that rebuild the client on every message.

Flower runs a ``ClientApp`` afresh for each message (a new process in deployment mode),
so a client keeps its state in the node's ``Context.state`` between the train and the
unmask messages. The state is ``b"CVSA" | version | 0x20`` followed by UTF-8 JSON: keys,
seeds and shares in hex, and the roster message itself (its digest is the session id;
the per-peer share keys are derived again from it on load).

Warnings
--------
The state holds the client's private keys, its unused self-mask seed and the shares
other clients entrusted to it: whoever reads it can unmask this client's next input
and, with ``threshold - 1`` other states, anyone's. Keep it where the client's keys may
live (the node's memory); encrypt it (e.g. :class:`privacy.fields.FieldCipher`) before it
touches a disk. Restore each exported state at most once: masking two inputs from the
same state uses the same masks twice.
"""

from __future__ import annotations

import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from privacy.errors import SecAggError
from privacy.secagg.client import Held, Material, SecAggClient
from privacy.secagg.fixedpoint import SecAggConfig
from privacy.secagg.framing import MAGIC, VERSION, malformed_state

__all__ = ["dump_client", "load_client"]

_HEAD = MAGIC + bytes([VERSION, 0x20])


def _key(hex_bytes: str) -> X25519PrivateKey:
    return X25519PrivateKey.from_private_bytes(bytes.fromhex(hex_bytes))


def dump_client(client: SecAggClient) -> bytes:
    """Serialise ``client`` (secrets included) for :func:`load_client`."""
    c = client
    mine = c._pending
    body: dict[str, Any] = {
        "id": c.client_id,
        "config": [c.config.threshold, c.config.frac_bits, float(c.config.max_abs)],
        "enc_key": c._enc_key.private_bytes_raw().hex(),
        "roster": c._roster_msg.hex(),
        "pending": None if mine is None else
        [mine.label, mine.key.private_bytes_raw().hex(), mine.seed.hex()],
        "held": [[o, lab, h.mask_key.hex(), format(h.key_share, "x"),
                  format(h.seed_share, "x"), h.box.hex()]
                 for o, by_label in c._held.items() for lab, h in by_label.items()],
        "revealed": [[o, lab] for o, lab in c._revealed.items()],
        "round": c._round,
        "members": [[v, lab] for v, lab in c._members.items()],
        "answered": c._answered,
    }
    return _HEAD + json.dumps(body, separators=(",", ":")).encode("utf-8")


def load_client(data: bytes, config: SecAggConfig | None = None) -> SecAggClient:
    """Rebuild a client from :func:`dump_client` (its config must equal ``config``, if
    given).

    Raises
    ------
    SecAggError
        When the state is not a client state of this version, is malformed, or was made
        under another configuration.
    """
    if not isinstance(data, bytes) or data[:6] != _HEAD:
        raise SecAggError("not a secure-aggregation client state of this version")
    with malformed_state():
        body = json.loads(data[6:].decode("utf-8"))
        t, f, max_abs = body["config"]
        stored = SecAggConfig(threshold=int(t), frac_bits=int(f), max_abs=float(max_abs))
        if config is not None and (config.threshold, config.frac_bits, float(config.max_abs)) \
                != (stored.threshold, stored.frac_bits, stored.max_abs):
            raise SecAggError("client state was made under another configuration")
        config = stored
        client = SecAggClient(int(body["id"]), config)
        client._enc_key = _key(body["enc_key"])
        if body["roster"]:
            client._bind(bytes.fromhex(body["roster"]))
        if body["pending"] is not None:
            label, key, seed = body["pending"]
            client._pending = Material(int(label), _key(key), bytes.fromhex(seed))
        for o, lab, pk, ks, ss, box in body["held"]:
            client._held.setdefault(int(o), {})[int(lab)] = Held(
                bytes.fromhex(pk), int(ks, 16), int(ss, 16), bytes.fromhex(box))
        client._revealed = {int(o): int(lab) for o, lab in body["revealed"]}
        client._round = int(body["round"])
        client._members = {int(v): int(lab) for v, lab in body["members"]}
        client._answered = bool(body["answered"])
    return client
