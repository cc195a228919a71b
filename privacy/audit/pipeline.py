"""Scoring events while they are ingested: in this process, or in a forked one.

``AuditStore.ingest(records, on_event=scorer.score)`` hands each newly stored event to a
scorer. :class:`InlineScorer` calls :meth:`Detector.score
<privacy.audit.detect.Detector.score>` directly. :class:`ProcessScorer` sends events in
batches to a forked child that owns the detector, so parsing and storing (this process)
and scoring (the child) run on two cores at once; :meth:`~ProcessScorer.finish` brings
back the alerts and the day features. Both give the same :class:`Detection` for the same
events, because the child sees them in the same order.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.queues import Queue
from typing import Protocol

from privacy.audit.detect import Alert, Detector
from privacy.audit.events import QueryEvent
from privacy.audit.sql import Lexed

__all__ = ["Detection", "Scorer", "InlineScorer", "ProcessScorer", "scorer_for"]


@dataclass(frozen=True)
class Detection:
    """What a detector found: its alerts, per actor-day features and the event count."""

    alerts: list[Alert]
    day_features: dict[tuple[str, int], list[float]]
    events_scored: int

    @classmethod
    def of(cls, detector: Detector) -> Detection:
        """The detection state of ``detector`` now."""
        return cls(detector.alerts(), detector.day_features, detector.events_scored)


class Scorer(Protocol):
    """Takes events one at a time; :meth:`finish` returns the detection."""

    def score(self, event: QueryEvent) -> None:
        """Score one event (events of one actor in time order)."""

    def finish(self) -> Detection:
        """Score whatever is pending and return the result (call once)."""


class InlineScorer:
    """Score in this process."""

    def __init__(self, detector: Detector) -> None:
        self.detector = detector

    def score(self, event: QueryEvent) -> None:
        """Score one event now."""
        self.detector.score(event)

    def finish(self) -> Detection:
        """The detector's result."""
        return Detection.of(self.detector)


Item = tuple[QueryEvent, Lexed]


def _serve(detector: Detector, inbox: Queue[list[Item] | None], outbox: Connection) -> None:
    """Child: score every batch received; on ``None`` send back the detection."""
    try:
        while (batch := inbox.get()) is not None:
            for event, lexed in batch:
                detector.score(event, lexed)
        outbox.send(("ok", Detection.of(detector)))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises it
        outbox.send(("error", exc))


class ProcessScorer:
    """Score in a forked child process, fed batches of events over a pipe.

    Parameters
    ----------
    detector:
        The detector; the child gets a copy by ``fork`` (nothing is pickled), so use this
        object no more in the parent.
    batch_size:
        Events per message.

    Warnings
    --------
    Needs the ``fork`` start method (Linux, macOS); see :func:`scorer_for`. Always call
    :meth:`finish` (or :meth:`close` on error) so the child ends.
    """

    def __init__(self, detector: Detector, *, batch_size: int = 1000) -> None:
        ctx = multiprocessing.get_context("fork")
        # A queue, not a pipe: put() never blocks this process while the child is busy
        # scoring (a feeder thread writes to the pipe), so storing and scoring overlap.
        self._inbox: Queue[list[Item] | None] = ctx.Queue()
        self._outbox, child_out = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(target=_serve, args=(detector, self._inbox, child_out),
                                 daemon=True)
        # The documented pattern for fork without exec: freeze the parent's objects so
        # the child's collector never walks (and copy-on-write copies) what it inherited.
        gc.freeze()
        try:
            self._proc.start()
        finally:
            gc.unfreeze()
        child_out.close()
        # Lexing SQL is pure and per event: done here, it balances the two processes.
        self._lex = detector.analyzer.lex
        self._batch: list[Item] = []
        self._size = batch_size

    def score(self, event: QueryEvent) -> None:
        """Queue one event; a full batch goes to the child."""
        self._batch.append((event, self._lex(event.statement)))
        if len(self._batch) >= self._size:
            self._send()

    def _send(self) -> None:
        if self._batch:
            self._inbox.put(self._batch)
            self._batch = []

    def finish(self) -> Detection:
        """Send what is pending, wait for the child and return its detection.

        Raises
        ------
        Exception
            Whatever the detector raised in the child.
        """
        try:
            self._send()
            self._inbox.put(None)
            status, result = self._outbox.recv()
        finally:
            self.close()
        if status != "ok":
            raise result
        assert isinstance(result, Detection)
        return result

    def close(self) -> None:
        """Stop the child (if still running) and close the queue and pipe."""
        self._proc.join(timeout=5 if self._proc.exitcode is None else 0)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()
        # The child is gone: whatever the feeder thread still holds has no reader.
        self._inbox.cancel_join_thread()
        self._inbox.close()
        self._outbox.close()


def scorer_for(detector: Detector, *,
               processes: int | None = None) -> InlineScorer | ProcessScorer:
    """A :class:`ProcessScorer` when two processes can run (``fork`` and 2+ CPUs), else inline.

    ``processes=1`` forces scoring in this process.
    """
    cpus = processes if processes is not None else (os.cpu_count() or 1)
    if cpus >= 2 and "fork" in multiprocessing.get_all_start_methods():
        return ProcessScorer(detector)
    return InlineScorer(detector)
