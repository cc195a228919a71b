"""Vector plumbing between Arrow string columns and fixed-width byte matrices.

Batched ciphers work on an ``(n, width)`` ``uint8`` matrix per group of equal-length
values, so each step of a construction is one numpy or one AES call for the whole
group instead of a Python loop per value. This module groups a column by byte
length, gathers each group into a matrix, scatters results back into one Arrow
array, and encodes / decodes base64url (unpadded) row by row without a loop.
:func:`map_string_groups` chains these for a length-preserving transform (FF1) that
keeps the column's Arrow type and chunking.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from privacy.errors import InputError

__all__ = [
    "Matrix",
    "RowLocator",
    "Transform",
    "as_string_array",
    "as_strict_string_array",
    "first_non_utf8",
    "length_groups",
    "assemble",
    "map_string_groups",
    "b64url_encode_rows",
    "b64url_decode_rows",
    "b64_width",
]

Matrix = npt.NDArray[np.uint8]
Index = npt.NDArray[np.int64]
#: ``where(i)`` gives ``(value, row)`` of matrix row ``i`` (for error messages).
RowLocator = Callable[[int], tuple[str, int]]
#: A length-preserving transform of a ``(rows, width)`` byte matrix.
Transform = Callable[[Matrix, RowLocator], Matrix]

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


def as_strict_string_array(values: Any) -> pa.Array:
    """A ``pa.string`` or ``pa.large_string`` array from a pyarrow array or a sequence of
    ``str | None``, keeping the input's offset width.

    Unlike :func:`as_string_array` nothing is converted to text: dictionary arrays are
    decoded and ``string_view`` / all-null arrays cast to ``string``; any other type, or
    a single ``str``/``bytes`` value, raises :class:`~privacy.errors.InputError`.
    """
    if isinstance(values, str | bytes):
        raise InputError("expected a column of strings, got a single value")
    if not isinstance(values, pa.Array):
        try:
            values = pa.array(values, type=pa.string())
        except (pa.ArrowException, TypeError) as exc:
            raise InputError(f"expected a column of str or None: {exc}") from exc
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    typ = values.type
    if pa.types.is_null(typ) or pa.types.is_string_view(typ):
        values = values.cast(pa.string())
    elif not (pa.types.is_string(typ) or pa.types.is_large_string(typ)):
        raise InputError(f"expected a string column, got type {typ}")
    return values


def first_non_utf8(values: pa.Array | pa.ChunkedArray) -> int | None:
    """The index of the first value of a binary column that is not UTF-8 text, or
    ``None`` (all are, or the column is not binary). A Parquet ``BYTE_ARRAY`` column
    written without the UTF-8 annotation, or a CSV column Arrow could not decode, reads
    as binary: read as text where it is text, it must be refused by row where it is not
    (Arrow's cast says only "Invalid UTF8")."""
    t = values.type
    if not (pa.types.is_binary(t) or pa.types.is_large_binary(t)
            or pa.types.is_fixed_size_binary(t) or pa.types.is_binary_view(t)):
        return None
    try:
        values.cast(pa.string())
    except pa.ArrowInvalid:
        for i, v in enumerate(values.to_pylist()):
            try:
                if v is not None:
                    v.decode("utf-8")
            except UnicodeDecodeError:
                return i
    return None


def _is_large(typ: pa.DataType) -> bool:
    return bool(pa.types.is_large_string(typ) or pa.types.is_large_binary(typ))


def _offsets_and_data(arr: pa.Array) -> tuple[npt.NDArray[np.int64], Matrix]:
    bufs = arr.buffers()
    off_type = np.int64 if _is_large(arr.type) else np.int32
    size = np.dtype(off_type).itemsize
    offsets = np.frombuffer(bufs[1], dtype=off_type, count=len(arr) + 1, offset=arr.offset * size)
    data = (
        np.frombuffer(bufs[2], dtype=np.uint8)
        if bufs[2] is not None
        else np.zeros(0, dtype=np.uint8)
    )
    return offsets.astype(np.int64, copy=False), data


def length_groups(arr: pa.Array) -> Iterator[tuple[Index, Matrix]]:
    """Yield ``(row_indices, matrix)`` for each byte length among the non-null values.

    ``arr`` is a string, large_string, binary or large_binary array (e.g. from
    :func:`as_string_array`). Groups come in increasing length; a null slot's bytes,
    if any, are never read.
    """
    offsets, data = _offsets_and_data(arr)
    lengths = np.diff(offsets)
    if arr.null_count == 0:
        rows = np.arange(len(arr), dtype=np.int64)
        row_lengths = lengths
    else:
        valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        rows = np.flatnonzero(valid)
        row_lengths = lengths[rows]
    if rows.size == 0:
        return
    first = int(row_lengths[0])
    if bool(np.all(row_lengths == first)):
        if arr.null_count == 0 and first > 0:  # every row, one length: one slice of data
            begin = int(offsets[0])
            yield rows, data[begin : begin + rows.size * first].reshape(rows.size, first)
            return
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
        if idx.size > 0 and bool(np.all(np.diff(starts) == width)):
            begin = int(starts[0])
            yield idx, data[begin : begin + idx.size * width].reshape(idx.size, width)
        else:
            yield idx, np.lib.stride_tricks.sliding_window_view(data, width)[starts]


def assemble(
    n: int,
    groups: Sequence[tuple[Index, Matrix]],
    valid: npt.NDArray[np.bool_] | None = None,
    *,
    prefix: bytes = b"",
    binary: bool = False,
    large: bool | None = None,
) -> pa.Array:
    """Build one Arrow string (or binary) array of length ``n`` from row groups.

    Rows not covered by any group are null. ``prefix`` is put in front of every value.
    ``large`` picks the offset width: ``None`` (default) gives ``string``/``binary``
    when the data fits 32-bit offsets and ``large_*`` otherwise; ``True`` always
    ``large_*``; ``False`` always ``string``/``binary`` (:class:`InputError` if the
    data does not fit).
    """
    if len(groups) == 1 and not prefix and valid is None and _is_all_rows(groups[0][0], n):
        return _assemble_dense(n, groups[0][1], binary, large)
    lengths = np.zeros(n, dtype=np.int64)
    covered = np.zeros(n, dtype=bool)
    pre = np.frombuffer(prefix, dtype=np.uint8)
    for idx, mat in groups:
        lengths[idx] = mat.shape[1] + pre.size
        covered[idx] = True
    if valid is not None:
        covered &= valid
    total = int(lengths.sum())
    large = _use_large(total, large)
    offsets = np.zeros(n + 1, dtype=np.int64 if large else np.int32)
    np.cumsum(lengths, out=offsets[1:])
    data = np.empty(total, dtype=np.uint8)
    for idx, mat in groups:
        width = mat.shape[1] + pre.size
        if idx.size == 0 or width == 0:
            continue
        full = mat
        if pre.size:
            full = np.empty((idx.size, width), dtype=np.uint8)
            full[:, : pre.size] = pre
            full[:, pre.size :] = mat
        starts = offsets[idx]
        if bool(np.all(np.diff(starts) == width)):
            begin = int(starts[0])
            data[begin : begin + idx.size * width] = full.reshape(-1)
        else:
            windows = np.lib.stride_tricks.sliding_window_view(data, width, writeable=True)
            windows[starts] = full
    null_count = int(n - covered.sum())
    bitmap = None if null_count == 0 else pa.array(covered).buffers()[1]
    typ = _arrow_type(binary, large)
    return pa.Array.from_buffers(
        typ, n, [bitmap, pa.py_buffer(offsets), pa.py_buffer(data)], null_count=null_count
    )


def _use_large(total: int, large: bool | None) -> bool:
    """Whether ``total`` bytes of data get 64-bit offsets (see :func:`assemble`)."""
    if large is None:
        return total >= 2**31 - 1
    if not large and total >= 2**31 - 1:
        raise InputError(f"{total} bytes of column data do not fit 32-bit offsets")
    return large


def _arrow_type(binary: bool, large: bool) -> pa.DataType:
    if binary:
        return pa.large_binary() if large else pa.binary()
    return pa.large_string() if large else pa.string()


def _is_all_rows(idx: Index, n: int) -> bool:
    return bool(idx.size == n and n > 0 and idx[0] == 0 and np.all(np.diff(idx) == 1))


def _assemble_dense(n: int, mat: Matrix, binary: bool, large: bool | None) -> pa.Array:
    """:func:`assemble` of one group holding rows ``0..n-1`` in order: no nulls."""
    width = mat.shape[1]
    total = n * width
    large = _use_large(total, large)
    if large:
        offsets = pa.py_buffer(np.arange(n + 1, dtype=np.int64) * np.int64(width))
    else:
        offsets = pa.py_buffer(np.arange(n + 1, dtype=np.int32) * np.int32(width))
    data = np.array(mat, dtype=np.uint8, order="C").reshape(-1)
    typ = _arrow_type(binary, large)
    return pa.Array.from_buffers(typ, n, [None, offsets, pa.py_buffer(data)])


def map_string_groups(values: Any, fn: Transform) -> Any:
    """Apply a length-preserving byte transform to every non-null value of a column.

    ``values`` goes through :func:`as_strict_string_array` (per chunk). ``fn`` gets each
    group of equal-length values as a ``(rows, width)`` matrix and a :data:`RowLocator`
    naming the column row of a matrix row (0-based across chunks); it returns a matrix
    of the same shape. The result keeps the input's type (``string`` or
    ``large_string``) and chunking; nulls stay null (their bytes are not copied).
    """
    if isinstance(values, pa.ChunkedArray):
        chunks, base = [], 0
        for chunk in values.chunks:
            chunks.append(_map_array(as_strict_string_array(chunk), fn, base))
            base += len(chunk)
        typ = pa.large_string() if pa.types.is_large_string(values.type) else pa.string()
        return pa.chunked_array(chunks, type=typ)
    return _map_array(as_strict_string_array(values), fn, 0)


def _map_array(arr: pa.Array, fn: Transform, base: int) -> pa.Array:
    n = len(arr)
    if n == 0 or arr.null_count == n:
        return arr
    groups = []
    for idx, mat in length_groups(arr):

        def where(i: int, idx: Index = idx) -> tuple[str, int]:
            row = int(idx[i])
            return arr[row].as_py(), base + row

        groups.append((idx, fn(mat, where)))
    return assemble(n, groups, large=pa.types.is_large_string(arr.type))


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
