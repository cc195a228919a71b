"""Masking operators: one conformance contract for all, then per-operator behaviour."""

from __future__ import annotations

import base64
import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

from masking.operators import OPERATORS, KeyProvider, OpContext, OptionError, build_operator
from masking.operators.generalize import Generalize
from privacy.errors import KeysetError
from privacy.keys import Keyset

KEYS = KeyProvider(
    [Keyset.create(t) for t in ("AES256_SIV", "HMAC_SHA256", "AES256_GCM", "FF1_AES256")]
)
IDS = ["11010519491231002X", None, "350403200601237837", "21132419670113367X"]
DATES = ["1974-10-19", None, "2003-08-04", "1967-01-13"]

# operator -> (options, input values) used by the conformance contract
CASES: dict[str, tuple[dict[str, object], list[str | None]]] = {
    "keep": ({}, IDS),
    "drop": ({}, IDS),
    "redact": ({}, IDS),
    "null": ({}, IDS),
    "constant": ({"value": "X"}, IDS),
    "mask": ({"keep_first": 6, "keep_last": 4}, IDS),
    "mask_name": ({}, ["张三", None, "欧阳娜娜", "李"]),
    "mask_email": ({}, ["dqin@example.org", None, "a@b.cn", "xy@example.net"]),
    "hash": ({}, IDS),
    "tokenize": ({}, IDS),
    "encrypt": ({}, IDS),
    "fpe": ({"keep_prefix": 6, "keep_suffix": 4}, ["6222021234567890", None, "62220212345678901",
                                                   "6222-0212-3456-7890"]),
    "generalize": ({"to": "year"}, DATES),
    "round": ({"to": 1000}, ["63040", None, "1500.5", "-20"]),
    "top_bottom": ({"top": 100, "bottom": 0}, ["63040", None, "50", "-20"]),
    "noise": ({"epsilon": 1.0, "lower": 0, "upper": 10}, ["1", None, "2", "3"]),
    "date_shift": ({"max_days": 5}, DATES),
    "redact_pii": ({"style": "mask"}, ["手机18781618495", None, "无", "卡号6222021234567890128"]),
}


def ctx(column: str = "col", batch: pa.RecordBatch | None = None) -> OpContext:
    return OpContext(column=column, context=f"t.{column}", scope="t", keys=KEYS, batch=batch)


def run(name: str, values: list[object], **options: object) -> tuple[list[object], object]:
    op = build_operator(name, options)
    res = op.apply(pa.array(values, pa.string()), ctx())
    return res.values.to_pylist(), res.invalid


def test_every_operator_has_a_conformance_case() -> None:
    assert set(CASES) == set(OPERATORS)


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_conformance(name: str) -> None:
    options, values = CASES[name]
    op = build_operator(name, options)
    assert op == build_operator(name, dict(options))  # frozen dataclasses compare by value
    with pytest.raises(AttributeError):
        op.name_of_nothing = 1  # type: ignore[attr-defined]
    arr = pa.array(values, pa.string())
    res = op.apply(arr, ctx())
    assert len(res.values) == len(arr)
    if op.keeps_nulls:
        assert res.values.is_null().to_pylist() == arr.is_null().to_pylist()
    else:
        assert name in ("null", "constant")
    if res.invalid is not None:
        assert len(res.invalid) == len(arr)
    with pytest.raises(OptionError) as info:
        build_operator(name, {**options, "no_such_option": 1})
    assert info.value.option == "no_such_option"
    assert "no_such_option" in str(info.value) and name in str(info.value)


