"""Tests for privacy.ledger.merkle (RFC 6962 math) and privacy.ledger (the disclosure log)."""

from __future__ import annotations

import base64
import json
import math
import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from privacy.errors import InputError, IntegrityError, KeyfileError, SerializationError
from privacy.ledger import (
    Checkpoint,
    Ledger,
    canonical_json,
    generate_signing_key,
    leaf_bytes,
    load_public_key,
    load_signing_key,
    merkle,
    note_key_id,
    save_public_key,
    save_signing_key,
    sign_note,
    verify_consistency,
    verify_inclusion,
)

VECTORS = Path(__file__).parent / "vectors"
ROOTS = json.loads((VECTORS / "rfc6962_roots.json").read_text())
INCLUSION = json.loads((VECTORS / "rfc6962_inclusion.json").read_text())["cases"]
CONSISTENCY = json.loads((VECTORS / "rfc6962_consistency.json").read_text())["cases"]
LEAVES = [merkle.leaf_hash(bytes.fromhex(x)) for x in ROOTS["leaves_hex"]]
ROOT = {r["size"]: bytes.fromhex(r["root"]) for r in ROOTS["roots"]}


# ----------------------------------------------------------------- an independent reference
# RFC 6962 §2.1 written out recursively, straight from the text: a second implementation
# to compare the iterative/frontier code with.

def ref_mth(d: Sequence[bytes]) -> bytes:
    n = len(d)
    if n == 0:
        return merkle.EMPTY_ROOT
    if n == 1:
        return d[0]
    k = 1 << (math.ceil(math.log2(n)) - 1)
    return merkle.node_hash(ref_mth(d[:k]), ref_mth(d[k:]))


