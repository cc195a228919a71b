"""CSV column types survive masking into Parquet and JSON Lines (issue 13, item 3).

Before, every CSV column was read as text and came out of Parquet and JSON Lines as
strings ("52000"). Now types are inferred conservatively or declared in the policy.
"""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from covault.cli import main
from masking.coltypes import TypeInference, parse_type
from masking.files import mask_file
from masking.io import iter_batches
from masking.policy import Policy
from privacy.errors import InputError, PolicyError
from privacy.keys import Keyset

CSV = """\
cust,postcode,age,income,rate,vip,opened,note,card,mobile,mixed,signed,big
C1,010020,31,52000,0.25,true,2020-01-05,a,6222021234567890123,13812345678,5,+5,1234567890123456
C2,200001,,61000.5,1.5,False,2021-12-31,b,6222021234567890124,13912345678,1.5,-3,1
C3,100000,45,-70,3,TRUE,,c,6222021234567890125,13712345678,7,4,2
"""

KEEP_ALL = "version: 1\ndefault: keep\n"


@pytest.fixture()
def data(tmp_path: Path) -> Path:
    path = tmp_path / "in.csv"
    path.write_text(CSV, encoding="utf-8")
    return path


def run(policy: str, src: Path, out: Path, **kw: object) -> None:
    mask_file(Policy.from_yaml(textwrap.dedent(policy)), src, out, view=None, **kw)  # type: ignore[arg-type]


