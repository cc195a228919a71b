"""Keysets: templates, rotation, files, misuse."""

from __future__ import annotations

import copy
import json
import pickle
from pathlib import Path

import pytest

from privacy.errors import KeyfileError, KeyNotFoundError, KeysetError
from privacy.keys import TEMPLATES, Kek, Keyset


@pytest.mark.parametrize("template", list(TEMPLATES))
def test_create_every_template(template: str) -> None:
    ks = Keyset.create(template)
    assert ks.template == template
    assert len(ks.key_material()) == TEMPLATES[template].key_size
    assert ks.primary_id in ks.key_ids
    assert 0 < ks.primary_id < 2**32


def test_unknown_template_is_named() -> None:
    with pytest.raises(KeysetError, match="AES128_CBC"):
        Keyset.create("AES128_CBC")


def test_rotate_keeps_old_keys_and_switches_primary() -> None:
    ks = Keyset.create("AES256_SIV")
    old = ks.primary_id
    new = ks.rotate()
    assert new != old and ks.primary_id == new
    assert ks.key_material(old) != ks.key_material(new)
    assert [i.primary for i in ks.info()] == [False, True]


def test_disable_and_enable() -> None:
    ks = Keyset.create("AES256_GCM")
    old = ks.primary_id
    with pytest.raises(KeysetError, match="primary"):
        ks.disable(old)
    ks.rotate()
    ks.disable(old)
    with pytest.raises(KeyNotFoundError, match=f"0x{old:08x}"):
        ks.key_material(old)
    ks.enable(old)
    assert ks.key_material(old)


def test_unknown_key_id_is_named() -> None:
    ks = Keyset.create("AES256_GCM")
    with pytest.raises(KeyNotFoundError, match="0x0000002a"):
        ks.key_material(42)


def test_refuses_pickle_and_copy_and_hides_secrets() -> None:
    ks = Keyset.create("HMAC_SHA256")
    with pytest.raises(TypeError, match="pickle"):
        pickle.dumps(ks)
    with pytest.raises(TypeError):
        copy.deepcopy(ks)
    text = repr(ks) + str(ks)
    material = ks.key_material()
    assert material.hex() not in text and str(material) not in text
    with pytest.raises(TypeError):
        pickle.dumps(Kek.from_passphrase("x"))


def test_save_load_round_trip_passphrase(tmp_path: Path) -> None:
    ks = Keyset.create("AES256_SIV")
    ks.rotate()
    path = tmp_path / "k.json"
    ks.save(path, Kek.from_passphrase("s3cret"))
    assert path.stat().st_mode & 0o777 == 0o600
    doc = json.loads(path.read_text())
    assert ks.key_material().hex() not in path.read_text()
    assert doc["kek"]["kind"] == "scrypt"
    back = Keyset.load(path, Kek.from_passphrase("s3cret"))
    assert back.primary_id == ks.primary_id
    assert all(back.key_material(k) == ks.key_material(k) for k in ks.key_ids)


def test_wrong_passphrase(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    Keyset.create("AES256_GCM").save(path, Kek.from_passphrase("right"))
    with pytest.raises(KeyfileError, match="wrong passphrase"):
        Keyset.load(path, Kek.from_passphrase("wrong"))


def test_wrong_kek_kind(tmp_path: Path, kek: Kek) -> None:
    path = tmp_path / "k.json"
    Keyset.create("AES256_GCM").save(path, kek)
    with pytest.raises(KeyfileError, match="keyfile"):
        Keyset.load(path, Kek.from_passphrase("x"))


@pytest.mark.parametrize(
    "tamper",
    [
        lambda d: d.update(primary_key_id=d["keys"][0]["key_id"] ^ 1),
        lambda d: d["keys"][0].update(status="disabled"),
        lambda d: d["keys"][0].update(created="2001-01-01T00:00:00+00:00"),
        lambda d: d.update(template="AES256_GCM"),
        lambda d: d.update(
            encrypted_keys=d["encrypted_keys"][:-6]
            + ("A" if d["encrypted_keys"][-6] != "A" else "B")
            + d["encrypted_keys"][-5:]
        ),
    ],
    ids=["primary", "status", "created", "template", "material"],
)
def test_altered_file_is_rejected(tmp_path: Path, kek: Kek, tamper: object) -> None:
    ks = Keyset.create("AES256_SIV")
    ks.rotate()
    path = tmp_path / "k.json"
    ks.save(path, kek)
    doc = json.loads(path.read_text())
    tamper(doc)  # type: ignore[operator]
    path.write_text(json.dumps(doc))
    with pytest.raises(KeyfileError):
        Keyset.load(path, kek)


def test_corrupted_file_names_location(tmp_path: Path, kek: Kek) -> None:
    path = tmp_path / "k.json"
    Keyset.create("AES256_SIV").save(path, kek)
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    with pytest.raises(KeyfileError, match=r"k\.json:\d+:\d+"):
        Keyset.load(path, kek)
    path.write_text("{}")
    with pytest.raises(KeyfileError, match="not a covault keyset"):
        Keyset.load(path, kek)
    with pytest.raises(KeyfileError, match="no such"):
        Keyset.load(tmp_path / "missing.json", kek)


def test_kek_file_forms(tmp_path: Path) -> None:
    raw = bytes(range(32))
    (tmp_path / "raw").write_bytes(raw)
    (tmp_path / "hex").write_text(raw.hex() + "\n")
    ks = Keyset.create("AES256_GCM")
    ks.save(tmp_path / "k.json", Kek.from_key_file(tmp_path / "raw"))
    back = Keyset.load(tmp_path / "k.json", Kek.from_key_file(tmp_path / "hex"))
    assert back.key_material() == ks.key_material()
    (tmp_path / "short").write_bytes(b"abc")
    with pytest.raises(KeyfileError, match="32 bytes"):
        Kek.from_key_file(tmp_path / "short")
    Kek.generate_key_file(tmp_path / "new.kek")
    assert len(bytes.fromhex((tmp_path / "new.kek").read_text().strip())) == 32


def test_kek_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("COVAULT_PASSPHRASE", raising=False)
    monkeypatch.delenv("COVAULT_KEK_FILE", raising=False)
    with pytest.raises(KeysetError, match="COVAULT_PASSPHRASE") as info:
        Kek.from_env()
    assert "empty" not in str(info.value)
    monkeypatch.setenv("COVAULT_PASSPHRASE", "")  # set, but to nothing: said so
    with pytest.raises(KeysetError, match="COVAULT_PASSPHRASE is set but empty"):
        Kek.from_env()
    monkeypatch.setenv("COVAULT_PASSPHRASE", "pw")
    assert repr(Kek.from_env()) == "Kek(kind='scrypt')"


def test_kek_file_open_to_other_users_warns(tmp_path: Path) -> None:
    import warnings

    from privacy.keys import InsecureKeyFileWarning

    path = tmp_path / "kek.hex"
    Kek.generate_key_file(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Kek.from_key_file(path)  # 0600: silent
    for mode in (0o644, 0o660, 0o602):
        path.chmod(mode)
        with pytest.warns(InsecureKeyFileWarning, match=rf"kek.hex: KEK file is open to other "
                                                        rf"users \(mode {mode:04o}\); restrict "
                                                        "it: chmod 600"):
            Kek.from_key_file(path)
