"""What every covault ServerApp does around its job: read the runner's plan, run, and
write the result (or the error) to the file the runner named."""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from privacy.atomic import atomic_output
from privacy.errors import CovaultError

__all__ = ["write_result", "run_plan_job"]


def write_result(path: str, payload: dict[str, Any]) -> None:
    """The result JSON, written all or nothing."""
    with atomic_output(path, "w") as fh:
        json.dump(payload, fh, indent=1, default=float)


def run_plan_job(context: Any, job: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """Run ``job(plan)`` for the plan named in the run config; a covault error becomes
    ``{"error", "type"}`` in the result file, anything else also keeps its traceback."""
    from federated.horizontal.party import load_plan

    plan = load_plan(str(context.run_config["plan"]))
    result_path = str(plan["result"])
    try:
        result = job(plan)
    except CovaultError as exc:
        write_result(result_path, {"error": str(exc), "type": type(exc).__name__})
        return
    except Exception as exc:  # unexpected: keep the traceback for the runner's message
        write_result(result_path, {"error": f"{type(exc).__name__}: {exc}", "type": "internal",
                                   "traceback": traceback.format_exc()})
        raise
    write_result(result_path, result)
    Path(result_path).with_suffix(".done").touch()
