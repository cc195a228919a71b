"""Edge cases of masking input, policies, FPE and free-text PII found by a tester.

Unterminated CSV quotes, policy values ``check`` passed and ``apply`` crashed on
(regular expressions, huge integers), FPE changing the case of radix-36 ids, JSON Lines
with non-finite numbers, 15-digit resident ids and full-width digits in text, amounts
read as mobiles, and ``--force`` for an existing output.
"""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from covault.cli import main
from masking.engine import MaskingEngine
from masking.io import iter_batches
from masking.operators import KeyProvider, OpContext, build_operator
from masking.pii.detect import detect_column
from masking.pii.intext import find_in_text
from masking.policy import Policy
from masking.writer import open_writer
from privacy.errors import InputError, PolicyError
from privacy.keys import Kek, Keyset

TODAY = dt.date(2024, 6, 1)


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def policy_file(tmp_path: Path, body: str, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


KEEP = """\
    version: 1
    default: keep
    views:
      v:
        columns: []
    """


def rows(path: Path) -> list[dict[str, object]]:
    return [r for b in iter_batches(path) for r in b.to_pylist()]


# ---- 1. CSV quotes that never close -----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ('cust_id,name\nC1,"unterminated\nC2,珍芳\n', 2),  # the tester's file
        ('a,b\n"x\n1,2\n3,4\n', 2),  # in the first column: swallowed rows hid the width
        ('a,b\n"m\nl",y\n1,"2\n3,4', 4),  # after a closed multi-line field, no final newline
        ('"a,b\n1,2\n', 1),  # in the header
    ],
)
def test_unterminated_quote_is_refused_with_its_line(tmp_path: Path, text: str,
                                                     line: int) -> None:
    path = tmp_path / "u.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match="closing quote never comes") as err:
        rows(path)
    assert err.value.line == line and err.value.file == str(path)


def test_unterminated_quote_cli_exit_2_no_output(tmp_path: Path) -> None:
    src = tmp_path / "u.csv"
    src.write_text('cust_id,name\nC1,"unterminated\nC2,珍芳\n', encoding="utf-8")
    before = src.read_bytes()
    out = tmp_path / "o.csv"
    code, text = invoke("mask", "apply", str(src), "-o", str(out), "-p",
                        str(policy_file(tmp_path, KEEP)), "-v", "v")
    assert code == 2, text
    assert f"{src}:2:" in text and "Traceback" not in text
    assert not out.exists() and src.read_bytes() == before



def test_gbk_csv_names_line_and_column(tmp_path: Path) -> None:
    # a GBK export (what Chinese spreadsheets write): Arrow's "In CSV column #1: Row #2:
    # ... invalid UTF8 data" named neither the line nor the column
    src = tmp_path / "gbk.csv"
    src.write_bytes("cust_id,name\nC1,Wang\nC2,张伟\n".encode("gbk"))
    before = src.read_bytes()
    out = tmp_path / "o.csv"
    code, text = invoke("mask", "apply", str(src), "-o", str(out), "-p",
                        str(policy_file(tmp_path, KEEP)), "-v", "v")
    assert code == 2, text
    assert f"{src}:3: column 'name': not UTF-8 text (a GBK or GB18030 export?" in text
    assert "Traceback" not in text and not out.exists() and src.read_bytes() == before
    with pytest.raises(InputError, match=r"gbk.csv:3: column 'name': not UTF-8"):
        list(iter_batches(src))
    src.write_bytes("姓名,身份证号\n张伟,1\n".encode("gbk"))  # Chinese column names
    with pytest.raises(InputError, match=r"gbk.csv:1: the header row is not UTF-8 text "
                                         r"\(a GBK or GB18030 export\?"):
        list(iter_batches(src))

def test_well_formed_quotes_still_read(tmp_path: Path) -> None:
    path = tmp_path / "ok.csv"
    path.write_text('a,b\r\n"x""",5"3\r\n"p"q,"multi\nline"\r\n"z",2\r', encoding="utf-8")
    assert rows(path) == [{"a": 'x"', "b": '5"3'}, {"a": "pq", "b": "multi\nline"},
                          {"a": "z", "b": "2"}]


def test_multiline_fields_across_arrow_blocks(tmp_path: Path) -> None:
    # > 2 MiB of two-line quoted fields: Arrow's block split used to lose step
    path = tmp_path / "big.csv"
    body = "".join(f'C{i},"a\nb{i}"\n' for i in range(200_000))
    path.write_text("id,name\n" + body, encoding="utf-8")
    got = rows(path)
    assert len(got) == 200_000 and got[-1] == {"id": "C199999", "name": "a\nb199999"}


