"""Everyday query traffic of a :class:`~privacy.audit.sim_bank.BankProfile` bank.

:class:`World` builds the staff and service accounts of a profile and emits their normal
statements day by day: service visits (customer lookups followed, most of the time, by a
record naming the customer: a contact-log entry, a posted transaction, a case, a loan
application), colleagues of the same branch looking at the same customer, relationship
managers working their portfolios (VIPs among them), back-office aggregates, DBAs'
maintenance and routine role grants (and a weekly evening change window), application
accounts around the clock, and nightly jobs (range scans over the customer table in
chunks, exports, purges, staging refreshes). Rotas follow the profile: day and late
shifts, evening duty in turn, Saturday openings, call-centre weekend rotas, rota changes
after the warm-up; new hires start mid-way and some staff move branch.

:mod:`privacy.audit.sim_attacks` adds the incidents; :func:`privacy.audit.sim_harness.generate`
puts both together.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from privacy.audit.rules import Rules
from privacy.audit.sim_bank import BankProfile, RoleSpec, Shift

__all__ = ["Person", "World", "TZ"]

TZ = timezone(timedelta(hours=8))
_SURNAMES = ["wang", "li", "zhang", "liu", "chen", "yang", "zhao", "huang", "zhou", "wu", "xu",
             "sun", "hu", "zhu", "gao", "lin", "he", "guo", "ma", "luo"]
_GIVEN = ["wei", "fang", "na", "min", "jing", "li", "qiang", "lei", "jun", "yang", "yong",
          "yan", "jie", "tao", "ming", "chao", "xiu", "xia", "ping", "gang"]

Row = tuple[float, "Person", str, "int | None", str, str, str, "int | None"]


@dataclass
class Person:
    """One principal of the simulated bank."""

    name: str
    kind: str
    role: str
    work: str
    department: str
    ips: list[str]
    client: str
    index: int = 0
    spec: RoleSpec | None = None
    start_day: int = 0
    move_day: int = -1
    move_to: tuple[str, str] = ("", "")
    late_from: int = 0
    portfolio: list[int] = field(default_factory=list)


class World:
    """Population and normal traffic of one bank (``rows`` grows as days are emitted)."""

    def __init__(self, bank: BankProfile) -> None:
        self.bank = bank
        self.s = bank.schema
        self.r = random.Random(f"world-{bank.seed}")
        self.cal = Rules.default().calendar
        self.rows: list[Row] = []
        r = self.r
        special = r.sample(range(bank.customers), bank.vips + 2000)
        self.vips = special[:bank.vips]
        self.people: list[Person] = []
        self._build()
        n_staff = sum(1 for p in self.people if p.kind == "human")
        self.colleagues = special[bank.vips:bank.vips + n_staff]
        self.watch = set(self.vips) | set(self.colleagues)
        self.rare = special[bank.vips + n_staff:]
        self.excluded = set(special)
        for p in self.people:
            if p.work == "rm":
                p.portfolio = r.sample(self.vips, min(len(self.vips), r.randint(15, 40)))
        self.by_dept: dict[str, list[Person]] = {}
        for p in self.people:
            self.by_dept.setdefault(p.department, []).append(p)

    # ----------------------------------------------------------------- population
    def _name(self, spec: RoleSpec, i: int, dept: str, taken: set[str]) -> str:
        r = self.r
        while True:
            style = self.bank.naming
            if style == "emp":
                name = f"E{r.randint(10000, 99999)}"
            elif style == "pinyin":
                name = f"{r.choice(_SURNAMES)}.{r.choice(_GIVEN)}{r.randint(1, 99)}"
            else:
                name = f"u{dept.replace('-', '')[:6]}{spec.work[:2]}{i:03d}"
            if name not in taken:
                taken.add(name)
                return name

    def _build(self) -> None:
        b, r = self.bank, self.r
        taken: set[str] = set()
        net = f"10.{b.subnet}"
        for spec in b.roles:
            for i in range(spec.count):
                dept = spec.departments[i % len(spec.departments)]
                if spec.work in ("desk", "loans", "manager"):
                    host = f"{net}.{spec.departments.index(dept) + 1}"
                elif spec.work == "contact":
                    host = f"{net}.{100 + spec.departments.index(dept)}"
                elif spec.work == "dba":
                    host = f"{net}.200"
                else:
                    host = f"{net}.{110 + (spec.work == 'rm')}"
                ips = [f"{host}.{r.randint(10, 250)}"]
                if r.random() < 0.25:
                    ips.append(f"{host}.{r.randint(10, 250)}")
                self.people.append(Person(self._name(spec, i, dept, taken), "human", spec.role,
                                          spec.work, dept, ips, spec.client, i, spec))
        humans = [p for p in self.people if p.work in ("desk", "contact", "loans")]
        for p in r.sample(humans, min(b.new_hires, len(humans))):
            p.start_day = r.randint(b.warmup + 1, b.days - 6)
        movers = [p for p in self.people if p.work == "desk" and not p.start_day]
        for p in r.sample(movers, min(b.transfers, len(movers))):
            depts = p.spec.departments if p.spec is not None else (p.department,)
            other = r.choice([d for d in depts if d != p.department] or [p.department])
            p.move_day = r.randint(b.warmup + 1, b.days - 4)
            p.move_to = (other, f"{net}.{depts.index(other) + 1}.{r.randint(10, 250)}")
        if b.rota_change:
            cc = [p for p in self.people if p.work == "contact"]
            for p in r.sample(cc, max(1, len(cc) // 5)):
                p.late_from = b.warmup + r.randint(1, 5)
        for i, a in enumerate(b.apps):
            self.people.append(Person(a.name, "service", "application", "app",
                                      f"app-{a.name}", [f"10.{b.subnet + 1}.{i}.{10 + j}"
                                                        for j in range(3)], a.client, i))
        for i, j in enumerate(b.jobs):
            self.people.append(Person(j.name, "service", "batch", "job", "data-ops",
                                      [f"10.{b.subnet + 2}.0.{10 + i}"], f"{j.client}-runner/1.9",
                                      i))

    # ----------------------------------------------------------------- calendar
    def day(self, d: int) -> date:
        return self.bank.start + timedelta(days=d)

    def day_start(self, d: int) -> float:
        x = self.day(d)
        return datetime(x.year, x.month, x.day, tzinfo=TZ).timestamp()

    def workday(self, d: int) -> bool:
        x = self.day(d)
        if x in self.bank.extra_workdays:
            return True
        return self.cal.is_workday(x) and x not in self.bank.closing_days

    def shift(self, p: Person, d: int) -> Shift | None:
        """The shift ``p`` works on day ``d`` (None: not working)."""
        spec = p.spec
        if spec is None or d < p.start_day:
            return None
        r = self.r
        if spec.weekend_rota:
            if (d + p.index * 3) % 7 in (0, 1):
                return None
        elif not self.workday(d):
            if not (spec.saturday and self.day(d).weekday() == 5
                    and self.cal.is_workday(self.day(d) - timedelta(days=1))
                    and (d // 7 + p.index) % 3 == 0):
                return None
            return Shift("saturday", 9.0, 16.0)
        if r.random() < 0.03:
            return None  # leave
        if spec.rotate_days:
            k = p.index + d // spec.rotate_days
            if p.late_from and d < p.late_from:
                k = 0
            return spec.shifts[k % len(spec.shifts)]
        if spec.evening_duty and len(spec.shifts) > 1:
            dept = self.by_dept[p.department]
            peers = [q for q in dept if q.spec is spec]
            if peers and peers[d % len(peers)] is p:
                return spec.shifts[-1]
        return spec.shifts[0]

    # ----------------------------------------------------------------- emit
    def cust(self) -> int:
        while True:
            c = self.r.randrange(self.bank.customers)
            if c not in self.excluded:
                return c

    def ip(self, p: Person, d: int) -> str:
        if p.move_day >= 0 and d >= p.move_day:
            return p.move_to[1]
        return self.r.choice(p.ips)

    def emit(self, ts: float, p: Person, sql: str, rows: int | None, status: str = "ok",
             ip: str | None = None, client: str | None = None, inc: int | None = None) -> None:
        self.rows.append((ts, p, sql, rows, status, ip or self.r.choice(p.ips),
                          client or p.client, inc))

    # ----------------------------------------------------------------- statements
    def lookup(self, p: Person, c: int) -> tuple[str, int]:
        """One customer lookup of the kind ``p``'s work does."""
        s, r = self.s, self.r
        k = s.lit(c)
        opts = [(f"SELECT {s.key}, {s.name}, {s.mobile}, {s.id_no} FROM {s.customer} "
                 f"WHERE {s.key} = {k}", 1),
                (f"SELECT {s.acct_no}, {s.balance}, status FROM {s.account} WHERE "
                 f"{s.acct_cust} = {k}", r.randint(1, 3))]
        if p.work in ("desk", "contact"):
            opts.append((f"SELECT {s.card_no}, status FROM {s.card} WHERE {s.card_cust} = {k}",
                         r.randint(0, 2)))
            opts.append((f"SELECT {s.txn_acct}, {s.txn_amount}, {s.txn_time} FROM {s.txn} "
                         f"WHERE {s.txn_cust} = {k} ORDER BY {s.txn_time} DESC LIMIT 20",
                         r.randint(0, 20)))
        if p.work == "rm":
            opts.append((f"SELECT {s.key}, {s.name}, {s.mobile}, {s.income} FROM {s.customer} "
                         f"WHERE {s.key} = {k}", 1))
        if p.work == "loans":
            opts.append((f"SELECT {s.key}, {s.name}, {s.address}, {s.income} FROM "
                         f"{s.customer} WHERE {s.key} = {k}", 1))
        return r.choice(opts)

    def record(self, p: Person, c: int) -> tuple[str, int] | None:
        """The record ``p`` writes after serving customer ``c`` (None: no table for it)."""
        s, r = self.s, self.r
        k = s.lit(c)
        me = f"'{p.name}'"
        contact = (f"INSERT INTO {s.contact} ({s.contact_cust}, {s.contact_staff}, "
                   f"{s.contact_note}) VALUES ({k}, {me}, '{r.choice(['call', 'visit', 'mail'])}"
                   f" {r.randint(1, 999)}')") if s.contact else None
        case = (f"INSERT INTO {s.case} ({s.case_cust}, {s.case_staff}, {s.case_kind}, status) "
                f"VALUES ({k}, {me}, '{r.choice(['card', 'fee', 'address', 'loan'])}', "
                "'open')") if s.case else None
        txn = (f"INSERT INTO {s.txn} ({s.txn_cust}, {s.txn_acct}, {s.txn_amount}, {s.txn_staff}, "
               f"{s.txn_time}) VALUES ({k}, '62{c:010d}01', {r.randint(1, 99999)}.00, {me}, "
               "now())")
        loan = (f"INSERT INTO {s.loan} ({s.loan_cust}, {s.loan_staff}, {s.loan_amount}) VALUES "
                f"({k}, {me}, {r.randint(1, 500) * 1000})") if s.loan else None
        upd = (f"UPDATE {s.customer} SET {s.mobile} = '13{r.randint(10**8, 10**9 - 1)}' WHERE "
               f"{s.key} = {k}")
        choices = {"desk": [txn, txn, contact, upd], "contact": [contact, contact, case],
                   "rm": [contact, case], "loans": [loan, loan, contact],
                   "manager": [case, contact, txn]}.get(p.work, [contact])
        opts = [x for x in choices if x is not None] or [txn]
        return r.choice(opts), 1

    def visit(self, p: Person, d: int, t: float, c: int, record_share: float) -> float:
        """One service visit: lookups, then (usually) a record; returns its end."""
        r = self.r
        ip = self.ip(p, d)
        n = r.randint(1, 3)
        for _ in range(n):
            sql, rows = self.lookup(p, c)
            status = "error" if r.random() < self.bank.error_rate else "ok"
            self.emit(t, p, sql, rows if status == "ok" else None, status, ip)
            t += r.uniform(15, 150)
        if r.random() < record_share:
            rec = self.record(p, c)
            if rec is not None:
                t += r.uniform(20, 600)
                self.emit(t, p, rec[0], rec[1], "ok", ip)
        if (p.work == "desk" and r.random() < 0.08
                and 9.5 <= (t - self.day_start(d)) / 3600 <= 16.5):
            helper = [q for q in self.by_dept.get(p.department, ()) if q.work == "manager"]
            if helper:
                q = r.choice(helper)
                sql, rows = self.lookup(q, c)
                self.emit(t + r.uniform(60, 1200), q, sql, rows, "ok")
        return t

    # ----------------------------------------------------------------- days
    def human_day(self, p: Person, d: int) -> None:
        sh = self.shift(p, d)
        if sh is None:
            return
        r, b = self.r, self.bank
        base = self.day_start(d)
        begin = (sh.start + r.uniform(-0.25, 0.4)) * 3600
        end = (sh.end + r.uniform(-0.4, 0.5)) * 3600
        load = r.lognormvariate(0, 0.15)
        spec = p.spec
        assert spec is not None
        n_visits = max(0, round(r.gauss(spec.visits * load, spec.visits ** 0.5 * 0.6)))
        for _ in range(n_visits):
            t = base + r.uniform(begin, end - 900)
            share = b.record_share
            if p.work == "rm":
                c = r.choice(p.portfolio) if r.random() < 0.7 else self.cust()
                share = b.rm_record_share if c in self.watch else b.record_share * 0.8
            elif r.random() < b.watch_visit_share:
                c = r.choice(self.vips) if r.random() < 0.7 else r.choice(self.colleagues)
                share = b.watch_record_share
            else:
                c = self.cust()
            self.visit(p, d, t, c, share)
        office = {"office": 20, "manager": 6, "dba": 8}.get(p.work, 0)
        for _ in range(max(0, round(r.gauss(office * load, office ** 0.5)))):
            self.office_query(p, base + r.uniform(begin, end), d)
        if p.work == "office" and r.random() < 0.5:
            for _ in range(r.randint(1, 6)):  # reviews of flagged customers
                c = self.cust()
                sql, rows = self.lookup(p, c)
                self.emit(base + r.uniform(begin, end), p, sql, rows, "ok", self.ip(p, d))
        if p.work == "dba":
            self.dba_day(p, d, base, begin, end)

    def office_query(self, p: Person, ts: float, d: int) -> None:
        s, r = self.s, self.r
        day = self.day(d - r.randint(1, 5)).isoformat()
        if p.work == "office":
            opts: list[tuple[str, int | None]] = [
                (f"SELECT {s.branch}, COUNT(*), SUM({s.balance}) FROM {s.account} GROUP BY "
                 f"{s.branch}", r.randint(8, 40)),
                (f"SELECT {s.branch}, SUM({s.txn_amount}) FROM {s.txn} WHERE {s.txn_time} >= "
                 f"'{day}' GROUP BY {s.branch}", r.randint(8, 40)),
                (f"SELECT COUNT(*) FROM {s.customer} WHERE updated_at >= '{day}'", 1),
                (f"SELECT {s.key}, {s.txn_amount} FROM {s.txn} WHERE {s.txn_amount} > "
                 f"{r.choice([50000, 100000, 200000])} AND {s.txn_time} >= '{day}'",
                 r.randint(5, 300))]
        elif p.work == "manager":
            opts = [(f"SELECT {s.txn_staff}, COUNT(*) FROM {s.txn} WHERE {s.branch} = "
                     f"'{p.department}' AND {s.txn_time} >= '{day}' GROUP BY {s.txn_staff}",
                     r.randint(3, 15)),
                    (f"SELECT {s.acct_no}, {s.balance} FROM {s.account} WHERE {s.branch} = "
                     f"'{p.department}' AND {s.balance} > {r.choice([500000, 1000000])}",
                     r.randint(10, 120))]
        else:
            opts = [("SELECT relname, n_live_tup FROM pg_stat_user_tables ORDER BY n_live_tup "
                     "DESC LIMIT 20", 20),
                    ("SELECT pid, state, query_start FROM pg_stat_activity WHERE state = "
                     "'active'", r.randint(1, 30)),
                    (f"VACUUM ANALYZE {s.txn}", None),
                    ("SELECT datname, numbackends FROM pg_stat_database", r.randint(3, 9))]
        sql, rows = r.choice(opts)
        status = "error" if r.random() < 0.02 else "ok"
        self.emit(ts, p, sql, rows if status == "ok" else None, status, self.ip(p, d))

    def dba_day(self, p: Person, d: int, base: float, begin: float, end: float) -> None:
        r, b, s = self.r, self.bank, self.s
        staff = [q for q in self.people if q.kind == "human" and q.work != "dba"]
        roles = sorted({q.role for q in staff})
        tables = [s.customer, s.account, s.txn, s.card] + [t for t in (s.contact, s.case, s.loan)
                                                            if t]
        k = 0
        while r.random() < b.dba_grants_per_day / (k + 1) and k < 4:
            k += 1
            who = r.choice(staff).name
            sql = r.choice([f"GRANT SELECT ON {r.choice(tables)} TO {who}",
                            f"GRANT {r.choice(roles)} TO {who}",
                            f"REVOKE SELECT ON {r.choice(tables)} FROM {who}",
                            f"GRANT SELECT, INSERT ON {r.choice(tables)} TO {who}"])
            self.emit(base + r.uniform(begin, end), p, sql, None, "ok", self.ip(p, d))
        dbas = [q for q in self.people if q.work == "dba"]
        window = self.day(d).weekday() == 3 and dbas[(d // 7) % len(dbas)] is p
        if window and r.random() < 0.5 + b.dba_night_share * 3:
            t = base + r.uniform(20.0, 21.0) * 3600
            for sql in (f"CREATE INDEX CONCURRENTLY ix_{r.randint(100, 999)} ON {s.txn} "
                        f"({s.txn_time})", f"ANALYZE {s.account}",
                        "SELECT pid, state, query_start FROM pg_stat_activity WHERE state = "
                        "'active'", f"VACUUM ANALYZE {s.customer}"):
                self.emit(t, p, sql, None, "ok", self.ip(p, d))
                t += r.uniform(120, 1800)

    def app_day(self, p: Person, d: int) -> None:
        r, s = self.r, self.s
        spec = self.bank.apps[p.index]
        base = self.day_start(d)
        n = round(spec.rate * r.uniform(0.85, 1.15))
        day_w = [1, 1, 1, 1, 1, 2, 4, 6, 8, 9, 9, 9, 9, 9, 9, 9, 8, 8, 8, 7, 6, 5, 3, 2]
        night = spec.night_share * sum(day_w) / 8
        weights = [w + (night if h < 6 or h > 21 else 0) for h, w in enumerate(day_w)]
        hours = r.choices(range(24), weights=weights, k=n)
        for h in hours:
            ts = base + h * 3600 + r.uniform(0, 3600)
            c = self.cust() if r.random() > 0.01 else r.choice(self.vips)
            k = s.lit(c)
            x = r.random()
            if x < 0.35:
                self.emit(ts, p, f"SELECT {s.acct_no}, {s.balance} FROM {s.account} WHERE "
                          f"{s.acct_cust} = {k}", r.randint(1, 3))
            elif x < 0.6:
                self.emit(ts, p, f"SELECT {s.key}, {s.name}, {s.mobile} FROM {s.customer} "
                          f"WHERE {s.key} = {k}", 1)
            elif x < 0.75 or not spec.writes:
                self.emit(ts, p, f"SELECT {s.card_no}, status FROM {s.card} WHERE "
                          f"{s.card_cust} = {k}", r.randint(0, 2))
            elif x < 0.9:
                self.emit(ts, p, f"INSERT INTO {s.txn} ({s.txn_cust}, {s.txn_acct}, "
                          f"{s.txn_amount}, {s.txn_time}) VALUES ({k}, '62{c:010d}01', "
                          f"{r.randint(1, 99999)}.00, now())", 1)
            else:
                self.emit(ts, p, f"UPDATE {s.account} SET {s.balance} = {s.balance} - "
                          f"{r.randint(1, 5000)} WHERE {s.acct_no} = '62{c:010d}01'", 1)

    def job_day(self, p: Person, d: int) -> None:
        r, s, b = self.r, self.s, self.bank
        spec = b.jobs[p.index]
        if spec.weekly >= 0 and self.day(d).weekday() != spec.weekly:
            return
        t = self.day_start(d) + (spec.hour + r.uniform(0, 0.3)) * 3600
        day = self.day(d - 1).isoformat()
        stage = "stage_" + s.customer.rsplit(".", 1)[-1]
        steps: list[tuple[str, int | None]]
        if spec.kind == "range_scan":
            steps = []
            for lo in range(0, b.customers, spec.chunk):
                hi = min(b.customers, lo + spec.chunk) - 1
                steps.append((f"SELECT {s.key}, {s.name}, {s.mobile}, {s.branch} FROM "
                              f"{s.customer} WHERE {s.key} BETWEEN {s.lit(lo)} AND "
                              f"{s.lit(hi)}", int((hi - lo + 1) * r.uniform(0.9, 0.99))))
        elif spec.kind == "export":
            steps = [(f"COPY (SELECT {s.key}, {s.name}, {s.id_no}, {s.mobile} FROM {s.customer} "
                      f"WHERE updated_at >= '{day}') TO '/data/out/cust_{day}.csv' WITH CSV",
                      r.randint(1500, 6000)),
                     (f"SELECT * FROM {s.txn} WHERE {s.txn_time} >= '{day}'",
                      r.randint(40000, 120000))]
        elif spec.kind == "purge":
            tab = s.contact or s.txn
            steps = [(f"DELETE FROM {tab} WHERE created_at < '{self.day(d - 400).isoformat()}'",
                      r.randint(300, 4000))]
        else:
            steps = [(f"TRUNCATE {stage}", None),
                     (f"INSERT INTO {stage} SELECT {s.key}, {s.name} FROM {s.customer} WHERE "
                      f"updated_at >= '{day}'", r.randint(1000, 8000))]
        for sql, rows in steps:
            self.emit(t, p, sql, rows)
            t += r.uniform(2, 40) if spec.kind == "range_scan" else r.uniform(60, 600)

    def run(self) -> None:
        """Emit every day's normal traffic."""
        for d in range(self.bank.days):
            for p in self.people:
                if p.kind == "human":
                    self.human_day(p, d)
                elif p.work == "app":
                    self.app_day(p, d)
                else:
                    self.job_day(p, d)
