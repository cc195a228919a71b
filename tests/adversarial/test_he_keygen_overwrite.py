"""Issue 11 (5): `he keygen -o EXISTING` and `scan --suggest-policy EXISTING` must not
silently overwrite.

Before the fix a second `covault he keygen -o keys` replaced ``keys/private.cvhe``, and
every aggregate made under the old key could never be decrypted again. Now both commands
refuse, as `keys create` does and through the same helper
(:func:`covault.console.refuse_overwrite`): exit 2, one line naming the existing file,
nothing written or modified. ``--force`` replaces the files atomically.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from covault.cli import main
from privacy.he import serial
from privacy.keys import Kek

ENV = {"COVAULT_PASSPHRASE": "adversarial-test-passphrase"}


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=ENV, catch_exceptions=False)


def keygen(folder: Path, *extra: str) -> Result:
    return run("he", "keygen", "--bits", "2048", "-o", str(folder), *extra)


def snapshot(folder: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every file in ``folder``: bytes, mode and mtime (temporary files included)."""
    return {p.name: (p.read_bytes(), p.stat().st_mode, p.stat().st_mtime_ns)
            for p in sorted(folder.iterdir())}


def refusal(path: Path) -> str:
    return f"error: {path} exists; pass --force to overwrite it"


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("he") / "keys"
    assert keygen(folder).exit_code == 0
    return folder


def test_keygen_refuses_an_existing_private_key(pair: Path, tmp_path: Path) -> None:
    before = snapshot(pair)
    ledger = tmp_path / "ledger.db"
    res = keygen(pair, "--ledger", str(ledger))
    assert res.exit_code == 2
    assert res.stderr.strip() == refusal(pair / serial.PRIVATE_FILE)
    assert res.stdout == ""
    assert snapshot(pair) == before  # nothing replaced, touched or left behind
    assert not ledger.exists()  # and nothing recorded


def test_keygen_refuses_a_folder_with_only_a_public_key(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    folder.mkdir()
    (folder / serial.PUBLIC_FILE).write_bytes(b"someone else's public key")
    res = keygen(folder)
    assert res.exit_code == 2 and res.stderr.strip() == refusal(folder / serial.PUBLIC_FILE)
    assert snapshot(folder)[serial.PUBLIC_FILE][0] == b"someone else's public key"
    assert [p.name for p in folder.iterdir()] == [serial.PUBLIC_FILE]


def test_keygen_force_replaces_the_pair_atomically(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "keys"
    assert keygen(folder).exit_code == 0
    old = snapshot(folder)

    # a failure while writing the second file of the new pair (the disk fills up) leaves
    # the old pair whole, first file included, and no temporary files
    real_fsync = os.fsync
    calls = []

    def failing_fsync(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="No space"):
        keygen(folder, "--force")
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert snapshot(folder) == old

    res = keygen(folder, "--force", "--format", "json")
    assert res.exit_code == 0, res.output
    new = snapshot(folder)
    assert sorted(new) == [serial.PRIVATE_FILE, serial.PUBLIC_FILE]
    assert new[serial.PRIVATE_FILE][0] != old[serial.PRIVATE_FILE][0]
    assert new[serial.PUBLIC_FILE][0] != old[serial.PUBLIC_FILE][0]
    assert new[serial.PRIVATE_FILE][1] & 0o777 == 0o600
    assert new[serial.PUBLIC_FILE][1] & 0o777 == 0o644
    pub = serial.read_file(folder, kind="public_key")
    priv = serial.read_file(folder, kind="private_key",
                            kek=Kek.from_passphrase(ENV["COVAULT_PASSPHRASE"]))
    assert pub.key_id == priv.public_key.key_id  # the new files are one pair


@pytest.fixture()
def table(tmp_path: Path) -> Path:
    path = tmp_path / "customers.csv"
    path.write_text("phone,amount\n" + "".join(f"1380013800{i},{i}\n" for i in range(10)),
                    encoding="utf-8")
    return path


def test_scan_suggest_policy_refuses_an_existing_file(table: Path, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("# reviewed by hand, do not lose\n", encoding="utf-8")
    before = snapshot(tmp_path)
    res = run("scan", str(table), "--suggest-policy", str(policy))
    assert res.exit_code == 2 and res.stderr.strip() == refusal(policy)
    assert res.stdout == ""
    assert snapshot(tmp_path) == before

    res = run("scan", str(table), "--suggest-policy", str(policy), "--force")
    assert res.exit_code == 0, res.output
    assert "cn_mobile" in policy.read_text(encoding="utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["customers.csv", "policy.yaml"]


def test_the_same_refusal_as_keys_create(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    path.write_text("{}", encoding="utf-8")
    res = run("keys", "create", "-t", "AES256_GCM", "-o", str(path))
    assert res.exit_code == 2 and res.stderr.strip() == refusal(path)
    assert path.read_text(encoding="utf-8") == "{}"
