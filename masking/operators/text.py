"""Free-text operator: ``redact_pii`` masks the identifiers found inside text cells.

``redact`` replaces a whole value; a remark column (``客户吴丽来电，手机+86 187 8161
8495 ...``) would lose everything or, kept, leak everything. ``redact_pii`` replaces only
the spans :func:`masking.pii.intext.detect_in_text` finds (resident ids, USCC, bank
cards, mobiles, e-mail; names on request) and leaves the rest of the text as it is.

.. code-block:: yaml

    - name: remark
      operator: redact_pii
      options: {types: [cn_mobile, cn_resident_id], style: label}   # 手机[MOBILE]
    - name: memo
      operator: redact_pii
      options: {style: mask}            # 手机187****8495, 身份证420102********1232
"""

from __future__ import annotations

import datetime as _dt
import string
from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

from masking.operators._base import OpContext, Operator, OpResult, as_text
from masking.operators.mask import Mask, MaskEmail, MaskName
from masking.pii.intext import STRUCTURED_TEXT_TYPES, TEXT_LABELS, TEXT_PII_TYPES, detect_in_text

__all__ = ["RedactPII", "MASK_STYLE"]

#: How ``style: mask`` shows each type (the JR/T 0171 display rules of ``jrt0171``).
MASK_STYLE: dict[str, Operator] = {
    "cn_resident_id": Mask(keep_first=6, keep_last=4),
    "cn_uscc": Mask(keep_first=6, keep_last=4),
    "bank_card": Mask(keep_first=6, keep_last=4),
    "cn_mobile": Mask(keep_first=3, keep_last=4),
    "email": MaskEmail(),
    "cn_name": MaskName(),
}


@dataclass(frozen=True)
class RedactPII(Operator):
    """Replace the identifiers found inside each text value; keep the rest of the text.

    Parameters
    ----------
    types:
        PII types to look for: ``cn_resident_id``, ``cn_uscc``, ``bank_card``,
        ``cn_mobile``, ``email`` (the default: all five) and ``cn_name`` (only when
        listed; needs ``pip install 'covault[names]'``).
    style:
        ``label`` (default): each identifier becomes ``label`` with ``{type}`` replaced
        by ID, USCC, CARD, MOBILE, EMAIL or NAME. ``mask``: the JR/T 0171 display form
        (``187****8495``, ``420102********1232``, ``622202*********0128``, ``z***@example.com``,
        ``吴*``), with ``char``.
    label:
        The replacement text of ``style: label``; ``{type}`` is the only placeholder
        (``"***"`` without one replaces every identifier with the same text).
    char:
        The masking character of ``style: mask``.

    Warnings
    --------
    Detection is a heuristic (see :mod:`masking.pii.intext`): identifiers written in
    unusual ways are left in the text. Non-text columns are read as text and come out
    as text.
    """

    name = "redact_pii"
    types: tuple[str, ...] = STRUCTURED_TEXT_TYPES
    style: Literal["label", "mask"] = "label"
    label: str = "[{type}]"
    char: str = "*"

    def __post_init__(self) -> None:
        self.check(len(self.types) > 0, "types",
                   f"name at least one of {', '.join(TEXT_PII_TYPES)}")
        for t in self.types:
            self.check(t in TEXT_PII_TYPES, "types",
                       f"unknown PII type {t!r}; expected some of {', '.join(TEXT_PII_TYPES)}")
        if "cn_name" in self.types:
            from masking.pii.names import names_available

            self.check(names_available(), "types",
                       "cn_name needs the name model: pip install 'covault[names]'")
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(self.label) if f is not None]
        except ValueError:
            fields = ["?"]
        self.check(all(f == "type" for f in fields), "label",
                   f"the only placeholder is {{type}}, got {self.label!r}")
        self.check(len(self.char) == 1, "char", f"must be one character, got {self.char!r}")

    def apply(self, values: pa.Array, ctx: OpContext) -> OpResult:
        text = as_text(values)
        found = detect_in_text(text, types=self.types, today=_dt.date.today())
        if self.style == "label":
            return OpResult(found.replace(
                lambda t, tokens: pa.repeat(pa.scalar(self.label.format(type=TEXT_LABELS[t]),
                                                      pa.string()), len(tokens))))

        def masked(t: str, tokens: pa.Array) -> pa.Array:
            op = MASK_STYLE[t]
            if self.char != "*":
                op = type(op).from_options({**op.options(), "char": self.char})
            return op.apply(tokens, ctx).values

        return OpResult(found.replace(masked))
