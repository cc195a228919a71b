"""FF1 (privacy.fpe): NIST samples, libffx agreement, batch == scalar, helpers, misuse."""

from __future__ import annotations

import json
import pickle
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privacy.errors import CryptoError, DomainError, InputError
from privacy.fpe import ALPHABET, FF1, MIN_DOMAIN

ffx = pytest.importorskip("ffx")  # the libffx package: an independent FF1 implementation

SAMPLES = json.loads((Path(__file__).parent / "vectors" / "ff1_nist.json").read_text())["samples"]
KEY = bytes(range(32))


def _cipher(s: dict[str, str]) -> FF1:
    return FF1(bytes.fromhex(s["key"]), int(s["radix"]))


# ---- NIST SP 800-38G samples --------------------------------------------------------------


def test_nist_file_has_nine_samples_all_above_min_domain() -> None:
    assert [s["sample"] for s in SAMPLES] == list(range(1, 10))
    assert {s["aes"] for s in SAMPLES} == {128, 192, 256}
    for s in SAMPLES:
        assert len(bytes.fromhex(s["key"])) * 8 == s["aes"]
        # All nine domains (10**10 and 36**19) reach the 10**6 minimum.
        assert s["radix"] ** len(s["plaintext"]) >= MIN_DOMAIN


@pytest.mark.parametrize("s", SAMPLES, ids=lambda s: f"sample{s['sample']}")
def test_nist_sample_scalar(s: dict[str, str]) -> None:
    tweak = bytes.fromhex(s["tweak"])
    assert _cipher(s).encrypt(s["plaintext"], tweak) == s["ciphertext"]
    assert _cipher(s).decrypt(s["ciphertext"], tweak) == s["plaintext"]
    # tweak given at construction is the default
    f = FF1(bytes.fromhex(s["key"]), int(s["radix"]), tweak)
    assert f.encrypt(s["plaintext"]) == s["ciphertext"]


@pytest.mark.parametrize("s", SAMPLES, ids=lambda s: f"sample{s['sample']}")
def test_nist_sample_batched(s: dict[str, str]) -> None:
    f, tweak = _cipher(s), bytes.fromhex(s["tweak"])
    col = pa.array([s["plaintext"], None, s["plaintext"]])
    assert f.encrypt_many(col, tweak).to_pylist() == [s["ciphertext"], None, s["ciphertext"]]
    back = f.decrypt_many([s["ciphertext"]] * 2, tweak)
    assert back.to_pylist() == [s["plaintext"]] * 2


# ---- agreement with libffx ----------------------------------------------------------------


def _random_values(rng: random.Random, radix: int, lengths: list[int], count: int) -> list[str]:
    alphabet = ALPHABET[:radix]
    return ["".join(rng.choices(alphabet, k=rng.choice(lengths))) for _ in range(count)]


@pytest.mark.parametrize(
    ("radix", "lengths"),
    [
        # fast path up to radix**ceil(n/2) < 2**63 (n <= 36 / n <= 24); beyond: scalar fallback
        (10, list(range(6, 37)) + [37, 41]),
        (36, list(range(4, 25)) + [25, 30]),
    ],
)
def test_batched_agrees_with_libffx(radix: int, lengths: list[int]) -> None:
    rng = random.Random(radix)
    for key_size, tweak, count in ((16, b"", 3000), (24, b"\x00" * 13, 3000), (32, b"col", 4000)):
        key = rng.randbytes(key_size)
        values = _random_values(rng, radix, lengths, count)
        ours = FF1(key, radix).encrypt_many(values, tweak).to_pylist()
        theirs = ffx.FF1(key, radix=radix)
        assert ours == [theirs.encrypt(v, tweak=tweak) for v in values]
        assert FF1(key, radix, tweak).decrypt_many(ours).to_pylist() == values


# ---- properties ---------------------------------------------------------------------------


