"""The SQLite storage of a ledger: schema, creation, transactions, the stored tree head.

One SQLite file in WAL mode with ``synchronous=FULL``. Tables: ``meta`` (format marker,
version, origin), ``records`` (one row per leaf: index, timestamp, kind, canonical payload
JSON, leaf hash), ``tree_head`` (latest size, root and frontier, updated in the same
transaction as the records), ``checkpoints`` (every checkpoint issued, with its signed
note) and ``signers`` (their public keys). Triggers refuse ``UPDATE`` and ``DELETE`` on
``records``, ``checkpoints`` and ``meta``. Readers that must not change the file
(show, prove, verify) open it with :func:`privacy.readonly.connect_read_only` and check
it with :func:`check_ledger`; only :func:`initialise` writes.

Internal to :mod:`privacy.ledger`; use :class:`privacy.ledger.Ledger`.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from privacy.errors import InputError, SerializationError
from privacy.ledger import merkle
from privacy.ledger.checkpoint import check_name
from privacy.ledger.records import utc_now, verification_failed

__all__ = ["FORMAT", "VERSION", "SCHEMA", "FILE_MODE", "create_private", "initialise",
           "check_ledger", "transaction", "read_head", "leaf_hashes"]

FORMAT, VERSION = "covault-ledger", "1"
#: Mode of a ledger file covault creates. SQLite gives the ``-wal`` and ``-shm`` files it
#: creates beside it the database file's mode, so they are 0600 too.
FILE_MODE = 0o600
_NO_CHANGE = ("CREATE TRIGGER {t}_no_{op} BEFORE {OP} ON {t} "
              "BEGIN SELECT RAISE(ABORT, 'ledger {t} are append-only'); END")
SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE records (idx INTEGER PRIMARY KEY, ts TEXT NOT NULL, kind TEXT NOT NULL, "
    "payload TEXT NOT NULL, leaf_hash BLOB NOT NULL)",
    "CREATE TABLE tree_head (id INTEGER PRIMARY KEY CHECK (id = 1), size INTEGER NOT NULL, "
    "root BLOB NOT NULL, frontier BLOB NOT NULL, ts TEXT NOT NULL)",
    "CREATE TABLE checkpoints (size INTEGER NOT NULL, root BLOB NOT NULL, "
    "time TEXT NOT NULL, note TEXT NOT NULL)",
    "CREATE TABLE signers (name TEXT NOT NULL, key_id BLOB NOT NULL, "
    "public_key BLOB NOT NULL, PRIMARY KEY (name, public_key))",
    *(_NO_CHANGE.format(t=t, op=op, OP=op.upper())
      for t in ("records", "checkpoints", "meta") for op in ("update", "delete")),
)


def create_private(path: Path) -> None:
    """Create ``path`` as an empty file of mode :data:`FILE_MODE` (0600), before SQLite
    opens it; leave an existing file alone.

    SQLite would create the file with mode 0644 (less the umask), readable by every local
    user, and its ``-wal``/``-shm`` files with the same mode. An empty file is an empty
    SQLite database, which :func:`initialise` fills in.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0),
                     FILE_MODE)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, FILE_MODE)  # whatever the umask
    finally:
        os.close(fd)


def check_ledger(db: sqlite3.Connection, path: Path, origin: str | None) -> str:
    """Check that ``db`` holds a covault ledger (of ``origin``, when given); return its origin.

    Reads only. Raises as :func:`initialise` does.
    """
    try:
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.OperationalError:
        meta = {}
    if meta.get("format") != FORMAT:
        raise SerializationError(f"{path}: not a covault ledger")
    if meta.get("version") != VERSION:
        raise SerializationError(f"{path}: unsupported ledger version "
                                 f"{meta.get('version')!r} (expected {VERSION})")
    stored = meta.get("origin")
    if not isinstance(stored, str):
        raise SerializationError(f"{path}: not a covault ledger (no origin recorded)")
    if origin is not None and origin != stored:
        raise InputError(f"{path}: ledger origin is {stored!r}, not {origin!r}")
    return stored


def initialise(db: sqlite3.Connection, path: Path, origin: str | None) -> str:
    """Create the schema in an empty database, check an existing one; return its origin.

    Switches the file to WAL mode with ``synchronous=FULL`` (once it is known to be a
    ledger); for reading without writing use :func:`privacy.readonly.connect_read_only`
    and :func:`check_ledger`.

    Raises
    ------
    SerializationError
        The database is not a covault ledger or has an unknown version.
    InputError
        ``origin`` is malformed or differs from the stored one.
    sqlite3.DatabaseError
        The file is not a readable SQLite database (the caller maps it).
    """
    db.execute("PRAGMA busy_timeout = 30000")
    if not db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("BEGIN IMMEDIATE")
        try:
            if not db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                name = origin if origin is not None else (
                    re.sub(r"[^A-Za-z0-9._/-]", "_", path.stem) or "ledger")
                check_name(name, "origin")
                for statement in SCHEMA:
                    db.execute(statement)
                db.executemany("INSERT INTO meta VALUES (?, ?)", [
                    ("format", FORMAT), ("version", VERSION), ("origin", name),
                    ("created", utc_now())])
                db.execute("INSERT INTO tree_head VALUES (1, 0, ?, x'', ?)",
                           (merkle.EMPTY_ROOT, utc_now()))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    name = check_ledger(db, path, origin)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = FULL")
    return name


@contextlib.contextmanager
def transaction(db: sqlite3.Connection, mode: str) -> Iterator[sqlite3.Connection]:
    """``BEGIN <mode>`` ... ``COMMIT``, rolled back when the block raises."""
    db.execute(f"BEGIN {mode}")
    try:
        yield db
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def read_head(db: sqlite3.Connection) -> tuple[int, bytes, list[bytes]]:
    """The stored tree head: size, root and frontier.

    Raises
    ------
    IntegrityError
        The tree head is missing or malformed.
    """
    row = db.execute("SELECT size, root, frontier FROM tree_head WHERE id = 1").fetchone()
    if row is None:
        raise verification_failed("tree head is missing")
    size, root, blob = row
    if type(size) is not int or size < 0 or not isinstance(root, bytes) or len(root) != 32 \
            or not isinstance(blob, bytes):
        raise verification_failed("stored tree state is malformed")
    frontier = [blob[i:i + 32] for i in range(0, len(blob), 32)]
    if len(frontier) != bin(size).count("1") or len(blob) % 32:
        raise verification_failed("stored tree state is malformed")
    return int(size), bytes(root), frontier


def leaf_hashes(db: sqlite3.Connection, size: int) -> list[bytes]:
    """The stored leaf hashes of the first ``size`` records (IntegrityError if missing)."""
    rows = db.execute("SELECT leaf_hash FROM records WHERE idx < ? ORDER BY idx", (size,))
    hashes = [r[0] for r in rows]
    if len(hashes) != size:
        raise verification_failed("records are missing")
    return hashes
