"""The audit database: events (append-only), quarantine, alerts, triage — tied to a ledger.

Layout
------
``audit.db`` (SQLite, WAL, ``synchronous=FULL``) holds:

* ``events`` — one row per event: ``seq``, ``event_id`` (UNIQUE: ingesting a file again
  adds nothing; see "Duplicate ids" below), epoch ``ts``, ``actor``, the event's JSON
  ``data``, its SHA-256 and the ``batch`` it arrived in. Triggers refuse UPDATE and DELETE.
* ``quarantine`` — malformed input lines with source, line number, reason and raw text
  (UNIQUE per source and line); append-only.
* ``batches`` — one row per ingest batch: its seq range, count and the RFC 6962 Merkle
  root over its events' hashes; append-only.
* ``alerts``, ``alert_actions``, ``suppressions`` — detection output and the auditor's
  workflow (:mod:`privacy.audit.triage`); actions are append-only.

A sibling ledger ``audit.ledger.db`` (:class:`privacy.ledger.Ledger`) receives one
``audit.events`` record per batch (batch number, seq range, count, Merkle root,
quarantine digest) and one ``audit.triage`` record per auditor action. They are two
files so the ledger can be handed to an auditor (and checkpointed) on its own.

Duplicate ids
-------------
An event whose ``event_id`` is already stored (or came earlier in the same input) is
an exact **duplicate** when its content is the same: the same SHA-256 of its JSON, or,
for an event stored by another serialisation, the same field values (timestamps
compared as instants). A duplicate is counted in :attr:`IngestReport.duplicates` and
adds nothing. An event whose id is taken by **different content** is a conflict: it is
quarantined at its line, the reason naming the id and where the first one came from,
and counted in :attr:`IngestReport.conflicts` (an id must not silently stand for two
events). The check costs nothing while every insert succeeds; only the ids SQLite
ignored are looked up, in one batched query per 500.

Events an older version stored
------------------------------
Versions before the timestamp range check (:func:`privacy.audit.events.check_timestamp`)
stored events with timestamps that cannot be converted to every zone (year 1 or 9999).
They stay stored (the table is append-only) and still verify, but :meth:`AuditStore.events`
and the other readers **skip** them with an :class:`UnreadableEventWarning` naming the
event id, seq and reason (collected in :attr:`AuditStore.skipped` too), so detection
replays the rest instead of crashing; :meth:`AuditStore.event` raises an
:class:`~privacy.errors.InputError` naming the id.

Crash safety
------------
A batch's events, quarantine rows and batch row commit in one SQLite transaction; the
ledger record is appended after the commit. If the process dies between the two, the
next :class:`AuditStore` that opens the database appends the missing ledger records
(:meth:`AuditStore.reconcile`) before anything else. Re-ingesting a file skips events
already stored (by ``event_id``), so ``kill -9`` during ingest followed by ingest again
loses nothing and duplicates nothing, and :meth:`AuditStore.verify` passes.

What verification covers
------------------------
Every stored column of an event: ``data`` is hashed into its batch's Merkle root (the
ledger holds the root); ``event_id``, ``ts`` and ``actor`` (which order replay and
select an actor's events) are recomputed from ``data`` and must equal the stored
columns; ``hash`` is recomputed; ``seq`` and ``batch`` must lie in the ledgered seq
range of the batch, in leaf order. A quarantine row's source, line, reason and raw text
are covered by its batch's quarantine digest (``v2:``; batches written before it cover
line and reason only).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from privacy.audit.events import MalformedLine, QueryEvent, json_loads, parse_timestamp
from privacy.errors import InputError, IntegrityError, SerializationError
from privacy.ledger import Checkpoint, Ledger, PublicKeySource, merkle
from privacy.ledger.store import create_private
from privacy.readonly import connect_read_only

__all__ = ["AuditStore", "IngestReport", "StoreVerifyReport", "UnreadableEventWarning",
           "ledger_path_for"]

_FORMAT = "covault-audit-store-1"
_NO_CHANGE = ("CREATE TRIGGER IF NOT EXISTS {t}_no_{op} BEFORE {OP} ON {t} "
              "BEGIN SELECT RAISE(ABORT, '{t} are append-only'); END")
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL "
    "UNIQUE, ts REAL NOT NULL, actor TEXT NOT NULL, data TEXT NOT NULL, hash BLOB NOT NULL, "
    "batch INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS events_ts ON events (ts, seq)",
    "CREATE TABLE IF NOT EXISTS quarantine (id INTEGER PRIMARY KEY, source TEXT NOT NULL, "
    "line INTEGER NOT NULL, reason TEXT NOT NULL, raw TEXT NOT NULL, batch INTEGER NOT NULL, "
    "UNIQUE (source, line))",
    "CREATE TABLE IF NOT EXISTS batches (batch INTEGER PRIMARY KEY, source TEXT NOT NULL, "
    "first_seq INTEGER, last_seq INTEGER, count INTEGER NOT NULL, root BLOB NOT NULL, "
    "quarantined INTEGER NOT NULL, qdigest TEXT NOT NULL, ts TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS alerts (alert_id TEXT PRIMARY KEY, actor TEXT NOT NULL, "
    "primary_scenario TEXT NOT NULL, score REAL NOT NULL, first_ts TEXT NOT NULL, "
    "last_ts TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'new', close_reason TEXT, "
    "suppressed_by TEXT, data TEXT NOT NULL, created TEXT NOT NULL, updated TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS alert_actions (id INTEGER PRIMARY KEY, alert_id TEXT NOT NULL, "
    "ts TEXT NOT NULL, action TEXT NOT NULL, from_state TEXT, to_state TEXT, reason TEXT, "
    "comment TEXT, analyst TEXT, ledger_index INTEGER)",
    "CREATE TABLE IF NOT EXISTS suppressions (supp_id TEXT PRIMARY KEY, actor TEXT, "
    "scenario TEXT, reason TEXT NOT NULL, comment TEXT NOT NULL, expires TEXT NOT NULL, "
    "analyst TEXT, created TEXT NOT NULL)",
    *(_NO_CHANGE.format(t=t, op=op, OP=op.upper())
      for t in ("events", "quarantine", "batches", "alert_actions", "suppressions")
      for op in ("update", "delete")),
)


def ledger_path_for(db_path: str | os.PathLike[str]) -> Path:
    """The ledger that belongs to ``db_path``: ``audit.db`` -> ``audit.ledger.db``."""
    p = Path(db_path)
    return p.with_name(f"{p.stem}.ledger{p.suffix or '.db'}")


class UnreadableEventWarning(UserWarning):
    """A stored event cannot be read back as a valid event (stored by an older version
    that did not check its timestamp's range) and was skipped."""


@dataclass
class IngestReport:
    """What one ingest did.

    ``duplicates`` counts events whose id was stored with the same content (nothing
    added); ``conflicts`` those whose id was stored with different content, which are
    quarantined too (they are in ``quarantined`` with their line and reason).
    """

    read: int = 0
    added: int = 0
    duplicates: int = 0
    quarantined: list[tuple[int, str]] = field(default_factory=list)
    batches: int = 0
    recovered_batches: int = 0
    conflicts: int = 0


@dataclass(frozen=True)
class StoreVerifyReport:
    """What :meth:`AuditStore.verify` checked."""

    events: int
    batches: int
    quarantined: int
    triage_actions: int
    ledger_size: int
    ledger_root: str
    checkpoint_size: int | None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _qdigest_v1(rows: Iterable[tuple[Any, ...]]) -> str:
    """The quarantine digest of batches written before ``v2``: line and reason only."""
    h = hashlib.sha256()
    for line, reason in rows:
        h.update(f"{line}\x1f{reason}\x1e".encode("utf-8", "surrogatepass"))
    return h.hexdigest()


_QDIGEST_V2 = "v2:"


def _qdigest(rows: Iterable[tuple[Any, ...]]) -> str:
    """``v2:`` + SHA-256 over every stored field of a batch's quarantine rows (source,
    line, reason, raw), each field length-prefixed, so no row or field boundary can move."""
    h = hashlib.sha256(b"covault audit quarantine v2\0")
    for row in rows:
        for value in row:
            data = str(value).encode("utf-8", "surrogatepass")
            h.update(len(data).to_bytes(8, "big") + data)
    return _QDIGEST_V2 + h.hexdigest()


def _quarantine_digest(rows: list[tuple[Any, ...]], ledgered: str) -> str:
    """The digest of stored quarantine rows (source, line, reason, raw) in the version of
    the ledgered digest ``ledgered``."""
    if ledgered.startswith(_QDIGEST_V2):
        return _qdigest(rows)
    return _qdigest_v1((line, reason) for _, line, reason, _ in rows)


class AuditStore:
    """The audit database and its ledger.

    Parameters
    ----------
    path:
        The SQLite file (created when missing, unless ``read_only``).
    ledger_path:
        The ledger file (default :func:`ledger_path_for`).
    read_only:
        Open both existing files for reading only (for :meth:`verify`): nothing is
        created, migrated, reconciled or written, not even ``-wal``/``-shm`` files
        (:func:`privacy.readonly.connect_read_only`). Batches a crash left without their
        ledger records then fail verification until an ingest reconciles them.

    Warnings
    --------
    There is no API to edit or delete events; triggers refuse it too. Someone with write
    access to the files can still rewrite both: keep checkpoints of the ledger outside
    (:meth:`checkpoint`) and pass one to :meth:`verify`.
    """

    def __init__(self, path: str | os.PathLike[str], *,
                 ledger_path: str | os.PathLike[str] | None = None,
                 read_only: bool = False) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise InputError(f"{path}: is a folder, not an audit database")
        if read_only and not self.path.exists():
            raise InputError(f"{path}: no such audit database")
        self.db = self._connect(read_only)
        #: ``(seq, event_id, reason)`` of stored events a reader skipped as unreadable
        self.skipped: list[tuple[int, str, str]] = []
        try:
            self.ledger = Ledger(ledger_path or ledger_path_for(self.path), read_only=read_only)
        except BaseException:
            self.db.close()
            raise
        self.recovered = 0 if read_only else self.reconcile()

    def _connect(self, read_only: bool) -> sqlite3.Connection:
        """Open the database: created and migrated, or (``read_only``) only checked."""
        if read_only:
            db = connect_read_only(self.path)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            create_private(self.path)  # 0600: it holds statements and their parameters
            db = sqlite3.connect(str(self.path), timeout=30.0, isolation_level=None)
        try:
            if not read_only:
                db.execute("PRAGMA journal_mode = WAL")
                db.execute("PRAGMA synchronous = FULL")
                db.execute("BEGIN IMMEDIATE")
                for stmt in _SCHEMA:
                    db.execute(stmt)
            row = db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
            if row is None and not read_only:
                db.execute("INSERT INTO meta VALUES ('format', ?)", (_FORMAT,))
            elif row is None or row[0] != _FORMAT:
                raise SerializationError(f"{self.path}: not a covault audit database")
            if not read_only:
                db.execute("COMMIT")
        except sqlite3.DatabaseError:
            db.close()
            raise SerializationError(f"{self.path}: not a readable covault audit database"
                                     ) from None
        except BaseException:
            db.close()
            raise
        return db

    # ------------------------------------------------------------------ plumbing
    def close(self) -> None:
        """Close the database and the ledger."""
        self.ledger.close()
        self.db.close()

    def __enter__(self) -> AuditStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _last_ledgered_batch(self) -> int:
        for i in range(self.ledger.size - 1, -1, -1):
            rec = self.ledger.get(i)
            if rec.kind == "audit.events":
                return int(rec.payload["batch"])
        return 0

    def reconcile(self) -> int:
        """Append ledger records for batches committed without one (after a crash)."""
        last = self._last_ledgered_batch()
        rows = self.db.execute("SELECT batch, source, first_seq, last_seq, count, root, "
                               "quarantined, qdigest FROM batches WHERE batch > ? "
                               "ORDER BY batch", (last,)).fetchall()
        if rows:
            self.ledger.append_many(("audit.events", _batch_payload(r)) for r in rows)
        return len(rows)

    # ------------------------------------------------------------------ ingest
    def ingest(self, records: Iterable[tuple[int, QueryEvent | MalformedLine]], *,
               source: str = "<stream>", batch_size: int = 2000,
               progress: Callable[[int], None] | None = None,
               on_event: Callable[[QueryEvent], object] | None = None) -> IngestReport:
        """Store adapter output; malformed lines go to quarantine with their line numbers.

        Each batch of ``batch_size`` records is one transaction plus one ledger record.
        The default (2,000) keeps a scorer fed by ``on_event`` busy while the next batch
        is parsed and stored; larger batches mean fewer ledger records but less overlap.

        Parameters
        ----------
        on_event:
            Called with every event this ingest newly stored, in input order, once its
            batch is committed and ledgered (e.g. :meth:`Detector.score
            <privacy.audit.detect.Detector.score>` for a single streaming pass).
            Duplicates, whether already stored or repeated in the input, are not passed.

        Warnings
        --------
        ``on_event`` sees only this ingest's new events: a detector fed this way starts
        from whatever state it had, so replay the events stored before (:meth:`events`)
        through it first to get the same result as a later full detection.
        """
        report = IngestReport(recovered_batches=self.recovered)
        events: list[QueryEvent] = []
        where: list[int] = []  # the line of each event, for a conflict's quarantine row
        bad: list[MalformedLine] = []
        for line_no, item in records:
            if isinstance(item, QueryEvent):
                events.append(item)
                where.append(line_no)
            else:
                bad.append(item)
            if len(events) + len(bad) >= batch_size:
                self._flush(events, where, bad, source, report, progress, on_event)
                events, where, bad = [], [], []
        if events or bad:
            self._flush(events, where, bad, source, report, progress, on_event)
        return report

    def _flush(self, events: list[QueryEvent], where: list[int], bad: list[MalformedLine],
               source: str, report: IngestReport, progress: Callable[[int], None] | None,
               on_event: Callable[[QueryEvent], object] | None) -> None:
        added, after = self._commit(events, where, bad, source, report)
        if on_event is not None and added:
            for e in events if added == len(events) else self._stored(events, after):
                on_event(e)
        if progress is not None:
            progress(len(events) + len(bad))

    def _stored(self, events: list[QueryEvent], after: int) -> Iterator[QueryEvent]:
        """The events of ``events`` that the last batch stored (first occurrence of an id):
        the rows above seq ``after``, the largest before it."""
        fresh = {r[0] for r in self.db.execute("SELECT event_id FROM events WHERE seq > ?",
                                               (after,))}
        for e in events:
            if e.event_id in fresh:
                fresh.discard(e.event_id)
                yield e

    def add_events(self, events: Iterable[QueryEvent], *, source: str = "<api>") -> IngestReport:
        """Store events given directly (no quarantine)."""
        return self.ingest(((0, e) for e in events), source=source)

    def _commit(self, events: list[QueryEvent], where: list[int], bad: list[MalformedLine],
                source: str, report: IngestReport) -> tuple[int, int]:
        """Store one batch and ledger it; return (events added, the largest seq before
        the batch). ``where`` holds the line of each event: an event whose id is taken
        by other content is quarantined there (see "Duplicate ids" in the module doc).

        A batch's rows get seqs above every earlier row (rowids are max + 1; the table
        has no AUTOINCREMENT and nothing deletes), so they are found by a range of the
        primary key: no index on ``batch`` is needed, which saves a b-tree insert per
        event."""
        report.read += len(events) + len(bad)
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            batch = (db.execute("SELECT max(batch) FROM batches").fetchone()[0] or 0) + 1
            last_seq = db.execute("SELECT max(seq) FROM events").fetchone()[0] or 0
            before = db.total_changes
            rows = []
            for e in events:
                data = e.to_json()
                rows.append((e.event_id, _stored_ts(e, data), e.actor, data,
                             hashlib.sha256(data.encode("utf-8", "surrogatepass")).digest(),
                             batch))
            db.executemany("INSERT OR IGNORE INTO events (event_id, ts, actor, data, hash, "
                           "batch) VALUES (?, ?, ?, ?, ?, ?)", rows)
            added = db.total_changes - before
            conflicts = ([] if added == len(rows)
                         else self._conflicts(events, where, rows, last_seq, source))
            before = db.total_changes
            if conflicts:
                bad = sorted([*bad, *conflicts], key=lambda b: b.line_no)
            db.executemany("INSERT OR IGNORE INTO quarantine (source, line, reason, raw, batch) "
                           "VALUES (?, ?, ?, ?, ?)",
                           [(source, b.line_no, b.reason, b.raw[:4000], batch) for b in bad])
            qadded = db.total_changes - before
            row = None
            if added or qadded:
                if added == len(rows) and db.execute(
                        "SELECT count(*), max(seq) FROM events WHERE seq > ?",
                        (last_seq,)).fetchone() == (added, last_seq + added):
                    # every row went in, each taking the next seq: no need to read back
                    first, last = (last_seq + 1, last_seq + added) if added else (None, None)
                    hashes = [r[4] for r in rows]
                else:
                    seqs = db.execute("SELECT seq, hash FROM events WHERE seq > ? "
                                      "ORDER BY seq", (last_seq,)).fetchall()
                    first = seqs[0][0] if seqs else None
                    last = seqs[-1][0] if seqs else None
                    hashes = [h for _, h in seqs]
                qrows = db.execute("SELECT source, line, reason, raw FROM quarantine "
                                   "WHERE batch = ? ORDER BY id", (batch,)).fetchall()
                row = (batch, source, first, last, len(hashes),
                       merkle.root_of([merkle.leaf_hash(h) for h in hashes]), len(qrows),
                       _qdigest(qrows))
                db.execute("INSERT INTO batches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           (*row, _now()))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        report.added += added
        report.duplicates += len(events) - added - len(conflicts)
        report.conflicts += len(conflicts)
        report.quarantined += [(b.line_no, b.reason) for b in bad]
        if row is not None:
            report.batches += 1
            self.ledger.append("audit.events", _batch_payload(row))
        return added, last_seq

    def _conflicts(self, events: list[QueryEvent], where: list[int],
                   rows: list[tuple[Any, ...]], last_seq: int,
                   source: str) -> list[MalformedLine]:
        """The events of a batch SQLite ignored whose id is stored with other content,
        as quarantine entries; called inside the batch's transaction, after its insert.

        An event was stored by this batch when its id is among the rows above
        ``last_seq`` and it is the first of the batch with that id; every other one was
        ignored. Only those are looked up (500 ids a query), by hash, and by value when
        the hashes differ (an event stored by another serialisation)."""
        db = self.db
        fresh = {r[0] for r in db.execute("SELECT event_id FROM events WHERE seq > ?",
                                          (last_seq,))}
        first_line: dict[str, int] = {}
        ignored: list[int] = []
        for i, row in enumerate(rows):
            event_id = row[0]
            if event_id in fresh and event_id not in first_line:
                first_line[event_id] = where[i]
            else:
                ignored.append(i)
        ids = list(dict.fromkeys(rows[i][0] for i in ignored))
        stored: dict[str, tuple[bytes, int, int]] = {}
        for k in range(0, len(ids), 500):
            chunk = ids[k:k + 500]
            for event_id, h, seq, batch in db.execute(
                    "SELECT event_id, hash, seq, batch FROM events WHERE event_id IN "
                    f"({','.join('?' * len(chunk))})", chunk):
                stored[event_id] = (bytes(h), int(seq), int(batch))
        out: list[MalformedLine] = []
        sources: dict[int, str] = {}
        for i in ignored:
            event_id, data, h = rows[i][0], rows[i][3], rows[i][4]
            first = stored.get(event_id)
            if first is None or first[0] == h or self._same_as_stored(first[1], events[i]):
                continue
            seq, batch = first[1], first[2]
            if event_id in first_line:
                at = f"first at line {first_line[event_id]} of {source}"
            else:
                if batch not in sources:
                    found = db.execute("SELECT source FROM batches WHERE batch = ?",
                                       (batch,)).fetchone()
                    sources[batch] = str(found[0]) if found else "?"
                at = f"first stored at seq {seq}, batch {batch}, from {sources[batch]}"
            out.append(MalformedLine(
                where[i], f"event_id {_shown(event_id)} already stored with different "
                f"content ({at})", data))
        return out

    def _same_as_stored(self, seq: int, event: QueryEvent) -> bool:
        """Whether the event stored at ``seq`` has the same field values as ``event``
        (timestamps compared as instants): the same event, serialised otherwise."""
        row = self.db.execute("SELECT data FROM events WHERE seq = ?", (seq,)).fetchone()
        try:
            return row is not None and _event(row[0]) == event
        except (ValueError, RecursionError):  # unreadable: not the same
            return False

    # ------------------------------------------------------------------ reading
    def _readable(self, rows: Iterable[tuple[int, str]]) -> Iterator[QueryEvent]:
        """The events stored as ``(seq, data)`` rows; one that cannot be read back (see
        "Events an older version stored" in the module doc) is skipped with an
        :class:`UnreadableEventWarning` and noted in :attr:`skipped`."""
        for seq, data in rows:
            try:
                event = _event(data)
            except (ValueError, RecursionError) as exc:  # InputError is a ValueError
                event_id = _stored_id(data)
                reason = exc.detail if isinstance(exc, InputError) else str(exc)
                self.skipped.append((seq, event_id, reason))
                warnings.warn(
                    f"{self.path}: stored event {_shown(event_id)} (seq {seq}) skipped: "
                    f"{reason}; it was stored by a version that did not check this and "
                    "stays in the (append-only) store", UnreadableEventWarning, stacklevel=3)
                continue
            yield event

    def count(self) -> int:
        """Number of stored events."""
        return int(self.db.execute("SELECT count(*) FROM events").fetchone()[0])

    def events(self, *, chunk: int = 20000) -> Iterator[QueryEvent]:
        """Every event in time order (ties by arrival)."""
        last_ts, last_seq = float("-inf"), -1
        while True:
            rows = self.db.execute("SELECT ts, seq, data FROM events WHERE (ts, seq) > (?, ?) "
                                   "ORDER BY ts, seq LIMIT ?",
                                   (last_ts, last_seq, chunk)).fetchall()
            yield from self._readable((seq, data) for _, seq, data in rows)
            if len(rows) < chunk:
                return
            last_ts, last_seq = rows[-1][0], rows[-1][1]

    def event(self, event_id: str) -> QueryEvent | None:
        """One event by id.

        Raises
        ------
        InputError
            Naming the id, when the stored event cannot be read back (see "Events an
            older version stored" in the module doc).
        """
        row = self.db.execute("SELECT data FROM events WHERE event_id = ?",
                              (event_id,)).fetchone()
        if row is None:
            return None
        try:
            return _event(row[0])
        except InputError as exc:
            raise InputError(f"stored event {_shown(event_id)} cannot be read: {exc.detail}"
                             ) from None

    def events_by_id(self, event_ids: Iterable[str]) -> list[QueryEvent]:
        """The stored events among ``event_ids``, in time order (unknown ids skipped)."""
        ids = list(dict.fromkeys(event_ids))
        found: list[tuple[float, int, str]] = []
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            found += self.db.execute(
                f"SELECT ts, seq, data FROM events WHERE event_id IN "
                f"({','.join('?' * len(chunk))})", chunk).fetchall()
        return list(self._readable((seq, data) for _, seq, data in sorted(found)))

    def actor_events(self, actor: str, since: datetime, until: datetime, *,
                     limit: int | None = None) -> list[QueryEvent]:
        """Events of ``actor`` from ``since`` to ``until`` (inclusive), in time order; with
        ``limit``, the last ``limit`` of them."""
        sql = ("SELECT seq, data FROM events WHERE ts >= ? AND ts <= ? AND actor = ? "
               "ORDER BY ts DESC, seq DESC")
        args: list[Any] = [since.timestamp(), until.timestamp(), actor]
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        rows = self.db.execute(sql, args).fetchall()
        return list(self._readable(reversed(rows)))

    def actor_days(self, actor: str, since: datetime, until: datetime) -> list[dict[str, Any]]:
        """``actor``'s activity per day from ``since`` to ``until``: events, rows, failed or
        denied statements, distinct statements; days in ``until``'s UTC offset."""
        offset = until.utcoffset()
        off = offset.total_seconds() if offset is not None else 0.0
        rows = self.db.execute(
            "SELECT CAST((ts + ?) / 86400 AS INTEGER) AS day, count(*), "
            "sum(coalesce(json_extract(data, '$.rows'), 0)), "
            "sum(coalesce(json_extract(data, '$.status'), 'ok') != 'ok'), "
            "count(DISTINCT json_extract(data, '$.statement')) "
            "FROM events WHERE ts >= ? AND ts <= ? AND actor = ? GROUP BY day ORDER BY day",
            (off, since.timestamp(), until.timestamp(), actor)).fetchall()
        epoch = datetime(1970, 1, 1).date()
        return [{"day": (epoch + timedelta(days=int(d))).isoformat(), "events": int(n),
                 "rows": int(r or 0), "failed": int(f or 0), "statements": int(k)}
                for d, n, r, f, k in rows]

    def quarantine(self) -> list[dict[str, Any]]:
        """Quarantined lines (source, line, reason, raw)."""
        return [{"source": s, "line": ln, "reason": r, "raw": raw} for s, ln, r, raw in
                self.db.execute("SELECT source, line, reason, raw FROM quarantine ORDER BY id")]

    # ------------------------------------------------------------------ ledger
    def checkpoint(self, signing_key: Any, *, key_name: str | None = None) -> Checkpoint:
        """Sign the ledger's current head (see :meth:`privacy.ledger.Ledger.checkpoint`)."""
        return self.ledger.checkpoint(signing_key, key_name=key_name)

    def verify(self, checkpoint: Checkpoint | str | os.PathLike[str] | None = None, *,
               public_key: PublicKeySource | None = None) -> StoreVerifyReport:
        """Check the ledger, then every event, batch, quarantine row and triage action.

        Raises
        ------
        IntegrityError
            The ledger fails verification; an event's content does not match its batch's
            Merkle root; an event's stored ``event_id``, ``ts`` or ``actor`` differs from
            its content (the message names the event); rows were added, removed or moved;
            a batch has no ledger record; quarantine rows differ from their digest; a
            triage action or an alert's state disagrees with the ledger.
        """
        lrep = self.ledger.verify(checkpoint, public_key=public_key)
        ledger_batches: dict[int, dict[str, Any]] = {}
        triage: list[dict[str, Any]] = []
        for rec in self.ledger.records():
            if rec.kind == "audit.events":
                ledger_batches[int(rec.payload["batch"])] = dict(rec.payload)
            elif rec.kind == "audit.triage":
                triage.append(dict(rec.payload, _index=rec.index))
        try:
            return self._verify(lrep, ledger_batches, triage)
        except sqlite3.DatabaseError:
            raise IntegrityError("audit store verification failed: database unreadable"
                                 ) from None

    def _verify(self, lrep: Any, ledger_batches: dict[int, dict[str, Any]],
                triage: list[dict[str, Any]]) -> StoreVerifyReport:
        def fail(what: str) -> IntegrityError:
            return IntegrityError(f"audit store verification failed: {what}")

        db = self.db
        stored = {int(r[0]): _batch_payload(r) for r in db.execute(
            "SELECT batch, source, first_seq, last_seq, count, root, quarantined, qdigest "
            "FROM batches")}
        if set(stored) != set(ledger_batches):
            missing = sorted(set(stored) ^ set(ledger_batches))[:5]
            raise fail(f"batches and ledger records disagree (batches {missing}); if a "
                       "crash interrupted an ingest, run ingest again to reconcile")
        for b, payload in stored.items():
            if payload != ledger_batches[b]:
                raise fail(f"batch {b} does not match its ledger record")
        total = 0
        sums: dict[int, tuple[int, int, int, list[bytes]]] = {}
        for seq, batch, event_id, ts, actor, data, stored_hash in db.execute(
                "SELECT seq, batch, event_id, ts, actor, data, hash FROM events ORDER BY seq"):
            if not isinstance(data, str) or hashlib.sha256(
                    data.encode("utf-8", "surrogatepass")).digest() != stored_hash:
                raise fail(f"event seq {seq} ({_shown(event_id)}) does not match its hash")
            h = bytes(stored_hash)
            hashed_id = _check_columns(data, event_id, ts, actor)
            if hashed_id is not None:
                raise fail(f"event seq {seq} ({_shown(hashed_id)}): its stored event_id, ts "
                           "or actor differs from its hashed content (edited columns)")
            span = stored.get(batch)
            if span is not None and not (span["first_seq"] is not None
                                         and span["first_seq"] <= seq <= span["last_seq"]):
                raise fail(f"event seq {seq} ({_shown(event_id)}) lies outside the seq range "
                           f"ledgered for its batch {_shown(batch)} (moved or added rows)")
            first, last, n, hs = sums.get(batch, (seq, seq, 0, []))
            hs.append(merkle.leaf_hash(h))
            sums[batch] = (first, seq, n + 1, hs)
            total += 1
        for b, payload in stored.items():
            first, last, n, hs = sums.get(b, (None, None, 0, []))
            if (n != payload["count"] or first != payload["first_seq"]
                    or last != payload["last_seq"]
                    or merkle.root_of(hs).hex() != payload["root"]):
                raise fail(f"events of batch {b} do not match the ledger (edited, removed "
                           "or added rows)")
        if set(sums) - set(stored):
            raise fail("events belong to a batch that is not in the ledger")
        for b, payload in stored.items():
            q = db.execute("SELECT source, line, reason, raw FROM quarantine WHERE batch = ? "
                           "ORDER BY id", (b,)).fetchall()
            if (len(q) != payload["quarantined"]
                    or _quarantine_digest(q, payload["qdigest"]) != payload["qdigest"]):
                raise fail(f"quarantine rows of batch {b} do not match the ledger")
        if db.execute("SELECT count(*) FROM quarantine WHERE batch NOT IN "
                      "(SELECT batch FROM batches)").fetchone()[0]:
            raise fail("quarantine rows belong to a batch that is not in the ledger")
        actions = db.execute("SELECT alert_id, action, from_state, to_state, reason, comment, "
                             "analyst, ts, ledger_index FROM alert_actions ORDER BY id").fetchall()
        if len(actions) != len(triage):
            raise fail("triage actions and ledger records disagree in number")
        last_state: dict[str, str] = {}
        for row, rec in zip(actions, triage, strict=True):
            mine = dict(zip(("alert_id", "action", "from_state", "to_state", "reason", "comment",
                             "analyst", "ts"), row[:8], strict=True))
            theirs = {k: rec.get(k) for k in mine}
            if mine != theirs or row[8] != rec["_index"]:
                raise fail(f"triage action on {mine['alert_id']} does not match the ledger")
            if mine["to_state"]:
                last_state[str(mine["alert_id"])] = str(mine["to_state"])
        for alert_id, state in db.execute("SELECT alert_id, state FROM alerts"):
            if state != last_state.get(alert_id, "new"):
                raise fail(f"alert {alert_id} state {state!r} is not the ledgered one")
        nq = int(db.execute("SELECT count(*) FROM quarantine").fetchone()[0])
        return StoreVerifyReport(total, len(stored), nq, len(actions), lrep.size,
                                 lrep.root.hex(), lrep.checkpoint_size)


def _shown(value: object) -> str:
    """An event id for a message, cut short (a stored column may hold anything)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _stored_ts(event: QueryEvent, data: str) -> float:
    """The ``ts`` column of ``event``: its epoch time as read back from ``data``, which
    :meth:`AuditStore.verify` recomputes. That is ``event.ts`` except for an offset with
    fractions of a second, which :meth:`datetime.fromisoformat` may not read back."""
    offset = event.ts.utcoffset()
    if offset is None or not offset.microseconds:
        return event.ts.timestamp()
    return parse_timestamp(json_loads(data)["ts"], bounded=False).timestamp()


def _check_columns(data: str, event_id: object, ts: object, actor: object) -> str | None:
    """None when the stored ``event_id``, ``ts`` and ``actor`` columns are what ingest
    derived from the event's hashed JSON ``data``; otherwise the event id ``data`` holds
    (``"?"`` when it holds none)."""
    try:
        d = json_loads(data)
        if not isinstance(d, dict):
            return "?"
        # unbounded: an event an older version stored out of range is still intact
        expected_ts = parse_timestamp(d.get("ts"), bounded=False).timestamp()
    except (ValueError, RecursionError):  # JSON or timestamp (InputError is a ValueError)
        return "?"
    hashed_id = d.get("event_id")
    if (type(ts) is not float or ts != expected_ts or event_id != hashed_id
            or actor != d.get("actor")):
        return str(hashed_id) if hashed_id is not None else "?"
    return None


def _event(data: str) -> QueryEvent:
    """Rebuild a stored event (validated at ingest, and again here)."""
    return QueryEvent.from_dict(json_loads(data))


def _stored_id(data: str) -> str:
    """The event id a stored event's JSON holds, ``"?"`` when it holds none."""
    try:
        d = json_loads(data)
    except ValueError:
        return "?"
    return str(d.get("event_id", "?")) if isinstance(d, dict) else "?"


def _batch_payload(row: tuple[Any, ...]) -> dict[str, Any]:
    batch, source, first, last, count, root, nq, qd = row
    return {"batch": int(batch), "source": str(source), "first_seq": first, "last_seq": last,
            "count": int(count), "root": bytes(root).hex(), "quarantined": int(nq),
            "qdigest": str(qd)}
