"""Streaming baselines with bounded state: per actor and per peer group (role, department).

Everything here is O(1) (or O(log range)) per update and bounded in memory per actor,
whatever the traffic:

* :class:`DistinctCounter` — exact set of 64-bit hashes up to a cap, then a
  HyperLogLog sketch (2 KiB) — for distinct customers per hour and per day;
* :class:`QuantileSketch` — a log-bucket histogram (relative error ~4 %) with
  exponential decay, for the p99 of rows per query, customers per hour, errors per
  window; mergeable, so peer groups pool their members' closed windows;
* :class:`Ewma` — exponentially weighted mean and variance (daily totals);
* :class:`Novelty` — a capped "known" map (IPs, clients, templates, columns) that
  remembers when each item was first seen, so a new item stays "probationary" for a
  while after the actor's learning period;
* :class:`ActorBaseline` / :class:`PeerBaseline` — the per-entity bundles.

Windows are closed lazily: when an actor's next event falls into a new hour or day, the
finished window's value is pushed into the actor's sketches and its peer group's.
"""

from __future__ import annotations

import hashlib
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = [
    "hash64",
    "DistinctCounter",
    "QuantileSketch",
    "Ewma",
    "Novelty",
    "ActorBaseline",
    "PeerBaseline",
    "DAY_DECAY",
    "DayPopulation",
    "hour_days",
]

DAY_DECAY = 0.97
"""Daily decay of sketch weights: a window's weight halves after ~23 days (≈ 30-day view)."""

_HLL_P = 11
_HLL_M = 1 << _HLL_P
_HLL_ALPHA = 0.7213 / (1 + 1.079 / _HLL_M)


def hash64(value: str) -> int:
    """A stable 64-bit hash of ``value`` (BLAKE2b), for distinct counting."""
    return int.from_bytes(hashlib.blake2b(value.encode("utf-8", "surrogatepass"),
                                          digest_size=8).digest(), "big")


class DistinctCounter:
    """Count distinct 64-bit hashes: exact up to ``exact_cap``, then HyperLogLog.

    Parameters
    ----------
    exact_cap:
        Size of the exact set before switching to a 2,048-register HyperLogLog
        (standard error ~2.3 %). Memory is bounded by ``max(8 * exact_cap, 2 KiB)``.
        The HyperLogLog keeps its harmonic sum up to date, so ``len()`` is O(1).
    """

    __slots__ = ("_set", "_regs", "_cap", "_inv", "_zeros", "extra")

    def __init__(self, exact_cap: int = 1024) -> None:
        self._set: set[int] | None = set()
        self._regs: bytearray | None = None
        self._cap = exact_cap
        self._inv = float(_HLL_M)
        self._zeros = _HLL_M
        self.extra = 0
        """Identifiers known only by number (beyond an analysis' sample), added as-is."""

    def add(self, h: int) -> None:
        """Add one hash (from :func:`hash64`)."""
        s = self._set
        if s is not None:
            s.add(h)
            if len(s) > self._cap:
                self._regs = bytearray(_HLL_M)
                for x in s:
                    self._hll_add(x)
                self._set = None
        else:
            self._hll_add(h)

    def _hll_add(self, h: int) -> None:
        regs = self._regs
        assert regs is not None
        idx = h & (_HLL_M - 1)
        rank = (64 - _HLL_P) - (h >> _HLL_P).bit_length() + 1
        old = regs[idx]
        if rank > old:
            regs[idx] = rank
            self._inv += 2.0 ** -rank - 2.0 ** -old
            if old == 0:
                self._zeros -= 1

    def __len__(self) -> int:
        if self._set is not None:
            return len(self._set) + self.extra
        est = _HLL_ALPHA * _HLL_M * _HLL_M / self._inv
        if est <= 2.5 * _HLL_M and self._zeros:
            est = _HLL_M * math.log(_HLL_M / self._zeros)
        return int(round(est)) + self.extra


