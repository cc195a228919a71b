"""The streaming per-event scorer: rules + lists + baselines fused into a 0-100 risk.

:meth:`Detector.score` takes one :class:`~privacy.audit.events.QueryEvent` at a time
(events of one actor in time order), analyses its SQL (cached by template), checks the
lists, compares it with the actor's and its peer group's bounded baselines
(:mod:`privacy.audit.baseline`), then updates them. Each check that fires is a
:class:`Signal` with a scenario code, a 0-100 score and a reason **with the numbers**
("read 412 distinct customers in 1 h; own 30-day p99 is 9; peer p99 is 14"). The
event's risk is the noisy-OR of its signals, ``100 * (1 - prod(1 - s/100))``.

Signals at or above ``alert_threshold`` become alerts, grouped per actor and scenario
while events keep coming within the scenario's ``window``. A more specific scenario
*subsumes* generic ones (rules ``subsumes``): an injection's errors and novel template
join the injection alert as supporting codes instead of raising their own.

Some judgements need what happens next. A look-up of a watch-listed customer is only an
incident if nothing explains it within the explanation window (:mod:`privacy.audit.explain`:
a record naming the customer written by the same actor, session or department, the
actor's portfolio); activity on a calendar day off is only off hours if the bank did not
work that day. Such signals raise their alert at once, *provisionally*: when the window
has passed (or at :meth:`Detector.alerts`, the end of the data) the alert is confirmed,
or the signal is withdrawn from it and an alert left with nothing is dropped. Heavy
statements (ranges over customer keys, bulk reads, exports, mass changes) are judged
against the account's learned routine (:mod:`privacy.audit.routine`), hours against the
actor's, its peers' and its role's rotas and the rota file (:mod:`privacy.audit.rota`),
privilege changes by who, to whom, what and when (:mod:`privacy.audit.privilege`).

Detection reads only what an event carries, the catalogue, the rules and the lists.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from datetime import datetime, timezone
from heapq import heappop, heappush
from typing import Any

from privacy.audit.alerts import (
    _EVIDENCE_CAP,
    _RANK,
    MODEL_VERSION,
    PRIORITY,
    Alert,
    EventScore,
    Signal,
)
from privacy.audit.baseline import ActorBaseline, DayPopulation, PeerBaseline
from privacy.audit.catalog import Catalog
from privacy.audit.detect_checks import _CLASS_RANK, DetectorChecks, _peer_q
from privacy.audit.events import QueryEvent
from privacy.audit.explain import Explainer
from privacy.audit.lists import ListSet
from privacy.audit.privilege import PrivilegeJudge
from privacy.audit.routine import RoutineBook
from privacy.audit.rules import SCENARIOS, Rules
from privacy.audit.sql import Lexed, SqlAnalyzer

__all__ = ["Detector", "Signal", "Alert", "EventScore", "PRIORITY", "MODEL_VERSION"]

_NO_VERDICT: tuple[bool | None, str] = (None, "")


class Detector(DetectorChecks):
    """Streaming detector.

    Parameters
    ----------
    rules:
        Thresholds and calendar (default :meth:`Rules.default`).
    lists:
        Allow / deny / watch lists (default: none).
    catalog:
        Schema catalogue: sensitive and customer-key columns.
    dialect:
        sqlglot dialect of the statements (``None``: try several).

    Warnings
    --------
    Feed each actor's events in time order; out-of-order events of one actor are scored
    but may open windows late. State is in memory: one detector per process.
    """

    def __init__(self, *, rules: Rules | None = None, lists: ListSet | None = None,
                 catalog: Catalog | None = None, dialect: str | None = None) -> None:
        self.rules = rules or Rules.default(catalog)
        self.lists = lists or ListSet()
        self.catalog = catalog
        self.analyzer = SqlAnalyzer(catalog=catalog, dialect=dialect)
        self.model_version = MODEL_VERSION
        self._actors: dict[str, ActorBaseline] = {}
        self._peers: dict[tuple[str, str], PeerBaseline] = {}
        self._open: dict[tuple[str, str], Alert] = {}
        self._alerts: dict[str, Alert] = {}
        self._off_cache: dict[int, bool] = {}
        self.day_features: dict[tuple[str, int], list[float]] = {}
        self.events_scored = 0
        r = self.rules
        self._learn = r.learning_days * 86400.0
        self._learn_days = (math.ceil(r.learning_days * 5 / 7) if r.learning_active_days is None
                            else r.learning_active_days)
        self._merge_within = r.merge_within
        self._thr = r.alert_threshold
        self._p = {c: r.scenarios[c] for c in SCENARIOS}
        self._rest = float(self._p["OFF_HOURS"]["rest"])
        self._on = {c for c in SCENARIOS if r.enabled(c)}
        self._tz = r.calendar.tz
        self._subsumed_by: dict[str, list[str]] = {}
        for parent, kids in r.subsumes.items():
            for kid in kids:
                self._subsumed_by.setdefault(kid, []).append(parent)
        self._min_class = _CLASS_RANK[str(self._p["SENSITIVE_FIRST_TOUCH"]["min_class"])]
        self._deny_kinds = frozenset(k for k in ("actor", "source_ip", "client", "fingerprint")
                                     if self.lists.has_kind(k, "deny"))
        self._explainer: Explainer | None = None
        if self.lists.has_kind("customer", "watch") and "WATCHLIST" in self._on:
            self._explainer = Explainer(r.explain, self._watched)
        self._explain_reads = any("read" in x.access for x in r.explain.rules)
        # provisional signals (WATCHLIST awaiting an explanation, OFF_HOURS on a day off
        # awaiting the day's population): (deadline, seq, code, t, event, data); their
        # alerts are raised at once and confirmed or withdrawn when the deadline passes
        self._pending: list[tuple[float, int, str, float, QueryEvent, Any]] = []
        self._first_t: float | None = None
        """The first event scored: the deployment's own warm-up runs from it."""
        self._seq = 0
        self._prov: dict[tuple[str, str], str] = {}
        self._prov_now: set[str] = set()
        ro = r.routines
        self._routines = RoutineBook(min_days=int(ro["min_days"]),
                                     hour_slack=int(ro["hour_slack"]), factor=ro["factor"])
        pc = self._p["PRIVILEGE_CHANGE"]
        self._priv = PrivilegeJudge(r.privileges, r.calendar, score=pc["score"],
                                    routine_score=pc["routine_score"],
                                    off_window_score=pc["off_window_score"])
        self._hour = 0
        self._day = 0
        self._heavy_rows = min(self._p["BULK_EXPORT"]["min_rows"],
                               self._p["MASS_MODIFY"]["min_rows"])
        # humans per local day (and role): a day the bank or a role works is a working day
        self._pop = DayPopulation()

    # ------------------------------------------------------------------ public
    def run(self, events: Iterable[QueryEvent]) -> list[Alert]:
        """Score every event; return all alerts."""
        for e in events:
            self.score(e)
        return self.alerts()

    def alerts(self) -> list[Alert]:
        """Alerts raised so far, oldest first.

        Judgements still waiting for their window (an access to a watch-listed customer
        whose explanation may still come, activity on a day off that may turn out to be a
        working day for the whole bank) are made now, as at the end of the data."""
        self._resolve(None)
        return sorted(self._alerts.values(), key=lambda a: (a.first_ts, a.alert_id))

    def _watched(self, cid: str, when: datetime) -> bool:
        """Whether ``cid`` is on a watch list in force."""
        return any(not m.expired for m in self.lists.lookup("customer", cid, when, "watch"))

    def _defer(self, deadline: float, kind: str, t: float, e: QueryEvent, data: Any) -> None:
        """Judge the provisional ``kind`` signal of ``e`` at ``deadline``."""
        self._seq += 1
        self._prov_now.add(kind)
        heappush(self._pending, (deadline, self._seq, kind, t, e, data))

    def _resolve(self, now: float | None) -> None:
        """Make the deferred judgements whose deadline is before ``now`` (None: all)."""
        pending = self._pending
        while pending and (now is None or pending[0][0] <= now):
            _, _, kind, t, e, data = heappop(pending)
            keep = True
            if kind == "WATCHLIST":
                cid, list_name, new, learning = data
                ex = self._explainer
                assert ex is not None
                if ex.explain(e, cid, t, final=True) is not None:
                    if new:
                        ex.credit(e.actor, list_name)
                    keep = False
                else:
                    q = self._p["WATCHLIST"]
                    st = self._actors.get(e.actor)
                    # in the warm-up a new actor's look-up is forgiven once it serves
                    # this list with records; one that never has (an insider's first
                    # days) alerts. In the deployment's own warm-up every portfolio is
                    # still being learned, so the actor has until its end to show it
                    if learning:
                        keep = not ex.serves(e.actor, list_name)
                        until = (self._first_t or t) + self._learn
                        if keep and now is not None and t < until and now < until:
                            self._defer(until, kind, t, e, data)  # judged when it ends
                            continue
                    else:
                        keep = st is None or ex.habitual(
                            e.actor, list_name, st.active_days, per_day=q["routine_per_day"],
                            explained=q["routine_explained"]) is None
            else:
                keep = not self._bank_works(data, e)
            self._settle(kind, e.event_id, keep)

    def _settle(self, code: str, event_id: str, keep: bool) -> None:
        """Confirm or withdraw the provisional ``code`` signal of ``event_id`` in its alert;
        an alert left with no scenario is dropped."""
        aid = self._prov.pop((code, event_id), None)
        a = None if aid is None else self._alerts.get(aid)
        if a is None:
            return
        waiting = a._pending.get(code)
        if waiting is not None:
            waiting.discard(event_id)
        if keep:
            a._confirmed.add(code)
            return
        if event_id in a._only:
            a._only.discard(event_id)
            if event_id in a.event_ids:
                a.event_ids.remove(event_id)
            a.event_count -= 1
        if code in a._confirmed or waiting:
            return
        if code in a.scenarios:
            a.scenarios.remove(code)
            a.reasons.pop(code, None)
        if not a.scenarios:
            del self._alerts[a.alert_id]
            for key, open_ in list(self._open.items()):
                if open_ is a:
                    del self._open[key]

    def _boost(self, e: QueryEvent) -> float:
        if self.lists.has_kind("actor", "watch"):
            for m in self.lists.lookup("actor", e.actor, e.ts, "watch"):
                if not m.expired:
                    return 10.0
        return 0.0

    def score(self, event: QueryEvent, lexed: Lexed | None = None) -> EventScore:
        """Score one event, update the baselines and the alerts.

        The SQL analysed is :attr:`QueryEvent.bound_statement` (bind parameters in their
        placeholders). ``lexed`` is ``self.analyzer.lex(event.bound_statement)`` when a
        caller computed it already (the ingest process does, so the scoring process need
        not)."""
        self.events_scored += 1
        t = event.ts.timestamp()
        if self._first_t is None:
            self._first_t = t
        if self._pending and self._pending[0][0] <= t:
            self._resolve(t)
        if self._prov_now:
            self._prov_now = set()
        an = self.analyzer.analyze(event.bound_statement, lexed)
        st = self._actors.get(event.actor)
        if st is None:
            st = self._actors[event.actor] = ActorBaseline(first_ts=t)
            self._priv.note_actor(event.actor, event.department)
        pkey = (event.role or "?", event.department or "?")
        peer = self._peers.get(pkey)
        if peer is None:
            peer = self._peers[pkey] = PeerBaseline()
        peer.members.add(event.actor)
        off = event.ts.utcoffset() if self._tz is timezone.utc else self._tz.utcoffset(event.ts)
        local = t + (off.total_seconds() if off is not None else 0.0)
        hour_key = int(local // 3600)
        day = int(local // 86400)
        if hour_key != st.cur_hour:
            self._close_hour(st, peer, hour_key)
        human = event.actor_kind != "service"
        if day != st.cur_day:
            self._close_day(event.actor, st, peer, day)
            st.active_days += 1
            pop = self._pop
            if day > pop.day:
                pop.roll(day, self.rules.calendar.is_workday(
                    event.ts.astimezone(self._tz).date()))
            if human and day == pop.day:
                pop.add(event.actor, event.role)
        # a person also needs enough working days (a first week cut short by a holiday is
        # no baseline); a job account's schedule is learned in calendar time (a weekly job)
        learning = t - st.first_ts < self._learn or (human and st.active_days < self._learn_days)
        ok = event.status in (None, "ok")
        self._hour = hour_key % 24
        self._day = day
        ti = an.template_info
        if ((ti.kind != "select" or self._explain_reads) and ok and an.customer_ids
                and self._explainer is not None):
            self._explainer.observe(event, an, t)
        rows = event.rows
        if ok and (ti.export or ti.mass_change or ti.select_star_no_where or an.key_ranges
                   or (rows is not None and rows >= self._heavy_rows)):
            self._verdict = self._judge_routine(event, an, st, learning, t)
        else:
            self._verdict = _NO_VERDICT
        sig: list[Signal] = []
        feats = self.day_features.get((event.actor, day))
        if feats is None:
            feats = self.day_features[(event.actor, day)] = [0.0] * 8
        feats[0] += 1

        self._check_lists(event, an, sig)
        self._check_statement(event, an, st, peer, learning, human, ok, t, sig)
        if ok and (an.customer_ids or an.key_ranges):
            self._check_customers(event, an, st, peer, learning, human, t, sig)
        self._check_time(event, st, peer, learning, hour_key, t, sig, feats)
        if ok:
            self._check_columns(event, an, st, peer, learning, t, sig, feats)
        self._check_source(event, an, st, peer, learning, human, t, sig, feats)
        if not ok:
            feats[3] += 1
            self._check_errors(event, st, t, learning, sig)
        if event.rows is not None:
            feats[2] += event.rows
        if not sig:
            return EventScore(event.event_id, 0, ())
        boost = self._boost(event)
        prod = 1.0
        for s in sig:
            prod *= 1 - min(s.score, 100.0) / 100.0
        risk = min(100, int(round(100 * (1 - prod) + boost)))
        feats[7] = max(feats[7], risk)
        ids = self._alert(event, t, sig, boost)
        return EventScore(event.event_id, risk, tuple(sig), ids)

    # ------------------------------------------------------------------ windows
    def _close_hour(self, st: ActorBaseline, peer: PeerBaseline, hour_key: int) -> None:
        p = self._p["MANY_CUSTOMERS"]
        if st.cur_hour >= 0:
            n = len(st.hour_set)
            # an hour far above the own and peers' p99 is not learned, flagged or not, so
            # a slow pull spread over hours cannot raise its own threshold
            if not st.hour_flagged and (st.hour_customers.total < 20
                                        or n <= p["factor"] * max(st.hour_ref, 1.0)):
                st.hour_customers.add(n)
            peer.hour_customers.add(n)
        st.cur_hour = hour_key
        st.hour_set = type(st.hour_set)()
        st.hour_flagged = False
        self_p99 = st.hour_customers.quantile(0.99)
        peer_p99 = _peer_q(peer, peer.hour_customers)
        st.hour_ref = max(self_p99, peer_p99)
        st.hour_threshold = max(p["min_customers"], p["factor"] * st.hour_ref)

    def _close_day(self, actor: str, st: ActorBaseline, peer: PeerBaseline, day: int) -> None:
        if st.cur_day >= 0:
            n = len(st.day_set)
            st.recent_days.append((st.cur_day, n, st.day_flagged))
            if not st.day_flagged:
                st.day_customers.update(n)
            peer.day_customers.add(n)
            feats = self.day_features.get((actor, st.cur_day))
            if feats is not None:
                feats[1] = n
            st.decay_day(day - st.cur_day)
        peer.new_day(day)
        st.cur_day = day
        st.day_set = type(st.day_set)()
        st.day_flagged = False
        p = self._p["SLOW_DRIP"]
        ew = st.day_customers
        if ew.n < p["min_history"]:
            st.day_threshold = math.inf
        else:
            # counts are at least Poisson-dispersed: sd >= sqrt(mean)
            sd = max(ew.sd, math.sqrt(max(ew.mean, 1.0)))
            st.day_threshold = max(p["min_daily"], p["ratio"] * ew.mean,
                                   ew.mean + p["sigmas"] * sd)

    # ------------------------------------------------------------------ alerts
    def _alert(self, e: QueryEvent, t: float, sig: list[Signal], boost: float) -> tuple[str, ...]:
        fired = sorted((s for s in sig if s.score >= self._thr), key=lambda s: _RANK[s.code])
        touched: list[str] = []
        prov = self._prov_now
        brought: dict[str, list[str]] = {}
        for s in fired:
            target = None
            for parent in self._subsumed_by.get(s.code, ()):
                a = self._open.get((e.actor, parent))
                if a is not None and t - a._last <= self._merge_within:
                    target = a
                    break
            if target is None:
                a = self._open.get((e.actor, s.code))
                if a is not None and t - a._last <= self._p[s.code]["window"]:
                    target = a
            if target is None:
                target = self._new_alert(e, s.code, t)
            self._attach(target, e, t, s, boost)
            if target.alert_id not in touched:
                touched.append(target.alert_id)
            brought.setdefault(target.alert_id, []).append(s.code)
            if s.code in prov:
                self._prov[(s.code, e.event_id)] = target.alert_id
                target._pending.setdefault(s.code, set()).add(e.event_id)
            else:
                target._confirmed.add(s.code)
        if prov:
            for aid, codes in brought.items():
                a = self._alerts.get(aid)  # None: merged into a later one meanwhile
                if a is not None and all(c in prov for c in codes):
                    a._only.add(e.event_id)
        return tuple(touched)

    def _new_alert(self, e: QueryEvent, code: str, t: float) -> Alert:
        digest = hashlib.blake2b(f"{e.actor}\x1f{code}\x1f{e.event_id}".encode(),
                                 digest_size=8).hexdigest()
        a = Alert(f"AL-{digest}", e.actor, [code], 0.0, {}, [], 0, e.ts, e.ts, e.ts,
                  self.rules.rule_version, self.model_version, e.actor_kind, e.role,
                  e.department, t)
        for kid in self.rules.subsumes.get(code, ()):
            old = self._open.get((e.actor, kid))
            if old is not None and t - old._last <= self._merge_within:
                del self._open[(e.actor, kid)]
                self._alerts.pop(old.alert_id, None)
                self._merge(a, old)
        self._open[(e.actor, code)] = a
        self._alerts[a.alert_id] = a
        return a

    @staticmethod
    def _merge(a: Alert, old: Alert) -> None:
        for c in old.scenarios:
            if c not in a.scenarios:
                a.scenarios.append(c)
        for c, r in old.reasons.items():
            a.reasons.setdefault(c, r)
        a.event_ids = (old.event_ids + a.event_ids)[:_EVIDENCE_CAP]
        a.event_count += old.event_count
        a.first_ts = min(a.first_ts, old.first_ts)
        a.detected_ts = min(a.detected_ts, old.detected_ts)
        a.score = max(a.score, old.score)

    @staticmethod
    def _attach(a: Alert, e: QueryEvent, t: float, s: Signal, boost: float) -> None:
        if s.code not in a.scenarios:
            a.scenarios.append(s.code)
        a.reasons[s.code] = s.reason
        if not a.event_ids or a.event_ids[-1] != e.event_id:
            a.event_count += 1
            if len(a.event_ids) < _EVIDENCE_CAP:
                a.event_ids.append(e.event_id)
        a.last_ts = max(a.last_ts, e.ts)
        a._last = max(a._last, t)
        score = s.score + boost + 5 * (len(a.scenarios) - 1)
        a.score = min(100.0, max(a.score, score))


def now_utc() -> datetime:
    """The current time (UTC)."""
    return datetime.now(timezone.utc)
