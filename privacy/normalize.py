"""Canonical forms of identifiers, applied before every keyed use.

A keyed token, a PSI hash or a watch-list lookup sees bytes, not people: one mobile
written four ways (``+86 187 8161 8495``, ``18781618495``, ``+8618781618495``,
``187-8161-8495``) would give four tokens, and joins would miss silently. Every keyed
use in covault (the masking operators ``hash``, ``tokenize``, ``fpe`` and
``date_shift``'s entity, ``covault field encrypt``, PSI, audit lists) first brings the
value to one canonical form with :func:`canonical` (one value) or
:func:`canonical_array` (an Arrow column, vectorised, same results).

=================  ===================================================  ======================
kind               canonical form                                       example
=================  ===================================================  ======================
``mobile``         a number of the home region (``region``, default     ``18781618495``
                   CN): its national significant number, digits only
                   (``+86``/``0086``/``86`` and separators dropped);
                   a number of any other country: E.164, ``+`` and      ``+447911123456``
                   country code kept (parsed with ``phonenumbers``)
``resident_id``    upper-case ``X``, spaces and hyphens removed; a      ``11010519491231002X``
                   15-digit first-generation id becomes its 18-digit
                   form (GB 11643: ``19`` inserted, check character
                   computed)
``card``           digits only (spaces and hyphens removed)             ``6222021234567890``
``email``          whitespace removed (trimmed), lower-cased            ``d.qin@example.org``
``uscc``           upper-case, spaces and hyphens removed               ``91110000600037341L``
``generic``        NFKC, every whitespace character removed
=================  ===================================================  ======================

Every kind applies Unicode NFKC first (full-width ``１８７`` becomes ``187``).

Two more choices are accepted wherever a kind is (:data:`IDENTIFIER_CHOICES`):

``none``
    The value as written (normalisation off).
``auto``
    Per value, conservatively: a value is normalised only when it unmistakably has the
    shape of one kind (:func:`infer_kind`): an e-mail (one ``@``, a dot in the domain,
    no inner space); a CN mobile with or without ``+86``/``0086`` and separators, or
    ``+`` and an international number; 17 digits and a digit or ``x``/``X`` (resident
    id); 12-19 digits with spaces or hyphens (card); 18 characters of the USCC alphabet
    with a valid check character. Any other value is left exactly as written.

Invalid input
-------------
Lenient (the default, and always in masking's column path): a value that is not a
valid instance of its kind gets the ``generic`` form (``auto`` leaves it as written).
It never raises, and every party gets the same output for the same input.
``strict=True`` raises :class:`~privacy.errors.IdentifierError` instead (an
``InputError``; the message names the kind, never the value); strict mobiles must
also be valid numbers for ``phonenumbers``' metadata, strict resident ids and USCCs
must carry a valid check character.

Warnings
--------
Normalising changes the token of every value not already written canonically: tokens
made before normalisation existed match the new ones only for canonical values
(``18781618495``, ``11010519491231002X``). Re-tokenise both sides of a join. A
reversible keyed operator (``tokenize``, ``fpe``) gives back the canonical form, not
the form as written. Both parties of a join or PSI session must normalise with the
same kind and region.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from functools import lru_cache, partial
from typing import Final, Literal, get_args

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from privacy.errors import IdentifierError, InputError

__all__ = [
    "IdKind",
    "Identifier",
    "ID_KINDS",
    "IDENTIFIER_CHOICES",
    "PII_KINDS",
    "canonical",
    "canonical_array",
    "normalizer",
    "infer_kind",
    "infer_array",
    "is_phone_array",
    "resolve",
    "phone_parts",
    "phone_parts_array",
    "DECIMAL",
]

#: A decimal number as a CSV cell writes it: ASCII digits with an optional sign, decimal
#: point and exponent (``-1234.5``, ``.5``, ``1e6``); no separators or other digit forms.
#: A regex source, for Python's ``re`` and Arrow's RE2 alike (anchor it as needed).
DECIMAL: Final = r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"

IdKind = Literal["mobile", "resident_id", "card", "email", "uscc", "generic"]
Identifier = Literal["auto", "none", "mobile", "resident_id", "card", "email", "uscc",
                     "generic"]
ID_KINDS: Final[tuple[str, ...]] = get_args(IdKind)
IDENTIFIER_CHOICES: Final[tuple[str, ...]] = get_args(Identifier)

#: PII types (masking policies, audit catalogue tags) -> identifier kind.
PII_KINDS: Final[dict[str, str]] = {
    "cn_mobile": "mobile",
    "cn_resident_id": "resident_id",
    "bank_card": "card",
    "email": "email",
    "cn_uscc": "uscc",
}

# ---- patterns (Python, one value) -------------------------------------------------------
# ``re.ASCII``: ``\d`` is 0-9 only (NFKC leaves e.g. Arabic-Indic digits alone).
_PHONE_SEPS = re.compile(r"[\s\-.()/]")
_ID_SEPS = re.compile(r"[\s\-]")
_CN_MOBILE = re.compile(r"(\+86|0086|86)?(1[3-9]\d{9})", re.ASCII)
_CN_MOBILE_AUTO = re.compile(r"(?:\+86|0086)?1[3-9]\d{9}", re.ASCII)
_INTL = re.compile(r"\+[1-9]\d{6,14}", re.ASCII)
_ID18 = re.compile(r"\d{17}[\dXx]", re.ASCII)
_ID15 = re.compile(r"\d{15}", re.ASCII)
_CARD = re.compile(r"\d{12,19}", re.ASCII)
_EMAIL = re.compile(r"[^@]+@[^@]+")
_EMAIL_AUTO = re.compile(r"[^@]+@[^@]+\.[^@]+")
_USCC = re.compile(r"[0-9A-HJ-NPQRTUWXY]{18}", re.ASCII | re.IGNORECASE)

# ---- the same patterns for Arrow (RE2), used on ASCII rows only -------------------------
# Python's ``str.split()`` whitespace restricted to ASCII: \t \n \v \f \r \x1c-\x1f space.
_WS_CHARS: Final = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f "
_A_WS = r"[\t\n\x0B\f\r\x1C-\x1F ]"

_ID_WEIGHTS: Final = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK: Final = "10X98765432"
_USCC_ALPHABET: Final = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS: Final = tuple(pow(3, i, 31) for i in range(17))


# ---- one value -----------------------------------------------------------------------------


def _nfkc(value: str) -> str:
    return unicodedata.normalize("NFKC", value)


def _generic(value: str) -> str:
    return "".join(_nfkc(value).split())


def _id_check(first17: str) -> str:
    return _ID_CHECK[sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def _uscc_ok(code: str) -> bool:
    total = sum(_USCC_ALPHABET.index(c) * w for c, w in zip(code, _USCC_WEIGHTS, strict=False))
    return _USCC_ALPHABET[(31 - total % 31) % 31] == code[17]


def _valid_yymmdd(text: str) -> bool:
    import datetime as _dt

    try:
        _dt.date(1900 + int(text[:2]), int(text[2:4]), int(text[4:6]))
    except ValueError:
        return False
    return True


@lru_cache(maxsize=65536)
def _phone(nf: str, region: str, strict: bool) -> tuple[str, str, str] | None:
    """``(canonical, national number, written prefix)`` or ``None`` (not a number).

    The written prefix is ``+`` and the country code when the value carries one
    (``+``, the international prefix ``00`` or the bare code), else ``""``.
    """
    import phonenumbers

    try:
        number = phonenumbers.parse(nf, region, keep_raw_input=True)
    except phonenumbers.NumberParseException:
        return None
    check = phonenumbers.is_valid_number if strict else phonenumbers.is_possible_number
    if not check(number):
        return None
    national = phonenumbers.national_significant_number(number)
    written = number.country_code_source != phonenumbers.CountryCodeSource.FROM_DEFAULT_COUNTRY
    prefix = f"+{number.country_code}" if written else ""
    if number.country_code == phonenumbers.country_code_for_region(region):
        return national, national, prefix
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), national, \
        prefix


def _mobile(value: str, region: str, strict: bool) -> str | None:
    nf = _nfkc(value)
    if region == "CN" and not strict:
        m = _CN_MOBILE.fullmatch(_PHONE_SEPS.sub("", nf))
        if m is not None:
            return m.group(2)
    parsed = _phone(nf, region, strict)
    return None if parsed is None else parsed[0]


def _resident_id(value: str, strict: bool) -> str | None:
    c = _ID_SEPS.sub("", _nfkc(value))
    if _ID18.fullmatch(c):
        c = c.upper()
        return None if strict and _id_check(c[:17]) != c[17] else c
    if _ID15.fullmatch(c) and _valid_yymmdd(c[6:12]):
        first = c[:6] + "19" + c[6:]
        return first + _id_check(first)
    return None


def _card(value: str) -> str | None:
    c = _ID_SEPS.sub("", _nfkc(value))
    return c if _CARD.fullmatch(c) else None


def _email(value: str, strict: bool) -> str | None:
    nf = _nfkc(value)
    if strict and len(nf.split()) != 1:
        return None
    c = "".join(nf.split())
    return c.lower() if _EMAIL.fullmatch(c) else None


def _uscc(value: str, strict: bool) -> str | None:
    c = _ID_SEPS.sub("", _nfkc(value))
    if not _USCC.fullmatch(c):
        return None
    c = c.upper()
    return None if strict and not _uscc_ok(c) else c


_EXPECTED: Final = {
    "mobile": "a phone number (a CN mobile such as 138 0013 8000, or + country code and "
              "number)",
    "resident_id": "an 18-character resident id with a valid check character (or a "
                   "15-digit first-generation id)",
    "card": "a card number of 12-19 digits",
    "email": "an e-mail address (one @, no spaces)",
    "uscc": "an 18-character unified social credit code with a valid check character",
}


def _of_kind(value: str, kind: str, strict: bool, region: str) -> str | None:
    """The canonical form of ``value`` as ``kind``, or ``None`` when it is not one."""
    if kind == "mobile":
        return _mobile(value, region, strict)
    if kind == "resident_id":
        return _resident_id(value, strict)
    if kind == "card":
        return _card(value)
    if kind == "email":
        return _email(value, strict)
    if kind == "uscc":
        return _uscc(value, strict)
    return _generic(value)


def _check_kind(kind: str) -> None:
    if kind not in IDENTIFIER_CHOICES:
        raise InputError(f"unknown identifier kind {kind!r}; expected one of "
                         f"{', '.join(IDENTIFIER_CHOICES)}")


def infer_kind(value: str) -> str | None:
    """The kind ``value`` unmistakably has, or ``None`` (see ``auto`` in the module doc).

    Only values that are ASCII after NFKC qualify; ``86`` without ``+`` or ``00`` is not
    taken as a country code here (a 13-digit number may be an account).
    """
    nf = _nfkc(value)
    if not nf.isascii():
        return None
    parts = nf.split()
    ws = "".join(parts)
    if "@" in ws:
        return "email" if len(parts) == 1 and _EMAIL_AUTO.fullmatch(ws) else None
    cp = _PHONE_SEPS.sub("", nf)
    if _CN_MOBILE_AUTO.fullmatch(cp) or _INTL.fullmatch(cp):
        return "mobile"
    c = _ID_SEPS.sub("", nf)
    if _ID18.fullmatch(c):
        return "resident_id"
    if _CARD.fullmatch(c):
        return "card"
    if _USCC.fullmatch(c) and not c.isdigit() and _uscc_ok(c.upper()):
        return "uscc"
    return None


def canonical(value: str, kind: str, *, strict: bool = False, region: str = "CN") -> str:
    """The canonical form of one identifier.

    Parameters
    ----------
    value:
        The identifier as written.
    kind:
        One of :data:`IDENTIFIER_CHOICES` (``mobile``, ``resident_id``, ``card``,
        ``email``, ``uscc``, ``generic``, ``auto``, ``none``).
    strict:
        Raise :class:`~privacy.errors.IdentifierError` for a value that is not a valid
        ``kind`` instead of falling back to the generic form.
    region:
        Home region of mobiles (ISO 3166 code): its numbers become national numbers.

    Examples
    --------
    >>> {canonical(v, "mobile") for v in ("+86 187 8161 8495", "18781618495",
    ...                                   "+8618781618495", "187-8161-8495")}
    {'18781618495'}
    >>> canonical("11010519491231002x", "resident_id")
    '11010519491231002X'
    >>> canonical("+44 7911 123456", "mobile")
    '+447911123456'
    """
    _check_kind(kind)
    if kind == "none":
        return value
    if kind == "auto":
        found = infer_kind(value)
        if found is None:
            return value
        out = _of_kind(value, found, False, region)
        return value if out is None else out
    out = _of_kind(value, kind, strict, region)
    if out is not None:
        return out
    if strict:
        raise IdentifierError(f"not a valid {kind} identifier: expected {_EXPECTED[kind]}")
    return _generic(value)


def normalizer(kind: str, *, strict: bool = False, region: str = "CN") -> Callable[[str], str]:
    """``canonical`` with ``kind`` bound: a one-argument callable (e.g. for PSI)."""
    _check_kind(kind)
    return partial(canonical, kind=kind, strict=strict, region=region)


def resolve(identifier: str, pii: str | None = None) -> str:
    """The kind to use for a column of PII type ``pii``.

    ``identifier`` when it names a kind (or ``none``). For ``auto``: the kind of an
    identifier PII type (:data:`PII_KINDS`: ``cn_mobile`` -> ``mobile``, ...);
    ``none`` for any other known type (names, addresses, dates are not normalised);
    ``auto`` (per value, :func:`infer_kind`) when the type is unknown (``None``,
    ``""`` or ``"none"``).
    """
    _check_kind(identifier)
    if identifier != "auto":
        return identifier
    if pii in (None, "", "none"):
        return "auto"
    return PII_KINDS.get(pii, "none")


def phone_parts(value: str, region: str = "CN") -> tuple[str, str] | None:
    """``(country prefix, national number)`` of a phone number, for display.

    The prefix is ``"+86"`` (``+`` and the country code) when the value carries a
    country code (``+86``, ``0086`` or ``86``), else ``""``; ``None`` when the value is
    not a phone number. ``"+86 187 8161 8495"`` -> ``("+86", "18781618495")``.
    """
    nf = _nfkc(value)
    if region == "CN":
        m = _CN_MOBILE.fullmatch(_PHONE_SEPS.sub("", nf))
        if m is not None:
            return ("+86" if m.group(1) else ""), m.group(2)
    parsed = _phone(nf, region, False)
    return None if parsed is None else (parsed[2], parsed[1])


# ---- a column ------------------------------------------------------------------------------


def _mask(arr: pa.Array) -> np.ndarray:
    return np.asarray(arr.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def _match(arr: pa.Array, pattern: str) -> np.ndarray:
    return _mask(pc.match_substring_regex(arr, pattern))


def _remove(arr: pa.Array, pattern: str) -> pa.Array:
    """``arr`` without the characters of ``pattern`` (a regex class); a pass that finds
    nothing to remove (the common case for separators) builds nothing."""
    if not pc.any(pc.match_substring_regex(arr, pattern)).as_py():
        return arr
    return pc.replace_substring_regex(arr, pattern, "")


def _scatter(out: pa.Array, rows: np.ndarray, values: list[str | None] | pa.Array
             ) -> pa.Array:
    """``out`` with its ``rows`` replaced by ``values`` (in row order)."""
    if not rows.any():
        return out
    if not isinstance(values, pa.Array):
        values = pa.array(values, pa.string())
    return pc.replace_with_mask(out, pa.array(rows), values)


def _as_string(values: pa.Array) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not pa.types.is_string(values.type):
        values = pc.cast(values, pa.string())
    return values


class _Cleaned:
    """A column without whitespace (``ws``), also without hyphens (``ids``), also
    without ``.()/`` (``phone``): the separators :func:`canonical` drops, per kind.
    Computed lazily, each from the previous one, on ASCII rows' rules."""

    def __init__(self, arr: pa.Array) -> None:
        self.arr = arr
        self._ws: pa.Array | None = None
        self._ids: pa.Array | None = None
        self._phone: pa.Array | None = None

    @property
    def ws(self) -> pa.Array:
        if self._ws is None:
            self._ws = _remove(self.arr, _A_WS)
        return self._ws

    @property
    def ids(self) -> pa.Array:
        if self._ids is None:
            self._ids = _remove(self.ws, "-")
        return self._ids

    @property
    def phone(self) -> pa.Array:
        if self._phone is None:
            self._phone = _remove(self.ids, r"[.()/]")
        return self._phone


