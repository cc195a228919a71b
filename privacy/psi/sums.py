"""Paillier helpers for PSI ``intersection-sum`` (Private Join and Compute style).

The responder (value holder) owns the key. It encrypts each value under its public key
and sends the ciphertexts beside its blinded ids; the initiator multiplies the
ciphertexts of the matching ids (homomorphic addition), re-randomises the product with
a fresh ``r^n`` and returns it; the responder decrypts only that sum.

Uses ``phe`` (with gmpy2) directly and lazily. An encryption costs one modular
exponentiation (~9 ms at 2048 bits, more at 3072): a value column of a million rows
takes hours on two cores, so keep ``intersection-sum`` for sets of thousands to tens of
thousands of ids.

Warnings
--------
The initiator holds a ciphertext of every one of the responder's values and can return
any ciphertext it likes: a product of them with chosen exponents (values packed into
separate "slots" of one plaintext), a single value, a value plus a known offset. The
responder cannot check which ciphertexts went into the sum, only its size:
:func:`decrypt_sum` decrypts the raw plaintext itself (no ``phe`` decoding, which raises
``OverflowError`` on crafted plaintexts) and refuses - without saying what it
decrypted - any ``count`` outside ``[min_count, max_count]`` (0 allowed) and any sum
with ``|sum| > count * max_abs``, ``max_abs`` being the largest ``|value|`` of the
responder's own column. What still leaks to a deviating initiator, by design:

* a sum of *any* ``count`` of the responder's values (not only the shared ids'), or any
  integer combination ``sum(a_i * v_i)`` within the bound, which packs several small
  values into one answer when most values are far below ``max_abs``;
* one bit per refused session (the combination was out of bounds), so many sessions
  can binary-search a value.

Only ``min_count``, the caller's own noise, or serving semi-honest partners limit this.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from privacy.errors import PSIError
from privacy.psi.group import POINT_BYTES, _pool_map, default_workers

__all__ = [
    "SumRefusedError",
    "generate_key",
    "accept_fields",
    "public_key_from_accept",
    "ciphertext_bytes",
    "encrypt_values",
    "sum_ciphertexts",
    "decrypt_sum",
    "sum_message_digest",
    "max_abs_value",
    "export_private",
    "import_private",
]

_CHUNK = 256


class SumRefusedError(PSIError):
    """The key holder would not decrypt or reveal a SUM message: a count it cannot
    accept, or a plaintext that is not a sum of that many of its values."""


def generate_key(bits: int) -> tuple[Any, Any]:
    """A fresh Paillier key pair ``(public, private)`` of ``bits`` bits."""
    import phe

    public, private = phe.generate_paillier_keypair(n_length=bits)
    return public, private


def accept_fields(public: Any) -> dict[str, Any]:
    """The accept-message fields announcing the public key and the record size."""
    return {"paillier_n": format(public.n, "x"),
            "record": POINT_BYTES + ciphertext_bytes(public)}


def public_key_from_accept(accept: dict[str, Any]) -> Any:
    """The Paillier public key in an accept message (checked to be at least 2048 bits)."""
    import phe

    try:
        n = int(accept["paillier_n"], 16)
    except (KeyError, TypeError, ValueError) as exc:
        raise PSIError("accept: missing or malformed Paillier modulus") from exc
    if n.bit_length() < 2047 or n % 2 == 0:
        raise PSIError("accept: Paillier modulus is shorter than 2048 bits or even")
    return phe.PaillierPublicKey(n)


def ciphertext_bytes(public: Any) -> int:
    """Bytes of one ciphertext (an integer modulo ``n^2``) in fixed-width big-endian."""
    return (int(public.nsquare).bit_length() + 7) // 8


def _encrypt_chunk(args: tuple[int, Sequence[int]]) -> bytes:
    import phe

    n, values = args
    public = phe.PaillierPublicKey(n)
    width = ciphertext_bytes(public)
    out = []
    for v in values:
        enc = public.encrypt(int(v))
        if enc.exponent != 0:  # pragma: no cover - phe encodes ints with exponent 0
            raise PSIError("unexpected Paillier encoding exponent")
        out.append(int(enc.ciphertext(be_secure=True)).to_bytes(width, "big"))
    return b"".join(out)


def encrypt_values(public: Any, values: Sequence[int], *, workers: int | None = None) -> bytes:
    """Encrypt ``values`` (each ``|v| < n/3``) as concatenated fixed-width ciphertexts."""
    limit = int(public.n) // 3
    for v in values:
        if abs(v) >= limit:
            raise PSIError(f"value {v} is too large for the Paillier modulus")
    jobs = [(int(public.n), values[i : i + _CHUNK]) for i in range(0, len(values), _CHUNK)]
    n_workers = default_workers() if workers is None else workers
    return b"".join(_pool_map(_encrypt_chunk, jobs, n_workers))


def sum_ciphertexts(accept: dict[str, Any], records: bytes, hits: Sequence[int]) -> dict[str, Any]:
    """Homomorphically add the ciphertexts of records ``hits``; re-randomise; return the
    SUM message ``{"count", "ciphertext"}`` for the key holder."""
    import phe

    public = public_key_from_accept(accept)
    width = ciphertext_bytes(public)
    record = POINT_BYTES + width
    nsq = int(public.nsquare)
    total = public.encrypt(0)
    for j in hits:
        start = j * record + POINT_BYTES
        c = int.from_bytes(records[start : start + width], "big")
        if not 0 < c < nsq:
            raise PSIError("the responder sent a Paillier ciphertext out of range")
        total = total + phe.EncryptedNumber(public, c, 0)
    total.obfuscate()
    return {"count": len(hits), "ciphertext": format(total.ciphertext(be_secure=False), "x")}


def max_abs_value(values: Sequence[int]) -> int:
    """The largest ``|value|`` (0 for no values): the per-id bound of :func:`decrypt_sum`."""
    return max((abs(int(v)) for v in values), default=0)


def sum_message_digest(message: dict[str, Any]) -> str:
    """SHA-256 of a SUM message's ciphertext (hex text): what a ledger may record
    instead of the sum. The ciphertext is re-randomised, so the digest reveals nothing
    about the value; both parties can compute it to match their records."""
    text = message.get("ciphertext")
    data = text.encode("utf-8", "replace") if isinstance(text, str) else b""
    return hashlib.sha256(data).hexdigest()


def decrypt_sum(
    keypair: tuple[Any, Any],
    message: dict[str, Any],
    *,
    max_count: int,
    max_abs: int,
    min_count: int = 1,
) -> tuple[int, int]:
    """Decrypt a SUM message with the key holder's key pair; return ``(sum, count)``.

    Parameters
    ----------
    max_count:
        The largest count the key holder can accept: the smaller of its own set size
        and the set size the initiator announced.
    max_abs:
        The largest ``|value|`` of the key holder's own (per-id) values.
    min_count:
        Refuse a sum over fewer ids than this (a count of 0 is always answered: its
        bound forces the sum to be 0).

    Raises
    ------
    PSIError
        On a malformed message.
    SumRefusedError
        On a count outside ``[min_count, max_count]`` (checked before decrypting), or
        a decrypted sum with ``|sum| > count * max_abs`` - a ciphertext that is not a
        sum of ``count`` of the key holder's values. The message never contains the
        decrypted value.
    """
    public, private = keypair
    try:
        c = int(message["ciphertext"], 16)
        count = message["count"]
    except (KeyError, TypeError, ValueError) as exc:
        raise PSIError("malformed SUM message") from exc
    if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= max_count:
        raise SumRefusedError(
            f"SUM message: count {count!r:.40} is not between 0 and {max_count}; refused")
    if 0 < count < min_count:
        raise SumRefusedError(
            f"SUM message: a sum over {count} ids is below the minimum count {min_count}; "
            "refused")
    n = int(public.n)
    if not 0 < c < int(public.nsquare):
        raise PSIError("SUM message: ciphertext out of range")
    bound = count * max(0, int(max_abs))
    if 2 * bound >= n:
        raise SumRefusedError(
            f"SUM message: a sum of {count} of this party's values may not fit the Paillier "
            "modulus; refused")
    plain = int(private.raw_decrypt(c))  # in [0, n): no phe decoding, no OverflowError
    total = plain - n if plain > n // 2 else plain
    if abs(total) > bound:
        raise SumRefusedError(
            f"SUM message: the decrypted value is not a sum of {count} of this party's "
            f"values (|sum| exceeds {count} x its largest |value|); refused, nothing revealed")
    return total, count


def export_private(keypair: tuple[Any, Any]) -> dict[str, str]:
    """The private key as hex primes (for the responder's state file only)."""
    private = keypair[1]
    return {"p": format(private.p, "x"), "q": format(private.q, "x")}


def import_private(data: Any) -> tuple[Any, Any]:
    """Rebuild a key pair from :func:`export_private`."""
    import phe

    try:
        p, q = int(data["p"], 16), int(data["q"], 16)
        if p < 3 or q < 3 or p == q:
            raise ValueError("p and q must be distinct odd primes")
        public = phe.PaillierPublicKey(p * q)
        return public, phe.PaillierPrivateKey(public, p, q)
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:  # no inverse: not primes
        raise PSIError("malformed Paillier key in PSI state") from exc
