"""The coordinator's view of the Grid: byte counts, ledger records, and missing parties.

Every exchange of the run goes through :class:`PartyGrid`: it sends to parties by name,
counts the serialised bytes each way (the protobuf size Flower puts on the wire), writes
one ledger record per exchange, turns an error reply into a
:class:`~privacy.errors.FederationError` naming the party, and applies the run's policy
when a party does not answer in time (``stop``: raise; ``continue``: go on with the
others while at least ``min_parties`` answered).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from federated.horizontal import protocol as P
from privacy.errors import FederationError

__all__ = ["message_bytes", "content_digest", "Traffic", "PartyGrid", "send_and_receive"]

# Polling for replies: Flower's own Grid.send_and_receive sleeps a fixed 0.1 s (simulation)
# or 3 s (deployment) between pulls, which bounds a protocol of many short exchanges (a
# tree level is one) by the sleep, not by the parties' work. Pulling is cheap (one call
# to the SuperLink), so the wait starts at a few milliseconds and backs off to a ceiling
# of 20 ms: at most 50 pulls a second, and a reply waits at most 20 ms to be seen (a
# 0.25 s ceiling cost ~30 ms per tree level on the simulation engine).
_PULL_FIRST_S = 0.002
_PULL_GROWTH = 1.3
_PULL_CEILING_S = 0.02


def send_and_receive(grid: Any, messages: list[Any], timeout: float | None) -> list[Any]:
    """Push ``messages`` on ``grid`` and pull their replies until all arrived or
    ``timeout`` seconds passed (None: wait for all), polling with back-off.

    The same contract as Flower's ``Grid.send_and_receive`` (replies that arrived in time;
    a missing one is simply absent), without its fixed sleep between pulls. A grid
    without ``push_messages`` (one that delivers in-process, for tests and benchmarks)
    is asked with its own ``send_and_receive``."""
    if not hasattr(grid, "push_messages"):
        return list(grid.send_and_receive(messages, timeout=timeout))
    waiting = set(grid.push_messages(messages))
    end = None if timeout is None else time.monotonic() + timeout
    replies: list[Any] = []
    pause = _PULL_FIRST_S
    while waiting:
        got = list(grid.pull_messages(waiting))
        replies.extend(got)
        waiting.difference_update(m.metadata.reply_to_message_id for m in got)
        if not waiting:
            break
        now = time.monotonic()
        if end is not None and now >= end:
            break
        time.sleep(pause if end is None else min(pause, end - now))
        pause = min(pause * _PULL_GROWTH, _PULL_CEILING_S)
    return replies


def message_bytes(message: Any) -> int:
    """Serialised size of a message's content (Flower's protobuf encoding)."""
    from flwr.common.serde import recorddict_to_proto

    if message.has_error():
        return 0
    return int(recorddict_to_proto(message.content).ByteSize())


def content_digest(message: Any) -> str:
    """SHA-256 of the serialised content (what the ledgers record)."""
    from flwr.common.serde import recorddict_to_proto

    if message.has_error():
        return ""
    return hashlib.sha256(recorddict_to_proto(message.content).SerializeToString(
        deterministic=True)).hexdigest()


@dataclass
class Traffic:
    """Bytes sent to (down) and received from (up) the parties."""

    up: int = 0
    down: int = 0
    per_party: dict[str, list[int]] = field(default_factory=dict)

    def add(self, party: str, *, up: int = 0, down: int = 0) -> None:
        """Count bytes for one party."""
        self.up += up
        self.down += down
        cell = self.per_party.setdefault(party, [0, 0])
        cell[0] += up
        cell[1] += down


class PartyGrid:
    """Send messages to parties by name over a Flower ``Grid``.

    Parameters
    ----------
    grid:
        The ServerApp's Grid.
    nodes:
        Party name -> node id.
    timeout:
        Seconds to wait for replies in one exchange.
    on_failure:
        ``"stop"`` or ``"continue"`` (see the module docstring).
    min_parties:
        The fewest parties an exchange may go on with.
    ledger:
        Optional ``privacy.ledger.Ledger`` of the coordinator.
    """

    def __init__(self, grid: Any, nodes: Mapping[str, int], *, timeout: float,
                 on_failure: str = "stop", min_parties: int = 1, ledger: Any = None) -> None:
        self.grid = grid
        self.nodes = dict(nodes)
        self.timeout = timeout
        self.on_failure = on_failure
        self.min_parties = min_parties
        self.ledger = ledger
        self.traffic = Traffic()
        self.dropped: list[str] = []
        self._party_of = {v: k for k, v in self.nodes.items()}

    @property
    def active(self) -> list[str]:
        """Parties still taking part (config order)."""
        return [p for p in self.nodes if p not in self.dropped]

    def party_of(self, node_id: int) -> str:
        """Party name of a node id."""
        return self._party_of.get(node_id, f"node {node_id}")

    def exchange(self, action: str, contents: Mapping[str, Any], *, round_id: int = 0,
                 required: bool = False) -> dict[str, Any]:
        """Send ``contents[party]`` (a RecordDict) to each party; return replies by party.

        ``required`` makes every listed party mandatory whatever the failure policy
        (setup steps, the key holder's decryption).

        Raises
        ------
        FederationError
            A party replied with an error, or too few parties replied in time.
        """
        from flwr.app import Message

        messages = [Message(content=content, dst_node_id=self.nodes[party], message_type=action)
                    for party, content in contents.items()]
        return self.send(messages, round_id=round_id, required=required)

    def send(self, messages: list[Any], *, round_id: int = 0, required: bool = False
             ) -> dict[str, Any]:
        """Send prepared messages; return valid replies by party (see :meth:`exchange`)."""
        t0 = time.perf_counter()
        sent: dict[str, Any] = {}
        action = messages[0].metadata.message_type if messages else ""
        for msg in messages:
            party = self.party_of(msg.metadata.dst_node_id)
            self.traffic.add(party, down=message_bytes(msg))
            sent[party] = msg
        replies = send_and_receive(self.grid, messages, self.timeout)
        out: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for reply in replies:
            party = self.party_of(reply.metadata.src_node_id)
            if party not in sent:
                continue
            if reply.has_error():
                if int(reply.error.code) in _GONE:
                    continue  # the node is down: handled as no reply (on_node_failure)
                errors[party] = str(reply.error.reason)
                continue
            self.traffic.add(party, up=message_bytes(reply))
            problem = _bad_update(sent[party], reply)
            if problem:
                errors[party] = problem
                continue
            out[party] = reply
        missing = [p for p in sent if p not in out and p not in errors]
        self._record(action, round_id, sent, out, missing, errors, time.perf_counter() - t0)
        if errors:
            party, reason = next(iter(errors.items()))
            raise FederationError(f"party {party!r} failed in {action}: {_short(reason)}")
        if missing:
            self._handle_missing(action, missing, len(out), required)
        return out

    def as_grid(self) -> Any:
        """A Flower ``Grid`` over the active parties whose exchanges go through :meth:`send`
        (for Flower strategies)."""
        return _AdapterGrid(self)

    def _handle_missing(self, action: str, missing: list[str], answered: int,
                        required: bool) -> None:
        names = ", ".join(repr(p) for p in missing)
        if required or self.on_failure == "stop":
            raise FederationError(f"party {names} did not reply to {action} within "
                                  f"{self.timeout:g} s; the run stops (on_node_failure = "
                                  f"\"{self.on_failure}\")")
        if answered < self.min_parties:
            raise FederationError(f"party {names} did not reply to {action}; only {answered} "
                                  f"parties left, fewer than min_parties = {self.min_parties}")
        self.dropped.extend(p for p in missing if p not in self.dropped)

    def _record(self, action: str, round_id: int, sent: Mapping[str, Any],
                replies: Mapping[str, Any], missing: Iterable[str], errors: Mapping[str, str],
                seconds: float) -> None:
        if self.ledger is None:
            return
        self.ledger.append("fl.exchange", {
            "action": action, "round": round_id, "seconds": round(seconds, 4),
            "sent_to": sorted(sent), "replied": sorted(replies), "missing": sorted(missing),
            "errors": {p: _short(r) for p, r in errors.items()},
            "reply_bytes": {p: message_bytes(m) for p, m in replies.items()},
            "reply_sha256": {p: content_digest(m) for p, m in replies.items()},
        })


def _bad_update(sent: Any, reply: Any) -> str | None:
    """Why a plaintext model update cannot be aggregated (wrong shape, not finite), or
    None. Protected (ckks / secagg) updates are checked by the secure sum."""
    if sent.metadata.message_type != P.TRAIN:
        return None
    mine = sent.content.array_records.get(P.ARRAYS)
    theirs = reply.content.array_records.get(P.ARRAYS)
    if mine is None or theirs is None or "w" not in theirs:
        return None
    try:
        w = theirs["w"].numpy()
    except Exception as exc:  # noqa: BLE001 - a malformed array from a peer
        return f"InputError: its update cannot be read ({type(exc).__name__})"
    if tuple(w.shape) != tuple(mine["w"].shape):
        return (f"InputError: its update has shape {tuple(w.shape)}, expected "
                f"{tuple(mine['w'].shape)}")
    if not np.issubdtype(w.dtype, np.number) or not np.all(np.isfinite(w)):
        return "InputError: its update holds NaN or infinite values"
    return None


# Flower's error codes for a node that is down rather than a ClientApp that failed
# (flwr.common.constant.ErrorCode: MESSAGE_UNAVAILABLE, REPLY_MESSAGE_UNAVAILABLE,
# NODE_UNAVAILABLE, CLIENT_APP_CRASHED)
_GONE = frozenset({3, 4, 5, 8})


def _short(reason: str, limit: int = 600) -> str:
    """The last useful line(s) of a remote error."""
    text = reason.strip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if "Error:" in ln or "error:" in ln:
            text = ln.strip()
            break
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _adapter_base() -> type:
    from flwr.serverapp import Grid

    return Grid


class _AdapterGrid(_adapter_base()):  # type: ignore[misc]
    """Flower ``Grid`` that delegates to the real grid through a :class:`PartyGrid`."""

    def __init__(self, pgrid: PartyGrid) -> None:
        self._pg = pgrid
        self.round_id = 0

    def set_run(self, run: Any) -> None:
        self._pg.grid.set_run(run)

    @property
    def run(self) -> Any:
        return self._pg.grid.run

    def create_message(self, *args: Any, **kwargs: Any) -> Any:
        return self._pg.grid.create_message(*args, **kwargs)

    def get_node_ids(self) -> Iterable[int]:
        return [self._pg.nodes[p] for p in self._pg.active]

    def push_messages(self, messages: Iterable[Any]) -> Iterable[str]:
        return self._pg.grid.push_messages(messages)

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Any]:
        return self._pg.grid.pull_messages(message_ids)

    def send_and_receive(self, messages: Iterable[Any], *, timeout: float | None = None
                         ) -> Iterable[Any]:
        return list(self._pg.send(list(messages), round_id=self.round_id).values())
