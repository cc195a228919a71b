"""Demo step: a bank and a telecom partner train one credit model on the same customers.

The bank (guest) holds loan terms and the default flag, the partner (host) holds other
features of overlapping customers (:mod:`federated.vertical.sample`). They align their
customers by PSI, train a logistic regression whose host weights stay secret-shared,
with every exchanged value encrypted (CKKS, the bank's key) or masked, score the test
customers jointly and compute each column's information value. The result, an HTML
report (learning curve, guest alone vs joint, IV) and each party's model part and
ledger are written under ``OUT/vertical/``.
"""

from __future__ import annotations

import json
from typing import Any

from covault.demo.context import DemoContext
from privacy.atomic import atomic_write_text

TITLE = "Vertical federated learning: a bank and a partner, same customers, no arbiter"

CUSTOMERS = 3000
TEST = 1000
EPOCHS = 6


def run(ctx: DemoContext) -> dict[str, Any]:
    """Write both parties' data, run the vertical job, write the result and the report."""
    from federated import run as run_federation
    from federated.report import render_report
    from federated.vertical.sample import write_vertical

    folder = ctx.out / "vertical"
    config = write_vertical(folder / "data", CUSTOMERS, test_customers=TEST, epochs=EPOCHS,
                            seed=21)
    result = run_federation(config, ledger=folder / "coordinator-ledger.db").to_dict()
    atomic_write_text(folder / "result.json", json.dumps(result, indent=1))
    atomic_write_text(folder / "report.html", render_report(result))
    top = sorted(result["iv"].items(), key=lambda kv: -kv[1])[:3]
    return {
        "shared_customers": result["intersection"],
        "joint_auc": round(result["global"]["auc"], 4),
        "bank_alone_auc": round(result["guest_only"]["auc"], 4),
        "strongest_columns": ", ".join(f"{c} (IV {v:.2f})" for c, v in top),
        "report": str((folder / "report.html").relative_to(ctx.out)),
        "model_parts": sorted(p.name for p in (folder / "data").glob("*.model.json")),
    }
