"""Expert rules for query-audit detection, in YAML, validated with ``file:line`` errors.

A rules file sets the thresholds and windows of each scenario, the working-hours and
holiday calendar, interactive client names, workstation networks, which scenario folds
which into its alert (``subsumes``), and custom column rules. Every key is optional:
missing ones take the defaults of :data:`DEFAULT_RULES_YAML`. Example::

    version: 1
    rule_version: "bank-a-2026.04"
    learning_days: 7                    # and as many active days as working days in them
    calendar:
      timezone: "+08:00"
      working_hours: {start: "08:00", end: "19:00"}
      holidays_file: cn-2027.yaml       # dates published after the library's release
      holidays: ["2026-12-31"]          # a bank's own closing day
      workdays: ["2026-05-09"]          # make-up working days (调休)

Public holidays and make-up working days (调休) come from the maintained
``chinese-calendar`` package (``holidays_from: chinese-calendar``, the default; ``none``
for no built-in holidays). ``holidays_file`` (a YAML file with ``holidays:`` and
``workdays:`` lists, relative to the rules file) and the inline ``holidays`` and
``workdays`` lists override it date by date: a date listed as a holiday is no longer a
make-up day and the other way round. :attr:`Calendar.years` says which years the
calendar knows; detection notes events outside them.
    scenarios:
      BULK_EXPORT: {min_rows: 1000, factor: 10}
    custom:
      - id: salaries
        columns: [hr.salaries.amount]   # must exist in the catalogue
        code: SENSITIVE_FIRST_TOUCH
        score: 70

A custom rule naming a column the catalogue does not know is a
:class:`~privacy.errors.ConfigError` at its line.

Dates are written ``YYYY-MM-DD`` (quoted or not) between :data:`FIRST_DATE` and
:data:`LAST_DATE`; a range ``A..B`` names both ends and spans at most
:data:`MAX_RANGE_DAYS` days. A date listed both as a holiday and as a working day, in one
file or inline, is an error at its line. Working hours are ``"HH:MM"`` in quotes (YAML
reads an unquoted ``18:00`` as the number 1080) and end after they start, within one
day: late and night shifts belong in a rota file (``calendar.rota_file``). The time zone
takes the forms of ``--tz``. Numbers must be finite (no ``.nan`` or ``.inf``), durations
(``30m``, ``4h``, ``3d`` or seconds) at least 0 and at most ten years, ``window`` and
``within`` longer than 0, shares within 0..1 and scores within 0..100.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import math
import os
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from typing import Any

from privacy.audit.catalog import Catalog
from privacy.audit.explain import ExplainConfig, parse_explain
from privacy.audit.privilege import PrivilegeConfig, parse_privileges
from privacy.audit.rota import Rota
from privacy.audit.ruledoc import _clock, _compose, _Doc, _duration, _read_text, _version
from privacy.errors import ConfigError, InputError

__all__ = ["Rules", "Calendar", "CustomRule", "SCENARIOS", "DEFAULT_RULES_YAML",
           "HOLIDAY_SOURCES", "library_holidays"]

SCENARIOS: dict[str, str] = {
    "BULK_EXPORT": "bulk pull or export",
    "MANY_CUSTOMERS": "many distinct customers in a short time",
    "SLOW_DRIP": "slow drip of customer lookups over days",
    "OFF_HOURS": "access outside the actor's and peers' usual hours",
    "ID_ENUMERATION": "sequential customer-id enumeration",
    "WATCHLIST": "watch-listed customer (VIP or colleague) looked up",
    "SENSITIVE_FIRST_TOUCH": "first read of a sensitive column",
    "SERVICE_INTERACTIVE": "service account used interactively",
    "NEW_SOURCE": "new source address or client program",
    "ERROR_BURST": "burst of failed or denied statements",
    "INJECTION": "SQL-injection probing",
    "PRIVILEGE_CHANGE": "privilege change",
    "MASS_MODIFY": "mass update or delete",
    "NOVEL_TEMPLATE": "novel query template from an application account",
    "DENY_LIST": "deny-listed actor, address, client or template",
    "UNPARSEABLE": "statement could not be parsed",
}

#: Where the calendar's public holidays and make-up working days come from.
HOLIDAY_SOURCES = ("chinese-calendar", "none")


@functools.lru_cache(maxsize=4)
def library_holidays(source: str = "chinese-calendar") -> tuple[
        frozenset[date], frozenset[date], frozenset[int]]:
    """Public holidays, make-up working days and the years covered, from ``source``.

    ``chinese-calendar`` reads the State Council notices as the ``chinese-calendar``
    package records them (a new release follows each year's notice, usually in
    November). ``none`` gives no holidays.

    Raises
    ------
    ConfigError
        Unknown source, or the package is not installed.
    """
    if source == "none":
        return frozenset(), frozenset(), frozenset()
    if source != "chinese-calendar":
        raise ConfigError(f"calendar.holidays_from: unknown source {source!r} (expected one "
                          f"of {', '.join(HOLIDAY_SOURCES)})")
    try:
        import chinese_calendar
    except ImportError:
        raise ConfigError("the holiday calendar needs the chinese-calendar package (pip "
                          "install 'covault[audit]'), or set calendar.holidays_from: none "
                          "and list the holidays") from None
    holidays = frozenset(d for d in chinese_calendar.holidays if isinstance(d, date))
    workdays = frozenset(d for d in chinese_calendar.workdays if isinstance(d, date))
    years = frozenset(d.year for d in holidays | workdays)
    return holidays, workdays, years

DEFAULT_RULES_YAML = """\
version: 1
rule_version: "default-1"
learning_days: 7
alert_threshold: 50
merge_within: 1h
calendar:
  timezone: "+08:00"
  working_hours: {start: "08:00", end: "19:00"}
  weekend: [sat, sun]
