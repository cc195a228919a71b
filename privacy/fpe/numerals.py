"""Numeral strings as numbers for FF1 (NIST SP 800-38G), one value or a whole matrix.

``NUM_radix`` / ``STR^m_radix`` as in the standard, their vectorised forms over the rows
of a numeral matrix (``uint64``: valid while ``radix**m < 2**64``), the PRF's fixed block
``P``, and the ``uint64`` reduction of a wide PRF output modulo ``radix**m``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = [
    "INVALID",
    "MAX_LENGTH",
    "U8",
    "U64",
    "num_radix",
    "num_radix_cols",
    "p_block",
    "reduce_mod",
    "str_radix",
    "str_radix_cols",
    "xor_bytes",
]

U8 = npt.NDArray[np.uint8]
U64 = npt.NDArray[np.uint64]

MAX_LENGTH = 2**32  #: the standard's maxlen (numerals per value, bytes per tweak).
INVALID = 255  #: a byte's entry in a numeral lookup table when it is not a numeral.


def p_block(radix: int, u: int, n: int, t: int) -> bytes:
    """P = [1]^1 || [2]^1 || [1]^1 || [radix]^3 || [10]^1 || [u mod 256]^1 || [n]^4 || [t]^4."""
    return (
        bytes([1, 2, 1])
        + radix.to_bytes(3, "big")
        + bytes([10, u % 256])
        + (n.to_bytes(4, "big") + t.to_bytes(4, "big"))
    )


def xor_bytes(x: bytes, y: bytes) -> bytes:
    """``x xor y`` for byte strings of equal length."""
    return (int.from_bytes(x, "big") ^ int.from_bytes(y, "big")).to_bytes(len(x), "big")


def num_radix(digits: Sequence[int], radix: int) -> int:
    """NUM_radix: the numeral string read as a base-``radix`` number, most significant first."""
    x = 0
    for digit in digits:
        x = x * radix + digit
    return x


def str_radix(x: int, m: int, radix: int) -> list[int]:
    """STR^m_radix: the ``m`` base-``radix`` digits of ``x``, most significant first."""
    out = [0] * m
    for i in range(m - 1, -1, -1):
        x, out[i] = divmod(x, radix)
    return out


def num_radix_cols(digits: U8, radix: int) -> U64:
    """:func:`num_radix` of every row of a ``(rows, m)`` numeral matrix (``radix**m < 2**64``)."""
    cols = np.ascontiguousarray(digits.T)
    x: U64 = cols[0].astype(np.uint64)
    r = np.uint64(radix)
    for col in cols[1:]:
        x *= r
        x += col
    return x


def str_radix_cols(x: U64, m: int, radix: int) -> U8:
    """:func:`str_radix` of every value of ``x``, as a ``(len(x), m)`` numeral matrix."""
    out = np.empty((m, len(x)), dtype=np.uint8)
    r = np.uint64(radix)
    for i in range(m - 1, -1, -1):
        q = x // r  # floor_divide by a scalar is fast (libdivide); % is not
        out[i] = x - q * r
        x = q
    return out.T


def reduce_mod(hi: U64, lo: U64, extra_bits: int, m: int) -> U64:
    """``(hi * 2**extra_bits + (lo >> (64 - extra_bits))) mod m`` for ``m < 2**63``.

    Bits of ``lo`` are folded in ``64 - m.bit_length()`` at a time, so nothing overflows.
    """
    mm = np.uint64(m)
    r = hi - (hi // mm) * mm
    step, done = 64 - m.bit_length(), 0
    while done < extra_bits:
        k = min(step, extra_bits - done)
        chunk = (lo >> np.uint64(64 - done - k)) & np.uint64((1 << k) - 1)
        r = (r << np.uint64(k)) | chunk
        r -= (r // mm) * mm
        done += k
    return r
