"""The ServerApp of the federated trees: the coordinator of a horizontal GBDT.

Steps: find the parties (schema exchange), set up secure sum (``secagg`` or ``ckks``),
sum the moments (the grid of each column's sketch), sum the sketches (global bins, row
and event counts), hand every party the bins and the base score, then grow each tree
level by level: one secure sum per level carries the gradient and hessian histograms of
every node the level builds (the other child of each split is its parent minus the
built one), so a tree of depth ``d`` costs ``d`` sums. With ``secagg`` each sum is one
exchange (the pairwise pads of ``privacy.secagg.pairwise``: a sum a party drops out of
is asked again of the others, never unmasked without it). The first sum of each tree also
carries the loss sums of the model so far (training and validation rows): the learning
curve and early stopping. Then the held-out test file is scored, each party scores the
model and a local-only one on its own test rows, and the result is written — or the
error, and nothing else: no half-trained model is saved.

What the coordinator learns: the global histograms of each level (what a pooled trainer
computes), the global loss sums, the global sketch (see
:mod:`federated.trees.binning`); never a party's own histogram or sketch.

A party that stops answering: with ``on_node_failure = "stop"`` the run fails naming
it; with ``"continue"`` the tree being grown is started again from its root with the
parties left (while at least ``min_parties`` answer), the dropout is recorded in the
history, and from then on the model is the pooled model of the remaining banks' rows.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

import numpy as np

from federated.data import party_of_rows, read_table
from federated.horizontal import protocol as P
from federated.horizontal.evaluation import auc_or_none, score_globally
from federated.horizontal.grid import PartyGrid
from federated.horizontal.securesum import SecureSum
from federated.horizontal.server import Coordinator, _content
from federated.preprocess import CENTRED_BUCKETS, apply_centred, apply_moments, merge_schemas
from federated.trees import protocol as TP
from federated.trees.binning import SKETCH_BINS, Binner, binner_from_sketch
from federated.trees.booster import Grower, Model, Params, Tree
from privacy.errors import InputError

__all__ = ["app", "TreeCoordinator"]

#: Bound on one party's histogram entries before they are protected (secagg max_abs 1e6).
_MAX_ENTRY = 2.0 ** 19


class _Dropped(Exception):
    """A party left during a tree: grow it again with the others."""


class _Stop(Exception):
    """Early stopping: the validation loss stopped improving."""


class TreeCoordinator(Coordinator):
    """Runs one horizontal GBDT job from a plan (see ``federated.runner``)."""

    def _next(self) -> int:
        self._round += 1
        return self._round

    def _sum(self, pgrid: PartyGrid, secure: SecureSum, action: str, config: dict[str, Any],
             length: int, *, digest: str | None = None) -> tuple[np.ndarray, list[str]]:
        """One secure sum over the active parties; checks the bins each party used.

        A sum is one exchange (``SecureSum(recovery=False)``): when a party drops out of
        it (``on_node_failure = "continue"``) the sum is lost and asked again of the
        parties left, as a new round with new masks."""
        from privacy.secagg import RoundLost

        while True:
            rid = self._next()
            secure.begin(rid)
            asked = list(pgrid.active)
            replies = pgrid.exchange(action, {p: _content({**config, **secure.request(p, rid)})
                                              for p in asked}, round_id=rid)
            if digest is not None:
                for p, msg in replies.items():
                    theirs = P.config_of(msg).get("digest")
                    if theirs != digest:
                        raise InputError(f"party {p!r} holds other bins than the coordinator "
                                         f"(digest {str(theirs)[:12]}..., expected "
                                         f"{digest[:12]}...): mismatched bins; restart the "
                                         "run")
            try:
                return secure.combine(rid, replies, length)
            except RoundLost:
                if set(pgrid.active) == set(asked):
                    raise

    def _setup(self, pgrid: PartyGrid, binner: Binner, spec: Any, base: float,
               fraction: float) -> None:
        cfg = {"binner": binner.to_json(), "label": spec.label, "positive": spec.positive,
               "validation": fraction, "seed": int(self.cfg.get("seed", 0)),
               "base-score": base}
        replies = pgrid.exchange(TP.SETUP, {p: _content(cfg) for p in pgrid.active},
                                 required=True)
        for p, msg in replies.items():
            if P.config_of(msg).get("digest") != binner.digest:
                raise InputError(f"party {p!r} stored other bins than the coordinator sent "
                                 "(mismatched bins)")

    # ---------------------------------------------------------------- run
    def run(self) -> dict[str, Any]:
        """The whole job; returns the result dict."""
        t_start = time.perf_counter()
        self._round = 0
        pgrid, schemas = self._discover()
        agg = self.cfg["aggregation"]
        method = agg["method"]
        if method not in ("ckks", "secagg"):
            raise InputError(f"model = \"gbdt\" sums histograms securely: aggregation.method "
                             f"must be \"secagg\" or \"ckks\", not {method!r}")
        secure = SecureSum(pgrid, method, key_holder=agg["key_holder"],
                           params=agg["ckks_params"], min_parties=agg["min_parties"],
                           recovery=False)
        secure.setup()
        params = Params.of_config(self.cfg)
        seed = int(self.cfg.get("seed", 0))
        spec = merge_schemas(schemas, label=self.cfg["label"], positive=self.cfg["positive"])
        k = len(spec.numeric)
        total, _ = self._sum(pgrid, secure, P.STAT, {"stat": "moments",
                                                     "spec": spec.to_json()}, 3 * k + 1)
        spec = apply_moments(spec, total)
        if k:  # the spread about the mean without cancellation (sets the sketch grids)
            centred, _ = self._sum(pgrid, secure, P.STAT, {"stat": "centred",
                                                           "spec": spec.to_json()},
                                   2 * CENTRED_BUCKETS * k)
            spec = apply_centred(spec, centred)
        fraction = params.validation if params.early_stopping else 0.0
        sk, _ = self._sum(pgrid, secure, TP.SKETCH, {"spec": spec.to_json(),
                                                     "validation": fraction, "seed": seed},
                          (SKETCH_BINS + 2) * k + 4)
        binner, counts = binner_from_sketch(spec, sk, max_bins=params.max_bins,
                                            parties=list(pgrid.active))
        base = counts["train_events"] / counts["train_rows"]
        self._setup(pgrid, binner, spec, base, fraction)
        if self.ledger is not None:
            self.ledger.append("fl.gbdt.bins", {"sha256": binner.digest,
                                                "bins": binner.layout.bins, **counts})
        rows = {p: schemas[p].rows for p in self.parties}
        scale = 2.0 ** max(0, math.ceil(math.log2(max(rows.values()) / _MAX_ENTRY)))
        test = _Test(self.plan, binner, list(pgrid.nodes), positive=spec.positive, base=base)
        model, history = self._boost(pgrid, secure, binner, params, base, counts, scale, test)
        out = self._finish(pgrid, model, history, test, rows, binner)
        out.update({
            "kind": "horizontal", "model": "gbdt", "mode": self.plan.get("mode", "simulation"),
            "rounds": len(history), "aggregation": method, "epsilon": None,
            "trees_kept": len(model.trees), "base_score": base,
            "features": binner.layout.feature_names, "params": json.loads(params.to_json()),
            "importance": model.importance(), "counts": {k: int(v) for k, v in counts.items()},
            "binning": json.loads(binner.to_json()),
            "trees": [t.to_dict() for t in model.trees],
            "dropped": list(pgrid.dropped), "seconds": time.perf_counter() - t_start,
            "seconds_per_tree": (float(np.mean([h["seconds"] for h in history]))
                                 if history else None),
            "bytes_up": pgrid.traffic.up, "bytes_down": pgrid.traffic.down,
        })
        return out

    def _boost(self, pgrid: PartyGrid, secure: SecureSum, binner: Binner, params: Params,
               base: float, counts: dict[str, float], scale: float, test: _Test
               ) -> tuple[Model, list[dict[str, Any]]]:
        layout = binner.layout
        width = layout.width
        model = Model(layout, base, [])
        grower = Grower(layout, params)
        history: list[dict[str, Any]] = []
        es = params.early_stopping
        best = [math.inf, 0]
        sizes = {"n-train": counts["train_rows"], "n-valid": counts["valid_rows"]}

        def record(losses: np.ndarray, members: list[str]) -> None:
            """Losses of the model with ``len(model.trees)`` trees."""
            h = history[len(model.trees) - 1]
            h["train_loss"] = float(losses[0])
            h["valid_loss"] = float(losses[1]) if es else None
            h["loss"] = h["valid_loss"] if es else h["train_loss"]
            if es:
                if h["loss"] < best[0]:
                    best[:] = [h["loss"], len(model.trees)]
                elif len(model.trees) - best[1] >= params.patience:
                    raise _Stop

        def level_sum(tree: Tree, build: list[int], members: list[str], first: bool
                      ) -> np.ndarray:
            cfg = {"tree": len(model.trees) + 1, "build": json.dumps(build),
                   "level": int(math.floor(math.log2(build[0] + 1))) if build else 0,
                   "partial": json.dumps(tree.to_dict()) if build else "",
                   "scale": scale, "trees-done": len(model.trees),
                   "finished": json.dumps(model.trees[-1].to_dict()) if first and model.trees
                   else "", "losses": first, **sizes}
            length = 2 * len(build) * width + (2 if first else 0)
            total, who = self._sum(pgrid, secure, TP.LEVEL, cfg, length, digest=binner.digest)
            if sorted(who) != sorted(members):
                raise _Dropped
            if first and model.trees:
                record(total[-2:], members)
            return total

        stopped = False
        while len(model.trees) < params.trees and not stopped:
            t0 = time.perf_counter()
            up0, down0 = pgrid.traffic.up, pgrid.traffic.down
            members = list(pgrid.active)
            print(f"[ROUND {len(model.trees) + 1}/{params.trees}]", flush=True)

            def hist(tree: Tree, build: list[int], members: list[str] = members
                     ) -> tuple[np.ndarray, np.ndarray]:
                first = build == [0] and not tree.split.any()
                total = level_sum(tree, build, members, first)
                n = len(build) * width
                return (total[:n].reshape(len(build), width) * scale,
                        total[n: 2 * n].reshape(len(build), width) * scale)

            try:
                tree = grower.grow(hist)
            except _Dropped:
                continue  # pgrid.dropped names who left; grow this tree again
            except _Stop:
                stopped = True
                break
            model.trees.append(tree)
            entry = {"round": len(model.trees), "tree": len(model.trees),
                     "leaves": tree.leaves, **test.after(tree),
                     "seconds": time.perf_counter() - t0,
                     "bytes_up": pgrid.traffic.up - up0,
                     "bytes_down": pgrid.traffic.down - down0, "active": members,
                     "loss": None, "train_loss": None, "valid_loss": None}
            history.append(entry)
            if self.ledger is not None:
                self.ledger.append("fl.round", {k: v for k, v in entry.items()
                                                if k not in ("parties",)})
        if not stopped and model.trees:
            while True:  # the losses after the last tree
                members = list(pgrid.active)
                try:
                    level_sum(Tree.empty(params.max_depth), [], members, True)
                    break
                except _Dropped:
                    continue
                except _Stop:
                    break
        if es and best[1]:
            model.trees = model.trees[: best[1]]
        return model, history

    def _finish(self, pgrid: PartyGrid, model: Model, history: list[dict[str, Any]],
                test: _Test, rows: dict[str, int], binner: Binner) -> dict[str, Any]:
        from flwr.app import Array, ArrayRecord, ConfigRecord, RecordDict

        params = Params.of_config(self.cfg)
        model_json = json.dumps({"base_score": model.base_score,
                                 "trees": [t.to_dict() for t in model.trees]})
        contents = {}
        for party in pgrid.active:
            rd = RecordDict({P.CONFIG: ConfigRecord({"params": params.to_json(),
                                                     "model": model_json})})
            if test.owner is not None and test.codes is not None and test.y is not None:
                mask = test.owner == party
                rd[P.ARRAYS] = ArrayRecord({
                    "X": Array(np.ascontiguousarray(test.codes[mask].astype(np.int32))),
                    "y": Array(np.ascontiguousarray(test.y[mask]))})
            elif test.codes is not None:
                continue
            contents[party] = rd
        local: dict[str, dict[str, Any]] = {}
        if contents:
            replies = pgrid.exchange(TP.LOCAL, contents, round_id=self._next())
            local = {p: dict(m.content.metric_records[P.METRICS]) for p, m in replies.items()}
        out: dict[str, Any] = {"history": history}
        parties: dict[str, dict[str, Any]] = {}
        p_test = model.predict_proba(test.codes) if test.codes is not None else None
        for party in pgrid.nodes:
            info: dict[str, Any] = {"rows": rows[party], "auc": None,
                                    "local_auc": local.get(party, {}).get("local-auc")}
            if test.owner is not None and p_test is not None and test.y is not None:
                mask = test.owner == party
                info["test_rows"] = int(mask.sum())
                info["auc"] = auc_or_none(test.y[mask], p_test[mask])
            elif party in local:
                info["auc"] = local[party].get("auc")
            parties[party] = info
        out["parties"] = parties
        score_globally(out, test.y if p_test is not None else None, p_test, curves=True,
                       local=local, rows=rows, rows_note="its own rows")
        return out




class _Test:
    """The coordinator's held-out test file, binned; scored after every tree."""

    def __init__(self, plan: dict[str, Any], binner: Binner, parties: list[str], *,
                 positive: str, base: float) -> None:
        from federated.data import encode_label

        self.codes: np.ndarray | None = None
        self.y: np.ndarray | None = None
        self.owner: np.ndarray | None = None
        self.parties = parties
        cfg = plan["config"]
        if plan.get("test"):
            pt = read_table(plan["test"], party="test")
            self.codes = binner.codes(pt)
            self.y = encode_label(pt, cfg["label"], positive)
            col = cfg.get("test_party_column")
            if col:
                self.owner = party_of_rows(pt, col, parties)
            self.margin = Model(binner.layout, base, []).margin(self.codes)

    def after(self, tree: Tree) -> dict[str, Any]:
        """AUC (global and per party) of the model after one more tree."""
        if self.codes is None or self.y is None:
            return {"auc": None, "parties": {}}
        from federated.trees.booster import positions, sigmoid

        self.margin = self.margin + tree.value[positions(tree, self.codes)]
        p = sigmoid(self.margin).astype(np.float64)
        per: dict[str, float | None] = {}
        if self.owner is not None:
            for party in self.parties:
                mask = self.owner == party
                per[party] = auc_or_none(self.y[mask], p[mask]) if mask.any() else None
        return {"auc": auc_or_none(self.y, p), "parties": per}


def _make_app() -> Any:
    from flwr.serverapp import ServerApp

    return ServerApp()


app = _make_app()


@app.main()
def main(grid: Any, context: Any) -> None:
    """Entry point Flower calls in the ServerApp process."""
    from federated.serverapp import run_plan_job

    run_plan_job(context, lambda plan: TreeCoordinator(grid, plan).run())
