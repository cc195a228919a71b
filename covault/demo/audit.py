"""Demo step: simulate bank query traffic, ingest, detect, triage, report and verify."""

from __future__ import annotations

import logging
from typing import Any

from covault.demo.context import DemoContext
from privacy.audit.adapters import read_jsonl
from privacy.audit.catalog import Catalog
from privacy.audit.detect import Detector
from privacy.audit.lists import ListSet
from privacy.audit.rules import Rules
from privacy.audit.simulate import evaluate, simulate, write_bundle
from privacy.audit.store import AuditStore
from privacy.audit.triage import Triage
from privacy.fields import Tokenizer

TITLE = "Anomalous query detection (simulated bank, 14 scenarios)"


def run(ctx: DemoContext) -> dict[str, Any]:
    """Simulate 48 actors for 15 days, detect, close one alert, write the report, verify."""
    logging.getLogger("sqlglot").setLevel(logging.ERROR)
    root = ctx.out / "audit"
    root.mkdir(parents=True, exist_ok=True)
    sim = simulate(seed=11, actors=48, days=15, service_rate=600)
    events_path, answers_path = root / "events.jsonl", root / "answers.json"
    sim.write(events_path, answers_path)
    tok = Tokenizer(ctx.keyset("HMAC_SHA256"))
    paths = write_bundle(sim, root, tok)
    for name in ("audit.db", "audit.ledger.db"):
        for suffix in ("", "-wal", "-shm"):
            (root / (name + suffix)).unlink(missing_ok=True)
    store = AuditStore(root / "audit.db")
    try:
        ing = store.ingest(read_jsonl(events_path), source=str(events_path))
        cat = Catalog.load(paths["catalog"])
        det = Detector(rules=Rules.load(paths["rules"], cat),
                       lists=ListSet.load(paths["lists"], tokenizer=tok), catalog=cat)
        for e in store.events():
            det.score(e)
        alerts = det.alerts()
        tri = Triage(store, analyst="demo-auditor")
        tri.save_alerts(alerts)
        first = alerts[0].alert_id
        tri.transition(first, "in_progress", comment="looking at the evidence")
        tri.transition(first, "closed", reason="true_positive", comment="confirmed with branch")
        from privacy.audit.model import review
        from privacy.audit.report import write_report

        findings = review(det.day_features)
        rows = [tri.get(a["alert_id"]) for a in tri.alerts(include_suppressed=True)]

        def lookup(eid: str) -> dict[str, Any] | None:
            ev = store.event(eid)
            return None if ev is None else ev.to_dict()

        write_report(root / "report.html", rows, events=lookup, model_findings=findings,
                     summary={"events": ing.added})
        rep = store.verify()
    finally:
        store.close()
    quality = evaluate([a.to_dict() for a in alerts], sim.answers)
    recalls = [s["recall"] for s in quality["scenarios"].values() if s["recall"] is not None]
    precisions = [s["precision"] for s in quality["scenarios"].values()
                  if s["precision"] is not None]
    return {"events": ing.added, "alerts": len(alerts),
            "scenarios_detected": sum(1 for s in quality["scenarios"].values()
                                      if s["detected"]),
            "min_recall": min(recalls), "min_precision": min(precisions),
            "fp_per_1000_actor_days": quality["fp_per_1000_actor_days"],
            "example_reason": alerts[0].to_dict()["reasons"][0],
            "report": str((root / "report.html").relative_to(ctx.out)),
            "ledger_verified": rep.ledger_size}