def _fast(arr: pa.Array, kind: str, region: str) -> tuple[np.ndarray, pa.Array]:
    """Rows (ASCII only) whose canonical form a vector kernel gives, and those forms."""
    ascii_rows = _mask(pc.string_is_ascii(arr))
    clean = _Cleaned(arr)
    if kind == "mobile":
        if region != "CN":
            return np.zeros(len(arr), dtype=bool), arr
        ok = ascii_rows & _match(clean.phone, r"^(?:\+86|0086|86)?1[3-9][0-9]{9}$")
        return ok, pc.utf8_slice_codeunits(clean.phone, -11)
    if kind in ("resident_id", "card", "uscc"):
        c = clean.ids
        pattern = {"resident_id": r"^[0-9]{17}[0-9Xx]$", "card": r"^[0-9]{12,19}$",
                   "uscc": r"(?i)^[0-9A-HJ-NPQRTUWXY]{18}$"}[kind]
        return ascii_rows & _match(c, pattern), (c if kind == "card" else pc.ascii_upper(c))
    if kind == "email":
        return ascii_rows & _match(clean.ws, r"^[^@]+@[^@]+$"), pc.ascii_lower(clean.ws)
    return ascii_rows, clean.ws  # generic


_NO_KIND: Final = -1


def _infer_codes(arr: pa.Array) -> np.ndarray:
    """Per row, the index in :data:`ID_KINDS` of :func:`infer_kind`, or -1."""
    codes = np.full(len(arr), _NO_KIND, dtype=np.int8)
    code = {k: np.int8(i) for i, k in enumerate(ID_KINDS)}
    valid = _mask(arr.is_valid())
    ascii_rows = valid & _mask(pc.string_is_ascii(arr))
    # Non-ASCII rows: an identifier only if NFKC makes them ASCII (full-width digits).
    other = valid & ~ascii_rows
    if other.any():
        folded = _mask(pc.string_is_ascii(pc.utf8_normalize(arr, form="NFKC")))
        rows = np.flatnonzero(other & folded)
        for i, v in zip(rows.tolist(), arr.take(pa.array(rows)).to_pylist(), strict=True):
            found = infer_kind(v)
            codes[i] = _NO_KIND if found is None else code[found]
    if not ascii_rows.any():
        return codes
    free = ascii_rows.copy()
    clean = _Cleaned(arr)
    at = free & _mask(pc.match_substring(arr, "@"))
    if at.any():
        rows = np.flatnonzero(at)
        sub = arr.take(pa.array(rows))
        inner = _match(pc.utf8_trim(sub, characters=_WS_CHARS), _A_WS)
        shaped = _match(_remove(sub, _A_WS), r"^[^@]+@[^@]+\.[^@]+$")
        codes[rows[~inner & shaped]] = code["email"]
        free &= ~at
    phone = free & (_match(clean.phone, r"^(?:\+86|0086)?1[3-9][0-9]{9}$")
                    | _match(clean.phone, r"^\+[1-9][0-9]{6,14}$"))
    codes[phone] = code["mobile"]
    free &= ~phone
    rid = free & _match(clean.ids, r"^[0-9]{17}[0-9Xx]$")
    codes[rid] = code["resident_id"]
    free &= ~rid
    card = free & _match(clean.ids, r"^[0-9]{12,19}$")
    codes[card] = code["card"]
    free &= ~card
    maybe = free & _match(clean.ids, r"(?i)^[0-9A-HJ-NPQRTUWXY]{18}$") \
        & ~_match(clean.ids, r"^[0-9]*$")
    rows = np.flatnonzero(maybe)
    for i, v in zip(rows.tolist(), clean.ids.take(pa.array(rows)).to_pylist(), strict=True):
        if _uscc_ok(v.upper()):
            codes[i] = code["uscc"]
    return codes


