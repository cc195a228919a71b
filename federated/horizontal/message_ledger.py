"""The ClientApp mod every covault party runs: one ledger record per message.

Shared by the horizontal, trees and vertical ClientApps (imported without building any
of them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from federated.horizontal import protocol as P
from federated.horizontal.party import Party
from privacy.errors import CovaultError

__all__ = ["ledger_mod"]

Handler = Callable[[Any, Any], Any]


def ledger_mod(msg: Any, context: Any, call_next: Handler) -> Any:
    """Append a ledger record per message: what was received and what was sent."""
    from federated.horizontal.grid import content_digest, message_bytes

    out = call_next(msg, context)
    try:
        party = Party.from_context(context)
    except CovaultError:
        return out
    led = party.open_ledger()
    if led is None:
        return out
    cfg = P.config_of(msg)
    sent_shapes = {}
    if not out.has_error():
        for name, rec in out.content.array_records.items():
            sent_shapes[name] = {k: list(a.shape) for k, a in rec.items()}
    with led:
        led.append("fl.message", {
            "run": int(msg.metadata.run_id), "action": msg.metadata.message_type,
            "round": int(cfg.get("server-round", cfg.get("secure-round", 0))),
            "received": {"bytes": message_bytes(msg), "sha256": content_digest(msg)},
            "sent": {"bytes": message_bytes(out), "sha256": content_digest(out),
                     "arrays": sent_shapes, "error": out.has_error()},
        })
    return out
