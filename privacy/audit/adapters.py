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
* pgAudit: ``pg:`` + SHA-256 over (kind, UTC timestamp, backend pid, pgAudit statement
  id, sub-statement id, object name, user, database) and the occurrence number. These are
  fields both the csvlog and the stderr log carry, so the two logs of one server give
  **the same ids** for the same statement. Failed statements (``ERROR`` + statement) hash
  (``error``, timestamp, pid, statement).

pgAudit formats (PostgreSQL 15, pgAudit 1.7)
--------------------------------------------
A session audit message is ``AUDIT: SESSION,<statement id>,<substatement id>,<class>,
<command>,<object type>,<object name>,<statement>,<parameter>[,<rows>]`` in CSV quoting;
the trailing ``rows`` field is present when ``pgaudit.log_rows = on``.

* csvlog: PostgreSQL's CSV log (26 columns on PG 14+, 24 on PG 13, 23 before); the
  audit message is the ``message`` column; user, database, pid, connection and
  application name come from their columns.
* stderr: lines start with ``log_line_prefix``; give the same prefix to the adapter.
  Supported escapes: ``%m %t %n`` (timestamp; one of them is required), ``%p`` (pid,
  required), ``%u`` (actor), ``%d`` (database), ``%r``/``%h`` (source_ip), ``%a``
  (client), ``%e`` (SQLSTATE), ``%q``, ``%%``, and ``%c %l %x %v %i %b %s %Q %P %k``
  (matched and ignored). Recommended: ``'%m [%p] %q%u@%d %r %a '``. Continuation lines
  of multi-line messages start with a tab.

Timestamps carry the zone *abbreviation* of ``log_timezone``. ``UTC``/``GMT`` and
numeric forms (``+08``, set ``log_timezone = 'Etc/GMT-8'``) are understood; others such
as ``CST`` are ambiguous and must be mapped with ``timezones={"CST": "+08:00"}`` (or an
IANA name such as ``"Asia/Shanghai"``); unmapped ones make the record malformed.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any

from privacy.audit.events import MalformedLine, QueryEvent
from privacy.errors import ConfigError, InputError

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

Record = tuple[int, QueryEvent | MalformedLine]
Source = str | os.PathLike[str] | Iterable[str]

DEFAULT_LOG_LINE_PREFIX = "%m [%p] %q%u@%d %r %a "
FORMATS = ("jsonl", "csv", "pgaudit-stderr", "pgaudit-csvlog")
_PLACEHOLDER_ID = "pending"


# --------------------------------------------------------------------------- helpers
def _lines(source: Source) -> Iterator[str]:
    """Yield physical lines without their line terminator."""
    if isinstance(source, (str, os.PathLike)):
        with open(source, encoding="utf-8", errors="surrogateescape", newline="") as fh:
            for line in fh:
                yield line.rstrip("\r\n")
    else:
        for line in source:
            yield line.rstrip("\r\n")


def _bad_utf8(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)


