"""Scoring alerts against the simulator's answer key, per scenario."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

__all__ = ["evaluate"]


def evaluate(alerts: Iterable[Mapping[str, Any]], answers: Mapping[str, Any], *,
             slack_s: float = 86400.0) -> dict[str, Any]:
    """Per-scenario recall and precision of ``alerts`` against an answer key.

    An alert counts for its **primary** scenario (``scenarios[0]``). It matches an
    incident of that scenario when the actor is the same and its time span overlaps the
    incident's (extended by ``slack_s`` after its end). Recall: incidents with a matching
    alert; precision: alerts that match an incident. Also: false positives per 1,000
    actor-days and the median time to detect (first matching alert minus incident start).
    """
    incidents = list(answers["incidents"])
    by_key: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for inc in incidents:
        inc = dict(inc)
        inc["_s"] = datetime.fromisoformat(inc["start"]).timestamp()
        inc["_e"] = datetime.fromisoformat(inc["end"]).timestamp()
        by_key.setdefault((inc["scenario"], inc["actor"]), []).append(inc)
    found: dict[str, float] = {}
    per: dict[str, dict[str, float]] = {}
    fp = 0
    for al in alerts:
        code = al["scenarios"][0]
        s = _ts(al["first_ts"])
        e = _ts(al["last_ts"])
        stat = per.setdefault(code, {"alerts": 0, "tp": 0})
        stat["alerts"] += 1
        hit = False
        for inc in by_key.get((code, al["actor"]), []):
            if s <= inc["_e"] + slack_s and e >= inc["_s"]:
                hit = True
                delay = max(0.0, _ts(al.get("detected_ts") or al["first_ts"]) - inc["_s"])
                found[inc["id"]] = min(found.get(inc["id"], delay), delay)
        if hit:
            stat["tp"] += 1
        else:
            fp += 1
    result: dict[str, Any] = {"scenarios": {}}
    delays: list[float] = []
    for code in sorted({i["scenario"] for i in incidents} | set(per)):
        incs = [i for i in incidents if i["scenario"] == code]
        det = [found[i["id"]] for i in incs if i["id"] in found]
        delays += det
        st = per.get(code, {"alerts": 0, "tp": 0})
        result["scenarios"][code] = {
            "incidents": len(incs), "detected": len(det), "alerts": int(st["alerts"]),
            "recall": round(len(det) / len(incs), 3) if incs else None,
            "precision": round(st["tp"] / st["alerts"], 3) if st["alerts"] else None,
            "median_detect_s": round(sorted(det)[len(det) // 2], 1) if det else None}
    ad = max(1, int(answers.get("actor_days", 1)))
    result["false_positives"] = fp
    result["fp_per_1000_actor_days"] = round(1000 * fp / ad, 3)
    result["median_time_to_detect_s"] = (round(sorted(delays)[len(delays) // 2], 1)
                                         if delays else None)
    return result


def _ts(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    return datetime.fromisoformat(str(value)).timestamp()
