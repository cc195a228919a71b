"""Character masking: ``mask`` (keep first/last N), ``mask_name`` (keep the surname),
``mask_email`` (keep the first character and the domain).

ASCII columns (ids, mobiles, cards) are masked as byte matrices in numpy, one matrix per
value length; other text goes through Arrow's UTF-8 kernels. Every masked value hides at
least one character: when a value is too short for ``keep_first + keep_last``, fewer
characters are kept (``keep_last`` shrinks first), so a short value is never shown whole.

Phone numbers are masked on their national number (:func:`privacy.normalize.phone_parts`),
so the digits shown are the right ones whatever the written form: with ``keep_first: 3,
keep_last: 4``, ``+86 187 8161 8495``, ``+8618781618495`` and ``0086 187 8161 8495``
show ``+86 187****8495``; ``18781618495`` and ``187-8161-8495`` show ``187****8495``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from masking.operators._base import OpContext, Operator, OpResult, as_text
from masking.pii._data import COMPOUND_SURNAMES
from privacy.columns import as_string_array, assemble, length_groups
from privacy.normalize import Identifier, is_phone_array, phone_parts_array, resolve

__all__ = ["Mask", "MaskName", "MaskEmail"]


def _lengths(text: pa.Array) -> np.ndarray:
    return np.asarray(pc.utf8_length(text).fill_null(0).to_numpy(zero_copy_only=False), np.int64)


def _stars(char: str, counts: pa.Array) -> pa.Array:
    return pc.binary_repeat(pa.scalar(char, pa.string()), counts)


def _head_tail(text: pa.Array, first: int, last: int, char: str) -> pa.Array:
    """Keep ``first`` and ``last`` characters, replace the rest with ``char`` (scalar
    ``first``/``last``; rows must be long enough)."""
    n = pc.utf8_length(text)
    hidden = pc.max_element_wise(pc.subtract(n, first + last), 0)
    parts = [pc.utf8_slice_codeunits(text, 0, first), _stars(char, hidden)]
    if last:
        parts.append(pc.utf8_slice_codeunits(text, -last))
    else:
        parts.append(pa.repeat(pa.scalar("", pa.string()), len(text)))
    return pc.binary_join_element_wise(*parts, "")


def _effective(lengths: np.ndarray, first: int, last: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row: characters kept at each end so that at least one is hidden."""
    last_eff = np.clip(np.minimum(last, lengths - 1 - first), 0, None)
    first_eff = np.clip(np.minimum(first, lengths - 1 - last_eff), 0, None)
    return first_eff, last_eff


def _mask_unicode(text: pa.Array, first: int, last: int, char: str) -> pa.Array:
    lengths = _lengths(text)
    kf, kl = _effective(lengths, first, last)
    out = _head_tail(text, first, last, char)
    short = (kf != first) | (kl != last)
    if short.any():
        for f, la in set(zip(kf[short].tolist(), kl[short].tolist(), strict=True)):
            rows = short & (kf == f) & (kl == la)
            out = pc.if_else(pa.array(rows), _head_tail(text, f, la, char), out)
    return out


