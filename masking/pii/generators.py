"""Deterministic test-data generators for the China PII pack.

Faker's ``zh_CN`` locale has 16-digit cards only, no USCC, and resident ids that depend
on today's date; these generators fill the gaps. Every function is vectorized (numpy),
takes a ``seed`` and, for dates, an explicit reference ``today``, so the same call always
returns the same values. They return Arrow ``string`` arrays (``.to_pylist()`` for a list).

Check characters are computed with the same formulas the validators check
(GB 11643, Luhn, GB 32100); the public ``*_check_*`` helpers expose them for tests.

Warnings
--------
The values are synthetic but *valid*: a generated id or card number may coincide with a
real one. Use them for tests and demos only, never as "safe" placeholders in output.
"""

from __future__ import annotations

import datetime as _dt

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from masking.pii._data import PROVINCES
from privacy.errors import DomainError

__all__ = [
    "resident_id_check_char",
    "luhn_check_digit",
    "uscc_check_char",
    "resident_ids",
    "bank_cards",
    "usccs",
    "mobiles",
]

U8 = npt.NDArray[np.uint8]
_DEFAULT_TODAY = _dt.date(2025, 1, 1)
_ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = np.array([pow(3, i, 31) for i in range(17)], dtype=np.int64)
_MOBILE_SEGMENTS = [
    s
    for lo, hi in ((30, 39), (45, 49), (50, 53), (55, 59), (62, 62), (65, 67), (70, 78), (80, 99))
    for s in range(lo, hi + 1)
]


def resident_id_check_char(first17: str) -> str:
    """GB 11643 check character for the first 17 digits of a resident id."""
    if len(first17) != 17 or not first17.isdigit():
        raise DomainError("expected 17 digits")
    total = sum(int(c) * int(w) for c, w in zip(first17, _ID_WEIGHTS, strict=True))
    return "10X98765432"[total % 11]


def luhn_check_digit(payload: str) -> str:
    """The digit that, appended to ``payload``, makes a Luhn-valid number."""
    if not payload.isdigit():
        raise DomainError("expected digits")
    total = 0
    for i, c in enumerate(reversed(payload)):
        d = int(c) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return str((10 - total % 10) % 10)


def uscc_check_char(first17: str) -> str:
    """GB 32100-2015 check character for the first 17 characters of a USCC."""
    try:
        values = [_USCC_ALPHABET.index(c) for c in first17]
    except ValueError:
        raise DomainError("character outside the USCC alphabet") from None
    if len(values) != 17:
        raise DomainError("expected 17 characters")
    return _USCC_ALPHABET[
        (31 - sum(v * int(w) for v, w in zip(values, _USCC_WEIGHTS, strict=True)) % 31) % 31
    ]


def _to_array(m: U8) -> pa.Array:
    n, width = m.shape
    offsets = pa.py_buffer((np.arange(n + 1, dtype=np.int32) * width).tobytes())
    return pa.StringArray.from_buffers(n, offsets, pa.py_buffer(np.ascontiguousarray(m).tobytes()))


def _digits(rng: np.random.Generator, n: int, k: int) -> U8:
    return rng.integers(48, 58, size=(n, k), dtype=np.uint8)


def _put_int(m: U8, col: int, width: int, values: npt.NDArray[np.int64]) -> None:
    for j in range(width - 1, -1, -1):
        m[:, col + j] = 48 + values % 10
        values = values // 10


def _regions(rng: np.random.Generator, n: int) -> npt.NDArray[np.int64]:
    provinces = np.array([int(p) for p in PROVINCES if p not in {"71", "83"}], dtype=np.int64)
    return rng.choice(provinces, n) * 10000 + rng.integers(1, 21, n) * 100 + rng.integers(1, 30, n)


