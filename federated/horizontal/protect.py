"""The party's side of secure sum: protect a vector so the coordinator sees only sums.

``ckks``
    The key holder makes a CKKS key pair (:func:`ckks_keygen`) and keeps the secret
    context in its node state; every party stores the public context
    (:func:`ckks_setup`) and encrypts its vector under it (:func:`protect`). Only the key
    holder can decrypt, and it decrypts only aggregates of at least ``min_parties``
    contributors (:func:`ckks_decrypt`).
``secagg``
    Pairwise masks from X25519 agreement with Shamir-shared recovery keys
    (``privacy.secagg``); the coordinator removes the masks only from the sum.

State that must outlive one message (keys, shares) is kept in the Flower ``Context``'s
``state`` of the party's own node, never sent to the coordinator.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from federated.horizontal.node_state import state_get, state_put
from privacy.errors import InputError

__all__ = ["protect", "ckks_keygen", "ckks_setup", "ckks_decrypt"]

FloatArray = npt.NDArray[np.float64]


def _public_context(context: Any) -> Any:
    from privacy.he import serial

    blob = state_get(context, "ckks_public")
    if not isinstance(blob, bytes):
        raise InputError("no CKKS public context stored: the setup step did not run")
    return serial.load(blob, source="CKKS public context", kind="public_key")


def protect(vector: FloatArray, config: dict[str, Any], context: Any, *, party: str
            ) -> bytes:
    """Encrypt (ckks) or mask (secagg) one vector for the configured secure sum."""
    method = config.get("secure-method")
    x = np.asarray(vector, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise InputError(f"party {party!r}: the vector to aggregate is not finite")
    if method == "ckks":
        from privacy.he import serial
        from privacy.he.secure_sum import contribute

        return serial.dump_vector(contribute(_public_context(context), x, party=party))
    if method == "secagg":
        from federated.horizontal.secagg_party import masked_input

        return masked_input(x, config, context, party=party)
    raise InputError(f"unknown secure-sum method {method!r}")


def ckks_keygen(config: dict[str, Any], context: Any) -> bytes:
    """Key holder: make a CKKS context for ``parties`` contributors; return the public one."""
    from privacy.he import serial
    from privacy.he.ckks import generate_context
    from privacy.he.packing import PackingLayout

    ctx = generate_context(str(config["params"]),
                           layout=PackingLayout(parties=max(int(config["parties"]), 1)))
    public = serial.dump_context(ctx.public())
    state_put(context, ckks_secret=serial.dump_context(ctx), ckks_public=public)
    return public


def ckks_setup(config: dict[str, Any], context: Any) -> str:
    """Every party: store the public context; return its key id."""
    from privacy.he import serial

    blob = config.get("public")
    if not isinstance(blob, bytes):
        raise InputError("ckks setup message carries no public context")
    ctx = serial.load(blob, source="CKKS public context", kind="public_key")
    if ctx.is_private:
        raise InputError("the context sent for encryption holds a secret key; refusing it")
    state_put(context, ckks_public=blob)
    return str(ctx.key_id)


def ckks_decrypt(config: dict[str, Any], context: Any, *, ledger: Any = None) -> FloatArray:
    """Key holder: decrypt an aggregate that holds at least ``min-parties`` contributors."""
    from privacy.he import serial
    from privacy.he.secure_sum import decrypt_aggregate

    secret = state_get(context, "ckks_secret")
    if not isinstance(secret, bytes):
        raise InputError("this party holds no CKKS secret key")
    ctx = serial.load(secret, source="CKKS secret context", kind="private_key")
    blob = config.get("aggregate")
    if not isinstance(blob, bytes):
        raise InputError("decrypt message carries no aggregate")
    vec = serial.load(blob, source="CKKS aggregate", kind="vector", context=ctx)
    out = decrypt_aggregate(ctx, vec, min_parties=int(config.get("min-parties", 2)),
                            ledger=ledger)
    return np.asarray(out, dtype=np.float64)
