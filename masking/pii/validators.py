"""Validators for mainland-China identifiers: resident ids, mobiles, bank cards, USCC,
passports and Hong Kong/Macau travel permits.

Every validator takes an Arrow array (or chunked array, or a Python sequence) and returns
a numpy ``bool`` array of the same length: ``True`` where the value is well-formed *and*
its check digit (where there is one) is right; nulls and non-string values are ``False``.
The work is vectorized: a pyarrow RE2 match selects well-shaped values, then numpy does
the check-digit arithmetic over the fixed-width byte matrix of those values.
``is_valid_*`` functions are scalar conveniences over the same code.

Rules (with sources)
--------------------
resident id (GB 11643-1999)
    18 chars: 6-digit region code, ``YYYYMMDD`` birth date, 3-digit sequence (odd =
    male), check char ``"10X98765432"[sum(d_i * w_i) mod 11]`` with weights
    7,9,10,5,8,4,2,1,6,3,7,9,10,5,8,4,2. The region's first two digits must be a known
    province code (``PROVINCES``; first digit 1-8), the birth date a real date in
    [1900-01-01, today]. Legacy 15-digit ids (pre-1999): region, ``YYMMDD`` read as
    19YY, 3-digit sequence, no check digit. Lower-case ``x``, surrounding spaces and
    spaces or hyphens between the digits (``110105 19491231 002X``) are accepted.
mobile
    ``1[3-9]`` + 9 digits, optional ``+86``/``0086`` prefix (or ``86`` set apart by a
    separator: ``86-138-0013-8000``), spaces/dashes/brackets ignored.
    :func:`mobile_score` also weighs the 3-digit network segment against the MIIT
    allocation (130-139, 145-149, 150-153, 155-159, 162, 165-167, 170-178, 180-199):
    unallocated segments score 0.5.
bank card
    16-19 digits (spaces/dashes ignored). Luhn (ISO/IEC 7812-1) decides, except that
    Luhn is not guaranteed for every domestic debit card, so a UnionPay-prefixed (``62``)
    number that fails Luhn still scores :data:`UNIONPAY_NO_LUHN_SCORE`.
USCC (GB 32100-2015)
    18 chars over ``0-9ABCDEFGHJKLMNPQRTUWXY`` (no I, O, S, V, Z): registration authority
    (``1-9``, ``A``, ``N``, ``Y``), category, 6-digit region code, 9-char organisation
    code, check char ``31 - (sum(c_i * w_i) mod 31)`` (31 -> 0) with weights
    ``3**i mod 31`` = 1,3,9,27,19,26,16,17,20,29,25,13,8,24,10,30,28.
passport (PRC)
    Public descriptions of the numbering (no issuing-authority specification was
    available): ``E`` + 8 digits (e-passport, 2012-), ``E`` + letter (not I/O) + 7
    digits (once the E-digit range ran out), ``G`` + 8 digits (pre-2012), official
    passports ``D``/``S``/``P`` + 7-8 digits or ``DE``/``SE``/``PE`` + 7 digits.
Hong Kong/Macau travel permits
    Same kind of source. Exit-Entry Permit of mainland residents: ``C`` + 8 digits or
    ``C`` + letter + 7 digits (card type, 2014-), ``W`` + 8 digits (booklet type);
    Mainland Travel Permit of HK/Macau residents: ``H``/``M`` + 8 digits (+ 2-digit
    issue count on older cards). No check digit: pattern only.

Warnings
--------
These are plausibility checks, not proofs of existence: a valid check digit does not
mean a person or card exists, and passport/permit formats have no check digit at all.
"""

from __future__ import annotations

import datetime as _dt

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from masking.pii._arrow import (
    ArrayLike,
    BoolArray,
    char_matrix,
    digits_to_int,
    regex_mask,
    subset,
    to_strings,
    valid_ymd,
)
from masking.pii._data import PROVINCES
from privacy.errors import DomainError

__all__ = [
    "UNIONPAY_NO_LUHN_SCORE",
    "resident_id_valid",
    "mobile_valid",
    "mobile_score",
    "luhn_valid",
    "bank_card_score",
    "bank_card_valid",
    "uscc_valid",
    "passport_valid",
    "hk_macau_permit_valid",
    "resident_id_birth_dates",
    "resident_id_genders",
    "resident_id_birth_date",
    "resident_id_gender",
    "resident_id_region",
    "is_valid_resident_id",
    "is_valid_mobile",
    "is_luhn_valid",
    "is_valid_bank_card",
    "is_valid_uscc",
    "is_valid_passport",
    "is_valid_hk_macau_permit",
]

