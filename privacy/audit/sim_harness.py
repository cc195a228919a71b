"""Generalisation harness: banks drawn from seeds, their traffic, incidents and answer key.

:func:`generate` turns a :class:`~privacy.audit.sim_bank.BankProfile` into a
:class:`BankRun`: time-ordered canonical events, the answer key (incidents with their
variant, accepted codes and event ids, and the actor-days), and what that bank's
compliance team would hand an auditor — the catalogue and the watch lists (VIPs and
colleagues' own customer records, in clear or as keyed hashes). No rules file: the
harness runs detection with the default rules, as a new user would.

:data:`TUNING_SEEDS` are the banks detection was looked at on; :data:`HELD_OUT_SEEDS`
are only ever evaluated (``benchmarks/bench_audit_banks.py`` runs both through the CLI).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from privacy.audit.events import QueryEvent
from privacy.audit.sim_attacks import VARIANTS, inject
from privacy.audit.sim_bank import BankProfile, random_bank
from privacy.audit.sim_world import TZ, World

if TYPE_CHECKING:
    from privacy.fields import Tokenizer

__all__ = ["BankRun", "generate", "TUNING_SEEDS", "HELD_OUT_SEEDS", "VARIANTS", "random_bank"]

TUNING_SEEDS = (101, 102, 103, 201, 202, 203, 204, 205, 206, 301, 302, 303, 304, 305, 306,
                401, 402, 403, 404, 405, 406)
"""Banks looked at while building detection: 201-206, 301-306 and 401-406 were held-out
sets in turn; a flaw each showed was fixed (warm-up counted in calendar days across a
holiday; then a weekly job account kept in its warm-up; then a day-shift clerk's return
late at night excused by the role's late shift), so they count as seen."""
HELD_OUT_SEEDS = (501, 502, 503, 504, 505, 506)
"""Banks only ever evaluated."""


@dataclass
class BankRun:
    """One bank's events, answer key, catalogue and watch-list values."""

    bank: BankProfile
    rows: list[tuple[Any, ...]]
    answers: dict[str, Any]
    vip_ids: list[str]
    colleague_ids: list[str]

    def events(self) -> Iterator[QueryEvent]:
        """The events in time order."""
        for d in self.dicts():
            yield QueryEvent.from_dict(d)

    def dicts(self) -> Iterator[dict[str, Any]]:
        """The events as canonical JSON objects, in time order."""
        for (eid, ts, actor, kind, role, dept, ip, client, sql, rows, status,
             dur) in self.rows:
            yield {"event_id": eid, "ts": ts, "actor": actor, "actor_kind": kind, "role": role,
                   "department": dept, "source_ip": ip, "client": client,
                   "database": "bank", "statement": sql, "rows": rows, "status": status,
                   "duration_ms": dur}

    def write(self, folder: str | Path, tokenizer: Tokenizer | None = None) -> dict[str, str]:
        """Write ``events.jsonl``, ``answers.json``, ``catalog.yaml`` and ``lists.yaml``
        into ``folder``; with a ``tokenizer`` the watch lists are keyed hashes."""
        from privacy.atomic import atomic_output, atomic_write_text
        from privacy.audit.events import json_dumps

        root = Path(folder)
        root.mkdir(parents=True, exist_ok=True)
        paths = {k: root / f for k, f in (("events", "events.jsonl"),
                                          ("answers", "answers.json"),
                                          ("catalog", "catalog.yaml"), ("lists", "lists.yaml"))}
        with atomic_output(paths["events"], "w") as fh:
            for d in self.dicts():
                fh.write(json_dumps(d) + "\n")
        atomic_write_text(paths["answers"], json.dumps(self.answers, indent=1))
        atomic_write_text(paths["catalog"], self.bank.catalog_yaml())
        atomic_write_text(paths["lists"], self.lists_yaml(tokenizer))
        return {k: str(v) for k, v in paths.items()}

    def lists_yaml(self, tokenizer: Tokenizer | None = None) -> str:
        """The bank's watch lists (VIP customers; staff's own customer records)."""
        from privacy.audit.lists import hash_values

        def values(ids: list[str]) -> tuple[str, str]:
            if tokenizer is None:
                return "false", json.dumps(ids)
            return "true", json.dumps(hash_values(tokenizer, ids, identifier="none"))

        vh, vv = values(self.vip_ids)
        ch, cv = values(self.colleague_ids)
        until = f"{self.bank.end.year + 1}-12-31"
        return ("version: 1\nlists:\n"
                f"  - {{name: vip, type: watch, kind: customer, owner: private-banking, "
                f"reason: VIP and public-figure customers, expires: {until}, hashed: {vh}, "
                f"identifier: none, values: {vv}}}\n"
                f"  - {{name: staff-accounts, type: watch, kind: customer, owner: hr, "
                f"reason: employees' own customer records, expires: {until}, hashed: {ch}, "
                f"identifier: none, values: {cv}}}\n")


def generate(bank: BankProfile) -> BankRun:
    """The traffic, incidents and answer key of ``bank`` (deterministic per profile)."""
    w = World(bank)
    w.run()
    incidents, inc_rows = inject(w, bank.per_variant)
    order = sorted(range(len(w.rows)), key=lambda i: w.rows[i][0])
    r = w.r
    ids = [""] * len(w.rows)
    rows: list[tuple[Any, ...]] = []
    days: set[tuple[str, str]] = set()
    move_ts = {p.name: w.day_start(p.move_day) for p in w.people if p.move_day >= 0}
    for n, i in enumerate(order):
        ts, p, sql, nrows, status, ip, client, _ = w.rows[i]
        eid = f"{bank.name}-{n:08d}"
        ids[i] = eid
        when = datetime.fromtimestamp(ts, TZ)
        dept = p.department
        if p.name in move_ts and ts >= move_ts[p.name]:
            dept = p.move_to[0]
        days.add((p.name, when.date().isoformat()))
        rows.append((eid, when.isoformat(timespec="milliseconds"), p.name, p.kind, p.role, dept,
                     ip, client, sql, nrows, status, round(r.lognormvariate(1.5, 1.0), 2)))
    for inc in incidents:
        inc["event_ids"] = [ids[i] for i in inc_rows[int(inc["id"][4:])]]
    answers = {"bank": bank.name, "seed": bank.seed, "start": bank.start.isoformat(),
               "days": bank.days, "warmup_days": bank.warmup, "events": len(rows),
               "actors": len(w.people), "actor_days": len(days), "incidents": incidents}
    s = bank.schema
    return BankRun(bank, rows, answers, [s.cid(c) for c in w.vips],
                   [s.cid(c) for c in w.colleagues])
