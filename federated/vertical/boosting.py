"""The coordinator of vertical gradient-boosted trees: the order of the ``v.gb_*`` steps.

Like :mod:`federated.vertical.protocol` (whose alignment it reuses), it relays
messages over any transport and holds no key: it sees ciphertexts, the node every
training row has reached (as the hosts do), routing questions and answers sealed between
the guest and each host (unread), the bins' counts and the evaluation metrics.

1. ``hello``/``peers``, PSI alignment of the train (and test) files.
2. ``gb_prepare``: each party bins its own columns on the training rows (less the
   validation rows); ``gb_keygen`` at the guest (a Paillier key pair), ``gb_setup`` at
   each host (its public key).
3. Per tree: ``gb_tree`` (the guest's encrypted gradients); per level ``gb_hist`` at each
   host -> ``gb_level`` at the guest -> ``gb_route`` at the hosts it asks ->
   ``gb_routed``; then the evaluation rows go down the new tree (``gb_eval`` at the
   guest, then ``gb_eval_route`` at the hosts it asks and ``gb_eval_step``, until every
   row is at a leaf), early stopping on their log-loss when asked.
4. The final model on the test rows; the guest's columns alone as a baseline; gain
   importance; ``finish``: each party writes its own part of the model.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from federated.trees.booster import Params
from federated.vertical.protocol import Job, Progress, Send, align_training, evaluate_trees

__all__ = ["run_vertical_gbdt"]


def _grow(job: Job) -> float:
    """One tree, level by level; the training loss after it."""
    nxt = job.send(job.guest, "v.gb_tree", {})
    gh: Any = nxt.pop("gh")
    while True:
        sums = {h: job.send(h, "v.gb_hist", {"gh": gh, "build": nxt["build"],
                                             "pos": nxt["pos"]})["sums"]
                for h in job.hosts}
        gh = None
        asks = job.send(job.guest, "v.gb_level", {"sums": sums})["asks"]
        right = {h: job.send(h, "v.gb_route", {"asks": a})["right"] for h, a in asks.items()}
        nxt = job.send(job.guest, "v.gb_routed", {"right": right})
        if nxt["done"]:
            return float(nxt["loss"])


def _named(importance: dict[str, Any], prep: dict[str, dict[str, Any]], guest: str
           ) -> dict[str, Any]:
    """The guest's importance (host columns by number) with the hosts' column names (the
    coordinator has them from ``gb_prepare``), as ``{party: {gain, splits}}``."""
    out: dict[str, Any] = {}
    for party, kinds in importance.items():
        name = guest if party == "guest" else party
        cols, levels = prep[name]["columns"], prep[name]["levels"]

        def label(feature: str, party: str = party, cols: Any = cols, levels: Any = levels
                  ) -> str:
            if party == "guest":
                return feature
            col, _, level = feature.split("/", 1)[1].partition("=")
            column = cols[int(col)]
            return f"{column}={levels[column][int(level) - 1]}" if level else column

        out[name] = {kind: {label(f): v for f, v in values.items()}
                     for kind, values in kinds.items()}
    return out


def run_vertical_gbdt(send: Send, cfg: dict[str, Any], guest: str, hosts: list[str], *,
                      progress: Progress | None = None) -> dict[str, Any]:
    """Align, grow the trees and evaluate; the result of ``covault fl run --format json``."""
    t_start = time.perf_counter()
    job = Job(send, cfg, guest, hosts)
    params = Params.of_config(cfg)
    aligned = align_training(job, early_stopping=params.early_stopping,
                             fraction=params.validation, seed=int(cfg.get("seed", 0)))
    hello, sizes, has_test = aligned.hello, aligned.sizes, aligned.has_test
    train, valid, use_validation = aligned.train, aligned.valid, aligned.use_validation
    prep = {p: send(p, "v.gb_prepare", {"train_rows": train, "params": params.to_json(),
                                        "guest": guest})
            for p in job.parties}
    public = send(guest, "v.gb_keygen", {
        "hosts": {h: {"bins": prep[h]["bins"], "categorical": prep[h]["categorical"]}
                  for h in hosts},
        "key_bits": int((cfg.get("gbdt") or {}).get("paillier_bits") or 3072)})["public"]
    for h in hosts:
        send(h, "v.gb_setup", {"public": public})
    split, rows = ("train", valid) if use_validation else ("test", None)
    split_label = "valid" if use_validation else "test"
    history: list[dict[str, Any]] = []
    best, best_loss = 0, float("inf")
    for t in range(params.trees):
        t_tree = time.perf_counter()
        train_loss = _grow(job)
        m = evaluate_trees(job, split, rows, [t])
        history.append({"tree": t + 1, "loss": m["loss"], "auc": m["auc"], "ks": m["ks"],
                        "train_loss": train_loss, f"{split_label}_loss": m["loss"],
                        "seconds": round(time.perf_counter() - t_tree, 3)})
        if progress is not None:
            progress(t + 1, params.trees)
        if m["loss"] < best_loss:
            best, best_loss = t + 1, m["loss"]
        elif params.early_stopping and t + 1 - best >= params.patience:
            break
    kept = best if params.early_stopping else len(history)
    final_split, final_rows = ("test", None) if has_test else (split, rows)
    final = evaluate_trees(job, final_split, final_rows, list(range(kept)), reset=True)
    alone = send(guest, "v.gb_guest_only", {"split": final_split, "rows": final_rows,
                                            "trees": kept})
    importance = send(guest, "v.gb_importance", {"trees": kept})["importance"]
    for p in job.parties:
        send(p, "v.finish", {"write_model": True, "trees": kept})
    return {
        "kind": "vertical", "model": "gbdt", "intersection": sizes["train"],
        "test_intersection": sizes.get("test"),
        "global": {"auc": final["auc"], "ks": final["ks"], "logloss": final["loss"]},
        "guest_only": {"auc": alone["auc"], "ks": alone["ks"]},
        "history": history, "iv": {},
        "rounds": len(history), "trees": kept, "best_tree": best,
        "evaluated_on": "test" if has_test else "validation",
        "importance": _named(importance, prep, guest),
        "parties": {p: {"role": "guest" if p == guest else "host",
                        "rows": hello[p]["rows"], "features": len(prep[p]["columns"])}
                    for p in job.parties},
        "features": {p: prep[p]["columns"] for p in job.parties},
        "seconds": {"psi": round(aligned.psi_seconds, 3),
                    "per_tree": round(float(np.mean([h["seconds"] for h in history])), 3),
                    "total": round(time.perf_counter() - t_start, 3)},
    }

