"""`covault ledger` from the command line: show, verify, checkpoint, keygen, prove."""

from __future__ import annotations

import json
import sqlite3
import stat
import tempfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st

from covault.cli import main
from privacy.ledger import Checkpoint, Ledger, leaf_bytes, load_public_key, merkle

ORIGIN = "bank-a.example/disclosures"
PASSWORD_ENV = {"LEDGER_KEY_PASSWORD": "correct horse battery staple"}


# private keys are sealed under a KEK (issue 11, finding 5): a fixed test key file
KEK_ENV = {"COVAULT_KEK_FILE": str(Path(__file__).resolve().parent / "vectors" / "test.kek")}


def run(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, ["ledger", *map(str, args)], env={**KEK_ENV, **(env or {})})


def make(path: Path, n: int = 7) -> Path:
    with Ledger(path, origin=ORIGIN) as lg:
        lg.append_many([("masking.run" if i % 3 else "psi.result",
                         {"run": i, "rows": 100 + i, "note": "客户 " * (i % 2)})
                        for i in range(n)])
    return path


def drop_triggers(db: sqlite3.Connection) -> None:
    for name in ("records_no_update", "records_no_delete", "checkpoints_no_delete"):
        db.execute(f"DROP TRIGGER IF EXISTS {name}")


def tamper_payload(path: Path, index: int) -> None:
    db = sqlite3.connect(path)
    drop_triggers(db)
    db.execute("UPDATE records SET payload = ? WHERE idx = ?", ('{"rows":0,"run":-1}', index))
    db.commit()
    db.close()


def rewrite_consistently(path: Path, index: int) -> None:
    """Edit a record and recompute leaf hashes and tree head; drop stored checkpoints."""
    tamper_payload(path, index)
    db = sqlite3.connect(path)
    drop_triggers(db)
    frontier: list[bytes] = []
    rows = db.execute("SELECT idx, ts, kind, payload FROM records ORDER BY idx").fetchall()
    for n, (idx, ts, kind, payload) in enumerate(rows):
        h = merkle.leaf_hash(leaf_bytes(idx, ts, kind, json.loads(payload)))
        db.execute("UPDATE records SET leaf_hash = ? WHERE idx = ?", (h, idx))
        merkle.frontier_append(frontier, n, h)
    db.execute("UPDATE tree_head SET size = ?, root = ?, frontier = ?",
               (len(rows), merkle.frontier_root(frontier), b"".join(frontier)))
    db.execute("DELETE FROM checkpoints")
    db.commit()
    db.close()


@pytest.fixture()
def ledger_db(tmp_path: Path) -> Path:
    return make(tmp_path / "l.db")


@pytest.fixture()
def keypair(tmp_path: Path) -> tuple[Path, Path]:
    key, pub = tmp_path / "k.pem", tmp_path / "k.pub"
    r = run("keygen", "-o", key, "--public-out", pub)
    assert r.exit_code == 0, r.output
    return key, pub


# ----------------------------------------------------------------- help


@pytest.mark.parametrize("command", ["", "show", "verify", "checkpoint", "keygen", "prove"])
def test_help(command: str) -> None:
    r = run(*([command] if command else []), "--help")
    assert r.exit_code == 0, r.output
    assert "Usage:" in r.output


def test_group_is_registered() -> None:
    r = CliRunner().invoke(main, ["--help"])
    assert r.exit_code == 0 and "ledger" in r.output


# ----------------------------------------------------------------- show


def test_show_text(ledger_db: Path) -> None:
    r = run("show", ledger_db)
    assert r.exit_code == 0, r.output
    assert ORIGIN in r.output and "masking.run" in r.output and "psi.result" in r.output


