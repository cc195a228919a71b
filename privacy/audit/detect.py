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

Detection reads only what an event carries, the catalogue, the rules and the lists.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from privacy.audit.baseline import ActorBaseline, PeerBaseline, hash64, peer_hour_share
from privacy.audit.catalog import Catalog
from privacy.audit.events import QueryEvent
from privacy.audit.lists import ListSet
from privacy.audit.rules import SCENARIOS, Rules
from privacy.audit.sql import Lexed, SqlAnalysis, SqlAnalyzer

__all__ = ["Detector", "Signal", "Alert", "EventScore", "PRIORITY", "MODEL_VERSION"]

MODEL_VERSION = "baseline-sketch-1"
PRIORITY = ("DENY_LIST", "INJECTION", "PRIVILEGE_CHANGE", "MASS_MODIFY", "SERVICE_INTERACTIVE",
            "WATCHLIST", "ID_ENUMERATION", "BULK_EXPORT", "MANY_CUSTOMERS", "SLOW_DRIP",
            "SENSITIVE_FIRST_TOUCH", "NEW_SOURCE", "OFF_HOURS", "ERROR_BURST", "NOVEL_TEMPLATE",
            "UNPARSEABLE")
_RANK = {c: i for i, c in enumerate(PRIORITY)}
_CLASS_RANK = {"C1": 1, "C2": 2, "C3": 3}
_NUM = re.compile(r"^(.*?)(\d{1,18})$")
_EVIDENCE_CAP = 1000


@dataclass(frozen=True, slots=True)
class Signal:
    """One check that fired on one event."""

    code: str
    score: float
    reason: str


@dataclass(frozen=True, slots=True)
class EventScore:
    """The result of scoring one event."""

    event_id: str
    score: int
    signals: tuple[Signal, ...]
    alert_ids: tuple[str, ...] = ()


