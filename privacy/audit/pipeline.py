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

import functools
import gc
import multiprocessing
import os
import queue
from dataclasses import dataclass
from datetime import timedelta, timezone, tzinfo
from multiprocessing.connection import Connection
from multiprocessing.queues import Queue
from typing import Any, Protocol

from privacy.audit.detect import Alert, Detector
from privacy.audit.events import QueryEvent, restore_event
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

    def close(self) -> None:
        """Nothing to stop (for symmetry with :meth:`ProcessScorer.close`)."""


# One event and its lexed statement as a flat tuple of builtins: the event's fields in
# order, with ``ts`` split into its naive wall time and its offset (an unnamed fixed
# offset as seconds, any other tzinfo as itself), then the Lexed fields. Unpickling this
# costs a fraction of pickled objects, whose datetime carries its own tzinfo and timedelta.
Item = tuple[Any, ...]


@functools.lru_cache(maxsize=256)
def _unnamed(delta: timedelta) -> str:
    """The name ``datetime.timezone`` gives an offset it was not given a name for."""
    return timezone(delta).tzname(None)


def _pack(event: QueryEvent, lexed: Lexed) -> Item:
    ts = event.ts
    tz = ts.tzinfo
    offset: float | tzinfo | None = tz
    if type(tz) is timezone:
        delta = tz.utcoffset(None)
        if tz.tzname(None) == _unnamed(delta):
            offset = delta.total_seconds()
    return (event.event_id, ts.replace(tzinfo=None), offset, event.actor, event.actor_kind,
            event.role, event.department, event.source_ip, event.client, event.database,
            event.statement, event.rows, event.status, event.duration_ms, event.parameters,
            lexed.key, lexed.lits, lexed.starts, lexed.sizes)


class _Unpacker:
    """Rebuilds packed items in the child, one shared tzinfo per offset."""

    def __init__(self) -> None:
        self._zones: dict[float, timezone] = {}

    def zone(self, offset: float) -> timezone:
        tz = self._zones.get(offset)
        if tz is None:
            tz = self._zones[offset] = (timezone.utc if offset == 0 else
                                        timezone(timedelta(seconds=offset)))
        return tz

    def __call__(self, item: Item) -> tuple[QueryEvent, Lexed]:
        (event_id, wall, offset, actor, actor_kind, role, department, source_ip, client,
         database, statement, rows, status, duration_ms, parameters, key, lits, starts,
         sizes) = item
        tz = self.zone(offset) if isinstance(offset, float) else offset
        event = restore_event(event_id, wall.replace(tzinfo=tz), actor, actor_kind, role,
                              department, source_ip, client, database, statement, rows,
                              status, duration_ms, parameters)
        return event, Lexed(key, lits, starts, sizes)


def _serve(detector: Detector, inbox: Queue[list[Item] | None], outbox: Connection) -> None:
    """Child: score every batch received; on ``None`` send back the detection.

    The collector is off while a batch is unpickled: a batch is thousands of fresh
    containers, and with a large detector state the collections they would trigger cost
    more than the unpickling itself. Nothing in a batch forms a reference cycle.
    """
    unpack = _Unpacker()
    collecting = gc.isenabled()
    try:
        while True:
            gc.disable()
            try:
                batch = inbox.get()
            finally:
                if collecting:
                    gc.enable()
            if batch is None:
                break
            for item in batch:
                detector.score(*unpack(item))
        outbox.send(("ok", Detection.of(detector)))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises it
        outbox.send(("error", exc))


_BACKLOG = 8  # batches queued for the child at most
_POLL_S = 0.5  # how often a full queue checks that the child is still there


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
    :meth:`finish` (or :meth:`close` on error) so the child ends. While it runs, the
    objects this process had when it was made are frozen (:func:`gc.freeze`) and
    :meth:`close` unfreezes all frozen objects: an application that freezes its own
    heap should freeze again afterwards.
    """

    def __init__(self, detector: Detector, *, batch_size: int = 1000) -> None:
        ctx = multiprocessing.get_context("fork")
        # A queue, not a pipe: put() does not block this process while the child is busy
        # scoring (a feeder thread writes to the pipe), so storing and scoring overlap.
        # Bounded, so that when scoring is the slower side the backlog waiting here
        # stays a few batches: memory stays flat and the collector has little to walk.
        self._inbox: Queue[list[Item] | None] = ctx.Queue(maxsize=_BACKLOG)
        self._outbox, child_out = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(target=_serve, args=(detector, self._inbox, child_out),
                                 daemon=True)
        # The documented pattern for fork without exec: freeze the parent's objects so
        # the child's collector never walks (and copy-on-write copies) what it inherited.
        # They stay frozen here too until close(): ingesting allocates enough to trigger
        # full collections, which would otherwise walk every module and object this
        # process had before, again and again.
        gc.freeze()
        self._frozen = True
        try:
            self._proc.start()
        except BaseException:
            self._thaw()
            raise
        child_out.close()
        # Lexing SQL is pure and per event: done here, it balances the two processes.
        self._lex = detector.analyzer.lex
        self._batch: list[Item] = []
        self._size = batch_size

    def score(self, event: QueryEvent) -> None:
        """Queue one event; a full batch goes to the child."""
        self._batch.append(_pack(event, self._lex(event.bound_statement)))
        if len(self._batch) >= self._size:
            self._send()

    def _send(self) -> None:
        if self._batch:
            self._put(self._batch)
            self._batch = []

    def _put(self, item: list[Item] | None) -> None:
        """Queue ``item`` for the child, waiting while the queue is full; if the child
        has stopped meanwhile (its detector raised, or it was killed), raise why."""
        while True:
            try:
                self._inbox.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                # A child that failed has sent its error (or is sending it: a large one
                # fills the pipe and keeps the child alive until it is read).
                if self._outbox.poll(0) or not self._proc.is_alive():
                    self._result()  # raises: a stopped child takes nothing more

    def _result(self) -> Detection:
        """The child's detection, or the error it sent, or why it sent nothing."""
        try:
            status, result = self._outbox.recv()
        except EOFError:
            self._proc.join()
            raise RuntimeError("the scoring process exited with code "
                               f"{self._proc.exitcode} before returning its result") from None
        if status != "ok":
            raise result
        assert isinstance(result, Detection)
        return result

    def finish(self) -> Detection:
        """Send what is pending, wait for the child and return its detection.

        Raises
        ------
        Exception
            Whatever the detector raised in the child.
        RuntimeError
            The child ended without a result (killed, for instance).
        """
        try:
            self._send()
            self._put(None)
            return self._result()
        finally:
            self.close()

    def _thaw(self) -> None:
        if self._frozen:
            self._frozen = False
            gc.unfreeze()

    def close(self) -> None:
        """Stop the child (if still running), close the queue and pipe, and let this
        process's collector see its older objects again."""
        self._thaw()
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
