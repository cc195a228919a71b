"""FF1 format-preserving encryption (NIST SP 800-38G) over AES, with a batched column path.

A 16-digit card number encrypts to another 16-digit string; a radix-36 id to another
radix-36 id of the same length. :meth:`FF1.encrypt` is a plain reading of the standard
with Python integers (the reference). :meth:`FF1.encrypt_many` does the same over an Arrow
string column: rows are grouped by length and each group runs the ten Feistel rounds for
all its rows at once in numpy, with one AES-ECB call per round. It agrees with the scalar
path exactly (tests check this, the 9 NIST samples and the independent ``libffx``).

Why one AES call per round suffices: with the tweak fixed, the PRF input ``P || Q`` is
constant except in its last block, which holds the round number and ``NUM_radix(B)``
(``b <= 8`` bytes on the fast path). The CBC-MAC chaining value before that block is
computed once per (length, tweak); each round is then ``R = AES(C xor last_block)``, and
``d <= 12`` means no extra blocks. ``NUM_radix`` values stay below ``2**63`` (fast path
condition ``radix**ceil(n/2) < 2**63``) so the modular arithmetic runs in ``uint64``,
folding the up-to-96-bit ``y`` into the modulus a few bits at a time. Longer groups fall
back to the scalar code, value by value.

Alphabet: ``"0123456789abcdefghijklmnopqrstuvwxyz"[:radix]``. For ``radix > 10`` upper-case
letters are accepted as the same numerals; output is lower case unless the cipher was made
with ``uppercase=True``. Positions in error messages are 0-based character indices.

The Arrow plumbing (grouping by length, keeping the column's type and chunking) is
:func:`privacy.columns.map_string_groups`; separators and a clear prefix / suffix are
in :mod:`privacy.fpe.formatted`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NoReturn

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from privacy.columns import RowLocator, map_string_groups
from privacy.errors import CryptoError, DomainError, InputError
from privacy.fpe.formatted import crypt_formatted, formatted_transform
from privacy.fpe.numerals import (
    INVALID,
    MAX_LENGTH,
    U8,
    num_radix,
    num_radix_cols,
    p_block,
    reduce_mod,
    str_radix,
    str_radix_cols,
    xor_bytes,
)

__all__ = ["ALPHABET", "DEFAULT_SEPARATORS", "FF1", "MAX_LENGTH", "MIN_DOMAIN"]

ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
MIN_DOMAIN = 1_000_000  #: radix**length must reach this (SP 800-38G Rev. 1 draft).
DEFAULT_SEPARATORS = " -"  #: characters the ``*_formatted`` helpers keep in place.

_ROUNDS = 10
_FAST_LIMIT = 2**63  # radix**v below this: vectorised uint64 Feistel
_BLOCK_ROWS = 1 << 15  # rows per numpy pass (keeps the working set in cache)


class FF1:
    """FF1 with AES-128/192/256 over the numerals ``0-9a-z`` of a radix 2..36.

    Parameters
    ----------
    key:
        16, 24 or 32 bytes (AES-128/192/256).
    radix:
        Number of numerals, 2..36.
    tweak:
        Default tweak for every call (a per-column context, e.g. the column name).
    uppercase:
        Write letters as ``A-Z`` instead of ``a-z`` (``radix > 10``). Input of either
        case is always accepted.

    Warnings
    --------
    FF1 is deterministic: equal inputs under one key and tweak give equal outputs, so
    frequencies leak. Use a distinct tweak (or derived key) per column. Domains below
    ``10**6`` are refused (:class:`~privacy.errors.DomainError`). Case is not preserved
    for ``radix > 10``: ``"AB12CD"`` and ``"ab12cd"`` encrypt alike.
    """

    def __init__(
        self, key: bytes, radix: int, tweak: bytes = b"", *, uppercase: bool = False
    ) -> None:
        if not isinstance(key, bytes | bytearray | memoryview):
            raise CryptoError(f"FF1 key must be bytes, got {type(key).__name__}")
        if len(key) not in (16, 24, 32):
            raise CryptoError(
                f"FF1 key must be 16, 24 or 32 bytes (AES-128/192/256), got {len(key)} bytes"
            )
        if isinstance(radix, bool) or not isinstance(radix, int) or not 2 <= radix <= 36:
            raise InputError(f"FF1 radix must be an integer in 2..36, got {radix!r}")
        self._aes = algorithms.AES(bytes(key))
        self.radix = radix
        self.tweak = _check_tweak(tweak)
        alphabet = ALPHABET[:radix]
        self.alphabet = alphabet.upper() if uppercase else alphabet
        self._digit = {ch: i for i, ch in enumerate(alphabet)}
        self._digit.update({ch.upper(): i for i, ch in enumerate(alphabet)})
        self._in_lut = np.full(256, INVALID, dtype=np.uint8)
        for ch, i in self._digit.items():
            self._in_lut[ord(ch)] = i
        self._out_lut = np.frombuffer(self.alphabet.encode("ascii"), dtype=np.uint8)
        self.min_length = next(n for n in range(1, 64) if radix**n >= MIN_DOMAIN)
        self._consts: dict[tuple[int, bytes], tuple[list[int], list[int], int]] = {}

    def __repr__(self) -> str:
        return f"FF1(radix={self.radix}, AES-{8 * len(self._aes.key)}, tweak={self.tweak!r})"

    def __reduce__(self) -> NoReturn:
        raise CryptoError("FF1 holds a secret key and cannot be pickled; rebuild it from a keyset")

    # ---- scalar reference -------------------------------------------------------------

    def encrypt(self, x: str, tweak: bytes | None = None) -> str:
        """Encrypt numeral string ``x``; the result has the same length and alphabet.

        Raises :class:`~privacy.errors.DomainError` for a character outside the alphabet
        (naming it and its position) or a length with ``radix**len < 10**6``.
        """
        return self._render(self._ff1(self._parse(x), self._tweak(tweak), True))

    def decrypt(self, y: str, tweak: bytes | None = None) -> str:
        """Invert :meth:`encrypt` under the same key and tweak."""
        return self._render(self._ff1(self._parse(y), self._tweak(tweak), False))

    def _ff1(self, x: Sequence[int], t: bytes, encrypt: bool) -> list[int]:
        """SP 800-38G Algorithms 7 and 8, step by step, with Python integers."""
        radix, n = self.radix, len(x)
        u, v = n // 2, n - n // 2
        a, b_ = list(x[:u]), list(x[u:])
        b = ((radix**v - 1).bit_length() + 7) // 8  # ceil(ceil(v*log2(radix))/8)
        d = 4 * ((b + 3) // 4) + 4
        p = p_block(radix, u, n, len(t))
        ecb = Cipher(self._aes, modes.ECB()).encryptor()
        for i in range(_ROUNDS) if encrypt else range(_ROUNDS - 1, -1, -1):
            num = num_radix(b_ if encrypt else a, radix)
            q = t + bytes((-len(t) - b - 1) % 16) + bytes([i]) + num.to_bytes(b, "big")
            pq, r = p + q, bytes(16)
            for j in range(0, len(pq), 16):  # PRF: CBC-MAC with a zero IV
                r = ecb.update(xor_bytes(r, pq[j : j + 16]))
            s = r + b"".join(
                ecb.update(xor_bytes(r, j.to_bytes(16, "big"))) for j in range(1, (d + 15) // 16)
            )
            y = int.from_bytes(s[:d], "big")
            m = u if i % 2 == 0 else v
            if encrypt:
                a, b_ = b_, str_radix((num_radix(a, radix) + y) % radix**m, m, radix)
            else:
                a, b_ = str_radix((num_radix(b_, radix) - y) % radix**m, m, radix), a
        return a + b_

    def _parse(self, x: object, row: int | None = None, seps: str = "") -> list[int]:
        if not isinstance(x, str):
            raise InputError(f"FF1 input must be a str, got {type(x).__name__}", row=row)
        out: list[int] = []
        for pos, ch in enumerate(x):
            digit = self._digit.get(ch)
            if digit is None and ch not in seps:
                self._bad_char(ch, pos, row, seps)
            if digit is not None:
                out.append(digit)
        if not seps:
            self._check_length(len(out), row)
        return out

    def _bad_char(self, ch: str, pos: int, row: int | None, seps: str = "") -> NoReturn:
        kind = "non-digit" if self.radix <= 10 else "non-numeral"
        where = f" (separators {seps!r})" if seps else ""
        raise DomainError(f"{kind} {ch!r} at position {pos} for radix {self.radix}{where}", row=row)

    def _check_length(self, n: int, row: int | None, what: str = "value") -> None:
        if n < self.min_length:
            raise DomainError(
                f"{what} of length {n} is too short for FF1 at radix {self.radix}: "
                f"{self.radix}**{n} = {self.radix**n} is below the minimum domain of "
                f"{MIN_DOMAIN:,} (need length >= {self.min_length})",
                row=row,
            )
        if n > MAX_LENGTH:
            raise DomainError(f"{what} of length {n} exceeds FF1's maximum of 2**32", row=row)

    def _render(self, digits: Sequence[int]) -> str:
        return "".join(self.alphabet[i] for i in digits)

    def _tweak(self, tweak: bytes | None) -> bytes:
        return self.tweak if tweak is None else _check_tweak(tweak)

    # ---- batched ----------------------------------------------------------------------

    def encrypt_many(self, values: Any, tweak: bytes | None = None) -> Any:
        """Encrypt a column: ``pyarrow`` string array or a sequence of ``str | None``.

        Returns a ``pyarrow`` string array (``large_string`` stays ``large_string``; a
        ``ChunkedArray`` gives a ``ChunkedArray``). Nulls stay null. Values may differ in
        length. Errors name the row (0-based) as well as the character and position.
        """
        t = self._tweak(tweak)
        return map_string_groups(values, lambda m, where: self._crypt_bytes(m, where, t, True))

    def decrypt_many(self, values: Any, tweak: bytes | None = None) -> Any:
        """Invert :meth:`encrypt_many` under the same key and tweak."""
        t = self._tweak(tweak)
        return map_string_groups(values, lambda m, where: self._crypt_bytes(m, where, t, False))

    def _crypt_bytes(self, mat: U8, where: RowLocator, t: bytes, encrypt: bool) -> U8:
        digits = self._in_lut[mat]
        if digits.size and int(digits.max()) >= self.radix:
            i = int(np.argmax((digits == INVALID).any(axis=1)))
            self._parse(*where(i))  # raises, naming the character and position
            raise DomainError(f"value outside the radix-{self.radix} alphabet", row=where(i)[1])
        if not self.min_length <= mat.shape[1] <= MAX_LENGTH:
            self._check_length(mat.shape[1], where(0)[1])
        return self._out_lut[self._crypt_digits(digits, t, encrypt)]

    def _crypt_digits(self, digits: U8, t: bytes, encrypt: bool) -> U8:
        """FF1 over each row of a (rows, n) matrix of numerals."""
        rows, n = digits.shape
        out = np.empty_like(digits)
        if self.radix ** (n - n // 2) >= _FAST_LIMIT:
            for i in range(rows):
                out[i] = self._ff1(digits[i].tolist(), t, encrypt)
            return out
        for lo in range(0, rows, _BLOCK_ROWS):
            hi = min(lo + _BLOCK_ROWS, rows)
            out[lo:hi] = self._feistel(digits[lo:hi], t, encrypt)
        return out

    def _feistel(self, digits: U8, t: bytes, encrypt: bool) -> U8:
        """The vectorised Feistel: every row of ``digits`` at once, uint64 arithmetic."""
        rows, n = digits.shape
        radix, u, v = self.radix, n // 2, n - n // 2
        f_const, k_const, d = self._constants(n, t)
        a, b_ = num_radix_cols(digits[:, :u], radix), num_radix_cols(digits[:, u:], radix)
        block = np.empty((rows, 2), dtype=">u8")
        buf = bytearray(16 * rows + 15)
        r = np.frombuffer(buf, dtype=">u8", count=2 * rows).reshape(rows, 2)
        ecb = Cipher(self._aes, modes.ECB()).encryptor()
        for i in range(_ROUNDS) if encrypt else range(_ROUNDS - 1, -1, -1):
            m = radix ** (u if i % 2 == 0 else v)
            block[:, 0] = f_const[i]
            block[:, 1] = (b_ if encrypt else a) ^ np.uint64(k_const[i])
            ecb.update_into(block.view(np.uint8).reshape(-1).data, buf)
            y = reduce_mod(r[:, 0].astype(np.uint64), r[:, 1].astype(np.uint64), 8 * d - 64, m)
            mm = np.uint64(m)
            if encrypt:
                c = a + y
                a, b_ = b_, np.minimum(c, c - mm)  # c - m wraps when c < m
            else:
                c = b_ - y
                a, b_ = np.minimum(c, c + mm), a  # c + m wraps back when c did not
        out = np.empty((rows, n), dtype=np.uint8)
        out[:, :u] = str_radix_cols(a, u, radix)
        out[:, u:] = str_radix_cols(b_, v, radix)
        return out

    def _constants(self, n: int, t: bytes) -> tuple[list[int], list[int], int]:
        """Per (length, tweak): the last PRF block's constant halves for each round, and d.

        Round ``i``'s AES input is ``[F_i, K_i xor NUM_radix(B)]`` as two big-endian words.
        """
        key = (n, t)
        found = self._consts.get(key)
        if found is None:
            u, v = n // 2, n - n // 2
            b = ((self.radix**v - 1).bit_length() + 7) // 8
            d = 4 * ((b + 3) // 4) + 4
            assert b <= 8 and d <= 12, "fast path needs NUM_radix(B) in one word"
            q_head = t + bytes((-len(t) - b - 1) % 16)  # Q = q_head || [i] || [NUM(B)]^b
            split = len(q_head) + 1 + b - 16
            head = p_block(self.radix, u, n, len(t)) + q_head[:split]
            chain = Cipher(self._aes, modes.CBC(bytes(16))).encryptor().update(head)[-16:]
            f, k = [], []
            for i in range(_ROUNDS):
                x = xor_bytes(chain, q_head[split:] + bytes([i]) + bytes(b))
                f.append(int.from_bytes(x[:8], "big"))
                k.append(int.from_bytes(x[8:], "big"))
            if len(self._consts) > 256:
                self._consts.clear()
            self._consts[key] = found = (f, k, d)
        return found

    # ---- separators and clear prefix / suffix -----------------------------------------
    # The work is in privacy.fpe.formatted.

    def encrypt_formatted(
        self,
        value: str,
        *,
        keep_prefix: int = 0,
        keep_suffix: int = 0,
        separators: str = DEFAULT_SEPARATORS,
        tweak: bytes | None = None,
    ) -> str:
        """Encrypt the numerals of ``value`` between a clear prefix and suffix.

        ``"6222-0212-3456-7890"`` with ``keep_prefix=6, keep_suffix=4`` keeps the
        separators, the first 6 numerals (card BIN) and the last 4 as they are and
        encrypts the 6 numerals between them. ``keep_prefix``/``keep_suffix`` count
        numerals, not characters. Any character that is neither a numeral nor one of
        ``separators`` (ASCII only) raises :class:`~privacy.errors.DomainError`; the
        domain rule applies to the encrypted numerals only.

        Warnings
        --------
        The clear part is not bound into the tweak: equal middles encrypt alike under
        different prefixes. Put the prefix into ``tweak`` if that matters (scalar use).
        """
        return crypt_formatted(self, value, keep_prefix, keep_suffix, separators, tweak, True)

    def decrypt_formatted(
        self,
        value: str,
        *,
        keep_prefix: int = 0,
        keep_suffix: int = 0,
        separators: str = DEFAULT_SEPARATORS,
        tweak: bytes | None = None,
    ) -> str:
        """Invert :meth:`encrypt_formatted` (same options, key and tweak)."""
        return crypt_formatted(self, value, keep_prefix, keep_suffix, separators, tweak, False)

    def encrypt_formatted_many(
        self,
        values: Any,
        *,
        keep_prefix: int = 0,
        keep_suffix: int = 0,
        separators: str = DEFAULT_SEPARATORS,
        tweak: bytes | None = None,
    ) -> Any:
        """:meth:`encrypt_formatted` over a column, with the conventions of
        :meth:`encrypt_many`."""
        fn = formatted_transform(self, keep_prefix, keep_suffix, separators, tweak, True)
        return map_string_groups(values, fn)

    def decrypt_formatted_many(
        self,
        values: Any,
        *,
        keep_prefix: int = 0,
        keep_suffix: int = 0,
        separators: str = DEFAULT_SEPARATORS,
        tweak: bytes | None = None,
    ) -> Any:
        """Invert :meth:`encrypt_formatted_many`."""
        fn = formatted_transform(self, keep_prefix, keep_suffix, separators, tweak, False)
        return map_string_groups(values, fn)


# ---- helpers ---------------------------------------------------------------------------


def _check_tweak(tweak: object) -> bytes:
    if not isinstance(tweak, bytes | bytearray | memoryview):
        raise InputError(f"FF1 tweak must be bytes, got {type(tweak).__name__}")
    if len(tweak) >= MAX_LENGTH:
        raise DomainError("FF1 tweak must be shorter than 2**32 bytes")
    return bytes(tweak)