class QuantileSketch:
    """Log-bucket histogram of non-negative values with decay; bounded (~360 buckets).

    Bucket ``0`` holds zeros; bucket ``i > 0`` holds ``[g^(i-1), g^i)`` with ``g = 1.08``.
    """

    __slots__ = ("counts", "total")
    _LOG_G = math.log(1.08)

    def __init__(self) -> None:
        self.counts: dict[int, float] = {}
        self.total = 0.0

    @classmethod
    def _bucket(cls, x: float) -> int:
        return 0 if x < 1 else int(math.log(x) / cls._LOG_G) + 1

    def add(self, x: float, weight: float = 1.0) -> None:
        """Record one value."""
        b = self._bucket(x)
        self.counts[b] = self.counts.get(b, 0.0) + weight
        self.total += weight

    def merge(self, other: QuantileSketch) -> None:
        """Add another sketch's counts into this one."""
        for b, c in other.counts.items():
            self.counts[b] = self.counts.get(b, 0.0) + c
        self.total += other.total

    def decay(self, factor: float) -> None:
        """Multiply every weight by ``factor``; drops buckets that fade below 1e-3."""
        self.counts = {b: c * factor for b, c in self.counts.items() if c * factor > 1e-3}
        self.total = sum(self.counts.values())

    def quantile(self, q: float) -> float:
        """Upper edge of the bucket holding quantile ``q`` (0 for an empty sketch)."""
        if self.total <= 0:
            return 0.0
        target = q * self.total
        acc = 0.0
        for b in sorted(self.counts):
            acc += self.counts[b]
            if acc >= target - 1e-9:
                return 0.0 if b == 0 else math.exp(b * self._LOG_G)
        return math.exp(max(self.counts) * self._LOG_G)


@dataclass(slots=True)
class Ewma:
    """Exponentially weighted mean and variance; the first ``1/alpha`` values average."""

    alpha: float = 0.065
    n: int = 0
    mean: float = 0.0
    var: float = 0.0

    def update(self, x: float) -> None:
        """Add one observation."""
        self.n += 1
        a = max(self.alpha, 1.0 / self.n)
        d = x - self.mean
        self.mean += a * d
        self.var = (1 - a) * (self.var + a * d * d)

    @property
    def sd(self) -> float:
        """Standard deviation."""
        return math.sqrt(max(self.var, 0.0))


class Novelty:
    """Known items with the time each was first seen, capped at ``cap`` items.

    When full, new items are no longer remembered and :meth:`first_seen` reports them as
    seen "now" each time (so they keep looking new); ``saturated`` says so.
    """

    __slots__ = ("_items", "_cap", "saturated")

    def __init__(self, cap: int) -> None:
        self._items: dict[str, float] = {}
        self._cap = cap
        self.saturated = False

    def see(self, item: str, ts: float) -> float | None:
        """Record ``item`` at ``ts``; return when it was first seen (None: just now)."""
        first = self._items.get(item)
        if first is not None:
            return first
        if len(self._items) < self._cap:
            self._items[item] = ts
        else:
            self.saturated = True
        return None

    def __contains__(self, item: str) -> bool:
        return item in self._items

    def __len__(self) -> int:
        return len(self._items)

    def sample(self, n: int = 3) -> list[str]:
        """Up to ``n`` known items (oldest first)."""
        return list(self._items)[:n]


@dataclass(slots=True)
class PeerBaseline:
    """Pooled closed windows of a peer group's members."""

    members: set[str] = field(default_factory=set)
    rows: QuantileSketch = field(default_factory=QuantileSketch)
    modify_rows: QuantileSketch = field(default_factory=QuantileSketch)
    hour_customers: QuantileSketch = field(default_factory=QuantileSketch)
    day_customers: QuantileSketch = field(default_factory=QuantileSketch)
    hours: list[float] = field(default_factory=lambda: [0.0] * 48)
    hour_days: list[float] = field(default_factory=lambda: [0.0] * 48)
    """Members' active days per hour-of-day bucket (decayed): the group's learned rota."""
    column_actors: dict[str, set[str]] = field(default_factory=dict)
    ips: Novelty = field(default_factory=lambda: Novelty(1024))
    subnets: set[str] = field(default_factory=set)
    """The /24 networks (IPv4) members connected from (at most 1,024)."""
    clients: Novelty = field(default_factory=lambda: Novelty(256))
    last_day: int = -1

    def column_share(self, column: str, exclude: str) -> tuple[int, int]:
        """(members other than ``exclude`` who read ``column``, other members)."""
        readers = self.column_actors.get(column)
        count = 0 if readers is None else len(readers) - (exclude in readers)
        return count, max(len(self.members) - 1, 0)

    def add_column(self, column: str, actor: str, cap: int = 256) -> None:
        """Note that ``actor`` read ``column`` (at most ``cap`` readers kept per column)."""
        readers = self.column_actors.get(column)
        if readers is None:
            if len(self.column_actors) >= 4096:
                return
            readers = self.column_actors[column] = set()
        if len(readers) < cap:
            readers.add(actor)

    def new_day(self, day: int) -> None:
        """Decay pooled sketches once per calendar day."""
        if day > self.last_day:
            if self.last_day >= 0:
                f = DAY_DECAY ** (day - self.last_day)
                for sk in (self.rows, self.modify_rows, self.hour_customers, self.day_customers):
                    sk.decay(f)
                self.hours = [h * f for h in self.hours]
                self.hour_days = [h * f for h in self.hour_days]
            self.last_day = day


