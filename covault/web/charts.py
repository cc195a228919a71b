"""Inline SVG charts for the console, drawn on the server (no script in the page).

Every bar links to the alert queue filtered to what it counts.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

__all__ = ["scenario_bars", "daily_columns", "activity_columns", "PALETTE"]

PALETTE = ("#4a78c2", "#c2554a", "#e0a030", "#4aa27a", "#8a5cc2", "#3aa6b8", "#c25a9a",
           "#7a7a7a")
_MAX_DAYS = 92


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _empty(title: str) -> str:
    return f"<p class='muted'>{_e(title)}: nothing to show</p>"


def scenario_bars(alerts: Sequence[Mapping[str, Any]], *, width: int = 560) -> str:
    """Alerts per primary scenario, largest first; each bar links to the filtered queue."""
    title = "Alerts by primary scenario"
    counts = Counter(a["scenarios"][0] for a in alerts if a.get("scenarios"))
    if not counts:
        return _empty(title)
    items = counts.most_common()
    top, row, label_w = items[0][1], 22, 190
    h = row * len(items) + 8
    parts = [f"<svg role='img' aria-label='{_e(title)}' viewBox='0 0 {width} {h}' "
             f"width='{width}' height='{h}' xmlns='http://www.w3.org/2000/svg'>"
             f"<title>{_e(title)}</title>"]
    for i, (code, n) in enumerate(items):
        y = 4 + i * row
        w = max(1.0, (width - label_w - 50) * n / top)
        href = "/alerts?" + urlencode({"scenario": code})
        parts.append(f"<a href='{_e(href)}'><text x='0' y='{y + 14}'>{_e(code)}</text>"
                     f"<rect x='{label_w}' y='{y + 3}' width='{w:.1f}' height='{row - 7}' "
                     f"fill='{PALETTE[0]}'><title>{_e(code)}: {n}</title></rect>"
                     f"<text x='{label_w + w + 5:.1f}' y='{y + 14}'>{n}</text></a>")
    parts.append("</svg>")
    return "".join(parts)


def daily_columns(alerts: Sequence[Mapping[str, Any]], *, width: int = 860) -> str:
    """Alerts per day (of ``first_ts``), stacked by primary scenario (the six most
    frequent, the rest as ``other``); the last :data:`_MAX_DAYS` days with alerts."""
    title = "Alerts per day by primary scenario"
    per: dict[date, Counter[str]] = {}
    for a in alerts:
        if a.get("scenarios"):
            d = date.fromisoformat(str(a["first_ts"])[:10])
            per.setdefault(d, Counter())[a["scenarios"][0]] += 1
    if not per:
        return _empty(title)
    last = max(per)
    first = max(min(per), last - timedelta(days=_MAX_DAYS - 1))
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    totals = Counter[str]()
    for d in days:
        totals.update(per.get(d, Counter()))
    shown = [c for c, _ in totals.most_common(6)]
    keys = shown + (["other"] if len(totals) > len(shown) else [])
    color = {k: PALETTE[i % len(PALETTE)] for i, k in enumerate(keys)}
    if "other" in color:
        color["other"] = PALETTE[-1]
    top = max(sum(per.get(d, Counter()).values()) for d in days) or 1
    h, pad, legend = 170, 34, 18 * ((len(keys) + 3) // 4)
    bw = min(60.0, (width - pad - 10) / len(days))
    parts = [f"<svg role='img' aria-label='{_e(title)}' viewBox='0 0 {width} {h + 30 + legend}' "
             f"width='{width}' height='{h + 30 + legend}' xmlns='http://www.w3.org/2000/svg'>"
             f"<title>{_e(title)}</title>",
             f"<line x1='{pad}' y1='{h}' x2='{width - 10}' y2='{h}' stroke='#999'/>",
             f"<text x='0' y='14'>{top}</text><text x='0' y='{h}'>0</text>"]
    step = max(1, len(days) // 10)
    for i, d in enumerate(days):
        x, y = pad + i * bw, float(h)
        c = per.get(d, Counter())
        buckets = [(k, c[k]) for k in shown] + [("other", sum(v for k, v in c.items()
                                                              if k not in shown))]
        href = "/alerts?" + urlencode({"day": d.isoformat()})
        parts.append(f"<a href='{_e(href)}'>")
        for k, n in buckets:
            if not n:
                continue
            bh = (h - 20) * n / top
            y -= bh
            parts.append(f"<rect x='{x:.1f}' y='{y:.1f}' width='{max(1.0, bw * 0.8):.1f}' "
                         f"height='{bh:.1f}' fill='{color[k]}'><title>{d.isoformat()} "
                         f"{_e(k)}: {n}</title></rect>")
        parts.append("</a>")
        if i % step == 0:
            parts.append(f"<text x='{x:.1f}' y='{h + 15}'>{d.isoformat()[5:]}</text>")
    for j, k in enumerate(keys):
        lx, ly = pad + (j % 4) * 200, h + 30 + 18 * (j // 4)
        parts.append(f"<rect x='{lx}' y='{ly - 9}' width='10' height='10' fill='{color[k]}'/>"
                     f"<text x='{lx + 14}' y='{ly}'>{_e(k)}</text>")
    parts.append("</svg>")
    return "".join(parts)


def activity_columns(days: Sequence[Mapping[str, Any]], window: tuple[str, str], *,
                     width: int = 560) -> str:
    """The actor's events per day (``AuditStore.actor_days`` rows); days inside the
    alert's ``window`` (first and last ISO days) drawn in red."""
    title = "Events per day"
    if not days:
        return _empty(title)
    top = max(int(d["events"]) for d in days) or 1
    h, pad = 120, 40
    bw = min(48.0, (width - pad - 10) / len(days))
    parts = [f"<svg role='img' aria-label='{_e(title)}' viewBox='0 0 {width} {h + 22}' "
             f"width='{width}' height='{h + 22}' xmlns='http://www.w3.org/2000/svg'>"
             f"<title>{_e(title)}</title>",
             f"<line x1='{pad}' y1='{h}' x2='{width - 10}' y2='{h}' stroke='#999'/>",
             f"<text x='0' y='14'>{top:,}</text>"]
    for i, d in enumerate(days):
        x = pad + i * bw
        bh = (h - 20) * int(d["events"]) / top
        inside = window[0] <= d["day"] <= window[1]
        parts.append(f"<rect x='{x:.1f}' y='{h - bh:.1f}' width='{max(1.0, bw * 0.8):.1f}' "
                     f"height='{bh:.1f}' fill='{PALETTE[1] if inside else PALETTE[0]}'>"
                     f"<title>{_e(d['day'])}: {int(d['events']):,} events, "
                     f"{int(d['rows']):,} rows, {int(d['failed']):,} failed</title></rect>"
                     f"<text x='{x:.1f}' y='{h + 15}'>{_e(str(d['day'])[5:])}</text>")
    parts.append("</svg>")
    return "".join(parts)
