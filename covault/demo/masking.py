"""Demo step: scan the sample, suggest a policy, apply its views, measure the risk."""

from __future__ import annotations

import datetime as _dt
from typing import Any

from covault.demo.context import DemoContext, sample_customers, sample_customers_path
from masking.files import mask_file
from masking.pii import scan_table
from masking.pii.suggest import suggest_policy
from masking.policy import Policy
from masking.risk import risk_report
from privacy.atomic import atomic_write_text

TITLE = "Masking policies, JR/T 0171 views and risk gates"

_EXTRA = """\
  # kept for analysis, coarsened where they identify
  - {name: city, operator: keep}
  - {name: gender, operator: keep}
  - {name: income, operator: generalize, options: {to: bucket, edges: [200000, 500000]}}
views:
  partner_export:
    gate:
      k_anonymity: {quasi: [city, gender, income], k: 5, max_suppression: 0.05}
"""


def run(ctx: DemoContext) -> dict[str, Any]:
    """Scan -> suggested policy (+ a gate) -> display and partner views -> risk."""
    table = sample_customers()
    scans = scan_table(table, today=_dt.date(2026, 1, 1))
    text = suggest_policy(scans, source="covault/data/customers.csv")
    text = text.replace("default: drop\n", "default: drop\ncontext: demo.customers\n")
    text += _EXTRA
    policy_path = ctx.out / "masking" / "policy.yaml"
    atomic_write_text(policy_path, text)
    policy = Policy.load(policy_path)
    keys = [ctx.keyset("AES256_SIV"), ctx.keyset("HMAC_SHA256")]
    runs = {}
    for view, name in (("display", "customers_display.csv"),
                       ("partner_export", "customers_partner.parquet")):
        summary = mask_file(policy, sample_customers_path(), ctx.out / "masking" / name,
                            view=view, keyset=keys, ledger=ctx.ledger_path)
        runs[view] = {"output": f"masking/{name}", "rows_in": summary["rows_in"],
                      "rows_out": summary["rows_out"],
                      "suppressed": (summary["gate"] or {}).get("suppressed", 0)}
    import pyarrow.parquet as pq

    partner = pq.read_table(ctx.out / "masking" / "customers_partner.parquet")
    before = risk_report(table, ["city", "gender", "income"], k=5)
    after = risk_report(partner, ["city", "gender", "income"], "birth_date", k=5)
    return {
        "detected": {s.name: s.pii for s in scans if s.pii != "none"},
        "policy": "masking/policy.yaml",
        "policy_hash": policy.hash,
        "views": runs,
        "risk_raw": {"k": before.k, "rows_below_5": before.rows_below_k},
        "risk_partner_export": {"k": after.k, "l_birth_year": after.l, "t_birth_year": after.t},
    }
