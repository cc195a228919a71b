"""The masking engine: plans, kinds of tables, invalid values, joins across banks, files."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.compute  # noqa: F401
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from covault.demo.context import sample_customers, sample_customers_path
from masking.engine import METADATA_HASH, METADATA_VIEW, MaskingEngine
from masking.files import mask_file
from masking.policy import Policy
from privacy.errors import InputError, KeysetError, PolicyError, RiskGateError
from privacy.keys import Kek, Keyset

TODAY = dt.date(2026, 1, 1)


@pytest.fixture(scope="module")
def customers() -> pa.Table:
    return sample_customers()


@pytest.fixture(scope="module")
def keys() -> list[Keyset]:
    return [Keyset.create(t) for t in ("AES256_SIV", "HMAC_SHA256")]


def test_preset_display_on_sample(customers: pa.Table) -> None:
    engine = MaskingEngine(Policy.preset("jrt0171"), today=TODAY)
    out = engine.apply(customers, view="display")
    assert out.num_rows == customers.num_rows
    assert out.column_names == ["name", "id_no", "mobile", "card_no", "address", "birth_date",
                                "email"]  # input order; non-PII dropped (default: drop)
    row = out.slice(0, 1).to_pylist()[0]
    src = customers.slice(0, 1).to_pylist()[0]
    assert row["mobile"] == src["mobile"][:3] + "****" + src["mobile"][-4:]
    assert row["id_no"] == src["id_no"][:6] + "*" * 8 + src["id_no"][-4:]
    assert row["card_no"].startswith(src["card_no"][:6]) and row["card_no"].endswith(
        src["card_no"][-4:])
    assert row["name"] == src["name"][0] + "*" * (len(src["name"]) - 1)
    meta = out.schema.metadata
    assert meta[METADATA_VIEW.encode()] == b"display"
    assert meta[METADATA_HASH.encode()] == Policy.preset("jrt0171").hash.encode()


def test_default_keep_and_declared_types(customers: pa.Table) -> None:
    policy = Policy.from_yaml("""
version: 1
default: keep
columns:
  - {name: customer_id, pii: cn_mobile}
  - {pii: cn_mobile, operator: redact}
  - {name: id_no, operator: drop}
""")
    out = MaskingEngine(policy, today=TODAY).apply(customers)
    names = [n for n in customers.column_names if n != "id_no"]
    assert out.column_names == names
    assert set(out.column("customer_id").to_pylist()) == {"******"}  # declared, not detected
    assert set(out.column("mobile").to_pylist()) == {"******"}  # detected
    assert out.column("city").equals(customers.column("city"))


def test_pandas_polars_and_batches_come_back_as_they_came(customers: pa.Table) -> None:
    engine = MaskingEngine(Policy.preset("jrt0171"), today=TODAY)
    small = customers.slice(0, 50)
    df = engine.apply(small.to_pandas(), view="display")
    assert isinstance(df, pd.DataFrame) and len(df) == 50 and "mobile" in df.columns
    pdf = engine.apply(pl.from_arrow(small), view="display")
    assert isinstance(pdf, pl.DataFrame) and pdf.height == 50
    assert pdf["mobile"].to_list() == df["mobile"].tolist()
    batch = engine.apply(small.to_batches()[0], view="display")
    assert isinstance(batch, pa.RecordBatch) and batch.num_rows == 50
    with pytest.raises(InputError, match="cannot mask a list"):
        engine.apply([1, 2], view="display")


def test_rule_naming_a_missing_column() -> None:
    policy = Policy.from_yaml("version: 1\ncolumns:\n  - {name: nope, operator: keep}\n",
                              source="p.yaml")
    with pytest.raises(PolicyError, match=r"p.yaml:3: rule 'name: nope': names column 'nope'"):
        MaskingEngine(policy).apply(pa.table({"a": ["x"]}))
    relaxed = Policy.from_yaml(
        "version: 1\ndefault: keep\ncolumns:\n  - {name: nope, operator: keep, required: false}\n")
    assert MaskingEngine(relaxed).apply(pa.table({"a": ["x"]})).num_rows == 1



def test_rule_naming_a_column_written_with_spaces_or_another_case() -> None:
    # a header cell "id_no " (or an unnamed row index) was invisible in the error's list
    policy = Policy.from_yaml("version: 1\ncolumns:\n  - {name: id_no, operator: mask}\n",
                              source="p.yaml")
    table = pa.table({"": ["0"], "name": ["x"], "ID_NO ": ["1"]})
    with pytest.raises(PolicyError, match=r"\(columns: '', name, 'ID_NO '\); the input's "
                                          r"'ID_NO ' differs only in case or surrounding"):
        MaskingEngine(policy).apply(table)

def test_on_invalid() -> None:
    table = pa.table({"d": ["2020-01-01", "garbage", None]})
    for mode, want in (("redact", ["2020", "******", None]), ("null", ["2020", None, None])):
        policy = Policy.from_yaml(
            f"version: 1\ncolumns:\n  - {{name: d, operator: generalize, options: {{to: year}}, "
            f"on_invalid: {mode}}}\n")
        assert MaskingEngine(policy).apply(table).column("d").to_pylist() == want
    failing = Policy.from_yaml(
        "version: 1\ncolumns:\n  - {name: d, operator: generalize, options: {to: year}}\n",
        source="p.yaml")
    with pytest.raises(InputError) as info:
        MaskingEngine(failing).apply(table)
    assert info.value.row == 2 and info.value.column == "d"
    assert "garbage" not in str(info.value)  # never echo the (personal) value
    assert "p.yaml:3" in str(info.value)


def test_missing_keyset_is_named_before_any_work(customers: pa.Table) -> None:
    with pytest.raises(KeysetError, match="tokenize.*AES256_SIV"):
        MaskingEngine(Policy.preset("jrt0171"), today=TODAY).apply(customers,
                                                                  view="partner_export")


def test_row_filter_and_gate(customers: pa.Table, keys: list[Keyset]) -> None:
    policy = Policy.from_yaml("""
