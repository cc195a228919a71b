"""Identifier normalisation (privacy.normalize) and its use by every keyed operation.

Each wall of issue 13 item 1 is reproduced: one mobile written four ways gave four
tokens, ``...002x``/``...002X`` two, PSI found 25 of 100 shared mobiles, a watch list
missed a differently written mobile, and the display mask of ``+86 187 8161 8495``
hid the wrong digits.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from masking.engine import MaskingEngine
from masking.operators import KeyProvider, OpContext, build_operator
from masking.pii.validators import is_valid_resident_id, uscc_valid
from masking.policy import Policy
from privacy.errors import IdentifierError, InputError, PolicyError
from privacy.keys import Keyset
from privacy.normalize import (
    IDENTIFIER_CHOICES,
    canonical,
    canonical_array,
    infer_array,
    infer_kind,
    normalizer,
    phone_parts,
    resolve,
)

MOBILE = "18781618495"
FOUR = ["+86 187 8161 8495", "18781618495", "+8618781618495", "187-8161-8495"]
MORE = ["0086 187 8161 8495", "(+86)187-8161-8495", "８６１８７８１６１８４９５",
        "１８７ ８１６１ ８４９５", "+86-187-8161-8495", "8618781618495"]
ID_X = "11010519491231002X"
KEYS = KeyProvider([Keyset.create(t) for t in ("AES256_SIV", "HMAC_SHA256", "FF1_AES256")])

#: values of every shape, valid and not, for the scalar/column agreement checks
CORPUS = [
    *FOUR, *MORE, "+44 7911 123456", "+1 (650) 253-0000", "010-12345678", "12345", "abc",
    "", " ", "\u3000", "n/a", "+86 12", "+8612345678901234", "110105194912310021",
    "11010519491231002x", "110105 19491231 002x", "110105-19491231-002X",
    "110105491231002", "110105491399002", "6222 0212 3456 7890", "6222-0212-3456-7890",
    "６２２２０２１２３４５６７８９０", "622202123456789012345", "D.Qin@Example.ORG ",
    " d.qin@example.org", "a b@example.org", "x@@y", "91110000600037341l",
    "9111 0000 6000 3734 1L", "91110000600037341M", "张三", "北京市朝阳区", "1974-10-19",
    "C000123", "0086", "+", "1-800-FLOWERS", "tel: 187 8161 8495",
]


# ---- the module --------------------------------------------------------------------------


@pytest.mark.parametrize("value", FOUR + MORE)
def test_every_written_form_of_a_cn_mobile_is_its_national_number(value: str) -> None:
    assert canonical(value, "mobile") == MOBILE


def test_four_forms_one_canonical_and_foreign_numbers_keep_their_country() -> None:
    assert {canonical(v, "mobile") for v in FOUR} == {MOBILE}
    assert {canonical(v, "auto") for v in FOUR} == {MOBILE}
    assert canonical("+44 7911 123456", "mobile") == "+447911123456"  # E.164
    assert canonical("0044 7911 123456", "mobile") == "+447911123456"
    assert canonical("+1 (650) 253-0000", "auto") == "+16502530000"
    assert canonical("010-1234 5678", "mobile") == "1012345678"  # CN landline: national
    assert canonical("+86 10 1234 5678", "mobile") == "1012345678"


def test_other_kinds() -> None:
    assert canonical("11010519491231002x", "resident_id") == ID_X
    assert canonical("110105 1949 1231 002x", "resident_id") == ID_X
    assert canonical("110105-19491231-002X", "resident_id") == ID_X
    # a 15-digit first-generation id becomes its 18-digit form (GB 11643)
    assert canonical("110105491231002", "resident_id") == ID_X
    assert canonical("6222 0212-3456 7890", "card") == "6222021234567890"
    assert canonical("  D.Qin@Example.ORG ", "email") == "d.qin@example.org"
    assert canonical("9111 0000 6000 3734 1l", "uscc") == "91110000600037341L"
    assert canonical(" A b\u3000Ｃ ", "generic") == "AbC"
    assert canonical("+86 187 8161 8495", "none") == "+86 187 8161 8495"


def test_invalid_values_fall_back_to_generic_and_strict_raises_without_the_value() -> None:
    assert canonical("not a phone", "mobile") == "notaphone"
    assert canonical("12 34", "card") == "1234"
    assert canonical("x @@ y", "email") == "x@@y"
    for kind, value in [("mobile", "12"), ("resident_id", "110105194912310022"),
                        ("card", "1234"), ("email", "a b@x.org"), ("uscc", "91110000600037341M"),
                        ("mobile", "abc")]:
        with pytest.raises(IdentifierError, match=f"not a valid {kind}") as info:
            canonical(value, kind, strict=True)
        assert value not in str(info.value)
        assert isinstance(info.value, InputError)
    assert canonical(FOUR[0], "mobile", strict=True) == MOBILE
    assert canonical("11010519491231002x", "resident_id", strict=True) == ID_X
    with pytest.raises(InputError, match="unknown identifier kind 'phone'"):
        canonical("x", "phone")


def test_check_characters_agree_with_the_masking_validators() -> None:
    assert is_valid_resident_id(canonical("110105491231002", "resident_id"))
    assert list(uscc_valid(pa.array([canonical("91110000600037341l", "uscc", strict=True)])))
    with pytest.raises(IdentifierError):
        canonical("91110000600037341M", "uscc", strict=True)


def test_auto_infers_conservatively() -> None:
    assert infer_kind("+86 187 8161 8495") == "mobile"
    assert infer_kind("187-8161-8495") == "mobile"
    assert infer_kind("11010519491231002x") == "resident_id"
    assert infer_kind("6222 0212 3456 7890") == "card"
    assert infer_kind("D.Qin@Example.org") == "email"
    assert infer_kind("91110000600037341l") == "uscc"
    for value in ["C000123", "10000042", "8618781618495", "张三", "1974-10-19", "hello world",
                  "a b@example.org", "91110000600037341M", "110105491231002"]:
        assert infer_kind(value) in (None, "card"), value
        assert canonical(value, "auto") == value  # left exactly as written
    assert canonical("Hello  World", "auto") == "Hello  World"


def test_resolve_from_the_pii_type() -> None:
    assert resolve("auto", "cn_mobile") == "mobile"
    assert resolve("auto", "cn_resident_id") == "resident_id"
    assert resolve("auto", "bank_card") == "card"
    assert resolve("auto", "none") == "auto"
    assert resolve("auto", "cn_name") == "none"
    assert resolve("none", "cn_mobile") == "none"
    assert resolve("card", "cn_mobile") == "card"


@pytest.mark.parametrize("kind", IDENTIFIER_CHOICES)
def test_column_and_scalar_forms_agree(kind: str) -> None:
    values = [*CORPUS, None]
    expected = [None if v is None else canonical(v, kind) for v in values]
    assert canonical_array(pa.array(values, pa.string()), kind).to_pylist() == expected
    assert [normalizer(kind)(v) for v in CORPUS] == expected[:-1]
    if kind == "auto":
        assert infer_array(pa.array(values)).to_pylist() == [
            None if v is None else infer_kind(v) for v in values]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.sampled_from(
    list("0123456789+-() .@xX\t\u3000\u00a0\x1cabE１８") + ["86", "0086", "+86", "187"]),
    max_size=16).map("".join), max_size=12))
def test_column_and_scalar_agree_on_generated_values(values: list[str]) -> None:
    for kind in IDENTIFIER_CHOICES:
        got = canonical_array(pa.array(values, pa.string()), kind).to_pylist()
        assert got == [canonical(v, kind) for v in values], kind


def test_whitespace_of_the_column_path_is_pythons() -> None:
    """The vector kernels remove exactly the ASCII characters ``str.split`` splits on."""
    chars = [chr(c) for c in range(128)]
    values = [f"1{c}2" for c in chars]
    got = canonical_array(pa.array(values), "generic").to_pylist()
    assert got == ["".join(v.split()) for v in values]


def test_phone_parts() -> None:
    assert phone_parts("+86 187 8161 8495") == ("+86", MOBILE)
    assert phone_parts("0086 187 8161 8495") == ("+86", MOBILE)
    assert phone_parts("187-8161-8495") == ("", MOBILE)
    assert phone_parts("+44 7911 123456") == ("+44", "7911123456")
    assert phone_parts("abc") is None


# ---- masking: keyed operators --------------------------------------------------------------


def ctx(pii: str = "none", column: str = "mobile") -> OpContext:
    return OpContext(column=column, context=f"t.{column}", scope="t", keys=KEYS, pii=pii)


@pytest.mark.parametrize("op", ["hash", "tokenize"])
@pytest.mark.parametrize("pii", ["cn_mobile", "none"])
def test_four_forms_give_one_token(op: str, pii: str) -> None:
    tokens = build_operator(op).apply(pa.array(FOUR + MORE[:2]), ctx(pii)).values.to_pylist()
    assert len(set(tokens)) == 1
    single = build_operator(op).apply(pa.array([MOBILE]), ctx(pii)).values.to_pylist()
    assert tokens[0] == single[0]  # a value already canonical keeps its token


@pytest.mark.parametrize("op", ["hash", "tokenize"])
def test_lower_and_upper_x_give_one_token(op: str) -> None:
    for pii in ("cn_resident_id", "none"):
        values = pa.array(["11010519491231002x", ID_X, "110105 19491231 002X"])
        assert len(set(build_operator(op).apply(values, ctx(pii, "id_no")).values
                       .to_pylist())) == 1


def test_identifier_none_keeps_the_written_forms_apart() -> None:
    op = build_operator("hash", {"identifier": "none"})
    assert len(set(op.apply(pa.array(FOUR), ctx("cn_mobile")).values.to_pylist())) == 4
    assert op.options() == {"identifier": "none"}
    forced = build_operator("hash", {"identifier": "mobile"})
    assert len(set(forced.apply(pa.array(FOUR), ctx("cn_name")).values.to_pylist())) == 1


def test_tokenize_reveals_the_canonical_form() -> None:
    op = build_operator("tokenize")
    tokens = op.apply(pa.array(FOUR + ["11010519491231002x", None]), ctx()).values
    assert op.reverse(tokens, ctx()).to_pylist() == [MOBILE] * 4 + [ID_X, None]


def test_fpe_normalises_declared_identifiers_and_keeps_unknown_formats() -> None:
    op = build_operator("fpe")
    out = op.apply(pa.array(FOUR), ctx("cn_mobile")).values.to_pylist()
    assert len(set(out)) == 1 and len(out[0]) == 11 and out[0].isdigit()
    assert op.reverse(pa.array(out), ctx("cn_mobile")).to_pylist() == [MOBILE] * 4
    kept = op.apply(pa.array(["187-8161-8495"]), ctx("none")).values.to_pylist()
    assert kept[0][3] == "-" and kept[0][8] == "-"


def test_date_shift_moves_one_customer_alike_whatever_the_written_form() -> None:
    batch = pa.RecordBatch.from_pydict({"d": ["2024-03-01"] * 4, "mobile": FOUR})
    op = build_operator("date_shift", {"entity": "mobile", "max_days": 300})
    c = OpContext(column="d", context="t.d", scope="t", keys=KEYS, batch=batch, pii="date")
    assert len(set(op.apply(batch.column("d"), c).values.to_pylist())) == 1


# ---- masking: display mask ---------------------------------------------------------------


@pytest.mark.parametrize("pii", ["cn_mobile", "none"])
def test_display_mask_keeps_the_national_numbers_digits(pii: str) -> None:
    op = build_operator("mask", {"keep_first": 3, "keep_last": 4})
    values = [*FOUR, "0086 187 8161 8495", "+8613800000013", None]
    out = op.apply(pa.array(values), ctx(pii)).values.to_pylist()
    assert out == ["+86 187****8495", "187****8495", "+86 187****8495", "187****8495",
                   "+86 187****8495", "+86 138****0013", None]


def test_display_mask_of_other_columns_is_unchanged() -> None:
    op = build_operator("mask", {"keep_first": 6, "keep_last": 4})
    cards = ["6222 0212 3456 7890", ID_X]
    assert op.apply(pa.array(cards), ctx("none")).values.to_pylist() == [
        "6222 02** **** 7890", "110105********002X"]
    plain = build_operator("mask", {"keep_first": 3, "keep_last": 4, "identifier": "none"})
    assert plain.apply(pa.array(["+8613800000013"]), ctx("cn_mobile")).values.to_pylist() == [
        "+86*******0013"]


# ---- masking: policies ---------------------------------------------------------------------


def table() -> pa.Table:
    return pa.table({"mobile": FOUR, "id_no": ["11010519491231002x", ID_X, ID_X, ID_X]})


def test_preset_views_normalise_and_display_by_declared_type() -> None:
    policy = Policy.from_yaml(
        "version: 1\nextends: jrt0171\ncolumns:\n"
        "  - {name: mobile, pii: cn_mobile}\n  - {name: id_no, pii: cn_resident_id}\n")
    engine = MaskingEngine(policy, KEYS.keysets())
    shown = engine.apply(table(), "display").column("mobile").to_pylist()
    assert shown == ["+86 187****8495", "187****8495", "+86 187****8495", "187****8495"]
    out = engine.apply(table(), "partner_export")
    assert len(set(out.column("mobile").to_pylist())) == 1
    assert len(set(out.column("id_no").to_pylist())) == 1


def test_policy_turns_normalisation_off_per_column() -> None:
    text = ("version: 1\ncolumns:\n"
            "  - {name: mobile, operator: hash, options: {identifier: none}}\n"
            "  - {name: id_no, operator: hash}\n")
    out = MaskingEngine(Policy.from_yaml(text), KEYS.keysets()).apply(table())
    assert len(set(out.column("mobile").to_pylist())) == 4
    assert len(set(out.column("id_no").to_pylist())) == 1


@pytest.mark.parametrize(("options", "match"), [
    ("{identifier: phone}", r"policy.yaml:4: .*'identifier'.*'auto'"),
    ("{normalise: false}", r"policy.yaml:4: .*unknown option 'normalise'"),
])
def test_bad_identifier_options_name_file_and_line(options: str, match: str) -> None:
    text = ("version: 1\ncolumns:\n  - name: mobile\n"
            f"    options: {options}\n    operator: hash\n")
    with pytest.raises(PolicyError, match=match):
        Policy.from_yaml(text, source="policy.yaml")


# ---- covault field encrypt ----------------------------------------------------------------


def test_field_encrypt_gives_one_token_for_the_four_forms(tmp_path: Path) -> None:
    from covault.cli import main

    env = {"COVAULT_PASSPHRASE": "identifier-test-passphrase"}
    path = str(tmp_path / "k.json")
    runner = CliRunner()
    assert runner.invoke(main, ["keys", "create", "-t", "HMAC_SHA256", "-o", path],
                         env=env).exit_code == 0
    r = runner.invoke(main, ["field", "encrypt", "-k", path, "-c", "t.m", "--format", "json",
                             *FOUR], env=env)
    assert r.exit_code == 0, r.output
    tokens = json.loads(r.output)["values"]
    assert len(set(tokens)) == 1
    r = runner.invoke(main, ["field", "encrypt", "-k", path, "-c", "t.m", "--format", "json",
                             "--identifier", "none", *FOUR], env=env)
    assert len(set(json.loads(r.output)["values"])) == 4


def test_phonenumbers_is_imported_lazily() -> None:
    import subprocess

    code = ("import sys, masking.engine, privacy.normalize, privacy.psi; "
            "print('phonenumbers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "False"
