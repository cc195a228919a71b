"""Column-level PII detection from a sample of values.

:func:`detect_column` draws a seeded random sample (default 1,000 values) from a column,
runs every validator of the China pack over it and reports the best-supported PII type.

Confidence
----------
For each type, ``support`` is the mean per-value score over the non-null, non-blank
sampled values (1 = validates; bank cards score 0.8 for a 62-prefixed number failing
Luhn; mobiles 0.5 outside allocated network segments). Then::

    confidence = support * specificity[type]  (+ 0.05 if the column name hints the type
                                               and support >= 0.5; capped at 1)

``specificity`` is 1.0 for types with a check digit (resident id, USCC, bank card),
0.95 for fixed formats without one (mobile, passport, permit, e-mail, IP, date) and 0.9
for the name/address heuristics; a name column whose sample is mostly repeats (fewer than
20 % distinct values, e.g. category labels) has its name support halved. The type with
the highest confidence wins (ties: the order of :data:`PII_TYPES`); if that is below
``threshold`` (default 0.8) the column is ``"none"`` and its confidence is
``1 - best``, i.e. how sure we are that it holds none of the types. Because the name hint
adds at most 0.05 and needs support, it never decides alone.

Native Arrow date/timestamp columns are ``"date"`` with confidence 1. Floats, booleans,
nested columns and binary columns that are not UTF-8 text are ``"none"`` with confidence 1;
an empty or all-null sample is ``"none"`` with confidence 0 (no evidence either way).
Integer columns are read as decimal strings (mobiles and cards are often stored as
integers), binary columns of UTF-8 text as text (Parquet strings written without the
UTF-8 annotation).

JR/T 0171-2020 class
--------------------
================  =====  ==========================================================
PII type          class  reason
================  =====  ==========================================================
cn_resident_id    C2     personal identity information (身份信息)
cn_passport       C2     personal identity information
hk_macau_permit   C2     personal identity information
cn_name           C2     personal identity information
cn_mobile         C2     personal identity / contact information
cn_address        C2     personal identity / contact information
email             C2     personal identity / contact information
bank_card         C2     account information (支付账号); C3 is authentication data
                         (PIN, CVN, track data), which no detector here claims
cn_uscc           C1     an organisation identifier; C2 when most valid codes are
                         ``92...`` (individual businesses, 个体工商户, i.e. a person)
ipv4, ipv6        C1     device / network information
date              C1     a bare date is weakly identifying (birth dates in an id are
                         part of the id)
none              ""     empty string: the ``jrt_class`` key is always present
================  =====  ==========================================================

Warnings
--------
Detection is a sample-based heuristic meant to *suggest* a policy. A column it calls
``"none"`` may still hold personal data (free text, rare formats); review every result.
``scan_table(..., text_types=...)`` counts the identifiers inside such text columns
(:mod:`masking.pii.intext`).
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from masking.pii import textual as tx
from masking.pii import validators as va
from masking.pii._arrow import ArrayLike, fold_fullwidth, regex_mask, to_strings
from masking.pii.intext import TextCounts, check_text_types, count_in_text
from privacy.errors import InputError

__all__ = ["PII_TYPES", "JRT_CLASS", "Detection", "ColumnScan", "detect_column", "scan_table"]

PII_TYPES: tuple[str, ...] = (
    "cn_resident_id",
    "cn_uscc",
    "bank_card",
    "cn_mobile",
    "cn_passport",
    "hk_macau_permit",
    "email",
    "ipv4",
    "ipv6",
    "date",
    "cn_name",
    "cn_address",
    "none",
)

JRT_CLASS: dict[str, str] = {
    "cn_resident_id": "C2",
    "cn_passport": "C2",
    "hk_macau_permit": "C2",
    "cn_name": "C2",
    "cn_mobile": "C2",
    "cn_address": "C2",
    "email": "C2",
    "bank_card": "C2",
    "cn_uscc": "C1",
    "ipv4": "C1",
    "ipv6": "C1",
    "date": "C1",
    "none": "",
}

Scorer = Callable[[pa.Array, _dt.date | None], npt.NDArray[np.float64]]


def _flt(fn: Callable[[pa.Array], npt.NDArray[np.bool_]]) -> Scorer:
    return lambda arr, today: fn(arr).astype(np.float64)


_DETECTORS: tuple[tuple[str, Scorer, float, str], ...] = (
    (
        "cn_resident_id",
        lambda a, t: va.resident_id_valid(a, today=t).astype(np.float64),
        1.0,
        r"id_?(no|num|card)|idcard|cert|identity|sfz|身份证|证件",
    ),
    ("cn_uscc", _flt(va.uscc_valid), 1.0, r"uscc|credit_?code|信用代码"),
    ("bank_card", lambda a, t: va.bank_card_score(a), 1.0, r"card|acct|account|卡号|账号|帐号"),
    ("cn_mobile", lambda a, t: va.mobile_score(a), 0.95, r"mobile|phone|tel|cell|手机|电话"),
    ("cn_passport", _flt(va.passport_valid), 0.95, r"passport|护照"),
    ("hk_macau_permit", _flt(va.hk_macau_permit_valid), 0.95, r"permit|通行证"),
    ("email", _flt(tx.email_valid), 0.95, r"e?mail|邮箱"),
    ("ipv4", _flt(tx.ipv4_valid), 0.95, r"(^|_)ip|ip_?addr"),
    ("ipv6", _flt(tx.ipv6_valid), 0.95, r"(^|_)ip|ip_?addr"),
    ("date", _flt(tx.date_valid), 0.95, r"date|_dt$|time|birth|日期|时间|生日"),
    ("cn_name", _flt(tx.cn_name_valid), 0.9, r"name|姓名|户名|名字"),
    ("cn_address", _flt(tx.cn_address_valid), 0.9, r"addr|地址|住址"),
)
_HINT_BONUS = 0.05


@dataclass(frozen=True)
class Detection:
    """Result of :func:`detect_column`: PII type name, confidence in [0, 1], JR/T class."""

    pii: str
    confidence: float
    jrt_class: str


@dataclass(frozen=True)
class ColumnScan:
    """One column of :func:`scan_table`; ``in_text`` counts the identifiers found inside
    the sampled cells of a text column of type ``"none"`` (when asked for)."""

    name: str
    pii: str
    confidence: float
    jrt_class: str
    in_text: TextCounts | None = None


def _sample(values: pa.Array, sample: int, seed: int) -> pa.Array:
    if len(values) <= sample:
        return values
    idx = np.sort(np.random.default_rng(seed).choice(len(values), sample, replace=False))
    return values.take(pa.array(idx, type=pa.int64()))


def detect_column(
    values: ArrayLike,
    *,
    sample: int = 1000,
    seed: int = 0,
    name: str | None = None,
    threshold: float = 0.8,
    today: _dt.date | None = None,
) -> Detection:
    """Detect the PII type of a column from a random sample of its values.

    Parameters
    ----------
    values:
        The column (Arrow array or chunked array, or a sequence of strings).
    sample:
        How many values to sample (without replacement, seeded); all when fewer.
    seed:
        Seed of the sample, so results are reproducible.
    name:
        Column name; a matching hint ("id_no", "mobile", "身份证", ...) adds a little.
    threshold:
        Minimum confidence to report a type; below it the result is ``"none"``.
    today:
        Reference date for resident-id birth dates (default: today).

    Returns
    -------
    Detection
        See the module docstring for how confidence and the JR/T class are derived.
    """
    if sample < 1:
        raise InputError(f"sample must be at least 1, got {sample}")
    if not 0.0 < threshold <= 1.0:
        raise InputError(f"threshold must be in (0, 1], got {threshold}")
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks else pa.array([], values.type)
    elif not isinstance(values, pa.Array):
        values = to_strings(values)
    picked = _sample(values, sample, seed).drop_null()
    if pa.types.is_temporal(picked.type) and not pa.types.is_time(picked.type):
        if len(picked) == 0:
            return Detection("none", 0.0, "")
        return Detection("date", 1.0, JRT_CLASS["date"])
    picked = _binary_as_text(picked)
    t = picked.type
    if pa.types.is_dictionary(t):
        t = t.value_type
    if not (
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_string_view(t)
        or pa.types.is_integer(t)
    ):
        return Detection("none", 1.0, "")  # no validator applies to floats, bools, binary...
    strings = fold_fullwidth(to_strings(picked))  # full-width digits read as digits
    strings = strings.filter(regex_mask(pc.utf8_trim_whitespace(strings), r"."))
    if len(strings) == 0:
        return Detection("none", 0.0, "")
    hint = (name or "").lower()
    best, best_conf, best_scores = "none", 0.0, np.zeros(0)
    for pii, scorer, specificity, hint_re in _DETECTORS:
        if min(specificity + _HINT_BONUS, 1.0) <= best_conf:
            continue  # cannot beat the best so far (ties keep the earlier type)
        scores = scorer(strings, today)
        support = float(scores.mean())
        if pii == "cn_name" and support > 0 and len(strings) >= 20:
            distinct = pc.count_distinct(strings).as_py() / len(strings)
            support *= 1.0 if distinct >= 0.2 else 0.5
        conf = support * specificity
        if hint and support >= 0.5 and re.search(hint_re, hint):
            conf += _HINT_BONUS
        conf = min(conf, 1.0)
        if conf > best_conf:
            best, best_conf, best_scores = pii, conf, scores
    if best_conf < threshold:
        return Detection("none", round(1.0 - best_conf, 4), "")
    jrt = JRT_CLASS[best]
    if best == "cn_uscc":
        individual = regex_mask(pc.utf8_upper(pc.utf8_trim_whitespace(strings)), r"^92")
        if individual[best_scores > 0].mean() > 0.5:
            jrt = "C2"
    return Detection(best, round(best_conf, 4), jrt)


def _binary_as_text(values: pa.Array) -> pa.Array:
    """A binary column whose values are all UTF-8 as text (a Parquet ``BYTE_ARRAY`` column
    written without the UTF-8 annotation reads as binary, and its mobiles and ids went
    unseen: ``none`` with confidence 1); anything else as it is."""
    t = values.type
    if not (pa.types.is_binary(t) or pa.types.is_large_binary(t)):
        return values
    try:
        return values.cast(pa.large_string() if pa.types.is_large_binary(t) else pa.string())
    except pa.ArrowInvalid:
        return values


def scan_table(
    table: pa.Table | pa.RecordBatch,
    *,
    sample: int = 1000,
    seed: int = 0,
    threshold: float = 0.8,
    today: _dt.date | None = None,
    text_types: Iterable[str] | None = None,
) -> list[ColumnScan]:
    """Run :func:`detect_column` on every column (column names serve as hints).

    With ``text_types`` (e.g. :data:`masking.pii.intext.STRUCTURED_TEXT_TYPES`), every
    text column detected as ``"none"`` is also searched for identifiers of those types
    inside its cells (the same seeded sample), and :attr:`ColumnScan.in_text` counts them.
    """
    types = None if text_types is None else check_text_types(text_types)
    out: list[ColumnScan] = []
    for name, column in zip(table.column_names, table.columns, strict=True):
        d = detect_column(
            column, sample=sample, seed=seed, name=name, threshold=threshold, today=today
        )
        counts = None
        if types is not None and d.pii == "none" and _is_text(column.type):
            values = column
            if isinstance(column, pa.ChunkedArray):
                values = column.combine_chunks() if column.num_chunks else pa.array([], column.type)
            picked = _binary_as_text(_sample(values, sample, seed).drop_null())
            counts = count_in_text(picked, types=types, today=today)
        out.append(ColumnScan(name, d.pii, d.confidence, d.jrt_class, counts))
    return out


def _is_text(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        t = t.value_type
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t)
                or pa.types.is_string_view(t) or pa.types.is_binary(t)
                or pa.types.is_large_binary(t))
