"""``covault audit catalog``: a catalogue drafted from a live PostgreSQL database.

Each user table's columns are sampled (at most ``--sample`` rows: ``TABLESAMPLE SYSTEM``
on large tables) and classified by covault's PII detectors
(:func:`masking.pii.detect.detect_column`): the PII type, its JR/T 0171-2020 class, and
a confidence. Financial amounts (balances, limits, incomes, amounts, salaries) get C2 and
authentication data (passwords, PINs, CVV/CVN, track data) C3 from their names, since no
detector reads those from values. **Customer keys** are columns whose values identify a
customer: identity numbers and bank cards (from the values), the primary key of a table
holding personal identities (a customer table), and every column with a foreign key to
such a key (in any table: accounts, cards, contact logs, cases...).

The catalogue is a draft for the compliance team to review: every entry carries a
description saying why it was classified so. No sampled value is written anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import click

from covault.console import (
    atomic_output,
    emit_json,
    format_option,
    handle_errors,
    out,
    print_table,
    refuse_overwrite,
)

_AMOUNT = re.compile(r"(^|_)(bal|balance|amount|amt|income|salary|limit|credit_limit|asset|"
                     r"deposit|loan_amount|je|ye|ed|nsr)($|_)", re.I)
_SECRET = re.compile(r"(^|_)(password|passwd|pwd|pin|cvv|cvn|cvv2|track|secret|token)($|_)",
                     re.I)
_KEY_TYPES = frozenset({"cn_resident_id", "bank_card", "cn_passport", "hk_macau_permit"})
_PERSON_TYPES = frozenset({"cn_resident_id", "cn_name", "cn_passport", "hk_macau_permit"})

_COLUMNS_SQL = """
SELECT c.table_schema, c.table_name, c.column_name, c.data_type
  FROM information_schema.columns c
  JOIN information_schema.tables t
    ON t.table_schema = c.table_schema AND t.table_name = c.table_name
 WHERE t.table_type = 'BASE TABLE'
   AND c.table_schema NOT IN ('pg_catalog', 'information_schema')
   AND c.table_schema NOT LIKE 'pg_toast%%'
 ORDER BY c.table_schema, c.table_name, c.ordinal_position
