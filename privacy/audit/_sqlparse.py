"""Template builder behind :mod:`privacy.audit.sql` (runs once per fingerprint).

Parses a statement with sqlglot (imported here, lazily), resolves tables and columns
against the catalogue, finds which literal *slots* (positions in the normalised
template) hold customer keys or the row limit, and sets the template-level flags.
Literal nodes are matched to the tokenizer's literals by their character offsets, so a
slot found on the first statement of a template is valid for every later statement of
the same template.
"""

from __future__ import annotations

import re
from typing import Any

from privacy.audit._sqltemplate import (
    LIT,
    KeySlot,
    Lexed,
    SensitiveColumn,
    SqlTemplate,
    digest,
    display,
)
from privacy.audit.catalog import Catalog

_FALLBACK_DIALECTS: tuple[str | None, ...] = (None, "postgres", "mysql", "tsql", "oracle")

_PRIV = re.compile(r"^(?:grant|revoke)\b|^(?:create|alter|drop|rename) (?:user|role|login)\b"
                   r"|^set password\b")
_OUTFILE = re.compile(r"\binto\s+(outfile|dumpfile)\b.*?(?=\bfrom\b|$)", re.I | re.S)
_TAUTOLOGY = (
    re.compile(r"\bor ?\(* ?-?[\x01\x02] ?\)* ?(?:=|<>|!=|<=|>=|<|>|like\b) ?\(* ?-?[\x01\x02]"),
    re.compile(r"\bor ?\(* ?(?:-?\x01|true)(?= ?(?:\)|;|\x03|\x04|$|\bor\b|\band\b|\border\b"
               r"|\blimit\b|\bgroup\b|\bunion\b))"),
    re.compile(r"\bor ?\(* ?([a-z_][\w.]*) ?= ?\1(?![\w.])"),
)
_UNION_SELECT = re.compile(r"\bunion(?: all| distinct)? ?\(? ?select\b(?: distinct)? ?(.*?)"
                           r"(?=\bfrom\b|\)|;|\x03|\x04|$)")
_SLEEP = re.compile(r"\b(?:pg_sleep(?:_for|_until)?|sleep|benchmark|dbms_lock\.sleep"
                    r"|dbms_session\.sleep|dbms_pipe\.receive_message) ?\("
                    r"|\bwaitfor (?:delay|time)\b")
_CATALOG_PROBE = re.compile(
    r"\binformation_schema\b|\bpg_(?:shadow|authid|user|roles|auth_members)\b|\bmysql\.user\b"
    r"|\bsys\.(?:objects|tables|columns|sql_logins|syslogins|databases)\b"
    r"|\bsys(?:objects|columns|logins)\b|\b(?:all|dba)_(?:tables|tab_columns|users|objects)\b"
    r"|\bsqlite_master\b")
_OS_FILE = re.compile(r"\bxp_cmdshell\b|\bto program\b|\bfrom program\b|\bsys_exec\b"
                      r"|\bload_file ?\(|\bpg_read_(?:binary_)?file ?\(|\butl_file\.")
_FALLBACK_TABLE = re.compile(r"\b(?:from|join|update|into|table) ((?!outfile\b|dumpfile\b)"
                             r"[a-z_\"`][\w$\"`]*(?:\.[a-z_\"`][\w$\"`]*)*)")
_KIND_WORDS = {"select": "select", "with": "select", "insert": "insert", "update": "update",
               "delete": "delete", "create": "ddl", "alter": "ddl", "drop": "ddl",
               "truncate": "ddl", "rename": "ddl", "comment": "ddl", "grant": "grant",
               "revoke": "revoke", "copy": "copy", "values": "select", "table": "select"}


def _first_word_kind(part: str) -> str:
    m = re.match(r"[(\s]*([a-z]+)", part)
    return _KIND_WORDS.get(m.group(1), "other") if m else "other"


def _export(key: str, parts: list[str]) -> str | None:
    if re.search(r"\binto outfile\b", key):
        return "into_outfile"
    if re.search(r"\binto dumpfile\b", key):
        return "into_dumpfile"
    for p in parts:
        if p.startswith("copy") and re.search(r"\bto ?(?:stdout\b|program\b|\x01)", p):
            return "copy_to"
    if re.search(r"\blo_export ?\(", key):
        return "lo_export"
    return None