@st.composite
def _plain(draw: st.DrawFn) -> tuple[int, str, bytes]:
    radix = draw(st.integers(2, 36))
    min_len = next(n for n in range(1, 64) if radix**n >= MIN_DOMAIN)
    n = draw(st.integers(min_len, min_len + 30))
    text = draw(st.text(alphabet=ALPHABET[:radix], min_size=n, max_size=n))
    return radix, text, draw(st.binary(max_size=40))


@settings(max_examples=150, deadline=None)
@given(_plain(), st.sampled_from([16, 24, 32]))
def test_scalar_round_trip_keeps_length_and_alphabet(case: tuple[int, str, bytes], ks: int) -> None:
    radix, text, tweak = case
    f = FF1(KEY[:ks], radix, tweak)
    y = f.encrypt(text)
    assert len(y) == len(text) and set(y) <= set(ALPHABET[:radix])
    assert f.decrypt(y) == text


@settings(max_examples=60, deadline=None)
@given(st.lists(_plain(), min_size=1, max_size=12))
def test_batch_round_trip_and_equals_scalar(cases: list[tuple[int, str, bytes]]) -> None:
    radix, _, tweak = cases[0]
    values = [t for r, t, _ in cases if r == radix]
    f = FF1(KEY[:16], radix)
    out = f.encrypt_many(values, tweak)
    assert out.to_pylist() == [f.encrypt(v, tweak) for v in values]
    assert f.decrypt_many(out, tweak).to_pylist() == values


def test_batch_equals_scalar_on_mixed_lengths_with_nulls() -> None:
    rng = random.Random(7)
    for radix, lengths in ((10, [6, 7, 11, 16, 18, 19, 28, 38]), (36, [4, 5, 9, 13, 24, 26])):
        f = FF1(KEY, radix, b"t")
        values: list[str | None] = list(_random_values(rng, radix, lengths, 600))
        for i in rng.sample(range(len(values)), 80):
            values[i] = None
        expected = [None if v is None else f.encrypt(v) for v in values]
        col = pa.array(values)
        assert f.encrypt_many(col).to_pylist() == expected
        assert f.encrypt_many(col.cast(pa.large_string())).type == pa.large_string()
        assert f.encrypt_many(col.cast(pa.large_string())).to_pylist() == expected
        assert f.encrypt_many(col[37:501]).to_pylist() == expected[37:501]  # sliced: offset
        chunked = pa.chunked_array([col[:200], col[200:]])
        assert f.encrypt_many(chunked).to_pylist() == expected
        assert f.decrypt_many(f.encrypt_many(col)).to_pylist() == values


def test_batch_edge_columns() -> None:
    f = FF1(KEY, 10)
    assert f.encrypt_many([]).to_pylist() == []
    assert f.encrypt_many([None, None]).to_pylist() == [None, None]
    assert f.encrypt_many(pa.nulls(3)).to_pylist() == [None] * 3
    dict_col = pa.array(["123456", "654321", "123456"]).dictionary_encode()
    assert f.encrypt_many(dict_col).to_pylist() == [f.encrypt(v) for v in dict_col.to_pylist()]
    # a null slot that still spans bytes must not copy them into the output
    data = pa.py_buffer(b"123456SECRET654321")
    offsets = pa.py_buffer(np.array([0, 6, 12, 18], dtype=np.int32).tobytes())
    validity = pa.py_buffer(np.packbits([1, 0, 1], bitorder="little").tobytes())
    col = pa.Array.from_buffers(pa.string(), 3, [validity, offsets, data], 1)
    out = f.encrypt_many(col)
    assert out.to_pylist() == [f.encrypt("123456"), None, f.encrypt("654321")]
    assert b"SECRET" not in out.buffers()[2].to_pybytes()


def test_wrong_tweak_or_key_does_not_decrypt() -> None:
    y = FF1(KEY, 10, b"a").encrypt("1234567890123456")
    assert FF1(KEY, 10, b"b").decrypt(y) != "1234567890123456"
    assert FF1(KEY[:16], 10, b"a").decrypt(y) != "1234567890123456"


