"""Party tables: reading CSV/Parquet, column kinds, labels, and the checks that name a party.

Empty CSV cells are missing values, and so are the usual spellings of one
(:data:`MISSING_TOKENS`: ``NA``, ``N/A``, ``#N/A``, ``NaN``, ``null``...). A column is
*numeric* when its Arrow type is an integer, floating point or boolean type, and
*categorical* otherwise (text); the config may say which columns are which. Every error
names the party and the file (and for a CSV file the line, as an editor counts it: the
header is line 1).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from privacy.errors import InputError
from privacy.normalize import DECIMAL

__all__ = [
    "MAX_LEVELS", "POSITIVE_WORDS", "PartyTable", "read_table", "numeric_values",
    "text_values", "kind_of", "encode_label", "choose_positive", "label_levels",
    "inferred_kind", "party_of_rows", "feature_names", "MISSING_TOKENS",
]

#: CSV cells read as missing values (as written, case included): what spreadsheets and
#: database exports write for "no value". Any other text in a numeric column is an error.
MISSING_TOKENS = ("", "NA", "N/A", "n/a", "#N/A", "NaN", "nan", "null", "NULL")

#: The most levels a categorical column may have (beyond this it is an identifier).
MAX_LEVELS = 1000
#: Label values read as the event when the config gives no ``positive``.
POSITIVE_WORDS = ("1", "true", "yes", "y", "bad", "default", "defaulted", "fraud",
                  "positive", "event", "charged off")

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class PartyTable:
    """One party's table with where it came from (for error messages)."""

    party: str
    path: Path
    table: Any  # pyarrow.Table
    #: Row ``i`` of the table is record ``i`` of the CSV file ``path`` (errors then name
    #: its line), or record ``source_rows[i]`` of it; false for Parquet files.
    csv_rows: bool = False
    #: For a table cut from the file's (a vertical party's aligned rows): the file's row
    #: (0-based) of each of its rows, so that errors name the row of the file.
    source_rows: Any = None  # numpy int64 array or None

    @property
    def rows(self) -> int:
        """Number of rows."""
        return int(self.table.num_rows)

    @property
    def columns(self) -> list[str]:
        """Column names in file order."""
        return list(self.table.column_names)

    def error(self, message: str, *, column: str | None = None,
              row: int | None = None) -> InputError:
        """An :class:`InputError` naming this party, its file and the column/row (and
        for a CSV file the row's line, as an editor counts it: the header is line 1).
        ``row`` (1-based) is this table's; the message names the file's."""
        if row is not None and self.source_rows is not None:
            row = int(self.source_rows[row - 1]) + 1
        line = _csv_line(self.path, row) if row is not None and self.csv_rows else None
        return InputError(f"party {self.party!r}: {message}", file=str(self.path),
                          line=line, column=column, row=row)


def _delimiter(path: Path) -> str:
    """The field delimiter of a CSV file: a comma, unless its header (the first line that
    is not blank) holds no comma but a semicolon or a tab, as European spreadsheets and
    database exports write them."""
    try:
        with path.open("rb") as raw:
            for line in raw:
                header = line.decode("utf-8", errors="replace").strip()
                if header:
                    break
            else:
                return ","
    except OSError:
        return ","
    if "," in header:
        return ","
    return next((d for d in (";", "\t") if d in header), ",")


def _csv_records(path: Path) -> Any:
    """``(line, fields)`` of each record of a CSV file, the header first; ``line`` is
    where the record starts (a quoted field may span lines)."""
    with path.open("rb") as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")
        reader = csv.reader(text, delimiter=_delimiter(path))
        start = 1
        for fields in reader:
            if fields:  # Arrow skips empty lines
                yield start, fields
            start = reader.line_num + 1


def _csv_line(path: Path, row: int) -> int | None:
    """The line on which data row ``row`` (1-based) of a CSV file starts."""
    try:
        for i, (line, _) in enumerate(_csv_records(path)):
            if i == row:
                return line
    except (OSError, csv.Error):
        pass
    return None


def _ragged_row(path: Path, party: str) -> InputError | None:
    """The error for the first CSV record whose field count is not the header's."""
    try:
        header: list[str] | None = None
        for line, fields in _csv_records(path):
            if header is None:
                header = fields
                continue
            if len(fields) == len(header):
                continue
            if len(fields) > len(header):
                column = header[-1]
                what = f"values {fields[len(header):][:5]!r} after the last column"
            else:
                column = header[len(fields)]
                what = f"no value for {header[len(fields):][:5]!r}"
            return InputError(f"party {party!r}: cannot read table: row has {len(fields)} "
                              f"fields, the header has {len(header)}: {what}"[:300],
                              file=str(path), line=line,
                              column=column)
    except (OSError, csv.Error):
        pass
    return None


