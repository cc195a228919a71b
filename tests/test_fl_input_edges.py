"""Federated runs on awkward input: each error names the file, the line (as an editor
counts it, the header being line 1), the column and the value; nothing is silently
dropped or guessed.

Covers a ragged CSV row, a stray word in a numeric column (``N/A`` and the like are
missing values), ``test_party_column`` values that name no party, a column whose name
clashes with a one-hot feature name, ``covault fl report`` on a result without its kind's
keys, and the local-only AUC of a bank whose training rows hold no event.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from fl_inputs import cli_error, preflight_error, setup_run

from covault.cli import main
from federated.config import load_config
from federated.data import inferred_kind, numeric_values, read_table
from federated.preprocess import Transform
from federated.runner import preflight
from privacy.errors import InputError

GOOD = "income,age,state,y\n5200.5,34,BJ,0\n3100,51,SH,1\n,29,,0\n"


# ------------------------------------------------------------------------ ragged rows


def test_row_with_an_extra_field_names_its_line_and_value(
    tmp_path: Path, no_flower: list[str]
) -> None:
    # a quoted field spanning two lines: the ragged row starts on line 5, not line 4
    bad = 'income,age,state,y\n1,30,"Bei\njing",0\n2,40,SH,1\n3,50,SH,0,surplus\n'
    cfg = setup_run(tmp_path, {"bank_1.csv": GOOD, "bank_2.csv": bad})
    before = (tmp_path / "bank_2.csv").read_bytes()
    err = preflight_error(cfg)
    assert err.file == str(tmp_path / "bank_2.csv") and err.line == 5
    assert "row has 5 fields, the header has 4" in str(err) and "'surplus'" in str(err)
    assert "party 'bank_2'" in str(err)
    assert f"{tmp_path / 'bank_2.csv'}:5:" in cli_error(cfg, no_flower)
    assert (tmp_path / "bank_2.csv").read_bytes() == before  # input untouched


def test_row_with_a_missing_field_names_the_missing_column(tmp_path: Path) -> None:
    (tmp_path / "short.csv").write_text("income,age,state,y\n1,30,BJ,0\n2,40\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        read_table(tmp_path / "short.csv", party="bank_1")
    err = info.value
    assert err.line == 3 and err.column == "state"
    assert "row has 2 fields, the header has 4" in str(err)
    assert "['state', 'y']" in str(err)


def test_semicolon_and_tab_delimited_files_are_read(tmp_path: Path) -> None:
    """A header without a comma but with semicolons (or tabs) is that file's delimiter;
    the columns are the other banks' and a ragged row still names its line."""
    semi = GOOD.replace(",", ";")
    tabs = GOOD.replace(",", "\t")
    cfg = setup_run(tmp_path, {"bank_1.csv": GOOD, "bank_2.csv": semi, "bank_3.csv": tabs})
    assert preflight(load_config(cfg)) == {"bank_1": 3, "bank_2": 3, "bank_3": 3}
    pt_ = read_table(tmp_path / "bank_2.csv", party="bank_2")
    assert pt_.columns == ["income", "age", "state", "y"]
    assert numeric_values(pt_, "income")[0] == 5200.5
    (tmp_path / "bank_2.csv").write_text(semi + "1;2;SH;0;9\n", encoding="utf-8")
    err = preflight_error(cfg)
    assert err.line == 5 and "row has 5 fields, the header has 4" in str(err)


# ------------------------------------------------------------- text in numeric columns


def test_stray_text_in_a_numeric_column_names_line_column_and_value(
    tmp_path: Path, no_flower: list[str]
) -> None:
    bad = "income,age,state,y\n5200,34,BJ,0\n3100,unknown,SH,1\n4100,29,SH,0\n3900,41,BJ,1\n"
    cfg = setup_run(tmp_path, {"bank_1.csv": GOOD, "bank_2.csv": bad})
    err = preflight_error(cfg)
    assert err.file == str(tmp_path / "bank_2.csv")
    assert err.line == 3 and err.column == "age"
    assert "'unknown' is not a number" in str(err) and "party 'bank_2'" in str(err)
    stderr = cli_error(cfg, no_flower)
    assert "bank_2.csv:3: column 'age'" in stderr and "'unknown'" in stderr


