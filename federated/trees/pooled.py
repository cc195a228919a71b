"""The pooled reference: XGBoost on every party's rows together, with the same bins.

What a federated GBDT must equal (the acceptance oracle of the tests, the Lending Club
example and the benchmark). XGBoost gets the *binned* rows: a numeric column as its codes
(``1..bins``, NaN when missing), so each code is one XGBoost bin (``max_bin`` is at
least the number of codes, and every code holds training rows); a categorical column
as one 0/1 column per level (the federated model's one-vs-rest splits). Settings that
make XGBoost's trainer the same computation: ``tree_method="hist"``, depth-wise growth,
no row or column subsampling, ``reg_alpha = 0``, ``max_delta_step = 0``, the base score
fixed to the training event rate, early stopping on the same validation rows with
``logloss``. XGBoost is imported here only (``pip install covault[fl]`` brings it).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from federated.trees.booster import Layout, Params, base_score

__all__ = ["design", "fit_xgboost", "predict_xgboost", "pooled_check", "vertical_pooled_check"]


def design(codes: npt.NDArray[np.uint16], layout: Layout) -> npt.NDArray[np.float64]:
    """XGBoost's input matrix for binned rows (columns = ``layout.features``)."""
    cols = []
    for c, k in layout.features:
        code = codes[:, c].astype(np.float64)
        if k:
            cols.append((code == k).astype(np.float64))
        else:
            cols.append(np.where(code == 0, np.nan, code))
    return np.column_stack(cols) if cols else np.zeros((codes.shape[0], 0))


def fit_xgboost(codes: npt.NDArray[np.uint16], y: npt.NDArray[np.float64], layout: Layout,
                params: Params, *, valid: tuple[npt.NDArray[np.uint16],
                                                npt.NDArray[np.float64]] | None = None,
                threads: int = 1) -> tuple[Any, int]:
    """Train the pooled XGBoost model; returns the booster and the number of trees to
    predict with (the best iteration + 1 under early stopping)."""
    import xgboost as xgb

    dtrain = xgb.DMatrix(design(codes, layout), label=y, missing=np.nan)
    evals = []
    if valid is not None:
        evals = [(xgb.DMatrix(design(valid[0], layout), label=valid[1], missing=np.nan),
                  "valid")]
    booster = xgb.train(
        {"objective": "binary:logistic", "tree_method": "hist", "max_bin": 256,
         "grow_policy": "depthwise", "max_depth": params.max_depth,
         "eta": params.learning_rate, "min_child_weight": params.min_child_weight,
         "reg_lambda": params.reg_lambda, "gamma": params.gamma, "reg_alpha": 0.0,
         "max_delta_step": 0.0, "subsample": 1.0, "colsample_bytree": 1.0,
         "base_score": base_score(y), "eval_metric": "logloss", "nthread": threads,
         "verbosity": 0},
        dtrain, num_boost_round=params.trees, evals=evals,
        early_stopping_rounds=params.patience if params.early_stopping and evals else None,
        verbose_eval=False)
    n = (booster.best_iteration + 1 if params.early_stopping and evals
         else booster.num_boosted_rounds())
    return booster, int(n)


def predict_xgboost(booster: Any, n_trees: int, codes: npt.NDArray[np.uint16],
                    layout: Layout) -> npt.NDArray[np.float64]:
    """Probabilities of the pooled model on binned rows."""
    import xgboost as xgb

    d = xgb.DMatrix(design(codes, layout), missing=np.nan)
    return np.asarray(booster.predict(d, iteration_range=(0, n_trees)), dtype=np.float64)


def pooled_check(config: Any, result: Any, *, threads: int = 1) -> dict[str, Any]:
    """Train the pooled XGBoost model on every party's rows of a config (with the bins,
    validation split and parameters a federated ``result`` reports) and compare.

    Returns ``{"max_abs_diff", "federated_auc", "pooled_auc", "trees", "pooled_trees",
    "pooled_seconds"}`` on the config's test file (or on the pooled training rows when
    it has none).
    """
    import time

    from federated.config import FLConfig, load_config
    from federated.data import encode_label, read_table
    from federated.metrics import auc
    from federated.trees.binning import Binner, validation_mask
    from federated.trees.booster import Model, Tree

    cfg = config if isinstance(config, FLConfig) else load_config(config)
    d = result.to_dict() if hasattr(result, "to_dict") else dict(result)
    import json

    binner = Binner.from_json(json.dumps(d["binning"]))
    layout = binner.layout
    params = Params(**d["params"])
    positive = _positive(cfg, d)
    fraction = params.validation if params.early_stopping else 0.0
    parts = []
    for p in cfg.party:
        if p.name in d.get("dropped", []):
            continue
        assert p.data is not None
        pt = read_table(p.data, party=p.name)
        y = encode_label(pt, cfg.label, positive)
        valid = (validation_mask(pt.rows, fraction, seed=cfg.seed, party=p.name)
                 if fraction > 0 else np.zeros(pt.rows, dtype=bool))
        parts.append((binner.codes(pt), y, valid))
    codes = np.vstack([c for c, _, _ in parts])
    y = np.concatenate([v for _, v, _ in parts])
    vmask = np.concatenate([m for _, _, m in parts])
    t0 = time.perf_counter()
    booster, n = fit_xgboost(codes[~vmask], y[~vmask], layout, params,
                             valid=(codes[vmask], y[vmask]) if fraction > 0 else None,
                             threads=threads)
    seconds = time.perf_counter() - t0
    if cfg.test is not None:
        test = read_table(cfg.test, party="test")
        tc, ty = binner.codes(test), encode_label(test, cfg.label, positive)
    else:
        tc, ty = codes, y
    model = Model(layout, float(d["base_score"]), [Tree.from_dict(t) for t in d["trees"]])
    ours = model.predict_proba(tc)
    theirs = predict_xgboost(booster, n, tc, layout)
    return {"max_abs_diff": float(np.max(np.abs(ours - theirs))),
            "federated_auc": auc(ty, ours), "pooled_auc": auc(ty, theirs),
            "trees": len(d["trees"]), "pooled_trees": n, "pooled_seconds": seconds}


