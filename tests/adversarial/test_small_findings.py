"""Issue 11, finding 15 ("Smaller"): each item with the attack or misuse that showed it.

(a) Keyset files: scrypt N = 2^15 for new files, and the file header's own scrypt
    parameters (authenticated only by the key derived from them) accepted up to 4 GiB of
    memory before anything could be checked. New files use N = 2^17; old files open with
    their stored parameters; headers above N = 2^20, r = 8, p = 1 (1 GiB) or malformed
    are refused, naming the file, before scrypt runs.
(b) Ledger files were created 0644 (and their -wal/-shm files with them): now 0600.
(c) `ledger verify --checkpoint` without `--public-key` said "verified" for a checkpoint
    signed by any key recorded in the database, which whoever can rewrite it can add:
    now it needs `--public-key`, or `--unpinned`, which reports `signer_pinned: false`
    and warns.
(d) `mask reveal --ledger` without `--reason` re-identified and logged no reason: now
    exit 2 before anything is read.
(e) A CSV field over 1 MiB failed every command with no way to raise the limit (and a
    header over 128 KiB was a traceback in `psi`): `covault --max-field-bytes SIZE` /
    `$COVAULT_MAX_FIELD_BYTES` now sets it for every CSV reader.
(f) The DJN short exponent (2*kappa bits) was the default: now keys use nbits/2, as
    maintained implementations do, and the short one is opt-in (`--fast-randomness`).
(g) Key material sat in module-level caches (lru_caches of AES/SIV key schedules and
    HKDF context keys in ``privacy.fields``, Paillier CRT constants keyed by ``p, q`` in
    ``privacy.he.paillier_workers``): now nothing derived from secret keys is cached at
    module level; cipher objects cache per object (bounded, ``clear_cache()``).
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import pkgutil
import stat
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from click.testing import CliRunner, Result

import privacy.keys as keys_module
from covault.cli import main
from covault.demo.context import sample_customers_path
from privacy.errors import KeyfileError
from privacy.keys import Kek, Keyset
from privacy.ledger import Ledger, generate_signing_key, save_public_key, save_signing_key

from . import _keyfiles as keyfiles

SAMPLE = str(sample_customers_path())


def run(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], env=env)


# ------------------------------------------------------------------ (a) scrypt parameters


class _NoScrypt:
    """Stands in for ``Scrypt``: deriving anything is the failure under test."""

    def __init__(self, **kwargs: Any) -> None:
        raise AssertionError(f"scrypt ran with {kwargs} before the header was checked")


def _keyset_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, n: int = 2**14) -> Path:
    """A passphrase-protected keyset written cheaply (N = 2^14)."""
    monkeypatch.setattr(keys_module, "_SCRYPT_N", n)
    path = tmp_path / "ks.json"
    Keyset.create("AES256_SIV").save(path, Kek.from_passphrase("pw"))
    monkeypatch.undo()
    return path


def test_new_keyset_files_use_scrypt_2_17_and_open(tmp_path: Path) -> None:
    path = tmp_path / "new.json"
    ks = Keyset.create("AES256_GCM")
    ks.save(path, Kek.from_passphrase("pw"))
    kek = json.loads(path.read_text())["kek"]
    assert (kek["kind"], kek["n"], kek["r"], kek["p"]) == ("scrypt", 2**17, 8, 1)
    assert Keyset.load(path, Kek.from_passphrase("pw")).key_material() == ks.key_material()


def test_old_keyset_files_open_with_their_stored_parameters(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _keyset_file(tmp_path, monkeypatch, n=2**15)  # as written before the change
    assert json.loads(path.read_text())["kek"]["n"] == 2**15
    assert Keyset.load(path, Kek.from_passphrase("pw")).template == "AES256_SIV"


@pytest.mark.parametrize("params, message", [
    ({"n": 2**20, "r": 32, "p": 1}, "4,096 MiB"),  # accepted before: 4 GiB per reader
    ({"n": 2**20, "r": 16, "p": 1}, "2,048 MiB"),
    ({"n": 2**17, "r": 8, "p": 16}, "p=16"),  # 16 lanes of work
    ({"n": 2**21, "r": 8, "p": 1}, "N=2097152"),
    ({"n": "32768", "r": 8, "p": 1}, "must be integers"),
    ({"n": True, "r": 8, "p": 1}, "must be integers"),
    ({"r": 8, "p": 1}, "must be integers"),
    ({"n": 3 * 2**14, "r": 8, "p": 1}, "power of 2"),
    ({"n": 2**15, "r": 0, "p": 1}, "at least 1"),
])
def test_scrypt_header_is_capped_before_deriving(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, params: dict[str, Any],
        message: str) -> None:
    path = _keyset_file(tmp_path, monkeypatch)
    doc = json.loads(path.read_text())
    doc["kek"] = {"kind": "scrypt", "salt": doc["kek"]["salt"], **params}
    path.write_text(json.dumps(doc))
    monkeypatch.setattr(keys_module, "Scrypt", _NoScrypt)
    with pytest.raises(KeyfileError, match=f"^{path}: ") as info:
        Keyset.load(path, Kek.from_passphrase("pw"))
    assert message in str(info.value)


def test_cli_refuses_a_costly_scrypt_header_naming_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _keyset_file(tmp_path, monkeypatch)
    doc = json.loads(path.read_text())
    doc["kek"].update(n=2**20, r=32)
    path.write_text(json.dumps(doc))
    monkeypatch.setattr(keys_module, "Scrypt", _NoScrypt)
    res = run("field", "encrypt", "-k", path, "-c", "t.c", "x",
              env={"COVAULT_PASSPHRASE": "pw"})
    assert res.exit_code == 2, res.output
    assert str(path) in res.stderr and "N=2^20, r=8, p=1" in res.stderr
    assert "Traceback" not in res.output


# ------------------------------------------------------------------ (b) ledger file modes


@pytest.fixture()
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("umask_022")
def test_ledger_files_are_created_0600(tmp_path: Path) -> None:
    db = tmp_path / "new" / "ledger.db"
    with Ledger(db, origin="bank-a.example/disclosures") as lg:
        lg.append("masking.run", {"rows": 1})
        side = [p for p in (Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists()]
        assert side, "a WAL ledger has -wal/-shm files while open"
        assert {p.name: _mode(p) for p in side} == {p.name: 0o600 for p in side}
    assert _mode(db) == 0o600


@pytest.mark.usefixtures("umask_022")
def test_ledger_created_by_a_command_is_0600(tmp_path: Path) -> None:
    kek = keyfiles.kek_file(tmp_path)
    siv = keyfiles.sealed_keyset(tmp_path / "siv.json", "AES256_SIV", kek)
    policy = tmp_path / "p.yaml"
    policy.write_text(textwrap.dedent("""
        version: 1
        context: t
        views:
          v:
            columns:
              - {name: id_no, operator: tokenize}
    """))
    ledger = tmp_path / "l.db"
    res = run("mask", "apply", SAMPLE, "-o", tmp_path / "out.csv", "-p", policy, "-v", "v",
              "-k", siv, "--kek-file", kek, "--ledger", ledger)
    assert res.exit_code == 0, res.output
    assert _mode(ledger) == 0o600


def test_an_existing_ledger_keeps_its_mode(tmp_path: Path) -> None:
    db = tmp_path / "l.db"
    with Ledger(db) as lg:
        lg.append("x", {})
    os.chmod(db, 0o640)
    with Ledger(db) as lg:
        lg.append("x", {})
    assert _mode(db) == 0o640


# ------------------------------------------------------------------ (c) checkpoint signer


@pytest.fixture()
def two_signers(tmp_path: Path) -> dict[str, Path]:
    """A ledger with a checkpoint by its operator (key A), and one by key B, which someone
    with write access to the database recorded as a signer (as `ledger checkpoint` does)."""
    db = tmp_path / "l.db"
    files = {"db": db}
    for name in ("a", "b"):
        key = generate_signing_key()
        save_signing_key(key, tmp_path / f"{name}.pem")
        save_public_key(key, tmp_path / f"{name}.pub")
        files[f"{name}.pub"] = tmp_path / f"{name}.pub"
        with Ledger(db, origin="bank-a.example/disclosures") as lg:
            lg.append("masking.run", {"by": name})
            lg.checkpoint(key).save(tmp_path / f"cp-{name}.txt")
        files[f"cp-{name}"] = tmp_path / f"cp-{name}.txt"
    return files


def test_verify_checkpoint_needs_a_pinned_key(two_signers: dict[str, Path]) -> None:
    f = two_signers
    res = run("ledger", "verify", f["db"], "--checkpoint", f["cp-b"])
    assert res.exit_code == 2, res.output  # before the fix: 0, "verified"
    assert "--public-key" in res.stderr and "--unpinned" in res.stderr
    assert "verified" not in res.stdout
    # pinned to the operator's key, B's checkpoint fails
    res = run("ledger", "verify", f["db"], "-c", f["cp-b"], "-p", f["a.pub"])
    assert res.exit_code == 1, res.output
    res = run("ledger", "verify", f["db"], "-c", f["cp-a"], "-p", f["a.pub"], "--format", "json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["signer_pinned"] is True


def test_verify_unpinned_says_so(two_signers: dict[str, Path]) -> None:
    f = two_signers
    res = run("ledger", "verify", f["db"], "-c", f["cp-b"], "--unpinned", "--format", "json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["verified"] is True and doc["signer_pinned"] is False
    assert "not pinned" in doc["warning"] and "not pinned" in res.stderr
    res = run("ledger", "verify", f["db"], "-c", f["cp-b"], "--unpinned")
    assert res.exit_code == 0 and "NOT pinned" in res.stdout and "warning" in res.stderr
    # --unpinned means nothing without a checkpoint, or with a key
    assert run("ledger", "verify", f["db"], "--unpinned").exit_code == 2
    assert run("ledger", "verify", f["db"], "-c", f["cp-a"], "-p", f["a.pub"],
               "--unpinned").exit_code == 2
    # the library reports it too
    with Ledger(f["db"], read_only=True) as lg:
        assert lg.verify(f["cp-b"]).signer_pinned is False
        assert lg.verify().signer_pinned is None


# ------------------------------------------------------------------ (d) reveal reason


@pytest.fixture()
def masked(tmp_path: Path) -> dict[str, Path]:
    kek = keyfiles.kek_file(tmp_path)
    siv = keyfiles.sealed_keyset(tmp_path / "siv.json", "AES256_SIV", kek)
    policy = tmp_path / "p.yaml"
    policy.write_text(textwrap.dedent("""
        version: 1
        context: joint
        views:
          partner_export:
            columns:
              - {name: id_no, operator: tokenize}
    """))
    out = tmp_path / "masked.csv"
    res = run("mask", "apply", SAMPLE, "-o", out, "-p", policy, "-v", "partner_export",
              "-k", siv, "--kek-file", kek)
    assert res.exit_code == 0, res.output
    return {"dir": tmp_path, "kek": kek, "siv": siv, "policy": policy, "masked": out}


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_reveal_with_a_ledger_requires_a_reason(masked: dict[str, Path],
                                                reason: str | None) -> None:
    m = masked
    out, ledger = m["dir"] / "revealed.csv", m["dir"] / "l.db"
    extra = [] if reason is None else ["--reason", reason]
    res = run("mask", "reveal", m["masked"], "-o", out, "-p", m["policy"], "-k", m["siv"],
              "--kek-file", m["kek"], "--columns", "id_no", "--ledger", ledger, *extra)
    assert res.exit_code == 2, res.output
    assert "--reason is required with --ledger" in res.stderr
    assert not out.exists() and not ledger.exists()
    res = run("mask", "reveal", m["masked"], "-o", out, "-p", m["policy"], "-k", m["siv"],
              "--kek-file", m["kek"], "--columns", "id_no", "--ledger", ledger,
              "--reason", "court order 7")
    assert res.exit_code == 0, res.output
    with Ledger(ledger, read_only=True) as lg:
        assert lg.get(lg.size - 1).payload["reason"] == "court order 7"


# ------------------------------------------------------------------ (e) CSV field limit


@pytest.fixture(autouse=True)
def _default_field_limit() -> Iterator[None]:
    yield
    import masking.io as mio

    if hasattr(mio, "set_max_field_bytes"):  # leave the process as the next test expects it
        mio.set_max_field_bytes(mio.DEFAULT_MAX_FIELD_BYTES)


def _big_csv(path: Path, field_bytes: int) -> str:
    big = "x" * field_bytes
    path.write_text("id,note,amount\n1,a,10\n2," + big + ",20\n3,c,30\n")
    return big


def test_csv_field_over_the_limit_can_be_raised(tmp_path: Path) -> None:
    src = tmp_path / "big.csv"
    big = _big_csv(src, 5 << 20)
    policy = tmp_path / "p.yaml"
    policy.write_text("version: 1\ncontext: t\nviews:\n  v:\n    columns:\n"
                      "      - {name: note, operator: keep}\n")
    out = tmp_path / "out.csv"
    res = run("mask", "apply", src, "-o", out, "-p", policy, "-v", "v")
    assert res.exit_code == 2 and "--max-field-bytes" in res.stderr, res.output
    assert not out.exists()
    res = run("--max-field-bytes", "8M", "mask", "apply", src, "-o", out, "-p", policy,
              "-v", "v")
    assert res.exit_code == 0, res.output
    table = pacsv.read_csv(out, read_options=pacsv.ReadOptions(block_size=16 << 20))
    assert table.column("note").to_pylist()[1] == big
    # the environment variable, for `scan` too; and the next run is back to the default
    res = run("scan", src, "--format", "json", env={"COVAULT_MAX_FIELD_BYTES": "8MiB"})
    assert res.exit_code == 0, res.output
    from masking.io import DEFAULT_MAX_FIELD_BYTES, max_field_bytes

    assert run("scan", src).exit_code == 2 and max_field_bytes() == DEFAULT_MAX_FIELD_BYTES


@pytest.mark.parametrize("value", ["0", "12Q", "-1", "2G"])
def test_bad_field_limit_is_a_usage_error(value: str) -> None:
    res = run("--max-field-bytes", value, "scan", SAMPLE)
    assert res.exit_code == 2 and "--max-field-bytes" in res.output


def test_psi_reads_a_long_header_and_long_ids(tmp_path: Path) -> None:
    wide = tmp_path / "wide.csv"
    wide.write_text("id," + "h" * 200_000 + "\n1,2\n")  # a traceback before (csv module)
    res = run("psi", "request", "--ids", wide, "-c", "id", "--out-message", tmp_path / "r1",
              "--state", tmp_path / "s1")
    assert res.exit_code == 0, res.output
    src = tmp_path / "big.csv"
    _big_csv(src, 5 << 20)
    args = ["psi", "request", "--ids", src, "-c", "id", "--out-message", tmp_path / "r2",
            "--state", tmp_path / "s2"]
    res = run(*args)
    assert res.exit_code == 2 and "--max-field-bytes" in res.stderr, res.output
    res = run("--max-field-bytes", "6M", *args)
    assert res.exit_code == 0, res.output


def test_he_encrypt_reads_long_fields(tmp_path: Path) -> None:
    src = tmp_path / "big.csv"
    _big_csv(src, 5 << 20)
    keys = tmp_path / "keys"
    assert run("he", "keygen", "--bits", "2048", "--parties", "3", "--unencrypted-key",
               "-o", keys).exit_code == 0
    args = ["he", "encrypt", "--public", keys, "--column", "amount", "--id-column", "id",
            src, "-o", tmp_path / "a.cvhe"]
    res = run(*args)
    assert res.exit_code == 2 and "--max-field-bytes" in res.stderr, res.output
    res = run("--max-field-bytes", "6M", *args)
    assert res.exit_code == 0, res.output


# ------------------------------------------------------------------ (f) DJN exponent


def test_paillier_default_exponent_is_half_the_modulus() -> None:
    from privacy.he.paillier import PaillierPublicKey, generate_keypair

    pub, priv = generate_keypair(2048)
    assert pub.exponent_bits == 1024  # before: 224 (2*kappa) by default
    fast = PaillierPublicKey.from_n(pub.n, fast_randomness=True)
    assert fast.exponent_bits == 224 and fast.key_id != pub.key_id
    values = [0, 7, -(2**62), 2**62]
    assert priv.decrypt_raw(pub.encrypt_raw(values, workers=1), workers=1) == values
    with pytest.raises(Exception, match="not both"):
        PaillierPublicKey.from_n(pub.n, exponent_bits=300, fast_randomness=True)


def test_he_keygen_fast_randomness_is_opt_in(tmp_path: Path) -> None:
    from privacy.he import serial

    for flag, bits in (([], 1024), (["--fast-randomness"], 224)):
        out = tmp_path / f"k{bits}"
        res = run("he", "keygen", "--bits", "2048", "--parties", "3", *flag, "-o", out,
                  "--format", "json", "--unencrypted-key")
        assert res.exit_code == 0, res.output
        assert f"{bits}-bit DJN exponent" in json.loads(res.stdout)["detail"]
        pub = serial.read_file(out / serial.PUBLIC_FILE, kind="public_key")
        assert pub.exponent_bits == bits
    res = run("he", "keygen", "--scheme", "bfv", "--fast-randomness", "-o", tmp_path / "b")
    assert res.exit_code == 2 and "Paillier keys only" in res.stderr


# ------------------------------------------------------------------ (g) module caches


def _modules(*packages: str) -> Iterator[Any]:
    for name in packages:
        mod = importlib.import_module(name)
        yield mod
        if hasattr(mod, "__path__"):
            for info in pkgutil.iter_modules(mod.__path__, name + "."):
                yield importlib.import_module(info.name)


def _reachable(obj: Any, depth: int = 5) -> Iterator[Any]:
    yield obj
    if depth == 0:
        return
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _reachable(k, depth - 1)
            yield from _reachable(v, depth - 1)
    elif isinstance(obj, (list, tuple, set, frozenset)):
        for v in obj:
            yield from _reachable(v, depth - 1)


def _module_state(*packages: str) -> Iterator[tuple[str, Any]]:
    for mod in _modules(*packages):
        for name, value in vars(mod).items():
            if isinstance(value, (dict, list, set, tuple)) or hasattr(value, "cache_info"):
                yield f"{mod.__name__}.{name}", value


def test_field_ciphers_keep_no_key_material_in_module_caches() -> None:
    from privacy.fields import DeterministicCipher, FieldCipher, Tokenizer

    ciphers = [FieldCipher(Keyset.create("AES256_GCM")),
               DeterministicCipher(Keyset.create("AES256_SIV")),
               Tokenizer(Keyset.create("HMAC_SHA256"))]
    materials = {c._keyset.key_material() for c in ciphers}
    for c in ciphers:
        c.encrypt_many(pa.array(["a", "bb", None]), "t.c")
        c.encrypt("x", "t.c")
    packages = ("privacy.keys", "privacy.fields", "privacy.siv", "privacy.fpe")
    for where, value in _module_state(*packages):
        if hasattr(value, "cache_info"):  # before: _aesgcm, _batch_siv, _derive_context_key
            assert value.cache_info().currsize == 0, f"{where} caches derived keys"
        else:
            assert not materials & {v for v in _reachable(value) if isinstance(v, bytes)}, where
    for c in ciphers:  # the per-object caches are bounded and can be dropped
        assert 0 < len(c._derived) <= 256
        c.clear_cache()
        assert len(c._derived) == 0
        c.encrypt("y", "t.c")  # and are rebuilt


def test_paillier_keeps_no_private_numbers_in_module_state() -> None:
    from privacy.he.paillier import generate_keypair

    pub, priv = generate_keypair(2048)
    cts = pub.encrypt_raw(list(range(100)), workers=1)
    assert priv.decrypt_raw(cts, workers=1) == list(range(100))  # in this process
    secrets_ = {int(priv.p), int(priv.q)}
    gc.collect()
    for where, value in _module_state("privacy.he"):
        if hasattr(value, "cache_info"):
            continue  # check_public_numbers: public numbers only
        found = {int(v) for v in _reachable(value) if isinstance(v, int) or
                 type(v).__name__ == "mpz"}
        assert not secrets_ & found, f"{where} holds p or q"


def test_audit_database_is_created_0600(tmp_path: Path) -> None:
    """The audit database holds statements and bind parameters (customer ids): it is
    created readable by its owner only, like the ledgers."""
    import stat

    from privacy.audit.store import AuditStore

    db = tmp_path / "audit.db"
    with AuditStore(db):
        pass
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
