"""FF1 on formatted values: separators and a clear prefix / suffix kept in place.

The work behind :meth:`FF1.encrypt_formatted <privacy.fpe.FF1.encrypt_formatted>` and
its ``decrypt`` / ``*_many`` siblings: only the numerals between ``keep_prefix`` and
``keep_suffix`` (counted in numerals, not characters) are encrypted; separators
(ASCII, :data:`~privacy.fpe.DEFAULT_SEPARATORS` by default) stay where they are. The
column form groups rows by numeral count and, within a group, by layout of separators,
so each layout is one batched FF1 call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from privacy.columns import RowLocator, Transform
from privacy.errors import DomainError, InputError
from privacy.fpe.numerals import INVALID, MAX_LENGTH, U8

if TYPE_CHECKING:
    from privacy.fpe.ff1 import FF1

__all__ = ["check_format", "crypt_formatted", "formatted_transform", "middle_length"]


def check_format(cipher: FF1, keep_prefix: int, keep_suffix: int, separators: str) -> None:
    """Validate the formatting options for ``cipher`` (raises :class:`InputError`)."""
    for name, k in (("keep_prefix", keep_prefix), ("keep_suffix", keep_suffix)):
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise InputError(f"{name} must be a non-negative integer, got {k!r}")
    if not isinstance(separators, str) or not separators.isascii():
        raise InputError(f"separators must be a str of ASCII characters, got {separators!r}")
    clash = [ch for ch in separators if ch in cipher._digit]
    if clash:
        raise InputError(f"separator {clash[0]!r} is a numeral of radix {cipher.radix}")


def middle_length(cipher: FF1, k: int, pre: int, suf: int, row: int | None) -> int:
    """Numerals left to encrypt of ``k``; raises :class:`DomainError` if too few."""
    if k < pre + suf:
        raise DomainError(
            f"value has {k} numerals, fewer than keep_prefix + keep_suffix = {pre + suf}",
            row=row,
        )
    what = f"encrypted part (keep_prefix={pre}, keep_suffix={suf})"
    cipher._check_length(k - pre - suf, row, what)
    return k - pre - suf


def crypt_formatted(
    cipher: FF1, value: str, pre: int, suf: int, seps: str, tweak: bytes | None, encrypt: bool
) -> str:
    """Encrypt (or decrypt) the middle numerals of one formatted value."""
    check_format(cipher, pre, suf, seps)
    digits = cipher._parse(value, None, seps)
    mid = middle_length(cipher, len(digits), pre, suf, None)
    done = cipher._ff1(digits[pre : pre + mid], cipher._tweak(tweak), encrypt)
    positions = [i for i, ch in enumerate(value) if ch in cipher._digit][pre : pre + mid]
    chars = list(value)
    for pos, digit in zip(positions, done, strict=True):
        chars[pos] = cipher.alphabet[digit]
    return "".join(chars)


def formatted_transform(
    cipher: FF1, pre: int, suf: int, seps: str, tweak: bytes | None, encrypt: bool
) -> Transform:
    """The byte-matrix transform for :func:`privacy.columns.map_string_groups`."""
    check_format(cipher, pre, suf, seps)
    t = cipher._tweak(tweak)
    is_sep = np.zeros(256, dtype=bool)
    is_sep[[ord(ch) for ch in seps]] = True

    def transform(mat: U8, where: RowLocator) -> U8:
        digits = cipher._in_lut[mat]
        is_num = digits != INVALID
        bad = ~(is_num | is_sep[mat])
        if bad.any():
            value, row = where(int(np.argmax(bad.any(axis=1))))
            cipher._parse(value, row, seps)  # raises, naming the character and position
            raise DomainError(f"value outside the radix-{cipher.radix} alphabet", row=row)
        out = mat.copy()
        counts = is_num.sum(axis=1)
        for k in np.unique(counts).tolist():
            idx = np.flatnonzero(counts == k)
            mid = k - pre - suf
            if not cipher.min_length <= mid <= MAX_LENGTH:
                middle_length(cipher, k, pre, suf, where(int(idx[0]))[1])
            mask = is_num[idx]
            if (mask == mask[0]).all():  # one layout for the group: plain columns
                cols = np.flatnonzero(mask[0])[pre : pre + mid]
                done = cipher._crypt_digits(digits[np.ix_(idx, cols)], t, encrypt)
                out[np.ix_(idx, cols)] = cipher._out_lut[done]
                continue
            pos = np.argsort(~mask, axis=1, kind="stable")[:, pre : pre + mid]
            sub = np.take_along_axis(digits[idx], pos, axis=1)
            block = out[idx]
            done = cipher._crypt_digits(sub, t, encrypt)
            np.put_along_axis(block, pos, cipher._out_lut[done], axis=1)
            out[idx] = block
        return out

    return transform