def _positive(cfg: Any, d: dict[str, Any]) -> str:
    """The event value the run used (the label value encoded as 1)."""
    from federated.data import choose_positive, label_levels, read_table

    levels: set[str] = set()
    for p in cfg.party:
        if p.data is not None:
            levels.update(label_levels(read_table(p.data, party=p.name), cfg.label))
    return str(choose_positive(sorted(levels), cfg.positive, label=cfg.label))


def vertical_pooled_check(config: Any, scores: Any, *, threads: int = 1) -> dict[str, Any]:
    """Pooled XGBoost on a vertical run's files joined on the id (the customers every
    party has), with each party's saved bins (its model part) and the run's parameters,
    against the federated probabilities of the joined test customers (``scores``: the
    CSV ``covault fl score`` writes for the parties' test files).

    Returns ``{"max_abs_diff", "federated_auc", "pooled_auc", "trees", "rows",
    "test_rows"}``.

    Raises
    ------
    InputError
        The config has no test files or stops early (the federated model then trained
        on rows a pooled model cannot know), or a model part or score is missing.
    """
    import csv
    import json
    from dataclasses import replace

    from federated.config import FLConfig, load_config
    from federated.data import encode_label, read_table, text_values
    from federated.metrics import auc
    from federated.trees.binning import Binner
    from federated.trees.secureboost import joint_layout
    from privacy.errors import InputError
    from privacy.normalize import normalizer
    from privacy.psi import normalize_id

    cfg = config if isinstance(config, FLConfig) else load_config(config)
    if any(p.test is None for p in cfg.party) or cfg.gbdt.early_stopping:
        raise InputError("the pooled check needs every party's test file and no early "
                         "stopping (the federated model trains on all shared training rows)")
    guest = next(p for p in cfg.party if p.role == "guest")
    hosts = [p for p in cfg.party if p.role == "host"]
    parts = {}
    for p in cfg.party:
        path = cfg.model_part(p)
        if not path.is_file():
            raise InputError(f"party {p.name!r}: no model part", file=str(path))
        parts[p.name] = json.loads(path.read_text(encoding="utf-8"))
    binners = {n: Binner.from_json(str(part["bins"])) for n, part in parts.items()}
    layout, _ = joint_layout(binners[guest.name].layout,
                             [(h.name, binners[h.name].layout) for h in hosts])
    params = replace(Params.of_config(cfg.model_dump(mode="json")),
                     trees=int(parts[guest.name]["trees"]))
    positive = str(parts[guest.name]["positive"])
    assert cfg.id is not None  # a vertical config has one
    norm = normalizer(cfg.id_type) if cfg.id_type else normalize_id

    def joined(split: str) -> tuple[list[str], npt.NDArray[np.uint16], Any]:
        tables = {p.name: read_table(p.data if split == "train" else p.test, party=p.name,
                                     text_columns=(str(cfg.id),))
                  for p in cfg.party}
        ids = {n: [norm(str(v)) for v in text_values(t, str(cfg.id))]
               for n, t in tables.items()}
        common = sorted(set.intersection(*(set(v) for v in ids.values())))
        blocks = []
        for p in [guest, *hosts]:
            where = {k: i for i, k in enumerate(ids[p.name])}
            blocks.append(binners[p.name].codes(tables[p.name])[[where[k] for k in common]])
        where = {k: i for i, k in enumerate(ids[guest.name])}
        y = encode_label(tables[guest.name], cfg.label, positive)[[where[k] for k in common]]
        return common, np.hstack(blocks).astype(np.uint16), y

    _, codes, y = joined("train")
    booster, n = fit_xgboost(codes, y, layout, params, threads=threads)
    test_ids, test_codes, test_y = joined("test")
    theirs = predict_xgboost(booster, n, test_codes, layout)
    with open(scores, newline="", encoding="utf-8") as fh:
        got = {norm(r[str(cfg.id)]): float(r["probability"]) for r in csv.DictReader(fh)}
    missing = [k for k in test_ids if k not in got]
    if missing:
        raise InputError(f"no federated score for {len(missing)} joined test customers "
                         f"(e.g. {missing[0]!r})", file=str(scores))
    ours = np.asarray([got[k] for k in test_ids])
    return {"max_abs_diff": float(np.max(np.abs(ours - theirs))),
            "federated_auc": auc(test_y, ours), "pooled_auc": auc(test_y, theirs),
            "trees": n, "rows": int(len(y)), "test_rows": len(test_ids)}
