"""Compare federated results with scikit-learn trained on the pooled data.

Reads the ``--format json`` results of ``covault fl run`` (one file per method), rebuilds
the federated preprocessing they report, fits scikit-learn's ``LogisticRegression`` on
all banks' rows pooled (what the banks could do if they shared their loan books) and
prints, per result: global test AUC, its gap to the pooled model, the largest weight
difference to the first result (FedAvg, when listed first) and the banks' mean AUC
against their local-only models.

Run::

    .venv/bin/python examples/fl_lending_club/compare.py DIR fedavg.json ckks.json ...

``DIR`` holds ``bank_*.csv`` and ``test.csv`` (from ``prepare.py``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def pooled_auc(folder: Path, result: dict[str, object], c: float = 1.0) -> float:
    """Test AUC of scikit-learn on the pooled training rows, with the run's preprocessing."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    from federated.data import read_table
    from federated.preprocess import Transform

    transform = Transform.from_json(json.dumps(result["preprocessing"]))
    tables = [read_table(p, party=p.stem) for p in sorted(folder.glob("bank_*.csv"))]
    X = np.vstack([transform.features(t) for t in tables])
    y = np.concatenate([transform.labels(t) for t in tables])
    test = read_table(folder / "test.csv", party="test")
    # covault's objective is mean log-loss + 1/(2 C N) ||coef||^2: scikit-learn's with C
    model = LogisticRegression(C=c, max_iter=5000, tol=1e-10).fit(X, y)
    scores = model.decision_function(transform.features(test))
    return float(roc_auc_score(transform.labels(test), scores))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("results", type=Path, nargs="+")
    args = parser.parse_args()
    results = [json.loads(p.read_text(encoding="utf-8")) for p in args.results]
    pooled = pooled_auc(args.folder, results[0])
    print(f"pooled scikit-learn AUC {pooled:.4f}")
    w0 = np.asarray(results[0]["weights"])
    for path, r in zip(args.results, results, strict=True):
        parties = r["parties"].values()
        fed = np.mean([p["auc"] for p in parties])
        local = np.mean([p["local_auc"] for p in parties])
        dw = float(np.max(np.abs(np.asarray(r["weights"]) - w0)))
        eps = r.get("epsilon")
        auc = r["global"]["auc"]
        print(f"{path.stem:10s} AUC {auc:.4f} (pooled {auc - pooled:+.4f})"
              f"  max|w - w[{args.results[0].stem}]| {dw:.2e}  banks' mean AUC {fed:.4f}"
              f" vs local {local:.4f}" + (f"  epsilon {eps:.2f}" if eps is not None else ""))


if __name__ == "__main__":
    main()
