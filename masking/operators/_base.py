"""The operator contract: typed frozen dataclasses that transform a whole Arrow column.

Every operator is a frozen dataclass whose fields are its options. It is built from a
policy's ``options:`` mapping with :meth:`Operator.from_options`, which refuses an
unknown option by name and checks each value's type, and it transforms one column at a
time with vector kernels (``pyarrow.compute`` or numpy), never a Python loop per value
where a vector form exists.

:meth:`Operator.apply` returns an :class:`OpResult`: the new column and, for operators
that can meet values they cannot take (a date that does not parse, a number FF1 cannot
encrypt), a boolean mask of those rows. The engine then applies the rule's
``on_invalid`` (fail naming the row, redact, or null).

Keys come from a :class:`KeyProvider`: a mapping template name -> keyset. An operator
lists the templates it can use (``templates``); a missing keyset is a clear error that
names the operator, the column and the templates needed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar, TypeVar, get_args, get_type_hints

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import TypeAdapter, ValidationError

from masking.pii._arrow import valid_ymd
from privacy.errors import KeysetError, PolicyError
from privacy.keys import Keyset
from privacy.normalize import DECIMAL, canonical_array, resolve

__all__ = [
    "INT_OPTION_LIMIT",
    "Operator",
    "OpContext",
    "OpResult",
    "OptionError",
    "KeyProvider",
    "BoolArray",
    "as_text",
    "identifiers",
    "parse_numbers",
    "parse_dates",
    "text_type",
]

BoolArray = npt.NDArray[np.bool_]
T = TypeVar("T", bound="Operator")


class OptionError(PolicyError):
    """An operator option is unknown or has a bad value; ``option`` names it."""

    def __init__(self, option: str | None, message: str) -> None:
        self.option = option
        super().__init__(message)


class KeyProvider:
    """Keysets by template name, for the operators that need keys.

    Parameters
    ----------
    keysets:
        ``None``, one :class:`~privacy.keys.Keyset`, a mapping template -> keyset, or an
        iterable of keysets (each file's template decides which operators it serves).
    """

    def __init__(self, keysets: None | Keyset | Mapping[str, Keyset] | Iterable[Keyset] = None):
        self._by_template: dict[str, Keyset] = {}
        if keysets is None:
            return
        if isinstance(keysets, Keyset):
            keysets = [keysets]
        elif isinstance(keysets, Mapping):
            for name, ks in keysets.items():
                if ks.template != name:
                    raise KeysetError(
                        f"keyset given for template {name!r} is a {ks.template} keyset"
                    )
            keysets = list(keysets.values())
        for ks in keysets:
            if ks.template in self._by_template and self._by_template[ks.template] is not ks:
                raise KeysetError(f"two keysets of template {ks.template} were given; pass one")
            self._by_template[ks.template] = ks

    def keysets(self) -> list[Keyset]:
        """The keysets held."""
        return list(self._by_template.values())

    @property
    def templates(self) -> list[str]:
        """Templates of the keysets held."""
        return list(self._by_template)

    def get(
        self, templates: tuple[str, ...], *, operator: str, column: str, prefer: str | None = None
    ) -> Keyset:
        """The keyset for ``operator`` on ``column``: ``prefer`` if given, else the first
        of ``templates`` held. Raises :class:`KeysetError` naming what is needed."""
        wanted = (prefer,) if prefer else templates
        for name in wanted:
            if name in self._by_template:
                return self._by_template[name]
        held = ", ".join(self._by_template) or "none"
        raise KeysetError(
            f"column {column!r}: operator {operator!r} needs a keyset of template "
            f"{' or '.join(wanted)} (keysets given: {held}); pass --keyset FILE of that template"
        )


@dataclass(frozen=True)
class OpContext:
    """What an operator may know besides the column: names, keys, the batch."""

    column: str
    context: str
    scope: str = "table"
    keys: KeyProvider = dataclasses.field(default_factory=KeyProvider)
    batch: pa.RecordBatch | None = None
    row_offset: int = 0
    key_id: int | None = None  # the key to use (operators whose output names no key)
    pii: str = "none"  # the column's declared or detected PII type ("none": unknown)


@dataclass(frozen=True)
class OpResult:
    """A transformed column and the rows the operator could not take (``invalid``)."""

    values: pa.Array
    invalid: BoolArray | None = None
    reason: str = "value cannot be transformed"


#: The largest magnitude of an integer option (``keep_first``, ``radix``, ``max_days``,
#: ...): every meaningful value is far below it, and a larger one overflowed the C
#: integers of the numpy and Arrow kernels (a traceback in ``apply`` after ``check``
#: passed).
INT_OPTION_LIMIT = 2**31 - 1


@lru_cache(maxsize=256)
def _adapter(hint: Any) -> TypeAdapter[Any]:
    return TypeAdapter(hint)


def _takes_bool(hint: Any) -> bool:
    """Whether an option of type ``hint`` takes a boolean (``bool`` or a union with it)."""
    return hint is bool or bool in get_args(hint)


class Operator:
    """Base of every operator. Subclasses are frozen dataclasses; fields are options.

    Class attributes
    ----------------
    name:
        The name used in policies (``mask``, ``tokenize``, ...).
    templates:
        Keyset templates the operator can use; empty for unkeyed operators.
    keeps_nulls:
        Whether null in gives null out (``False`` only for ``null``/``constant``).
    reversible:
        Whether :meth:`reverse` restores the original (with the key).
    drops:
        ``True`` for ``drop``: the engine removes the column.
    key_required:
        ``False`` when the operator can run without a keyset of its templates.
    records_key_id:
        ``True`` when the output cannot carry the id of the key that made it (``fpe``):
        the plan records the key id per column, and :meth:`reverse` must be given it
        (``OpContext.key_id``).
    reads_values:
        ``False`` when the operator never reads a value (it passes, drops or replaces
        the column wholesale), so that a column of any type suits it.
    """

    name: ClassVar[str] = ""
    templates: ClassVar[tuple[str, ...]] = ()
    keeps_nulls: ClassVar[bool] = True
    reversible: ClassVar[bool] = False
    drops: ClassVar[bool] = False
    deterministic: ClassVar[bool] = True
    key_required: ClassVar[bool] = True
    records_key_id: ClassVar[bool] = False
    reads_values: ClassVar[bool] = True

    @classmethod
    def from_options(cls: type[T], options: Mapping[str, Any] | None = None) -> T:
        """Build the operator from a policy's option mapping.

        Raises
        ------
        OptionError
            For an unknown option (named), a value of the wrong type, or a value out
            of range.
        """
        options = dict(options or {})
        fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        hints = get_type_hints(cls)
        values: dict[str, Any] = {}
        for key, value in options.items():
            if key not in fields:
                known = ", ".join(sorted(fields)) or "none"
                raise OptionError(
                    str(key),
                    f"operator {cls.name!r} has unknown option {key!r} (options: {known})",
                )
            if isinstance(value, bool) and not _takes_bool(hints[key]):
                # pydantic reads true as 1 and 1.0: keep_first: true showed one character
                raise OptionError(
                    key, f"operator {cls.name!r}: option {key!r}: expected "
                         f"{getattr(hints[key], '__name__', hints[key])}, not a boolean "
                         f"(got {value!r})")
            try:
                values[key] = _adapter(hints[key]).validate_python(value)
            except ValidationError as exc:
                msg = exc.errors()[0]["msg"]
                raise OptionError(
                    key, f"operator {cls.name!r}: option {key!r}: {msg} (got {value!r})"
                ) from None
            got = values[key]
            if hints[key] is int and abs(got) > INT_OPTION_LIMIT:
                raise OptionError(
                    key, f"operator {cls.name!r}: option {key!r}: {got} is out of range "
                         f"(integer options lie between -{INT_OPTION_LIMIT:,} and "
                         f"{INT_OPTION_LIMIT:,})")
        return cls(**values)

    def options(self) -> dict[str, Any]:
        """Options that differ from their defaults (what a policy would spell out)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            default = f.default if f.default is not dataclasses.MISSING else None
            if f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            if value != default:
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    def describe(self) -> str:
        """``name(opt=value, ...)`` for people."""
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options().items())
        return f"{self.name}({opts})" if opts else self.name

    def apply(self, values: pa.Array, ctx: OpContext) -> OpResult:
        """Transform a whole column; the result has the same length."""
        raise NotImplementedError

    def reverse(self, values: pa.Array, ctx: OpContext) -> pa.Array:
        """Undo :meth:`apply` with the key (reversible operators only)."""
        raise PolicyError(f"operator {self.name!r} is not reversible")

    def check(self, condition: bool, option: str, message: str) -> None:
        """Raise :class:`OptionError` for ``option`` unless ``condition`` holds."""
        if not condition:
            raise OptionError(option, f"operator {self.name!r}: option {option!r}: {message}")