FloatArray = npt.NDArray[np.float64]

#: Score of a 62-prefixed 16-19 digit number that fails Luhn (a Luhn-valid card scores 1).
UNIONPAY_NO_LUHN_SCORE = 0.8

_ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
_ID_CHECK = np.frombuffer(b"10X98765432", dtype=np.uint8)
_PROVINCE_OK = np.zeros(100, dtype=bool)
_PROVINCE_OK[[int(k) for k in PROVINCES]] = True

_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_CHAR = f"[{_USCC_ALPHABET}]"
_USCC_RE = f"^[1-9ANY]{_USCC_CHAR}[0-9]{{6}}{_USCC_CHAR}{{10}}$"
_USCC_VALUE = np.full(256, -1, dtype=np.int64)
_USCC_VALUE[np.frombuffer(_USCC_ALPHABET.encode(), dtype=np.uint8)] = np.arange(31)
_USCC_WEIGHTS = np.array([pow(3, i, 31) for i in range(17)], dtype=np.int64)

_MOBILE_SEGMENTS = np.zeros(100, dtype=bool)  # indexed by the 2nd and 3rd digit
for _lo, _hi in ((30, 39), (45, 49), (50, 53), (55, 59), (62, 62), (65, 67), (70, 78), (80, 99)):
    _MOBILE_SEGMENTS[_lo : _hi + 1] = True

_LETTER = "[A-HJ-NP-Z]"
_PASSPORT_RE = (
    rf"^(?:E(?:[0-9]|{_LETTER})[0-9]{{7}}|G[0-9]{{8}}|[DSP][0-9]{{7,8}}|[DSP]E[0-9]{{7}})$"
)
_PERMIT_RE = rf"^(?:C(?:[0-9]|{_LETTER})[0-9]{{7}}|W[0-9]{{8}}|[HM][0-9]{{8}}(?:[0-9]{{2}})?)$"


def _norm_id(values: ArrayLike) -> pa.Array:
    return pc.utf8_upper(pc.utf8_trim_whitespace(to_strings(values)))


def _today_int(today: _dt.date | None) -> int:
    t = today or _dt.date.today()
    return t.year * 10000 + t.month * 100 + t.day


