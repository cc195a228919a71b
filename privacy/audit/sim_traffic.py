"""Population and everyday query traffic of the simulated bank (:mod:`privacy.audit.simulate`).

:class:`Actor` is one principal and :class:`Simulation` what a run produces (the events
and the answer key, also read by :mod:`privacy.audit.sim_bundle`). :class:`_Traffic`
builds the population (tellers, branch managers, call-centre agents, risk analysts,
private bankers, DBAs, application and batch accounts) and emits their normal statements
day by day, following the Chinese public-holiday calendar of :mod:`privacy.audit.rules`.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from privacy.atomic import atomic_output, atomic_write_text
from privacy.audit.events import QueryEvent
from privacy.audit.rules import Rules

__all__ = ["Actor", "Simulation", "TZ", "N_CUSTOMERS", "CUST0"]

TZ = timezone(timedelta(hours=8))
N_CUSTOMERS = 200_000
CUST0 = 10_000_000


@dataclass
class Actor:
    """One simulated principal."""

    name: str
    kind: str
    role: str
    department: str
    ips: list[str]
    client: str
    templates: list[tuple[str, float]] = field(default_factory=list)


@dataclass
class Simulation:
    """Events (time-ordered) and the answer key."""

    events: list[QueryEvent]
    answers: dict[str, Any]
    actors: list[Actor]
    vip_ids: list[int]
    colleague_ids: list[int]

    def write(self, events_path: str | Path, answers_path: str | Path) -> None:
        """Write events as JSON Lines and the answer key as JSON (atomically)."""
        with atomic_output(events_path, "w") as fh:
            for e in self.events:
                fh.write(e.to_json() + "\n")
        atomic_write_text(answers_path, json.dumps(self.answers, indent=1, ensure_ascii=False))


class _Traffic:
    def __init__(self, seed: int, n_actors: int, days: int, start: date, warmup: int,
                 per_scenario: int, service_rate: int) -> None:
        self.r = random.Random(seed)
        self.seed, self.days, self.start, self.warmup = seed, days, start, warmup
        self.per_scenario, self.service_rate = per_scenario, service_rate
        self.cal = Rules.default().calendar
        self.rows: list[tuple[float, Actor, str, int | None, str, str, str, str | None]] = []
        self.inc_rows: dict[int, list[int]] = {}
        r = self.r
        special = r.sample(range(N_CUSTOMERS), 400 + n_actors)
        self.vips = [CUST0 + i for i in special[:200]]
        self.colleagues = [CUST0 + i for i in special[200:200 + n_actors]]
        self.excluded = set(special)
        self.actors = self._actors(n_actors)
        self.busy: dict[str, list[tuple[int, int]]] = {}

    # ----------------------------------------------------------------- population
    def _actors(self, n: int) -> list[Actor]:
        r = self.r
        n_app = max(4, round(n * 0.02))
        n_batch = max(2, round(n * 0.01))
        n_dba = max(1, round(n * 0.02))
        humans = n - n_app - n_batch - n_dba
        mix = [("teller", 0.45), ("call_centre", 0.25), ("risk_analyst", 0.10),
               ("branch_manager", 0.10), ("private_banker", 0.10)]
        counts = {role: max(1, round(humans * w)) for role, w in mix}
        out: list[Actor] = []
        n_branch = max(2, counts["teller"] // 8)
        for role, k in counts.items():
            for i in range(k):
                if role in ("teller", "branch_manager"):
                    b = i % n_branch
                    dept, net = f"branch-{b:02d}", f"10.20.{b + 1}"
                    client = "teller-desk/5.1" if role == "teller" else "branch-portal/2.4"
                elif role == "call_centre":
                    dept, net, client = "call-centre", "10.20.100", "crm-console/3.0"
                elif role == "risk_analyst":
                    dept, net = "risk", "10.20.110"
                    client = r.choice(["DBeaver 24.1", "psql"])
                else:
                    dept, net, client = "private-banking", "10.20.120", "wealth-desk/1.8"
                ips = [f"{net}.{r.randint(10, 250)}"]
                if r.random() < 0.3:
                    ips.append(f"{net}.{r.randint(10, 250)}")
                out.append(Actor(f"{role}_{i:03d}", "human", role, dept, ips, client))
        for i in range(n_dba):
            out.append(Actor(f"dba_{i:02d}", "human", "dba", "it-dba",
                             [f"10.20.200.{10 + i}"], "psql"))
        apps = ["core", "mobile", "crm", "cards", "loans", "wealth", "payments", "branch"]
        for i in range(n_app):
            app = apps[i % len(apps)] + ("" if i < len(apps) else str(i // len(apps)))
            out.append(Actor(f"svc_{app}", "service", "application", f"app-{app}",
                             [f"10.1.{i}.{10 + j}" for j in range(3)],
                             f"{app}-service/3.{i % 4} (JDBC)"))
        for i in range(n_batch):
            out.append(Actor(f"batch_{i:02d}", "service", "batch", "data-ops",
                             [f"10.2.0.{10 + i}"], "etl-runner/1.9"))
        return out

    # ----------------------------------------------------------------- helpers
    def cust(self) -> int:
        while True:
            c = self.r.randrange(N_CUSTOMERS)
            if c not in self.excluded:
                return CUST0 + c

    def day_start(self, d: int) -> float:
        day = self.start + timedelta(days=d)
        return datetime(day.year, day.month, day.day, tzinfo=TZ).timestamp()

    def emit(self, ts: float, a: Actor, sql: str, rows: int | None, status: str = "ok",
             ip: str | None = None, client: str | None = None, inc: int | None = None) -> None:
        self.rows.append((ts, a, sql, rows, status, ip or self.r.choice(a.ips),
                          client or a.client, None if inc is None else str(inc)))

    def workday(self, d: int) -> bool:
        return self.cal.is_workday(self.start + timedelta(days=d))

    # ----------------------------------------------------------------- normal traffic
    def human_query(self, a: Actor, ts: float, c: int) -> None:
        r, role = self.r, a.role
        if role == "teller":
            opts = [(f"SELECT cust_id, name, mobile, id_no FROM customers WHERE cust_id = {c}", 1),
                    (f"SELECT acct_no, balance, status FROM accounts WHERE cust_id = {c}",
                     r.randint(1, 3)),
                    (f"SELECT card_no, status FROM cards WHERE cust_id = {c}", r.randint(0, 2)),
                    ("SELECT txn_id, amount, counterparty, txn_time FROM transactions WHERE "
                     f"acct_no = '62{c}01' ORDER BY txn_time DESC LIMIT 20", r.randint(0, 20))]
            if r.random() < 0.05:
                opts.append((f"UPDATE customers SET mobile = '13{r.randint(10**8, 10**9 - 1)}' "
                             f"WHERE cust_id = {c}", 1))
        elif role == "call_centre":
            opts = [(f"SELECT c.cust_id, c.name, c.mobile, a.balance FROM customers c JOIN "
                     f"accounts a ON a.cust_id = c.cust_id WHERE c.cust_id = {c}", r.randint(1, 3)),
                    (f"SELECT card_no, status, credit_limit FROM cards WHERE cust_id = {c}",
                     r.randint(0, 2)),
                    ("INSERT INTO call_notes (cust_id, agent, note) VALUES "
                     f"({c}, '{a.name}', 'called about card')", 1)]
        elif role == "private_banker":
            opts = [(f"SELECT cust_id, name, mobile, annual_income FROM customers "
                     f"WHERE cust_id = {c}", 1),
                    (f"SELECT acct_no, balance FROM accounts WHERE cust_id = {c}", r.randint(1, 5))]
        else:
            opts = [(f"SELECT cust_id, name, mobile, id_no FROM customers WHERE cust_id = {c}", 1),
                    (f"SELECT acct_no, balance, status FROM accounts WHERE cust_id = {c}",
                     r.randint(1, 3))]
        sql, rows = r.choice(opts)
        status = "error" if r.random() < 0.005 else "ok"
        self.emit(ts, a, sql, rows if status == "ok" else None, status)

    def office_query(self, a: Actor, ts: float, d: int) -> None:
        r = self.r
        day = (self.start + timedelta(days=d - r.randint(1, 5))).isoformat()
        opts: list[tuple[str, int | None]]
        if a.role == "risk_analyst":
            opts = [("SELECT branch_id, COUNT(*), SUM(balance) FROM accounts GROUP BY branch_id",
                     r.randint(8, 40)),
                    ("SELECT cust_id, risk_score FROM risk_scores WHERE score_date = "
                     f"'{day}' AND risk_score > {r.randint(60, 90)}", r.randint(20, 400)),
                    ("SELECT c.risk_level, COUNT(*), AVG(c.annual_income) FROM customers c "
                     "GROUP BY c.risk_level", 5),
                    ("SELECT t.branch_id, SUM(t.amount) FROM transactions t WHERE t.txn_date = "
                     f"'{day}' GROUP BY t.branch_id", r.randint(8, 40))]
        elif a.role == "branch_manager":
            b = int(a.department[-2:])
            opts = [("SELECT teller_id, COUNT(*) FROM transactions WHERE branch_id = "
                     f"{b} AND txn_date = '{day}' GROUP BY teller_id", r.randint(3, 15)),
                    ("SELECT a.acct_no, a.balance FROM accounts a WHERE a.branch_id = "
                     f"{b} AND a.balance > {r.choice([500000, 1000000])}", r.randint(10, 120))]
        else:  # dba
            opts = [("SELECT relname, n_live_tup FROM pg_stat_user_tables ORDER BY n_live_tup "
                     "DESC LIMIT 20", 20),
                    ("SELECT pid, state, query_start FROM pg_stat_activity WHERE state = "
                     "'active'", r.randint(1, 30)),
                    ("VACUUM ANALYZE transactions", None)]
        sql, rows = r.choice(opts)
        status = "error" if r.random() < 0.02 else "ok"
        self.emit(ts, a, sql, rows if status == "ok" else None, status)

    def human_day(self, a: Actor, d: int) -> None:
        r = self.r
        cc = a.role == "call_centre"
        if cc:
            if (d + int(a.name[-3:]) * 3) % 7 in (0, 1):
                return
            shift = 9 if int(a.name[-3:]) % 2 == 0 else 11
            begin, end = shift * 3600, (shift + 9) * 3600
        else:
            if not self.workday(d):
                return
            if r.random() < 0.04:
                return  # leave
            begin, end = 8 * 3600 + 1800 + r.randint(0, 1800), 17 * 3600 + r.randint(0, 3600)
        base = self.day_start(d)
        load = r.lognormvariate(0, 0.15)
        visits = {"teller": 18, "call_centre": 28, "private_banker": 8, "branch_manager": 4,
                  "risk_analyst": 0, "dba": 0}[a.role]
        pool = self.vips if a.role == "private_banker" else None
        for _ in range(max(0, round(r.gauss(visits * load, visits ** 0.5 * 0.7)))):
            t = r.uniform(begin, end - 600)
            c = r.choice(pool) if pool else self.cust()
            for k in range(r.randint(1, 3)):
                self.human_query(a, base + t + k * r.uniform(20, 120), c)
        office = {"risk_analyst": 22, "branch_manager": 8, "dba": 8}.get(a.role, 0)
        for _ in range(max(0, round(r.gauss(office * load, office ** 0.5)))):
            self.office_query(a, base + r.uniform(begin, end), d)
        if a.role == "dba" and (self.start + timedelta(days=d)).weekday() == 2:
            self.emit(base + r.uniform(begin, end), a,
                      f"GRANT SELECT ON risk_scores TO risk_analyst_{r.randint(0, 9):03d}", None)

    def app_day(self, a: Actor, d: int) -> None:
        r = self.r
        base = self.day_start(d)
        n = round(self.service_rate * r.uniform(0.85, 1.15))
        for _ in range(n):
            h = r.choices(range(24), weights=[1, 1, 1, 1, 1, 2, 4, 6, 8, 9, 9, 9, 9, 9, 9, 9, 8,
                                              8, 8, 7, 6, 5, 3, 2])[0]
            ts = base + h * 3600 + r.uniform(0, 3600)
            c = self.cust()
            k = r.random()
            if k < 0.35:
                self.emit(ts, a, f"SELECT acct_no, balance FROM accounts WHERE cust_id = {c}",
                          r.randint(1, 3))
            elif k < 0.6:
                self.emit(ts, a, f"SELECT cust_id, name, mobile FROM customers WHERE cust_id = {c}",
                          1)
            elif k < 0.75:
                self.emit(ts, a, f"SELECT card_no, status FROM cards WHERE cust_id = {c}",
                          r.randint(0, 2))
            elif k < 0.9:
                self.emit(ts, a, "INSERT INTO transactions (acct_no, amount, txn_time) VALUES "
                          f"('62{c}01', {r.randint(1, 99999)}.00, now())", 1)
            else:
                self.emit(ts, a, f"UPDATE accounts SET balance = balance - {r.randint(1, 5000)} "
                          f"WHERE acct_no = '62{c}01'", 1)

    def batch_day(self, a: Actor, d: int) -> None:
        r = self.r
        t = self.day_start(d) + 3600 + r.uniform(0, 1800)
        day = (self.start + timedelta(days=d - 1)).isoformat()
        steps = [("TRUNCATE staging_customers", None),
                 ("INSERT INTO staging_customers SELECT cust_id, name, id_no, mobile FROM "
                  f"customers WHERE updated_at >= '{day}'", r.randint(2000, 6000)),
                 (f"SELECT * FROM transactions WHERE txn_date = '{day}'", r.randint(80000, 160000)),
                 ("COPY (SELECT cust_id, risk_score FROM risk_scores WHERE score_date = "
                  f"'{day}') TO '/data/exports/risk_{day}.csv' WITH CSV",
                  r.randint(150000, 200000)),
                 (f"DELETE FROM call_notes WHERE created_at < '{day}'", r.randint(500, 3000))]
        for sql, rows in steps:
            self.emit(t, a, sql, rows)
            t += r.uniform(60, 900)
