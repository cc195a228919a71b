"""A party that sends a NaN, infinite or wrong-shape model update, or a ciphertext of the
wrong length: the coordinator refuses it with an error naming the party, before it is
aggregated."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("flwr")

from flwr.app import Array, ArrayRecord, Message, Metadata, RecordDict  # noqa: E402

from federated.horizontal.grid import PartyGrid  # noqa: E402
from privacy.errors import FederationError  # noqa: E402

NODES = {"bank_1": 11, "bank_2": 22, "bank_3": 33}


def _train(node: int, w: np.ndarray) -> Message:
    meta = Metadata(run_id=1, message_id=f"m{node}", src_node_id=0, dst_node_id=node,
                    reply_to_message_id="", group_id="1", created_at=0.0, ttl=3600.0,
                    message_type="train")
    return Message(metadata=meta, content=RecordDict({"arrays": ArrayRecord({"w": Array(w)})}))


def _reply(msg: Message, w: np.ndarray) -> Message:
    meta = Metadata(run_id=1, message_id="", src_node_id=msg.metadata.dst_node_id,
                    dst_node_id=0, reply_to_message_id=msg.metadata.message_id,
                    group_id="1", created_at=0.0, ttl=3600.0, message_type="train")
    return Message(metadata=meta, content=RecordDict({"arrays": ArrayRecord({"w": Array(w)})}))


class FakeGrid:
    """Answers every training message with the update ``updates[party]``."""

    def __init__(self, updates: dict[str, np.ndarray]) -> None:
        self.updates = updates
        self.party = {v: k for k, v in NODES.items()}

    def send_and_receive(self, messages: list[Message], *, timeout: float) -> list[Any]:
        return [_reply(m, self.updates[self.party[m.metadata.dst_node_id]]) for m in messages]


def _send(updates: dict[str, np.ndarray]) -> dict[str, Any]:
    pgrid = PartyGrid(FakeGrid(updates), NODES, timeout=5, on_failure="continue")
    return pgrid.send([_train(node, np.zeros(4)) for node in NODES.values()])


def test_good_updates_pass() -> None:
    replies = _send({p: np.ones(4) for p in NODES})
    assert sorted(replies) == sorted(NODES)


@pytest.mark.parametrize("bad, why", [
    (np.array([1.0, np.nan, 0.0, 0.0]), "NaN or infinite"),
    (np.array([1.0, np.inf, 0.0, 0.0]), "NaN or infinite"),
    (np.ones(5), r"shape \(5,\), expected \(4,\)"),
    (np.ones((2, 2)), r"shape \(2, 2\), expected \(4,\)"),
    (np.array(["a", "b", "c", "d"]), "NaN or infinite"),
])
def test_bad_update_is_refused_naming_the_party(bad: np.ndarray, why: str) -> None:
    updates = {p: np.ones(4) for p in NODES}
    updates["bank_2"] = bad
    with pytest.raises(FederationError, match=f"party 'bank_2' failed in train: .*{why}"):
        _send(updates)
