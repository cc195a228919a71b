"""Small Arrow helpers shared by the validators: coercion to strings, regex masks, and a
zero-copy view of fixed-width ASCII strings as a ``(n, width)`` byte matrix."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "ArrayLike",
    "BoolArray",
    "to_strings",
    "fold_fullwidth",
    "regex_mask",
    "char_matrix",
    "subset",
    "valid_ymd",
    "digits_to_int",
]

ArrayLike: TypeAlias = pa.Array | pa.ChunkedArray | Sequence[Any]
BoolArray = npt.NDArray[np.bool_]


def _py_text(v: Any) -> str | None:
    if isinstance(v, str):
        return v
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    return None


def to_strings(values: ArrayLike) -> pa.Array:
    """Return ``values`` as a (large_)string Arrow array of the same length.

    Integers are formatted in decimal, dictionaries decoded, string views cast. Any
    other type (floats, booleans, binary, nested) becomes an all-null string array, so
    no value of it validates as an identifier. In a Python sequence, ``str`` and ``int``
    items are kept and anything else becomes null.
    """
    if isinstance(values, pa.ChunkedArray):
        arr: pa.Array = values.combine_chunks() if values.num_chunks else pa.array([], values.type)
    elif isinstance(values, pa.Array):
        arr = values
    else:
        arr = pa.array([_py_text(v) for v in values], type=pa.string())
    t = arr.type
    if pa.types.is_dictionary(t):
        return to_strings(arr.dictionary_decode())
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return arr
    if pa.types.is_string_view(t) or pa.types.is_integer(t):
        return pc.cast(arr, pa.string())
    return pa.nulls(len(arr), pa.string())


#: NFKC of the full-width forms of ASCII (U+FF01..U+FF5E) and of the ideographic space
#: (U+3000): each is one character for one character, so offsets do not move.
_FULLWIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}


def fold_fullwidth(arr: pa.Array) -> pa.Array:
    """``arr`` with full-width digits, letters and signs (``１８７``, ``＋８６``,
    ``Ｘ``) and the ideographic space read as their ASCII forms (their NFKC forms).

    One code point stays one code point, so a character offset in the result is the same
    offset in ``arr`` (detections can be cut out of the original text). Returns ``arr``
    itself when no value holds such a character (one pass over the column).
    """
    if len(arr) == 0 or pc.all(pc.string_is_ascii(arr)).as_py() is not False:
        return arr
    wide = regex_mask(arr, r"[\x{FF01}-\x{FF5E}\x{3000}]")  # RE2 search: anywhere
    if not wide.any():
        return arr
    idx = np.flatnonzero(wide)
    folded = [v.translate(_FULLWIDTH) for v in arr.take(pa.array(idx)).to_pylist()]
    return pc.replace_with_mask(arr, pa.array(wide), pa.array(folded, arr.type))


def regex_mask(arr: pa.Array, pattern: str) -> BoolArray:
    """Full-value RE2 match as a numpy bool array (nulls are False)."""
    hit = pc.match_substring_regex(arr, pattern).fill_null(False)
    return np.asarray(hit.to_numpy(zero_copy_only=False), dtype=bool)


def subset(arr: pa.Array, mask: BoolArray) -> tuple[pa.Array, npt.NDArray[np.intp]]:
    """The values where ``mask`` holds (as a compact array) and their indices."""
    idx = np.flatnonzero(mask)
    return arr.take(pa.array(idx, type=pa.int64())), idx


def char_matrix(arr: pa.Array, width: int) -> npt.NDArray[np.uint8]:
    """View a null-free array of ``width``-byte ASCII strings as an ``(n, width)`` matrix.

    Warnings
    --------
    Callers must pass only values already matched against a fixed-width ASCII pattern;
    the offsets are checked and a mismatch raises ``ValueError``.
    """
    n = len(arr)
    if n == 0:
        return np.zeros((0, width), dtype=np.uint8)
    if arr.null_count:
        raise ValueError("char_matrix: nulls are not allowed")
    off_type = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], dtype=off_type, count=arr.offset + n + 1)[arr.offset :]
    if not np.all(np.diff(offsets) == width):
        raise ValueError(f"char_matrix: values are not all {width} bytes long")
    start = int(offsets[0])
    data = np.frombuffer(bufs[2], dtype=np.uint8, count=start + n * width)[start:]
    return data.reshape(n, width)


_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def valid_ymd(
    year: npt.NDArray[np.int64], month: npt.NDArray[np.int64], day: npt.NDArray[np.int64]
) -> BoolArray:
    """Element-wise: is (year, month, day) a real Gregorian calendar date?"""
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    ok_month = (month >= 1) & (month <= 12)
    dim = _DAYS[np.clip(month, 0, 12)] + ((month == 2) & leap)
    return np.asarray(ok_month & (day >= 1) & (day <= dim), dtype=bool)


def digits_to_int(m: npt.NDArray[np.uint8]) -> npt.NDArray[np.int64]:
    """Rows of ASCII digits -> integers (``m`` has shape ``(n, k)``, k <= 18)."""
    out = np.zeros(m.shape[0], dtype=np.int64)
    for j in range(m.shape[1]):
        out = out * 10 + (m[:, j].astype(np.int64) - 48)
    return out
