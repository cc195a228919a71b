"""Scoring new customers with a horizontal model at one bank (``covault fl score
--result --data``): the probabilities are the model's (the run's own evaluation, and an
independent computation of the logistic model), errors name the file and column, and a
failed command writes nothing."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from covault.cli import main
from federated.local_scoring import predict, score_file
from federated.preprocess import Transform
from privacy.errors import InputError


def _cli(*args: str) -> Any:
    return CliRunner().invoke(main, ["fl", "score", *args])


def _read(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))


def _logistic_result() -> dict[str, Any]:
    transform = Transform("y", "1", [("income", 5000.0, 4800.0, 1500.0),
                                     ("age", 40.0, 41.5, 9.5)],
                          [("region", ["north", "south"])])
    return {"kind": "horizontal", "features": transform.feature_names,
            "weights": [0.8, -0.4, 0.3, -0.2, -1.1],
            "preprocessing": json.loads(transform.to_json())}


CUSTOMERS = ("cust,income,age,region\n"
             "007,6200,35,north\n"
             "008,,52,south\n"
             "009,3100,,east\n")


def test_logistic_scores_equal_the_model_computed_by_hand(tmp_path: Path) -> None:
    (tmp_path / "res.json").write_text(json.dumps(_logistic_result()), encoding="utf-8")
    (tmp_path / "new.csv").write_text(CUSTOMERS, encoding="utf-8")
    r = _cli("--result", str(tmp_path / "res.json"), "--data", str(tmp_path / "new.csv"),
             "--id", "cust", "-o", str(tmp_path / "s.csv"), "--format", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output) == {"output": str(tmp_path / "s.csv"), "written": 3,
                                    "model": "logistic"}
    rows = _read(tmp_path / "s.csv")
    assert rows[0] == ["cust", "probability"]
    assert [r[0] for r in rows[1:]] == ["007", "008", "009"]  # ids as written
    # by hand: missing numbers take the median, then (x - mean) / sd; unseen level -> 0
    x = np.array([[(6200 - 4800) / 1500, (35 - 41.5) / 9.5, 1, 0],
                  [(5000 - 4800) / 1500, (52 - 41.5) / 9.5, 0, 1],
                  [(3100 - 4800) / 1500, (40 - 41.5) / 9.5, 0, 0]])
    z = x @ np.array([0.8, -0.4, 0.3, -0.2]) - 1.1
    expected = 1 / (1 + np.exp(-z))
    assert [float(r[1]) for r in rows[1:]] == pytest.approx(expected, abs=5e-7)


def test_row_numbers_without_an_id(tmp_path: Path) -> None:
    (tmp_path / "new.csv").write_text(CUSTOMERS, encoding="utf-8")
    out = score_file(_logistic_result(), tmp_path / "new.csv", tmp_path / "s.csv")
    assert out["written"] == 3
    assert [r[0] for r in _read(tmp_path / "s.csv")] == ["row", "1", "2", "3"]


def test_bad_inputs_name_what_and_write_nothing(tmp_path: Path) -> None:
    res = tmp_path / "res.json"
    res.write_text(json.dumps(_logistic_result()), encoding="utf-8")
    (tmp_path / "new.csv").write_text("cust,income,region\n1,5,north\n", encoding="utf-8")
    out = tmp_path / "s.csv"
    r = _cli("--result", str(res), "--data", str(tmp_path / "new.csv"), "-o", str(out))
    assert r.exit_code == 2 and "new.csv" in r.output and "'age' is missing" in r.output
    assert not out.exists()
    (tmp_path / "ids.csv").write_text("cust,income,age,region\n1,5,30,north\n,6,31,south\n",
                                      encoding="utf-8")
    with pytest.raises(InputError, match="empty id") as info:
        score_file(res, tmp_path / "ids.csv", out, id_column="cust")
    assert info.value.row == 2 and not out.exists()
    vertical = tmp_path / "v.json"
    vertical.write_text(json.dumps({"kind": "vertical"}), encoding="utf-8")
    r = _cli("--result", str(vertical), "--data", str(tmp_path / "new.csv"), "-o", str(out))
    assert r.exit_code == 2 and "only horizontal models" in r.output
    hollow = tmp_path / "h.json"
    hollow.write_text(json.dumps({"kind": "horizontal"}), encoding="utf-8")
    r = _cli("--result", str(hollow), "--data", str(tmp_path / "new.csv"), "-o", str(out))
    assert r.exit_code == 2 and "has no preprocessing, weights" in r.output
    # an existing output needs --force; an input is never an output; no mixing of modes
    out.write_text("keep", encoding="utf-8")
    r = _cli("--result", str(res), "--data", str(tmp_path / "new.csv"), "-o", str(out))
    assert r.exit_code == 2 and "--force" in r.output and out.read_text() == "keep"
    r = _cli("--result", str(res), "--data", str(out), "-o", str(out), "--force")
    assert r.exit_code == 2 and "is also the input --data" in r.output
    assert out.read_text() == "keep"
    r = _cli(str(tmp_path / "fl.toml"), "--result", str(res), "--data", str(out),
             "-o", str(tmp_path / "x.csv"))
    assert r.exit_code == 2 and "no CONFIG.toml" in r.output


def test_trees_score_what_the_run_evaluated(tmp_path: Path) -> None:
    pytest.importorskip("flwr")
    from federated.data import encode_label, read_table
    from federated.metrics import auc
    from federated.sample import write_loan_books
    from federated.trees.local import run_in_process

    cfg = write_loan_books(tmp_path, [300, 500], test_rows=300, seed=5, rounds=3)
    text = cfg.read_text(encoding="utf-8").replace('model = "logistic"', 'model = "gbdt"')
    text = text.replace('method = "fedavg"', 'method = "secagg"')
    cfg.write_text(text.replace("[aggregation]", "[gbdt]\nmax_depth = 3\n\n[aggregation]"),
                   encoding="utf-8")
    result = run_in_process(cfg).to_dict()
    (tmp_path / "res.json").write_text(json.dumps(result), encoding="utf-8")
    test = tmp_path / "test.csv"
    r = _cli("--result", str(tmp_path / "res.json"), "--data", str(test),
             "-o", str(tmp_path / "s.csv"))
    assert r.exit_code == 0, r.output
    p = np.array([float(row[1]) for row in _read(tmp_path / "s.csv")[1:]])
    table = read_table(test, party="test")
    y = encode_label(table, "default", "yes")
    assert len(p) == table.rows
    assert auc(y, p) == pytest.approx(result["global"]["auc"], abs=1e-6)
    assert predict(result, table) == pytest.approx(p, abs=5e-7)


def test_the_package_score_function_is_not_shadowed() -> None:
    """``federated.score`` (vertical scoring) stays a function once this module is loaded
    (a submodule named ``score`` would replace it in the package namespace)."""
    import federated
    import federated.local_scoring  # noqa: F401
    from federated.runner import score

    assert federated.score is score