def test_show_json_kind_last(ledger_db: Path) -> None:
    r = run("show", ledger_db, "--kind", "masking.run", "--last", "2", "--format", "json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["origin"] == ORIGIN and doc["size"] == 7
    assert [x["index"] for x in doc["records"]] == [4, 5]
    assert all(x["kind"] == "masking.run" for x in doc["records"])
    assert doc["records"][0]["payload"] == {"run": 4, "rows": 104, "note": ""}


def test_show_last_without_kind(ledger_db: Path) -> None:
    r = run("show", ledger_db, "-n", "3", "--format", "json")
    assert [x["index"] for x in json.loads(r.output)["records"]] == [4, 5, 6]
    r = run("show", ledger_db, "-n", "100", "--format", "json")
    assert len(json.loads(r.output)["records"]) == 7


def test_show_tampered_record_is_a_finding(ledger_db: Path) -> None:
    tamper_payload(ledger_db, 2)
    r = run("show", ledger_db)
    assert r.exit_code == 1, r.output


@settings(max_examples=15, deadline=None)
@given(st.lists(st.dictionaries(st.text(max_size=8),
                                st.one_of(st.integers(), st.text(max_size=12), st.none(),
                                          st.booleans()), max_size=4),
                min_size=1, max_size=5))
def test_show_json_round_trips_payloads(payloads: list[dict[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.db"
        with Ledger(path, origin=ORIGIN) as lg:
            lg.append_many([("k", p) for p in payloads])
        r = run("show", path, "--format", "json")
    assert r.exit_code == 0, r.output
    assert [x["payload"] for x in json.loads(r.output)["records"]] == payloads


# ----------------------------------------------------------------- verify


def test_verify_ok(ledger_db: Path) -> None:
    r = run("verify", ledger_db)
    assert r.exit_code == 0, r.output
    assert "7 records" in r.output
    with Ledger(ledger_db) as lg:
        root = lg.root()
    assert root.hex() in r.output
    r = run("verify", ledger_db, "--format", "json")
    doc = json.loads(r.output)
    assert doc["verified"] is True and doc["size"] == 7 and doc["root"] == root.hex()
    assert doc["checkpoint_size"] is None


def test_verify_tampered_exits_1(ledger_db: Path) -> None:
    tamper_payload(ledger_db, 3)
    r = run("verify", ledger_db)
    assert r.exit_code == 1, r.output
    assert "verification failed" in r.output
    r = run("verify", ledger_db, "--format", "json")
    assert r.exit_code == 1
    doc = json.loads(r.output.splitlines()[0])
    assert doc["verified"] is False and "verification failed" in doc["error"]


def test_verify_deleted_row_exits_1(ledger_db: Path) -> None:
    db = sqlite3.connect(ledger_db)
    drop_triggers(db)
    db.execute("DELETE FROM records WHERE idx = 6")
    db.commit()
    db.close()
    assert run("verify", ledger_db).exit_code == 1


# ----------------------------------------------------------------- keygen / checkpoint


def test_keygen_modes_and_refuses_overwrite(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    key, pub = keypair
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert b"covault-sealed-key" in key.read_bytes() and b"PUBLIC KEY" in pub.read_bytes()
    assert b"PRIVATE KEY" not in key.read_bytes()  # sealed under the KEK (issue 11, 5)
    load_public_key(pub)
    before = key.read_bytes()
    r = run("keygen", "-o", key)
    assert r.exit_code == 2 and "exists" in r.output
    assert key.read_bytes() == before
    r = run("keygen", "-o", key, "--force", "--format", "json")
    assert r.exit_code == 0 and key.read_bytes() != before
    assert json.loads(r.output)["encrypted"] is True
    r = run("keygen", "-o", key, "--force", "--unencrypted-key", "--format", "json")
    assert r.exit_code == 0 and b"PRIVATE KEY" in key.read_bytes()
    assert json.loads(r.stdout)["encrypted"] is False and "unencrypted" in r.stderr


def test_checkpoint_then_verify(ledger_db: Path, keypair: tuple[Path, Path],
                                tmp_path: Path) -> None:
    key, pub = keypair
    cp_path = tmp_path / "cp.txt"
    r = run("checkpoint", ledger_db, "--key", key, "-o", cp_path, "--format", "json")
    assert r.exit_code == 0, r.output
    cp = Checkpoint.load(cp_path)
    cp.verify(load_public_key(pub))
    assert (cp.origin, cp.size, json.loads(r.output)["size"]) == (ORIGIN, 7, 7)
    with Ledger(ledger_db) as lg:
        assert cp.root == lg.root()
        lg.append("psi.result", {"size": 3})  # the log grows after the checkpoint
    r = run("verify", ledger_db, "--checkpoint", cp_path, "--public-key", pub,
            "--format", "json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["checkpoint_size"] == 7 and doc["size"] == 8 and doc["stored_checkpoints"] == 1
    # without --public-key: refused unless --unpinned, which uses the signers recorded in
    # the ledger and says the signer is not pinned
    assert run("verify", ledger_db, "-c", cp_path).exit_code == 2
    r = run("verify", ledger_db, "-c", cp_path, "--unpinned", "--format", "json")
    assert r.exit_code == 0 and json.loads(r.stdout)["signer_pinned"] is False
    # existing output is not overwritten without --force
    r = run("checkpoint", ledger_db, "--key", key, "-o", cp_path)
    assert r.exit_code == 2 and Checkpoint.load(cp_path).size == 7


def test_checkpoint_catches_consistent_rewrite(ledger_db: Path, keypair: tuple[Path, Path],
                                               tmp_path: Path) -> None:
    key, pub = keypair
    cp_path = tmp_path / "cp.txt"
    assert run("checkpoint", ledger_db, "-k", key, "-o", cp_path).exit_code == 0
    rewrite_consistently(ledger_db, 2)
    assert run("verify", ledger_db).exit_code == 0  # undetectable without a checkpoint
    r = run("verify", ledger_db, "-c", cp_path, "-p", pub)
    assert r.exit_code == 1, r.output


def test_verify_checkpoint_wrong_key_exits_1(ledger_db: Path, keypair: tuple[Path, Path],
                                             tmp_path: Path) -> None:
    key, _ = keypair
    cp_path, other = tmp_path / "cp.txt", tmp_path / "other.pem"
    assert run("checkpoint", ledger_db, "-k", key, "-o", cp_path).exit_code == 0
    assert run("keygen", "-o", other, "--public-out", tmp_path / "other.pub").exit_code == 0
    r = run("verify", ledger_db, "-c", cp_path, "-p", tmp_path / "other.pub")
    assert r.exit_code == 1, r.output


def test_encrypted_key(ledger_db: Path, tmp_path: Path) -> None:
    key = tmp_path / "enc.pem"
    r = run("keygen", "-o", key, "--password-env", "LEDGER_KEY_PASSWORD", env=PASSWORD_ENV)
    assert r.exit_code == 0, r.output
    assert b"ENCRYPTED" in key.read_bytes()
    cp_path = tmp_path / "cp.txt"
    r = run("checkpoint", ledger_db, "-k", key, "-o", cp_path)  # no password
    assert r.exit_code == 2 and not cp_path.exists()
    r = run("checkpoint", ledger_db, "-k", key, "-o", cp_path,
            "--password-env", "LEDGER_KEY_PASSWORD", env=PASSWORD_ENV)
    assert r.exit_code == 0, r.output
    r = run("checkpoint", ledger_db, "-k", key, "-o", tmp_path / "x.txt",
            "--password-env", "UNSET_VAR_FOR_TEST", env={"UNSET_VAR_FOR_TEST": ""})
    assert r.exit_code == 2 and "UNSET_VAR_FOR_TEST" in r.output


def test_checkpoint_refuses_tampered_log(ledger_db: Path, keypair: tuple[Path, Path],
                                         tmp_path: Path) -> None:
    tamper_payload(ledger_db, 1)
    cp_path = tmp_path / "cp.txt"
    r = run("checkpoint", ledger_db, "-k", keypair[0], "-o", cp_path)
    assert r.exit_code == 1 and not cp_path.exists()


# ----------------------------------------------------------------- prove


@pytest.mark.parametrize("index", [0, 3, 6])
def test_prove(ledger_db: Path, index: int) -> None:
    r = run("prove", ledger_db, str(index), "--format", "json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    rec = doc["record"]
    leaf = merkle.leaf_hash(leaf_bytes(rec["index"], rec["ts"], rec["kind"], rec["payload"]))
    assert leaf.hex() == doc["leaf_hash"]
    # an independent check of the printed proof
    merkle.verify_inclusion(leaf, index, doc["size"], [bytes.fromhex(h) for h in doc["proof"]],
                            bytes.fromhex(doc["root"]))
    r = run("prove", ledger_db, str(index))
    assert r.exit_code == 0 and "inclusion proof verified" in r.output


# ----------------------------------------------------------------- bad input


@pytest.mark.parametrize("args", [["prove", "7"], ["prove", "x"], ["prove", "-1"],
                                  ["prove", "99999999999"]])
def test_prove_bad_index(ledger_db: Path, args: list[str]) -> None:
    r = run(args[0], ledger_db, *args[1:])
    assert r.exit_code == 2, r.output


def test_prove_empty_ledger(tmp_path: Path) -> None:
    Ledger(tmp_path / "e.db").close()
    r = run("prove", tmp_path / "e.db", "0")
    assert r.exit_code == 2 and "no records" in r.output


@pytest.mark.parametrize("command", [["show"], ["verify"], ["prove", "0"]])
def test_missing_file_exit_2_and_not_created(tmp_path: Path, command: list[str]) -> None:
    path = tmp_path / "missing.db"
    r = run(command[0], path, *command[1:])
    assert r.exit_code == 2 and "no such ledger file" in r.output
    assert not path.exists()


def test_missing_file_checkpoint(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    r = run("checkpoint", tmp_path / "missing.db", "-k", keypair[0], "-o", tmp_path / "c")
    assert r.exit_code == 2 and not (tmp_path / "missing.db").exists()


def test_not_a_ledger(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello\n" * 100)
    other = tmp_path / "other.db"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()
    empty = tmp_path / "empty.db"
    db = sqlite3.connect(empty)
    db.execute("PRAGMA user_version = 1")  # a valid SQLite file with no tables
    db.commit()
    db.close()
    zero = tmp_path / "zero.db"
    zero.touch()
    for path in (text, other, empty, zero, tmp_path):
        before = None if path.is_dir() else path.read_bytes()
        r = run("verify", path)
        assert r.exit_code == 2, (path, r.output)
        assert "ledger" in r.output
        if before is not None:
            assert path.read_bytes() == before


def test_bad_checkpoint_and_key_files(ledger_db: Path, tmp_path: Path,
                                      keypair: tuple[Path, Path]) -> None:
    junk = tmp_path / "junk.txt"
    junk.write_text("not a checkpoint\n")
    assert run("verify", ledger_db, "-c", junk).exit_code == 2
    assert run("verify", ledger_db, "-c", tmp_path / "nope.txt").exit_code == 2
    cp_path = tmp_path / "cp.txt"
    assert run("checkpoint", ledger_db, "-k", keypair[0], "-o", cp_path).exit_code == 0
    assert run("verify", ledger_db, "-c", cp_path, "-p", junk).exit_code == 2
    assert run("verify", ledger_db, "-p", keypair[1]).exit_code == 2  # needs --checkpoint
    r = run("checkpoint", ledger_db, "-k", junk, "-o", tmp_path / "c2.txt")
    assert r.exit_code == 2 and not (tmp_path / "c2.txt").exists()
