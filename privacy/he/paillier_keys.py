"""Paillier keys on phe's key generation, with Damgård–Jurik–Nielsen fast encryption.

Keys come from :mod:`phe` (``phe.paillier.generate_paillier_keypair``; ``g = n + 1``);
the hot loops (:mod:`privacy.he.paillier_workers`) run on gmpy2 directly over phe's
numbers ``n``, ``n**2``, ``p``, ``q``. Ciphertexts are ordinary Paillier ciphertexts,
so a value encrypted here decrypts with phe (``EncryptedNumber(pk, c, exponent=0)``)
and the reverse.

Fast encryption (Damgård–Jurik–Nielsen)
---------------------------------------
Textbook encryption costs ``r**n mod n**2`` with a full-length ``r`` (about 9 ms at
2048 bits). Following Damgård, Jurik and Nielsen ("A generalization of Paillier's
public-key system with applications to electronic voting", IJIS 2010, section 4.2),
the public key carries ``h_s = h**n mod n**2`` with ``h = -y**2 mod n`` for a random
``y``, and the randomiser ``r**n`` is replaced by ``h_s**a`` with a random exponent ``a``
shorter than ``n``. Semantic security then rests on the DCR assumption *plus* a
small-exponent assumption: that ``h_s**a`` is indistinguishable from a random ``n``-th
residue.

By default ``|a| = nbits/2`` (:func:`default_exponent_bits`: 1024 bits at 2048, 1536 at
3072), the length DJN themselves and maintained implementations use (SecretFlow HEU's
"ZPaillier", Intel IPCL's DJN mode). ``fast_randomness=True`` (``covault he keygen
--fast-randomness``) opts into ``|a| = 2*kappa`` (:func:`short_exponent_bits`: 224 bits
at 2048, 256 at 3072, with kappa from NIST SP 800-57): the best known attacks on short
exponents (Pollard's lambda, van Oorschot–Wiener) cost about ``2**(|a|/2)`` group
operations, so it matches the key's strength as 2*kappa-bit exponents do for
finite-field DH in NIST SP 800-56A, and encrypts about 4-6 times faster, but it is a
stronger assumption than the one maintained implementations rely on. The length is part
of the public key and of its key id, so every party encrypts with the length the key
holder chose. ``h_s**a`` is computed with a fixed-base table of byte windows
(``h_s**(d * 256**j)``), i.e. about ``|a|/8`` modular multiplications (roughly 1 ms at
2048 bits by default, 0.2 ms with the short exponent). An alternative with no extra
assumption is a pool of ``r**n`` values precomputed off-line and never reused; it moves
the cost, not removes it.

Key ids and ``h_s``
-------------------
``h_s`` is part of the public key: a key with ``h_s = 1`` "encrypts" ``m`` as
``(1 + n)**m``, which anyone reads. The key id (:func:`fingerprint_of`) therefore
covers ``n``, ``h_s`` and the exponent length, and every key built checks ``h_s``
publicly (:func:`check_public_numbers`: a unit with ``h_s mod n`` of order above
:data:`SMALL_ORDER_BOUND` and the Jacobi symbol of ``-1``); the key holder also checks
that ``h_s`` is an ``n``-th residue (:class:`PaillierPrivateKey`). Whether ``h_s`` is an
``n``-th residue of large order cannot be checked without the factors: parties rely on
comparing the key id with the key holder's.

Warnings
--------
The private key's ``p`` and ``q`` travel to local worker processes during parallel
decryption. Keys below 2048 bits are refused.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import gmpy2

from privacy.errors import HEError
from privacy.he.paillier_workers import (
    Progress,
    decrypt_chunk,
    encrypt_chunk,
    pack_chunk,
    rerandomise_chunk,
    run_chunked,
    scatter_sum,
)

__all__ = [
    "MIN_KEY_BITS",
    "DEFAULT_KEY_BITS",
    "security_bits",
    "default_exponent_bits",
    "short_exponent_bits",
    "fingerprint_of",
    "check_public_numbers",
    "PaillierPublicKey",
    "PaillierPrivateKey",
    "generate_keypair",
]

MIN_KEY_BITS = 2048
DEFAULT_KEY_BITS = 3072


def security_bits(nbits: int) -> int:
    """Symmetric-equivalent strength of an ``nbits`` modulus (NIST SP 800-57 part 1)."""
    if nbits < 3072:
        return 112
    if nbits < 7680:
        return 128
    if nbits < 15360:
        return 192
    return 256


def default_exponent_bits(nbits: int) -> int:
    """Default DJN exponent length of an ``nbits`` key: ``nbits // 2`` (as DJN, SecretFlow
    HEU and Intel IPCL)."""
    return nbits // 2


def short_exponent_bits(nbits: int) -> int:
    """Opt-in short DJN exponent length: ``2 * security_bits(nbits)`` (``fast_randomness``)."""
    return 2 * security_bits(nbits)


def _exponent_bits(nbits: int, exponent_bits: int | None, fast_randomness: bool) -> int:
    if exponent_bits is not None:
        if fast_randomness:
            raise HEError("give exponent_bits or fast_randomness, not both")
        return int(exponent_bits)
    return short_exponent_bits(nbits) if fast_randomness else default_exponent_bits(nbits)


def _check_bits(nbits: int) -> None:
    if nbits < MIN_KEY_BITS:
        raise HEError(
            f"Paillier key of {nbits} bits is too short: at least {MIN_KEY_BITS} bits "
            f"are required (default {DEFAULT_KEY_BITS})"
        )


#: Domain of the key id hash; ``v2`` ids cover ``n``, ``h_s`` and the exponent length
#: (``v1`` ids covered ``n`` alone, so a rewritten ``h_s`` kept its key's id).
KEY_ID_DOMAIN = b"covault-paillier-key-v2\x00"
#: ``h_s mod n`` must not have a multiplicative order up to this bound (see
#: :func:`check_public_numbers`).
SMALL_ORDER_BOUND = 1024
_SMALL_PRIMES = int(gmpy2.primorial(10_000))


def _lp(x: int) -> bytes:
    """``len (u32) || x`` big-endian: an unambiguous encoding of a non-negative integer."""
    b = int(x).to_bytes((int(x).bit_length() + 7) // 8 or 1, "big")
    return len(b).to_bytes(4, "big") + b


def fingerprint_of(n: int, hs: int, exponent_bits: int) -> bytes:
    """Key id of a Paillier public key: SHA-256 over all its public parameters.

    ``SHA-256("covault-paillier-key-v2" 0x00 || lp(n) || lp(h_s) || u32 exponent_bits)``
    where ``lp(x)`` is ``x`` big-endian behind its byte length (u32): a canonical,
    unambiguous encoding, so no other ``(n, h_s, exponent_bits)`` has the same id.
    """
    if not 0 < int(exponent_bits) < 2**32:
        raise HEError(f"DJN exponent length {exponent_bits} is out of range")
    return hashlib.sha256(KEY_ID_DOMAIN + _lp(n) + _lp(hs)
                          + int(exponent_bits).to_bytes(4, "big")).digest()


@functools.lru_cache(maxsize=64)
def check_public_numbers(n: int, hs: int, exponent_bits: int) -> None:
    """Check what can be checked publicly about a Paillier key ``(n, h_s, exponent_bits)``.

    ``n``: at least :data:`MIN_KEY_BITS` bits, odd, not a square, no prime factor below
    10 000. ``exponent_bits``: from ``2 * security_bits`` up to the bit length of ``n``
    (a longer exponent buys nothing and its fixed-base table would exhaust memory).
    ``h_s`` must be a unit of ``Z/n**2`` (``1 < h_s < n**2``, ``gcd(h_s, n) = 1``) of the
    DJN form ``h**n mod n**2`` with ``h = -y**2 mod n`` as far as that is visible without
    the factors of ``n``:

    * ``h_s mod n`` has multiplicative order above :data:`SMALL_ORDER_BOUND` modulo
      ``n``. This refuses ``h_s = 1``, ``n**2 - 1`` and every ``h_s = 1 mod n`` (such as
      ``(1 + n)**t``): with a base of small order ``k``, ``c mod n = h_s**a mod n``
      gives away ``a mod k``, and with it ``(1 + n)**m`` and the plaintext;
    * its Jacobi symbol modulo ``n`` is that of ``-1`` (``(-y**2)**n`` has the symbol
      of ``-1`` because ``n`` is odd); an arbitrary substitute fails this half the time.

    What cannot be checked publicly: that ``h_s`` is an ``n``-th residue modulo
    ``n**2`` (deciding that *is* the DCR problem Paillier's security rests on) and that
    its order is large (about ``lambda(n)``; computing it needs the factors). The key
    holder checks the first on every load of its private key
    (:class:`PaillierPrivateKey`); everyone else relies on the key id, which covers
    ``h_s`` and must be compared out of band with the key holder's.

    Raises
    ------
    HEError
        The numbers cannot form a sound key.
    """
    n, hs, exponent_bits = int(n), int(hs), int(exponent_bits)
    _check_bits(n.bit_length())
    mn = gmpy2.mpz(n)
    if n % 2 == 0 or gmpy2.is_square(mn) or gmpy2.gcd(mn, _SMALL_PRIMES) != 1:
        raise HEError("Paillier modulus n is even, a square or has a small prime factor")
    kappa2 = 2 * security_bits(n.bit_length())
    if exponent_bits < kappa2:
        raise HEError(
            f"DJN exponent of {exponent_bits} bits is below 2*kappa = "
            f"{kappa2} bits for a {n.bit_length()}-bit key"
        )
    if exponent_bits > n.bit_length():
        raise HEError(f"DJN exponent of {exponent_bits} bits is longer than the "
                      f"{n.bit_length()}-bit modulus")
    if not 1 < hs < n * n:
        raise HEError("DJN base h_s must satisfy 1 < h_s < n**2")
    if gmpy2.gcd(hs, mn) != 1:
        raise HEError("DJN base h_s is not a unit modulo n**2 (gcd(h_s, n) != 1)")
    h0 = gmpy2.mpz(hs) % mn
    x = h0
    for k in range(1, SMALL_ORDER_BOUND + 1):
        if x == 1:
            raise HEError(f"DJN base h_s has order {k} modulo n: it would leave "
                          "ciphertexts (nearly) unrandomised and readable by anyone")
        x = x * h0 % mn
    if gmpy2.jacobi(h0, mn) != gmpy2.jacobi(mn - 1, mn):
        raise HEError("DJN base h_s is not of the form (-y**2)**n (wrong Jacobi symbol)")


def _is_nth_residue(hs: int, p: int, q: int) -> bool:
    """Whether ``h_s`` is an ``n``-th residue modulo ``n**2`` (``n = p*q``): its order
    divides ``p - 1`` modulo ``p**2`` and ``q - 1`` modulo ``q**2``."""
    return all(gmpy2.powmod(hs, r - 1, gmpy2.mpz(r) * r) == 1 for r in (p, q))


@dataclass(frozen=True, eq=False)
class PaillierPublicKey:
    """A Paillier public key ``n`` (``g = n + 1``) with its DJN base ``h_s``.

    Build with :func:`generate_keypair` or :meth:`from_phe`; ``exponent_bits`` is the
    length of the DJN exponent (default ``nbits // 2``; ``2 * security_bits(nbits)``
    with ``fast_randomness``).
    """

    n: int
    hs: int
    exponent_bits: int

    def __post_init__(self) -> None:
        check_public_numbers(int(self.n), int(self.hs), int(self.exponent_bits))

    @property
    def bits(self) -> int:
        """Bit length of ``n``."""
        return int(self.n).bit_length()

    @property
    def nsquare(self) -> int:
        """``n**2``."""
        return int(self.n) ** 2

    @property
    def fingerprint(self) -> bytes:
        """SHA-256 over all public parameters (:func:`fingerprint_of`): the key id."""
        return fingerprint_of(self.n, self.hs, self.exponent_bits)

    @property
    def key_id(self) -> str:
        """Short printable fingerprint (16 hex digits)."""
        return self.fingerprint[:8].hex()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PaillierPublicKey) and other.fingerprint == self.fingerprint

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    @classmethod
    def from_phe(cls, key: Any, *, exponent_bits: int | None = None,
                 fast_randomness: bool = False) -> PaillierPublicKey:
        """Wrap a ``phe.paillier.PaillierPublicKey`` (a fresh DJN base is drawn)."""
        return cls.from_n(int(key.n), exponent_bits=exponent_bits,
                          fast_randomness=fast_randomness)

    @classmethod
    def from_n(cls, n: int, *, exponent_bits: int | None = None,
               fast_randomness: bool = False) -> PaillierPublicKey:
        """Public key for modulus ``n`` with a freshly drawn DJN base.

        The exponent is ``exponent_bits`` long if given, else
        :func:`short_exponent_bits` with ``fast_randomness``, else
        :func:`default_exponent_bits`.
        """
        _check_bits(n.bit_length())
        mn = gmpy2.mpz(n)
        eb = _exponent_bits(n.bit_length(), exponent_bits, fast_randomness)
        while True:
            y = gmpy2.mpz(secrets.randbelow(n - 2) + 2)
            if gmpy2.gcd(y, mn) != 1:
                continue
            hs = int(gmpy2.powmod((-y * y) % mn, mn, mn * mn))
            try:
                check_public_numbers(n, hs, eb)
            except HEError:
                if hs % n in (1, n - 1):  # y = +-1: redraw (probability about 4/n)
                    continue
                raise
            return cls(n=n, hs=hs, exponent_bits=eb)

    def to_phe(self) -> Any:
        """The equivalent ``phe.paillier.PaillierPublicKey``."""
        from phe import paillier

        return paillier.PaillierPublicKey(int(self.n))

    @property
    def _ebytes(self) -> int:
        return -(-self.exponent_bits // 8)

    def encrypt_raw(
        self, plaintexts: Sequence[int], *, workers: int | None = None,
        progress: Progress | None = None,
    ) -> list[Any]:
        """Encrypt integers (taken modulo ``n``) with DJN randomness; gmpy2 ``mpz`` out."""
        n = int(self.n)
        items = [int(m) % n for m in plaintexts]
        return run_chunked(encrypt_chunk, (n, int(self.hs), self._ebytes), items, workers, progress)

    def encrypt_int(self, m: int) -> int:
        """Encrypt one integer ``-n/2 < m < n/2`` (phe-compatible, exponent 0)."""
        return int(self.encrypt_raw([m], workers=1)[0])

    def pack(self, ciphertexts: Sequence[Any], slot_bits: int, per: int, *,
             workers: int | None = None) -> list[Any]:
        """Pack ``per`` ciphertexts into one, lowest first: ``Enc(sum m_j * 2**(j *
        slot_bits))`` by homomorphic scalar multiplication and addition (no new
        randomness: re-randomise before sending). The caller keeps every ``m_j`` within
        its slot and the packed value below ``n / 2``.

        Raises
        ------
        HEError
            ``per * slot_bits`` does not fit below ``n / 2``.
        """
        if per < 1 or slot_bits < 1 or per * slot_bits > self.bits - 2:
            raise HEError(f"{per} slots of {slot_bits} bits do not fit a {self.bits}-bit key")
        groups = [list(ciphertexts[i:i + per]) for i in range(0, len(ciphertexts), per)]
        return run_chunked(pack_chunk, (int(self.n), slot_bits), groups, workers, None)

    def scatter_sum(self, ciphertexts: Sequence[Any], cells: Any, size: int, *,
                    workers: int | None = None) -> list[Any]:
        """``size`` homomorphic sums: ciphertext ``i`` is added into every sum named in row
        ``i`` of the integer array ``cells`` (``(len(ciphertexts), k)``, values below
        ``size``); a sum nothing was added to is ``1`` (a trivial encryption of 0, so
        re-randomise before sending). Rows are split over ``workers`` processes whose
        partial sums are then added.

        Raises
        ------
        HEError
            ``cells`` does not have one row per ciphertext, or names a sum out of range.
        """
        import numpy as np

        grid = np.asarray(cells, dtype=np.int64)
        if grid.ndim != 2 or grid.shape[0] != len(ciphertexts):
            raise HEError(f"cells must have one row per ciphertext ({len(ciphertexts)}), "
                          f"not shape {grid.shape}")
        if grid.size and (int(grid.min()) < 0 or int(grid.max()) >= size):
            raise HEError(f"cells name sums outside 0..{size - 1}")
        return scatter_sum(int(self.n), size, ciphertexts, grid, workers)

    @property
    def ciphertext_width(self) -> int:
        """Bytes of one ciphertext on the wire (``n**2`` big-endian, fixed width)."""
        return 2 * (-(-self.bits // 8))

    def ciphertexts_to_bytes(self, ciphertexts: Sequence[Any]) -> bytes:
        """Ciphertexts as one block of fixed-width big-endian integers (the layout of
        :mod:`privacy.he.serial` vectors)."""
        w = self.ciphertext_width
        return b"".join(int(c).to_bytes(w, "big") for c in ciphertexts)

    def ciphertexts_from_bytes(self, data: bytes, *, what: str = "ciphertexts"
                               ) -> list[Any]:
        """Inverse of :meth:`ciphertexts_to_bytes` (gmpy2 ``mpz``), each checked to be a
        unit-range value ``0 < c < n**2``.

        Raises
        ------
        HEError
            The block is not a whole number of ciphertexts, or a value is out of range;
            the message starts with ``what``.
        """
        w = self.ciphertext_width
        if len(data) % w:
            raise HEError(f"{what}: {len(data)} bytes is not a whole number of "
                          f"{w}-byte ciphertexts")
        n2 = gmpy2.mpz(self.nsquare)
        out = [gmpy2.mpz(int.from_bytes(data[i:i + w], "big")) for i in range(0, len(data), w)]
        for i, c in enumerate(out):
            if not 0 < c < n2:
                raise HEError(f"{what}: ciphertext {i} is outside 1..n**2-1")
        return out

    def rerandomise(self, ciphertexts: Sequence[Any], *, workers: int | None = None) -> list[Any]:
        """Multiply each ciphertext by a fresh encryption of zero."""
        return run_chunked(
            rerandomise_chunk, (int(self.n), int(self.hs), self._ebytes), ciphertexts, workers,
            None,
        )


@dataclass(frozen=True, eq=False)
class PaillierPrivateKey:
    """The factors ``p, q`` of a :class:`PaillierPublicKey`; decrypts with CRT on gmpy2."""

    public_key: PaillierPublicKey
    p: int
    q: int = field(repr=False)

    def __post_init__(self) -> None:
        if self.p * self.q != self.public_key.n:
            raise HEError("private key does not match its public key (p*q != n)")
        if not _is_nth_residue(int(self.public_key.hs), int(self.p), int(self.q)):
            raise HEError("the public key's DJN base h_s is not an n-th residue modulo n**2: "
                          "encryptions under it would not decrypt; regenerate the key")

    def __repr__(self) -> str:
        return f"PaillierPrivateKey(key_id={self.public_key.key_id!r}, bits={self.public_key.bits})"

    def __reduce__(self) -> Any:
        raise TypeError("PaillierPrivateKey refuses to be pickled; use privacy.he.serial")

    @classmethod
    def from_phe(cls, private_key: Any, *, exponent_bits: int | None = None,
                 fast_randomness: bool = False) -> PaillierPrivateKey:
        """Wrap a ``phe.paillier.PaillierPrivateKey``."""
        pub = PaillierPublicKey.from_phe(private_key.public_key, exponent_bits=exponent_bits,
                                         fast_randomness=fast_randomness)
        return cls(pub, int(private_key.p), int(private_key.q))

    def to_phe(self) -> Any:
        """The equivalent ``phe.paillier.PaillierPrivateKey``."""
        from phe import paillier

        return paillier.PaillierPrivateKey(self.public_key.to_phe(), int(self.p), int(self.q))

    def decrypt_raw(
        self, ciphertexts: Sequence[Any], *, workers: int | None = None,
        progress: Progress | None = None,
    ) -> list[int]:
        """Decrypt to centred integers ``-n/2 < m <= n/2`` (CRT)."""
        head = (int(self.p), int(self.q))
        return run_chunked(decrypt_chunk, head, ciphertexts, workers, progress)

    def decrypt_int(self, c: int) -> int:
        """Decrypt one ciphertext integer (e.g. phe's ``EncryptedNumber.ciphertext()``)."""
        return self.decrypt_raw([c], workers=1)[0]


def generate_keypair(
    bits: int = DEFAULT_KEY_BITS, *, exponent_bits: int | None = None,
    fast_randomness: bool = False,
) -> tuple[PaillierPublicKey, PaillierPrivateKey]:
    """Generate a Paillier key pair with phe (``bits`` >= 2048, default 3072).

    Encryption uses a DJN exponent of ``bits // 2`` bits; ``fast_randomness=True`` opts
    into the short ``2 * kappa``-bit exponent (faster, a stronger assumption: see the
    module notes); ``exponent_bits`` sets another length.

    Raises
    ------
    HEError
        ``bits`` below 2048, or an exponent length out of range.
    """
    _check_bits(bits)
    _exponent_bits(bits, exponent_bits, fast_randomness)  # refuse a bad request before keygen
    from phe import paillier, util

    if not util.HAVE_GMP:  # pragma: no cover - environment problem
        raise HEError("phe is running without gmpy2; install gmpy2 (covault[he])")
    pk, sk = paillier.generate_paillier_keypair(n_length=bits)
    pub = PaillierPublicKey.from_n(int(pk.n), exponent_bits=exponent_bits,
                                   fast_randomness=fast_randomness)
    return pub, PaillierPrivateKey(pub, int(sk.p), int(sk.q))
