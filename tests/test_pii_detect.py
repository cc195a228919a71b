"""Column detection, the streaming reader and the `covault scan` command."""

from __future__ import annotations

import datetime as dt
import json
import random
import types
from collections.abc import Iterator
from pathlib import Path

import faker.providers.ssn.zh_CN as faker_ssn
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner
from faker import Faker

from covault.commands.scan import scan
from masking.io import detect_format, iter_batches, read_head
from masking.pii import JRT_CLASS, PII_TYPES, detect_column, scan_table
from masking.pii import generators as gen
from privacy.errors import InputError

TODAY = dt.date(2025, 1, 1)
N = 800


class _FrozenDate(dt.date):
    @classmethod
    def today(cls) -> _FrozenDate:
        return cls(TODAY.year, TODAY.month, TODAY.day)


@pytest.fixture(scope="module")
def fake() -> Iterator[Faker]:
    """Faker zh_CN with a fixed seed and its resident-id clock frozen at TODAY."""
    mp = pytest.MonkeyPatch()
    mp.setattr(
        faker_ssn, "datetime", types.SimpleNamespace(date=_FrozenDate, timedelta=dt.timedelta)
    )
    f = Faker("zh_CN")
    f.seed_instance(0)
    yield f
    mp.undo()


@pytest.fixture(scope="module")
def pii_table(fake: Faker) -> pa.Table:
    r = random.Random(0)
    return pa.table(
        {
            "id_no": [fake.ssn(min_age=18, max_age=90) for _ in range(N)],
            "phone": [fake.phone_number() for _ in range(N)],
            "customer": [fake.name() for _ in range(N)],
            "home": [fake.address() for _ in range(N)],
            "email": [fake.email() for _ in range(N)],
            "ip": [fake.ipv4() for _ in range(N)],
            "ip6": [fake.ipv6() for _ in range(N)],
            "opened": [fake.date() for _ in range(N)],
            "card16": [fake.credit_card_number() for _ in range(N)],
            "card19": gen.bank_cards(N, seed=1),
            "uscc": gen.usccs(N, seed=2),
            "passport": [f"E{r.randrange(10**8):08d}" for _ in range(N)],
            "permit": [f"C{r.randrange(10**8):08d}" for _ in range(N)],
        }
    )


EXPECTED = {
    "id_no": ("cn_resident_id", "C2"),
    "phone": ("cn_mobile", "C2"),
    "customer": ("cn_name", "C2"),
    "home": ("cn_address", "C2"),
    "email": ("email", "C2"),
    "ip": ("ipv4", "C1"),
    "ip6": ("ipv6", "C1"),
    "opened": ("date", "C1"),
    "card16": ("bank_card", "C2"),
    "card19": ("bank_card", "C2"),
    "uscc": ("cn_uscc", "C1"),
    "passport": ("cn_passport", "C2"),
    "permit": ("hk_macau_permit", "C2"),
}


def test_faker_ids_depend_on_frozen_date(fake: Faker) -> None:
    from masking.pii import resident_id_birth_date

    born = resident_id_birth_date(fake.ssn(min_age=18, max_age=18), today=TODAY)
    assert (TODAY - born).days == 18 * 365


def test_pii_columns_detected(pii_table: pa.Table) -> None:
    scans = scan_table(pii_table, today=TODAY)
    assert [s.name for s in scans] == pii_table.column_names
    for s in scans:
        assert (s.pii, s.jrt_class) == EXPECTED[s.name], s
        assert 0.8 <= s.confidence <= 1.0, s


def test_pii_detected_without_name_hints(pii_table: pa.Table) -> None:
    for name in pii_table.column_names:
        d = detect_column(pii_table[name], today=TODAY)
        assert d.pii == EXPECTED[name][0]


def _change_last(value: str) -> str:
    return value[:-1] + ("0" if value[-1] != "0" else "1")