def _injection(key: str) -> tuple[str, ...]:
    found: list[str] = []
    if any(p.search(key) for p in _TAUTOLOGY):
        found.append("tautology")
    for m in _UNION_SELECT.finditer(key):
        items = [i.strip() for i in m.group(1).split(",")]
        padding = [i for i in items if i in ("null", LIT) or i.startswith("cast(null")]
        if "null" in items or any(i.startswith("cast(null") for i in items) or (
                len(items) > 1 and len(padding) == len(items)):
            found.append("union_null_padding")
            break
    if key.rstrip(" ;").endswith(("\x03", "\x04")):
        found.append("trailing_comment")
    if _SLEEP.search(key):
        found.append("sleep")
    if _CATALOG_PROBE.search(key):
        found.append("system_catalog_probe")
    if _OS_FILE.search(key):
        found.append("os_file_access")
    return tuple(found)


def _groups(key: str, sizes: list[int]) -> tuple[tuple[tuple[int, int], ...], list[int]]:
    meta: list[tuple[int, int]] = []
    flat: list[int] = []
    before = 0
    for g, m in enumerate(re.finditer("[\x01\x02]", key)):
        if m.group() == LIT:
            meta.append((before, -1))
            flat.append(g)
        else:
            meta.append((before, before))
            flat.extend([g] * sizes[before])
            before += 1
    return tuple(meta), flat


def _parse(text: str, dialect: str | None) -> tuple[list[Any], str | None] | None:
    import sqlglot

    for d in ([dialect] if dialect else list(_FALLBACK_DIALECTS)):
        try:
            exprs = [e for e in sqlglot.parse(text, read=d) if e is not None]
        except Exception:  # any sqlglot failure means "this dialect cannot parse it"
            continue
        if exprs:
            return exprs, d
    return None


