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

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from datetime import tzinfo
from typing import Any

from privacy.audit._logio import EventIds as _Ids
from privacy.audit._logio import Record, Source
from privacy.audit._logio import csv_records as _csv_records
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
    "parse_field_map",
    "check_field_map",
    "DEFAULT_LOG_LINE_PREFIX",
    "FORMATS",
]

FORMATS = ("jsonl", "csv", "pgaudit-stderr", "pgaudit-csvlog", "pgaudit")
_PLACEHOLDER_ID = "pending"


# --------------------------------------------------------------------------- helpers
def _canonical(event: QueryEvent) -> str:
    data = event.to_dict()
    del data["event_id"]
    if data["parameters"] is None:  # ids of events without parameters stay as they were
        del data["parameters"]
    data["ts"] = event.ts_utc.isoformat()
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _finish(event: QueryEvent, had_id: bool, ids: _Ids) -> QueryEvent:
    return event if had_id else replace(event, event_id=ids.make(_canonical(event)))


# --------------------------------------------------------------------------- field maps
_EVENT_FIELDS = frozenset(QueryEvent.__dataclass_fields__)
FieldMap = Mapping[str, str | None]


def parse_field_map(items: Iterable[str]) -> dict[str, str | None]:
    """``SRC=DST`` strings (the ``--map`` option) as a field map: the source field
    ``SRC`` is read as the event field ``DST``; ``SRC=`` (empty DST) ignores ``SRC``.

    Raises
    ------
    InputError
        For an item without ``=``, an unknown event field, or a source or destination
        given twice.
    """
    out: dict[str, str | None] = {}
    for item in items:
        src, eq, dst = item.partition("=")
        src, dst = src.strip(), dst.strip()
        if not eq or not src:
            raise InputError(f"--map {item!r}: expected SRC=DST (e.g. client_ip=source_ip) "
                             "or SRC= to ignore a field")
        out[src] = dst or None
    return check_field_map(out)


def check_field_map(field_map: FieldMap) -> dict[str, str | None]:
    """Validate a field map (see :func:`parse_field_map`)."""
    seen: dict[str, str] = {}
    for src, dst in field_map.items():
        if dst is None:
            continue
        if dst not in _EVENT_FIELDS:
            raise InputError(f"--map {src}={dst}: {dst!r} is not an event field (expected "
                             f"one of {', '.join(sorted(_EVENT_FIELDS))})")
        if dst in seen:
            raise InputError(f"--map: {seen[dst]!r} and {src!r} both map to {dst!r}")
        seen[dst] = src
    return dict(field_map)