@dataclass(slots=True)
class ActorBaseline:
    """One actor's bounded state."""

    first_ts: float
    rows: QuantileSketch = field(default_factory=QuantileSketch)
    modify_rows: QuantileSketch = field(default_factory=QuantileSketch)
    hour_customers: QuantileSketch = field(default_factory=QuantileSketch)
    errors: QuantileSketch = field(default_factory=QuantileSketch)
    day_customers: Ewma = field(default_factory=Ewma)
    recent_days: deque[tuple[int, int, bool]] = field(default_factory=lambda: deque(maxlen=8))
    hours: list[float] = field(default_factory=lambda: [0.0] * 48)
    hours_total: float = 0.0
    hour_days: list[float] = field(default_factory=lambda: [0.0] * 48)
    """Active days per hour-of-day bucket (decayed): the actor's learned rota."""
    day_buckets: int = 0
    """Bit mask of the buckets active on the current day."""
    active_days: int = 0
    """Local days with at least one event (the learning period needs enough of them)."""
    last_ts: float = 0.0
    """The actor's previous event (for OFF_HOURS: a return after hours)."""
    period_start: float = 0.0
    """Start of the actor's current working period (its first event after a rest)."""
    ips: Novelty = field(default_factory=lambda: Novelty(256))
    clients: Novelty = field(default_factory=lambda: Novelty(64))
    templates: Novelty = field(default_factory=lambda: Novelty(4096))
    columns: Novelty = field(default_factory=lambda: Novelty(1024))
    cur_hour: int = -1
    hour_set: DistinctCounter = field(default_factory=DistinctCounter)
    hour_flagged: bool = False
    hour_threshold: float = 0.0
    hour_ref: float = 0.0
    """max(own, peer p99 of customers per hour) when the last hour closed."""
    cur_day: int = -1
    day_set: DistinctCounter = field(default_factory=DistinctCounter)
    day_flagged: bool = False
    day_threshold: float = math.inf
    err_times: deque[float] = field(default_factory=lambda: deque(maxlen=512))
    err_bucket: int = -1
    err_bucket_n: int = 0
    enum_runs: dict[str, dict[int, tuple[int, float]]] = field(default_factory=dict)
    n_events: int = 0

    def hour_share(self, bucket: int) -> float:
        """Share of this actor's (decayed) activity in hour-of-day bucket ±1 hour."""
        if self.hours_total <= 0:
            return 0.0
        return _smoothed(self.hours, bucket) / self.hours_total

    def decay_day(self, days: int) -> None:
        """Decay sketches and the hour histogram for ``days`` elapsed days."""
        f = DAY_DECAY ** days
        for sk in (self.rows, self.modify_rows, self.hour_customers, self.errors):
            sk.decay(f)
        self.hours = [h * f for h in self.hours]
        self.hours_total *= f
        self.hour_days = [h * f for h in self.hour_days]

    def enum_step(self, prefix: str, number: int, ts: float, within: float,
                  max_gap: int) -> int:
        """Record a numeric id; return the length of the sequential run it extends."""
        runs = self.enum_runs.get(prefix)
        if runs is None:
            if len(self.enum_runs) >= 16:
                self.enum_runs.pop(next(iter(self.enum_runs)))
            runs = self.enum_runs[prefix] = {}
        best = 1
        for gap in range(1, max_gap + 1):
            for nb in (number - gap, number + gap):
                prev = runs.get(nb)
                if prev is not None and ts - prev[1] <= within and prev[0] + 1 > best:
                    best = prev[0] + 1
        old = runs.get(number)
        if old is None or old[0] < best or ts - old[1] > within:
            runs[number] = (best, ts)
        if len(runs) > 512:
            for key in list(runs)[:128]:
                del runs[key]
        return best


def _smoothed(hours: list[float], bucket: int) -> float:
    day, hour = divmod(bucket, 24)
    base = day * 24
    return hours[bucket] + 0.5 * (hours[base + (hour - 1) % 24] + hours[base + (hour + 1) % 24])


def hour_days(days: list[float], bucket: int) -> float:
    """Active days in ``bucket`` ±1 hour (neighbours count half)."""
    return _smoothed(days, bucket)


