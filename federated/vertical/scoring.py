"""Each party's part of a trained vertical model, and joint scoring of new customers.

At the end of a run every party writes its own part (``[[party]] model``, a JSON file
created ``0600``): its preprocessing, its whitening and its weights -- for a host its
share ``w^h``, for the guest its own weights and its shares ``w^g`` of each host's. No
party ever holds another's part, so no one can score alone: ``covault fl score`` aligns
the parties' ``score`` files by PSI, the guest sends each host its share encrypted under
a fresh key, each host returns its partial scores encrypted, and only the guest learns
the scores, which it writes (``id``, ``probability``).
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from federated.model import sigmoid
from federated.preprocess import Transform
from federated.vertical import trees
from federated.vertical.features import Whitening
from federated.vertical.party import Party
from privacy.atomic import atomic_output
from privacy.errors import InputError

__all__ = ["finish", "load_model", "write_scores"]

FORMAT = "covault-vfl-model/1"


def _model_path(party: Party) -> Path | None:
    value = party.setup.get("model")
    return Path(str(value)) if value else None


def finish(party: Party, payload: dict[str, Any]) -> dict[str, Any]:
    """Write this party's model part (after training) and forget the run's state."""
    path = _model_path(party)
    try:
        if path is not None and payload.get("write_model") \
                and not party.store.json("scoring", default=False):
            own = (trees.model_part(party, int(payload["trees"]))
                   if party.store.has("gb_binner") else party.model_part())  # type: ignore[attr-defined]
            part = {"format": FORMAT, "run": party.setup.get("run"), **own}
            with atomic_output(str(path), "w") as fh:
                json.dump(part, fh, indent=1)
            os.chmod(path, 0o600)
    finally:
        party.store.drop()
    return {}


def load_model(party: Party, payload: dict[str, Any]) -> dict[str, Any]:
    """Read this party's model part and its features of the aligned ``score`` rows."""
    path = _model_path(party)
    if path is None or not path.is_file():
        raise InputError(f"party {party.name!r}: no model part to score with (key 'model' "
                         f"of the party; run `covault fl run` first)",
                         file=str(path) if path else None)
    try:
        part = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(part, dict) or part.get("format") != FORMAT \
                or part.get("party") != party.name or part.get("role") != party.role:
            raise ValueError("not this party's model part")
    except (OSError, ValueError) as exc:
        raise InputError(f"party {party.name!r}: unreadable model part ({exc})",
                         file=str(path)) from None
    if part.get("model") == "gbdt":
        return trees.load_part(party, part, str(path), str(payload.get("guest", "")))
    try:
        transform = Transform.from_json(part["transform"])
        whitening = Whitening.from_json(part["whitening"])
        weights = np.asarray(part["weights"], dtype=np.float64)
        shares = {str(h): np.asarray(v, dtype=np.float64)
                  for h, v in (part.get("shares") or {}).items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"party {party.name!r}: unreadable model part ({exc})",
                         file=str(path)) from None
    party.store.put_json("scoring", True)
    party.store.put_blob("transform", transform.to_json().encode())
    party.store.put_blob("whitening", whitening.to_json().encode())
    X = party.features("score")
    if party.role == "guest":
        X = np.column_stack([X, np.ones(len(X))])
    if X.shape[1] != weights.size:
        raise InputError(f"party {party.name!r}: the model part has {weights.size} weights "
                         f"for {X.shape[1]} features", file=str(path))
    party.store.put_array("X_score", X)
    party.store.put_weights("w", w=weights, **{f"g_{h}": v for h, v in shares.items()})
    return {"widths": {h: int(v.size) for h, v in shares.items()}, "model": "logistic",
            "run": part.get("run")}


def write_scores(party: Party, payload: dict[str, Any]) -> dict[str, Any]:
    """The guest writes the scored customers: id and probability."""
    out = party.setup.get("scores")
    if not out:
        raise InputError(f"party {party.name!r}: no output file for the scores")
    z = party.store.array("z_score")
    ids = party.aligned("score").table.column(str(party.setup["id"])).to_pylist()
    with atomic_output(str(out), "w") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow([party.setup["id"], "probability"])
        for i, p in zip(ids, sigmoid(np.asarray(z, dtype=np.float64)).tolist(), strict=True):
            writer.writerow([i, f"{p:.6f}"])
    return {"output": str(out), "written": int(z.size)}
