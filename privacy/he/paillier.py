"""Paillier encryption of packed numpy vectors, on phe's keys and gmpy2 arithmetic.

Keys come from :mod:`phe` (``phe.paillier.generate_paillier_keypair``; ``g = n + 1``);
the hot loops run on gmpy2 directly over phe's numbers ``n``, ``n**2``, ``p``, ``q``.
Ciphertexts are ordinary Paillier ciphertexts, so an unpacked value encrypted here
decrypts with phe (``EncryptedNumber(pk, c, exponent=0)``) and the reverse.

Fast encryption (Damgård–Jurik–Nielsen)
---------------------------------------
Textbook encryption costs ``r**n mod n**2`` with a full-length ``r`` (about 9 ms at
2048 bits). Following Damgård, Jurik and Nielsen ("A generalization of Paillier's
public-key system with applications to electronic voting", IJIS 2010, section 4.2),
the public key carries ``h_s = h**n mod n**2`` with ``h = -y**2 mod n`` for a random
``y``, and the randomiser ``r**n`` is replaced by ``h_s**a`` with a short random ``a``.
Semantic security then rests on the DCR assumption *plus* the small-exponent assumption:
that ``h_s**a`` with ``a`` of ``2*kappa`` bits is indistinguishable from a random
``n``-th residue. The best known attacks on short exponents (Pollard's lambda,
van Oorschot–Wiener) cost about ``2**(|a|/2)`` group operations, so ``|a| = 2*kappa``
(kappa = 112 at 2048 bits, 128 at 3072 bits, per NIST SP 800-57) matches the key's
strength; the same reasoning fixes 2*kappa-bit exponents for finite-field DH in
NIST SP 800-56A. DJN themselves (and SecretFlow HEU's "ZPaillier", Intel IPCL's DJN
mode) use the more conservative ``|a| = nbits/2``; pass ``exponent_bits=nbits // 2`` to
:func:`generate_keypair` for that. ``h_s**a`` is computed with a fixed-base table of
byte windows (``h_s**(d * 256**j)``), i.e. about ``|a|/8`` modular multiplications,
roughly 0.2 ms at 2048 bits. An alternative with no extra assumption is a pool of
``r**n`` values precomputed off-line and never reused; it moves the cost, not removes it.

Work is spread over processes (:class:`concurrent.futures.ProcessPoolExecutor`); the
workers receive plain integers (the public numbers, or ``p, q`` for decryption).

Warnings
--------
The private key's ``p`` and ``q`` travel to local worker processes during parallel
decryption. Keys below 2048 bits are refused.
"""

from __future__ import annotations

import hashlib
import math
import os
import secrets
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import gmpy2
import numpy as np
import numpy.typing as npt

from privacy.errors import HEError
from privacy.he.packing import PackingLayout, decode_values, encode_values, pack, unpack

__all__ = [
    "MIN_KEY_BITS",
    "DEFAULT_KEY_BITS",
    "security_bits",
    "PaillierPublicKey",
    "PaillierPrivateKey",
    "generate_keypair",
    "EncryptedVector",
]

MIN_KEY_BITS = 2048
DEFAULT_KEY_BITS = 3072
Progress = Callable[[int], None]


def security_bits(nbits: int) -> int:
    """Symmetric-equivalent strength of an ``nbits`` modulus (NIST SP 800-57 part 1)."""
    if nbits < 3072:
        return 112
    if nbits < 7680:
        return 128
    if nbits < 15360:
        return 192
    return 256


def _check_bits(nbits: int) -> None:
    if nbits < MIN_KEY_BITS:
        raise HEError(
            f"Paillier key of {nbits} bits is too short: at least {MIN_KEY_BITS} bits "
            f"are required (default {DEFAULT_KEY_BITS})"
        )


