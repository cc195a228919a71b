"""SQL analysis for query audit: what a statement reads, how much, and how suspicious.

:func:`analyze` returns a :class:`SqlAnalysis`: statement kind, tables and columns (with
their JR/T class from a :class:`~privacy.audit.catalog.Catalog`), literal customer
identifiers compared on customer-key columns, the row limit, export / privilege-change /
mass-change flags and injection-shaped patterns.

How it stays fast
-----------------
Every event goes through a cheap regex tokenizer that replaces literals by placeholders
(IN-lists and multi-row VALUES collapse to one), drops comment text, normalises case and
white space, and hashes the result: the **fingerprint**. Everything that depends only on
the template (the parse with sqlglot, table/column resolution, flags, and *which literal
slots* hold customer keys or the limit) is computed once per fingerprint and kept in an
LRU cache (:class:`SqlTemplate`). A repeated template then costs one regex pass plus
reading the literal values out of their slots.

Parsing policy: sqlglot is imported lazily. ``ErrorLevel.IGNORE`` is never used (it
silently drops clauses such as MySQL ``INTO OUTFILE``, the very export signal). A
statement sqlglot cannot parse is flagged ``unparseable`` (a signal in itself) and
analysed with regex fallbacks; ``INTO OUTFILE/DUMPFILE`` is detected by regex and
blanked out before parsing.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass

from privacy.audit.catalog import Catalog

__all__ = [
    "Lexed",
    "SqlAnalysis",
    "SqlTemplate",
    "SqlAnalyzer",
    "KeyRange",
    "SensitiveColumn",
    "analyze",
    "fingerprint",
    "normalize",
    "KINDS",
    "INJECTION_SHAPES",
]

KINDS = ("select", "insert", "update", "delete", "ddl", "grant", "revoke", "copy", "other")
INJECTION_SHAPES = ("tautology", "union_null_padding", "trailing_comment", "sleep",
                    "system_catalog_probe", "os_file_access")
SAMPLE_SIZE = 20
_FALLBACK_DIALECTS: tuple[str | None, ...] = (None, "postgres", "mysql", "tsql", "oracle")
_HASH_COMMENT_DIALECTS = frozenset({"mysql", "doris", "starrocks", "singlestore"})
_BACKSLASH_DIALECTS = frozenset({"mysql", "doris", "starrocks", "singlestore", "bigquery",
                                 "hive", "spark", "spark2", "databricks", "clickhouse"})

# ----------------------------------------------------------------------------- lexer
_LIT, _COLL, _LINE_C, _BLOCK_C = "\x01", "\x02", "\x03", "\x04"
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


class _Lexed:
    """A statement's template key and its literals (what :meth:`SqlAnalyzer.lex` returns)."""

    __slots__ = ("key", "lits", "starts", "sizes")

    def __init__(self, key: str, lits: list[str], starts: list[int], sizes: list[int]) -> None:
        self.key, self.lits, self.starts, self.sizes = key, lits, starts, sizes

    def __reduce__(self) -> tuple[type[_Lexed], tuple[str, list[str], list[int], list[int]]]:
        return (_Lexed, (self.key, self.lits, self.starts, self.sizes))


Lexed = _Lexed


def _lex(statement: str, dialect: str | None) -> _Lexed:
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
        sizes.append(m.group().count(_LIT))
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
    return _Lexed(text, lits, starts, sizes)


def _display(key: str) -> str:
    return (key.replace(_LIT, "?").replace(_COLL, "(...)")
            .replace(_LINE_C, "--").replace(_BLOCK_C, "/**/"))


def _digest(key: str) -> str:
    return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def fingerprint(statement: str, dialect: str | None = None) -> str:
    """Literal-free fingerprint (32 hex digits) of ``statement``.

    Literals become placeholders, IN-lists and VALUES rows collapse, comment text, case
    and white space are normalised: the same template with other values has the same
    fingerprint; a different template has another.
    """
    return _digest(_lex(statement, dialect).key)


def normalize(statement: str, dialect: str | None = None) -> str:
    """The normalised template text behind :func:`fingerprint` (no literal values)."""
    return _display(_lex(statement, dialect).key)


# ----------------------------------------------------------------------------- results
@dataclass(frozen=True, slots=True)
class SensitiveColumn:
    """A touched catalogue column with a JR/T class."""

    column: str
    pfi_class: str
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class KeyRange:
    """A range predicate on a customer-key column (``None`` = open end)."""

    column: str
    low: str | None
    high: str | None


