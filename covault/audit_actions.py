"""Recording an auditor's triage action: one code path for ``covault audit triage`` and
the browser console (``covault audit serve``).

Each action is an ``audit.triage`` ledger record written by
:meth:`privacy.audit.triage.Triage.transition` (or :meth:`~Triage.comment`), then a row
of the ``alert_actions`` table; the CLI and the console differ only in who they name as
the analyst.
"""

from __future__ import annotations

from typing import Any

__all__ = ["record_triage"]


def record_triage(store: Any, alert_id: str, state: str | None, *, comment: str,
                  reason: str | None = None, analyst: str) -> dict[str, Any]:
    """Move ``alert_id`` (or a unique prefix of it) to ``state`` with ``comment``; with
    ``state`` None, add the comment only. Returns the ledgered payload with its
    ``ledger_index``.

    Raises
    ------
    privacy.errors.AuditError
        Unknown or ambiguous alert, an illegal transition, a close without a reason, a
        reason when not closing, or an empty comment.
    """
    from privacy.audit.triage import Triage

    tri = Triage(store, analyst=analyst)
    if state is None:
        return tri.comment(alert_id, comment)
    return tri.transition(alert_id, state, reason=reason, comment=comment)
