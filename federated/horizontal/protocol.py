"""Names shared by the horizontal ServerApp and ClientApp: message actions, record keys,
and small helpers to build and read message content.

Message actions (Flower ``message_type``; the client registers one function for each):

=====================  ===========================================================
``query.schema``       the party's schema (row count, column kinds, level sets)
``query.stat``         one statistic vector, protected for secure sum
``query.ckks_keygen``  key holder only: make a CKKS key pair, return the public context
``query.ckks_setup``   every party: store the public context
``query.ckks_decrypt`` key holder only: decrypt an aggregate of enough contributors
``query.secagg_*``     the secure-aggregation setup and unmasking steps
``train``              one round of local training; the reply is protected by the
                       secure-aggregation mod when the method is ckks or secagg
``query.local``        the party's local-only model and the federated model, scored on
                       the party's own test rows
=====================  ===========================================================
"""

from __future__ import annotations

import json
from typing import Any

__all__ = [
    "SCHEMA", "STAT", "CKKS_KEYGEN", "CKKS_SETUP", "CKKS_DECRYPT", "SECAGG_ADVERTISE",
    "SECAGG_SETUP", "SECAGG_UNMASK", "LOCAL", "TRAIN", "CONFIG", "ARRAYS", "METRICS",
    "SECURE", "WEIGHT_KEY", "config_of", "json_field",
]

SCHEMA = "query.schema"
STAT = "query.stat"
CKKS_KEYGEN = "query.ckks_keygen"
CKKS_SETUP = "query.ckks_setup"
CKKS_DECRYPT = "query.ckks_decrypt"
SECAGG_ADVERTISE = "query.secagg_advertise"
SECAGG_SETUP = "query.secagg_setup"
SECAGG_UNMASK = "query.secagg_unmask"
LOCAL = "query.local"
TRAIN = "train"

CONFIG = "config"        # ConfigRecord key in every message
ARRAYS = "arrays"        # ArrayRecord key (model weights)
METRICS = "metrics"      # MetricRecord key in replies
SECURE = "secure"        # ConfigRecord key of a protected (encrypted / masked) vector
WEIGHT_KEY = "num-examples"


def config_of(message: Any) -> dict[str, Any]:
    """The message's ConfigRecord as a plain dict (empty when absent)."""
    content = message.content
    if CONFIG not in content.config_records:
        return {}
    return dict(content.config_records[CONFIG])


def json_field(config: dict[str, Any], key: str, *, who: str) -> Any:
    """Parse a JSON string field of a config, with an error naming the sender."""
    from privacy.errors import InputError

    raw = config.get(key)
    if not isinstance(raw, str):
        raise InputError(f"{who}: message has no {key!r} field")
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InputError(f"{who}: field {key!r} is not JSON ({exc})") from None