def infer_array(values: pa.Array) -> pa.Array:
    """:func:`infer_kind` for a column: the kind per row, null where none (or null)."""
    arr = _as_string(values)
    codes = _infer_codes(arr)
    names = pa.array(list(ID_KINDS), pa.string())
    return names.take(pa.array(codes.astype(np.int64), mask=codes == _NO_KIND))


def canonical_array(values: pa.Array, kind: str, *, strict: bool = False,
                    region: str = "CN") -> pa.Array:
    """:func:`canonical` for a column (Arrow); nulls stay null, same results.

    Rows a vector kernel can settle (ASCII values of the common shapes) never reach
    Python; the others go through :func:`canonical` one by one (cached for phone
    numbers). Lenient by default: it never raises for a value (``strict`` does).
    """
    _check_kind(kind)
    arr = _as_string(values)
    if kind == "none" or len(arr) == 0 or arr.null_count == len(arr):
        return arr
    valid = _mask(arr.is_valid())
    if strict:
        out = [None if v is None else canonical(v, kind, strict=True, region=region)
               for v in arr.to_pylist()]
        return pa.array(out, pa.string())
    if kind != "auto":
        done, forms = _fast(arr, kind, region)
        out = pc.if_else(pa.array(done), forms, arr)
        rest = valid & ~done
        todo = arr.filter(pa.array(rest)).to_pylist()
        return _scatter(out, rest, [canonical(v, kind, region=region) for v in todo])
    codes = _infer_codes(arr)
    out = arr
    for code in np.unique(codes[codes != _NO_KIND]).tolist():
        rows = codes == code
        sub = arr.filter(pa.array(rows))
        done, forms = _fast(sub, ID_KINDS[code], region)
        part = pc.if_else(pa.array(done), forms, sub)
        slow = ~done
        part = _scatter(part, slow, [canonical(v, "auto", region=region)
                                     for v in sub.filter(pa.array(slow)).to_pylist()])
        out = _scatter(out, rows, part)
    return out


