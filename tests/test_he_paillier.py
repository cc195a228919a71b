"""Packed Paillier: homomorphic properties, headroom bounds, phe interop, files, secure sum."""

from __future__ import annotations

import os
import pickle
from decimal import Decimal
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
from privacy.he.packing import PackingLayout, pack, unpack
from privacy.he.paillier import (
    EncryptedVector,
    PaillierPrivateKey,
    PaillierPublicKey,
    generate_keypair,
)
from privacy.he.secure_sum import aggregate, contribute, decrypt_aggregate

HSET = settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
I64 = st.integers(-(2**63), 2**63 - 1)


@pytest.fixture(scope="session")
def keys() -> tuple[PaillierPublicKey, PaillierPrivateKey]:
    return generate_keypair(2048)


@pytest.fixture(scope="session")
def other_keys() -> tuple[PaillierPublicKey, PaillierPrivateKey]:
    return generate_keypair(2048)


def enc(keys: Any, values: Any, layout: PackingLayout, who: str | None = None) -> EncryptedVector:
    return EncryptedVector.encrypt(keys[0], values, layout, contributor=who, workers=1)


class FakeLedger:
    def __init__(self) -> None:
        self.records: list[tuple[str, dict[str, Any]]] = []

    def append(self, kind: str, payload: dict[str, Any]) -> int:
        self.records.append((kind, payload))
        return len(self.records) - 1


# ------------------------------------------------------------------ packing alone
@given(st.lists(st.lists(I64, min_size=7, max_size=7), min_size=1, max_size=4))
@settings(max_examples=40, deadline=None)
def test_pack_unpack_sums_without_encryption(rows: list[list[int]]) -> None:
    lay = PackingLayout(64, 4)
    packed = [pack(np.array(r, dtype=np.int64), lay, 2048) for r in rows]
    total = [sum(col) for col in zip(*packed, strict=True)]
    out = unpack(total, lay, 2048, 7)
    assert [int(x) for x in out] == [sum(c) for c in zip(*rows, strict=True)]


def test_layout_slots_and_width() -> None:
    lay = PackingLayout(64, 5)
    assert lay.slot_bits == 68
    assert lay.slots(2048) == 30
    assert not lay.result_fits_int64
    assert PackingLayout(32, 8).result_fits_int64


# ------------------------------------------------------------------ homomorphism
@given(st.lists(st.tuples(I64, I64, I64), min_size=1, max_size=40))
@HSET
def test_sum_of_three_int64_vectors_is_exact(keys: Any, rows: list[tuple[int, int, int]]) -> None:
    lay = PackingLayout(64, 3)
    cols = [np.array(c, dtype=np.int64) for c in zip(*rows, strict=True)]
    vecs = [enc(keys, c, lay) for c in cols]
    got = EncryptedVector.sum(vecs).decrypt(keys[1], workers=1)
    assert [int(x) for x in got] == [a + b + c for a, b, c in rows]


@given(st.lists(st.integers(-(2**31), 2**31 - 1), min_size=1, max_size=30),
       st.integers(-4, 4))
@HSET
def test_scalar_products_and_negatives(keys: Any, xs: list[int], k: int) -> None:
    lay = PackingLayout(32, 8)
    v = enc(keys, np.array(xs), lay)
    got = (v * k).decrypt(keys[1], workers=1)
    assert got.dtype == np.int64
    assert got.tolist() == [k * x for x in xs]
    assert (-v + v * 2).decrypt(keys[1], workers=1).tolist() == xs
    assert (v - v).decrypt(keys[1], workers=1).tolist() == [0] * len(xs)


@given(st.lists(st.decimals(min_value=Decimal("-1e9"), max_value=Decimal("1e9"), places=2,
                            allow_nan=False, allow_infinity=False), min_size=1, max_size=20))
