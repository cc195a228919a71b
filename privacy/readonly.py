"""Opening an SQLite file for reading without changing it or leaving files beside it.

Used by every read-only path (ledger show, verify and prove; audit verify) so that
checking a file never alters what is checked: its bytes, timestamps and journal mode
stay as they were, and a missing file is not created.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

__all__ = ["connect_read_only"]


def connect_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection (autocommit, 30 s busy timeout) to an existing SQLite file.

    ``mode=ro``: SQLite refuses every write, so no schema is created and no
    ``journal_mode`` is changed, and a missing file is an error rather than created. When
    no ``-wal`` or ``-journal`` file lies beside it (no writer has it open and none
    crashed mid-transaction), also ``immutable=1``: even a read-only connection to a
    WAL-mode file would otherwise create ``-wal`` and ``-shm`` files and leave them
    behind. A writer that opens the file while such a connection reads may make the
    read fail (never wrongly pass) a verification: run it again.

    Raises
    ------
    sqlite3.OperationalError
        The file is missing or cannot be opened (callers check existence first).
    """
    busy = any(path.with_name(path.name + end).exists() for end in ("-wal", "-journal"))
    uri = path.resolve().as_uri() + ("?mode=ro" if busy else "?mode=ro&immutable=1")
    return sqlite3.connect(uri, uri=True, timeout=30.0, isolation_level=None)
