"""The coordinator's evaluation: the held-out test file, per round and at the end.

The test file (config ``test``) belongs to the coordinator. Each round the global model is
scored on it (AUC, and each party's AUC on the rows whose ``test_party_column`` names
that party). At the end each party receives its own test rows (as model inputs, after
preprocessing) and the final model, fits a local-only model on its own data and returns
both AUCs; the rows sent and the scores returned go to the ledgers. Without a
``test_party_column`` no rows are sent to any party and ``local_auc`` is null; without a
test file the per-round AUC is null and the final AUCs are each party's AUC of the
federated model on its own training rows.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import numpy.typing as npt

from federated import metrics as M
from federated.data import party_of_rows, read_table
from federated.horizontal import protocol as P
from federated.horizontal.grid import PartyGrid
from federated.model import predict_proba
from federated.preprocess import PartySchema, Transform

__all__ = ["Evaluator", "auc_or_none", "score_globally"]

FloatArray = npt.NDArray[np.float64]


def auc_or_none(y: FloatArray, p: FloatArray) -> float | None:
    """AUC, or None when the rows hold one class only."""
    return M.auc(y, p) if 0 < float(y.sum()) < len(y) else None



def score_globally(out: dict[str, Any], y: FloatArray | None, p: FloatArray | None, *,
                   curves: bool, local: dict[str, Any], rows: dict[str, int],
                   rows_note: str) -> None:
    """``out["global"]`` (and ``test_rows``, ``curves``) from the test file's scores, or
    without a test file the row-weighted mean of each party's own AUC."""
    if y is not None and p is not None:
        s = M.summary(y, p)
        out["global"] = {"auc": s["auc"], "ks": s["ks"], "logloss": s["logloss"]}
        out["test_rows"] = int(len(y))
        if curves:
            out["curves"] = {"roc": M.roc_points(y, p), "calibration": M.calibration(y, p)}
        return
    scored = {q: v for q, v in local.items() if v.get("auc") is not None}
    n = sum(rows[q] for q in scored)
    mean = (sum(rows[q] * float(v["auc"]) for q, v in scored.items()) / n) if n else None
    out["global"] = {"auc": mean, "ks": None, "logloss": None,
                     "note": f"no test file: row-weighted mean of each party's AUC on "
                             f"{rows_note}"}


class Evaluator:
    """Per-round history and the final scores of a horizontal run."""

    def __init__(self, plan: dict[str, Any], transform: Transform, pgrid: PartyGrid, *,
                 ledger: Any = None) -> None:
        self.plan = plan
        self.cfg = plan["config"]
        self.transform = transform
        self.pgrid = pgrid
        self.ledger = ledger
        self.history: list[dict[str, Any]] = []
        self.X: FloatArray | None = None
        self.y: FloatArray | None = None
        self.owner: npt.NDArray[np.object_] | None = None
        test = plan.get("test")
        if test:
            pt = read_table(test, party="test")
            self.X = transform.features(pt)
            self.y = transform.labels(pt)
            col = self.cfg.get("test_party_column")
            if col:
                self.owner = party_of_rows(pt, col, [p["name"] for p in plan["parties"]])
        self._t = time.perf_counter()
        self._bytes = (0, 0)

    def start(self) -> None:
        """Mark the start of round 1."""
        self._t = time.perf_counter()
        self._bytes = (self.pgrid.traffic.up, self.pgrid.traffic.down)

    def _scores(self, w: FloatArray) -> tuple[float | None, dict[str, float | None]]:
        if self.X is None or self.y is None:
            return None, {}
        p = predict_proba(w, self.X)
        per: dict[str, float | None] = {}
        if self.owner is not None:
            for party in self.pgrid.nodes:
                mask = self.owner == party
                per[party] = auc_or_none(self.y[mask], p[mask]) if mask.any() else None
        return auc_or_none(self.y, p), per

    def hook(self, grid: Any, strategy: Any) -> Any:
        """The ``evaluate_fn`` for ``Strategy.start``: one history entry per round."""
        from flwr.app import MetricRecord

        def evaluate(server_round: int, arrays: Any) -> Any:
            w = np.asarray(arrays["w"].numpy(), dtype=np.float64)
            grid.round_id = server_round + 1
            if server_round == 0:
                self.start()
                return None
            overall, per = self._scores(w) if self.X is not None else self._own_rows(w)
            now = time.perf_counter()
            up, down = self.pgrid.traffic.up, self.pgrid.traffic.down
            eps = strategy.epsilon() if hasattr(strategy, "epsilon") else None
            entry = {"round": server_round, "auc": overall, "seconds": now - self._t,
                     "bytes_up": up - self._bytes[0], "bytes_down": down - self._bytes[1],
                     "parties": per, "epsilon": eps,
                     "active": list(self.pgrid.active)}
            self.history.append(entry)
            if self.ledger is not None:
                self.ledger.append("fl.round", {k: v for k, v in entry.items()
                                                if k not in ("parties",)})
            self._t, self._bytes = now, (up, down)
            return MetricRecord({"auc": overall}) if overall is not None else None

        return evaluate

    def _own_rows(self, w: FloatArray) -> tuple[float | None, dict[str, float | None]]:
        """No test file: each party scores the model on its own rows; the row-weighted mean."""
        local = self._local(w)
        per = {p: (None if v.get("auc") is None else float(v["auc"])) for p, v in local.items()}
        scored = {p: float(local[p]["rows"]) for p, a in per.items() if a is not None}
        total = sum(scored.values())
        overall = (sum(n * float(per[p] or 0.0) for p, n in scored.items()) / total
                   if total else None)
        return overall, per

    def _local(self, w: FloatArray) -> dict[str, dict[str, Any]]:
        """Ask each party for its local-only AUC on its own test rows (or on its training
        rows when there is no test file)."""
        from flwr.app import Array, ArrayRecord, ConfigRecord, RecordDict

        contents = {}
        for party in self.pgrid.active:
            arrays = {"w": w}
            if self.owner is not None and self.X is not None and self.y is not None:
                mask = self.owner == party
                arrays.update(X=self.X[mask], y=self.y[mask])
            elif self.X is not None:
                continue
            cfg = {"transform": self.transform.to_json(), "C": float(self.cfg["training"]["C"])}
            contents[party] = RecordDict({
                P.CONFIG: ConfigRecord(cfg),
                P.ARRAYS: ArrayRecord({k: Array(np.ascontiguousarray(v))
                                       for k, v in arrays.items()})})
        if not contents:
            return {}
        replies = self.pgrid.exchange(P.LOCAL, contents, round_id=len(self.history) + 1)
        return {p: dict(m.content.metric_records[P.METRICS]) for p, m in replies.items()}

    def finish(self, w: FloatArray, rows: dict[str, int], schemas: dict[str, PartySchema]
               ) -> dict[str, Any]:
        """Final global and per-party scores, curves and history."""
        local = self._local(w)
        out: dict[str, Any] = {"history": self.history}
        parties: dict[str, dict[str, Any]] = {}
        overall, per = self._scores(w)
        for party in self.pgrid.nodes:
            info: dict[str, Any] = {"rows": rows[party], "auc": per.get(party),
                                    "local_auc": local.get(party, {}).get("local-auc")}
            if self.owner is not None:
                info["test_rows"] = int((self.owner == party).sum())
            if self.X is None and party in local:
                info["auc"] = local[party].get("auc")
            parties[party] = info
        out["parties"] = parties
        p = predict_proba(w, self.X) if self.X is not None and self.y is not None else None
        score_globally(out, self.y, p, curves=overall is not None, local=local, rows=rows,
                       rows_note="its own training rows")
        return out
