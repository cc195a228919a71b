"""``covault audit queue``: incidents per actor and episode, calibrated, within a budget."""

from __future__ import annotations

from typing import Any

import click

from covault.console import emit_json, format_option, handle_errors, out

_BUDGET = click.option("--budget", type=click.IntRange(0), default=None, metavar="N",
                       help="Incidents a day kept in the queue (the highest calibrated "
                            "scores); the others are listed as suppressed, with why.")
_GAP = click.option("--gap", default="24h", show_default=True,
                    help="Alerts of one actor closer than this are one incident (30m, 12h, "
                         "2d).")


def parse_gap(text: str) -> float:
    """Seconds of a duration such as ``24h`` (exit 2 on a bad one)."""
    import re

    from privacy.errors import InputError

    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", text)
    if m is None:
        raise InputError(f"--gap {text!r}: expected a duration such as 30m, 24h or 2d")
    return float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def load_queue(store: Any, budget: int | None, gap: float) -> Any:
    """The queue of the alerts stored in ``store`` (auditors' verdicts calibrate it)."""
    from privacy.audit.queue import build_queue
    from privacy.audit.triage import Triage

    rows = Triage(store).alerts(include_suppressed=True)
    verdicts = [(a["scenarios"][0], str(a["close_reason"])) for a in rows
                if a.get("state") == "closed" and a.get("close_reason")]
    return build_queue(rows, budget=budget, gap=gap, verdicts=verdicts)


def print_queue(q: Any, *, limit: int = 100) -> None:
    """The queue as text: incidents kept per day, then those left out and why."""
    budget = "no budget" if q.budget is None else f"budget {q.budget} a day"
    out.print(f"{len(q.queued)} incidents in the queue ({budget}); {len(q.suppressed)} "
              "not in it", markup=False)
    for inc in q.queued[:limit]:
        out.print(f"{inc.day}  {inc.incident_id}  score {inc.score:>3}  {inc.actor}  "
                  f"{', '.join(inc.scenarios)}  ({len(inc.alerts)} alert(s): "
                  f"{', '.join(a['alert_id'] for a in inc.alerts[:3])}"
                  f"{' ...' if len(inc.alerts) > 3 else ''})", markup=False)
        out.print(f"    {inc.why}", markup=False)
    if len(q.queued) > limit:
        out.print(f"... and {len(q.queued) - limit} more (--format json lists all)",
                  markup=False)
    if q.suppressed:
        out.print("not in the queue:", markup=False)
        for inc in q.suppressed[:limit]:
            out.print(f"{inc.day}  {inc.incident_id}  score {inc.score:>3}  {inc.actor}  "
                      f"{', '.join(inc.scenarios)}: {inc.suppressed}", markup=False)
        if len(q.suppressed) > limit:
            out.print(f"... and {len(q.suppressed) - limit} more", markup=False)


def annotate(alerts: list[dict[str, Any]], q: Any) -> list[dict[str, Any]]:
    """``alerts`` with their incident, whether it is queued and, if not, why."""
    where: dict[str, Any] = {}
    for inc in [*q.queued, *q.suppressed]:
        for a in inc.alerts:
            where[a["alert_id"]] = inc
    outl = []
    for a in alerts:
        inc = where.get(a["alert_id"])
        d = dict(a)
        if inc is not None:
            d.update(incident_id=inc.incident_id, incident_score=inc.score,
                     queued=inc.queued, queue_reason=inc.suppressed)
        outl.append(d)
    return outl


@click.command("queue")
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False),
              help="Audit database.")
@_BUDGET
@_GAP
@format_option
@handle_errors
def queue_cmd(db_path: str, budget: int | None, gap: str, fmt: str) -> None:
    """The alert queue: incidents per actor and episode, highest calibrated score first.

    Alerts of one actor within --gap are one incident. Its calibrated score combines its
    alerts' scores with the precision auditors found for their scenarios (the triage
    verdicts stored in DB). With --budget N only the N best incidents of each day are
    kept; every incident left out is listed with the reason (over budget, suppressed,
    closed). --format json prints one object: budget, queued, suppressed, calibration.
    """
    from privacy.audit.store import AuditStore

    seconds = parse_gap(gap)
    store = AuditStore(db_path)
    try:
        q = load_queue(store, budget, seconds)
    finally:
        store.close()
    if fmt == "json":
        emit_json(q.to_dict())
        return
    print_queue(q)

