"""Bind parameters: put logged parameter values into a statement's placeholders.

Drivers that use the extended query protocol (JDBC, psycopg, Npgsql, ...) send
``WHERE cust_id = $1`` and the value separately. pgAudit logs the values after the
statement (``pgaudit.log_parameter = on``), and some JSON logs carry them in a list.
:func:`bind` returns the statement with each placeholder replaced by its value as a SQL
string literal, so that the analysis sees ``WHERE cust_id = 'C001'`` exactly as for a
statement written with literals (customer ids, key ranges, limits).

* ``$1``, ``$2``, ... (PostgreSQL) are replaced by position; ``= ANY($1)`` with an array
  value (``{C001,C002}``) becomes ``IN ('C001', 'C002')``, so a batch lookup counts its
  customers.
* ``?`` (JDBC, MySQL) placeholders are replaced in order, only when the statement has no
  ``$n`` and exactly as many ``?`` as values (in PostgreSQL ``?`` is also a jsonb
  operator).
* Placeholders inside string literals, quoted identifiers, dollar-quoted bodies and
  comments are left alone. A ``None`` value is ``NULL``. A value pgAudit replaced by
  ``<long param suppressed>`` and a placeholder with no value stay as they were.

Imports nothing of covault.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["bind", "SUPPRESSED", "parse_pg_array"]

SUPPRESSED = "<long param suppressed>"

_TOKENS = re.compile(
    r"(?P<skip>--[^\n]*|/\*[\s\S]*?(?:\*/|\Z)"
    r"|(?<![\w$])[Ee]'(?:[^'\\]|\\[\s\S]|'')*(?:'|\Z)"
    r"|'(?:[^']|'')*(?:'|\Z)"
    r'|"(?:[^"]|"")*(?:"|\Z)'
    r"|`(?:[^`]|``)*(?:`|\Z)"
    r"|\$(?P<tag>(?:[A-Za-z_]\w*)?)\$[\s\S]*?\$(?P=tag)\$)"
    r"|(?P<any>=\s*any\s*\(\s*\$(?P<an>\d+)(?:\s*::\s*[A-Za-z_][\w ]*(?:\[\])?)?\s*\))"
    r"|(?<![\w$])\$(?P<n>\d+)(?![\w$])"
    r"|(?P<q>\?)",
    re.IGNORECASE,
)


def _literal(value: str | None) -> str:
    if value is None:
        return "NULL"
    return "'" + value.replace("'", "''") + "'"


def parse_pg_array(text: str) -> list[str | None] | None:
    """The elements of a one-dimensional PostgreSQL array literal (``{a,"b c",NULL}``),
    or None when ``text`` is not one (nested arrays included)."""
    if len(text) < 2 or text[0] != "{" or text[-1] != "}":
        return None
    body = text[1:-1]
    if not body:
        return []
    out: list[str | None] = []
    i, n = 0, len(body)
    while i <= n:
        if i < n and body[i] == '"':
            j, buf = i + 1, []
            while j < n and body[j] != '"':
                if body[j] == "\\" and j + 1 < n:
                    j += 1
                buf.append(body[j])
                j += 1
            if j >= n:
                return None
            out.append("".join(buf))
            i = j + 1
        else:
            j = body.find(",", i)
            j = n if j < 0 else j
            item = body[i:j].strip()
            if item.startswith("{") or '"' in item:
                return None
            out.append(None if item.upper() == "NULL" else item)
            i = j
        if i < n and body[i] != ",":
            return None
        i += 1
    return out


def bind(statement: str, values: Sequence[str | None]) -> str:
    """``statement`` with its placeholders replaced by ``values`` (see the module)."""
    if not values:
        return statement
    numbered = False
    questions = 0
    for m in _TOKENS.finditer(statement):
        if m.group("n") is not None or m.group("an") is not None:
            numbered = True
            break
        if m.group("q") is not None:
            questions += 1
    if not numbered and questions != len(values):
        return statement
    count = len(values)
    next_q = 0

    def value_at(index: int) -> str | None:
        return values[index] if 0 <= index < count and values[index] != SUPPRESSED else SUPPRESSED

    def replace(m: re.Match[str]) -> str:
        nonlocal next_q
        if m.group("skip") is not None:
            return m.group()
        if m.group("any") is not None:
            v = value_at(int(m.group("an")) - 1)
            items = parse_pg_array(v) if v is not None and v != SUPPRESSED else None
            if not items:  # not an array (or an empty one): substitute as a value
                if v == SUPPRESSED:
                    return m.group()
                head = m.group()
                k = head.index("$")
                return head[:k] + _literal(v) + head[k + 1 + len(m.group("an")):]
            return " IN (" + ", ".join(_literal(x) for x in items) + ")"
        if m.group("n") is not None:
            if not numbered:
                return m.group()
            v = value_at(int(m.group("n")) - 1)
            return m.group() if v == SUPPRESSED else _literal(v)
        if numbered:
            return m.group()
        v = value_at(next_q)
        next_q += 1
        return m.group() if v == SUPPRESSED else _literal(v)

    return _TOKENS.sub(replace, statement)
