"""Fixed-point encoding of float vectors into Z_{2^64}, and the configuration it needs.

A value ``x`` becomes ``round(x * 2**frac_bits)`` as a signed 64-bit integer, stored in its
two's-complement form as ``uint64``; adding such words modulo 2^64 adds the values, and
the sum is read back as ``int64 / 2**frac_bits``. The sum of ``n`` clients is exact (up to
``n * 2**-(frac_bits + 1)`` of rounding) as long as it does not wrap, which
:meth:`SecAggConfig.check_capacity` guarantees from the declared bound ``max_abs``:
``n * M < 2**63`` with ``M = floor(max_abs * 2**frac_bits) + 1`` the largest encoded
magnitude.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from privacy.errors import SecAggError

__all__ = ["SecAggConfig", "encode", "decode", "MAX_THRESHOLD"]

MAX_THRESHOLD = 65_535
_LIMIT = 2**63 - 1


def _magnitude(frac_bits: int, max_abs: float) -> int:
    """The largest absolute encoded value, as an exact integer."""
    return math.floor(math.ldexp(max_abs, frac_bits)) + 1


@dataclass(frozen=True)
class SecAggConfig:
    """Parameters every party of a secure-aggregation run must share.

    Parameters
    ----------
    threshold:
        Shamir threshold ``t`` (at least 2): a round completes only when at least ``t``
        clients sent their masked input and at least ``t`` of them answer the unmasking
        request; ``t`` colluding share holders could reconstruct a client's secrets.
    frac_bits:
        Fractional bits of the fixed-point encoding (0 to 62); the resolution is
        ``2**-frac_bits``.
    max_abs:
        Bound on the absolute value of every input value; a client refuses larger values.
        With ``n`` clients it must satisfy ``n * max_abs * 2**frac_bits < 2**63``.

    Warnings
    --------
    ``max_abs`` bounds each value a client sends, not what a malicious client sends: a
    client that skips the check can add anything (mod 2^64) to the sum. A threshold with
    ``2 * threshold <= n`` protects against an honest-but-curious server only; against a
    server that deviates from the protocol choose ``2 * threshold > n + c`` where ``c`` is
    the number of clients it may control (see :mod:`privacy.secagg`).
    """

    threshold: int
    frac_bits: int = 32
    max_abs: float = 1e4

    def __post_init__(self) -> None:
        t, f, m = self.threshold, self.frac_bits, self.max_abs
        if isinstance(t, bool) or not isinstance(t, int) or not 2 <= t <= MAX_THRESHOLD:
            raise SecAggError(f"threshold must be an integer from 2 to {MAX_THRESHOLD}, got {t!r}")
        if isinstance(f, bool) or not isinstance(f, int) or not 0 <= f <= 62:
            raise SecAggError(f"frac_bits must be an integer from 0 to 62, got {f!r}")
        if not isinstance(m, (int, float)) or not math.isfinite(m) or m <= 0:
            raise SecAggError(f"max_abs must be a finite number > 0, got {m!r}")
        if _magnitude(f, float(m)) > _LIMIT:
            raise SecAggError(
                f"max_abs={m} with frac_bits={f} does not fit a signed 64-bit word; "
                "lower max_abs or frac_bits"
            )

    @property
    def max_clients(self) -> int:
        """The most clients whose sum cannot overflow: ``n * M <= 2**63 - 1``."""
        return _LIMIT // _magnitude(self.frac_bits, float(self.max_abs))

    def check_capacity(self, n: int) -> None:
        """Raise :class:`SecAggError` unless the sum of ``n`` clients cannot overflow."""
        if n > self.max_clients:
            raise SecAggError(
                f"{n} clients with max_abs={self.max_abs} and frac_bits={self.frac_bits} "
                f"could overflow the 64-bit sum (at most {self.max_clients}); lower max_abs "
                "or frac_bits"
            )


def encode(values: npt.ArrayLike, config: SecAggConfig) -> npt.NDArray[np.uint64]:
    """Encode a 1-D vector of floats into fixed-point words (``uint64``).

    Raises
    ------
    SecAggError
        When the input is not a 1-D numeric vector, holds NaN or infinity, or a value whose
        absolute value exceeds ``config.max_abs`` (the message gives the first index).
    """
    try:
        x = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise SecAggError(f"input is not a numeric vector: {exc}") from None
    if x.ndim != 1:
        raise SecAggError(f"input must be a 1-D vector, got shape {x.shape}")
    bad = ~np.isfinite(x)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise SecAggError(f"input value at index {i} is not finite ({float(x[i])})")
    over = np.abs(x) > config.max_abs
    if over.any():
        i = int(np.flatnonzero(over)[0])
        raise SecAggError(
            f"input value at index {i} ({float(x[i])!r}) exceeds max_abs={config.max_abs}; "
            "clip or rescale the update, or raise max_abs for the whole run"
        )
    q = np.rint(np.ldexp(x, config.frac_bits)).astype(np.int64)
    return q.view(np.uint64)


def decode(total: npt.NDArray[np.uint64], config: SecAggConfig) -> npt.NDArray[np.float64]:
    """Read a sum of encoded vectors back as float64."""
    words = np.ascontiguousarray(total, dtype=np.uint64)
    out: npt.NDArray[np.float64] = np.ldexp(
        words.view(np.int64).astype(np.float64), -config.frac_bits
    )
    return out
