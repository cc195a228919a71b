"""Horizontal federated GBDT: exact histograms under secure sum, against pooled XGBoost.

Most runs go through :func:`federated.trees.local.run_in_process` (the real coordinator,
ClientApp, secure aggregation and CKKS, without Flower's transport); one run goes end to
end through ``covault fl run`` on Flower's simulation engine. The acceptance check: the
federated model equals XGBoost trained on the pooled rows with the same bins and
parameters, to float32 rounding, on the test predictions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("flwr")
pytest.importorskip("xgboost")

from covault.cli import main as cli  # noqa: E402
from federated.report import render_report  # noqa: E402
from federated.sample import write_loan_books  # noqa: E402
from federated.trees.booster import Layout, Model, Params, Tree, train_local  # noqa: E402
from federated.trees.local import run_in_process  # noqa: E402
from federated.trees.pooled import fit_xgboost, pooled_check, predict_xgboost  # noqa: E402
from privacy.errors import FederationError, InputError  # noqa: E402

ROWS = [300, 700, 1200]
TOL = 1e-6  # float32 margins: XGBoost and covault differ by an ulp at most


def _gbdt(config: Path, name: str, *, method: str = "secagg", rounds: int = 8,
          gbdt: str = "max_depth = 4", agg: str = "") -> Path:
    text = config.read_text(encoding="utf-8")
    text = text.replace('model = "logistic"', 'model = "gbdt"')
    text = text.replace('rounds = 10', f"rounds = {rounds}")
    text = text.replace('method = "fedavg"', f'method = "{method}"\n{agg}')
    text = text.replace("[aggregation]", f"[gbdt]\n{gbdt}\n\n[aggregation]")
    path = config.with_name(f"{name}.toml")
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def books(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("gbdt")
    return write_loan_books(folder, ROWS, test_rows=800, seed=3)


@pytest.fixture(scope="module")
def secagg(books: Path) -> tuple[Path, Any]:
    cfg = _gbdt(books, "secagg")
    return cfg, run_in_process(cfg)


# ----------------------------------------------------------------- the booster alone


def test_booster_equals_xgboost_with_missing_values_and_categories() -> None:
    rng = np.random.default_rng(0)
    n, bins = 6000, [64, 40, 5]
    codes = np.column_stack([rng.integers(0, b + 1, n) for b in bins]
                            + [rng.integers(0, 5, n), rng.integers(1, 4, n)]).astype(np.uint16)
    layout = Layout(["a", "b", "c", "k1", "k2"], bins + [4, 3], [False] * 3 + [True] * 2,
                    {"k1": list("wxyz"), "k2": list("pqr")})
    logit = codes[:, 0] / 32.0 - 1 + 0.6 * (codes[:, 2] % 2) - (codes[:, 3] == 2) \
        + 0.8 * (codes[:, 0] == 0)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    for es in (False, True):
        p = Params(trees=12, max_depth=5, learning_rate=0.3, min_child_weight=2.0,
                   reg_lambda=0.5, gamma=0.1, early_stopping=es, patience=2)
        valid = (codes[4000:5000], y[4000:5000]) if es else None
        ours, _ = train_local(codes[:4000], y[:4000], layout, p, valid=valid)
        booster, trees = fit_xgboost(codes[:4000], y[:4000], layout, p, valid=valid)
        assert len(ours.trees) == trees
        theirs = predict_xgboost(booster, trees, codes[5000:], layout)
        assert np.max(np.abs(ours.predict_proba(codes[5000:]) - theirs)) < TOL


def test_a_tree_grown_a_level_per_message_is_the_same_tree() -> None:
    """``Grower.start``/``GrowStep.receive`` (a guest answering histograms in messages)
    grows exactly the tree ``Grower.grow`` does; a step refuses what does not fit."""
    from federated.trees.booster import Grower, gradients, histogram, positions

    rng = np.random.default_rng(5)
    n, bins = 3000, [16, 9]
    codes = np.column_stack([rng.integers(0, b + 1, n) for b in bins]
                            + [rng.integers(0, 4, n)]).astype(np.uint16)
    layout = Layout(["a", "b", "k"], bins + [3], [False, False, True], {"k": list("xyz")})
    y = (rng.random(n) < 1 / (1 + np.exp(-(codes[:, 0] / 8.0 - 1 - (codes[:, 2] == 1))))
         ).astype(float)
    g, h = gradients(np.zeros(n, dtype=np.float32), y)
    grower = Grower(layout, Params(max_depth=4, min_child_weight=2.0))
    whole = grower.grow(lambda t, build: histogram(codes, layout, positions(t, codes), build,
                                                   g, h))
    step = grower.start()
    levels = 0
    while step.build:
        step.receive(*histogram(codes, layout, positions(step.tree, codes), step.build, g, h))
        levels += 1
    assert levels >= 3
    assert step.tree.to_dict() == whole.to_dict()
    with pytest.raises(InputError, match="already grown"):
        step.receive(np.zeros((1, layout.width)), np.zeros((1, layout.width)))
    with pytest.raises(InputError, match="for 1 nodes"):
        grower.start().receive(np.zeros((2, layout.width)), np.zeros((2, layout.width)))


def test_tree_from_a_peer_is_checked() -> None:
    tree = Tree.empty(2)
    d = tree.to_dict()
    with pytest.raises(InputError, match="malformed tree"):
        Tree.from_dict({**d, "id": [0, 99]})
    d = {**d, "feature": [3]}  # a split without children
    with pytest.raises(InputError, match="without both children"):
        Tree.from_dict(d)


# ------------------------------------------------------------ federated = pooled


def test_federated_equals_pooled_xgboost(secagg: tuple[Path, Any]) -> None:
    cfg, result = secagg
    check = pooled_check(cfg, result)
    assert check["trees"] == check["pooled_trees"] == 8
    assert check["max_abs_diff"] < TOL
    assert abs(check["federated_auc"] - check["pooled_auc"]) < 1e-9
    assert result.global_["auc"] == pytest.approx(check["federated_auc"])


def test_result_json_and_model_reapplied(books: Path, secagg: tuple[Path, Any]) -> None:
    _, result = secagg
    d = result.to_dict()
    assert list(d)[:7] == ["kind", "rounds", "aggregation", "global", "parties", "history",
                           "epsilon"]
    assert d["kind"] == "horizontal" and d["model"] == "gbdt" and d["aggregation"] == "secagg"
    assert set(d["global"]) >= {"auc", "ks", "logloss"} and d["global"]["auc"] > 0.6
    assert [h["tree"] for h in d["history"]] == list(range(1, 9))
    losses = [h["train_loss"] for h in d["history"]]
    assert all(a > b for a, b in zip(losses, losses[1:], strict=False))  # boosting descends
    for h in d["history"]:
        assert h["seconds"] > 0 and h["bytes_up"] > 0 and 0.5 < h["auc"] <= 1
        assert set(h["parties"]) == {"bank_1", "bank_2", "bank_3"}
    for p in d["parties"].values():
        assert 0 <= p["auc"] <= 1 and 0 <= p["local_auc"] <= 1
    gain = d["importance"]["gain"]
    assert list(gain.values()) == sorted(gain.values(), reverse=True) and len(gain) >= 3
    assert set(gain) <= set(d["features"])
    # the trees in the JSON are the model: apply them to the test file
    from federated.data import encode_label, read_table
    from federated.metrics import auc
    from federated.trees.binning import Binner

    binner = Binner.from_json(json.dumps(d["binning"]))
    model = Model(binner.layout, d["base_score"], [Tree.from_dict(t) for t in d["trees"]])
    test = read_table(books.with_name("test.csv"), party="test")
    p = model.predict_proba(binner.codes(test))
    assert auc(encode_label(test, "default", "yes"), p) == pytest.approx(d["global"]["auc"])
    assert all(len(c) <= 255 for c in d["binning"]["cuts"])
    html = render_report(d)
    assert "Feature importance" in html and "Log loss by round" in html


def test_ckks_gives_the_secagg_model(books: Path, secagg: tuple[Path, Any]) -> None:
    """CKKS sums carry ~1e-7 relative noise: the splits agree except where two
    candidates' gains tie to that precision (deep nodes), and the model scores alike."""
    result = run_in_process(_gbdt(books, "ckks", method="ckks", rounds=3))
    ours, theirs = secagg[1].details["trees"][0], result.details["trees"][0]
    assert result.aggregation == "ckks"
    assert ours["feature"][:3] == theirs["feature"][:3]
    assert ours["threshold"][:3] == theirs["threshold"][:3]
    assert abs(result.history[2]["auc"] - secagg[1].history[2]["auc"]) < 0.02


