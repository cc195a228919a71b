"""Validators for free-form personal data: e-mail, IP addresses, Chinese names and
addresses, dates.

Same contract as :mod:`masking.pii.validators`: array in, numpy ``bool`` array out
(nulls False), plus scalar ``is_valid_*`` conveniences.

Rules
-----
email
    ``local@domain`` with an RFC 5322 "dot-atom" local part and a domain of at least two
    LDH labels (1-63 chars, no leading/trailing hyphen), whose letters and digits may be
    of any script (internationalised domain names, IDNA: ``li@例子.中国``). Quoted or
    non-ASCII local parts and IP-literal domains are not accepted.
ipv4
    Exactly what :class:`ipaddress.IPv4Address` accepts: four decimal octets 0-255,
    no leading zeros.
ipv6
    Exactly what :class:`ipaddress.IPv6Address` accepts (including ``::`` compression,
    embedded IPv4 and a ``%scope`` suffix); a regex pre-filter keeps the Python loop to
    candidate values.
cn_name
    2-4 Han characters starting with a common surname (``SINGLE_SURNAMES``) or a
    compound surname (``COMPOUND_SURNAMES``, then 1-2 more characters), with no place
    or organisation marker (省市县区镇乡村路街号楼室厂) after the first character.
    Minority names written with ``·`` are not recognised.
cn_address
    At least 6 characters, some Han, and markers from at least two of these levels:
    province (省, 自治区, 特别行政区), city (市, 州, 盟), county/district (区, 县, 旗),
    town (镇, 乡, 街道), street (路, 街, 道, 巷, 弄, 胡同), number (号, 栋, 幢, 座, 室,
    楼, 单元, 村, 组).
date
    ``YYYY-MM-DD`` (also ``/`` or ``.`` separators, optional ``HH:MM[:SS[.f]]`` time and
    zone) and ``YYYY年M月D日``; the day must exist in that month. Compact ``YYYYMMDD`` is
    not accepted (it is indistinguishable from an integer code).

Warnings
--------
Name and address rules are heuristics. A column of short Chinese words can look like
names (many common characters are also surnames); column detection therefore also
weighs how varied the values are.
"""

from __future__ import annotations

import functools
import ipaddress

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from masking.pii._arrow import ArrayLike, BoolArray, regex_mask, subset, to_strings, valid_ymd
from masking.pii._data import COMPOUND_SURNAMES, SINGLE_SURNAMES

__all__ = [
    "email_valid",
    "ipv4_valid",
    "ipv6_valid",
    "cn_name_valid",
    "cn_address_valid",
    "date_valid",
    "is_valid_email",
    "is_valid_ipv4",
    "is_valid_ipv6",
    "is_valid_cn_name",
    "is_valid_cn_address",
    "is_valid_date",
]

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
# Domain labels of letters and digits of any script too: an internationalised domain
# (IDNA) such as li@例子.中国 is an e-mail address, and was left unmasked
_LABEL = r"[\p{L}\p{N}](?:[\p{L}\p{N}-]{0,61}[\p{L}\p{N}])?"
_EMAIL_RE = rf"^{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})+$"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4_RE = rf"^{_OCTET}(?:\.{_OCTET}){{3}}$"
_IPV6_CANDIDATE_RE = r"^[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(?:%[^\s%]+)?$"
_NAME_RE = r"^\p{Han}{2,4}$"
_NOT_NAME_RE = r"^.+[省市县区镇乡村路街号楼室厂]"
_ADDRESS_LEVELS = (
    r"省|自治区|特别行政区",
    r"市|州|盟",
    r"区|县|旗",
    r"镇|乡|街道",
    r"路|街|道|巷|弄|胡同",
    r"号|栋|幢|座|室|楼|单元|村|组",
)
_TIME = r"(?:[T ][0-9]{1,2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,9})?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?"
_DATE_RES = (
    rf"^(?P<y>[0-9]{{4}})[-/.](?P<m>[0-9]{{1,2}})[-/.](?P<d>[0-9]{{1,2}}){_TIME}$",
    r"^(?P<y>[0-9]{4})年(?P<m>[0-9]{1,2})月(?P<d>[0-9]{1,2})日$",
)


def _trimmed(values: ArrayLike) -> pa.Array:
    return pc.utf8_trim_whitespace(to_strings(values))


