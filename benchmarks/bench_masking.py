"""Masking throughput: JR/T 0171 display and partner-export views vs presidio's mask.

Usage: python benchmarks/bench_masking.py [--rows 1000000] [--baseline-rows 100000]

Generates ROWS x 8 PII-shaped columns with numpy (name, resident id with valid check
digit, mobile, 19-digit Luhn-valid card, address, birth date, income, e-mail) and, in one
run and one thread, measures cells/s (rows x 8 input columns / seconds):

(a) the ``display`` view of the ``jrt0171`` preset, in memory (bar: 6,000,000 cells/s);
(b) a ``partner_export`` view (tokenize id and card, hash mobile and e-mail, generalize
    birth date and address, drop name, round income), in memory (bar: 1,000,000 cells/s);
(c) presidio-anonymizer's ``mask`` operator value by value on the same mobile column
    (BASELINE_ROWS values), against covault's mask of that column alone;
and file to file (Parquet in, Parquet out, atomic, with metadata) for (a) and (b).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).parent))
from _common import best_of, machine, table  # noqa: E402

from masking.engine import MaskingEngine  # noqa: E402
from masking.files import mask_file  # noqa: E402
from masking.operators import OpContext, build_operator  # noqa: E402
from masking.pii import generators as gen  # noqa: E402
from masking.pii._data import SINGLE_SURNAMES  # noqa: E402
from masking.policy import Policy  # noqa: E402
from privacy.keys import Keyset  # noqa: E402

PARTNER = """
version: 1
extends: jrt0171
context: bench.customers
columns:
  - {name: income, operator: round, options: {to: 10000}}
"""
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国志文斌波辉"
_PROVINCES = ["浙江省", "广东省", "江苏省", "四川省", "湖北省", "北京市", "上海市"]
_CITIES = ["杭州市", "广州市", "南京市", "成都市", "武汉市", "宁波市", "深圳市"]
_DISTRICTS = ["西湖区", "天河区", "鼓楼区", "武侯区", "江汉区", "余杭区", "南山区", "长安县"]
_STREETS = ["文三路", "中山路", "人民路", "解放路", "建设路", "和平街"]


def _pick(rng: np.random.Generator, pool: list[str], n: int) -> pa.Array:
    return pa.array(pool).take(pa.array(rng.integers(0, len(pool), n)))


def generate(n: int, seed: int = 0) -> pa.Table:
    """``n`` rows of PII-shaped columns, built with vector operations only."""
    rng = np.random.default_rng(seed)
    given = [a + b for a in _GIVEN for b in _GIVEN] + list(_GIVEN)
    name = pc.binary_join_element_wise(
        _pick(rng, sorted(SINGLE_SURNAMES) + ["欧阳", "司马"], n), _pick(rng, given, n), "")
    number = pc.cast(pa.array(rng.integers(1, 300, n)), pa.string())
    address = pc.binary_join_element_wise(
        _pick(rng, _PROVINCES, n), _pick(rng, _CITIES, n), _pick(rng, _DISTRICTS, n),
        _pick(rng, _STREETS, n), number, "号", "")
    days = pa.array(rng.integers(-20000, 12000, n).astype(np.int32), pa.date32())
    birth = pc.strftime(days.cast(pa.timestamp("s")), format="%Y-%m-%d")
    local = [f"user{i:04d}" for i in range(5000)]
    email = pc.binary_join_element_wise(
        _pick(rng, local, n), _pick(rng, ["example.org", "example.com", "bank.cn"], n), "@")
    income = pa.array(rng.integers(20_000, 900_000, n))
    return pa.table({
        "name": name, "id_no": gen.resident_ids(n, seed=seed + 1),
        "mobile": gen.mobiles(n, seed=seed + 2), "card_no": gen.bank_cards(n, seed=seed + 3),
        "address": address, "birth_date": birth, "income": income, "email": email,
    })


def presidio_rate(values: list[str]) -> float | None:
    """Values/s of presidio-anonymizer's Mask operator, value by value (None if absent)."""
    try:
        from presidio_anonymizer.operators import Mask
    except ImportError:
        return None
    op = Mask()
    params = {"masking_char": "*", "chars_to_mask": 4, "from_end": True}
    op.validate(params)
    started = time.perf_counter()
    for v in values:
        op.operate(v, params)
    return len(values) / (time.perf_counter() - started)


