"""Bad federated configs and party data fail before any Flower process starts.

Each case goes through ``federated.runner.preflight`` (the error must name the party
and, where there is one, the file) and through ``covault fl run`` (exit code 2, the
message on stderr, no Flower process started, no --out file written).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from fl_inputs import cli_error, preflight_error, setup_run

from covault.cli import main
from federated.config import load_config
from federated.data import read_table
from federated.preprocess import describe_party, merge_schemas
from federated.runner import preflight

GOOD = "income,age,state,y\n5200.5,34,BJ,0\n3100,51,SH,1\n,29,,0\n"


BAD_DATA = {
    # name: (files, extra config, party the message must name, text it must contain)
    "missing data file": ({"bank_1.csv": GOOD}, "", "bank_2", "data file not found"),
    "another schema": ({"bank_1.csv": GOOD, "bank_2.csv": GOOD,
                        "bank_3.csv": "income,state,y\n1,BJ,0\n2,SH,1\n"},
                       "", "bank_3", "missing column 'age'"),
    "extra column": ({"bank_1.csv": GOOD, "bank_2.csv": GOOD,
                      "bank_3.csv": "income,age,state,branch,y\n1,30,BJ,7,0\n2,40,SH,8,1\n"},
                     "", "bank_3", "'branch'"),
    "text in a numeric column": ({"bank_1.csv": GOOD,
                                  "bank_2.csv": "income,age,state,y\n1,30,BJ,0\n2,forty,SH,1\n"},
                                 "", "bank_2", "'age' holds text"),
    "text in a listed numeric column": ({"bank_1.csv": GOOD,
                                         "bank_2.csv": "income,age,state,y\n1,30,BJ,0\n"
                                                       "2,forty,SH,1\n"},
                                        'numeric = ["income", "age"]', "bank_2",
                                        "'forty' is not a number"),
    "header only": ({"bank_1.csv": GOOD, "bank_2.csv": "income,age,state,y\n"},
                    "", "bank_2", "no rows"),
    "empty file": ({"bank_1.csv": GOOD, "bank_2.csv": ""}, "", "bank_2", "cannot read"),
    "three label values": ({"bank_1.csv": GOOD, "bank_2.csv": GOOD,
                            "bank_3.csv": "income,age,state,y\n1,30,BJ,2\n2,40,SH,1\n"},
                           "", "bank_3", "exactly 2 values"),
    "missing label value": ({"bank_1.csv": GOOD, "bank_2.csv": "income,age,state,y\n1,30,BJ,\n"},
                            "", "bank_2", "missing label value"),
    "label column absent": ({"bank_1.csv": GOOD, "bank_2.csv": "income,age,state\n1,30,BJ\n"},
                            "", "bank_2", "label column 'y' is missing"),
    "duplicate columns": ({"bank_1.csv": GOOD,
                           "bank_2.csv": "income,age,age,y\n1,30,31,0\n"},
                          "", "bank_2", "duplicate column"),
    "ragged row": ({"bank_1.csv": GOOD, "bank_2.csv": "income,age,state,y\n1,30,BJ,0\n2,3\n"},
                   "", "bank_2", "cannot read"),
    "infinite value": ({"bank_1.csv": GOOD, "bank_2.csv": "income,age,state,y\ninf,30,BJ,0\n"},
                       "", "bank_2", "infinite"),
    "listed column absent": ({"bank_1.csv": GOOD, "bank_2.csv": GOOD},
                             'categorical = ["branch"]', "bank_1", "'branch'"),
}


@pytest.mark.parametrize("case", list(BAD_DATA))
def test_bad_party_data_names_the_party(tmp_path: Path, case: str,
                                        no_flower: list[str]) -> None:
    files, extra, party, text = BAD_DATA[case]
    names = ["bank_1.csv", "bank_2.csv"] if case == "missing data file" else None
    cfg = setup_run(tmp_path, files, extra=extra, parties=names)
    err = preflight_error(cfg)
    assert f"'{party}'" in str(err), str(err)
    assert text in str(err), str(err)
    if err.file is not None:  # a message from reading the file names the file
        assert err.file == str(tmp_path / f"{party}.csv")
    stderr = cli_error(cfg, no_flower)
    assert f"'{party}'" in stderr and text in stderr


def test_three_label_values_name_the_party_holding_the_odd_one(tmp_path: Path) -> None:
    files, _, _, _ = BAD_DATA["three label values"]
    err = preflight_error(setup_run(tmp_path, files))
    assert str(err).startswith("party 'bank_3': label 'y' has the value '2'")


def test_good_bad_label_picks_bad(tmp_path: Path) -> None:
    files = {"bank_1.csv": "x,y\n1,good\n2,bad\n", "bank_2.csv": "x,y\n3,good\n4,good\n"}
    cfg = load_config(setup_run(tmp_path, files))
    assert preflight(cfg) == {"bank_1": 2, "bank_2": 2}
    schemas = {p.name: describe_party(read_table(p.data, party=p.name), label="y")
               for p in cfg.party}
    assert merge_schemas(schemas, label="y", positive=None).positive == "bad"


def test_a_b_label_asks_for_positive(tmp_path: Path, no_flower: list[str]) -> None:
    files = {"bank_1.csv": "x,y\n1,A\n2,B\n", "bank_2.csv": "x,y\n3,A\n4,A\n"}
    cfg = setup_run(tmp_path, files)
    err = preflight_error(cfg)
    assert "positive = " in str(err) and "'A', 'B'" in str(err)
    assert "positive = " in cli_error(cfg, no_flower)
    ok = setup_run(tmp_path, files, extra='positive = "B"')
    assert preflight(load_config(ok)) == {"bank_1": 2, "bank_2": 2}


def test_positive_not_a_label_value(tmp_path: Path) -> None:
    files = {"bank_1.csv": "x,y\n1,A\n2,B\n", "bank_2.csv": "x,y\n3,A\n4,A\n"}
    err = preflight_error(setup_run(tmp_path, files, extra='positive = "C"'))
    assert "positive = 'C'" in str(err)


def test_parquet_party_works_like_csv(tmp_path: Path) -> None:
    setup_run(tmp_path, {"bank_1.csv": GOOD, "bank_2.csv": GOOD})
    pq.write_table(pcsv.read_csv(tmp_path / "bank_2.csv"), tmp_path / "bank_2.parquet")
    cfg = setup_run(tmp_path, {"bank_1.csv": GOOD}, parties=["bank_1.csv", "bank_2.parquet"])
    assert preflight(load_config(cfg)) == {"bank_1": 3, "bank_2": 3}
    # a Parquet file whose numeric column holds text is caught the same way
    pq.write_table(pa.table({"income": ["1", "x"], "age": [30, 40], "state": ["BJ", "SH"],
                             "y": [0, 1]}), tmp_path / "bank_2.parquet")
    err = preflight_error(cfg)
    assert "'bank_2'" in str(err) and "'income' holds text" in str(err)


def test_empty_cells_are_missing_values(tmp_path: Path) -> None:
    sparse = "income,age,state,y\n,,,0\n1,,BJ,1\n"
    cfg = setup_run(tmp_path, {"bank_1.csv": GOOD, "bank_2.csv": sparse})
    assert preflight(load_config(cfg)) == {"bank_1": 3, "bank_2": 2}


def test_test_file_missing_the_party_column(tmp_path: Path, no_flower: list[str]) -> None:
    files = {"bank_1.csv": GOOD, "bank_2.csv": GOOD, "held_out.csv": GOOD}
    cfg = setup_run(tmp_path, files, extra='test = "held_out.csv"\ntest_party_column = "bank"')
    err = preflight_error(cfg)
    assert "'bank'" in str(err) and str(tmp_path / "held_out.csv") in str(err)
    assert "'bank'" in cli_error(cfg, no_flower)


def test_test_file_missing_a_feature(tmp_path: Path) -> None:
    files = {"bank_1.csv": GOOD, "bank_2.csv": GOOD, "held_out.csv": "income,state,y\n1,BJ,0\n"}
    err = preflight_error(setup_run(tmp_path, files, extra='test = "held_out.csv"'))
    assert "'age'" in str(err) and "held_out.csv" in str(err)


def test_missing_test_file(tmp_path: Path) -> None:
    files = {"bank_1.csv": GOOD, "bank_2.csv": GOOD}
    err = preflight_error(setup_run(tmp_path, files, extra='test = "nope.csv"'))
    assert "not found" in str(err) and "nope.csv" in str(err)


def test_data_path_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "bank_2.csv").mkdir()
    cfg = setup_run(tmp_path, {"bank_1.csv": GOOD}, parties=["bank_1.csv", "bank_2.csv"])
    err = preflight_error(cfg)
    assert "'bank_2'" in str(err)


# --- bad configs through the CLI --------------------------------------------------------


CONFIG_CASES = {
    "unknown key": ('lables = "z"', "unknown key 'lables'"),
    "unknown method": ('[aggregation]\nmethod = "fedsgd"', "aggregation.method"),
    "vertical without id": (None, "a vertical run needs 'id'"),
    "key holder": ('[aggregation]\nmethod = "ckks"\nkey_holder = "bank_9"', "'bank_9'"),
    "fixed clipping": ('[dp]\nnoise_multiplier = 1.0\nclipping = "fixed"', "clipping_norm"),
    "dp with krum": ('[aggregation]\nmethod = "krum"\n[dp]\nnoise_multiplier = 1.0', "'krum'"),
    "toml syntax": ("rounds = = 3", "not valid TOML"),
}


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_bad_config_exits_2(tmp_path: Path, case: str, no_flower: list[str]) -> None:
    extra, text = CONFIG_CASES[case]
    cfg = setup_run(tmp_path, {"bank_1.csv": GOOD, "bank_2.csv": GOOD}, extra=extra or "")
    if case == "vertical without id":
        cfg.write_text(cfg.read_text().replace('"horizontal"', '"vertical"'))
    stderr = cli_error(cfg, no_flower)
    assert text in stderr and str(cfg) in stderr


def test_unknown_key_names_the_line_on_the_cli(tmp_path: Path, no_flower: list[str]) -> None:
    cfg = setup_run(tmp_path, {"bank_1.csv": GOOD, "bank_2.csv": GOOD})
    cfg.write_text(cfg.read_text() + 'weight = 2\n')
    line = len(cfg.read_text().splitlines())
    stderr = cli_error(cfg, no_flower)
    assert f"{cfg}:{line}: party[1]: unknown key 'weight'" in stderr


def test_missing_config_exits_2(tmp_path: Path, no_flower: list[str]) -> None:
    stderr = cli_error(tmp_path / "absent.toml", no_flower)
    assert "absent.toml" in stderr and "not found" in stderr


def test_existing_out_file_is_kept(tmp_path: Path, no_flower: list[str]) -> None:
    cfg = setup_run(tmp_path, {"bank_1.csv": GOOD, "bank_2.csv": GOOD})
    out = tmp_path / "result.json"
    out.write_text("keep me")
    r = CliRunner().invoke(main, ["fl", "run", str(cfg), "-o", str(out)])
    assert r.exit_code == 2 and "--force" in r.stderr
    assert out.read_text() == "keep me" and not no_flower


def test_inputs_are_not_modified(tmp_path: Path, no_flower: list[str]) -> None:
    files = {"bank_1.csv": GOOD, "bank_2.csv": "income,age,state,y\n1,30,BJ,0\n2,forty,SH,1\n"}
    cfg = setup_run(tmp_path, files)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    cli_error(cfg, no_flower)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
