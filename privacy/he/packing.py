"""Plaintext packing: many signed integers in one Paillier plaintext, with proven headroom.

A :class:`PackingLayout` fixes three numbers that every party and the key holder share:

``value_bits`` (b)
    each value is a signed integer in ``[-2**(b-1), 2**(b-1))`` (``64`` for int64);
``parties`` (N)
    the most contributions an aggregate may hold (its *weight*, see below);
``scale``
    a fixed-point factor: decimals are carried as ``round(x * scale)`` integers
    (``100`` for money in cents).

Each value takes a slot of ``w = b + ceil(log2 N) + 1`` bits. Slots hold *balanced*
signed digits: the packed plaintext is ``P = sum(x_i * 2**(w*i))`` as an ordinary
(signed) integer, reduced modulo ``n`` only by the encryption. Sums and integer scalar
products act on ``P`` digit-wise as long as every digit stays inside
``(-2**(w-1), 2**(w-1))`` and ``|P| < n/2``:

* a sum of at most N contributions (more generally, an aggregate of *weight*
  ``sum(|c_j|)`` over scalar factors ``c_j`` at most N) has digits of magnitude at most
  ``N * 2**(b-1) <= 2**(b-1+ceil(log2 N)) = 2**(w-2) < 2**(w-1)``;
  the extra guard bit is a deliberate factor-2 margin;
* with ``k = floor((nbits - 2) / w)`` slots, ``|P| < 2**(k*w - 1) <= 2**(nbits-3) < n/2``.

Decoding adds ``D = sum(2**(w-1) * 2**(w*i))`` so every digit becomes non-negative and
reads the digits back as bits. A value outside ``b`` signed bits, or an aggregate whose
weight would exceed N, raises :class:`~privacy.errors.PackingOverflowError` *before*
anything can wrap around.

Warnings
--------
The layout is part of the ciphertext's meaning: decrypting with another layout yields
garbage, so layouts are stored with every encrypted vector and compared on ``+``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np
import numpy.typing as npt

from privacy.errors import HEError, PackingOverflowError

__all__ = ["PackingLayout", "encode_values", "decode_values", "pack", "unpack"]

IntArray = npt.NDArray[Any]


@dataclass(frozen=True)
class PackingLayout:
    """How values are laid out in plaintext slots (see the module docstring).

    Parameters
    ----------
    value_bits:
        Signed width of one (scaled) value, 2..64.
    parties:
        Most contributions an aggregate may hold (>= 1).
    scale:
        Fixed-point factor (>= 1); decimals are encoded as ``round(x * scale)``.
    """

    value_bits: int = 64
    parties: int = 16
    scale: int = 1

    def __post_init__(self) -> None:
        if not 2 <= int(self.value_bits) <= 64:
            raise HEError(f"value_bits must be within 2..64, got {self.value_bits}")
        if int(self.parties) < 1:
            raise HEError(f"parties must be >= 1, got {self.parties}")
        if int(self.scale) < 1:
            raise HEError(f"scale must be a positive integer, got {self.scale}")

    @property
    def headroom_bits(self) -> int:
        """``ceil(log2 parties)``: bits reserved so that N contributions cannot overflow."""
        return max(0, math.ceil(math.log2(self.parties)))

    @property
    def slot_bits(self) -> int:
        """Slot width ``value_bits + ceil(log2 parties) + 1`` (the 1 is a guard bit)."""
        return self.value_bits + self.headroom_bits + 1

    @property
    def result_fits_int64(self) -> bool:
        """True when every aggregate within the layout's bound fits an int64."""
        return bool(self.parties * 2 ** (self.value_bits - 1) <= 2**63)

    def slots(self, plaintext_bits: int) -> int:
        """Slots per plaintext for a modulus of ``plaintext_bits`` bits."""
        k = (plaintext_bits - 2) // self.slot_bits
        if k < 1:
            raise HEError(f"a {plaintext_bits}-bit modulus cannot hold a {self.slot_bits}-bit slot")
        return k

    def to_dict(self) -> dict[str, int]:
        """Plain JSON-able form (for file headers)."""
        return {"value_bits": self.value_bits, "parties": self.parties, "scale": self.scale}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PackingLayout:
        """Inverse of :meth:`to_dict`."""
        values: list[Any] = [d.get(k) for k in ("value_bits", "parties", "scale")] \
            if isinstance(d, dict) else [None]
        if any(type(v) is not int for v in values):  # no floats: int(inf) raised OverflowError
            raise HEError(f"malformed packing layout {d!r:.200} (value_bits, parties and "
                          "scale must be integers)")
        try:
            return cls(values[0], values[1], values[2])
        except (TypeError, ValueError) as exc:
            raise HEError(f"malformed packing layout {d!r:.200}") from exc

    def check_metadata(self, weight: object, contributors: object) -> None:
        """Range-check an encrypted vector's ``weight`` and contributor list against
        this layout (they come from files, so they are checked on every load).

        ``weight`` must be an integer ``1 <= weight <= parties``; ``contributors`` a list
        of distinct non-empty strings, no more of them than ``weight`` (every
        contribution adds at least 1 to the weight: a file that names more contributors
        than its weight, or has weight 0, was relabelled).

        Raises
        ------
        PackingOverflowError
            ``weight`` above the layout's headroom.
        HEError
            Any other inconsistency.
        """
        if isinstance(weight, bool) or not isinstance(weight, int) or weight < 1:
            raise HEError(f"encrypted vector has weight {weight!r}; a weight is the number "
                          "of contributions it holds and must be a positive integer")
        self.check_weight(weight)
        if not isinstance(contributors, list | tuple):
            raise HEError("encrypted vector's contributor list is not a list")
        if any(not isinstance(c, str) or not c or len(c) > 256 for c in contributors):
            raise HEError("encrypted vector names a contributor that is not a non-empty "
                          "string of at most 256 characters")
        if len(set(contributors)) != len(contributors):
            raise HEError("encrypted vector names a contributor more than once")
        if len(contributors) > weight:
            raise HEError(f"encrypted vector names {len(contributors)} contributors but "
                          f"holds only weight {weight}: its contributor list was relabelled")

    def same_bounds(self, other: PackingLayout) -> bool:
        """Whether ``other`` has the same ``value_bits`` and ``parties`` (scale aside)."""
        return (self.value_bits, self.parties) == (other.value_bits, other.parties)

    def check_weight(self, weight: int) -> None:
        """Raise :class:`PackingOverflowError` if an aggregate of ``weight`` does not fit."""
        if weight > self.parties:
            raise PackingOverflowError(
                f"aggregate would hold {weight} contributions but the packing layout has "
                f"headroom for {self.parties} parties (slot {self.slot_bits} bits)"
            )


