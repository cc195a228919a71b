"""Incidents for a :class:`~privacy.audit.sim_world.World`: every scenario and its variants.

Each scenario of :data:`VARIANTS` is injected in each of its variants (``base``; ``slow``:
the same spread over hours; ``split``: spread over several days; ``app``: through an
application or job account; a few scenario-specific ones), ``per_variant`` times, after
the warm-up, by actors chosen at random among those who could plausibly do it. Each
incident of the answer key names the scenario, the variant, the actor, its time span,
its event ids and ``accept``: the scenario codes an alert on it may lead with (an
enumeration through an application account may first show as a novel template).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from privacy.audit.sim_world import TZ, Person, World

__all__ = ["VARIANTS", "inject"]

VARIANTS: dict[str, tuple[str, ...]] = {
    "BULK_EXPORT": ("base", "slow", "split", "app"),
    "MANY_CUSTOMERS": ("base", "slow"),
    "SLOW_DRIP": ("base",),
    "OFF_HOURS": ("base", "split", "dayoff"),
    "ID_ENUMERATION": ("base", "slow", "range", "app"),
    "WATCHLIST": ("base", "split"),
    "SENSITIVE_FIRST_TOUCH": ("base",),
    "SERVICE_INTERACTIVE": ("base",),
    "NEW_SOURCE": ("base",),
    "ERROR_BURST": ("base",),
    "INJECTION": ("base",),
    "PRIVILEGE_CHANGE": ("base", "dba"),
    "MASS_MODIFY": ("base", "app"),
    "NOVEL_TEMPLATE": ("base",),
}

_ACCEPT: dict[tuple[str, str], tuple[str, ...]] = {
    ("BULK_EXPORT", "slow"): ("BULK_EXPORT", "MANY_CUSTOMERS"),
    ("BULK_EXPORT", "app"): ("BULK_EXPORT", "NOVEL_TEMPLATE", "SERVICE_INTERACTIVE"),
    ("MANY_CUSTOMERS", "slow"): ("MANY_CUSTOMERS", "SLOW_DRIP"),
    ("SLOW_DRIP", "base"): ("SLOW_DRIP", "MANY_CUSTOMERS"),
    ("ID_ENUMERATION", "app"): ("ID_ENUMERATION", "NOVEL_TEMPLATE", "BULK_EXPORT"),
    ("ID_ENUMERATION", "range"): ("ID_ENUMERATION", "BULK_EXPORT"),
    ("SERVICE_INTERACTIVE", "base"): ("SERVICE_INTERACTIVE",),
    ("MASS_MODIFY", "app"): ("MASS_MODIFY", "NOVEL_TEMPLATE"),
}


class _Injector:
    def __init__(self, w: World) -> None:
        self.w = w
        self.r = w.r
        self.s = w.s
        self.busy: dict[str, list[tuple[int, int]]] = {}
        self.inc_rows: dict[int, list[int]] = {}
        # each actor's first active day: incidents come after its own warm-up
        self.first: dict[str, int] = {}
        start = w.day_start(0)
        for row in w.rows:
            d, name = int((row[0] - start) // 86400), row[1].name
            if d < self.first.get(name, 1 << 30):
                self.first[name] = d

    def pick(self, works: Sequence[str], span: int, *, workday: bool = True,
             on_shift: bool = True, day_only: bool = False) -> tuple[Person, int]:
        w, r = self.w, self.r
        cands = [p for p in w.people if p.work in works]
        b = w.bank
        for attempt in range(2000):
            p = r.choice(cands)
            d = r.randint(b.warmup + 2, b.days - span)
            if d < max(p.start_day, self.first.get(p.name, 0)) + b.warmup:
                continue
            if p.move_day >= 0 and d + span > p.move_day - 1 and d <= p.move_day + 7:
                continue
            if workday and not w.workday(d):
                continue
            if p.kind == "human" and on_shift and workday:
                sh = w.shift(p, d)
                if sh is None or (day_only and sh.name != "day"):
                    continue
            if day_only and p.spec is not None and (p.spec.rotate_days or p.spec.weekend_rota):
                continue
            taken = self.busy.get(p.name, [])
            if taken and attempt < 1500:
                continue
            if any(not (d + span - 1 < lo or d > hi) for lo, hi in taken):
                continue
            self.busy.setdefault(p.name, []).append((d, d + span - 1))
            return p, d
        raise ValueError("bank too small for the requested injections")

    def work_time(self, d: int) -> float:
        return self.w.day_start(d) + self.r.uniform(9.8, 15.0) * 3600

    def spread(self, p: Person, t0: float, n: int, span: float, inc: int,
               make: Callable[[int], tuple[str, int | None, str, str | None, str | None]],
               even: bool = False) -> float:
        r = self.r
        if even:
            times = [t0 + span * (i + r.uniform(0.1, 0.9)) / n for i in range(n)]
        else:
            times = sorted(t0 + r.uniform(0, span) for _ in range(n))
        for i, t in enumerate(times):
            sql, rows, status, ip, client = make(i)
            self.w.emit(t, p, sql, rows, status, ip, client, inc)
        return times[-1]

    def look(self, p: Person, c: int) -> tuple[str, int | None, str, None, None]:
        s = self.s
        return (f"SELECT {s.key}, {s.name}, {s.mobile}, {s.id_no} FROM {s.customer} WHERE "
                f"{s.key} = {s.lit(c)}", 1, "ok", None, None)

    def app(self) -> tuple[Person, int]:
        return self.pick(["app"], 1)

    # ------------------------------------------------------------------ scenarios
    def bulk_export(self, v: str, inc: int) -> tuple[Person, float, float, str]:
        s, r, w = self.s, self.r, self.w
        full = (f"SELECT * FROM {s.customer}", w.bank.customers)
        copy = (f"COPY (SELECT {s.key}, {s.name}, {s.id_no}, {s.mobile} FROM {s.customer}) TO "
                f"'/tmp/c{inc}.csv' WITH CSV", w.bank.customers)
        if v == "app":
            p, d = self.app()
            t0 = self.work_time(d)
            t1 = self.spread(p, t0, 1, 600, inc, lambda i: (*r.choice([full, copy]), "ok",
                                                            None, None))
            return p, t0, t1, "bulk read of the customer table through an application account"
        p, d = self.pick(["office", "manager", "desk"], 5 if v == "split" else 1)
        t0 = self.work_time(d)
        if v == "base":
            t1 = self.spread(p, t0, r.randint(1, 2), 1800, inc, lambda i: (
                *r.choice([full, copy]), "ok", None, None))
            return p, t0, t1, "bulk read or export of the customer table"
        if v == "slow":
            n, page = r.randint(8, 16), r.choice([2000, 5000])
            t1 = self.spread(p, t0 - 3600, n, 5 * 3600, inc, lambda i: (
                f"SELECT {s.key}, {s.name}, {s.id_no}, {s.mobile} FROM {s.customer} ORDER BY "
                f"{s.key} LIMIT {page} OFFSET {i * page}", page, "ok", None, None), even=True)
            return p, t0 - 3600, t1, f"{n} pages of {page} customers over five hours"
        days = [x for x in range(d, min(d + 5, w.bank.days)) if w.shift(p, x) is not None][:3]
        t0 = last = 0.0
        for day in days or [d]:
            start = self.work_time(day)
            last = self.spread(p, start, 1, 600, inc, lambda i: (
                f"SELECT {s.key}, {s.name}, {s.id_no}, {s.mobile}, {s.income} FROM "
                f"{s.customer} WHERE {s.income} > {r.randint(5, 50) * 10000}",
                r.randint(8000, 30000), "ok", None, None))
            t0 = t0 or start
        return p, t0, last, "large pulls of customers on three days"

    def many_customers(self, v: str, inc: int) -> tuple[Person, float, float, str]:
        p, d = self.pick(["desk", "contact"], 1)
        r, w = self.r, self.w
        sh = w.shift(p, d)
        start = sh.start if sh is not None else 9.0
        t0 = w.day_start(d) + (start + r.uniform(0.5, 2.0)) * 3600
        if v == "slow":
            n = r.randint(60, 110) * 4
            t1 = self.spread(p, t0, n, 4 * 3600, inc, lambda i: self.look(p, w.cust()))
            return p, t0, t1, f"{n} customers over four hours"
        n = r.randint(150, 500)
        t1 = self.spread(p, t0, n, 3000, inc, lambda i: self.look(p, w.cust()))
        return p, t0, t1, f"{n} distinct customers within an hour"

    def slow_drip(self, v: str, inc: int) -> tuple[Person, float, float, str]:
        p, d = self.pick(["desk"], 7, day_only=True)
        w, r = self.w, self.r
        days = [x for x in range(d, w.bank.days) if w.shift(p, x) is not None][:4]
        first = last = 0.0
        for x in days:
            base = w.day_start(x)
            for _ in range(r.randint(40, 60)):
                t = base + r.uniform(9.5, 16.5) * 3600
                sql, rows, *_ = self.look(p, w.cust())
                w.emit(t, p, sql, rows, inc=inc)
                first = t if not first else min(first, t)
                last = max(last, t)
        return p, first, last, f"40-60 extra customers a day on {len(days)} working days"

    def off_hours(self, v: str, inc: int) -> tuple[Person, float, float, str]:
        r, w = self.r, self.w
        if v == "dayoff":
            p, d = self.pick(["desk", "rm", "loans", "manager"], 1, workday=False,
                             on_shift=False, day_only=True)
            while w.workday(d) and d + 1 < w.bank.days:
                d += 1
            t0 = w.day_start(d) + r.uniform(10, 15) * 3600
            n = r.randint(6, 20)
            t1 = self.spread(p, t0, n, 3600, inc, lambda i: self.look(p, w.cust()))
            return p, t0, t1, f"{n} lookups on a day off"
        nights = 3 if v == "split" else 1
        p, d = self.pick(["desk", "rm", "loans", "manager", "office"], nights + 1,
                         day_only=True)
        t0 = t1 = 0.0
        for k in range(nights):
            start = w.day_start(d + k) + r.uniform(22.5, 25.5) * 3600
            n = r.randint(3, 8) if v == "split" else r.randint(8, 25)
            end = self.spread(p, start, n, 2400, inc, lambda i: self.look(p, w.cust()))
            t0 = t0 or start
            t1 = end
        return p, t0, t1, f"lookups at night on {nights} night(s)"

    def id_enumeration(self, v: str, inc: int) -> tuple[Person, float, float, str]:
        r, w, s = self.r, self.w, self.s
        start = r.randrange(w.bank.customers - 5000)
        if v == "app":
            p, d = self.pick(["app", "job"], 1)
            t0 = self.work_time(d)
            n = r.randint(3, 6)
            t1 = self.spread(p, t0, n, 1800, inc, lambda i: (
                f"SELECT {s.key}, {s.name}, {s.id_no}, {s.mobile} FROM {s.customer} WHERE "
                f"{s.key} BETWEEN {s.lit(start + i * 5000)} AND "
                f"{s.lit(start + (i + 1) * 5000 - 1)}", 5000, "ok", None, None))
            return p, t0, t1, "range scans of customer ids through a service account by day"
        p, d = self.pick(["desk", "contact"], 1)
        t0 = self.work_time(d)
        if v == "range":
            t1 = self.spread(p, t0, 3, 900, inc, lambda i: (
                f"SELECT {s.key}, {s.name}, {s.mobile} FROM {s.customer} WHERE {s.key} BETWEEN "
                f"{s.lit(start + i * 2000)} AND {s.lit(start + (i + 1) * 2000 - 1)}", 2000, "ok",
                None, None))
            return p, t0, t1, "wide BETWEEN ranges over customer ids"
        if v == "slow":
            n = r.randint(40, 80)
            t0 = w.day_start(d) + 9.6 * 3600
            t1 = self.spread(p, t0, n, 6 * 3600, inc, lambda i: self.look(p, start + i),
                             even=True)
            return p, t0, t1, f"{n} consecutive customer ids over six hours"
        n = r.randint(30, 120)
        t1 = self.spread(p, t0, n, 2400, inc, lambda i: self.look(p, start + i))
        return p, t0, t1, f"{n} consecutive customer ids"

    def watchlist(self, v: str, inc: int) -> tuple[Person, float, float, str]:
        r, w = self.r, self.w
        days = 3 if v == "split" else 1
        p, d = self.pick(["desk", "contact", "loans"], days)
        pool = r.choice([w.vips, w.colleagues])
        t0 = t1 = 0.0
        for k in range(days):
            if w.shift(p, d + k) is None and k:
                continue
            start = self.work_time(d + k)
            n = 1 if v == "split" else r.randint(1, 3)
            end = self.spread(p, start, n, 1200, inc, lambda i: self.look(p, r.choice(pool)))
            t0 = t0 or start
            t1 = end
        return p, t0, t1, "unexplained lookups of watch-listed customers"

    def sensitive_first_touch(self, v: str, inc: int) -> tuple[Person, float, float, str]:
        p, d = self.pick(["desk", "contact"], 1)
        r, w, s = self.r, self.w, self.s
        col = r.choice([s.address, s.income])
        t0 = self.work_time(d)
        t1 = self.spread(p, t0, r.randint(2, 6), 1800, inc, lambda i: (
            f"SELECT {s.key}, {s.name}, {col} FROM {s.customer} WHERE {s.key} = "
            f"{s.lit(w.cust())}", 1, "ok", None, None))
        return p, t0, t1, f"first reads of {s.customer}.{col}"

    def service_interactive(self, v: str, inc: int) -> tuple[Person, float, float, str]:
        p, d = self.app()
        r, w, s = self.r, self.w, self.s
        ip = f"10.{w.bank.subnet}.{r.randint(1, 9)}.{r.randint(10, 250)}"
        client = r.choice(["DBeaver 24.1", "Navicat Premium 16", "psql"])
        t0 = self.work_time(d)
        t1 = self.spread(p, t0, r.randint(4, 12), 2400, inc, lambda i: (
            f"SELECT {s.key}, {s.name}, {s.mobile} FROM {s.customer} WHERE {s.key} = "
            f"{s.lit(w.cust())}", 1, "ok", ip, client))
        return p, t0, t1, f"application account used from {client} at {ip}"

    def new_source(self, v: str, inc: int) -> tuple[Person, float, float, str]:
        p, d = self.pick(["desk", "contact", "office"], 1)
        r, w = self.r, self.w
        ip = f"172.{r.randint(16, 31)}.{r.randint(0, 255)}.{r.randint(2, 250)}"
        t0 = self.work_time(d)

        def make(i: int) -> tuple[str, int | None, str, str | None, str | None]:
            sql, rows, st, _, _ = self.look(p, w.cust())
            return sql, rows, st, ip, None
        t1 = self.spread(p, t0, r.randint(4, 15), 2400, inc, make)
        return p, t0, t1, f"statements from a never-seen address {ip}"

    def error_burst(self, v: str, inc: int) -> tuple[Person, float, float, str]:
        p, d = self.pick(["desk", "contact", "office"], 1)
        r, s = self.r, self.s
        t0 = self.work_time(d)
        t1 = self.spread(p, t0, r.randint(15, 40), 500, inc, lambda i: (
            f"SELECT * FROM {r.choice(s.restricted)} WHERE emp_no = {r.randint(1, 9999)}", None,
            r.choice(["denied", "denied", "error"]), None, None))
        return p, t0, t1, "failed or denied statements in under ten minutes"

    def injection(self, v: str, inc: int) -> tuple[Person, float, float, str]:
        p, d = self.app()
        r, w, s = self.r, self.w, self.s
        shapes = [f"SELECT {s.acct_no}, {s.balance} FROM {s.account} WHERE {s.acct_cust} = "
                  "'{c}' OR '1'='1'",
                  f"SELECT {s.acct_no}, {s.balance} FROM {s.account} WHERE {s.acct_cust} = {{c}} "
                  "UNION SELECT NULL, usename FROM pg_user--",
                  f"SELECT {s.acct_no}, {s.balance} FROM {s.account} WHERE {s.acct_cust} = {{c}}; "
                  f"DROP TABLE {s.account}--",
                  f"SELECT {s.acct_no}, {s.balance} FROM {s.account} WHERE {s.acct_cust} = {{c}} "
                  "AND pg_sleep(5) IS NULL--"]
        t0 = self.work_time(d)
        t1 = self.spread(p, t0, r.randint(5, 20), 1800, inc, lambda i: (
            r.choice(shapes).format(c=s.cid(w.cust())), r.choice([None, 0, 3]),
            r.choice(["ok", "error", "error"]), None, None))
        return p, t0, t1, "injection-shaped statements through the application"

    def privilege_change(self, v: str, inc: int) -> tuple[Person, float, float, str]:
        r, s, w = self.r, self.s, self.w
        if v == "dba":
            p, d = self.pick(["dba"], 1)
            t0 = w.day_start(d) + r.uniform(20.5, 23.5) * 3600
            sqls = [f"ALTER USER {p.name} WITH SUPERUSER", f"ALTER ROLE {p.name} SUPERUSER",
                    f"GRANT ALL PRIVILEGES ON {s.customer} TO {p.name} WITH GRANT OPTION"]
            t1 = self.spread(p, t0, 1, 600, inc, lambda i: (r.choice(sqls), None, "ok", None,
                                                            None))
            return p, t0, t1, "a DBA making itself superuser late in the evening"
        p, d = self.pick(["desk", "office", "contact", "app"], 1)
        t0 = self.work_time(d)
        sqls = [f"GRANT SELECT ON {s.customer} TO {p.name}",
                f"ALTER USER {p.name} WITH SUPERUSER",
                f"CREATE USER tmp_{r.randint(100, 999)} WITH PASSWORD 'Passw0rd!'",
                f"GRANT ALL PRIVILEGES ON {s.account} TO {p.name}"]
        t1 = self.spread(p, t0, r.randint(1, 3), 900, inc, lambda i: (
            r.choice(sqls), None, r.choice(["ok", "denied"]), None, None))
        return p, t0, t1, "privilege change by a non-DBA"

    def mass_modify(self, v: str, inc: int) -> tuple[Person, float, float, str]:
        r, s = self.r, self.s
        if v == "app":
            p, d = self.app()
        else:
            p, d = self.pick(["desk", "manager"], 1)
        t0 = self.work_time(d)
        sqls = [(f"UPDATE {s.account} SET status = 'frozen'", r.randint(100000, 400000)),
                (f"DELETE FROM {s.txn} WHERE {s.txn_time} < '2025-01-01'",
                 r.randint(100000, 900000)),
                (f"UPDATE {s.customer} SET {s.mobile} = NULL WHERE {s.branch} = '03'",
                 r.randint(5000, 20000))]
        t1 = self.spread(p, t0, 1, 60, inc, lambda i: (*r.choice(sqls), "ok", None, None))
        return p, t0, t1, "mass update or delete"

    def novel_template(self, v: str, inc: int) -> tuple[Person, float, float, str]:
        p, d = self.app()
        r, s = self.r, self.s
        a = f"q{inc}"
        shapes = [f"SELECT {a}.{s.key}, {a}.{s.name}, {a}.{s.mobile} FROM {s.customer} {a} WHERE "
                  f"{a}.{s.mobile} = '{{m}}' AND {a}.{s.branch} = '{{b}}'",
                  f"SELECT {a}.{s.card_no}, {a}.{s.credit_limit} FROM {s.card} {a} WHERE "
                  f"{a}.status = 'blocked' AND {a}.{s.credit_limit} > {{b}}"]
        shape = r.choice(shapes)
        t0 = self.work_time(d)
        t1 = self.spread(p, t0, r.randint(5, 30), 3000, inc, lambda i: (
            shape.format(m=f"13{r.randint(10**8, 10**9 - 1)}", b=r.randint(1, 30)),
            r.randint(0, 2), "ok", None, None))
        return p, t0, t1, "statements of a template the application never ran"


def inject(w: World, per_variant: int) -> tuple[list[dict[str, Any]], dict[int, list[int]]]:
    """Add the incidents to ``w.rows``; return the answer key's incidents (without event
    ids) and, per incident number, the indexes of its rows in ``w.rows``."""
    inj = _Injector(w)
    incidents: list[dict[str, Any]] = []
    rows: dict[int, list[int]] = {}
    for code, variants in VARIANTS.items():
        for v in variants:
            for _ in range(per_variant):
                n = len(incidents)
                before = len(w.rows)
                p, t0, t1, what = getattr(inj, code.lower())(v, n)
                rows[n] = list(range(before, len(w.rows)))
                incidents.append({"id": f"INC-{n:04d}", "scenario": code, "variant": v,
                                  "accept": list(_ACCEPT.get((code, v), (code,))),
                                  "actor": p.name,
                                  "start": datetime.fromtimestamp(t0, TZ).isoformat(),
                                  "end": datetime.fromtimestamp(t1, TZ).isoformat(),
                                  "description": what})
    return incidents, rows
