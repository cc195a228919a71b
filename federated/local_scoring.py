"""Scoring new customers with a horizontal model, at one bank, from its result JSON.

A horizontal run ends with one global model that every bank holds: the result JSON that
``covault fl run`` writes carries it (logistic regression: the preprocessing and the
weights; gradient-boosted trees: the bins, the trees and the base score). Scoring is
local: nothing leaves the bank. :func:`score_file` applies the model to a CSV or Parquet
file with the training columns (the label may be absent) and writes ``id`` (or ``row``)
and ``probability``, the same probabilities the run's evaluation computed.

Vertical models are scored jointly by every party (:func:`federated.runner.score`).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from privacy.atomic import atomic_output
from privacy.errors import InputError

__all__ = ["load_result", "predict", "score_file"]

FloatArray = npt.NDArray[np.float64]

#: The keys a horizontal result needs to be applied, by model.
_NEEDS = {"logistic": ("preprocessing", "weights"),
          "gbdt": ("binning", "trees", "base_score")}


def load_result(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A horizontal result JSON (``covault fl run -o``), checked to hold a model.

    Raises
    ------
    InputError
        The file is missing, not JSON, not a horizontal result, or lacks its model.
    """
    p = Path(path)
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("result file not found", file=str(p)) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"cannot read the result JSON ({exc})", file=str(p)) from None
    if not isinstance(d, dict):
        raise InputError("not a covault fl result (a JSON object)", file=str(p))
    if d.get("kind") != "horizontal":
        raise InputError(f"a {d.get('kind')!r} result: only horizontal models are scored "
                         "from their result (vertical models: covault fl score CONFIG.toml, "
                         "every party taking part)", file=str(p))
    model = str(d.get("model", "logistic"))
    needs = _NEEDS.get(model)
    if needs is None:
        raise InputError(f"unknown model {model!r}", file=str(p))
    missing = [k for k in needs if k not in d]
    if missing:
        raise InputError(f"the {model} result has no {', '.join(missing)}: write it with "
                         "covault fl run -o", file=str(p))
    return d


def predict(result: Mapping[str, Any], table: Any) -> FloatArray:
    """The model's probability of the positive label for every row of ``table`` (a
    :class:`federated.data.PartyTable`).

    Raises
    ------
    InputError
        A column the model needs is missing or malformed (naming it), or the result's
        model is malformed.
    """
    if str(result.get("model", "logistic")) == "gbdt":
        from federated.trees.binning import Binner
        from federated.trees.booster import Model, Tree

        try:
            binner = Binner.from_json(json.dumps(result["binning"]))
            model = Model(binner.layout, float(result["base_score"]),
                          [Tree.from_dict(t) for t in result["trees"]])
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"malformed trees in the result ({exc})") from None
        return np.asarray(model.predict_proba(binner.codes(table)), dtype=np.float64)
    from federated.model import predict_proba
    from federated.preprocess import Transform

    transform = Transform.from_json(json.dumps(result["preprocessing"]))
    try:
        weights = np.asarray(result["weights"], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"malformed weights in the result ({exc})") from None
    return predict_proba(weights, transform.features(table))


def score_file(result: str | os.PathLike[str] | Mapping[str, Any],
               data: str | os.PathLike[str], output: str | os.PathLike[str], *,
               id_column: str | None = None, party: str = "score") -> dict[str, Any]:
    """Score every row of ``data`` with a horizontal model and write ``output`` (CSV:
    ``id_column`` as written, or ``row`` numbered from 1, then ``probability``).

    The output is written whole or not at all. Returns ``{"output", "written",
    "model"}``.

    Raises
    ------
    InputError
        A bad result (see :func:`load_result`), a missing or malformed data file or
        column, ``id_column`` missing or empty in a row.
    """
    from federated.data import read_table, text_values

    d = load_result(result) if not isinstance(result, Mapping) else dict(result)
    ids = [id_column] if id_column else []
    table = read_table(data, party=party, text_columns=ids)
    if id_column:
        if id_column not in table.columns:
            raise table.error(f"id column {id_column!r} is missing")
        names = text_values(table, id_column)
        empty = [i for i, v in enumerate(names) if v is None or not str(v).strip()]
        if empty:
            raise table.error("empty id", column=id_column, row=empty[0] + 1)
    p = predict(d, table)
    with atomic_output(output, "w") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow([id_column or "row", "probability"])
        keys = names.tolist() if id_column else range(1, len(p) + 1)
        for key, prob in zip(keys, p.tolist(), strict=True):
            writer.writerow([key, f"{prob:.6f}"])
    return {"output": str(output), "written": int(len(p)),
            "model": str(d.get("model", "logistic"))}