def ref_path(m: int, d: Sequence[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = 1 << (math.ceil(math.log2(n)) - 1)
    if m < k:
        return ref_path(m, d[:k]) + [ref_mth(d[k:])]
    return ref_path(m - k, d[k:]) + [ref_mth(d[:k])]


def ref_subproof(m: int, d: Sequence[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = 1 << (math.ceil(math.log2(n)) - 1)
    if m <= k:
        return ref_subproof(m, d[:k], b) + [ref_mth(d[k:])]
    return ref_subproof(m - k, d[k:], False) + [ref_mth(d[:k])]


def hashes(n: int) -> list[bytes]:
    return [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


# ----------------------------------------------------------------- RFC 6962 known answers

def test_leaf_and_empty_hash() -> None:
    assert merkle.EMPTY_ROOT.hex() == ROOTS["empty_root"]
    assert merkle.root_of([]) == merkle.EMPTY_ROOT == merkle.frontier_root([])
    assert LEAVES[0].hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_known_answer(size: int) -> None:
    assert merkle.root_of(LEAVES[:size]) == ROOT[size]
    assert merkle.frontier_root(merkle.frontier_of(LEAVES[:size])) == ROOT[size]
    assert ref_mth(LEAVES[:size]) == ROOT[size]


@pytest.mark.parametrize("case", INCLUSION, ids=lambda c: f"{c['index']}-{c['size']}")
def test_inclusion_known_answer(case: dict[str, Any]) -> None:
    i, n = case["index"], case["size"]
    proof = [bytes.fromhex(p) for p in case["proof"]]
    assert merkle.inclusion_proof(i, LEAVES[:n]) == proof
    verify_inclusion(LEAVES[i], i, n, proof, ROOT[n])
    leaf, root = LEAVES[i], ROOT[n]
    bad: list[tuple[bytes, int, int, list[bytes], bytes]] = [
        (leaf, i + 1, n, proof, root),
        (leaf, i, n * 2, proof, root),
        (merkle.leaf_hash(b"wrong"), i, n, proof, root),
        (leaf, i, n, proof, merkle.EMPTY_ROOT),
        (leaf, i, n, [*proof, root], root),
        (leaf, i, n, [root, *proof], root),
    ]
    if i > 0:
        bad.append((leaf, i - 1, n, proof, root))
    if n > 1:
        bad.append((leaf, i, n // 2, proof, root))
    if proof:
        bad.append((leaf, i, n, proof[:-1], root))
    for k in range(len(proof)):
        flipped = list(proof)
        flipped[k] = bytes([flipped[k][0] ^ 8]) + flipped[k][1:]
        bad.append((leaf, i, n, flipped, root))
    for args in bad:
        with pytest.raises(IntegrityError):
            verify_inclusion(*args)


@pytest.mark.parametrize("case", CONSISTENCY, ids=lambda c: f"{c['old_size']}-{c['new_size']}")
def test_consistency_known_answer(case: dict[str, Any]) -> None:
    m, n = case["old_size"], case["new_size"]
    proof = [bytes.fromhex(p) for p in case["proof"]]
    assert merkle.consistency_proof(m, LEAVES[:n]) == proof
    verify_consistency(m, n, ROOT[m], ROOT[n], proof)
    if not proof:
        return
    bad: list[tuple[int, int, bytes, bytes, list[bytes]]] = [
        (m - 1, n, ROOT[m], ROOT[n], proof),
        (m + 1, n, ROOT[m], ROOT[n], proof),
        (m, n * 2, ROOT[m], ROOT[n], proof),
        (m, n, ROOT[n], ROOT[m], proof),
        (m, n, ROOT[m], merkle.EMPTY_ROOT, proof),
        (m, n, ROOT[m], ROOT[n], []),
        (m, n, ROOT[m], ROOT[n], [*proof, ROOT[m]]),
        (m, n, ROOT[m], ROOT[n], [proof[0], *proof]),
        (m, n, ROOT[m], ROOT[n], proof[:-1]),
    ]
    for k in range(len(proof)):
        flipped = list(proof)
        flipped[k] = bytes([flipped[k][0] ^ 16]) + flipped[k][1:]
        bad.append((m, n, ROOT[m], ROOT[n], flipped))
    for args in bad:
        with pytest.raises(IntegrityError):
            verify_consistency(*args)


def test_consistency_edge_cases() -> None:
    verify_consistency(0, 0, merkle.EMPTY_ROOT, merkle.EMPTY_ROOT, [])
    verify_consistency(0, 8, merkle.EMPTY_ROOT, ROOT[8], [])
    verify_consistency(8, 8, ROOT[8], ROOT[8], [])
    for args in [(0, 8, ROOT[1], ROOT[8], []), (8, 8, ROOT[7], ROOT[8], []),
                 (8, 8, ROOT[8], ROOT[8], [ROOT[8]]), (8, 7, ROOT[8], ROOT[7], []),
                 (1, 8, b"short", ROOT[8], [])]:
        with pytest.raises(IntegrityError):
            verify_consistency(*args)
    with pytest.raises(IntegrityError):
        verify_inclusion(LEAVES[0], 0, 0, [], merkle.EMPTY_ROOT)
    with pytest.raises(InputError):
        merkle.inclusion_proof(3, LEAVES[:3])
    with pytest.raises(InputError):
        merkle.consistency_proof(4, LEAVES[:3])


# ----------------------------------------------------------------- properties

@settings(max_examples=150, deadline=None)
@given(st.data())
def test_inclusion_property(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 300))
    i = data.draw(st.integers(0, n - 1))
    d = hashes(n)
    root = merkle.root_of(d)
    proof = merkle.inclusion_proof(i, d)
    assert proof == ref_path(i, d)
    verify_inclusion(d[i], i, n, proof, root)
    with pytest.raises(IntegrityError):
        verify_inclusion(merkle.leaf_hash(b"not a leaf"), i, n, proof, root)
    j = data.draw(st.integers(0, n - 1).filter(lambda x: x != i)) if n > 1 else None
    if j is not None:
        with pytest.raises(IntegrityError):
            verify_inclusion(d[i], j, n, proof, root)
    m = data.draw(st.integers(i + 1, 2 * n + 1).filter(lambda x: x != n))
    with pytest.raises(IntegrityError):  # a proof for size n does not fit the tree of size m
        verify_inclusion(d[i], i, m, proof, merkle.root_of(hashes(m)))


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_consistency_property(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 300))
    m = data.draw(st.integers(0, n))
    d = hashes(n)
    proof = merkle.consistency_proof(m, d)
    if 0 < m < n:
        assert proof == ref_subproof(m, d, True)
    verify_consistency(m, n, merkle.root_of(d[:m]), merkle.root_of(d), proof)
    if 0 < m < n:
        with pytest.raises(IntegrityError):
            verify_consistency(m, n, merkle.root_of(d[: m - 1]), merkle.root_of(d), proof)
        other = [*d[: n - 1], merkle.leaf_hash(b"changed")]
        with pytest.raises(IntegrityError):  # the last leaf changed: not an extension
            verify_consistency(m, n, merkle.root_of(d[:m]), merkle.root_of(other), proof)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=8), max_size=70))
def test_frontier_matches_root(leaves: list[bytes]) -> None:
    d = [merkle.leaf_hash(x) for x in leaves]
    frontier: list[bytes] = []
    for k, h in enumerate(d):
        merkle.frontier_append(frontier, k, h)
        assert len(frontier) == bin(k + 1).count("1")
        assert merkle.frontier_root(frontier) == ref_mth(d[: k + 1])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(), kids, max_size=4),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text(), json_values, max_size=5), st.text(min_size=1, max_size=20))
