"""Reading log sources line by line, and content-addressed event ids, for the adapters.

Shared by :mod:`privacy.audit.adapters` (JSON Lines, CSV) and
:mod:`privacy.audit.pgaudit`. Files are read as UTF-8 with ``surrogateescape``, so each
line decodes on its own and a bad byte fails only its record: every reader first asks
:func:`undecodable`, which turns a record holding bytes that are not UTF-8 into a
:class:`~privacy.audit.events.MalformedLine` whose ``raw`` is the record's exact bytes in
base64 (a quarantine row must be valid text) and whose reason names the line and byte.

CSV sources (audit CSV, pgAudit csvlog) are split into records by :func:`csv_records`,
which reads CSV strictly and recovers from a stray quote at the line where it opened.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import os
from collections.abc import Iterable, Iterator, Sequence

from privacy.audit.events import MalformedLine, QueryEvent
from privacy.errors import ConfigError, InputError

__all__ = [
    "read_utf8",
    "EventIds",
    "LineTape",
    "Record",
    "Source",
    "csv_records",
    "lines",
    "undecodable",
    "utf8_error",
]

Record = tuple[int, QueryEvent | MalformedLine]
Source = str | os.PathLike[str] | Iterable[str]


def lines(source: Source) -> Iterator[str]:
    """Yield physical lines without their line terminator."""
    if isinstance(source, (str, os.PathLike)):
        with open(source, encoding="utf-8", errors="surrogateescape", newline="") as fh:
            for line in fh:
                yield line.rstrip("\r\n")
    else:
        for line in source:
            yield line.rstrip("\r\n")


def _raw_bytes(text: str) -> bytes:
    """The bytes a line read by :func:`lines` came from (lone surrogates that are not
    escapes, possible in an iterable source, are kept as their 3-byte encoding)."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def utf8_error(text: str) -> int | None:
    """The 0-based offset of the first byte of ``text`` (one line) that is not UTF-8, or
    None when the line is UTF-8 (text that cannot be stored as UTF-8 counts as not)."""
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        pass
    else:
        return None
    try:
        _raw_bytes(text).decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start
    return 0  # escapes that spell valid UTF-8: only in text built by hand, never read


def undecodable(line_no: int, physical: Sequence[str]) -> MalformedLine | None:
    """Quarantine the record starting at ``line_no`` if it holds bytes that are not UTF-8.

    Parameters
    ----------
    line_no:
        1-based number of the record's first physical line.
    physical:
        The record's physical lines as :func:`lines` yields them.

    Returns
    -------
    MalformedLine | None
        None when every line is UTF-8. Otherwise reason ``"line N: not UTF-8 at byte K
        (raw is base64)"`` (N the first bad line, K the 0-based offset of its first bad
        byte) and ``raw`` the base64 of the record's bytes, lines joined by newlines.
    """
    for i, text in enumerate(physical):
        k = utf8_error(text)
        if k is not None:
            data = b"\n".join(_raw_bytes(t) for t in physical)
            return MalformedLine(line_no, f"line {line_no + i}: not UTF-8 at byte {k} "
                                 "(raw is base64)", base64.b64encode(data).decode("ascii"))
    return None


class EventIds:
    """Content-addressed event ids with an occurrence counter per identical content."""

    def __init__(self, namespace: str) -> None:
        self._ns = namespace
        self._seen: dict[bytes, int] = {}

    def make(self, canonical: str) -> str:
        """``<namespace>:`` + 32 hex digits over the content and its occurrence number."""
        base = hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).digest()
        n = self._seen.get(base, 0)
        self._seen[base] = n + 1
        digest = hashlib.sha256(base + b"\0" + str(n).encode()).hexdigest()
        return f"{self._ns}:{digest[:32]}"