@HSET
def test_decimals_in_cents(keys: Any, xs: list[Decimal]) -> None:
    lay = PackingLayout(48, 4, scale=100)
    v = enc(keys, np.array(xs, dtype=object), lay)
    s = v + v
    assert s.decrypt(keys[1], scaled=True, workers=1).tolist() == [int(x * 200) for x in xs]
    np.testing.assert_allclose(s.decrypt(keys[1], workers=1), [float(x) * 2 for x in xs])
    f = enc(keys, np.array([19.99, -0.01, 1e6]), lay)
    assert f.decrypt(keys[1], scaled=True, workers=1).tolist() == [1999, -1, 100_000_000]


def test_decimals_finer_than_scale_rejected(keys: Any) -> None:
    lay = PackingLayout(48, 4, scale=100)
    with pytest.raises(HEError, match="more decimals"):
        enc(keys, np.array([0.001]), lay)
    with pytest.raises(HEError, match="more decimals"):
        enc(keys, np.array([Decimal("1.005")], dtype=object), lay)


# ------------------------------------------------------------------ headroom bounds
def test_headroom_exactly_at_bound_then_one_past(keys: Any) -> None:
    lay = PackingLayout(16, 4)
    lo, hi = -(2**15), 2**15 - 1
    xs = np.array([lo, hi, lo, hi, 0, -1] * 10, dtype=np.int64)  # > one ciphertext
    v = enc(keys, xs, lay)
    full = EncryptedVector.sum([v, v, v, v])
    assert full.decrypt(keys[1], workers=1).tolist() == (4 * xs).tolist()
    assert (v * 4).decrypt(keys[1], workers=1).tolist() == (4 * xs).tolist()
    assert (v * -4).decrypt(keys[1], workers=1).tolist() == (-4 * xs).tolist()
    with pytest.raises(PackingOverflowError, match="headroom for 4 parties"):
        full + v
    with pytest.raises(PackingOverflowError):
        v * 5
    with pytest.raises(PackingOverflowError, match="does not fit in 16 signed bits"):
        enc(keys, np.array([0, 2**15]), lay)
    with pytest.raises(PackingOverflowError):
        enc(keys, np.array([lo - 1]), lay)


def test_int64_extremes_at_bound(keys: Any) -> None:
    lay = PackingLayout(64, 5)
    xs = np.array([-(2**63), 2**63 - 1, 0, -1, 1], dtype=np.int64)
    total = EncryptedVector.sum([enc(keys, xs, lay)] * 5)
    assert total.decrypt(keys[1], workers=1).tolist() == [5 * int(x) for x in xs]
    with pytest.raises(PackingOverflowError):
        enc(keys, np.array([2**64 - 1], dtype=np.uint64), lay)


# ------------------------------------------------------------------ keys and interop
def test_key_below_2048_rejected() -> None:
    with pytest.raises(HEError, match="at least 2048"):
        generate_keypair(1024)
    from phe import paillier

    small, _ = paillier.generate_paillier_keypair(n_length=1024)
    with pytest.raises(HEError, match="too short"):
        PaillierPublicKey.from_phe(small)


@given(st.integers(-(2**200), 2**200))
@HSET
def test_phe_interop_both_ways(keys: Any, m: int) -> None:
    from phe import paillier

    pub, priv = keys
    phe_pub, phe_priv = pub.to_phe(), priv.to_phe()
    ours = paillier.EncryptedNumber(phe_pub, pub.encrypt_int(m), 0)
    assert phe_priv.decrypt(ours) == m
    theirs = phe_pub.encrypt(m)
    assert theirs.exponent == 0
    assert priv.decrypt_int(theirs.ciphertext(be_secure=False)) == m
    # a homomorphic sum mixing both implementations
    mixed = (pub.encrypt_int(m) * theirs.ciphertext()) % pub.nsquare
    assert priv.decrypt_int(mixed) == 2 * m


