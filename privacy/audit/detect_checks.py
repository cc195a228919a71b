"""The per-event checks of :class:`privacy.audit.detect.Detector`, as a mixin.

Each ``_check_*`` method appends the :class:`~privacy.audit.alerts.Signal` objects of
the checks that fire to ``sig`` and updates the actor's and peers' baselines. They are
methods of the detector itself (through :class:`DetectorChecks`), so scoring an event
costs no extra call layers.
"""

from __future__ import annotations

import math
from typing import Any

from privacy.audit.alerts import Signal, _fmt
from privacy.audit.baseline import ActorBaseline, PeerBaseline, hash64
from privacy.audit.detect_context import _NUM, ContextChecks, _int
from privacy.audit.events import QueryEvent
from privacy.audit.sql import SqlAnalysis

__all__ = ["DetectorChecks"]

_CLASS_RANK = {"C1": 1, "C2": 2, "C3": 3}


class DetectorChecks(ContextChecks):
    """Checks mixed into :class:`~privacy.audit.detect.Detector` (which sets the state).

    Warnings
    --------
    Not usable on its own: the attributes (declared in
    :class:`~privacy.audit.detect_context.ContextChecks`) are set by ``Detector.__init__``.
    """


    def _check_lists(self, e: QueryEvent, an: SqlAnalysis, sig: list[Signal]) -> None:
        if "DENY_LIST" not in self._on or not self._deny_kinds:
            return
        for kind, value in (("actor", e.actor), ("source_ip", e.source_ip),
                            ("client", e.client), ("fingerprint", an.fingerprint)):
            if kind not in self._deny_kinds:
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
            if not self.lists.has_kind(kind, "allow"):
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
                local = e.ts.astimezone(self._tz)
                bucket = self._hour + (0 if self.rules.calendar.is_workday(local.date()) else 24)
                usual = st.hour_share(bucket) >= self._p["OFF_HOURS"]["self_share"]
                score, why = self._priv.judge(e.actor, e.role, e.department, e.statement,
                                              e.ts, self._day, usual_hour=usual)
                sig.append(Signal("PRIVILEGE_CHANGE", score,
                                  f"privilege change: {why} (role {e.role or '?'}), status "
                                  f"{e.status or 'unknown'}: {an.template[:160]}{note}"))
        first = st.templates.see(an.fingerprint, t)
        routine = (not human) and (learning or (first is not None
                                                and first - st.first_ts < self._learn))
        kind = an.kind
        rows = e.rows
        if kind in ("update", "delete", "ddl") and "MASS_MODIFY" in self._on:
            q = p["MASS_MODIFY"]
            verdict, why = self._verdict
            if verdict is not None:
                routine = (routine and verdict is not False) or verdict
                why = f"; {why}" if verdict is False else ""
            if an.mass_change and not routine:
                sig.append(Signal("MASS_MODIFY", q["score"],
                                  f"{kind.upper()} without WHERE (or TRUNCATE) on "
                                  f"{', '.join(an.tables) or '?'}"
                                  f"{'' if rows is None else f' affecting {_fmt(rows)} rows'}"
                                  f"{why}"))
            elif rows is not None and rows >= q["min_rows"] and kind != "ddl":
                own = st.modify_rows.quantile(0.99)
                pp = _peer_q(peer, peer.modify_rows)
                limit = max(q["min_rows"], q["factor"] * max(own, pp))
                if rows > limit and not (learning and not human) and not routine:
                    sig.append(Signal("MASS_MODIFY", q["score"],
                                      f"{kind.upper()} affected {_fmt(rows)} rows of "
                                      f"{', '.join(an.tables)}; own 30-day p99 is {_fmt(own)}; "
                                      f"peer p99 is {_fmt(pp)}{why}"))
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
        verdict, why = self._verdict
        if verdict is not None:
            routine = (routine and verdict is not False) or verdict
            why = f"; {why}" if verdict is False else ""
        if an.export and not routine:
            sig.append(Signal("BULK_EXPORT", q["score"], f"export to a file ({an.export}) of "
                              f"{', '.join(an.tables) or '?'}{_rows_note(rows)}{why}"))
        elif (an.select_star_no_where and an.sensitive_columns and not routine
              and (rows is None or rows >= q["min_rows"])):
            sig.append(Signal("BULK_EXPORT", q["score"] - 5, "SELECT * without WHERE on "
                              f"{', '.join(an.tables)} (columns up to {an.max_class})"
                              f"{_rows_note(rows)}{why}"))
        elif rows is not None and rows >= q["min_rows"]:
            own = st.rows.quantile(0.99)
            pp = _peer_q(peer, peer.rows)
            limit = max(q["min_rows"], q["factor"] * max(own, pp))
            hard = human and rows >= q["hard_rows"]
            if ((rows > limit and not learning) or hard) and not routine:
                score = min(99.0, q["score"] + 5 * math.log10(max(rows / limit, 1.0)))
                sig.append(Signal("BULK_EXPORT", score, f"one query returned {_fmt(rows)} rows "
                                  f"of {', '.join(an.tables) or '?'}; own 30-day p99 is "
                                  f"{_fmt(own)}; peer p99 is {_fmt(pp)}{why}"))
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
        watch = (self.lists.has_kind("customer", "watch") and "WATCHLIST" in self._on
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
                self._check_watch(e, cid, sig, t, learning)
        extra = an.customer_id_count - len(an.customer_ids)
        if extra > 0:
            hs.extra += extra
            ds.extra += extra
        if "ID_ENUMERATION" in self._on:
            if run_max >= qe["min_run"]:
                sig.append(Signal("ID_ENUMERATION", qe["score"], f"looked up {run_max} "
                                  "consecutive customer ids within "
                                  f"{int(qe['within'] // 60)} min"))
            wide = []
            for kr in an.key_ranges:
                lo, hi = _int(kr.low), _int(kr.high)
                width = (hi - lo + 1) if lo is not None and hi is not None else None
                if width is None or width >= qe["min_range"]:
                    wide.append((kr, width))
            if wide:
                verdict, why = self._verdict
                if verdict or (verdict is None and learning and not human):
                    wide = []  # the account's routine (or one it is still learning)
                score = qe["departure_score"] if verdict is False else qe["score"]
                for kr, width in wide[:1]:
                    span = "an open-ended range" if width is None else f"{_fmt(width)} ids"
                    sig.append(Signal("ID_ENUMERATION", score, f"range predicate on "
                                      f"{kr.column} covering {span} ({kr.low}..{kr.high})"
                                      f"{'' if e.rows is None else f', {_fmt(e.rows)} rows'}"
                                      f"{f'; {why}' if verdict is False else ''}"))
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

    def _check_watch(self, e: QueryEvent, cid: str, sig: list[Signal], t: float,
                     learning: bool) -> None:
        q = self._p["WATCHLIST"]
        ex = self._explainer
        for m in self.lists.lookup("customer", cid, e.ts, "watch"):
            allowed, note = self._allowed(e, "WATCHLIST")
            if allowed:
                continue
            if m.expired:
                sig.append(Signal("WATCHLIST", q.get("expired_score", 40),
                                  f"looked up a customer on watch list '{m.entry.name}', "
                                  f"which expired on {m.entry.expires} (not in force){note}"))
                continue
            if ex is None:
                sig.append(Signal("WATCHLIST", q["score"], f"looked up a customer on watch "
                                  f"list '{m.entry.name}' ({m.entry.reason}; owner "
                                  f"{m.entry.owner}); no allow-list entry for {e.actor}{note}"))
                continue
            why = ex.explain(e, cid, t, final=False)
            new = ex.note_access(e, cid, t, m.entry.name)
            if why is not None:
                if new:
                    ex.credit(e.actor, m.entry.name)
                return
            # provisional: judged once the window after the access has passed (withdrawn
            # if explained then, or in the warm-up, where a new actor's portfolio is
            # learned from its records, or when serving this list is the actor's routine)
            sig.append(Signal("WATCHLIST", q["score"], f"looked up a customer on watch list "
                              f"'{m.entry.name}' ({m.entry.reason}; owner {m.entry.owner}) "
                              f"with no explanation; tried: {ex.config.describe()}; no "
                              f"allow-list entry for {e.actor}{note}"))
            self._defer(ex.deadline(t), "WATCHLIST", t, e, (cid, m.entry.name, new, learning))
            return

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
            if not peer_known and kind == "address":  # a new address for the peer group
                net = _subnet(value)
                peer_known = net in peer.subnets  # ... in one of its networks
                if len(peer.subnets) < 1024:
                    peer.subnets.add(net)
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
                    score, extra = q["peer_known_score"], " (known among peers' networks)"
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


def _peer_q(peer: PeerBaseline, sketch: Any) -> float:
    """Peer p99, only once the group has 3+ members and 50+ observations."""
    if len(peer.members) < 3 or sketch.total < 50:
        return 0.0
    return float(sketch.quantile(0.99))


def _rows_note(rows: int | None) -> str:
    return "" if rows is None else f" ({_fmt(rows)} rows)"


def _subnet(ip: str) -> str:
    return ip.rsplit(".", 1)[0] if ip.count(".") == 3 else ip