def resident_ids(
    n: int,
    *,
    seed: int = 0,
    today: _dt.date = _DEFAULT_TODAY,
    min_age: int = 18,
    max_age: int = 90,
    legacy: bool = False,
) -> pa.Array:
    """``n`` valid resident ids (18-digit; 15-digit legacy with ``legacy=True``).

    Birth dates are uniform between ``today - max_age`` and ``today - min_age`` years
    (legacy ids: clipped to 1900-1999). Region codes use real province prefixes.
    """
    if not 0 <= min_age <= max_age <= 120:
        raise DomainError("need 0 <= min_age <= max_age <= 120")
    rng = np.random.default_rng(seed)
    hi = today.toordinal() - int(min_age * 365.25)
    lo = max(today.toordinal() - int(max_age * 365.25), _dt.date(1900, 1, 1).toordinal())
    if legacy:
        hi = min(hi, _dt.date(1999, 12, 31).toordinal())
        if hi < lo:
            raise DomainError("legacy ids need birth dates in 1900-1999")
    epoch = _dt.date(1970, 1, 1).toordinal()
    days = (rng.integers(lo, hi + 1, n) - epoch).astype("datetime64[D]")
    year = days.astype("datetime64[Y]").astype(np.int64) + 1970
    month = days.astype("datetime64[M]").astype(np.int64) % 12 + 1
    day = (days - days.astype("datetime64[M]")).astype(np.int64) + 1
    width = 15 if legacy else 18
    m = _digits(rng, n, width)
    _put_int(m, 0, 6, _regions(rng, n))
    if legacy:
        _put_int(m, 6, 6, (year % 100) * 10000 + month * 100 + day)
        return _to_array(m)
    _put_int(m, 6, 8, year * 10000 + month * 100 + day)
    total = (m[:, :17].astype(np.int64) - 48) @ _ID_WEIGHTS
    m[:, 17] = np.frombuffer(b"10X98765432", dtype=np.uint8)[total % 11]
    return _to_array(m)


def bank_cards(n: int, *, seed: int = 0, length: int = 19, prefix: str = "62") -> pa.Array:
    """``n`` Luhn-valid card numbers of ``length`` digits starting with ``prefix``
    (default: 19-digit UnionPay)."""
    if not 12 <= length <= 19 or not prefix.isdigit() or len(prefix) >= length:
        raise DomainError("need 12-19 digits and a shorter digit prefix")
    rng = np.random.default_rng(seed)
    m = _digits(rng, n, length)
    m[:, : len(prefix)] = np.frombuffer(prefix.encode(), dtype=np.uint8)
    d = m[:, :-1].astype(np.int64) - 48
    doubled = (length - 2 - np.arange(length - 1)) % 2 == 0
    dd = np.where(doubled, d * 2, d)
    dd = np.where(dd > 9, dd - 9, dd)
    m[:, -1] = 48 + (10 - dd.sum(axis=1) % 10) % 10
    return _to_array(m)


def usccs(n: int, *, seed: int = 0, individual_business: float = 0.0) -> pa.Array:
    """``n`` valid unified social credit codes of businesses registered with the market
    regulator (``91...`` enterprises; ``92...`` individual businesses with probability
    ``individual_business``)."""
    rng = np.random.default_rng(seed)
    alphabet = np.frombuffer(_USCC_ALPHABET.encode(), dtype=np.uint8)
    m = np.empty((n, 18), dtype=np.uint8)
    m[:, 0] = ord("9")
    m[:, 1] = np.where(rng.random(n) < individual_business, ord("2"), ord("1"))
    _put_int(m, 2, 6, _regions(rng, n))
    m[:, 8:16] = _digits(rng, n, 8)
    org = m[:, 8:16].astype(np.int64) - 48  # GB 11714 organisation-code check character
    rem = 11 - (org @ np.array([3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)) % 11
    m[:, 16] = np.where(rem == 10, ord("X"), np.where(rem == 11, ord("0"), 48 + rem % 10))
    lookup = np.full(256, 0, dtype=np.int64)
    lookup[alphabet] = np.arange(31)
    total = lookup[m[:, :17]] @ _USCC_WEIGHTS
    m[:, 17] = alphabet[(31 - total % 31) % 31]
    return _to_array(m)


def mobiles(n: int, *, seed: int = 0) -> pa.Array:
    """``n`` 11-digit mainland mobile numbers in allocated network segments."""
    rng = np.random.default_rng(seed)
    m = _digits(rng, n, 11)
    m[:, 0] = ord("1")
    _put_int(m, 1, 2, rng.choice(np.array(_MOBILE_SEGMENTS, dtype=np.int64), n))
    return _to_array(m)