version: 1
columns:
  - {name: city, operator: keep}
  - {name: gender, operator: keep}
  - {name: income, operator: round, options: {to: 100000}}
views:
  export:
    row_filter: {column: city, ne: 北京}
    gate:
      k_anonymity: {quasi: [city, gender], k: 30, max_suppression: 0.5}
  strict:
    gate:
      k_anonymity: {quasi: [city, gender], k: 30}
""")
    engine = MaskingEngine(policy, keys)
    out = engine.apply(customers, view="export")
    assert "北京" not in out.column("city").to_pylist()
    from masking.risk import k_anonymity

    assert k_anonymity(out, ["city", "gender"]) >= 30
    kept = customers.filter(pa.compute.not_equal(customers.column("city"), "北京"))
    assert 0 < out.num_rows < kept.num_rows
    with pytest.raises(RiskGateError, match="k-anonymity gate not met"):
        engine.apply(customers, view="strict")


def test_tokens_join_across_banks(tmp_path: Path, customers: pa.Table) -> None:
    kek = Kek.from_key_bytes(bytes(32))
    shared = Keyset.create("AES256_SIV")
    shared.save(tmp_path / "shared.json", kek)
    policy_text = """
version: 1
context: joint.customers
columns:
  - {name: id_no, operator: tokenize}
  - {name: customer_id, operator: keep}
  - {name: income, operator: keep}
"""
    bank_a = MaskingEngine(Policy.from_yaml(policy_text), shared)
    loaded = Keyset.load(tmp_path / "shared.json", kek)
    bank_b = MaskingEngine(Policy.from_yaml(policy_text), {"AES256_SIV": loaded})
    a = bank_a.apply(customers.slice(0, 300), table_name="bank_a")
    b = bank_b.apply(customers.slice(200, 300).select(["income", "id_no", "customer_id"]),
                     table_name="bank_b")
    joined = a.join(b, "id_no", right_suffix="_b", join_type="inner")
    assert joined.num_rows == 100
    assert all(t.startswith("det:") for t in joined.column("id_no").to_pylist())
    outsider = MaskingEngine(Policy.from_yaml(policy_text), Keyset.create("AES256_SIV"))
    c = outsider.apply(customers.slice(200, 300))
    assert a.join(c, "id_no", right_suffix="_c", join_type="inner").num_rows == 0


_text = st.text(alphabet="0123456789abc-@.张王", max_size=12)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), min_size=1, max_size=5, unique=True),
    st.integers(min_value=0, max_value=30),
    st.data(),
)
def test_masking_keeps_row_count_and_column_order(names: list[str], rows: int,
                                                  data: st.DataObject) -> None:
    cols = {n: data.draw(st.lists(st.one_of(st.none(), _text), min_size=rows, max_size=rows))
            for n in names}
    table = pa.table({n: pa.array(v, pa.string()) for n, v in cols.items()})
    policy = Policy.from_yaml("""
