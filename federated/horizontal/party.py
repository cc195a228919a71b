"""Who this ClientApp is: its party name, data file and ledger, and its cached tables.

A SuperNode says which party it serves through its node config: ``party``, ``data`` and
optionally ``ledger`` (each bank runs ``flower-supernode --node-config "party='bank_1'
data='/data/loans.csv'"``). In a simulation or a local test federation started by
``covault fl run`` the runner writes a plan file (run config key ``plan``) listing the
parties, and the node's ``partition-id`` picks one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from federated.data import PartyTable, read_table
from privacy.errors import InputError

__all__ = ["Party", "load_plan"]

_TABLES: dict[tuple[str, int, int], PartyTable] = {}
_FEATURES: dict[tuple[str, int, int, str], tuple[Any, Any]] = {}


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
            _TABLES.clear()
            _TABLES[key] = read_table(self.data, party=self.name)
        return _TABLES[key]

    def features(self, transform: Any) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """``(X, y)`` under a :class:`~federated.preprocess.Transform` (cached)."""
        key = (*self._key(), transform.digest)
        if key not in _FEATURES:
            if len(_FEATURES) > 8:
                _FEATURES.clear()
            pt = self.table()
            _FEATURES[key] = (transform.features(pt), transform.labels(pt))
        X, y = _FEATURES[key]
        return X, y

    def open_ledger(self) -> Any:
        """This party's ledger (``privacy.ledger.Ledger``) or None."""
        if self.ledger is None:
            return None
        from privacy.ledger import Ledger

        return Ledger(self.ledger, origin=self.name)
