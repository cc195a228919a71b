"""What a party keeps between messages of one run: its node's ``Context.state``.

Keys, shares and contexts live here, in the party's own process, and are never sent.
"""

from __future__ import annotations

from typing import Any

__all__ = ["STATE_KEY", "state_get", "state_put"]

STATE_KEY = "covault"


def state_get(context: Any, key: str) -> Any:
    """A value stored in the node's state by an earlier message of this run (or None)."""
    records = context.state.config_records
    if STATE_KEY not in records:
        return None
    return records[STATE_KEY].get(key)


def state_put(context: Any, **values: Any) -> None:
    """Store values in the node's state (bytes, str, numbers)."""
    from flwr.app import ConfigRecord

    records = context.state.config_records
    current = dict(records[STATE_KEY]) if STATE_KEY in records else {}
    current.update(values)
    context.state[STATE_KEY] = ConfigRecord(current)