@pytest.mark.parametrize(
    ("name", "options", "bad"),
    [
        ("mask", {"keep_first": -1}, "keep_first"),
        ("mask", {"char": "**"}, "char"),
        ("mask", {"keep_first": "six"}, "keep_first"),
        ("generalize", {"to": "planet"}, "to"),
        ("generalize", {"to": "bucket"}, "width"),
        ("generalize", {"to": "year", "width": 5}, "width"),
        ("noise", {"epsilon": 0, "lower": 0, "upper": 1}, "epsilon"),
        ("noise", {"epsilon": 1}, "lower"),
        ("noise", {"epsilon": 1, "lower": 0, "upper": 1, "seed": 3}, "seed"),
        ("fpe", {"radix": 40}, "radix"),
        ("fpe", {"separators": "1"}, "separators"),
        ("constant", {}, "value"),
        ("top_bottom", {}, "top"),
        ("hash", {"template": "AES256_SIV"}, "template"),
        ("date_shift", {"max_days": 0}, "max_days"),
    ],
)
def test_option_values_are_checked(name: str, options: dict[str, object], bad: str) -> None:
    with pytest.raises(OptionError) as info:
        build_operator(name, options)
    assert info.value.option == bad


def test_unknown_operator() -> None:
    with pytest.raises(OptionError, match="unknown operator 'maks'"):
        build_operator("maks")


# ---- mask family -----------------------------------------------------------------------


def test_mask_card_mobile_id() -> None:
    assert run("mask", ["6222021234567890123"], keep_first=6, keep_last=4)[0] == [
        "622202*********0123"
    ]
    assert run("mask", ["13812345678"], keep_first=3, keep_last=4)[0] == ["138****5678"]
    out = run("mask", ["110105194912310021"], keep_first=6, keep_last=4)[0][0]
    assert out == "110105********0021" and "19491231" not in out


def test_mask_keeps_separators_and_never_shows_a_short_value() -> None:
    out = run("mask", ["6222-0212-3456-7890", "12", "1", ""], keep_first=6, keep_last=4)[0]
    assert out[0] == "6222-02**-****-7890"
    assert out[1] in ("1*", "*2") and "*" in out[2] and out[3] == ""
    no_sep = run("mask", ["6222-0212"], keep_first=2, keep_separators=False)[0]
    assert no_sep == ["62*******"]



def test_mask_separators_per_value_not_per_batch() -> None:
    # one non-ASCII cell in the batch ("无", a full-width digit) made every card of it
    # count its separators: "6222 0************* 782" instead of the JR/T 6+4 display
    cards = ["6222 0200 0012 3456 782", "6222-0212-3456-7890"]
    alone = run("mask", cards, keep_first=6, keep_last=4)[0]
    assert alone == ["6222 02** **** ***6 782", "6222-02**-****-7890"]
    mixed = run("mask", [*cards, "无", None, "北京市朝阳区"], keep_first=6, keep_last=4)[0]
    assert mixed[:2] == alone and mixed[2] == "*" and mixed[3] is None

def test_mask_unicode_text() -> None:
    out = run("mask", ["北京市朝阳区", "张"], keep_first=2, keep_last=1, char="某")[0]
    assert out == ["北京某某某区", "某"]


def test_mask_name_keeps_surname() -> None:
    out = run("mask_name", ["张三", "欧阳娜娜", "司马光", "李", " 王小明 "])[0]
    assert out == ["张*", "欧阳**", "司马*", "*", "王**"]
    given = run("mask_name", ["张三", "欧阳娜娜"], keep="given")[0]
    assert given == ["*三", "**娜娜"]


def test_mask_email() -> None:
    out, invalid = run("mask_email", ["dqin@example.org", "a@b.cn", "not-an-email"])
    assert out[:2] == ["d***@example.org", "***@b.cn"]
    assert invalid is not None and list(invalid) == [False, False, True]


# ---- basic ------------------------------------------------------------------------------


def test_redact_null_constant() -> None:
    assert run("redact", ["a", None])[0] == ["******", None]
    assert run("redact", ["a"], replacement="[X]")[0] == ["[X]"]
    assert run("null", ["a", None])[0] == [None, None]
    assert run("constant", ["a", None], value="C")[0] == ["C", "C"]


