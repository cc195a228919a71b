"""Federated trees in deployment mode: a SuperLink and one SuperNode process per bank.

The one-exchange secure sums (``privacy.secagg.pairwise``) keep each bank's key and round
counter in its SuperNode's node state between messages; the trees must equal the ones
grown in one process. A SuperNode killed once the first tree is grown: with ``on_node_failure =
"continue"`` the sum it left is asked again of the other banks and the tree regrown.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("flwr")

from fl_deploy import KillAfterRound, deploy_config  # noqa: E402

from federated import run  # noqa: E402
from federated.trees.local import run_in_process  # noqa: E402

pytestmark = pytest.mark.slow
TREES = 2


def _gbdt(folder: Path, extra: str = "") -> Path:
    config = deploy_config(folder, mode="deployment", extra=extra, rounds=TREES)
    text = config.read_text(encoding="utf-8").replace('model = "logistic"', 'model = "gbdt"')
    config.write_text(text.replace("[aggregation]", "[gbdt]\nmax_depth = 2\n\n[aggregation]", 1),
                      encoding="utf-8")
    return config


def test_deployed_trees_equal_the_trees_grown_in_one_process(tmp_path: Path) -> None:
    config = _gbdt(tmp_path)
    deployed = run(config, workdir=tmp_path)
    local = run_in_process(config)
    assert deployed.details["mode"] == "deployment"
    assert len(deployed.details["trees"]) == TREES
    assert deployed.details["trees"] == local.details["trees"]
    assert deployed.global_["auc"] == pytest.approx(local.global_["auc"], abs=1e-12)


def test_killed_supernode_tree_is_grown_again_without_it(tmp_path: Path) -> None:
    drill = KillAfterRound(index=0, after=1)
    result = run(_gbdt(tmp_path, extra='\non_node_failure = "continue"'),
                 workdir=tmp_path, on_start=drill.on_start, progress=drill.progress)
    assert drill.killed
    assert result.details["dropped"] == ["bank_1"]
    assert len(result.history) == TREES
    assert set(result.history[-1]["active"]) == {"bank_2", "bank_3"}
    assert 0.5 < result.global_["auc"] <= 1
