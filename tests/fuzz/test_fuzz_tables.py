"""Fuzz the tables covault reads: CSV, Parquet and JSON Lines through ``masking/io.py``
(what ``scan``, ``mask apply``, ``he encrypt`` and ``psi`` read) and
``federated/data.py`` ``read_table`` (the parties' data of a federated run).

Inputs: random bytes; line-level mutations of valid CSV and JSONL files (a cell replaced
by a boundary value, rows cut, duplicated, swapped, bytes that are not UTF-8); byte-level
mutations of a valid Parquet file; JSONL rows with values of mixed and wrong types; and
Parquet files written with odd schemas (nested, binary, dictionary, decimal, timestamps,
duplicate or empty names, no rows).

A table that reads must be a well-formed Arrow batch sequence: the same column names in
every batch, and (for unmodified files) the original content.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from covault.cli import main
from federated.data import PartyTable, read_table
from masking.io import iter_batches

from ._fuzz import (
    DEEP_LIST,
    HUGE_INT,
    World,
    cli,
    fuzz_settings,
    mutate_bytes,
    mutate_json,
    mutate_text,
    outcome,
    random_bytes,
)

ROWS = [
    {"id_no": "11010519491231002X", "mobile": "13800138000", "name": "张三", "income": 8200,
     "rate": 0.25, "birth": "1949-12-31", "note": "VIP, 柜面"},
    {"id_no": "110101199003077777", "mobile": "+86 139 0013 9000", "name": "李四",
     "income": -3, "rate": None, "birth": "1990-03-07", "note": 'said "hi"\nthen left'},
    {"id_no": None, "mobile": "", "name": "O'Brien", "income": 2**62, "rate": 1e300,
     "birth": None, "note": ""},
]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    d = tmp_path_factory.mktemp("fuzz-tables")
    table = pa.Table.from_pylist(ROWS)
    pq.write_table(table, d / "good.parquet")
    buf = io.BytesIO()
    import pyarrow.csv as pcsv

    pcsv.write_csv(table, buf)
    jsonl = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ROWS)
    return World(dir=d, table=table, csv=buf.getvalue(), jsonl=jsonl.encode(),
                 parquet=(d / "good.parquet").read_bytes())


def _read_all(path: Path, infer: bool) -> list[pa.RecordBatch]:
    batches = list(iter_batches(path, batch_size=2, infer_types=infer))
    names = [b.schema.names for b in batches]
    assert all(n == names[0] for n in names), "batches of one file disagree on columns"
    return batches


def _check(world: World, fmt: str, blob: bytes, *, original: bool = False) -> None:
    path: Path = world["dir"] / f"fuzz.{fmt}"
    path.write_bytes(blob)
    got = outcome(f"table ({fmt})", lambda: _read_all(path, infer=fmt == "csv"))
    if original:
        assert isinstance(got, list) and sum(len(b) for b in got) == len(ROWS)
    party = outcome(f"table ({fmt}, federated read_table)",
                    lambda: read_table(path, party="bank_1")) if fmt != "jsonl" else None
    if isinstance(party, PartyTable):
        assert party.rows > 0 and len(set(party.columns)) == len(party.columns)


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_valid_tables(world: World, fmt: str) -> None:
    _check(world, fmt, world[fmt], original=True)


@fuzz_settings(30)
@given(st.sampled_from(["csv", "jsonl", "parquet"]), random_bytes())
@example("parquet", b"PAR1")
@example("parquet", b"PAR1\x00\x00\x00\x00PAR1")
@example("jsonl", b'{"a": ' + HUGE_INT.encode() + b"}\n")
@example("jsonl", b'{"a": ' + DEEP_LIST.encode() + b"}\n")
@example("jsonl", b'{"a": "\\ud800"}\n')
@example("jsonl", b'{"a": 1}\n{"a": "x"}\n{"a": [1]}\n')
@example("csv", b"a,a\n1,2\n")
@example("csv", b"\xef\xbb\xbfa\n\xff\n")
def test_random_bytes(world: World, fmt: str, blob: bytes) -> None:
    _check(world, fmt, blob)


@fuzz_settings(60)
@given(st.sampled_from(["csv", "jsonl"]), st.data())
def test_text_mutations(world: World, fmt: str, data: st.DataObject) -> None:
    _check(world, fmt, mutate_text(data, world[fmt], sep=b"," if fmt == "csv" else b'": '))


@fuzz_settings(40)
@given(st.data())
def test_jsonl_value_mutations(world: World, data: st.DataObject) -> None:
    lines = [mutate_json(data, r) if data.draw(st.booleans()) else json.dumps(r)
             for r in ROWS]
    _check(world, "jsonl", ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass"))


@fuzz_settings(40)
@given(st.data())
def test_parquet_byte_mutations(world: World, data: st.DataObject) -> None:
    _check(world, "parquet", mutate_bytes(data, world["parquet"], rounds=2))


_ODD_COLUMNS: list[tuple[str, pa.Array]] = [
    ("nested", pa.array([[1, 2], None, []])),
    ("struct", pa.array([{"x": 1}, {"x": None}, None])),
    ("binary", pa.array([b"\xff\x00", b"", None])),
    ("dict", pa.array(["a", "b", "a"]).dictionary_encode()),
    ("decimal", pa.array([1, 2, 3], type=pa.decimal128(38, 10))),
    ("ts", pa.array([0, 2**40, None], type=pa.timestamp("us", tz="Asia/Shanghai"))),
    ("", pa.array([1, 2, 3])),
    ("\x00\u202e", pa.array(["x", "y", "z"])),
    ("bool", pa.array([True, None, False])),
    ("big", pa.array(["x" * 70_000, "y", None])),
]


@fuzz_settings(30)
@given(st.lists(st.sampled_from(range(len(_ODD_COLUMNS))), min_size=0, max_size=5),
       st.integers(0, 3), st.booleans())
def test_parquet_odd_schemas(world: World, picks: list[int], rows: int, dup: bool) -> None:
    cols = [_ODD_COLUMNS[i] for i in picks]
    if dup and cols:
        cols.append(cols[0])
    table = pa.Table.from_arrays([a.slice(0, rows) for _, a in cols],
                                 names=[n for n, _ in cols]) if cols else pa.table({})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    _check(world, "parquet", buf.getvalue())


@fuzz_settings(20, deadline_s=10)
@given(st.sampled_from(["csv", "jsonl", "parquet"]), st.data())
def test_cli_scan(world: World, fmt: str, data: st.DataObject) -> Any:
    blob = (mutate_bytes(data, world[fmt]) if fmt == "parquet" else
            mutate_text(data, world[fmt], sep=b"," if fmt == "csv" else b'": '))
    path: Path = world["dir"] / f"cli.{fmt}"
    path.write_bytes(blob)
    cli(f"table ({fmt})", main, ["scan", str(path), "--sample", "50", "--today", "2026-01-01"])


def _parquet_with(world: World, old: bytes, new: bytes) -> bytes:
    buf = io.BytesIO()
    pq.write_table(world["table"], buf, compression="NONE", use_dictionary=False)
    blob = buf.getvalue()
    assert old in blob and len(old) == len(new)
    return blob.replace(old, new)


@pytest.mark.parametrize("fmt,make", [
    ("csv", lambda w: b"\x80id\n1\n"),
    ("csv", lambda w: b"id,name,id\n1,2,3\n"),
    ("jsonl", lambda w: b'{"id": 1, "name": "\\udc00"}\n'),
    ("jsonl", lambda w: b'{"\\ud800": 1}\n'),
    ("parquet", lambda w: _parquet_with(w, b"O'Brien", b"O\xffBrien")),
    ("parquet", lambda w: _parquet_with(w, b"id_no", b"id\xffno")),
])
def test_found_by_the_campaign(world: World, fmt: str, make: Any) -> None:
    """Reproducers of the table bugs this campaign found, each once a traceback:
    a CSV header or Parquet column name that is not UTF-8 (``UnicodeDecodeError``
    from Arrow), Parquet string values that are not UTF-8 (read unchecked, then
    ``ArrowInvalid`` in `scan`'s detectors), a JSONL lone surrogate escape
    (``UnicodeEncodeError`` from Arrow), and duplicate CSV column names (``KeyError``
    in type inference). Each is now an ``InputError`` naming the file (exit 2)."""
    from privacy.errors import InputError

    blob = make(world)
    path: Path = world["dir"] / f"found.{fmt}"
    path.write_bytes(blob)
    with pytest.raises(InputError, match="found"):
        list(iter_batches(path, infer_types=True))
    if fmt != "jsonl":
        with pytest.raises(InputError, match="found"):
            read_table(path, party="bank_1")
    res = cli(f"table ({fmt})", main, ["scan", str(path), "--today", "2026-01-01"])
    assert res.exit_code == 2


def test_found_row_not_utf8_prints_no_traceback(world: World) -> None:
    """Found by this campaign: a CSV row with too many fields and bytes that are not
    UTF-8 made Arrow print "Exception ignored in ... Traceback ... UnicodeDecodeError" on
    stderr (it decoded the row for covault's invalid-row handler, which only said
    "error", Arrow's default) before the clean error."""
    path: Path = world["dir"] / "found-row.csv"
    path.write_bytes(b"a,b\n1,2\n3,\xff,4\n")
    got = outcome("table (csv)", lambda: _read_all(path, infer=True))
    assert isinstance(got, Exception) and ":3: row has 3 fields" in str(got)


def test_found_unsupported_parquet_type_is_an_input_error(world: World) -> None:
    """Found by this campaign: two bits flipped in a Parquet footer declared a 1-bit
    integer column, and Arrow's ``ArrowNotImplementedError`` (only ``ArrowInvalid`` and
    ``OSError`` were caught) escaped ``scan``; every Arrow error is now an
    ``InputError`` naming the file."""
    from privacy.errors import InputError

    blob = bytearray(world["parquet"])
    blob[1780] ^= 0b101
    path: Path = world["dir"] / "found-type.parquet"
    path.write_bytes(bytes(blob))
    with pytest.raises(InputError, match="found-type.parquet"):
        list(iter_batches(path))
    with pytest.raises(InputError, match="found-type.parquet"):
        read_table(path, party="bank_1")