interactive_clients: [psql, dbeaver, navicat, "sql developer", sqlplus, datagrip, pgadmin,
                      "mysql workbench", toad, heidisql, dbvisualizer, "sql server management"]
workstation_networks: []
scenarios:
  BULK_EXPORT: {score: 80, window: 4h, min_rows: 1000, factor: 10, hard_rows: 100000}
  MANY_CUSTOMERS: {score: 75, window: 2h, min_customers: 50, factor: 3}
  SLOW_DRIP: {score: 65, window: 3d, min_daily: 20, ratio: 1.5, sigmas: 3, days: 3,
              of_last: 4, min_history: 5}
  OFF_HOURS: {score: 60, window: 12h, self_share: 0.01, peer_share: 0.01, own_days: 2,
              peer_days: 3, role_days: 5, population_share: 0.5, role_share: 0.1,
              quiet_share: 0.25, population_wait: 2h, rest: 8h, return_gap: 3h,
              return_span: 12h, actor_kinds: [human]}
  ID_ENUMERATION: {score: 80, window: 2h, min_run: 15, max_gap: 2, within: 1h,
                   min_range: 1000, departure_score: 75}
  WATCHLIST: {score: 85, window: 24h, expired_score: 40, routine_per_day: 2,
              routine_explained: 0.5, actor_kinds: [human]}
  SENSITIVE_FIRST_TOUCH: {score: 60, window: 24h, min_class: C3, peer_share: 0.2,
                          peer_score: 25, probation: 24h}
  SERVICE_INTERACTIVE: {score: 80, window: 12h}
  NEW_SOURCE: {score: 60, window: 24h, known_subnet_score: 20, peer_known_score: 30,
               probation: 24h}
  ERROR_BURST: {score: 60, window: 2h, min_errors: 10, within: 10m, factor: 3}
  INJECTION: {score: 90, window: 24h}
  PRIVILEGE_CHANGE: {score: 85, window: 24h, routine_score: 25, off_window_score: 60}
  MASS_MODIFY: {score: 85, window: 24h, min_rows: 1000, factor: 10}
  NOVEL_TEMPLATE: {score: 65, window: 24h, actor_kinds: [service], probation: 24h}
  DENY_LIST: {score: 90, window: 24h}
  UNPARSEABLE: {score: 35, window: 24h}
subsumes:
  INJECTION: [ERROR_BURST, NOVEL_TEMPLATE, BULK_EXPORT, SENSITIVE_FIRST_TOUCH,
              MANY_CUSTOMERS, UNPARSEABLE, OFF_HOURS]
  PRIVILEGE_CHANGE: [NOVEL_TEMPLATE, ERROR_BURST, OFF_HOURS]
  MASS_MODIFY: [NOVEL_TEMPLATE, BULK_EXPORT, OFF_HOURS]
  SERVICE_INTERACTIVE: [NEW_SOURCE, NOVEL_TEMPLATE, OFF_HOURS, ERROR_BURST,
                        SENSITIVE_FIRST_TOUCH, UNPARSEABLE]
  BULK_EXPORT: [NOVEL_TEMPLATE, SENSITIVE_FIRST_TOUCH, MANY_CUSTOMERS, OFF_HOURS]
  NOVEL_TEMPLATE: [SENSITIVE_FIRST_TOUCH]
  ID_ENUMERATION: [MANY_CUSTOMERS, SLOW_DRIP, BULK_EXPORT, SENSITIVE_FIRST_TOUCH, WATCHLIST,
                   OFF_HOURS]
  MANY_CUSTOMERS: [SLOW_DRIP, SENSITIVE_FIRST_TOUCH]
  ERROR_BURST: [UNPARSEABLE]
