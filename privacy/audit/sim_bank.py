"""Bank profiles for the generalisation harness: the simulated bank as a parameter.

A :class:`BankProfile` fixes everything about a simulated bank that detection must *not*
depend on: its schema (table and column names, customer-number format), its role mix and
role labels, shift rotas (late shifts, evening duty, weekend rotas, rota changes), its
application accounts and nightly jobs (range scans over the customer table, exports,
purges), which tables record service (contact logs, cases, transactions, loan
applications), how often staff record what they do, the size of its watch lists, its own
closing days and make-up working days, how often its DBAs grant roles, new hires and
branch transfers. :func:`random_bank` draws one from a seed, so a harness can evaluate
detection on banks nobody tuned it on (:mod:`privacy.audit.sim_world` makes the traffic).

Detection reads none of this: only the events, the catalogue (:meth:`BankProfile.catalog_yaml`)
and the lists that bank's compliance team would write.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta

__all__ = ["Schema", "Shift", "RoleSpec", "AppSpec", "JobSpec", "BankProfile", "random_bank",
           "WORKS"]

#: What each kind of staff does all day (the role *labels* differ per bank).
WORKS = ("desk", "contact", "rm", "loans", "office", "manager", "dba")


@dataclass(frozen=True)
class Schema:
    """Physical names of one bank's tables and columns (logical name -> physical)."""

    customer: str
    key: str
    name: str
    id_no: str
    mobile: str
    address: str
    income: str
    branch: str
    account: str
    acct_no: str
    acct_cust: str
    balance: str
    card: str
    card_no: str
    card_cust: str
    credit_limit: str
    txn: str
    txn_cust: str
    txn_acct: str
    txn_amount: str
    txn_staff: str
    txn_time: str
    contact: str | None
    contact_cust: str
    contact_staff: str
    contact_note: str
    case: str | None
    case_cust: str
    case_staff: str
    case_kind: str
    loan: str | None
    loan_cust: str
    loan_staff: str
    loan_amount: str
    restricted: tuple[str, ...]
    int_ids: bool
    id_prefix: str
    id_digits: int
    id_base: int

    def cid(self, n: int) -> str:
        """The customer number of customer ``n`` as the bank writes it."""
        if self.int_ids:
            return str(self.id_base + n)
        return f"{self.id_prefix}{self.id_base + n:0{self.id_digits}d}"

    def lit(self, n: int) -> str:
        """Customer ``n``'s number as a SQL literal."""
        c = self.cid(n)
        return c if self.int_ids else f"'{c}'"


@dataclass(frozen=True)
class Shift:
    """Working hours of one shift (local hours; ``end`` may pass midnight, e.g. 25.5)."""

    name: str
    start: float
    end: float


@dataclass(frozen=True)
class RoleSpec:
    """One group of staff doing the same work."""

    work: str
    role: str
    count: int
    departments: tuple[str, ...]
    shifts: tuple[Shift, ...]
    rotate_days: int = 0
    """Days per rota period (0: each person keeps one shift)."""
    weekend_rota: bool = False
    """Works through weekends and holidays with rotating days off (5 on, 2 off)."""
    evening_duty: bool = False
    """One member per department works the last shift each working day, in turn."""
    saturday: bool = False
    """Departments open on Saturdays, staffed in turn."""
    visits: float = 0.0
    client: str = "desk"


@dataclass(frozen=True)
class AppSpec:
    """An application account serving customers around the clock."""

    name: str
    rate: int
    client: str
    night_share: float
    writes: bool


@dataclass(frozen=True)
class JobSpec:
    """A nightly (or weekly) job run by a service account."""

    name: str
    kind: str  # range_scan | export | purge | refresh
    hour: float
    chunk: int
    weekly: int = -1
    """Weekday it runs on (0 = Monday), -1 for every night."""
    client: str = "etl"


