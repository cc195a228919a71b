"""Toy ServerApp/ClientApp pair: one query message per round to every node.

Run config keys (all declared in the generated app dir):

``result-path``
    Where the ServerApp writes its JSON result (written atomically at the end).
``num-rounds``
    Rounds to run.
``min-nodes``
    Nodes to wait for before the first round.
``first-round-timeout``, ``round-timeout``
    Seconds to wait for the replies of the first round, of each later round.
``pause-after-round``
    If positive, after that round the server writes ``<result-path>.paused`` and waits
    for ``<result-path>.resume`` before going on (a test kills a node in between).
``fail``
    If true, the ServerApp raises before sending anything.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

server = ServerApp()
client = ClientApp()


@client.query()
def reply(msg: Message, context: Context) -> Message:
    """Answer with this node's config and a small array derived from it."""
    node_config = {str(k): v for k, v in context.node_config.items()}
    partition = int(node_config.get("partition-id", -1))
    server_round = int(msg.content["config"]["round"])  # type: ignore[arg-type]
    content = RecordDict(
        {
            "config": ConfigRecord(
                {"node-config": json.dumps(node_config, sort_keys=True), "pid": os.getpid()}
            ),
            "arrays": ArrayRecord(
                [np.full(3, partition * 10 + server_round, dtype=np.int64)]
            ),
        }
    )
    return Message(content=content, reply_to=msg)


def _wait_for_nodes(grid: Grid, count: int, timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        nodes = sorted(grid.get_node_ids())
        if len(nodes) >= count or time.monotonic() > deadline:
            return nodes
        time.sleep(0.2)


def _one_round(grid: Grid, nodes: list[int], server_round: int, timeout: float) -> dict[str, Any]:
    messages = [
        Message(
            content=RecordDict({"config": ConfigRecord({"round": server_round})}),
            message_type="query",
            dst_node_id=node,
        )
        for node in nodes
    ]
    started = time.monotonic()
    replies = list(grid.send_and_receive(messages, timeout=timeout))
    answers = []
    for rep in replies:
        if rep.has_error():
            continue
        config = rep.content["config"]
        array = rep.content["arrays"].to_numpy_ndarrays()[0]
        answers.append(
            {
                "node-id": rep.metadata.src_node_id,
                "node-config": json.loads(str(config["node-config"])),
                "pid": int(config["pid"]),  # type: ignore[arg-type]
                "array": [int(x) for x in array],
            }
        )
    answers.sort(key=lambda a: a["node-config"].get("partition-id", -1))
    return {
        "round": server_round,
        "sent": len(nodes),
        "replies": len(answers),
        "seconds": time.monotonic() - started,
        "answers": answers,
    }


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1, sort_keys=True))
    os.replace(tmp, path)


def _wait_for_file(path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)


@server.main()
def main(grid: Grid, context: Context) -> None:
    """Run ``num-rounds`` query rounds and write what came back."""
    cfg = context.run_config
    result = Path(str(cfg["result-path"]))
    if bool(cfg["fail"]):
        raise RuntimeError("toy ServerApp failure requested by run config")
    timeouts = float(cfg["first-round-timeout"]), float(cfg["round-timeout"])
    pause_after = int(cfg["pause-after-round"])
    nodes = _wait_for_nodes(grid, int(cfg["min-nodes"]), timeout=60.0)
    rounds = []
    for server_round in range(1, int(cfg["num-rounds"]) + 1):
        timeout = timeouts[0] if server_round == 1 else timeouts[1]
        rounds.append(_one_round(grid, nodes, server_round, timeout))
        if server_round == pause_after:
            paused = Path(f"{result}.paused")
            paused.write_text(json.dumps(rounds[-1]))
            _wait_for_file(Path(f"{result}.resume"), timeout=60.0)
    _write_json(result, {"nodes": nodes, "rounds": rounds, "run-config": dict(cfg)})
