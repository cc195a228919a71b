"""What :meth:`LocalFederation.wait` returns, and raises when a run does not complete."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from privacy.errors import FederationError

__all__ = ["RunFailedError", "RunStatus"]


@dataclass(frozen=True)
class RunStatus:
    """Where a run stands, as the SuperLink reports it.

    Attributes
    ----------
    run_id:
        The run.
    status:
        Flower's status, e.g. ``"running"``, ``"finished:completed"``,
        ``"finished:failed"``, ``"finished:stopped"``.
    details:
        Flower's status details (the exception message of a failed ServerApp).
    elapsed:
        Seconds the run has been running, as the SuperLink counts them.
    log_path:
        The file holding the run's streamed log (the ServerApp's output).
    log_tail:
        The last lines of that log.
    nodes_down:
        Deployment: indices of SuperNodes whose process is not running.
    """

    run_id: int
    status: str
    details: str
    elapsed: float
    log_path: Path
    log_tail: str
    nodes_down: tuple[int, ...] = ()

    @property
    def finished(self) -> bool:
        """Whether the run has ended, successfully or not."""
        return self.status.startswith("finished")

    @property
    def ok(self) -> bool:
        """Whether the run finished and its ServerApp completed without error."""
        return self.status == "finished:completed"


class RunFailedError(FederationError):
    """A run finished without completing, or did not finish in time.

    Attributes
    ----------
    status:
        The run's last known :class:`RunStatus`.
    """

    def __init__(self, message: str, status: RunStatus) -> None:
        super().__init__(message)
        self.status = status
