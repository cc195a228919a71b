"""Issue 11 (5): HE and ledger private keys are encrypted at rest, as keysets are.

Before the fix `he keygen` wrote ``private.cvhe`` with the Paillier factors (or the
CKKS/BFV secret key) in the clear, and `ledger keygen` / `audit checkpoint --generate`
wrote plain PKCS#8 unless a password was asked for: whoever could read the file had the
key. Now both are sealed under a key-encryption key with the keysets' options and AEAD
(:mod:`privacy.sealed`: ``--kek-file``/``$COVAULT_KEK_FILE`` or a scrypt passphrase in
``$COVAULT_PASSPHRASE``/``--passphrase-env``); a plain key is written only with
``--unencrypted-key`` and read with a warning. A wrong KEK, a missing KEK, or any edit to
the file is one line on stderr and exit 2.
"""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives import serialization

from covault.cli import main
from privacy.errors import KeyfileError
from privacy.he import serial
from privacy.keys import Kek
from privacy.ledger import Ledger, load_signing_key

from . import _keyfiles as keyfiles

PASSPHRASE = "keys-at-rest passphrase"


def run(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    """The CLI with no KEK in its environment but what ``env`` names."""
    full: dict[str, str | None] = {"COVAULT_KEK_FILE": None, "COVAULT_PASSPHRASE": None}
    full.update(env or {})
    return CliRunner().invoke(main, [str(a) for a in args], env=full, catch_exceptions=False)


def kek_env(kek: Path) -> dict[str, str]:
    return {"COVAULT_KEK_FILE": str(kek)}


def one_line_error(res: Result) -> str:
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert "Traceback" not in res.output
    return lines[0]


def encodings(n: int) -> list[bytes]:
    """How a big integer could sit in a file: decimal, hex (both cases), big-endian bytes
    and their base64."""
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return [str(n).encode(), format(n, "x").encode(), format(n, "X").encode(), raw,
            base64.b64encode(raw)]


@pytest.fixture(scope="module")
def kek(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return keyfiles.kek_file(tmp_path_factory.mktemp("kek"))


@pytest.fixture(scope="module")
def paillier(tmp_path_factory: pytest.TempPathFactory, kek: Path) -> Path:
    folder = tmp_path_factory.mktemp("he") / "keys"
    res = run("he", "keygen", "--bits", "2048", "--parties", "3", "-o", folder,
              "--kek-file", kek, "--format", "json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["private_encrypted"] is True
    return folder


@pytest.fixture(scope="module")
def aggregate(tmp_path_factory: pytest.TempPathFactory, paillier: Path) -> Path:
    d = tmp_path_factory.mktemp("vec")
    src = d / "a.csv"
    src.write_text("id,amount\n1,10\n2,-3\n", encoding="utf-8")
    files = []
    for party in "abc":
        out = d / f"{party}.cvhe"
        res = run("he", "encrypt", "--public", paillier, "--column", "amount", "--id-column",
                  "id", "--party", party, src, "-o", out)
        assert res.exit_code == 0, res.output
        files.append(out)
    res = run("he", "aggregate", *files, "-o", d / "sum.cvhe")
    assert res.exit_code == 0, res.output
    return d / "sum.cvhe"


# ------------------------------------------------------------------ HE private keys

def test_paillier_private_key_is_not_on_disk_in_the_clear(paillier: Path, kek: Path) -> None:
    data = (paillier / serial.PRIVATE_FILE).read_bytes()
    assert not data.startswith(serial.MAGIC)
    doc = json.loads(data)
    assert doc["format"] == "covault-sealed-key" and doc["kek"]["kind"] == "keyfile"
    priv = serial.read_file(paillier, kind="private_key", kek=Kek.from_key_file(kek))
    p, q = priv.p, priv.q
    lam = math.lcm(p - 1, q - 1)
    for secret in (p, q, lam, p - 1, q - 1):
        for form in encodings(secret):
            assert form not in data
    # the key id stays readable without the KEK, and is the public key's
    pub = serial.read_file(paillier, kind="public_key")
    assert doc["public"]["key_id"] == pub.fingerprint.hex()
    assert (paillier / serial.PRIVATE_FILE).stat().st_mode & 0o777 == 0o600


def test_decrypt_with_the_kek_and_refusals_without(paillier: Path, aggregate: Path, kek: Path,
                                                   tmp_path: Path) -> None:
    out = tmp_path / "totals.csv"
    args = ("he", "decrypt", "--key", paillier, aggregate, "-o", out)
    res = run(*args, "--kek-file", kek)
    assert res.exit_code == 0, res.output
    assert out.read_text().splitlines() == ["id,amount", "1,30", "2,-9"]
    assert "not encrypted" not in res.stderr
    out.unlink()
    # same KEK from the environment
    assert run(*args, env=kek_env(kek)).exit_code == 0
    out.unlink()
    # no KEK at all: names the file and the options
    line = one_line_error(run(*args))
    assert str(paillier / serial.PRIVATE_FILE) in line and "COVAULT_PASSPHRASE" in line
    # a wrong key file: opaque, one line
    wrong = tmp_path / "wrong.kek"
    wrong.write_text("ab" * 32)
    wrong.chmod(0o600)
    line = one_line_error(run(*args, "--kek-file", wrong))
    assert "wrong passphrase or key-encryption key, or the file was altered" in line
    # a passphrase where a key file sealed it
    line = one_line_error(run(*args, env={"COVAULT_PASSPHRASE": "guess"}))
    assert "'keyfile' KEK" in line
    assert not out.exists()


@pytest.mark.parametrize("edit", ["ciphertext", "key_id", "kek_salt", "content", "truncate",
                                  "scrypt_bomb"])
def test_tampered_private_key_file_is_refused(paillier: Path, aggregate: Path, kek: Path,
                                              tmp_path: Path, edit: str) -> None:
    folder = tmp_path / "keys"
    folder.mkdir()
    (folder / serial.PUBLIC_FILE).write_bytes((paillier / serial.PUBLIC_FILE).read_bytes())
    data = (paillier / serial.PRIVATE_FILE).read_bytes()
    doc = json.loads(data)
    if edit == "ciphertext":
        blob = bytearray(base64.b64decode(doc["sealed"]))
        blob[len(blob) // 2] ^= 1
        doc["sealed"] = base64.b64encode(bytes(blob)).decode()
    elif edit == "key_id":
        doc["public"]["key_id"] = "00" * 32
    elif edit == "kek_salt":
        doc["kek"]["salt"] = base64.b64encode(bytes(16)).decode()
    elif edit == "content":
        doc["content"] = "ledger-signing-key"
    elif edit == "scrypt_bomb":  # 128 GiB of scrypt memory, asked before any check
        doc["kek"] = {"kind": "scrypt", "salt": doc["kek"]["salt"], "n": 2**30, "r": 8, "p": 1}
    text = json.dumps(doc).encode()
    (folder / serial.PRIVATE_FILE).write_bytes(text[:len(text) // 2] if edit == "truncate"
                                               else text)
    env = kek_env(kek) if edit != "scrypt_bomb" else {"COVAULT_PASSPHRASE": PASSPHRASE}
    out = tmp_path / "t.csv"
    line = one_line_error(run("he", "decrypt", "--key", folder, aggregate, "-o", out, env=env))
    assert str(folder / serial.PRIVATE_FILE) in line and not out.exists()
    if edit in ("ciphertext", "key_id", "kek_salt"):
        assert "wrong passphrase or key-encryption key, or the file was altered" in line
    if edit == "scrypt_bomb":
        assert "refuses this file before deriving anything" in line


def test_ckks_secret_context_is_sealed(tmp_path: Path, kek: Path) -> None:
    pytest.importorskip("tenseal")
    folder = tmp_path / "ckks"
    res = run("he", "keygen", "--scheme", "ckks", "--params", "ckks-128-8192", "-o", folder,
              "--kek-file", kek)
    assert res.exit_code == 0, res.output
    data = (folder / serial.PRIVATE_FILE).read_bytes()
    plain = serial.open_private(data, Kek.from_key_file(kek), source="t")
    context = serial.unpack_container(plain, kind="private_key").fields["context"]
    # neither the container nor the secret context shows, raw or base64 (the short magic
    # "CVHE" alone may occur by chance in megabytes of base64 ciphertext)
    sealed = base64.b64decode(json.loads(data)["sealed"])
    secret = context[-4096:-64]
    for blob in (data, sealed):
        assert plain[:64] not in blob and secret not in blob
    assert base64.b64encode(plain[:60]) not in data
    assert base64.b64encode(secret[:3000])[8:-8] not in data
    ctx = serial.read_file(folder, kind="private_key", kek=Kek.from_key_file(kek))
    assert ctx.is_private
    with pytest.raises(KeyfileError, match="encrypted at rest"):
        serial.read_file(folder, kind="private_key")


def test_keygen_without_a_kek_refuses_and_writes_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    line = one_line_error(run("he", "keygen", "--bits", "2048", "-o", folder))
    assert "--unencrypted-key" in line and "COVAULT_PASSPHRASE" in line
    assert not folder.exists() or not any(folder.iterdir())


def test_explicit_plaintext_key_works_with_warnings(tmp_path: Path, aggregate: Path,
                                                    paillier: Path) -> None:
    folder = tmp_path / "plain"
    res = run("he", "keygen", "--bits", "2048", "--parties", "3", "-o", folder,
              "--unencrypted-key", "--format", "json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["private_encrypted"] is False
    assert "warning:" in res.stderr and "unencrypted" in res.stderr
    assert (folder / serial.PRIVATE_FILE).read_bytes().startswith(serial.MAGIC)
    # reading a plain key works, with a warning (the aggregate is under another key)
    res = run("he", "decrypt", "--key", folder, aggregate, "-o", tmp_path / "o.csv")
    assert "not encrypted at rest" in res.stderr
    assert res.exit_code == 2 and "encrypted under key" in res.stderr
    line = one_line_error(run("he", "keygen", "--bits", "2048", "-o", tmp_path / "x",
                              "--unencrypted-key", "--kek-file", tmp_path / "k"))
    assert "exclude" in line


def test_passphrase_kek_uses_the_keyset_scrypt_parameters(tmp_path: Path,
                                                          aggregate: Path) -> None:
    folder = tmp_path / "pp"
    env = {"COVAULT_PASSPHRASE": PASSPHRASE}
    assert run("he", "keygen", "--bits", "2048", "--parties", "3", "-o", folder,
               env=env).exit_code == 0
    params = json.loads((folder / serial.PRIVATE_FILE).read_bytes())["kek"]
    assert (params["kind"], params["n"], params["r"], params["p"]) == ("scrypt", 2**17, 8, 1)
    priv = serial.read_file(folder, kind="private_key", kek=Kek.from_passphrase(PASSPHRASE))
    assert priv.public_key.bits == 2048
    line = one_line_error(run("he", "decrypt", "--key", folder, aggregate, "-o",
                              tmp_path / "o.csv", env={"COVAULT_PASSPHRASE": "not it"}))
    assert "wrong passphrase" in line


# ------------------------------------------------------------------ ledger signing keys

@pytest.fixture()
def ledger_db(tmp_path: Path) -> Path:
    path = tmp_path / "d.db"
    with Ledger(path, origin="bank-a.example/log") as lg:
        lg.append("masking.run", {"rows": 3})
    return path


def test_ledger_signing_key_is_sealed_and_signs(tmp_path: Path, kek: Path,
                                                ledger_db: Path) -> None:
    key, pub = tmp_path / "ledger.key", tmp_path / "ledger.pub"
    res = run("ledger", "keygen", "-o", key, "--public-out", pub, "--kek-file", kek,
              "--format", "json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["protection"] == "sealed under the KEK"
    data = key.read_bytes()
    assert b"PRIVATE KEY" not in data and key.stat().st_mode & 0o777 == 0o600
    secret = load_signing_key(key, kek=Kek.from_key_file(kek))
    raw = secret.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                               serialization.NoEncryption())
    assert raw not in data and base64.b64encode(raw) not in data and raw.hex().encode() \
        not in data
    cp = tmp_path / "cp.txt"
    assert run("ledger", "checkpoint", ledger_db, "-k", key, "-o", cp,
               "--kek-file", kek).exit_code == 0
    res = run("ledger", "verify", ledger_db, "--checkpoint", cp, "--public-key", pub)
    assert res.exit_code == 0, res.output
    # without the KEK, with a wrong one, or altered: exit 2, nothing written
    line = one_line_error(run("ledger", "checkpoint", ledger_db, "-k", key, "-o",
                              tmp_path / "c2.txt"))
    assert str(key) in line and "sealed under a key-encryption key" in line
    wrong = tmp_path / "wrong.kek"
    wrong.write_text("cd" * 32)
    wrong.chmod(0o600)
    line = one_line_error(run("ledger", "checkpoint", ledger_db, "-k", key, "-o",
                              tmp_path / "c2.txt", "--kek-file", wrong))
    assert "wrong passphrase or key-encryption key" in line
    doc = json.loads(data)
    doc["public"]["ed25519"] = base64.b64encode(bytes(32)).decode()
    key.write_text(json.dumps(doc))
    line = one_line_error(run("ledger", "checkpoint", ledger_db, "-k", key, "-o",
                              tmp_path / "c2.txt", "--kek-file", kek))
    assert "altered" in line and not (tmp_path / "c2.txt").exists()


def test_ledger_keygen_needs_a_kek_or_the_explicit_flag(tmp_path: Path, ledger_db: Path) -> None:
    key = tmp_path / "k.pem"
    line = one_line_error(run("ledger", "keygen", "-o", key))
    assert "--unencrypted-key" in line and not key.exists()
    res = run("ledger", "keygen", "-o", key, "--unencrypted-key")
    assert res.exit_code == 0 and "warning:" in res.stderr
    assert b"BEGIN PRIVATE KEY" in key.read_bytes()
    res = run("ledger", "checkpoint", ledger_db, "-k", key, "-o", tmp_path / "cp.txt")
    assert res.exit_code == 0 and "not encrypted at rest" in res.stderr


def test_audit_checkpoint_generates_a_sealed_key(tmp_path: Path, kek: Path) -> None:
    pytest.importorskip("sqlglot")
    from privacy.audit.store import AuditStore

    db = tmp_path / "audit.db"
    AuditStore(db).close()
    key, cp = tmp_path / "audit.key", tmp_path / "audit.cp"
    res = run("audit", "checkpoint", "--db", db, "--key", key, "--generate", "-o", cp,
              env=kek_env(kek))
    assert res.exit_code == 0, res.output
    assert b"covault-sealed-key" in key.read_bytes() and cp.exists()
    line = one_line_error(run("audit", "checkpoint", "--db", db, "--key", key, "-o", cp))
    assert str(key) in line


def test_he_signing_keys_take_the_kek_options(tmp_path: Path, kek: Path,
                                              paillier: Path) -> None:
    key = tmp_path / "bank-a.key"
    assert run("ledger", "keygen", "-o", key, "--kek-file", kek).exit_code == 0
    src = tmp_path / "a.csv"
    src.write_text("id,amount\n1,10\n", encoding="utf-8")
    args = ("he", "encrypt", "--public", paillier, "--column", "amount", "--id-column", "id",
            src, "--signing-key", key, "-o", tmp_path / "a.cvhe")
    line = one_line_error(run(*args))
    assert str(key) in line
    res = run(*args, "--kek-file", kek, "--format", "json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["signer"] is not None


def test_library_refuses_a_sealed_key_without_its_kek(tmp_path: Path, kek: Path,
                                                      paillier: Path) -> None:
    key = tmp_path / "l.key"
    assert run("ledger", "keygen", "-o", key, "--kek-file", kek).exit_code == 0
    with pytest.raises(KeyfileError, match="sealed under a key-encryption key|encrypted"):
        load_signing_key(key)
    with pytest.raises(KeyfileError, match="encrypted at rest"):
        serial.read_file(paillier, kind="private_key")
    with pytest.raises(KeyfileError, match="holds a 'ledger-signing-key'"):
        serial.open_private(key.read_bytes(), Kek.from_key_file(kek), source="x")