@dataclass(frozen=True)
class BankProfile:
    """A simulated bank (see the module docstring)."""

    name: str
    seed: int
    start: date
    days: int
    warmup: int
    schema: Schema
    roles: tuple[RoleSpec, ...]
    apps: tuple[AppSpec, ...]
    jobs: tuple[JobSpec, ...]
    customers: int
    naming: str
    subnet: int
    vips: int
    watch_visit_share: float
    record_share: float
    """Share of service visits after which the handler writes a record naming the customer."""
    rm_record_share: float
    watch_record_share: float = 1.0
    """Share of visits of watch-listed customers by service staff that are recorded (a
    bank's policy: VIP and staff-account servicing is logged)."""
    closing_days: tuple[date, ...] = ()
    extra_workdays: tuple[date, ...] = ()
    dba_grants_per_day: float = 0.5
    dba_night_share: float = 0.1
    new_hires: int = 2
    transfers: int = 1
    rota_change: bool = True
    per_variant: int = 1
    error_rate: float = 0.005
    hashed_lists: bool = False
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def end(self) -> date:
        """The first day after the traffic."""
        return self.start + timedelta(days=self.days)

    def catalog_yaml(self) -> str:
        """The catalogue this bank's compliance team wrote (JR/T classes, customer keys)."""
        s = self.schema
        cols: list[tuple[str, str, str]] = [
            (s.customer, s.key, "{class: C2, customer_key: true}"),
            (s.customer, s.name, "{class: C3, tags: [cn_name]}"),
            (s.customer, s.id_no, "{class: C3, tags: [cn_resident_id], customer_key: true}"),
            (s.customer, s.mobile, "{class: C3, tags: [cn_mobile]}"),
            (s.customer, s.address, "{class: C3}"),
            (s.customer, s.income, "{class: C3}"),
            (s.customer, s.branch, "{}"),
            (s.customer, "updated_at", "{}"),
            (s.account, s.acct_no, "{class: C2}"),
            (s.account, s.acct_cust, "{class: C2, customer_key: true}"),
            (s.account, s.balance, "{class: C2}"),
            (s.account, "status", "{}"),
            (s.account, s.branch, "{}"),
            (s.card, s.card_no, "{class: C3, customer_key: true}"),
            (s.card, s.card_cust, "{class: C2, customer_key: true}"),
            (s.card, s.credit_limit, "{class: C2}"),
            (s.card, "status", "{}"),
            (s.txn, s.txn_cust, "{class: C2, customer_key: true}"),
            (s.txn, s.txn_acct, "{class: C2}"),
            (s.txn, s.txn_amount, "{class: C2}"),
            (s.txn, s.txn_staff, "{}"),
            (s.txn, s.txn_time, "{}"),
            (s.txn, s.branch, "{}"),
        ]
        if s.contact:
            cols += [(s.contact, s.contact_cust, "{class: C2, customer_key: true}"),
                     (s.contact, s.contact_staff, "{}"),
                     (s.contact, s.contact_note, "{class: C3}"),
                     (s.contact, "created_at", "{}")]
        if s.case:
            cols += [(s.case, s.case_cust, "{class: C2, customer_key: true}"),
                     (s.case, s.case_staff, "{}"), (s.case, s.case_kind, "{}"),
                     (s.case, "status", "{}")]
        if s.loan:
            cols += [(s.loan, s.loan_cust, "{class: C2, customer_key: true}"),
                     (s.loan, s.loan_staff, "{}"), (s.loan, s.loan_amount, "{class: C2}")]
        cols += [("stage_" + s.customer.rsplit(".", 1)[-1], s.key,
                  "{class: C2, customer_key: true}"),
                 ("stage_" + s.customer.rsplit(".", 1)[-1], s.name, "{class: C3}")]
        lines = ["version: 1", "columns:"]
        lines += [f"  {t}.{c}: {v}" for t, c, v in cols]
        return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- vocabularies
_V: dict[str, list[str]] = {
    "schema": ["", "", "core.", "cbs.", "crm."],
    "customer": ["customers", "cust_master", "client_info", "party", "kh_jbxx",
                 "customer_profile"],
    "key": ["cust_id", "client_no", "party_id", "cust_no", "khbh"],
    "name": ["name", "cust_name", "full_name", "xm"],
    "id_no": ["id_no", "cert_no", "id_card", "zjhm"],
    "mobile": ["mobile", "phone", "mobile_no", "sjhm"],
    "address": ["home_address", "addr", "address", "jtdz"],
    "income": ["annual_income", "income", "yearly_income", "nsr"],
    "branch": ["branch_id", "org_no", "branch_code", "jgh"],
    "account": ["accounts", "acct_master", "deposit_acct", "zh_info"],
    "acct_no": ["acct_no", "account_no", "zh"],
    "balance": ["balance", "bal", "ye", "avail_bal"],
    "card": ["cards", "card_info", "bank_card", "kp_info"],
    "card_no": ["card_no", "card_num", "kh"],
    "credit_limit": ["credit_limit", "card_limit", "ed"],
    "txn": ["transactions", "txn_journal", "trade_detail", "jy_mx"],
    "amount": ["amount", "txn_amt", "je"],
    "staff": ["teller_id", "staff_no", "oper_id", "gyh"],
    "time": ["txn_time", "trade_time", "jysj"],
    "contact": ["contact_log", "call_notes", "interaction", "service_log", "crm_contact",
                "visit_record"],
    "note": ["note", "remark", "summary", "bz"],
    "case": ["cases", "complaint", "service_request", "ticket"],
    "kind": ["case_type", "category", "kind"],
    "loan": ["loan_application", "credit_apply", "loan_req"],
    "restricted": ["hr.employees", "payroll.salary", "sec.user_keys", "hr.appraisal",
                   "sec.admin_tokens"],
    "desk": ["teller", "counter_clerk", "gy", "branch_teller"],
    "contact_role": ["call_centre", "cc_agent", "kf_agent", "contact_agent"],
    "rm": ["private_banker", "rm", "wealth_advisor", "khjl"],
    "loans": ["loan_officer", "credit_officer", "xd_officer"],
    "office": ["risk_analyst", "compliance_analyst", "ops_analyst", "data_analyst"],
    "manager": ["branch_manager", "wd_manager", "branch_head"],
    "dba": ["dba", "db_admin", "dbadmin", "it_dba", "platform_ops"],
    "apps": ["core", "mobile", "crm", "cards", "loans", "wealth", "payments", "counter", "ebank",
             "risk"],
    "app_style": ["svc_{}", "app_{}", "{}_svc", "sys{}"],
    "job_style": ["batch_{}", "etl_{}", "job{}", "{}_nightly"],
    "desk_client": ["teller-desk/5.1", "gm-counter/2.0", "branch-terminal/3.3"],
    "cc_client": ["crm-console/3.0", "cc-desk/7.2", "kf-workbench/1.4"],
    "rm_client": ["wealth-desk/1.8", "rm-portal/2.2"],
    "office_client": ["DBeaver 24.1", "psql", "Navicat Premium 16", "DataGrip 2024.2"],
}


