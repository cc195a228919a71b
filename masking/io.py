"""Streaming readers: CSV, Parquet and JSON Lines files as Arrow record batches.

The format comes from the extension (``.csv``/``.tsv``, ``.parquet``/``.pq``,
``.jsonl``/``.ndjson``/``.json``, optionally followed by ``.gz``/``.bz2``/``.zst``) or is
named explicitly. Batches are read lazily, so a head sample of a large file costs only
the rows read.

Type rules
----------
CSV
    Every column is read as ``string`` (identifiers such as ids, cards and account numbers
    must not lose leading zeros or precision); empty fields are null. With
    ``infer_types=True`` (what ``covault mask apply`` uses) a first pass over the whole
    file types each column whose every value is a canonical number, boolean or date, and
    ``types`` converts named columns to declared types (:mod:`masking.coltypes`). A row with the
    wrong number of fields raises :class:`InputError` with ``file:line`` (the physical
    line where the record starts). Fields of up to :func:`max_field_bytes` bytes are
    read (default 1 MiB, and a row may hold 1 MiB besides); raise it with
    :func:`set_max_field_bytes`, ``covault --max-field-bytes SIZE`` or
    ``$COVAULT_MAX_FIELD_BYTES``. Every CSV reader of covault (masking, scan, PSI, HE)
    uses this one setting (:func:`csv_read_options`).
Parquet
    The file's own schema.
JSON Lines
    One JSON object per line, parsed with the standard library so that integers keep
    full precision. Column types come from the first batch: all booleans -> ``bool``;
    all integers within int64 -> ``int64``; numbers -> ``float64`` unless an integer is
    beyond 2**53 (then ``string``); anything else (strings, mixed, nested) -> ``string``,
    non-strings JSON-encoded. A later field not seen in the first batch, a line that is
    not a JSON object, or a value that does not fit the column type raises
    :class:`InputError` with ``file:line``.

Warnings
--------
The input file is only read, never modified. ``.json`` is read as JSON Lines, not as one
JSON document.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from masking.coltypes import TypeInference, cast_batch
from privacy.errors import InputError

__all__ = [
    "FORMATS",
    "DEFAULT_MAX_FIELD_BYTES",
    "MAX_FIELD_BYTES_LIMIT",
    "MAX_FIELD_BYTES_ENV",
    "csv_error_message",
    "csv_read_options",
    "detect_format",
    "infer_types_of",
    "iter_batches",
    "max_field_bytes",
    "parse_size",
    "read_head",
    "set_max_field_bytes",
]

FORMATS = ("csv", "parquet", "jsonl")
_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
_COMPRESSED = {".gz", ".bz2", ".zst"}
_INT64 = 2**63

#: Largest CSV field read by default (bytes).
DEFAULT_MAX_FIELD_BYTES = 1 << 20
#: The most :func:`set_max_field_bytes` accepts (Arrow reads one block of this size).
MAX_FIELD_BYTES_LIMIT = 1 << 30
#: Environment variable read by ``covault --max-field-bytes``.
MAX_FIELD_BYTES_ENV = "COVAULT_MAX_FIELD_BYTES"
#: Room for the rest of a row beside its largest field.
_ROW_SLACK = 1 << 20
_max_field_bytes = DEFAULT_MAX_FIELD_BYTES
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def parse_size(text: str) -> int:
    """``"1048576"``, ``"512K"``, ``"16M"``, ``"1G"`` (binary units, optional ``iB``/``B``)."""
    t = text.strip().lower().removesuffix("ib").removesuffix("b")
    unit = t[-1:] if t[-1:] in ("k", "m", "g") else ""
    digits = t[: len(t) - len(unit)].strip()
    if not digits.isdigit() or not digits.isascii():
        raise InputError(f"not a size: {text!r} (expected bytes, e.g. 4194304, 512K, 16M)")
    return int(digits) * _UNITS[unit]


def set_max_field_bytes(size: int) -> None:
    """Set the largest CSV field every covault CSV reader accepts, for this process.

    Raises
    ------
    InputError
        ``size`` is below 1 KiB or above :data:`MAX_FIELD_BYTES_LIMIT` (1 GiB).
    """
    global _max_field_bytes
    if not 1 << 10 <= size <= MAX_FIELD_BYTES_LIMIT:
        raise InputError(f"the CSV field limit must lie between 1K and 1G bytes, got {size:,}")
    _max_field_bytes = int(size)
    _python_csv_limit()


def _python_csv_limit() -> None:
    """Let the standard library's ``csv`` module read fields as long as Arrow does (its
    own default, 128 KiB, made a long header a traceback)."""
    limit = _max_field_bytes + _ROW_SLACK
    if csv.field_size_limit() < limit:
        csv.field_size_limit(limit)


def max_field_bytes() -> int:
    """The largest CSV field the readers accept (bytes)."""
    return _max_field_bytes


def csv_read_options(**kwargs: Any) -> Any:
    """``pyarrow.csv.ReadOptions`` whose block holds a row with a field of
    :func:`max_field_bytes` bytes (Arrow refuses a row longer than its block), and sets
    the standard library's ``csv.field_size_limit`` to match."""
    from pyarrow import csv as pacsv

    _python_csv_limit()
    return pacsv.ReadOptions(block_size=_max_field_bytes + _ROW_SLACK, **kwargs)


