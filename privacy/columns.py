"""Vector plumbing between Arrow string columns and fixed-width byte matrices.

Batched ciphers work on an ``(n, width)`` ``uint8`` matrix per group of equal-length
values, so each step of a construction is one numpy or one AES call for the whole
group instead of a Python loop per value. This module groups a column by byte
length, gathers each group into a matrix, scatters results back into one Arrow
array, and encodes / decodes base64url (unpadded) row by row without a loop.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "Matrix",
    "as_string_array",
    "length_groups",
    "assemble",
    "b64url_encode_rows",
    "b64url_decode_rows",
    "b64_width",
]

Matrix = npt.NDArray[np.uint8]
Index = npt.NDArray[np.int64]

_ALPHABET = np.frombuffer(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", dtype=np.uint8
)
_REVERSE = np.full(256, 255, dtype=np.uint8)
_REVERSE[_ALPHABET] = np.arange(64, dtype=np.uint8)


def as_string_array(values: Any) -> pa.Array:
    """Coerce a pyarrow (chunked) array, a pandas/polars series or a sequence of str
    into one ``pa.large_string`` array (nulls kept)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    if not isinstance(values, pa.Array):
        values = pa.array(list(values) if not isinstance(values, Sequence) else values)
    if pa.types.is_binary(values.type) or pa.types.is_large_binary(values.type):
        return values.cast(pa.large_binary())
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        values = pc.cast(values, pa.string())
    return values.cast(pa.large_string())


def _offsets_and_data(arr: pa.Array) -> tuple[npt.NDArray[np.int64], Matrix]:
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int64, count=len(arr) + 1, offset=arr.offset * 8)
    data = (
        np.frombuffer(bufs[2], dtype=np.uint8)
        if bufs[2] is not None
        else np.zeros(0, dtype=np.uint8)
    )
    return offsets, data


def length_groups(arr: pa.Array) -> Iterator[tuple[Index, Matrix]]:
    """Yield ``(row_indices, matrix)`` for each byte length among the non-null values.

    ``arr`` must come from :func:`as_string_array` (large_string or large_binary).
    """
    offsets, data = _offsets_and_data(arr)
    lengths = np.diff(offsets)
    valid = (
        np.ones(len(arr), dtype=bool)
        if arr.null_count == 0
        else np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    )
    rows = np.flatnonzero(valid)
    if rows.size == 0:
        return
    row_lengths = lengths[rows]
    first = int(row_lengths[0])
    if bool(np.all(row_lengths == first)):
        groups: Sequence[tuple[int, Index]] = [(first, rows)]
    else:
        order = np.argsort(row_lengths, kind="stable")
        sorted_lengths = row_lengths[order]
        cuts = np.flatnonzero(np.diff(sorted_lengths)) + 1
        groups = [
            (int(sorted_lengths[chunk[0]]), rows[order[chunk]])
            for chunk in np.split(np.arange(rows.size), cuts)
        ]
    for width, idx in groups:
        starts = offsets[idx]
        if width == 0:
            yield idx, np.zeros((idx.size, 0), dtype=np.uint8)
            continue
        contiguous = idx.size > 0 and bool(
            np.all(np.diff(starts) == width)
        )
        if contiguous:
            begin = int(starts[0])
            yield idx, data[begin : begin + idx.size * width].reshape(idx.size, width)
        else:
            yield idx, data[starts[:, None] + np.arange(width)]


def assemble(
    n: int,
    groups: Sequence[tuple[Index, Matrix]],
    valid: npt.NDArray[np.bool_] | None = None,
    *,
    prefix: bytes = b"",
    binary: bool = False,
) -> pa.Array:
    """Build one Arrow string (or binary) array of length ``n`` from row groups.

    Rows not covered by any group are null. ``prefix`` is put in front of every value.
    """
    lengths = np.zeros(n, dtype=np.int64)
    covered = np.zeros(n, dtype=bool)
    pre = np.frombuffer(prefix, dtype=np.uint8)
    for idx, mat in groups:
        lengths[idx] = mat.shape[1] + pre.size
        covered[idx] = True
    if valid is not None:
        covered &= valid
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    data = np.empty(int(offsets[-1]), dtype=np.uint8)
    for idx, mat in groups:
        width = mat.shape[1] + pre.size
        if idx.size == 0:
            continue
        full = np.empty((idx.size, width), dtype=np.uint8)
        full[:, : pre.size] = pre
        full[:, pre.size :] = mat
        starts = offsets[idx]
        if bool(np.all(np.diff(starts) == width)):
            begin = int(starts[0])
            data[begin : begin + idx.size * width] = full.reshape(-1)
        else:
            data[(starts[:, None] + np.arange(width)).reshape(-1)] = full.reshape(-1)
    null_count = int(n - covered.sum())
    bitmap = None if null_count == 0 else pa.array(covered).buffers()[1]
    typ = pa.large_binary() if binary else pa.large_string()
    out = pa.Array.from_buffers(
        typ, n, [bitmap, pa.py_buffer(offsets), pa.py_buffer(data)], null_count=null_count
    )
    if int(offsets[-1]) < 2**31 - 1:
        return out.cast(pa.binary() if binary else pa.string())
    return out


def b64_width(nbytes: int) -> int:
    """Characters of unpadded base64 for ``nbytes`` bytes."""
    return (4 * nbytes + 2) // 3


def b64url_encode_rows(mat: Matrix) -> Matrix:
    """Unpadded base64url of each row of an ``(n, L)`` byte matrix -> ``(n, ceil(4L/3))``.

    Rows are zero-padded to a multiple of 3 bytes, so the standard library's encoder
    over the whole matrix yields each row's encoding in place; the padding only adds
    characters past ``ceil(4L/3)``, which are cut off.
    """
    n, width = mat.shape
    pad = (-width) % 3
    if pad:
        mat = np.concatenate([mat, np.zeros((n, pad), dtype=np.uint8)], axis=1)
    encoded = base64.urlsafe_b64encode(np.ascontiguousarray(mat).tobytes())
    chars = np.frombuffer(encoded, dtype=np.uint8).reshape(n, -1)
    return chars[:, : b64_width(width)]


def b64url_decode_rows(chars: Matrix) -> tuple[Matrix, npt.NDArray[np.bool_]]:
    """Decode each row of unpadded base64url; returns ``(bytes_matrix, ok_rows)``.

    A row is not ok when it has a character outside the alphabet, an impossible
    length, or non-zero trailing bits (a non-canonical encoding).
    """
    n, width = chars.shape
    if width % 4 == 1:
        return np.zeros((n, 0), dtype=np.uint8), np.zeros(n, dtype=bool)
    nbytes = (width * 3) // 4
    pad = (-width) % 4
    if pad:
        chars = np.concatenate([chars, np.full((n, pad), ord("A"), dtype=np.uint8)], axis=1)
    bad = _REVERSE[chars] == 255
    ok = ~bad.any(axis=1)
    if not ok.all():
        chars = np.where(bad, np.uint8(ord("A")), chars)
    decoded = base64.urlsafe_b64decode(np.ascontiguousarray(chars).tobytes())
    out = np.frombuffer(decoded, dtype=np.uint8).reshape(n, -1)
    if out.shape[1] > nbytes:
        ok &= np.all(out[:, nbytes:] == 0, axis=1)
    return np.ascontiguousarray(out[:, :nbytes]), ok
