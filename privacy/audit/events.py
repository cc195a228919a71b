"""The canonical query event every audit adapter produces.

A :class:`QueryEvent` records who ran which statement, from where, when, and how much
data it touched. Adapters (:mod:`privacy.audit.adapters`) turn native logs (JSON Lines,
CSV, pgAudit) into these events; detection, baselines and the ledger consume them.

Timestamps are always timezone-aware: a naive timestamp is an error, because an
off-hours rule evaluated in the wrong zone is silently wrong. They must also be
representable in every time zone, because detection converts each one to the zone of
its rules: an event's UTC instant must lie in years 0002 to 9998 (:data:`TS_MIN`,
:data:`TS_MAX`, a year of margin inside :mod:`datetime`'s range), and its UTC offset must
be under 24 hours. A record outside that range is malformed (quarantined, its reason
naming the field), never a crash further down.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any, Literal

from privacy.audit._binds import bind
from privacy.errors import InputError

__all__ = ["QueryEvent", "MalformedLine", "parse_timestamp", "parse_zone", "restore_event",
           "check_timestamp", "ACTOR_KINDS", "STATUSES", "TS_MIN", "TS_MAX"]

ActorKind = Literal["human", "service"]
Status = Literal["ok", "error", "denied"]

ACTOR_KINDS: frozenset[str] = frozenset({"human", "service"})
STATUSES: frozenset[str] = frozenset({"ok", "error", "denied"})

_REQUIRED = ("event_id", "ts", "actor", "statement")
_OPTIONAL_STR = ("role", "department", "source_ip", "client", "database")


#: The earliest and latest UTC instants an event may have. Any zone's local time of an
#: instant in this range (offsets are under 24 hours) is a valid :class:`datetime`, so
#: detection can convert every stored event to its rules' zone, and windows of days
#: around it stay in range.
TS_MIN = datetime(2, 1, 1, tzinfo=timezone.utc)
TS_MAX = datetime(9998, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc)
_TS_MIN_NAIVE = TS_MIN.replace(tzinfo=None)
_TS_MAX_NAIVE = TS_MAX.replace(tzinfo=None)
_RANGE_TEXT = "0002-01-01 to 9998-12-31 UTC"


def _ts_problem(ts: datetime) -> str | None:
    """Why the aware ``ts`` cannot be an event's timestamp, or None when it can."""
    if 2 < ts.year < 9998:  # the fast path: any offset under a day keeps it in range
        return None
    offset = ts.utcoffset()
    if offset is None:
        return "has no UTC offset"
    if not -timedelta(hours=24) < offset < timedelta(hours=24):
        return f"has an impossible UTC offset {offset}"
    try:
        utc = ts.replace(tzinfo=None) - offset
    except OverflowError:
        utc = None
    if utc is None or not _TS_MIN_NAIVE <= utc <= _TS_MAX_NAIVE:
        return f"is out of range (its UTC time must lie from {_RANGE_TEXT})"
    return None


def check_timestamp(ts: datetime, *, field: str = "ts") -> datetime:
    """Return the aware ``ts`` if it can be an event's timestamp (see the module
    docstring: UTC instant from :data:`TS_MIN` to :data:`TS_MAX`, offset under a day).

    Raises
    ------
    InputError
        Naming ``field`` and the timestamp, when it is out of range.
    """
    problem = _ts_problem(ts)
    if problem is not None:
        raise InputError(f"field {field!r}: timestamp {_iso(ts)} {problem}")
    return ts


def _iso(ts: datetime) -> str:
    """``ts`` in ISO 8601 (years below 1000 with four digits, as written)."""
    try:
        return ts.isoformat()
    except (ValueError, OverflowError):  # pragma: no cover - a tzinfo that misbehaves
        return repr(ts)


_OFFSET = re.compile(r"^(?:UTC|GMT)?([+-])(\d{1,2})(?::?(\d{2}))?$")