def _is_parquet(path: Path) -> bool:
    if path.suffix.lower() in (".parquet", ".pq"):
        return True
    try:
        with path.open("rb") as fh:
            return fh.read(4) == b"PAR1"
    except OSError:
        return False


#: The first bytes of a spreadsheet workbook: xlsx/ods (a zip archive), xls (OLE2).
_WORKBOOK_MAGIC = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")


def _is_workbook(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
    except OSError:
        return False
    return any(head.startswith(m) for m in _WORKBOOK_MAGIC)


def read_table(path: str | os.PathLike[str], *, party: str,
               text_columns: Collection[str] = ()) -> PartyTable:
    """Read a CSV or Parquet file; empty cells (and :data:`MISSING_TOKENS`) become
    missing values. A CSV file's fields are separated by commas, or by semicolons (or
    tabs) when its header holds no comma.

    ``text_columns`` (customer ids) are read as text, as written: no type inference, so
    ``00700433`` keeps its zeros and a 20-digit account number is not rounded to a float.
    In a Parquet file such a column must hold text or integers.

    Raises
    ------
    InputError
        The file is missing, a spreadsheet workbook, unreadable, malformed, not UTF-8
        text, has duplicate column names or no rows; the message names the party and
        the file.
    """
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    p = Path(path)
    where = {"file": str(p)}
    if p.is_dir():
        raise InputError(f"party {party!r}: a folder, not a data file (CSV or Parquet)",
                         **where)
    if not p.is_file():
        raise InputError(f"party {party!r}: data file not found", **where)
    if not _is_parquet(p) and _is_workbook(p):  # read as CSV it would be binary garbage
        raise InputError(f"party {party!r}: a spreadsheet workbook (xlsx, xls, ods) or zip "
                         "archive, not CSV or Parquet: save the sheet as CSV (UTF-8), or "
                         "unzip it", **where)
    try:
        if _is_parquet(p):
            table = pq.read_table(p)
            table.validate(full=True)  # Parquet readers do not check that strings are UTF-8
            table = _ids_as_text(table, text_columns, party, where)
        else:
            table = pcsv.read_csv(
                p, parse_options=pcsv.ParseOptions(delimiter=_delimiter(p)),
                convert_options=pcsv.ConvertOptions(
                    column_types={c: pa.string() for c in text_columns},
                    null_values=list(MISSING_TOKENS),
                    strings_can_be_null=True))
    except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:  # any Arrow error
        if isinstance(exc, pa.ArrowInvalid) and not _is_parquet(p):
            ragged = _ragged_row(p, party)
            if ragged is not None:
                raise ragged from None
        raise InputError(f"party {party!r}: cannot read table: {exc}", **where) from None
    try:
        names = list(table.column_names)
    except UnicodeDecodeError:
        raise InputError(f"party {party!r}: a column name is not UTF-8 text", **where) from None
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InputError(f"party {party!r}: duplicate column names {dup}", **where)
    if table.num_rows == 0:
        raise InputError(f"party {party!r}: the table has no rows", **where)
    out = PartyTable(party, p, table.combine_chunks(), csv_rows=not _is_parquet(p))
    if out.csv_rows:
        _check_utf8(out)
    return out


def _check_utf8(pt_: PartyTable) -> None:
    """Arrow reads a CSV column holding text that is not UTF-8 (a Latin-1 or Windows-1252
    export) as bytes, whose values would become levels such as ``b'Z\\xfcrich'``: the
    first such cell is named."""
    from privacy.columns import first_non_utf8

    for name in pt_.columns:
        col = pt_.table.column(name)
        bad = first_non_utf8(col)
        if bad is not None:
            text = col[bad].as_py().decode("latin-1")
            raise pt_.error(f"value {text!r} (read as Latin-1) is not UTF-8 text: save "
                            "the file as UTF-8", column=name, row=bad + 1)


def _ids_as_text(table: Any, columns: Collection[str], party: str,
                 where: dict[str, str]) -> Any:
    """``table`` with its integer ``columns`` cast to text; a floating-point one refused
    (a float id has lost digits already: 20-digit numbers do not fit a double)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.types as pt

    for name in columns:
        if name not in table.column_names:
            continue
        i = table.column_names.index(name)
        kind = table.schema.field(i).type
        if pt.is_string(kind) or pt.is_large_string(kind):
            continue
        if pt.is_integer(kind):
            table = table.set_column(i, name, pc.cast(table.column(i), pa.string()))
            continue
        raise InputError(f"party {party!r}: id column {name!r} is stored as {kind}; ids must "
                         "be text (or integers) so that no digit is lost", column=name,
                         **where)
    return table


def kind_of(arrow_type: Any) -> str:
    """``"numeric"`` for integer, float, decimal and boolean Arrow types, else ``"categorical"``."""
    import pyarrow.types as pt

    if (pt.is_integer(arrow_type) or pt.is_floating(arrow_type) or pt.is_boolean(arrow_type)
            or pt.is_decimal(arrow_type)):
        return "numeric"
    if pt.is_null(arrow_type):
        return "empty"
    return "categorical"


#: A number as text (what Arrow reads as one), with the spaces around it.
_NUMBER = rf"^\s*{DECIMAL}\s*$"
#: A number as a spreadsheet formats it (and Arrow does not read as one): thousands
#: separators (``1,234``), a decimal comma (``0,25``, ``1.234,5``), a percent sign
#: (``12.5%``) or a currency symbol (``$1,200.00``); plain numbers match too.
_FORMATTED = (r"^\s*[+-]?[$€£¥]?\s*[+-]?(?:[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]*)?"
              r"|[0-9]+,[0-9]+|[0-9]{1,3}(?:\.[0-9]{3})+,[0-9]+|[0-9]+\.?[0-9]*|\.[0-9]+)"
              r"\s*%?\s*$")


def inferred_kind(pt_: PartyTable, column: str) -> str:
    """The kind of a column the config does not list: :func:`kind_of` its Arrow type,
    but ``"numeric"`` for a text column whose values are all numbers (a Parquet string
    column of a database export).

    Raises
    ------
    InputError
        The column was read as text but most of its values are numbers: the first value
        that is not is named (with its line), as a numeric column with a stray ``N/A``
        or ``-`` would otherwise be one-hot encoded (or clash with the other parties').
        Or most of its values are numbers as a spreadsheet formats them (``1,234``,
        ``12.5%``, ``$1,200``, ``0,25``): the first such value is named, as each number
        would otherwise be a one-hot level of its own. Or the column has no name (a row
        index written with the table).
    """
    import pyarrow.compute as pc
    import pyarrow.types as pt

    if not column.strip():  # a spreadsheet's or pandas' row index: row numbers, no feature
        raise pt_.error(f"column {pt_.columns.index(column) + 1} of the header has no name "
                        "(a row index written with the table?): remove it, or name it and "
                        "list it in exclude if it is not a feature")
    col = pt_.table.column(column)
    kind = kind_of(col.type)
    if not (pt.is_string(col.type) or pt.is_large_string(col.type)):
        return kind
    numbers = pc.match_substring_regex(col, _NUMBER)
    present = len(col) - col.null_count
    count = int(pc.sum(numbers).as_py() or 0)
    if 0 < present == count:  # numbers stored as text (a Parquet string column)
        return "numeric"
    if 0 < present < 2 * count:
        misses = pc.and_(pc.invert(numbers), pc.is_valid(numbers))
        i = int(pc.index(misses, True).as_py())
        raise pt_.error(f"value {col[i].as_py()!r} is not a number, but {count} of the "
                        f"column's {present} values are: leave the cell empty for a missing "
                        "value (or list the column in categorical if it holds text)",
                        column=column, row=i + 1)
    styled = pc.match_substring_regex(col, _FORMATTED)
    formatted = pc.and_(styled, pc.invert(numbers))
    many = int(pc.sum(styled).as_py() or 0)
    if 0 < present < 2 * many and pc.any(formatted).as_py():
        # one-hot encoding "12.5%" or "1,234" would make each number a feature of its own
        i = int(pc.index(formatted, True).as_py())
        raise pt_.error(f"value {col[i].as_py()!r} is a number written with a thousands "
                        "separator, decimal comma, percent sign or currency symbol, as are "
                        f"{many - count} of the column's {present} values: write plain "
                        "numbers (1234.5, 0.125) or list the column in categorical if it "
                        "holds text", column=column, row=i + 1)
    return kind


def numeric_values(pt_: PartyTable, column: str) -> FloatArray:
    """A column as float64 with NaN for missing values (text raises, naming the row)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    col = pt_.table.column(column)
    kind = kind_of(col.type)
    if kind == "empty":
        return np.full(pt_.rows, np.nan)
    if kind == "categorical":
        try:
            col = pc.cast(pc.utf8_trim_whitespace(col), pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            values = col.to_pylist()
            for i, v in enumerate(values):
                try:
                    if v is not None:
                        float(v)
                except (TypeError, ValueError):
                    raise pt_.error(f"value {v!r} is not a number (the column is numeric)",
                                    column=column, row=i + 1) from None
            raise pt_.error("column is not numeric", column=column) from None
    out = np.asarray(pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False),
                     dtype=np.float64)
    if np.isinf(out).any():
        row = int(np.flatnonzero(np.isinf(out))[0]) + 1
        raise pt_.error("infinite value", column=column, row=row)
    return out


def party_of_rows(pt_: PartyTable, column: str, parties: Sequence[str]
                  ) -> npt.NDArray[np.object_]:
    """The party each row of a test table belongs to, from its ``test_party_column``.

    Raises
    ------
    InputError
        The column is missing, or holds a value (or an empty cell) that names no party;
        the message names the file, the column, the unmatched values and the parties.
    """
    if column not in pt_.columns:
        raise pt_.error(f"test_party_column {column!r} is not a column of the test file")
    owner = text_values(pt_, column)
    known = set(parties)
    odd = [i for i, v in enumerate(owner) if v not in known]
    if odd:
        values = sorted({str(owner[i]) for i in odd if owner[i] is not None})
        shown = ", ".join(repr(v) for v in values[:10]) + (" ..." if len(values) > 10 else "")
        empty = sum(owner[i] is None for i in odd)
        what = ([shown] if values else []) + ([f"{empty} empty cell(s)"] if empty else [])
        raise pt_.error(f"test_party_column {column!r} names no party in {len(odd)} "
                        f"row(s) (the first here): {'; '.join(what)}; the parties are "
                        f"{', '.join(map(repr, parties))}", column=column, row=odd[0] + 1)
    return owner


def text_values(pt_: PartyTable, column: str) -> npt.NDArray[np.object_]:
    """A column as Python strings with ``None`` for missing values."""
    values = pt_.table.column(column).to_pylist()
    return np.asarray([None if v is None else str(v) for v in values], dtype=object)


def feature_names(plain: Sequence[str], levels: Sequence[tuple[str, Sequence[str]]]
                  ) -> list[str]:
    """The model's feature names: the ``plain`` columns, then ``column=level`` for each
    level of each one-hot encoded column.

    Raises
    ------
    InputError
        Two features would have one name (a column literally named ``product=card`` and
        level ``card`` of column ``product``): the message names both.
    """
    seen = {c: f"column {c!r}" for c in plain}
    out = list(plain)
    for c, lvs in levels:
        for lv in lvs:
            name, what = f"{c}={lv}", f"level {lv!r} of column {c!r}"
            if name in seen:
                raise InputError(f"feature name {name!r} is both {seen[name]} and the one-hot "
                                 f"feature of {what} (named column=level): rename the column")
            seen[name] = what
            out.append(name)
    return out


def _label_text(v: Any) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def choose_positive(levels: Sequence[str], configured: str | int | bool | None, *,
                    label: str) -> str:
    """The label level that is the event.

    The configured ``positive`` if given (it must be a level); otherwise ``"1"`` for 0/1
    (or -1/1) or boolean labels, a level from :data:`POSITIVE_WORDS` if exactly one
    matches (``"1"`` beside any other level, such as ``"2"``, is not taken as the event).

    Raises
    ------
    InputError
        The label has more than two levels, only one, or no obvious event level.
    """
    lv = sorted(set(levels))
    if len(lv) != 2:
        raise InputError(f"label {label!r} must have exactly 2 values across all parties, "
                         f"found {len(lv)}: {lv[:10]}")
    if configured is not None:
        want = _label_text(configured)
        if want not in lv and lv == ["0", "1"] and want.lower() in ("true", "false"):
            want = "1" if want.lower() == "true" else "0"  # the file's True/False, read as 1/0
        if want not in lv:
            raise InputError(f"positive = {configured!r} is not a value of label {label!r} "
                             f"(values: {lv})")
        return want
    hits = [v for v in lv if v.lower() in POSITIVE_WORDS]
    # "1" is the event of a 0/1 (or -1/1) label only: of 1/2 codes, 2 is as often the
    # event (1 = good, 2 = bad), so the config must say
    if len(hits) == 1 and (hits[0] != "1" or set(lv) in ({"0", "1"}, {"-1", "1"})):
        return hits[0]
    raise InputError(f"label {label!r} has values {lv}: say which is the event with "
                     "positive = \"...\" in the config")


def label_levels(pt_: PartyTable, label: str) -> list[str]:
    """The distinct label values of one party, as text (missing labels raise)."""
    values = pt_.table.column(label).to_pylist()
    for i, v in enumerate(values):
        if v is None:
            raise pt_.error("missing label value", column=label, row=i + 1)
    return sorted({_label_text(v) for v in values})


def encode_label(pt_: PartyTable, label: str, positive: str) -> npt.NDArray[np.float64]:
    """1.0 where the label equals ``positive``, else 0.0 (missing labels raise)."""
    values = pt_.table.column(label).to_pylist()
    out = np.empty(len(values), dtype=np.float64)
    for i, v in enumerate(values):
        if v is None:
            raise pt_.error("missing label value", column=label, row=i + 1)
        out[i] = 1.0 if _label_text(v) == positive else 0.0
    return out
