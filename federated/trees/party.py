"""What one bank computes for the federated trees, on its own rows.

Each function answers one message of :mod:`federated.trees.client` and returns the
vector the party protects for secure sum (or a small config). The party keeps, in its
node's own state (never sent): the bins, the margins of its rows under the trees
finished so far and how many trees those are. Binned rows are cached per process.

What a party sends: only protected vectors (sketch counts, gradient and hessian
histograms of its rows per node, loss sums), the digest of the bins it holds, the
number of trees it has applied and, at the end, the AUCs of the federated and of its
local-only model on its own rows.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

import numpy as np
import numpy.typing as npt

from federated.data import encode_label
from federated.horizontal import protocol as P
from federated.horizontal.node_state import state_get, state_put
from federated.horizontal.party import Party
from federated.preprocess import FeatureSpec
from federated.trees.binning import Binner, sketch_vector, validation_mask
from federated.trees.booster import (
    F32,
    Model,
    Params,
    Tree,
    gradients,
    histogram,
    logloss_sum,
    positions,
    train_local,
)
from privacy.errors import InputError

__all__ = ["sketch", "setup", "level", "local_scores", "MAX_BUILD"]

#: The most nodes one level message may ask histograms for.
MAX_BUILD = 1024
_CACHE: OrderedDict[tuple[Any, ...], tuple[Any, ...]] = OrderedDict()
_CACHE_SIZE = 16

FloatArray = npt.NDArray[np.float64]


def _split(party: Party, label: str, positive: str, fraction: float, seed: int
           ) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    pt = party.table()
    y = encode_label(pt, label, positive)
    train = (~validation_mask(pt.rows, fraction, seed=seed, party=party.name)
             if fraction > 0 else np.ones(pt.rows, dtype=bool))
    if not train.any():
        raise pt.error("no training rows left after the validation split")
    return y, train


def sketch(config: dict[str, Any], context: Any) -> tuple[FloatArray, str]:
    """The party's sketch vector (see :func:`federated.trees.binning.sketch_vector`)."""
    party = Party.from_context(context)
    spec = FeatureSpec.from_json(str(config.get("spec", "")))
    y, train = _split(party, spec.label, spec.positive, float(config["validation"]),
                      int(config["seed"]))
    return sketch_vector(party.table(), spec, train, y), party.name


def _data(party: Party, context: Any) -> tuple[Binner, Any, FloatArray, npt.NDArray[np.bool_]]:
    text = state_get(context, "gbdt_binner")
    if not isinstance(text, str):
        raise InputError(f"party {party.name!r}: the trees were not set up on this node")
    label = str(state_get(context, "gbdt_label"))
    positive = str(state_get(context, "gbdt_positive"))
    fraction, seed = float(state_get(context, "gbdt_valid")), int(state_get(context, "gbdt_seed"))
    binner = Binner.from_json(text)
    key = (party._key(), binner.digest, label, positive, fraction, seed)
    if key not in _CACHE:
        while len(_CACHE) >= _CACHE_SIZE:
            _CACHE.popitem(last=False)
        y, train = _split(party, label, positive, fraction, seed)
        _CACHE[key] = (binner.codes(party.table()), y, train)
    _CACHE.move_to_end(key)
    codes, y, train = _CACHE[key]
    return binner, codes, y, train


def setup(config: dict[str, Any], context: Any) -> dict[str, Any]:
    """Store the bins and start every row's margin at the base score."""
    party = Party.from_context(context)
    binner = Binner.from_json(str(config.get("binner", "")))
    base = float(config["base-score"])
    if not 0 < base < 1:
        raise InputError(f"party {party.name!r}: base score {base} is not a probability")
    state_put(context, gbdt_binner=binner.to_json(), gbdt_label=str(config["label"]),
              gbdt_positive=str(config["positive"]), gbdt_valid=float(config["validation"]),
              gbdt_seed=int(config["seed"]))
    _, codes, _, _ = _data(party, context)
    margin = np.full(codes.shape[0], Model(binner.layout, base, []).base_margin, dtype=F32)
    state_put(context, gbdt_margin=margin.tobytes(), gbdt_applied=0)
    return {"party": party.name, "digest": binner.digest}


def _margin(context: Any, rows: int, config: dict[str, Any], binner: Binner,
            codes: Any) -> tuple[npt.NDArray[np.float32], int]:
    """The stored margins, after applying the finished tree the message carries."""
    blob = state_get(context, "gbdt_margin")
    applied = state_get(context, "gbdt_applied")
    if not isinstance(blob, bytes) or not isinstance(applied, int):
        raise InputError("the trees were not set up on this node")
    margin = np.frombuffer(blob, dtype=F32).copy()
    if margin.shape != (rows,):
        raise InputError("the stored margins do not match the data file (it changed)")
    finished = str(config.get("finished", ""))
    done = int(config.get("trees-done", 0))
    if finished and applied == done - 1:
        tree = Tree.from_dict(json.loads(finished), columns=codes.shape[1])
        margin += tree.value[positions(tree, codes)]
        applied = done
        state_put(context, gbdt_margin=margin.tobytes(), gbdt_applied=applied)
    if applied != done:
        raise InputError(f"this node has applied {applied} trees, the coordinator expects "
                         f"{done} (its state was lost: restart the run)")
    return margin, applied


