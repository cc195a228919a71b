"""The HTML report of a federated run: one self-contained file, inline CSS and SVG.

No scripts, no fonts, no links out: the page carries a Content-Security-Policy that
forbids loading anything, so it can be mailed to a model-risk reviewer or archived with
the run. Every value from the result is escaped (party and feature names are user input).

Sections, each shown when its data is there: run summary; learning curves (global and
per-party AUC by round, or loss and AUC by epoch for vertical runs); cost per round
(seconds, bytes up and down, privacy budget); ROC and calibration curves; guest-only
versus joint model (vertical); information value (vertical); per-party results with the
gain of federation over each party's local-only model; feature importance (trees).
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from federated.vertical.binning import iv_strength
from privacy.errors import InputError

__all__ = ["render_report"]

DASH = "—"

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem;color:#222;
max-width:1100px}
h1{font-size:1.6rem}h2{border-bottom:1px solid #ccc;padding-bottom:.2rem;margin-top:2rem}
h3{font-size:1rem;margin:1rem 0 .3rem}
table{border-collapse:collapse;font-size:.9rem}td,th{border:1px solid #ddd;padding:.25rem .5rem;
text-align:left;vertical-align:top}th{background:#f4f4f4}td.n{text-align:right;
font-variant-numeric:tabular-nums}
tr.gain td{background:#eaf6ea}tr.loss td{background:#fbeaea}
.muted{color:#666;font-size:.85rem}svg text{font-size:11px;fill:#333}
.row{display:flex;flex-wrap:wrap;gap:2rem}
.legend{font-size:.85rem;margin:.2rem 0 1rem}.legend span{margin-right:1rem;white-space:nowrap}
.legend i{display:inline-block;width:18px;height:0;border-top:3px solid;margin-right:.3rem;
vertical-align:middle}
.bar{display:inline-block;height:.7rem;background:#4a78c2}
"""

#: Colour-blind-safe palette (Okabe–Ito), global model first.
_PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442",
            "#000000", "#999933", "#882255", "#44aa99")
#: Beyond this many parties, party curves are drawn grey without a legend entry each.
MAX_LEGEND_PARTIES = 10

_LABELS = {"auc": "AUC", "ks": "KS", "logloss": "log loss", "loss": "loss"}

_KNOWN = {"kind", "mode", "rounds", "epochs", "aggregation", "global", "parties", "history",
          "epsilon", "delta", "curves", "features", "intersection", "test_intersection",
          "guest_only", "iv", "importance"}


# --------------------------------------------------------------------------- formatting


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _num(x: Any) -> float | None:
    """``x`` as a finite float, or ``None`` (missing, text, bool, NaN)."""
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    v = float(x)
    return v if math.isfinite(v) else None


def _metric(x: Any) -> str:
    v = _num(x)
    return DASH if v is None else f"{v:.3f}"


def _signed(x: Any) -> str:
    v = _num(x)
    return DASH if v is None else f"{v:+.3f}"


def _count(x: Any) -> str:
    v = _num(x)
    return DASH if v is None else f"{v:,.0f}" if v.is_integer() else f"{v:,.2f}"