def csv_error_message(text: str) -> str:
    """Arrow's CSV error ``text``, explained when a row exceeded the field limit."""
    if "straddling object" in text or "field larger than field limit" in text:
        return (f"a CSV row is longer than covault reads (fields up to "
                f"{_max_field_bytes:,} bytes, rows up to {_max_field_bytes + _ROW_SLACK:,}): "
                f"raise the limit with `covault --max-field-bytes SIZE` (e.g. 16M) or "
                f"${MAX_FIELD_BYTES_ENV}, unless a quote that opens in the row never "
                "closes")
    return text


def detect_format(path: str | os.PathLike[str], input_format: str | None = None) -> str:
    """``"csv"``, ``"parquet"`` or ``"jsonl"``: ``input_format`` if given, else by extension."""
    if input_format is not None:
        if input_format not in FORMATS:
            raise InputError(f"unknown input format {input_format!r}; expected one of {FORMATS}")
        return input_format
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] in _COMPRESSED:
        suffixes.pop()
    fmt = _EXTENSIONS.get(suffixes[-1] if suffixes else "")
    if fmt is None:
        raise InputError(
            "cannot tell the format from the extension; use .csv, .parquet or .jsonl "
            "(or name the format explicitly)",
            file=str(path),
        )
    return fmt


def iter_batches(
    path: str | os.PathLike[str],
    *,
    input_format: str | None = None,
    batch_size: int = 65_536,
    types: Mapping[str, pa.DataType] | None = None,
    infer_types: bool = False,
    origins: Mapping[str, str] | None = None,
) -> Iterator[pa.RecordBatch]:
    """Yield the file's rows as record batches (lazily).

    ``types`` converts the columns it names (declared types; ``origins`` says where each
    was declared, for errors); ``infer_types`` types the other CSV columns from a first
    pass over the whole file (:class:`masking.coltypes.TypeInference`).

    Raises
    ------
    InputError
        Missing or unreadable file, unknown format, malformed content (with location),
        a value that does not convert to its column's declared type (with column, row).
    """
    fmt = detect_format(path, input_format)
    name = str(path)
    if not Path(path).is_file():
        raise InputError("no such file (or not a regular file)", file=name)
    if batch_size < 1:
        raise InputError(f"batch_size must be at least 1, got {batch_size}")
    want = dict(types or {})
    if infer_types:
        want = {**infer_types_of(name, input_format=fmt, batch_size=batch_size,
                                 skip=want), **want}
    offset = 0
    for batch in _read_batches(fmt, name, batch_size):
        yield cast_batch(batch, want, source=name, row_offset=offset, declared=origins)
        offset += batch.num_rows


