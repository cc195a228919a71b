"""Scenario injection for the bank simulator: each scenario of :data:`INJECTED` at known times.

:class:`_Gen` extends the everyday traffic of :class:`~privacy.audit.sim_traffic._Traffic`
with one ``_inj_<scenario>`` method per scenario; :meth:`_Gen.inject` runs them
``per_scenario`` times after the warm-up and returns the incidents of the answer key.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from privacy.audit.sim_traffic import CUST0, N_CUSTOMERS, TZ, Actor, _Traffic

__all__ = ["INJECTED"]

INJECTED = ("BULK_EXPORT", "MANY_CUSTOMERS", "SLOW_DRIP", "OFF_HOURS", "ID_ENUMERATION",
            "WATCHLIST", "SENSITIVE_FIRST_TOUCH", "SERVICE_INTERACTIVE", "NEW_SOURCE",
            "ERROR_BURST", "INJECTION", "PRIVILEGE_CHANGE", "MASS_MODIFY", "NOVEL_TEMPLATE")


class _Gen(_Traffic):
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
