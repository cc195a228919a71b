"""Vertical FL in deployment mode: a SuperLink with TLS and SuperNode authentication and
one SuperNode process per party (each message in a fresh ClientApp process, so every
party's state goes through its private state folder)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("flwr")
pytest.importorskip("tenseal")

from federated import run  # noqa: E402
from federated.vertical.sample import write_vertical  # noqa: E402
from privacy.ledger import Ledger  # noqa: E402

pytestmark = pytest.mark.slow


def test_guest_and_host_supernodes_train_and_write_their_parts(tmp_path: Path) -> None:
    config = write_vertical(tmp_path, 250, epochs=1, mode="deployment", iv=False, seed=5)
    # a 10 % split of ~200 rows with 12 % defaults holds no default for one seed in 13,
    # and then has no AUC: validate on 40 %
    head, parties = config.read_text().split("[[party]]", 1)
    config.write_text(f"{head}[training]\nvalidation = 0.4\n\n[[party]]{parties}")
    result = run(config, ledger=tmp_path / "audit.db").to_dict()
    assert result["kind"] == "vertical" and result["intersection"] > 150
    assert result["evaluated_on"] == "validation" and len(result["history"]) == 1
    # a 1-epoch model on ~80 validation rows: its AUC is noise; the run must complete
    assert 0.0 <= result["global"]["auc"] <= 1.0
    assert np.isfinite(result["history"][0]["loss"])
    bank = json.loads((tmp_path / "bank.model.json").read_text())
    host = json.loads((tmp_path / "partner_1.model.json").read_text())
    assert bank["role"] == "guest" and "partner_1" in bank["shares"]
    assert host["role"] == "host" and "shares" not in host
    with Ledger(tmp_path / "audit.partner_1.db", origin="partner_1") as led:
        kinds = [r.kind for r in led.records()]
    assert kinds.count("fl.message") > 10 and "fl.vertical.intersection" in kinds


def test_vertical_trees_keep_every_party_state_between_fresh_processes(tmp_path: Path) -> None:
    config = write_vertical(tmp_path, 250, mode="deployment", iv=False, seed=5,
                            trees={"rounds": 1, "max_depth": 2, "max_bins": 8,
                                   "paillier_bits": 2048})
    result = run(config).to_dict()  # a SuperNode pulls every 3 s: about 2 s per message
    assert result["model"] == "gbdt" and result["rounds"] == 1
    assert [h["tree"] for h in result["history"]] == [1]
    bank = json.loads((tmp_path / "bank.model.json").read_text())
    host = json.loads((tmp_path / "partner_1.model.json").read_text())
    assert len(bank["tree_list"]) == 1 and bank["model"] == host["model"] == "gbdt"
    assert bank["tree_list"][0]["depth"] == 2 and all(s[0] == 0 for s in host["splits"])
