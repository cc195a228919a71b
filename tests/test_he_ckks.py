"""CKKS/BFV on TenSEAL: error bounds, exact BFV sums with limbs, contexts, files."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from privacy.errors import (
    HEError,
    InsufficientPartiesError,
    PackingOverflowError,
    SerializationError,
)
from privacy.he import serial
from privacy.he.ckks import PARAMETER_SETS, HEContext, TensealVector, generate_context
from privacy.he.packing import PackingLayout
from privacy.he.secure_sum import aggregate, contribute, decrypt_aggregate

HSET = settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="session")
def ckks() -> HEContext:
    return generate_context("ckks-128-8192", layout=PackingLayout(parties=8))


@pytest.fixture(scope="session")
def bfv() -> HEContext:
    return generate_context("bfv-128-4096", layout=PackingLayout(64, 5))


def test_parameter_sets_within_he_standard() -> None:
    limits = {4096: 109, 8192: 218, 16384: 438}
    for p in PARAMETER_SETS.values():
        assert sum(p.coeff_mod_bit_sizes) <= limits[p.poly_modulus_degree], p.name
    with pytest.raises(HEError, match="unknown HE parameter set"):
        generate_context("ckks-80-1024")


@given(st.integers(1, 9000), st.floats(1e-3, 1000.0), st.integers(-2, 2), st.integers(1, 3))
@HSET
def test_ckks_error_within_reported_bound(ckks: HEContext, n: int, mag: float, k: int,
                                          parties: int) -> None:
    rng = np.random.default_rng(n)
    xs = [rng.uniform(-mag, mag, size=n) for _ in range(parties)]
    pub = ckks.public()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # long vectors are chunked, no TenSEAL warning
        vecs = [pub.encrypt(x) for x in xs]
    total = TensealVector.sum(vecs) * k if k else TensealVector.sum(vecs)
    exact = sum(xs) * (k if k else 1)
    err = float(np.max(np.abs(total.decrypt(ckks) - exact)))
    assert err <= total.error_bound(max_abs=mag)
    assert total.error_bound(max_abs=mag) < 1e-2


def test_ckks_magnitude_bound(ckks: HEContext) -> None:
    with pytest.raises(PackingOverflowError, match="exceeds"):
        ckks.encrypt(np.array([1e6]))
    with pytest.raises(HEError, match="finite"):
        ckks.encrypt(np.array([np.nan]))


@given(st.lists(st.tuples(st.integers(-(2**63), 2**63 - 1), st.integers(-(2**63), 2**63 - 1)),
                min_size=1, max_size=50))
@HSET
def test_bfv_int64_sums_exact_with_limbs(bfv: HEContext, rows: list[tuple[int, int]]) -> None:
    a, b = (np.array(c, dtype=np.int64) for c in zip(*rows, strict=True))
    va, vb = bfv.encrypt(a), bfv.encrypt(b)
    assert va.n_limbs == 2
    got = (va + vb + vb * -2).decrypt(bfv)
    assert [int(x) for x in got] == [int(x) - int(y) for x, y in rows]


def test_bfv_plain_modulus_headroom() -> None:
    ctx = generate_context("bfv-128-4096", layout=PackingLayout(20, 3))
    assert ctx.plain_modulus % (2 * 4096) == 1
    assert ctx.plain_modulus.bit_length() == 20 + 2 + 2
    xs = np.array([-(2**19), 2**19 - 1, 7] * 2000)  # several chunks
    v = ctx.encrypt(xs)
    assert v.n_limbs == 1 and len(v.chunks) == 2
    full = TensealVector.sum([v, v, v])
    assert full.decrypt(ctx).tolist() == (3 * xs).tolist()
    with pytest.raises(PackingOverflowError):
        full + v
    with pytest.raises(PackingOverflowError):
        ctx.encrypt(np.array([2**19]))
    with pytest.raises(PackingOverflowError, match="cannot hold sums"):
        generate_context("bfv-128-4096", layout=PackingLayout(64, 2**60))


def test_bfv_decimals(bfv: HEContext) -> None:
    from dataclasses import replace

    ctx = replace(bfv, layout=replace(bfv.layout, scale=100))
    v = ctx.encrypt(np.array([12.34, -0.05]))
    assert (v + v).decrypt(ctx, scaled=True).tolist() == [2468, -10]


def test_public_context_cannot_decrypt_and_other_context_rejected(ckks: HEContext,
                                                                   bfv: HEContext) -> None:
    pub = ckks.public()
    assert not pub.is_private and pub.fingerprint == ckks.fingerprint
    v = pub.encrypt(np.ones(3))
    with pytest.raises(HEError, match="no secret key"):
        v.decrypt(pub)
    other = generate_context("ckks-128-8192", layout=PackingLayout(parties=8))
    with pytest.raises(HEError, match=f"under key {v.key_id}, not {other.key_id}"):
        v.decrypt(other)
    with pytest.raises(HEError, match="encrypted under key"):
        v + other.encrypt(np.ones(3))


def test_context_and_vector_files(ckks: HEContext, tmp_path: Any) -> None:
    d = tmp_path / "k"
    serial.write_key_dir(d, serial.dump_context(ckks.public()), serial.dump_context(ckks))
    pub = serial.read_file(d, kind="public_key")
    priv = serial.read_file(d, kind="private_key")
    assert not pub.is_private and priv.is_private and pub.fingerprint == ckks.fingerprint
    assert (d / "private.cvhe").stat().st_mode & 0o777 == 0o600
    vecs = [contribute(pub, np.array([1.5, -2.0]), party=p) for p in "abc"]
    data = serial.dump_vector(aggregate(vecs))
    back = serial.load(data, context=pub)
    np.testing.assert_allclose(decrypt_aggregate(priv, back), [4.5, -6.0], atol=1e-5)
    with pytest.raises(InsufficientPartiesError):
        decrypt_aggregate(priv, back, min_parties=4)
    with pytest.raises(SerializationError):
        serial.load(data[:-5], context=pub)
    other = generate_context("ckks-128-8192")
    with pytest.raises(HEError, match="encrypted under key"):
        serial.load(data, context=other)