def infer_types_of(
    path: str | os.PathLike[str],
    *,
    input_format: str | None = None,
    batch_size: int = 65_536,
    skip: Iterable[str] = (),
) -> dict[str, pa.DataType]:
    """Column -> type inferred from every value of a CSV file (one pass; the columns in
    ``skip`` are left out); empty for other formats, whose files carry types."""
    if detect_format(path, input_format) != "csv":
        return {}
    skipped = set(skip)
    inference: TypeInference | None = None
    for batch in _csv_batches(str(path), batch_size):
        if inference is None:
            inference = TypeInference([n for n in batch.schema.names if n not in skipped])
        inference.update(batch)
    return inference.types() if inference is not None else {}


def _read_batches(fmt: str, name: str, batch_size: int) -> Iterator[pa.RecordBatch]:
    if fmt == "csv":
        yield from _csv_batches(name, batch_size)
    elif fmt == "parquet":
        yield from _parquet_batches(name, batch_size)
    else:
        yield from _jsonl_batches(name, batch_size)


def read_head(
    path: str | os.PathLike[str], rows: int, *, input_format: str | None = None
) -> pa.Table:
    """The first ``rows`` rows of the file as a table (reads no more than it needs)."""
    batches: list[pa.RecordBatch] = []
    have = 0
    schema = None
    for batch in iter_batches(path, input_format=input_format, batch_size=min(rows, 65_536)):
        schema = batch.schema
        if have >= rows:
            break
        batches.append(batch.slice(0, rows - have))
        have += min(len(batch), rows - have)
        if have >= rows:
            break
    if schema is None:
        raise InputError("the file holds no rows and no header", file=str(path))
    return pa.Table.from_batches(batches, schema=schema)


def _csv_batches(name: str, batch_size: int) -> Iterator[pa.RecordBatch]:
    from pyarrow import csv as pacsv

    delimiter = "\t" if ".tsv" in [s.lower() for s in Path(name).suffixes] else ","

    # no invalid_row_handler: one that returns "error" is Arrow's default, but Arrow first
    # decodes the row for it, and a row that is not UTF-8 printed "Exception ignored ...
    # Traceback" on stderr
    # newlines_in_values: a quoted field may span lines anywhere in the file (without it
    # Arrow splits blocks at any line break and lost step on a multi-line field that
    # crossed a block boundary: "Expected 2 columns" on valid CSV)
    parse = pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True)
    read = csv_read_options(use_threads=False)
    try:
        head = pacsv.open_csv(name, read_options=read, parse_options=parse)
        names = head.schema.names
        _refuse_duplicates(names, name)
        convert = pacsv.ConvertOptions(
            column_types={n: pa.string() for n in names},
            strings_can_be_null=True,
            null_values=[""],
        )
        reader = pacsv.open_csv(
            name, read_options=read, parse_options=parse, convert_options=convert
        )
        buffered: list[pa.RecordBatch] = []
        have = 0
        rows = 0
        for batch in reader:
            buffered.append(batch)
            have += len(batch)
            rows += len(batch)
            while have >= batch_size:
                table = pa.Table.from_batches(buffered).combine_chunks()
                yield from table.slice(0, batch_size).to_batches()
                rest = table.slice(batch_size)
                buffered, have = rest.to_batches(), len(rest)
        if not rows:  # a header and no rows: no rows to mask, but columns all the same
            yield pa.RecordBatch.from_pylist([], schema=reader.schema)
        # Arrow reads a quote left open to the end of the file as one last field holding
        # every later row: check before the last rows go out
        unclosed = _unclosed_quote(name, delimiter)
        if unclosed is not None:
            raise unclosed
        if have:
            yield from pa.Table.from_batches(buffered).combine_chunks().to_batches()
    except pa.ArrowInvalid as exc:
        raise _csv_error(name, delimiter, exc) from None
    except UnicodeDecodeError:  # Arrow decodes the header's names as UTF-8
        raise InputError(f"the header row is not UTF-8 text{_GBK_HINT}", file=name,
                         line=1) from None


