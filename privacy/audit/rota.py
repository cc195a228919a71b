"""Rota files: who works which shift when, so late and night shifts are not "off hours".

``OFF_HOURS`` judges an actor's hours against its own rota learned from history and its
peers' (:mod:`privacy.audit.detect_checks`); a rota file states it outright, for new
staff and changed rotas. Format (YAML)::

    version: 1
    slack: 30m                          # early starts and late finishes (default 30m)
    shifts:
      day:   {start: "08:30", end: "17:30"}
      late:  {start: "13:00", end: "22:00"}
      night: {start: "22:00", end: "07:00"}   # ends the next morning
    rota:
      - shift: late
        actors: [E10234, E10577]        # and/or roles: [...], departments: [...]
        days: [mon, tue, wed, thu, fri] # default: every day
        from: 2026-06-01                # optional, first day
        until: 2026-06-30               # optional, last day

Times are quoted ``"HH:MM"``. Two entries that give one actor (or one role, or one
department) shifts that overlap in time are an error naming the file and line of the
later entry, as are unknown shifts, keys and weekdays: that includes a night shift that
runs into the next day's early shift (``night`` on Monday, 22:00-07:00, and ``early`` on
Tuesday from 06:00).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from privacy.errors import ConfigError

__all__ = ["Rota", "RotaShift", "RotaEntry"]

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_ENTRY_KEYS = {"shift", "actors", "roles", "departments", "days", "from", "until"}
_MAX_SLACK = 12 * 3600.0  # seconds: more would roster every hour of the day


@dataclass(frozen=True)
class RotaShift:
    """A named shift; ``end`` before ``start`` means it ends the next day."""

    name: str
    start: time
    end: time

    @property
    def minutes(self) -> tuple[int, int]:
        """(start, end) in minutes from the start day's midnight (end may exceed 1440)."""
        s = self.start.hour * 60 + self.start.minute
        e = self.end.hour * 60 + self.end.minute
        return s, e if e > s else e + 1440

    def __str__(self) -> str:
        return f"{self.name} {self.start:%H:%M}-{self.end:%H:%M}"


@dataclass(frozen=True)
class RotaEntry:
    """Who works ``shift`` on which weekdays between ``first`` and ``last``."""

    shift: RotaShift
    actors: frozenset[str]
    roles: frozenset[str]
    departments: frozenset[str]
    days: frozenset[int]
    first: date | None
    last: date | None
    line: int | None

    def applies(self, actor: str, role: str | None, department: str | None) -> bool:
        """Whether this entry names the actor, its role or its department."""
        return (actor in self.actors or (role is not None and role in self.roles)
                or (department is not None and department in self.departments))

    def on(self, day: date) -> bool:
        """Whether the entry is in force on ``day`` (its weekday and dates)."""
        return (day.weekday() in self.days and (self.first is None or day >= self.first)
                and (self.last is None or day <= self.last))


class Rota:
    """A parsed rota file; :meth:`shift_at` says which shift covers a local time."""

    def __init__(self, entries: tuple[RotaEntry, ...], slack: float = 1800.0,
                 source: str = "<rota>") -> None:
        self.entries = entries
        self.slack = slack
        self.source = source
        self._cache: dict[tuple[str, str | None, str | None], tuple[RotaEntry, ...]] = {}

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Rota:
        """Read and validate a rota file (errors name the file and line)."""
        from privacy.audit.ruledoc import _read_text

        name = os.fspath(path)
        return cls.from_text(_read_text(name, "rota"), name)

    @classmethod
    def from_text(cls, text: str, file: str = "<rota>") -> Rota:
        """Parse rota YAML (see the module docstring)."""
        from privacy.audit.ruledoc import _clock, _compose, _duration, _version

        data, doc = _compose(text, file)
        if not isinstance(data, dict):
            raise doc.err((), "expected a mapping with 'shifts' and 'rota'")
        for key in data:
            if key not in ("version", "slack", "shifts", "rota"):
                raise doc.err((key,), "unknown key (expected version, slack, shifts, rota)")
        _version(data, doc)
        slack = _duration(data.get("slack", "30m"), doc, ("slack",))
        if slack > _MAX_SLACK:
            raise doc.err(("slack",), f"slack of {slack / 3600:g} h is too long (at most "
                          f"{_MAX_SLACK / 3600:g} h)")
        shifts_in = data.get("shifts")
        if not isinstance(shifts_in, dict) or not shifts_in:
            raise doc.err(("shifts",), "expected a mapping of shift name to {start, end}")
        shifts: dict[str, RotaShift] = {}
        for name, spec in shifts_in.items():
            p = ("shifts", name)
            if not isinstance(spec, dict) or set(spec) != {"start", "end"}:
                raise doc.err(p, "expected {start: 'HH:MM', end: 'HH:MM'}")
            start, end = _clock(spec["start"], doc, (*p, "start")), _clock(
                spec["end"], doc, (*p, "end"))
            if start == end:
                raise doc.err(p, "a shift cannot start and end at the same time")
            shifts[str(name)] = RotaShift(str(name), start, end)
        items = data.get("rota", [])
        if not isinstance(items, list):
            raise doc.err(("rota",), "expected a list of entries")
        entries: list[RotaEntry] = []
        for i, item in enumerate(items):
            entries.append(_entry(item, i, shifts, doc))
        _check_overlaps(entries, file)
        return cls(tuple(entries), slack, file)

    def shift_at(self, actor: str, role: str | None, department: str | None,
                 local: datetime) -> RotaShift | None:
        """The shift ``actor`` is rostered on at local time ``local`` (with the slack)."""
        key = (actor, role, department)
        mine = self._cache.get(key)
        if mine is None:
            if len(self._cache) > 100_000:
                self._cache.clear()
            mine = self._cache[key] = tuple(e for e in self.entries
                                            if e.applies(actor, role, department))
        if not mine:
            return None
        minute = local.hour * 60 + local.minute
        slack = self.slack / 60
        day = local.date()
        for e in mine:
            s, end = e.shift.minutes
            for start_day, offset in ((day, 0), (day - timedelta(days=1), 1440)):
                if e.on(start_day) and s - slack <= minute + offset <= end + slack:
                    return e.shift
        return None


