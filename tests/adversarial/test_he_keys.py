"""Issue 11 (2): HE public keys are bound to their key id.

Before the fix the Paillier key id was SHA-256 of ``n`` alone and the TenSEAL key id was
read from the file, never recomputed. So a Paillier public key rewritten with ``h_s = 1``
kept its key id, and every "encryption" under it was ``(1 + n)**m mod n**2``, readable by
anyone as ``(c - 1) / n``; and a CKKS/BFV public context could be swapped for another
key's under the first key's id. Now the id is a SHA-256 over a canonical encoding of all
public parameters, recomputed on every load (mismatch: an error naming the file), ``h_s``
is checked as far as that is possible publicly, and format-1 files are refused with a
message saying to regenerate the keys.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import Any

import gmpy2
import numpy as np
import pytest
from click.testing import CliRunner

from covault.commands.he import he
from privacy.errors import HEError, SerializationError
from privacy.he import serial
from privacy.he.ckks import HEContext, generate_context
from privacy.he.packing import PackingLayout
from privacy.he.paillier import (
    PaillierPrivateKey,
    PaillierPublicKey,
    fingerprint_of,
    generate_keypair,
)
from privacy.he.paillier_keys import check_public_numbers
from privacy.he.secure_sum import aggregate, contribute, decrypt_aggregate


@pytest.fixture(scope="module")
def keys() -> tuple[PaillierPublicKey, PaillierPrivateKey]:
    return generate_keypair(2048)


@pytest.fixture(scope="module")
def ckks() -> HEContext:
    return generate_context("ckks-128-8192", layout=PackingLayout(parties=4))


def rewrite(data: bytes, *, fields: dict[str, bytes] | None = None,
            meta: dict[str, Any] | None = None, fingerprint: bytes | None = None) -> bytes:
    """What an attacker can do to any file: change fields, keep or replace the key id,
    and recompute the (unkeyed) integrity digest."""
    c = serial.unpack_container(data)
    new = dict(c.fields)
    if meta is not None:
        new["meta"] = json.dumps({**c.meta(), **meta}, sort_keys=True).encode()
    new.update(fields or {})
    return serial.pack_container(c.kind, c.scheme, fingerprint or c.fingerprint, new)


def ib(x: int) -> bytes:
    return int(x).to_bytes((int(x).bit_length() + 7) // 8 or 1, "big")


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# ------------------------------------------------------------------ Paillier
def test_hs_one_under_the_old_key_id_is_refused(keys: Any, tmp_path: Path) -> None:
    pub, _ = keys
    path = write(tmp_path / "public.cvhe",
                 rewrite(serial.dump_public_key(pub), fields={"hs": b"\x01"}))
    with pytest.raises(SerializationError,
                       match=rf"^{path}: key id {pub.key_id} does not match the key's public "
                             r"parameters"):
        serial.read_file(path, kind="public_key")
    # what the attack achieves where it is accepted: ciphertexts anyone can read
    m = 123456789
    c = pow(1 + pub.n, m, pub.nsquare)  # an encryption whose randomiser is 1**a
    assert (c - 1) // pub.n == m


@pytest.mark.parametrize("bad", ["one", "minus_one", "one_mod_n", "n_squared", "shares_p",
                                 "small_order"])
def test_trivial_hs_refused_even_with_a_recomputed_key_id(keys: Any, tmp_path: Path,
                                                          bad: str) -> None:
    pub, priv = keys
    n, n2 = pub.n, pub.nsquare
    hs = {
        "one": 1,
        "minus_one": n2 - 1,
        "one_mod_n": pow(1 + n, 12345, n2),  # (1+n)**t: randomiser leaks, h_s = 1 mod n
        "n_squared": n2,
        "shares_p": priv.p,
        # an n-th residue of order 3 mod n (needs the factors; the key holder could)
        "small_order": _order_three(priv.p, priv.q),
    }[bad]
    if bad == "small_order" and hs is None:
        pytest.skip("3 divides neither p - 1 nor q - 1")
    data = rewrite(serial.dump_public_key(pub), fields={"hs": ib(hs)},
                   fingerprint=fingerprint_of(n, hs, pub.exponent_bits))
    path = write(tmp_path / "public.cvhe", data)
    with pytest.raises(SerializationError, match=rf"^{path}: unsound Paillier public key"):
        serial.read_file(path, kind="public_key")
    with pytest.raises(HEError):
        PaillierPublicKey(n=n, hs=hs, exponent_bits=pub.exponent_bits)


def _order_three(p: int, q: int) -> int | None:
    """An element of order 3 modulo n (as an n-th residue mod n**2), or None."""
    n = p * q
    lam = int(gmpy2.lcm(p - 1, q - 1))
    if lam % 3:
        return None
    for g in range(2, 1000):
        x = pow(g, lam // 3, n)
        if x != 1:
            return pow(x, n, n * n)  # x**n mod n**2: same class mod n, an n-th residue
    return None


def test_another_valid_hs_under_the_old_id_is_refused(keys: Any, tmp_path: Path) -> None:
    pub, priv = keys
    other = PaillierPublicKey.from_n(pub.n)  # same n, a fresh DJN base
    assert other.hs != pub.hs and other.key_id != pub.key_id
    path = write(tmp_path / "public.cvhe",
                 rewrite(serial.dump_public_key(pub), fields={"hs": ib(other.hs)}))
    with pytest.raises(SerializationError, match=rf"^{path}: key id {pub.key_id} does not"):
        serial.read_file(path, kind="public_key")


def test_hs_that_is_not_an_nth_residue_is_caught_by_the_key_holder(
        keys: Any, tmp_path: Path) -> None:
    pub, priv = keys
    # same class mod n, so it passes every public check, but not an n-th residue:
    # encryptions under it decrypt to m + t*a (garbage) for the key holder
    hs = pub.hs * pow(1 + pub.n, 7, pub.nsquare) % pub.nsquare
    check_public_numbers(pub.n, hs, pub.exponent_bits)
    forged = PaillierPublicKey(n=pub.n, hs=hs, exponent_bits=pub.exponent_bits)
    assert forged.key_id != pub.key_id  # the key id gives the swap away
    data = rewrite(serial.dump_private_key(priv), fields={"hs": ib(hs)},
                   fingerprint=forged.fingerprint)
    path = write(tmp_path / "private.cvhe", data)
    with pytest.raises(SerializationError, match="not an n-th residue"):
        serial.read_file(path, kind="private_key")
    # and vectors made under the forged public key are refused by the real key holder
    lay = PackingLayout(32, 3)
    vecs = [contribute(forged, np.array([1, 2]), party=p, layout=lay, workers=1)
            for p in "abc"]
    with pytest.raises(HEError, match=f"encrypted under key {forged.key_id}, not {pub.key_id}"):
        decrypt_aggregate(priv, aggregate(vecs, workers=1), layout=lay)


def test_exponent_length_is_part_of_the_key_id(keys: Any, tmp_path: Path) -> None:
    pub, _ = keys
    for eb in (pub.exponent_bits + 8, 1 << 20):
        path = write(tmp_path / f"e{eb}.cvhe",
                     rewrite(serial.dump_public_key(pub), meta={"exponent_bits": eb}))
        with pytest.raises(SerializationError, match=rf"^{path}: key id"):
            serial.read_file(path, kind="public_key")
    with pytest.raises(HEError, match="longer than"):
        PaillierPublicKey(n=pub.n, hs=pub.hs, exponent_bits=4096)


def test_vector_under_a_rewritten_key_is_refused(keys: Any, tmp_path: Path) -> None:
    pub, _ = keys
    v = contribute(pub, np.array([5, 6]), party="a", layout=PackingLayout(32, 3), workers=1)
    path = write(tmp_path / "v.cvhe", rewrite(serial.dump_vector(v), fields={"hs": b"\x01"}))
    with pytest.raises(SerializationError, match=rf"^{path}: key id {pub.key_id}"):
        serial.read_file(path, kind="vector")


def test_key_id_is_a_hash_of_all_public_parameters(keys: Any) -> None:
    pub, priv = keys
    assert pub.fingerprint == fingerprint_of(pub.n, pub.hs, pub.exponent_bits)
    assert fingerprint_of(pub.n, pub.hs, pub.exponent_bits) != fingerprint_of(
        pub.n, pub.hs + 1, pub.exponent_bits)
    back = serial.load(serial.dump_private_key(priv), kind="private_key")
    assert back.public_key == pub and back.public_key.key_id == pub.key_id


def test_cli_names_the_tampered_file(keys: Any, tmp_path: Path) -> None:
    pub, priv = keys
    folder = tmp_path / "keys"
    serial.write_key_dir(folder, rewrite(serial.dump_public_key(pub), fields={"hs": b"\x01"}),
                         serial.dump_private_key(priv))
    src = tmp_path / "a.csv"
    src.write_text("amount\n1\n2\n")
    res = CliRunner().invoke(he, ["encrypt", "--public", str(folder), "--column", "amount",
                                  str(src), "-o", str(tmp_path / "a.cvhe")])
    assert res.exit_code == 2
    assert f"{folder / serial.PUBLIC_FILE}: key id {pub.key_id} does not match" in res.output
    assert not (tmp_path / "a.cvhe").exists()


# ------------------------------------------------------------------ CKKS / BFV
def test_ckks_context_swapped_under_another_key_id_is_refused(ckks: HEContext,
                                                              tmp_path: Path) -> None:
    attacker = generate_context("ckks-128-8192", layout=PackingLayout(parties=4))
    swapped = serial.dump_context(attacker.public())
    ctx_bytes = serial.unpack_container(swapped).fields["context"]
    path = write(tmp_path / "public.cvhe",
                 rewrite(serial.dump_context(ckks.public()), fields={"context": ctx_bytes}))
    with pytest.raises(SerializationError,
                       match=rf"^{path}: key id {ckks.key_id} does not match"):
        serial.read_file(path, kind="public_key")
    # the private file too (its secret key swapped for the attacker's)
    priv = serial.unpack_container(serial.dump_context(attacker)).fields["context"]
    path = write(tmp_path / "private.cvhe",
                 rewrite(serial.dump_context(ckks), fields={"context": priv}))
    with pytest.raises(SerializationError, match=rf"^{path}: key id {ckks.key_id}"):
        serial.read_file(path, kind="private_key")


@pytest.mark.parametrize("change", [{"layout": {"value_bits": 64, "parties": 1000, "scale": 1}},
                                    {"params": "ckks-128-16384"}, {"plain_modulus": 65537}])
def test_ckks_public_parameters_are_bound(ckks: HEContext, tmp_path: Path,
                                          change: dict[str, Any]) -> None:
    path = write(tmp_path / "public.cvhe",
                 rewrite(serial.dump_context(ckks.public()), meta=change))
    with pytest.raises(SerializationError, match=rf"^{path}: "):
        serial.read_file(path, kind="public_key")


def test_bfv_plain_modulus_and_layout_are_bound(tmp_path: Path) -> None:
    bfv = generate_context("bfv-128-4096", layout=PackingLayout(20, 3))
    data = serial.dump_context(bfv.public())
    for change in ({"plain_modulus": bfv.plain_modulus + 2 * 4096},
                   {"layout": {"value_bits": 20, "parties": 64, "scale": 1}}):
        path = write(tmp_path / "public.cvhe", rewrite(data, meta=change))
        with pytest.raises(SerializationError, match=rf"^{path}: "):
            serial.read_file(path, kind="public_key")
    back = serial.load(data, kind="public_key")
    assert back.fingerprint == bfv.fingerprint and back.plain_modulus == bfv.plain_modulus


def test_ckks_key_id_survives_round_trips(ckks: HEContext, tmp_path: Path) -> None:
    serial.write_key_dir(tmp_path / "k", serial.dump_context(ckks.public()),
                         serial.dump_context(ckks))
    pub = serial.read_file(tmp_path / "k", kind="public_key")
    priv = serial.read_file(tmp_path / "k", kind="private_key")
    assert pub.fingerprint == priv.fingerprint == ckks.fingerprint


# ------------------------------------------------------------------ old files
@pytest.mark.parametrize("which", ["paillier", "ckks"])
def test_format_one_files_are_refused_with_a_regenerate_message(
        keys: Any, ckks: HEContext, tmp_path: Path, which: str) -> None:
    data = serial.dump_public_key(keys[0]) if which == "paillier" else serial.dump_context(
        ckks.public())
    body = data[:4] + struct.pack(">B", 1) + data[5:-32]
    old = body + hashlib.sha256(body).digest()
    path = write(tmp_path / "public.cvhe", old)
    with pytest.raises(SerializationError,
                       match=rf"^{path}: format version 1.*Regenerate the keys"):
        serial.read_file(path, kind="public_key")
