"""Scoring alerts against the simulator's answer key, per scenario."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from privacy.audit._logio import read_utf8
from privacy.errors import InputError

__all__ = ["evaluate", "load_answers", "check_answers"]


def load_answers(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read an answer key written by :meth:`Simulation.write
    <privacy.audit.simulate.Simulation.write>` and check it (:func:`check_answers`).

    Raises
    ------
    InputError
        The file is not UTF-8 JSON (too deeply nested, an integer too long, ...) or is
        not an answer key; the message names the file and, for JSON errors, the line.
    """
    name = os.fspath(path)
    text = read_utf8(name, "the answer key", InputError)
    try:
        answers = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc.msg}", file=name, line=exc.lineno) from None
    except RecursionError:
        raise InputError("not valid JSON: nested too deeply", file=name) from None
    except ValueError as exc:  # an integer of more digits than Python converts
        raise InputError(f"not valid JSON: {str(exc).split(';')[0]}", file=name) from None
    check_answers(answers, file=name)
    return dict(answers)


def check_answers(answers: Any, *, file: str | None = None) -> None:
    """Check the shape :func:`evaluate` reads: an object whose ``incidents`` is a list of
    objects with string ``id``, ``scenario`` and ``actor`` and ISO 8601 ``start`` and
    ``end``; ``actor_days``, when present, a positive integer.

    Raises
    ------
    InputError
        Naming the first field that is wrong (and ``file``).
    """
    def bad(what: str) -> InputError:
        return InputError(f"not a simulator answer key: {what}", file=file)

    if not isinstance(answers, Mapping):
        raise bad(f"expected a JSON object, got {type(answers).__name__}")
    incidents = answers.get("incidents")
    if not isinstance(incidents, list):
        raise bad("'incidents' must be a list")
    for i, inc in enumerate(incidents):
        if not isinstance(inc, Mapping):
            raise bad(f"incidents[{i}] must be an object")
        for key in ("id", "scenario", "actor", "start", "end"):
            if not isinstance(inc.get(key), str):
                raise bad(f"incidents[{i}].{key} must be a string")
        for key in ("start", "end"):
            try:
                datetime.fromisoformat(inc[key])
            except ValueError:
                raise bad(f"incidents[{i}].{key} is not an ISO 8601 time: "
                          f"{inc[key][:40]!r}") from None
    days = answers.get("actor_days", 1)
    if isinstance(days, bool) or not isinstance(days, int) or not 0 < days < 2**63:
        raise bad("'actor_days' must be a positive integer")


def evaluate(alerts: Iterable[Mapping[str, Any]], answers: Mapping[str, Any], *,
             slack_s: float = 86400.0) -> dict[str, Any]:
    """Per-scenario recall and precision of ``alerts`` against an answer key.

    An alert counts for its **primary** scenario (``scenarios[0]``). It matches an
    incident of that scenario (or of an incident whose ``accept`` list names it) when
    the actor is the same and its time span overlaps the incident's (extended by
    ``slack_s`` after its end). Recall: incidents with a matching alert; precision:
    alerts that match an incident. Also: false positives per 1,000 actor-days, the
    median time to detect (first matching alert minus incident start) and ``overall``
    (incidents, detected, recall, alerts, precision, scenarios never detected).

    Raises
    ------
    InputError
        ``answers`` is not an answer key (:func:`check_answers`).
    """
    check_answers(answers)
    incidents = list(answers["incidents"])
    by_key: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for inc in incidents:
        inc = dict(inc)
        inc["_s"] = datetime.fromisoformat(inc["start"]).timestamp()
        inc["_e"] = datetime.fromisoformat(inc["end"]).timestamp()
        accept = inc.get("accept") or [inc["scenario"]]
        for code in dict.fromkeys([inc["scenario"], *accept]):
            by_key.setdefault((str(code), inc["actor"]), []).append(inc)
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
    n_alerts = sum(int(st["alerts"]) for st in per.values())
    result["overall"] = {
        "incidents": len(incidents), "detected": len(found),
        "recall": round(len(found) / len(incidents), 3) if incidents else None,
        "alerts": n_alerts,
        "precision": round((n_alerts - fp) / n_alerts, 3) if n_alerts else None,
        "missed_scenarios": sorted({i["scenario"] for i in incidents}
                                   - {i["scenario"] for i in incidents if i["id"] in found})}
    result["false_positives"] = fp
    result["fp_per_1000_actor_days"] = round(1000 * fp / ad, 3)
    result["median_time_to_detect_s"] = (round(sorted(delays)[len(delays) // 2], 1)
                                         if delays else None)
    return result


def _ts(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    return datetime.fromisoformat(str(value)).timestamp()
