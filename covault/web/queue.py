"""The alert queue: filters and sorting over :meth:`Triage.alerts` rows, from the query
string of ``/alerts``. Pure Python, no web stack."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import date, datetime
from typing import Any

from privacy.audit.triage import STATES

__all__ = ["Filters", "apply", "SORTS", "PAGE_SIZE"]

#: Sort keys offered in the queue (a leading ``-`` sorts descending).
SORTS = {"-score": "score, highest first", "score": "score, lowest first",
         "-first_ts": "newest first", "first_ts": "oldest first",
         "-last_ts": "latest activity first", "last_ts": "earliest activity first",
         "actor": "actor", "-actor": "actor, Z to A", "state": "state",
         "-state": "state, closed first", "-events": "most events first",
         "events": "fewest events first"}
PAGE_SIZE = 50
_STATE_ORDER = {s: i for i, s in enumerate(STATES)}


def _date(text: str) -> str:
    try:
        return date.fromisoformat(text.strip()).isoformat()
    except ValueError:
        return ""


@dataclass(frozen=True)
class Filters:
    """What the queue shows. Unknown or malformed values are dropped, not errors."""

    state: str = ""
    scenario: str = ""
    actor: str = ""
    q: str = ""
    min_score: int = 0
    day: str = ""
    since: str = ""
    until: str = ""
    suppressed: bool = False
    sort: str = "-score"
    page: int = 1

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> Filters:
        def num(key: str, lo: int, hi: int, default: int) -> int:
            try:
                return min(hi, max(lo, int(params.get(key, "") or default)))
            except ValueError:
                return default

        state = params.get("state", "")
        sort = params.get("sort", "-score")
        return cls(state=state if state in STATES else "",
                   scenario=params.get("scenario", "").strip()[:64],
                   actor=params.get("actor", "").strip()[:200],
                   q=params.get("q", "").strip()[:200],
                   min_score=num("min_score", 0, 100, 0),
                   day=_date(params.get("day", "")),
                   since=_date(params.get("since", "")),
                   until=_date(params.get("until", "")),
                   suppressed=params.get("suppressed", "") in ("1", "on", "true"),
                   sort=sort if sort in SORTS else "-score",
                   page=num("page", 1, 10**6, 1))

    def query(self, **changes: Any) -> dict[str, str]:
        """The non-default filters as query parameters, with ``changes`` applied."""
        f = replace(self, **changes)
        out: dict[str, str] = {}
        for fl in fields(self):
            v = getattr(f, fl.name)
            if v == fl.default:
                continue
            out[fl.name] = "1" if v is True else str(v)
        return out


def _matches(a: Mapping[str, Any], f: Filters) -> bool:
    if f.scenario and f.scenario not in a.get("scenarios", ()):
        return False
    if f.actor and f.actor.lower() not in str(a["actor"]).lower():
        return False
    if f.min_score and a["score"] < f.min_score:
        return False
    day = str(a["first_ts"])[:10]
    last_day = str(a["last_ts"])[:10]
    if f.day and not day <= f.day <= last_day:
        return False
    if f.since and last_day < f.since:
        return False
    if f.until and day > f.until:
        return False
    if f.q:
        needle = f.q.lower()
        hay = " ".join([str(a["alert_id"]), str(a["actor"]), *a.get("scenarios", ()),
                        *a.get("reasons", ())]).lower()
        if needle not in hay:
            return False
    return True


def _key(sort: str) -> Any:
    name = sort.lstrip("-")
    if name == "state":
        return lambda a: (_STATE_ORDER.get(a["state"], 9), -a["score"])
    if name == "events":
        return lambda a: (int(a.get("event_count") or len(a.get("event_ids") or ())),
                          a["score"])
    if name == "actor":
        return lambda a: (str(a["actor"]), -a["score"])
    if name in ("first_ts", "last_ts"):
        return lambda a: (datetime.fromisoformat(str(a[name])), a["alert_id"])
    return lambda a: (a[name], a["alert_id"])


def apply(rows: Sequence[Mapping[str, Any]], f: Filters) -> tuple[list[Mapping[str, Any]], int]:
    """The page of ``rows`` that ``f`` selects, sorted, and the number that matched.
    ``rows`` already reflect ``f.state`` and ``f.suppressed`` (the store's query)."""
    chosen = [a for a in rows if _matches(a, f)]
    chosen.sort(key=_key(f.sort), reverse=f.sort.startswith("-"))
    start = (f.page - 1) * PAGE_SIZE
    return chosen[start:start + PAGE_SIZE], len(chosen)