class _Builder:
    def __init__(self, lexed: Lexed, catalog: Catalog | None) -> None:
        self.catalog = catalog
        self.lexed = lexed
        self.meta, self.flat = _groups(lexed.key, lexed.sizes)
        self.pos: dict[int, int] = {}
        for i, (lit, start) in enumerate(zip(lexed.lits, lexed.starts, strict=True)):
            self.pos[start] = i
            q = lit.find("'")
            if q > 0:
                self.pos[start + q] = i
        self.tables: dict[str, None] = {}
        self.columns: dict[str, None] = {}
        self.sensitive: dict[str, SensitiveColumn] = {}
        self.slots: list[KeySlot] = []
        self.limit_slot: int | None = None
        self.limit_const: int | None = None
        self.limit_adjust = 0
        self.select_star = False
        self.star_no_where = False

    # -- helpers
    def group_of(self, node: Any) -> int | None:
        from sqlglot import exp

        while isinstance(node, (exp.Neg, exp.Paren)):
            node = node.this
        if not isinstance(node, exp.Expression) or isinstance(node, exp.Column):
            return None
        i = self.pos.get(node.meta.get("start", -1)) if node.meta else None
        return None if i is None else self.flat[i]

    def touch(self, table: str, column: str) -> None:
        self.columns[f"{table}.{column}"] = None
        info = self.catalog.column(table, column) if self.catalog else None
        if info is not None and info.pfi_class is not None:
            name = f"{table}.{column}"
            self.sensitive[name] = SensitiveColumn(name, info.pfi_class, info.tags)

    def statement(self, expr: Any, top: bool) -> None:
        from sqlglot import exp

        if isinstance(expr, exp.Command):
            return
        ctes = {c.alias_or_name.lower() for c in expr.find_all(exp.CTE)}
        alias: dict[str, str] = {}
        real: list[str] = []
        for t in expr.find_all(exp.Table):
            if not t.name or (not t.db and t.name.lower() in ctes):
                continue
            full = ".".join(p for p in (t.catalog, t.db, t.name) if p).lower()
            self.tables[full] = None
            if full not in real:
                real.append(full)
            alias[t.alias_or_name.lower()] = full
            alias.setdefault(t.name.lower(), full)

        def resolve(qual: str, name: str) -> list[str]:
            if qual and qual in alias:
                return [alias[qual]]
            if self.catalog is not None:
                hits = [t for t in real if self.catalog.has_column(t, name)]
                if hits:
                    return hits
            return real[:1] if len(real) == 1 else []

        for col in expr.find_all(exp.Column):
            if isinstance(col.this, exp.Star):
                continue
            name = col.name.lower()
            if name == "rownum":
                continue
            owners = resolve(col.table.lower(), name)
            if not owners:
                self.columns[name] = None
            for owner in owners:
                self.touch(owner, name)
        if isinstance(expr, (exp.Insert, exp.Copy)):
            target = expr.this
            if isinstance(target, exp.Schema):
                target, idents = target.this, target.expressions
            else:
                idents = None
            if isinstance(target, exp.Table) and target.name:
                tname = ".".join(p for p in (target.catalog, target.db, target.name) if p).lower()
                if idents is not None:
                    for ident in idents:
                        self.touch(tname, ident.name.lower())
                    self.inserted(tname, [i.name.lower() for i in idents],
                                  expr.args.get("expression"))
                elif isinstance(expr, exp.Copy) and self.catalog is not None:
                    for info in self.catalog.columns_of(tname):
                        self.touch(tname, info.column)
        self.stars(expr, alias, ctes)
        if top and self.select_star and expr.args.get("where") is None:
            self.star_no_where = self.star_no_where or self._star_from_table
        self.predicates(expr, resolve)
        if top:
            self.limits(expr)

    _star_from_table = False

    def inserted(self, table: str, names: list[str], values: Any) -> None:
        """Key slots for the customer keys an ``INSERT ... VALUES`` writes: one value per
        row, read from its own literal, or every ``width``-th literal of a collapsed
        all-literal VALUES list (``op == "nth"``, groups ``(group, offset, width)``)."""
        from sqlglot import exp

        if self.catalog is None or not isinstance(values, exp.Values):
            return
        keys = [(i, f"{table}.{n}") for i, n in enumerate(names)
                if self.catalog.is_customer_key(table, n)]
        if not keys:
            return
        done: set[tuple[str, int]] = set()
        for row in values.expressions:
            cells = row.expressions if isinstance(row, exp.Tuple) else [row]
            if len(cells) != len(names):
                continue
            for i, k in keys:
                node = cells[i]
                g = self.group_of(node)
                if g is None or (k, g) in done:
                    continue
                done.add((k, g))
                before, ordinal = self.meta[g]
                if ordinal < 0:
                    self.slots.append(KeySlot(k, "eq", (g,)))
                    continue
                inner = node
                while isinstance(inner, (exp.Neg, exp.Paren)):
                    inner = inner.this
                lit = self.pos.get(inner.meta.get("start", -1)) if inner.meta else None
                if lit is None:
                    continue
                first = g - before + sum(self.lexed.sizes[:before])
                self.slots.append(KeySlot(k, "nth", (g, lit - first, len(names))))

    def stars(self, expr: Any, alias: dict[str, str], ctes: set[str]) -> None:
        from sqlglot import exp

        for sel in expr.find_all(exp.Select):
            star_cols = [e for e in sel.expressions if isinstance(e, exp.Star) or (
                isinstance(e, exp.Column) and isinstance(e.this, exp.Star))]
            if not star_cols:
                continue
            self.select_star = True
            sources: list[Any] = []
            from_ = sel.args.get("from_") or sel.args.get("from")
            if from_ is not None:
                sources.append(from_.this)
            sources.extend(j.this for j in sel.args.get("joins") or [])
            for src in sources:
                if not isinstance(src, exp.Table) or not src.name:
                    continue
                if not src.db and src.name.lower() in ctes:
                    continue
                full = alias.get(src.alias_or_name.lower(), src.name.lower())
                if sel.args.get("where") is None:
                    self._star_from_table = True
                for info in (self.catalog.columns_of(full) if self.catalog else ()):
                    self.touch(full, info.column)

    def predicates(self, expr: Any, resolve: Any) -> None:
        from sqlglot import exp

        def keys(node: Any) -> list[str]:
            if not isinstance(node, exp.Column) or self.catalog is None:
                return []
            name = node.name.lower()
            return [f"{t}.{name}" for t in resolve(node.table.lower(), name)
                    if self.catalog.is_customer_key(t, name)]

        comparisons = (exp.EQ, exp.In, exp.Between, exp.GT, exp.GTE, exp.LT, exp.LTE)
        for node in expr.find_all(*comparisons):
            if node.find_ancestor(exp.Where, exp.Join, exp.Having) is None:
                continue
            left, right = node.this, node.args.get("expression")
            if isinstance(node, (exp.LT, exp.LTE, exp.GT, exp.GTE)) and self.rownum(node):
                continue
            if isinstance(node, exp.In):
                if node.args.get("query") is not None:
                    continue
                groups = [self.group_of(e) for e in node.expressions]
                uniq = tuple(dict.fromkeys(g for g in groups if g is not None))
                for k in keys(left):
                    if uniq:
                        self.slots.append(KeySlot(k, "eq", uniq))
            elif isinstance(node, exp.Between):
                lo, hi = self.group_of(node.args.get("low")), self.group_of(node.args.get("high"))
                for k in keys(left):
                    if lo is not None and hi is not None:
                        self.slots.append(KeySlot(k, "between", (lo, hi)))
            else:
                for col, lit, flipped in ((left, right, False), (right, left, True)):
                    g = self.group_of(lit)
                    if g is None:
                        continue
                    if isinstance(node, exp.EQ):
                        op = "eq"
                    else:
                        lower = isinstance(node, (exp.GT, exp.GTE)) != flipped
                        op = "ge" if lower else "le"
                    for k in keys(col):
                        self.slots.append(KeySlot(k, op, (g,)))

    def rownum(self, node: Any) -> bool:
        from sqlglot import exp

        left, right = node.this, node.args.get("expression")
        if isinstance(left, exp.Column) and left.name.lower() == "rownum":
            lit, upper = right, isinstance(node, (exp.LT, exp.LTE))
        elif isinstance(right, exp.Column) and right.name.lower() == "rownum":
            lit, upper = left, isinstance(node, (exp.GT, exp.GTE))
        else:
            return False
        g = self.group_of(lit)
        if upper and g is not None and self.limit_slot is None:
            self.limit_slot = g
            self.limit_adjust = -1 if isinstance(node, (exp.LT, exp.GT)) else 0
        return True

    def limits(self, expr: Any) -> None:
        from sqlglot import exp

        lim = expr.args.get("limit")
        value: Any = None
        if isinstance(lim, exp.Limit):
            value = lim.expression
        elif isinstance(lim, exp.Fetch):
            value = lim.args.get("count")
            if value is None:
                self.limit_const = 1
        if value is not None:
            g = self.group_of(value)
            if g is not None:
                self.limit_slot, self.limit_adjust = g, 0


