"""Who this ClientApp is: its party name, data file and ledger, and its cached tables.

A SuperNode says which party it serves through its node config: ``party``, ``data`` and
optionally ``ledger`` (each bank runs ``flower-supernode --node-config "party='bank_1'
data='/data/loans.csv'"``). In a simulation or a local test federation started by
``covault fl run`` the runner writes a plan file (run config key ``plan``) listing the
parties, and the node's ``partition-id`` picks one.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from federated.data import PartyTable, read_table
from privacy.errors import InputError

__all__ = ["Party", "load_plan"]

# Per-process caches: a simulation worker serves many parties in turn, a SuperNode's
# ClientApp process one; entries are evicted oldest first beyond these budgets.
_TABLES: OrderedDict[tuple[str, int, int], PartyTable] = OrderedDict()
_FEATURES: OrderedDict[tuple[str, int, int, str], tuple[Any, Any]] = OrderedDict()
_STEPS: dict[tuple[str, int, int, str, float], float] = {}
MAX_TABLES = 256
MAX_FEATURE_BYTES = 2 * 2**30


def load_plan(path: str) -> dict[str, Any]:
    """Read the runner's plan file."""
    try:
        plan = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read the run plan: {exc}", file=path) from None
    if not isinstance(plan, dict):
        raise InputError("the run plan is not a JSON object", file=path)
    return plan


@dataclass(frozen=True)
class Party:
    """This node's party."""

    name: str
    data: Path
    ledger: Path | None = None

    @classmethod
    def from_context(cls, context: Any) -> Party:
        """Resolve from the node config (deployment) or the plan (simulation)."""
        nc = dict(context.node_config)
        if "party" in nc:
            if "data" not in nc:
                raise InputError(f"node config of party {nc['party']!r} has no 'data' path")
            led = nc.get("ledger")
            return cls(str(nc["party"]), Path(str(nc["data"])), Path(str(led)) if led else None)
        plan_path = context.run_config.get("plan")
        if not plan_path:
            raise InputError("this SuperNode has no 'party' in its node config and the run "
                             "has no plan")
        plan = load_plan(str(plan_path))
        parties = plan.get("parties", [])
        idx = int(nc.get("partition-id", -1))
        if not 0 <= idx < len(parties):
            raise InputError(f"partition-id {idx} has no party in the plan "
                             f"({len(parties)} parties)")
        p = parties[idx]
        return cls(str(p["name"]), Path(p["data"]), Path(p["ledger"]) if p.get("ledger") else None)

    def _key(self) -> tuple[str, int, int]:
        try:
            st = self.data.stat()
        except OSError:
            raise InputError(f"party {self.name!r}: data file not found",
                             file=str(self.data)) from None
        return (str(self.data.resolve()), st.st_mtime_ns, st.st_size)

    def table(self) -> PartyTable:
        """The party's table (cached in this process while the file is unchanged)."""
        key = self._key()
        if key not in _TABLES:
            while len(_TABLES) >= MAX_TABLES:
                _TABLES.popitem(last=False)
            _TABLES[key] = read_table(self.data, party=self.name)
        _TABLES.move_to_end(key)
        return _TABLES[key]

    def features(self, transform: Any) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """``(X, y)`` under a :class:`~federated.preprocess.Transform` (cached)."""
        key = (*self._key(), transform.digest)
        if key not in _FEATURES:
            pt = self.table()
            X, y = transform.features(pt), transform.labels(pt)
            while _FEATURES and sum(a.nbytes + b.nbytes for a, b in _FEATURES.values()) \
                    + X.nbytes > MAX_FEATURE_BYTES:
                _FEATURES.popitem(last=False)
            _FEATURES[key] = (X, y)
        _FEATURES.move_to_end(key)
        X, y = _FEATURES[key]
        return X, y

    def step(self, transform: Any, lam: float) -> float:
        """The gradient step ``1/L`` on this party's features (cached with them)."""
        from federated.model import lipschitz

        key = (*self._key(), transform.digest, lam)
        if key not in _STEPS:
            if len(_STEPS) >= 4 * MAX_TABLES:
                _STEPS.clear()
            _STEPS[key] = 1.0 / lipschitz(self.features(transform)[0], lam)
        return _STEPS[key]

    def open_ledger(self) -> Any:
        """This party's ledger (``privacy.ledger.Ledger``) or None."""
        if self.ledger is None:
            return None
        from privacy.ledger import Ledger

        return Ledger(self.ledger, origin=self.name)