def parse_zone(text: str) -> tzinfo:
    """A time zone from an offset (``+08:00``, ``+0800``, ``-5``, ``UTC+8``), ``UTC``/``Z``
    or an IANA name (``Asia/Shanghai``).

    Raises
    ------
    InputError
        If ``text`` is none of these.
    """
    value = text.strip()
    if value.upper() in ("UTC", "Z", "GMT"):
        return timezone.utc
    m = _OFFSET.match(value.upper())
    if m is not None:
        hours, minutes = int(m.group(2)), int(m.group(3) or 0)
        if hours > 23 or minutes > 59:
            raise InputError(f"time zone {text!r}: offset out of range")
        delta = timedelta(hours=hours, minutes=minutes)
        return timezone(-delta if m.group(1) == "-" else delta)
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(value)
    except (KeyError, ValueError, OSError):
        raise InputError(f"unknown time zone {text!r} (expected an offset such as +08:00 or "
                         "an IANA name such as Asia/Shanghai)") from None


def parse_timestamp(value: object, *, field: str = "ts",
                    default_tz: tzinfo | None = None, bounded: bool = True) -> datetime:
    """Parse an ISO 8601 timestamp that carries a UTC offset.

    Parameters
    ----------
    value:
        A string such as ``2026-03-01T09:30:00+08:00`` (``Z`` means UTC; a space may
        stand for the ``T``) or an aware :class:`~datetime.datetime`.
    field:
        Field name used in error messages.
    default_tz:
        The zone of timestamps written without an offset (the log's own zone, when it is
        known: ``--tz``). Without it a naive timestamp is an error.
    bounded:
        Also require the range every event keeps (:func:`check_timestamp`); ``False``
        only to read back what an older version stored (verification).

    Raises
    ------
    InputError
        If the value is not a string/datetime, not ISO 8601, has no offset and no
        ``default_tz`` was given, or (``bounded``) lies outside the range events keep.
    """
    if isinstance(value, datetime):
        ts = value
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            ts = datetime.fromisoformat(text)
        except ValueError:
            raise InputError(
                f"field {field!r}: expected an ISO 8601 timestamp with offset, got {value!r}"
            ) from None
    else:
        raise InputError(
            f"field {field!r}: expected an ISO 8601 timestamp string, got {type(value).__name__}"
        )
    if ts.tzinfo is None or ts.utcoffset() is None:
        if default_tz is not None:
            ts = ts.replace(tzinfo=default_tz)
            return check_timestamp(ts, field=field) if bounded else ts
        raise InputError(
            f"field {field!r}: timestamp {value!s} has no UTC offset; naive timestamps are "
            "ambiguous (expected e.g. 2026-03-01T09:30:00+08:00, or give the log's zone "
            "with --tz)"
        )
    return check_timestamp(ts, field=field) if bounded else ts


