"""Privilege changes judged by who, to whom, what and when.

A DBA granting a role to a clerk during the working day is routine; the same DBA making
itself superuser at 23:00, or a clerk granting itself anything, is not.
:func:`parse_change` reads a GRANT / REVOKE / CREATE / ALTER USER or ROLE statement;
:class:`PrivilegeJudge` scores it:

* **who** — a privileged actor: its role or department matches one of the
  ``privileges.roles`` patterns (default: DBA and database-administrator names), or it
  made routine changes on ``routine_days`` days before (learned);
* **to whom** — itself (always suspicious), its own team (same department), others;
* **what** — routine (object grants, role membership, revokes) or high-risk (superuser,
  create-role/-user/replication/bypass-RLS attributes, ``WITH GRANT OPTION`` /
  ``WITH ADMIN OPTION``, ``ALL PRIVILEGES``, passwords set on another account);
* **when** — inside a change window (``privileges.change_windows``; default: the
  calendar's working hours on working days) or not.

Rules YAML::

    privileges:
      roles: ["dba", "db.?admin"]        # regular expressions, case-insensitive
      routine_days: 3
      change_windows:
        - {days: [mon, tue, wed, thu, fri], start: "08:00", end: "19:00"}
        - {days: [sat], start: "22:00", end: "04:00"}   # ends the next morning

Times are quoted ``"HH:MM"``. As with a rota's shifts (:mod:`privacy.audit.rota`), a
window whose ``end`` is before its ``start`` runs past midnight into the next day: it
opens on each of its ``days`` and closes the morning after. A window that starts and ends
at the same time is an error naming the rules file and line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import TYPE_CHECKING, Any

from privacy.audit.ruledoc import _clock

if TYPE_CHECKING:
    from privacy.audit.ruledoc import _Doc
    from privacy.audit.rules import Calendar

__all__ = ["PrivilegeChange", "PrivilegeConfig", "PrivilegeJudge", "parse_change",
           "parse_privileges"]

DEFAULT_ROLES = (r"(^|[^a-z])dba([^a-z]|$)", r"db_?admin", r"database.?admin", r"sysdba",
                 r"(^|[^a-z])dbas?($|[^a-z])")
_HIGH_ATTR = re.compile(r"\b(superuser|createrole|createdb|replication|bypassrls|sysadmin|"
                        r"dba\b|grant option|admin option|all privileges|identified by|"
                        r"password)")
_GRANT_TO = re.compile(r"^\s*grant\s+(.+?)\s+to\s+(.+?)(\s+with\s+(grant|admin)\s+option)?\s*;?"
                       r"\s*$", re.S)
_REVOKE = re.compile(r"^\s*revoke\b", re.S)
_USER = re.compile(r"^\s*(create|alter|drop)\s+(user|role|login)\s+(if\s+(not\s+)?exists\s+)?"
                   r"\"?([\w.$@-]+)\"?(.*)$", re.S)
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class PrivilegeChange:
    """What one statement changes: ``verb`` (grant, revoke, create, alter, drop), the
    accounts it changes (``targets``), the privileges in words and whether it is high-risk."""

    verb: str
    targets: tuple[str, ...]
    what: str
    high: bool


def parse_change(statement: str) -> PrivilegeChange:
    """The privilege change of ``statement`` (lower-cased; identifiers unquoted)."""
    text = " ".join(statement.strip().lower().split())
    high = _HIGH_ATTR.search(text) is not None
    m = _GRANT_TO.match(text)
    if m is not None:
        targets = tuple(t.strip().strip('"') for t in m.group(2).split(",") if t.strip())
        return PrivilegeChange("grant", targets, m.group(1)[:80], high or bool(m.group(3)))
    if _REVOKE.match(text):
        m2 = re.search(r"\bfrom\s+(.+?)\s*(cascade|restrict)?\s*;?\s*$", text)
        targets = tuple(t.strip().strip('"') for t in m2.group(1).split(",")) if m2 else ()
        return PrivilegeChange("revoke", targets, text[7:60], False)
    m = _USER.match(text)
    if m is not None:
        verb, target, rest = m.group(1), m.group(5), m.group(6)
        if verb == "create":
            return PrivilegeChange("create", (target,), f"create {m.group(2)}", True)
        if verb == "drop":
            return PrivilegeChange("drop", (target,), f"drop {m.group(2)}", False)
        return PrivilegeChange("alter", (target,), rest.strip()[:80] or "alter", high)
    return PrivilegeChange("other", (), text[:60], high)


@dataclass(frozen=True)
class ChangeWindow:
    """Weekdays and hours when routine privilege changes are expected; ``end`` before
    ``start`` means the window opens on one of ``days`` and closes the next day."""

    days: frozenset[int]
    start: time
    end: time

    def contains(self, weekday: int, t: time) -> bool:
        """Whether local ``weekday`` (0 = Monday) and time ``t`` lie in the window."""
        if self.start < self.end:
            return weekday in self.days and self.start <= t < self.end
        if t >= self.start:
            return weekday in self.days
        return t < self.end and (weekday - 1) % 7 in self.days


@dataclass(frozen=True)
class PrivilegeConfig:
    """The ``privileges:`` section."""

    roles: tuple[str, ...] = DEFAULT_ROLES
    routine_days: int = 3
    windows: tuple[ChangeWindow, ...] | None = None
    _re: re.Pattern[str] | None = field(default=None, compare=False)

    def privileged(self, role: str | None, department: str | None) -> bool:
        """Whether the role or department names a privileged (DBA) function."""
        pat = self._re
        if pat is None:
            pat = re.compile("|".join(self.roles) or "(?!)", re.I)
            object.__setattr__(self, "_re", pat)
        return any(v and pat.search(v) for v in (role, department))


def parse_privileges(data: Any, doc: _Doc) -> PrivilegeConfig:
    """Validate the ``privileges:`` section (errors name the rules file and line)."""
    if data is None:
        return PrivilegeConfig()
    if not isinstance(data, dict):
        raise doc.err(("privileges",), "expected a mapping (roles, routine_days, change_windows)")
    for key in data:
        if key not in ("roles", "routine_days", "change_windows"):
            raise doc.err(("privileges", key), "unknown key (expected roles, routine_days, "
                          "change_windows)")
    roles = data.get("roles", list(DEFAULT_ROLES))
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise doc.err(("privileges", "roles"), "expected a list of regular expressions")
    for i, r in enumerate(roles):
        try:
            re.compile(r)
        except re.error as exc:
            raise doc.err(("privileges", "roles", i), f"bad regular expression: {exc}") from None
    days = data.get("routine_days", 3)
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise doc.err(("privileges", "routine_days"), "expected a whole number >= 1")
    windows = None
    if "change_windows" in data:
        items = data["change_windows"]
        if not isinstance(items, list):
            raise doc.err(("privileges", "change_windows"), "expected a list of windows")
        out = []
        for i, w in enumerate(items):
            p = ("privileges", "change_windows", i)
            if not isinstance(w, dict) or not {"start", "end"} <= set(w) or not set(w) <= {
                    "days", "start", "end"}:
                raise doc.err(p, "expected {days: [mon, ...], start: 'HH:MM', end: 'HH:MM'}")
            start, end = _clock(w["start"], doc, (*p, "start")), _clock(w["end"], doc,
                                                                          (*p, "end"))
            if start == end:
                raise doc.err((*p, "end"), f"the window starts and ends at {start:%H:%M}: "
                              "give the hours it is open (an end before the start runs "
                              "into the next day)")
            try:
                wd = frozenset(_DAYS.index(str(d).lower()[:3]) for d in w.get("days", _DAYS))
            except ValueError:
                raise doc.err(p, "expected {days: [mon, ...], start: 'HH:MM', end: 'HH:MM'}"
                              ) from None
            out.append(ChangeWindow(wd, start, end))
        windows = tuple(out)
    return PrivilegeConfig(tuple(roles), days, windows)


class PrivilegeJudge:
    """Scores privilege changes (see the module docstring); learns routine grantors."""

    def __init__(self, config: PrivilegeConfig, calendar: Calendar, *, score: float,
                 routine_score: float, off_window_score: float) -> None:
        self.config = config
        self.calendar = calendar
        self.score = score
        self.routine_score = routine_score
        self.off_window_score = off_window_score
        self._days: dict[str, set[int]] = {}
        self._dept: dict[str, str] = {}

    def note_actor(self, actor: str, department: str | None) -> None:
        """Remember ``actor``'s department (to tell its own team)."""
        if department and len(self._dept) < 200_000:
            self._dept[actor.lower()] = department

    def in_window(self, ts: datetime) -> bool:
        """Whether ``ts`` falls in a change window."""
        local = ts.astimezone(self.calendar.tz)
        windows = self.config.windows
        if windows is None:
            return not self.calendar.is_off_hours(ts)
        t = local.time()
        day = local.weekday()
        return any(w.contains(day, t) for w in windows)

    def judge(self, actor: str, role: str | None, department: str | None, statement: str,
              ts: datetime, day: int, *, usual_hour: bool = False) -> tuple[float, str]:
        """(score, reason) of a privilege change by ``actor`` on local day ``day``;
        ``usual_hour``: the actor often works at this hour (a routine change just outside
        the change window, at the start of its own shift, stays routine)."""
        ch = parse_change(statement)
        me = actor.lower()
        self_grant = me in ch.targets or (ch.verb in ("grant", "alter") and re.search(
            rf"\b{re.escape(me)}\b", " ".join(ch.targets)) is not None)
        team = [t for t in ch.targets if department and self._dept.get(t) == department
                and t != me]
        named = self.config.privileged(role, department)
        routine_what = not ch.high and ch.verb in ("grant", "revoke", "drop")
        days = self._days.get(actor)
        before = 0 if days is None else len(days - {day})
        learned = before >= self.config.routine_days
        if routine_what and not self_grant and len(self._days) < 100_000:
            self._days.setdefault(actor, set()).add(day)
        who = ("a DBA" if named else f"a routine grantor (grants on {before} earlier days)"
               if learned else "not a DBA")
        window = self.in_window(ts)
        usual = window or usual_hour
        whom = ("itself" if self_grant else f"its own team ({', '.join(team)})" if team
                else ", ".join(ch.targets) or "?")
        when = ("inside" if window else "outside") + " the change window" + (
            "" if window else ", in its usual hours" if usual_hour else ", outside its usual hours")
        reason = (f"{ch.verb} ({'high-risk: ' if ch.high else ''}{ch.what}) to {whom} by "
                  f"{actor}, {who}, {when}")
        if (named or learned) and routine_what and not self_grant:
            score = self.routine_score if usual else self.off_window_score
            if team:
                score = max(score, self.off_window_score)
        elif (named or learned) and not self_grant:
            score = self.score if not window else self.score - 10
        else:
            score = min(100.0, self.score + (10 if self_grant else 0))
        return score, reason