def peer_hour_share(peer: PeerBaseline, bucket: int) -> float:
    """Share of a peer group's activity in ``bucket`` ±1 hour."""
    total = sum(peer.hours)
    return 0.0 if total <= 0 else _smoothed(peer.hours, bucket) / total


class DayPopulation:
    """Who worked on each local day: all humans, and per role; typical working days.

    A day the calendar calls a day off (a Saturday opening, a bank's own working day)
    on which as many humans work as on a usual working day — or as many members of one
    role as usually work — is a working day for them. Counts are kept for the last two
    weeks; per-role state is capped.
    """

    __slots__ = ("day", "today", "roles", "counts", "role_counts", "workday", "role_workday",
                 "was_workday", "role_days")

    def __init__(self) -> None:
        self.day = -1
        self.today: set[str] = set()
        self.roles: dict[str, set[str]] = {}
        self.counts: dict[int, int] = {}
        self.role_counts: dict[tuple[int, str], int] = {}
        self.workday = Ewma(alpha=0.2)
        self.role_workday: dict[str, Ewma] = {}
        self.was_workday = True
        self.role_days: dict[str, list[float]] = {}
        """Per role: active actor-days per hour-of-day bucket (decayed), a wider rota."""

    def roll(self, day: int, workday: bool) -> None:
        """Close the current day (a later ``day`` starts)."""
        if self.day >= 0 and self.today:
            self.counts[self.day] = len(self.today)
            for role, members in self.roles.items():
                self.role_counts[(self.day, role)] = len(members)
                if self.was_workday:
                    ew = self.role_workday.get(role)
                    if ew is None and len(self.role_workday) < 4096:
                        ew = self.role_workday[role] = Ewma(alpha=0.2)
                    if ew is not None:
                        ew.update(len(members))
            if self.was_workday:
                self.workday.update(len(self.today))
            old = [d for d in self.counts if d < day - 14]
            for d in old:
                del self.counts[d]
            if old:
                self.role_counts = {k: v for k, v in self.role_counts.items()
                                    if k[0] >= day - 14}
        f = DAY_DECAY ** max(1, day - self.day) if self.day >= 0 else 1.0
        for days in self.role_days.values():
            for i in range(48):
                days[i] *= f
        self.day = day
        self.today = set()
        self.roles = {}
        self.was_workday = workday

    def add(self, actor: str, role: str | None) -> None:
        """Note a human actor active today."""
        self.today.add(actor)
        if role is not None:
            members = self.roles.get(role)
            if members is None:
                if len(self.roles) >= 4096:
                    return
                members = self.roles[role] = set()
            members.add(actor)

    def quiet(self, day: int, share: float) -> bool:
        """Whether fewer than ``share`` of the usual working-day humans worked on ``day``
        so far (a working day on which the bank is closed: a day off)."""
        return (day == self.day and self.workday.n >= 3
                and len(self.today) < share * self.workday.mean)

    def populated(self, day: int, role: str | None, share: float, role_share: float,
                  exclude: str) -> bool:
        """Whether ``day`` looks like a working day: ``share`` of the usual humans, or
        ``role_share`` of the role's usual members (at least 2 besides ``exclude``, the
        actor judged: a team, not one colleague), worked on it."""
        n = len(self.today) if day == self.day else self.counts.get(day, 0)
        usual = self._usual(self.workday, day, lambda d: self.counts.get(d, 0))
        if usual is not None and n >= share * usual:
            return True
        if role is None:
            return False
        ew = self.role_workday.get(role)
        usual = self._usual(ew, day, lambda d: self.role_counts.get((d, role), 0))
        if usual is None:
            return False
        members = self.roles.get(role) if day == self.day else None
        m = len(members) if members is not None else self.role_counts.get((day, role), 0)
        if members is None or exclude in members:
            m -= 1
        return m >= max(2.0, role_share * usual)

    @staticmethod
    def _usual(workday: Ewma | None, day: int, count: Callable[[int], int]) -> float | None:
        """The usual working-day head count; before three working days were seen (a
        deployment that starts in a holiday), the mean over the recent days anyone
        worked; None with no history at all."""
        if workday is not None and workday.n >= 3:
            return workday.mean
        seen = [c for c in (count(d) for d in range(day - 14, day)) if c]
        return sum(seen) / len(seen) if seen else None

    def role_hours(self, role: str | None) -> list[float] | None:
        """The role's hour-of-day active days (created on first use)."""
        if role is None:
            return None
        days = self.role_days.get(role)
        if days is None and len(self.role_days) < 4096:
            days = self.role_days[role] = [0.0] * 48
        return days