"""

_SCENARIO_PARAMS: dict[str, set[str]] = {
    "BULK_EXPORT": {"min_rows", "factor", "hard_rows"},
    "MANY_CUSTOMERS": {"min_customers", "factor"},
    "SLOW_DRIP": {"min_daily", "ratio", "sigmas", "days", "of_last", "min_history"},
    "OFF_HOURS": {"self_share", "peer_share", "own_days", "peer_days", "role_days",
                  "population_share", "role_share", "quiet_share", "population_wait",
                  "rest", "return_gap", "return_span", "actor_kinds"},
    "ID_ENUMERATION": {"min_run", "max_gap", "within", "min_range", "departure_score"},
    "WATCHLIST": {"expired_score", "routine_per_day", "routine_explained", "actor_kinds"},
    "SENSITIVE_FIRST_TOUCH": {"min_class", "peer_share", "peer_score", "probation"},
    "SERVICE_INTERACTIVE": set(),
    "NEW_SOURCE": {"known_subnet_score", "peer_known_score", "probation"},
    "ERROR_BURST": {"min_errors", "within", "factor"},
    "INJECTION": set(),
    "PRIVILEGE_CHANGE": {"routine_score", "off_window_score"},
    "MASS_MODIFY": {"min_rows", "factor"},
    "NOVEL_TEMPLATE": {"actor_kinds", "probation"},
    "DENY_LIST": set(),
    "UNPARSEABLE": set(),
}
_COMMON = {"score", "window", "enabled"}
_WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_TOP = {"version", "rule_version", "learning_days", "alert_threshold", "merge_within", "calendar",
        "interactive_clients", "workstation_networks", "scenarios", "subsumes", "custom",
        "explain", "privileges", "routines", "learning_active_days"}
_CALENDAR_KEYS = {"timezone", "working_hours", "weekend", "holidays", "workdays",
                  "holidays_from", "holidays_file", "rota_file"}
_ROUTINE_KEYS = {"min_days", "hour_slack", "factor"}
#: Scenario counts that divide or bound others: 0 would make every event exceed them.
_AT_LEAST_ONE = {"min_rows", "hard_rows", "min_customers", "min_daily", "min_errors",
                 "min_run", "min_range", "max_gap", "days", "of_last", "min_history"}


# --------------------------------------------------------------------------- YAML with lines
# --------------------------------------------------------------------------- calendar
#: Dates a calendar may name: far enough from ``date.min`` and ``date.max`` that a day
#: (or a time zone) either side of them is still a date.
FIRST_DATE = date(1900, 1, 1)
LAST_DATE = date(9998, 12, 31)
#: The most days one ``A..B`` range may span, and one list may hold in all.
MAX_RANGE_DAYS = 366
MAX_DATES = 20_000
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _one_date(text: str, item: str, doc: _Doc, path: tuple[Any, ...]) -> date:
    if not _ISO_DATE.match(text):
        raise doc.err(path, f"bad date {item!r} (expected YYYY-MM-DD or a range "
                      "'YYYY-MM-DD..YYYY-MM-DD')")
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise doc.err(path, f"bad date {item!r} (no such day)") from None
    if not FIRST_DATE <= day <= LAST_DATE:
        raise doc.err(path, f"date {text} is out of range (expected {FIRST_DATE} to "
                      f"{LAST_DATE})")
    return day


def _dates(items: Any, doc: _Doc, path: tuple[Any, ...]) -> dict[date, tuple[Any, ...]]:
    """The days of a list of dates and ``A..B`` ranges, each with the path of the item
    that names it (for errors at its line).

    Raises
    ------
    ConfigError
        Not a list, a bad or out-of-range date, an open or reversed range, a range over
        :data:`MAX_RANGE_DAYS` days, more than :data:`MAX_DATES` days in all.
    """
    if not isinstance(items, list):
        raise doc.err(path, "expected a list of dates or 'YYYY-MM-DD..YYYY-MM-DD' ranges")
    out: dict[date, tuple[Any, ...]] = {}
    for i, item in enumerate(items):
        p = (*path, i)
        if isinstance(item, datetime) or not isinstance(item, (date, str)):
            raise doc.err(p, f"bad date {item!r} (expected YYYY-MM-DD or a range "
                          "'YYYY-MM-DD..YYYY-MM-DD')")
        text = item.isoformat() if isinstance(item, date) else item.strip()
        lo, dots, hi = text.partition("..")
        if dots and not (lo.strip() and hi.strip()):
            raise doc.err(p, f"open range {text!r}: give both ends, "
                          "'YYYY-MM-DD..YYYY-MM-DD'")
        a = _one_date(lo.strip(), text, doc, p)
        b = _one_date(hi.strip(), text, doc, p) if dots else a
        if b < a:
            raise doc.err(p, f"range {text!r} ends before it starts")
        span = (b - a).days + 1
        if span > MAX_RANGE_DAYS:
            raise doc.err(p, f"range {text!r} spans {span:,} days (at most "
                          f"{MAX_RANGE_DAYS}: list longer closures as several ranges)")
        if len(out) + span > MAX_DATES:
            raise doc.err(p, f"more than {MAX_DATES:,} dates in one list")
        for k in range(span):
            out.setdefault(a + timedelta(days=k), p)
    return out


def _both(holidays: dict[date, tuple[Any, ...]], workdays: dict[date, tuple[Any, ...]],
          doc: _Doc) -> None:
    """Refuse a date listed both as a holiday and as a working day (at the later line)."""
    both = sorted(holidays.keys() & workdays.keys())
    if both:
        day = both[0]
        h, w = doc.line(holidays[day]), doc.line(workdays[day])
        later = workdays[day] if (w or 0) >= (h or 0) else holidays[day]
        raise doc.err(later, f"{day.isoformat()} is listed both as a holiday (line {h}) "
                      f"and as a working day (line {w})")


def _tz(value: Any, doc: _Doc, path: tuple[Any, ...]) -> tzinfo:
    """A time zone: an offset such as ``'+08:00'`` or an IANA name (the rules of
    ``--tz``, :func:`privacy.audit.events.parse_zone`)."""
    from privacy.audit.events import parse_zone

    if isinstance(value, int) and not isinstance(value, bool):
        raise doc.err(path, f"time zone: got the number {value}; YAML reads an unquoted "
                      "+8:00 as a number, write it in quotes (\"+08:00\")")
    if not isinstance(value, str):
        raise doc.err(path, f"unknown time zone {value!r} (use '+08:00' or an IANA name)")
    try:
        return parse_zone(value)
    except InputError as exc:
        raise doc.err(path, exc.detail) from None


def _holiday_file(path: str, base: str | None) -> tuple[set[date], set[date]]:
    """The holidays and make-up working days of a holidays file (YAML mapping with
    ``holidays`` and ``workdays`` lists of dates or ``A..B`` ranges), checked as the
    inline lists are: a date may not be both."""
    name = path if base is None or os.path.isabs(path) else os.path.join(base, path)
    text = _read_text(name, "holidays file")
    data, doc = _compose(text, name)
    if not isinstance(data, dict):
        raise doc.err((), "expected a mapping with 'holidays' and 'workdays' lists")
    for key in data:
        if key not in ("holidays", "workdays"):
            raise doc.err((key,), "unknown key (expected holidays, workdays)")
    holidays = _dates(data.get("holidays", []), doc, ("holidays",))
    workdays = _dates(data.get("workdays", []), doc, ("workdays",))
    _both(holidays, workdays, doc)
    return set(holidays), set(workdays)


def _overlay(holidays: set[date], workdays: set[date], add_holidays: set[date],
             add_workdays: set[date]) -> None:
    """Apply overriding dates: each date ends up in the list that names it last."""
    holidays -= add_workdays
    workdays -= add_holidays
    holidays |= add_holidays
    workdays |= add_workdays


@dataclass(frozen=True)
class Calendar:
    """Working hours, weekend, public holidays and make-up working days in one zone.

    ``years`` are the years whose holidays are known (the library's, plus those of
    dates given in a file or inline); :meth:`covers` tells whether a day is in one.
    """

    tz: tzinfo = timezone(timedelta(hours=8))
    start: time = time(8, 0)
    end: time = time(19, 0)
    weekend: frozenset[int] = frozenset({5, 6})
    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()
    years: frozenset[int] = frozenset()
    source: str = "chinese-calendar"

    def covers(self, day: date) -> bool:
        """Whether the holidays of ``day``'s year are known."""
        return day.year in self.years

    def with_holidays_file(self, path: str | os.PathLike[str]) -> Calendar:
        """This calendar with the dates of a holidays file overriding its own."""
        add_h, add_w = _holiday_file(os.fspath(path), None)
        hol, work = set(self.holidays), set(self.workdays)
        _overlay(hol, work, add_h, add_w)
        years = self.years | {d.year for d in add_h | add_w}
        return Calendar(self.tz, self.start, self.end, self.weekend, frozenset(hol),
                        frozenset(work), frozenset(years), self.source)

    def is_workday(self, day: date) -> bool:
        """A working day: a make-up day, or a weekday that is not a holiday."""
        if day in self.workdays:
            return True
        return day.weekday() not in self.weekend and day not in self.holidays

    def is_off_hours(self, ts: datetime) -> bool:
        """Outside working hours, or on a weekend or holiday (in the calendar's zone)."""
        local = ts.astimezone(self.tz)
        if not self.is_workday(local.date()):
            return True
        t = local.time()
        return not (self.start <= t < self.end)

    def describe(self, ts: datetime) -> str:
        """Plain words for when ``ts`` falls, e.g. ``'Sunday 02:14'`` or a holiday."""
        local = ts.astimezone(self.tz)
        what = local.strftime("%A %H:%M")
        if local.date() in self.holidays and local.date() not in self.workdays:
            what += " (public holiday)"
        return what