def test_look_alikes_are_none(pii_table: pa.Table) -> None:
    r = random.Random(1)
    ids = pii_table["id_no"].to_pylist()
    cases = {
        "bad_check": [_change_last(v) for v in ids],
        "n11_no_mobile": [str(r.randrange(2 * 10**10, 10**11)) for _ in range(N)],
        "n11_10_12": [f"1{r.choice('012')}{r.randrange(10**9):09d}" for _ in range(N)],
        "order_no": [str(r.randrange(10**15, 10**19)) for _ in range(N)],
        "digits18": [str(r.randrange(10**17, 10**18)) for _ in range(N)],
        "category": [r.choice(["信用卡", "储蓄卡", "理财", "贷款"]) for _ in range(N)],
        "amount_text": [f"{r.uniform(0, 1e5):.2f}" for _ in range(N)],
    }
    for name, values in cases.items():
        d = detect_column(pa.array(values), name=name, today=TODAY)
        assert d.pii == "none", (name, d)
        assert d.jrt_class == ""
    card_like = [v for v in cases["order_no"] if not v.startswith("62")]
    assert detect_column(card_like, name="card_no").pii == "none"


def test_invalid_check_digits_lower_confidence(pii_table: pa.Table) -> None:
    ids = pii_table["id_no"].to_pylist()
    mixed = ids[:600] + [_change_last(v) for v in ids[600:]]  # 75 % valid
    low = detect_column(mixed, today=TODAY)
    assert low.pii == "none"
    relaxed = detect_column(mixed, today=TODAY, threshold=0.5)
    assert relaxed.pii == "cn_resident_id" and 0.7 <= relaxed.confidence <= 0.8


def test_unionpay_without_luhn_has_lower_confidence() -> None:
    cards = gen.bank_cards(N, seed=5).to_pylist()
    no_luhn = [_change_last(c) for c in cards]
    d = detect_column(no_luhn)
    assert d.pii == "bank_card" and d.confidence < 1.0
    assert detect_column(cards).confidence == 1.0


def test_name_hint_adds_a_little_but_never_decides(pii_table: pa.Table) -> None:
    ids = pii_table["id_no"].to_pylist()
    mostly = ids[:620] + [_change_last(v) for v in ids[620:]]  # 77.5 % valid
    assert detect_column(mostly, today=TODAY).pii == "none"
    hinted = detect_column(mostly, today=TODAY, name="身份证号")
    assert hinted.pii == "cn_resident_id" and hinted.confidence < 0.9
    words = [f"备注{i}" for i in range(N)]
    for name in ("id_no", "身份证", "mobile", "card_no", "name"):
        assert detect_column(words, name=name).pii == "none"


def test_individual_business_uscc_is_c2() -> None:
    d = detect_column(gen.usccs(N, seed=3, individual_business=0.9))
    assert (d.pii, d.jrt_class) == ("cn_uscc", "C2")


def test_column_types() -> None:
    mobiles = pa.array([int(m) for m in gen.mobiles(N, seed=4).to_pylist()], pa.int64())
    assert detect_column(mobiles).pii == "cn_mobile"
    stamps = pa.array(np.arange(N).astype("datetime64[s]"))
    assert detect_column(stamps) == detect_column(stamps.cast(pa.date32()))
    assert detect_column(stamps).pii == "date" and detect_column(stamps).confidence == 1.0
    floats = detect_column(pa.array(np.linspace(0, 1, N)))
    assert (floats.pii, floats.confidence, floats.jrt_class) == ("none", 1.0, "")
    empty = detect_column(pa.nulls(N, pa.string()))
    assert (empty.pii, empty.confidence) == ("none", 0.0)
    blanks = detect_column(["", "  ", None])
    assert (blanks.pii, blanks.confidence) == ("none", 0.0)
    varied = [f"{s}{g}" for s in "王李张刘陈杨黄吴赵周" for g in "一二三四五六七八九十"] * 3
    assert detect_column(pa.array(varied).dictionary_encode()).pii == "cn_name"
    repeated = [f"王{g}" for g in "一二三四五六七八九十"] * 30  # labels, not people
    assert detect_column(repeated).pii == "none"
    chunked = pa.chunked_array([gen.mobiles(10, seed=1), gen.mobiles(10, seed=2)])
    assert detect_column(chunked).pii == "cn_mobile"


def test_sampling_is_seeded(pii_table: pa.Table) -> None:
    ids = pii_table["id_no"].to_pylist()
    mixed = pa.array(ids[:500] + [_change_last(v) for v in ids[500:]])
    a = detect_column(mixed, sample=50, seed=1, threshold=0.3, today=TODAY)
    b = detect_column(mixed, sample=50, seed=1, threshold=0.3, today=TODAY)
    assert a == b and a.pii == "cn_resident_id"
    draws = {detect_column(mixed, sample=50, seed=k, threshold=0.3).confidence for k in range(6)}
    assert len(draws) > 1  # the seed picks the sample
    assert scan_table(pii_table.to_batches()[0], sample=50, today=TODAY)[0].pii == "cn_resident_id"


