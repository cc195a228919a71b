"""Explanation-based auditing: is an access to a watch-listed customer explained?

After Fabbri & LeFevre (VLDB 2011): an access is *explained* when the database itself
shows a reason for it — within a window around the access, the same actor (or the same
session, or someone of the same department/branch) wrote (or, where a rule says so,
read) a record naming that customer in an explaining table: a contact-log entry, a
posted transaction, a case, a loan application, a changed address. A customer the actor
or its department served with such a record within the last ``remember`` days (its
portfolio) is explained too. Only unexplained accesses to watch-listed customers alert,
and each alert says which explanations were tried.

Rules YAML (``explain:``; every key optional)::

    explain:
      window: 4h                     # before or after the access
      remember: 90d                  # portfolio: customers served with a record
      by: [actor, session, department]
      defaults: true                 # + any write naming the customer in a catalogued
                                     #   table with a customer key
      rules:
        - id: contact-log
          table: crm.contact_log     # must be in the catalogue
          column: cust_id            # a customer-key column of it (default: all of them)
          access: [write, read]      # write (INSERT/UPDATE/...), read (SELECT)
          by: [actor]
          window: 2h

``session`` means the same actor from the same source address and client program
(canonical events carry no session id; a session is one user's, so two users behind one
address -- a terminal server, a jump host -- never explain each other's accesses). Only
records naming watch-listed customers are remembered, so the state is bounded by the
lists, not by the traffic.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from privacy.audit.baseline import hash64
from privacy.audit.catalog import Catalog
from privacy.audit.events import QueryEvent
from privacy.audit.sql import SqlAnalysis

if TYPE_CHECKING:
    from privacy.audit.ruledoc import _Doc

__all__ = ["ExplainRule", "ExplainConfig", "Explainer", "SCOPES", "parse_explain"]

SCOPES = ("actor", "session", "department")
ACCESS = ("write", "read")
_WRITE_KINDS = frozenset({"insert", "update", "delete", "copy"})
_KEYS = {"window", "remember", "by", "defaults", "rules"}
_RULE_KEYS = {"id", "table", "column", "access", "by", "window"}


@dataclass(frozen=True)
class ExplainRule:
    """Accesses are explained by ``access`` of ``table`` naming the customer through one of
    ``columns`` by the same ``by`` within ``window`` seconds."""

    id: str
    table: str
    columns: frozenset[str]
    access: frozenset[str]
    by: tuple[str, ...]
    window: float


@dataclass(frozen=True)
class ExplainConfig:
    """The ``explain:`` section: defaults, window, portfolio memory and the rules."""

    window: float = 4 * 3600.0
    remember: float = 90 * 86400.0
    by: tuple[str, ...] = SCOPES
    defaults: bool = True
    rules: tuple[ExplainRule, ...] = ()

    def describe(self) -> str:
        """The explanations tried, in words (for alert reasons)."""
        parts = [f"{r.id} ({'/'.join(sorted(r.access))} {r.table} by {'/'.join(r.by)} "
                 f"within {_hours(r.window)})" for r in self.rules]
        if self.defaults:
            parts.append(f"any write naming the customer by {'/'.join(self.by)} within "
                         f"{_hours(self.window)}")
        if self.remember > 0:
            parts.append(f"served by the actor or its department with such a record, or "
                         f"looked up by the actor on an earlier day, in the last "
                         f"{self.remember / 86400:.0f} days")
        return "; ".join(parts) or "none configured"


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:g} h" if seconds >= 3600 else f"{seconds / 60:g} min"


def parse_explain(data: Any, doc: _Doc, catalog: Catalog | None) -> ExplainConfig:
    """Validate the ``explain:`` section (errors name the rules file and line)."""
    from privacy.audit.ruledoc import _duration

    if data is None:
        return ExplainConfig()
    path: tuple[Any, ...] = ("explain",)
    if not isinstance(data, dict):
        raise doc.err(path, "expected a mapping (window, remember, by, defaults, rules)")
    for key in data:
        if key not in _KEYS:
            raise doc.err((*path, key), f"unknown key (expected one of {', '.join(sorted(_KEYS))})")
    window = _duration(data.get("window", "4h"), doc, (*path, "window"))
    remember = _duration(data.get("remember", "90d"), doc, (*path, "remember"))
    by = _scopes(data.get("by", list(SCOPES)), doc, (*path, "by"))
    defaults = data.get("defaults", True)
    if not isinstance(defaults, bool):
        raise doc.err((*path, "defaults"), "expected true or false")
    items = data.get("rules", [])
    if not isinstance(items, list):
        raise doc.err((*path, "rules"), "expected a list of explanation rules")
    rules = []
    for i, item in enumerate(items):
        p = (*path, "rules", i)
        if not isinstance(item, dict):
            raise doc.err(p, "expected a mapping with table, column, access, by, window")
        for key in item:
            if key not in _RULE_KEYS:
                raise doc.err((*p, key), "unknown key (expected one of "
                              f"{', '.join(sorted(_RULE_KEYS))})")
        if catalog is None:
            raise doc.err(p, "explanation rules name catalogued tables: give a catalogue "
                          "(--catalog)")
        table = item.get("table")
        if not isinstance(table, str) or not table:
            raise doc.err((*p, "table"), "expected a table name")
        if not catalog.has_table(table):
            raise doc.err((*p, "table"), f"table {table!r} is not in the catalogue")
        keys = [c for c in catalog.columns_of(table) if c.customer_key]
        col = item.get("column")
        if col is None:
            if not keys:
                raise doc.err((*p, "table"), f"table {table!r} has no customer-key column in "
                              "the catalogue")
            cols = frozenset(c.qualified for c in keys)
        else:
            info = catalog.column(table, str(col))
            if info is None:
                raise doc.err((*p, "column"), f"column {table}.{col} is not in the catalogue")
            if not info.customer_key:
                raise doc.err((*p, "column"), f"column {table}.{col} is not a customer key in "
                              "the catalogue")
            cols = frozenset({info.qualified})
        access = item.get("access", ["write"])
        if not isinstance(access, list) or not access or not set(access) <= set(ACCESS):
            raise doc.err((*p, "access"), "expected a list of 'write' / 'read'")
        rules.append(ExplainRule(str(item.get("id", f"explain-{i}")), next(iter(cols)).rsplit(
            ".", 1)[0], cols, frozenset(access), _scopes(item.get("by", list(by)), doc,
                                                         (*p, "by")),
            _duration(item.get("window", window), doc, (*p, "window"))))
    return ExplainConfig(window, remember, by, defaults, tuple(rules))


def _scopes(value: Any, doc: _Doc, path: tuple[Any, ...]) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not set(value) <= set(SCOPES):
        raise doc.err(path, f"expected a list of {', '.join(SCOPES)}")
    return tuple(dict.fromkeys(str(v) for v in value))


def _scope_value(e: QueryEvent, scope: str) -> str | None:
    if scope == "actor":
        return e.actor
    if scope == "session":
        return f"{e.actor}\x1f{e.source_ip}\x1f{e.client}" if e.source_ip else None
    return e.department


_Applies = tuple[tuple[str, tuple[str, ...], float], ...]
_REVISIT = 8 * 3600.0
"""An access at least this long before the current one counts as an earlier visit."""


class Explainer:
    """Remembers records naming watch-listed customers and explains accesses by them.

    Parameters
    ----------
    config:
        The ``explain:`` section.
    watched:
        Whether a customer id is on a watch list in force (only those are remembered).
    """

    def __init__(self, config: ExplainConfig, watched: Callable[[str, datetime], bool]) -> None:
        self.config = config
        self._watched = watched
        self._fp: dict[str, _Applies] = {}
        self._seen: dict[tuple[str, str, int], deque[float]] = {}
        self._reads = any("read" in r.access for r in config.rules)
        self._habit: dict[tuple[str, str], list[float]] = {}
        self.explained = 0
        self.unexplained = 0

    def _applies(self, an: SqlAnalysis) -> _Applies:
        """(scope label, scopes, window) of the explanations this statement's template gives."""
        found = self._fp.get(an.fingerprint)
        if found is not None:
            return found
        slots = {s.column for s in an.template_info.key_slots if s.op in ("eq", "nth")}
        access = "write" if an.kind in _WRITE_KINDS else "read" if an.kind == "select" else ""
        out: list[tuple[str, tuple[str, ...], float]] = []
        c = self.config
        for r in c.rules:
            if access in r.access and slots & r.columns:
                out.append((r.id, r.by, r.window))
        if c.defaults and access == "write" and slots:
            out.append(("write", c.by, c.window))
        if len(self._fp) > 50_000:
            self._fp.clear()
        result = self._fp[an.fingerprint] = tuple(out)
        return result

    def observe(self, e: QueryEvent, an: SqlAnalysis, t: float) -> None:
        """Note the records ``e`` writes (or reads) naming watch-listed customers."""
        if an.kind == "select" and not self._reads:
            return
        applies = self._applies(an)
        if not applies:
            return
        for cid in an.customer_ids:
            if not self._watched(cid, e.ts):
                continue
            h = hash64(cid)
            for label, scopes, _ in applies:
                for scope in scopes:
                    value = _scope_value(e, scope)
                    if value is None:
                        continue
                    key = (label + "\x1f" + scope, value, h)
                    times = self._seen.get(key)
                    if times is None:
                        if len(self._seen) >= 2_000_000:
                            self._seen.pop(next(iter(self._seen)))
                        times = self._seen[key] = deque(maxlen=8)
                    times.append(t)

    def note_access(self, e: QueryEvent, cid: str, t: float, list_name: str) -> bool:
        """Remember that ``e.actor`` accessed watch-listed ``cid`` of list ``list_name`` (a
        customer it comes back to on a later day is one of its own). Returns whether this
        is a new visit (not the same customer within the hour), counted for
        :meth:`habitual`."""
        key = ("access\x1factor", e.actor, hash64(cid))
        times = self._seen.get(key)
        if times is None:
            if len(self._seen) >= 2_000_000:
                self._seen.pop(next(iter(self._seen)))
            times = self._seen[key] = deque(maxlen=8)
        if times and t - times[-1] < 3600:
            return False
        times.append(t)
        habit = self._habit.get((e.actor, list_name))
        if habit is None:
            if len(self._habit) >= 200_000:
                return True
            habit = self._habit[(e.actor, list_name)] = [0.0, 0.0]
        habit[0] += 1
        return True

    def credit(self, actor: str, list_name: str) -> None:
        """Count one visit of ``actor`` to a customer of ``list_name`` as explained."""
        habit = self._habit.get((actor, list_name))
        if habit is not None:
            habit[1] += 1

    def serves(self, actor: str, list_name: str) -> bool:
        """Whether ``actor`` has had at least one explained visit to a customer of
        ``list_name`` (it serves that list with records)."""
        habit = self._habit.get((actor, list_name))
        return habit is not None and habit[1] > 0

    def habitual(self, actor: str, list_name: str, days_active: int, *, per_day: float,
                 explained: float) -> str | None:
        """Why serving customers of ``list_name`` is ``actor``'s own routine (a private
        banker and the VIP list), or None: on average ``per_day`` visits or more per
        active day over at least 5 days, at least ``explained`` of them explained."""
        habit = self._habit.get((actor, list_name))
        if habit is None or days_active < 5 or habit[0] < per_day * days_active:
            return None
        if habit[1] < explained * habit[0]:
            return None
        return (f"serving customers of this list is the actor's routine ({habit[0]:.0f} "
                f"visits on {days_active} days, {habit[1] / habit[0]:.0%} explained)")

    def explain(self, e: QueryEvent, cid: str, t: float, *, final: bool) -> str | None:
        """Why the access of ``e`` (at ``t``) to ``cid`` is explained, or None.

        ``final=False`` looks only at records up to now (and the portfolio); ``final=True``
        (once the window after the access has passed) also at records after it.
        """
        h = hash64(cid)
        c = self.config
        labels = [(r.id, r.by, r.window) for r in c.rules]
        if c.defaults:
            labels.append(("write", c.by, c.window))
        for label, scopes, window in labels:
            for scope in scopes:
                value = _scope_value(e, scope)
                times = None if value is None else self._seen.get(
                    (label + "\x1f" + scope, value, h))
                if not times:
                    continue
                for x in times:
                    if abs(x - t) <= window and (final or x <= t):
                        self.explained += 1
                        what = "a write" if label == "write" else f"explanation '{label}'"
                        return (f"{what} by the same {scope} "
                                f"{_when(x - t)}")
        if c.remember > 0:
            earlier = self._seen.get(("access\x1factor", e.actor, h))
            if earlier and any(_REVISIT <= t - x <= c.remember for x in earlier):
                self.explained += 1
                return ("a customer the actor looked up on an earlier day (in the last "
                        f"{c.remember / 86400:.0f} days)")
            for label, _, _ in labels:
                for scope in ("actor", "department"):
                    value = _scope_value(e, scope)
                    times = None if value is None else self._seen.get(
                        (label + "\x1f" + scope, value, h))
                    if times and any(0 <= t - x <= c.remember for x in times):
                        self.explained += 1
                        return f"customer served by the same {scope} in the last " \
                               f"{c.remember / 86400:.0f} days"
        if final:
            self.unexplained += 1
        return None

    def deadline(self, t: float) -> float:
        """When an access at ``t`` can be judged finally (its longest window has passed)."""
        c = self.config
        return t + max([c.window] + [r.window for r in c.rules])


def _when(delta: float) -> str:
    m = abs(delta) / 60
    text = f"{m:.0f} min" if m < 90 else f"{m / 60:.1f} h"
    return f"{text} {'after' if delta > 0 else 'before'} the access"

