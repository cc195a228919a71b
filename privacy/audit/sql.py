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

The tokenizer, the fingerprint and :class:`SqlTemplate` live in
:mod:`privacy.audit._sqltemplate`, the parse that builds a template in
:mod:`privacy.audit._sqlparse`; both import nothing from here.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass

from privacy.audit._sqlparse import build_template
from privacy.audit._sqltemplate import (
    Lexed,
    SensitiveColumn,
    SqlTemplate,
    fingerprint,
    normalize,
)
from privacy.audit._sqltemplate import lex as _lex
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


# ----------------------------------------------------------------------------- results
@dataclass(frozen=True, slots=True)
class KeyRange:
    """A range predicate on a customer-key column (``None`` = open end)."""

    column: str
    low: str | None
    high: str | None


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


def _group_values(t: SqlTemplate, lexed: Lexed, group: int) -> list[str]:
    before, ordinal = t.group_meta[group]
    sizes = lexed.sizes
    start = group - before + sum(sizes[:before])
    n = 1 if ordinal < 0 else sizes[ordinal]
    return [_unquote(v) for v in lexed.lits[start:start + n]]


def _instantiate(t: SqlTemplate, lexed: Lexed) -> SqlAnalysis:
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
            elif slot.op == "nth":
                g, offset, width = slot.groups
                for v in _group_values(t, lexed, g)[offset::width]:
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
