"""Fuzz keyset files (``privacy/keys.py``) and KEK files: random bytes, byte-level
mutations and JSON field mutations of a valid sealed keyset.

Nothing accepted wrongly: the header is authenticated (AES-GCM associated data), so a
mutated file that still opens must hold exactly the original keyset (same template,
primary, key ids, statuses, creation times and key material).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from covault.cli import main
from privacy.keys import Kek, Keyset

from ._fuzz import (
    DEEP_LIST,
    HUGE_INT,
    World,
    cli,
    fuzz_settings,
    mutate_bytes,
    mutate_json,
    note,
    outcome,
    random_bytes,
)

KEK_BYTES = bytes(range(32))
FAMILY = "keyset"


def _facts(ks: Keyset) -> tuple[Any, ...]:
    return (ks.template, ks.primary_id,
            [(i.key_id, i.status, i.created) for i in ks.info()],
            [ks._require(k, enabled_only=False).material for k in ks.key_ids])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    d = tmp_path_factory.mktemp("fuzz-keysets")
    kek = Kek.from_key_bytes(KEK_BYTES)
    ks = Keyset.create("AES256_SIV")
    ks.rotate()
    ks.disable(ks.key_ids[0])
    path = d / "good.json"
    ks.save(path, kek)
    kek_file = d / "kek.hex"
    kek_file.write_text(KEK_BYTES.hex())
    kek_file.chmod(0o600)
    return World(dir=d, kek=kek, kek_file=kek_file, text=path.read_bytes(),
                 facts=_facts(Keyset.load(path, kek)))


def _check(world: dict[str, Any], blob: bytes) -> None:
    path: Path = world["dir"] / "fuzz.json"
    path.write_bytes(blob)
    got = outcome(FAMILY, lambda: Keyset.load(path, world["kek"]))
    if isinstance(got, Keyset):
        assert _facts(got) == world["facts"], "a mutated keyset opened with other content"
        note(FAMILY, "accepted with content unchanged")
    info = outcome(f"{FAMILY} (read_info, unverified)", lambda: Keyset.read_info(path))
    if not isinstance(info, Exception):
        template, keys = info
        assert isinstance(template, str) and all(isinstance(k.key_id, int) for k in keys)


def test_valid_keyset_opens(world: dict[str, Any]) -> None:
    _check(world, world["text"])


@fuzz_settings(40)
@given(random_bytes())
@example(b"\x80")  # found: read_info raised UnicodeDecodeError
def test_random_bytes(world: dict[str, Any], blob: bytes) -> None:
    _check(world, blob)


@fuzz_settings(60)
@given(st.data())
def test_byte_mutations(world: dict[str, Any], data: st.DataObject) -> None:
    _check(world, mutate_bytes(data, world["text"]))


def _json_cases() -> list[str]:
    """Reproducers found by this campaign (see SECURITY.md, "Fuzzing")."""
    base = {"format": "covault-keyset", "version": 1, "template": "AES256_SIV",
            "primary_key_id": 1, "keys": [{"key_id": 1, "status": "enabled",
                                           "created": "x"}],
            "kek": {"kind": "keyfile", "salt": "AAAA"}, "encrypted_keys": "AAAA"}
    cases = []
    for field, raw in (("primary_key_id", HUGE_INT), ("primary_key_id", "[1]"),
                       ("keys", DEEP_LIST), ("kek", '{"kind": "keyfile", "salt": [1]}'),
                       ("template", "[1]"), ("encrypted_keys", "12")):
        doc = dict(base)
        doc[field] = "@RAW@"
        cases.append(json.dumps(doc).replace('"@RAW@"', raw))
    return cases


@fuzz_settings(120)
@given(st.data())
def test_field_mutations(world: dict[str, Any], data: st.DataObject) -> None:
    doc = json.loads(world["text"])
    _check(world, mutate_json(data, doc).encode("utf-8", "surrogatepass"))


@pytest.mark.parametrize("text", _json_cases())
def test_malformed_fields_are_keyfile_errors(world: dict[str, Any], text: str) -> None:
    _check(world, text.encode())


@fuzz_settings(40)
@given(st.one_of(random_bytes(), st.data()))
@example(b"")
@example(b"\x00" * 31)
@example(("z" * 64).encode())
def test_kek_files(world: dict[str, Any], blob: Any) -> None:
    if not isinstance(blob, bytes):
        blob = mutate_bytes(blob, KEK_BYTES.hex().encode())
    path: Path = world["dir"] / "fuzz.kek"
    path.write_bytes(blob)
    got = outcome("KEK file", lambda: Kek.from_key_file(path))
    if isinstance(got, Kek):
        # a KEK file that reads is some 32-byte key; only the real one opens the keyset
        opened = outcome(FAMILY, lambda: Keyset.load(world["dir"] / "good.json", got))
        if isinstance(opened, Keyset):
            assert _facts(opened) == world["facts"]


@fuzz_settings(25, deadline_s=5)
@given(st.data())
def test_cli_keys_show(world: dict[str, Any], data: st.DataObject) -> None:
    if data.draw(st.booleans(), label="json"):
        blob = mutate_json(data, json.loads(world["text"])).encode("utf-8", "surrogatepass")
    else:
        blob = mutate_bytes(data, world["text"])
    path: Path = world["dir"] / "cli.json"
    path.write_bytes(blob)
    args = ["keys", "show", str(path), "--kek-file", str(world["kek_file"])]
    if data.draw(st.booleans(), label="no-verify"):
        args.append("--no-verify")
    cli(FAMILY, main, args)
