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

import json
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from privacy.audit.events import QueryEvent
from privacy.audit.rules import CN_HOLIDAYS, CN_WORKDAYS, Calendar, Rules

if TYPE_CHECKING:
    from privacy.fields import Tokenizer

__all__ = ["Simulation", "simulate", "evaluate", "write_bundle", "INJECTED", "CATALOG_YAML"]

TZ = timezone(timedelta(hours=8))
INJECTED = ("BULK_EXPORT", "MANY_CUSTOMERS", "SLOW_DRIP", "OFF_HOURS", "ID_ENUMERATION",
            "WATCHLIST", "SENSITIVE_FIRST_TOUCH", "SERVICE_INTERACTIVE", "NEW_SOURCE",
            "ERROR_BURST", "INJECTION", "PRIVILEGE_CHANGE", "MASS_MODIFY", "NOVEL_TEMPLATE")
N_CUSTOMERS = 200_000
CUST0 = 10_000_000

CATALOG_YAML = """\
version: 1
columns:
  customers.cust_id: {class: C2, customer_key: true}
  customers.name: {class: C3, tags: [cn_name]}
  customers.id_no: {class: C3, tags: [cn_resident_id], customer_key: true}
  customers.mobile: {class: C3, tags: [cn_mobile]}
  customers.home_address: {class: C3}
  customers.annual_income: {class: C3}
  customers.employer: {class: C2}
  customers.risk_level: {class: C2}
  customers.branch_id: {}
  customers.updated_at: {}
  accounts.acct_no: {class: C2}
  accounts.cust_id: {class: C2, customer_key: true}
  accounts.balance: {class: C2}
  accounts.status: {}
  accounts.branch_id: {}
  cards.card_no: {class: C3, customer_key: true}
  cards.cust_id: {class: C2, customer_key: true}
  cards.credit_limit: {class: C2}
  cards.status: {}
  transactions.txn_id: {}
  transactions.acct_no: {class: C2}
  transactions.amount: {class: C2}
  transactions.counterparty: {class: C3}
  transactions.txn_time: {}
  transactions.txn_date: {}
  transactions.branch_id: {}
  transactions.teller_id: {}
  risk_scores.cust_id: {class: C2, customer_key: true}
  risk_scores.risk_score: {class: C2}
  risk_scores.score_date: {}
  call_notes.cust_id: {class: C2, customer_key: true}
  call_notes.agent: {}
  call_notes.note: {class: C3}
  staging_customers.cust_id: {class: C2, customer_key: true}
  staging_customers.name: {class: C3}
  staging_customers.id_no: {class: C3}
  staging_customers.mobile: {class: C3}
"""


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
        from privacy.atomic import atomic_output, atomic_write_text

        with atomic_output(events_path, "w") as fh:
            for e in self.events:
                fh.write(e.to_json() + "\n")
        atomic_write_text(answers_path, json.dumps(self.answers, indent=1, ensure_ascii=False))


