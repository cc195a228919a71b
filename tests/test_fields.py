"""Field ciphers: known answers, round trips, rotation, tampering, batches."""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from hypothesis import given, settings
from hypothesis import strategies as st

from privacy.errors import DecryptionError, KeyNotFoundError, KeysetError
from privacy.fields import DeterministicCipher, FieldCipher, Tokenizer, token_key_id
from privacy.keys import Keyset
from privacy.siv import BatchSIV

VECTORS = Path(__file__).parent / "vectors"
CTX = "cif.customers.id_no"

CIPHERS = [
    ("AES256_GCM", FieldCipher),
    ("SM4_GCM", FieldCipher),
    ("AES256_SIV", DeterministicCipher),
]
ALL = CIPHERS + [("HMAC_SHA256", Tokenizer), ("HMAC_SM3", Tokenizer)]


def _cipher(template: str, cls: type) -> object:
    return cls(Keyset.create(template))


# -- known answers ------------------------------------------------------------------------
def _rfc5297() -> list[dict[str, object]]:
    return json.loads((VECTORS / "rfc5297.json").read_text())["cases"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("case", _rfc5297(), ids=lambda c: str(c["name"]))
def test_rfc5297_vectors_batch_and_reference(case: dict[str, str]) -> None:
    key = bytes.fromhex(case["key"])
    ad = [bytes.fromhex(a) for a in case["ad"]]  # type: ignore[union-attr]
    plain = bytes.fromhex(case["plaintext"])
    expected = bytes.fromhex(case["output"])
    assert AESSIV(key).encrypt(plain, ad) == expected
    mat = np.frombuffer(plain, dtype=np.uint8).reshape(1, -1)
    assert BatchSIV(key).encrypt(mat, ad).tobytes() == expected
    back, ok = BatchSIV(key).decrypt(np.frombuffer(expected, dtype=np.uint8).reshape(1, -1), ad)
    assert ok.all() and back.tobytes() == plain


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=70), min_size=1, max_size=20), st.sampled_from([32, 48, 64]))
def test_batch_siv_agrees_with_cryptography(values: list[bytes], key_len: int) -> None:
    key = bytes(range(key_len))
    ad = [b"\x01\x00\x00\x00\x07", b"ctx"]
    ref = AESSIV(key)
    for length in {len(v) for v in values}:
        group = [v for v in values if len(v) == length]
        mat = np.frombuffer(b"".join(group), dtype=np.uint8).reshape(len(group), length)
        out = BatchSIV(key).encrypt(mat, ad)
        assert [row.tobytes() for row in out] == [ref.encrypt(v, ad) for v in group]


# -- round trips --------------------------------------------------------------------------
@pytest.mark.parametrize("template,cls", CIPHERS)
@settings(max_examples=40, deadline=None)
@given(value=st.text(max_size=60))
def test_round_trip(template: str, cls: type, value: str) -> None:
    c = _cipher(template, cls)
    assert c.decrypt(c.encrypt(value, context=CTX), context=CTX) == value  # type: ignore[attr-defined]


@pytest.mark.parametrize("template,cls", CIPHERS)
@settings(max_examples=25, deadline=None)
@given(values=st.lists(st.one_of(st.none(), st.text(max_size=30)), max_size=40))
def test_batch_round_trip_keeps_nulls(template: str, cls: type, values: list[str | None]) -> None:
    c = _cipher(template, cls)
    enc = c.encrypt_many(pa.array(values, type=pa.string()), CTX)  # type: ignore[attr-defined]
    assert len(enc) == len(values)
    assert [v is None for v in enc.to_pylist()] == [v is None for v in values]
    assert c.decrypt_many(enc, CTX).to_pylist() == values  # type: ignore[attr-defined]
    for token, value in zip(enc.to_pylist(), values, strict=True):
        if token is not None:
            assert c.decrypt(token, CTX) == value  # type: ignore[attr-defined]


