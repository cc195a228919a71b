"""Roles and separation of duties in the auditor console.

Two roles, one per account:

``auditor``
    Works the queue: moves an alert ``new -> in_progress``, ``new -> escalated``,
    ``in_progress -> escalated`` and ``escalated -> in_progress``, and adds comments.
    An auditor cannot close or reopen an alert.
``reviewer``
    Decides: closes an alert that is ``in_progress`` or ``escalated`` (with a close
    reason and a comment), reopens a closed one (``closed -> in_progress``), and adds
    comments. A reviewer does not triage.

Separation of duties (four eyes) for closing:

- an alert still ``new`` cannot be closed: someone must have triaged it first;
- a reviewer cannot close an alert on which they themselves recorded any state change
  other than a close (they triaged it, e.g. under the CLI with the same name, or
  reopened it), so every closed alert carries at least two people's names.

The names compared are the ``analyst`` fields of the alert's ledgered history, which the
console fills with the logged-in account's name. The CLI (``covault audit triage``)
takes any ``--analyst`` and checks no role: it is for whoever holds the files.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from privacy.errors import CovaultError

__all__ = ["DutyError", "allowed_states", "check", "triagers", "ROLE_MOVES"]


class DutyError(CovaultError, PermissionError):
    """The logged-in user's role or history does not allow this action."""


#: (from_state, to_state) pairs each role may perform.
ROLE_MOVES: dict[str, frozenset[tuple[str, str]]] = {
    "auditor": frozenset({("new", "in_progress"), ("new", "escalated"),
                          ("in_progress", "escalated"), ("escalated", "in_progress")}),
    "reviewer": frozenset({("in_progress", "closed"), ("escalated", "closed"),
                           ("closed", "in_progress")}),
}


def triagers(alert: Mapping[str, Any]) -> set[str]:
    """Names that recorded a state change other than a close on ``alert``."""
    return {str(h["analyst"]) for h in alert.get("history") or ()
            if h.get("to_state") and h["to_state"] != "closed"}


def _refusal(role: str, user: str, alert: Mapping[str, Any], state: str) -> str | None:
    current = alert["state"]
    if (current, state) not in ROLE_MOVES.get(role, frozenset()):
        who = {"auditor": "only a reviewer closes or reopens alerts",
               "reviewer": "a reviewer only closes or reopens alerts; triage is an "
                           "auditor's"}.get(role, f"unknown role {role!r}")
        return f"{role} {user} cannot move an alert from {current} to {state} ({who})"
    if state == "closed" and user in triagers(alert):
        return (f"{user} triaged alert {alert['alert_id']} and so cannot also close it "
                "(separation of duties: another reviewer closes it)")
    return None


def check(role: str, user: str, alert: Mapping[str, Any], state: str) -> None:
    """Raise :class:`DutyError` unless ``user`` (with ``role``) may move ``alert`` (a
    :meth:`privacy.audit.triage.Triage.get` dict, history included) to ``state``."""
    why = _refusal(role, user, alert, state)
    if why is not None:
        raise DutyError(why)


def allowed_states(role: str, user: str, alert: Mapping[str, Any]) -> list[str]:
    """The states ``user`` may move ``alert`` to now, in workflow order."""
    order = ("in_progress", "escalated", "closed")
    return [s for s in order if _refusal(role, user, alert, s) is None]
