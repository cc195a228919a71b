"""Tamper-evident, append-only disclosure log: an RFC 6962 Merkle tree kept in SQLite.

Every covault capability records what it released (a masking run, a PSI result size, a
federated round, an alert triage) with :meth:`Ledger.append`. Each record is a leaf of
an RFC 6962 Merkle tree (:mod:`privacy.ledger.merkle`); the leaf bytes are the canonical JSON of
``{"index", "kind", "payload", "ts"}`` (keys sorted, no whitespace, UTF-8, ``NaN``
refused). The log hands out inclusion and consistency proofs and Ed25519-signed
checkpoints in the transparency-log *checkpoint* note format, so a party that keeps a
checkpoint can later prove the log still contains everything it contained then.

Storage
-------
One SQLite file in WAL mode with ``synchronous=FULL``: a committed append survives a
power cut (``NORMAL`` could lose the last commits; a disclosure log should not).
Tables: ``meta`` (format marker, version, origin), ``records`` (one row per leaf: index,
timestamp, kind, canonical payload JSON, leaf hash), ``tree_head`` (the latest size,
root and frontier, updated in the same transaction as the records), ``checkpoints``
(every checkpoint issued, with its signed note) and ``signers`` (their public keys).
Triggers refuse ``UPDATE`` and ``DELETE`` on records; there is no API to edit or delete.
Appends run in ``BEGIN IMMEDIATE`` transactions that re-read the tree head, so several
processes may append to one file; a failed or interrupted batch leaves nothing behind.
``Ledger(path, read_only=True)`` reads without writing anything: the file, its
timestamps and its journal mode stay as they were, and no file is created.

What :meth:`Ledger.verify` detects
----------------------------------
Without a checkpoint: an edited record (timestamp, kind or payload), a deleted, inserted
or reordered row, rows removed at the end (the stored tree head is longer than the
records), and records that contradict any checkpoint the log issued. With a checkpoint
kept outside the database, also a log that was rewritten *consistently* by someone with
write access (records, leaf hashes, tree head and stored checkpoints all recomputed):
only an external checkpoint (or a witness holding one) can catch that, which is why
checkpoints exist. Publish or hand them to the parties the disclosures concern.

Modules
-------
This module holds :class:`Ledger`; :mod:`privacy.ledger` re-exports it with every other
public name. Records and leaf encoding live in :mod:`privacy.ledger.records`, checkpoints,
signed notes and Ed25519 keys in :mod:`privacy.ledger.checkpoint`, the SQLite schema in
:mod:`privacy.ledger.store` and full verification in :mod:`privacy.ledger.verify`.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from privacy.errors import InputError, SerializationError
from privacy.ledger import merkle
from privacy.ledger.checkpoint import (
    Checkpoint,
    PrivateKeySource,
    PublicKeySource,
    StrPath,
    check_name,
    coerce_checkpoint,
    load_signing_key,
    raw_public_key,
    sign_note,
)
from privacy.ledger.records import (
    LedgerRecord,
    decode_record,
    encode_record,
    utc_now,
    verification_failed,
)
from privacy.ledger.store import (
    check_ledger,
    create_private,
    initialise,
    leaf_hashes,
    read_head,
    transaction,
)
from privacy.ledger.verify import VerifyReport, verify_database
from privacy.readonly import connect_read_only
from privacy.sealed import KekSource

__all__ = ["Ledger"]

_BATCH = 4096
_fail = verification_failed
#: What SQLite and the sqlite3 module raise on a damaged file: a malformed page, or text
#: that does not decode as UTF-8.
_CORRUPT = (sqlite3.DatabaseError, UnicodeDecodeError)


class Ledger:
    """An append-only disclosure log in one SQLite file.

    Parameters
    ----------
    path:
        The database file; created (with its folder) when missing, unless ``read_only``.
    origin:
        The log's name, stored on creation and written into every checkpoint (e.g.
        ``"bank-a.example/disclosures"``). Default: the file name without suffix. When
        given for an existing ledger it must match the stored one.
    read_only:
        Open an existing file for reading only: nothing is written to the file or beside
        it (no schema, no ``journal_mode`` change, no ``-wal``/``-shm`` files left behind;
        see :func:`~privacy.readonly.connect_read_only`); :meth:`append` and
        :meth:`checkpoint` raise ``InputError``. Use it to show, prove and verify.

    Raises
    ------
    SerializationError
        The file is not a covault ledger: another SQLite database (left unmodified), a
        truncated or corrupt file, an empty file, or an unknown ledger version.
    InputError
        ``origin`` is malformed or differs from the stored one; the path is a folder;
        ``read_only`` and the file does not exist.

    Warnings
    --------
    A ``Ledger`` holds one SQLite connection: use it from one thread; open one per
    process. There is no API to edit or delete records. Keep checkpoints outside the
    database: only they catch a log rewritten consistently by someone with write access.
    """

    def __init__(self, path: StrPath, *, origin: str | None = None,
                 read_only: bool = False) -> None:
        self._path = Path(path)
        self.read_only = read_only
        if self._path.is_dir():
            raise InputError(f"{path}: is a folder, not a ledger file")
        if not self._path.exists():
            if read_only:
                raise InputError(f"{path}: no such ledger file")
            self._path.parent.mkdir(parents=True, exist_ok=True)
            create_private(self._path)
        elif self._path.stat().st_size == 0:
            raise SerializationError(f"{path}: empty file, not a covault ledger")
        self._db: sqlite3.Connection | None = None
        try:
            if read_only:
                self._db = connect_read_only(self._path)
                self.origin = check_ledger(self._db, self._path, origin)
            else:
                self._db = sqlite3.connect(str(self._path), timeout=30.0, isolation_level=None)
                self.origin = initialise(self._db, self._path, origin)
        except _CORRUPT:
            self.close()
            raise SerializationError(f"{path}: not a readable covault ledger (truncated, corrupt "
                                     "or not SQLite)") from None
        except BaseException:
            self.close()
            raise

    # -- plumbing
    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Ledger({str(self._path)!r}, origin={getattr(self, 'origin', None)!r})"

    def close(self) -> None:
        """Close the database connection (idempotent)."""
        if self._db is not None:
            self._db.close()
            self._db = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise InputError(f"{self._path}: ledger is closed")
        return self._db

    def _txn(self, mode: str) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        if self.read_only and mode != "DEFERRED":
            raise InputError(f"{self._path}: ledger is opened read-only")
        return transaction(self._conn(), mode)

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """Turn what a damaged file makes SQLite raise while reading (a malformed page,
        text that is not UTF-8) into the error :meth:`__init__` gives for it."""
        try:
            yield
        except _CORRUPT:
            raise SerializationError(f"{self._path}: not a readable covault ledger "
                                     "(truncated, corrupt or not SQLite)") from None

    # -- writing
    def append(self, kind: str, payload: Mapping[str, Any]) -> int:
        """Append one record and return its 0-based index.

        ``kind`` names the disclosure (``"masking.run"``, ``"psi.result"``...); ``payload``
        is a JSON-serialisable mapping with string keys. Each call is one durable
        transaction: batch with :meth:`append_many` for throughput.
        """
        return self.append_many([(kind, payload)])[0]

    def append_many(self, records: Iterable[tuple[str, Mapping[str, Any]]]) -> list[int]:
        """Append ``(kind, payload)`` records in one transaction; return their indices.

        All records share the batch's timestamp. If any record is invalid, or the
        iterable raises, nothing is appended.

        Raises
        ------
        InputError
            A kind or payload is invalid (the message names the record's position).
        IntegrityError
            The stored tree head does not match the records (the file was tampered with).
        """
        ts = utc_now()
        with self._txn("IMMEDIATE") as db:
            start, _, frontier = read_head(db)
            last = db.execute("SELECT max(idx) FROM records").fetchone()[0]
            if (last if last is not None else -1) != start - 1:
                raise _fail("tree head does not match the records")
            n, rows = start, []
            for item in records:
                kind, text, h = encode_record(n, ts, item)
                merkle.frontier_append(frontier, n, h)
                rows.append((n, ts, kind, text, h))
                n += 1
                if len(rows) >= _BATCH:
                    db.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?)", rows)
                    rows = []
            if n == start:
                return []
            db.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?)", rows)
            db.execute("UPDATE tree_head SET size = ?, root = ?, frontier = ?, ts = ? "
                       "WHERE id = 1", (n, merkle.frontier_root(frontier),
                                        b"".join(frontier), ts))
        return list(range(start, n))

    def checkpoint(self, signing_key: PrivateKeySource, *, key_name: str | None = None,
                   password: bytes | None = None, kek: KekSource = None) -> Checkpoint:
        """Sign the current tree head and record the checkpoint in the log.

        Parameters
        ----------
        signing_key:
            An Ed25519 private key, its 32 raw bytes, PEM bytes or a key file path.
        key_name:
            The signer's name on the signature line (default: the log's origin).
        password:
            For a password-encrypted PEM key.
        kek:
            For a key sealed under a key-encryption key (:mod:`privacy.sealed`).

        Warnings
        --------
        Store the returned checkpoint (``Checkpoint.save``) outside the database and its
        folder; a copy kept only in the ledger proves nothing against its administrator.
        """
        key = load_signing_key(signing_key, password=password, kek=kek)
        name = check_name(key_name if key_name is not None else self.origin, "key name")
        with self._txn("IMMEDIATE") as db:
            size, root, _ = read_head(db)
            unsigned = Checkpoint(self.origin, size, root, utc_now("seconds"))
            sig = sign_note(unsigned.body(), key, name)
            cp = Checkpoint(unsigned.origin, size, root, unsigned.time, (sig,))
            db.execute("INSERT INTO checkpoints VALUES (?, ?, ?, ?)",
                       (size, root, cp.time, cp.to_text()))
            db.execute("INSERT OR IGNORE INTO signers VALUES (?, ?, ?)",
                       (name, sig.key_id, raw_public_key(key.public_key())))
        return cp

    # -- reading
    @property
    def size(self) -> int:
        """Number of records (the current tree size)."""
        with self._reading():
            return read_head(self._conn())[0]

    def root(self) -> bytes:
        """The current tree head (RFC 6962 MTH of all records), from the stored state."""
        with self._reading():
            return read_head(self._conn())[1]

    def _check_size(self, value: int, current: int, what: str) -> None:
        if not isinstance(value, int) or not 0 <= value <= current:
            raise InputError(f"{what} {value!r} is outside 0..{current}")

    def root_at(self, size: int) -> bytes:
        """The tree head the log had at ``size`` records (O(size) hashing)."""
        with self._reading(), self._txn("DEFERRED") as db:
            current, root, _ = read_head(db)
            self._check_size(size, current, "size")
            return root if size == current else merkle.root_of(leaf_hashes(db, size))

    def get(self, index: int) -> LedgerRecord:
        """Return record ``index``; its leaf hash is re-checked against its content.

        Raises
        ------
        InputError
            No record has this index.
        IntegrityError
            The record's content does not match its stored leaf hash.
        """
        with self._reading():
            row = self._conn().execute("SELECT idx, ts, kind, payload, leaf_hash FROM records "
                                       "WHERE idx = ?", (index,)).fetchone()
        if row is None:
            raise InputError(f"no ledger record with index {index!r}")
        return decode_record(row)

    def records(self, kind: str | None = None, start: int = 0) -> Iterator[LedgerRecord]:
        """Iterate records in index order from ``start``, optionally of one ``kind``."""
        where = "idx >= ?" + ("" if kind is None else " AND kind = ?")
        while True:
            params: tuple[Any, ...] = (start,) if kind is None else (start, kind)
            with self._reading():
                rows = self._conn().execute(
                    f"SELECT idx, ts, kind, payload, leaf_hash FROM records WHERE {where} "
                    "ORDER BY idx LIMIT 1000", params).fetchall()
            for row in rows:
                yield decode_record(row)
            if len(rows) < 1000:
                return
            start = rows[-1][0] + 1

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """Audit path for record ``index`` in the tree of ``size`` records (default now).

        Check it with :func:`verify_inclusion` against ``root_at(size)``.
        """
        with self._reading(), self._txn("DEFERRED") as db:
            current = read_head(db)[0]
            size = current if size is None else size
            self._check_size(size, current, "size")
            if not isinstance(index, int) or not 0 <= index < size:
                raise InputError(f"index {index!r} is outside 0..{size - 1}")
            return merkle.inclusion_proof(index, leaf_hashes(db, size))

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """Proof that the tree of ``new_size`` records (default now) extends ``old_size``.

        Check it with :func:`verify_consistency`.
        """
        with self._reading(), self._txn("DEFERRED") as db:
            current = read_head(db)[0]
            new_size = current if new_size is None else new_size
            self._check_size(new_size, current, "new size")
            self._check_size(old_size, new_size, "old size")
            return merkle.consistency_proof(old_size, leaf_hashes(db, new_size))

    # -- verification
    def verify(self, checkpoint: Checkpoint | StrPath | None = None, *,
               public_key: PublicKeySource | None = None) -> VerifyReport:
        """Recompute every leaf and the tree; compare with the stored head and checkpoints.

        Parameters
        ----------
        checkpoint:
            A checkpoint kept outside the database (object, note text or file path). The
            log must extend it: its origin must be this log's, its signature must check,
            and the tree over its first ``size`` records must have its root (the
            condition a consistency proof from it to the current head attests).
        public_key:
            The key that must have signed ``checkpoint``. Default: the signer keys the
            ledger itself recorded, which guards against a stray or forged checkpoint
            but not against someone who can also rewrite the database (they can record
            their own key and sign with it); the report then has ``signer_pinned``
            false. ``covault ledger verify --checkpoint`` requires the key (or
            ``--unpinned``).

        Raises
        ------
        IntegrityError
            Any check failed; the message names the check, never the data.
        """
        cp = coerce_checkpoint(checkpoint) if checkpoint is not None else None
        try:
            with self._txn("DEFERRED") as db:
                return verify_database(db, self.origin, cp, public_key)
        except _CORRUPT:
            raise _fail("the database is unreadable or corrupt") from None