version: 1
default: keep
columns:
  - {name: a, operator: mask, options: {keep_first: 2, keep_last: 1}, required: false}
  - {name: b, operator: redact, required: false}
  - {name: c, operator: hash, required: false}
  - {name: d, operator: mask_name, required: false}
""")
    out = MaskingEngine(policy, Keyset.create("HMAC_SHA256")).apply(table)
    assert out.num_rows == rows
    assert out.column_names == names
    for n in names:
        assert out.column(n).is_null().to_pylist() == table.column(n).is_null().to_pylist()


def test_mask_file_csv_to_parquet_and_jsonl(tmp_path: Path, keys: list[Keyset]) -> None:
    policy = Policy.preset("jrt0171")
    out = tmp_path / "out.parquet"
    summary = mask_file(policy, sample_customers_path(), out, view="display", batch_size=128)
    assert summary["rows_in"] == summary["rows_out"] == 500
    meta = pq.read_schema(out).metadata
    assert meta[b"covault.policy_hash"] == policy.hash.encode()
    assert pq.read_table(out).num_rows == 500
    jl = tmp_path / "out.jsonl"
    mask_file(policy, sample_customers_path(), jl, view="analytics", keyset=keys)
    lines = jl.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 500 and "id_no" in json.loads(lines[0])
    side = json.loads((tmp_path / "out.jsonl.meta.json").read_text(encoding="utf-8"))
    assert side["covault.view"] == "analytics" and side["rows"] == 500


def test_mask_file_bad_input_leaves_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n3\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    policy = Policy.from_yaml("version: 1\ndefault: keep\n")
    with pytest.raises(InputError, match=r"bad.csv:3"):
        mask_file(policy, bad, out, view=None)
    assert not out.exists() and not (tmp_path / "out.csv.meta.json").exists()
    assert list(tmp_path.iterdir()) == [bad]
    with pytest.raises(InputError, match="overwrite the input"):
        mask_file(policy, bad, bad, view=None)


def test_value_operator_on_nested_column_is_a_policy_error(tmp_path: Path) -> None:
    # a Parquet column of lists or structs: hash/mask/fpe... ended in an Arrow traceback
    table = pa.table({"tags": pa.array([["a", "b"], [], None]),
                      "addr": pa.array([{"city": "北京"}, None, {"city": "上海"}])})
    for column in ("tags", "addr"):
        policy = Policy.from_yaml(
            f"version: 1\ndefault: keep\ncolumns:\n  - {{name: {column}, operator: mask}}\n",
            source="p.yaml")
        with pytest.raises(PolicyError, match=rf"p.yaml:4: rule 'name: {column}': column "
                                              rf"'{column}' holds nested values"):
            MaskingEngine(policy).apply(table)
    # operators that never read a value still take such columns
    ok = Policy.from_yaml("version: 1\ndefault: keep\ncolumns:\n"
                          "  - {name: tags, operator: redact}\n  - {name: addr, operator: drop}\n")
    assert MaskingEngine(ok).apply(table).column("tags").to_pylist() == ["******"] * 2 + [None]


def test_nested_column_to_csv_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    src = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": ["a", "b"], "tags": pa.array([["x"], []])}), src)
    out = tmp_path / "out.csv"
    policy = Policy.from_yaml("version: 1\ndefault: keep\n")
    with pytest.raises(InputError, match=r"column 'tags': a CSV file cannot hold the nested"):
        mask_file(policy, src, out, view=None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet"]
    mask_file(policy, src, tmp_path / "out.jsonl", view=None)  # JSON Lines holds lists


def test_binary_column_that_is_not_utf8_is_refused_by_row(tmp_path: Path) -> None:
    # a Parquet BYTE_ARRAY column without the UTF-8 annotation reads as binary: text
    # where it is text, refused by column and row where it is not (was an Arrow traceback)
    src = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": pa.array([b"13800138000", b"\xff\xfe", None])}), src)
    hashed = Policy.from_yaml("version: 1\ndefault: keep\ncolumns:\n"
                              "  - {name: id, operator: mask}\n", source="p.yaml")
    with pytest.raises(InputError, match=r"in.parquet: column 'id': row 2: bytes that are "
                                         r"not UTF-8 text, which operator 'mask'"):
        mask_file(hashed, src, tmp_path / "out.parquet", view=None)
    kept = Policy.from_yaml("version: 1\ndefault: keep\n")
    with pytest.raises(InputError, match=r"column 'id': row 2: bytes that are not UTF-8 "
                                         r"text, which a CSV file cannot hold"):
        mask_file(kept, src, tmp_path / "out.csv", view=None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet"]
    good = tmp_path / "good.parquet"
    pq.write_table(pa.table({"id": pa.array([b"13800138000", None])}), good)
    mask_file(hashed, good, tmp_path / "good.csv", view=None)
    assert (tmp_path / "good.csv").read_text(encoding="utf-8").splitlines()[1] == '"***********"'


@pytest.mark.parametrize(("operator", "template", "bad"), [
    ("tokenize", "AES256_SIV", "det:AXcSfyL3gtRle9kU9z3ICvGt"),
    ("encrypt", "AES256_GCM", None),
    ("fpe", "FF1_AES256", "12345a78"),
])
def test_reveal_names_file_column_and_row_of_a_value_that_does_not_reverse(
        tmp_path: Path, operator: str, template: str, bad: str | None) -> None:
    # the ciphers name the row of the batch, 0-based (or none at all): `mask reveal` said
    # "decryption failed for row 1" for the 2nd row of a batch, without file or column
    from masking.files import reveal_file

    src = tmp_path / "in.csv"
    src.write_text("acct\n" + "".join(f"{10000000 + i}\n" for i in range(7)), encoding="utf-8")
    policy = Policy.from_yaml(f"version: 1\ndefault: keep\ncolumns:\n"
                              f"  - {{name: acct, operator: {operator}}}\n")
    ks = Keyset.create(template)
    masked = tmp_path / "masked.csv"
    mask_file(policy, src, masked, view=None, keyset=ks)
    lines = masked.read_text(encoding="utf-8").splitlines()
    row = 6  # in the third batch of 2 rows
    lines[row] = f'"{bad}"' if bad is not None else lines[row - 1]  # GCM: a swapped value
    if bad is None:
        lines[row] = lines[row].replace(lines[row][-6:-1], "AAAAA")
    masked.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "ids.csv"
    with pytest.raises(InputError, match=rf"masked.csv: column 'acct': row {row}: cannot "
                                         "reveal: "):
        reveal_file(policy, masked, out, view=None, keyset=ks, columns=["acct"], batch_size=2)
    assert not out.exists()


def test_date_shift_entity_column_that_is_nested_or_not_text(tmp_path: Path) -> None:
    # the entity column is read too: a list column or non-UTF-8 bytes there ended in an
    # Arrow traceback
    src = tmp_path / "in.parquet"
    pq.write_table(pa.table({"d": ["2020-01-01", "2021-02-03"], "tags": pa.array([["a"], []]),
                             "raw": pa.array([b"ok", b"\xff"])}), src)
    keys = [Keyset.create("HMAC_SHA256")]
    for entity, message in (("tags", r"p.yaml:4: rule 'name: d': date_shift entity column "
                                     r"'tags' holds nested values"),
                            ("raw", r"in.parquet: column 'raw': row 2: bytes that are not "
                                    r"UTF-8 text, which operator 'date_shift'")):
        policy = Policy.from_yaml(
            "version: 1\ndefault: keep\ncolumns:\n"
            f"  - {{name: d, operator: date_shift, options: {{max_days: 5, entity: {entity}}}}}\n",
            source="p.yaml")
        with pytest.raises(InputError, match=message):
            mask_file(policy, src, tmp_path / "out.parquet", view=None, keyset=keys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet"]


def test_header_only_csv_and_empty_parquet_mask_to_empty_outputs(tmp_path: Path) -> None:
    # a day's export with no rows: "the file holds no rows and no header" (it has one)
    policy = Policy.from_yaml("version: 1\ndefault: keep\ncolumns:\n"
                              "  - {name: id_no, pii: cn_resident_id, operator: mask}\n")
    csv_in = tmp_path / "in.csv"
    csv_in.write_text("id_no,mobile\n", encoding="utf-8")
    mask_file(policy, csv_in, tmp_path / "out.csv", view=None)
    assert (tmp_path / "out.csv").read_text(encoding="utf-8") == '"id_no","mobile"\n'
    pq_in = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id_no": pa.array([], pa.string())}), pq_in)
    summary = mask_file(policy, pq_in, tmp_path / "out.parquet", view=None)
    assert pq.read_table(tmp_path / "out.parquet").column_names == ["id_no"]
    assert summary["rows_in"] == 0