def _resident_ids(
    values: ArrayLike, today: _dt.date | None
) -> tuple[BoolArray, npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(valid, birth YYYYMMDD, sequence digit) for every value; 0 where invalid."""
    arr = _strip(_norm_id(values), r"[\s\-]")  # 110105 19491231 002X: grouped as on forms
    n = len(arr)
    valid = np.zeros(n, dtype=bool)
    birth = np.zeros(n, dtype=np.int64)
    seq = np.zeros(n, dtype=np.int64)
    limit = _today_int(today)
    for width, pattern in ((18, r"^[1-8][0-9]{16}[0-9X]$"), (15, r"^[1-8][0-9]{14}$")):
        sub, idx = subset(arr, regex_mask(arr, pattern))
        if not len(sub):
            continue
        m = char_matrix(sub, width)
        d = (m - np.uint8(48)).astype(np.int32)
        ok = _PROVINCE_OK[d[:, 0] * 10 + d[:, 1]]
        if width == 18:
            ymd = digits_to_int(m[:, 6:14])
            ok &= _ID_CHECK[(d[:, :17] @ _ID_WEIGHTS.astype(np.int32)) % 11] == m[:, 17]
            gender_digit = d[:, 16]
        else:
            ymd = 19000000 + digits_to_int(m[:, 6:12])
            gender_digit = d[:, 14]
        ok &= valid_ymd(ymd // 10000, ymd // 100 % 100, ymd % 100)
        ok &= (ymd >= 19000101) & (ymd <= limit)
        valid[idx] = ok
        birth[idx] = np.where(ok, ymd, 0)
        seq[idx] = np.where(ok, gender_digit, 0)
    return valid, birth, seq


def resident_id_valid(values: ArrayLike, *, today: _dt.date | None = None) -> BoolArray:
    """Which values are valid GB 11643 resident ids (18-digit, or legacy 15-digit).

    Parameters
    ----------
    values:
        Strings (integers are formatted in decimal).
    today:
        Reference date for "birth date not in the future" (default: today). Pass a fixed
        date in tests and reproducible jobs.
    """
    return _resident_ids(values, today)[0]


def resident_id_birth_dates(values: ArrayLike, *, today: _dt.date | None = None) -> pa.Array:
    """Birth dates (``date32``) of resident ids; null where the id is not valid."""
    valid, birth, _ = _resident_ids(values, today)
    ymd = birth[valid]
    days = (
        np.array(
            [_dt.date(int(v // 10000), int(v // 100 % 100), int(v % 100)).toordinal() for v in ymd],
            dtype=np.int64,
        )
        - _dt.date(1970, 1, 1).toordinal()
    )
    out = np.zeros(len(valid), dtype=np.int32)
    out[valid] = days
    return pa.array(out, type=pa.date32(), mask=~valid)


def resident_id_genders(values: ArrayLike, *, today: _dt.date | None = None) -> pa.Array:
    """``"M"``/``"F"`` from the sequence code's last digit (odd = male); null if invalid."""
    valid, _, seq = _resident_ids(values, today)
    labels = np.where(seq % 2 == 1, "M", "F")
    return pa.array(labels, type=pa.string(), mask=~valid)


def _one_id(value: str, today: _dt.date | None) -> tuple[int, int]:
    valid, birth, seq = _resident_ids([value], today)
    if not valid[0]:
        raise DomainError("not a valid GB 11643 resident id")
    return int(birth[0]), int(seq[0])


def resident_id_birth_date(value: str, *, today: _dt.date | None = None) -> _dt.date:
    """Birth date encoded in a resident id. Raises :class:`DomainError` if it is not valid."""
    ymd, _ = _one_id(value, today)
    return _dt.date(ymd // 10000, ymd // 100 % 100, ymd % 100)


def resident_id_gender(value: str, *, today: _dt.date | None = None) -> str:
    """``"M"`` or ``"F"``. Raises :class:`DomainError` if the id is not valid."""
    _, seq = _one_id(value, today)
    return "M" if seq % 2 else "F"


def resident_id_region(value: str, *, today: _dt.date | None = None) -> str:
    """The 6-digit administrative-division code (GB/T 2260) at the start of a valid id.

    ``code[:2]`` is the province (see ``masking.pii.PROVINCES``), ``code[:4]`` the city.
    Raises :class:`DomainError` if the id is not valid.
    """
    _one_id(value, today)
    return "".join(value.replace("-", " ").split())[:6]


def _strip(arr: pa.Array, chars: str) -> pa.Array:
    """Remove separator characters (skipped when no value has any)."""
    if not regex_mask(arr, chars).any():
        return arr
    return pc.replace_substring_regex(arr, chars, "")


def _mobile_norm(values: ArrayLike) -> tuple[pa.Array, BoolArray]:
    raw = to_strings(values)
    arr = _strip(raw, r"[\s\-()]")
    ok = regex_mask(arr, r"^(?:\+86|0086)?1[3-9][0-9]{9}$")
    # 86 without + or 00 (86-138-0013-8000, 86 138...): the country code when a separator
    # sets it apart, as privacy.normalize reads it; 8613800138000 alone may be an account
    bare = regex_mask(arr, r"^861[3-9][0-9]{9}$")
    if bare.any():
        ok |= bare & regex_mask(raw, r"^\s*\(?86[\s\-)]")
    return arr, ok


def mobile_valid(values: ArrayLike) -> BoolArray:
    """Which values are mainland mobile numbers (``1[3-9]`` + 9 digits, optional +86)."""
    return _mobile_norm(values)[1]


def mobile_score(values: ArrayLike) -> FloatArray:
    """1.0 for a mobile in an allocated network segment, 0.5 for other ``1[3-9]`` numbers,
    0 for non-mobiles."""
    arr, ok = _mobile_norm(values)
    score = np.zeros(len(arr), dtype=np.float64)
    sub, idx = subset(arr, ok)
    if len(idx):
        m = char_matrix(pc.utf8_slice_codeunits(sub, -11), 11)
        seg = (m[:, 1].astype(np.int64) - 48) * 10 + (m[:, 2].astype(np.int64) - 48)
        score[idx] = np.where(_MOBILE_SEGMENTS[seg], 1.0, 0.5)
    return score


_LUHN_DOUBLE = np.array([0, 2, 4, 6, 8, 1, 3, 5, 7, 9], dtype=np.uint8)


def _luhn_matrix(m: npt.NDArray[np.uint8]) -> BoolArray:
    d = m - np.uint8(48)
    w = m.shape[1]
    doubled = (w - 1 - np.arange(w)) % 2 == 1
    total = d[:, ~doubled].sum(axis=1, dtype=np.int32)
    total += _LUHN_DOUBLE[d[:, doubled]].sum(axis=1, dtype=np.int32)
    return np.asarray(total % 10 == 0, dtype=bool)


def _luhn(arr: pa.Array, mask: BoolArray) -> BoolArray:
    """Luhn over the digit-only values selected by ``mask`` (grouped by length)."""
    out = np.zeros(len(arr), dtype=bool)
    sub, idx = subset(arr, mask)
    if not len(idx):
        return out
    lengths = pc.binary_length(sub).to_numpy(zero_copy_only=False)
    for width in np.unique(lengths):
        sel = lengths == width
        part, pidx = subset(sub, sel)
        out[idx[pidx]] = _luhn_matrix(char_matrix(part, int(width)))
    return out


def luhn_valid(values: ArrayLike) -> BoolArray:
    """Which values are digit strings (2+ digits, spaces trimmed) passing the Luhn check."""
    arr = pc.utf8_trim_whitespace(to_strings(values))
    return _luhn(arr, regex_mask(arr, r"^[0-9]{2,}$"))


def bank_card_score(values: ArrayLike) -> FloatArray:
    """1.0 for a 16-19 digit Luhn-valid number, :data:`UNIONPAY_NO_LUHN_SCORE` for a
    62-prefixed one failing Luhn, 0 otherwise. Spaces and dashes are ignored."""
    arr = _strip(to_strings(values), r"[\s\-]")
    shape = regex_mask(arr, r"^[0-9]{16,19}$")
    luhn = _luhn(arr, shape)
    unionpay = shape & regex_mask(arr, r"^62")
    return np.where(luhn, 1.0, np.where(unionpay, UNIONPAY_NO_LUHN_SCORE, 0.0))


def bank_card_valid(values: ArrayLike, *, strict: bool = False) -> BoolArray:
    """Which values look like bank cards; ``strict=True`` requires Luhn even for ``62``."""
    score = bank_card_score(values)
    return np.asarray(score == 1.0 if strict else score > 0.0, dtype=bool)


def uscc_valid(values: ArrayLike) -> BoolArray:
    """Which values are GB 32100-2015 unified social credit codes with a valid check char."""
    arr = _norm_id(values)
    out = np.zeros(len(arr), dtype=bool)
    sub, idx = subset(arr, regex_mask(arr, _USCC_RE))
    if len(idx):
        v = _USCC_VALUE[char_matrix(sub, 18)]
        check = (31 - (v[:, :17] @ _USCC_WEIGHTS) % 31) % 31
        out[idx] = check == v[:, 17]
    return out


def passport_valid(values: ArrayLike) -> BoolArray:
    """Which values have the shape of a PRC passport number (no check digit exists)."""
    return regex_mask(_norm_id(values), _PASSPORT_RE)


def hk_macau_permit_valid(values: ArrayLike) -> BoolArray:
    """Which values have the shape of a Hong Kong/Macau travel permit number."""
    return regex_mask(_norm_id(values), _PERMIT_RE)


def is_valid_resident_id(value: str, *, today: _dt.date | None = None) -> bool:
    """Scalar :func:`resident_id_valid`."""
    return bool(resident_id_valid([value], today=today)[0])


def is_valid_mobile(value: str) -> bool:
    """Scalar :func:`mobile_valid`."""
    return bool(mobile_valid([value])[0])


def is_luhn_valid(value: str) -> bool:
    """Scalar :func:`luhn_valid`."""
    return bool(luhn_valid([value])[0])


def is_valid_bank_card(value: str, *, strict: bool = False) -> bool:
    """Scalar :func:`bank_card_valid`."""
    return bool(bank_card_valid([value], strict=strict)[0])


def is_valid_uscc(value: str) -> bool:
    """Scalar :func:`uscc_valid`."""
    return bool(uscc_valid([value])[0])


def is_valid_passport(value: str) -> bool:
    """Scalar :func:`passport_valid`."""
    return bool(passport_valid([value])[0])


def is_valid_hk_macau_permit(value: str) -> bool:
    """Scalar :func:`hk_macau_permit_valid`."""
    return bool(hk_macau_permit_valid([value])[0])