def level(config: dict[str, Any], context: Any) -> tuple[FloatArray, dict[str, Any]]:
    """Histograms of the requested nodes (and loss sums when asked), for secure sum;
    the reply config holds the party's name, its bins' digest and trees applied."""
    party = Party.from_context(context)
    binner, codes, y, train = _data(party, context)
    margin, applied = _margin(context, codes.shape[0], config, binner, codes)
    layout = binner.layout
    try:
        build = [int(n) for n in json.loads(str(config.get("build", "[]")))]
        partial = json.loads(str(config.get("partial", "")) or "null")
    except (ValueError, TypeError) as exc:
        raise InputError(f"malformed level message ({exc})") from None
    if len(build) > MAX_BUILD or any(n < 0 or n >= 2 ** 12 for n in build):
        raise InputError("level message asks for too many or unknown nodes")
    scale = float(config.get("scale", 1.0))
    out: list[FloatArray] = []
    if build:
        tree = Tree.from_dict(partial, columns=codes.shape[1])
        depth = int(config["level"])
        ct, mt, yt = codes[train], margin[train], y[train]
        g, h = gradients(mt, yt)
        pos = _positions(party, binner, tree, ct, depth, int(config.get("trees-done", 0)))
        G, H = histogram(ct, layout, pos, build, g, h)
        out += [G.ravel() / scale, H.ravel() / scale]
    if config.get("losses"):
        n_train, n_valid = float(config["n-train"]), float(config["n-valid"])
        out.append(np.array([logloss_sum(margin[train], y[train]) / max(n_train, 1.0),
                             logloss_sum(margin[~train], y[~train]) / max(n_valid, 1.0)]))
    vec = np.concatenate(out) if out else np.zeros(0)
    return vec, {"digest": binner.digest, "applied": applied, "party": party.name}


_POS: dict[tuple[Any, ...], npt.NDArray[np.int64]] = {}


def _positions(party: Party, binner: Binner, tree: Tree, codes: Any, depth: int, done: int
               ) -> npt.NDArray[np.int64]:
    """Rows' nodes at ``depth``: one step down from the previous level's (cached in this
    process), else from the root."""
    key = (party._key(), binner.digest, done)
    prev = _POS.get(key + (depth - 1,))
    if prev is not None and prev.shape == (codes.shape[0],):
        pos = prev.copy()
        split = tree.split[pos]
        if split.any():
            rows = np.flatnonzero(split)
            p = pos[rows]
            code = codes[rows, tree.column[p]].astype(np.int32)
            thr = tree.threshold[p]
            right = np.where(tree.categorical[p], code == thr,
                             np.where(code == 0, ~tree.default_left[p], code > thr))
            pos[rows] = 2 * p + 1 + right
    else:
        pos = positions(tree, codes, upto=depth)
    for k in [k for k in _POS if k[:2] == key[:2]]:
        del _POS[k]
    _POS[key + (depth,)] = pos
    return pos


def local_scores(msg: Any, context: Any) -> dict[str, Any]:
    """AUC of the federated model and of a local-only model (same bins and parameters,
    trained on this party's rows) on the party's test rows the coordinator sent, or of
    the federated model on the party's own rows when none were sent."""
    from federated.metrics import auc

    party = Party.from_context(context)
    binner, codes, y, train = _data(party, context)
    cfg = P.config_of(msg)
    params = Params.from_json(str(cfg.get("params", "")))
    model_d = json.loads(str(cfg.get("model", "{}")))
    model = Model(binner.layout, float(model_d["base_score"]),
                  [Tree.from_dict(t, columns=codes.shape[1]) for t in model_d["trees"]])
    arrays = msg.content.array_records.get(P.ARRAYS)
    out: dict[str, Any] = {"rows": float(codes.shape[0])}
    if arrays is None or "X" not in arrays:
        if 0 < y.sum() < len(y):
            out["auc"] = auc(y, model.predict_proba(codes))
        return out
    Xt = np.asarray(arrays["X"].numpy()).astype(np.uint16).reshape(-1, codes.shape[1])
    yt = np.asarray(arrays["y"].numpy(), dtype=np.float64)
    out["test-rows"] = float(len(yt))
    if 0 < yt.sum() < len(yt) and 0 < y[train].sum() < train.sum():
        valid = (codes[~train], y[~train]) if (~train).any() else None
        local, _ = train_local(codes[train], y[train], binner.layout, params, valid=valid)
        out["auc"] = auc(yt, model.predict_proba(Xt))
        out["local-auc"] = auc(yt, local.predict_proba(Xt))
    return out