# --------------------------------------------------------------------------- rules
@dataclass(frozen=True)
class CustomRule:
    """Raise ``code`` with ``score`` when a statement touches one of ``columns``."""

    id: str
    columns: frozenset[str]
    code: str
    score: float
    actor_kinds: frozenset[str] = frozenset({"human", "service"})
    description: str = ""


@dataclass(frozen=True)
class Rules:
    """Validated rules: thresholds per scenario, calendar, lists of names.

    Use :meth:`load` or :meth:`default`; ``param(code, name)`` reads a threshold.
    """

    rule_version: str
    learning_days: float
    alert_threshold: float
    calendar: Calendar
    interactive_clients: tuple[str, ...]
    workstation_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    scenarios: dict[str, dict[str, Any]]
    subsumes: dict[str, frozenset[str]]
    custom: tuple[CustomRule, ...] = ()
    merge_within: float = 3600.0
    source: str = "<default>"
    _interactive_re: re.Pattern[str] | None = field(default=None, compare=False)
    explain: ExplainConfig = field(default_factory=ExplainConfig)
    privileges: PrivilegeConfig = field(default_factory=PrivilegeConfig)
    rota: Rota | None = None
    routines: dict[str, float] = field(default_factory=lambda: {
        "min_days": 3, "hour_slack": 1, "factor": 3.0})
    _ws_memo: dict[str, bool] = field(default_factory=dict, init=False, compare=False,
                                      repr=False)
    learning_active_days: float | None = None
    """Days with activity a human actor needs besides ``learning_days`` of calendar time
    before it leaves its learning period (None: the working days in ``learning_days``, 5
    of 7): a first week cut short by a holiday is no baseline. Service accounts learn in
    calendar time only (a weekly job)."""

    @classmethod
    def default(cls, catalog: Catalog | None = None) -> Rules:
        """The built-in rules with the Chinese public-holiday calendar."""
        return cls.from_text("", "<default>", catalog)

    def with_holidays_file(self, path: str | os.PathLike[str]) -> Rules:
        """These rules with a holidays file overriding the calendar's dates (see
        :meth:`Calendar.with_holidays_file`)."""
        return dataclasses.replace(self, calendar=self.calendar.with_holidays_file(path))

    def with_rota(self, path: str | os.PathLike[str]) -> Rules:
        """These rules with a rota file (:mod:`privacy.audit.rota`) for ``OFF_HOURS``."""
        return dataclasses.replace(self, rota=Rota.load(path))

    @classmethod
    def load(cls, path: str | os.PathLike[str], catalog: Catalog | None = None) -> Rules:
        """Load a rules file; errors name ``file:line``."""
        name = os.fspath(path)
        return cls.from_text(_read_text(name, "rules"), name, catalog)

    @classmethod
    def from_text(cls, text: str, file: str = "<rules>",
                  catalog: Catalog | None = None) -> Rules:
        """Parse rules YAML over the defaults (see the module docstring)."""
        base, _ = _compose(DEFAULT_RULES_YAML, "<default>")
        data, doc = _compose(text, file)
        if not isinstance(data, dict):
            raise doc.err((), "expected a mapping at the top level")
        for key in data:
            if key not in _TOP:
                raise doc.err((key,), f"unknown key (expected one of {', '.join(sorted(_TOP))})")
        _version(data, doc)
        return _build(base, data, doc, file, catalog)

    def param(self, code: str, name: str) -> Any:
        """Threshold ``name`` of scenario ``code``."""
        return self.scenarios[code][name]

    def enabled(self, code: str) -> bool:
        """Whether scenario ``code`` raises signals."""
        return bool(self.scenarios[code].get("enabled", True))

    def is_interactive_client(self, client: str | None) -> bool:
        """Whether ``client`` names an interactive SQL tool."""
        if not client or self._interactive_re is None:
            return False
        return self._interactive_re.search(client.lower()) is not None

    def on_workstation(self, ip: str | None) -> bool:
        """Whether ``ip`` lies in a workstation network."""
        if not ip or not self.workstation_networks:
            return False
        memo = self._ws_memo  # an address string hashes once; a tuple of networks, slowly
        hit = memo.get(ip)
        if hit is None:
            if len(memo) >= _MEMO_SIZE:
                memo.clear()
            hit = memo[ip] = _in_networks(ip, self.workstation_networks)
        return hit


