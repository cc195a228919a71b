"""One self-contained HTML report: inline SVG charts, inline CSS, no scripts, no links out.

Sections: summary, alerts per day, alerts by scenario, top actors, model review (when
given), the queue (when given: incidents kept and every one left out, with why), then one
section per alert with its reasons (numbers included), scenario codes,
versions, triage history and evidence (statement *templates*: literal values such as
customer ids are replaced by ``?``).
"""

from __future__ import annotations

import html
import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timedelta, timezone
from typing import Any

from privacy.atomic import atomic_write_text
from privacy.audit.rules import SCENARIOS

__all__ = ["render_report", "write_report"]

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem;color:#222;
max-width:1100px}
h1{font-size:1.6rem}h2{border-bottom:1px solid #ccc;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;font-size:.9rem}td,th{border:1px solid #ddd;padding:.25rem .5rem;
text-align:left;vertical-align:top}th{background:#f4f4f4}
.alert{border:1px solid #ddd;border-left:6px solid #c33;padding:.6rem 1rem;margin:1rem 0}
.mid{border-left-color:#e90}.low{border-left-color:#999}
code{background:#f6f6f6;padding:0 .2rem;font-size:.85rem;word-break:break-all}
.muted{color:#666;font-size:.85rem}svg text{font-size:11px;fill:#333}
"""


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _bars(items: Sequence[tuple[str, float]], *, width: int = 640, title: str) -> str:
    """Horizontal bar chart."""
    if not items:
        return "<p class='muted'>nothing to show</p>"
    top = max(v for _, v in items) or 1
    row = 20
    h = row * len(items) + 10
    parts = [f"<svg role='img' aria-label='{_e(title)}' width='{width}' height='{h}' "
             f"xmlns='http://www.w3.org/2000/svg'>"]
    for i, (label, v) in enumerate(items):
        y = 5 + i * row
        w = (width - 260) * v / top
        parts.append(f"<text x='0' y='{y + 13}'>{_e(label[:38])}</text>"
                     f"<rect x='220' y='{y + 2}' width='{w:.1f}' height='{row - 6}' "
                     f"fill='#4a78c2'/><text x='{225 + w:.1f}' y='{y + 13}'>{v:g}</text>")
    parts.append("</svg>")
    return "".join(parts)


def _columns(items: Sequence[tuple[str, float]], *, width: int = 900, title: str) -> str:
    """Vertical bars over time (one per label)."""
    if not items:
        return "<p class='muted'>nothing to show</p>"
    top = max(v for _, v in items) or 1
    h, pad = 180, 30
    bw = max(4.0, (width - 2 * pad) / len(items))
    parts = [f"<svg role='img' aria-label='{_e(title)}' width='{width}' height='{h + 40}' "
             f"xmlns='http://www.w3.org/2000/svg'>",
             f"<line x1='{pad}' y1='{h}' x2='{width - pad}' y2='{h}' stroke='#999'/>"]
    step = max(1, len(items) // 10)
    for i, (label, v) in enumerate(items):
        x = pad + i * bw
        bh = (h - 20) * v / top
        parts.append(f"<rect x='{x:.1f}' y='{h - bh:.1f}' width='{bw * 0.8:.1f}' "
                     f"height='{bh:.1f}' fill='#c2554a'><title>{_e(label)}: {v:g}</title></rect>")
        if i % step == 0:
            parts.append(f"<text x='{x:.1f}' y='{h + 15}'>{_e(label[5:])}</text>")
    parts.append(f"<text x='0' y='12'>max {top:g}</text></svg>")
    return "".join(parts)


def render_report(alerts: Sequence[Mapping[str, Any]], *,
                  events: Callable[[str], Mapping[str, Any] | None] | None = None,
                  summary: Mapping[str, Any] | None = None,
                  model_findings: Sequence[Mapping[str, Any]] = (),
                  queue: Mapping[str, Any] | None = None,
                  title: str = "covault query-audit report") -> str:
    """The report as one HTML string.

    Parameters
    ----------
    alerts:
        Alert dicts (as stored: with ``state`` and optional ``history``).
    events:
        Looks up an evidence event by id (fields of a QueryEvent, statement normalised).
    summary:
        Key/value lines for the summary table (counts, versions, verification).
    model_findings:
        Rows from :func:`privacy.audit.model.review`.
    queue:
        :meth:`privacy.audit.queue.Queue.to_dict`: the incidents kept in the queue, and
        every one left out with the reason.
    """
    from privacy.audit.sql import normalize

    per_day = Counter(str(a["first_ts"])[:10] for a in alerts)
    days = sorted(per_day)
    if days:  # every day of the span, quiet days included
        lo, hi = date.fromisoformat(days[0]), date.fromisoformat(days[-1])
        days = [(lo + timedelta(days=i)).isoformat() for i in range((hi - lo).days + 1)]
    scen = Counter(a["scenarios"][0] for a in alerts)
    actors = Counter(a["actor"] for a in alerts)
    out = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
           f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
           f"<h1>{_e(title)}</h1><p class='muted'>generated "
           f"{datetime.now(timezone.utc).isoformat(timespec='seconds')}</p>",
           "<h2>Summary</h2><table>"]
    rows = {"alerts": len(alerts), **(summary or {})}
    for k, v in rows.items():
        out.append(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>")
    out.append("</table><h2>Alerts over time</h2>")
    out.append(_columns([(d, per_day[d]) for d in days], title="alerts per day"))
    out.append("<h2>By scenario</h2>")
    out.append(_bars([(f"{c} — {SCENARIOS.get(c, '')}", n) for c, n in scen.most_common()],
                     title="alerts by scenario"))
    out.append("<h2>Top actors</h2>")
    out.append(_bars(actors.most_common(15), title="top actors"))
    if model_findings:
        out.append("<h2>Periodic model review (actor-days)</h2><table><tr><th>actor</th>"
                   "<th>day</th><th>anomaly</th><th>why</th></tr>")
        for f in model_findings[:30]:
            out.append(f"<tr><td>{_e(f['actor'])}</td><td>{_e(f['day'])}</td>"
                       f"<td>{f['score']:.3f}</td><td>{_e(f.get('why', ''))}</td></tr>")
        out.append("</table>")
    if queue is not None:
        out += _queue_section(queue)
    out.append("<h2>Alerts</h2>")
    for a in alerts:
        score = int(a["score"])
        cls = "alert" + ("" if score >= 80 else " mid" if score >= 60 else " low")
        supp = (" · suppressed by " + _e(a["suppressed_by"])) if a.get("suppressed_by") else ""
        out.append(f"<section class='{cls}' id='{_e(a['alert_id'])}'>"
                   f"<h3>{_e(a['alert_id'])} · {_e(a['actor'])} · score {score}</h3>"
                   f"<p><b>{_e(', '.join(a['scenarios']))}</b> — state "
                   f"<b>{_e(a.get('state', 'new'))}</b>"
                   f"{' (' + _e(a['close_reason']) + ')' if a.get('close_reason') else ''}"
                   f"{supp}"
                   f"</p><p class='muted'>{_e(a['first_ts'])} → {_e(a['last_ts'])} · "
                   f"{_e(a.get('event_count', len(a['event_ids'])))} events · role "
                   f"{_e(a.get('role'))} / {_e(a.get('department'))} · rules "
                   f"{_e(a['rule_version'])} · model {_e(a['model_version'])}</p><ul>")
        out += [f"<li>{_e(r)}</li>" for r in a["reasons"]]
        out.append("</ul>")
        if a.get("history"):
            out.append("<p><b>Triage</b></p><ul>")
            out += [f"<li>{_e(h['ts'])} {_e(h['analyst'])}: {_e(h['action'])} "
                    f"{_e(h.get('from_state'))} → {_e(h.get('to_state') or '')} "
                    f"{_e(h.get('reason') or '')} — {_e(h['comment'])}</li>"
                    for h in a["history"]]
            out.append("</ul>")
        if events is not None:
            out.append("<table><tr><th>time</th><th>source</th><th>rows</th><th>status</th>"
                       "<th>statement (template)</th></tr>")
            for eid in a["event_ids"][:8]:
                ev = events(eid)
                if ev is None:
                    continue
                out.append(f"<tr><td>{_e(ev['ts'])}</td><td>{_e(ev.get('source_ip'))} "
                           f"{_e(ev.get('client'))}</td><td>{_e(ev.get('rows'))}</td>"
                           f"<td>{_e(ev.get('status'))}</td><td><code>"
                           f"{_e(normalize(str(ev['statement']))[:300])}</code></td></tr>")
            out.append("</table>")
        out.append("</section>")
    out.append("</body></html>")
    return "\n".join(out)


def _queue_section(queue: Mapping[str, Any]) -> list[str]:
    budget = queue.get("budget")
    out = [f"<h2>Queue</h2><p>{len(queue['queued'])} incidents in the queue "
           f"({'no budget' if budget is None else f'budget {_e(budget)} a day'}); "
           f"{len(queue['suppressed'])} not in it, each with the reason below.</p>",
           "<table><tr><th>day</th><th>incident</th><th>score</th><th>actor</th>"
           "<th>scenarios</th><th>alerts</th><th>calibration</th></tr>"]
    for inc in queue["queued"]:
        out.append(f"<tr><td>{_e(inc['day'])}</td><td>{_e(inc['incident_id'])}</td>"
                   f"<td>{_e(inc['score'])}</td><td>{_e(inc['actor'])}</td>"
                   f"<td>{_e(', '.join(inc['scenarios']))}</td>"
                   f"<td>{_e(', '.join(inc['alert_ids']))}</td><td>{_e(inc['why'])}</td></tr>")
    out.append("</table><h3>Not in the queue</h3>")
    if not queue["suppressed"]:
        out.append("<p class='muted'>none</p>")
        return out
    out.append("<table><tr><th>day</th><th>incident</th><th>score</th><th>actor</th>"
               "<th>scenarios</th><th>why not</th></tr>")
    for inc in queue["suppressed"]:
        out.append(f"<tr><td>{_e(inc['day'])}</td><td>{_e(inc['incident_id'])}</td>"
                   f"<td>{_e(inc['score'])}</td><td>{_e(inc['actor'])}</td>"
                   f"<td>{_e(', '.join(inc['scenarios']))}</td>"
                   f"<td>{_e(inc['suppressed'])}</td></tr>")
    out.append("</table>")
    return out


def write_report(path: str | os.PathLike[str], alerts: Sequence[Mapping[str, Any]],
                 **kwargs: Any) -> None:
    """Render and write the report atomically."""
    atomic_write_text(path, render_report(alerts, **kwargs))
