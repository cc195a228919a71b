"""Reading log sources line by line, and content-addressed event ids, for the adapters.

Shared by :mod:`privacy.audit.adapters` (JSON Lines, CSV) and
:mod:`privacy.audit.pgaudit`. Files are read as UTF-8 with ``surrogateescape``, so each
line decodes on its own and a bad byte fails only its record: every reader first asks
:func:`undecodable`, which turns a record holding bytes that are not UTF-8 into a
:class:`~privacy.audit.events.MalformedLine` whose ``raw`` is the record's exact bytes in
base64 (a quarantine row must be valid text) and whose reason names the line and byte.
"""

from __future__ import annotations

import base64
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

    def __iter__(self) -> LineTape:
        return self

    def __next__(self) -> str:
        line = next(self._it)
        self._held.append(line)
        return line + "\n"

    def take(self) -> list[str]:
        """The lines read since the last call."""
        held, self._held = self._held, []
        return held


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