_MEMO_SIZE = 65536


def _in_networks(ip: str, networks: tuple[Any, ...]) -> bool:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(addr in net for net in networks)


#: The largest number a rules setting may hold.
MAX_NUMBER = 1e12


def _number(value: Any, doc: _Doc, path: tuple[Any, ...], lo: float = 0.0) -> float:
    """A finite number from ``lo`` to :data:`MAX_NUMBER` (NaN, infinities and booleans
    are refused at the value's line)."""
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not math.isfinite(value) or not lo <= value <= MAX_NUMBER):
        raise doc.err(path, f"expected a number from {lo:g} to {MAX_NUMBER:g}, got {value!r}")
    return float(value)


def _codes(value: Any, doc: _Doc, path: tuple[Any, ...]) -> frozenset[str]:
    """A list of scenario codes (strings of :data:`SCENARIOS`)."""
    if not isinstance(value, list):
        raise doc.err(path, "expected a list of scenario codes")
    for i, c in enumerate(value):
        if not isinstance(c, str) or c not in SCENARIOS:
            raise doc.err((*path, i), f"expected a scenario code, got {c!r} (one of "
                          f"{', '.join(SCENARIOS)})")
    return frozenset(value)


def _kinds(value: Any, doc: _Doc, path: tuple[Any, ...]) -> frozenset[str]:
    """A list of actor kinds, ``human`` and/or ``service``."""
    if not isinstance(value, list) or not all(
            isinstance(k, str) and k in ("human", "service") for k in value):
        raise doc.err(path, "expected a list of 'human' / 'service'")
    return frozenset(value)


