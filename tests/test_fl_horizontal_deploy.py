"""Horizontal FL in deployment mode: a SuperLink and one SuperNode process per bank, with
TLS and SuperNode authentication, started by ``federated.run``.

Secure aggregation gives the same weights as the simulation. A SuperNode killed
mid-run (SIGKILL, as a crashed machine): with ``on_node_failure = "continue"`` the round
completes with the other banks (secure aggregation recovers the dropped bank's masks),
with ``"stop"`` the run stops with a message naming the bank.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("flwr")

from fl_deploy import ROUNDS, KillAfterRound, deploy_config  # noqa: E402

from federated import run  # noqa: E402
from federated.deploy import LocalFederation  # noqa: E402
from privacy.errors import FederationError  # noqa: E402
from privacy.ledger import Ledger  # noqa: E402

pytestmark = pytest.mark.slow


def test_banks_supernodes_give_the_simulations_weights(tmp_path: Path) -> None:
    """The multi-bank setup: a SuperLink and each bank's SuperNode run on their own (here
    started by LocalFederation), each SuperNode with its bank's data in its node config;
    ``covault fl run`` only submits to the SuperLink (``[deployment] superlink``)."""
    simulated = run(deploy_config(tmp_path / "sim", mode="simulation"))
    banks = deploy_config(tmp_path / "dep", mode="deployment").parent
    nodes = [{"party": f"bank_{i}", "data": str(banks / f"bank_{i}.csv"),
              "ledger": str(tmp_path / f"bank_{i}.db")} for i in (1, 2, 3)]
    with LocalFederation("deployment", node_configs=nodes, workdir=tmp_path / "fed") as fed:
        assert fed.certs is not None
        text = (banks / "fl.toml").read_text(encoding="utf-8")
        for i in (1, 2, 3):  # the coordinator does not have the banks' files
            text = text.replace(f'data = "bank_{i}.csv"\n', "")
        text = text.replace("[aggregation]", f'[deployment]\nsuperlink = "{fed.address}"\n'
                            f'root_certificates = "{fed.certs.ca_cert}"\n\n[aggregation]')
        config = banks / "remote.toml"
        config.write_text(text, encoding="utf-8")
        deployed = run(config, workdir=tmp_path)
    assert deployed.details["mode"] == "deployment"
    assert all(len(list(Ledger(tmp_path / f"bank_{i}.db").records("fl.message"))) > ROUNDS
               for i in (1, 2, 3))
    assert len(deployed.history) == ROUNDS and deployed.details["dropped"] == []
    np.testing.assert_allclose(deployed.details["weights"], simulated.details["weights"],
                               rtol=0, atol=1e-12)
    assert deployed.global_["auc"] == pytest.approx(simulated.global_["auc"], abs=1e-12)


def test_killed_supernode_round_completes_with_the_others(tmp_path: Path) -> None:
    drill = KillAfterRound(index=0, after=1)
    result = run(deploy_config(tmp_path, mode="deployment", extra='\non_node_failure = "continue"'),
                 workdir=tmp_path, on_start=drill.on_start, progress=drill.progress)
    assert drill.killed
    assert result.details["dropped"] == ["bank_1"]
    assert [h["round"] for h in result.history] == list(range(1, ROUNDS + 1))
    assert "bank_1" not in result.history[-1]["active"]
    assert set(result.history[-1]["active"]) == {"bank_2", "bank_3"}
    assert 0.5 < result.global_["auc"] <= 1


def test_killed_supernode_stops_the_run_when_configured(tmp_path: Path) -> None:
    drill = KillAfterRound(index=1, after=1)
    with pytest.raises(FederationError, match=r"'bank_2' did not reply .*the run stops"):
        run(deploy_config(tmp_path, mode="deployment", extra='\non_node_failure = "stop"'),
            workdir=tmp_path, on_start=drill.on_start, progress=drill.progress)
    assert drill.killed