def test_leaf_bytes_are_canonical_json(payload: dict[str, Any], kind: str) -> None:
    ts = "2025-01-02T03:04:05.000006Z"
    raw = leaf_bytes(7, ts, kind, payload)
    expected = canonical_json({"index": 7, "ts": ts, "kind": kind, "payload": payload})
    assert raw == expected.encode("utf-8")
    assert json.loads(raw)["payload"] == json.loads(canonical_json(payload))


# ----------------------------------------------------------------- the ledger

@pytest.fixture()
def key() -> Any:
    return generate_signing_key()


def make(path: Path, n: int = 20, **kw: Any) -> None:
    with Ledger(path, **kw) as led:
        led.append_many(("masking.run", {"i": i, "name": f"客户{i}"}) for i in range(n))


def test_append_get_and_roots(tmp_path: Path) -> None:
    with Ledger(tmp_path / "log.db") as led:
        assert led.origin == "log"
        assert (led.size, led.root()) == (0, merkle.EMPTY_ROOT)
        assert led.append("psi.result", {"size": 3, "party": "bank-b"}) == 0
        indices = led.append_many([("fl.round", {"round": r}) for r in range(10)])
        assert indices == list(range(1, 11))
        assert led.append_many([]) == []
        rec = led.get(1)
        assert (rec.index, rec.kind, rec.payload) == (1, "fl.round", {"round": 0})
        assert rec.ts.endswith("Z") and merkle.leaf_hash(rec.leaf_bytes()) == rec.leaf_hash
        leaves = [r.leaf_hash for r in led.records()]
        assert len(leaves) == led.size == 11
        assert led.root() == merkle.root_of(leaves) == ref_mth(leaves)
        for s in range(12):
            assert led.root_at(s) == merkle.root_of(leaves[:s])
        assert [r.index for r in led.records(kind="fl.round", start=5)] == list(range(5, 11))
        assert [r.kind for r in led.records(kind="psi.result")] == ["psi.result"]
        for i in (0, 5, 10):
            verify_inclusion(leaves[i], i, 11, led.inclusion_proof(i), led.root())
        for i in (0, 5, 9):
            verify_inclusion(leaves[i], i, 10, led.inclusion_proof(i, 10), led.root_at(10))
        for m in (0, 1, 4, 7, 11):
            verify_consistency(m, 11, led.root_at(m), led.root(), led.consistency_proof(m))
        verify_consistency(3, 6, led.root_at(3), led.root_at(6), led.consistency_proof(3, 6))
        report = led.verify()
        assert (report.size, report.root, report.origin) == (11, led.root(), "log")
        with pytest.raises(InputError):
            led.get(11)
        with pytest.raises(InputError):
            led.root_at(12)
        with pytest.raises(InputError):
            led.inclusion_proof(11)
        with pytest.raises(InputError):
            led.consistency_proof(5, 3)
    with Ledger(tmp_path / "log.db") as again:  # state survives reopening
        assert again.size == 11 and again.get(3).payload == {"round": 2}


def test_many_records_across_batches(tmp_path: Path) -> None:
    with Ledger(tmp_path / "big.db", origin="bank-a.example/disclosures") as led:
        led.append_many(("k", {"i": i}) for i in range(10_000))
        led.append("k", {"i": 10_000})
        assert [r.payload["i"] for r in led.records(start=9_990)] == list(range(9_990, 10_001))
        assert led.verify().size == 10_001


