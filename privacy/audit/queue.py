"""The alert queue auditors work from: incidents, calibrated scores, a daily budget.

Alerts of one actor that follow each other within ``gap`` (default 24 h) are one
**incident** (an episode): an auditor opens it once and sees every scenario it touched.
Each incident gets a **calibrated** 0-100 score, an estimate of the chance that it is a
true finding:

* per scenario, the precision auditors have found so far — a Beta posterior of the
  triage verdicts stored in the audit database (``true_positive`` against
  ``false_positive`` / ``benign``), starting from a prior of ``prior_tp`` true and
  ``prior_fp`` false verdicts (default 1 and 1: no opinion);
* each alert contributes its own score times its scenario's precision, and the alerts of
  an incident combine as independent evidence (noisy-OR).

Without verdicts the calibrated score orders incidents by their alerts' scores and by
how many scenarios they touched; every triaged alert sharpens it.

A **budget** of ``N`` incidents a day keeps the ``N`` highest of each day in the queue;
the others are listed as suppressed *with the reason* ("over the budget of 20 a day:
ranked 23 of 41 on 2026-06-03, score 31, the last kept scored 44"), as are incidents
whose alerts are all suppressed by an auditor's suppression or already closed. Nothing
is silently dropped: :func:`build_queue` returns both lists.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from privacy.audit.alerts import _RANK, score_of

__all__ = ["Incident", "Queue", "build_queue", "group_incidents", "scenario_precision"]


@dataclass
class Incident:
    """Alerts of one actor in one episode."""

    incident_id: str
    actor: str
    alerts: list[dict[str, Any]]
    scenarios: list[str]
    first_ts: str
    last_ts: str
    day: str
    score: int = 0
    why: str = ""
    queued: bool = True
    suppressed: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (alerts by id)."""
        return {"incident_id": self.incident_id, "actor": self.actor, "day": self.day,
                "score": self.score, "scenarios": list(self.scenarios),
                "first_ts": self.first_ts, "last_ts": self.last_ts,
                "alert_ids": [a["alert_id"] for a in self.alerts],
                "alert_scores": [a["score"] for a in self.alerts], "why": self.why,
                "queued": self.queued, "suppressed": self.suppressed,
                "reasons": [r for a in self.alerts for r in a.get("reasons", [])][:10]}


@dataclass
class Queue:
    """The incidents in the queue and those left out, with the calibration used."""

    queued: list[Incident]
    suppressed: list[Incident]
    budget: int | None
    precision: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"budget": self.budget, "queued": [i.to_dict() for i in self.queued],
                "suppressed": [i.to_dict() for i in self.suppressed],
                "calibration": self.precision}


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def group_incidents(alerts: Iterable[Mapping[str, Any]], *,
                    gap: float = 86400.0) -> list[Incident]:
    """Group alert dicts per actor into episodes: an alert starting within ``gap``
    seconds of the episode's last activity joins it."""
    by_actor: dict[str, list[dict[str, Any]]] = {}
    for a in alerts:
        by_actor.setdefault(str(a["actor"]), []).append(dict(a))
    out: list[Incident] = []
    for actor, items in by_actor.items():
        items.sort(key=lambda a: (_ts(a["first_ts"]), a["alert_id"]))
        cur: list[dict[str, Any]] = []
        end = 0.0
        for a in items:
            start = _ts(a["first_ts"])
            if cur and start > end + gap:
                out.append(_incident(actor, cur))
                cur = []
            cur.append(a)
            end = max(end, _ts(a["last_ts"])) if len(cur) > 1 else _ts(a["last_ts"])
        if cur:
            out.append(_incident(actor, cur))
    out.sort(key=lambda i: (i.first_ts, i.incident_id))
    return out


def _incident(actor: str, alerts: list[dict[str, Any]]) -> Incident:
    codes: list[str] = []
    for a in alerts:
        for c in a["scenarios"]:
            if c not in codes:
                codes.append(c)
    codes.sort(key=lambda c: _RANK.get(c, len(_RANK)))
    first = min(alerts, key=lambda a: _ts(a["first_ts"]))
    last = max(alerts, key=lambda a: _ts(a["last_ts"]))
    digest = hashlib.blake2b(first["alert_id"].encode(), digest_size=6).hexdigest()
    return Incident(f"IN-{digest}", actor, alerts, codes, first["first_ts"], last["last_ts"],
                    str(first["first_ts"])[:10])