class _Gen:
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

    # ----------------------------------------------------------------- injections
    def pick(self, roles: Sequence[str], span: int, need_workday: bool = True) -> tuple[Actor, int]:
        r = self.r
        cands = [a for a in self.actors if a.role in roles]
        for attempt in range(500):
            a = r.choice(cands)
            d = r.randint(self.warmup + 1, self.days - span)
            if need_workday and not self.workday(d):
                continue
            taken = self.busy.get(a.name, [])
            limit = 1 if attempt < 300 else 0
            if len(taken) >= limit and attempt < 400:
                continue
            if any(not (d + span - 1 < lo or d > hi) for lo, hi in taken):
                continue
            self.busy.setdefault(a.name, []).append((d, d + span - 1))
            return a, d
        raise ValueError("simulation too small for the requested injections")

    def lookup(self, a: Actor, c: int) -> str:
        """The actor's own customer-lookup statement for customer ``c``."""
        if a.role == "call_centre":
            return ("SELECT c.cust_id, c.name, c.mobile, a.balance FROM customers c JOIN "
                    f"accounts a ON a.cust_id = c.cust_id WHERE c.cust_id = {c}")
        if a.role == "private_banker":
            return f"SELECT cust_id, name, mobile, annual_income FROM customers WHERE cust_id = {c}"
        return f"SELECT cust_id, name, mobile, id_no FROM customers WHERE cust_id = {c}"

    def work_time(self, d: int) -> float:
        return self.day_start(d) + self.r.uniform(9.5, 15.5) * 3600

    def inject(self) -> list[dict[str, Any]]:
        incidents: list[dict[str, Any]] = []
        for code in INJECTED:
            for _ in range(self.per_scenario):
                inc = len(incidents)
                before = len(self.rows)
                a, t0, t1, what = getattr(self, "_inj_" + code.lower())(inc)
                self.inc_rows[inc] = list(range(before, len(self.rows)))
                incidents.append({"id": f"INC-{inc:04d}", "scenario": code, "actor": a.name,
                                  "start": datetime.fromtimestamp(t0, TZ).isoformat(),
                                  "end": datetime.fromtimestamp(t1, TZ).isoformat(),
                                  "description": what})
        return incidents

    def _spread(self, a: Actor, t0: float, n: int, span: float, inc: int,
                make: Any) -> float:
        times = sorted(t0 + self.r.uniform(0, span) for _ in range(n))
        for i, t in enumerate(times):
            sql, rows, status, ip, client = make(i)
            self.emit(t, a, sql, rows, status, ip, client, inc)
        return times[-1]

    def _inj_bulk_export(self, inc: int) -> tuple[Actor, float, float, str]:
        a, d = self.pick(["risk_analyst", "branch_manager", "teller"], 1)
        t0 = self.work_time(d)
        sqls = [("SELECT * FROM customers", N_CUSTOMERS),
                ("COPY (SELECT cust_id, name, id_no, mobile FROM customers) TO "
                 "'/tmp/customers.csv' WITH CSV", N_CUSTOMERS),
                ("SELECT cust_id, name, id_no, mobile, annual_income FROM customers WHERE "
                 "annual_income > 100000", self.r.randint(20000, 60000))]
        k = self.r.randint(1, 3)
        t1 = self._spread(a, t0, k, 1800, inc, lambda i: (*self.r.choice(sqls), "ok", None, None))
        return a, t0, t1, f"{k} bulk read(s)/export(s) of the customer table"

    def _inj_many_customers(self, inc: int) -> tuple[Actor, float, float, str]:
        a, d = self.pick(["teller", "call_centre"], 1)
        t0, n = self.work_time(d), self.r.randint(150, 600)
        t1 = self._spread(a, t0, n, 3000, inc, lambda i: (
            self.lookup(a, self.cust()), 1, "ok", None, None))
        return a, t0, t1, f"{n} distinct customers looked up within an hour"

    def _inj_slow_drip(self, inc: int) -> tuple[Actor, float, float, str]:
        a, d = self.pick(["teller"], 6)
        days = [x for x in range(d, self.days) if self.workday(x)][:4]
        first = last = 0.0
        for x in days:
            n = self.r.randint(40, 60)
            base = self.day_start(x)
            for _ in range(n):
                t = base + self.r.uniform(9, 17) * 3600
                self.emit(t, a, "SELECT cust_id, name, mobile, id_no FROM customers WHERE "
                          f"cust_id = {self.cust()}", 1, inc=inc)
                first = t if not first else min(first, t)
                last = max(last, t)
        return a, first, last, f"40-60 extra customers a day on {len(days)} working days"

    def _inj_off_hours(self, inc: int) -> tuple[Actor, float, float, str]:
        a, d = self.pick(["teller", "branch_manager", "private_banker"], 1, need_workday=False)
        r = self.r
        if self.workday(d):
            t0 = self.day_start(d) + r.uniform(22, 25) * 3600
            when = "at night"
        else:
            t0 = self.day_start(d) + r.uniform(10, 15) * 3600
            when = "on a day off"
        n = r.randint(8, 25)
        pool = self.vips if a.role == "private_banker" else None
        t1 = self._spread(a, t0, n, 3600, inc, lambda i: (
            self.lookup(a, r.choice(pool) if pool else self.cust()), 1, "ok", None, None))
        return a, t0, t1, f"{n} lookups {when}"

    def _inj_id_enumeration(self, inc: int) -> tuple[Actor, float, float, str]:
        a, d = self.pick(["teller", "call_centre"], 1)
        r = self.r
        t0, n = self.work_time(d), r.randint(30, 120)
        start = CUST0 + r.randrange(N_CUSTOMERS - 1000)
        if r.random() < 0.3:
            t1 = self._spread(a, t0, 3, 900, inc, lambda i: (
                "SELECT cust_id, name, mobile FROM customers WHERE cust_id BETWEEN "
                f"{start + i * 2000} AND {start + (i + 1) * 2000 - 1}", 2000, "ok", None, None))
            return a, t0, t1, "wide BETWEEN ranges over customer ids"
        t1 = self._spread(a, t0, n, 2400, inc, lambda i: (
            self.lookup(a, start + i), 1, "ok", None, None))
        return a, t0, t1, f"{n} consecutive customer ids"

    def _inj_watchlist(self, inc: int) -> tuple[Actor, float, float, str]:
        a, d = self.pick(["teller", "call_centre"], 1)
        r = self.r
        t0, n = self.work_time(d), r.randint(1, 3)
        pool = r.choice([self.vips, self.colleagues])
        t1 = self._spread(a, t0, n, 1200, inc, lambda i: (
            self.lookup(a, r.choice(pool)), 1, "ok", None, None))
        return a, t0, t1, f"{n} lookup(s) of watch-listed customers"

    def _inj_sensitive_first_touch(self, inc: int) -> tuple[Actor, float, float, str]:
        a, d = self.pick(["teller", "call_centre"], 1)
        t0, n = self.work_time(d), self.r.randint(2, 6)
        col = self.r.choice(["annual_income", "home_address"])
        t1 = self._spread(a, t0, n, 1800, inc, lambda i: (
            f"SELECT cust_id, name, {col} FROM customers WHERE cust_id = {self.cust()}", 1, "ok",
            None, None))
        return a, t0, t1, f"first reads of customers.{col}"

    def _inj_service_interactive(self, inc: int) -> tuple[Actor, float, float, str]:
        a, d = self.pick(["application"], 1)
        r = self.r
        t0, n = self.work_time(d), r.randint(4, 12)
        ip, client = f"10.20.{r.randint(1, 9)}.{r.randint(10, 250)}", r.choice(
            ["DBeaver 24.1", "Navicat Premium 16", "psql"])
        t1 = self._spread(a, t0, n, 2400, inc, lambda i: (
            f"SELECT cust_id, name, mobile FROM customers WHERE cust_id = {self.cust()}", 1, "ok",
            ip, client))
        return a, t0, t1, f"application account used from {client} at {ip}"

    def _inj_new_source(self, inc: int) -> tuple[Actor, float, float, str]:
        a, d = self.pick(["teller", "call_centre", "risk_analyst"], 1)
        r = self.r
        t0, n = self.work_time(d), r.randint(4, 15)
        ip = f"172.{r.randint(16, 31)}.{r.randint(0, 255)}.{r.randint(2, 250)}"

        def make(i: int) -> tuple[str, int, str, str, None]:
            if a.role == "risk_analyst":
                return ("SELECT branch_id, COUNT(*), SUM(balance) FROM accounts GROUP BY "
                        "branch_id", 20, "ok", ip, None)
            return (self.lookup(a, self.cust()), 1, "ok", ip, None)
        t1 = self._spread(a, t0, n, 2400, inc, make)
        return a, t0, t1, f"{n} statements from a never-seen address {ip}"

    def _inj_error_burst(self, inc: int) -> tuple[Actor, float, float, str]:
        a, d = self.pick(["teller", "risk_analyst", "call_centre"], 1)
        r = self.r
        t0, n = self.work_time(d), r.randint(15, 40)
        tables = ["payroll.salaries", "hr.employees", "audit.logins", "secure.keys"]
        t1 = self._spread(a, t0, n, 500, inc, lambda i: (
            f"SELECT * FROM {r.choice(tables)} WHERE emp_id = {r.randint(1, 9999)}", None,
            r.choice(["denied", "denied", "error"]), None, None))
        return a, t0, t1, f"{n} failed or denied statements in under 10 minutes"

    def _inj_injection(self, inc: int) -> tuple[Actor, float, float, str]:
        a, d = self.pick(["application"], 1)
        r = self.r
        t0, n = self.work_time(d), r.randint(5, 20)
        shapes = ["SELECT acct_no, balance FROM accounts WHERE cust_id = '{c}' OR '1'='1'",
                  "SELECT acct_no, balance FROM accounts WHERE cust_id = {c} UNION SELECT "
                  "NULL, usename FROM pg_user--",
                  "SELECT acct_no, balance FROM accounts WHERE cust_id = {c}; "
                  "DROP TABLE accounts--",
                  "SELECT acct_no, balance FROM accounts WHERE cust_id = {c} AND "
                  "pg_sleep(5) IS NULL--"]
        t1 = self._spread(a, t0, n, 1800, inc, lambda i: (
            r.choice(shapes).format(c=self.cust()), r.choice([None, 0, 3]),
            r.choice(["ok", "error", "error"]), None, None))
        return a, t0, t1, f"{n} injection-shaped statements through the application"

    def _inj_privilege_change(self, inc: int) -> tuple[Actor, float, float, str]:
        a, d = self.pick(["teller", "risk_analyst", "call_centre", "application"], 1)
        r = self.r
        t0, n = self.work_time(d), r.randint(1, 3)
        sqls = [f"GRANT SELECT ON customers TO {a.name}", f"ALTER USER {a.name} WITH SUPERUSER",
                f"CREATE USER tmp_{r.randint(100, 999)} WITH PASSWORD 'Passw0rd!'",
                f"GRANT ALL PRIVILEGES ON accounts TO {a.name}"]
        t1 = self._spread(a, t0, n, 900, inc, lambda i: (
            r.choice(sqls), None, r.choice(["ok", "denied"]), None, None))
        return a, t0, t1, f"{n} privilege change(s)"

    def _inj_mass_modify(self, inc: int) -> tuple[Actor, float, float, str]:
        a, d = self.pick(["teller", "branch_manager"], 1)
        r = self.r
        t0 = self.work_time(d)
        sqls = [("UPDATE accounts SET status = 'frozen'", 350000),
                ("DELETE FROM transactions WHERE txn_date < '2026-01-01'",
                 r.randint(100000, 900000)),
                ("UPDATE customers SET mobile = NULL WHERE branch_id = 3", r.randint(5000, 20000))]
        t1 = self._spread(a, t0, 1, 60, inc, lambda i: (*r.choice(sqls), "ok", None, None))
        return a, t0, t1, "mass update or delete"

    def _inj_novel_template(self, inc: int) -> tuple[Actor, float, float, str]:
        a, d = self.pick(["application"], 1)
        r = self.r
        t0, n = self.work_time(d), r.randint(5, 30)
        shapes = [f"SELECT t{inc}.cust_id, t{inc}.name, t{inc}.mobile FROM customers t{inc} "
                  "WHERE t{inc}.mobile = '{m}' AND t{inc}.branch_id = {b}",
                  f"SELECT c{inc}.cust_id, c{inc}.risk_level FROM customers c{inc} WHERE "
                  "c{inc}.branch_id = {b} ORDER BY c{inc}.cust_id LIMIT 50",
                  f"SELECT k{inc}.card_no, k{inc}.credit_limit FROM cards k{inc} WHERE "
                  "k{inc}.status = 'blocked' AND k{inc}.credit_limit > {b}"]
        shape = r.choice(shapes).replace("{inc}", str(inc))
        t1 = self._spread(a, t0, n, 3000, inc, lambda i: (
            shape.format(m=f"13{r.randint(10**8, 10**9 - 1)}", b=r.randint(1, 30)),
            r.randint(0, 2), "ok", None, None))
        return a, t0, t1, f"{n} statements of a template the application never ran"


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


