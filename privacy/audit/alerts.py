"""Detector outputs: :class:`Signal`, :class:`EventScore`, :class:`Alert` and their constants.

An :class:`Alert` groups the signals of one actor and scenario over a time window
(:class:`privacy.audit.detect.Detector` opens, extends and merges them); ``PRIORITY``
orders scenario codes from most to least specific.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["Signal", "Alert", "EventScore", "PRIORITY", "MODEL_VERSION", "score_of"]

MODEL_VERSION = "baseline-sketch-1"
PRIORITY = ("DENY_LIST", "INJECTION", "PRIVILEGE_CHANGE", "MASS_MODIFY", "SERVICE_INTERACTIVE",
            "WATCHLIST", "ID_ENUMERATION", "BULK_EXPORT", "MANY_CUSTOMERS", "SLOW_DRIP",
            "SENSITIVE_FIRST_TOUCH", "NEW_SOURCE", "OFF_HOURS", "ERROR_BURST", "NOVEL_TEMPLATE",
            "UNPARSEABLE")
_RANK = {c: i for i, c in enumerate(PRIORITY)}
_EVIDENCE_CAP = 1000


def score_of(value: float) -> int:
    """The 0-100 whole-number score of an alert: the one rule (round half up) behind the
    score that is stored, printed by ``detect``, ``alerts`` and ``show``, and exported."""
    return max(0, min(100, math.floor(value + 0.5)))


@dataclass(frozen=True, slots=True)
class Signal:
    """One check that fired on one event."""

    code: str
    score: float
    reason: str


@dataclass(frozen=True, slots=True)
class EventScore:
    """The result of scoring one event."""

    event_id: str
    score: int
    signals: tuple[Signal, ...]
    alert_ids: tuple[str, ...] = ()


@dataclass
class Alert:
    """Signals of one actor and scenario grouped over a time window.

    ``scenarios[0]`` is the primary scenario; later codes were folded in (subsumed).
    ``event_ids`` holds at most 1,000 evidence ids; ``event_count`` counts them all.
    """

    alert_id: str
    actor: str
    scenarios: list[str]
    score: float
    reasons: dict[str, str]
    event_ids: list[str]
    event_count: int
    first_ts: datetime
    last_ts: datetime
    detected_ts: datetime
    rule_version: str
    model_version: str
    actor_kind: str | None = None
    role: str | None = None
    department: str | None = None
    _last: float = field(default=0.0, repr=False)
    # provisional support (see Detector): code -> events whose signal awaits judgement,
    # codes confirmed at least once, events that brought only provisional signals
    _pending: dict[str, set[str]] = field(default_factory=dict, repr=False, compare=False)
    _confirmed: set[str] = field(default_factory=set, repr=False, compare=False)
    _only: set[str] = field(default_factory=set, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (reasons as a list, timestamps ISO 8601)."""
        return {"alert_id": self.alert_id, "actor": self.actor, "scenarios": list(self.scenarios),
                "score": score_of(self.score),
                "reasons": [self.reasons[c] for c in self.scenarios if c in self.reasons],
                "event_ids": list(self.event_ids), "event_count": self.event_count,
                "first_ts": self.first_ts.isoformat(), "last_ts": self.last_ts.isoformat(),
                "detected_ts": self.detected_ts.isoformat(), "rule_version": self.rule_version,
                "model_version": self.model_version, "actor_kind": self.actor_kind,
                "role": self.role, "department": self.department}


def _fmt(x: float) -> str:
    return f"{int(round(x)):,}"