def test_unclosed_quote_in_a_large_file_is_located(tmp_path: Path) -> None:
    path = tmp_path / "bigu.csv"
    lines = [f"C{i},name{i}" for i in range(400_000)]
    lines[10] = 'C10,"unterminated'
    path.write_text("id,name\n" + "\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        rows(path)
    assert err.value.line == 12 and "quote" in str(err.value)


# ---- 2. policy errors `check` must catch ------------------------------------------------


def test_bad_row_filter_regex_fails_at_load_with_line(tmp_path: Path) -> None:
    path = policy_file(tmp_path, """\
        version: 1
        default: keep
        views:
          v:
            columns:
              - {name: name, operator: keep}
            row_filter: {column: name, matches: "(["}
        """)
    with pytest.raises(PolicyError, match="regular expression") as err:
        Policy.load(path)
    assert err.value.line == 7 and err.value.file == str(path)
    code, text = invoke("mask", "check", str(path))
    assert code == 2 and f"{path}:7:" in text and "Traceback" not in text


def test_valid_regex_still_filters() -> None:
    policy = Policy.from_yaml(textwrap.dedent("""\
        version: 1
        default: keep
        views:
          v:
            row_filter: {column: name, matches: "^[A-Z]\\\\d+$"}
        """))
    out = MaskingEngine(policy).apply(pa.table({"name": ["C1", "x", "D22"]}), "v")
    assert out.column("name").to_pylist() == ["C1", "D22"]


@pytest.mark.parametrize("options", [
    "{keep_first: 100000000000000000000}",
    "{keep_last: -100000000000000000000}",
])
def test_huge_integer_option_fails_at_load_with_line(tmp_path: Path, options: str) -> None:
    path = policy_file(tmp_path, f"""\
        version: 1
        default: keep
        views:
          v:
            columns:
              - {{name: name, operator: mask, options: {options}}}
        """)
    with pytest.raises(PolicyError, match="out of range") as err:
        Policy.load(path)
    assert err.value.line == 6
    code, text = invoke("mask", "check", str(path))
    assert code == 2 and "Traceback" not in text


def test_constant_beyond_int64_fails_at_load(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="64-bit"):
        Policy.load(policy_file(tmp_path, """\
            version: 1
            default: keep
            views:
              v:
                columns:
                  - {name: name, operator: constant, options: {value: 100000000000000000000}}
            """))


def test_large_but_sane_options_still_accepted() -> None:
    op = build_operator("mask", {"keep_first": 2_000_000_000})
    out = op.apply(pa.array(["abcdef"]), OpContext(column="c", context="t.c"))
    assert out.values.to_pylist() == ["abcde*"]


# ---- 3. FPE at radix 36 never changes the case ------------------------------------------


@pytest.fixture()
def ff1_keys() -> KeyProvider:
    return KeyProvider(Keyset.create("FF1_AES256"))


def test_fpe_radix36_refuses_upper_case(ff1_keys: KeyProvider) -> None:
    op = build_operator("fpe", {"radix": 36})
    ctx = OpContext(column="cust_id", context="t.cust_id", keys=ff1_keys)
    result = op.apply(pa.array(["c100001", "C100001", None]), ctx)
    assert result.invalid is not None and result.invalid.tolist() == [False, True, False]
    assert "upper case" in result.reason
    back = op.reverse(result.values.slice(0, 1), ctx)
    assert back.to_pylist() == ["c100001"]


def test_fpe_radix36_uppercase_option_round_trips(ff1_keys: KeyProvider) -> None:
    op = build_operator("fpe", {"radix": 36, "uppercase": True})
    ctx = OpContext(column="cust_id", context="t.cust_id", keys=ff1_keys)
    values = pa.array(["C100001", "AB12CD34", "C100002"])
    result = op.apply(values, ctx)
    assert result.invalid is None
    assert all(v == v.upper() for v in result.values.to_pylist())
    assert op.reverse(result.values, ctx).to_pylist() == values.to_pylist()
    assert op.apply(pa.array(["c100001"]), ctx).invalid.tolist() == [True]  # type: ignore[union-attr]


def test_fpe_radix36_cli_fails_naming_row_and_column(tmp_path: Path) -> None:
    kek_file = tmp_path / "kek.hex"
    kek_file.write_text(bytes(range(32)).hex())
    kek_file.chmod(0o600)
    ks = tmp_path / "ff1.json"
    Keyset.create("FF1_AES256").save(ks, Kek.from_key_file(kek_file))
    src = tmp_path / "c.csv"
    src.write_text("cust_id,name\nc100001,a\nC100001,b\n", encoding="utf-8")
    pol = policy_file(tmp_path, """\
        version: 1
        default: keep
        views:
          v:
            columns:
              - {name: cust_id, operator: fpe, options: {radix: 36}}
        """)
    out = tmp_path / "o.csv"
    code, text = invoke("mask", "apply", str(src), "-o", str(out), "-p", str(pol), "-v", "v",
                        "-k", str(ks), "--kek-file", str(kek_file))
    assert code == 2 and "column 'cust_id'" in text and "row 2" in text
    assert not out.exists()


# ---- 4. JSON Lines: no NaN or infinities in, never invalid JSON out ----------------------


@pytest.mark.parametrize(("line", "number"), [
    ('{"cust_id":"C1","income":1e400}', "1e400"),
    ('{"cust_id":"C1","income":NaN}', "NaN"),
    ('{"cust_id":"C1","income":-Infinity}', "-Infinity"),
    ('{"cust_id":"C1","income":{"a":[Infinity]}}', "Infinity"),
])
def test_jsonl_non_finite_numbers_refused(tmp_path: Path, line: str, number: str) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text('{"cust_id":"C0","income":1.5}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=f"field 'income': the number {number}") as err:
        rows(path)
    assert err.value.line == 2


def test_jsonl_nan_cli_exit_2_no_output(tmp_path: Path) -> None:
    src = tmp_path / "nan.jsonl"
    src.write_text('{"cust_id":"C1","income":NaN}\n', encoding="utf-8")
    out = tmp_path / "o.jsonl"
    code, text = invoke("mask", "apply", str(src), "-o", str(out), "-p",
                        str(policy_file(tmp_path, KEEP)), "-v", "v")
    assert code == 2 and f"{src}:1:" in text and "'income'" in text
    assert not out.exists()


def test_jsonl_writer_refuses_nan_from_parquet(tmp_path: Path) -> None:
    src = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": ["a", "b"], "x": [1.0, float("nan")]}), src)
    out = tmp_path / "o.jsonl"
    code, text = invoke("mask", "apply", str(src), "-o", str(out), "-p",
                        str(policy_file(tmp_path, KEEP)), "-v", "v")
    assert code == 2 and "column 'x'" in text and "row 2" in text
    assert not out.exists()
    ok = tmp_path / "ok.jsonl"
    with open_writer(ok, metadata={}) as w:
        w.write(pa.record_batch({"x": [1.5, None]}))
        w.close()
    assert [json.loads(x) for x in ok.read_text().splitlines()] == [{"x": 1.5}, {"x": None}]


# ---- 5. PII in text: 15-digit ids, full-width digits, amounts ----------------------------


def found(text: str) -> list[tuple[str, str]]:
    return [(m.type, m.text) for m in find_in_text([text], today=TODAY)]


@pytest.mark.parametrize(("text", "want"), [
    ("身份证号码:110105700110237", [("cn_resident_id", "110105700110237")]),
    ("身份证：110105700110237，已核实", [("cn_resident_id", "110105700110237")]),
    ("证件号 110105700110237", [("cn_resident_id", "110105700110237")]),
    ("商户号110105700110237", []),  # no id label: any 15-digit number
    ("110105700110237", []),
    ("身份证号码:990105700110237", []),  # no such province
    ("身份证号码:110105701310237", []),  # month 13
])
def test_fifteen_digit_ids_in_text(text: str, want: list[tuple[str, str]]) -> None:
    assert found(text) == want


def test_full_width_mobile_in_text_is_found_and_masked_as_written() -> None:
    text = "手机１８７６０３２９６６９，金额１２元"
    assert found(text) == [("cn_mobile", "１８７６０３２９６６９")]
    op = build_operator("redact_pii", {})
    out = op.apply(pa.array([text, "身份证号码：１１０１０５７００１１０２３７"]),
                   OpContext(column="r", context="t.r")).values
    assert out.to_pylist() == ["手机[MOBILE]，金额１２元", "身份证号码：[ID]"]


def test_full_width_mobile_column_is_detected() -> None:
    col = pa.array(["１８７６０３２９６６９", "１３８１２３４５６７８", "１５００８４７００５４"])
    assert detect_column(col, name="x").pii == "cn_mobile"


@pytest.mark.parametrize("text", ["金额15008470054元", "¥15008470054", "15008470054元整",
                                  "余额：15008470054"])
def test_amounts_are_not_mobiles(text: str) -> None:
    assert found(text) == []


def test_mobiles_next_to_other_words_still_found() -> None:
    assert found("手机15008470054，付款成功") == [("cn_mobile", "15008470054")]


# ---- 6. an existing output needs --force ------------------------------------------------


def test_existing_output_needs_force(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text("a,b\n1,2\n", encoding="utf-8")
    out = tmp_path / "o.csv"
    out.write_text("precious\n", encoding="utf-8")
    pol = str(policy_file(tmp_path, KEEP))
    code, text = invoke("mask", "apply", str(src), "-o", str(out), "-p", pol, "-v", "v")
    assert code == 2 and "--force" in text
    assert out.read_text() == "precious\n"
    code, text = invoke("mask", "apply", str(src), "-o", str(out), "-p", pol, "-v", "v",
                        "--force")
    assert code == 0, text
    assert rows(out) == [{"a": "1", "b": "2"}]
    code, text = invoke("mask", "apply", str(src), "-o", str(src), "-p", pol, "-v", "v",
                        "--force")
    assert code == 2 and "overwrite the input" in text
