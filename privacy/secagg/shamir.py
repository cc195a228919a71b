"""Shamir secret sharing over the prime field GF(2^521 - 1).

The textbook scheme (A. Shamir, "How to share a secret", CACM 22(11), 1979): the dealer
draws a random polynomial ``f`` of degree ``t - 1`` with ``f(0) = secret``; share ``i`` is
``f(x_i)`` for a public, non-zero, distinct point ``x_i``. Any ``t`` shares determine ``f``
and so the secret (Lagrange interpolation at 0); any ``t - 1`` shares are uniformly
distributed and independent of it.

The field is the Mersenne prime ``P521 = 2**521 - 1`` (the prime of NIST P-521), large
enough for the 32-byte secrets of secure aggregation. A share is 66 bytes big-endian.
Arithmetic uses Python integers; coefficients come from :mod:`secrets`.

Warnings
--------
Plain Shamir sharing is not verifiable: a holder that returns a wrong share makes the
reconstruction wrong without saying whose share was wrong. Callers check the result
against a commitment or a public key (:mod:`privacy.secagg.server` does).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence

from privacy.errors import SecAggError

__all__ = [
    "P521",
    "SHARE_BYTES",
    "split",
    "evaluate",
    "lagrange_at_zero",
    "combine",
    "share_to_bytes",
    "share_from_bytes",
]

P521 = 2**521 - 1
SHARE_BYTES = 66


def evaluate(coefficients: Sequence[int], x: int, prime: int = P521) -> int:
    """Evaluate the polynomial ``sum(c_k * x**k)`` at ``x`` modulo ``prime`` (Horner)."""
    acc = 0
    for c in reversed(coefficients):
        acc = (acc * x + c) % prime
    return acc


def split(
    secret: int,
    threshold: int,
    xs: Sequence[int],
    *,
    prime: int = P521,
    coefficients: Sequence[int] | None = None,
) -> dict[int, int]:
    """Share ``secret`` among the points ``xs``; any ``threshold`` shares recover it.

    Parameters
    ----------
    secret:
        An integer in ``[0, prime)``.
    threshold:
        ``t >= 1``; the polynomial has degree ``t - 1``.
    xs:
        Distinct evaluation points in ``[1, prime)``, one per holder.
    prime:
        The field modulus (default :data:`P521`).
    coefficients:
        The ``t - 1`` non-constant coefficients, for known-answer tests only; drawn at
        random when ``None`` (always, outside tests).

    Returns
    -------
    dict
        ``{x: f(x)}``.
    """
    if not 0 <= secret < prime:
        raise SecAggError("secret is outside the field")
    if threshold < 1:
        raise SecAggError(f"threshold must be >= 1, got {threshold}")
    if len(set(xs)) != len(xs) or any(not 0 < x < prime for x in xs):
        raise SecAggError("share points must be distinct and in [1, prime)")
    if len(xs) < threshold:
        raise SecAggError(f"{len(xs)} holders cannot meet threshold {threshold}")
    if coefficients is None:
        coefficients = [secrets.randbelow(prime) for _ in range(threshold - 1)]
    elif len(coefficients) != threshold - 1:
        raise SecAggError(f"expected {threshold - 1} coefficients, got {len(coefficients)}")
    poly = [secret, *coefficients]
    return {x: evaluate(poly, x, prime) for x in xs}


def lagrange_at_zero(xs: Sequence[int], prime: int = P521) -> list[int]:
    """The Lagrange coefficients ``l_i`` with ``f(0) = sum(l_i * f(x_i))``.

    Computed once per set of points and reused for every secret shared among them.
    """
    if len(set(xs)) != len(xs) or any(not 0 < x < prime for x in xs):
        raise SecAggError("interpolation points must be distinct and in [1, prime)")
    out = []
    for i, xi in enumerate(xs):
        num = den = 1
        for j, xj in enumerate(xs):
            if j != i:
                num = num * xj % prime
                den = den * (xj - xi) % prime
        out.append(num * pow(den, -1, prime) % prime)
    return out


def combine(shares: Mapping[int, int], prime: int = P521) -> int:
    """Interpolate ``f(0)`` from ``{x: f(x)}`` (pass exactly ``threshold`` shares)."""
    xs = list(shares)
    lam = lagrange_at_zero(xs, prime)
    return sum(c * shares[x] for c, x in zip(lam, xs, strict=True)) % prime


def share_to_bytes(value: int) -> bytes:
    """A share as 66 bytes big-endian."""
    return value.to_bytes(SHARE_BYTES, "big")


def share_from_bytes(data: bytes) -> int:
    """Parse a 66-byte share; raise :class:`SecAggError` unless it is a field element."""
    if len(data) != SHARE_BYTES:
        raise SecAggError(f"a share is {SHARE_BYTES} bytes, got {len(data)}")
    value = int.from_bytes(data, "big")
    if value >= P521:
        raise SecAggError("share is not an element of the field")
    return value