@dataclass(frozen=True, slots=True)
class _KeySlot:
    column: str
    op: str  # "eq" (values), "ge"/"le" (one bound), "between" (two bounds)
    groups: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class SqlTemplate:
    """Everything about a statement that does not depend on its literal values.

    Computed once per fingerprint and shared by every :class:`SqlAnalysis` of it.
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
    key_slots: tuple[_KeySlot, ...] = ()
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


@dataclass(frozen=True, slots=True)
class SqlAnalysis:
    """The analysis of one statement: its cached template plus per-event values.

    Template-level properties forward to :class:`SqlTemplate`; ``customer_ids`` (a
    sample of at most ``SAMPLE_SIZE`` distinct values), ``customer_id_count``,
    ``key_ranges`` and ``limit`` are read from this statement's literals.

    Warnings
    --------
    ``customer_ids`` are raw identifiers taken from the SQL text: pseudonymise them
    before storing or comparing them outside the detector.
    """

    template_info: SqlTemplate
    customer_ids: tuple[str, ...] = ()
    customer_id_count: int = 0
    key_ranges: tuple[KeyRange, ...] = ()
    limit: int | None = None

    # forwards to the template
    @property
    def fingerprint(self) -> str:
        """Literal-free template digest (32 hex digits)."""
        return self.template_info.fingerprint

    @property
    def template(self) -> str:
        """Normalised template text (no literal values)."""
        return self.template_info.template

    @property
    def kind(self) -> str:
        """One of :data:`KINDS` (of the first statement)."""
        return self.template_info.kind

    @property
    def statement_count(self) -> int:
        """Number of statements in the text."""
        return self.template_info.statement_count

    @property
    def unparseable(self) -> bool:
        """No tried sqlglot dialect could parse the statement."""
        return self.template_info.unparseable

    @property
    def dialect(self) -> str | None:
        """Dialect that parsed it."""
        return self.template_info.dialect

    @property
    def tables(self) -> tuple[str, ...]:
        """Tables touched (lower-case, schema-qualified when written so)."""
        return self.template_info.tables

    @property
    def columns(self) -> tuple[str, ...]:
        """Columns touched, ``table.column`` where resolved; ``SELECT *`` expands
        to the catalogued columns."""
        return self.template_info.columns

    @property
    def sensitive_columns(self) -> tuple[SensitiveColumn, ...]:
        """Touched columns with a JR/T class."""
        return self.template_info.sensitive_columns

    @property
    def select_star(self) -> bool:
        """A ``SELECT *`` (or ``t.*``) reads a table."""
        return self.template_info.select_star

    @property
    def select_star_no_where(self) -> bool:
        """``SELECT *`` from a table with no WHERE anywhere on the outer query."""
        return self.template_info.select_star_no_where

    @property
    def has_where(self) -> bool:
        """The (first) statement has a WHERE clause."""
        return self.template_info.has_where

    @property
    def export(self) -> str | None:
        """``copy_to``, ``into_outfile``, ``into_dumpfile`` or ``lo_export``."""
        return self.template_info.export

    @property
    def privilege_change(self) -> bool:
        """GRANT/REVOKE, CREATE/ALTER/DROP USER or ROLE."""
        return self.template_info.privilege_change

    @property
    def mass_change(self) -> bool:
        """UPDATE/DELETE without WHERE, or TRUNCATE."""
        return self.template_info.mass_change

    @property
    def injection(self) -> tuple[str, ...]:
        """Injection-shaped patterns (subset of :data:`INJECTION_SHAPES`)."""
        return self.template_info.injection

    @property
    def stacked(self) -> bool:
        """More than one statement in the text."""
        return self.template_info.statement_count > 1

    @property
    def max_class(self) -> str | None:
        """Highest JR/T class touched."""
        return self.template_info.max_class


# ----------------------------------------------------------------------------- per event
def _unquote(lit: str) -> str:
    q = lit.find("'")
    if q < 0:
        if lit.startswith("$"):
            return lit[lit.index("$", 1) + 1: lit.rindex("$", 0, len(lit) - 1)]
        if lit.startswith('"'):
            return lit[1:-1].replace('""', '"')
        return lit
    body = lit[q + 1:-1] if lit.endswith("'") and len(lit) > q + 1 else lit[q + 1:]
    if q == 1 and lit[0] in "Ee" and "\\" in body:
        body = re.sub(r"\\(.)", r"\1", body)
    return body.replace("''", "'")


def _group_values(t: SqlTemplate, lexed: _Lexed, group: int) -> list[str]:
    before, ordinal = t.group_meta[group]
    sizes = lexed.sizes
    start = group - before + sum(sizes[:before])
    n = 1 if ordinal < 0 else sizes[ordinal]
    return [_unquote(v) for v in lexed.lits[start:start + n]]


def _instantiate(t: SqlTemplate, lexed: _Lexed) -> SqlAnalysis:
    if not t.key_slots and t.limit_slot is None:
        return SqlAnalysis(t, limit=t.limit_const)
    ids: dict[str, None] = {}
    ranges: list[KeyRange] = []
    try:
        for slot in t.key_slots:
            if slot.op == "eq":
                for g in slot.groups:
                    for v in _group_values(t, lexed, g):
                        ids[v] = None
            elif slot.op == "between":
                lo, hi = (_group_values(t, lexed, g)[0] for g in slot.groups)
                ranges.append(KeyRange(slot.column, lo, hi))
            else:
                v = _group_values(t, lexed, slot.groups[0])[0]
                ranges.append(KeyRange(slot.column, v if slot.op == "ge" else None,
                                       v if slot.op == "le" else None))
        limit = t.limit_const
        if t.limit_slot is not None:
            text = _group_values(t, lexed, t.limit_slot)[0]
            limit = int(text) + t.limit_adjust if text.isdigit() else None
    except (IndexError, ValueError):  # template/slot mismatch: never guess
        return SqlAnalysis(t, limit=None)
    sample = tuple(list(ids)[:SAMPLE_SIZE])
    return SqlAnalysis(t, sample, len(ids), tuple(ranges), limit)


# ----------------------------------------------------------------------------- cache
class SqlAnalyzer:
    """Analyses statements for one dialect and catalogue, caching templates.

    Parameters
    ----------
    catalog:
        Schema catalogue used to resolve sensitive and customer-key columns.
    dialect:
        sqlglot dialect name (``"postgres"``, ``"mysql"``, ``"tsql"``, ``"oracle"``...);
        ``None`` tries the default dialect, then postgres, mysql, tsql and oracle.
    cache_size:
        Maximum number of templates kept (LRU).
    """

    def __init__(self, *, catalog: Catalog | None = None, dialect: str | None = None,
                 cache_size: int = 10_000) -> None:
        if cache_size < 1:
            raise ValueError("cache_size must be at least 1")
        self.catalog = catalog
        self.dialect = dialect
        self._size = cache_size
        self._cache: OrderedDict[str, SqlTemplate] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def lex(self, statement: str) -> Lexed:
        """The statement's template key and literals: the per-event half of :meth:`analyze`,
        a pure function of the text and dialect (so another process can compute it)."""
        return _lex(statement, self.dialect)

    def analyze(self, statement: str, lexed: Lexed | None = None) -> SqlAnalysis:
        """Analyse one statement (see :func:`analyze`); ``lexed``, when given, must be
        :meth:`lex` of the same statement with the same dialect."""
        if lexed is None:
            lexed = _lex(statement, self.dialect)
        key = lexed.key
        with self._lock:
            template = self._cache.get(key)
            if template is not None:
                self._cache.move_to_end(key)
                self.hits += 1
        if template is None:
            from privacy.audit._sqlparse import build_template

            template = build_template(statement, lexed, self.dialect, self.catalog)
            with self._lock:
                self.misses += 1
                self._cache[key] = template
                if len(self._cache) > self._size:
                    self._cache.popitem(last=False)
        return _instantiate(template, lexed)

    def cache_info(self) -> dict[str, int]:
        """Hits, misses and current size of the template cache."""
        return {"hits": self.hits, "misses": self.misses, "size": len(self._cache)}


_ANALYZERS: dict[tuple[str | None, int], tuple[Catalog | None, SqlAnalyzer]] = {}


def analyze(statement: str, dialect: str | None = None,
            catalog: Catalog | None = None) -> SqlAnalysis:
    """Analyse one SQL statement (or a stacked sequence).

    Parameters
    ----------
    statement:
        The SQL text as logged.
    dialect:
        sqlglot dialect; ``None`` tries several.
    catalog:
        Catalogue for sensitive and customer-key columns.

    Returns
    -------
    SqlAnalysis
        Uses a shared template cache per (dialect, catalogue).

    Warnings
    --------
    The analysis is a signal extractor, not a SQL validator: a statement that no
    dialect parses is reported with ``unparseable=True`` and regex-based fallbacks.
    """
    slot = (dialect, id(catalog))
    entry = _ANALYZERS.get(slot)
    if entry is None or entry[0] is not catalog:
        if len(_ANALYZERS) > 64:
            _ANALYZERS.clear()
        entry = (catalog, SqlAnalyzer(catalog=catalog, dialect=dialect))
        _ANALYZERS[slot] = entry
    return entry[1].analyze(statement)