def test_upper_case_input_and_output() -> None:
    f = FF1(KEY, 36)
    assert f.encrypt("AB12CDEF") == f.encrypt("ab12cdef")
    assert f.encrypt_many(["AB12CDEF"]).to_pylist() == [f.encrypt("ab12cdef")]
    up = FF1(KEY, 36, uppercase=True)
    y = up.encrypt("ab12cdef")
    assert y == f.encrypt("ab12cdef").upper()
    assert up.decrypt(y) == "AB12CDEF"
    assert up.encrypt_many(["ab12cdef"]).to_pylist() == [y]


# ---- separators, clear prefix and suffix --------------------------------------------------


def test_formatted_card_keeps_separators_prefix_suffix() -> None:
    f = FF1(KEY, 10, b"card")
    for card in ("6222-0212-3456-7890", "6222 0212 3456 7890", "6222021234567890123"):
        y = f.encrypt_formatted(card, keep_prefix=6, keep_suffix=4)
        clear = 7 if "-" in card or " " in card else 6  # 6 numerals (+ a separator)
        assert len(y) == len(card) and y[:clear] == card[:clear] and y[-4:] == card[-4:]
        assert [c for c in y if not c.isdigit()] == [c for c in card if not c.isdigit()]
        assert [i for i, c in enumerate(y) if c in " -"] == [
            i for i, c in enumerate(card) if c in " -"
        ]
        assert y != card
        assert f.decrypt_formatted(y, keep_prefix=6, keep_suffix=4) == card
    # the encrypted part is plain FF1 over the middle numerals
    y = f.encrypt_formatted("6222-0212-3456-7890", keep_prefix=6, keep_suffix=4)
    assert y.replace("-", "")[6:12] == f.encrypt("123456")


def test_formatted_batch_equals_scalar() -> None:
    rng = random.Random(3)
    f = FF1(KEY, 10)
    values: list[str | None] = []
    for _ in range(400):
        digits = "".join(rng.choices("0123456789", k=rng.choice([16, 19])))
        style = rng.randrange(4)
        if style == 0:
            v = "-".join(digits[i : i + 4] for i in range(0, len(digits), 4))
        elif style == 1:
            v = " ".join(digits[i : i + 4] for i in range(0, len(digits), 4))
        elif style == 2:  # irregular separator positions, same length
            cut = rng.randrange(1, len(digits))
            v = digits[:cut] + " " + digits[cut:] + "-"
        else:
            v = digits
        values.append(v)
    values[5] = None
    opts = {"keep_prefix": 6, "keep_suffix": 4, "tweak": b"x"}
    expected = [None if v is None else f.encrypt_formatted(v, **opts) for v in values]  # type: ignore[arg-type]
    out = f.encrypt_formatted_many(pa.array(values), **opts)  # type: ignore[arg-type]
    assert out.to_pylist() == expected
    assert f.decrypt_formatted_many(out, **opts).to_pylist() == values  # type: ignore[arg-type]


@settings(max_examples=80, deadline=None)
@given(
    st.text(alphabet="0123456789- ", min_size=0, max_size=30),
    st.integers(0, 6),
    st.integers(0, 4),
)
def test_formatted_round_trip_property(value: str, pre: int, suf: int) -> None:
    f = FF1(KEY, 10)
    numerals = sum(c.isdigit() for c in value)
    if numerals - pre - suf < 6:
        with pytest.raises(DomainError):
            f.encrypt_formatted(value, keep_prefix=pre, keep_suffix=suf)
        if value:
            with pytest.raises(DomainError):
                f.encrypt_formatted_many([value], keep_prefix=pre, keep_suffix=suf)
        return
    y = f.encrypt_formatted(value, keep_prefix=pre, keep_suffix=suf)
    assert len(y) == len(value)
    assert f.encrypt_formatted_many([value], keep_prefix=pre, keep_suffix=suf).to_pylist() == [y]
    assert f.decrypt_formatted(y, keep_prefix=pre, keep_suffix=suf) == value