def test_private_key_refuses_pickle(keys: Any) -> None:
    with pytest.raises(TypeError):
        pickle.dumps(keys[1])
    assert str(keys[1].p) not in repr(keys[1])


def test_mismatched_keys_rejected(keys: Any, other_keys: Any) -> None:
    lay = PackingLayout(32, 4)
    a, b = enc(keys, np.arange(3), lay), enc(other_keys, np.arange(3), lay)
    with pytest.raises(HEError, match=f"encrypted under key {b.key_id}, not {a.key_id}"):
        a + b
    with pytest.raises(HEError, match="encrypted under key"):
        a.decrypt(other_keys[1])
    with pytest.raises(HEError, match="layouts differ"):
        a + enc(keys, np.arange(3), PackingLayout(32, 5))
    with pytest.raises(HEError, match="lengths differ"):
        a + enc(keys, np.arange(4), lay)
    with pytest.raises(HEError):
        a * 1.5  # type: ignore[operator]


def test_parallel_matches_serial(keys: Any) -> None:
    lay = PackingLayout(64, 2)
    xs = np.random.default_rng(3).integers(-(2**62), 2**62, size=30 * 80)
    v = EncryptedVector.encrypt(keys[0], xs, lay, workers=2)
    assert len(v.ciphertexts) == -(-xs.size // lay.slots(2048)) == 78
    assert v.decrypt(keys[1], workers=2).tolist() == xs.tolist()


# ------------------------------------------------------------------ files
def test_files_round_trip_and_modes(keys: Any, tmp_path: Any) -> None:
    pub, priv = keys
    serial.write_key_dir(tmp_path / "k", serial.dump_public_key(pub), serial.dump_private_key(priv))
    assert os.stat(tmp_path / "k" / "private.cvhe").st_mode & 0o777 == 0o600
    pub2 = serial.read_file(tmp_path / "k", kind="public_key")
    priv2 = serial.read_file(tmp_path / "k", kind="private_key")
    assert pub2 == pub and pub2.hs == pub.hs and priv2.p == priv.p
    lay = PackingLayout(64, 3)
    v = contribute(pub, np.array([1, -2, 3]), party="a", layout=lay, workers=1)
    serial.save(tmp_path / "v.cvhe", serial.dump_vector(v))
    w = serial.read_file(tmp_path / "v.cvhe", kind="vector")
    assert w.contributors == ("a",) and w.layout == lay
    assert w.decrypt(priv2, workers=1).tolist() == [1, -2, 3]


def test_tampered_and_truncated_files_rejected(keys: Any, tmp_path: Any) -> None:
    v = enc(keys, np.arange(5), PackingLayout(32, 3), "a")
    data = serial.dump_vector(v)
    for bad in (data[:-1], data[:100], data[:10], b"", data[:200] + bytes([data[200] ^ 1])
                + data[201:], b"XXXX" + data[4:]):
        with pytest.raises(SerializationError):
            serial.load(bad)
    with pytest.raises(SerializationError, match="expected a public_key"):
        serial.load(data, kind="public_key")
    with pytest.raises(SerializationError, match="version"):
        serial.load(data[:4] + b"\x09" + data[5:])


# ------------------------------------------------------------------ secure sum
def test_secure_sum_threshold_and_ledger(keys: Any) -> None:
    pub, priv = keys
    led = FakeLedger()
    lay = PackingLayout(32, 5)
    parts = [contribute(pub, np.array([i, 10 * i]), party=f"bank{i}", layout=lay, ledger=led,
                        workers=1) for i in range(1, 4)]
    two = aggregate(parts[:2], ledger=led, workers=1)
    with pytest.raises(InsufficientPartiesError, match="2 contribution"):
        decrypt_aggregate(priv, two)
    three = aggregate(parts, ledger=led, workers=1)
    assert three.ciphertexts[0] != EncryptedVector.sum(parts).ciphertexts[0]  # re-randomised
    assert decrypt_aggregate(priv, three, ledger=led).tolist() == [6, 60]
    assert [k for k, _ in led.records] == ["he.contribute"] * 3 + ["he.aggregate"] * 2 + [
        "he.decrypt"]
    assert led.records[-1][1]["contributors"] == ["bank1", "bank2", "bank3"]
    with pytest.raises(HEError, match="more than once"):
        aggregate([parts[0], parts[0]])


@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(min_value=-(2 ** 60), max_value=2 ** 60), min_size=1, max_size=23))
def test_ciphertexts_pack_into_slots(keys: Any, ms: list[int]) -> None:
    """``pack`` puts m_j at bit j*s of one plaintext (Horner on ciphertexts), in this
    process and in workers alike; signed slots decode by centring."""
    pub, priv = keys
    bits, per = 64, 7
    cts = pub.encrypt_raw(ms, workers=1)
    packed = pub.pack(cts, bits, per, workers=1)
    assert packed == pub.pack(cts, bits, per, workers=2)
    assert len(packed) == -(-len(ms) // per)
    got = []
    half, mask = 1 << (bits - 1), (1 << bits) - 1
    for v in priv.decrypt_raw(packed, workers=1):
        for _ in range(per):
            lo = ((v + half) & mask) - half
            got.append(lo)
            v = (v - lo) >> bits
        assert v == 0
    assert got[:len(ms)] == ms and not any(got[len(ms):])


def test_pack_refuses_slots_beyond_the_key(keys: Any) -> None:
    pub, _ = keys
    with pytest.raises(HEError, match="do not fit a 2048-bit key"):
        pub.pack([1], 300, 7)


def test_scatter_sum_in_workers_equals_one_process(keys: Any) -> None:
    """Each ciphertext is added into the sums its row of cells names; the rows split over
    two worker processes give the same sums (50,000 cells: the size that uses workers)."""
    pub, priv = keys
    rng = np.random.default_rng(4)
    ms = rng.integers(-1000, 1000, 500).tolist()
    cells = rng.integers(0, 37, (500, 100))
    cts = pub.encrypt_raw(ms, workers=1)
    one = pub.scatter_sum(cts, cells, 40, workers=1)
    assert one == pub.scatter_sum(cts, cells, 40, workers=2)
    want = [0] * 40
    for m, row in zip(ms, cells.tolist(), strict=True):
        for k in row:
            want[k] += m
    assert priv.decrypt_raw(one, workers=1) == want
    assert one[38] == 1 and one[39] == 1  # untouched: re-randomise before sending
    with pytest.raises(HEError, match="one row per ciphertext"):
        pub.scatter_sum(cts[:3], cells, 40)
    with pytest.raises(HEError, match="outside 0..9"):
        pub.scatter_sum(cts, cells, 10)


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc")
def test_pool_workers_end_when_their_owner_is_killed() -> None:
    # a Flower simulation ends its Ray actors with SIGKILL: the Paillier pool's workers
    # of a killed owner stayed behind, orphaned, holding the pipes that would tell them
    import subprocess
    import sys
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    code = ("import sys; sys.path.insert(0, sys.argv[1]); "
            "from privacy.he import paillier_workers as w; p = w._pool(2); "
            "list(p.map(abs, [1, 2, 3, 4])); "
            "print(' '.join(str(x) for x in p._processes), flush=True); "
            "import time; time.sleep(120)")
    owner = subprocess.Popen([sys.executable, "-c", code, str(root)], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
    assert owner.stdout is not None
    workers = [int(x) for x in owner.stdout.readline().split()]
    assert len(workers) == 2
    owner.kill()
    owner.wait()

    def alive(pid: int) -> bool:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except FileNotFoundError:
            return False
        return "State:\tZ" not in status

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(alive(p) for p in workers):
        time.sleep(0.1)
    left = [p for p in workers if alive(p)]
    for p in left:  # don't leave them behind either way
        os.kill(p, 9)
    assert not left
