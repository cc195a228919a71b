"""Local accounts and sessions of the auditor console.

Accounts live in a SQLite file of mode 0600 beside the audit database (``audit.db`` ->
``audit.users.db``), managed from the command line (``covault audit users ...``).
Passwords are hashed with scrypt (``cryptography``; N = 2**15, r = 8, p = 1, 16-byte
salt); the parameters are stored with each hash, so they can be raised later.

Sessions are server-side: the browser holds a random 256-bit id, the file holds only its
SHA-256, the user, a per-session CSRF token and two times. A session ends on logout,
after :data:`IDLE_SECONDS` without a request, after :data:`MAX_SECONDS` in all, and when
its user's password or role changes or the user is removed.

Warnings
--------
Whoever can write this file (or the audit database) can give themselves any role: keep
both readable and writable by the console's operator only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from privacy.errors import InputError

__all__ = ["Accounts", "Session", "ROLES", "users_path_for", "MIN_PASSWORD",
           "IDLE_SECONDS", "MAX_SECONDS", "MAX_FAILURES", "LOCK_SECONDS"]

#: Roles an account may have (see :mod:`covault.web.duties`).
ROLES = ("auditor", "reviewer")
MIN_PASSWORD = 12
IDLE_SECONDS = 30 * 60
MAX_SECONDS = 12 * 3600
#: Failed logins in a row that lock an account for :data:`LOCK_SECONDS`.
MAX_FAILURES = 5
LOCK_SECONDS = 5 * 60
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_SCRYPT = (2**15, 8, 1)
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS users (name TEXT PRIMARY KEY, role TEXT NOT NULL, "
    "pw TEXT NOT NULL, created REAL NOT NULL, failed INTEGER NOT NULL DEFAULT 0, "
    "locked_until REAL NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS sessions (sid TEXT PRIMARY KEY, name TEXT NOT NULL, "
    "csrf TEXT NOT NULL, created REAL NOT NULL, seen REAL NOT NULL)",
)


def users_path_for(db_path: str | os.PathLike[str]) -> Path:
    """The accounts file of an audit database: ``audit.db`` -> ``audit.users.db``."""
    p = Path(db_path)
    return p.with_name(f"{p.stem}.users{p.suffix or '.db'}")


def _b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def _unb64(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$hash`` for ``password``."""
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    n, r, p = _SCRYPT
    salt = os.urandom(16)
    key = Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(password.encode("utf-8"))
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(key)}"