def test_detect_misuse() -> None:
    with pytest.raises(InputError):
        detect_column(["13812345678"], sample=0)
    with pytest.raises(InputError):
        detect_column(["13812345678"], threshold=0.0)


def test_type_names_and_classes() -> None:
    assert set(PII_TYPES) == {
        "cn_resident_id", "cn_mobile", "bank_card", "cn_uscc", "cn_passport",
        "hk_macau_permit", "email", "ipv4", "ipv6", "cn_name", "cn_address", "date", "none",
    }  # fmt: skip
    assert set(JRT_CLASS) == set(PII_TYPES)
    assert JRT_CLASS["none"] == "" and set(JRT_CLASS.values()) == {"", "C1", "C2"}


# --- reader --------------------------------------------------------------------------------


def test_reader_keeps_identifiers_exact(tmp_path: Path) -> None:
    csv_file = tmp_path / "a.csv"
    csv_file.write_text("id,card\n0012,9222021234567890123\n,62\n", encoding="utf-8")
    t = read_head(csv_file, 10)
    assert t.schema.types == [pa.string(), pa.string()]
    assert t.to_pylist() == [
        {"id": "0012", "card": "9222021234567890123"},
        {"id": None, "card": "62"},
    ]
    jl = tmp_path / "a.jsonl"
    jl.write_text(
        '{"card": 9999999999999999999, "n": 1}\n\n{"card": 6, "n": 2}\n', encoding="utf-8"
    )
    t = read_head(jl, 10)
    assert t["card"].to_pylist() == ["9999999999999999999", "6"] and t["n"].type == pa.int64()
    tsv = tmp_path / "a.tsv"
    tsv.write_text("a\tb\n1\t2\n", encoding="utf-8")
    assert read_head(tsv, 5).column_names == ["a", "b"]


def test_reader_batches_and_formats(tmp_path: Path) -> None:
    table = pa.table({"x": [str(i) for i in range(1000)]})
    pacsv.write_csv(table, tmp_path / "t.csv")
    pq.write_table(table, tmp_path / "t.parquet", row_group_size=300)
    for name in ("t.csv", "t.parquet"):
        sizes = [len(b) for b in iter_batches(tmp_path / name, batch_size=256)]
        assert sum(sizes) == 1000 and max(sizes) <= 256
        assert len(read_head(tmp_path / name, 10)) == 10
    assert detect_format("x.csv.gz") == "csv" and detect_format("x.PARQUET") == "parquet"
    assert detect_format("x.ndjson") == "jsonl" and detect_format("x.txt", "csv") == "csv"
    with pytest.raises(InputError):
        detect_format("x.txt")
    with pytest.raises(InputError):
        detect_format("x.csv", "xlsx")


@pytest.mark.parametrize(
    ("name", "content", "where"),
    [
        ("r.csv", 'a,b\n1,2\n"x\ny",3\n\n4,5,6\n', "r.csv:6:"),
        ("r.jsonl", '{"a": 1}\n{"a": 2,\n', "r.jsonl:2:"),
        ("r2.jsonl", '{"a": 1}\n[1, 2]\n', "r2.jsonl:2:"),
        ("r4.jsonl", '{"a": 1}\n{"a": "x"}\n', ""),
        ("r.parquet", "not parquet", "r.parquet:"),
    ],
)
def test_reader_errors_have_locations(tmp_path: Path, name: str, content: str, where: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    if not where:  # mixed types in the first batch become strings, not an error
        assert read_head(path, 10)["a"].to_pylist() == ["1", "x"]
        return
    with pytest.raises(InputError) as exc:
        read_head(path, 10)
    assert str(exc.value).startswith(str(tmp_path / where))


def test_reader_type_errors_across_batches(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}\n{"a": "x"}\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"t\.jsonl:3: field 'a'"):
        list(iter_batches(path, batch_size=2))
    path.write_text('{"a": 1}\n{"b": 2}\n\n{"c": 3}\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"t\.jsonl:4: field 'c' was not in the first rows"):
        list(iter_batches(path, batch_size=2))
    assert read_head(path, 2).to_pylist() == [{"a": 1, "b": None}, {"a": None, "b": 2}]


# --- CLI -----------------------------------------------------------------------------------


@pytest.fixture()
def files(tmp_path: Path, pii_table: pa.Table) -> dict[str, Path]:
    small = pii_table.select(["id_no", "phone", "customer", "card19", "uscc"]).slice(0, 300)
    small = small.append_column("amount", pa.array([f"{i * 1.5:.2f}" for i in range(300)]))
    out = {
        "csv": tmp_path / "d.csv",
        "parquet": tmp_path / "d.parquet",
        "jsonl": tmp_path / "d.jsonl",
    }
    pacsv.write_csv(small, out["csv"])
    pq.write_table(small, out["parquet"])
    out["jsonl"].write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in small.to_pylist()),
        encoding="utf-8",
    )
    return out


