"""Triage: the state machine, close reasons, suppressions, and every action in the ledger."""

from __future__ import annotations

import sqlite3
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from privacy.audit.detect import Detector
from privacy.audit.events import QueryEvent
from privacy.audit.store import AuditStore
from privacy.audit.triage import CLOSE_REASONS, TRANSITIONS, Triage
from privacy.errors import AuditError, IntegrityError

TZ = timezone(timedelta(hours=8))


def ev(i: int, stmt: str, actor: str = "t1") -> QueryEvent:
    return QueryEvent(event_id=f"e{i}", ts=datetime(2026, 4, 1, 10, tzinfo=TZ)
                      + timedelta(minutes=i), actor=actor, actor_kind="human",
                      statement=stmt, rows=None, status="ok")


@pytest.fixture()
def tri(tmp_path: Path) -> Triage:
    store = AuditStore(tmp_path / "audit.db")
    evs = [ev(1, "GRANT ALL ON customers TO t1"), ev(2, "DELETE FROM accounts", "t2"),
           ev(3, "SELECT a FROM t WHERE id = '1' OR '1'='1'", "t3")]
    store.add_events(evs)
    alerts = Detector().run(store.events())
    t = Triage(store, analyst="alice")
    assert t.save_alerts(alerts)["new"] == 3
    yield t  # type: ignore[misc]
    store.close()


def ids(tri: Triage) -> list[str]:
    return sorted(a["alert_id"] for a in tri.alerts())


def test_happy_path_and_history(tri: Triage) -> None:
    a = ids(tri)[0]
    tri.transition(a, "in_progress", comment="checking the change ticket")
    tri.transition(a, "escalated", comment="no ticket found")
    rec = tri.transition(a, "closed", reason="true_positive", comment="confirmed misuse")
    got = tri.get(a)
    assert got["state"] == "closed" and got["close_reason"] == "true_positive"
    assert [h["to_state"] for h in got["history"]] == ["in_progress", "escalated", "closed"]
    assert rec["ledger_index"] == got["history"][-1]["ledger_index"]
    tri.transition(a, "in_progress", comment="reopened: new evidence")
    assert tri.get(a)["state"] == "in_progress"
    assert [x["alert_id"] for x in tri.alerts("in_progress")] == [a]


@pytest.mark.parametrize(("start", "target"), [
    ("new", "new"), ("closed", "escalated"), ("closed", "closed"), ("in_progress", "new")])
def test_illegal_transitions(tri: Triage, start: str, target: str) -> None:
    a = ids(tri)[0]
    if start == "in_progress":
        tri.transition(a, "in_progress", comment="c")
    if start == "closed":
        tri.transition(a, "closed", reason="benign", comment="c")
    assert target not in TRANSITIONS[start]
    with pytest.raises(AuditError, match="cannot go from"):
        tri.transition(a, target, comment="c", reason="benign" if target == "closed" else None)


def test_closing_needs_a_reason_and_a_comment(tri: Triage) -> None:
    a = ids(tri)[0]
    with pytest.raises(AuditError, match="needs --reason"):
        tri.transition(a, "closed", comment="done")
    with pytest.raises(AuditError, match="needs --reason"):
        tri.transition(a, "closed", reason="looks fine", comment="done")
    with pytest.raises(AuditError, match="comment"):
        tri.transition(a, "closed", reason="benign", comment="  ")
    with pytest.raises(AuditError, match="only given when closing"):
        tri.transition(a, "in_progress", reason="benign", comment="x")
    with pytest.raises(AuditError, match="unknown alert"):
        tri.transition("AL-nope", "in_progress", comment="x")
    with pytest.raises(AuditError, match="unknown state"):
        tri.transition(a, "done", comment="x")
    assert tri.get(a)["state"] == "new" and tri.get(a)["history"] == []
    assert set(CLOSE_REASONS) == {"true_positive", "benign", "false_positive", "duplicate"}


def test_every_action_is_a_ledger_record(tri: Triage) -> None:
    a, b = ids(tri)[:2]
    before = tri.store.ledger.size
    tri.transition(a, "in_progress", comment="one")
    tri.comment(a, "two")
    tri.transition(b, "closed", reason="duplicate", comment="three")
    sid = tri.suppress(actor="t3", reason="pentest", comment="approved",
                       expires=date.today() + timedelta(days=5))
    recs = list(tri.store.ledger.records(start=before))
    assert [r.kind for r in recs] == ["audit.triage"] * 3 + ["audit.suppress"]
    assert [r.payload["comment"] for r in recs[:3]] == ["one", "two", "three"]
    assert recs[0].payload["analyst"] == "alice" and recs[3].payload["supp_id"] == sid
    rep = tri.store.verify()
    assert rep.triage_actions == 3


def test_tampering_with_alert_state_or_actions_fails_verify(tri: Triage, tmp_path: Path) -> None:
    a = ids(tri)[0]
    tri.transition(a, "closed", reason="false_positive", comment="fine")
    tri.store.verify()
    db = sqlite3.connect(tri.store.path)
    db.execute("UPDATE alerts SET state = 'new' WHERE alert_id = ?", (a,))
    db.commit()
    with pytest.raises(IntegrityError, match="state"):
        tri.store.verify()
    db.execute("UPDATE alerts SET state = 'closed' WHERE alert_id = ?", (a,))
    db.execute("DROP TRIGGER alert_actions_no_update")
    db.execute("UPDATE alert_actions SET comment = 'edited'")
    db.commit()
    db.close()
    with pytest.raises(IntegrityError, match="triage action"):
        tri.store.verify()


def test_suppressions_mark_new_alerts_and_keep_them(tri: Triage) -> None:
    with pytest.raises(AuditError, match="actor, a scenario"):
        tri.suppress(reason="r", comment="c", expires=date.today() + timedelta(days=1))
    with pytest.raises(AuditError, match="past"):
        tri.suppress(actor="x", reason="r", comment="c", expires=date(2020, 1, 1))
    tri.suppress(actor="t9", reason="red team", comment="ticket 42",
                 expires=date.today() + timedelta(days=30))
    alerts = Detector().run([ev(10, "GRANT ALL ON x TO t9", "t9")])
    assert tri.save_alerts(alerts)["suppressed"] == 1
    assert all(a["actor"] != "t9" for a in tri.alerts())
    hidden = [a for a in tri.alerts(include_suppressed=True) if a["actor"] == "t9"]
    assert hidden and hidden[0]["suppressed_by"].startswith("SUP-")
    # detecting again refreshes, keeps state and adds nothing
    assert tri.save_alerts(alerts) == {"new": 0, "updated": 1, "suppressed": 0}


def test_ledgered_action_missing_from_db_is_repaired(tri: Triage) -> None:
    a = ids(tri)[0]
    tri.store.ledger.append("audit.triage", {
        "alert_id": a, "action": "transition", "from_state": "new", "to_state": "escalated",
        "reason": None, "comment": "written before a crash", "analyst": "bob",
        "ts": "2026-04-02T00:00:00+00:00"})
    again = Triage(tri.store)
    assert again.get(a)["state"] == "escalated"
    tri.store.verify()


def test_no_api_edits_or_deletes_events(tri: Triage) -> None:
    for obj in (tri, tri.store):
        names = [n for n in dir(obj) if not n.startswith("_")]
        assert not [n for n in names if any(w in n for w in ("delete", "edit", "remove",
                                                             "update", "purge"))]