def _remap(data: dict[str, Any], field_map: FieldMap) -> dict[str, Any]:
    """``data`` with its keys renamed by ``field_map`` (ignored ones dropped)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in field_map:
            dst = field_map[key]
            if dst is None:
                continue
        else:
            dst = key
        if dst in out:
            raise InputError(f"field {dst!r} given twice (as {key!r} through --map and as "
                             "itself)")
        out[dst] = value
    return out


def _hint(detail: str) -> str:
    """An unknown-field error with the way out."""
    if detail.startswith("unknown field "):
        name = detail.split("'", 2)[1] if "'" in detail else "SRC"
        return (f"{detail}; map it to an event field with --map {name}=FIELD or ignore it "
                f"with --map {name}=")
    return detail


# --------------------------------------------------------------------------- JSONL / CSV
def read_jsonl(source: Source, *, field_map: FieldMap | None = None,
               default_tz: tzinfo | None = None) -> Iterator[Record]:
    """Read one JSON object per line (see :meth:`QueryEvent.from_dict`); blank lines skip.

    Parameters
    ----------
    source:
        Path or iterable of lines.
    field_map:
        Source field name -> event field name (``None``: ignore the field), for logs
        whose names differ (``{"client_ip": "source_ip"}``); see :func:`parse_field_map`.
    default_tz:
        Zone of timestamps written without an offset (otherwise they are malformed).
    """
    ids = _Ids("rec")
    fmap = check_field_map(field_map) if field_map else None
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
            if fmap:
                data = _remap(data, fmap)
            had_id = data.get("event_id") is not None
            if not had_id:
                data = {**data, "event_id": _PLACEHOLDER_ID}
            event = QueryEvent.from_dict(data, default_tz=default_tz)
        except json.JSONDecodeError as exc:
            yield line_no, MalformedLine(line_no, f"not valid JSON: {exc.msg}", line)
            continue
        except InputError as exc:
            yield line_no, MalformedLine(line_no, _hint(exc.detail), line)
            continue
        yield line_no, _finish(event, had_id, ids)


_NUMERIC_FIELDS = {"rows": int, "duration_ms": float}


def read_csv(source: Source, *, field_map: FieldMap | None = None,
             default_tz: tzinfo | None = None) -> Iterator[Record]:
    """Read a CSV file whose header row names :class:`QueryEvent` fields.

    ``ts``, ``actor`` and ``statement`` columns are required; ``event_id`` is optional.
    Empty cells mean "unknown". Quoted cells may span lines. A ``parameters`` cell is a
    JSON list. CSV is read strictly: a quoted cell never closed (or followed by more
    than a comma) is malformed at the line where it opened, and the lines after that
    are read as records again (see :func:`privacy.audit._logio.csv_records`).
    ``field_map`` and ``default_tz`` are as for :func:`read_jsonl` (the map renames
    header columns).

    Raises
    ------
    InputError
        At line 1 if the header names an unknown field, lacks a required one, is not
        valid CSV or is not UTF-8.
    """
    ids = _Ids("rec")
    records = _csv_records(_lines(source))
    known = set(QueryEvent.__dataclass_fields__)
    first = next(records, None)
    if first is None:
        return
    _, header_row, header_lines = first
    for i, line in enumerate(header_lines):
        k = _utf8_error(line)
        if k is not None:
            raise InputError(f"header is not UTF-8 at byte {k}", line=1 + i)
    if isinstance(header_row, str):
        raise InputError(f"header: {header_row}", line=1)
    header = [h.strip() for h in header_row]
    fmap = check_field_map(field_map) if field_map else {}
    skip = {i for i, h in enumerate(header) if h in fmap and fmap[h] is None}
    header = [fmap.get(h) or h for h in header]
    for i, h in enumerate(header):
        if i not in skip and h not in known:
            raise InputError(f"unknown column {h!r} in header; map it to an event field with "
                             f"--map {h}=FIELD or ignore it with --map {h}=", line=1)
        if i not in skip and header.index(h) != i:
            raise InputError(f"column {h!r} appears twice in the header (after --map)", line=1)
    for req in ("ts", "actor", "statement"):
        if req not in header:
            raise InputError(f"header lacks required column {req!r} (map the column that "
                             f"holds it with --map NAME={req})", line=1)
    for start, row, physical in records:
        if isinstance(row, str):  # not valid CSV (e.g. a quote never closed)
            yield start, _undecodable(start, physical) or MalformedLine(
                start, row, "\n".join(physical))
            continue
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
            for i, (name, cell) in enumerate(zip(header, row, strict=True)):
                if i in skip:
                    continue
                if cell == "":
                    data[name] = None
                elif name == "parameters":
                    try:
                        data[name] = json_loads(cell)
                    except ValueError:
                        raise InputError("field 'parameters': expected a JSON list, got "
                                         f"{cell[:80]!r}") from None
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
            event = QueryEvent.from_dict(data, default_tz=default_tz)
        except InputError as exc:
            yield start, MalformedLine(start, exc.detail, raw)
            continue
        yield start, _finish(event, had_id, ids)


# --------------------------------------------------------------------------- dispatch
def read_events(source: Source, fmt: str, **options: Any) -> Iterator[Record]:
    """Dispatch on ``fmt`` (one of :data:`FORMATS`, or ``"pgaudit"``: the csvlog reader
    for a path ending in ``.csv``, else the stderr one); options go to the reader."""
    readers = {"jsonl": read_jsonl, "csv": read_csv, "pgaudit-stderr": read_pgaudit_stderr,
               "pgaudit-csvlog": read_pgaudit_csvlog}
    if fmt == "pgaudit":
        path = os.fspath(source) if isinstance(source, (str, os.PathLike)) else ""
        fmt = "pgaudit-csvlog" if str(path).lower().endswith(".csv") else "pgaudit-stderr"
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
