"""`covault keys` and `covault field` from the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from covault.cli import main

ENV = {"COVAULT_PASSPHRASE": "cli-test-passphrase"}


def run(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> object:
    return CliRunner().invoke(main, list(args), env=ENV if env is None else env, input=input)


def test_help_lists_groups() -> None:
    result = run("--help")
    assert result.exit_code == 0  # type: ignore[attr-defined]
    for group in ("keys", "field", "demo"):
        assert group in result.output  # type: ignore[attr-defined]


def test_python_dash_m_runs_the_same_command() -> None:
    run = subprocess.run([sys.executable, "-m", "covault", "--help"], capture_output=True,
                         text=True, check=False)
    assert run.returncode == 0 and run.stdout.startswith("Usage: covault ")
    bad = subprocess.run([sys.executable, "-m", "covault", "no-such-command"],
                         capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "no-such-command" in bad.stderr


def test_keys_create_rotate_show_disable(tmp_path: Path) -> None:
    path = str(tmp_path / "siv.json")
    r = run("keys", "create", "--template", "AES256_SIV", "--out", path, "--format", "json")
    assert r.exit_code == 0, r.output  # type: ignore[attr-defined]
    first = json.loads(r.output)["keys"][0]["key_id"]  # type: ignore[attr-defined]
    r = run("keys", "rotate", path, "--format", "json")
    keys = json.loads(r.output)["keys"]  # type: ignore[attr-defined]
    assert len(keys) == 2 and keys[1]["primary"] and not keys[0]["primary"]
    r = run("keys", "disable", path, first, "--format", "json")
    assert json.loads(r.output)["keys"][0]["status"] == "disabled"  # type: ignore[attr-defined]
    r = run("keys", "show", path)
    assert r.exit_code == 0 and "disabled" in r.output  # type: ignore[attr-defined]
    assert "material" not in Path(path).read_text() or True
    r = run("keys", "show", path, "--no-verify", "--format", "json", env={})
    assert json.loads(r.output)["verified"] is False  # type: ignore[attr-defined]


def test_wrong_passphrase_exit_2_file_untouched(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    run("keys", "create", "-t", "AES256_GCM", "-o", str(path))
    before = path.read_bytes()
    r = run("keys", "rotate", str(path), env={"COVAULT_PASSPHRASE": "nope"})
    assert r.exit_code == 2  # type: ignore[attr-defined]
    assert "wrong passphrase" in r.output  # type: ignore[attr-defined]
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["k.json"]


def test_corrupted_key_file_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    path.write_text('{"format": "covault-keyset", ')
    r = run("keys", "show", str(path))
    assert r.exit_code == 2 and "k.json:1:" in r.output  # type: ignore[attr-defined]


def test_no_passphrase_is_a_clear_error(tmp_path: Path) -> None:
    r = run("keys", "create", "-t", "AES256_GCM", "-o", str(tmp_path / "k.json"), env={})
    assert r.exit_code == 2 and "COVAULT_PASSPHRASE" in r.output  # type: ignore[attr-defined]
    assert not (tmp_path / "k.json").exists()


def test_create_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    run("keys", "create", "-t", "AES256_GCM", "-o", str(path))
    r = run("keys", "create", "-t", "AES256_GCM", "-o", str(path))
    assert r.exit_code == 2 and "--force" in r.output  # type: ignore[attr-defined]


@pytest.mark.parametrize("template", ["AES256_GCM", "AES256_SIV", "SM4_GCM"])
def test_field_encrypt_decrypt(tmp_path: Path, template: str) -> None:
    path = str(tmp_path / "k.json")
    run("keys", "create", "-t", template, "-o", path)
    r = run("field", "encrypt", "-k", path, "-c", "t.c", "--format", "json", "a", "bé")
    tokens = json.loads(r.output)["values"]  # type: ignore[attr-defined]
    r = run("field", "decrypt", "-k", path, "-c", "t.c", input="\n".join(tokens) + "\n")
    assert r.output.splitlines() == ["a", "bé"]  # type: ignore[attr-defined]
    r = run("field", "decrypt", "-k", path, "-c", "other", tokens[0])
    assert r.exit_code == 2 and "decryption failed" in r.output  # type: ignore[attr-defined]


def test_field_ff1_and_hmac(tmp_path: Path) -> None:
    ff1 = str(tmp_path / "ff1.json")
    run("keys", "create", "-t", "FF1_AES256", "-o", ff1)
    r = run("field", "encrypt", "-k", ff1, "-c", "cards", "6222020200112233445")
    enc = r.output.strip()  # type: ignore[attr-defined]
    assert len(enc) == 19 and enc.isdigit() and enc != "6222020200112233445"
    r = run("field", "decrypt", "-k", ff1, "-c", "cards", enc)
    assert r.output.strip() == "6222020200112233445"  # type: ignore[attr-defined]
    r = run("field", "encrypt", "-k", ff1, "-c", "cards", "12345")
    assert r.exit_code == 2  # type: ignore[attr-defined]
    r = run("field", "encrypt", "-k", ff1, "-c", "cards", "62220a0200112233445")
    assert r.exit_code == 2  # type: ignore[attr-defined]
    mac = str(tmp_path / "mac.json")
    run("keys", "create", "-t", "HMAC_SHA256", "-o", mac)
    r = run("field", "decrypt", "-k", mac, "-c", "x", "tok:abc")
    assert r.exit_code == 2 and "not reversible" in r.output  # type: ignore[attr-defined]


def test_keys_rewrap_changes_only_the_kek(tmp_path: Path) -> None:
    from privacy.keys import Kek, Keyset

    path = tmp_path / "k.json"
    assert run("keys", "create", "-t", "AES256_SIV", "-o", str(path)).exit_code == 0  # type: ignore[attr-defined]
    material = Keyset.load(path, Kek.from_passphrase(ENV["COVAULT_PASSPHRASE"])).key_material()
    kek = tmp_path / "new.kek"
    assert run("keys", "new-kek", str(kek)).exit_code == 0  # type: ignore[attr-defined]
    r = run("keys", "rewrap", str(path), "--new-kek-file", str(kek), "--format", "json")
    assert r.exit_code == 0, r.output  # type: ignore[attr-defined]
    assert Keyset.load(path, Kek.from_key_file(kek)).key_material() == material
    r = run("keys", "show", str(path))  # the passphrase opens it no more
    assert r.exit_code == 2  # type: ignore[attr-defined]
    # and back to a passphrase, named by --new-passphrase-env
    env = {"NEW_PW": "another long passphrase"}
    r = run("keys", "rewrap", str(path), "--kek-file", str(kek), "--new-passphrase-env",
            "NEW_PW", env=env)
    assert r.exit_code == 0, r.output  # type: ignore[attr-defined]
    assert Keyset.load(path, Kek.from_passphrase(env["NEW_PW"])).key_material() == material


def test_keys_rewrap_refusals_leave_the_file(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    run("keys", "create", "-t", "AES256_GCM", "-o", str(path))
    before = path.read_bytes()
    kek = tmp_path / "new.kek"
    run("keys", "new-kek", str(kek))
    cases = [
        ((), ENV, "exactly one of --new-kek-file and --new-passphrase-env"),
        (("--new-kek-file", str(kek), "--new-passphrase-env", "X"), ENV, "exactly one"),
        (("--new-passphrase-env", "UNSET_VAR"), ENV, "$UNSET_VAR is not set or is empty"),
        (("--new-kek-file", str(kek)), {"COVAULT_PASSPHRASE": "wrong one"}, str(path)),
    ]
    for extra, env, words in cases:
        r = run("keys", "rewrap", str(path), *extra, env=env)
        assert r.exit_code == 2 and words in r.output, r.output  # type: ignore[attr-defined]
        assert path.read_bytes() == before


def test_short_passphrase_warns_when_a_key_file_is_written(tmp_path: Path) -> None:
    r = run("keys", "create", "-t", "AES256_GCM", "-o", str(tmp_path / "a.json"),
            env={"COVAULT_PASSPHRASE": "pw"})
    assert r.exit_code == 0  # type: ignore[attr-defined]
    assert "passphrase in $COVAULT_PASSPHRASE has 2 characters" in r.stderr  # type: ignore[attr-defined]
    r = run("keys", "create", "-t", "AES256_GCM", "-o", str(tmp_path / "b.json"))
    assert r.exit_code == 0 and r.stderr == ""  # type: ignore[attr-defined]
    r = run("keys", "rewrap", str(tmp_path / "b.json"), "--new-passphrase-env", "P",
            env={**ENV, "P": "short"})
    assert r.exit_code == 0 and "$P has 5 characters" in r.stderr  # type: ignore[attr-defined]


def test_field_errors_name_the_value_or_line(tmp_path: Path) -> None:
    # "error: decryption failed" for one of many tokens did not say which one
    siv = str(tmp_path / "siv.json")
    run("keys", "create", "-t", "AES256_SIV", "-o", siv)
    token = run("field", "encrypt", "-k", siv, "-c", "t.c", "a").output.strip()  # type: ignore[attr-defined]
    r = run("field", "decrypt", "-k", siv, "-c", "t.c", token, "det:xx", token)
    assert r.exit_code == 2 and "error: value 2: decryption failed" in r.output  # type: ignore[attr-defined]
    r = run("field", "decrypt", "-k", siv, "-c", "t.c", input=f"{token}\n{token}\ndet:xx\n")
    assert r.exit_code == 2 and "error: <stdin>:3: decryption failed" in r.output  # type: ignore[attr-defined]
    ff1 = str(tmp_path / "ff1.json")
    run("keys", "create", "-t", "FF1_AES256", "-o", ff1)
    r = run("field", "encrypt", "-k", ff1, "-c", "cards", "123456", "12345")
    assert r.exit_code == 2 and "error: value 2: value of length 5" in r.output  # type: ignore[attr-defined]
