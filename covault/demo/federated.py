"""Demo step: three banks train one credit model with secure aggregation (Flower).

Three banks of unequal size hold synthetic loan books (:mod:`federated.sample`: the same
columns, different borrowers, missing cells, a region only the largest bank has). They
fit the preprocessing from secure sums, then train a logistic regression for ten rounds
on Flower's simulation engine with ``secagg``: the coordinator only ever sees the sum of
the banks' models. Each bank's records go to its own ledger; the result and an HTML
report (learning curves, ROC, calibration) are written under ``OUT/federated/``.
"""

from __future__ import annotations

import json
from typing import Any

from covault.demo.context import DemoContext
from privacy.atomic import atomic_write_text

TITLE = "Federated learning: three banks, one credit model, secure aggregation"

ROWS = [600, 1500, 3000]
ROUNDS = 10


def run(ctx: DemoContext) -> dict[str, Any]:
    """Write the banks' data, run the federation, write the result and the report."""
    from federated import run as run_federation
    from federated.report import render_report
    from federated.sample import write_loan_books

    folder = ctx.out / "federated"
    config = write_loan_books(folder / "data", ROWS, test_rows=1500, rounds=ROUNDS,
                              method="secagg", seed=11)
    result = run_federation(config, ledger=folder / "coordinator-ledger.db").to_dict()
    atomic_write_text(folder / "result.json", json.dumps(result, indent=1))
    atomic_write_text(folder / "report.html", render_report(result))
    parties = result["parties"]
    return {
        "banks": "; ".join(f"{name} {p['rows']} rows, AUC {p['auc']:.4f} (alone "
                           f"{p['local_auc']:.4f})" for name, p in parties.items()),
        "global_auc": round(result["global"]["auc"], 4),
        "aggregation": result["aggregation"],
        "rounds": result["rounds"],
        "report": str((folder / "report.html").relative_to(ctx.out)),
        "ledgers": sorted(p.name for p in folder.glob("coordinator-ledger*.db")),
    }