@pytest.mark.parametrize("payload", [
    {"x": float("nan")}, {"x": {1, 2}}, {1: "int key"}, {"x": b"bytes"}, ["not", "a", "map"],
    {"x": "\ud800 lone surrogate"},
])
def test_bad_payload_appends_nothing(tmp_path: Path, payload: Any) -> None:
    with Ledger(tmp_path / "l.db") as led:
        led.append("ok", {})
        with pytest.raises(InputError):
            led.append_many([("ok", {"fine": 1}), ("bad", payload)])
        with pytest.raises(InputError):
            led.append("", {})
        assert led.size == 1
        led.verify()


def test_interrupted_batch_is_rolled_back(tmp_path: Path) -> None:
    def gen() -> Iterator[tuple[str, dict[str, int]]]:
        for i in range(100):
            yield ("k", {"i": i})
        raise KeyboardInterrupt

    with Ledger(tmp_path / "l.db") as led:
        led.append("k", {"first": True})
        with pytest.raises(KeyboardInterrupt):
            led.append_many(gen())
        assert led.size == 1
        assert led.append("k", {}) == 1
        led.verify()


_CRASH = """
import os, sys
from privacy.ledger import Ledger
led = Ledger(sys.argv[1])
def gen():
    for i in range(20000):
        yield ("k", {"i": i})
    os._exit(3)  # die inside the transaction, after the rows were written to SQLite
led.append_many(gen())
"""