def is_phone_array(values: pa.Array) -> np.ndarray:
    """Rows :func:`infer_kind` takes for phone numbers (a boolean mask)."""
    found: np.ndarray = _infer_codes(_as_string(values)) == ID_KINDS.index("mobile")
    return found


def phone_parts_array(values: pa.Array, region: str = "CN", *,
                      rows: np.ndarray | None = None) -> tuple[pa.Array, pa.Array]:
    """:func:`phone_parts` for a column: ``(prefix, national)``, both null where the
    value is not a phone number (or null, or not in ``rows`` when given)."""
    arr = _as_string(values)
    want = _mask(arr.is_valid()) if rows is None else rows & _mask(arr.is_valid())
    nulls = pa.nulls(len(arr), pa.string())
    prefix, national = nulls, nulls
    slow = want.copy()
    if region == "CN":
        c = _Cleaned(arr).phone
        fast = want & _mask(pc.string_is_ascii(arr)) & _match(
            c, r"^(?:\+86|0086|86)?1[3-9][0-9]{9}$")
        if fast.any():
            rows_fast = pa.array(fast)
            written = pc.if_else(pc.greater(pc.utf8_length(c), 11), "+86", "")
            prefix = pc.if_else(rows_fast, written, nulls)
            national = pc.if_else(rows_fast, pc.utf8_slice_codeunits(c, -11), nulls)
        slow &= ~fast
    if slow.any():
        parts = [phone_parts(v, region) for v in arr.filter(pa.array(slow)).to_pylist()]
        prefix = _scatter(prefix, slow, [None if p is None else p[0] for p in parts])
        national = _scatter(national, slow, [None if p is None else p[1] for p in parts])
    return prefix, national