#: Appended (after a line break) to the text the standard library's reader sees: a quote
#: left open swallows it into a field, a well-formed file reads it as a record of its own.
_EOF_MARK = "\ue000covault end of file\ue000"
#: Files found free of an unclosed quote: (path, size, mtime_ns), so that a run that reads
#: a file twice (type inference, then masking) scans it once.
_closed_ok: set[tuple[str, int, int]] = set()


def _stat_key(name: str) -> tuple[str, int, int] | None:
    try:
        st = os.stat(name)
    except OSError:
        return None
    return (os.path.realpath(name), st.st_size, st.st_mtime_ns)


def _unclosed_quote(name: str, delimiter: str) -> InputError | None:
    """The error for a quoted field whose quote never closes (``None`` when all close).

    A file without a quote character is fine at the cost of a byte count; otherwise the
    standard library's reader (whose quoting rules are Arrow's: a quote opens a field
    only at its start) reads the file with :data:`_EOF_MARK` appended, and the mark
    landing inside a field means a quote was still open at the end of the file.
    """
    key = _stat_key(name)
    if key is not None and key in _closed_ok:
        return None
    quotes = 0
    with pa.input_stream(name, compression="detect") as raw:
        while block := raw.read(1 << 22):
            quotes += block.count(b'"')
    error = _scan_records(name, delimiter, check_widths=False) if quotes else None
    if error is None and key is not None:
        _closed_ok.add(key)
    return error


def _scan_records(name: str, delimiter: str, *, check_widths: bool) -> InputError | None:
    """Read the CSV file with the standard library: the first record whose field count
    differs from the header's (with ``check_widths``) or a quote open at the end of the
    file (naming the line where it opened), else ``None``."""
    with pa.input_stream(name, compression="detect") as raw:
        lines = io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")
        reader = csv.reader(itertools.chain(lines, ["\n", _EOF_MARK + "\n"]),
                            delimiter=delimiter)
        expected: int | None = None
        start = 1
        try:
            for record in reader:
                if record == [_EOF_MARK]:
                    break
                if record and _EOF_MARK in record[-1]:
                    # the quote opened in the last field; earlier fields of the record
                    # may span lines of their own
                    opened = start + sum(f.count("\n") for f in record[:-1])
                    shown = record[-1].split("\n", 1)[0][:40]
                    return InputError(
                        f"a quoted field opens here and its closing quote never comes "
                        f"(field {len(record)} of the record, starting {shown!r}); every "
                        "later line would be read into it. Close the quote, or double a "
                        'quote meant literally ("")',
                        file=name, line=opened)
                if record and check_widths:
                    if expected is None:
                        expected = len(record)
                    elif len(record) != expected:
                        return InputError(
                            f"row has {len(record)} fields, expected {expected} "
                            "(as in the header)",
                            file=name,
                            line=start,
                        )
                start = reader.line_num + 1
        except csv.Error as exc:
            if not check_widths:  # Arrow read the file: not the reader's to refuse it
                return None
            return InputError(f"cannot read CSV: {csv_error_message(str(exc))}", file=name,
                              line=start)
    return None


def _csv_error(name: str, delimiter: str, exc: pa.ArrowInvalid) -> InputError:
    """The error for Arrow's complaint ``exc`` about the CSV file, located: the standard
    library's reader finds the quote left open, the row of the wrong width or the line
    where a field grew too long (Arrow names none of them by line)."""
    text = str(exc)
    if "invalid UTF8" in text:
        not_text = _non_utf8_line(name, delimiter)
        if not_text is not None:
            return not_text
    located = _scan_records(name, delimiter, check_widths=True)
    if located is not None:
        return located
    return InputError(f"cannot read CSV: {csv_error_message(text)}", file=name)