def scenario_precision(verdicts: Iterable[tuple[str, str]], *, prior_tp: float = 1.0,
                       prior_fp: float = 1.0) -> dict[str, dict[str, float]]:
    """Per scenario: the Beta-posterior precision of auditors' verdicts.

    ``verdicts`` are ``(scenario, close_reason)`` pairs; ``true_positive`` counts as
    true, ``false_positive`` and ``benign`` as false, ``duplicate`` not at all.
    """
    counts: dict[str, list[float]] = {}
    for code, reason in verdicts:
        c = counts.setdefault(code, [0.0, 0.0])
        if reason == "true_positive":
            c[0] += 1
        elif reason in ("false_positive", "benign"):
            c[1] += 1
    return {code: {"true": tp, "false": fp,
                   "precision": round((tp + prior_tp) / (tp + fp + prior_tp + prior_fp), 4)}
            for code, (tp, fp) in counts.items()}


def calibrate(inc: Incident, precision: Mapping[str, Mapping[str, float]], *,
              prior: float) -> None:
    """Set ``inc.score`` and ``inc.why`` (see the module docstring)."""
    keep = 1.0
    parts = []
    for a in inc.alerts:
        code = a["scenarios"][0]
        p = float(precision.get(code, {}).get("precision", prior))
        s = min(1.0, max(0.0, float(a["score"]) / 100.0))
        keep *= 1.0 - p * s
        parts.append(f"{code} {a['score']} x precision {p:.2f}")
    inc.score = score_of(100.0 * (1.0 - keep))
    inc.why = "; ".join(parts[:6]) + (f"; and {len(parts) - 6} more" if len(parts) > 6 else "")


def build_queue(alerts: Iterable[Mapping[str, Any]], *, budget: int | None = None,
                gap: float = 86400.0, verdicts: Iterable[tuple[str, str]] = (),
                prior_tp: float = 1.0, prior_fp: float = 1.0) -> Queue:
    """The queue: incidents with calibrated scores, the day's best ``budget`` kept.

    ``alerts`` are stored alert dicts (with ``state`` and ``suppressed_by`` when known);
    ``verdicts`` the ``(scenario, close_reason)`` of closed alerts.
    """
    if budget is not None and budget < 0:
        raise ValueError("budget must be at least 0")
    precision = scenario_precision(verdicts, prior_tp=prior_tp, prior_fp=prior_fp)
    prior = prior_tp / (prior_tp + prior_fp)
    incidents = group_incidents(alerts, gap=gap)
    queued: list[Incident] = []
    left: list[Incident] = []
    for inc in incidents:
        calibrate(inc, precision, prior=prior)
        open_ = [a for a in inc.alerts if a.get("state", "new") != "closed"]
        active = [a for a in open_ if not a.get("suppressed_by")]
        if not open_:
            inc.queued = False
            inc.suppressed = "every alert is closed (" + ", ".join(sorted({
                str(a.get("close_reason") or "closed") for a in inc.alerts})) + ")"
        elif not active:
            inc.queued = False
            inc.suppressed = "every open alert is suppressed by " + ", ".join(sorted({
                str(a["suppressed_by"]) for a in open_}))
        (queued if inc.queued else left).append(inc)
    if budget is not None:
        by_day: dict[str, list[Incident]] = {}
        for inc in queued:
            by_day.setdefault(inc.day, []).append(inc)
        kept: list[Incident] = []
        for day, items in by_day.items():
            items.sort(key=lambda i: (-i.score, i.first_ts, i.incident_id))
            cut = items[budget - 1].score if 0 < budget <= len(items) else None
            for rank, inc in enumerate(items, 1):
                if rank <= budget:
                    kept.append(inc)
                    continue
                inc.queued = False
                inc.suppressed = (f"over the budget of {budget} a day: ranked {rank} of "
                                  f"{len(items)} on {day}, score {inc.score}"
                                  + (f", the last kept scored {cut}" if cut is not None
                                     else ""))
                left.append(inc)
        queued = sorted(kept, key=lambda i: (i.day, -i.score, i.first_ts))
    left.sort(key=lambda i: (i.day, -i.score, i.first_ts))
    return Queue(queued, left, budget, precision)
