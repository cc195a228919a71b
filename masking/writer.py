"""Atomic streaming writers: record batches to CSV, Parquet or JSON Lines.

:func:`open_writer` is a context manager: batches go to a temporary file beside the
target, which is renamed into place only when the block ends without an error, so a
failed run leaves no output at all (and an older file at the path stays as it was).
Metadata (policy hash, view) goes into the Parquet schema metadata; CSV and JSON Lines
have nowhere to carry it, so it goes into a sidecar ``OUTPUT.meta.json``, written
atomically too, just before the output is renamed into place.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import pyarrow as pa

from masking.coltypes import is_nested
from masking.io import FORMATS, detect_format
from privacy.atomic import atomic_output, atomic_write_text
from privacy.columns import first_non_utf8
from privacy.errors import InputError

__all__ = ["BatchWriter", "open_writer", "sidecar_path", "read_metadata"]


def sidecar_path(path: str | os.PathLike[str]) -> Path:
    """Where the metadata of a CSV/JSON Lines output lives: ``OUTPUT.meta.json``."""
    p = Path(path)
    return p.with_name(p.name + ".meta.json")


class BatchWriter:
    """Writes batches of one schema to an open file; use :func:`open_writer`."""

    def __init__(self, fh: IO[bytes], fmt: str, metadata: dict[str, str]) -> None:
        self._fh = fh
        self.format = fmt
        self.metadata = dict(metadata)
        self.rows = 0
        self.schema: pa.Schema | None = None
        self._writer: Any = None

    def write(self, batch: pa.RecordBatch) -> None:
        """Append one batch (its schema must match the first batch's, up to casts)."""
        if self.schema is None:
            self.schema = batch.schema.with_metadata(
                {k.encode(): v.encode() for k, v in self.metadata.items()}
            )
            self._open()
        elif batch.schema.names != self.schema.names:
            raise InputError("a batch has different columns than the first one")
        if not batch.schema.equals(self.schema, check_metadata=False):
            batch = batch.cast(self.schema.remove_metadata())
        self._write(batch)
        self.rows += batch.num_rows

    def _open(self) -> None:
        assert self.schema is not None
        if self.format == "parquet":
            import pyarrow.parquet as pq

            self._writer = pq.ParquetWriter(self._fh, self.schema)
        elif self.format == "csv":
            from pyarrow import csv as pacsv

            _check_csv_types(self.schema)
            self._writer = pacsv.CSVWriter(self._fh, self.schema.remove_metadata())

    def _write(self, batch: pa.RecordBatch) -> None:
        if self.format == "jsonl":
            rows = batch.to_pylist()
            try:
                lines = [json.dumps(r, ensure_ascii=False, default=_json_value,
                                    allow_nan=False) for r in rows]
            except ValueError:  # NaN or an infinity: JSON has no such numbers
                raise _non_finite(rows, self.rows) from None
            if lines:
                self._fh.write(("\n".join(lines) + "\n").encode("utf-8"))
            return
        try:
            self._writer.write_batch(batch)
        except pa.ArrowInvalid:
            if self.format != "csv":
                raise
            for name, column in zip(batch.schema.names, batch.columns, strict=True):
                bad = first_non_utf8(column)
                if bad is not None:
                    raise InputError(
                        "bytes that are not UTF-8 text, which a CSV file cannot hold: "
                        "write Parquet, or decode or drop the column",
                        column=name, row=self.rows + bad + 1) from None
            raise

    def close(self, empty_schema: pa.Schema | None = None) -> None:
        if self.schema is None and empty_schema is not None:
            self.write(pa.RecordBatch.from_pylist([], schema=empty_schema))
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.close()

    def abort(self) -> None:
        """Drop the format writer of a failed or interrupted run, while its file is still
        open (the file itself is discarded), so that it does not try to finish later."""
        writer, self._writer = self._writer, None
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.close()


def _check_csv_types(schema: pa.Schema) -> None:
    """Refuse a column CSV cannot hold (lists, structs, maps: Arrow's CSV writer stopped
    with a traceback), naming it and what to do instead."""
    for f in schema:
        if is_nested(f.type):
            raise InputError(
                f"a CSV file cannot hold the nested values of this column ({f.type}): "
                "write Parquet or JSON Lines, or drop the column (or replace it with "
                "redact or constant)", column=f.name)


def _non_finite(rows: list[dict[str, Any]], offset: int) -> InputError:
    """The error for the first NaN or infinite number among ``rows`` (row numbers count
    from ``offset + 1``), which a JSON Lines output cannot hold."""
    for i, record in enumerate(rows, start=offset + 1):
        for name, value in record.items():
            try:
                json.dumps(value, default=_json_value, allow_nan=False)
            except ValueError:
                return InputError(
                    f"the value {value!r} is not a finite number, and JSON has none such: "
                    "refusing to write invalid JSON Lines (null or mask the column, or write "
                    "Parquet)", column=name, row=i)
    return InputError("a value is not a finite number; JSON Lines cannot hold it")


def _json_value(v: Any) -> Any:
    """JSON for what ``json`` cannot write: decimals as numbers, dates and times as text."""
    return float(v) if isinstance(v, Decimal) else str(v)


@contextlib.contextmanager
def open_writer(
    path: str | os.PathLike[str],
    *,
    output_format: str | None = None,
    metadata: dict[str, str] | None = None,
    empty_schema: pa.Schema | None = None,
) -> Iterator[BatchWriter]:
    """Open ``path`` for batches, atomically; the format comes from the extension unless
    ``output_format`` names it.

    On leaving the block without an error the file (and for CSV/JSON Lines its sidecar
    ``.meta.json`` with ``metadata`` and the row count) is moved into place.
    """
    fmt = detect_format(path, output_format)
    if fmt not in FORMATS:
        raise InputError(f"unknown output format {fmt!r}")
    with atomic_output(path, "wb") as fh:
        writer = BatchWriter(fh, fmt, metadata or {})
        try:
            yield writer
            writer.close(empty_schema)
        except BaseException:
            writer.abort()
            raise
        if fmt != "parquet":
            meta = {**writer.metadata, "rows": writer.rows, "format": fmt,
                    "columns": writer.schema.names if writer.schema is not None else []}
            atomic_write_text(sidecar_path(path), json.dumps(meta, ensure_ascii=False,
                                                               indent=2) + "\n")


def read_metadata(path: str | os.PathLike[str], input_format: str | None = None
                  ) -> dict[str, str]:
    """The covault metadata of an output: Parquet schema metadata, else the sidecar.

    Raises
    ------
    InputError
        The Parquet schema or the sidecar cannot be read: not UTF-8, not a JSON object
        (nested too deeply, an integer too long), a ``covault.`` value not a string.
    """
    fmt = detect_format(path, input_format)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            raw = pq.read_schema(path).metadata or {}
            return {k.decode(): v.decode() for k, v in raw.items()
                    if k.startswith(b"covault.")}
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"cannot read Parquet: {exc}", file=os.fspath(path)) from None
        except UnicodeDecodeError:
            raise InputError("covault metadata is not UTF-8 text",
                             file=os.fspath(path)) from None
    side = sidecar_path(path)
    if not side.is_file():
        return {}
    where = str(side)
    try:
        data = json.loads(side.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text", file=where) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc.msg}", file=where, line=exc.lineno) from None
    except (ValueError, RecursionError):  # an integer too long, nesting too deep
        raise InputError("not valid JSON: an integer too long or nesting too deep",
                         file=where) from None
    if not isinstance(data, dict):
        raise InputError(f"expected a JSON object, got {type(data).__name__}", file=where)
    meta = {k: v for k, v in data.items() if k.startswith("covault.")}
    for k, v in meta.items():
        if not isinstance(v, str):
            raise InputError(f"{k!r} must be a string, got {type(v).__name__}", file=where)
    return meta