def test_process_killed_mid_batch_leaves_log_consistent(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    make(path, 5)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run([sys.executable, "-c", _CRASH, str(path)], env=env, timeout=60)
    assert proc.returncode == 3
    with Ledger(path) as led:
        assert led.size == 5
        led.verify()


_APPENDER = """
import sys
from privacy.ledger import Ledger
with Ledger(sys.argv[1]) as led:
    for b in range(20):
        led.append_many([("w", {"worker": int(sys.argv[2]), "b": b, "k": k}) for k in range(5)])
"""


def test_concurrent_processes_append(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    make(path, 1)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    procs = [subprocess.Popen([sys.executable, "-c", _APPENDER, str(path), str(w)], env=env)
             for w in range(2)]
    assert [p.wait(60) for p in procs] == [0, 0]
    with Ledger(path) as led:
        assert led.size == 1 + 2 * 20 * 5
        seen = {(r.payload["worker"], r.payload["b"], r.payload["k"])
                for r in led.records(kind="w")}
        assert len(seen) == 200
        led.verify()


def test_no_edit_api_and_triggers(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    make(path, 3)
    assert not any(hasattr(Ledger, n) for n in ("delete", "update", "edit", "remove"))
    db = sqlite3.connect(path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE records SET payload = '{}' WHERE idx = 1")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM records WHERE idx = 2")
    db.close()
    with Ledger(path) as led:
        led.verify()


# ----------------------------------------------------------------- misuse

def test_not_a_ledger(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()
    before = other.read_bytes()
    with pytest.raises(SerializationError, match="not a covault ledger"):
        Ledger(other)
    assert other.read_bytes() == before  # the input was not modified
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(SerializationError):
        Ledger(garbage)
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    with pytest.raises(SerializationError):
        Ledger(empty)
    with pytest.raises(InputError):
        Ledger(tmp_path)


@pytest.mark.parametrize("fraction", [0.05, 0.5, 0.9])
def test_truncated_file(tmp_path: Path, fraction: float) -> None:
    path = tmp_path / "l.db"
    with Ledger(path) as led:
        led.append_many(("k", {"i": i, "pad": "x" * 200}) for i in range(2000))
    size = path.stat().st_size
    os.truncate(path, int(size * fraction))
    with pytest.raises((SerializationError, IntegrityError)):
        with Ledger(path) as led:
            led.verify()


def test_origin_and_closed(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    make(path, 1, origin="bank-a.example/log")
    with pytest.raises(InputError, match="origin"):
        Ledger(path, origin="bank-b.example/log")
    with pytest.raises(InputError):
        Ledger(tmp_path / "x.db", origin="has space")
    led = Ledger(path)
    led.close()
    led.close()
    with pytest.raises(InputError, match="closed"):
        led.append("k", {})


# ----------------------------------------------------------------- checkpoints and keys

GO_TEXT = ("If you think cryptography is the answer to your problem,\n"
           "then you don't know what your problem is.\n")
GO_SIG = ("\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKv"
          "qfqdngotpRZb6KE6RyyBwJnAM=\n")


def test_signed_note_known_answer() -> None:
    # golang.org/x/mod/sumdb/note: skey PRIVATE+KEY+PeterNeumann+c74f20a3+AYEK...,
    # vkey PeterNeumann+c74f20a3+ARpc... (base64 of 0x01 || key). Ed25519 is deterministic.
    seed = base64.b64decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")[1:]
    pub = base64.b64decode("ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")[1:]
    assert note_key_id("PeterNeumann", load_public_key(pub)).hex() == "c74f20a3"
    assert sign_note(GO_TEXT, seed, "PeterNeumann").line() == GO_SIG


def test_checkpoint_round_trip(tmp_path: Path, key: Any) -> None:
    path = tmp_path / "l.db"
    make(path, 9, origin="bank-a.example/disclosures")
    with Ledger(path) as led:
        cp = led.checkpoint(key)
        assert (cp.origin, cp.size, cp.root) == ("bank-a.example/disclosures", 9, led.root())
        text = cp.to_text()
        lines = text.split("\n")
        assert lines[:3] == [cp.origin, "9", base64.b64encode(cp.root).decode()]
        assert lines[3].startswith("time ") and lines[4] == "" and lines[5].startswith("\u2014 ")
        assert Checkpoint.from_text(text) == cp == Checkpoint.from_text(text.encode())
        cp.verify(key.public_key())
        cp.verify(key, key_name="bank-a.example/disclosures")
        cp.save(tmp_path / "cp.txt")
        led.append("k", {"after": 1})
        led.verify(tmp_path / "cp.txt", public_key=key.public_key())
        led.verify(text)
        report = led.verify(cp)
        assert (report.size, report.checkpoint_size, report.stored_checkpoints) == (10, 9, 1)
        with pytest.raises(IntegrityError):
            cp.verify(generate_signing_key().public_key())
        with pytest.raises(IntegrityError):
            cp.verify(key, key_name="someone-else")


@pytest.mark.parametrize("text", [
    "", "origin\n1\n", "o\n01\nAAAA\ntime 2025-01-01T00:00:00Z\n\n\u2014 k AAAAAAAA\n",
    "o\n1\nnot base64!\ntime 2025-01-01T00:00:00Z\n\n\u2014 k AAAAAAAA\n",
    "o\n1\n" + base64.b64encode(bytes(32)).decode() + "\ntime 2025-01-01T00:00:00Z\n\n",
    "o\n1\n" + base64.b64encode(bytes(32)).decode() + "\ntime never\n\n\u2014 k AAAAAAAA\n",
    "o\n1\n" + base64.b64encode(bytes(32)).decode() + "\ntime 2025-01-01T00:00:00Z\n\n- k AAAAAA\n",
])
def test_malformed_checkpoint(text: str) -> None:
    with pytest.raises(SerializationError):
        Checkpoint.from_text(text)


def test_key_files(tmp_path: Path, key: Any) -> None:
    save_signing_key(key, tmp_path / "k.pem")
    save_public_key(key, tmp_path / "k.pub")
    assert stat.S_IMODE((tmp_path / "k.pem").stat().st_mode) == 0o600
    loaded = load_signing_key(tmp_path / "k.pem")
    assert loaded.private_bytes_raw() == key.private_bytes_raw()
    assert load_public_key(str(tmp_path / "k.pub")).public_bytes_raw() == \
        key.public_key().public_bytes_raw()
    assert load_signing_key((tmp_path / "k.pem").read_bytes()).private_bytes_raw() == \
        key.private_bytes_raw()
    save_signing_key(key, tmp_path / "enc.pem", password=b"correct horse")
    assert load_signing_key(tmp_path / "enc.pem", password=b"correct horse") is not None
    with pytest.raises(KeyfileError):
        load_signing_key(tmp_path / "enc.pem", password=b"wrong")
    with pytest.raises(KeyfileError):
        load_signing_key(tmp_path / "missing.pem")
    with pytest.raises(KeyfileError):
        load_public_key(tmp_path / "k.pem")  # a private key file is not a public key file
    with Ledger(tmp_path / "l.db") as led:  # a checkpoint from a PEM file path
        led.checkpoint(tmp_path / "k.pem").verify(tmp_path / "k.pub")


# ----------------------------------------------------------------- tampering

def tamper(path: Path, *sql: str | tuple[str, tuple[Any, ...]]) -> None:
    """Change the file directly, bypassing the API (and its triggers)."""
    db = sqlite3.connect(path)
    for name in ("records_no_update", "records_no_delete", "checkpoints_no_update",
                 "checkpoints_no_delete"):
        db.execute(f"DROP TRIGGER IF EXISTS {name}")
    for s in sql:
        if isinstance(s, tuple):
            db.execute(*s)
        else:
            for statement in s.split(";"):
                db.execute(statement)
    db.commit()
    db.close()


def rewrite_head(path: Path) -> None:
    """What a careful attacker does next: recompute leaf hashes and the tree head."""
    db = sqlite3.connect(path)
    for t in ("records_no_update", "checkpoints_no_delete"):
        db.execute(f"DROP TRIGGER IF EXISTS {t}")
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
def signed(tmp_path: Path, key: Any) -> tuple[Path, Checkpoint]:
    path = tmp_path / "l.db"
    make(path, 20, origin="bank-a.example/log")
    with Ledger(path) as led:
        cp = led.checkpoint(key)
        led.append_many(("k", {"i": i}) for i in range(5))
    return path, cp


def verify_fails(path: Path, match: str, cp: Checkpoint | None = None, **kw: Any) -> None:
    with Ledger(path) as led, pytest.raises(IntegrityError, match=match) as err:
        led.verify(cp, **kw)
    assert str(err.value).startswith("ledger verification failed")


@pytest.mark.parametrize("sql, match", [
    ("UPDATE records SET payload = '{\"i\":99,\"name\":\"x\"}' WHERE idx = 3", "leaf hash"),
    ("UPDATE records SET kind = 'other' WHERE idx = 0", "leaf hash"),
    ("UPDATE records SET ts = '2000-01-01T00:00:00.000000Z' WHERE idx = 24", "leaf hash"),
    ("UPDATE records SET payload = x'00' WHERE idx = 4", "wrong type"),
    ("DELETE FROM records WHERE idx = 7", "not contiguous"),
    ("DELETE FROM records WHERE idx = 0", "not contiguous"),
    ("INSERT INTO records SELECT -1, ts, kind, payload, leaf_hash FROM records WHERE idx = 0",
     "not contiguous"),
    ("INSERT INTO records SELECT 25, ts, kind, payload, leaf_hash FROM records WHERE idx = 24",
     "leaf hash"),
    ("UPDATE records SET idx = -5 WHERE idx = 2; UPDATE records SET idx = 2 WHERE idx = 5;"
     "UPDATE records SET idx = 5 WHERE idx = -5", "leaf hash"),
    ("DELETE FROM records WHERE idx >= 22", "missing at the end"),
    ("UPDATE tree_head SET root = zeroblob(32)", "tree head"),
    ("UPDATE checkpoints SET root = zeroblob(32)", "extend a checkpoint"),
    ("DELETE FROM signers", "stored checkpoint"),
])
def test_tampering_detected(signed: tuple[Path, Checkpoint], sql: str, match: str) -> None:
    path, _ = signed
    tamper(path, sql)
    verify_fails(path, match)


def test_inserted_record_with_correct_leaf_hash(signed: tuple[Path, Checkpoint]) -> None:
    path, _ = signed
    text = canonical_json({"forged": True})
    h = merkle.leaf_hash(leaf_bytes(25, "2030-01-01T00:00:00Z", "k", {"forged": True}))
    tamper(path, ("INSERT INTO records VALUES (25, '2030-01-01T00:00:00Z', 'k', ?, ?)",
                  (text, h)))
    verify_fails(path, "beyond its tree head")
    with Ledger(path) as led, pytest.raises(IntegrityError):
        led.append("k", {})  # a tampered log refuses appends


def test_consistent_rewrite_needs_external_checkpoint(signed: tuple[Path, Checkpoint],
                                                      key: Any) -> None:
    path, cp = signed
    tamper(path, "UPDATE records SET payload = '{\"i\":3,\"name\":\"edited\"}' WHERE idx = 3")
    rewrite_head(path)
    with Ledger(path) as led:
        led.verify()  # documented limit: without a checkpoint this rewrite is invisible
    verify_fails(path, "not consistent with the checkpoint", cp, public_key=key.public_key())


def test_truncation_caught_by_checkpoint(signed: tuple[Path, Checkpoint], key: Any) -> None:
    path, cp = signed
    tamper(path, "DELETE FROM records WHERE idx >= 15")
    verify_fails(path, "missing at the end")
    rewrite_head(path)
    with Ledger(path) as led:
        assert led.verify().size == 15
    verify_fails(path, "shorter than the checkpoint", cp, public_key=key)


def test_altered_checkpoint(signed: tuple[Path, Checkpoint]) -> None:
    path, cp = signed
    with Ledger(path) as led:
        led.verify(cp)
        other_root = led.root_at(10)
    text = cp.to_text()
    for forged in (
        text.replace("\n20\n", "\n10\n", 1),
        text.replace(base64.b64encode(cp.root).decode(), base64.b64encode(other_root).decode()),
        text.replace(cp.time, "2001-01-01T00:00:00Z"),
    ):
        assert forged != text
        verify_fails(path, "signature", Checkpoint.from_text(forged))


def test_checkpoint_signed_by_another_key(signed: tuple[Path, Checkpoint], key: Any) -> None:
    path, cp = signed
    mallory = generate_signing_key()
    sig = sign_note(cp.body(), mallory, cp.origin)
    forged = Checkpoint(cp.origin, cp.size, cp.root, cp.time, (sig,))
    forged.verify(mallory)  # well formed, just not by the log's key
    verify_fails(path, "another key", forged)
    verify_fails(path, "another key", forged, public_key=key.public_key())
    verify_fails(path, "another key", cp, public_key=mallory.public_key())


def test_checkpoint_from_a_different_log(signed: tuple[Path, Checkpoint], key: Any,
                                         tmp_path: Path) -> None:
    path, _ = signed
    other = tmp_path / "other.db"
    make(other, 20, origin="bank-b.example/log")
    with Ledger(other) as led:
        cp_other = led.checkpoint(key)
    verify_fails(path, "different log", cp_other, public_key=key)
    same_name = tmp_path / "same.db"  # same origin, different records
    with Ledger(same_name, origin="bank-a.example/log") as led:
        led.append_many(("other", {"i": i}) for i in range(20))
        cp_same = led.checkpoint(key)
    verify_fails(path, "not consistent", cp_same, public_key=key)


def test_verify_needs_a_key_for_external_checkpoints(tmp_path: Path, key: Any) -> None:
    src, dst = tmp_path / "a.db", tmp_path / "b.db"
    with Ledger(src, origin="x") as led:
        led.append("k", {})
        cp = led.checkpoint(key)
    with Ledger(dst, origin="x") as led:
        led.append("k", {})
        with pytest.raises(InputError, match="public_key"):
            led.verify(cp)


@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(1, 60), data=st.data())
def test_ledger_proofs_property(tmp_path_factory: pytest.TempPathFactory, n: int,
                                data: st.DataObject) -> None:
    path = tmp_path_factory.mktemp("prop") / "l.db"
    with Ledger(path) as led:
        led.append_many(("k", {"i": i}) for i in range(n))
        i = data.draw(st.integers(0, n - 1))
        size = data.draw(st.integers(i + 1, n))
        rec = led.get(i)
        verify_inclusion(rec.leaf_hash, i, size, led.inclusion_proof(i, size), led.root_at(size))
        with pytest.raises(IntegrityError):
            verify_inclusion(led.get((i + 1) % n).leaf_hash if n > 1 else merkle.EMPTY_ROOT,
                             i, size, led.inclusion_proof(i, size), led.root_at(size))
        m = data.draw(st.integers(0, n))
        verify_consistency(m, n, led.root_at(m), led.root(), led.consistency_proof(m))
