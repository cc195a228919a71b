"""Statement templates: the literal-free lexer and fingerprint, and what a template means.

Every event goes through :func:`lex`, a cheap regex tokenizer that replaces literals by
placeholders (IN-lists and multi-row VALUES collapse to one), drops comment text and
normalises case and white space; its key, hashed, is the **fingerprint**. A
:class:`SqlTemplate` holds everything about a statement that does not depend on its
literal values; :mod:`privacy.audit._sqlparse` builds one per fingerprint and
:mod:`privacy.audit.sql` caches it and reads each event's values out of its slots.

Public names are re-exported by :mod:`privacy.audit.sql`; import them from there.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

__all__ = [
    "LIT",
    "KeySlot",
    "Lexed",
    "SensitiveColumn",
    "SqlTemplate",
    "digest",
    "display",
    "fingerprint",
    "lex",
    "normalize",
]

_HASH_COMMENT_DIALECTS = frozenset({"mysql", "doris", "starrocks", "singlestore"})
_BACKSLASH_DIALECTS = frozenset({"mysql", "doris", "starrocks", "singlestore", "bigquery",
                                 "hive", "spark", "spark2", "databricks", "clickhouse"})

# ----------------------------------------------------------------------------- lexer
LIT, _COLL, _LINE_C, _BLOCK_C = "\x01", "\x02", "\x03", "\x04"
_SQLCOMMENTER = re.compile(r"/\*\s*\w+='[^']*'(?:\s*,\s*\w+='[^']*')*\s*\*/")


_LEXERS: dict[tuple[str | None, bool], re.Pattern[str]] = {}


def _lexer(dialect: str | None, quotes: bool = True) -> re.Pattern[str]:
    """The literal / comment / quoted-identifier tokenizer of ``dialect``.

    ``quotes=False`` gives the same tokenizer for text without a ``'``: it leaves out
    the string literals, which all need one, and so no longer stops at every E, N, X,
    B or U (a possible string prefix) to try them.
    """
    pat = _LEXERS.get((dialect, quotes))
    if pat is None:
        bs = dialect in _BACKSLASH_DIALECTS
        body = r"(?:[^'\\]|\\[\s\S]|'')*" if bs else r"(?:[^']|'')*"
        comment = r"--[^\n]*|/\*[\s\S]*?(?:\*/|\Z)"
        if dialect in _HASH_COMMENT_DIALECTS:
            comment += r"|\#[^\n]*"
        dq_string = r'"(?:[^"\\]|\\[\s\S]|"")*(?:"|\Z)|' if bs else ""
        qident = r'`(?:[^`]|``)*(?:`|\Z)' + ("" if bs else r'|"(?:[^"]|"")*(?:"|\Z)')
        gate = ("-/\"`$0-9." + ("'EeNnXxBbUu" if quotes else "")
                + ("#" if dialect in _HASH_COMMENT_DIALECTS else ""))
        strings = (r"[Ee](?<![\w$][Ee])'(?:[^'\\]|\\[\s\S]|'')*(?:'|\Z)"
                   rf"|(?:[NnXxBb](?<![\w$][NnXxBb])|[Uu](?<![\w$][Uu])&)?'{body}(?:'|\Z)|"
                   if quotes else "")
        pat = re.compile(
            rf"(?=[{gate}])(?:(?P<c>{comment})"
            rf"|(?P<s>{strings}{dq_string}"
            r"\$(?P<tag>(?:[A-Za-z_]\w*)?)\$[\s\S]*?\$(?P=tag)\$"
            r"|(?:0[xX](?<![\w$.]0[xX])[0-9A-Fa-f]+"
            r"|(?:[0-9](?<![\w$.][0-9])[0-9]*\.?[0-9]*|\.(?<![\w$.]\.)[0-9]+)"
            r"(?:[eE][+-]?[0-9]+)?)(?![\w$]))"
            rf"|(?P<q>{qident}))"
        )
        _LEXERS[(dialect, quotes)] = pat
    return pat


_CONTROL = re.compile("[\x01-\x04]")
# A space next to punctuation (in text whose white space is already single spaces).
# Starting with a literal lets the regex engine jump from space to space.
_PUNCT_SPACE = re.compile(r" (?:(?<=[^\w\x01-\x04] )|(?=[^\w\x01-\x04]))")
_COLLAPSE = re.compile(r"(\b(?:in|values) ?)\(-?\x01(?:,-?\x01)*\)(?:,\(-?\x01(?:,-?\x01)*\))*")
_PARAM_LIST = re.compile(r"\((?:\?|\$\d+|:\w+)(?:,(?:\?|\$\d+|:\w+))+\)")


class Lexed:
    """A statement's template key and its literals.

    What :meth:`privacy.audit.sql.SqlAnalyzer.lex` returns.
    """

    __slots__ = ("key", "lits", "starts", "sizes")

    def __init__(self, key: str, lits: list[str], starts: list[int], sizes: list[int]) -> None:
        self.key, self.lits, self.starts, self.sizes = key, lits, starts, sizes

    def __reduce__(self) -> tuple[type[Lexed], tuple[str, list[str], list[int], list[int]]]:
        return (Lexed, (self.key, self.lits, self.starts, self.sizes))


def lex(statement: str, dialect: str | None) -> Lexed:
    """Tokenize ``statement``: its template key (literals replaced) and its literals."""
    lits: list[str] = []
    starts: list[int] = []
    sizes: list[int] = []

    def token(m: re.Match[str]) -> str:
        group = m.lastgroup
        if group == "s":
            lits.append(m.group())
            starts.append(m.start())
            return " \x01 "
        if group == "c":
            text = m.group()
            if text[0] != "/":
                return " \x03 "
            return " " if _SQLCOMMENTER.fullmatch(text) else " \x04 "
        return m.group()

    def collapse(m: re.Match[str]) -> str:
        sizes.append(m.group().count(LIT))
        return m.group(1) + _COLL

    if _CONTROL.search(statement):
        statement = _CONTROL.sub(" ", statement)
    text = _lexer(dialect, "'" in statement).sub(token, statement)
    # str.split() splits on exactly the characters \s matches: white space runs become
    # single spaces, then the ones beside punctuation go
    text = _PUNCT_SPACE.sub("", " ".join(text.split())).lower()
    if "(\x01" in text or "(-\x01" in text:  # what every _COLLAPSE match contains
        text = _COLLAPSE.sub(collapse, text)
    if ",?" in text or ",$" in text or ",:" in text:  # what every _PARAM_LIST match holds
        text = _PARAM_LIST.sub("(?*)", text)
    return Lexed(text, lits, starts, sizes)


def display(key: str) -> str:
    """A template key as readable text (placeholders shown as ``?``, ``(...)``)."""
    return (key.replace(LIT, "?").replace(_COLL, "(...)")
            .replace(_LINE_C, "--").replace(_BLOCK_C, "/**/"))


def digest(key: str) -> str:
    """The fingerprint (32 hex digits) of a template key."""
    return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def fingerprint(statement: str, dialect: str | None = None) -> str:
    """Literal-free fingerprint (32 hex digits) of ``statement``.

    Literals become placeholders, IN-lists and VALUES rows collapse, comment text, case
    and white space are normalised: the same template with other values has the same
    fingerprint; a different template has another.
    """
    return digest(lex(statement, dialect).key)


def normalize(statement: str, dialect: str | None = None) -> str:
    """The normalised template text behind :func:`fingerprint` (no literal values)."""
    return display(lex(statement, dialect).key)


# ----------------------------------------------------------------------------- templates
@dataclass(frozen=True, slots=True)
class SensitiveColumn:
    """A touched catalogue column with a JR/T class."""

    column: str
    pfi_class: str
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class KeySlot:
    """Which literal groups of a template compare a customer-key column, and how."""

    column: str
    op: str  # "eq" (values), "ge"/"le" (one bound), "between" (two bounds),
    # "nth" (groups = (group, offset, width): every width-th value of a VALUES list)
    groups: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class SqlTemplate:
    """Everything about a statement that does not depend on its literal values.

    Computed once per fingerprint and shared by every :class:`~privacy.audit.sql.SqlAnalysis` of it.
    """

    fingerprint: str
    template: str
    kind: str
    statement_count: int
    unparseable: bool
    dialect: str | None
    tables: tuple[str, ...]
    columns: tuple[str, ...]
    sensitive_columns: tuple[SensitiveColumn, ...]
    select_star: bool
    select_star_no_where: bool
    has_where: bool
    export: str | None
    privilege_change: bool
    mass_change: bool
    injection: tuple[str, ...]
    key_slots: tuple[KeySlot, ...] = ()
    limit_slot: int | None = None
    limit_const: int | None = None
    limit_adjust: int = 0
    group_meta: tuple[tuple[int, int], ...] = ()

    @property
    def stacked(self) -> bool:
        """More than one statement in the text."""
        return self.statement_count > 1

    @property
    def max_class(self) -> str | None:
        """Highest JR/T class touched (``C3`` > ``C2`` > ``C1``)."""
        return max((s.pfi_class for s in self.sensitive_columns), default=None)