class _Ids:
    """Content-addressed event ids with an occurrence counter per identical content."""

    def __init__(self, namespace: str) -> None:
        self._ns = namespace
        self._seen: dict[bytes, int] = {}

    def make(self, canonical: str) -> str:
        base = hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).digest()
        n = self._seen.get(base, 0)
        self._seen[base] = n + 1
        digest = hashlib.sha256(base + b"\0" + str(n).encode()).hexdigest()
        return f"{self._ns}:{digest[:32]}"


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
        if _bad_utf8(line):
            yield line_no, MalformedLine(line_no, "not valid UTF-8", line)
            continue
        try:
            data = json.loads(line)
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
        At line 1 if the header names an unknown field or lacks a required one.
    """
    ids = _Ids("rec")
    reader = csv.reader(_with_newlines(_lines(source)), strict=False)
    known = set(QueryEvent.__dataclass_fields__)
    try:
        header = next(reader)
    except StopIteration:
        return
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
        raw = ",".join(row)
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            reason = f"expected {len(header)} fields, got {len(row)}"
            yield start, MalformedLine(start, reason, raw)
            continue
        try:
            data: dict[str, Any] = {}
            for name, cell in zip(header, row, strict=True):
                if _bad_utf8(cell):
                    raise InputError(f"field {name!r}: not valid UTF-8")
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


def _with_newlines(lines: Iterable[str]) -> Iterator[str]:
    for line in lines:
        yield line + "\n"


# --------------------------------------------------------------------------- time zones
_NUMERIC_TZ = re.compile(r"^([+-])(\d{1,2})(?::?(\d{2}))?$")
_DEFAULT_TZ: dict[str, tzinfo] = {"UTC": timezone.utc, "GMT": timezone.utc, "UCT": timezone.utc}


def _tz_table(timezones: Mapping[str, str | tzinfo] | None) -> dict[str, tzinfo]:
    table = dict(_DEFAULT_TZ)
    for abbrev, value in (timezones or {}).items():
        if isinstance(value, tzinfo):
            table[abbrev] = value
            continue
        numeric = _numeric_tz(value)
        if numeric is not None:
            table[abbrev] = numeric
            continue
        try:
            from zoneinfo import ZoneInfo

            table[abbrev] = ZoneInfo(value)
        except (KeyError, ValueError, OSError):
            raise ConfigError(
                f"timezones[{abbrev!r}]: expected an offset like '+08:00' or an IANA zone "
                f"name, got {value!r}"
            ) from None
    return table


def _numeric_tz(text: str) -> tzinfo | None:
    m = _NUMERIC_TZ.match(text)
    if not m:
        return None
    minutes = int(m.group(2)) * 60 + int(m.group(3) or 0)
    return timezone(timedelta(minutes=-minutes if m.group(1) == "-" else minutes))


def _pg_time(text: str, tzs: dict[str, tzinfo]) -> datetime:
    stamp, _, abbrev = text.rpartition(" ")
    tz = tzs.get(abbrev) or _numeric_tz(abbrev)
    if tz is None:
        raise InputError(
            f"time zone abbreviation {abbrev!r} is ambiguous or unknown; map it with "
            f"timezones={{{abbrev!r}: '+08:00'}} or set log_timezone to UTC"
        )
    try:
        return datetime.fromisoformat(stamp).replace(tzinfo=tz)
    except ValueError:
        raise InputError(f"bad log timestamp {text!r}") from None


# --------------------------------------------------------------------------- pgAudit core
class _PgState:
    """Per-file state shared by both pgAudit formats."""

    def __init__(self, timezones: Mapping[str, str | tzinfo] | None) -> None:
        self.tzs = _tz_table(timezones)
        self.ids = _Ids("pg")
        self.last_key: dict[str, tuple[str, str]] = {}
        self.last_stmt: dict[str, tuple[str, str]] = {}

    def audit_event(
        self, msg: str, *, ts_text: str, pid: str, user: str, db: str | None,
        host: str | None, app: str | None,
    ) -> QueryEvent | None:
        """Event for one ``AUDIT:`` message, or None for a repeat of the same statement."""
        try:
            fields = next(csv.reader(io.StringIO(msg[len("AUDIT: "):])))
        except (csv.Error, StopIteration):
            raise InputError("pgAudit message is not valid CSV") from None
        if len(fields) not in (9, 10):
            raise InputError(f"pgAudit message has {len(fields)} fields, expected 9 or 10")
        kind, stmt_id, sub_id, _cls, _cmd, _otype, oname, statement = fields[:8]
        if kind not in ("SESSION", "OBJECT") or not (stmt_id.isdigit() and sub_id.isdigit()):
            raise InputError("not a pgAudit SESSION/OBJECT record")
        rows: int | None = None
        if len(fields) == 10:
            if not fields[9].isdigit():
                raise InputError(f"pgAudit rows field is not a count: {fields[9]!r}")
            rows = int(fields[9])
        key = (stmt_id, sub_id)
        if self.last_key.get(pid) == key:
            return None  # same statement logged again for another relation / audit type
        self.last_key[pid] = key
        if statement == "<previously logged>":
            prev = self.last_stmt.get(pid)
            if prev is not None and prev[0] == stmt_id:
                statement = prev[1]
        else:
            self.last_stmt[pid] = (stmt_id, statement)
        if not user:
            raise InputError("no user name on the audit record (check log_line_prefix %u)")
        ts = _pg_time(ts_text, self.tzs)
        canon = "\x1f".join(["audit", ts.astimezone(timezone.utc).isoformat(), pid,
                             stmt_id, sub_id, oname, user, db or ""])
        return QueryEvent(event_id=self.ids.make(canon), ts=ts, actor=user, database=db or None,
                          source_ip=host or None, client=app or None, statement=statement,
                          rows=rows, status="ok")

    def error_event(
        self, statement: str, message: str, sqlstate: str | None, *, ts_text: str, pid: str,
        user: str, db: str | None, host: str | None, app: str | None,
    ) -> QueryEvent:
        ts = _pg_time(ts_text, self.tzs)
        denied = sqlstate == "42501" or message.startswith("permission denied")
        canon = "\x1f".join(["error", ts.astimezone(timezone.utc).isoformat(), pid, statement])
        return QueryEvent(event_id=self.ids.make(canon), ts=ts, actor=user or "[unknown]",
                          database=db or None, source_ip=host or None, client=app or None,
                          statement=statement, status="denied" if denied else "error")


_REMOTE_PORT = re.compile(r"^(.*)\((\d+)\)$")


def _host(remote: str | None) -> str | None:
    if not remote:
        return None
    m = _REMOTE_PORT.match(remote)
    return m.group(1) if m else remote


# --------------------------------------------------------------------------- csvlog
_CSVLOG_WIDTHS = (23, 24, 26)


def read_pgaudit_csvlog(
    source: Source, *, timezones: Mapping[str, str | tzinfo] | None = None,
    include_errors: bool = True,
) -> Iterator[Record]:
    """Read a PostgreSQL csvlog (``log_destination = 'csvlog'``) with pgAudit records.

    Parameters
    ----------
    source:
        Path or iterable of lines.
    timezones:
        Zone abbreviation → offset (``"+08:00"``), IANA name or tzinfo.
    include_errors:
        Also emit ``ERROR`` records that carry a statement, with status ``"error"`` (or
        ``"denied"`` for SQLSTATE 42501): failed statements are evidence of probing.
    """
    state = _PgState(timezones)
    reader = csv.reader(_with_newlines(_lines(source)), strict=False)
    end = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            line = end + 1
            yield line, MalformedLine(line, f"unreadable CSV, rest of file skipped: {exc}", "")
            return
        start, end = end + 1, reader.line_num
        raw = ",".join(row)
        if len(row) not in _CSVLOG_WIDTHS:
            yield start, MalformedLine(
                start, f"expected 23, 24 or 26 csvlog columns, got {len(row)}", raw)
            continue
        sev, message, query = row[11], row[13], row[19]
        is_audit = sev == "LOG" and message.startswith("AUDIT: ")
        is_error = include_errors and sev == "ERROR" and bool(query)
        if not (is_audit or is_error):
            continue
        conn = row[4]
        host = conn.rsplit(":", 1)[0] if ":" in conn and conn.rsplit(":", 1)[1].isdigit() else conn
        ctx: dict[str, Any] = {"ts_text": row[0], "pid": row[3], "user": row[1],
                               "db": row[2], "host": host, "app": row[22]}
        try:
            if _bad_utf8(raw):
                raise InputError("not valid UTF-8")
            event = (state.audit_event(message, **ctx) if is_audit
                     else state.error_event(query, message, row[12], **ctx))
        except InputError as exc:
            yield start, MalformedLine(start, exc.detail, raw)
            continue
        if event is not None:
            yield start, event


# --------------------------------------------------------------------------- stderr
_ESCAPES: dict[str, str] = {
    "m": r"(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? \S+)",
    "t": r"(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+)",
    "n": r"(?P<epoch>\d+(?:\.\d+)?)",
    "p": r"(?P<pid>\d+)",
    "u": r"(?P<user>.*?)",
    "d": r"(?P<db>.*?)",
    "r": r"(?P<remote>.*?)",
    "h": r"(?P<remote>.*?)",
    "a": r"(?P<app>.*?)",
    "e": r"(?P<sqlstate>[0-9A-Z]{5})",
}
_IGNORED_ESCAPES = set("clxvibsQPk")
_SEVERITIES = ("DEBUG[1-5]|INFO|NOTICE|WARNING|ERROR|LOG|FATAL|PANIC|"
               "STATEMENT|DETAIL|HINT|CONTEXT|QUERY|LOCATION")


def compile_prefix(prefix: str) -> re.Pattern[str]:
    """Compile a ``log_line_prefix`` into a regex matching a whole log line head.

    Raises
    ------
    ConfigError
        For an unsupported escape, a repeated field, or no timestamp / pid escape.
    """
    parts: list[str] = []
    seen: set[str] = set()
    optional_from: int | None = None
    i = 0
    while i < len(prefix):
        ch = prefix[i]
        if ch != "%":
            parts.append(re.escape(ch))
            i += 1
            continue
        if i + 1 >= len(prefix):
            raise ConfigError(f"log_line_prefix {prefix!r}: dangling '%'")
        esc = prefix[i + 1]
        i += 2
        if esc == "%":
            parts.append("%")
        elif esc == "q":
            optional_from = len(parts)
        elif esc in _ESCAPES:
            group = re.search(r"\?P<(\w+)>", _ESCAPES[esc])
            name = group.group(1) if group else esc
            if name in seen or (name == "ts" and "epoch" in seen) or (
                    name == "epoch" and "ts" in seen):
                raise ConfigError(f"log_line_prefix {prefix!r}: %{esc} repeats a field")
            seen.add(name)
            parts.append(_ESCAPES[esc])
        elif esc in _IGNORED_ESCAPES:
            parts.append(r".*?")
        else:
            raise ConfigError(f"log_line_prefix {prefix!r}: unsupported escape %{esc}")
    if not ({"ts", "epoch"} & seen) or "pid" not in seen:
        raise ConfigError(
            f"log_line_prefix {prefix!r}: needs a timestamp (%m, %t or %n) and the pid (%p)")
    if optional_from is not None:
        parts[optional_from:] = ["(?:" + "".join(parts[optional_from:]) + ")?"]
    return re.compile("^" + "".join(parts) + rf"(?P<sev>{_SEVERITIES}):  (?P<msg>.*)$", re.S)


def _group(m: re.Match[str], name: str) -> str | None:
    return m.groupdict().get(name)


def read_pgaudit_stderr(
    source: Source, *, prefix: str = DEFAULT_LOG_LINE_PREFIX,
    timezones: Mapping[str, str | tzinfo] | None = None, include_errors: bool = True,
) -> Iterator[Record]:
    """Read a PostgreSQL stderr log (``log_destination = 'stderr'``) with pgAudit records.

    Parameters
    ----------
    source:
        Path or iterable of lines.
    prefix:
        The server's ``log_line_prefix`` (see the module docstring for the escapes).
    timezones, include_errors:
        As for :func:`read_pgaudit_csvlog`; an error's statement is the ``STATEMENT:``
        line that follows the ``ERROR:`` line of the same backend.

    Warnings
    --------
    Without ``%u`` in the prefix, audit records have no actor and are reported as
    malformed; without ``%d``/``%r``/``%a`` those event fields stay empty.
    """
    pattern = compile_prefix(prefix)
    state = _PgState(timezones)
    pending: dict[str, tuple[int, str, str | None]] = {}

    def handle(line_no: int, text: str) -> Iterator[Record]:
        m = pattern.match(text)
        if m is None:
            yield line_no, MalformedLine(line_no, "line does not match log_line_prefix", text)
            return
        pid, sev, msg = m.group("pid"), m.group("sev"), m.group("msg")
        epoch = _group(m, "epoch")
        ts_text = (_group(m, "ts") or "") if epoch is None else datetime.fromtimestamp(
            float(epoch), tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f UTC")
        ctx: dict[str, Any] = {"ts_text": ts_text, "pid": pid, "user": _group(m, "user") or "",
               "db": _group(m, "db"), "host": _host(_group(m, "remote")),
               "app": _group(m, "app")}
        try:
            if _bad_utf8(text):
                raise InputError("not valid UTF-8")
            if sev == "LOG" and msg.startswith("AUDIT: "):
                pending.pop(pid, None)
                event = state.audit_event(msg, **ctx)
                if event is not None:
                    yield line_no, event
            elif sev == "ERROR" and include_errors:
                pending[pid] = (line_no, msg, _group(m, "sqlstate"))
            elif sev == "STATEMENT" and pid in pending:
                err_line, err_msg, sqlstate = pending.pop(pid)
                yield err_line, state.error_event(msg, err_msg, sqlstate, **ctx)
        except InputError as exc:
            yield line_no, MalformedLine(line_no, exc.detail, text)

    current: tuple[int, list[str]] | None = None
    for line_no, line in enumerate(_lines(source), start=1):
        if line.startswith("\t"):
            if current is None:
                yield line_no, MalformedLine(line_no, "continuation line without a record", line)
            else:
                current[1].append(line[1:])
            continue
        if current is not None:
            yield from handle(current[0], "\n".join(current[1]))
            current = None
        if line.strip():
            current = (line_no, [line])
    if current is not None:
        yield from handle(current[0], "\n".join(current[1]))


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