@dataclass(frozen=True)
class Mask(Operator):
    """Hide the middle of each value, keeping the first and last characters.

    Parameters
    ----------
    keep_first, keep_last:
        Characters shown at the start and the end (card: 6 and 4; mobile: 3 and 4).
    char:
        The masking character (one character).
    keep_separators:
        Leave ``separators`` in place and do not count them as characters
        (``6222-0212-3456-7890`` -> ``6222-02**-****-7890``). Counting skips separators
        only in ASCII values; in other text every character counts.
    separators:
        The characters treated as separators.
    identifier:
        ``auto`` (default): in a column of PII type ``cn_mobile``, and in a column of
        unknown type for values that look like phone numbers, a phone number is masked
        on its national number and shown as ``+86 187****8495`` when written with a
        country code, ``187****8495`` otherwise (separators are not kept).
        ``mobile`` does so for every value that parses as a phone number; ``none`` (or
        another kind) masks every value character by character as written.
    """

    name = "mask"
    keep_first: int = 0
    keep_last: int = 0
    char: str = "*"
    keep_separators: bool = True
    separators: str = " -"
    identifier: Identifier = "auto"

    def __post_init__(self) -> None:
        self.check(self.keep_first >= 0, "keep_first", "must be >= 0")
        self.check(self.keep_last >= 0, "keep_last", "must be >= 0")
        self.check(len(self.char) == 1, "char", f"must be one character, got {self.char!r}")

    def apply(self, values: pa.Array, ctx: OpContext) -> OpResult:
        text = as_text(values)
        if len(text) == 0 or text.null_count == len(text):
            return OpResult(text)
        out = self._mask_text(text)
        kind = resolve(self.identifier, ctx.pii)
        if kind not in ("mobile", "auto"):
            return OpResult(out)
        rows = None
        if kind == "auto":  # unknown type: only values that look like phone numbers
            rows = is_phone_array(text)
            if not rows.any():
                return OpResult(out)
        prefix, national = phone_parts_array(text, rows=rows)
        phone = national.is_valid()
        if not pc.any(phone).as_py():
            return OpResult(out)
        shown = self._mask_text(national.filter(phone))
        head = pc.if_else(pc.equal(prefix.filter(phone), ""), "",
                          pc.binary_join_element_wise(prefix.filter(phone), "", " "))
        shown = pc.binary_join_element_wise(head, shown, "")
        return OpResult(pc.replace_with_mask(out, phone, shown))

    def _mask_text(self, text: pa.Array) -> pa.Array:
        if not self.char.isascii():
            return _mask_unicode(text, self.keep_first, self.keep_last, self.char)
        is_ascii = pc.string_is_ascii(text)
        if pc.all(is_ascii).as_py() is not False:
            return self._mask_ascii(text)
        # per value: an ASCII value skips its separators whatever the other rows hold (one
        # non-ASCII cell in the batch made every card show '6222 0****...* 782')
        rows = np.asarray(is_ascii.fill_null(False).to_numpy(zero_copy_only=False), bool)
        out = _mask_unicode(text, self.keep_first, self.keep_last, self.char)
        if rows.any():
            out = pc.replace_with_mask(out, pa.array(rows),
                                       self._mask_ascii(text.filter(pa.array(rows))))
        return out

    def _mask_matrix(self, mat: np.ndarray, is_sep: np.ndarray) -> np.ndarray:
        char = np.uint8(ord(self.char))
        if mat.shape[1] == 0:
            return mat
        counted = ~is_sep[mat]
        if counted.all():  # no separators: one hidden range per row length
            width = mat.shape[1]
            kf, kl = _effective(np.array([width]), self.keep_first, self.keep_last)
            out = mat.copy()
            out[:, int(kf[0]) : width - int(kl[0])] = char
            return out
        cum = np.cumsum(counted, axis=1, dtype=np.int32)
        total = cum[:, -1]
        kf, kl = _effective(total, self.keep_first, self.keep_last)
        hide = counted & (cum > kf[:, None]) & (cum <= (total - kl)[:, None])
        return np.where(hide, char, mat)

    def _mask_ascii(self, text: pa.Array) -> pa.Array:
        is_sep = np.zeros(256, dtype=bool)
        if self.keep_separators:
            is_sep[[ord(c) for c in self.separators if c.isascii()]] = True
        fixed = _fixed_width(text)
        if fixed is not None:  # ids, mobiles, cards: the data buffer is the matrix
            offsets, mat = fixed
            out = self._mask_matrix(mat, is_sep)
            return pa.Array.from_buffers(pa.string(), len(text), [
                None, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(out))])
        arr = as_string_array(text)
        groups = [(idx, self._mask_matrix(mat, is_sep)) for idx, mat in length_groups(arr)]
        out = assemble(len(arr), groups)
        return out.cast(pa.string()) if not pa.types.is_string(out.type) else out


def _fixed_width(text: pa.Array) -> tuple[np.ndarray, np.ndarray] | None:
    """``(offsets, matrix)`` when ``text`` (string, no nulls) has values of one width."""
    if text.null_count or not pa.types.is_string(text.type) or len(text) == 0:
        return None
    bufs = text.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int32, count=len(text) + 1, offset=4 * text.offset)
    width = int(offsets[1] - offsets[0])
    if width == 0 or int(offsets[-1] - offsets[0]) != width * len(text):
        return None
    if not bool(np.all(np.diff(offsets) == width)):
        return None
    start = int(offsets[0])
    data = np.frombuffer(bufs[2], dtype=np.uint8, count=start + width * len(text))[start:]
    return (offsets - start).astype(np.int32), data.reshape(len(text), width)


