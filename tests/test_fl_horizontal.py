"""Horizontal federated logistic regression, end to end on Flower's simulation engine.

Three banks of unequal size (synthetic loan books with missing cells, and a region only
one bank has) train through ``covault fl run`` / ``federated.run`` with plain FedAvg,
CKKS and secure aggregation, and with DP. The checks are the issue's: the encrypted and
masked runs give FedAvg's weights, FedAvg's AUC matches scikit-learn on the pooled rows
with the same preprocessing, the JSON has the documented keys, every party's ledger has
a record of every message it answered, and DP reports the accountant's epsilon.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("flwr")
sklearn = pytest.importorskip("sklearn")

from covault.cli import main as cli  # noqa: E402
from federated import FLResult, run  # noqa: E402
from federated.data import read_table  # noqa: E402
from federated.horizontal.dp import epsilon_spent  # noqa: E402
from federated.preprocess import Transform  # noqa: E402
from federated.sample import write_loan_books  # noqa: E402
from privacy.ledger import Ledger  # noqa: E402

ROUNDS = 12
ROWS = [250, 600, 1100]


@pytest.fixture(scope="module")
def books(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("banks")
    write_loan_books(folder, ROWS, test_rows=900, rounds=ROUNDS, seed=7)
    return folder


def _config(books: Path, name: str, method: str, extra: str = "") -> Path:
    text = (books / "fl.toml").read_text(encoding="utf-8")
    text = text.replace('method = "fedavg"', f'method = "{method}"') + extra
    path = books / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def fedavg(books: Path) -> dict[str, Any]:
    """FedAvg through the CLI, with a ledger."""
    result = CliRunner().invoke(cli, ["fl", "run", str(_config(books, "fedavg", "fedavg")),
                                      "--format", "json", "--ledger",
                                      str(books / "ledger.db")])
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


@pytest.fixture(scope="module")
def secure(books: Path) -> dict[str, FLResult]:
    return {m: run(_config(books, m, m)) for m in ("ckks", "secagg")}


def test_json_has_the_documented_keys(fedavg: dict[str, Any]) -> None:
    assert list(fedavg)[:7] == ["kind", "rounds", "aggregation", "global", "parties",
                                "history", "epsilon"]
    assert fedavg["kind"] == "horizontal" and fedavg["aggregation"] == "fedavg"
    assert fedavg["epsilon"] is None
    assert set(fedavg["global"]) >= {"auc", "ks", "logloss"}
    assert set(fedavg["parties"]) == {"bank_1", "bank_2", "bank_3"}
    for name, rows in zip(("bank_1", "bank_2", "bank_3"), ROWS, strict=True):
        party = fedavg["parties"][name]
        assert party["rows"] == rows
        assert 0.5 < party["auc"] <= 1 and 0 <= party["local_auc"] <= 1
    assert [h["round"] for h in fedavg["history"]] == list(range(1, ROUNDS + 1))
    for h in fedavg["history"]:
        assert h["bytes_up"] > 0 and h["bytes_down"] > 0 and h["seconds"] > 0
        assert set(h) >= {"round", "auc", "seconds", "bytes_up", "bytes_down"}


def _pooled(books: Path, result: dict[str, Any]) -> tuple[float, np.ndarray]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    transform = Transform.from_json(json.dumps(result["preprocessing"]))
    tables = [read_table(books / f"bank_{i}.csv", party=f"bank_{i}") for i in (1, 2, 3)]
    X = np.vstack([transform.features(t) for t in tables])
    y = np.concatenate([transform.labels(t) for t in tables])
    model = LogisticRegression(C=1.0, max_iter=5000, tol=1e-10).fit(X, y)
    test = read_table(books / "test.csv", party="test")
    auc = roc_auc_score(transform.labels(test), model.decision_function(transform.features(test)))
    return float(auc), np.concatenate([model.coef_[0], model.intercept_])


def test_fedavg_matches_pooled_scikit_learn(books: Path, fedavg: dict[str, Any]) -> None:
    auc, weights = _pooled(books, fedavg)
    assert abs(fedavg["global"]["auc"] - auc) < 0.005
    # the federated model heads for the pooled optimum
    w = np.asarray(fedavg["weights"])
    assert np.corrcoef(w[:-1], weights[:-1])[0, 1] > 0.9


def test_level_held_by_one_bank_is_a_feature(books: Path, fedavg: dict[str, Any]) -> None:
    only_3 = {r for r in read_table(books / "bank_3.csv", party="b").table["region"].to_pylist()
              if r is not None}
    for i in (1, 2):
        only_3 -= set(read_table(books / f"bank_{i}.csv", party="b").table["region"].to_pylist())
    assert only_3, "the sample should give the largest bank a region of its own"
    features = fedavg["features"]
    for level in only_3:
        j = features.index(f"region={level}")
        assert fedavg["weights"][j] != 0.0


def test_banks_gain_over_local_models_on_average(fedavg: dict[str, Any]) -> None:
    parties = fedavg["parties"].values()
    assert np.mean([p["auc"] for p in parties]) > np.mean([p["local_auc"] for p in parties])


def test_ckks_and_secagg_give_fedavg_weights(fedavg: dict[str, Any],
                                             secure: dict[str, FLResult]) -> None:
    w = np.asarray(fedavg["weights"])
    for method, result in secure.items():
        assert result.aggregation == method
        assert np.max(np.abs(np.asarray(result.details["weights"]) - w)) < 1e-6, method
        assert abs(result.global_["auc"] - fedavg["global"]["auc"]) < 1e-4
    # what is sent grows with the protection: CKKS ciphertexts are the largest
    assert secure["ckks"].details["bytes_up"] > secure["secagg"].details["bytes_up"] \
        > fedavg["bytes_up"]


def test_every_party_ledger_has_each_round(books: Path, fedavg: dict[str, Any]) -> None:
    coordinator = Ledger(books / "ledger.db")
    assert len([r for r in coordinator.records("fl.round")]) == ROUNDS
    coordinator.verify()
    for i in (1, 2, 3):
        led = Ledger(books / f"ledger.bank_{i}.db")
        records = [r.payload for r in led.records("fl.message")]
        _check_party_records(records, len(fedavg["weights"]))
        led.verify()


def _check_party_records(records: list[Any], weights: int) -> None:
    trained = [r for r in records if r["action"] == "train"]
    assert len(trained) == ROUNDS
    assert sorted({r["round"] for r in trained}) == list(range(1, ROUNDS + 1))
    for r in trained:
        assert r["sent"]["bytes"] > 0 and len(r["sent"]["sha256"]) == 64
        assert r["received"]["bytes"] > 0 and not r["sent"]["error"]
        shapes = [shape for arrays in r["sent"]["arrays"].values() for shape in arrays.values()]
        assert [weights] in shapes


def test_dp_reports_the_accountants_epsilon(books: Path, fedavg: dict[str, Any]) -> None:
    # The noise on the average is sigma * C / 3 per coordinate whatever C is, so with three
    # banks and ~20 features sigma = 1 drowns the clipped update (AUC anywhere in 0.44-0.66
    # over runs); sigma = 0.3 leaves a model every run while still costing accuracy.
    dp = '\n[dp]\nnoise_multiplier = 0.3\nclipping = "fixed"\nclipping_norm = 1.0\n'
    result = run(_config(books, "dp", "fedavg", dp))
    expected = epsilon_spent(0.3, ROUNDS, 1e-5)
    assert result.epsilon == pytest.approx(expected)
    eps = [h["epsilon"] for h in result.history]
    assert eps == sorted(eps) and eps[-1] == pytest.approx(expected)
    assert eps[0] == pytest.approx(epsilon_spent(0.3, 1, 1e-5))
    # noise costs accuracy, but the model is still a model
    assert 0.6 < result.global_["auc"] <= fedavg["global"]["auc"] + 0.02


def test_unknown_method_is_exit_2_naming_the_key(books: Path) -> None:
    result = CliRunner().invoke(cli, ["fl", "run", str(_config(books, "bad", "ckks2")),
                                      "--format", "json"])
    assert result.exit_code == 2
    assert "aggregation.method" in result.output


def test_robust_aggregator_without_a_test_file(tmp_path: Path) -> None:
    """Flower's robust aggregators by name; with no test file each bank scores the model
    on its own rows every round and the global AUC is their row-weighted mean."""
    config = write_loan_books(tmp_path, [200, 300, 400], rounds=3, seed=2, method="fedmedian")
    result = run(config)
    assert result.aggregation == "fedmedian"
    aucs = [h["auc"] for h in result.history]
    assert len(aucs) == 3 and all(0.5 < a <= 1 for a in aucs)
    parties = result.parties
    rows = {p: v["rows"] for p, v in parties.items()}
    mean = sum(rows[p] * parties[p]["auc"] for p in parties) / sum(rows.values())
    assert result.global_["auc"] == pytest.approx(mean)
    assert result.global_["ks"] is None and all(v["local_auc"] is None
                                                for v in parties.values())