#: Chinese spreadsheets and core systems often export GBK/GB18030.
_GBK_HINT = (" (a GBK or GB18030 export? convert the file first, e.g. "
             "`iconv -f GB18030 -t UTF-8`)")


def _non_utf8_line(name: str, delimiter: str) -> InputError | None:
    """The error for the first line of the CSV file that is not UTF-8 text, naming the
    line and, when the line is a whole record, the column (Arrow names neither: "In CSV
    column #1: Row #2: ... invalid UTF8 data"). Chinese spreadsheets often export
    GBK/GB18030, hence the hint."""
    header: list[str] | None = None
    with pa.input_stream(name, compression="detect") as raw:
        for lineno, line in enumerate(io.BufferedReader(raw), start=1):
            try:
                decoded = line.decode("utf-8")
            except UnicodeDecodeError:
                fields = next(csv.reader([line.decode("utf-8", errors="surrogateescape")],
                                         delimiter=delimiter), [])
                bad = [i for i, f in enumerate(fields)
                       if any("\udc80" <= ch <= "\udcff" for ch in f)]
                column = header[bad[0]] if header and bad and len(fields) == len(header) \
                    else None
                return InputError(f"not UTF-8 text{_GBK_HINT}", file=name, line=lineno,
                                  column=column)
            if header is None:
                header = next(csv.reader([decoded], delimiter=delimiter), [])
    return None


def _parquet_batches(name: str, batch_size: int) -> Iterator[pa.RecordBatch]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(name)
        _refuse_duplicates(pf.schema_arrow.names, name)
        rows = 0
        for batch in pf.iter_batches(batch_size=batch_size):
            batch.validate(full=True)  # Parquet readers do not check that strings are UTF-8
            rows += len(batch)
            yield batch
        if not rows:  # no rows, but a schema: its columns all the same
            yield pa.RecordBatch.from_pylist([], schema=pf.schema_arrow)
    except (pa.ArrowException, OSError) as exc:  # any Arrow error: not only ArrowInvalid
        raise InputError(f"cannot read Parquet: {exc}", file=name) from None
    except UnicodeDecodeError:
        raise InputError("cannot read Parquet: a column name is not UTF-8 text",
                         file=name) from None


def _refuse_duplicates(names: list[str], file: str) -> None:
    """Columns are addressed by name (policies, ``--column``): two of one name would be
    ambiguous, and the second would be silently ignored or masked by the first's rule."""
    seen: set[str] = set()
    for col in names:
        if col in seen:
            raise InputError(f"the column name {col!r} appears more than once", file=file)
        seen.add(col)


def _lone_surrogate(obj: Any) -> bool:
    """Whether a parsed JSON value holds a lone surrogate (a ``\\ud800`` escape that is
    not half of a pair), which is not text: Arrow and every UTF-8 writer refuse it."""
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if any("\ud800" <= ch <= "\udfff" for ch in item):
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