def test_usual_spellings_of_missing_are_missing(tmp_path: Path) -> None:
    """N/A, #N/A, NA, null... are missing values, as spreadsheets and exports write them."""
    (tmp_path / "t.csv").write_text(
        "income,age,y\n5200,N/A,0\n3100,#N/A,1\n4100,n/a,0\n3900,NA,1\n4000,null,0\n"
        "4200,33,1\n", encoding="utf-8")
    pt_ = read_table(tmp_path / "t.csv", party="bank_1")
    assert inferred_kind(pt_, "age") == "numeric"
    ages = numeric_values(pt_, "age")
    assert np.isnan(ages[:5]).all() and ages[5] == 33


def test_stray_text_at_every_bank_is_not_one_hot_encoded(tmp_path: Path) -> None:
    """Every bank with a stray '-': no kind mismatch to report, the column would have become
    text levels; it is refused, naming the first bank's file and line."""
    bad = "income,age,state,y\n5200,34,BJ,0\n3100,31,SH,1\n4100,-,SH,0\n"
    cfg = setup_run(tmp_path, {"bank_1.csv": bad, "bank_2.csv": bad})
    err = preflight_error(cfg)
    assert err.file == str(tmp_path / "bank_1.csv") and err.line == 4
    assert "'-' is not a number" in str(err)


@pytest.mark.parametrize("cells", [
    ("12.5%", "8%", "40.25%", "12.5%"),           # percent sign
    ("1,200", "35,000", "2,400.50", "1,200"),     # thousands separators
    ("$1200", "$35,000.00", "€ 75", "$1200"),     # currency symbols
    ("0,25", "1,5", "12,75", "0,25"),             # decimal comma
])
def test_formatted_numbers_are_refused_not_one_hot_encoded(
    tmp_path: Path, no_flower: list[str], cells: tuple[str, ...]
) -> None:
    """A column of numbers as a spreadsheet formats them would have become one one-hot
    level per number (repeats keep it from looking like an identifier): refused, naming
    the first such value, its line and column."""
    rows = "".join(f'"{v}",{30 + i},{i % 2}\n' for i, v in enumerate(cells))
    bad = f"util,age,y\n,29,0\n{rows}"
    cfg = setup_run(tmp_path, {"bank_1.csv": bad, "bank_2.csv": bad})
    err = preflight_error(cfg)
    assert err.file == str(tmp_path / "bank_1.csv") and err.line == 3
    assert err.column == "util" and f"{cells[0]!r} is a number written with" in str(err)
    assert "bank_1.csv:3: column 'util'" in cli_error(cfg, no_flower)


