"""PII inside free text: resident ids, USCC, bank cards, mobiles, e-mail (and names).

A remark such as ``客户吴丽来电，手机+86 187 8161 8495，身份证420102199003071234`` is
one cell that no column detector classifies. :func:`detect_in_text` finds the
identifiers *inside* each cell, vectorized over the whole column:

1. one RE2 pass (``pyarrow.compute.replace_substring_regex``) wraps every candidate
   token -- an e-mail-shaped word, an 18-character USCC-shaped word, or a run of 10-45
   digits with optional single spaces/hyphens, ``+86``/``0086`` prefix and final ``X``
   -- in a marker character absent from the column, and ``split_pattern`` cuts the
   cells at the markers, so text pieces and candidate tokens alternate;
2. the candidates are classified with the column validators of
   :mod:`masking.pii.validators` and :mod:`masking.pii.textual` (same check digits,
   same rules), called once per type on all candidates of the column;
3. a candidate with separators that validates as nothing is cut at its separators and
   the pieces are tried again (``手机13812345678 2024-05-01`` is a mobile and a date).

Rules in text
-------------
cn_resident_id
    18 characters (GB 11643 check character, province, real birth date not after
    ``today``), as one run or grouped 6-8-4. An 18-digit number that reads as an id
    (province, then a 19xx/20xx year) but fails the checks is a mistyped id: never a
    USCC or a card. Legacy 15-digit ids (no check digit) pass the column detector's
    checks (province, a real ``YYMMDD`` birth date read as 19YY) and, since many other
    15-digit numbers (merchant ids, ...) would too, must follow an id label
    (``身份证``, ``身份证号码：``, ``证件号``, ``ID``); one run of digits only.
cn_uscc
    18 characters, upper case, GB 32100 check character (all-digit codes included), an
    authority/category pair GB 32100 defines (``91`` enterprise, ``92`` individual
    business, ``51`` social organisation, ...) and a region in a known province (or
    ``10``, national).
bank_card
    16-19 digits, as one run or grouped 4-4-4-4(-1..3) or 6-rest; Luhn required (the
    column detector's allowance for UnionPay numbers failing Luhn does not apply in
    text); a card-scheme first digit (``3``-``6``; ``94``/``95`` domestic; ``22``-``27``).
cn_mobile
    11 digits in an allocated network segment (``mobile_score`` 1), optionally after
    ``+86``/``0086``, as one run or grouped 3-4-4, 3-8 or 7-4; not an amount of money
    (an amount word or currency sign right before, ``金额``, ``余额``, ``¥``, ``RMB``, or a
    unit right after, ``元``, ``万``: ``金额15008470054元``).
email
    ``local@domain.tld`` accepted by :func:`masking.pii.textual.email_valid`, with an
    alphabetic top-level label (an e-mail wins over the number it starts with); an
    internationalised domain of Han labels under a Chinese top-level domain (``中国``,
    ``公司``, ``网络``, ...: ``li@例子.中国``).
cn_name
    Only on request (``types`` includes it) and with the ``names`` extra installed:
    see :mod:`masking.pii.names`.

A card, mobile or USCC right after an order/serial-number label (``订单号``, ``流水号``,
``交易号``, ``编号``, ``合同号``, ``凭证号``, ...) is that number, not PII. A token must
stand alone: a digit or ASCII letter right before or after it (``NO13812345678``) makes
it part of a longer word. Separators are one space or hyphen. Full-width digits, letters
and signs (``１８７６０３２９６６９``) are read as their ASCII (NFKC) forms; the output
replaces the identifier as written and leaves every other character as it was.

Warnings
--------
Detection in text is a heuristic: a valid check digit in an order number is still
reported (unless a label says it is an order number), and identifiers written in other
ways (``138 1234 5678`` split over a line break, spelled out) are missed. Review samples
of the output before relying on it.
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
from masking.pii._arrow import ArrayLike, BoolArray, fold_fullwidth, regex_mask, to_strings
from masking.pii._data import PROVINCES
from privacy.errors import InputError

__all__ = [
    "TEXT_PII_TYPES",
    "STRUCTURED_TEXT_TYPES",
    "TEXT_LABELS",
    "TextMatch",
    "TextCounts",
    "TextPII",
    "detect_in_text",
    "find_in_text",
    "count_in_text",
    "check_text_types",
]

TEXT_PII_TYPES: tuple[str, ...] = (
    "cn_resident_id",
    "cn_uscc",
    "bank_card",
    "cn_mobile",
    "email",
    "cn_name",
)
#: What is looked for by default: every type with a fixed format (names need a model).
STRUCTURED_TEXT_TYPES: tuple[str, ...] = TEXT_PII_TYPES[:5]
#: Short labels, for replacements such as ``[MOBILE]``.
TEXT_LABELS: dict[str, str] = {
    "cn_resident_id": "ID",
    "cn_uscc": "USCC",
    "bank_card": "CARD",
    "cn_mobile": "MOBILE",
    "email": "EMAIL",
    "cn_name": "NAME",
}

_ID, _USCC, _CARD, _MOBILE, _EMAIL, _NAME = range(6)
_NONE = -1
Int8Array = npt.NDArray[np.int8]

_HOST = r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?"
# An internationalised domain (IDNA: 例子.中国): labels of Han characters too, and a Chinese
# top-level domain from a list (in text a Han run does not end at a word boundary, so
# "li@例子.中国请回复" must not take 请回复 into the address)
_IDN_HOST = r"[\p{Han}A-Za-z0-9](?:[\p{Han}A-Za-z0-9\-]{0,61}[\p{Han}A-Za-z0-9])?"
_IDN_TLD = r"(?:中国|中國|公司|网络|網絡|香港|台湾|台灣|新加坡|在线|集团|网址|商城|信息)"
_EMAIL_RE = (rf"\b[A-Za-z0-9][A-Za-z0-9._%+\-]{{0,63}}@(?:{_HOST}(?:\.{_HOST})*"
             rf"\.[A-Za-z]{{2,63}}\b|{_IDN_HOST}(?:\.{_IDN_HOST})*\.{_IDN_TLD})")
_USCC_CH = "[0-9A-HJ-NPQRTUWXY]"
_USCC_RE = rf"\b[1-9ANY]{_USCC_CH}[0-9]{{6}}{_USCC_CH}{{10}}\b"
_NUMBER_RE = r"(?:(?:\+|\b00)86[ \-]?|\b)[0-9](?:[ \-]?[0-9]){9,44}[Xx]?\b"
#: The one pattern of the RE2 pass (e-mail first: ``13812345678@163.com`` is an e-mail).
CANDIDATE_RE = f"{_EMAIL_RE}|{_USCC_RE}|{_NUMBER_RE}"

_CARD_PREFIX_RE = r"^(?:[3-6]|9[45]|2[2-7])"
# How each type is grouped when written with separators (the token as written).
_P86 = r"^(?:(?:\+86|0086)[ \-]?)?"
_MOBILE_SHAPE = _P86 + r"(?:[0-9]{11}|[0-9]{3}[ \-][0-9]{4}[ \-][0-9]{4}|[0-9]{3}[ \-][0-9]{8}" \
    r"|[0-9]{7}[ \-][0-9]{4})$"
_CARD_SHAPE = r"^(?:[0-9]{16,19}|[0-9]{4}(?:[ \-][0-9]{4}){3}(?:[ \-][0-9]{1,3})?" \
    r"|[0-9]{6}[ \-][0-9]{10,13})$"
# A token worth cutting at its separators: it holds an identifier-shaped run of groups.
_RETRY_RE = (
    r"(?:^|[ \-])(?:(?:\+86|0086)[ \-]?)?(?:"
    r"1[3-9][0-9](?:[0-9]{8}|[ \-][0-9]{4}[ \-][0-9]{4}|[ \-][0-9]{8}|[0-9]{4}[ \-][0-9]{4})"
    r"|[0-9]{17}[0-9Xx]|[0-9]{6}[ \-][0-9]{8}[ \-][0-9]{3}[0-9Xx]"
    r"|[0-9]{16,19}|[0-9]{4}(?:[ \-][0-9]{4}){3}(?:[ \-][0-9]{1,3})?|[0-9]{6}[ \-][0-9]{10,13}"
    r")(?:$|[ \-])"
)
_STRIP_RE = r"^(?:\+86|0086)[ \-]?|[ \-]"  # prefix and separators
_ID_FORMAT_RE = rf"^(?:{'|'.join(sorted(PROVINCES))})[0-9]{{4}}(?:19|20)"
_ID_SHAPE = r"^(?:[0-9]{17}|[0-9]{6}[ \-][0-9]{8}[ \-][0-9]{3})[0-9Xx]$"
_USCC_HEAD_RE = (
    r"^(?:1[1239]|2[19]|3[1-59]|4[19]|5[1239]|6[129]|7[129]|8[19]|9[123]|A[19]|N[1239]|Y1)"
    rf"(?:10|{'|'.join(sorted(PROVINCES))})"
)
#: A label right before a number that says it is not a card or a mobile.
_NOT_PII_LABEL_RE = (
    r"(?:单号?|流水号?|交易号|编号|合同号?|批次号?|凭证号?|序列号|发票号?|保单号?|工号|快递号?)"
    r"码?[\s:：#＃]*$"
)
#: What must come right before a 15-digit (legacy) resident id in text: it has no check
#: digit, and plenty of other 15-digit numbers (merchant ids, ...) pass region and date.
_ID_LABEL_RE = (
    r"(?:身份证件?|证件|身份|(?:^|[^A-Za-z])(?:ID|Id|id))(?:号码|号)?(?:是|为)?"
    r"[\s:：#＃]*$"
)
#: Text around an 11-digit number that makes it an amount of money, not a mobile
#: (``金额15008470054元``): an amount word or currency sign right before, or a currency
#: unit right after.
_AMOUNT_BEFORE_RE = r"(?:金额|余额|总额|价款|款项|合计|共计|¥|￥|RMB|CNY|人民币)[\s:：]*$"
_AMOUNT_AFTER_RE = r"^\s*(?:元|圆|块|万|亿|角|RMB|CNY)"
_GROUP_RE = re.compile(r"\+86|0086|[0-9]+[Xx]?")
_MARKERS = [chr(c) for c in (0x1F, 0x1E, 0x1D, 0x1C, 0x01, 0x02, 0x03, 0x04)] + [
    chr(c) for c in range(0xE000, 0xE020)
]


@dataclass(frozen=True)
class TextMatch:
    """One identifier found in a cell: row, type, character offsets and the text."""

    row: int
    type: str
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class TextCounts:
    """How much PII a text column holds: cells looked at, cells with PII, matches per
    type (types with no match are left out)."""

    cells: int
    cells_with_pii: int
    counts: dict[str, int]


def check_text_types(types: Iterable[str]) -> tuple[str, ...]:
    """The requested types, validated; raises :class:`InputError` naming a bad one."""
    out = tuple(dict.fromkeys(types))
    if not out:
        raise InputError(f"name at least one PII type to look for ({', '.join(TEXT_PII_TYPES)})")
    for t in out:
        if t not in TEXT_PII_TYPES:
            raise InputError(
                f"unknown PII type in text {t!r}; expected one of {', '.join(TEXT_PII_TYPES)}"
            )
    return out


@dataclass(frozen=True)
class TextPII:
    """A column cut into pieces: per cell, text and identifiers in order.

    ``pieces`` holds every piece of every cell; cell ``i`` is
    ``pieces[offsets[i]:offsets[i + 1]]`` (null cells have none and stay null);
    ``kind`` gives each piece's type as an index into :data:`TEXT_PII_TYPES`, or -1
    for plain text. Joining a cell's pieces gives the cell back unchanged.
    """

    pieces: pa.Array
    offsets: npt.NDArray[np.int64]
    kind: Int8Array
    valid: BoolArray

    @property
    def rows(self) -> npt.NDArray[np.int64]:
        """The row of each piece."""
        counts = np.diff(self.offsets)
        return np.repeat(np.arange(len(counts), dtype=np.int64), counts)

    def counts(self) -> TextCounts:
        """Cells, cells with at least one identifier, and matches per type."""
        found = self.kind >= 0
        per_type = np.bincount(self.kind[found], minlength=len(TEXT_PII_TYPES))
        cells = len(np.unique(self.rows[found]))
        counts = {t: int(c) for t, c in zip(TEXT_PII_TYPES, per_type, strict=True) if c}
        return TextCounts(int(self.valid.sum()), cells, counts)

    def matches(self) -> list[TextMatch]:
        """Every identifier found, in row order, with character offsets in its cell."""
        lengths = np.asarray(pc.utf8_length(self.pieces).to_numpy(zero_copy_only=False))
        before = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])
        rows = self.rows
        idx = np.flatnonzero(self.kind >= 0)
        texts = self.pieces.take(pa.array(idx, type=pa.int64())).to_pylist()
        out = []
        for i, text in zip(idx.tolist(), texts, strict=True):
            r = int(rows[i])
            start = int(before[i] - before[self.offsets[r]])
            out.append(TextMatch(r, TEXT_PII_TYPES[self.kind[i]], start, start + int(lengths[i]),
                                 text))
        return out

    def replace(self, fn: Callable[[str, pa.Array], pa.Array]) -> pa.Array:
        """The cells with every identifier of type ``t`` replaced by ``fn(t, tokens)``
        (``tokens``: those identifiers, in order; it returns one string per token)."""
        idx_parts, val_parts = [], []
        for code in np.unique(self.kind[self.kind >= 0]).tolist():
            idx = np.flatnonzero(self.kind == code)
            tokens = self.pieces.take(pa.array(idx, type=pa.int64()))
            new = fn(TEXT_PII_TYPES[code], tokens)
            if len(new) != len(tokens):
                raise AssertionError("replacement changed the number of tokens")
            idx_parts.append(idx)
            val_parts.append(pc.cast(new, pa.string()))
        pieces = self.pieces
        if idx_parts:
            order = np.argsort(np.concatenate(idx_parts), kind="stable")
            values = pa.concat_arrays(val_parts).take(pa.array(order, type=pa.int64()))
            pieces = pc.replace_with_mask(pieces, pa.array(self.kind >= 0), values)
        lists = pa.ListArray.from_arrays(
            pa.array(self.offsets, type=pa.int32()), pieces, mask=pa.array(~self.valid)
        )
        return pc.binary_join(lists, "")


def _marker(text: pa.Array) -> str:
    for m in _MARKERS:
        if not pc.any(pc.match_substring(text, m)).as_py():
            return m
    raise InputError("the text holds every marker character covault can use; cannot scan it")


def _classify(tokens: pa.Array, prev: pa.Array, types: frozenset[str],
              today: _dt.date | None, after: pa.Array | None = None) -> Int8Array:
    """Type code of each candidate token (-1: none), using the column validators;
    ``prev`` is the text right before each token (for order-number and id labels, and
    amounts), ``after`` the text right after it (amounts; ``None``: not known)."""
    n = len(tokens)
    kind = np.full(n, _NONE, dtype=np.int8)
    if n == 0:
        return kind
    email = _mask(pc.match_substring(tokens, "@"))
    if "email" in types and email.any():
        ok = np.zeros(n, dtype=bool)
        ok[email] = tx.email_valid(tokens.filter(pa.array(email)))
        kind[ok] = _EMAIL
    prefixed = _mask(pc.or_(pc.starts_with(tokens, "+86"), pc.starts_with(tokens, "0086")))
    plain = _mask(pc.utf8_is_digit(tokens)) | email  # digits only: every shape below holds
    bare = tokens
    if not plain.all():
        odd = pa.array(~plain)
        bare = pc.replace_with_mask(
            tokens, odd, pc.replace_substring_regex(tokens.filter(odd), _STRIP_RE, ""))
    length = np.array(pc.binary_length(bare).to_numpy(zero_copy_only=False))
    length[email] = 0
    undecided = np.ones(n, dtype=bool)

    def check(sel: BoolArray, code: int, fn: Callable[[pa.Array], BoolArray],
              shape: str, labels: bool = False, need: str | None = None,
              amounts: bool = False) -> None:
        sel = sel & undecided
        if not sel.any():
            return
        picked = pa.array(sel)
        ok_sub = np.array(fn(bare.filter(picked)), dtype=bool)
        odd = ~plain[sel]
        if odd.any():
            ok_sub[odd] &= regex_mask(tokens.filter(pa.array(sel & ~plain)), shape)
        if labels or need is not None or amounts:
            tail = pc.utf8_slice_codeunits(prev.filter(picked), -8)
            if labels:
                ok_sub &= ~regex_mask(tail, _NOT_PII_LABEL_RE)
            if need is not None:
                ok_sub &= regex_mask(tail, need)
            if amounts:
                ok_sub &= ~regex_mask(tail, _AMOUNT_BEFORE_RE)
                if after is not None:
                    head = pc.utf8_slice_codeunits(after.filter(picked), 0, 4)
                    ok_sub &= ~regex_mask(head, _AMOUNT_AFTER_RE)
        ok = np.zeros(n, dtype=bool)
        ok[sel] = ok_sub
        kind[ok] = code
        undecided[ok] = False

    is18 = ~prefixed & (length == 18)
    if "cn_resident_id" in types:
        check(is18, _ID, lambda a: va.resident_id_valid(a, today=today), _ID_SHAPE)
        # legacy 15-digit ids (region, YYMMDD, sequence; no check digit): one run of
        # digits, and only after an id label
        check(~prefixed & (length == 15) & plain, _ID,
              lambda a: va.resident_id_valid(a, today=today), "^$", need=_ID_LABEL_RE)
    # 18 digits that read as an id (province, then a 19xx/20xx birth year) but are not a
    # valid one are a mistyped id: neither a USCC nor a card that passes by chance
    check(is18, _NONE, lambda a: regex_mask(a, _ID_FORMAT_RE), _ID_SHAPE)
    if "cn_uscc" in types:
        check(is18, _USCC, lambda a: va.uscc_valid(a) & regex_mask(a, _USCC_HEAD_RE), "^",
              labels=True)
    if "bank_card" in types:
        check(~prefixed & (length >= 16) & (length <= 19), _CARD,
              lambda a: va.bank_card_valid(a, strict=True) & regex_mask(a, _CARD_PREFIX_RE),
              _CARD_SHAPE, labels=True)
    if "cn_mobile" in types:
        check(length == 11, _MOBILE, lambda a: va.mobile_score(a) == 1.0, _MOBILE_SHAPE,
              labels=True, amounts=True)
    return kind


def _mask(arr: pa.Array) -> BoolArray:
    return np.asarray(arr.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def _split_retry(tokens: list[str], prev: list[str], types: frozenset[str],
                 today: _dt.date | None) -> list[list[tuple[str, int]]]:
    """Cut tokens with separators into groups and find identifiers among consecutive
    groups (longest first); each token becomes a list of (piece, kind) pairs."""
    cands: list[str] = []
    owner: list[tuple[int, int, int]] = []  # token, start, end (character offsets)
    for t, tok in enumerate(tokens):
        groups = [(m.start(), m.end(), m.group()) for m in _GROUP_RE.finditer(tok)]
        for i in range(len(groups)):
            size = 0
            for j in range(i, len(groups)):
                if j > i and groups[j][2] in ("+86", "0086"):
                    break
                size += len(groups[j][2])
                if size > 19:
                    break
                if size >= 11:
                    cands.append(tok[groups[i][0] : groups[j][1]])
                    owner.append((t, groups[i][0], groups[j][1]))
    before = pa.array([prev[o[0]] for o in owner], type=pa.string())
    kinds = _classify(pa.array(cands, type=pa.string()), before, types, today) \
        if cands else np.zeros(0, dtype=np.int8)
    picked: list[list[tuple[int, int, int]]] = [[] for _ in tokens]
    order = sorted(range(len(cands)), key=lambda c: (owner[c][1] - owner[c][2], owner[c][1]))
    for c in order:
        t, s, e = owner[c]
        if kinds[c] >= 0 and all(e <= s2 or s >= e2 for s2, e2, _ in picked[t]):
            picked[t].append((s, e, int(kinds[c])))
    out = []
    for tok, spans in zip(tokens, picked, strict=True):
        parts: list[tuple[str, int]] = []
        pos = 0
        for s, e, k in sorted(spans):
            parts += [(tok[pos:s], _NONE), (tok[s:e], k)]
            pos = e
        parts.append((tok[pos:], _NONE))
        out.append(parts)
    return out


def detect_in_text(values: ArrayLike, *, types: Iterable[str] = STRUCTURED_TEXT_TYPES,
                   today: _dt.date | None = None) -> TextPII:
    """Find identifiers of ``types`` inside every cell of a text column.

    Parameters
    ----------
    values:
        The column (Arrow array or chunked array, or a sequence of strings). Integers are
        read as decimal text; other non-text types hold no text (all null).
    types:
        Types to look for, from :data:`TEXT_PII_TYPES` (default: the structured ones).
    today:
        Reference date for resident-id birth dates (default: today).

    Returns
    -------
    TextPII
        The cells cut into text and identifiers; see :meth:`TextPII.counts`,
        :meth:`TextPII.matches` and :meth:`TextPII.replace`.
    """
    wanted = frozenset(check_text_types(types))
    text = to_strings(values)
    if not pa.types.is_string(text.type):
        text = pc.cast(text, pa.string())
    valid = np.asarray(text.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    original, text = text, fold_fullwidth(text)  # full-width digits read as digits
    marker = _marker(text)
    if "cn_name" in wanted:
        from masking.pii.names import mark_names

        text = mark_names(text, marker)
    marked = pc.replace_substring_regex(text, CANDIDATE_RE, f"{marker}\\0{marker}")
    lists = pc.split_pattern(marked, marker)
    offsets = np.asarray(lists.offsets.to_numpy(), dtype=np.int64)
    pieces = lists.flatten()
    rows = np.repeat(np.arange(len(text), dtype=np.int64), np.diff(offsets))
    odd = (np.arange(len(pieces), dtype=np.int64) - offsets[rows]) % 2 == 1
    kind = np.full(len(pieces), _NONE, dtype=np.int8)
    tok_idx = np.flatnonzero(odd)
    if not len(tok_idx):
        return _as_written(TextPII(pieces, offsets, kind, valid), original, text)
    if "cn_name" in wanted:  # marked names (already validated) are Han, the rest ASCII
        han = regex_mask(pieces.take(pa.array(tok_idx, type=pa.int64())), r"^\p{Han}")
        kind[tok_idx[han]] = _NAME
        tok_idx = tok_idx[~han]
    tokens = pieces.take(pa.array(tok_idx, type=pa.int64()))
    prev = pieces.take(pa.array(tok_idx - 1, type=pa.int64()))
    after = pieces.take(pa.array(tok_idx + 1, type=pa.int64()))  # a token is never last
    kind[tok_idx] = _classify(tokens, prev, wanted, today, after)
    failed = np.flatnonzero(kind[tok_idx] == _NONE)
    failed_tokens = tokens.take(pa.array(failed, type=pa.int64()))
    again = regex_mask(failed_tokens, r"[0-9][ \-]") & regex_mask(failed_tokens, _RETRY_RE)
    if again.any():
        pieces, offsets, kind = _apply_retry(pieces, offsets, kind, tok_idx[failed[again]],
                                             wanted, today)
    return _as_written(TextPII(pieces, offsets, kind, valid), original, text)


def _as_written(found: TextPII, original: pa.Array, folded: pa.Array) -> TextPII:
    """``found`` (cut from the ``folded`` text) with its pieces cut from the text as
    written instead: :func:`~masking.pii._arrow.fold_fullwidth` keeps every character
    offset, so the same lengths cut the original cells, and a masked output changes
    nothing but the identifiers."""
    if folded is original:
        return found
    changed = np.flatnonzero(_mask(pc.not_equal(original, folded)))
    if not len(changed):
        return found
    lengths = np.asarray(pc.utf8_length(found.pieces).to_numpy(zero_copy_only=False),
                         dtype=np.int64)
    where: list[int] = []
    texts: list[str] = []
    for r, cell in zip(changed.tolist(),
                       original.take(pa.array(changed, type=pa.int64())).to_pylist(),
                       strict=True):
        pos = 0
        for i in range(int(found.offsets[r]), int(found.offsets[r + 1])):
            n = int(lengths[i])
            where.append(i)
            texts.append(cell[pos:pos + n])
            pos += n
    mask = np.zeros(len(found.pieces), dtype=bool)
    mask[where] = True
    pieces = pc.replace_with_mask(found.pieces, pa.array(mask),
                                  pa.array(texts, found.pieces.type))
    return TextPII(pieces, found.offsets, found.kind, found.valid)


def _apply_retry(pieces: pa.Array, offsets: npt.NDArray[np.int64], kind: Int8Array,
                 retry: npt.NDArray[np.int64], types: frozenset[str],
                 today: _dt.date | None) -> tuple[pa.Array, npt.NDArray[np.int64], Int8Array]:
    parts = _split_retry(pieces.take(pa.array(retry, type=pa.int64())).to_pylist(),
                         pieces.take(pa.array(retry - 1, type=pa.int64())).to_pylist(),
                         types, today)
    if all(len(p) == 1 for p in parts):
        return pieces, offsets, kind
    keep = np.ones(len(pieces), dtype=bool)
    keep[retry] = False
    extra = [piece for p in parts for piece, _ in p]
    extra_kind = np.array([k for p in parts for _, k in p], dtype=np.int8)
    sizes = np.array([len(p) for p in parts], dtype=np.int64)
    pos = np.concatenate([np.flatnonzero(keep), np.repeat(retry, sizes)])
    sub = np.concatenate([np.zeros(int(keep.sum()), dtype=np.int64),
                          np.arange(len(extra)) - np.repeat(np.cumsum(sizes) - sizes, sizes)])
    order = np.lexsort((sub, pos))
    merged = pa.concat_arrays([pieces.filter(pa.array(keep)), pa.array(extra, pa.string())])
    new_kind = np.concatenate([kind[keep], extra_kind])[order]
    rows = np.repeat(np.arange(len(offsets) - 1, dtype=np.int64), np.diff(offsets))
    grown = np.zeros(len(offsets) - 1, dtype=np.int64)
    np.add.at(grown, rows[retry], sizes - 1)
    new_offsets = np.concatenate([[0], np.cumsum(np.diff(offsets) + grown)])
    return merged.take(pa.array(order, type=pa.int64())), new_offsets, new_kind


def find_in_text(values: ArrayLike, *, types: Iterable[str] = STRUCTURED_TEXT_TYPES,
                 today: _dt.date | None = None) -> list[TextMatch]:
    """Every identifier of ``types`` in the column, as :class:`TextMatch` objects."""
    return detect_in_text(values, types=types, today=today).matches()


def count_in_text(values: ArrayLike, *, types: Iterable[str] = STRUCTURED_TEXT_TYPES,
                  today: _dt.date | None = None) -> TextCounts:
    """Cells, cells with PII and matches per type in the column."""
    return detect_in_text(values, types=types, today=today).counts()