class _NonFinite(ValueError):
    """A JSON number that is not finite: the ``NaN`` / ``Infinity`` literals Python's
    ``json`` accepts although JSON has none, or a number beyond float range (``1e400``)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def _no_constant(text: str) -> Any:
    raise _NonFinite(text)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NonFinite(text)
    return value


class _Marker:
    """Stands for a non-finite number while :func:`_field_of` looks for its field."""


def _holds_marker(obj: Any) -> bool:
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, _Marker):
            return True
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _field_of(line: str) -> str:
    """The top-level field of a JSON object line that holds a non-finite number."""
    def mark(_: str) -> Any:
        return _Marker()

    def number(text: str) -> Any:
        value = float(text)
        return value if math.isfinite(value) else _Marker()

    try:
        obj = json.loads(line, parse_constant=mark, parse_float=number)
    except (ValueError, RecursionError):
        return "?"
    if isinstance(obj, dict):
        for key, value in obj.items():
            if _holds_marker(value):
                return str(key)
    return "?"


def _column_type(values: list[Any]) -> pa.DataType:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return pa.bool_()
    if any(isinstance(v, bool) for v in present):
        return pa.string()
    if present and all(isinstance(v, int) and -_INT64 <= v < _INT64 for v in present):
        return pa.int64()
    if present and all(isinstance(v, (int, float)) for v in present):
        if all(isinstance(v, float) or abs(v) <= 2**53 for v in present):
            return pa.float64()
    return pa.string()


def _convert(v: Any, t: pa.DataType) -> Any:
    if v is None or t != pa.string() or isinstance(v, str):
        return v
    return json.dumps(v, ensure_ascii=False)


def _jsonl_batches(name: str, batch_size: int) -> Iterator[pa.RecordBatch]:
    schema: pa.Schema | None = None
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    with pa.input_stream(name, compression="detect") as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline=None)
        lineno = 0
        try:
            for lineno, line in enumerate(text, start=1):  # noqa: B007
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line, parse_constant=_no_constant, parse_float=_finite)
                except _NonFinite as exc:
                    why = ("is not JSON (JSON has no NaN or infinities)"
                           if exc.text in ("NaN", "Infinity", "-Infinity")
                           else "is beyond the range of a 64-bit float (it would be read "
                                "as an infinity)")
                    raise InputError(f"field {_field_of(line)!r}: the number {exc.text} "
                                     f"{why}; quote it to read it as text",
                                     file=name, line=lineno) from None
                except json.JSONDecodeError as exc:
                    raise InputError(f"invalid JSON: {exc.msg}", file=name, line=lineno) from None
                except (ValueError, RecursionError) as exc:  # huge integers, deep nesting
                    raise InputError(f"invalid JSON: {type(exc).__name__}: {str(exc)[:120]}",
                                     file=name, line=lineno) from None
                if not isinstance(obj, dict):
                    raise InputError("expected one JSON object per line", file=name, line=lineno)
                if "\\u" in line and _lone_surrogate(obj):
                    raise InputError("a \\u escape stands for a lone surrogate code point "
                                     "(U+D800 to U+DFFF), which is not text",
                                     file=name, line=lineno)
                if schema is not None:
                    extra = set(obj) - set(schema.names)
                    if extra:
                        raise InputError(
                            f"field {sorted(extra)[0]!r} was not in the first rows",
                            file=name,
                            line=lineno,
                        )
                rows.append(obj)
                lines.append(lineno)
                if len(rows) >= batch_size:
                    schema, batch = _to_batch(rows, schema, name, lines)
                    yield batch
                    rows, lines = [], []
        except UnicodeDecodeError:
            raise InputError("not UTF-8 text", file=name, line=lineno + 1) from None
    if rows or schema is None:
        _, batch = _to_batch(rows, schema, name, lines)
        yield batch


def _to_batch(
    rows: list[dict[str, Any]], schema: pa.Schema | None, name: str, lines: list[int]
) -> tuple[pa.Schema, pa.RecordBatch]:
    if schema is None:
        names: dict[str, None] = {}
        for r in rows:
            names.update(dict.fromkeys(r))
        schema = pa.schema([(k, _column_type([r.get(k) for r in rows])) for k in names])
    arrays = []
    for field in schema:
        values = [_convert(r.get(field.name), field.type) for r in rows]
        try:
            arrays.append(pa.array(values, type=field.type))
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            bad = next(i for i, v in enumerate(values) if not _fits(v, field.type))
            raise InputError(
                f"field {field.name!r}: value does not fit type {field.type} "
                "(set by the first rows)",
                file=name,
                line=lines[bad],
            ) from None
    return schema, pa.RecordBatch.from_arrays(arrays, schema=schema)


def _fits(v: Any, t: pa.DataType) -> bool:
    try:
        pa.array([v], type=t)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return False
    return True