def test_numbers_stored_as_text_in_parquet_are_numeric(tmp_path: Path) -> None:
    """A database export's Parquet file may hold numbers in a string column: numeric,
    as the other bank's CSV column is (the error was 'value None is not a number, but 2
    of the column's 2 values are', naming row 0)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"income": ["5200.5", " 3100", None], "age": ["34", "51", "29"],
                             "state": ["BJ", "SH", None], "y": [0, 1, 0]}),
                   tmp_path / "bank_2.parquet")
    cfg = setup_run(tmp_path, {"bank_1.csv": GOOD}, parties=["bank_1.csv", "bank_2.parquet"])
    assert preflight(load_config(cfg)) == {"bank_1": 3, "bank_2": 3}
    pt_ = read_table(tmp_path / "bank_2.parquet", party="bank_2")
    assert inferred_kind(pt_, "income") == inferred_kind(pt_, "age") == "numeric"
    assert numeric_values(pt_, "income")[:2].tolist() == [5200.5, 3100.0]
    assert np.isnan(numeric_values(pt_, "income")[2])


def test_text_column_listed_as_categorical_is_accepted(tmp_path: Path) -> None:
    codes = "income,grade,y\n5200,1,0\n3100,2,1\n4100,A,0\n"
    cfg = setup_run(
        tmp_path, {"bank_1.csv": codes, "bank_2.csv": codes}, extra='categorical = ["grade"]'
    )
    assert preflight(load_config(cfg)) == {"bank_1": 3, "bank_2": 3}


def test_listed_numeric_column_names_the_line_too(tmp_path: Path) -> None:
    bad = "income,age,state,y\n5200,34,BJ,0\n3100,forty,SH,1\n"
    cfg = setup_run(
        tmp_path, {"bank_1.csv": GOOD, "bank_2.csv": bad}, extra='numeric = ["income", "age"]'
    )
    err = preflight_error(cfg)
    assert err.line == 3 and err.column == "age" and "'forty'" in str(err)


# ------------------------------------------------------------------ test_party_column


def test_party_column_value_matching_no_party(tmp_path: Path, no_flower: list[str]) -> None:
    held = (
        "income,age,state,y,bank\n1,30,BJ,0,bank_1\n2,40,SH,1,Bank_2\n"
        "3,50,SH,0,bank_3\n4,60,BJ,1,bank_2\n"
    )
    cfg = setup_run(
        tmp_path,
        {"bank_1.csv": GOOD, "bank_2.csv": GOOD, "held.csv": held},
        extra='test = "held.csv"\ntest_party_column = "bank"',
    )
    err = preflight_error(cfg)
    assert err.file == str(tmp_path / "held.csv") and err.column == "bank"
    assert err.line == 3  # the first unmatched row
    text = str(err)
    assert "'Bank_2'" in text and "'bank_3'" in text and "'bank_1', 'bank_2'" in text
    assert "2 row(s)" in text
    assert "'Bank_2'" in cli_error(cfg, no_flower)


def test_party_column_empty_cell(tmp_path: Path) -> None:
    from federated.data import party_of_rows

    (tmp_path / "held.csv").write_text("x,bank\n1,bank_1\n2,\n", encoding="utf-8")
    pt = read_table(tmp_path / "held.csv", party="test")
    with pytest.raises(InputError, match="1 empty cell") as info:
        party_of_rows(pt, "bank", ["bank_1", "bank_2"])
    assert info.value.line == 3
    owner = party_of_rows(read_table(tmp_path / "held.csv", party="test"), "x", ["1", "2"])
    assert owner.tolist() == ["1", "2"]


# ------------------------------------------------------------------ one-hot name clash


def test_column_named_like_a_one_hot_feature(tmp_path: Path, no_flower: list[str]) -> None:
    data = (
        "income,product type,product type=信用卡,y\n5200,信用卡,1,0\n3100,房贷,0,1\n"
        "4100,信用卡,1,0\n"
    )
    cfg = setup_run(tmp_path, {"bank_1.csv": data, "bank_2.csv": data})
    err = preflight_error(cfg)
    text = str(err)
    assert "'product type=信用卡'" in text
    assert "column 'product type=信用卡'" in text
    assert "level '信用卡' of column 'product type'" in text
    assert "'product type=信用卡'" in cli_error(cfg, no_flower)


def test_transform_refuses_two_features_of_one_name() -> None:
    """The vertical path fits a Transform per party: the same check."""
    with pytest.raises(InputError, match="level 'b=c' of column 'a'"):
        Transform("y", "1", [], [("a=b", ["c"]), ("a", ["b=c"])])
    with pytest.raises(InputError, match="column 'a=x'"):
        Transform("y", "1", [("a=x", 0.0, 0.0, 1.0)], [("a", ["x", "y"])])
    assert Transform("y", "1", [("a", 0.0, 0.0, 1.0)], [("b", ["x"])]).feature_names == ["a", "b=x"]


# ----------------------------------------------------------------------- fl report


@pytest.mark.parametrize(
    ("result", "needs"),
    [
        (
            {"kind": "horizontal"},
            ["'rounds'", "'aggregation'", "'global'", "'parties'", "'history'"],
        ),
        ({"kind": "vertical", "global": {}, "parties": {}}, ["'history'", "'epochs'"]),
        (
            {
                "kind": "horizontal",
                "rounds": 3,
                "aggregation": "fedavg",
                "global": [],
                "parties": {},
                "history": [],
            },
            ["'global' must be a JSON object, not array"],
        ),
        ({"kind": "diagonal"}, ["'diagonal'", "horizontal"]),
    ],
)
def test_report_of_a_hollow_result_exits_2(
    tmp_path: Path, result: dict[str, Any], needs: list[str]
) -> None:
    path = tmp_path / "result.json"
    path.write_text(json.dumps(result), encoding="utf-8")
    out = tmp_path / "report.html"
    r = CliRunner().invoke(main, ["fl", "report", str(path), "-o", str(out)])
    assert r.exit_code == 2, r.output
    assert str(path) in r.stderr
    for word in needs:
        assert word in r.stderr, r.stderr
    assert not out.exists()


def test_report_of_a_whole_vertical_tree_result(tmp_path: Path) -> None:
    path = tmp_path / "result.json"
    path.write_text(
        json.dumps(
            {
                "kind": "vertical",
                "model": "gbdt",
                "rounds": 2,
                "global": {"auc": 0.7},
                "parties": {},
                "history": [],
            }
        ),
        encoding="utf-8",
    )
    r = CliRunner().invoke(main, ["fl", "report", str(path), "-o", str(tmp_path / "r.html")])
    assert r.exit_code == 0, r.output


# --------------------------------------------------- local AUC of a bank without events


def test_local_auc_is_null_for_a_bank_without_events(tmp_path: Path) -> None:
    """A bank whose training rows hold no default has no local model: its local-only AUC
    is null (as the trees report it), the federated AUC on its test rows is still given,
    and the text and HTML outputs show a dash."""
    pytest.importorskip("flwr")
    from csv_rows import rewrite

    from federated.sample import write_loan_books

    cfg = write_loan_books(tmp_path, [60, 80], test_rows=80, rounds=2, seed=3)
    rewrite(tmp_path / "bank_1.csv", lambda rows: [r.update(default="no") for r in rows])
    out = tmp_path / "result.json"
    r = CliRunner().invoke(main, ["fl", "run", str(cfg), "-o", str(out)])
    assert r.exit_code == 0, r.output
    parties = json.loads(out.read_text(encoding="utf-8"))["parties"]
    assert parties["bank_1"]["local_auc"] is None
    assert parties["bank_1"]["auc"] is not None
    assert parties["bank_2"]["local_auc"] is not None
    assert re.search(r"bank_1\s*│\s*60\s*│\s*[0-9.]+\s*│\s*—", r.stdout), r.stdout
    html = tmp_path / "report.html"
    r = CliRunner().invoke(main, ["fl", "report", str(out), "-o", str(html)])
    assert r.exit_code == 0, r.output
    row = re.search(r"<tr[^>]*><td>bank_1</td>.*?</tr>", html.read_text(encoding="utf-8"))
    assert row and row.group(0).count("—") == 2  # local-only AUC and gain


def test_scores_on_test_rows_leaves_out_the_undefined_local_auc() -> None:
    from federated.horizontal.client import scores_on_test_rows

    rng = np.random.default_rng(0)
    X, Xt = rng.normal(size=(50, 3)), rng.normal(size=(40, 3))
    yt = (Xt[:, 0] > 0).astype(float)
    w = np.array([1.0, 0.0, 0.0, 0.0])
    none = scores_on_test_rows(X, np.zeros(50), Xt, yt, w, C=1.0)
    assert set(none) == {"auc"}
    both = scores_on_test_rows(X, (X[:, 0] > 0).astype(float), Xt, yt, w, C=1.0)
    assert set(both) == {"auc", "local-auc"} and both["local-auc"] > 0.9
    assert scores_on_test_rows(X, np.zeros(50), Xt, np.ones(40), w, C=1.0) == {}


def test_a_folder_given_as_data_is_named_as_such(tmp_path: Path) -> None:
    (tmp_path / "books").mkdir()
    with pytest.raises(InputError, match="a folder, not a data file") as info:
        read_table(tmp_path / "books", party="bank_1")
    assert info.value.file == str(tmp_path / "books")


def test_a_row_index_without_a_name_is_not_a_feature(
    tmp_path: Path, no_flower: list[str]
) -> None:
    """pandas' ``to_csv`` writes its row index under an empty header cell: refused,
    naming the party, the file and the column's place, rather than trained on."""
    indexed = "".join(f"{i}," + line + "\n" for i, line in enumerate(GOOD.splitlines()))
    indexed = indexed.replace("0,income", ",income", 1)
    cfg = setup_run(tmp_path, {"bank_1.csv": GOOD, "bank_2.csv": indexed})
    err = preflight_error(cfg)
    assert err.file == str(tmp_path / "bank_2.csv") and "party 'bank_2'" in str(err)
    assert "column 1 of the header has no name" in str(err)
    assert "bank_2.csv: party 'bank_2': column 1" in cli_error(cfg, no_flower)
    # the file itself reads (a test or score file's extra column is no feature) ...
    assert read_table(tmp_path / "bank_2.csv", party="bank_2").columns[0] == ""
    # ... and a config that excludes the column trains without it
    cfg = setup_run(tmp_path, {"bank_1.csv": indexed, "bank_2.csv": indexed},
                    extra='exclude = [""]')
    assert preflight(load_config(cfg)) == {"bank_1": 3, "bank_2": 3}


