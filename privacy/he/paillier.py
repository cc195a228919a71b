"""Paillier encryption of packed numpy vectors, on phe's keys and gmpy2 arithmetic.

:class:`EncryptedVector` packs many values per ciphertext (:mod:`privacy.he.packing`)
and adds, negates and scales them homomorphically. Ciphertexts are ordinary Paillier
ciphertexts, so an unpacked value encrypted here decrypts with phe
(``EncryptedNumber(pk, c, exponent=0)``) and the reverse.

The key API is re-exported from :mod:`privacy.he.paillier_keys` (phe key generation,
Damgård–Jurik–Nielsen fast encryption: see there for the security argument), and
:func:`default_workers` from :mod:`privacy.he.paillier_workers` (the gmpy2 kernels).
Work is spread over processes (:class:`concurrent.futures.ProcessPoolExecutor`); the
workers receive plain integers (the public numbers, or ``p, q`` for decryption).

Warnings
--------
The private key's ``p`` and ``q`` travel to local worker processes during parallel
decryption. Keys below 2048 bits are refused.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import gmpy2
import numpy as np
import numpy.typing as npt

from privacy.errors import HEError
from privacy.he.packing import PackingLayout, decode_values, encode_values, pack, unpack
from privacy.he.paillier_keys import (
    DEFAULT_KEY_BITS,
    MIN_KEY_BITS,
    PaillierPrivateKey,
    PaillierPublicKey,
    generate_keypair,
    security_bits,
)
from privacy.he.paillier_keys import fingerprint_of as fingerprint_of
from privacy.he.paillier_workers import Progress as Progress
from privacy.he.paillier_workers import default_workers as default_workers
from privacy.he.rows import RowIds, check_aligned

__all__ = [
    "MIN_KEY_BITS",
    "DEFAULT_KEY_BITS",
    "security_bits",
    "PaillierPublicKey",
    "PaillierPrivateKey",
    "generate_keypair",
    "EncryptedVector",
]


@dataclass(eq=False)
class EncryptedVector:
    """A numpy vector packed into Paillier ciphertexts.

    ``weight`` is the headroom used (contributions summed, times ``|scalar|``) and is
    checked against ``layout.parties``; ``contributors`` are the party ids summed in
    (a product by 0 holds no contribution and names none). ``endorsements`` are the
    signatures of :mod:`privacy.he.signing`; any operation drops them. ``rows`` are the
    ids of the elements' rows (:mod:`privacy.he.rows`); only vectors of the same rows add.
    Create with :meth:`encrypt`; combine with ``+``, ``* int`` and :meth:`sum`.
    """

    public_key: PaillierPublicKey
    layout: PackingLayout
    ciphertexts: list[Any]
    length: int
    weight: int = 1
    contributors: tuple[str, ...] = ()
    name: str | None = None
    endorsements: tuple[Any, ...] = ()  # privacy.he.signing.Endorsement; dropped by every op
    rows: RowIds | None = None

    @classmethod
    def encrypt(
        cls, public_key: PaillierPublicKey, values: npt.ArrayLike,
        layout: PackingLayout | None = None, *, contributor: str | None = None,
        name: str | None = None, workers: int | None = None, progress: Progress | None = None,
    ) -> EncryptedVector:
        """Encode, pack and encrypt a 1-D array (ints, floats, Decimals) under ``layout``."""
        lay = layout or PackingLayout()
        ints = encode_values(values, lay)
        plains = pack(ints, lay, public_key.bits)
        cts = public_key.encrypt_raw(plains, workers=workers, progress=progress)
        who = (contributor,) if contributor is not None else ()
        return cls(public_key, lay, cts, len(ints), 1, who, name)

    @property
    def key_id(self) -> str:
        """The public key's short fingerprint."""
        return self.public_key.key_id

    def _check_compatible(self, other: EncryptedVector) -> None:
        if not isinstance(other, EncryptedVector):
            raise HEError(f"cannot add {type(other).__name__} to an EncryptedVector")
        if other.public_key != self.public_key:
            raise HEError(
                f"ciphertext was encrypted under key {other.key_id}, not {self.key_id}"
            )
        if other.layout != self.layout:
            raise HEError(f"packing layouts differ: {other.layout} vs {self.layout}")
        if other.length != self.length:
            raise HEError(f"vector lengths differ: {other.length} vs {self.length}")
        check_aligned([self, other])

    def __add__(self, other: EncryptedVector) -> EncryptedVector:
        self._check_compatible(other)
        weight = self.weight + other.weight
        self.layout.check_weight(weight)
        n2 = gmpy2.mpz(self.public_key.nsquare)
        cts = [a * b % n2 for a, b in zip(self.ciphertexts, other.ciphertexts, strict=True)]
        who = tuple(sorted(set(self.contributors) | set(other.contributors)))
        return EncryptedVector(self.public_key, self.layout, cts, self.length, weight, who,
                               self.name or other.name, rows=self.rows or other.rows)

    def __radd__(self, other: object) -> EncryptedVector:
        if isinstance(other, int) and other == 0:  # builtin sum()
            return self
        return NotImplemented

    def __mul__(self, scalar: int) -> EncryptedVector:
        if isinstance(scalar, bool) or not isinstance(scalar, int | np.integer):
            raise HEError(f"encrypted vectors multiply only by integers, not {scalar!r}")
        k = int(scalar)
        weight = self.weight * abs(k)
        self.layout.check_weight(weight)
        n2 = gmpy2.mpz(self.public_key.nsquare)
        cts = [gmpy2.powmod(c, k, n2) for c in self.ciphertexts]
        return EncryptedVector(self.public_key, self.layout, cts, self.length, weight,
                               self.contributors if k else (), self.name, rows=self.rows)

    __rmul__ = __mul__

    def __neg__(self) -> EncryptedVector:
        return self * -1

    def __sub__(self, other: EncryptedVector) -> EncryptedVector:
        return self + (-other)

    @staticmethod
    def sum(vectors: Iterable[EncryptedVector]) -> EncryptedVector:
        """Element-wise sum of several vectors (same key, layout and length)."""
        vs = list(vectors)
        if not vs:
            raise HEError("sum of no encrypted vectors")
        first = vs[0]
        for v in vs[1:]:
            first._check_compatible(v)
        weight = sum(v.weight for v in vs)
        first.layout.check_weight(weight)
        n2 = gmpy2.mpz(first.public_key.nsquare)
        cts = list(first.ciphertexts)
        for v in vs[1:]:
            cts = [a * b % n2 for a, b in zip(cts, v.ciphertexts, strict=True)]
        who = tuple(sorted({c for v in vs for c in v.contributors}))
        return EncryptedVector(first.public_key, first.layout, cts, first.length, weight, who,
                               first.name, rows=check_aligned(vs))

    def rerandomised(self, *, workers: int | None = None) -> EncryptedVector:
        """The same plaintexts under fresh randomness (multiplied by an encryption of 0)."""
        cts = self.public_key.rerandomise(self.ciphertexts, workers=workers)
        return EncryptedVector(self.public_key, self.layout, cts, self.length, self.weight,
                               self.contributors, self.name, rows=self.rows)

    def decrypt(
        self, private_key: PaillierPrivateKey, *, scaled: bool = False,
        workers: int | None = None, progress: Progress | None = None,
    ) -> npt.NDArray[Any]:
        """Decrypt to numpy: int64 (object when sums may exceed int64), or float64 when the
        layout has a ``scale`` (``scaled=True`` returns the scaled integers instead).

        Raises
        ------
        HEError
            ``private_key`` does not belong to the vector's key.
        """
        if private_key.public_key != self.public_key:
            raise HEError(
                f"ciphertext was encrypted under key {self.key_id}, "
                f"not {private_key.public_key.key_id}"
            )
        plains = private_key.decrypt_raw(self.ciphertexts, workers=workers, progress=progress)
        ints = unpack(plains, self.layout, self.public_key.bits, self.length)
        return ints if scaled else decode_values(ints, self.layout)

    @property
    def size_bytes(self) -> int:
        """Bytes of ciphertext (fixed width ``2 * ceil(nbits/8)`` each)."""
        return len(self.ciphertexts) * 2 * (-(-self.public_key.bits // 8))


def ciphertext_count(length: int, layout: PackingLayout, bits: int) -> int:
    """Ciphertexts needed for ``length`` values at ``bits``-bit keys."""
    return math.ceil(length / layout.slots(bits))
