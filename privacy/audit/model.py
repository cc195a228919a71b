"""Batch model for periodic review: IsolationForest over per-actor-day features.

The streaming detector keeps one small feature row per (actor, day)
(:attr:`privacy.audit.detect.Detector.day_features`). A reviewer runs :func:`review`
nightly or weekly; it ranks the actor-days that look least like the rest and explains
each with the features furthest from that actor's role median. It is a second opinion
for the auditor, not an alert source, and is never in the per-event hot path.

scikit-learn is imported lazily (``pip install covault[audit]``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

__all__ = ["review", "FEATURES", "MODEL_NAME"]

FEATURES = ("events", "distinct_customers", "rows", "errors", "off_hours_events",
            "sensitive_reads", "new_templates", "max_risk")
MODEL_NAME = "isolation-forest-actor-day-1"


def review(day_features: Mapping[tuple[str, int], list[float]], *,
           roles: Mapping[str, str] | None = None, top: int = 20, seed: int = 0,
           n_estimators: int = 100) -> list[dict[str, Any]]:
    """Rank actor-days by IsolationForest anomaly score (most anomalous first).

    Parameters
    ----------
    day_features:
        ``(actor, local day number) -> FEATURES`` values.
    roles:
        Actor -> peer group label; features are compared with the group's median in the
        explanation.
    top:
        How many actor-days to return.
    seed:
        Random state of the forest (results are reproducible).

    Returns
    -------
    list of dict
        ``actor``, ``day`` (ISO date), ``score`` (higher = more anomalous), ``features``
        and ``why`` (the features most above their group median, with the numbers).
    """
    if len(day_features) < 10:
        return []
    import numpy as np
    from sklearn.ensemble import IsolationForest

    keys = list(day_features)
    x = np.log1p(np.asarray([day_features[k] for k in keys], dtype=float).clip(min=0))
    forest = IsolationForest(n_estimators=n_estimators, random_state=seed)
    forest.fit(x)
    scores = -forest.score_samples(x)
    groups: dict[str, list[int]] = {}
    for i, (actor, _) in enumerate(keys):
        groups.setdefault((roles or {}).get(actor, "all"), []).append(i)
    medians = {g: np.median(x[idx], axis=0) for g, idx in groups.items()}
    order = np.argsort(-scores)[:top]
    out = []
    for i in order:
        actor, day = keys[i]
        g = (roles or {}).get(actor, "all")
        diff = x[i] - medians[g]
        raw = day_features[keys[i]]
        med_raw = np.expm1(medians[g])
        why = "; ".join(f"{FEATURES[j]} {raw[j]:,.0f} vs group median {med_raw[j]:,.0f}"
                        for j in np.argsort(-diff)[:2] if diff[j] > math.log(2))
        out.append({"actor": actor, "day": (date(1970, 1, 1) + timedelta(days=day)).isoformat(),
                    "score": float(scores[i]),
                    "features": dict(zip(FEATURES, (float(v) for v in raw), strict=True)),
                    "why": why or "unusual combination of features", "model": MODEL_NAME})
    return out