def test_parquet_keeps_inferred_types(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.parquet"
    run(KEEP_ALL, data, out)
    table = pq.read_table(out)
    types = {f.name: f.type for f in table.schema}
    assert types["age"] == pa.int64() and types["income"] == pa.float64()
    assert types["rate"] == pa.float64() and types["vip"] == pa.bool_()
    assert types["opened"] == pa.date32() and types["mixed"] == pa.float64()
    # leading zeros, signs, 16+ digits and identifiers stay text
    for name in ("cust", "postcode", "note", "card", "mobile", "signed", "big"):
        assert types[name] == pa.string(), name
    rows = table.to_pylist()
    assert rows[0]["postcode"] == "010020" and rows[0]["age"] == 31
    assert rows[1]["age"] is None and table.schema.field("age").nullable  # empty cell: null
    assert rows[0]["opened"] == dt.date(2020, 1, 5) and rows[2]["opened"] is None
    assert [r["vip"] for r in rows] == [True, False, True]
    assert rows[1]["income"] == 61000.5 and rows[2]["income"] == -70.0


def test_jsonl_writes_numbers_not_strings(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    run(KEEP_ALL, data, out)
    first = json.loads(out.read_text(encoding="utf-8").splitlines()[0])
    assert first["age"] == 31 and first["rate"] == 0.25 and first["vip"] is True
    assert first["postcode"] == "010020" and first["opened"] == "2020-01-05"
    assert first["card"] == "6222021234567890123"


def test_csv_to_csv_keeps_the_text(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    run(KEEP_ALL, data, out)
    back = [line.split(",") for line in out.read_text(encoding="utf-8").splitlines()]
    orig = [line.split(",") for line in CSV.splitlines()]
    cols = orig[0]
    for name in ("cust", "postcode", "age", "card", "mobile", "signed", "opened"):
        i, j = cols.index(name), [c.strip('"') for c in back[0]].index(name)
        assert [r[i] for r in orig[1:]] == [r[j].strip('"') for r in back[1:]], name


def test_masked_columns_follow_their_operator(data: Path, tmp_path: Path) -> None:
    policy = """\
    version: 1
    default: keep
    columns:
      - {name: cust, operator: tokenize}
      - {name: income, operator: round, options: {to: 1000}}
      - {name: age, operator: mask, options: {keep_first: 1}}
    """
    out = tmp_path / "out.parquet"
    run(policy, data, out, keyset=Keyset.create("AES256_SIV"))
    types = {f.name: f.type for f in pq.read_table(out).schema}
    assert types["cust"] == pa.string() and types["income"] == pa.int64()
    assert types["age"] == pa.string() and types["rate"] == pa.float64()


def test_declared_types_win(data: Path, tmp_path: Path) -> None:
    policy = """\
    version: 1
    default: keep
    columns:
      - {name: age, type: string}
      - {name: postcode, type: int64}
      - {name: income, type: "decimal(12,2)"}
      - {glob: "ca*", type: string}
      - {name: mixed, type: string}
    """
    out = tmp_path / "out.parquet"
    run(policy, data, out)
    table = pq.read_table(out)
    types = {f.name: f.type for f in table.schema}
    assert types["age"] == pa.string() and types["postcode"] == pa.int64()
    assert types["income"] == pa.decimal128(12, 2) and types["mixed"] == pa.string()
    assert table.column("income").to_pylist()[1] == Decimal("61000.50")
    jsonl = tmp_path / "out.jsonl"
    run(policy, data, jsonl)
    assert json.loads(jsonl.read_text(encoding="utf-8").splitlines()[1])["income"] == 61000.5


def test_declared_type_that_does_not_fit_names_row_and_column(data: Path,
                                                              tmp_path: Path) -> None:
    policy = "version: 1\ndefault: keep\ncolumns:\n  - {name: note, type: int64}\n"
    out = tmp_path / "out.parquet"
    with pytest.raises(InputError) as err:
        run(policy, data, out)
    msg = str(err.value)
    assert "column 'note'" in msg and "row 1" in msg and "'a' is not a valid int64" in msg
    assert "<policy>:4" in msg and not out.exists()
    src = tmp_path / "policy.yaml"
    src.write_text(policy, encoding="utf-8")
    res = CliRunner().invoke(main, ["mask", "apply", str(data), "-o", str(out), "-p",
                                    str(src)])
    assert res.exit_code == 2 and "column 'note'" in res.output and not out.exists()


def test_inference_reads_the_whole_file(tmp_path: Path) -> None:
    """A value far down the file that is not a number keeps the column text (no error,
    no value lost), even when the first batches are all numbers."""
    src = tmp_path / "late.csv"
    src.write_text("n,m\n" + "".join(f"{i},{i}\n" for i in range(1, 10)) + "0042,x\n")
    out = tmp_path / "late.parquet"
    run(KEEP_ALL, src, out, batch_size=2)
    table = pq.read_table(out)
    assert table.schema.field("n").type == pa.string()
    assert table.column("n").to_pylist()[-1] == "0042"
    assert table.schema.field("m").type == pa.string()


@pytest.mark.parametrize("values,expected", [
    (["1", "22", "-3", None], "int64"),
    (["007", "12"], "string"),
    (["+1"], "string"),
    (["1.50", "2"], "float64"),
    (["1e3", "2.5E-2"], "float64"),
    (["1234567890123456"], "string"),
    (["0.1234567890123456"], "string"),
    (["nan", "1"], "string"),
    (["inf"], "string"),
    (["true", "FALSE", "True"], "bool"),
    (["1", "0", "true"], "string"),
    (["2024-02-29", "1999-12-31"], "date"),
    (["2023-02-29"], "string"),
    (["2024-1-5"], "string"),
    ([" 1"], "string"),
    ([None, None], "string"),
])
def test_inference_rules(values: list[str | None], expected: str) -> None:
    inference = TypeInference(["c"])
    inference.update(pa.record_batch([pa.array(values, pa.string())], names=["c"]))
    assert inference.types()["c"] == parse_type(expected)


def test_type_declarations_are_validated(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="unknown column type 'money'"):
        Policy.from_yaml("version: 1\ncolumns:\n  - {name: a, type: money}\n")
    with pytest.raises(PolicyError, match="by name or glob"):
        Policy.from_yaml("version: 1\ncolumns:\n  - {pii: cn_mobile, type: string}\n")
    with pytest.raises(PolicyError, match="belong in the top-level columns"):
        Policy.from_yaml("version: 1\nviews:\n  v:\n    columns:\n"
                         "      - {name: a, operator: keep, type: int64}\n")
    with pytest.raises(PolicyError, match="precision"):
        Policy.from_yaml("version: 1\ncolumns:\n  - {name: a, type: 'decimal(40,2)'}\n")


def test_readers_default_to_text(data: Path) -> None:
    """Only masking runs type columns; scan, risk and the readers' default stay text."""
    batch = next(iter_batches(data))
    assert all(f.type == pa.string() for f in batch.schema)
    typed = next(iter_batches(data, infer_types=True))
    assert typed.schema.field("age").type == pa.int64()
