"""The auditor's workflow: alert states, close reasons, comments and suppressions.

States move ``new -> in_progress -> escalated -> closed`` (see :data:`TRANSITIONS`; a
closed alert may be reopened to ``in_progress``). Closing needs a reason from
:data:`CLOSE_REASONS` and a comment. Suppressions (actor and/or scenario, reason,
comment, expiry) mark matching new alerts as suppressed; the alerts are still stored.

Every action is an ``audit.triage`` (or ``audit.suppress``) record in the ledger and a
row in the append-only ``alert_actions`` table, written so that a crash between the
two is repaired on the next open (the ledger is the source of truth). There is no API
that edits or deletes events.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timezone
from typing import Any

from privacy.audit.detect import Alert
from privacy.audit.store import AuditStore
from privacy.errors import AuditError

__all__ = ["Triage", "STATES", "TRANSITIONS", "CLOSE_REASONS"]

STATES = ("new", "in_progress", "escalated", "closed")
TRANSITIONS: dict[str, frozenset[str]] = {
    "new": frozenset({"in_progress", "escalated", "closed"}),
    "in_progress": frozenset({"escalated", "closed"}),
    "escalated": frozenset({"in_progress", "closed"}),
    "closed": frozenset({"in_progress"}),
}
CLOSE_REASONS = ("true_positive", "benign", "false_positive", "duplicate")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Triage:
    """Alerts and auditor actions on an :class:`AuditStore`.

    Parameters
    ----------
    store:
        The audit database.
    analyst:
        Default analyst name recorded with actions.
    """

    def __init__(self, store: AuditStore, *, analyst: str = "auditor") -> None:
        self.store = store
        self.analyst = analyst
        self._repair()

    # ------------------------------------------------------------------ repair
    def _repair(self) -> None:
        """Apply ledgered actions the database missed (crash between the two writes)."""
        db = self.store.db
        n = int(db.execute("SELECT count(*) FROM alert_actions").fetchone()[0])
        done = {r[0] for r in db.execute("SELECT supp_id FROM suppressions")}
        seen = 0
        for rec in self.store.ledger.records():
            if rec.kind == "audit.triage":
                seen += 1
                if seen > n:
                    self._apply(dict(rec.payload), rec.index)
            elif rec.kind == "audit.suppress" and rec.payload["supp_id"] not in done:
                self._apply_suppression(dict(rec.payload))

    def _apply(self, p: dict[str, Any], index: int) -> None:
        db = self.store.db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("INSERT INTO alert_actions (alert_id, ts, action, from_state, to_state, "
                       "reason, comment, analyst, ledger_index) VALUES (?,?,?,?,?,?,?,?,?)",
                       (p["alert_id"], p["ts"], p["action"], p["from_state"], p["to_state"],
                        p["reason"], p["comment"], p["analyst"], index))
            if p["to_state"]:
                db.execute("UPDATE alerts SET state = ?, close_reason = ?, updated = ? "
                           "WHERE alert_id = ?", (p["to_state"], p["reason"]
                                                  if p["to_state"] == "closed" else None,
                                                  p["ts"], p["alert_id"]))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _apply_suppression(self, p: dict[str, Any]) -> None:
        self.store.db.execute("INSERT INTO suppressions VALUES (?,?,?,?,?,?,?,?)",
                              (p["supp_id"], p["actor"], p["scenario"], p["reason"],
                               p["comment"], p["expires"], p["analyst"], p["ts"]))

    # ------------------------------------------------------------------ alerts
    def save_alerts(self, alerts: Iterable[Alert | Mapping[str, Any]]) -> dict[str, int]:
        """Insert new alerts (state ``new``) and refresh known ones (state kept).

        New alerts matching an active suppression are stored with ``suppressed_by``.
        One ``audit.detect`` ledger record summarises the run.
        """
        db = self.store.db
        supps = self.suppressions()
        new = updated = suppressed = 0
        new_ids: list[str] = []
        now = _now()
        db.execute("BEGIN IMMEDIATE")
        try:
            for a in alerts:
                d = a.to_dict() if isinstance(a, Alert) else dict(a)
                data = json.dumps(d, ensure_ascii=False, separators=(",", ":"))
                row = db.execute("SELECT 1 FROM alerts WHERE alert_id = ?",
                                 (d["alert_id"],)).fetchone()
                if row is not None:
                    db.execute("UPDATE alerts SET score = ?, last_ts = ?, data = ?, updated = ? "
                               "WHERE alert_id = ?", (d["score"], d["last_ts"], data, now,
                                                      d["alert_id"]))
                    updated += 1
                    continue
                supp = _matching(supps, d)
                suppressed += supp is not None
                db.execute("INSERT INTO alerts (alert_id, actor, primary_scenario, score, "
                           "first_ts, last_ts, state, suppressed_by, data, created, updated) "
                           "VALUES (?,?,?,?,?,?,'new',?,?,?,?)",
                           (d["alert_id"], d["actor"], d["scenarios"][0], d["score"],
                            d["first_ts"], d["last_ts"], supp, data, now, now))
                new += 1
                new_ids.append(d["alert_id"])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        digest = hashlib.sha256("\n".join(sorted(new_ids)).encode()).hexdigest()
        self.store.ledger.append("audit.detect", {"new": new, "updated": updated,
                                                  "suppressed": suppressed,
                                                  "new_ids_sha256": digest, "ts": now})
        return {"new": new, "updated": updated, "suppressed": suppressed}

    def alerts(self, state: str | None = None, *, include_suppressed: bool = False,
               actor: str | None = None) -> list[dict[str, Any]]:
        """Stored alerts (highest score first), optionally of one state or one actor."""
        if state is not None and state not in STATES:
            raise AuditError(f"unknown state {state!r} (expected one of {', '.join(STATES)})")
        sql = "SELECT data, state, close_reason, suppressed_by FROM alerts"
        cond, args = [], []
        if state is not None:
            cond.append("state = ?")
            args.append(state)
        if not include_suppressed:
            cond.append("suppressed_by IS NULL")
        if actor is not None:
            cond.append("actor = ?")
            args.append(actor)
        if cond:
            sql += " WHERE " + " AND ".join(cond)
        out = []
        for data, st, reason, supp in self.store.db.execute(sql + " ORDER BY score DESC, "
                                                            "first_ts", args):
            d = json.loads(data)
            d.update(state=st, close_reason=reason, suppressed_by=supp)
            out.append(d)
        return out

    def resolve(self, alert_id: str) -> str:
        """The full id of the alert that ``alert_id`` names: the id itself, or a prefix of
        exactly one alert's id (case does not matter; the ``AL-`` may be left out).

        Raises
        ------
        AuditError
            No alert matches, or several do (the message lists them).
        """
        text = alert_id.strip()
        if not text:
            raise AuditError("empty alert id")
        db = self.store.db
        row = db.execute("SELECT alert_id FROM alerts WHERE alert_id = ?", (text,)).fetchone()
        if row is not None:
            return str(row[0])
        prefixes = [text] if text.upper().startswith("AL-") else [text, "AL-" + text]
        found: list[str] = []
        for prefix in prefixes:
            pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            found += [r[0] for r in db.execute(
                "SELECT alert_id FROM alerts WHERE alert_id LIKE ? ESCAPE '\\' "
                "ORDER BY alert_id LIMIT 21", (pattern,)) if r[0] not in found]
        if not found:
            raise AuditError(f"unknown alert {alert_id!r} (no alert id starts with it; list "
                             "them with: covault audit alerts)")
        if len(found) > 1:
            shown = ", ".join(found[:10]) + (", ..." if len(found) > 10 else "")
            raise AuditError(f"alert id prefix {alert_id!r} is ambiguous: "
                             f"{'more than 20' if len(found) > 20 else len(found)} alerts "
                             f"match ({shown}); give more characters")
        return found[0]

    def get(self, alert_id: str) -> dict[str, Any]:
        """One alert with its state and action history; ``alert_id`` may be a unique
        prefix (:meth:`resolve`)."""
        alert_id = self.resolve(alert_id)
        row = self.store.db.execute("SELECT data, state, close_reason, suppressed_by FROM "
                                    "alerts WHERE alert_id = ?", (alert_id,)).fetchone()
        if row is None:
            raise AuditError(f"unknown alert {alert_id!r}")
        d: dict[str, Any] = json.loads(row[0])
        d.update(state=row[1], close_reason=row[2], suppressed_by=row[3])
        d["history"] = [dict(zip(("ts", "action", "from_state", "to_state", "reason",
                                  "comment", "analyst", "ledger_index"), r, strict=True))
                        for r in self.store.db.execute(
                            "SELECT ts, action, from_state, to_state, reason, comment, analyst, "
                            "ledger_index FROM alert_actions WHERE alert_id = ? ORDER BY id",
                            (alert_id,))]
        return d

    # ------------------------------------------------------------------ actions
    def transition(self, alert_id: str, state: str, *, comment: str,
                   reason: str | None = None, analyst: str | None = None) -> dict[str, Any]:
        """Move an alert to ``state``; ``alert_id`` may be a unique prefix.

        Raises
        ------
        AuditError
            Unknown alert or state, an ambiguous prefix, an illegal transition, closing
            without a reason from :data:`CLOSE_REASONS`, a reason when not closing, or an
            empty comment.
        """
        alert_id = self.resolve(alert_id)
        current = self.get(alert_id)["state"]
        if state not in STATES:
            raise AuditError(f"unknown state {state!r} (expected one of {', '.join(STATES)})")
        if state not in TRANSITIONS[current]:
            allowed = ", ".join(sorted(TRANSITIONS[current]))
            raise AuditError(f"alert {alert_id}: cannot go from {current!r} to {state!r} "
                             f"(allowed: {allowed})")
        if state == "closed" and reason not in CLOSE_REASONS:
            raise AuditError(f"closing alert {alert_id} needs --reason, one of "
                             f"{', '.join(CLOSE_REASONS)} (got {reason!r})")
        if state != "closed" and reason is not None:
            raise AuditError("a reason is only given when closing")
        return self._act(alert_id, "transition", current, state, reason, comment, analyst)

    def comment(self, alert_id: str, comment: str, *,
                analyst: str | None = None) -> dict[str, Any]:
        """Add a comment without changing the state."""
        alert_id = self.resolve(alert_id)
        current = self.get(alert_id)["state"]
        return self._act(alert_id, "comment", current, None, None, comment, analyst)

    def _act(self, alert_id: str, action: str, from_state: str, to_state: str | None,
             reason: str | None, comment: str, analyst: str | None) -> dict[str, Any]:
        if not isinstance(comment, str) or not comment.strip():
            raise AuditError("every triage action needs a non-empty comment")
        payload = {"alert_id": alert_id, "action": action, "from_state": from_state,
                   "to_state": to_state, "reason": reason, "comment": comment.strip(),
                   "analyst": analyst or self.analyst, "ts": _now()}
        index = self.store.ledger.append("audit.triage", payload)
        self._apply(payload, index)
        return dict(payload, ledger_index=index)

    # ------------------------------------------------------------------ suppressions
    def suppress(self, *, reason: str, comment: str, expires: date | datetime,
                 actor: str | None = None, scenario: str | None = None,
                 analyst: str | None = None) -> str:
        """Suppress future alerts of ``actor`` and/or ``scenario`` until ``expires``.

        Raises
        ------
        AuditError
            Neither actor nor scenario given, no reason or comment, or an expiry in the
            past.
        """
        if actor is None and scenario is None:
            raise AuditError("a suppression names an actor, a scenario or both")
        if not reason.strip() or not comment.strip():
            raise AuditError("a suppression needs a reason and a comment")
        if not isinstance(expires, datetime):
            expires = datetime.combine(expires, time(23, 59, 59), tzinfo=timezone.utc)
        if expires.tzinfo is None:
            raise AuditError("expiry needs a time zone")
        if expires <= datetime.now(timezone.utc):
            raise AuditError(f"expiry {expires.isoformat()} is in the past")
        ts = _now()
        supp_id = "SUP-" + hashlib.blake2b(f"{actor}|{scenario}|{ts}|{reason}".encode(),
                                           digest_size=6).hexdigest()
        payload = {"supp_id": supp_id, "actor": actor, "scenario": scenario,
                   "reason": reason.strip(), "comment": comment.strip(),
                   "expires": expires.isoformat(), "analyst": analyst or self.analyst, "ts": ts}
        self.store.ledger.append("audit.suppress", payload)
        self._apply_suppression(payload)
        return supp_id

    def suppressions(self, *, active_at: datetime | None = None) -> list[dict[str, Any]]:
        """Suppressions, optionally only those in force at ``active_at``."""
        rows = [dict(zip(("supp_id", "actor", "scenario", "reason", "comment", "expires",
                          "analyst", "created"), r, strict=True))
                for r in self.store.db.execute("SELECT * FROM suppressions ORDER BY created")]
        if active_at is not None:
            rows = [r for r in rows if datetime.fromisoformat(r["expires"]) >= active_at]
        return rows


def _matching(supps: list[dict[str, Any]], alert: Mapping[str, Any]) -> str | None:
    first = datetime.fromisoformat(alert["first_ts"])
    for s in supps:
        if s["actor"] is not None and s["actor"] != alert["actor"]:
            continue
        if s["scenario"] is not None and s["scenario"] != alert["scenarios"][0]:
            continue
        if first <= datetime.fromisoformat(s["expires"]):
            return str(s["supp_id"])
    return None