def _names(value: Any, doc: Any, path: tuple[Any, ...]) -> frozenset[str]:
    if value is None:
        return frozenset()
    if not isinstance(value, list) or not all(isinstance(v, (str, int)) for v in value):
        raise doc.err(path, "expected a list of names")
    return frozenset(str(v) for v in value)


def _entry(item: Any, i: int, shifts: dict[str, RotaShift], doc: Any) -> RotaEntry:
    p = ("rota", i)
    if not isinstance(item, dict):
        raise doc.err(p, "expected a mapping with shift and actors/roles/departments")
    for key in item:
        if key not in _ENTRY_KEYS:
            raise doc.err((*p, key), f"unknown key (expected one of "
                          f"{', '.join(sorted(_ENTRY_KEYS))})")
    shift = shifts.get(str(item.get("shift")))
    if shift is None:
        raise doc.err((*p, "shift"), f"unknown shift {item.get('shift')!r} (expected one of "
                      f"{', '.join(shifts)})")
    actors = _names(item.get("actors"), doc, (*p, "actors"))
    roles = _names(item.get("roles"), doc, (*p, "roles"))
    depts = _names(item.get("departments"), doc, (*p, "departments"))
    if not (actors or roles or depts):
        raise doc.err(p, "name actors, roles or departments")
    days_in = item.get("days", list(_DAYS))
    if not isinstance(days_in, list) or not days_in:
        raise doc.err((*p, "days"), "expected a list of weekdays such as [mon, tue]")
    days = set()
    for j, d in enumerate(days_in):
        k = str(d).lower()[:3]
        if k not in _DAYS:
            raise doc.err((*p, "days", j), f"unknown weekday {d!r}")
        days.add(_DAYS.index(k))
    bounds: list[date | None] = []
    for key in ("from", "until"):
        v = item.get(key)
        if v is None:
            bounds.append(None)
            continue
        try:
            if isinstance(v, datetime) or not isinstance(v, (date, str)):
                raise ValueError(v)
            bounds.append(v if isinstance(v, date) else date.fromisoformat(v))
        except ValueError:
            raise doc.err((*p, key), f"bad date {v!r} (expected YYYY-MM-DD)") from None
    if bounds[0] is not None and bounds[1] is not None and bounds[1] < bounds[0]:
        raise doc.err((*p, "until"), "ends before it starts")
    return RotaEntry(shift, actors, roles, depts, frozenset(days), bounds[0], bounds[1],
                     doc.line(p))


def _starts(e: RotaEntry, lo: int, hi: int) -> set[int]:
    """Weekdays (0 = Monday) of the days in ordinals ``lo..hi`` on which ``e`` starts a
    shift (every weekday of ``e`` once the span covers a week)."""
    if hi - lo >= 6:
        return set(e.days)
    return {(o - 1) % 7 for o in range(lo, hi + 1)} & e.days


def _clash(a: RotaEntry, b: RotaEntry) -> tuple[int, int] | None:
    """The first (weekday of ``a``'s shift, days from it to ``b``'s: -1, 0 or 1) on which
    the shifts of ``a`` and ``b`` overlap in time, or None.

    A shift runs from its start day's ``start`` to ``end`` (the next day's when it ends
    before it starts), so a night shift can meet the next day's early shift. Dates are
    compared as ordinals, so open ends (``date.min``, ``date.max``) cannot overflow.
    """
    (s1, e1), (s2, e2) = a.shift.minutes, b.shift.minutes
    a_lo = (a.first or date.min).toordinal()
    a_hi = (a.last or date.max).toordinal()
    b_lo = (b.first or date.min).toordinal()
    b_hi = (b.last or date.max).toordinal()
    for delta in (0, -1, 1):
        if not (s1 < delta * 1440 + e2 and delta * 1440 + s2 < e1):
            continue
        # a starts on day x, b on day x + delta: x within both entries' dates
        lo, hi = max(a_lo, b_lo - delta), min(a_hi, b_hi - delta)
        if lo > hi:
            continue
        for wd in sorted(_starts(a, lo, hi)):
            if (wd + delta) % 7 in b.days:
                return wd, delta
    return None


def _check_overlaps(entries: list[RotaEntry], file: str) -> None:
    """Refuse two entries giving one actor, role or department overlapping shifts."""
    for j, b in enumerate(entries):
        for a in entries[:j]:
            common = [f"actor {x}" for x in sorted(a.actors & b.actors)]
            common += [f"role {x}" for x in sorted(a.roles & b.roles)]
            common += [f"department {x}" for x in sorted(a.departments & b.departments)]
            if not common:
                continue
            found = _clash(a, b)
            if found is None:
                continue
            wd, delta = found
            when = (f"on {_DAYS[wd]}" if delta == 0 else
                    f"on {_DAYS[(wd + delta) % 7]} ({a.shift.name} starting {_DAYS[wd]})"
                    if delta == 1 else
                    f"on {_DAYS[wd]} ({b.shift.name} starting {_DAYS[(wd + delta) % 7]})")
            raise ConfigError(f"shift {b.shift} overlaps shift {a.shift} given at line "
                              f"{a.line} for {common[0]} {when}", file=file, line=b.line)