def _overflow(index: int, value: object, layout: PackingLayout) -> PackingOverflowError:
    return PackingOverflowError(
        f"value at index {index} ({value}) does not fit in {layout.value_bits} signed bits"
        + (f" after scaling by {layout.scale}" if layout.scale != 1 else "")
    )


def encode_values(values: npt.ArrayLike, layout: PackingLayout) -> npt.NDArray[np.int64]:
    """Turn numbers into the layout's scaled signed integers (int64), checking the bound.

    Integers are multiplied by ``scale``; floats are scaled and rounded to the nearest
    integer, and must be within 1e-6 of it (so ``19.99`` at scale 100 is fine, ``0.001``
    is not); :class:`decimal.Decimal` and ``str`` elements are scaled exactly and must be
    integral after scaling.

    Raises
    ------
    PackingOverflowError
        A value does not fit ``value_bits`` signed bits.
    HEError
        A value is not finite, not a number, or has more decimals than ``scale`` allows.
    """
    arr = np.asarray(values)
    if arr.ndim != 1:
        arr = arr.reshape(-1)
    lo, hi = -(2 ** (layout.value_bits - 1)), 2 ** (layout.value_bits - 1)
    s = layout.scale
    if arr.dtype.kind in "iub":
        if arr.dtype.kind == "u" and arr.size and int(arr.max()) >= 2**63:
            i = int(np.argmax(arr >= np.uint64(2**63)))
            raise _overflow(i, arr[i], layout)
        a = arr.astype(np.int64)
        if a.size:
            bad = (a < -(hi // s)) | (a > (hi - 1) // s) if s != 1 else None
            if bad is not None and bad.any():
                i = int(np.argmax(bad))
                raise _overflow(i, a[i], layout)
            a = a * s if s != 1 else a
            bad = (a < lo) | (a >= hi) if layout.value_bits < 64 else None
            if bad is not None and bad.any():
                i = int(np.argmax(bad))
                raise _overflow(i, arr[i], layout)
        return a
    if arr.dtype.kind == "f":
        x = arr.astype(np.float64) * s
        if not np.all(np.isfinite(x)):
            i = int(np.argmax(~np.isfinite(x)))
            raise HEError(f"value at index {i} ({arr[i]}) is not a finite number")
        r = np.rint(x)
        bad = (r < lo) | (r >= hi)
        if bad.any():
            i = int(np.argmax(bad))
            raise _overflow(i, arr[i], layout)
        inexact = np.abs(x - r) > 1e-6
        if inexact.any():
            i = int(np.argmax(inexact))
            raise HEError(f"value at index {i} ({arr[i]}) has more decimals than scale {s} allows")
        return r.astype(np.int64)
    out = np.empty(arr.size, dtype=np.int64)
    for i, v in enumerate(arr.tolist()):
        try:
            d = v if isinstance(v, int) else Decimal(str(v)) if not isinstance(v, Decimal) else v
            scaled = d * s
            iv = int(scaled)
        except (InvalidOperation, ValueError, TypeError, OverflowError) as exc:
            raise HEError(f"value at index {i} ({v!r}) is not a number") from exc
        if iv != scaled:
            raise HEError(f"value at index {i} ({v}) has more decimals than scale {s} allows")
        if not lo <= iv < hi:
            raise _overflow(i, v, layout)
        out[i] = iv
    return out


def decode_values(ints: IntArray, layout: PackingLayout) -> IntArray:
    """Undo the fixed-point scale: integers when ``scale == 1``, else float64 ``ints/scale``.

    For exact decimal output use the integers (``decrypt(..., scaled=True)``) and format
    them yourself; float64 is exact only below 2**53 scaled units.
    """
    if layout.scale == 1:
        return ints
    return np.asarray(ints, dtype=np.float64) / layout.scale


def pack(values: npt.NDArray[np.int64], layout: PackingLayout, plaintext_bits: int) -> list[int]:
    """Pack int64 values (already within ``value_bits``) into signed plaintext integers.

    Returns ``ceil(len(values) / k)`` Python ints ``P = sum(x_i 2**(w i))``; the caller
    reduces them modulo ``n``. Unused slots of the last plaintext hold zeros.
    """
    b, w = layout.value_bits, layout.slot_bits
    k = layout.slots(plaintext_bits)
    count = len(values)
    nct = -(-count // k)
    if nct == 0:
        return []
    half = np.uint64(2 ** (b - 1))
    u = np.full(nct * k, half, dtype=np.uint64)
    u[:count] = values.astype(np.int64).view(np.uint64) + half  # v + 2**(b-1), in [0, 2**b)
    bits = np.unpackbits(u.view(np.uint8).reshape(-1, 8), axis=1, bitorder="little")
    if w <= 64:
        slot_bits = bits[:, :w]
    else:
        slot_bits = np.zeros((bits.shape[0], w), dtype=np.uint8)
        slot_bits[:, :64] = bits
    rows = np.packbits(slot_bits.reshape(nct, k * w), axis=1, bitorder="little")
    offset = sum(1 << (b - 1 + w * i) for i in range(k))
    return [int.from_bytes(r.tobytes(), "little") - offset for r in rows]


def unpack(
    plaintexts: list[int], layout: PackingLayout, plaintext_bits: int, count: int
) -> IntArray:
    """Inverse of :func:`pack` for centred plaintexts (``-n/2 < P < n/2``).

    Returns int64 when :attr:`PackingLayout.result_fits_int64`, else an object array of
    Python ints.
    """
    w = layout.slot_bits
    k = layout.slots(plaintext_bits)
    if not plaintexts:
        return np.zeros(0, dtype=np.int64 if layout.result_fits_int64 else object)
    d = sum(1 << (w - 1 + w * i) for i in range(k))
    nbytes = -(-k * w // 8)
    if any(not 0 <= p + d < 1 << (8 * nbytes) for p in plaintexts):
        raise PackingOverflowError(
            "a decrypted plaintext does not fit the packing layout: the ciphertexts were "
            "altered, or made under another layout or key")
    raw = b"".join((p + d).to_bytes(nbytes, "little") for p in plaintexts)
    byt = np.frombuffer(raw, dtype=np.uint8).reshape(len(plaintexts), nbytes)
    bits = np.unpackbits(byt, axis=1, bitorder="little")[:, : k * w].reshape(-1, w)[:count]
    low_bits = np.zeros((bits.shape[0], 64), dtype=np.uint8)
    low_bits[:, : min(w, 64)] = bits[:, :64]
    low = np.packbits(low_bits, axis=1, bitorder="little").reshape(-1).view("<u8")
    top = np.uint64(2 ** (w - 1)) if w <= 64 else None
    if layout.result_fits_int64:
        # true |x| < 2**63, so arithmetic modulo 2**64 is exact
        shift = np.uint64((2 ** (w - 1)) % 2**64) if top is None else top
        out: IntArray = (low - shift).view(np.int64).copy()
        return out
    if w <= 64:
        wide: IntArray = low.astype(object) - 2 ** (w - 1)
        return wide
    high_bits = np.zeros((bits.shape[0], 64), dtype=np.uint8)
    high_bits[:, : w - 64] = bits[:, 64:]
    high = np.packbits(high_bits, axis=1, bitorder="little").reshape(-1).view("<u8")
    res: IntArray = high.astype(object) * 2**64 + low.astype(object) - 2 ** (w - 1)
    return res
