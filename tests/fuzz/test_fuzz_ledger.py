"""Fuzz ledgers (SQLite files, ``privacy/ledger/``), checkpoint notes
(``privacy/ledger/checkpoint.py``) and checkpoint key files.

Ledger inputs: byte-level mutations of a valid ledger file (bit flips, truncation,
overwrites, in pages SQLite may or may not read) and SQL-level mutations an attacker
with write access can make (triggers dropped, then one cell of any table set to a
value of another type, a boundary number, a huge text or blob, or a row deleted or
added).

Nothing accepted wrongly:

* a ledger that verifies against the external checkpoint (pinned key) holds exactly
  the original records; one that verifies on its own (no external checkpoint) holds
  the original records and stored checkpoints;
* a mutated checkpoint note that verifies under the key has the original body (origin,
  size, root, time).
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from covault.cli import main
from privacy.ledger import Ledger
from privacy.ledger.checkpoint import (
    Checkpoint,
    generate_signing_key,
    load_public_key,
    save_public_key,
)

from ._fuzz import (
    HUGE_INT,
    World,
    cli,
    fuzz_settings,
    mutate_bytes,
    mutate_text,
    note,
    outcome,
    random_bytes,
)

TABLES = {"records": ["idx", "ts", "kind", "payload", "leaf_hash"],
          "tree_head": ["id", "size", "root", "frontier", "ts"],
          "checkpoints": ["size", "root", "time", "note"],
          "signers": ["name", "key_id", "public_key"],
          "meta": ["key", "value"]}


def _content(ledger: Ledger) -> list[tuple[Any, ...]]:
    return [(r.index, r.ts, r.kind, r.payload) for r in ledger.records()]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    d = tmp_path_factory.mktemp("fuzz-ledger")
    key = generate_signing_key()
    save_public_key(key, d / "pub.pem")
    with Ledger(d / "good.db", origin="bank-a.example/disclosures") as ledger:
        for i in range(4):
            ledger.append("mask.apply", {"rows": i, "policy": "p" * i, "who": "张三"})
        ledger.checkpoint(key)
        ledger.append("psi.serve", {"outcome": "ok", "size": 2})
        ledger.append("he.decrypt", {"parties": 3})
        cp = ledger.checkpoint(key)
    (d / "cp.txt").write_text(cp.to_text())
    with Ledger(d / "good.db", read_only=True) as ledger:
        content = _content(ledger)
        stored = ledger._db.execute("SELECT size, root, note FROM checkpoints").fetchall()  # type: ignore[union-attr]
    return World(dir=d, key=key, pub=key.public_key(), cp=cp, cp_text=cp.to_text().encode(),
                 db=(d / "good.db").read_bytes(), content=content, stored=stored)


def _stored(ledger: Ledger) -> list[tuple[Any, ...]] | None:
    """The stored checkpoints (test access to the database; ``None`` if unreadable)."""
    try:
        return ledger._db.execute(  # type: ignore[union-attr, no-any-return]
            "SELECT size, root, note FROM checkpoints").fetchall()
    except (sqlite3.DatabaseError, UnicodeDecodeError):
        return None


def _check(world: World, path: Path) -> None:
    def open_and_verify() -> tuple[Any, Any, list[Any], list[Any]]:
        with Ledger(path, read_only=True) as ledger:
            pinned = outcome("ledger: verify (pinned checkpoint)",
                             lambda: ledger.verify(world["cp"], public_key=world["pub"]))
            alone = outcome("ledger: verify (no checkpoint)", lambda: ledger.verify())
            content = outcome("ledger: read records", lambda: _content(ledger))
            stored = _stored(ledger) if not isinstance(content, Exception) else []
            return pinned, alone, content, stored

    got = outcome("ledger (SQLite file)", open_and_verify)
    if isinstance(got, Exception):
        return
    pinned, alone, content, stored = got
    if not isinstance(pinned, Exception):
        assert content == world["content"], "a changed ledger verified against its checkpoint"
        note("ledger (SQLite file)", "verified with content unchanged")
    if not isinstance(alone, Exception):
        # rows of the checkpoints table may be deleted unseen (SECURITY.md §3), never
        # altered or added
        assert content == world["content"] and set(stored or ()) <= set(world["stored"]), \
            "a changed ledger verified"


def test_valid_ledger(world: World) -> None:
    path: Path = world["dir"] / "copy.db"
    path.write_bytes(world["db"])
    _check(world, path)
    with Ledger(path, read_only=True) as ledger:
        assert ledger.verify(world["cp"], public_key=world["pub"]).size == 6


@fuzz_settings(25)
@given(random_bytes())
@example(b"SQLite format 3\x00")
@example(b"SQLite format 3\x00" + b"\xff" * 84)
def test_random_bytes(world: World, blob: bytes) -> None:
    path: Path = world["dir"] / "random.db"
    path.write_bytes(blob)
    _check(world, path)


@fuzz_settings(60)
@given(st.data())
def test_file_mutations(world: World, data: st.DataObject) -> None:
    path: Path = world["dir"] / "mutated.db"
    path.write_bytes(mutate_bytes(data, world["db"]))
    _check(world, path)


_CELL_VALUES = st.one_of(
    st.none(), st.integers(-(2**63), 2**63 - 1), st.sampled_from([0, -1, 1, 6, 7, 2**62]),
    st.floats(allow_nan=False), st.text(max_size=20), st.binary(max_size=40),
    st.sampled_from(["6", HUGE_INT, "x" * 100_000, "[" * 5000, "\x00", "\ud800".encode(
        "utf-8", "surrogatepass").decode("utf-8", "replace")]),
    st.binary(min_size=32, max_size=32), st.binary(min_size=64, max_size=64))


@fuzz_settings(80)
@given(st.data())
def test_sql_mutations(world: World, data: st.DataObject) -> None:
    path: Path = world["dir"] / "sql.db"
    path.write_bytes(world["db"])
    db = sqlite3.connect(path)
    try:
        for (trigger,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"
                                     ).fetchall():
            db.execute(f"DROP TRIGGER {trigger}")
        table = data.draw(st.sampled_from(sorted(TABLES)), label="table")
        key = "key" if table == "meta" else "rowid"  # meta is a WITHOUT ROWID table
        rows = db.execute(f"SELECT {key} FROM {table}").fetchall()
        op = data.draw(st.sampled_from(["update", "update", "update", "delete", "insert"]))
        try:
            if op == "insert" or not rows:
                cols = TABLES[table]
                values = [data.draw(_CELL_VALUES, label=c) for c in cols]
                db.execute(f"INSERT INTO {table} VALUES ({','.join('?' * len(cols))})", values)
            elif op == "delete":
                (rowid,) = data.draw(st.sampled_from(rows), label="row")
                db.execute(f"DELETE FROM {table} WHERE {key} = ?", (rowid,))
            else:
                (rowid,) = data.draw(st.sampled_from(rows), label="row")
                col = data.draw(st.sampled_from(TABLES[table]), label="column")
                db.execute(f"UPDATE {table} SET {col} = ? WHERE {key} = ?",
                           (data.draw(_CELL_VALUES, label="value"), rowid))
        except sqlite3.IntegrityError:
            pass  # NOT NULL, a type or a primary key refused by SQLite: the file is unchanged
        db.commit()
    finally:
        db.close()
    _check(world, path)


# --------------------------------------------------------------------------- checkpoints
def _check_note(world: World, blob: bytes) -> None:
    got = outcome("checkpoint note", lambda: Checkpoint.from_text(blob))
    if isinstance(got, Checkpoint):
        signed = outcome("checkpoint note: signature", lambda: got.verify(world["pub"]))
        if not isinstance(signed, Exception):
            cp = world["cp"]
            assert (got.origin, got.size, got.root, got.time) == (cp.origin, cp.size, cp.root,
                                                                  cp.time)
            note("checkpoint note", "signature valid with body unchanged")


@fuzz_settings(40)
@given(random_bytes())
@example(b"o\n99999999999999999999\n" + b"A" * 44 + b"\ntime 2026-01-01T00:00:00Z\n\n")
def test_checkpoint_random(world: World, blob: bytes) -> None:
    _check_note(world, blob)


@fuzz_settings(100)
@given(st.data())
def test_checkpoint_mutations(world: World, data: st.DataObject) -> None:
    _check_note(world, mutate_text(data, world["cp_text"], sep=b" "))


@fuzz_settings(40)
@given(st.one_of(random_bytes(), st.data()))
def test_public_key_files(world: World, blob: Any) -> None:
    pem = (world["dir"] / "pub.pem").read_bytes()
    if not isinstance(blob, bytes):
        blob = mutate_bytes(blob, pem)
    got = outcome("checkpoint public key (PEM)", lambda: load_public_key(blob))
    if not isinstance(got, Exception):
        outcome("checkpoint note: signature", lambda: world["cp"].verify(got))


# --------------------------------------------------------------------------- the CLI
@fuzz_settings(15, deadline_s=10)
@given(st.sampled_from(["db", "checkpoint"]), st.data())
def test_cli_verify_and_show(world: World, which: str, data: st.DataObject) -> None:
    d: Path = world["dir"]
    db, cp = d / "cli.db", d / "cli-cp.txt"
    shutil.copyfile(d / "good.db", db)
    cp.write_bytes(world["cp_text"])
    if which == "db":
        db.write_bytes(mutate_bytes(data, world["db"]))
    else:
        cp.write_bytes(mutate_text(data, world["cp_text"], sep=b" "))
    res = cli("ledger", main, ["ledger", "verify", str(db), "--checkpoint", str(cp),
                               "--public-key", str(d / "pub.pem")])
    if res.exit_code == 0:
        with Ledger(db, read_only=True) as ledger:
            assert _content(ledger) == world["content"]
    cli("ledger", main, ["ledger", "show", str(db)])


# --------------------------------------------------------------------------- found
def _tampered(world: World, sql: str, params: tuple[Any, ...] = ()) -> Path:
    path: Path = world["dir"] / "found.db"
    path.write_bytes(world["db"])
    db = sqlite3.connect(path)
    for (trigger,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"
                                 ).fetchall():
        db.execute(f"DROP TRIGGER {trigger}")
    db.execute(sql, params)
    db.commit()
    db.close()
    return path


@pytest.mark.parametrize("sql,params", [
    ("UPDATE checkpoints SET size = ?", ("",)),
    ("UPDATE signers SET public_key = ?", (25_300_041_728,)),
    ("UPDATE signers SET public_key = ?", (2**63 - 1,)),
    ("UPDATE signers SET public_key = ?", ("x",)),
])
def test_found_malformed_rows_fail_verification(world: World, sql: str,
                                                params: tuple[Any, ...]) -> None:
    """Found by this campaign: a stored checkpoint whose size is text raised
    ``TypeError`` in ``verify``; a signer key stored as an integer ``n`` made ``verify``
    call ``bytes(n)``, allocating ``n`` bytes (``MemoryError`` or ``OverflowError``,
    or gigabytes of memory). Both now fail verification (exit 1) at once."""
    from privacy.errors import IntegrityError

    path = _tampered(world, sql, params)
    with Ledger(path, read_only=True) as ledger, pytest.raises(IntegrityError):
        ledger.verify()
    res = cli("ledger", main, ["ledger", "verify", str(path)])
    assert res.exit_code == 1


def test_found_damaged_pages_are_serialization_errors(world: World) -> None:
    """Found by this campaign: a ledger whose header and schema pages are intact but whose
    record pages are damaged opened, and then ``records()``/``get()``/proofs raised
    ``sqlite3.DatabaseError`` (and text that is not UTF-8, ``UnicodeDecodeError``):
    tracebacks from ``ledger show`` and ``ledger prove``. Each read now raises the
    ``SerializationError`` opening gives (exit 2); ``verify`` fails (exit 1)."""
    from privacy.errors import SerializationError

    blob = bytearray(world["db"])
    page = 4096
    for at in range(2 * page, len(blob), page):  # every page after the schema
        blob[at] ^= 0xFF
    path: Path = world["dir"] / "pages.db"
    path.write_bytes(bytes(blob))
    try:
        ledger = Ledger(path, read_only=True)
    except SerializationError:
        pytest.skip("this damage is caught on opening")
    with ledger:
        with pytest.raises(SerializationError, match="not a readable covault ledger"):
            list(ledger.records())
    assert cli("ledger", main, ["ledger", "show", str(path)]).exit_code == 2


def test_found_unknown_key_algorithm_is_a_keyfile_error(world: World) -> None:
    """Found by this campaign: a PEM public key with one bit flipped in its algorithm
    identifier raised ``cryptography.exceptions.UnsupportedAlgorithm`` out of
    ``load_public_key`` (``ledger verify --public-key``); now a ``KeyfileError``."""
    from privacy.errors import KeyfileError

    pem = bytearray((world["dir"] / "pub.pem").read_bytes())
    pem[35] ^= 1
    with pytest.raises(KeyfileError, match="not a readable PEM public key"):
        load_public_key(bytes(pem))


def test_found_ledger_without_origin_is_a_serialization_error(world: World) -> None:
    """Found by this campaign: a ``meta`` table without its ``origin`` row raised
    ``KeyError`` when the ledger was opened; now "not a covault ledger" (exit 2)."""
    from privacy.errors import SerializationError

    path = _tampered(world, "DELETE FROM meta WHERE key = 'origin'")
    with pytest.raises(SerializationError, match="no origin"):
        Ledger(path, read_only=True)
    assert cli("ledger", main, ["ledger", "show", str(path)]).exit_code == 2