def presidio_engine_rate(values: list[str]) -> float | None:
    """Values/s of presidio's AnonymizerEngine masking each cell (how presidio-structured
    applies an operator to a column), value by value (None if absent)."""
    try:
        from presidio_anonymizer import AnonymizerEngine
        from presidio_anonymizer.entities import OperatorConfig, RecognizerResult
    except ImportError:
        return None
    engine = AnonymizerEngine()
    ops = {
        "PHONE_NUMBER": OperatorConfig(
            "mask", {"masking_char": "*", "chars_to_mask": 4, "from_end": True}
        )
    }
    started = time.perf_counter()
    for v in values:
        engine.anonymize(
            text=v, analyzer_results=[RecognizerResult("PHONE_NUMBER", 0, len(v), 1.0)],
            operators=ops,
        )
    return len(values) / (time.perf_counter() - started)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--baseline-rows", type=int, default=100_000)
    args = ap.parse_args()
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    n = args.rows
    print(f"# bench_masking: {n:,} rows x 8 columns; one thread; {machine()}")
    started = time.perf_counter()
    data = generate(n)
    print(f"# generated in {time.perf_counter() - started:.1f} s")
    cells = n * data.num_columns
    keys = [Keyset.create("AES256_SIV"), Keyset.create("HMAC_SHA256")]
    display = MaskingEngine(Policy.preset("jrt0171"))
    partner = MaskingEngine(Policy.from_yaml(PARTNER), keys)
    rows: list[tuple[str, ...]] = []
    rates: dict[str, float] = {}

    def record(name: str, seconds: float, count: int, bar: float | None = None) -> None:
        rate = count / seconds
        rates[name] = rate
        verdict = "" if bar is None else ("PASS" if rate >= bar else "FAIL")
        rows.append((name, f"{count:,}", f"{seconds:.3f}", f"{rate:,.0f}",
                     "" if bar is None else f"{bar:,.0f}", verdict))

    t, out = best_of(lambda: display.apply(data, view="display"), repeat=2)
    assert out.num_rows == n
    record("(a) jrt0171 display, in memory", t, cells, 6_000_000)
    t, out = best_of(lambda: partner.apply(data, view="partner_export"), repeat=1)
    assert out.num_rows == n and "name" not in out.column_names
    record("(b) partner_export, in memory", t, cells, 1_000_000)
    mask = build_operator("mask", {"keep_first": 3, "keep_last": 4})
    mobile = data.column("mobile").combine_chunks()
    t, _ = best_of(lambda: mask.apply(mobile, OpContext("mobile", "t.mobile")), repeat=3)
    record("covault mask, mobile column only", t, n)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "customers.parquet"
        pq.write_table(data, src)
        scan_cmd = [sys.executable, "-c", "from covault.cli import main; main()",
                    "scan", str(src), "--format", "json"]
        started = time.perf_counter()
        scan = subprocess.run(scan_cmd, capture_output=True, text=True, check=True)
        scan_s = time.perf_counter() - started
        found = {c["name"]: c["pii"] for c in json.loads(scan.stdout)["columns"]}
        verdict = "PASS" if scan_s <= 5 else "FAIL"
        print(f"# covault scan of the {n:,}-row Parquet file: {scan_s:.2f} s "
              f"(bar 5 s: {verdict}, whole command incl. start-up); found {found}")
        for label, engine, view in (("(a) display", display, "display"),
                                    ("(b) partner_export", partner, "partner_export")):
            dst = Path(tmp) / f"{view}.parquet"
            t, _ = best_of(lambda e=engine, v=view, d=dst: mask_file(
                e.policy, src, d, view=v, keyset=keys), repeat=1)
            record(f"{label}, Parquet file to file", t, cells)
    base_n = min(args.baseline_rows, n)
    rate = presidio_rate(mobile.slice(0, base_n).to_pylist())
    if rate is None:
        print("# presidio-anonymizer is not installed: pip install 'covault[bench]'")
    else:
        rates["presidio"] = rate
        rows.append(("(c) presidio-anonymizer Mask, value by value", f"{base_n:,}",
                     f"{base_n / rate:.3f}", f"{rate:,.0f}", "", ""))
        engine_n = min(base_n, 20_000)
        engine_rate = presidio_engine_rate(mobile.slice(0, engine_n).to_pylist())
        if engine_rate is not None:
            rates["presidio engine"] = engine_rate
            rows.append(("(c') presidio AnonymizerEngine mask, per cell", f"{engine_n:,}",
                         f"{engine_n / engine_rate:.3f}", f"{engine_rate:,.0f}", "", ""))
    print(table(rows, ("case", "cells", "seconds", "cells/s", "bar", "")))
    if "presidio" in rates:
        col = rates["covault mask, mobile column only"] / rates["presidio"]
        view = rates["(a) jrt0171 display, in memory"] / rates["presidio"]
        print(f"\ncovault/presidio: {col:,.0f}x on the mobile column alone; "
              f"{view:,.0f}x for the whole display view (cells/s)")
    if "presidio engine" in rates:
        col = rates["covault mask, mobile column only"] / rates["presidio engine"]
        print(f"covault/presidio AnonymizerEngine: {col:,.0f}x on the mobile column")


if __name__ == "__main__":
    main()
