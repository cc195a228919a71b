"""Adapters from native audit logs to :class:`~privacy.audit.events.QueryEvent`.

Every adapter is an iterator of ``(line_no, QueryEvent | MalformedLine)``. A record that
cannot be parsed is yielded as a :class:`~privacy.audit.events.MalformedLine` with its
1-based starting line number and the reason, so it can be quarantined; nothing is
dropped silently. Log lines that are not query records (server start-up messages,
``DETAIL``/``HINT`` lines) are not events and are skipped.

Event ids
---------
Sources without ids get a **content-addressed** id, so ingesting the same file twice (or
a copy of it under another name) yields the same ids and adds nothing:

* JSON Lines / CSV: ``rec:`` + the first 32 hex digits of SHA-256 over the canonical
  JSON of the event (sorted keys, event_id left out) and the record's occurrence number
  among identical records in the same file (so two genuinely identical events stay two).
* pgAudit: ``pg:`` + a hash of fields both PostgreSQL logs carry, so the csvlog and
  the stderr log of one server give the same ids (see :mod:`privacy.audit.pgaudit`).

The pgAudit readers live in :mod:`privacy.audit.pgaudit` and are re-exported here with
:data:`DEFAULT_LOG_LINE_PREFIX` and :func:`compile_prefix`; the line reader and id
maker shared by all adapters are in :mod:`privacy.audit._logio`.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any

from privacy.audit._logio import EventIds as _Ids
from privacy.audit._logio import LineTape as _LineTape
from privacy.audit._logio import Record, Source
from privacy.audit._logio import lines as _lines
from privacy.audit._logio import undecodable as _undecodable
from privacy.audit._logio import utf8_error as _utf8_error
from privacy.audit.events import MalformedLine, QueryEvent, json_loads
from privacy.audit.pgaudit import DEFAULT_LOG_LINE_PREFIX, read_pgaudit_csvlog, read_pgaudit_stderr
from privacy.audit.pgaudit import compile_prefix as compile_prefix
from privacy.errors import InputError

__all__ = [
    "Record",
    "Source",
    "read_jsonl",
    "read_csv",
    "read_pgaudit_stderr",
    "read_pgaudit_csvlog",
    "read_events",
    "collect",
    "DEFAULT_LOG_LINE_PREFIX",
    "FORMATS",
]

FORMATS = ("jsonl", "csv", "pgaudit-stderr", "pgaudit-csvlog")
_PLACEHOLDER_ID = "pending"


# --------------------------------------------------------------------------- helpers
def _canonical(event: QueryEvent) -> str:
    data = event.to_dict()
    del data["event_id"]
    data["ts"] = event.ts_utc.isoformat()
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _finish(event: QueryEvent, had_id: bool, ids: _Ids) -> QueryEvent:
    return event if had_id else replace(event, event_id=ids.make(_canonical(event)))


# --------------------------------------------------------------------------- JSONL / CSV
def read_jsonl(source: Source) -> Iterator[Record]:
    """Read one JSON object per line (see :meth:`QueryEvent.from_dict`); blank lines skip."""
    ids = _Ids("rec")
    for line_no, line in enumerate(_lines(source), start=1):
        if not line.strip():
            continue
        bad = _undecodable(line_no, (line,))
        if bad is not None:
            yield line_no, bad
            continue
        try:
            data = json_loads(line)
            if not isinstance(data, dict):
                raise InputError(f"expected a JSON object, got {type(data).__name__}")
            had_id = data.get("event_id") is not None
            if not had_id:
                data = {**data, "event_id": _PLACEHOLDER_ID}
            event = QueryEvent.from_dict(data)
        except json.JSONDecodeError as exc:
            yield line_no, MalformedLine(line_no, f"not valid JSON: {exc.msg}", line)
            continue
        except InputError as exc:
            yield line_no, MalformedLine(line_no, exc.detail, line)
            continue
        yield line_no, _finish(event, had_id, ids)


_NUMERIC_FIELDS = {"rows": int, "duration_ms": float}


def read_csv(source: Source) -> Iterator[Record]:
    """Read a CSV file whose header row names :class:`QueryEvent` fields.

    ``ts``, ``actor`` and ``statement`` columns are required; ``event_id`` is optional.
    Empty cells mean "unknown". Quoted cells may span lines.

    Raises
    ------
    InputError
        At line 1 if the header names an unknown field, lacks a required one or is not
        UTF-8.
    """
    ids = _Ids("rec")
    tape = _LineTape(_lines(source))
    reader = csv.reader(tape, strict=False)
    known = set(QueryEvent.__dataclass_fields__)
    try:
        header = next(reader)
    except StopIteration:
        return
    for i, line in enumerate(tape.take()):
        k = _utf8_error(line)
        if k is not None:
            raise InputError(f"header is not UTF-8 at byte {k}", line=1 + i)
    header = [h.strip() for h in header]
    for h in header:
        if h not in known:
            raise InputError(f"unknown column {h!r} in header", line=1)
    for req in ("ts", "actor", "statement"):
        if req not in header:
            raise InputError(f"header lacks required column {req!r}", line=1)
    end = reader.line_num
    for row in reader:
        start, end = end + 1, reader.line_num
        physical = tape.take()
        raw = ",".join(row)
        if not any(cell.strip() for cell in row):
            continue
        bad = _undecodable(start, physical)
        if bad is not None:
            yield start, bad
            continue
        if len(row) != len(header):
            reason = f"expected {len(header)} fields, got {len(row)}"
            yield start, MalformedLine(start, reason, raw)
            continue
        try:
            data: dict[str, Any] = {}
            for name, cell in zip(header, row, strict=True):
                if cell == "":
                    data[name] = None
                elif name in _NUMERIC_FIELDS:
                    try:
                        data[name] = _NUMERIC_FIELDS[name](cell)
                    except ValueError:
                        kind = "an integer" if name == "rows" else "a number"
                        raise InputError(f"field {name!r}: expected {kind}, got {cell!r}") from None
                else:
                    data[name] = cell
            had_id = data.get("event_id") is not None
            if not had_id:
                data["event_id"] = _PLACEHOLDER_ID
            event = QueryEvent.from_dict(data)
        except InputError as exc:
            yield start, MalformedLine(start, exc.detail, raw)
            continue
        yield start, _finish(event, had_id, ids)


# --------------------------------------------------------------------------- dispatch
def read_events(source: Source, fmt: str, **options: Any) -> Iterator[Record]:
    """Dispatch on ``fmt`` (one of :data:`FORMATS`); options go to the reader."""
    readers = {"jsonl": read_jsonl, "csv": read_csv, "pgaudit-stderr": read_pgaudit_stderr,
               "pgaudit-csvlog": read_pgaudit_csvlog}
    if fmt not in readers:
        raise InputError(f"unknown audit log format {fmt!r} (expected one of {', '.join(FORMATS)})")
    reader: Any = readers[fmt]
    return reader(source, **options)  # type: ignore[no-any-return]


def collect(records: Iterable[Record]) -> tuple[list[QueryEvent], list[MalformedLine]]:
    """Split adapter output into events and malformed lines."""
    events: list[QueryEvent] = []
    bad: list[MalformedLine] = []
    for _, item in records:
        (events if isinstance(item, QueryEvent) else bad).append(item)  # type: ignore[arg-type]
    return events, bad
