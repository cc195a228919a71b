"""Vertical gradient-boosted trees through the vertical runner: every party's steps in
process (LocalSend) against the pooled trainer on the joined columns, the model parts,
scoring new customers, bad input naming the party, and the CLI on Flower's simulation."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
from csv_rows import rewrite

from federated.config import load_config
from federated.data import read_table
from federated.runner import _vertical_setups
from federated.trees.binning import Binner
from federated.trees.booster import Params, Tree, train_local
from federated.trees.secureboost import joint_layout
from federated.vertical.boosting import run_vertical_gbdt
from federated.vertical.dispatch import LocalSend
from federated.vertical.protocol import score_vertical
from federated.vertical.sample import write_vertical
from privacy.errors import ConfigError, FederationError, InputError

HOSTS = ["partner_1", "partner_2"]
GBDT = {"max_depth": 3, "max_bins": 16, "paillier_bits": 2048}


def _cfg(trees: int, **gbdt: Any) -> dict[str, Any]:
    return {"seed": 1, "rounds": trees, "gbdt": {**GBDT, **gbdt}}


def _send(config: Path, work: Path, *, record: bool = False) -> LocalSend:
    (work / "state").mkdir(parents=True, exist_ok=True)
    return LocalSend(_vertical_setups(load_config(config), work, None), record=record)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], LocalSend]:
    folder = tmp_path_factory.mktemp("vgb")
    config = write_vertical(folder, 900, test_customers=300, hosts=2, seed=3,
                            trees={"rounds": 4, **GBDT})
    send = _send(config, folder / "work", record=True)
    cfg = load_config(config).model_dump(mode="json")
    result = run_vertical_gbdt(send, cfg, "bank", HOSTS)
    return folder, result, send


def _joined(folder: Path, suffix: str) -> tuple[list[str], np.ndarray, np.ndarray, Any]:
    """Customers every party has (sorted), their codes under each party's saved bins
    (guest first), labels, and the joint layout."""
    parts = {p: json.loads((folder / f"{p}.model.json").read_text()) for p in ["bank", *HOSTS]}
    tables = {p: read_table(folder / f"{p}{suffix}.csv", party=p) for p in parts}
    ids = {p: t.table.column("cust_id").to_pylist() for p, t in tables.items()}
    common = sorted(set.intersection(*(set(v) for v in ids.values())))
    blocks, layouts = [], {}
    for p, t in tables.items():
        binner = Binner.from_json(parts[p]["bins"])
        layouts[p] = binner.layout
        where = {k: i for i, k in enumerate(ids[p])}
        blocks.append(binner.codes(t)[[where[k] for k in common]])
    label = tables["bank"].table.column("default").to_pylist()
    where = {k: i for i, k in enumerate(ids["bank"])}
    y = np.asarray([label[where[k]] == "yes" for k in common], dtype=np.float64)
    layout, _ = joint_layout(layouts["bank"], [(h, layouts[h]) for h in HOSTS])
    return common, np.hstack(blocks), y, layout


def test_vertical_trees_equal_the_pooled_trainer_on_the_joined_columns(trained: Any) -> None:
    folder, result, _ = trained
    common, codes, y, layout = _joined(folder, "")
    assert len(common) == result["intersection"]
    pooled, _ = train_local(codes, y, layout, Params(trees=4, max_depth=3, max_bins=16))
    guest = json.loads((folder / "bank.model.json").read_text())
    ours = [Tree.from_dict(t) for t in guest["tree_list"]]
    assert len(ours) == 4
    for a, b in zip(ours, pooled.trees, strict=True):
        assert np.array_equal(a.split, b.split) and np.array_equal(a.column, b.column)
        assert np.array_equal(a.threshold[a.split], b.threshold[b.split])
        assert np.allclose(a.value, b.value, rtol=0, atol=1e-6)
    # the hosts' columns are used; importance is per party, by the hosts' own names
    assert set(result["importance"]) & set(HOSTS)
    assert all(f.startswith("h") for h in HOSTS for f in result["importance"].get(h, {})
               .get("gain", {}))
    # test metrics equal the pooled model's on the same customers
    t_common, t_codes, t_y, _ = _joined(folder, "_test")
    from federated.metrics import auc

    assert result["test_intersection"] == len(t_common)
    assert abs(result["global"]["auc"] - auc(t_y, pooled.margin(t_codes))) < 1e-9
    assert [h["tree"] for h in result["history"]] == [1, 2, 3, 4]
    # each tree's evaluation adds to the ones before: the last is the final model's
    assert result["history"][-1]["auc"] == pytest.approx(result["global"]["auc"], abs=1e-9)
    assert result["history"][-1]["loss"] == pytest.approx(result["global"]["logloss"],
                                                          abs=1e-6)


def test_scoring_new_customers_matches_the_pooled_model(trained: Any) -> None:
    folder, result, _ = trained
    common, codes, y, layout = _joined(folder, "")
    pooled, _ = train_local(codes, y, layout, Params(trees=4, max_depth=3, max_bins=16))
    t_common, t_codes, _, _ = _joined(folder, "_test")
    out = folder / "scores.csv"
    send = _send(folder / "vfl.toml", folder / "work_score")
    send.setups["bank"]["scores"] = str(out)
    got = score_vertical(send, {"seed": 1}, "bank", HOSTS)
    assert got["scored"] == len(t_common)
    scores = {r["cust_id"]: float(r["probability"]) for r in csv.DictReader(out.open())}
    expect = pooled.predict_proba(t_codes)
    assert max(abs(scores[k] - p) for k, p in zip(t_common, expect, strict=True)) < 1e-6
    # and pooled XGBoost on the joined files, with the parties' bins (the issue's oracle)
    from federated.trees.pooled import vertical_pooled_check

    check = vertical_pooled_check(folder / "vfl.toml", out)
    assert check["trees"] == 4 and check["test_rows"] == len(t_common)
    assert check["max_abs_diff"] < 1e-5
    assert abs(check["federated_auc"] - check["pooled_auc"]) < 1e-3


def test_what_each_party_receives(trained: Any) -> None:
    _, _, send = trained
    for party, action, payload in send.log:
        if party in HOSTS and action.startswith("v.gb_"):
            # a host gets ciphertexts, node numbers, rows and bin codes: never labels
            assert not {"y", "labels", "g", "h", "margin"} & set(payload)
        if party == "bank" and action == "v.gb_level":
            assert all(isinstance(v, bytes) for v in payload["sums"].values())
        # routing questions and answers pass the coordinator sealed
        if action in ("v.gb_route", "v.gb_eval_route"):
            assert isinstance(payload["asks"], bytes)
        if action == "v.gb_routed":
            assert all(isinstance(v, bytes) for v in payload["right"].values())
    # each host keeps its own lookup table; the guest's model keeps bin codes only
    folder = trained[0]
    guest = json.loads((folder / "bank.model.json").read_text())
    assert "splits" not in guest and "cuts" not in json.dumps(guest["tree_list"])
    host = json.loads((folder / "partner_1.model.json").read_text())
    assert host["splits"] and "tree_list" not in host
    assert (folder / "partner_1.model.json").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("value, what", [("7", "constant"), ("", "all null")])
def test_unusable_host_column_names_party_and_column(tmp_path: Path, value: str,
                                                     what: str) -> None:
    config = write_vertical(tmp_path, 200, seed=1)
    rewrite(tmp_path / "partner_1.csv", lambda rows: [r.update(h0_1=value) for r in rows])
    send = _send(config, tmp_path / "work")
    with pytest.raises(InputError, match=f"partner_1.*h0_1.*{what}"):
        run_vertical_gbdt(send, _cfg(1), "bank", ["partner_1"])
    assert not list(tmp_path.glob("*.model.json"))  # nothing half-trained saved


def test_a_host_that_drops_out_is_named_and_nothing_is_saved(tmp_path: Path) -> None:
    config = write_vertical(tmp_path, 200, seed=1)
    send = _send(config, tmp_path / "work")
    calls = {"n": 0}

    def flaky(party: str, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        if party == "partner_1" and action == "v.gb_hist":
            calls["n"] += 1
            if calls["n"] == 3:
                raise FederationError("party 'partner_1': no reply within 600 s")
        return send(party, action, payload)

    with pytest.raises(FederationError, match="partner_1"):
        run_vertical_gbdt(flaky, _cfg(3), "bank", ["partner_1"])
    assert not list(tmp_path.glob("*.model.json"))


def _forging(send: LocalSend, action: str, call: int, change: Any) -> Any:
    """A coordinator that runs the protocol but changes the ``call``-th ``action``."""
    seen = {"n": 0}

    def forge(party: str, act: str, payload: dict[str, Any]) -> dict[str, Any]:
        if act == action:
            seen["n"] += 1
            if seen["n"] == call:
                payload = change(dict(payload))
        return send(party, act, payload)

    return forge


def _flip(blob: bytes) -> bytes:
    return blob[:-1] + bytes([blob[-1] ^ 1])


@pytest.mark.parametrize("action, call, change, message", [
    # a routing question the coordinator altered (or wrote) does not open
    ("v.gb_route", 1, lambda p: {**p, "asks": _flip(p["asks"])}, "sealed message"),
    # rows moved to a node that is not a child of theirs
    ("v.gb_hist", 2, lambda p: {**p, "pos": np.where(np.arange(p["pos"].size) == 0, 100,
                                                     p["pos"])}, "do not follow"),
    # a tree's gradients replaced in the middle of the tree
    ("v.gb_hist", 2, lambda p: {**p, "gh": b"\x01" * 512}, "start at the root"),
    # more nodes to build than the tree can have at that level
    ("v.gb_hist", 2, lambda p: {**p, "build": [1, 2]}, "do not follow"),
    ("v.gb_eval_route", 1, lambda p: {**p, "split": "../x"}, "split"),
])
def test_a_host_refuses_forged_steps(tmp_path: Path, action: str, call: int, change: Any,
                                     message: str) -> None:
    config = write_vertical(tmp_path, 200, seed=1)
    forge = _forging(_send(config, tmp_path / "work"), action, call, change)
    with pytest.raises(FederationError, match=message):
        run_vertical_gbdt(forge, _cfg(2), "bank", ["partner_1"])
    assert not list(tmp_path.glob("*.model.json"))


def test_a_host_answers_only_for_splits_that_fit_its_table() -> None:
    from federated.trees.booster import Layout
    from federated.trees.secureboost import Host, RouteAsk

    codes = np.asarray([[1, 2], [2, 1], [3, 2], [0, 1]], dtype=np.uint16)
    host = Host("telco", codes, Layout(["x", "plan"], [3, 2], [False, True]))
    rows = np.arange(4)
    assert host.go_right(0, RouteAsk(0, 0, 1, False, True, rows)).tolist() == \
        [False, True, True, False]
    with pytest.raises(FederationError, match="already split"):
        host.go_right(0, RouteAsk(0, 1, 1, True, True, rows))
    with pytest.raises(FederationError, match="does not fit"):  # kind differs
        host.go_right(0, RouteAsk(1, 1, 1, False, True, rows))
    with pytest.raises(FederationError, match="does not fit"):  # no such bin
        host.go_right(0, RouteAsk(1, 0, 9, False, True, rows))
    with pytest.raises(FederationError, match="no split at node 2"):
        host.route_known(0, 2, rows)
    assert host.route_known(0, 0, np.asarray([2])).tolist() == [True]


def test_ciphertext_blocks_are_checked() -> None:
    from privacy.errors import HEError
    from privacy.he.paillier_keys import generate_keypair

    public, _ = generate_keypair(2048)
    with pytest.raises(HEError, match="sums: 7 bytes"):
        public.ciphertexts_from_bytes(b"\x01" * 7, what="sums")
    with pytest.raises(HEError, match="sums: ciphertext 0 is outside"):
        public.ciphertexts_from_bytes(b"\x00" * public.ciphertext_width, what="sums")
    blob = public.ciphertexts_to_bytes([5, 7])
    assert [int(c) for c in public.ciphertexts_from_bytes(blob)] == [5, 7]


def test_early_stopping_keeps_the_best_tree(tmp_path: Path) -> None:
    config = write_vertical(tmp_path, 400, seed=2)
    send = _send(config, tmp_path / "work")
    result = run_vertical_gbdt(send, _cfg(6, early_stopping=True, patience=1,
                                          learning_rate=1.5), "bank", ["partner_1"])
    losses = [h["loss"] for h in result["history"]]
    assert result["evaluated_on"] == "validation"
    assert result["trees"] == result["best_tree"] == 1 + int(np.argmin(losses))
    guest = json.loads((tmp_path / "bank.model.json").read_text())
    assert len(guest["tree_list"]) == guest["trees"] == result["trees"]
    host = json.loads((tmp_path / "partner_1.model.json").read_text())
    assert all(s[0] < result["trees"] for s in host["splits"])


def test_config_accepts_vertical_gbdt_and_refuses_misplaced_keys(tmp_path: Path) -> None:
    config = write_vertical(tmp_path, 50, seed=1, trees={"rounds": 2, "paillier_bits": 2048,
                                                         "max_depth": 3})
    cfg = load_config(config)
    assert cfg.model == "gbdt" and cfg.gbdt.paillier_bits == 2048 and cfg.rounds == 2
    config.write_text(config.read_text().replace("paillier_bits = 2048", "paillier_bits = 1024"))
    with pytest.raises(ConfigError, match="paillier_bits"):
        load_config(config)


# ------------------------------------------------------------------ CLI on Flower


def test_cli_run_score_and_report(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from covault.cli import main

    config = write_vertical(tmp_path, 800, test_customers=300, seed=4,
                            trees={"rounds": 3, "max_depth": 3, "max_bins": 32,
                                   "paillier_bits": 2048})
    res = CliRunner().invoke(main, ["fl", "run", str(config), "--format", "json", "-o",
                                    str(tmp_path / "result.json")])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert list(data)[:7] == ["kind", "intersection", "test_intersection", "global",
                              "guest_only", "history", "iv"]
    assert data["model"] == "gbdt" and data["rounds"] == 3 and set(data["global"]) >= {"auc", "ks"}
    assert set(data["importance"]) <= {"bank", "partner_1"} and data["importance"]
    assert [h["tree"] for h in data["history"]] == [1, 2, 3]
    out = tmp_path / "scores.csv"
    res = CliRunner().invoke(main, ["fl", "score", str(config), "-o", str(out)])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == data["test_intersection"]
    html = tmp_path / "report.html"
    res = CliRunner().invoke(main, ["fl", "report", str(tmp_path / "result.json"), "-o",
                                    str(html)])
    assert res.exit_code == 0, res.output
    text = html.read_text()
    assert "Feature importance" in text and "<th>party</th>" in text
    assert "Log loss by tree" in text
    from covault.commands.fl_run import _print_vertical

    with mock.patch("covault.commands.fl_run.out") as console:
        _print_vertical(data)
    assert "vertical, 3 trees (kept 3)" in console.print.call_args_list[0].args[0]
