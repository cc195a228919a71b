"""Masking operators: one module per family, one registry.

=================  ===========================================  =========  ==========
family (module)    operators                                    key        reversible
=================  ===========================================  =========  ==========
``basic``          keep, drop, redact, null, constant           -          -
``mask``           mask, mask_name, mask_email                  -          -
``crypto``         hash, tokenize, encrypt, fpe                 yes        all but hash
``generalize``     generalize                                   -          -
``numeric``        round, top_bottom, noise                     -          -
``dates``          date_shift                                   yes        -
``text``           redact_pii (identifiers inside free text)    -          -
=================  ===========================================  =========  ==========

:func:`build_operator` builds one from a policy's name and options.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from masking.operators._base import (
    KeyProvider,
    OpContext,
    Operator,
    OpResult,
    OptionError,
)
from masking.operators.basic import Constant, Drop, Keep, Null, Redact
from masking.operators.crypto import Encrypt, Fpe, Hash, Tokenize
from masking.operators.dates import DateShift
from masking.operators.generalize import Generalize
from masking.operators.mask import Mask, MaskEmail, MaskName
from masking.operators.numeric import Noise, Round, TopBottom
from masking.operators.text import RedactPII

__all__ = [
    "OPERATORS",
    "build_operator",
    "Operator",
    "OpContext",
    "OpResult",
    "OptionError",
    "KeyProvider",
]

#: Every operator by its policy name.
OPERATORS: dict[str, type[Operator]] = {
    cls.name: cls
    for cls in (
        Keep, Drop, Redact, Null, Constant,
        Mask, MaskName, MaskEmail,
        Hash, Tokenize, Encrypt, Fpe,
        Generalize,
        Round, TopBottom, Noise,
        DateShift,
        RedactPII,
    )
}


def build_operator(name: str, options: Mapping[str, Any] | None = None) -> Operator:
    """The operator ``name`` with ``options``.

    Raises
    ------
    OptionError
        Unknown operator (``option`` is ``None``), unknown option or bad value (named).
    """
    cls = OPERATORS.get(name)
    if cls is None:
        raise OptionError(
            None, f"unknown operator {name!r}; expected one of {', '.join(OPERATORS)}"
        )
    return cls.from_options(options)
