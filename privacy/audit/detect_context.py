"""Judgements in context, mixed into :class:`privacy.audit.detect.Detector`.

Whether a heavy statement is the account's routine (:mod:`privacy.audit.routine`), and
whether an hour is off hours for this actor: outside the calendar's working hours and
outside its own rota, its peers', its role's and the rota file's, on a day the bank
works (:class:`~privacy.audit.baseline.DayPopulation`).
"""

from __future__ import annotations

import re
from datetime import datetime, tzinfo
from typing import Any

from privacy.audit.alerts import Signal
from privacy.audit.baseline import (
    ActorBaseline,
    DayPopulation,
    PeerBaseline,
    hour_days,
    peer_hour_share,
)
from privacy.audit.events import QueryEvent
from privacy.audit.explain import Explainer
from privacy.audit.lists import ListSet
from privacy.audit.privilege import PrivilegeJudge
from privacy.audit.routine import RoutineBook
from privacy.audit.rules import Rules
from privacy.audit.sql import SqlAnalysis

__all__ = ["ContextChecks"]

_NUM = re.compile(r"^(.*?)(\d{1,18})$")


class ContextChecks:
    """Routine and time judgements (the detector sets the state declared here).

    Warnings
    --------
    Not usable on its own: the attributes below are set by ``Detector.__init__``.
    """

    rules: Rules
    lists: ListSet
    _p: dict[str, dict[str, Any]]
    _on: set[str]
    _learn: float
    _thr: float
    _tz: tzinfo
    _off_cache: dict[int, bool]
    _min_class: int
    _deny_kinds: frozenset[str]
    _explainer: Explainer | None
    _routines: RoutineBook
    _priv: PrivilegeJudge
    _hour: int
    _day: int
    _pop: DayPopulation
    _rest: float
    """``OFF_HOURS.rest`` (read on every event)."""

    def _defer(self, deadline: float, kind: str, t: float, e: QueryEvent, data: Any) -> None:
        raise NotImplementedError

    _verdict: tuple[bool | None, str] = (None, "")
    _busy_day = -1

    def _judge_routine(self, e: QueryEvent, an: SqlAnalysis, st: ActorBaseline,
                       learning: bool, t: float) -> tuple[bool | None, str]:
        """The routine verdict of a heavy statement (export, mass change, ``SELECT *``
        without WHERE, many rows, a wide range over customer keys); ``(None, "")`` for
        the others. Computed once per event, before the checks read it."""
        rows = e.rows
        width: int | None = None
        heavy = bool(an.export or an.mass_change or an.select_star_no_where or (
            rows is not None and rows >= self._heavy_rows))
        if an.key_ranges:
            q = self._p["ID_ENUMERATION"]
            for kr in an.key_ranges:
                lo, hi = _int(kr.low), _int(kr.high)
                if lo is None or hi is None:
                    heavy = True
                elif hi - lo + 1 >= q["min_range"]:
                    heavy = True
                    width = max(width or 0, hi - lo + 1)
        if not heavy:
            return None, ""
        first = st.templates.see(an.fingerprint, t)
        established = learning or (first is not None and first - st.first_ts < self._learn)
        return self._routine(e, an, _peer_key(e), rows, width, established)

    _heavy_rows: float = 1000.0

    def _routine(self, e: QueryEvent, an: SqlAnalysis, peer_key: str, rows: int | None,
                 width: int | None, established: bool = False) -> tuple[bool | None, str]:
        """Judge this run of the template against the actor's routine (else its peer
        group's), then record it. A template the actor ran in its learning period
        needs one earlier day (a weekly job), others ``min_days``. See
        :class:`~privacy.audit.routine.RoutineBook`."""
        book, fp, day, hour = self._routines, an.fingerprint, self._day, self._hour
        verdict, why = book.judge(e.actor, fp, day, hour, rows, width,
                                  min_days=1 if established else None)
        if verdict is None:
            pv, pwhy = book.judge(peer_key, fp, day, hour, rows, width, exclude=e.actor)
            if pv:
                verdict, why = pv, f"peers' {pwhy}"
        book.add(e.actor, fp, day, hour, rows, width)
        book.add(peer_key, fp, day, hour, rows, width, e.actor)
        return verdict, why

    def _check_time(self, e: QueryEvent, st: ActorBaseline, peer: PeerBaseline,
                    learning: bool, hour_key: int, t: float, sig: list[Signal],
                    feats: list[float]) -> None:
        off = self._off_cache.get(hour_key)
        if off is None:
            if len(self._off_cache) > 100_000:
                self._off_cache.clear()
            off = self._off_cache[hour_key] = self.rules.calendar.is_off_hours(e.ts)
        workday = self.rules.calendar.is_workday(e.ts.astimezone(self._tz).date()) if off else True
        if (not off and self._hour >= 10 and self._busy_day != self._day
                and e.actor_kind != "service"):
            if self._pop.quiet(self._day, self._p["OFF_HOURS"]["quiet_share"]):
                off, workday = True, False  # a working day on which the bank does not work
            else:
                self._busy_day = self._day  # people work today: no need to ask again
        bucket = (0 if workday else 24) + hour_key % 24
        bit = 1 << bucket
        if off:
            feats[4] += 1
            if (not learning and "OFF_HOURS" in self._on
                    and (e.actor_kind or "human") in self._p["OFF_HOURS"]["actor_kinds"]):
                self._judge_hours(e, st, peer, bucket, bool(st.day_buckets & bit), workday, t,
                                  sig)
        if t - st.last_ts >= self._rest:
            st.period_start = t  # a new working period after a rest
        st.last_ts = t
        if not st.day_buckets & bit:
            st.day_buckets |= bit
            st.hour_days[bucket] += 1
            peer.hour_days[bucket] += 1
            role = self._pop.role_hours(e.role) if e.actor_kind != "service" else None
            if role is not None:
                role[bucket] += 1
        st.hours[bucket] += 1
        st.hours_total += 1
        peer.hours[bucket] += 1

    def _judge_hours(self, e: QueryEvent, st: ActorBaseline, peer: PeerBaseline, bucket: int,
                     today: bool, workday: bool, t: float, sig: list[Signal]) -> None:
        """OFF_HOURS: outside the calendar's working hours and outside the actor's own rota
        (learned: days it worked this hour; or the rota file).

        The share of its own activity in this hour, and its peers' and role's hours,
        excuse it on a working day (a late shift the actor takes in turn), unless the actor
        comes back after hours: ``return_gap`` or more since its last event and
        ``return_span`` or more into a working period that began after a ``rest`` (a day
        shift, then lookups at 23:00). On a day off only the days the actor itself worked
        this hour on days off excuse it, or the role working that day, which the deferred
        population check judges (a Saturday opening excuses its rota, not the Sunday)."""
        q = self._p["OFF_HOURS"]
        own = st.hour_share(bucket)
        own_days = hour_days(st.hour_days, bucket) - (1.0 if today else 0.0)
        away = t - st.last_ts
        back = (q["return_gap"] <= away < q["rest"]
                and t - st.period_start >= q["return_span"])
        if own_days >= q["own_days"] or (own >= q["self_share"] and workday and not back):
            return
        rota = self.rules.rota
        if rota is not None and rota.shift_at(e.actor, e.role, e.department,
                                              e.ts.astimezone(self._tz)) is not None:
            return
        pp = peer_hour_share(peer, bucket)
        peer_days = hour_days(peer.hour_days, bucket) - hour_days(st.hour_days, bucket)
        role = self._pop.role_hours(e.role)
        role_days = 0.0 if role is None else role[bucket] - st.hour_days[bucket]
        if workday and not back and (pp >= q["peer_share"] or peer_days >= q["peer_days"]
                                     or role_days >= q["role_days"]):
            return
        if not workday and self._bank_works(self._day, e):
            return  # the bank, or the role, already works today as on a working day
        came_back = ""
        if back:
            began = datetime.fromtimestamp(st.period_start, self._tz)
            came_back = (f"; back after {away / 3600:.1f} h away, "
                         f"{(t - st.period_start) / 3600:.1f} h after its working day began "
                         f"at {began:%H:%M}")
        sig_ = Signal("OFF_HOURS", q["score"], f"active {self.rules.calendar.describe(e.ts)}; "
                      f"{own:.1%} of own activity and {pp:.1%} of peers' falls in this hour; "
                      f"worked this hour on {max(own_days, 0):.0f} recent days, peers on "
                      f"{max(peer_days, 0):.0f}, others of role {e.role or '?'} on "
                      f"{max(role_days, 0):.0f}{came_back}" + ("" if rota is None else
                                                               "; not on the rota"))
        sig.append(sig_)
        if not workday:  # a day off for the calendar: withdrawn if the bank worked that day
            self._defer(t + q["population_wait"], "OFF_HOURS", t, e, self._day)

    def _bank_works(self, day: int, e: QueryEvent) -> bool:
        """Whether the bank, or ``e``'s role besides its actor, works on ``day`` (a
        calendar day off) as on a working day."""
        q = self._p["OFF_HOURS"]
        return self._pop.populated(day, e.role, q["population_share"], q["role_share"],
                                   exclude=e.actor)


def _peer_key(e: QueryEvent) -> str:
    return f"\x00peer\x1f{e.role or '?'}\x1f{e.department or '?'}"


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    m = _NUM.match(text)
    return int(m.group(2)) if m is not None else None
