"""Tamper-evident, append-only disclosure log: an RFC 6962 Merkle tree kept in SQLite.

Every covault capability records what it released (a masking run, a PSI result size, a
federated round, an alert triage) with :meth:`Ledger.append`. Each record is a leaf of
an RFC 6962 Merkle tree (:mod:`privacy.merkle`); the leaf bytes are the canonical JSON of
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

What :meth:`Ledger.verify` detects
----------------------------------
Without a checkpoint: an edited record (timestamp, kind or payload), a deleted, inserted
or reordered row, rows removed at the end (the stored tree head is longer than the
records), and records that contradict any checkpoint the log issued. With a checkpoint
kept outside the database, also a log that was rewritten *consistently* by someone with
write access (records, leaf hashes, tree head and stored checkpoints all recomputed):
only an external checkpoint (or a witness holding one) can catch that, which is why
checkpoints exist. Publish or hand them to the parties the disclosures concern.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import sqlite3
import stat
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from json.encoder import encode_basestring
from pathlib import Path
from typing import Any, TypeAlias

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from privacy import merkle
from privacy.atomic import atomic_output, atomic_write_text
from privacy.errors import InputError, IntegrityError, KeyfileError, SerializationError
from privacy.merkle import verify_consistency, verify_inclusion

__all__ = [
    "Ledger",
    "LedgerRecord",
    "Checkpoint",
    "NoteSignature",
    "VerifyReport",
    "canonical_json",
    "leaf_bytes",
    "generate_signing_key",
    "save_signing_key",
    "save_public_key",
    "load_signing_key",
    "load_public_key",
    "note_key_id",
    "sign_note",
    "verify_inclusion",
    "verify_consistency",
]

StrPath: TypeAlias = str | os.PathLike[str]
PrivateKeySource: TypeAlias = Ed25519PrivateKey | bytes | StrPath
PublicKeySource: TypeAlias = Ed25519PublicKey | Ed25519PrivateKey | bytes | StrPath

_FORMAT, _VERSION = "covault-ledger", "1"
_BATCH = 4096
_NO_CHANGE = ("CREATE TRIGGER {t}_no_{op} BEFORE {OP} ON {t} "
              "BEGIN SELECT RAISE(ABORT, 'ledger {t} are append-only'); END")
_SCHEMA = (
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
_sha256 = hashlib.sha256


# --------------------------------------------------------------------------- records


def canonical_json(value: Any) -> str:
    """Return the canonical JSON text of ``value``: sorted keys, no whitespace, no NaN.

    Non-ASCII characters are kept (the bytes hashed are its UTF-8 encoding). This is
    Python's ``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)``,
    not RFC 8785 (floats and the order of non-BMP keys may differ).
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def _leaf_text(index: int, ts: str, kind: str, payload_json: str) -> str:
    # Same text as canonical_json({"index":..,"kind":..,"payload":..,"ts":..}) when
    # payload_json is canonical, without parsing the payload again.
    return (f'{{"index":{index},"kind":{encode_basestring(kind)},'
            f'"payload":{payload_json},"ts":{encode_basestring(ts)}}}')


def leaf_bytes(index: int, ts: str, kind: str, payload: Mapping[str, Any]) -> bytes:
    """Return the bytes of leaf ``index``: canonical JSON of {index, ts, kind, payload}."""
    return _leaf_text(index, ts, kind, canonical_json(dict(payload))).encode("utf-8")


def _now(timespec: str = "microseconds") -> str:
    return datetime.now(timezone.utc).isoformat(timespec=timespec).replace("+00:00", "Z")


@dataclass(frozen=True)
class LedgerRecord:
    """One record of the log, as read back (its leaf hash already re-checked)."""

    index: int
    ts: str
    kind: str
    payload: Mapping[str, Any]
    leaf_hash: bytes

    def leaf_bytes(self) -> bytes:
        """The leaf bytes this record hashes to (``leaf_hash == merkle.leaf_hash(...)``)."""
        return leaf_bytes(self.index, self.ts, self.kind, self.payload)


@dataclass(frozen=True)
class VerifyReport:
    """What :meth:`Ledger.verify` checked: tree size and root, checkpoints compared."""

    origin: str
    size: int
    root: bytes
    stored_checkpoints: int
    checkpoint_size: int | None


def _fail(what: str) -> IntegrityError:
    return IntegrityError(f"ledger verification failed: {what}")


