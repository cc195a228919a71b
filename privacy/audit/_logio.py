"""Reading log sources line by line, and content-addressed event ids, for the adapters.

Shared by :mod:`privacy.audit.adapters` (JSON Lines, CSV) and
:mod:`privacy.audit.pgaudit`. Files are read as UTF-8 with ``surrogateescape``, so a
bad byte marks its record malformed (:func:`bad_utf8`) instead of failing the file.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Iterator

from privacy.audit.events import MalformedLine, QueryEvent

__all__ = ["EventIds", "Record", "Source", "bad_utf8", "lines", "with_newlines"]

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


_SURROGATE_ESCAPE = re.compile("[\udc80-\udcff]")


def bad_utf8(text: str) -> bool:
    """True if ``text`` holds bytes that were not UTF-8 (read as surrogate escapes)."""
    return not text.isascii() and _SURROGATE_ESCAPE.search(text) is not None


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


def with_newlines(lines: Iterable[str]) -> Iterator[str]:
    """Put the line terminator back (for :mod:`csv`, whose quoted cells span lines)."""
    for line in lines:
        yield line + "\n"
