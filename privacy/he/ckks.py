"""CKKS (approximate floats) and BFV (exact integers) vectors on TenSEAL.

Parameters are chosen by name, never by hand (see :data:`PARAMETER_SETS`). Every set
stays within the HomomorphicEncryption.org standard's 128-bit classical bound on
``log2 q`` for its ring degree (4096: 109, 8192: 218, 16384: 438 bits).

* **CKKS** for model updates: a float vector is split into chunks of ``N/2`` slots (no
  TenSEAL split warnings) and encrypted at scale ``2**scale_bits``. Results carry an
  absolute error bound (:meth:`TensealVector.error_bound`): per fresh ciphertext
  ``(8*sqrt(2)*sigma*N + 6*sigma*sqrt(N) + 16*sigma*N) / 2**scale_bits`` (the canonical
  embedding bound of Cheon–Kim–Kim–Song 2017, Lemma 1, with the secret's Hamming weight
  bounded by ``N``), multiplied by the aggregate's weight, plus a rescaling term per
  scalar product. It is deliberately loose (about 100x the errors seen in tests).
* **BFV** for exact integers: the plain modulus ``t`` (a batching prime,
  ``t = 1 mod 2N``) is chosen at key generation from the layout (value bits, parties).
  Values wider than ``t`` allows are split into limbs ``v = sum(d_j * 2**(B*j))`` with
  ``0 <= d_j < 2**B`` below the top limb (which keeps the sign); every limb sum over at
  most ``parties`` contributions stays below ``t/2`` because ``t >= 2**(B+ceil(log2 N)+1)``,
  so the recombined sum is exact.

Warnings
--------
CKKS decryptions leak a little about the secret key through their noise (Li and
Micciancio, EUROCRYPT 2021): release decrypted CKKS aggregates only to parties that are
allowed to hold the key, or add noise before release. BFV/CKKS re-randomisation by adding
an encryption of zero does not give circuit privacy (noise flooding is not applied).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from privacy.errors import HEError, PackingOverflowError
from privacy.he.packing import PackingLayout, decode_values, encode_values
from privacy.he.rows import RowIds, check_aligned

__all__ = [
    "HEParams",
    "PARAMETER_SETS",
    "ckks_params_for",
    "HEContext",
    "TensealVector",
    "generate_context",
    "public_context_bytes",
    "context_fingerprint",
    "check_context",
]

SIGMA = 3.2
MAX_PLAIN_BITS = 60
#: Smallest CKKS scale of the ``ckks-128-8192-s<bits>`` sets (fresh error about 1e-3).
CKKS_MIN_SCALE_BITS = 20


@dataclass(frozen=True)
class HEParams:
    """A named TenSEAL parameter set."""

    name: str
    scheme: str  # "ckks" | "bfv"
    poly_modulus_degree: int
    coeff_mod_bit_sizes: tuple[int, ...]
    scale_bits: int = 0  # CKKS only
    security_bits: int = 128

    @property
    def slot_count(self) -> int:
        """Values per ciphertext: N/2 for CKKS, N for BFV."""
        n = self.poly_modulus_degree
        return n // 2 if self.scheme == "ckks" else n


PARAMETER_SETS: dict[str, HEParams] = {
    p.name: p
    for p in (
        HEParams("ckks-128-8192", "ckks", 8192, (60, 40, 40, 60), 40),
        HEParams("ckks-128-16384", "ckks", 16384, (60, 40, 40, 40, 40, 60), 40),
        HEParams("bfv-128-4096", "bfv", 4096, (36, 36, 37)),
        HEParams("bfv-128-8192", "bfv", 8192, (43, 43, 44, 44, 44)),
        HEParams("bfv-128-16384", "bfv", 16384, (48, 48, 48, 49, 49, 49, 49, 49, 49)),
        # CKKS for larger values: a smaller scale leaves more of q0 for the integer part
        *(HEParams(f"ckks-128-8192-s{b}", "ckks", 8192, (60, b, b, 60), b)
          for b in range(39, CKKS_MIN_SCALE_BITS - 1, -1)),
    )
}


def get_params(name: str) -> HEParams:
    """Look up a parameter set by name (HEError listing the known names otherwise)."""
    try:
        return PARAMETER_SETS[name]
    except KeyError:
        raise HEError(f"unknown HE parameter set {name!r}; known: "
                      f"{', '.join(sorted(PARAMETER_SETS))}") from None


def ckks_params_for(max_value: float, parties: int) -> HEParams:
    """The CKKS set with the finest scale whose bound holds sums of ``parties``
    contributions of values up to ``|max_value|`` (``ckks-128-8192`` up to 2**19 in all,
    then ``ckks-128-8192-s<bits>`` down to a scale of 2**20, up to 2**39 in all).

    Raises
    ------
    HEError
        ``max_value`` is not a positive finite number, ``parties`` < 1, or
        ``max_value * parties`` exceeds what any set holds (use BFV or Paillier, which
        carry exact integers of up to 64 bits).
    """
    if not (math.isfinite(max_value) and max_value > 0) or parties < 1:
        raise HEError(f"a CKKS bound needs a positive finite value bound and at least one "
                      f"party, got {max_value!r} and {parties}")
    names = ["ckks-128-8192", *(f"ckks-128-8192-s{b}"
                                for b in range(39, CKKS_MIN_SCALE_BITS - 1, -1))]
    for name in names:
        p = PARAMETER_SETS[name]
        if ckks_max_abs(p) / parties >= max_value:
            return p
    widest = ckks_max_abs(PARAMETER_SETS[names[-1]])
    raise HEError(f"CKKS cannot hold sums of {parties} values up to {max_value:g} "
                  f"({max_value * parties:.4g} in all; its largest bound is {widest:.4g}): "
                  "declare a smaller bound or fewer parties, or use BFV or Paillier for "
                  "exact integers")


def _batching_prime(bits: int, degree: int) -> int:
    """Smallest prime ``t = 1 mod 2*degree`` with exactly ``bits`` bits."""
    import gmpy2

    m = 2 * degree
    k = -(-(2 ** (bits - 1)) // m)
    while True:
        t = k * m + 1
        if int(t).bit_length() > bits:
            raise HEError(f"no {bits}-bit batching prime for degree {degree}")
        if gmpy2.is_prime(t, 50):
            return int(t)
        k += 1


def bfv_limbs(t_bits: int, layout: PackingLayout) -> tuple[int, int]:
    """``(limb_bits, n_limbs)`` so that limb sums of ``layout.parties`` fit ``t``."""
    b = t_bits - 2 - layout.headroom_bits
    if b < 1:
        raise PackingOverflowError(
            f"a {t_bits}-bit plain modulus cannot hold sums of {layout.parties} parties"
        )
    n = math.ceil(layout.value_bits / b)
    return math.ceil(layout.value_bits / n), n


#: Domain of the key id hash; ``v2`` ids cover the parameter set, the plain modulus and
#: the layout's bounds besides the public context (``v1`` ids were not recomputed on
#: load, so a context could be swapped in under another key's id).
KEY_ID_DOMAIN = b"covault-tenseal-key-v2\x00"


def public_context_bytes(context: Any) -> bytes:
    """TenSEAL's serialisation of the public part of ``context``: parameters and public
    key, no secret, relinearisation or Galois keys (SEAL's serialisation is
    deterministic, so this is a canonical encoding of the public context)."""
    data: bytes = context.serialize(save_public_key=True, save_secret_key=False,
                                    save_galois_keys=False, save_relin_keys=False)
    return data


def context_fingerprint(params: HEParams, layout: PackingLayout, plain_modulus: int,
                        public_bytes: bytes) -> bytes:
    """Key id of a TenSEAL context: SHA-256 over all its public parameters.

    ``SHA-256("covault-tenseal-key-v2" 0x00 || u32 len(head) || head || public)`` where
    ``head`` is the canonical JSON of the parameter set (name, scheme, degree, modulus
    sizes, scale), the plain modulus and the layout's ``value_bits`` and ``parties``
    (its ``scale`` is chosen per encryption and is not part of the key), and ``public``
    is :func:`public_context_bytes`.
    """
    head = json.dumps({
        "params": params.name, "scheme": params.scheme,
        "poly_modulus_degree": params.poly_modulus_degree,
        "coeff_mod_bit_sizes": list(params.coeff_mod_bit_sizes),
        "scale_bits": params.scale_bits, "plain_modulus": int(plain_modulus),
        "value_bits": layout.value_bits, "parties": layout.parties,
    }, sort_keys=True, separators=(",", ":")).encode("ascii")
    return hashlib.sha256(KEY_ID_DOMAIN + len(head).to_bytes(4, "big") + head
                          + public_bytes).digest()


def check_context(params: HEParams, context: Any, plain_modulus: int,
                  layout: PackingLayout) -> None:
    """Check that a TenSEAL context really has the parameters its file claims.

    Raises
    ------
    HEError
        Scheme, ring degree, coefficient modulus size, plain modulus or CKKS scale
        differ from ``params``, or the context has no public key.
    """
    try:
        data = context.seal_context().data.key_context_data()
        parms = data.parms()
        scheme = str(parms.scheme()).rsplit(".", 1)[-1].lower()
        degree = int(parms.poly_modulus_degree())
        total_bits = int(data.total_coeff_modulus_bit_count())
        half = int(data.plain_upper_half_threshold())
        has_public = bool(context.has_public_key())
    except Exception as exc:  # TenSEAL raises bare exceptions
        raise HEError(f"unreadable TenSEAL context ({exc})") from None
    want_bits = sum(params.coeff_mod_bit_sizes)
    if (scheme, degree, total_bits) != (params.scheme, params.poly_modulus_degree, want_bits):
        raise HEError(f"context is a {scheme} context of degree {degree} with a "
                      f"{total_bits}-bit modulus, not {params.name}")
    if not has_public:
        raise HEError("context holds no public key")
    if params.scheme == "bfv":
        if plain_modulus < 2 or half != (plain_modulus + 1) // 2:
            raise HEError("context's plain modulus differs from the one its file names")
        bfv_limbs(int(plain_modulus).bit_length(), layout)
        if plain_modulus % (2 * degree) != 1 or plain_modulus.bit_length() > MAX_PLAIN_BITS:
            raise HEError("plain modulus is not a batching prime of at most "
                          f"{MAX_PLAIN_BITS} bits")
    else:
        if plain_modulus != 0:
            raise HEError("a CKKS context has no plain modulus")
        if float(context.global_scale) != 2.0**params.scale_bits:
            raise HEError(f"context's scale differs from 2**{params.scale_bits}")


@dataclass(eq=False)
class HEContext:
    """A TenSEAL context with its parameter set, fingerprint and (BFV) layout."""

    params: HEParams
    context: Any  # tenseal.Context
    fingerprint: bytes
    layout: PackingLayout
    plain_modulus: int = 0  # BFV plain modulus t (0 for CKKS)

    @property
    def key_id(self) -> str:
        """Short printable fingerprint (16 hex digits)."""
        return self.fingerprint[:8].hex()

    @property
    def is_private(self) -> bool:
        """Whether the context holds the secret key."""
        return bool(self.context.has_secret_key())

    def public(self) -> HEContext:
        """A copy without the secret key, for parties and the aggregator."""
        ctx = self.context.copy()
        if ctx.has_secret_key():
            ctx.make_context_public()
        return HEContext(self.params, ctx, self.fingerprint, self.layout, self.plain_modulus)

    def __reduce__(self) -> Any:
        raise TypeError("HEContext refuses to be pickled; use privacy.he.serial")

    def encrypt(self, values: npt.ArrayLike, *, contributor: str | None = None,
                name: str | None = None) -> TensealVector:
        """Encrypt a 1-D vector (floats for CKKS, integers/decimals for BFV)."""
        import tenseal as ts

        slots = self.params.slot_count
        if self.params.scheme == "ckks":
            x = np.asarray(values, dtype=np.float64).reshape(-1)
            if not np.all(np.isfinite(x)):
                raise HEError("CKKS values must be finite")
            limit = ckks_max_abs(self.params) / self.layout.parties
            if x.size and float(np.max(np.abs(x))) > limit:
                i = int(np.argmax(np.abs(x) > limit))
                raise PackingOverflowError(
                    f"CKKS value {float(x[i])} at index {i} exceeds {limit:g}, the largest "
                    f"value each of {self.layout.parties} parties may contribute under "
                    f"{self.params.name}; the key holder must generate a key for a larger "
                    f"bound (e.g. covault he keygen --scheme ckks --max-value "
                    f"{math.ceil(float(np.max(np.abs(x))))} --parties {self.layout.parties})"
                )
            chunks = [ts.ckks_vector(self.context, x[i : i + slots])
                      for i in range(0, x.size, slots)]
            length, nl = int(x.size), 1
        else:
            ints = encode_values(values, self.layout)
            bits, nl = bfv_limbs(self.plain_modulus.bit_length(), self.layout)
            chunks = []
            for j in range(nl):
                limb = ints >> (bits * j)
                if j < nl - 1:
                    limb = limb & ((1 << bits) - 1)
                lst = limb.tolist()
                chunks.extend(ts.bfv_vector(self.context, lst[i : i + slots])
                              for i in range(0, len(lst), slots))
            length = int(ints.size)
        who = (contributor,) if contributor is not None else ()
        return TensealVector(self.params, self.fingerprint, self.layout, chunks, length, nl,
                             1, 0, who, name)


def ckks_max_abs(params: HEParams) -> float:
    """Largest |value| a decrypted CKKS aggregate may reach: ``2**(q0 - scale - 1)``."""
    return float(2 ** (params.coeff_mod_bit_sizes[0] - params.scale_bits - 1))


def ckks_fresh_error(params: HEParams) -> float:
    """High-probability bound on the absolute error of one fresh CKKS encryption."""
    n = params.poly_modulus_degree
    b = 8 * math.sqrt(2) * SIGMA * n + 6 * SIGMA * math.sqrt(n) + 16 * SIGMA * n
    return float(b / 2**params.scale_bits)


def ckks_rescale_error(params: HEParams) -> float:
    """Bound on the rounding error one rescaling (after a scalar product) adds."""
    n = params.poly_modulus_degree
    return float(math.sqrt(3 * n) * (1 + 8 * math.sqrt(n)) / 2**params.scale_bits)


def _seal_primes(params: HEParams) -> list[int]:
    """The primes SEAL's ``CoeffModulus::Create`` picks: for each bit size, the largest
    primes ``= 1 mod 2N`` below ``2**bits``, handed out in order of appearance."""
    import gmpy2

    step = 2 * params.poly_modulus_degree
    pools: dict[int, list[int]] = {}
    for bits in sorted(set(params.coeff_mod_bit_sizes)):
        need = params.coeff_mod_bit_sizes.count(bits)
        found: list[int] = []
        cand = 2**bits - step + 1
        while len(found) < need:
            if gmpy2.is_prime(cand, 40):
                found.append(cand)
            cand -= step
        pools[bits] = found
    return [pools[b].pop(0) for b in params.coeff_mod_bit_sizes]


def ckks_rescale_drift(params: HEParams, multiplications: int) -> float:
    """Relative error from rescaling by primes that are not exactly ``2**scale_bits``
    (TenSEAL keeps the nominal scale): 1.5 times the sum of the ``multiplications``
    largest ``|q - 2**scale| / q`` over the rescaling primes (order-independent)."""
    data = _seal_primes(params)[1:-1]  # q0 is never rescaled away; the last is special
    scale = 2.0**params.scale_bits
    drifts = sorted((abs(q - scale) / q for q in data), reverse=True)
    return 1.5 * sum(drifts[:multiplications])


@dataclass(eq=False)
class TensealVector:
    """An encrypted vector made of TenSEAL chunks (``n_limbs`` groups for BFV)."""

    params: HEParams
    fingerprint: bytes
    layout: PackingLayout
    chunks: list[Any]
    length: int
    n_limbs: int = 1
    weight: int = 1
    multiplications: int = 0
    contributors: tuple[str, ...] = ()
    name: str | None = None
    endorsements: tuple[Any, ...] = ()  # privacy.he.signing.Endorsement; dropped by every op
    rows: RowIds | None = None  # ids of the elements' rows (privacy.he.rows)

    @property
    def scheme(self) -> str:
        """``"ckks"`` or ``"bfv"``."""
        return self.params.scheme

    @property
    def key_id(self) -> str:
        """Short fingerprint of the context the vector was encrypted under."""
        return self.fingerprint[:8].hex()

    def error_bound(self, max_abs: float | None = None) -> float:
        """Absolute error bound of a decryption (0 for exact BFV).

        ``max_abs`` bounds |value| of any one contribution (default: the largest the
        parameter set admits per party); it matters only after scalar products, whose
        rescaling error is relative to the values.
        """
        if self.scheme == "bfv":
            return 0.0
        m = ckks_max_abs(self.params) / self.layout.parties if max_abs is None else max_abs
        k = self.multiplications
        return (self.weight * ckks_fresh_error(self.params)
                + k * ckks_rescale_error(self.params)
                + self.weight * m * ckks_rescale_drift(self.params, k))

    def _check_compatible(self, other: TensealVector) -> None:
        if not isinstance(other, TensealVector):
            raise HEError(f"cannot add {type(other).__name__} to a TensealVector")
        if other.fingerprint != self.fingerprint:
            raise HEError(f"ciphertext was encrypted under key {other.key_id}, not {self.key_id}")
        if other.layout != self.layout or other.params != self.params:
            raise HEError("parameter sets or layouts differ")
        if other.length != self.length:
            raise HEError(f"vector lengths differ: {other.length} vs {self.length}")
        if other.multiplications != self.multiplications:
            raise HEError("cannot add CKKS vectors at different levels (scalar products differ)")
        check_aligned([self, other])

    def _with(self, chunks: list[Any], weight: int, contributors: tuple[str, ...],
              mults: int | None = None) -> TensealVector:
        return TensealVector(self.params, self.fingerprint, self.layout, chunks, self.length,
                             self.n_limbs, weight, self.multiplications if mults is None else mults,
                             contributors, self.name, rows=self.rows)

    def __add__(self, other: TensealVector) -> TensealVector:
        return TensealVector.sum([self, other])

    def __radd__(self, other: object) -> TensealVector:
        if isinstance(other, int) and other == 0:
            return self
        return NotImplemented

    def __mul__(self, scalar: int) -> TensealVector:
        if isinstance(scalar, bool) or not isinstance(scalar, int | np.integer):
            raise HEError(f"encrypted vectors multiply only by integers, not {scalar!r}")
        k = int(scalar)
        weight = self.weight * abs(k)
        self.layout.check_weight(weight)
        mults = self.multiplications + (1 if self.scheme == "ckks" else 0)
        if mults > len(self.params.coeff_mod_bit_sizes) - 2:
            raise HEError(f"no multiplicative level left in {self.params.name}")
        return self._with([c * k for c in self.chunks], weight,
                          self.contributors if k else (), mults)

    __rmul__ = __mul__

    @staticmethod
    def sum(vectors: list[TensealVector]) -> TensealVector:
        """Element-wise sum of vectors under the same context."""
        if not vectors:
            raise HEError("sum of no encrypted vectors")
        first = vectors[0]
        for v in vectors[1:]:
            first._check_compatible(v)
        weight = sum(v.weight for v in vectors)
        first.layout.check_weight(weight)
        if len(vectors) == 1:
            return first._with(list(first.chunks), weight, first.contributors)
        # ``a + b`` makes a new ciphertext (cheap); ``copy()`` would serialise (slow)
        chunks = [a + b for a, b in zip(first.chunks, vectors[1].chunks, strict=True)]
        for v in vectors[2:]:
            for a, b in zip(chunks, v.chunks, strict=True):
                a.add_(b)
        who = tuple(sorted({c for v in vectors for c in v.contributors}))
        return dataclasses.replace(first._with(chunks, weight, who), rows=check_aligned(vectors))

    def rerandomised(self) -> TensealVector:
        """Add a fresh encryption of zero to every chunk (public context suffices)."""
        import tenseal as ts

        out = []
        for c in self.chunks:
            ctx = c.context()
            size = c.size()
            zero = (ts.ckks_vector(ctx, [0.0] * size) if self.scheme == "ckks"
                    else ts.bfv_vector(ctx, [0] * size))
            out.append(c + zero)
        return self._with(out, self.weight, self.contributors)

    def decrypt(self, ctx: HEContext, *, scaled: bool = False) -> npt.NDArray[Any]:
        """Decrypt with the secret context: float64 (CKKS) or exact integers (BFV)."""
        if ctx.fingerprint != self.fingerprint:
            raise HEError(f"ciphertext was encrypted under key {self.key_id}, not {ctx.key_id}")
        if not ctx.is_private:
            raise HEError("this context holds no secret key; decrypt with the private context")
        sk = ctx.context.secret_key()
        if self.scheme == "ckks":
            vals = [x for c in self.chunks for x in c.decrypt(sk)]
            return np.asarray(vals, dtype=np.float64)
        per = len(self.chunks) // self.n_limbs
        bits, _ = bfv_limbs(ctx.plain_modulus.bit_length(), self.layout)
        wide = not self.layout.result_fits_int64
        total: Any = None
        for j in range(self.n_limbs):
            limb = [x for c in self.chunks[j * per : (j + 1) * per] for x in c.decrypt(sk)]
            arr: Any = np.asarray(limb, dtype=object if wide else np.int64)
            shifted = arr * (1 << (bits * j)) if wide else np.left_shift(arr, bits * j)
            total = shifted if total is None else total + shifted
        ints = np.asarray(total) if total is not None else np.zeros(0, dtype=np.int64)
        return ints if scaled else decode_values(ints, self.layout)


def generate_context(params: str = "ckks-128-8192", *, layout: PackingLayout | None = None
                     ) -> HEContext:
    """Generate a secret CKKS/BFV context from a named parameter set.

    For BFV the plain modulus is the smallest batching prime that fits the limb sums of
    ``layout.parties`` contributions (at most 60 bits; wider values use limbs).

    Raises
    ------
    HEError
        Unknown parameter set.
    PackingOverflowError
        So many parties that no plain modulus can hold their sums.
    """
    import tenseal as ts

    p = get_params(params)
    lay = layout or PackingLayout()
    t = 0
    if p.scheme == "ckks":
        ctx = ts.context(ts.SCHEME_TYPE.CKKS, poly_modulus_degree=p.poly_modulus_degree,
                         coeff_mod_bit_sizes=list(p.coeff_mod_bit_sizes))
        ctx.global_scale = 2.0**p.scale_bits
    else:
        need = lay.value_bits + lay.headroom_bits + 2
        if need > MAX_PLAIN_BITS:
            bits, _ = bfv_limbs(MAX_PLAIN_BITS, lay)
            need = bits + lay.headroom_bits + 2
        t = _batching_prime(need, p.poly_modulus_degree)
        ctx = ts.context(ts.SCHEME_TYPE.BFV, poly_modulus_degree=p.poly_modulus_degree,
                         plain_modulus=t, coeff_mod_bit_sizes=list(p.coeff_mod_bit_sizes))
    fp = context_fingerprint(p, lay, t, public_context_bytes(ctx))
    return HEContext(p, ctx, fp, lay, t)
