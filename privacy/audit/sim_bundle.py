"""The simulated bank's configuration: ``catalog.yaml``, ``rules.yaml`` and ``lists.yaml``.

Detection must not read anything else from the simulator.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from privacy.audit.sim_traffic import Simulation

if TYPE_CHECKING:
    from privacy.fields import Tokenizer

__all__ = ["write_bundle", "CATALOG_YAML"]

CATALOG_YAML = """\
version: 1
columns:
  customers.cust_id: {class: C2, customer_key: true}
  customers.name: {class: C3, tags: [cn_name]}
  customers.id_no: {class: C3, tags: [cn_resident_id], customer_key: true}
  customers.mobile: {class: C3, tags: [cn_mobile]}
  customers.home_address: {class: C3}
  customers.annual_income: {class: C3}
  customers.employer: {class: C2}
  customers.risk_level: {class: C2}
  customers.branch_id: {}
  customers.updated_at: {}
  accounts.acct_no: {class: C2}
  accounts.cust_id: {class: C2, customer_key: true}
  accounts.balance: {class: C2}
  accounts.status: {}
  accounts.branch_id: {}
  cards.card_no: {class: C3, customer_key: true}
  cards.cust_id: {class: C2, customer_key: true}
  cards.credit_limit: {class: C2}
  cards.status: {}
  transactions.txn_id: {}
  transactions.acct_no: {class: C2}
  transactions.amount: {class: C2}
  transactions.counterparty: {class: C3}
  transactions.txn_time: {}
  transactions.txn_date: {}
  transactions.branch_id: {}
  transactions.teller_id: {}
  risk_scores.cust_id: {class: C2, customer_key: true}
  risk_scores.risk_score: {class: C2}
  risk_scores.score_date: {}
  call_notes.cust_id: {class: C2, customer_key: true}
  call_notes.agent: {}
  call_notes.note: {class: C3}
  staging_customers.cust_id: {class: C2, customer_key: true}
  staging_customers.name: {class: C3}
  staging_customers.id_no: {class: C3}
  staging_customers.mobile: {class: C3}
"""


def write_bundle(sim: Simulation, folder: str | Path,
                 tokenizer: Tokenizer | None) -> dict[str, str]:
    """Write the bank's ``catalog.yaml``, ``rules.yaml`` and ``lists.yaml`` into ``folder``.

    With a ``tokenizer`` the customer watch lists are stored hashed; without, in clear.
    """
    from privacy.atomic import atomic_write_text
    from privacy.audit.lists import hash_values

    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    rules = ('version: 1\nrule_version: "sim-bank-1"\nlearning_days: 7\ncalendar:\n'
             '  timezone: "+08:00"\n  working_hours: {start: "08:00", end: "19:00"}\n'
             "  holidays_from: chinese-calendar   # public holidays and make-up days\n"
             'workstation_networks: ["10.20.0.0/16"]\n')

    def values(ids: list[int]) -> tuple[str, str]:
        if tokenizer is None:
            return "false", json.dumps([str(i) for i in ids])
        return "true", json.dumps(hash_values(tokenizer, [str(i) for i in ids]))

    vh, vv = values(sim.vip_ids)
    ch, cv = values(sim.colleague_ids)
    bankers = json.dumps([a.name for a in sim.actors if a.role == "private_banker"])
    dbas = json.dumps([a.name for a in sim.actors if a.role == "dba"])
    lists = (
        "version: 1\nlists:\n"
        f"  - {{name: vip-customers, type: watch, kind: customer, owner: pb-compliance, "
        f"reason: VIP and public-figure customers, expires: 2027-12-31, hashed: {vh}, "
        f"values: {vv}}}\n"
        f"  - {{name: employee-customers, type: watch, kind: customer, owner: hr-compliance, "
        f"reason: colleagues' own customer records, expires: 2027-12-31, hashed: {ch}, "
        f"values: {cv}}}\n"
        f"  - {{name: vip-bankers, type: allow, kind: actor, scenarios: [WATCHLIST], "
        f"owner: head-of-private-banking, reason: relationship managers of VIP customers, "
        f"expires: 2027-06-30, values: {bankers}}}\n"
        f"  - {{name: dba-grants, type: allow, kind: actor, scenarios: [PRIVILEGE_CHANGE], "
        f"owner: it-security, reason: DBAs grant roles under change tickets, "
        f"expires: 2027-06-30, values: {dbas}}}\n"
        "  - {name: former-auditors, type: allow, kind: actor, scenarios: [WATCHLIST], "
        "owner: internal-audit, reason: 2025 audit engagement, expires: 2026-01-31, "
        "values: [auditor_2025]}\n"
        "  - {name: threat-intel, type: deny, kind: source_ip, owner: soc, "
        "reason: known malicious hosts, expires: 2027-12-31, values: [198.51.100.23]}\n")
    paths = {"catalog": root / "catalog.yaml", "rules": root / "rules.yaml",
             "lists": root / "lists.yaml"}
    atomic_write_text(paths["catalog"], CATALOG_YAML)
    atomic_write_text(paths["rules"], rules)
    atomic_write_text(paths["lists"], lists)
    return {k: str(v) for k, v in paths.items()}
