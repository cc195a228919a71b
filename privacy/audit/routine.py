"""Learned routines: what an account (or its peer group) runs, when, and how big.

A nightly job that scans the customer table in ranges of 5,000 ids at 01:30 looks like
an enumeration every night, and is not one: it is the job's routine. For each statement
template that raises a heavy signal (range predicates over customer keys, bulk reads,
exports, mass changes), :class:`RoutineBook` keeps per actor (and per peer group) the
days it ran on, its hours of the day, and the rows and id ranges it covered. A template
that ran on ``min_days`` earlier days is **routine** when it runs again at one of its
usual hours (± ``hour_slack``) with rows and ranges within ``factor`` of what it did
before. A departure is reported with the numbers: "first time this template ran at
14:00; its last 20 runs were 01:00-04:00", "returned 50,000 rows; its runs returned
1,800-7,900". What runs is learned either way, so a changed schedule alerts once and
then becomes the routine (drift); a new account or template has no routine yet (warm-up).

State is bounded: at most ``cap`` templates per owner, 30 days and 20 runs per template.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

__all__ = ["RoutineBook", "TemplateHistory"]


@dataclass(slots=True)
class TemplateHistory:
    """The runs of one template by one owner (actor or peer group)."""

    days: deque[int] = field(default_factory=lambda: deque(maxlen=30))
    hours: list[int] = field(default_factory=lambda: [0] * 24)
    recent: deque[int] = field(default_factory=lambda: deque(maxlen=20))
    rows_hi: float = 0.0
    rows_lo: float = float("inf")
    width_hi: float = 0.0
    width_lo: float = float("inf")
    runs: int = 0
    members: set[str] = field(default_factory=set)

    def earlier_days(self, day: int) -> int:
        """Distinct days it ran on before ``day``."""
        return sum(1 for d in self.days if d < day)


class RoutineBook:
    """Template histories per owner; :meth:`judge` says routine or departure (see module)."""

    def __init__(self, *, min_days: int = 3, hour_slack: int = 1, factor: float = 3.0,
                 cap: int = 256) -> None:
        self.min_days = min_days
        self.hour_slack = hour_slack
        self.factor = factor
        self.cap = cap
        self._book: dict[str, dict[str, TemplateHistory]] = {}

    def history(self, owner: str, fingerprint: str) -> TemplateHistory | None:
        """The history of ``fingerprint`` run by ``owner`` (None: never seen)."""
        mine = self._book.get(owner)
        return None if mine is None else mine.get(fingerprint)

    def add(self, owner: str, fingerprint: str, day: int, hour: int, rows: int | None,
            width: int | None, actor: str | None = None) -> None:
        """Record one run."""
        mine = self._book.get(owner)
        if mine is None:
            if len(self._book) >= 100_000:
                return
            mine = self._book[owner] = {}
        h = mine.get(fingerprint)
        if h is None:
            if len(mine) >= self.cap:
                return
            h = mine[fingerprint] = TemplateHistory()
        if not h.days or h.days[-1] != day:
            h.days.append(day)
        h.hours[hour % 24] += 1
        h.recent.append(hour % 24)
        h.runs += 1
        if rows is not None:
            h.rows_hi = max(h.rows_hi, float(rows))
            h.rows_lo = min(h.rows_lo, float(rows))
        if width is not None:
            h.width_hi = max(h.width_hi, float(width))
            h.width_lo = min(h.width_lo, float(width))
        if actor is not None and len(h.members) < 16:
            h.members.add(actor)

    def judge(self, owner: str, fingerprint: str, day: int, hour: int, rows: int | None,
              width: int | None, *, exclude: str | None = None,
              min_days: int | None = None) -> tuple[bool | None, str]:
        """(routine?, departure) for a run now.

        ``True``: routine. ``False``: the template has a routine and this run departs
        from it (the reason says how, with the numbers). ``None``: no routine yet.
        ``exclude`` (a peer group's member) needs two other members to have run it;
        ``min_days`` overrides the book's.
        """
        h = self.history(owner, fingerprint)
        if h is None or h.earlier_days(day) < (self.min_days if min_days is None else min_days):
            return None, ""
        if exclude is not None and len(h.members - {exclude}) < 2:
            return None, ""
        why = []
        if not any(h.hours[(hour + k) % 24] for k in range(-self.hour_slack,
                                                           self.hour_slack + 1)):
            lo, hi = min(h.recent), max(h.recent)
            why.append(f"first time this template ran at {hour:02d}:00; its last "
                       f"{len(h.recent)} runs were {lo:02d}:00-{hi:02d}:59")
        if rows is not None and h.rows_hi > 0 and rows > self.factor * h.rows_hi:
            why.append(f"returned {rows:,} rows; its runs returned {h.rows_lo:,.0f}-"
                       f"{h.rows_hi:,.0f}")
        if width is not None and h.width_hi > 0 and width > self.factor * h.width_hi:
            why.append(f"covered {width:,} ids; its runs covered {h.width_lo:,.0f}-"
                       f"{h.width_hi:,.0f}")
        if why:
            return False, "; ".join(why)
        return True, (f"routine: ran on {h.earlier_days(day)} earlier days at these hours "
                      f"({h.runs:,} runs)")
