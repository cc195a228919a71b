"""Keyed operators: ``hash`` (HMAC pseudonyms), ``tokenize`` (AES-SIV, joinable and
reversible), ``encrypt`` (randomized AEAD) and ``fpe`` (FF1, format-preserving).

All cryptography is delegated to :mod:`privacy.fields` and :mod:`privacy.fpe`; the
operators only pick the keyset (by template, from the engine's key provider) and the
per-column context (``<policy context or table>.<column>``), so equal values in two
columns never give equal tokens.

Identifiers are normalised first (:mod:`privacy.normalize`, option ``identifier``):
``+86 187 8161 8495``, ``18781618495``, ``+8618781618495`` and ``187-8161-8495`` give
one token, ``...002x`` and ``...002X`` one token. The default ``auto`` takes the kind
from the column's PII type (declared or detected: ``cn_mobile``, ``cn_resident_id``,
``bank_card``, ``email``, ``cn_uscc``), leaves other known types as written, and for a
column of unknown type normalises only values that unmistakably look like one kind
(``hash`` and ``tokenize``; ``fpe`` then keeps the value as written, format included).
``identifier: none`` turns it off for a rule; ``identifier: mobile`` (etc.) forces a
kind. ``encrypt`` is randomized (never joinable) and takes values as written.

Warnings
--------
``hash``, ``tokenize`` and ``fpe`` are deterministic: equal inputs give equal outputs,
which is what makes them joinable and also what leaks frequencies. Use ``encrypt``
where equality must stay hidden. FF1 output carries no key id: the engine records the
key id per ``fpe`` column in the plan (output metadata, ledger) and ``reverse`` uses
the key named there (``OpContext.key_id``), never simply the primary. ``tokenize`` and
``fpe`` reverse to the canonical form of an identifier, not the form as written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from masking.operators._base import OpContext, Operator, OpResult, as_text, identifiers
from privacy.errors import KeysetError
from privacy.fields import DeterministicCipher, FieldCipher, Tokenizer
from privacy.fpe import ALPHABET, FF1
from privacy.normalize import Identifier

__all__ = ["Hash", "Tokenize", "Encrypt", "Fpe"]

_PRF = ("HMAC_SHA256", "HMAC_SM3")


def _prefer(template: str | None, allowed: tuple[str, ...], op: Operator) -> None:
    if template is not None:
        op.check(template in allowed, "template", f"must be one of {', '.join(allowed)}")


@dataclass(frozen=True)
class Hash(Operator):
    """Keyed pseudonyms: HMAC-SHA256 or HMAC-SM3 under a per-column derived key (``tok:``).

    Never an unkeyed or randomly salted hash: the same value in the same column gives the
    same token for every holder of the keyset, and nobody without it can test guesses.

    Parameters
    ----------
    template:
        ``HMAC_SHA256`` or ``HMAC_SM3`` when both keysets are given.
    identifier:
        Identifier normalisation before hashing: ``auto`` (default: from the column's
        PII type, else per value), ``none``, or a kind (``mobile``, ``resident_id``,
        ``card``, ``email``, ``uscc``, ``generic``); see :mod:`privacy.normalize`.
    """

    name = "hash"
    templates = _PRF
    template: str | None = None
    identifier: Identifier = "auto"

    def __post_init__(self) -> None:
        _prefer(self.template, self.templates, self)

    def apply(self, values: pa.Array, ctx: OpContext) -> OpResult:
        ks = ctx.keys.get(self.templates, operator=self.name, column=ctx.column,
                          prefer=self.template)
        text = identifiers(values, self.identifier, ctx.pii)
        return OpResult(Tokenizer(ks).encrypt_many(text, ctx.context))


@dataclass(frozen=True)
class Tokenize(Operator):
    """Deterministic encryption (AES-SIV, ``det:`` tokens): joinable across parties that
    share the keyset, reversible by key holders (``covault mask reveal``).

    Parameters
    ----------
    identifier:
        Identifier normalisation before encrypting (as for ``hash``); ``reverse`` gives
        the canonical form back.
    """

    name = "tokenize"
    templates = ("AES256_SIV",)
    reversible = True
    identifier: Identifier = "auto"

    def apply(self, values: pa.Array, ctx: OpContext) -> OpResult:
        ks = ctx.keys.get(self.templates, operator=self.name, column=ctx.column)
        text = identifiers(values, self.identifier, ctx.pii)
        return OpResult(DeterministicCipher(ks).encrypt_many(text, ctx.context))

    def reverse(self, values: pa.Array, ctx: OpContext) -> pa.Array:
        ks = ctx.keys.get(self.templates, operator=self.name, column=ctx.column)
        return DeterministicCipher(ks).decrypt_many(as_text(values), ctx.context)


@dataclass(frozen=True)
class Encrypt(Operator):
    """Randomized authenticated encryption (AES-256-GCM or SM4-GCM, ``enc:`` tokens).

    Parameters
    ----------
    template:
        ``AES256_GCM`` or ``SM4_GCM`` when both keysets are given.
    """

    name = "encrypt"
    templates = ("AES256_GCM", "SM4_GCM")
    reversible = True
    deterministic = False
    template: str | None = None

    def __post_init__(self) -> None:
        _prefer(self.template, self.templates, self)

    def _cipher(self, ctx: OpContext) -> FieldCipher:
        ks = ctx.keys.get(self.templates, operator=self.name, column=ctx.column,
                          prefer=self.template)
        return FieldCipher(ks)

    def apply(self, values: pa.Array, ctx: OpContext) -> OpResult:
        # FieldCipher.encrypt_many draws a fresh nonce for every row of every length group.
        return OpResult(self._cipher(ctx).encrypt_many(as_text(values), ctx.context))

    def reverse(self, values: pa.Array, ctx: OpContext) -> pa.Array:
        return self._cipher(ctx).decrypt_many(as_text(values), ctx.context)


@dataclass(frozen=True)
class Fpe(Operator):
    """FF1 format-preserving encryption: same length, same alphabet, separators kept.

    Parameters
    ----------
    radix:
        10 for digits (default), up to 36 for ``0-9a-z``.
    uppercase:
        For ``radix > 10``: the letters are ``A-Z`` instead of ``a-z``. FF1 has one
        numeral per letter, so a value's case cannot survive encryption: a value with a
        letter of the other case is invalid (the rule's ``on_invalid`` decides; by
        default the run fails naming the row and column) rather than silently changed.
    keep_prefix, keep_suffix:
        Numerals left in clear at the start/end (card BIN: ``keep_prefix: 6``).
    separators:
        Characters kept in place (ASCII).
    identifier:
        Identifier normalisation before encrypting: ``auto`` (default) normalises only
        columns whose PII type is an identifier (a mobile becomes its 11 digits, a card
        its digits: the canonical format is kept, separators as written are not);
        columns of unknown type keep their format as written. ``none`` or a kind as
        for ``hash``.

    Warnings
    --------
    FF1 needs at least ``10**6`` possible values in the encrypted part (6 digits at
    radix 10); shorter values are invalid (the rule's ``on_invalid`` decides). The clear
    prefix is not bound into the tweak.
    """

    name = "fpe"
    templates = ("FF1_AES256",)
    reversible = True
    records_key_id = True
    radix: int = 10
    keep_prefix: int = 0
    keep_suffix: int = 0
    separators: str = " -"
    identifier: Identifier = "auto"
    uppercase: bool = False

    def __post_init__(self) -> None:
        self.check(2 <= self.radix <= 36, "radix", "must be in 2..36")
        self.check(self.keep_prefix >= 0, "keep_prefix", "must be >= 0")
        self.check(self.keep_suffix >= 0, "keep_suffix", "must be >= 0")
        self.check(self.separators.isascii(), "separators", "must be ASCII characters")
        alphabet = ALPHABET[: self.radix]
        clash = [c for c in self.separators if c.lower() in alphabet]
        self.check(not clash, "separators", f"{clash[:1]} is a numeral of radix {self.radix}")

    def _ff1(self, ctx: OpContext, *, reverse: bool = False) -> FF1:
        ks = ctx.keys.get(self.templates, operator=self.name, column=ctx.column)
        if reverse and ctx.key_id is None and len(ks.key_ids) > 1:
            raise KeysetError(
                f"column {ctx.column!r}: FF1 output carries no key id and none was recorded "
                f"for this column, and the keyset holds {len(ks.key_ids)} keys; refusing to "
                "decrypt with a guessed key"
            )
        return FF1(ks.key_material(ctx.key_id), self.radix, ctx.context.encode("utf-8"),
                   uppercase=self.uppercase)

    @property
    def numerals(self) -> str:
        """The numerals of this radix, in the one case the operator takes and writes."""
        alphabet = ALPHABET[: self.radix]
        return alphabet.upper() if self.uppercase else alphabet

    def _valid(self, text: pa.Array, ff1: FF1) -> np.ndarray:
        # only the numerals of one case: FF1 reads "C" and "c" as one numeral and would
        # give back "c", silently changing the data (and making two ids one)
        numerals = re.escape(self.numerals)
        seps = re.escape(self.separators)
        shape = pc.match_substring_regex(text, f"^[{numerals}{seps}]*$")
        count = pc.utf8_length(pc.replace_substring_regex(text, f"[{seps}]", "")) if seps \
            else pc.utf8_length(text)
        need = ff1.min_length + self.keep_prefix + self.keep_suffix
        ok = pc.and_(shape, pc.greater_equal(count, need)).fill_null(True)
        return np.asarray(ok.to_numpy(zero_copy_only=False), dtype=bool)

    def apply(self, values: pa.Array, ctx: OpContext) -> OpResult:
        text = identifiers(values, self.identifier, ctx.pii, infer=False)
        ff1 = self._ff1(ctx)
        ok = self._valid(text, ff1)
        todo = text if ok.all() else pc.if_else(pa.array(ok), text, pa.scalar(None, pa.string()))
        out = ff1.encrypt_formatted_many(
            todo, keep_prefix=self.keep_prefix, keep_suffix=self.keep_suffix,
            separators=self.separators,
        )
        invalid = ~ok
        reason = (f"FF1 at radix {self.radix} needs only the numerals {self._range()} and "
                  f"separators, and at least "
                  f"{ff1.min_length + self.keep_prefix + self.keep_suffix} numerals")
        if self.radix > 10:
            other = "lower" if self.uppercase else "upper"
            reason += (f" (a letter in {other} case would not come back as written; set "
                       f"uppercase: {str(not self.uppercase).lower()} if the column's "
                       f"letters are {other} case)")
        return OpResult(out, invalid if invalid.any() else None, reason)

    def _range(self) -> str:
        n = self.numerals
        return f"{n[0]}-{n[9]}" if self.radix == 10 else (
            n if self.radix < 10 else f"0-9{n[10]}-{n[-1]}" if self.radix > 11 else "0-9" + n[10])

    def reverse(self, values: pa.Array, ctx: OpContext) -> pa.Array:
        return self._ff1(ctx, reverse=True).decrypt_formatted_many(
            as_text(values), keep_prefix=self.keep_prefix, keep_suffix=self.keep_suffix,
            separators=self.separators,
        )
