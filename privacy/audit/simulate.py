"""Seeded query traffic of a bank, with every detection scenario injected and an answer key.

Actors: tellers and branch managers (per branch), call-centre agents (rota incl.
weekends and holidays, two shifts), risk analysts, private-banking relationship managers,
DBAs, application service accounts (24/7, fixed templates) and nightly batch accounts.
Working days follow the Chinese public-holiday calendar of :mod:`privacy.audit.rules`.

After a warm-up (``warmup_days``), each scenario of :data:`INJECTED` is injected
``per_scenario`` times at known times for chosen actors; :class:`Simulation` carries
the events (sorted by time) and the answer key (incidents with their event ids).
:func:`evaluate` scores a list of alerts against the key per scenario.

The simulator also writes the bank's catalogue, rules and lists (:func:`write_bundle`);
detection must not read anything else from here.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

from privacy.audit.events import QueryEvent
from privacy.audit.rules import Calendar, Rules
from privacy.audit.sim_bundle import CATALOG_YAML, write_bundle
from privacy.audit.sim_eval import evaluate
from privacy.audit.sim_inject import INJECTED, _Gen
from privacy.audit.sim_traffic import CUST0 as CUST0
from privacy.audit.sim_traffic import N_CUSTOMERS as N_CUSTOMERS
from privacy.audit.sim_traffic import TZ, Simulation

__all__ = ["Simulation", "simulate", "evaluate", "write_bundle", "INJECTED", "CATALOG_YAML"]


def simulate(seed: int = 7, actors: int = 500, days: int = 30, *,
             start: date = date(2026, 3, 30), warmup_days: int = 8,
             per_scenario: int | None = None, service_rate: int = 2200) -> Simulation:
    """Generate the traffic and the answer key.

    Parameters
    ----------
    seed:
        Random seed: the same arguments give the same events, ids and key.
    actors:
        Number of principals (at least 40).
    days:
        Days of traffic from ``start`` (at least ``warmup_days + 7``).
    warmup_days:
        Days before the first injection (detection learns during them).
    per_scenario:
        Incidents per scenario (default ``max(3, actors // 50)``).
    service_rate:
        Statements per day of each application account.
    """
    if actors < 40 or days < warmup_days + 7:
        raise ValueError("simulate needs at least 40 actors and warmup_days + 7 days")
    per = per_scenario if per_scenario is not None else max(3, actors // 50)
    g = _Gen(seed, actors, days, start, warmup_days, per, service_rate)
    for d in range(days):
        for a in g.actors:
            if a.kind == "human":
                g.human_day(a, d)
            elif a.role == "application":
                g.app_day(a, d)
            else:
                g.batch_day(a, d)
    incidents = g.inject()
    order = sorted(range(len(g.rows)), key=lambda i: g.rows[i][0])
    events: list[QueryEvent] = []
    ids: list[str] = [""] * len(g.rows)
    for n, i in enumerate(order):
        ts, a, sql, rows, status, ip, client, _ = g.rows[i]
        eid = f"sim{seed}-{n:08d}"
        ids[i] = eid
        events.append(QueryEvent(event_id=eid, ts=datetime.fromtimestamp(ts, TZ), actor=a.name,
                                 actor_kind=a.kind,  # type: ignore[arg-type]
                                 role=a.role, department=a.department, source_ip=ip,
                                 client=client, database="corebank", statement=sql, rows=rows,
                                 status=status))  # type: ignore[arg-type]
    for inc in incidents:
        n = int(inc["id"][4:])
        inc["event_ids"] = [ids[i] for i in g.inc_rows[n]]
    answers = {"seed": seed, "actors": actors, "days": days, "start": start.isoformat(),
               "warmup_days": warmup_days, "events": len(events),
               "actor_days": _actor_days(events), "incidents": incidents}
    return Simulation(events, answers, g.actors, g.vips, g.colleagues)


def _actor_days(events: Iterable[QueryEvent]) -> int:
    return len({(e.actor, e.ts.astimezone(TZ).date()) for e in events})


def default_calendar() -> Calendar:
    """The calendar the simulator schedules by (the default rules' calendar)."""
    return Rules.default().calendar