def write_bundle(sim: Simulation, folder: str | Path,
                 tokenizer: Tokenizer | None) -> dict[str, str]:
    """Write the bank's ``catalog.yaml``, ``rules.yaml`` and ``lists.yaml`` into ``folder``.

    With a ``tokenizer`` the customer watch lists are stored hashed; without, in clear.
    """
    from privacy.atomic import atomic_write_text
    from privacy.audit.lists import hash_values

    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    hol = ", ".join(f'"{h}"' for h in CN_HOLIDAYS)
    wd = ", ".join(f'"{w}"' for w in CN_WORKDAYS)
    rules = (f'version: 1\nrule_version: "sim-bank-1"\nlearning_days: 7\ncalendar:\n'
             f'  timezone: "+08:00"\n  working_hours: {{start: "08:00", end: "19:00"}}\n'
             f"  holidays: [{hol}]\n  workdays: [{wd}]\n"
             'workstation_networks: ["10.20.0.0/16"]\n')

    def values(ids: list[int]) -> tuple[str, str]:
        if tokenizer is None:
            return "false", json.dumps([str(i) for i in ids])
        return "true", json.dumps(hash_values(tokenizer, [str(i) for i in ids]))

    vh, vv = values(sim.vip_ids)
    ch, cv = values(sim.colleague_ids)
    bankers = json.dumps([a.name for a in sim.actors if a.role == "private_banker"])
    dbas = json.dumps([a.name for a in sim.actors if a.role == "dba"])
    lists = (
        "version: 1\nlists:\n"
        f"  - {{name: vip-customers, type: watch, kind: customer, owner: pb-compliance, "
        f"reason: VIP and public-figure customers, expires: 2027-12-31, hashed: {vh}, "
        f"values: {vv}}}\n"
        f"  - {{name: employee-customers, type: watch, kind: customer, owner: hr-compliance, "
        f"reason: colleagues' own customer records, expires: 2027-12-31, hashed: {ch}, "
        f"values: {cv}}}\n"
        f"  - {{name: vip-bankers, type: allow, kind: actor, scenarios: [WATCHLIST], "
        f"owner: head-of-private-banking, reason: relationship managers of VIP customers, "
        f"expires: 2027-06-30, values: {bankers}}}\n"
        f"  - {{name: dba-grants, type: allow, kind: actor, scenarios: [PRIVILEGE_CHANGE], "
        f"owner: it-security, reason: DBAs grant roles under change tickets, "
        f"expires: 2027-06-30, values: {dbas}}}\n"
        "  - {name: former-auditors, type: allow, kind: actor, scenarios: [WATCHLIST], "
        "owner: internal-audit, reason: 2025 audit engagement, expires: 2026-01-31, "
        "values: [auditor_2025]}\n"
        "  - {name: threat-intel, type: deny, kind: source_ip, owner: soc, "
        "reason: known malicious hosts, expires: 2027-12-31, values: [198.51.100.23]}\n")
    paths = {"catalog": root / "catalog.yaml", "rules": root / "rules.yaml",
             "lists": root / "lists.yaml"}
    atomic_write_text(paths["catalog"], CATALOG_YAML)
    atomic_write_text(paths["rules"], rules)
    atomic_write_text(paths["lists"], lists)
    return {k: str(v) for k, v in paths.items()}