def test_early_stopping_on_a_secure_validation_loss(books: Path) -> None:
    cfg = _gbdt(books, "early", rounds=40,
                gbdt="max_depth = 5\nlearning_rate = 0.6\nearly_stopping = true\npatience = 3")
    result = run_in_process(cfg)
    d = result.to_dict()
    kept = d["trees_kept"]
    assert kept < len(d["history"]) <= 40
    valid = [h["valid_loss"] for h in d["history"]]
    assert int(np.argmin(valid)) + 1 == kept
    check = pooled_check(cfg, result)
    assert check["pooled_trees"] == kept and check["max_abs_diff"] < TOL


# ------------------------------------------------------------------ bad input


def test_mismatched_bins_name_the_party(books: Path) -> None:
    def tamper(party: str, msg: Any) -> None:
        if party == "bank_2" and msg.metadata.message_type == "query.gbdt_setup":
            cfg = msg.content.config_records["config"]
            bins = json.loads(cfg["binner"])
            bins["cuts"][0] = bins["cuts"][0][:-1]
            cfg["binner"] = json.dumps(bins)

    with pytest.raises(InputError, match="party 'bank_2'.*mismatched bins"):
        run_in_process(_gbdt(books, "tamper", rounds=2), tamper=tamper)


def test_dropout_stops_or_continues(books: Path) -> None:
    with pytest.raises(FederationError, match="party 'bank_2' did not reply"):
        run_in_process(_gbdt(books, "stop", rounds=3,
                             agg='on_node_failure = "stop"'), drop={"bank_2": 12})
    result = run_in_process(_gbdt(books, "continue", rounds=3), drop={"bank_3": 12})
    assert result.details["dropped"] == ["bank_3"]
    assert result.history[-1]["active"] == ["bank_1", "bank_2"]
    assert len(result.history) == 3 and result.global_["auc"] > 0.5