def email_valid(values: ArrayLike) -> BoolArray:
    """Which values are e-mail addresses (dot-atom local part, LDH domain)."""
    arr = _trimmed(values)
    ok = regex_mask(arr, _EMAIL_RE)
    ok &= np.asarray(pc.utf8_length(arr).fill_null(0).to_numpy(zero_copy_only=False)) <= 254
    return ok


def ipv4_valid(values: ArrayLike) -> BoolArray:
    """Which values are dotted-quad IPv4 addresses (``ipaddress`` semantics)."""
    return regex_mask(_trimmed(values), _IPV4_RE)


def ipv6_valid(values: ArrayLike) -> BoolArray:
    """Which values are IPv6 addresses (``ipaddress.IPv6Address`` semantics)."""
    arr = _trimmed(values)
    out = np.zeros(len(arr), dtype=bool)
    sub, idx = subset(arr, regex_mask(arr, _IPV6_CANDIDATE_RE))
    for i, text in zip(idx, sub.to_pylist(), strict=True):
        try:
            ipaddress.IPv6Address(text)
        except ValueError:
            continue
        out[i] = True
    return out


def cn_name_valid(values: ArrayLike) -> BoolArray:
    """Which values look like Chinese personal names (surname + 1-3 characters)."""
    arr = _trimmed(values)
    ok = regex_mask(arr, _NAME_RE) & ~regex_mask(arr, _NOT_NAME_RE)
    single_set, compound_set = _surname_sets()
    first = pc.is_in(pc.utf8_slice_codeunits(arr, 0, 1), value_set=single_set)
    compound = pc.is_in(pc.utf8_slice_codeunits(arr, 0, 2), value_set=compound_set)
    long_enough = pc.greater_equal(pc.utf8_length(arr), 3)
    surname = pc.or_(first, pc.and_(compound, long_enough)).fill_null(False)
    return np.asarray(ok & surname.to_numpy(zero_copy_only=False), dtype=bool)


@functools.cache
def _surname_sets() -> tuple[pa.Array, pa.Array]:
    # Built on first use: pa.array() from Python objects loads pyarrow's pandas shim
    # (~0.2 s), which `import masking` and `covault --help` should not pay.
    return (
        pa.array(sorted(SINGLE_SURNAMES), type=pa.string()),
        pa.array(sorted(COMPOUND_SURNAMES), type=pa.string()),
    )


def cn_address_valid(values: ArrayLike) -> BoolArray:
    """Which values look like Chinese postal addresses (markers of 2+ levels)."""
    arr = _trimmed(values)
    lengths = pc.utf8_length(arr).fill_null(0).to_numpy(zero_copy_only=False)
    out = np.zeros(len(arr), dtype=bool)
    sub, idx = subset(arr, (lengths >= 6) & regex_mask(arr, r"\p{Han}"))
    if len(idx):
        levels = sum(regex_mask(sub, level).astype(np.int64) for level in _ADDRESS_LEVELS)
        out[idx] = levels >= 2
    return out


def date_valid(values: ArrayLike) -> BoolArray:
    """Which values are calendar dates in ISO-like or ``年月日`` form."""
    arr = _trimmed(values)
    out = np.zeros(len(arr), dtype=bool)
    for pattern in _DATE_RES:
        sub, idx = subset(arr, regex_mask(arr, pattern))
        if not len(idx):
            continue
        parts = pc.extract_regex(sub, pattern)
        y, m, d = (
            np.asarray(pc.cast(parts.field(k), pa.int64()).to_numpy(zero_copy_only=False))
            for k in ("y", "m", "d")
        )
        out[idx] = valid_ymd(y, m, d) & (y >= 1000)
    return out


def is_valid_email(value: str) -> bool:
    """Scalar :func:`email_valid`."""
    return bool(email_valid([value])[0])


def is_valid_ipv4(value: str) -> bool:
    """Scalar :func:`ipv4_valid`."""
    return bool(ipv4_valid([value])[0])


def is_valid_ipv6(value: str) -> bool:
    """Scalar :func:`ipv6_valid`."""
    return bool(ipv6_valid([value])[0])


def is_valid_cn_name(value: str) -> bool:
    """Scalar :func:`cn_name_valid`."""
    return bool(cn_name_valid([value])[0])


def is_valid_cn_address(value: str) -> bool:
    """Scalar :func:`cn_address_valid`."""
    return bool(cn_address_valid([value])[0])


def is_valid_date(value: str) -> bool:
    """Scalar :func:`date_valid`."""
    return bool(date_valid([value])[0])