@pytest.mark.parametrize("template,cls", [c for c in ALL if c[1] is not FieldCipher])
def test_deterministic_batch_equals_scalar(template: str, cls: type) -> None:
    c = _cipher(template, cls)
    values = ["110105194912310021", "", "6222020200112233445", "张三", "110105194912310021"]
    batch = c.encrypt_many(values, CTX).to_pylist()  # type: ignore[attr-defined]
    assert batch == [c.encrypt(v, context=CTX) for v in values]  # type: ignore[attr-defined]
    assert batch[0] == batch[4]


def test_inputs_pandas_polars_and_chunked() -> None:
    import pandas as pd
    import polars as pl

    c = DeterministicCipher(Keyset.create("AES256_SIV"))
    expected = c.encrypt_many(["a", "bb"], CTX)
    assert c.encrypt_many(pd.Series(["a", "bb"]), CTX).equals(expected)
    assert c.encrypt_many(pl.Series(["a", "bb"]).to_arrow(), CTX).equals(expected)
    assert c.encrypt_many(pa.chunked_array([["a"], ["bb"]]), CTX).equals(expected)


def test_randomized_differs_each_time() -> None:
    c = FieldCipher(Keyset.create("AES256_GCM"))
    assert c.encrypt("x", CTX) != c.encrypt("x", CTX)


def test_tokens_carry_prefix_version_and_key_id() -> None:
    for template, cls in ALL:
        ks = Keyset.create(template)
        token = cls(ks).encrypt("v", context=CTX)
        assert token[:4] == cls.prefix
        raw = base64.urlsafe_b64decode(token[4:] + "=" * (-len(token[4:]) % 4))
        assert raw[0] == 1
        assert token_key_id(token) == ks.primary_id


def test_contexts_separate_columns() -> None:
    for template, cls in ALL:
        if cls is FieldCipher:
            continue
        c = _cipher(template, cls)
        assert c.encrypt("13800138000", context="a.mobile") != c.encrypt(  # type: ignore[attr-defined]
            "13800138000", context="b.mobile"
        )


def test_tokenizer_verify_and_not_reversible() -> None:
    tok = Tokenizer(Keyset.create("HMAC_SHA256"))
    t = tok.encrypt("13800138000", context=CTX)
    tok.verify("13800138000", t, context=CTX)
    with pytest.raises(DecryptionError):
        tok.verify("13800138001", t, context=CTX)
    assert not hasattr(tok, "decrypt")


def test_two_banks_sharing_a_keyset_join_on_tokens(tmp_path: Path) -> None:
    from privacy.keys import Kek

    kek = Kek.from_passphrase("shared")
    Keyset.create("AES256_SIV").save(tmp_path / "shared.json", kek)
    bank_a = DeterministicCipher(Keyset.load(tmp_path / "shared.json", kek))
    bank_b = DeterministicCipher(Keyset.load(tmp_path / "shared.json", kek))
    a = bank_a.encrypt_many(["1", "2", "3"], "partner.customer_id").to_pylist()
    b = bank_b.encrypt_many(["3", "4", "1"], "partner.customer_id").to_pylist()
    assert set(a) & set(b) == {a[0], a[2]}


# -- rotation and keys --------------------------------------------------------------------
@pytest.mark.parametrize("template,cls", CIPHERS)
def test_tokens_decrypt_across_rotation(template: str, cls: type) -> None:
    ks = Keyset.create(template)
    c = cls(ks)
    old = c.encrypt("6222020200112233445", context=CTX)
    old_batch = c.encrypt_many(["a", "b"], CTX)
    ks.rotate()
    new = c.encrypt("6222020200112233445", context=CTX)
    assert token_key_id(new) == ks.primary_id != token_key_id(old)
    assert c.decrypt(old, context=CTX) == c.decrypt(new, context=CTX)
    mixed = pa.concat_arrays([old_batch, c.encrypt_many(["c"], CTX)])
    assert c.decrypt_many(mixed, CTX).to_pylist() == ["a", "b", "c"]
    ks.disable(token_key_id(old))
    with pytest.raises(KeyNotFoundError, match=f"0x{token_key_id(old):08x}"):
        c.decrypt(old, context=CTX)