@dataclass(frozen=True, kw_only=True, slots=True)
class QueryEvent:
    """One statement run against a database, as seen by an audit source.

    Parameters
    ----------
    event_id:
        Unique, stable id. Adapters derive a content-addressed id when the source has
        none, so ingesting the same file twice yields the same ids.
    ts:
        When the statement ran; timezone-aware.
    actor:
        Database user (or application principal) that ran it.
    actor_kind:
        ``"human"`` or ``"service"`` when known.
    role, department:
        Organisational context of the actor, when known (enrichment).
    source_ip:
        Client address or host name as logged (``[local]`` for a Unix socket).
    client:
        Client program / application name.
    database:
        Database (or schema) name.
    statement:
        The SQL text.
    rows:
        Rows returned or affected, when the source logs it.
    status:
        ``"ok"``, ``"error"`` or ``"denied"`` when known.
    duration_ms:
        Execution time in milliseconds, when known.
    parameters:
        Bind parameter values of a statement with placeholders (``$1``, ``?``), as
        logged (pgAudit ``log_parameter``), ``None`` for a SQL NULL; ``None`` when the
        source logged none. :attr:`bound_statement` puts them in the placeholders.

    Warnings
    --------
    ``statement`` (and ``parameters``) hold literal customer identifiers. Treat events
    as personal data: pseudonymise before long-term storage or sharing.
    """

    event_id: str
    ts: datetime
    actor: str
    actor_kind: ActorKind | None = None
    role: str | None = None
    department: str | None = None
    source_ip: str | None = None
    client: str | None = None
    database: str | None = None
    statement: str
    rows: int | None = None
    status: Status | None = None
    duration_ms: float | None = None
    parameters: tuple[str | None, ...] | None = None

    def __post_init__(self) -> None:
        _validate(self.event_id, self.ts, self.actor, self.actor_kind, self.role,
                  self.department, self.source_ip, self.client, self.database,
                  self.statement, self.rows, self.status, self.duration_ms, self.parameters)

    @property
    def bound_statement(self) -> str:
        """The statement with its bind parameters in the placeholders (as literals), what
        detection analyses; the statement itself when it has none."""
        params = self.parameters
        if not params:
            return self.statement
        return bind(self.statement, params)

    # ------------------------------------------------------------------ conversion
    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, file: str | None = None, line: int | None = None,
        default_tz: tzinfo | None = None,
    ) -> QueryEvent:
        """Build and validate an event from a JSON-like mapping.

        Unknown keys, missing required keys and wrongly typed values raise
        :class:`~privacy.errors.InputError` naming the field and the expected type.
        ``None`` values for optional fields mean "unknown". ``parameters`` may be a list
        of strings, numbers and nulls (numbers become their text). ``default_tz`` is
        the zone of a ``ts`` without offset (see :func:`parse_timestamp`).
        """
        if type(data) is not dict and not isinstance(data, Mapping):
            raise InputError(
                f"expected a JSON object for a query event, got {type(data).__name__}",
                file=file,
                line=line,
            )
        known = _FIELD_NAMES
        if not known.issuperset(data):
            unknown = sorted(str(k) for k in data if k not in known)
            raise InputError(
                f"unknown field {unknown[0]!r} (expected one of {', '.join(sorted(known))})",
                file=file,
                line=line,
            )
        get = data.get
        values: list[Any] = [get(name) for name in _EVENT_FIELDS]
        for index, name in _REQUIRED_AT:
            if values[index] is None:
                raise InputError(f"field {name!r}: required field is missing", file=file, line=line)
        try:
            values[1] = parse_timestamp(values[1], default_tz=default_tz)
            dur = values[12]
            if isinstance(dur, int) and not isinstance(dur, bool):
                try:
                    values[12] = float(dur)
                except OverflowError:
                    raise InputError("field 'duration_ms': expected a non-negative number, "
                                     f"got {_short(dur)}") from None
            if values[13] is not None:
                values[13] = _parameters(values[13])
            _validate(*values)
        except InputError as exc:
            raise InputError(exc.detail, file=file, line=line) from None
        return restore_event(*values)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Pickle as a flat tuple (4x cheaper than the slots state): events cross a
        # process boundary in batches when scoring runs beside ingest.
        return (restore_event, tuple([getattr(self, name) for name in _EVENT_FIELDS]))

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict (``ts`` as ISO 8601 with offset)."""
        return {"event_id": self.event_id, "ts": self.ts.isoformat(), "actor": self.actor,
                "actor_kind": self.actor_kind, "role": self.role,
                "department": self.department, "source_ip": self.source_ip,
                "client": self.client, "database": self.database,
                "statement": self.statement, "rows": self.rows, "status": self.status,
                "duration_ms": self.duration_ms,
                "parameters": None if self.parameters is None else list(self.parameters)}

    def to_json(self) -> str:
        """One compact JSON line (no newline), keys in schema order."""
        if _orjson is not None:
            offset = self.ts.utcoffset()
            # orjson writes a dataclass's fields in order and a datetime as isoformat()
            # does, except that it drops the seconds of an offset: use it when there are none
            if offset is not None and not offset.seconds % 60 and not offset.microseconds:
                return json_dumps(self)
        return json_dumps(self.to_dict())

    @classmethod
    def from_json(cls, line: str) -> QueryEvent:
        """Inverse of :meth:`to_json`."""
        try:
            data = json_loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"not valid JSON: {exc.msg} at column {exc.colno}") from None
        return cls.from_dict(data)

    @property
    def ts_utc(self) -> datetime:
        """The timestamp converted to UTC."""
        return self.ts.astimezone(timezone.utc)


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_orjson: Any
try:  # orjson (the ``audit`` extra) is ~5x faster on the ingest hot path
    import orjson as _orjson
except ImportError:  # pragma: no cover - the standard library gives the same results
    _orjson = None


def json_dumps(obj: Any) -> str:
    """Compact JSON text, keys in insertion order, non-ASCII kept."""
    if _orjson is not None:
        return str(_orjson.dumps(obj).decode("utf-8"))
    return _ENCODER.encode(obj)


def json_loads(text: str) -> Any:
    """Parse JSON; raises :class:`json.JSONDecodeError` (a ValueError) when invalid.

    Whatever the parser, input it cannot take is a :class:`json.JSONDecodeError` too:
    nesting deeper than it goes (the standard library's ``RecursionError``), an integer
    of more digits than Python converts (a ``ValueError``), text that is not UTF-8.
    """
    try:
        if _orjson is not None:
            return _orjson.loads(text)
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", text, 0) from None
    except ValueError as exc:  # e.g. "Exceeds the limit (4300 digits) for integer ..."
        raise json.JSONDecodeError(str(exc).split(";")[0], text, 0) from None


_EVENT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(QueryEvent))
_FIELD_NAMES: frozenset[str] = frozenset(_EVENT_FIELDS)
_REQUIRED_AT = tuple((_EVENT_FIELDS.index(name), name) for name in _REQUIRED)


def _parameters(value: Any) -> Any:
    """A JSON list of parameter values as a tuple of strings and Nones (numbers as their
    text); anything else is returned as is, for :func:`_validate` to reject."""
    if not isinstance(value, (list, tuple)):
        return value
    out: list[Any] = []
    for v in value:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out.append(str(v))
        else:
            out.append(v)
    return tuple(out)


#: The most rows an event may record: SQLite's largest integer (events are stored and
#: summed there, and serialised as 64-bit JSON integers).
_MAX_ROWS = 2**63 - 1


def _short(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters (a 4,000-digit integer stays readable)."""
    text = repr(value) if not isinstance(value, int) or value.bit_length() < 200 else (
        f"an integer of about {int(value.bit_length() * 0.30103) + 1:,} digits")
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _validate(event_id: Any, ts: Any, actor: Any, actor_kind: Any, role: Any,
              department: Any, source_ip: Any, client: Any, database: Any, statement: Any,
              rows: Any, status: Any, duration_ms: Any, parameters: Any = None) -> None:
    """Check an event's field values (in declaration order); :class:`InputError` names
    the first field that is wrong."""
    for name, value in (("event_id", event_id), ("actor", actor)):
        if not isinstance(value, str) or not value:
            raise InputError(f"field {name!r}: expected a non-empty string, got {_short(value)}")
    if not isinstance(statement, str):
        raise InputError(f"field 'statement': expected a string, got {type(statement).__name__}")
    if not isinstance(ts, datetime) or ts.utcoffset() is None:
        raise InputError("field 'ts': expected a timezone-aware datetime")
    if not 2 < ts.year < 9998:
        check_timestamp(ts)
    for opt, val in zip(_OPTIONAL_STR, (role, department, source_ip, client, database),
                        strict=True):
        if val is not None and not isinstance(val, str):
            raise InputError(f"field {opt!r}: expected a string or null, got {type(val).__name__}")
    if actor_kind is not None and (not isinstance(actor_kind, str)
                                   or actor_kind not in ACTOR_KINDS):
        raise InputError("field 'actor_kind': expected 'human' or 'service', got "
                         f"{_short(actor_kind)}")
    if status is not None and (not isinstance(status, str) or status not in STATUSES):
        raise InputError("field 'status': expected 'ok', 'error' or 'denied', got "
                         f"{_short(status)}")
    if rows is not None and (isinstance(rows, bool) or not isinstance(rows, int)
                             or not 0 <= rows <= _MAX_ROWS):
        raise InputError("field 'rows': expected a non-negative integer up to 2^63-1, got "
                         f"{_short(rows)}")
    if duration_ms is not None and (
        isinstance(duration_ms, bool)
        or not isinstance(duration_ms, (int, float))
        or (isinstance(duration_ms, float) and not math.isfinite(duration_ms))
        or duration_ms < 0
    ):
        raise InputError(
            f"field 'duration_ms': expected a non-negative number, got {_short(duration_ms)}")
    if parameters is not None and (not isinstance(parameters, tuple) or not all(
            v is None or isinstance(v, str) for v in parameters)):
        raise InputError("field 'parameters': expected a list of strings, numbers or nulls, "
                         f"got {parameters!r}"[:200])
# The slots' own setters, one per field: calling them directly is about twice as fast
# as object.__setattr__ by name (which a frozen dataclass's __init__ does per field).
(_SET_EVENT_ID, _SET_TS, _SET_ACTOR, _SET_ACTOR_KIND, _SET_ROLE, _SET_DEPARTMENT,
 _SET_SOURCE_IP, _SET_CLIENT, _SET_DATABASE, _SET_STATEMENT, _SET_ROWS, _SET_STATUS,
 _SET_DURATION_MS, _SET_PARAMETERS) = (getattr(QueryEvent, name).__set__
                                       for name in _EVENT_FIELDS)
assert _EVENT_FIELDS == ("event_id", "ts", "actor", "actor_kind", "role", "department",
                         "source_ip", "client", "database", "statement", "rows", "status",
                         "duration_ms", "parameters")


def restore_event(event_id: str, ts: datetime, actor: str, actor_kind: ActorKind | None,
                  role: str | None, department: str | None, source_ip: str | None,
                  client: str | None, database: str | None, statement: str,
                  rows: int | None, status: Status | None,
                  duration_ms: float | None,
                  parameters: tuple[str | None, ...] | None = None) -> QueryEvent:
    """Rebuild an event from its field values in declaration order, without validating
    them again (for values taken from an event that was validated when it was made:
    pickled, or sent to a scoring process)."""
    event: QueryEvent = object.__new__(QueryEvent)
    _SET_EVENT_ID(event, event_id)
    _SET_TS(event, ts)
    _SET_ACTOR(event, actor)
    _SET_ACTOR_KIND(event, actor_kind)
    _SET_ROLE(event, role)
    _SET_DEPARTMENT(event, department)
    _SET_SOURCE_IP(event, source_ip)
    _SET_CLIENT(event, client)
    _SET_DATABASE(event, database)
    _SET_STATEMENT(event, statement)
    _SET_ROWS(event, rows)
    _SET_STATUS(event, status)
    _SET_DURATION_MS(event, duration_ms)
    _SET_PARAMETERS(event, parameters)
    return event


@dataclass(frozen=True, slots=True)
class MalformedLine:
    """A source record that could not be turned into a :class:`QueryEvent`.

    Adapters yield these instead of dropping bad input, so the caller can quarantine
    them and report them with their location.

    Parameters
    ----------
    line_no:
        1-based line number where the record starts.
    reason:
        What was wrong.
    raw:
        The offending text (possibly several physical lines). For a record holding bytes
        that are not UTF-8 (reason ``"line N: not UTF-8 at byte K (raw is base64)"``),
        its exact bytes in base64 (lines joined by newlines).
    """

    line_no: int
    reason: str
    raw: str