# ---- keyed -----------------------------------------------------------------------------


def test_hash_is_keyed_deterministic_and_per_column() -> None:
    op = build_operator("hash")
    values = pa.array(["13812345678", "13812345678"])
    a = op.apply(values, ctx("mobile")).values.to_pylist()
    b = op.apply(values, ctx("phone")).values.to_pylist()
    assert a[0] == a[1] and a[0].startswith("tok:") and a[0] != b[0]
    other = KeyProvider(Keyset.create("HMAC_SHA256"))
    c = op.apply(values, OpContext(column="mobile", context="t.mobile", keys=other))
    assert c.values[0].as_py() != a[0]


def test_missing_keyset_names_operator_and_template() -> None:
    op = build_operator("tokenize")
    with pytest.raises(KeysetError, match="'tokenize' needs a keyset of template AES256_SIV"):
        op.apply(pa.array(["x"]), OpContext(column="id_no", context="t.id_no"))


def test_tokenize_round_trip() -> None:
    op = build_operator("tokenize")
    tokens = op.apply(pa.array(IDS), ctx()).values
    assert tokens[0].as_py().startswith("det:")
    assert op.reverse(tokens, ctx()).to_pylist() == IDS


def test_encrypt_randomized_unique_nonces_and_round_trip() -> None:
    op = build_operator("encrypt")
    values = ["6222021234567890123", "62220212345678901", "13812345678", "6222021234567890123"]
    tokens = op.apply(pa.array(values), ctx()).values.to_pylist()
    assert tokens[0] != tokens[3]
    raw = [base64.urlsafe_b64decode(t[4:] + "=" * (-len(t[4:]) % 4)) for t in tokens]
    nonces = {r[5:17] for r in raw}
    assert len(nonces) == len(values)  # never reused, also across value lengths
    assert op.reverse(pa.array(tokens), ctx()).to_pylist() == values


def test_fpe_keeps_format_and_bin() -> None:
    op = build_operator("fpe", {"keep_prefix": 6, "keep_suffix": 4})
    values = ["6222021234567890123", "6222-0212-3456-7890"]
    out = op.apply(pa.array(values), ctx()).values.to_pylist()
    assert [len(v) for v in out] == [len(v) for v in values]
    assert out[0][:6] == "622202" and out[0][-4:] == "0123" and out[0] != values[0]
    assert out[1][4] == "-" and out[1][:7] == "6222-02" and out[1][-4:] == "7890"
    assert op.reverse(pa.array(out), ctx()).to_pylist() == values


def test_fpe_flags_values_it_cannot_take() -> None:
    op = build_operator("fpe")
    res = op.apply(pa.array(["12345678", "12ab5678", "123", None]), ctx())
    assert res.invalid is not None and list(res.invalid) == [False, True, True, False]
    assert res.values[0].as_py() != "12345678" and res.values[3].as_py() is None


# ---- generalize -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "province", "city", "district"),
    [
        ("浙江省杭州市西湖区文三路1号", "浙江省", "浙江省杭州市", "浙江省杭州市西湖区"),
        ("北京市朝阳区建国路88号", "北京市", "北京市", "北京市朝阳区"),
        ("广东省广州市天河区体育西路", "广东省", "广东省广州市", "广东省广州市天河区"),
        ("内蒙古自治区呼和浩特市新城区", "内蒙古自治区", "内蒙古自治区呼和浩特市",
         "内蒙古自治区呼和浩特市新城区"),
        ("青海省拉萨县蓟州济南路L座", "青海省", "青海省", "青海省拉萨县"),
    ],
)
def test_generalize_address(address: str, province: str, city: str, district: str) -> None:
    for to, want in (("province", province), ("city", city), ("district", district)):
        assert run("generalize", [address], to=to)[0] == [want]


def test_generalize_address_without_markers_is_invalid() -> None:
    out, invalid = run("generalize", ["somewhere", None], to="district")
    assert out == [None, None] and list(invalid) == [True, False]  # type: ignore[arg-type]