@dataclass
class Alert:
    """Signals of one actor and scenario grouped over a time window.

    ``scenarios[0]`` is the primary scenario; later codes were folded in (subsumed).
    ``event_ids`` holds at most 1,000 evidence ids; ``event_count`` counts them all.
    """

    alert_id: str
    actor: str
    scenarios: list[str]
    score: float
    reasons: dict[str, str]
    event_ids: list[str]
    event_count: int
    first_ts: datetime
    last_ts: datetime
    detected_ts: datetime
    rule_version: str
    model_version: str
    actor_kind: str | None = None
    role: str | None = None
    department: str | None = None
    _last: float = field(default=0.0, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (reasons as a list, timestamps ISO 8601)."""
        return {"alert_id": self.alert_id, "actor": self.actor, "scenarios": list(self.scenarios),
                "score": int(round(self.score)),
                "reasons": [self.reasons[c] for c in self.scenarios if c in self.reasons],
                "event_ids": list(self.event_ids), "event_count": self.event_count,
                "first_ts": self.first_ts.isoformat(), "last_ts": self.last_ts.isoformat(),
                "detected_ts": self.detected_ts.isoformat(), "rule_version": self.rule_version,
                "model_version": self.model_version, "actor_kind": self.actor_kind,
                "role": self.role, "department": self.department}


def _fmt(x: float) -> str:
    return f"{int(round(x)):,}"


class Detector:
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
        self._merge_within = r.merge_within
        self._thr = r.alert_threshold
        self._p = {c: r.scenarios[c] for c in SCENARIOS}
        self._on = {c for c in SCENARIOS if r.enabled(c)}
        self._tz = r.calendar.tz
        self._subsumed_by: dict[str, list[str]] = {}
        for parent, kids in r.subsumes.items():
            for kid in kids:
                self._subsumed_by.setdefault(kid, []).append(parent)
        self._min_class = _CLASS_RANK[str(self._p["SENSITIVE_FIRST_TOUCH"]["min_class"])]

    # ------------------------------------------------------------------ public
    def run(self, events: Iterable[QueryEvent]) -> list[Alert]:
        """Score every event; return all alerts."""
        for e in events:
            self.score(e)
        return self.alerts()

    def alerts(self) -> list[Alert]:
        """Alerts raised so far, oldest first."""
        return sorted(self._alerts.values(), key=lambda a: (a.first_ts, a.alert_id))

    def score(self, event: QueryEvent, lexed: Lexed | None = None) -> EventScore:
        """Score one event, update the baselines and the alerts.

        ``lexed`` is ``self.analyzer.lex(event.statement)`` when a caller computed it
        already (the ingest process does, so the scoring process need not)."""
        self.events_scored += 1
        t = event.ts.timestamp()
        an = self.analyzer.analyze(event.statement, lexed)
        st = self._actors.get(event.actor)
        if st is None:
            st = self._actors[event.actor] = ActorBaseline(first_ts=t)
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
        if day != st.cur_day:
            self._close_day(event.actor, st, peer, day)
        learning = t - st.first_ts < self._learn
        human = event.actor_kind != "service"
        ok = event.status in (None, "ok")
        sig: list[Signal] = []
        feats = self.day_features.get((event.actor, day))
        if feats is None:
            feats = self.day_features[(event.actor, day)] = [0.0] * 8
        feats[0] += 1

        self._check_lists(event, an, sig)
        self._check_statement(event, an, st, peer, learning, human, ok, t, sig)
        if ok and (an.customer_ids or an.key_ranges):
            self._check_customers(event, an, st, peer, learning, human, t, sig)
        self._check_time(event, st, peer, learning, hour_key, sig, feats)
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
        boost = 0.0
        if self.lists.has_kind("actor"):
            for m in self.lists.lookup("actor", event.actor, event.ts, "watch"):
                if not m.expired:
                    boost = 10.0
        prod = 1.0
        for s in sig:
            prod *= 1 - min(s.score, 100.0) / 100.0
        risk = min(100, int(round(100 * (1 - prod) + boost)))
        feats[7] = max(feats[7], risk)
        ids = self._alert(event, t, sig, boost)
        return EventScore(event.event_id, risk, tuple(sig), ids)

    # ------------------------------------------------------------------ windows
    def _close_hour(self, st: ActorBaseline, peer: PeerBaseline, hour_key: int) -> None:
        if st.cur_hour >= 0:
            n = len(st.hour_set)
            if not st.hour_flagged:
                st.hour_customers.add(n)
            peer.hour_customers.add(n)
        st.cur_hour = hour_key
        st.hour_set = type(st.hour_set)()
        st.hour_flagged = False
        p = self._p["MANY_CUSTOMERS"]
        self_p99 = st.hour_customers.quantile(0.99)
        peer_p99 = _peer_q(peer, peer.hour_customers)
        st.hour_threshold = max(p["min_customers"], p["factor"] * max(self_p99, peer_p99))

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

    # ------------------------------------------------------------------ checks
    def _check_lists(self, e: QueryEvent, an: SqlAnalysis, sig: list[Signal]) -> None:
        if "DENY_LIST" not in self._on or not self.lists:
            return
        for kind, value in (("actor", e.actor), ("source_ip", e.source_ip),
                            ("client", e.client), ("fingerprint", an.fingerprint)):
            if not self.lists.has_kind(kind):
                continue
            for m in self.lists.lookup(kind, value, e.ts, "deny"):
                score = self._p["DENY_LIST"]["score"] * (0.5 if m.expired else 1.0)
                note = f" (list expired on {m.entry.expires})" if m.expired else ""
                sig.append(Signal("DENY_LIST", score, f"{kind.replace('_', ' ')} {value} is on "
                                  f"deny list '{m.entry.name}' ({m.entry.reason}){note}"))

    def _allowed(self, e: QueryEvent, code: str, an: SqlAnalysis | None = None) -> tuple[
            bool, str]:
        if not self.lists:
            return False, ""
        note = ""
        for kind, value in (("actor", e.actor), ("source_ip", e.source_ip),
                            ("client", e.client),
                            ("fingerprint", an.fingerprint if an is not None else None)):
            if not self.lists.has_kind(kind):
                continue
            valid, expired = self.lists.allows(kind, value, code, e.ts)
            if valid is not None:
                return True, ""
            if expired is not None:
                note = (f"; allow list '{expired.name}' matched but expired on "
                        f"{expired.expires}, so it was not applied")
        return False, note

    def _check_statement(self, e: QueryEvent, an: SqlAnalysis, st: ActorBaseline,
                         peer: PeerBaseline, learning: bool, human: bool, ok: bool, t: float,
                         sig: list[Signal]) -> None:
        p = self._p
        shapes = [s for s in an.injection if s != "trailing_comment"]
        if "INJECTION" in self._on and (shapes or an.stacked or an.injection):
            what = ", ".join(shapes) or ("stacked statements" if an.stacked else
                                         "trailing comment")
            score = p["INJECTION"]["score"] - (0 if shapes else 5 if an.stacked else 45)
            sig.append(Signal("INJECTION", score, f"injection-shaped statement ({what}) by "
                              f"{e.actor}, status {e.status or 'unknown'}: "
                              f"{an.template[:160]}"))
        if an.unparseable and "UNPARSEABLE" in self._on:
            sig.append(Signal("UNPARSEABLE", p["UNPARSEABLE"]["score"],
                              "statement could not be parsed by any SQL dialect (possible "
                              "obfuscation or a tool's own syntax)"))
        if an.privilege_change and "PRIVILEGE_CHANGE" in self._on:
            allowed, note = self._allowed(e, "PRIVILEGE_CHANGE", an)
            if not allowed:
                self_grant = re.search(rf"\b{re.escape(e.actor.lower())}\b",
                                       e.statement.lower()) is not None
                score = min(100.0, p["PRIVILEGE_CHANGE"]["score"] + (10 if self_grant else 0))
                sig.append(Signal("PRIVILEGE_CHANGE", score,
                                  f"privilege change by {e.actor} (role {e.role or '?'})"
                                  f"{', granting to itself' if self_grant else ''}, status "
                                  f"{e.status or 'unknown'}: {an.template[:160]}{note}"))
        first = st.templates.see(an.fingerprint, t)
        routine = (not human) and (learning or (first is not None
                                                and first - st.first_ts < self._learn))
        kind = an.kind
        rows = e.rows
        if kind in ("update", "delete", "ddl") and "MASS_MODIFY" in self._on:
            q = p["MASS_MODIFY"]
            if an.mass_change and not routine:
                sig.append(Signal("MASS_MODIFY", q["score"],
                                  f"{kind.upper()} without WHERE (or TRUNCATE) on "
                                  f"{', '.join(an.tables) or '?'}"
                                  f"{'' if rows is None else f' affecting {_fmt(rows)} rows'}"))
            elif rows is not None and rows >= q["min_rows"] and kind != "ddl":
                own = st.modify_rows.quantile(0.99)
                pp = _peer_q(peer, peer.modify_rows)
                limit = max(q["min_rows"], q["factor"] * max(own, pp))
                if rows > limit and not (learning and not human):
                    sig.append(Signal("MASS_MODIFY", q["score"],
                                      f"{kind.upper()} affected {_fmt(rows)} rows of "
                                      f"{', '.join(an.tables)}; own 30-day p99 is {_fmt(own)}; "
                                      f"peer p99 is {_fmt(pp)}"))
            if rows is not None and ok and kind != "ddl" and not (
                    sig and sig[-1].code == "MASS_MODIFY"):
                st.modify_rows.add(rows)
                peer.modify_rows.add(rows)
        if kind in ("select", "copy") and "BULK_EXPORT" in self._on:
            self._check_bulk(e, an, st, peer, learning, human, ok, routine, sig)

    def _check_bulk(self, e: QueryEvent, an: SqlAnalysis, st: ActorBaseline,
                    peer: PeerBaseline, learning: bool, human: bool, ok: bool, routine: bool,
                    sig: list[Signal]) -> None:
        q = self._p["BULK_EXPORT"]
        rows = e.rows
        n = "" if rows is None else f" ({_fmt(rows)} rows)"
        if an.export and not routine:
            sig.append(Signal("BULK_EXPORT", q["score"], f"export to a file ({an.export}) of "
                              f"{', '.join(an.tables) or '?'}{n}"))
        elif (an.select_star_no_where and an.sensitive_columns and not routine
              and (rows is None or rows >= q["min_rows"])):
            sig.append(Signal("BULK_EXPORT", q["score"] - 5, "SELECT * without WHERE on "
                              f"{', '.join(an.tables)} (columns up to {an.max_class}){n}"))
        elif rows is not None and rows >= q["min_rows"]:
            own = st.rows.quantile(0.99)
            pp = _peer_q(peer, peer.rows)
            limit = max(q["min_rows"], q["factor"] * max(own, pp))
            hard = human and rows >= q["hard_rows"]
            if (rows > limit and not learning) or hard:
                score = min(99.0, q["score"] + 5 * math.log10(max(rows / limit, 1.0)))
                sig.append(Signal("BULK_EXPORT", score, f"one query returned {_fmt(rows)} rows "
                                  f"of {', '.join(an.tables) or '?'}; own 30-day p99 is "
                                  f"{_fmt(own)}; peer p99 is {_fmt(pp)}"))
                return
        if rows is not None and ok:
            st.rows.add(rows)
            peer.rows.add(rows)

    def _check_customers(self, e: QueryEvent, an: SqlAnalysis, st: ActorBaseline,
                         peer: PeerBaseline, learning: bool, human: bool, t: float,
                         sig: list[Signal]) -> None:
        p = self._p
        hs, ds = st.hour_set, st.day_set
        qe = p["ID_ENUMERATION"]
        run_max = 0
        watch = (self.lists.has_kind("customer") and "WATCHLIST" in self._on
                 and (e.actor_kind or "human") in p["WATCHLIST"].get(
                     "actor_kinds", frozenset({"human"})))
        for cid in an.customer_ids:
            h = hash64(cid)
            hs.add(h)
            ds.add(h)
            m = _NUM.match(cid)
            if m is not None:
                run = st.enum_step(m.group(1), int(m.group(2)), t, qe["within"],
                                   int(qe["max_gap"]))
                run_max = max(run_max, run)
            if watch:
                self._check_watch(e, cid, sig)
        extra = an.customer_id_count - len(an.customer_ids)
        if extra > 0:
            hs.extra += extra
            ds.extra += extra
        if "ID_ENUMERATION" in self._on:
            if run_max >= qe["min_run"]:
                sig.append(Signal("ID_ENUMERATION", qe["score"], f"looked up {run_max} "
                                  "consecutive customer ids within "
                                  f"{int(qe['within'] // 60)} min"))
            for kr in an.key_ranges:
                lo, hi = _int(kr.low), _int(kr.high)
                width = (hi - lo + 1) if lo is not None and hi is not None else None
                if width is None or width >= qe["min_range"]:
                    span = "an open-ended range" if width is None else f"{_fmt(width)} ids"
                    sig.append(Signal("ID_ENUMERATION", qe["score"], f"range predicate on "
                                      f"{kr.column} covering {span} ({kr.low}..{kr.high})"
                                      f"{'' if e.rows is None else f', {_fmt(e.rows)} rows'}"))
        if learning:
            return
        n_hour = len(hs)
        if "MANY_CUSTOMERS" in self._on and n_hour > st.hour_threshold:
            st.hour_flagged = True
            q = p["MANY_CUSTOMERS"]
            own = st.hour_customers.quantile(0.99)
            pp = _peer_q(peer, peer.hour_customers)
            sig.append(Signal("MANY_CUSTOMERS", q["score"], f"read {_fmt(n_hour)} distinct "
                              f"customers in 1 h; own 30-day p99 is {_fmt(own)}; "
                              f"peer p99 is {_fmt(pp)}"))
        n_day = len(ds)
        if "SLOW_DRIP" in self._on and n_day > st.day_threshold:
            st.day_flagged = True
            q = p["SLOW_DRIP"]
            prev = list(st.recent_days)[-int(q["of_last"]) + 1:]
            elevated = [c for _, c, f in prev if f]
            if len(elevated) + 1 >= q["days"]:
                ew = st.day_customers
                days = ", ".join(_fmt(c) for c in elevated)
                sig.append(Signal("SLOW_DRIP", q["score"], f"read {_fmt(n_day)} distinct "
                                  f"customers today after {days} on {len(elevated)} of the "
                                  f"previous {len(prev)} active days; own typical day is "
                                  f"{_fmt(ew.mean)} ± {_fmt(ew.sd)}; threshold "
                                  f"{_fmt(st.day_threshold)}"))

    def _check_watch(self, e: QueryEvent, cid: str, sig: list[Signal]) -> None:
        q = self._p["WATCHLIST"]
        for m in self.lists.lookup("customer", cid, e.ts, "watch"):
            allowed, note = self._allowed(e, "WATCHLIST")
            if allowed:
                continue
            if m.expired:
                sig.append(Signal("WATCHLIST", q.get("expired_score", 40),
                                  f"looked up a customer on watch list '{m.entry.name}', "
                                  f"which expired on {m.entry.expires} (not in force){note}"))
            else:
                sig.append(Signal("WATCHLIST", q["score"], f"looked up a customer on watch "
                                  f"list '{m.entry.name}' ({m.entry.reason}; owner "
                                  f"{m.entry.owner}); no allow-list entry for {e.actor}{note}"))

    def _check_time(self, e: QueryEvent, st: ActorBaseline, peer: PeerBaseline,
                    learning: bool, hour_key: int, sig: list[Signal], feats: list[float]) -> None:
        off = self._off_cache.get(hour_key)
        if off is None:
            if len(self._off_cache) > 100_000:
                self._off_cache.clear()
            off = self._off_cache[hour_key] = self.rules.calendar.is_off_hours(e.ts)
        workday = self.rules.calendar.is_workday(e.ts.astimezone(self._tz).date()) if off else True
        bucket = (0 if workday else 24) + hour_key % 24
        q = self._p["OFF_HOURS"]
        if off:
            feats[4] += 1
            if (not learning and "OFF_HOURS" in self._on
                    and (e.actor_kind or "human") in q["actor_kinds"]):
                own = st.hour_share(bucket)
                pp = peer_hour_share(peer, bucket)
                if own < q["self_share"] and pp < q["peer_share"]:
                    sig.append(Signal("OFF_HOURS", q["score"], f"active "
                                      f"{self.rules.calendar.describe(e.ts)}; "
                                      f"{own:.1%} of own activity and {pp:.1%} of peers' falls "
                                      "in this hour"))
        st.hours[bucket] += 1
        st.hours_total += 1
        peer.hours[bucket] += 1

    def _check_columns(self, e: QueryEvent, an: SqlAnalysis, st: ActorBaseline,
                       peer: PeerBaseline, learning: bool, t: float, sig: list[Signal],
                       feats: list[float]) -> None:
        q = self._p["SENSITIVE_FIRST_TOUCH"]
        for sc in an.sensitive_columns:
            if _CLASS_RANK.get(sc.pfi_class, 0) < self._min_class:
                continue
            feats[5] += 1
            col = sc.column
            first = st.columns.see(col, t)
            fresh = first is None or (first - st.first_ts >= self._learn
                                      and t - first < q["probation"])
            readers, others = peer.column_share(col, e.actor)
            if learning or not fresh or "SENSITIVE_FIRST_TOUCH" not in self._on:
                peer.add_column(col, e.actor)
                continue
            share = readers / others if others else 0.0
            score = q["peer_score"] if share >= q["peer_share"] else q["score"]
            if score < self._thr:
                peer.add_column(col, e.actor)  # flagged reads do not teach the peers
            sig.append(Signal("SENSITIVE_FIRST_TOUCH", score, f"first read of {col} "
                              f"({sc.pfi_class}) by {e.actor} after "
                              f"{(t - st.first_ts) / 86400:.0f} days of history; "
                              f"{readers} of {others} peers read it"))
        for rule in self.rules.custom:
            if (e.actor_kind or "human") in rule.actor_kinds and rule.columns.intersection(
                    an.columns):
                cols = ", ".join(sorted(rule.columns.intersection(an.columns)))
                sig.append(Signal(rule.code, rule.score, f"custom rule '{rule.id}' "
                                  f"({rule.description or 'watched columns'}): read {cols}"))

    def _check_source(self, e: QueryEvent, an: SqlAnalysis, st: ActorBaseline,
                      peer: PeerBaseline, learning: bool, human: bool, t: float,
                      sig: list[Signal], feats: list[float]) -> None:
        p = self._p
        if not human and "SERVICE_INTERACTIVE" in self._on:
            interactive = self.rules.is_interactive_client(e.client)
            desk = self.rules.on_workstation(e.source_ip)
            if (interactive or desk) and not self._allowed(e, "SERVICE_INTERACTIVE", an)[0]:
                why = " and ".join(x for x, y in ((f"interactive client '{e.client}'",
                                                   interactive),
                                                  (f"workstation address {e.source_ip}", desk))
                                   if y)
                clients = ", ".join(st.clients.sample()) or "none yet"
                sig.append(Signal("SERVICE_INTERACTIVE", p["SERVICE_INTERACTIVE"]["score"],
                                  f"service account {e.actor} used from {why}; its known "
                                  f"clients: {clients}"))
        q = p["NEW_SOURCE"]
        for kind, value, known, pk in (("address", e.source_ip, st.ips, peer.ips),
                                       ("client", e.client, st.clients, peer.clients)):
            if not value:
                continue
            peer_known = value in pk
            first = known.see(value, t)
            pk.see(value, t)
            if learning or "NEW_SOURCE" not in self._on:
                continue
            if first is None or (first - st.first_ts >= self._learn
                                 and t - first < q["probation"]):
                if self._allowed(e, "NEW_SOURCE", an)[0]:
                    continue
                score, extra = q["score"], ""
                if kind == "address" and _subnet(value) in {_subnet(x) for x in known.sample(64)
                                                            if x != value}:
                    score, extra = q["known_subnet_score"], " (same /24 as a known address)"
                elif peer_known:
                    score, extra = q["peer_known_score"], " (known among peers)"
                shown = ", ".join(x for x in known.sample(3) if x != value) or "none"
                sig.append(Signal("NEW_SOURCE", score, f"first connection from {kind} {value}"
                                  f"{extra} after {(t - st.first_ts) / 86400:.0f} days; known: "
                                  f"{shown}"))
        if "NOVEL_TEMPLATE" not in self._on:
            return
        q = p["NOVEL_TEMPLATE"]
        if learning or (e.actor_kind or "human") not in q["actor_kinds"]:
            return
        first_t = st.templates.see(an.fingerprint, t)
        if first_t is None or (first_t - st.first_ts >= self._learn
                               and t - first_t < q["probation"]):
            if st.templates.saturated and first_t is None:
                return
            feats[6] += 1
            if self._allowed(e, "NOVEL_TEMPLATE", an)[0]:
                return
            sig.append(Signal("NOVEL_TEMPLATE", q["score"], f"application account {e.actor} "
                              f"ran a query template not seen from it in "
                              f"{(t - st.first_ts) / 86400:.0f} days ({len(st.templates)} "
                              f"known): {an.template[:160]}"))

    def _check_errors(self, e: QueryEvent, st: ActorBaseline, t: float, learning: bool,
                      sig: list[Signal]) -> None:
        q = self._p["ERROR_BURST"]
        within = q["within"]
        bucket = int(t // within)
        if bucket != st.err_bucket:
            # after learning, burst-sized windows are not absorbed into the baseline
            if st.err_bucket_n and (learning or st.err_bucket_n < q["min_errors"]):
                st.errors.add(st.err_bucket_n)
            st.err_bucket, st.err_bucket_n = bucket, 0
        st.err_bucket_n += 1
        st.err_times.append(t)
        n = 0
        for x in reversed(st.err_times):
            if t - x > within:
                break
            n += 1
        if n < q["min_errors"] or "ERROR_BURST" not in self._on:
            return
        # a p99 from fewer than 5 error windows is no baseline yet
        own = st.errors.quantile(0.99) if st.errors.total >= 5 else 0.0
        if n >= max(q["min_errors"], q["factor"] * own):
            sig.append(Signal("ERROR_BURST", q["score"], f"{n} failed or denied statements in "
                              f"{int(within // 60)} min (latest: {e.status}); own p99 is "
                              f"{_fmt(own)} per {int(within // 60)} min"))

    # ------------------------------------------------------------------ alerts
    def _alert(self, e: QueryEvent, t: float, sig: list[Signal], boost: float) -> tuple[str, ...]:
        fired = sorted((s for s in sig if s.score >= self._thr), key=lambda s: _RANK[s.code])
        touched: list[str] = []
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


def _peer_q(peer: PeerBaseline, sketch: Any) -> float:
    """Peer p99, only once the group has 3+ members and 50+ observations."""
    if len(peer.members) < 3 or sketch.total < 50:
        return 0.0
    return float(sketch.quantile(0.99))


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    m = _NUM.match(text)
    return int(m.group(2)) if m is not None else None


def _subnet(ip: str) -> str:
    return ip.rsplit(".", 1)[0] if ip.count(".") == 3 else ip


def now_utc() -> datetime:
    """The current time (UTC)."""
    return datetime.now(timezone.utc)