def _check_name(value: object, what: str) -> str:
    if (not isinstance(value, str) or not value or len(value) > 255 or "+" in value
            or any(c.isspace() or not c.isprintable() for c in value)):
        raise InputError(f"{what} must be 1-255 printable characters without spaces or "
                         f"'+', got {value!r}")
    return value


def _encode_record(index: int, ts: str, item: object) -> tuple[str, str, bytes]:
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        raise InputError(f"record {index}: expected a (kind, payload) tuple")
    kind, payload = item
    if not isinstance(kind, str) or not kind or len(kind) > 256:
        raise InputError(f"record {index}: kind must be a non-empty string (max 256)")
    if not isinstance(payload, Mapping) or not all(isinstance(k, str) for k in payload):
        raise InputError(f"record {index} ({kind!r}): payload must be a mapping with "
                         "string keys")
    try:
        text = canonical_json(payload if isinstance(payload, dict) else dict(payload))
        leaf = _leaf_text(index, ts, kind, text).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise InputError(f"record {index} ({kind!r}): payload is not JSON-serialisable: "
                         f"{exc}") from None
    return kind, text, _sha256(b"\x00" + leaf).digest()


# --------------------------------------------------------------------------- keys


def generate_signing_key() -> Ed25519PrivateKey:
    """Return a new Ed25519 checkpoint signing key."""
    return Ed25519PrivateKey.generate()


def save_signing_key(key: Ed25519PrivateKey, path: StrPath, *,
                     password: bytes | None = None) -> None:
    """Write ``key`` as a PKCS#8 PEM file readable by its owner only (mode 0600).

    Warnings
    --------
    Without ``password`` the key is stored unencrypted; protect the file accordingly.
    """
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password
        else serialization.NoEncryption())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            enc)
    with atomic_output(path, "wb") as fh:
        os.fchmod(fh.fileno(), stat.S_IRUSR | stat.S_IWUSR)
        fh.write(pem)