def evaluate(alerts: Iterable[Mapping[str, Any]], answers: Mapping[str, Any], *,
             slack_s: float = 86400.0) -> dict[str, Any]:
    """Per-scenario recall and precision of ``alerts`` against an answer key.

    An alert counts for its **primary** scenario (``scenarios[0]``). It matches an
    incident of that scenario when the actor is the same and its time span overlaps the
    incident's (extended by ``slack_s`` after its end). Recall: incidents with a matching
    alert; precision: alerts that match an incident. Also: false positives per 1,000
    actor-days and the median time to detect (first matching alert minus incident start).
    """
    incidents = list(answers["incidents"])
    by_key: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for inc in incidents:
        inc = dict(inc)
        inc["_s"] = datetime.fromisoformat(inc["start"]).timestamp()
        inc["_e"] = datetime.fromisoformat(inc["end"]).timestamp()
        by_key.setdefault((inc["scenario"], inc["actor"]), []).append(inc)
    found: dict[str, float] = {}
    per: dict[str, dict[str, float]] = {}
    fp = 0
    for al in alerts:
        code = al["scenarios"][0]
        s = _ts(al["first_ts"])
        e = _ts(al["last_ts"])
        stat = per.setdefault(code, {"alerts": 0, "tp": 0})
        stat["alerts"] += 1
        hit = False
        for inc in by_key.get((code, al["actor"]), []):
            if s <= inc["_e"] + slack_s and e >= inc["_s"]:
                hit = True
                delay = max(0.0, _ts(al.get("detected_ts") or al["first_ts"]) - inc["_s"])
                found[inc["id"]] = min(found.get(inc["id"], delay), delay)
        if hit:
            stat["tp"] += 1
        else:
            fp += 1
    result: dict[str, Any] = {"scenarios": {}}
    delays: list[float] = []
    for code in sorted({i["scenario"] for i in incidents} | set(per)):
        incs = [i for i in incidents if i["scenario"] == code]
        det = [found[i["id"]] for i in incs if i["id"] in found]
        delays += det
        st = per.get(code, {"alerts": 0, "tp": 0})
        result["scenarios"][code] = {
            "incidents": len(incs), "detected": len(det), "alerts": int(st["alerts"]),
            "recall": round(len(det) / len(incs), 3) if incs else None,
            "precision": round(st["tp"] / st["alerts"], 3) if st["alerts"] else None,
            "median_detect_s": round(sorted(det)[len(det) // 2], 1) if det else None}
    ad = max(1, int(answers.get("actor_days", 1)))
    result["false_positives"] = fp
    result["fp_per_1000_actor_days"] = round(1000 * fp / ad, 3)
    result["median_time_to_detect_s"] = (round(sorted(delays)[len(delays) // 2], 1)
                                         if delays else None)
    return result


def _ts(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    return datetime.fromisoformat(str(value)).timestamp()


def default_calendar() -> Calendar:
    """The calendar the simulator schedules by (the default rules' calendar)."""
    return Rules.default().calendar