"""
_KEYS_SQL = """
SELECT n.nspname, r.relname, con.contype, a.attname, fn.nspname, fr.relname, fa.attname
  FROM pg_constraint con
  JOIN pg_class r ON r.oid = con.conrelid
  JOIN pg_namespace n ON n.oid = r.relnamespace
  JOIN LATERAL unnest(con.conkey) WITH ORDINALITY AS k(attnum, i) ON true
  JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum = k.attnum
  LEFT JOIN pg_class fr ON fr.oid = con.confrelid
  LEFT JOIN pg_namespace fn ON fn.oid = fr.relnamespace
  LEFT JOIN pg_attribute fa ON fa.attrelid = con.confrelid AND fa.attnum = con.confkey[k.i]
 WHERE con.contype IN ('p', 'u', 'f') AND array_length(con.conkey, 1) = 1
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
"""


def _name(schema: str, table: str) -> str:
    return table if schema == "public" else f"{schema}.{table}"


def draft_catalog(conn: Any, *, schemas: Sequence[str] = (), sample: int = 1000,
                  today: date | None = None) -> list[dict[str, Any]]:
    """Classify every column of the user tables reachable through ``conn`` (psycopg).

    Returns one dict per column: ``table``, ``column``, ``class`` (or None), ``pii``,
    ``confidence``, ``customer_key`` and ``why``.
    """
    from psycopg import sql

    from masking.pii.detect import detect_column

    cols: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for schema, table, column, dtype in conn.execute(_COLUMNS_SQL).fetchall():
        if schemas and schema not in schemas:
            continue
        cols.setdefault((schema, table), []).append((column, dtype))
    pk: set[tuple[str, str, str]] = set()
    fks: list[tuple[tuple[str, str, str], tuple[str, str, str]]] = []
    for schema, table, kind, col, fschema, ftable, fcol in conn.execute(_KEYS_SQL).fetchall():
        if kind == "p":
            pk.add((schema, table, col))
        elif kind == "f" and ftable is not None:
            fks.append(((schema, table, col), (fschema, ftable, fcol)))
    found: dict[tuple[str, str, str], dict[str, Any]] = {}
    for (schema, table), columns in cols.items():
        ident = sql.Identifier(schema, table)
        count = conn.execute(sql.SQL("SELECT reltuples FROM pg_class WHERE oid = {}::regclass"
                                     ).format(sql.Literal(f'"{schema}"."{table}"'))).fetchone()
        est = float(count[0]) if count and count[0] is not None else 0.0
        names = sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c))
                                   for c, _ in columns)
        if est > 20 * sample:
            pct = min(100.0, max(0.01, 100.0 * 5 * sample / est))
            query = sql.SQL("SELECT {} FROM {} TABLESAMPLE SYSTEM ({}) LIMIT {}").format(
                names, ident, sql.Literal(pct), sql.Literal(sample))
        else:
            query = sql.SQL("SELECT {} FROM {} LIMIT {}").format(names, ident,
                                                                  sql.Literal(sample))
        rows = conn.execute(query).fetchall()
        for i, (column, dtype) in enumerate(columns):
            values = [r[i] for r in rows]
            det = detect_column(values, name=column, sample=sample, today=today)
            entry: dict[str, Any] = {"table": _name(schema, table), "column": column,
                                     "class": det.jrt_class or None, "pii": det.pii,
                                     "confidence": det.confidence, "customer_key": False,
                                     "why": ""}
            if det.pii != "none":
                entry["why"] = (f"{len(values)} sampled values look like {det.pii} "
                                f"(confidence {det.confidence:.2f})")
            elif _SECRET.search(column):
                entry.update({"class": "C3", "why": "authentication data by its name"})
            elif _AMOUNT.search(column) and dtype not in ("date", "boolean"):
                entry.update({"class": "C2", "why": "a financial amount by its name"})
            if det.pii in _KEY_TYPES:
                entry["customer_key"] = True
                entry["why"] += "; identifies one person"
            found[(schema, table, column)] = entry
    # a table holding personal identities is a customer table: its primary key identifies
    # a customer, and so does every column referring to it
    people = {(s, t) for (s, t, _), e in found.items() if e["pii"] in _PERSON_TYPES}
    keys = {k for k in pk if (k[0], k[1]) in people and k in found}
    for k in keys:
        found[k]["customer_key"] = True
        found[k]["class"] = found[k]["class"] or "C2"
        found[k]["why"] = (found[k]["why"] + "; " if found[k]["why"] else "") + \
            "primary key of a table of personal identities (customer number)"
    changed = True
    while changed:
        changed = False
        for src, dst in fks:
            target = found.get(dst)
            entry = found.get(src)
            if target is None or entry is None or entry["customer_key"]:
                continue
            if target["customer_key"]:
                entry["customer_key"] = True
                entry["class"] = entry["class"] or "C2"
                entry["why"] = (entry["why"] + "; " if entry["why"] else "") + \
                    f"refers to customer key {target['table']}.{target['column']}"
                changed = True
    return list(found.values())


def catalog_yaml(entries: Sequence[dict[str, Any]], source: str) -> str:
    """The catalogue file (with each entry's reason as its description)."""
    import json

    lines = ["# Drafted by `covault audit catalog` from " + source + "; review every entry.",
             "version: 1", "columns:"]
    for e in entries:
        attrs = []
        if e["class"]:
            attrs.append(f"class: {e['class']}")
        if e["pii"] not in ("none", None):
            attrs.append(f"tags: [{e['pii']}]")
        if e["customer_key"]:
            attrs.append("customer_key: true")
        if e["why"]:
            attrs.append(f"description: {json.dumps(e['why'], ensure_ascii=False)}")
        key = json.dumps(f"{e['table']}.{e['column']}", ensure_ascii=False)
        lines.append(f"  {key}: {{{', '.join(attrs)}}}")
    return "\n".join(lines) + "\n"


@click.command("catalog")
@click.option("--postgres", "dsn", required=True, metavar="DSN",
              help="libpq connection string or URI of the database to sample (read-only "
                   "use; give the password through PGPASSWORD or ~/.pgpass).")
@click.option("-o", "--out", "cat_out", required=True, type=click.Path(dir_okay=False),
              help="The catalogue YAML to write.")
@click.option("--schema", "schemas", multiple=True, help="Only these schemas (repeatable).")
@click.option("--sample", default=1000, show_default=True, type=click.IntRange(10, 100_000),
              help="Rows sampled per table.")
@click.option("--force", is_flag=True, help="Replace an existing output file.")
@format_option
@handle_errors
def catalog_cmd(dsn: str, cat_out: str, schemas: tuple[str, ...], sample: int, force: bool,
                fmt: str) -> None:
    """Draft a catalogue from a live PostgreSQL: sample each column, classify it.

    Columns get the JR/T class of the PII type covault's detectors find in their sampled
    values (amounts and secrets by name); customer keys are identity numbers and cards,
    the primary key of a table of personal identities, and columns with a foreign key
    to one. Review the draft before using it: each entry says why it was classified so.
    """
    from privacy.audit.catalog import Catalog
    from privacy.errors import InputError

    refuse_overwrite(cat_out, force=force)
    try:
        import psycopg
    except ImportError:
        raise InputError("audit catalog --postgres needs psycopg (pip install "
                         "'psycopg[binary]')") from None
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.read_only = True
            entries = draft_catalog(conn, schemas=schemas, sample=sample)
    except psycopg.Error as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"PostgreSQL: {msg}") from None
    if not entries:
        raise InputError("no user tables found" + (f" in schema(s) {', '.join(schemas)}"
                                                    if schemas else ""))
    text = catalog_yaml(entries, "PostgreSQL")
    Catalog.from_mapping(_as_mapping(entries))  # what we write must load
    with atomic_output(Path(cat_out), "w") as fh:
        fh.write(text)
    if fmt == "json":
        emit_json({"catalog": cat_out, "columns": entries})
        return
    print_table(f"catalogue drafted: {cat_out}", ["column", "class", "pii", "customer key",
                                                   "why"],
                [(f"{e['table']}.{e['column']}", e["class"] or "", e["pii"],
                  "yes" if e["customer_key"] else "", e["why"]) for e in entries])
    out.print(f"{len(entries)} columns, {sum(1 for e in entries if e['class'])} classified, "
              f"{sum(1 for e in entries if e['customer_key'])} customer keys: review before "
              "use", markup=False)


def _as_mapping(entries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    cols: dict[str, Any] = {}
    for e in entries:
        attrs: dict[str, Any] = {}
        if e["class"]:
            attrs["class"] = e["class"]
        if e["customer_key"]:
            attrs["customer_key"] = True
        cols[f"{e['table']}.{e['column']}"] = attrs
    return {"version": 1, "columns": cols}