def _kind(expr: Any) -> str:
    from sqlglot import exp

    table: list[tuple[type[Any], str]] = [
        (exp.Select, "select"), (exp.SetOperation, "select"), (exp.Insert, "insert"),
        (exp.Update, "update"), (exp.Delete, "delete"), (exp.Grant, "grant"),
        (exp.Revoke, "revoke"), (exp.Copy, "copy"), (exp.Create, "ddl"), (exp.Drop, "ddl"),
        (exp.Alter, "ddl"), (exp.TruncateTable, "ddl"),
    ]
    for cls, kind in table:
        if isinstance(expr, cls):
            return kind
    if isinstance(expr, exp.Command):
        return _first_word_kind(str(expr.this).lower())
    return "other"


def build_template(statement: str, lexed: Lexed, dialect: str | None,
                   catalog: Catalog | None) -> SqlTemplate:
    """Build the cached :class:`SqlTemplate` for ``statement`` (a cache miss)."""
    from sqlglot import exp

    key = lexed.key
    parts = [p.strip(" \x03\x04") for p in key.split(";")]
    parts = [p for p in parts if p]
    export = _export(key, parts)
    text = statement
    if export in ("into_outfile", "into_dumpfile"):
        text = _OUTFILE.sub(lambda m: " " * len(m.group()), statement)
    b = _Builder(lexed, catalog)
    parsed = _parse(text, dialect)
    if parsed is not None:
        exprs, used = parsed
        for i, expr in enumerate(exprs):
            b.statement(expr, top=i == 0)
        first = exprs[0]
        kind = _kind(first)
        has_where = first.args.get("where") is not None
        mass = any((isinstance(e, (exp.Update, exp.Delete)) and e.args.get("where") is None)
                   or isinstance(e, exp.TruncateTable) for e in exprs)
    else:
        used = dialect
        first_part = parts[0] if parts else ""
        kind = _first_word_kind(first_part)
        has_where = " where " in f" {key} "
        for m in _FALLBACK_TABLE.finditer(key):
            b.tables[m.group(1).strip('"`')] = None
        mass = kind in ("update", "delete") and not has_where or first_part.startswith("truncate")
        b.select_star = bool(re.match(r"select (?:distinct )?\*", first_part))
        b.star_no_where = b.select_star and not has_where
        for col in (catalog.customer_key_columns() if catalog else ()):
            pat = rf"(?<![\w$])(?:[\w$]+\.)?{re.escape(col.column)} ?(?:=|in) ?([\x01\x02])"
            for m in re.finditer(pat, key):
                g = len(re.findall("[\x01\x02]", key[:m.start(1)]))
                b.slots.append(KeySlot(col.qualified, "eq", (g,)))
    return SqlTemplate(
        fingerprint=digest(key), template=display(key), kind=kind,
        statement_count=max(1, len(parts)), unparseable=parsed is None, dialect=used,
        tables=tuple(b.tables), columns=tuple(sorted(b.columns)),
        sensitive_columns=tuple(b.sensitive[k] for k in sorted(b.sensitive)),
        select_star=b.select_star, select_star_no_where=b.star_no_where, has_where=has_where,
        export=export, privilege_change=any(_PRIV.match(p) for p in parts), mass_change=mass,
        injection=_injection(key), key_slots=tuple(b.slots), limit_slot=b.limit_slot,
        limit_const=b.limit_const, limit_adjust=b.limit_adjust, group_meta=b.meta,
    )

