"""``generalize``: coarser values that stay useful for analysis.

===============  ===============================================  =====================
``to``           input                                            output (text)
===============  ===============================================  =====================
``year``         a date (text ``YYYY-MM-DD`` or a date column)    ``1974``
``quarter``      a date                                           ``1974-Q4``
``month``        a date                                           ``1974-10``
``age_band``     a resident id (its birth date) or a date         ``40-49`` (``width``)
``bucket``       a number                                         ``[60000, 70000)``
``province``     a Chinese address                                ``浙江省``
``city``         a Chinese address                                ``浙江省杭州市``
``district``     a Chinese address                                ``浙江省杭州市西湖区``
===============  ===============================================  =====================

Addresses are cut after the last administrative marker of the level asked for, from a
small grammar of markers: province level 省/自治区/特别行政区 or a municipality
(北京/天津/上海/重庆 市); prefecture level 市/自治州/地区/盟; county level 区/县/旗/市.
An address in which no marker is found is invalid (the rule's ``on_invalid`` decides).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from masking.operators._base import (
    BoolArray,
    OpContext,
    Operator,
    OpResult,
    as_text,
    parse_dates,
    parse_numbers,
)
from masking.pii.validators import resident_id_valid

__all__ = ["Generalize", "ADDRESS_PATTERNS"]

_LEVELS = ("year", "quarter", "month", "age_band", "bucket", "province", "city", "district")
_NOT_MARK = r"[^省市区县旗]"
_PROVINCE = rf"(?:{_NOT_MARK}{{1,8}}?(?:省|自治区|特别行政区)|(?:北京|天津|上海|重庆)市?)"
_CITY = rf"(?:{_NOT_MARK}{{1,10}}?(?:市|自治州|地区|盟))"
_DISTRICT = rf"(?:{_NOT_MARK}{{1,10}}?(?:区|县|旗|市))"

#: RE2 patterns (one capture group ``g``) that cut an address at each level.
ADDRESS_PATTERNS = {
    "province": rf"^\s*(?P<g>{_PROVINCE})",
    "city": rf"^\s*(?P<g>{_PROVINCE}?{_CITY}|{_PROVINCE})",
    "district": rf"^\s*(?P<g>{_PROVINCE}?{_CITY}?{_DISTRICT}|{_PROVINCE}?{_CITY}|{_PROVINCE})",
}


def _labels(index: np.ndarray, names: list[str], keep: BoolArray) -> pa.Array:
    """Take ``names[index]`` as a string column, null where ``keep`` is False."""
    dictionary = pa.array(names, pa.string())
    idx = pa.array(np.where(keep, index, 0).astype(np.int32), mask=~keep)
    return pc.take(dictionary, idx)


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


@dataclass(frozen=True)
class Generalize(Operator):
    """Replace values by a coarser class (see the module table for ``to``).

    Parameters
    ----------
    to:
        The target level, one of ``year quarter month age_band bucket province city
        district``.
    width:
        Band width for ``age_band`` (default 10) and ``bucket`` (required unless
        ``edges``).
    origin:
        Where ``bucket`` bands start (default 0).
    edges:
        Explicit ascending bucket edges instead of ``width``.
    as_of:
        Reference date for ``age_band`` (default: today).
    """

    name = "generalize"
    to: str = ""
    width: float | None = None
    origin: float = 0.0
    edges: tuple[float, ...] | None = None
    as_of: _dt.date | None = None

    def __post_init__(self) -> None:
        self.check(self.to in _LEVELS, "to", f"must be one of {', '.join(_LEVELS)}")
        if self.width is not None:
            self.check(self.width > 0, "width", "must be > 0")
            self.check(self.to in ("age_band", "bucket"), "width", "applies to age_band/bucket")
        if self.edges is not None:
            self.check(self.to == "bucket", "edges", "applies to bucket only")
            e = list(self.edges)
            self.check(len(e) >= 1 and e == sorted(set(e)), "edges", "must be ascending")
        if self.to == "bucket":
            self.check(
                (self.width is None) != (self.edges is None), "width", "give width or edges"
            )
        if self.as_of is not None:
            self.check(self.to == "age_band", "as_of", "applies to age_band only")

    def apply(self, values: pa.Array, ctx: OpContext) -> OpResult:
        if self.to in ("province", "city", "district"):
            return self._address(values)
        if self.to == "bucket":
            return self._bucket(values)
        if self.to == "age_band":
            return self._age_band(values)
        return self._date(values)

    # -- addresses
    def _address(self, values: pa.Array) -> OpResult:
        text = as_text(values)
        cut = _cut_addresses(text, ADDRESS_PATTERNS[self.to])
        invalid = pc.and_(text.is_valid(), cut.is_null()).to_numpy(zero_copy_only=False)
        return self._result(cut, invalid, f"no {self.to}-level marker found in the address")

    # -- dates
    def _date(self, values: pa.Array) -> OpResult:
        dates, ok, null = parse_dates(values)
        year = pc.cast(pc.year(dates), pa.string())
        if self.to == "year":
            out = year
        elif self.to == "quarter":
            out = pc.binary_join_element_wise(year, pc.cast(pc.quarter(dates), pa.string()), "-Q")
        else:
            month = pc.utf8_lpad(pc.cast(pc.month(dates), pa.string()), 2, "0")
            out = pc.binary_join_element_wise(year, month, "-")
        return self._result(out, ~ok & ~null, "not a date (expected YYYY-MM-DD)")

    # -- numbers
    def _bucket(self, values: pa.Array) -> OpResult:
        x, ok, null = parse_numbers(values)
        if self.edges is not None:
            edges = np.asarray(self.edges, dtype=np.float64)
            index = np.searchsorted(edges, x, side="right")
            names = [f"<{_number(edges[0])}"]
            pairs = zip(edges[:-1], edges[1:], strict=True)
            names += [f"[{_number(a)}, {_number(b)})" for a, b in pairs]
            names.append(f">={_number(edges[-1])}")
            return self._result(_labels(index, names, ok), ~ok & ~null, "not a number")
        width = float(self.width or 1.0)
        band = np.floor((np.where(ok, x, self.origin) - self.origin) / width)
        uniq, index = np.unique(band[ok], return_inverse=True)
        full = np.zeros(len(x), dtype=np.int64)
        full[ok] = index
        names = [
            f"[{_number(self.origin + b * width)}, {_number(self.origin + (b + 1) * width)})"
            for b in uniq.tolist()
        ]
        return self._result(_labels(full, names or [""], ok), ~ok & ~null, "not a number")

    # -- ages
    def _age_band(self, values: pa.Array) -> OpResult:
        ymd, ok, null = _birth_ymd(values)
        ref = self.as_of or _dt.date.today()
        born = ymd[ok]
        age = ref.year - born // 10000 - ((born % 10000) > ref.month * 100 + ref.day)
        width = int(self.width or 10)
        lows = np.zeros(len(ymd), dtype=np.int64)
        lows[ok] = (age // width) * width
        uniq, index = np.unique(lows[ok], return_inverse=True)
        full = np.zeros(len(ymd), dtype=np.int64)
        full[ok] = index
        names = [f"{lo}-{lo + width - 1}" for lo in uniq.tolist()]
        reason = "not a valid resident id or date (cannot derive an age)"
        return self._result(_labels(full, names or [""], ok), ~ok & ~null, reason)

    @staticmethod
    def _result(out: pa.Array, invalid: np.ndarray, reason: str) -> OpResult:
        bad = np.asarray(invalid, dtype=bool)
        return OpResult(out, bad if bad.any() else None, reason)


def _cut_addresses(text: pa.Array, pattern: str) -> pa.Array:
    """``extract_regex`` of ``pattern`` over ``text``, run once per distinct *head*.

    A match holds at most three of 省市区县旗 (each level ends with at most one, and the
    filler excludes them), so it lies within the head of the address up to its third such
    marker. Heads repeat far more than whole addresses (street and number vary), so the
    regex (RE2 submatch extraction, the slow part) runs on one representative per head.
    """
    if len(text) == 0:
        return pa.array([], pa.string())
    marked = text
    for ch in "省市区县":  # 旗 is rare: a head without it is longer, still correct
        marked = pc.replace_substring(marked, ch, ch + "\x00")
    head = pc.binary_join(pc.list_slice(pc.split_pattern(marked, "\x00", max_splits=3), 0, 3),
                          "")
    enc = pc.dictionary_encode(head)
    idx = np.asarray(enc.indices.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64)
    if len(enc.dictionary) * 2 > len(text):
        return pc.struct_field(pc.extract_regex(text, pattern), 0)
    first = np.zeros(len(enc.dictionary), dtype=np.int64)
    first[idx[::-1]] = np.arange(len(idx))[::-1]
    reps = pc.struct_field(pc.extract_regex(text.take(pa.array(first)), pattern), 0)
    out = reps.take(enc.indices)
    return pc.if_else(text.is_valid(), out, pa.scalar(None, pa.string()))


def _birth_ymd(values: pa.Array) -> tuple[np.ndarray, BoolArray, BoolArray]:
    """Birth dates as ``YYYYMMDD`` integers from resident ids (GB 11643) or dates."""
    null = np.asarray(values.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    if not (pa.types.is_date(values.type) or pa.types.is_timestamp(values.type)):
        # ids as the validator reads them: 110105 19491231 002X is 11010519491231002X
        text = pc.replace_substring_regex(as_text(values), r"[\s\-]", "")
        is_id = resident_id_valid(text)
        if is_id.sum() * 2 >= max(1, (~null).sum()):
            long = pc.utf8_slice_codeunits(text, 6, 14)
            short = pc.binary_join_element_wise("19", pc.utf8_slice_codeunits(text, 6, 12), "")
            digits = pc.if_else(pc.equal(pc.utf8_length(text), 18), long, short)
            picked = pc.if_else(pa.array(is_id), digits, pa.scalar("0", pa.string()))
            ymd = pc.cast(picked, pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
            return np.asarray(ymd, dtype=np.int64), is_id & ~null, null
    dates, ok, null = parse_dates(values)
    y = pc.year(dates).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    m = pc.month(dates).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    d = pc.day(dates).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    return y * 10000 + m * 100 + d, ok, null