def test_a_latin_1_file_is_refused_not_read_as_bytes(
    tmp_path: Path, no_flower: list[str]
) -> None:
    """Arrow reads a column that is not UTF-8 as bytes: its levels would have been
    "b'Z\\xfcrich'", "b'SH'", matching no other bank's; refused, naming the cell."""
    cfg = setup_run(tmp_path, {"bank_1.csv": GOOD, "bank_2.csv": GOOD})
    latin = "income,age,state,y\n5200,34,SH,0\n3100,51,Zürich,1\n4100,29,BJ,0\n"
    (tmp_path / "bank_2.csv").write_bytes(latin.encode("latin-1"))
    err = preflight_error(cfg)
    assert err.file == str(tmp_path / "bank_2.csv") and err.line == 3
    assert err.column == "state" and "'Zürich' (read as Latin-1) is not UTF-8" in str(err)
    assert "bank_2.csv:3: column 'state'" in cli_error(cfg, no_flower)


def test_a_spreadsheet_workbook_is_named_as_such(tmp_path: Path) -> None:
    """An xlsx (a zip archive) read as CSV gave a ragged-row error about a column named
    'PK\\x03\\x04...': it is refused as a workbook, naming the party and the file."""
    import zipfile

    with zipfile.ZipFile(tmp_path / "bank_1.xlsx", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types>" + "<Override/>" * 50 + "</Types>")
        z.writestr("xl/worksheets/sheet1.xml", GOOD * 20)
    with pytest.raises(InputError, match="party 'bank_1': a spreadsheet workbook") as info:
        read_table(tmp_path / "bank_1.xlsx", party="bank_1")
    assert info.value.file == str(tmp_path / "bank_1.xlsx") and info.value.line is None


def test_positive_and_exclude_errors_name_their_config_line(tmp_path: Path) -> None:
    cfg = setup_run(tmp_path, {"bank_1.csv": GOOD, "bank_2.csv": GOOD},
                    extra='positive = "maybe"')
    err = preflight_error(cfg)
    assert err.file == str(cfg) and err.line == 4 and "positive = 'maybe'" in str(err)
    cfg = setup_run(tmp_path, {"bank_1.csv": GOOD, "bank_2.csv": GOOD},
                    extra='exclude = ["ghost"]')
    err = preflight_error(cfg)
    assert err.file == str(cfg) and err.line == 4 and "'ghost'" in str(err)