def save_public_key(key: Ed25519PrivateKey | Ed25519PublicKey, path: StrPath) -> None:
    """Write the public half of ``key`` as a SubjectPublicKeyInfo PEM file (mode 0644)."""
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    pem = pub.public_bytes(serialization.Encoding.PEM,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    with atomic_output(path, "wb") as fh:
        os.fchmod(fh.fileno(), 0o644)
        fh.write(pem)


def _read_key_file(source: StrPath) -> bytes:
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise KeyfileError(f"{source}: cannot read key file: {exc.strerror}") from None


def load_signing_key(source: PrivateKeySource, *,
                     password: bytes | None = None) -> Ed25519PrivateKey:
    """Return an Ed25519 private key from a key object, 32 raw bytes, PEM bytes or a file.

    Raises
    ------
    KeyfileError
        Unreadable file, wrong password, or not an Ed25519 private key.
    """
    if isinstance(source, Ed25519PrivateKey):
        return source
    where = "key bytes" if isinstance(source, bytes) else str(source)
    data = source if isinstance(source, bytes) else _read_key_file(source)
    if len(data) == 32:
        return Ed25519PrivateKey.from_private_bytes(data)
    try:
        key = serialization.load_pem_private_key(data, password=password)
    except (ValueError, TypeError):
        raise KeyfileError(f"{where}: not a readable PEM private key (or wrong password)"
                           ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyfileError(f"{where}: not an Ed25519 private key")
    return key


def load_public_key(source: PublicKeySource) -> Ed25519PublicKey:
    """Return an Ed25519 public key from a key object, 32 raw bytes, PEM bytes or a file.

    Raises
    ------
    KeyfileError
        Unreadable file or not an Ed25519 public key.
    """
    if isinstance(source, Ed25519PublicKey):
        return source
    if isinstance(source, Ed25519PrivateKey):
        return source.public_key()
    where = "key bytes" if isinstance(source, bytes) else str(source)
    data = source if isinstance(source, bytes) else _read_key_file(source)
    if len(data) == 32:
        return Ed25519PublicKey.from_public_bytes(data)
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        raise KeyfileError(f"{where}: not a readable PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyfileError(f"{where}: not an Ed25519 public key")
    return key


def _raw(pub: Ed25519PublicKey) -> bytes:
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def note_key_id(name: str, public_key: Ed25519PublicKey) -> bytes:
    """Signed-note key id: ``SHA-256(name || "\\n" || 0x01 || public key)[:4]``."""
    return _sha256(name.encode() + b"\n\x01" + _raw(public_key)).digest()[:4]


# --------------------------------------------------------------------------- checkpoints


@dataclass(frozen=True)
class NoteSignature:
    """One signature line of a signed note: key name, 4-byte key id, signature."""

    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        """The signature line: ``— <name> <base64(key id || signature)>`` and a newline."""
        return f"{_DASH} {self.name} {base64.b64encode(self.key_id + self.signature).decode()}\n"


def sign_note(text: str, signing_key: PrivateKeySource, name: str) -> NoteSignature:
    """Sign a note's text (C2SP signed-note, Ed25519) as the key called ``name``."""
    key = load_signing_key(signing_key)
    _check_name(name, "key name")
    return NoteSignature(name, note_key_id(name, key.public_key()),
                         key.sign(text.encode("utf-8")))


_SIZE_RE = re.compile(r"0|[1-9][0-9]{0,19}")
_DASH = "\u2014"


@dataclass(frozen=True)
class Checkpoint:
    """A signed tree head in the transparency-log checkpoint note format.

    Text form (each line ends with a newline)::

        <origin>
        <size>
        <base64 root>
        time <ISO-8601 UTC>

        — <key name> <base64(key id (4 bytes) || Ed25519 signature)>

    The signature covers the four body lines (origin, size, root, time), as in the
    C2SP signed-note and tlog-checkpoint specifications, so standard note verifiers can
    check it with the key's ``name+keyid+key`` form.
    """

    origin: str
    size: int
    root: bytes
    time: str
    signatures: tuple[NoteSignature, ...] = ()

    def body(self) -> str:
        """The signed text: origin, size, base64 root and time lines."""
        return (f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"
                f"time {self.time}\n")

    def to_text(self) -> str:
        """The whole note: body, a blank line, one line per signature."""
        return self.body() + "\n" + "".join(s.line() for s in self.signatures)

    @classmethod
    def from_text(cls, text: str | bytes) -> Checkpoint:
        """Parse a checkpoint note. Raises :class:`SerializationError` when malformed."""
        def bad(what: str) -> SerializationError:
            return SerializationError(f"malformed checkpoint: {what}")

        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError:
                raise bad("not UTF-8") from None
        if len(text) > 65536 or any(c < " " and c != "\n" for c in text):
            raise bad("too long or contains control characters")
        body, sep, sigs = text.partition("\n\n")
        lines = body.split("\n")
        if not sep or not sigs.endswith("\n") or len(lines) != 4:
            raise bad("expected 4 body lines, a blank line and signature lines")
        origin, size, root_b64, time_line = lines
        if not _SIZE_RE.fullmatch(size) or not time_line.startswith("time "):
            raise bad("bad size or time line")
        try:
            root = base64.b64decode(root_b64, validate=True)
            datetime.fromisoformat(time_line[5:].replace("Z", "+00:00"))
        except ValueError:
            raise bad("bad root or time") from None
        if len(root) != merkle.HASH_SIZE or base64.b64encode(root).decode() != root_b64:
            raise bad("root is not a base64 SHA-256 hash")
        signatures = []
        for line in sigs[:-1].split("\n"):
            parts = line.split(" ")
            if len(parts) != 3 or parts[0] != _DASH or not parts[1]:
                raise bad("bad signature line")
            try:
                blob = base64.b64decode(parts[2], validate=True)
            except ValueError:
                raise bad("bad signature encoding") from None
            if len(blob) < 5:
                raise bad("signature too short")
            signatures.append(NoteSignature(parts[1], blob[:4], blob[4:]))
        try:
            _check_name(origin, "origin")
        except InputError:
            raise bad("bad origin line") from None
        return cls(origin, int(size), root, time_line[5:], tuple(signatures))

    def verify(self, public_key: PublicKeySource, *, key_name: str | None = None) -> None:
        """Check that a signature line by ``public_key`` (and ``key_name``) signs the body.

        Raises
        ------
        IntegrityError
            No signature by this key, or the signature does not match the body.
        """
        pub = load_public_key(public_key)
        message = self.body().encode("utf-8")
        for sig in self.signatures:
            if key_name is not None and sig.name != key_name:
                continue
            if sig.key_id != note_key_id(sig.name, pub):
                continue
            try:
                pub.verify(sig.signature, message)
            except InvalidSignature:
                raise IntegrityError("checkpoint signature is invalid") from None
            return
        raise IntegrityError("checkpoint is not signed by this key")

    def save(self, path: StrPath) -> None:
        """Write the note to ``path`` atomically."""
        atomic_write_text(path, self.to_text())

    @classmethod
    def load(cls, path: StrPath) -> Checkpoint:
        """Read a checkpoint note from a file."""
        try:
            return cls.from_text(Path(path).read_bytes())
        except OSError as exc:
            raise InputError(f"{path}: cannot read checkpoint: {exc.strerror}") from None


def _coerce_checkpoint(value: Checkpoint | StrPath) -> Checkpoint:
    if isinstance(value, Checkpoint):
        return value
    if isinstance(value, str) and "\n" in value:
        return Checkpoint.from_text(value)
    return Checkpoint.load(value)


# --------------------------------------------------------------------------- the ledger


class Ledger:
    """An append-only disclosure log in one SQLite file.

    Parameters
    ----------
    path:
        The database file; created (with its folder) when missing.
    origin:
        The log's name, stored on creation and written into every checkpoint (e.g.
        ``"bank-a.example/disclosures"``). Default: the file name without suffix. When
        given for an existing ledger it must match the stored one.

    Raises
    ------
    SerializationError
        The file is not a covault ledger: another SQLite database (left unmodified), a
        truncated or corrupt file, an empty file, or an unknown ledger version.
    InputError
        ``origin`` is malformed or differs from the stored one; the path is a folder.

    Warnings
    --------
    A ``Ledger`` holds one SQLite connection: use it from one thread; open one per
    process. There is no API to edit or delete records. Keep checkpoints outside the
    database: only they catch a log rewritten consistently by someone with write access.
    """

    def __init__(self, path: StrPath, *, origin: str | None = None) -> None:
        self._path = Path(path)
        if self._path.is_dir():
            raise InputError(f"{path}: is a folder, not a ledger file")
        if self._path.exists() and self._path.stat().st_size == 0:
            raise SerializationError(f"{path}: empty file, not a covault ledger")
        self._path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(str(self._path), timeout=30.0, isolation_level=None)
        self._db: sqlite3.Connection | None = db
        try:
            self.origin = self._open(db, origin)
        except sqlite3.DatabaseError:
            self.close()
            raise SerializationError(f"{path}: not a readable covault ledger (truncated, corrupt "
                                     "or not SQLite)") from None
        except BaseException:
            self.close()
            raise

    def _open(self, db: sqlite3.Connection, origin: str | None) -> str:
        db.execute("PRAGMA busy_timeout = 30000")
        if not db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("BEGIN IMMEDIATE")
            try:
                if not db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                    name = origin if origin is not None else (
                        re.sub(r"[^A-Za-z0-9._/-]", "_", self._path.stem) or "ledger")
                    _check_name(name, "origin")
                    for statement in _SCHEMA:
                        db.execute(statement)
                    db.executemany("INSERT INTO meta VALUES (?, ?)", [
                        ("format", _FORMAT), ("version", _VERSION), ("origin", name),
                        ("created", _now())])
                    db.execute("INSERT INTO tree_head VALUES (1, 0, ?, x'', ?)",
                               (merkle.EMPTY_ROOT, _now()))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        try:
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.OperationalError:
            meta = {}
        if meta.get("format") != _FORMAT:
            raise SerializationError(f"{self._path}: not a covault ledger")
        if meta.get("version") != _VERSION:
            raise SerializationError(f"{self._path}: unsupported ledger version "
                                     f"{meta.get('version')!r} (expected {_VERSION})")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = FULL")
        if origin is not None and origin != meta["origin"]:
            raise InputError(f"{self._path}: ledger origin is {meta['origin']!r}, "
                             f"not {origin!r}")
        return str(meta["origin"])

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

    @contextlib.contextmanager
    def _txn(self, mode: str) -> Iterator[sqlite3.Connection]:
        db = self._conn()
        db.execute(f"BEGIN {mode}")
        try:
            yield db
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    @staticmethod
    def _head(db: sqlite3.Connection) -> tuple[int, bytes, list[bytes]]:
        row = db.execute("SELECT size, root, frontier FROM tree_head WHERE id = 1").fetchone()
        if row is None:
            raise _fail("tree head is missing")
        size, root, blob = row
        frontier = [blob[i:i + 32] for i in range(0, len(blob), 32)]
        if len(frontier) != bin(size).count("1") or len(blob) % 32:
            raise _fail("stored tree state is malformed")
        return int(size), bytes(root), frontier

    def _hashes(self, db: sqlite3.Connection, size: int) -> list[bytes]:
        rows = db.execute("SELECT leaf_hash FROM records WHERE idx < ? ORDER BY idx", (size,))
        hashes = [r[0] for r in rows]
        if len(hashes) != size:
            raise _fail("records are missing")
        return hashes

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
        ts = _now()
        with self._txn("IMMEDIATE") as db:
            start, _, frontier = self._head(db)
            last = db.execute("SELECT max(idx) FROM records").fetchone()[0]
            if (last if last is not None else -1) != start - 1:
                raise _fail("tree head does not match the records")
            n, rows = start, []
            for item in records:
                kind, text, h = _encode_record(n, ts, item)
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
                   password: bytes | None = None) -> Checkpoint:
        """Sign the current tree head and record the checkpoint in the log.

        Parameters
        ----------
        signing_key:
            An Ed25519 private key, its 32 raw bytes, PEM bytes or a PEM file path.
        key_name:
            The signer's name on the signature line (default: the log's origin).
        password:
            For an encrypted PEM key.

        Warnings
        --------
        Store the returned checkpoint (``Checkpoint.save``) outside the database and its
        folder; a copy kept only in the ledger proves nothing against its administrator.
        """
        key = load_signing_key(signing_key, password=password)
        name = _check_name(key_name if key_name is not None else self.origin, "key name")
        with self._txn("IMMEDIATE") as db:
            size, root, _ = self._head(db)
            unsigned = Checkpoint(self.origin, size, root, _now("seconds"))
            sig = sign_note(unsigned.body(), key, name)
            cp = Checkpoint(unsigned.origin, size, root, unsigned.time, (sig,))
            db.execute("INSERT INTO checkpoints VALUES (?, ?, ?, ?)",
                       (size, root, cp.time, cp.to_text()))
            db.execute("INSERT OR IGNORE INTO signers VALUES (?, ?, ?)",
                       (name, sig.key_id, _raw(key.public_key())))
        return cp

    # -- reading
    @property
    def size(self) -> int:
        """Number of records (the current tree size)."""
        return self._head(self._conn())[0]

    def root(self) -> bytes:
        """The current tree head (RFC 6962 MTH of all records), from the stored state."""
        return self._head(self._conn())[1]

    def _check_size(self, value: int, current: int, what: str) -> None:
        if not isinstance(value, int) or not 0 <= value <= current:
            raise InputError(f"{what} {value!r} is outside 0..{current}")

    def root_at(self, size: int) -> bytes:
        """The tree head the log had at ``size`` records (O(size) hashing)."""
        with self._txn("DEFERRED") as db:
            current, root, _ = self._head(db)
            self._check_size(size, current, "size")
            return root if size == current else merkle.root_of(self._hashes(db, size))

    def get(self, index: int) -> LedgerRecord:
        """Return record ``index``; its leaf hash is re-checked against its content.

        Raises
        ------
        InputError
            No record has this index.
        IntegrityError
            The record's content does not match its stored leaf hash.
        """
        row = self._conn().execute("SELECT idx, ts, kind, payload, leaf_hash FROM records "
                                   "WHERE idx = ?", (index,)).fetchone()
        if row is None:
            raise InputError(f"no ledger record with index {index!r}")
        return self._record(row)

    @staticmethod
    def _record(row: tuple[Any, ...]) -> LedgerRecord:
        idx, ts, kind, text, stored = row
        if (not isinstance(ts, str) or not isinstance(kind, str) or not isinstance(text, str)
                or _sha256(b"\x00" + _leaf_text(idx, ts, kind, text).encode()).digest()
                != stored):
            raise _fail("record content does not match its leaf hash")
        return LedgerRecord(idx, ts, kind, json.loads(text), bytes(stored))

    def records(self, kind: str | None = None, start: int = 0) -> Iterator[LedgerRecord]:
        """Iterate records in index order from ``start``, optionally of one ``kind``."""
        where = "idx >= ?" + ("" if kind is None else " AND kind = ?")
        while True:
            params: tuple[Any, ...] = (start,) if kind is None else (start, kind)
            rows = self._conn().execute(
                f"SELECT idx, ts, kind, payload, leaf_hash FROM records WHERE {where} "
                "ORDER BY idx LIMIT 1000", params).fetchall()
            for row in rows:
                yield self._record(row)
            if len(rows) < 1000:
                return
            start = rows[-1][0] + 1

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """Audit path for record ``index`` in the tree of ``size`` records (default now).

        Check it with :func:`verify_inclusion` against ``root_at(size)``.
        """
        with self._txn("DEFERRED") as db:
            current = self._head(db)[0]
            size = current if size is None else size
            self._check_size(size, current, "size")
            if not isinstance(index, int) or not 0 <= index < size:
                raise InputError(f"index {index!r} is outside 0..{size - 1}")
            return merkle.inclusion_proof(index, self._hashes(db, size))

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """Proof that the tree of ``new_size`` records (default now) extends ``old_size``.

        Check it with :func:`verify_consistency`.
        """
        with self._txn("DEFERRED") as db:
            current = self._head(db)[0]
            new_size = current if new_size is None else new_size
            self._check_size(new_size, current, "new size")
            self._check_size(old_size, new_size, "old size")
            return merkle.consistency_proof(old_size, self._hashes(db, new_size))

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
            but not against someone who can also rewrite the database.

        Raises
        ------
        IntegrityError
            Any check failed; the message names the check, never the data.
        """
        cp = _coerce_checkpoint(checkpoint) if checkpoint is not None else None
        try:
            with self._txn("DEFERRED") as db:
                return self._verify(db, cp, public_key)
        except sqlite3.DatabaseError:
            raise _fail("the database is unreadable or corrupt") from None

    def _verify(self, db: sqlite3.Connection, cp: Checkpoint | None,
                public_key: PublicKeySource | None) -> VerifyReport:
        size, root, frontier_stored = self._head(db)
        stored = db.execute("SELECT size, root, note FROM checkpoints").fetchall()
        try:
            signers = [load_public_key(bytes(r[0])) for r in
                       db.execute("SELECT public_key FROM signers").fetchall()]
        except (ValueError, TypeError):
            raise _fail("a stored signer key is malformed") from None
        targets = sorted({s for s, _, _ in stored} | ({cp.size} if cp else set()))
        roots: dict[int, bytes] = {0: merkle.EMPTY_ROOT}
        pending = iter(t for t in targets if t > 0)
        nxt = next(pending, -1)
        frontier: list[bytes] = []
        n = 0
        for idx, ts, kind, text, stored_hash in db.execute(
                "SELECT idx, ts, kind, payload, leaf_hash FROM records ORDER BY idx"):
            if idx != n:
                raise _fail("record indices are not contiguous")
            if not (isinstance(ts, str) and isinstance(kind, str) and isinstance(text, str)):
                raise _fail("record fields have the wrong type")
            h = _sha256(b"\x00" + _leaf_text(n, ts, kind, text).encode()).digest()
            if h != stored_hash:
                raise _fail("record content does not match its leaf hash")
            merkle.frontier_append(frontier, n, h)
            n += 1
            if n == nxt:
                roots[n] = merkle.frontier_root(frontier)
                nxt = next(pending, -1)
        if n < size:
            raise _fail("records are missing at the end of the log")
        if n > size:
            raise _fail("the log has records beyond its tree head")
        if frontier != frontier_stored or merkle.frontier_root(frontier) != root:
            raise _fail("tree head does not match the records")
        for s, r, note in stored:
            if s > n or roots.get(s) != r:
                raise _fail("the log does not extend a checkpoint it issued")
            try:
                issued = Checkpoint.from_text(note)
            except SerializationError:
                raise _fail("a stored checkpoint is malformed") from None
            if (issued.origin, issued.size, issued.root) != (self.origin, s, r):
                raise _fail("a stored checkpoint does not match its row")
            _check_signed(issued, signers, "a stored checkpoint's signature is invalid")
        if cp is not None:
            if cp.origin != self.origin:
                raise _fail("the checkpoint is for a different log")
            if public_key is not None:
                keys = [load_public_key(public_key)]
            elif signers:
                keys = signers
            else:
                raise InputError("no public key to check the checkpoint's signature: "
                                 "pass public_key")
            _check_signed(cp, keys, "the checkpoint's signature is invalid or from "
                                    "another key")
            if cp.size > n:
                raise _fail("the log is shorter than the checkpoint (truncated)")
            if roots[cp.size] != cp.root:
                raise _fail("the log is not consistent with the checkpoint")
        return VerifyReport(self.origin, n, root, len(stored), cp.size if cp else None)


def _check_signed(cp: Checkpoint, keys: list[Ed25519PublicKey], what: str) -> None:
    for key in keys:
        with contextlib.suppress(IntegrityError):
            cp.verify(key)
            return
    raise _fail(what)