@dataclass(frozen=True)
class MaskName(Operator):
    """Mask a Chinese name, keeping the surname (``张*``, ``欧阳**``) or the given name.

    Compound surnames (欧阳, 司马, ...) are recognised from the China pack's list.

    Parameters
    ----------
    keep:
        ``"surname"`` (default) or ``"given"`` (``*三``).
    char:
        The masking character.
    """

    name = "mask_name"
    keep: str = "surname"
    char: str = "*"

    def __post_init__(self) -> None:
        self.check(self.keep in ("surname", "given"), "keep", "must be 'surname' or 'given'")
        self.check(len(self.char) == 1, "char", f"must be one character, got {self.char!r}")

    def apply(self, values: pa.Array, ctx: OpContext) -> OpResult:
        text = pc.utf8_trim_whitespace(as_text(values))
        lengths = _lengths(text)
        compound = pc.is_in(
            pc.utf8_slice_codeunits(text, 0, 2), value_set=pa.array(sorted(COMPOUND_SURNAMES))
        )
        surname = np.where(compound.fill_null(False).to_numpy(zero_copy_only=False), 2, 1)
        surname = np.minimum(surname, np.maximum(lengths - 1, 0))
        out = pa.nulls(len(text), pa.string())
        for s in np.unique(surname).tolist():
            rows = pa.array(surname == s)
            if self.keep == "surname":
                part = _head_tail(text, int(s), 0, self.char)
            else:
                hidden = pc.min_element_wise(pc.utf8_length(text), int(s))
                part = pc.binary_join_element_wise(
                    _stars(self.char, hidden), pc.utf8_slice_codeunits(text, int(s)), ""
                )
            out = pc.if_else(rows, part, out)
        return OpResult(pc.if_else(values.is_valid(), out, pa.scalar(None, pa.string())))


@dataclass(frozen=True)
class MaskEmail(Operator):
    """Mask an e-mail's local part, keeping its first characters and the domain.

    ``dqin@example.org`` -> ``d***@example.org``. Values without ``@`` are invalid
    (the rule's ``on_invalid`` decides).

    Parameters
    ----------
    keep_first:
        Characters of the local part shown.
    length:
        How many mask characters replace the rest (fixed, so the local part's length
        is not revealed); 0 masks character for character.
    char:
        The masking character.
    """

    name = "mask_email"
    keep_first: int = 1
    length: int = 3
    char: str = "*"

    def __post_init__(self) -> None:
        self.check(self.keep_first >= 0, "keep_first", "must be >= 0")
        self.check(self.length >= 0, "length", "must be >= 0")
        self.check(len(self.char) == 1, "char", f"must be one character, got {self.char!r}")

    def apply(self, values: pa.Array, ctx: OpContext) -> OpResult:
        text = as_text(values)
        parts = pc.split_pattern(text, "@")
        local = pc.binary_join(pc.list_slice(parts, 0, 1), "")
        domain = pc.binary_join(pc.list_slice(parts, 1), "@")
        ok = pc.and_(pc.equal(pc.list_value_length(parts), 2),
                     pc.and_(pc.greater(pc.utf8_length(local), 0),
                             pc.greater(pc.utf8_length(domain), 0)))
        ok = ok.fill_null(False)
        lengths = _lengths(local)
        keep = np.clip(np.minimum(self.keep_first, lengths - 1), 0, None)
        out = pa.nulls(len(text), pa.string())
        for k in np.unique(keep).tolist():
            if self.length:
                hidden = pa.scalar(self.char * self.length, pa.string())
                head = pc.binary_join_element_wise(
                    pc.utf8_slice_codeunits(local, 0, int(k)), hidden, ""
                )
            else:
                head = _head_tail(local, int(k), 0, self.char)
            masked = pc.binary_join_element_wise(head, domain, "@")
            out = pc.if_else(pa.array(keep == k), masked, out)
        invalid = np.asarray(
            pc.and_(values.is_valid(), pc.invert(ok)).to_numpy(zero_copy_only=False), dtype=bool
        )
        return OpResult(out, invalid if invalid.any() else None, "not an e-mail address")
