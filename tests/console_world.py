"""A small audit database with alerts of three scenarios over four days, and console
accounts: shared by the console tests (test_audit_console*.py).

The alerts are written as the detector would store them, but made here, so the console
tests do not move when the detector's rules change."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from covault.web.accounts import Accounts, users_path_for
from privacy.audit.events import QueryEvent
from privacy.audit.store import AuditStore
from privacy.audit.triage import Triage

TZ = timezone(timedelta(hours=8))
PASSWORDS = {"alice": "alice-password-1", "bob": "bob-password-12", "carol": "carol-password-1"}
ROLES = {"alice": "auditor", "bob": "reviewer", "carol": "reviewer"}
STATEMENTS = ("GRANT ALL ON customers TO x", "DELETE FROM accounts",
              "SELECT '<script>alert(1)</script>' FROM t WHERE id = '1' OR '1'='1'",
              "SELECT * FROM customers")
#: statement index -> (scenario, score, reason)
ALERTING = {0: ("PRIVILEGE_CHANGE", 85, "privilege change by {actor}: grant all on customers"),
            1: ("MASS_MODIFY", 80, "mass update or delete by {actor}: delete without where"),
            2: ("INJECTION", 90, "injection-shaped statement (tautology) by {actor}")}


def _alert(e: QueryEvent, scenario: str, score: int, reason: str) -> dict[str, Any]:
    digest = hashlib.sha256(f"{e.actor}|{scenario}".encode()).hexdigest()[:16]
    return {"alert_id": f"AL-{digest}", "actor": e.actor, "scenarios": [scenario],
            "score": score, "reasons": [reason.format(actor=e.actor)],
            "event_ids": [e.event_id], "event_count": 1, "first_ts": e.ts.isoformat(),
            "last_ts": e.ts.isoformat(), "detected_ts": e.ts.isoformat(),
            "rule_version": "test-1", "model_version": None, "actor_kind": "human",
            "role": "teller", "department": "retail"}


def make_world(root: Path) -> Path:
    """``root/audit.db`` (15 alerts: INJECTION, PRIVILEGE_CHANGE and MASS_MODIFY for
    actors t1..t5 on 1, 2, 3 (two actors) and 5 April 2026) and its accounts."""
    events, alerts, i = [], [], 0
    for day, actor in [(1, "t1"), (2, "t2"), (3, "t3"), (3, "t4"), (5, "t5")]:
        for k, stmt in enumerate(STATEMENTS):
            i += 1
            events.append(QueryEvent(
                event_id=f"e{i}", ts=datetime(2026, 4, day, 10, tzinfo=TZ) + timedelta(minutes=i),
                actor=actor, actor_kind="human", statement=stmt, status="ok",
                rows=50000 if stmt.endswith("customers") else None, source_ip="10.0.0.9"))
            if k in ALERTING:
                alerts.append(_alert(events[-1], *ALERTING[k]))
    db = root / "audit.db"
    store = AuditStore(db)
    try:
        store.add_events(events)
        Triage(store).save_alerts(alerts)
    finally:
        store.close()
    with Accounts(users_path_for(db)) as acc:
        for name, role in ROLES.items():
            acc.add(name, role, PASSWORDS[name])
    return db