def check_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches the ``stored`` hash (constant-time comparison)."""
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    try:
        kind, n, r, p, salt, key = stored.split("$")
        if kind != "scrypt":
            return False
        got = Scrypt(salt=_unb64(salt), length=32, n=int(n), r=int(r), p=int(p)).derive(
            password.encode("utf-8"))
    except ValueError:
        return False
    return hmac.compare_digest(got, _unb64(key))


#: Checked against when the user does not exist, so a missing name costs the same time.
_DUMMY = "scrypt$32768$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"


@dataclass(frozen=True)
class Session:
    """A logged-in user: name, role (read afresh on every request) and CSRF token."""

    name: str
    role: str
    csrf: str


def _sid_hash(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


class Accounts:
    """The accounts file.

    Parameters
    ----------
    path:
        The SQLite file; created (mode 0600) when missing unless ``create`` is false.
    """

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True) -> None:
        self.path = Path(path)
        if not self.path.exists():
            if not create:
                raise InputError(f"{path}: no accounts file (create a user with: covault "
                                 "audit users add NAME --role auditor --db ...)")
            from privacy.ledger.store import create_private

            self.path.parent.mkdir(parents=True, exist_ok=True)
            create_private(self.path)
        try:
            self.db = sqlite3.connect(str(self.path), timeout=30.0, isolation_level=None,
                                      check_same_thread=False)
            self.db.execute("PRAGMA journal_mode = WAL")
            for stmt in _SCHEMA:
                self.db.execute(stmt)
        except sqlite3.DatabaseError:
            raise InputError(f"{path}: not a covault accounts file") from None

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Accounts:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _txn(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    # ------------------------------------------------------------------ users
    @staticmethod
    def _check(name: str, role: str | None = None, password: str | None = None) -> None:
        if not _NAME.match(name):
            raise InputError(f"user name {name!r}: expected 1-64 letters, digits, '.', '_', "
                             "'@' or '-', starting with a letter or digit")
        if role is not None and role not in ROLES:
            raise InputError(f"role {role!r}: expected one of {', '.join(ROLES)}")
        if password is not None and len(password) < MIN_PASSWORD:
            raise InputError(f"password: expected at least {MIN_PASSWORD} characters")

    def add(self, name: str, role: str, password: str) -> None:
        """Create a user. Raises :class:`InputError` if it exists or an argument is bad."""
        self._check(name, role, password)
        pw = hash_password(password)
        with self._txn() as db:
            if db.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
                raise InputError(f"user {name!r} exists (change it with: covault audit "
                                 "users passwd / role)")
            db.execute("INSERT INTO users (name, role, pw, created) VALUES (?,?,?,?)",
                       (name, role, pw, time.time()))

    def _must_exist(self, db: sqlite3.Connection, name: str) -> None:
        if not db.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
            raise InputError(f"no user {name!r}")

    def set_password(self, name: str, password: str) -> None:
        """Change a password; ends the user's sessions and lifts a lock."""
        self._check(name, None, password)
        pw = hash_password(password)
        with self._txn() as db:
            self._must_exist(db, name)
            db.execute("UPDATE users SET pw = ?, failed = 0, locked_until = 0 WHERE name = ?",
                       (pw, name))
            db.execute("DELETE FROM sessions WHERE name = ?", (name,))

    def set_role(self, name: str, role: str) -> None:
        """Change a role; ends the user's sessions."""
        self._check(name, role)
        with self._txn() as db:
            self._must_exist(db, name)
            db.execute("UPDATE users SET role = ? WHERE name = ?", (role, name))
            db.execute("DELETE FROM sessions WHERE name = ?", (name,))

    def remove(self, name: str) -> None:
        """Remove a user and end their sessions (their ledgered actions stay)."""
        with self._txn() as db:
            self._must_exist(db, name)
            db.execute("DELETE FROM users WHERE name = ?", (name,))
            db.execute("DELETE FROM sessions WHERE name = ?", (name,))

    def users(self) -> list[dict[str, Any]]:
        """Every user: name, role, created (epoch seconds), locked (bool)."""
        now = time.time()
        return [{"name": n, "role": r, "created": c, "locked": lu > now}
                for n, r, c, lu in self.db.execute(
                    "SELECT name, role, created, locked_until FROM users ORDER BY name")]

    # ------------------------------------------------------------------ login
    def authenticate(self, name: str, password: str) -> str | None:
        """The user's role if ``password`` is right and the account is not locked; else
        None (the cause is not told). :data:`MAX_FAILURES` failures in a row lock the
        account for :data:`LOCK_SECONDS`."""
        row = self.db.execute("SELECT pw, role, locked_until FROM users WHERE name = ?",
                              (name,)).fetchone()
        ok = check_password(password, row[0] if row else _DUMMY)
        if row is None:
            return None
        now = time.time()
        if row[2] > now:
            return None
        with self._txn() as db:
            if ok:
                db.execute("UPDATE users SET failed = 0 WHERE name = ?", (name,))
                return str(row[1])
            db.execute("UPDATE users SET failed = failed + 1 WHERE name = ?", (name,))
            db.execute("UPDATE users SET locked_until = ?, failed = 0 WHERE name = ? "
                       "AND failed >= ?", (now + LOCK_SECONDS, name, MAX_FAILURES))
        return None

    def start_session(self, name: str) -> str:
        """A new session for ``name``; returns the id the browser keeps."""
        sid = secrets.token_urlsafe(32)
        now = time.time()
        with self._txn() as db:
            db.execute("DELETE FROM sessions WHERE seen < ? OR created < ?",
                       (now - IDLE_SECONDS, now - MAX_SECONDS))
            db.execute("INSERT INTO sessions VALUES (?,?,?,?,?)",
                       (_sid_hash(sid), name, secrets.token_urlsafe(32), now, now))
        return sid

    def session(self, sid: str | None) -> Session | None:
        """The live session with this id, or None (expired, ended, or no such id)."""
        if not sid or len(sid) > 128:
            return None
        h = _sid_hash(sid)
        row = self.db.execute("SELECT s.name, u.role, s.csrf, s.created, s.seen FROM sessions s "
                              "JOIN users u ON u.name = s.name WHERE s.sid = ?",
                              (h,)).fetchone()
        if row is None:
            return None
        now = time.time()
        if row[4] < now - IDLE_SECONDS or row[3] < now - MAX_SECONDS:
            self.db.execute("DELETE FROM sessions WHERE sid = ?", (h,))
            return None
        if now - row[4] > 30:
            self.db.execute("UPDATE sessions SET seen = ? WHERE sid = ?", (now, h))
        return Session(row[0], row[1], row[2])

    def end_session(self, sid: str | None) -> None:
        if sid:
            self.db.execute("DELETE FROM sessions WHERE sid = ?", (_sid_hash(sid),))