def test_formatted_errors() -> None:
    f = FF1(KEY, 10)
    with pytest.raises(DomainError, match=r"encrypted part .* length 5"):
        f.encrypt_formatted("6222-0212-3456-789", keep_prefix=6, keep_suffix=4)
    with pytest.raises(DomainError, match="fewer than keep_prefix"):
        f.encrypt_formatted("1234-5678", keep_prefix=6, keep_suffix=4)
    with pytest.raises(DomainError, match=r"non-digit '/' at position 4") as err:
        f.encrypt_formatted_many(["1234-5678-9012", "1234/5678-9012"])
    assert err.value.row == 1
    with pytest.raises(InputError, match="non-negative"):
        f.encrypt_formatted("1234567890", keep_prefix=-1)
    with pytest.raises(InputError, match="is a numeral"):
        f.encrypt_formatted("1234567890", separators="-1")
    assert f.encrypt_formatted("12/34/5678", separators="/") != "12/34/5678"


# ---- misuse -------------------------------------------------------------------------------


@pytest.mark.parametrize(("radix", "short"), [(10, "12345"), (36, "abc"), (2, "1" * 19)])
def test_domain_below_minimum_is_refused(radix: int, short: str) -> None:
    f = FF1(KEY, radix)
    with pytest.raises(DomainError, match=rf"length {len(short)} .*1,000,000"):
        f.encrypt(short)
    with pytest.raises(DomainError, match="1,000,000") as err:
        f.encrypt_many([short + short, short])
    assert err.value.row == 1
    with pytest.raises(DomainError):
        f.decrypt("")


def test_non_digit_names_character_and_position() -> None:
    f = FF1(KEY, 10)
    with pytest.raises(DomainError, match=r"non-digit 'a' at position 3 for radix 10"):
        f.encrypt("123a567890")
    with pytest.raises(DomainError, match=r"non-digit 'a' at position 3 for radix 10") as err:
        f.encrypt_many(["1234567890", None, "123a567890"])
    assert err.value.row == 2
    with pytest.raises(DomainError, match=r"'é' at position 1"):
        f.encrypt_many(["1é34567890"])
    with pytest.raises(DomainError, match=r"non-numeral '#' at position 0 for radix 36"):
        FF1(KEY, 36).encrypt("#bcdefg")
    with pytest.raises(DomainError, match="'8'"):
        FF1(KEY, 8).encrypt("12345678")


@pytest.mark.parametrize("radix", [0, 1, 37, 256, True, "10", 10.0])
def test_bad_radix(radix: object) -> None:
    with pytest.raises(InputError, match="radix"):
        FF1(KEY, radix)  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [0, 8, 15, 17, 20, 31, 33, 64])
def test_bad_key_size(size: int) -> None:
    with pytest.raises(CryptoError, match=rf"16, 24 or 32 bytes .*got {size}"):
        FF1(bytes(size), 10)


def test_bad_types_and_secrets() -> None:
    with pytest.raises(CryptoError):
        FF1("0" * 16, 10)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="tweak"):
        FF1(KEY, 10, "tweak")  # type: ignore[arg-type]
    f = FF1(KEY, 10)
    with pytest.raises(InputError, match="tweak"):
        f.encrypt("1234567", tweak="x")  # type: ignore[arg-type]
    with pytest.raises(InputError):
        f.encrypt(1234567)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="string column"):
        f.encrypt_many(pa.array([1234567]))
    with pytest.raises(InputError):
        f.encrypt_many("1234567")
    with pytest.raises(CryptoError, match="pickled"):
        pickle.dumps(f)
    assert KEY.hex() not in repr(f) and "AES-256" in repr(f)