@pytest.mark.parametrize("template,cls", CIPHERS)
def test_unknown_key_id_is_named(template: str, cls: type) -> None:
    other = Keyset.create(template)
    token = cls(other).encrypt("x", context=CTX)
    with pytest.raises(KeyNotFoundError, match=f"0x{other.primary_id:08x}"):
        cls(Keyset.create(template)).decrypt(token, context=CTX)


def test_wrong_template_is_refused() -> None:
    with pytest.raises(KeysetError, match="AES256_SIV"):
        DeterministicCipher(Keyset.create("AES256_GCM"))
    with pytest.raises(KeysetError, match="HMAC_SHA256 or HMAC_SM3"):
        Tokenizer(Keyset.create("AES256_SIV"))


# -- tampering ----------------------------------------------------------------------------
@pytest.mark.parametrize("template,cls", CIPHERS)
def test_wrong_context_fails(template: str, cls: type) -> None:
    c = _cipher(template, cls)
    token = c.encrypt("x", context=CTX)  # type: ignore[attr-defined]
    with pytest.raises(DecryptionError):
        c.decrypt(token, context="cif.customers.mobile")  # type: ignore[attr-defined]
    with pytest.raises(DecryptionError):
        c.decrypt_many([token], "cif.customers.mobile")  # type: ignore[attr-defined]


def _flip(token: str, bit: int) -> str:
    prefix, text = token[:4], token[4:]
    raw = bytearray(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    raw[bit // 8] ^= 1 << (bit % 8)
    return prefix + base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


@pytest.mark.parametrize("template,cls", CIPHERS)
def test_ten_thousand_single_bit_flips_all_fail(template: str, cls: type) -> None:
    c = _cipher(template, cls)
    rng = random.Random(7)
    values = [f"{rng.randrange(10**18):018d}" for _ in range(50)]
    tokens = [c.encrypt(v, context=CTX) for v in values]  # type: ignore[attr-defined]
    failures = 0
    for i in range(10_000):
        token = tokens[i % len(tokens)]
        nbits = 8 * ((len(token) - 4) * 3 // 4)
        try:
            c.decrypt(_flip(token, rng.randrange(nbits)), context=CTX)  # type: ignore[attr-defined]
        except DecryptionError:
            failures += 1
    assert failures == 10_000


@pytest.mark.parametrize("template,cls", CIPHERS)
def test_malformed_text_tokens_fail(template: str, cls: type) -> None:
    c = _cipher(template, cls)
    token = c.encrypt("1234567890", context=CTX)  # type: ignore[attr-defined]
    bad_tokens = [token[:-1], token + "A", "xyz:" + token[4:], token[:4] + "!" + token[5:], ""]
    for bad in bad_tokens + [token[:8]]:
        with pytest.raises(DecryptionError):
            c.decrypt(bad, context=CTX)  # type: ignore[attr-defined]


def test_batch_decrypt_rejects_a_tampered_row() -> None:
    c = DeterministicCipher(Keyset.create("AES256_SIV"))
    tokens = c.encrypt_many([f"{i:018d}" for i in range(100)], CTX).to_pylist()
    tokens[37] = _flip(tokens[37], 70)
    with pytest.raises(DecryptionError, match="row 37"):
        c.decrypt_many(tokens, CTX)


def test_randomized_batch_never_reuses_a_nonce() -> None:
    c = FieldCipher(Keyset.create("AES256_GCM"))
    values = [str(10**i) for i in range(12)] * 20  # many length groups
    tokens = c.encrypt_many(values, CTX).to_pylist()
    nonces = [
        base64.urlsafe_b64decode(t[4:] + "=" * (-len(t[4:]) % 4))[5:17] for t in tokens
    ]
    assert len(set(nonces)) == len(nonces)