def _shift(name: str, start: float, hours: float) -> Shift:
    return Shift(name, start, start + hours)


def random_bank(seed: int, *, actors: int = 300, days: int = 21,
                start: date | None = None, per_variant: int = 1) -> BankProfile:
    """Draw a bank from ``seed``: its schema, roles, rotas, jobs, lists and calendar.

    Parameters
    ----------
    seed:
        Same seed, same bank.
    actors:
        Roughly how many principals (staff plus service accounts).
    days:
        Days of traffic (at least 18: a warm-up of 7-9 days, then the incidents).
    start:
        First day (default: a Monday drawn in 2026 from the seed).
    per_variant:
        Injected incidents per scenario variant.
    """
    if days < 18 or actors < 60:
        raise ValueError("a bank needs at least 60 actors and 18 days")
    r = random.Random(f"bank-{seed}")

    def pick(key: str) -> str:
        return r.choice(_V[key])

    if start is None:
        start = date(2026, 1, 5) + timedelta(weeks=r.randrange(0, 44))
    pre = pick("schema")
    cust = pre + pick("customer")
    key = pick("key")
    int_ids = r.random() < 0.6
    schema = Schema(
        customer=cust, key=key, name=pick("name"), id_no=pick("id_no"), mobile=pick("mobile"),
        address=pick("address"), income=pick("income"), branch=pick("branch"),
        account=pre + pick("account"), acct_no=pick("acct_no"), acct_cust=key,
        balance=pick("balance"), card=pre + pick("card"), card_no=pick("card_no"),
        card_cust=key, credit_limit=pick("credit_limit"), txn=pre + pick("txn"),
        txn_cust=key, txn_acct=pick("acct_no"), txn_amount=pick("amount"),
        txn_staff=pick("staff"), txn_time=pick("time"),
        contact=(pre + pick("contact")) if r.random() < 0.85 else None,
        contact_cust=key, contact_staff=pick("staff"), contact_note=pick("note"),
        case=(pre + pick("case")) if r.random() < 0.7 else None,
        case_cust=key, case_staff=pick("staff"), case_kind=pick("kind"),
        loan=(pre + pick("loan")) if r.random() < 0.7 else None,
        loan_cust=key, loan_staff=pick("staff"), loan_amount=pick("amount"),
        restricted=tuple(r.sample(_V["restricted"], 3)), int_ids=int_ids,
        id_prefix="" if int_ids else r.choice(["C", "KH", "P"]),
        id_digits=r.choice([8, 10, 12]), id_base=r.choice([1, 10_000_000, 20_000_000, 60_000]))
    n_app = max(3, round(actors * r.uniform(0.015, 0.03)))
    n_job = max(2, round(actors * r.uniform(0.008, 0.015)))
    n_dba = max(2, round(actors * r.uniform(0.01, 0.02)))
    humans = actors - n_app - n_job - n_dba
    weights = {"desk": r.uniform(0.3, 0.5), "contact": r.uniform(0.15, 0.3),
               "rm": r.uniform(0.05, 0.1), "loans": r.uniform(0.04, 0.1),
               "office": r.uniform(0.05, 0.12), "manager": r.uniform(0.04, 0.08)}
    total = sum(weights.values())
    counts = {w: max(3, round(humans * v / total)) for w, v in weights.items()}
    n_branch = max(3, counts["desk"] // r.randint(6, 10))
    branch_names = [f"{r.choice(['branch-', 'wd', 'zh-', 'br'])}{i + 1:02d}" for i in range(1)]
    bstyle = branch_names[0][:-2]
    branches = tuple(f"{bstyle}{i + 1:02d}" for i in range(n_branch))
    day_start = r.choice([8.0, 8.5, 9.0])
    day = _shift("day", day_start, r.choice([8.5, 9.0]))
    late_start = r.choice([12.0, 12.5, 13.0, 14.0])
    late = _shift("late", late_start, r.choice([8.5, 9.0]))
    early = _shift("early", r.choice([7.0, 7.5, 8.0]), 8.5)
    cc_shifts = (early, _shift("mid", 10.0, 8.5), late)
    roles = [
        RoleSpec("desk", pick("desk"), counts["desk"], branches, (day, late),
                 evening_duty=r.random() < 0.6, saturday=r.random() < 0.5,
                 visits=r.uniform(14, 24), client=pick("desk_client")),
        RoleSpec("contact", pick("contact_role"), counts["contact"],
                 tuple(f"cc-{c}" for c in r.sample(["north", "south", "east", "west"],
                                                   r.randint(1, 2))),
                 cc_shifts if r.random() < 0.7 else (early, late),
                 rotate_days=r.choice([7, 14]), weekend_rota=r.random() < 0.8,
                 visits=r.uniform(22, 36), client=pick("cc_client")),
        RoleSpec("rm", pick("rm"), counts["rm"], ("private-banking",), (day,),
                 visits=r.uniform(6, 12), client=pick("rm_client")),
        RoleSpec("loans", pick("loans"), counts["loans"], branches[: max(2, n_branch // 2)],
                 (day,), visits=r.uniform(5, 10), client=pick("desk_client")),
        RoleSpec("office", pick("office"), counts["office"],
                 (r.choice(["risk", "risk-mgmt", "fxb"]), "compliance"), (day,),
                 client=pick("office_client")),
        RoleSpec("manager", pick("manager"), counts["manager"], branches, (day,),
                 visits=r.uniform(2, 5), client=r.choice(["branch-portal/2.4", "psql"])),
        RoleSpec("dba", pick("dba"), n_dba, ("it-dba",), (day,), client="psql"),
    ]
    app_names = r.sample(_V["apps"], min(n_app, len(_V["apps"])))
    astyle = pick("app_style")
    apps = tuple(AppSpec(astyle.format(a), r.randint(500, 1400),
                         f"{a}-service/{r.randint(1, 4)}.{r.randint(0, 9)} (JDBC)",
                         r.uniform(0.02, 0.12), r.random() < 0.6) for a in app_names)
    jstyle = pick("job_style")
    kinds = ["range_scan", "export", "purge", "refresh"]
    r.shuffle(kinds)
    jobs = []
    for i in range(n_job):
        kind = "range_scan" if i == 0 else kinds[i % len(kinds)]
        jobs.append(JobSpec(jstyle.format(["dw", "risk", "crm", "rpt", "aml", "mkt"][i % 6]
                                          + ("" if i < 6 else str(i))), kind,
                            r.uniform(0.5, 4.0), r.choice([2000, 5000, 10000]),
                            weekly=r.choice([-1, -1, -1, 6])))
    # a start inside a long holiday (Spring Festival, National Day) gets the days back,
    # so every actor has its warm-up before the incidents
    from privacy.audit.rules import Rules

    cal = Rules.default().calendar
    days += sum(1 for d in range(14) if (start + timedelta(days=d)).weekday() < 5
                and not cal.is_workday(start + timedelta(days=d)))
    year_days = [start + timedelta(days=d) for d in range(days)]
    closing = tuple(d for d in year_days if d.weekday() < 5 and r.random() < 0.03)
    extra_work = tuple(d for d in year_days if d.weekday() == 5 and r.random() < 0.1)
    watch_record = r.uniform(0.99, 1.0)
    return BankProfile(
        watch_record_share=watch_record, name=f"bank-{seed}", seed=seed, start=start,
        days=days, warmup=r.randint(7, 9),
        schema=schema, roles=tuple(roles), apps=apps, jobs=tuple(jobs),
        customers=r.randint(60_000, 250_000), naming=r.choice(["emp", "pinyin", "dept"]),
        subnet=r.randint(16, 200), vips=r.randint(100, 400),
        watch_visit_share=r.uniform(0.005, 0.02), record_share=r.uniform(0.97, 1.0),
        rm_record_share=r.uniform(0.6, 0.85), closing_days=closing,
        extra_workdays=extra_work, dba_grants_per_day=r.uniform(0.3, 1.2),
        dba_night_share=r.uniform(0.0, 0.15), new_hires=r.randint(1, 4),
        transfers=r.randint(0, 2), rota_change=r.random() < 0.7, per_variant=per_variant,
        error_rate=r.uniform(0.002, 0.01), hashed_lists=r.random() < 0.4)