def _build(base: dict[str, Any], data: dict[str, Any], doc: _Doc, file: str,
           catalog: Catalog | None) -> Rules:
    cal_in = data.get("calendar", {})
    if not isinstance(cal_in, dict):
        raise doc.err(("calendar",), "expected a mapping")
    for key in cal_in:
        if key not in _CALENDAR_KEYS:
            raise doc.err(("calendar", key), "unknown key (expected one of "
                          f"{', '.join(sorted(_CALENDAR_KEYS))})")
    cal_base = base["calendar"]
    tz = _tz(cal_in.get("timezone", cal_base["timezone"]), doc, ("calendar", "timezone"))
    wh = cal_in.get("working_hours", cal_base["working_hours"])
    wp = ("calendar", "working_hours")
    if not isinstance(wh, dict) or set(wh) != {"start", "end"}:
        raise doc.err(wp, "expected {start: 'HH:MM', end: 'HH:MM'}")
    start, end = _clock(wh["start"], doc, (*wp, "start")), _clock(wh["end"], doc, (*wp, "end"))
    if end <= start:
        raise doc.err((*wp, "end"), f"working hours end ({end:%H:%M}) at or before they "
                      f"start ({start:%H:%M}): working hours lie within one day; give night "
                      "and late shifts in a rota file (calendar.rota_file)")
    weekend_in = cal_in.get("weekend", cal_base["weekend"])
    try:
        weekend = frozenset(_WEEKDAYS[str(d).lower()[:3]] for d in weekend_in)
    except (KeyError, TypeError):
        raise doc.err(("calendar", "weekend"), "expected weekday names such as [sat, sun]"
                      ) from None
    source = str(cal_in.get("holidays_from", "chinese-calendar"))
    if source not in HOLIDAY_SOURCES:
        raise doc.err(("calendar", "holidays_from"), f"unknown source {source!r} (expected "
                      f"one of {', '.join(HOLIDAY_SOURCES)})")
    lib_h, lib_w, years_known = library_holidays(source)
    holidays, workdays = set(lib_h), set(lib_w)
    years = set(years_known)
    if "holidays_file" in cal_in:
        hfile = cal_in["holidays_file"]
        if not isinstance(hfile, str) or not hfile:
            raise doc.err(("calendar", "holidays_file"), "expected a file name")
        folder = os.path.dirname(file) if not file.startswith("<") else None
        add_h, add_w = _holiday_file(hfile, folder)
        _overlay(holidays, workdays, add_h, add_w)
        years |= {d.year for d in add_h | add_w}
    add_hp = _dates(cal_in.get("holidays", []), doc, ("calendar", "holidays"))
    add_wp = _dates(cal_in.get("workdays", []), doc, ("calendar", "workdays"))
    _both(add_hp, add_wp, doc)
    add_h, add_w = set(add_hp), set(add_wp)
    _overlay(holidays, workdays, add_h, add_w)
    years |= {d.year for d in add_h | add_w}
    calendar = Calendar(tz, start, end, weekend, frozenset(holidays), frozenset(workdays),
                        frozenset(years), source)

    scen_in = data.get("scenarios", {})
    if not isinstance(scen_in, dict):
        raise doc.err(("scenarios",), "expected a mapping of scenario code to parameters")
    scenarios: dict[str, dict[str, Any]] = {}
    for code, params in base["scenarios"].items():
        merged = dict(params)
        given = scen_in.get(code, {})
        if not isinstance(given, dict):
            raise doc.err(("scenarios", code), "expected a mapping of parameters")
        merged.update(given)
        scenarios[code] = merged
    for code, given in scen_in.items():
        path = ("scenarios", code)
        if code not in SCENARIOS:
            raise doc.err(path, f"unknown scenario (expected one of {', '.join(SCENARIOS)})")
        for name in given:
            p = (*path, name)
            if name not in _COMMON | _SCENARIO_PARAMS[code]:
                raise doc.err(p, f"unknown parameter for {code}")
    for code, params in scenarios.items():
        for name, value in list(params.items()):
            p = ("scenarios", code, name)
            if name in ("window", "within", "probation", "population_wait", "rest",
                        "return_gap", "return_span"):
                params[name] = _duration(value, doc, p)
                if name in ("window", "within") and not params[name] > 0:
                    raise doc.err(p, f"{name} must be longer than 0, got {value!r}")
            elif name == "actor_kinds":
                params[name] = _kinds(value, doc, p)
            elif name == "min_class":
                if value not in ("C1", "C2", "C3"):
                    raise doc.err(p, f"expected C1, C2 or C3, got {value!r}")
            elif name == "enabled":
                if not isinstance(value, bool):
                    raise doc.err(p, "expected true or false")
            elif name in _AT_LEAST_ONE:
                params[name] = _number(value, doc, p, 1.0)
            elif name.endswith("_share") or name == "routine_explained":
                params[name] = _number(value, doc, p)
                if params[name] > 1:
                    raise doc.err(p, f"{name} is a share, from 0 to 1, got {value!r}")
            else:
                params[name] = _number(value, doc, p)
                if name.endswith("score") and params[name] > 100:
                    raise doc.err(p, f"{name} must be within 0..100, got {value!r}")
        if not 0 <= params["score"] <= 100:
            raise doc.err(("scenarios", code, "score"), "score must be within 0..100")
    off = scenarios["OFF_HOURS"]
    if not off["return_gap"] < off["rest"]:
        raise doc.err(("scenarios", "OFF_HOURS", "return_gap"),
                      f"return_gap ({off['return_gap'] / 3600:g} h) must be shorter than rest "
                      f"({off['rest'] / 3600:g} h): a return after hours is a gap shorter "
                      "than a rest")

    subs_in = data.get("subsumes", base["subsumes"])
    if not isinstance(subs_in, dict):
        raise doc.err(("subsumes",), "expected a mapping of code to a list of codes")
    subsumes: dict[str, frozenset[str]] = {}
    for code, codes in subs_in.items():
        if code not in SCENARIOS:
            raise doc.err(("subsumes", code), f"unknown scenario code {code!r}")
        subsumes[code] = _codes(codes, doc, ("subsumes", code))

    clients = data.get("interactive_clients", base["interactive_clients"])
    if not isinstance(clients, list) or not all(isinstance(c, str) and c for c in clients):
        raise doc.err(("interactive_clients",), "expected a list of names")
    nets_in = data.get("workstation_networks", base["workstation_networks"])
    if not isinstance(nets_in, list):
        raise doc.err(("workstation_networks",), "expected a list of CIDR networks")
    nets = []
    for i, n in enumerate(nets_in):
        try:
            nets.append(ipaddress.ip_network(str(n), strict=False))
        except ValueError:
            raise doc.err(("workstation_networks", i), f"bad network {n!r}") from None

    custom = tuple(_custom(data.get("custom", []), doc, catalog))
    learning = _number(data.get("learning_days", base["learning_days"]), doc, ("learning_days",))
    active = (None if "learning_active_days" not in data else
              _number(data["learning_active_days"], doc, ("learning_active_days",)))
    threshold = _number(data.get("alert_threshold", base["alert_threshold"]), doc,
                        ("alert_threshold",))
    pattern = re.compile("|".join(re.escape(c.lower()) for c in clients)) if clients else None
    merge = _duration(data.get("merge_within", base["merge_within"]), doc, ("merge_within",))
    rota = None
    if "rota_file" in cal_in:
        rfile = cal_in["rota_file"]
        if not isinstance(rfile, str) or not rfile:
            raise doc.err(("calendar", "rota_file"), "expected a file name")
        folder = os.path.dirname(file) if not file.startswith("<") else None
        rota = Rota.load(rfile if folder is None or os.path.isabs(rfile)
                         else os.path.join(folder, rfile))
    routines = {"min_days": 3.0, "hour_slack": 1.0, "factor": 3.0}
    rin = data.get("routines", {})
    if not isinstance(rin, dict):
        raise doc.err(("routines",), "expected a mapping (min_days, hour_slack, factor)")
    for key, value in rin.items():
        if key not in _ROUTINE_KEYS:
            raise doc.err(("routines", key), "unknown key (expected min_days, hour_slack, "
                          "factor)")
        routines[key] = _number(value, doc, ("routines", key), 1.0 if key != "hour_slack"
                                else 0.0)
        if key == "hour_slack" and routines[key] > 12:
            raise doc.err(("routines", key), f"hour_slack is in hours, at most 12, got "
                          f"{value!r}")
    rule_version = data.get("rule_version", base["rule_version"])
    if isinstance(rule_version, bool) or not isinstance(rule_version, (str, int, float)):
        raise doc.err(("rule_version",), f"expected a version name such as "
                      f"\"bank-a-2026.04\", got {rule_version!r}")
    return Rules(str(rule_version), learning, threshold,
                 calendar, tuple(clients), tuple(nets), scenarios, subsumes, custom, merge,
                 file, pattern, explain=parse_explain(data.get("explain"), doc, catalog),
                 privileges=parse_privileges(data.get("privileges"), doc), rota=rota,
                 routines=routines, learning_active_days=active)