def test_cli_json_shape_all_formats(files: dict[str, Path]) -> None:
    runner = CliRunner()
    results = []
    for path in files.values():
        res = runner.invoke(scan, [str(path), "--format", "json", "--today", "2025-01-01"])
        assert res.exit_code == 0, res.output
        doc = json.loads(res.stdout)
        assert list(doc) == ["columns"]
        for col in doc["columns"]:
            assert list(col) == ["name", "pii", "confidence", "jrt_class", "in_text"]
            assert isinstance(col["confidence"], float)
        results.append(doc)
    assert results[0] == results[1] == results[2]
    got = {c["name"]: c["pii"] for c in results[0]["columns"]}
    assert got == {
        "id_no": "cn_resident_id", "phone": "cn_mobile", "customer": "cn_name",
        "card19": "bank_card", "uscc": "cn_uscc", "amount": "none",
    }  # fmt: skip
    assert results[0]["columns"][-1]["jrt_class"] == ""


def test_cli_text_and_policy(files: dict[str, Path], tmp_path: Path) -> None:
    policy = tmp_path / "out" / "policy.yaml"
    res = CliRunner().invoke(
        scan, [str(files["csv"]), "--sample", "100", "--suggest-policy", str(policy)]
    )
    assert res.exit_code == 0, res.output
    assert "cn_resident_id" in res.stdout and "amount" in res.stdout
    text = policy.read_text(encoding="utf-8")
    assert text.startswith("# ") and "REVIEW" in text
    doc = yaml.safe_load(text)
    assert (doc["version"], doc["extends"], doc["default"]) == (1, "jrt0171", "drop")
    assert [(c["name"], c["pii"]) for c in doc["columns"]] == [
        ("id_no", "cn_resident_id"), ("phone", "cn_mobile"), ("customer", "cn_name"),
        ("card19", "bank_card"), ("uscc", "cn_uscc"),
    ]  # fmt: skip
    assert '# - name: "amount"' in text


def test_cli_bad_input_exits_2(tmp_path: Path) -> None:
    runner = CliRunner()
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b\n1,2\n3,4,5\n", encoding="utf-8")
    policy = tmp_path / "p.yaml"
    cases = [
        ([str(tmp_path / "missing.csv")], "no such file"),
        ([str(ragged), "--suggest-policy", str(policy)], f"{ragged}:3:"),
        ([str(tmp_path / "data.xlsx")], "extension"),
        ([str(ragged), "--sample", "0"], ""),
    ]
    for args, message in cases:
        res = runner.invoke(scan, args)
        assert res.exit_code == 2, (args, res.output)
        assert message in res.output
    assert not policy.exists()
    txt = tmp_path / "data.txt"
    txt.write_text("mobile\n13812345678\n", encoding="utf-8")
    res = runner.invoke(scan, [str(txt), "--input-format", "csv", "--format", "json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["columns"][0]["pii"] == "cn_mobile"


def test_binary_columns_of_utf8_text_are_detected() -> None:
    # a Parquet BYTE_ARRAY column written without the UTF-8 annotation reads as binary:
    # its mobiles were "none" with confidence 1, and its remarks were not searched
    mobiles = pa.array([b"13800138000", b"13900139001", None], pa.binary())
    assert detect_column(mobiles, name="mobile").pii == "cn_mobile"
    assert detect_column(pa.array([b"\xff\xfe", b"x"])).pii == "none"  # not text: as before
    table = pa.table({"remark": pa.array(["手机13800138000".encode(), b"ok"])})
    (scan,) = scan_table(table, text_types=["cn_mobile"])
    assert scan.in_text is not None and scan.in_text.counts == {"cn_mobile": 1}
