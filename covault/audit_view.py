"""Alerts in the terminal: the list `audit alerts`/`detect` print and the page `audit show`
prints, laid out as wrapped text blocks that read at any width down to 80 columns.

Ids are never cut (any unique prefix of one works wherever an alert id is taken); reasons
and statements wrap instead of being truncated. Scores are the stored ones
(:func:`privacy.audit.alerts.score_of`), so every command shows the same number.
"""

from __future__ import annotations

import textwrap
from datetime import datetime, time, timedelta
from typing import Any

__all__ = ["alert_blocks", "alert_report", "render_alert_report"]

_MIN_WIDTH = 40
_STATEMENT_CHARS = 2000


def _width(width: int | None) -> int:
    return max(_MIN_WIDTH, int(width or 80))


def _wrap(text: str, width: int, first: str, rest: str | None = None, *,
          squash: bool = False) -> list[str]:
    """``text`` wrapped to ``width`` with a first-line and a continuation indent; with
    ``squash``, white space runs (newlines in SQL included) become single spaces."""
    if squash:
        text = " ".join(text.split())
    lines = textwrap.wrap(text, width=width, initial_indent=first,
                          subsequent_indent=first if rest is None else rest,
                          break_on_hyphens=False) or [first.rstrip()]
    return lines


def _when(iso: str) -> str:
    """``2026-04-08T10:43:12.5+08:00`` -> ``2026-04-08 10:43``."""
    return iso[:16].replace("T", " ")


def _span(first: str, last: str) -> str:
    a, b = _when(first), _when(last)
    if a == b:
        return a
    return f"{a} - {b[11:]}" if a[:10] == b[:10] else f"{a} - {b}"


def alert_blocks(alerts: list[dict[str, Any]], width: int | None = 80) -> list[str]:
    """One block per alert (stored-alert dicts or :meth:`Alert.to_dict` output).

    ``AL-…  score 95  new  actor`` / scenarios, time span, events / the primary reason
    wrapped in full, and how many more reasons `audit show` has.
    """
    w = _width(width)
    lines: list[str] = []
    for a in alerts:
        head = f"{a['alert_id']}  score {a['score']:>3}"
        if a.get("state"):
            head += f"  {a['state']}"
            if a.get("suppressed_by"):
                head += f" (suppressed by {a['suppressed_by']})"
        lines += _wrap(f"{head}  {a['actor']}", w, "", "    ")
        n = a.get("event_count") or len(a.get("event_ids") or ())
        info = (f"{', '.join(a['scenarios'])} · {_span(a['first_ts'], a['last_ts'])} · "
                f"{n:,} event{'s' if n != 1 else ''}")
        lines += _wrap(info, w, "  ", "    ")
        reasons = a.get("reasons") or []
        if reasons:
            lines += _wrap(reasons[0], w, "  ", "  ", squash=True)
        if len(reasons) > 1:
            lines.append(f"  (+{len(reasons) - 1} more reason"
                         f"{'s' if len(reasons) > 2 else ''}: covault audit show "
                         f"{a['alert_id']})")
        lines.append("")
    return lines


def alert_report(triage: Any, store: Any, alert_id: str, *, max_events: int = 20,
                 days: int = 7, recent: int = 10) -> dict[str, Any]:
    """Everything `audit show` prints, as one JSON-ready dict.

    Parameters
    ----------
    triage, store:
        A :class:`~privacy.audit.triage.Triage` and its :class:`AuditStore`.
    alert_id:
        The id or a unique prefix of it.
    max_events:
        Evidence events included (0: all stored ids, at most 1,000).
    days:
        Days of the actor's activity, ending with the alert's last day.
    recent:
        The actor's last events up to the alert's last event.
    """
    alert = triage.get(alert_id)
    last = datetime.fromisoformat(alert["last_ts"])
    ids = list(alert.get("event_ids") or [])
    chosen = ids if max_events == 0 else ids[:max_events]
    evidence = [e.to_dict() for e in store.events_by_id(chosen)]
    day_end = datetime.combine(last.date(), time(23, 59, 59, 999999), tzinfo=last.tzinfo)
    day_start = datetime.combine(last.date() - timedelta(days=days - 1), time(0),
                                 tzinfo=last.tzinfo)
    activity_days = store.actor_days(alert["actor"], day_start, day_end)
    recent_events = ([e.to_dict() for e in store.actor_events(alert["actor"], day_start, last,
                                                              limit=recent)]
                     if recent else [])
    others = [{k: a[k] for k in ("alert_id", "score", "state", "scenarios", "first_ts",
                                 "last_ts")}
              for a in triage.alerts(include_suppressed=True, actor=alert["actor"])
              if a["alert_id"] != alert["alert_id"]]
    others.sort(key=lambda a: a["first_ts"])
    return {"alert": alert, "evidence": evidence,
            "evidence_total": int(alert.get("event_count") or len(ids)),
            "evidence_stored": len(ids),
            "activity": {"from": day_start.isoformat(), "to": day_end.isoformat(),
                         "days": activity_days, "recent": recent_events},
            "other_alerts": others}