def test_generalize_dates() -> None:
    values = ["1974-10-19", "2003/8/4", "2020-02-30", None]
    assert run("generalize", values, to="year")[0][:2] == ["1974", "2003"]
    assert run("generalize", values, to="quarter")[0][:2] == ["1974-Q4", "2003-Q3"]
    out, invalid = run("generalize", values, to="month")
    assert out[:2] == ["1974-10", "2003-08"] and list(invalid) == [False, False, True, False]
    native = build_operator("generalize", {"to": "year"}).apply(
        pa.array([dt.date(1999, 5, 1), None]), ctx()
    )
    assert native.values.to_pylist() == ["1999", None]



def test_generalize_chinese_dates() -> None:
    # detection calls 2020年1月15日 a date, and the JR/T preset generalises dates to the
    # year with on_invalid: null: every such date came out null
    values = ["2020年1月15日", "1990年02月05日 10:00", "2020年2月30日", "2020-01-15"]
    out, invalid = run("generalize", values, to="year")
    assert out == ["2020", "1990", None, "2020"]
    assert invalid is not None and invalid.tolist() == [False, False, True, False]
    assert run("generalize", values[:1], to="month")[0] == ["2020-01"]


def test_generalize_age_band_from_grouped_resident_ids() -> None:
    # "110105 19491231 002X" validated, but the birth date was sliced from the id as
    # written ("19 19491"): an Arrow traceback
    op = Generalize(to="age_band", width=10, as_of=dt.date(2026, 1, 1))
    res = op.apply(pa.array(["110105 19491231 002X", "440301-19850712-3458", None]), ctx())
    assert res.values.to_pylist() == ["70-79", "40-49", None]


def test_generalize_age_band_from_resident_id() -> None:
    op = Generalize(to="age_band", width=10, as_of=dt.date(2026, 1, 1))
    res = op.apply(pa.array(["11010519491231002X", "350403200601237837", "bad", None]), ctx())
    assert res.values.to_pylist() == ["70-79", "10-19", None, None]
    assert res.invalid is not None and list(res.invalid) == [False, False, True, False]
    dates = op.apply(pa.array(["1949-12-31", "2006-01-23"]), ctx()).values.to_pylist()
    assert dates == ["70-79", "10-19"]


def test_generalize_buckets() -> None:
    assert run("generalize", ["63040", "5", "-1"], to="bucket", width=10000)[0] == [
        "[60000, 70000)", "[0, 10000)", "[-10000, 0)"]
    assert run("generalize", ["5", "150", "1000"], to="bucket", edges=[100, 1000])[0] == [
        "<100", "[100, 1000)", ">=1000"]


# ---- numbers ----------------------------------------------------------------------------


def test_round_and_top_bottom() -> None:
    assert run("round", ["63040", "1499", "x"], to=1000)[0] == [63000, 1000, None]
    assert run("round", ["1.26"], digits=1)[0] == [1.3]
    out = build_operator("top_bottom", {"top": 100, "bottom": 0}).apply(
        pa.array([-5, 50, 500]), ctx()).values
    assert out.to_pylist() == [0, 50, 100] and out.type == pa.int64()


def test_noise_scale_and_fresh_randomness() -> None:
    op = build_operator("noise", {"epsilon": 0.5, "lower": -1, "upper": 1})
    zeros = pa.array(np.zeros(20000))
    a = np.asarray(op.apply(zeros, ctx()).values.to_pylist())
    b = np.asarray(op.apply(zeros, ctx()).values.to_pylist())
    assert not np.array_equal(a, b)  # no seed, no keyed stream: fresh noise every run
    assert 3.6 < np.mean(np.abs(a)) < 4.4  # Laplace scale b = (1 - -1) / 0.5 = 4
    keyed = build_operator("noise", {"epsilon": 1.0, "lower": 0, "upper": 3})
    k1 = keyed.apply(pa.array([1.0, 2.0]), ctx()).values
    assert not k1.equals(keyed.apply(pa.array([1.0, 2.0]), ctx()).values)


