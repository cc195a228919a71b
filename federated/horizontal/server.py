"""The horizontal ServerApp: the coordinator of a federated logistic regression.

Steps: find the parties (schema exchange), set up secure sum, fit the preprocessing on
securely summed statistics, run the rounds with the configured strategy (and DP), score
the global model on the held-out test file, ask each party to score a local-only model
on its own test rows, and write the result (or the error) to the file the runner named.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from federated.horizontal import protocol as P
from federated.horizontal.grid import PartyGrid
from federated.horizontal.securesum import SecureSum
from federated.horizontal.strategies import SecureFedAvg, make_strategy
from federated.model import initial_weights
from federated.preprocess import (
    CENTRED_BUCKETS,
    HIST_BINS,
    PartySchema,
    Transform,
    apply_centred,
    apply_moments,
    fit_transform_spec,
    merge_schemas,
    narrow_grid,
)
from federated.serverapp import run_plan_job
from privacy.errors import FederationError

__all__ = ["app", "Coordinator"]


def _content(config: dict[str, Any], arrays: dict[str, Any] | None = None) -> Any:
    from flwr.app import Array, ArrayRecord, ConfigRecord, RecordDict

    rd = RecordDict({P.CONFIG: ConfigRecord(config)})
    if arrays:
        rd[P.ARRAYS] = ArrayRecord({k: Array(np.ascontiguousarray(v)) for k, v in arrays.items()})
    return rd


class Coordinator:
    """Runs one horizontal job from a plan (see ``federated.runner``)."""

    def __init__(self, grid: Any, plan: dict[str, Any]) -> None:
        self.grid = grid
        self.plan = plan
        self.cfg = plan["config"]
        self.parties = [p["name"] for p in plan["parties"]]
        self.ledger: Any = None
        if plan.get("ledger"):
            from privacy.ledger import Ledger

            self.ledger = Ledger(plan["ledger"], origin="coordinator")

    # ---------------------------------------------------------------- parties
    def _wait_for_nodes(self) -> list[int]:
        deadline = time.monotonic() + float(self.plan.get("connect_timeout", 120))
        want = len(self.parties)
        while True:
            ids = list(self.grid.get_node_ids())
            if len(ids) >= want:
                return ids
            if time.monotonic() > deadline:
                raise FederationError(f"only {len(ids)} of {want} parties connected in time")
            time.sleep(0.2)

    def _discover(self) -> tuple[PartyGrid, dict[str, PartySchema]]:
        ids = self._wait_for_nodes()
        agg = self.cfg["aggregation"]
        provisional = PartyGrid(self.grid, {f"node {i}": i for i in ids},
                                timeout=float(self.cfg["round_timeout"]), on_failure="stop",
                                ledger=self.ledger)
        request = json.dumps({"label": self.cfg["label"], "exclude": self.cfg["exclude"],
                              "numeric": self.cfg["numeric"],
                              "categorical": self.cfg["categorical"]})
        replies = provisional.exchange(P.SCHEMA, {f"node {i}": _content({"request": request})
                                                  for i in ids}, required=True)
        nodes: dict[str, int] = {}
        schemas: dict[str, PartySchema] = {}
        for who, msg in replies.items():
            c = P.config_of(msg)
            name = str(c.get("party", ""))
            if name not in self.parties:
                raise FederationError(f"{who} says it is party {name!r}, which the config "
                                      "does not list")
            if name in nodes:
                raise FederationError(f"two nodes claim to be party {name!r}")
            nodes[name] = msg.metadata.src_node_id
            schemas[name] = PartySchema.from_json(str(c.get("schema", "")), party=name)
        absent = [p for p in self.parties if p not in nodes]
        if absent:
            raise FederationError(f"party {absent[0]!r} did not connect")
        ordered = {p: nodes[p] for p in self.parties}
        pgrid = PartyGrid(self.grid, ordered, timeout=float(self.cfg["round_timeout"]),
                          on_failure=agg["on_node_failure"], min_parties=agg["min_parties"],
                          ledger=self.ledger)
        pgrid.traffic = provisional.traffic
        return pgrid, {p: schemas[p] for p in self.parties}

    # ---------------------------------------------------------------- preprocessing
    def _preprocess(self, pgrid: PartyGrid, schemas: dict[str, PartySchema],
                    secure: SecureSum) -> Transform:
        spec = merge_schemas(schemas, label=self.cfg["label"], positive=self.cfg["positive"])
        k = len(spec.numeric)
        total = secure.run(P.STAT, {"stat": "moments", "spec": spec.to_json()}, 1, 3 * k + 1)
        spec = apply_moments(spec, total)
        if k:
            centred = secure.run(P.STAT, {"stat": "centred", "spec": spec.to_json()}, 2,
                                 2 * CENTRED_BUCKETS * k)
            spec = apply_centred(spec, centred)
            spread = secure.run(P.STAT, {"stat": "spread", "spec": spec.to_json()}, 3,
                                (HIST_BINS + 3) * k)
            spec = narrow_grid(spec, spread)
            hist = secure.run(P.STAT, {"stat": "histogram", "spec": spec.to_json()}, 4,
                              (HIST_BINS + 2) * k)
        else:
            hist = np.zeros(0)
        transform = fit_transform_spec(spec, hist)
        if self.ledger is not None:
            self.ledger.append("fl.preprocess", {"features": len(transform.feature_names),
                                                 "spec_sha256": transform.digest,
                                                 "rows": spec.rows})
        return transform

    # ---------------------------------------------------------------- run
    def run(self) -> dict[str, Any]:
        """The whole job; returns the result dict."""
        from federated.horizontal.evaluation import Evaluator

        t_start = time.perf_counter()
        pgrid, schemas = self._discover()
        agg = self.cfg["aggregation"]
        method = agg["method"]
        secure = SecureSum(pgrid, method if method in ("ckks", "secagg") else "secagg",
                           key_holder=agg["key_holder"], params=agg["ckks_params"],
                           min_parties=agg["min_parties"])
        secure.setup()
        transform = self._preprocess(pgrid, schemas, secure)
        rows = {p: schemas[p].rows for p in self.parties}
        total_rows = sum(rows.values())
        evaluator = Evaluator(self.plan, transform, pgrid, ledger=self.ledger)
        strategy = self._strategy(pgrid, secure, rows)
        d = len(transform.feature_names)
        train_config = {"transform": transform.to_json(),
                        "lambda": 1.0 / (float(self.cfg["training"]["C"]) * total_rows),
                        "local-epochs": int(self.cfg["training"]["local_epochs"]),
                        "learning-rate": _rate(self.cfg["training"]["learning_rate"])}
        from flwr.app import Array, ArrayRecord, ConfigRecord

        w0 = initial_weights(d, transform.positive_rate)
        grid = pgrid.as_grid()
        evaluator.start()
        result = strategy.start(
            grid=grid, initial_arrays=ArrayRecord({"w": Array(w0)}),
            num_rounds=int(self.cfg["rounds"]), timeout=float(self.cfg["round_timeout"]),
            train_config=ConfigRecord(train_config),
            evaluate_fn=evaluator.hook(grid, strategy))
        w = np.asarray(result.arrays["w"].numpy(), dtype=np.float64)
        out = evaluator.finish(w, rows, schemas)
        out.update({
            "kind": "horizontal", "mode": self.plan.get("mode", "simulation"),
            "rounds": int(self.cfg["rounds"]), "aggregation": method,
            "features": transform.feature_names, "weights": [float(v) for v in w],
            "preprocessing": json.loads(transform.to_json()),
            "dropped": list(pgrid.dropped), "seconds": time.perf_counter() - t_start,
            "bytes_up": pgrid.traffic.up, "bytes_down": pgrid.traffic.down,
            "epsilon": strategy.epsilon() if hasattr(strategy, "epsilon") else None,
        })
        if out["epsilon"] is not None:
            out["delta"] = float(self.cfg["dp"]["delta"])
        return out

    def _strategy(self, pgrid: PartyGrid, secure: SecureSum, rows: dict[str, int]) -> Any:
        agg = self.cfg["aggregation"]
        dp = self.cfg.get("dp")
        method = agg["method"]
        if method in ("ckks", "secagg"):
            total = sum(rows.values())
            weights = {p: (1.0 if dp else rows[p] / total) for p in self.parties}
            inner: Any = SecureFedAvg(pgrid, secure, weights, round_offset=4)
        else:
            inner = make_strategy(method, parties=len(self.parties),
                                  proximal_mu=agg["proximal_mu"],
                                  trimmed_beta=agg["trimmed_beta"],
                                  num_malicious=agg["num_malicious"])
        if not dp:
            return inner
        from federated.horizontal.dp import CentralDP

        return CentralDP(strategy=inner, noise_multiplier=float(dp["noise_multiplier"]),
                         clipping=dp["clipping"], clipping_norm=dp.get("clipping_norm"),
                         num_clients=len(self.parties), target_quantile=dp["target_quantile"],
                         delta=float(dp["delta"]), seed=None)  # noise must be unpredictable


def _rate(value: Any) -> float:
    return 0.0 if value == "auto" else float(value)


def _make_app() -> Any:
    from flwr.serverapp import ServerApp

    return ServerApp()


app = _make_app()


@app.main()
def main(grid: Any, context: Any) -> None:
    """Entry point Flower calls in the ServerApp process."""

    def job(plan: dict[str, Any]) -> dict[str, Any]:
        np.random.seed(int(plan["config"].get("seed", 0)) % (2**32))
        return Coordinator(grid, plan).run()

    run_plan_job(context, job)
