"""The coordinator's reply polling (``federated.horizontal.grid.send_and_receive``)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from federated.horizontal import grid as G


@dataclass
class _Meta:
    reply_to_message_id: str


@dataclass
class _Reply:
    metadata: _Meta


@dataclass
class _SlowGrid:
    """Replies to message i become available ``delays[i]`` seconds after the push."""

    delays: list[float]
    pulls: int = 0
    pushed_at: float = 0.0
    asked: list[set[str]] = field(default_factory=list)

    def push_messages(self, messages: list[Any]) -> list[str]:
        self.pushed_at = time.monotonic()
        return [f"m{i}" for i in range(len(messages))]

    def pull_messages(self, ids: Any) -> list[_Reply]:
        self.pulls += 1
        wanted = set(ids)
        self.asked.append(wanted)
        now = time.monotonic() - self.pushed_at
        return [_Reply(_Meta(f"m{i}")) for i, d in enumerate(self.delays)
                if d is not None and d <= now and f"m{i}" in wanted]


def test_replies_are_collected_soon_after_they_arrive() -> None:
    g = _SlowGrid([0.0, 0.01, 0.03])
    t = time.monotonic()
    replies = G.send_and_receive(g, [object()] * 3, timeout=5.0)
    took = time.monotonic() - t
    assert sorted(r.metadata.reply_to_message_id for r in replies) == ["m0", "m1", "m2"]
    # Flower's own loop sleeps 0.1 s (simulation) or 3 s (deployment) between pulls
    assert took < 0.095
    # a reply already pulled is not asked for again
    assert all("m0" not in asked for asked in g.asked[1:])


def test_a_missing_reply_ends_at_the_timeout_without_it() -> None:
    g = _SlowGrid([0.0, 10.0])
    t = time.monotonic()
    replies = G.send_and_receive(g, [object()] * 2, timeout=0.3)
    took = time.monotonic() - t
    assert [r.metadata.reply_to_message_id for r in replies] == ["m0"]
    assert 0.3 <= took < 1.0
    # backing off: far fewer pulls than one every 2 ms
    assert g.pulls < 40


def test_a_grid_without_push_is_asked_directly() -> None:
    class _Direct:
        def send_and_receive(self, messages: Any, *, timeout: float | None = None) -> Any:
            return iter([("reply", timeout)])

    assert G.send_and_receive(_Direct(), [object()], timeout=2.0) == [("reply", 2.0)]