def test_secagg_sums_are_one_exchange_each_and_a_lost_sum_is_asked_again(books: Path
                                                                         ) -> None:
    log: list[tuple[str, float, float]] = []
    run_in_process(_gbdt(books, "exchanges", rounds=2, gbdt="max_depth = 3"), log=log)
    actions = [a for a, _, _ in log]
    assert not [a for a in actions if a in ("query.secagg_setup", "query.secagg_unmask")]
    assert actions.count("query.secagg_advertise") == 1
    # 2 trees x 3 levels, plus the losses after the last tree
    assert actions.count("query.gbdt_level") == 7
    # bank_3 leaves after its 4th message (schema, keys, moments, centred moments): the
    # sketch sum cannot be unmasked without it and is asked again of the other two
    log.clear()
    result = run_in_process(_gbdt(books, "lost-sum", rounds=2), drop={"bank_3": 4}, log=log)
    assert result.details["dropped"] == ["bank_3"]
    assert [a for a, _, _ in log].count("query.gbdt_sketch") == 2
    rows = {p: r["rows"] for p, r in result.parties.items()}
    assert result.details["counts"]["train_rows"] == rows["bank_1"] + rows["bank_2"]


def _edit(books: Path, name: str, banks: list[str], column: str, value: float | None
          ) -> Path:
    """A copy of the banks with ``column`` set to ``value`` (None: empty) at ``banks``."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    folder = books.parent / name
    folder.mkdir(exist_ok=True)
    for f in books.parent.glob("*.csv"):
        table = pcsv.read_csv(f)
        if f.stem in banks:
            n = table.num_rows
            col = pa.nulls(n, pa.float64()) if value is None else pa.array([value] * n)
            table = table.set_column(table.column_names.index(column), column, col)
        pcsv.write_csv(table, folder / f.name)
    target = folder / "fl.toml"
    target.write_text(_gbdt(books, name).read_text(encoding="utf-8"), encoding="utf-8")
    return target


def test_all_null_feature_names_the_party(books: Path) -> None:
    with pytest.raises(InputError, match="party 'bank_2'.*'income'.*all null"):
        run_in_process(_edit(books, "nulls", ["bank_2"], "income", None))


def test_constant_feature_is_refused(books: Path) -> None:
    with pytest.raises(InputError, match="'age' holds a single value at every party"):
        run_in_process(_edit(books, "constant", ["bank_1", "bank_2", "bank_3"], "age",
                                  40.0))


def test_config_refuses_plain_aggregation_and_misplaced_keys(books: Path) -> None:
    bad = _gbdt(books, "fedavg", method="fedavg")
    result = CliRunner().invoke(cli, ["fl", "run", str(bad), "--format", "json"])
    assert result.exit_code == 2 and "aggregation.method" in result.output
    from federated.config import parse_config
    from privacy.errors import ConfigError

    base = {"kind": "horizontal", "model": "gbdt", "label": "y",
            "party": [{"name": "a", "data": "a.csv"}, {"name": "b", "data": "b.csv"}]}
    assert parse_config(base).aggregation.method == "secagg"  # the default for trees
    with pytest.raises(ConfigError, match="paillier_bits is for kind = \"vertical\""):
        parse_config({**base, "gbdt": {"paillier_bits": 2048}})
    vertical = {**base, "kind": "vertical", "id": "cid",
                "party": [{"name": "a", "data": "a.csv", "role": "guest"},
                          {"name": "b", "data": "b.csv", "role": "host"}]}
    assert parse_config(vertical).model == "gbdt"
    with pytest.raises(ConfigError, match="Paillier key"):
        parse_config({**vertical, "aggregation": {"method": "secagg"}})
    with pytest.raises(ConfigError, match="needs model"):
        parse_config({**base, "model": "logistic", "gbdt": {"max_depth": 3}})


# ------------------------------------------------------- one run on Flower itself


def test_flower_simulation_end_to_end(books: Path, secagg: tuple[Path, Any]) -> None:
    cfg = _gbdt(books, "flower", rounds=3)
    out = books.with_name("flower.json")
    result = CliRunner().invoke(cli, ["fl", "run", str(cfg), "--format", "json", "--ledger",
                                      str(books.with_name("ledger.db")), "-o", str(out)])
    assert result.exit_code == 0, result.output
    d = json.loads(result.stdout)
    assert d["model"] == "gbdt" and d["rounds"] == 3 and len(d["history"]) == 3
    # the same trees as the in-process run (whose first 3 trees are these)
    for ours, theirs in zip(d["trees"], secagg[1].details["trees"][:3], strict=True):
        assert ours["feature"] == theirs["feature"] and ours["value"] == theirs["value"]
    assert pooled_check(cfg, d)["max_abs_diff"] < TOL
    from privacy.ledger import Ledger

    assert len(list(Ledger(books.with_name("ledger.db")).records("fl.round"))) == 3