# ---- dates ------------------------------------------------------------------------------


def test_date_shift_consistent_per_entity_and_bounded() -> None:
    batch = pa.record_batch({
        "cid": ["A", "B", "A", None],
        "opened": ["2020-01-10", "2020-01-10", "2020-03-01", "2020-01-10"],
        "born": ["1980-05-05", "1990-01-01", "1980-05-05", "1980-05-05"],
    })
    op = build_operator("date_shift", {"max_days": 30, "entity": "cid"})
    opened = op.apply(batch.column("opened"), ctx("opened", batch))
    born = op.apply(batch.column("born"), ctx("born", batch))
    o = [dt.date.fromisoformat(v) if v else None for v in opened.values.to_pylist()]
    b = [dt.date.fromisoformat(v) if v else None for v in born.values.to_pylist()]
    shift_a = (o[0] - dt.date(2020, 1, 10)).days
    assert 1 <= abs(shift_a) <= 30
    assert (o[2] - dt.date(2020, 3, 1)).days == shift_a  # same entity, same shift
    assert (b[0] - dt.date(1980, 5, 5)).days == shift_a  # across columns too
    assert o[3] is None and opened.invalid is not None and opened.invalid[3]


def test_date_shift_native_dates() -> None:
    op = build_operator("date_shift", {"max_days": 3})
    res = op.apply(pa.array([dt.date(2020, 1, 1), None]), ctx())
    assert res.values.type == pa.date32()
    assert 1 <= abs((res.values[0].as_py() - dt.date(2020, 1, 1)).days) <= 3


# ---- identifier normalisation (issue 13) -------------------------------------------------

MOBILE_FORMS = ["+86 187 8161 8495", "18781618495", "+8618781618495", "187-8161-8495"]


@pytest.mark.parametrize("name", ["hash", "tokenize"])
def test_keyed_operators_give_one_token_per_identifier(name: str) -> None:
    op = build_operator(name)
    mobiles = op.apply(pa.array(MOBILE_FORMS), ctx("mobile")).values.to_pylist()
    assert len(set(mobiles)) == 1
    ids = op.apply(pa.array(["11010519491231002x", "11010519491231002X"]), ctx()).values
    assert len(set(ids.to_pylist())) == 1
    off = build_operator(name, {"identifier": "none"})
    assert len(set(off.apply(pa.array(MOBILE_FORMS), ctx()).values.to_pylist())) == 4


def test_mobile_display_mask_shows_the_national_numbers_digits() -> None:
    op = build_operator("mask", {"keep_first": 3, "keep_last": 4})
    c = OpContext(column="mobile", context="t.mobile", keys=KEYS, pii="cn_mobile")
    assert op.apply(pa.array(MOBILE_FORMS + ["+8613800000013"]), c).values.to_pylist() == [
        "+86 187****8495", "187****8495", "+86 187****8495", "187****8495", "+86 138****0013"]


@pytest.mark.parametrize(("name", "options"), [
    ("mask", {"keep_first": True}),
    ("noise", {"epsilon": True, "lower": 0, "upper": 1}),
    ("round", {"digits": False}),
])
def test_boolean_for_a_number_option_is_refused(name: str, options: dict[str, object]) -> None:
    # pydantic read `keep_first: true` as 1 (and epsilon: true as 1.0): a typo masked
    # with a setting nobody wrote
    bad = next(k for k, v in options.items() if isinstance(v, bool))
    with pytest.raises(OptionError, match=rf"option '{bad}': expected .*not a boolean"):
        build_operator(name, options)
    assert build_operator("fpe", {"uppercase": True, "radix": 36}).uppercase is True
    assert build_operator("constant", {"value": False}).value is False