def _custom(items: Any, doc: _Doc, catalog: Catalog | None) -> list[CustomRule]:
    if not isinstance(items, list):
        raise doc.err(("custom",), "expected a list of rules")
    out = []
    for i, item in enumerate(items):
        path = ("custom", i)
        if not isinstance(item, dict):
            raise doc.err(path, "expected a mapping")
        for key in item:
            if key not in {"id", "columns", "code", "score", "actor_kinds", "description"}:
                raise doc.err((*path, key), "unknown key")
        cols = item.get("columns")
        if not isinstance(cols, list) or not cols:
            raise doc.err((*path, "columns"), "expected a non-empty list of table.column")
        names = set()
        for j, col in enumerate(cols):
            table, dot, column = str(col).lower().rpartition(".")
            if not dot:
                raise doc.err((*path, "columns", j), f"expected table.column, got {col!r}")
            if catalog is None:
                raise doc.err((*path, "columns", j),
                              "custom column rules need a catalogue (--catalog)")
            info = catalog.column(table, column)
            if info is None:
                raise doc.err((*path, "columns", j),
                              f"column {col!r} is not in the catalogue")
            names.add(info.qualified)
        code = item.get("code", "SENSITIVE_FIRST_TOUCH")
        if not isinstance(code, str) or code not in SCENARIOS:
            raise doc.err((*path, "code"), f"unknown scenario code {code!r}")
        kinds = _kinds(item.get("actor_kinds", ["human", "service"]), doc,
                       (*path, "actor_kinds"))
        score = _number(item.get("score", 60), doc, (*path, "score"))
        out.append(CustomRule(str(item.get("id", f"custom-{i}")), frozenset(names), code,
                              score, kinds, str(item.get("description", ""))))
    return out