def _plain(x: Any) -> str:
    """Any scalar, escaped; ``—`` when missing."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return DASH
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int | float):
        return f"{x:,}" if isinstance(x, int) else f"{x:.6g}"
    return _e(x) if str(x) else DASH


_UNITS = (("GiB", 1024.0**3), ("MiB", 1024.0**2), ("KiB", 1024.0), ("B", 1.0))


def _unit(top: float) -> tuple[str, float]:
    return next((u for u in _UNITS if top >= u[1]), _UNITS[-1])


def _bytes(x: Any) -> str:
    v = _num(x)
    if v is None:
        return DASH
    name, size = _unit(abs(v))
    return f"{v:,.0f} B" if size == 1.0 else f"{v / size:,.1f} {name}"


def _dict(x: Any) -> Mapping[str, Any]:
    return x if isinstance(x, Mapping) else {}


def _rows(x: Any) -> list[Mapping[str, Any]]:
    return [r for r in x if isinstance(r, Mapping)] if isinstance(x, list) else []


# ------------------------------------------------------------------------------ charts


@dataclass(frozen=True)
class _Series:
    name: str
    points: Sequence[tuple[float, float | None]]  # a None y breaks the line
    color: str
    dashed: bool = False
    width: float = 2.0
    markers: bool = False


def _ticks(lo: float, hi: float, n: int = 5) -> tuple[float, list[float]]:
    """A round step and the multiples of it in ``[lo, hi]``."""
    raw = (hi - lo) / n
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9)
    return step, [k * step for k in range(first, math.floor(hi / step + 1e-9) + 1)]


def _tick(v: float) -> str:
    return f"{v:.10g}" if abs(v) >= 1e-9 else "0"


def _line_chart(series: Sequence[_Series], *, title: str, x_label: str, y_label: str,
                x_range: tuple[float, float] | None = None,
                y_range: tuple[float, float] | None = None, diagonal: bool = False,
                from_zero: bool = False, width: int = 680, height: int = 280) -> str:
    """An SVG line chart with axes, grid, optional ``y = x`` diagonal and an HTML legend.

    The y axis spans the data (from 0 with ``from_zero``) unless ``y_range`` is given.
    """
    pts = [(x, y) for s in series for x, y in s.points if y is not None]
    if not pts:
        return "<p class='muted'>no data</p>"
    left, right, top, bottom = 58, 14, 10, 42
    x_lo, x_hi = x_range or (min(p[0] for p in pts), max(p[0] for p in pts))
    if x_hi <= x_lo:
        x_lo, x_hi = x_lo - 1, x_hi + 1
    if y_range is None:
        y_lo, y_hi = min(p[1] for p in pts), max(p[1] for p in pts)
        if from_zero:
            y_lo = min(y_lo, 0.0)
        pad = (y_hi - y_lo) * 0.05 or max(abs(y_hi) * 0.05, 0.01)
        lo = y_lo if from_zero and y_lo == 0.0 else y_lo - pad
        step, _ = _ticks(lo, y_hi + pad)
        y_lo, y_hi = math.floor(lo / step) * step, math.ceil((y_hi + pad) / step) * step
    else:
        y_lo, y_hi = y_range
    pw, ph = width - left - right, height - top - bottom

    def px(x: float) -> float:
        return left + (x - x_lo) / (x_hi - x_lo) * pw

    def py(y: float) -> float:
        return top + (y_hi - y) / (y_hi - y_lo) * ph

    out = [f"<svg role='img' aria-label='{_e(title)}' width='{width}' height='{height}' "
           f"viewBox='0 0 {width} {height}'><title>{_e(title)}</title>",
           f"<rect x='{left}' y='{top}' width='{pw}' height='{ph}' fill='none' stroke='#999'/>"]
    for v in _ticks(x_lo, x_hi, 8)[1]:
        out.append(f"<line x1='{px(v):.1f}' y1='{top}' x2='{px(v):.1f}' y2='{top + ph}' "
                   f"stroke='#eee'/><text x='{px(v):.1f}' y='{top + ph + 14}' "
                   f"text-anchor='middle'>{_tick(v)}</text>")
    for v in _ticks(y_lo, y_hi)[1]:
        out.append(f"<line x1='{left}' y1='{py(v):.1f}' x2='{left + pw}' y2='{py(v):.1f}' "
                   f"stroke='#eee'/><text x='{left - 4}' y='{py(v) + 4:.1f}' "
                   f"text-anchor='end'>{_tick(v)}</text>")
    out.append(f"<text x='{left + pw / 2:.1f}' y='{height - 6}' text-anchor='middle'>"
               f"{_e(x_label)}</text><text transform='translate(12 {top + ph / 2:.1f}) "
               f"rotate(-90)' text-anchor='middle'>{_e(y_label)}</text>")
    if diagonal:
        lo, hi = max(x_lo, y_lo), min(x_hi, y_hi)
        out.append(f"<line x1='{px(lo):.1f}' y1='{py(lo):.1f}' x2='{px(hi):.1f}' "
                   f"y2='{py(hi):.1f}' stroke='#999' stroke-dasharray='4 4'/>")
    for s in series:
        dash = " stroke-dasharray='6 4'" if s.dashed else ""
        out.append(f"<g><title>{_e(s.name)}</title>")
        run: list[str] = []
        for x, y in [*s.points, (0.0, None)]:  # the sentinel flushes the last run
            if y is not None:
                run.append(f"{px(x):.1f},{py(y):.1f}")
                continue
            if len(run) > 1:
                out.append(f"<polyline fill='none' stroke='{s.color}' "
                           f"stroke-width='{s.width}'{dash} points='{' '.join(run)}'/>")
            elif run:
                out.append(f"<circle cx='{run[0].split(',')[0]}' cy='{run[0].split(',')[1]}' "
                           f"r='3' fill='{s.color}'/>")
            run = []
        if s.markers:
            out += [f"<circle cx='{px(x):.1f}' cy='{py(y):.1f}' r='3' fill='{s.color}'/>"
                    for x, y in s.points if y is not None]
        out.append("</g>")
    out.append("</svg>")
    legend = [f"<span><i style='border-top:3px {'dashed' if s.dashed else 'solid'} "
              f"{s.color}'></i>{_e(s.name)}</span>" for s in series if s.name]
    if len(legend) > 1:
        out.append(f"<div class='legend'>{''.join(legend)}</div>")
    return "".join(out)


# ---------------------------------------------------------------------------- sections


def _table(head: Sequence[str], rows: Iterable[Sequence[str]],
           classes: Iterable[str] = ()) -> str:
    """A table; cells are HTML already (escape before), numeric cells marked ``n:``."""
    out = ["<table><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr>"]
    cls = iter(classes)
    for r in rows:
        c = next(cls, "")
        out.append(f"<tr class='{c}'>" if c else "<tr>")
        out += [f"<td class='n'>{v[2:]}</td>" if v.startswith("n:") else f"<td>{v}</td>"
                for v in r]
        out.append("</tr>")
    out.append("</table>")
    return "".join(out)


def _gain_class(gain: float | None) -> str:
    return "" if gain is None or gain == 0 else "gain" if gain > 0 else "loss"


def _summary(result: Mapping[str, Any], history: list[Mapping[str, Any]], x_key: str) -> str:
    parties = result.get("parties")
    n_parties: Any = len(parties) if isinstance(parties, Mapping | list) else parties
    if n_parties is None:
        names = {p for h in history for p in _dict(h.get("parties"))}
        n_parties = len(names) or None
    steps: Any = result.get(x_key + "s")
    if steps is None:
        steps = max((_num(h.get(x_key)) or 0 for h in history), default=None) or None
    rows: list[tuple[str, str]] = [("kind", _plain(result.get("kind"))),
                                   ("mode", _plain(result.get("mode")))]
    horizontal = result.get("kind") != "vertical"
    if horizontal or result.get("aggregation") is not None:
        rows.append(("aggregation", _plain(result.get("aggregation"))))
    rows.append((x_key + "s", _plain(steps)))
    if horizontal or n_parties is not None:
        rows.append(("parties", _plain(n_parties)))
    for key in ("intersection", "test_intersection"):
        if key in result:
            rows.append((key.replace("_", " "), _count(result[key])))
    if result.get("epsilon") is not None:
        rows.append(("differential privacy", f"ε = {_plain(result['epsilon'])}, "
                                             f"δ = {_plain(result.get('delta'))}"))
    glob = _dict(result.get("global"))
    for key in ("auc", "ks", "logloss"):
        rows.append((f"global test {_LABELS[key]}", _metric(glob.get(key))))
    rows += [(f"global test {k}", _plain(v)) for k, v in glob.items()
             if k not in ("auc", "ks", "logloss") and not isinstance(v, Mapping | list)]
    features = result.get("features")
    if isinstance(features, list) and features:
        shown = ", ".join(_e(f) for f in features[:40])
        more = f" … and {len(features) - 40} more" if len(features) > 40 else ""
        rows.append(("features", f"{len(features)}: {shown}{more}"))
    rows += [(str(k), _plain(v)) for k, v in result.items()
             if k not in _KNOWN and not isinstance(v, Mapping | list)]
    return "<h2>Summary</h2><table>" + "".join(
        f"<tr><th>{_e(k)}</th><td>{v}</td></tr>" for k, v in rows) + "</table>"


def _party_auc(v: Any) -> float | None:
    return _num(v.get("auc")) if isinstance(v, Mapping) else _num(v)


def _curves(history: list[Mapping[str, Any]], x_key: str, result: Mapping[str, Any]) -> str:
    label = x_key
    xs = _steps(history, x_key)
    pairs = list(zip(xs, history, strict=True))
    out = ["<h2>Learning curves</h2>"]
    series = [_Series("global", [(x, _num(h.get("auc"))) for x, h in pairs],
                      _PALETTE[0], width=2.5, markers=len(history) <= 40)]
    names = list(dict.fromkeys(p for h in history for p in _dict(h.get("parties"))))
    many = len(names) > MAX_LEGEND_PARTIES
    for i, name in enumerate(names):
        pts = [(x, _party_auc(_dict(h.get("parties")).get(name))) for x, h in pairs]
        series.append(_Series("" if many else str(name), pts,
                              "#bbb" if many else _PALETTE[1 + i % (len(_PALETTE) - 1)],
                              width=1.0 if many else 1.5))
    guest = _num(_dict(result.get("guest_only")).get("auc"))
    if guest is not None and xs:
        series.append(_Series("guest only", [(min(xs), guest), (max(xs), guest)],
                              "#d55e00", dashed=True))
    if any(y is not None for s in series for _, y in s.points):
        out.append("<h3>Test AUC by " + _e(label) + "</h3>")
        out.append(_line_chart(series, title=f"AUC by {label}", x_label=label, y_label="AUC"))
        if many:
            out.append(f"<p class='muted'>grey: each of the {len(names)} parties</p>")
    split = [_Series(name, [(x, _num(h.get(key))) for x, h in pairs], _PALETTE[5 + i])
             for i, (key, name) in enumerate((("train_loss", "training rows"),
                                               ("valid_loss", "validation rows"),
                                               ("test_loss", "test rows")))]
    split = [s for s in split if any(y is not None for _, y in s.points)]
    losses = [(x, _num(h.get("loss"))) for x, h in pairs]
    if split:  # trees: the log loss on the training and the validation rows
        out.append("<h3>Log loss by " + _e(label) + "</h3>")
        out.append(_line_chart(split, title=f"log loss by {label}", x_label=label,
                               y_label="log loss"))
    elif any(y is not None for _, y in losses):
        out.append("<h3>Training loss by " + _e(label) + "</h3>")
        out.append(_line_chart([_Series("loss", losses, _PALETTE[5])],
                               title=f"loss by {label}", x_label=label, y_label="loss"))
    out.append(_cost(history, xs, label))
    return "".join(out)


def _steps(history: list[Mapping[str, Any]], key: str) -> list[float]:
    """The x value of each history entry: its round or epoch; 1, 2, ... when any is
    missing."""
    xs: list[float] = []
    for h in history:
        x = _num(h.get(key))
        if x is None:
            return [float(i) for i in range(1, len(history) + 1)]
        xs.append(x)
    return xs


def _cost(history: list[Mapping[str, Any]], xs: list[float], label: str) -> str:
    cols: list[tuple[str, str, Callable[[Any], str]]] = [
        ("seconds", "seconds", lambda v: _plain(_num(v))), ("bytes_up", "bytes up", _bytes),
        ("bytes_down", "bytes down", _bytes), ("loss", "loss", _metric),
        ("auc", "AUC", _metric), ("epsilon", "ε spent", lambda v: _plain(_num(v)))]
    cols = [c for c in cols if any(_num(h.get(c[0])) is not None for h in history)]
    if not cols:
        return ""
    pairs = list(zip(xs, history, strict=True))
    out = ["<h3>Cost per " + _e(label) + "</h3><div class='row'>"]
    secs = [(x, _num(h.get("seconds"))) for x, h in pairs]
    if any(y is not None for _, y in secs):
        out.append("<div>" + _line_chart(
            [_Series("seconds", secs, _PALETTE[2], markers=True)], title=f"seconds per {label}",
            x_label=label, y_label="seconds", from_zero=True, width=520, height=240) + "</div>")
    traffic = {k: [(x, _num(h.get(k))) for x, h in pairs]
               for k in ("bytes_up", "bytes_down")}
    top = max((y for pts in traffic.values() for _, y in pts if y is not None), default=None)
    if top is not None:
        unit, size = _unit(top)
        series = [_Series(k.replace("_", " "),
                          [(x, None if y is None else y / size) for x, y in pts],
                          _PALETTE[1 + i], markers=True)
                  for i, (k, pts) in enumerate(traffic.items())]
        out.append("<div>" + _line_chart(
            series, title=f"bytes per {label}", x_label=label, y_label=f"{unit} per {label}",
            from_zero=True, width=520, height=240) + "</div>")
    out.append("</div>")
    body = [[f"n:{_plain(h.get(label, x))}"] + [f"n:{fmt(h.get(k))}" for k, _, fmt in cols]
            for x, h in pairs]
    out.append(f"<details><summary>per-{_e(label)} table ({len(history)} rows)</summary>"
               + _table([label, *(name for _, name, _ in cols)], body) + "</details>")
    return "".join(out)


def _roc_calibration(curves: Mapping[str, Any]) -> str:
    roc, cal = _dict(curves.get("roc")), _dict(curves.get("calibration"))
    out: list[str] = []
    fpr, tpr = roc.get("fpr"), roc.get("tpr")
    if isinstance(fpr, list) and isinstance(tpr, list):
        pts = [(x, y) for x, y in ((_num(a), _num(b)) for a, b in zip(fpr, tpr, strict=False))
               if x is not None and y is not None]
        if pts:
            out.append("<div><h3>ROC curve (global model, test rows)</h3>" + _line_chart(
                [_Series("ROC", pts, _PALETTE[0])], title="ROC curve",
                x_label="false positive rate",
                y_label="true positive rate", x_range=(0, 1), y_range=(0, 1), diagonal=True,
                width=380, height=360) + "</div>")
    pred, obs = cal.get("predicted"), cal.get("observed")
    if isinstance(pred, list) and isinstance(obs, list):
        pts = [(x, y) for x, y in ((_num(a), _num(b)) for a, b in zip(pred, obs, strict=False))
               if x is not None and y is not None]
        if pts:
            hi = max(1e-3, *(max(p) for p in pts)) * 1.1
            if hi > 0.5:
                hi = 1.0
            else:  # credit default rates are small: zoom onto a round upper bound
                step = _ticks(0.0, hi)[0]
                hi = step * math.ceil(hi / step)
            counts = cal.get("count")
            note = (f"<p class='muted'>{len(pts)} bins, "
                    f"{_count(sum(_num(c) or 0 for c in counts))} rows</p>"
                    if isinstance(counts, list) else "")
            out.append("<div><h3>Calibration (quantile bins)</h3>" + _line_chart(
                [_Series("observed vs predicted", pts, _PALETTE[5], markers=True)],
                title="calibration", x_label="mean predicted probability",
                y_label="observed positive rate", x_range=(0, hi), y_range=(0, hi),
                diagonal=True, width=380, height=360) + note + "</div>")
    return ("<h2>ROC and calibration</h2><div class='row'>" + "".join(out) + "</div>"
            if out else "")


def _parties(parties: Mapping[str, Any]) -> str:
    rows, classes, gains = [], [], []
    for name, p in parties.items():
        p = _dict(p)
        fed, local = _num(p.get("auc")), _num(p.get("local_auc"))
        gain = None if fed is None or local is None else fed - local
        if gain is not None:
            gains.append(gain)
        rows.append([_e(name), f"n:{_count(p.get('rows'))}", f"n:{_count(p.get('test_rows'))}",
                     f"n:{_metric(fed)}", f"n:{_metric(local)}", f"n:{_signed(gain)}"])
        classes.append(_gain_class(gain))
    note = ""
    if gains:
        up = sum(g > 0 for g in gains)
        note = (f"<p>{up} of {len(gains)} parties gain from federation (green); mean gain "
                f"{_signed(sum(gains) / len(gains))} AUC over the party's local-only model, "
                "both scored on the party's own test rows.</p>")
    return ("<h2>Parties</h2>" + note + _table(
        ["party", "rows", "test rows", "federated AUC", "local-only AUC", "gain"], rows, classes))


def _guest(result: Mapping[str, Any]) -> str:
    guest, glob = _dict(result.get("guest_only")), _dict(result.get("global"))
    keys = [k for k in dict.fromkeys([*glob, *guest])
            if _num(glob.get(k)) is not None or _num(guest.get(k)) is not None]
    if not keys:
        return ""
    rows, classes = [], []
    for k in keys:
        g, j = _num(guest.get(k)), _num(glob.get(k))
        diff = None if g is None or j is None else j - g
        better = None if diff is None else -diff if k in ("logloss", "loss") else diff
        rows.append([_e(_LABELS.get(k, k)), f"n:{_metric(g)}", f"n:{_metric(j)}",
                     f"n:{_signed(diff)}"])
        classes.append(_gain_class(better))
    return ("<h2>Guest only vs joint model</h2><p class='muted'>The guest's features alone "
            "against the model trained with the partner's features (test intersection).</p>"
            + _table(["metric", "guest only", "joint (global)", "difference"], rows, classes))


def _iv(iv: Mapping[str, Any]) -> str:
    vals = sorted(((str(k), v) for k, v in iv.items()), key=lambda kv: -(_num(kv[1]) or -1.0))
    top = max((_num(v) or 0.0 for _, v in vals), default=0.0) or 1.0
    rows = []
    for name, v in vals:
        n = _num(v)
        bar = ("" if n is None else
               f"<span class='bar' style='width:{max(n, 0) / top * 200:.0f}px'></span>")
        rows.append([_e(name), f"n:{_metric(n)}", bar, DASH if n is None else iv_strength(n)])
    return ("<h2>Information value</h2><p class='muted'>Per feature, from the binned WOE "
            "(usual bands: &lt;0.02 not predictive, 0.02–0.1 weak, 0.1–0.3 medium, "
            "0.3–0.5 strong, above 0.5 too good to be true).</p>"
            + _table(["feature", "IV", "", "strength"], rows))


def _importance(importance: Mapping[str, Any]) -> str:
    """Gain per feature: one table (horizontal: every bank holds every feature), or one
    per party (vertical: ``{party: {gain, splits}}``)."""
    per_party = all(isinstance(v, Mapping) and "gain" in v for v in importance.values())
    parts = ({str(p): _dict(v) for p, v in importance.items()} if per_party
             else {"": importance})
    total = sum(_num(v) or 0.0 for part in parts.values()
                for v in _dict(part.get("gain")).values()) or 1.0
    top = max((_num(v) or 0.0 for part in parts.values()
               for v in _dict(part.get("gain")).values()), default=0.0) or 1.0
    rows = []
    for party, part in parts.items():
        splits = _dict(part.get("splits"))
        vals = sorted(((str(k), _num(v)) for k, v in _dict(part.get("gain")).items()),
                      key=lambda kv: -(kv[1] or 0.0))
        rows += [([_e(party)] if per_party else []) + [
            _e(name), f"n:{_plain(v)}", f"n:{_plain(None if v is None else v / total)}",
            f"n:{_count(splits.get(name))}",
            "" if v is None else f"<span class='bar' style='width:{max(v, 0) / top * 200:.0f}"
                                 "px'></span>"] for name, v in vals]
    note = ("Each party's features, under the names its own files use: a host's split "
            "thresholds stay with that host." if per_party else
            "Every bank holds every feature in a horizontal run, so the gain is not split "
            "by party.")
    return ("<h2>Feature importance</h2><p class='muted'>Total gain (loss reduction) of the "
            "splits on each feature over the model's trees, its share, and the number of "
            f"splits. {note}</p>"
            + _table((["party"] if per_party else []) + ["feature", "gain", "share",
                                                         "splits", ""], rows))


def render_report(result: Mapping[str, Any], *, title: str | None = None) -> str:
    """The report of one federated run, as one self-contained HTML document.

    Parameters
    ----------
    result:
        The run's result dict (the FL runner's JSON). Only ``kind`` is required; every
        other key is optional and its section is left out (or shows ``—``) when missing.
    title:
        Page title; default ``"covault federated learning report (<kind>)"``.

    Raises
    ------
    InputError
        ``result`` is not a mapping or has no ``kind``.
    """
    if not isinstance(result, Mapping):
        raise InputError(f"result: expected a mapping (an FL result), got "
                         f"{type(result).__name__}")
    if "kind" not in result:
        raise InputError("result: missing 'kind' (horizontal or vertical)")
    history = _rows(result.get("history"))
    by_epoch = any("epoch" in h and "round" not in h for h in history) or (
        result.get("kind") == "vertical" and not any("round" in h for h in history))
    by_tree = any("tree" in h and "round" not in h for h in history)
    x_key = "tree" if by_tree else "epoch" if by_epoch else "round"
    title = title or f"covault federated learning report ({result['kind']})"
    csp = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    out = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
           f"<meta http-equiv='Content-Security-Policy' content=\"{csp}\">",
           f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
           f"<h1>{_e(title)}</h1><p class='muted'>generated "
           f"{datetime.now(timezone.utc).isoformat(timespec='seconds')}</p>",
           _summary(result, history, x_key)]
    if history:
        out.append(_curves(history, x_key, result))
    out.append(_roc_calibration(_dict(result.get("curves"))))
    if isinstance(result.get("guest_only"), Mapping):
        out.append(_guest(result))
    if isinstance(result.get("iv"), Mapping) and result["iv"]:
        out.append(_iv(result["iv"]))
    if isinstance(result.get("importance"), Mapping) and result["importance"]:
        out.append(_importance(result["importance"]))
    if isinstance(result.get("parties"), Mapping) and result["parties"]:
        out.append(_parties(result["parties"]))
    out.append("</body></html>")
    return "\n".join(s for s in out if s)