class LineTape:
    """Physical lines fed to a :mod:`csv` reader (terminator put back), held until
    :meth:`take`: after each row the reader returns, :meth:`take` gives the lines that
    row was parsed from (the reader never reads ahead of the row it returns)."""

    def __init__(self, lines: Iterable[str]) -> None:
        self._it = iter(lines)
        self._held: list[str] = []
        self._again: list[str] = []  # lines put back by :meth:`unread`, last first

    def __iter__(self) -> LineTape:
        return self

    def __next__(self) -> str:
        line = self._again.pop() if self._again else next(self._it)
        self._held.append(line)
        return line + "\n"

    def unread(self, lines: Sequence[str]) -> None:
        """Put ``lines`` (taken before) back, to be read again before the rest."""
        self._again.extend(reversed(lines))

    def take(self) -> list[str]:
        """The lines read since the last call."""
        held, self._held = self._held, []
        return held


#: One CSV record from :func:`csv_records`: its first line number, its cells (or, for
#: text that is not valid CSV, the reason), and the physical lines it was read from.
CsvRecord = tuple[int, list[str] | str, list[str]]


def _quote_opened(physical: Sequence[str]) -> int:
    """The index among ``physical`` (one record's lines) of the line where its last
    quoted field opened (0 when none did); CSV quoting as :mod:`csv`'s default dialect."""
    opened, in_quotes, field_start = 0, False, True
    for i, text in enumerate(physical):
        j, n = 0, len(text)
        while j < n:
            ch = text[j]
            if in_quotes:
                if ch == '"':
                    if text.startswith('"', j + 1):
                        j += 2
                        continue
                    in_quotes = False
            elif ch == ",":
                field_start = True
                j += 1
                continue
            elif ch == '"' and field_start:
                in_quotes, opened = True, i
            field_start = False
            j += 1
        if not in_quotes:
            field_start = True  # a line end outside quotes ends the record
    return opened


def csv_records(source: Iterable[str]) -> Iterator[CsvRecord]:
    """Split physical lines (as :func:`lines` yields them) into CSV records, strictly.

    Yields ``(line_no, cells, physical)`` for each record (``line_no`` 1-based, of its
    first line; a blank line is a record of no cells). Text that is not valid CSV
    (:mod:`csv` in strict mode) is yielded as ``(line_no, reason, physical)`` instead:
    ``physical`` runs from the record's first line to the line where its last quoted
    field opened, and the lines after that are read again as records of their own. So
    an unterminated quote (``"unexpected end of data"``) costs its own line only, not
    every record after it, and the reason names the line where the quote opened.
    """
    tape = LineTape(source)
    line_no = 1  # the number of the next line the tape gives
    while True:
        reader = csv.reader(tape, strict=True)
        for row in _rows(reader):
            physical = tape.take()
            if not physical:  # pragma: no cover - the csv module reads a line per record
                return
            if not isinstance(row, str):
                yield line_no, row, physical
                line_no += len(physical)
                continue
            k = _quote_opened(physical)
            last = line_no + len(physical) - 1
            if row == "unexpected end of data":
                reason = (f"quoted field opened at line {line_no + k} is never closed "
                          "(unexpected end of data)")
            elif len(physical) > 1:
                reason = (f"not valid CSV at line {last}: {row} (in a quoted field opened "
                          f"at line {line_no + k})")
            else:
                reason = f"not valid CSV: {row}"
            yield line_no, reason, physical[:k + 1]
            tape.unread(physical[k + 1:])
            line_no += k + 1
            break  # a fresh reader for the lines put back
        else:
            return


def _rows(reader: Iterator[list[str]]) -> Iterator[list[str] | str]:
    """The rows of a :mod:`csv` reader; a :class:`csv.Error` ends it as its message."""
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield str(exc)
            return


def read_utf8(name: str, what: str, error: type[InputError] = ConfigError) -> str:
    """The text of a UTF-8 file; ``error`` naming the file (and the line of the first byte
    that is not UTF-8) when it cannot be read."""
    try:
        with open(name, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise error(f"cannot read {what}: {exc.strerror}", file=name) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1)
        raise error(f"cannot read {what}: not UTF-8 text (byte {column} of the line)",
                    file=name, line=line) from None