# ---- Arrow helpers shared by the operator families --------------------------------------


def text_type(values: pa.Array) -> bool:
    """Whether the column holds text (string, large_string or string_view)."""
    t = values.type
    return bool(
        pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)
    )


def as_text(values: pa.Array) -> pa.Array:
    """The column as a ``string`` array (numbers and dates formatted, nulls kept)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if pa.types.is_string(values.type):
        return values
    if pa.types.is_null(values.type):
        return pa.nulls(len(values), pa.string())
    return pc.cast(values, pa.string())


def identifiers(values: pa.Array, identifier: str, pii: str | None, *,
                infer: bool = True) -> pa.Array:
    """The column as text in canonical identifier form (:mod:`privacy.normalize`).

    ``identifier`` is a keyed operator's option: a kind (``mobile``, ``resident_id``,
    ``card``, ``email``, ``uscc``, ``generic``), ``none`` (as written) or ``auto``:
    the kind of the column's PII type ``pii`` (``cn_mobile`` -> ``mobile``, ...), no
    change for other known types, and for an unknown type (``none``) a per-value
    conservative inference, unless ``infer`` is false (then as written). Lenient:
    never raises for a value.
    """
    text = as_text(values)
    kind = resolve(identifier, pii)
    if kind == "none" or (kind == "auto" and not infer):
        return text
    return canonical_array(text, kind)


_NUMBER_RE = rf"^\s*{DECIMAL}\s*$"


def parse_numbers(values: pa.Array) -> tuple[npt.NDArray[np.float64], BoolArray, BoolArray]:
    """``(numbers, ok, null)``: the column as float64, where it parsed, where it is null.

    Text that is not a number is neither ok nor null (it is *invalid*).
    """
    null = np.asarray(values.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    t = values.type
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        nums = pc.cast(values, pa.float64()).fill_null(0.0).to_numpy(zero_copy_only=False)
        return np.asarray(nums, dtype=np.float64), ~null, null
    text = as_text(values)
    ok = np.asarray(
        pc.match_substring_regex(text, _NUMBER_RE).fill_null(False).to_numpy(zero_copy_only=False),
        dtype=bool,
    )
    nums = np.zeros(len(values), dtype=np.float64)
    if ok.any():
        good = text.filter(pa.array(ok))
        nums[ok] = pc.cast(pc.utf8_trim_whitespace(good), pa.float64()).to_numpy(
            zero_copy_only=False
        )
    return nums, ok, null


def parse_dates(values: pa.Array) -> tuple[pa.Array, BoolArray, BoolArray]:
    """``(dates, ok, null)``: the column as ``date32`` (null where not a date).

    Accepts native date/timestamp columns and text ``YYYY-MM-DD`` (also ``/`` or ``.``,
    an optional time after the date is ignored) or ``YYYY年M月D日``, the forms PII
    detection calls ``date``.
    """
    null = np.asarray(values.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    t = values.type
    if pa.types.is_date(t) or pa.types.is_timestamp(t):
        return pc.cast(values, pa.date32()), ~null, null
    text = as_text(values)
    if pc.any(pc.match_substring(text, "年")).as_py():
        # 2020年1月15日 (optionally a time after it): the same date as 2020-1-15
        text = pc.replace_substring_regex(
            text, r"^(\s*[0-9]{4})年([0-9]{1,2})月([0-9]{1,2})日((?:[T ].*)?)$", r"\1-\2-\3\4")
    head = pc.extract_regex(
        text, r"^\s*(?P<y>[0-9]{4})[-/.](?P<m>[0-9]{1,2})[-/.](?P<d>[0-9]{1,2})(?:[T ].*)?$"
    )
    y, m, d = (pc.struct_field(head, i) for i in range(3))
    iso = pc.binary_join_element_wise(
        y, pc.utf8_lpad(m, 2, "0"), pc.utf8_lpad(d, 2, "0"), "-"
    )
    stamp = pc.strptime(iso, format="%Y-%m-%d", unit="s", error_is_null=True)
    ymd = [
        np.asarray(pc.cast(part, pa.int64()).fill_null(0).to_numpy(zero_copy_only=False))
        for part in (y, m, d)
    ]
    ok = np.asarray(stamp.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    ok &= valid_ymd(*ymd)  # strptime rolls 2020-02-30 over to March
    dates = pc.if_else(pa.array(ok), pc.cast(stamp, pa.date32()), pa.scalar(None, pa.date32()))
    return dates, ok, null