def _event_lines(e: dict[str, Any], w: int) -> list[str]:
    parts = [e["ts"][:19].replace("T", " "), e.get("status") or "?"]
    if e.get("rows") is not None:
        parts.append(f"{e['rows']:,} row{'' if e['rows'] == 1 else 's'}")
    for key in ("source_ip", "client", "database"):
        if e.get(key):
            parts.append(str(e[key]))
    out = _wrap("  ".join(parts), w, "  ", "    ")
    stmt = e["statement"]
    if len(stmt) > _STATEMENT_CHARS:
        stmt = stmt[:_STATEMENT_CHARS] + f" … ({len(e['statement']):,} characters)"
    out += _wrap(stmt, w, "    ", "    ", squash=True)
    if e.get("parameters") is not None:
        shown = ", ".join("NULL" if v is None else repr(v) for v in e["parameters"])
        out += _wrap(f"parameters: {shown}", w, "    ", "      ")
    return out


def render_alert_report(rep: dict[str, Any], width: int | None = 80) -> list[str]:
    """The text of `audit show` for :func:`alert_report`'s dict."""
    w = _width(width)
    a = rep["alert"]
    lines: list[str] = []
    head = f"{a['alert_id']}  score {a['score']}  {a['state']}"
    if a.get("close_reason"):
        head += f" ({a['close_reason']})"
    lines += _wrap(head, w, "")
    who = [a["actor"]]
    extra = [x for x in (a.get("actor_kind"), a.get("role") and f"role {a['role']}",
                         a.get("department") and f"department {a['department']}") if x]
    if extra:
        who.append(f"({', '.join(extra)})")
    lines += _wrap("actor      " + " ".join(who), w, "", " " * 11)
    lines += _wrap("scenarios  " + ", ".join(a["scenarios"]), w, "", " " * 11)
    n = rep["evidence_total"]
    lines += _wrap(f"window     {a['first_ts']} to {a['last_ts']} ({n:,} event"
                   f"{'s' if n != 1 else ''})", w, "", " " * 11)
    lines += _wrap(f"detected   {a['detected_ts']}", w, "", " " * 11)
    lines += _wrap(f"versions   rules {a.get('rule_version')}, model {a.get('model_version')}",
                   w, "", " " * 11)
    if a.get("suppressed_by"):
        lines.append(f"suppressed {a['suppressed_by']}")
    lines += ["", "Reasons"]
    reasons = list(a.get("reasons") or [])
    codes = list(a["scenarios"]) if len(a["scenarios"]) == len(reasons) else [None] * len(reasons)
    for code, reason in zip(codes, reasons, strict=True):
        lines += _wrap(f"{code}: {reason}" if code else reason, w, "  - ", "    ",
                       squash=True)
    ev = rep["evidence"]
    lines += ["", f"Evidence ({len(ev):,} of {n:,} events"
              + (f"; {rep['evidence_stored']:,} ids stored" if rep["evidence_stored"] < n
                 else "") + ")"]
    for e in ev:
        lines += _event_lines(e, w)
    act = rep["activity"]
    lines += ["", f"Activity of {a['actor']}, {act['from'][:10]} to {act['to'][:10]}"]
    if act["days"]:
        lines.append(f"  {'day':<10}  {'events':>7}  {'rows':>10}  {'failed':>6}  "
                     f"{'statements':>10}")
        for d in act["days"]:
            lines.append(f"  {d['day']:<10}  {d['events']:>7,}  {d['rows']:>10,}  "
                         f"{d['failed']:>6,}  {d['statements']:>10,}")
    else:
        lines.append("  no events")
    if act["recent"]:
        lines += ["", f"Last {len(act['recent'])} events of {a['actor']} up to the alert's end"]
        for e in act["recent"]:
            lines += _event_lines(e, w)
    if rep["other_alerts"]:
        lines += ["", f"Other alerts of {a['actor']}"]
        for o in rep["other_alerts"]:
            lines += _wrap(f"{o['alert_id']}  score {o['score']:>3}  {o['state']}  "
                           f"{_span(o['first_ts'], o['last_ts'])}  {', '.join(o['scenarios'])}",
                           w, "  ", "    ")
    if a.get("history"):
        lines += ["", "Triage history"]
        for h in a["history"]:
            move = (f"{h['from_state']} -> {h['to_state']}" if h.get("to_state")
                    else h["action"])
            why = f" ({h['reason']})" if h.get("reason") else ""
            lines += _wrap(f"{h['ts']}  {h['analyst']}: {move}{why}: {h['comment']}", w,
                           "  ", "    ")
    return lines
