"""pgAudit adapters: PostgreSQL stderr logs and csvlogs to :class:`QueryEvent`.

Like every adapter (see :mod:`privacy.audit.adapters`), each reader is an iterator of
``(line_no, QueryEvent | MalformedLine)``; log lines that are not query records (server
start-up messages, ``DETAIL``/``HINT`` lines) are skipped.

Event ids
---------
``pg:`` + SHA-256 over (kind, UTC timestamp, backend pid, pgAudit statement id,
sub-statement id, object name, user, database) and the occurrence number. These are
fields both the csvlog and the stderr log carry, so the two logs of one server give
**the same ids** for the same statement. Failed statements (``ERROR`` + statement) hash
(``error``, timestamp, pid, statement).

pgAudit formats (PostgreSQL 15, pgAudit 1.7)
--------------------------------------------
A session audit message is ``AUDIT: SESSION,<statement id>,<substatement id>,<class>,
<command>,<object type>,<object name>,<statement>,<parameter>[,<rows>]`` in CSV quoting;
the trailing ``rows`` field is present when ``pgaudit.log_rows = on``. With
``pgaudit.log_parameter = on`` the ``parameter`` field holds the bind values of a
statement sent with placeholders (JDBC, psycopg: ``WHERE cust_id = $1``) as a CSV
record of its own (``<none>`` when there are none, ``<not logged>`` when the option is
off); they become the event's ``parameters``, which detection puts back into the
placeholders (:attr:`QueryEvent.bound_statement`).

* csvlog: PostgreSQL's CSV log (26 columns on PG 14+, 24 on PG 13, 23 before); the
  audit message is the ``message`` column; user, database, pid, connection and
  application name come from their columns.
* stderr: lines start with ``log_line_prefix``; give the same prefix to the adapter.
  Supported escapes: ``%m %t %n`` (timestamp; one of them is required), ``%p`` (pid,
  required), ``%u`` (actor), ``%d`` (database), ``%r``/``%h`` (source_ip), ``%a``
  (client), ``%e`` (SQLSTATE), ``%q``, ``%%``, and ``%c %l %x %v %i %b %s %Q %P %k``
  (matched and ignored). Recommended: ``'%m [%p] %q%u@%d %r %a '``. Continuation lines
  of multi-line messages start with a tab. A line the prefix does not match is
  malformed, its reason naming the prefix expected; :func:`guess_prefix` finds which of
  :data:`COMMON_PREFIXES` a log was written with.

Timestamps carry the zone *abbreviation* of ``log_timezone``. ``UTC``/``GMT`` and
numeric forms (``+08``, set ``log_timezone = 'Etc/GMT-8'``) are understood; others such
as ``CST`` are ambiguous and must be mapped with ``timezones={"CST": "+08:00"}`` (or an
IANA name such as ``"Asia/Shanghai"``; the key ``"*"`` maps every abbreviation not
mapped otherwise); unmapped ones make the record malformed, and so do a numeric zone
of a day or more (``+99``) and a timestamp outside the range every event keeps (its
UTC time in years 0002 to 9998, see :func:`~privacy.audit.events.check_timestamp`).

Both readers take CSV strictly (a quoted field must be closed, and followed by a comma
or the end of the line): a record that breaks it is malformed at the line where its
last quoted field opened, and the lines after that are read again as records, so one
stray quote does not swallow the records that follow it (see
:func:`privacy.audit._logio.csv_records`).
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any

from privacy.audit._logio import EventIds, Record, Source, csv_records, lines, undecodable
from privacy.audit.events import MalformedLine, QueryEvent, check_timestamp
from privacy.errors import ConfigError, InputError

__all__ = [
    "COMMON_PREFIXES",
    "DEFAULT_LOG_LINE_PREFIX",
    "compile_prefix",
    "guess_prefix",
    "read_pgaudit_csvlog",
    "read_pgaudit_stderr",
]

DEFAULT_LOG_LINE_PREFIX = "%m [%p] %q%u@%d %r %a "


# --------------------------------------------------------------------------- time zones
_NUMERIC_TZ = re.compile(r"^([+-])(\d{1,2})(?::?(\d{2}))?$")
_DEFAULT_TZ: dict[str, tzinfo] = {"UTC": timezone.utc, "GMT": timezone.utc, "UCT": timezone.utc}


def _tz_table(timezones: Mapping[str, str | tzinfo] | None) -> dict[str, tzinfo]:
    table = dict(_DEFAULT_TZ)
    for abbrev, value in (timezones or {}).items():
        if isinstance(value, tzinfo):
            table[abbrev] = value
            continue
        try:
            numeric = _numeric_tz(value)
        except InputError as exc:
            raise ConfigError(f"timezones[{abbrev!r}]: {exc.detail}") from None
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
    """The fixed zone a numeric abbreviation (``+08``, ``-0530``, ``+05:30``) names, or
    None when ``text`` is not numeric; :class:`InputError` for an offset of a day or
    more, or minutes past 59 (no clock is that far from UTC)."""
    m = _NUMERIC_TZ.match(text)
    if not m:
        return None
    hours, mins = int(m.group(2)), int(m.group(3) or 0)
    if hours > 23 or mins > 59:
        raise InputError(f"time zone {text!r} is not a possible UTC offset (at most "
                         "23:59 either side)")
    minutes = hours * 60 + mins
    return timezone(timedelta(minutes=-minutes if m.group(1) == "-" else minutes))


def _pg_time(text: str, tzs: dict[str, tzinfo]) -> datetime:
    stamp, _, abbrev = text.rpartition(" ")
    tz = tzs.get(abbrev) or _numeric_tz(abbrev) or tzs.get("*")
    if tz is None:
        raise InputError(
            f"time zone abbreviation {abbrev!r} is ambiguous or unknown; map it with "
            f"--tz {abbrev}=+08:00 (timezones={{{abbrev!r}: '+08:00'}}), give the log's zone "
            "with --tz Asia/Shanghai, or set log_timezone to UTC"
        )
    try:
        ts = datetime.fromisoformat(stamp).replace(tzinfo=tz)
    except ValueError:
        raise InputError(f"bad log timestamp {text!r}") from None
    try:
        return check_timestamp(ts)
    except InputError:
        raise InputError(f"log timestamp {text!r} is out of range (its UTC time must lie "
                         "from 0002-01-01 to 9998-12-31)") from None


# --------------------------------------------------------------------------- pgAudit core
class _PgState:
    """Per-file state shared by both pgAudit formats."""

    def __init__(self, timezones: Mapping[str, str | tzinfo] | None) -> None:
        self.tzs = _tz_table(timezones)
        self.ids = EventIds("pg")
        self.last_key: dict[str, tuple[str, str]] = {}
        self.last_stmt: dict[str, tuple[str, str, tuple[str | None, ...] | None]] = {}

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
        kind, stmt_id, sub_id, _cls, _cmd, _otype, oname, statement, param = fields[:9]
        if kind not in ("SESSION", "OBJECT") or not (stmt_id.isdigit() and sub_id.isdigit()):
            raise InputError("not a pgAudit SESSION/OBJECT record")
        rows: int | None = None
        if len(fields) == 10:
            if not (fields[9].isascii() and fields[9].isdigit() and len(fields[9]) <= 19):
                raise InputError("pgAudit rows field is not a count below 2^63: "
                                 f"{fields[9][:40]!r}")
            rows = int(fields[9])
        key = (stmt_id, sub_id)
        if self.last_key.get(pid) == key:
            return None  # same statement logged again for another relation / audit type
        self.last_key[pid] = key
        params = _parameters(param)
        if statement == "<previously logged>":
            prev = self.last_stmt.get(pid)
            if prev is not None and prev[0] == stmt_id:
                statement, params = prev[1], prev[2]
        else:
            self.last_stmt[pid] = (stmt_id, statement, params)
        if not user:
            raise InputError("no user name on the audit record (check log_line_prefix %u)")
        ts = _pg_time(ts_text, self.tzs)
        canon = "\x1f".join(["audit", ts.astimezone(timezone.utc).isoformat(), pid,
                             stmt_id, sub_id, oname, user, db or ""])
        return QueryEvent(event_id=self.ids.make(canon), ts=ts, actor=user, database=db or None,
                          source_ip=host or None, client=app or None, statement=statement,
                          rows=rows, status="ok", parameters=params)

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


_NOT_VALUES = frozenset({"<not logged>", "<none>", "<previously logged>"})


def _parameters(field: str) -> tuple[str | None, ...] | None:
    """pgAudit's PARAMETER field (``pgaudit.log_parameter = on``): the bind values as a
    CSV record of their own (an empty value is a NULL, or an empty string: pgAudit
    writes both alike), or None for ``<none>``, ``<not logged>`` and the like."""
    if field in _NOT_VALUES:
        return None
    if field == "":
        return (None,)
    try:
        values = next(csv.reader(io.StringIO(field)))
    except (csv.Error, StopIteration):
        raise InputError("pgAudit parameter field is not valid CSV") from None
    return tuple(v if v != "" else None for v in values)


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
    for start, row, physical in csv_records(lines(source)):
        if isinstance(row, str):  # not valid CSV: quarantined, the lines after re-read
            yield start, undecodable(start, physical) or MalformedLine(
                start, row, "\n".join(physical))
            continue
        raw = ",".join(row)
        if len(row) not in _CSVLOG_WIDTHS:
            yield start, undecodable(start, physical) or MalformedLine(
                start, f"expected 23, 24 or 26 csvlog columns, got {len(row)}", raw)
            continue
        sev, message, query = row[11], row[13], row[19]
        is_audit = sev == "LOG" and message.startswith("AUDIT: ")
        is_error = include_errors and sev == "ERROR" and bool(query)
        if not (is_audit or is_error):
            continue
        bad = undecodable(start, physical)
        if bad is not None:
            yield start, bad
            continue
        conn = row[4]
        host = conn.rsplit(":", 1)[0] if ":" in conn and conn.rsplit(":", 1)[1].isdigit() else conn
        ctx: dict[str, Any] = {"ts_text": row[0], "pid": row[3], "user": row[1],
                               "db": row[2], "host": host, "app": row[22]}
        try:
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


#: log_line_prefix values seen in the field, tried by :func:`guess_prefix` in this order.
COMMON_PREFIXES: tuple[str, ...] = (
    DEFAULT_LOG_LINE_PREFIX,
    "%m [%p] %q%u@%d ",                                 # Debian / Ubuntu packages
    "%m [%p] ",                                         # PostgreSQL's own default
    "%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ",  # pgBadger's recommendation
    "%t [%p]: user=%u,db=%d,app=%a,client=%h ",
    "%m [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ",
    "%t:%r:%u@%d:[%p]:",                                # Amazon RDS / Aurora
    "%m:%r:%u@%d:[%p]:",
    "%t [%p-%l] %q%u@%d ",
    "%m [%p] %q[user=%u,db=%d,app=%a,client=%h] ",
    "%m [%p] %u@%d ",
    "%t [%p] ",
)


def guess_prefix(lines: Iterable[str], *, limit: int = 2000,
                 candidates: Iterable[str] = COMMON_PREFIXES) -> str | None:
    """The ``log_line_prefix`` among ``candidates`` that best explains a stderr log.

    Looks at the first ``limit`` record lines (continuation lines skipped). A candidate
    scores by the lines it matches, audit records whose user it reads counting double;
    ties go to the earlier candidate. None when no candidate matches any line.
    """
    sample = [line.rstrip("\r\n") for line in itertools.islice(
        (x for x in lines if x.strip() and not x.startswith("\t")), limit)]
    best: tuple[int, str] | None = None
    for prefix in candidates:
        try:
            pattern = compile_prefix(prefix)
        except ConfigError:
            continue
        score = 0
        for line in sample:
            m = pattern.match(line)
            if m is None:
                continue
            score += 1
            if m.group("msg").startswith("AUDIT: ") and _group(m, "user"):
                score += 1
        if score and (best is None or score > best[0]):
            best = (score, prefix)
    return None if best is None else best[1]


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
    mismatch = f"line does not match log_line_prefix {prefix!r}"
    state = _PgState(timezones)
    pending: dict[str, tuple[int, str, str | None]] = {}

    def handle(line_no: int, physical: list[str]) -> Iterator[Record]:
        bad = undecodable(line_no, physical)
        if bad is not None:
            yield line_no, bad
            return
        text = "\n".join([physical[0], *(line[1:] for line in physical[1:])])
        m = pattern.match(text)
        if m is None:
            yield line_no, MalformedLine(line_no, mismatch, text)
            return
        pid, sev, msg = m.group("pid"), m.group("sev"), m.group("msg")
        epoch = _group(m, "epoch")
        try:
            ts_text = (_group(m, "ts") or "") if epoch is None else datetime.fromtimestamp(
                float(epoch), tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f UTC")
        except (ValueError, OverflowError, OSError):  # a year past 9999, past time_t
            yield line_no, MalformedLine(line_no, f"epoch timestamp {str(epoch)[:40]!r} is out "
                                         "of range", text)
            return
        ctx: dict[str, Any] = {"ts_text": ts_text, "pid": pid, "user": _group(m, "user") or "",
               "db": _group(m, "db"), "host": _host(_group(m, "remote")),
               "app": _group(m, "app")}
        try:
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

    current: tuple[int, list[str]] | None = None  # first line number, physical lines
    for line_no, line in enumerate(lines(source), start=1):
        if line.startswith("\t"):
            if current is None:
                yield line_no, undecodable(line_no, (line,)) or MalformedLine(
                    line_no, "continuation line without a record", line)
            else:
                current[1].append(line)
            continue
        if current is not None:
            yield from handle(*current)
            current = None
        if line.strip():
            current = (line_no, [line])
    if current is not None:
        yield from handle(*current)