def fingerprint_of(n: int) -> bytes:
    """SHA-256 fingerprint of a Paillier public key (its modulus)."""
    nb = int(n).to_bytes((int(n).bit_length() + 7) // 8, "big")
    return hashlib.sha256(b"covault-paillier-v1\x00" + nb).digest()


# ---------------------------------------------------------------- worker-side kernels
_TABLES: dict[tuple[int, int, int], list[list[Any]]] = {}
_CRT: dict[tuple[int, int], tuple[Any, ...]] = {}


def _table(n: int, hs: int, ebytes: int) -> list[list[Any]]:
    key = (n, hs, ebytes)
    t = _TABLES.get(key)
    if t is None:
        n2 = gmpy2.mpz(n) * n
        base = gmpy2.mpz(hs)
        t = []
        for _ in range(ebytes):
            row = [gmpy2.mpz(1)] * 256
            for d in range(1, 256):
                row[d] = row[d - 1] * base % n2
            t.append(row)
            base = row[255] * base % n2
        _TABLES.clear()  # one key per process at a time keeps memory bounded
        _TABLES[key] = t
    return t


def _randomisers(n: int, hs: int, ebytes: int, count: int) -> list[Any]:
    """``count`` fresh values ``h_s**a mod n**2`` with ``a`` of ``8*ebytes`` random bits."""
    t = _table(n, hs, ebytes)
    n2 = gmpy2.mpz(n) * n
    rnd = os.urandom(ebytes * count)
    out = []
    for i in range(count):
        acc = gmpy2.mpz(1)
        for j, byte in enumerate(rnd[i * ebytes : (i + 1) * ebytes]):
            if byte:
                acc = acc * t[j][byte] % n2
        out.append(acc)
    return out


def _encrypt_chunk(args: tuple[int, int, int, list[int]]) -> list[Any]:
    n, hs, ebytes, plains = args
    mn = gmpy2.mpz(n)
    n2 = mn * mn
    rs = _randomisers(n, hs, ebytes, len(plains))
    return [(gmpy2.mpz(m) * mn + 1) * r % n2 for m, r in zip(plains, rs, strict=True)]


def _rerandomise_chunk(args: tuple[int, int, int, list[Any]]) -> list[Any]:
    n, hs, ebytes, cts = args
    n2 = gmpy2.mpz(n) * n
    rs = _randomisers(n, hs, ebytes, len(cts))
    return [c * r % n2 for c, r in zip(cts, rs, strict=True)]


def _crt(p: int, q: int) -> tuple[Any, ...]:
    key = (p, q)
    c = _CRT.get(key)
    if c is None:
        mp, mq = gmpy2.mpz(p), gmpy2.mpz(q)
        n = mp * mq
        p2, q2 = mp * mp, mq * mq
        # h_p = L_p(g**(p-1) mod p**2)**-1 mod p with g = n + 1
        hp = gmpy2.invert((gmpy2.powmod(n + 1, mp - 1, p2) - 1) // mp, mp)
        hq = gmpy2.invert((gmpy2.powmod(n + 1, mq - 1, q2) - 1) // mq, mq)
        c = (mp, mq, p2, q2, hp, hq, gmpy2.invert(mp, mq), n)
        _CRT.clear()
        _CRT[key] = c
    return c


def _decrypt_chunk(args: tuple[int, int, list[Any]]) -> list[int]:
    p, q, cts = args
    mp, mq, p2, q2, hp, hq, pinv, n = _crt(p, q)
    half = n // 2
    out = []
    for c in cts:
        xp = (gmpy2.powmod(c % p2, mp - 1, p2) - 1) // mp * hp % mp
        xq = (gmpy2.powmod(c % q2, mq - 1, q2) - 1) // mq * hq % mq
        m = xp + (xq - xp) * pinv % mq * mp
        out.append(int(m - n) if m > half else int(m))
    return out


_POOLS: dict[int, ProcessPoolExecutor] = {}


def _pool(workers: int) -> ProcessPoolExecutor:
    pool = _POOLS.get(workers)
    if pool is None:
        import multiprocessing

        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("forkserver"))
        _POOLS[workers] = pool
    return pool


def default_workers() -> int:
    """Usable cores (the process's CPU affinity)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _run(
    fn: Callable[[Any], list[Any]],
    head: tuple[Any, ...],
    items: Sequence[Any],
    workers: int | None,
    progress: Progress | None,
) -> list[Any]:
    """Apply ``fn((*head, chunk))`` over chunks of ``items``, in processes when worth it."""
    w = default_workers() if workers is None else max(1, workers)
    total = len(items)
    if w == 1 or total < 64:
        size = max(1, min(total, 512))
        out: list[Any] = []
        for i in range(0, total, size):
            out.extend(fn((*head, list(items[i : i + size]))))
            if progress:
                progress(min(size, total - i))
        return out
    size = max(16, min(2048, -(-total // (w * 8))))
    chunks = [(*head, list(items[i : i + size])) for i in range(0, total, size)]
    out = []
    for res in _pool(w).map(fn, chunks):
        out.extend(res)
        if progress:
            progress(len(res))
    return out


# ---------------------------------------------------------------------------- keys
@dataclass(frozen=True, eq=False)
class PaillierPublicKey:
    """A Paillier public key ``n`` (``g = n + 1``) with its DJN base ``h_s``.

    Build with :func:`generate_keypair` or :meth:`from_phe`; ``exponent_bits`` is the
    length of the short DJN exponent (default ``2 * security_bits(nbits)``).
    """

    n: int
    hs: int
    exponent_bits: int

    def __post_init__(self) -> None:
        _check_bits(self.bits)
        if self.exponent_bits < 2 * security_bits(self.bits):
            raise HEError(
                f"DJN exponent of {self.exponent_bits} bits is below 2*kappa = "
                f"{2 * security_bits(self.bits)} bits for a {self.bits}-bit key"
            )

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
        """SHA-256 over the modulus: names the key in files and error messages."""
        return fingerprint_of(self.n)

    @property
    def key_id(self) -> str:
        """Short printable fingerprint (16 hex digits)."""
        return self.fingerprint[:8].hex()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PaillierPublicKey) and other.n == self.n

    def __hash__(self) -> int:
        return hash(self.n)

    @classmethod
    def from_phe(cls, key: Any, *, exponent_bits: int | None = None) -> PaillierPublicKey:
        """Wrap a ``phe.paillier.PaillierPublicKey`` (a fresh DJN base is drawn)."""
        return cls.from_n(int(key.n), exponent_bits=exponent_bits)

    @classmethod
    def from_n(cls, n: int, *, exponent_bits: int | None = None) -> PaillierPublicKey:
        """Public key for modulus ``n`` with a freshly drawn DJN base."""
        _check_bits(n.bit_length())
        mn = gmpy2.mpz(n)
        while True:
            y = gmpy2.mpz(secrets.randbelow(n - 2) + 2)
            if gmpy2.gcd(y, mn) == 1:
                break
        hs = int(gmpy2.powmod((-y * y) % mn, mn, mn * mn))
        eb = 2 * security_bits(n.bit_length()) if exponent_bits is None else exponent_bits
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
        return _run(_encrypt_chunk, (n, int(self.hs), self._ebytes), items, workers, progress)

    def encrypt_int(self, m: int) -> int:
        """Encrypt one integer ``-n/2 < m < n/2`` (phe-compatible, exponent 0)."""
        return int(self.encrypt_raw([m], workers=1)[0])

    def rerandomise(self, ciphertexts: Sequence[Any], *, workers: int | None = None) -> list[Any]:
        """Multiply each ciphertext by a fresh encryption of zero."""
        return _run(
            _rerandomise_chunk, (int(self.n), int(self.hs), self._ebytes), ciphertexts, workers,
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

    def __repr__(self) -> str:
        return f"PaillierPrivateKey(key_id={self.public_key.key_id!r}, bits={self.public_key.bits})"

    def __reduce__(self) -> Any:
        raise TypeError("PaillierPrivateKey refuses to be pickled; use privacy.he.serial")

    @classmethod
    def from_phe(cls, private_key: Any, *, exponent_bits: int | None = None) -> PaillierPrivateKey:
        """Wrap a ``phe.paillier.PaillierPrivateKey``."""
        pub = PaillierPublicKey.from_phe(private_key.public_key, exponent_bits=exponent_bits)
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
        return _run(_decrypt_chunk, (int(self.p), int(self.q)), ciphertexts, workers, progress)

    def decrypt_int(self, c: int) -> int:
        """Decrypt one ciphertext integer (e.g. phe's ``EncryptedNumber.ciphertext()``)."""
        return self.decrypt_raw([c], workers=1)[0]


def generate_keypair(
    bits: int = DEFAULT_KEY_BITS, *, exponent_bits: int | None = None
) -> tuple[PaillierPublicKey, PaillierPrivateKey]:
    """Generate a Paillier key pair with phe (``bits`` >= 2048, default 3072).

    Raises
    ------
    HEError
        ``bits`` below 2048.
    """
    _check_bits(bits)
    from phe import paillier, util

    if not util.HAVE_GMP:  # pragma: no cover - environment problem
        raise HEError("phe is running without gmpy2; install gmpy2 (covault[he])")
    pk, sk = paillier.generate_paillier_keypair(n_length=bits)
    pub = PaillierPublicKey.from_n(int(pk.n), exponent_bits=exponent_bits)
    return pub, PaillierPrivateKey(pub, int(sk.p), int(sk.q))


# ---------------------------------------------------------------------- vectors
@dataclass(eq=False)
class EncryptedVector:
    """A numpy vector packed into Paillier ciphertexts.

    ``weight`` is the headroom used (contributions summed, times ``|scalar|``) and is
    checked against ``layout.parties``; ``contributors`` are the party ids summed in.
    Create with :meth:`encrypt`; combine with ``+``, ``* int`` and :meth:`sum`.
    """

    public_key: PaillierPublicKey
    layout: PackingLayout
    ciphertexts: list[Any]
    length: int
    weight: int = 1
    contributors: tuple[str, ...] = ()
    name: str | None = None

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

    def __add__(self, other: EncryptedVector) -> EncryptedVector:
        self._check_compatible(other)
        weight = self.weight + other.weight
        self.layout.check_weight(weight)
        n2 = gmpy2.mpz(self.public_key.nsquare)
        cts = [a * b % n2 for a, b in zip(self.ciphertexts, other.ciphertexts, strict=True)]
        who = tuple(sorted(set(self.contributors) | set(other.contributors)))
        return EncryptedVector(self.public_key, self.layout, cts, self.length, weight, who,
                               self.name or other.name)

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
                               self.contributors, self.name)

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
                               first.name)

    def rerandomised(self, *, workers: int | None = None) -> EncryptedVector:
        """The same plaintexts under fresh randomness (multiplied by an encryption of 0)."""
        cts = self.public_key.rerandomise(self.ciphertexts, workers=workers)
        return EncryptedVector(self.public_key, self.layout, cts, self.length, self.weight,
                               self.contributors, self.name)

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
