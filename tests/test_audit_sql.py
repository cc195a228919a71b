"""SQL analysis: kinds, tables/columns, customer ids, limits, export, injection shapes."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privacy.audit._sqltemplate import _PUNCT_SPACE, _lexer
from privacy.audit.catalog import Catalog
from privacy.audit.sql import KeyRange, SqlAnalyzer, analyze, fingerprint, normalize

CAT = Catalog.from_mapping({"columns": {
    "customers.id_no": {"class": "C3", "tags": ["cn_resident_id"], "customer_key": True},
    "customers.name": {"class": "C3", "tags": ["cn_name"]},
    "customers.cust_id": {"class": "C2", "customer_key": True},
    "customers.created": {},
    "accounts.cust_id": {"class": "C2", "customer_key": True},
    "accounts.balance": {"class": "C2"},
}})


def a(sql: str, dialect: str | None = None):  # type: ignore[no-untyped-def]
    return analyze(sql, dialect, CAT)


def test_import_does_not_load_sqlglot() -> None:
    code = ("import sys, privacy.audit, privacy.audit.sql, privacy.audit.adapters; "
            "print('sqlglot' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ----------------------------------------------------------------------------- kinds
@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("select 1", "select"),
        ("with x as (select 1) select * from x", "select"),
        ("select a from t union select b from u", "select"),
        ("insert into t (a) values (1)", "insert"),
        ("update t set a = 1 where b = 2", "update"),
        ("delete from t where a = 1", "delete"),
        ("create table t (a int)", "ddl"),
        ("drop table t", "ddl"),
        ("alter table t add column b int", "ddl"),
        ("truncate table t", "ddl"),
        ("grant select on t to bob", "grant"),
        ("revoke select on t from bob", "revoke"),
        ("copy t to stdout", "copy"),
        ("vacuum", "other"),
    ],
)
def test_statement_kind(sql: str, kind: str) -> None:
    assert a(sql).kind == kind


# ----------------------------------------------------------------------------- columns
def test_tables_columns_and_sensitivity() -> None:
    r = a("select c.name, a.balance from customers c join accounts a on a.cust_id = c.cust_id "
          "where c.id_no = '110101199003077777'")
    assert set(r.tables) == {"customers", "accounts"}
    assert {"customers.name", "accounts.balance", "customers.id_no"} <= set(r.columns)
    classes = {s.column: s.pfi_class for s in r.sensitive_columns}
    assert classes["customers.id_no"] == "C3" and classes["accounts.balance"] == "C2"
    assert r.max_class == "C3" and not r.unparseable


def test_select_star_expands_to_catalogue_and_flags_no_where() -> None:
    r = a("select * from customers")
    assert r.select_star and r.select_star_no_where and not r.has_where
    assert {"customers.id_no", "customers.name", "customers.created"} <= set(r.columns)
    assert not a("select * from customers where cust_id = 1").select_star_no_where
    assert not a("select name from customers").select_star_no_where


def test_cte_column_resolves_to_base_table() -> None:
    r = a("with c as (select * from customers) select name from c where id_no = '42'")
    assert r.tables == ("customers",) and r.customer_ids == ("42",)


# ----------------------------------------------------------------------------- customer ids
def test_customer_ids_equality_and_in_list() -> None:
    r = a("select * from customers where id_no = '110101199003077777'")
    assert r.customer_ids == ("110101199003077777",) and r.customer_id_count == 1
    r = a("select * from customers c where c.cust_id in (7, 8, 9, 8) and c.name = 'x'")
    assert r.customer_ids == ("7", "8", "9") and r.customer_id_count == 3
    r = a("select * from customers where '5' = cust_id")
    assert r.customer_ids == ("5",)


def test_customer_ids_follow_each_event_of_a_cached_template() -> None:
    an = SqlAnalyzer(catalog=CAT)
    first = an.analyze("select name from customers where cust_id in (1, 2) and name = 'a'")
    second = an.analyze("SELECT name FROM customers WHERE cust_id IN (3,4,5,6) AND name='b'")
    assert first.fingerprint == second.fingerprint
    assert an.cache_info()["misses"] == 1 and an.cache_info()["hits"] == 1
    assert second.customer_ids == ("3", "4", "5", "6")


def test_customer_id_sample_is_bounded() -> None:
    ids = ",".join(str(i) for i in range(500))
    r = a(f"select name from customers where cust_id in ({ids})")
    assert r.customer_id_count == 500 and len(r.customer_ids) == 20


def test_key_ranges() -> None:
    r = a("select * from accounts where cust_id between 1000 and 2000")
    assert r.key_ranges == (KeyRange("accounts.cust_id", "1000", "2000"),)
    r = a("select * from accounts where cust_id >= 5 and 9 > cust_id")
    assert set(r.key_ranges) == {KeyRange("accounts.cust_id", "5", None),
                                 KeyRange("accounts.cust_id", None, "9")}
    assert a("select * from accounts where balance > 5").key_ranges == ()


def test_update_set_is_not_a_predicate() -> None:
    r = a("update customers set id_no = '999' where cust_id = 5")
    assert r.customer_ids == ("5",)


# ----------------------------------------------------------------------------- limits
@pytest.mark.parametrize(
    ("sql", "dialect", "limit"),
    [
        ("select * from customers limit 50", "postgres", 50),
        ("select * from customers limit 10, 20", "mysql", 20),
        ("select top 100 * from customers", "tsql", 100),
        ("select * from customers order by 1 fetch first 25 rows only", "oracle", 25),
        ("select * from customers fetch first row only", "oracle", 1),
        ("select * from customers where rownum <= 30", "oracle", 30),
        ("select * from customers where rownum < 30", "oracle", 29),
        ("select * from customers where cust_id = 1", "postgres", None),
        ("select * from customers limit $1", "postgres", None),
    ],
)
def test_limits(sql: str, dialect: str, limit: int | None) -> None:
    assert a(sql, dialect).limit == limit


# ----------------------------------------------------------------------------- export
@pytest.mark.parametrize(
    ("sql", "dialect", "export"),
    [
        ("select name from customers into outfile '/tmp/c.csv'", "mysql", "into_outfile"),
        ("select * into outfile '/tmp/c.csv' fields terminated by ',' from customers", "mysql",
         "into_outfile"),
        ("select name from customers into dumpfile '/tmp/c.bin'", "mysql", "into_dumpfile"),
        ("copy customers to '/tmp/c.csv'", "postgres", "copy_to"),
        ("copy (select * from customers) to stdout with csv", "postgres", "copy_to"),
        ("copy customers from stdin", "postgres", None),
        ("select lo_export(1234, '/tmp/x')", "postgres", "lo_export"),
        ("select name from customers", None, None),
    ],
)
def test_export_detection(sql: str, dialect: str | None, export: str | None) -> None:
    assert a(sql, dialect).export == export


def test_into_outfile_still_yields_tables_and_columns() -> None:
    r = a("select id_no, name from customers into outfile '/tmp/c.csv'", "mysql")
    assert not r.unparseable and r.tables == ("customers",)
    assert {"customers.id_no", "customers.name"} <= set(r.columns)


def test_copy_table_touches_all_columns() -> None:
    r = a("copy customers to stdout", "postgres")
    assert "customers.id_no" in r.columns and r.max_class == "C3"


# ----------------------------------------------------------------------------- flags
def test_privilege_changes() -> None:
    assert a("grant select on customers to bob").privilege_change
    assert a("revoke all on customers from bob").privilege_change
    assert a("create user bob identified by 'x'").privilege_change
    assert a("alter role bob superuser", "postgres").privilege_change
    assert a("drop role bob").privilege_change
    assert not a("create table bob (a int)").privilege_change


def test_mass_change() -> None:
    assert a("update customers set name = 'x'").mass_change
    assert a("delete from customers").mass_change
    assert a("truncate table customers").mass_change
    assert not a("delete from customers where cust_id = 1").mass_change


def test_stacked_statements() -> None:
    r = a("select * from customers where cust_id = 1; drop table customers")
    assert r.stacked and r.statement_count == 2 and r.kind == "select"
    assert "customers" in r.tables
    assert not a("select 1;").stacked


@pytest.mark.parametrize(
    ("sql", "dialect", "shape"),
    [
        ("select * from users where name = '' or 1=1 --'", None, "tautology"),
        ("select * from users where name = 'x' or 'a'='a'", None, "tautology"),
        ("select * from users where id = 1 or true", None, "tautology"),
        ("select * from users where id = 1 or (2 > 1)", None, "tautology"),
        ("select * from users where id = 1 or id = id", None, "tautology"),
        ("select name from users where id = 1 union select null, null, password from users",
         None, "union_null_padding"),
        ("select name from users where id = 1 union all select 1, 2, 3", None,
         "union_null_padding"),
        ("select * from users where name = 'x' -- and pw = 'y'", None, "trailing_comment"),
        ("select * from users where name = 'x' /* tail */", None, "trailing_comment"),
        ("select * from users where name = 'x' # tail", "mysql", "trailing_comment"),
        ("select pg_sleep(10)", "postgres", "sleep"),
        ("select * from users where id = 1 and sleep(5)", "mysql", "sleep"),
        ("select benchmark(1000000, md5('a'))", "mysql", "sleep"),
        ("select table_name from information_schema.tables", None, "system_catalog_probe"),
        ("select user, password from mysql.user", "mysql", "system_catalog_probe"),
        ("exec xp_cmdshell 'dir'", "tsql", "os_file_access"),
    ],
)
def test_injection_shapes(sql: str, dialect: str | None, shape: str) -> None:
    assert shape in a(sql, dialect).injection


@pytest.mark.parametrize(
    "sql",
    [
        "select * from customers where cust_id = 1",
        "select * from customers where 1=1 and cust_id = 2",
        "select name from a union select name from b",
        "select * from customers where name = 'x' or name = 'y'",
        "select * from t where a = 1 /*traceparent='00-abc-01',route='/x'*/",  # sqlcommenter
        "-- report\nselect * from customers where cust_id = 3",
    ],
)
def test_benign_statements_have_no_injection_shape(sql: str) -> None:
    assert a(sql).injection == ()


def test_unparseable_is_flagged_with_fallbacks() -> None:
    r = a("selec name frm customers whre id_no = '1' ((")
    assert r.unparseable and r.kind == "other"
    r = a("select name from customers where id_no = '7' and (((")
    assert r.unparseable and r.kind == "select"
    assert "customers" in r.tables and r.customer_ids == ("7",)


def test_garbage_and_empty() -> None:
    assert a("\x00\x01 ))) (((").unparseable
    assert a("").unparseable


# ----------------------------------------------------------------------------- fingerprint
def test_fingerprint_stable_across_literals_case_space_and_comments() -> None:
    base = fingerprint("select name from customers where id_no = '1' and cust_id in (1, 2)")
    assert base == fingerprint("SELECT  name\nFROM customers WHERE id_no='99'  AND "
                               "cust_id IN (5,6,7,8)")
    assert base == fingerprint("select name from customers where id_no = 'x''y' and "
                               "cust_id in (-1)")
    assert fingerprint("select 1 -- a") == fingerprint("select 2 -- b")
    assert len(base) == 32 and int(base, 16) >= 0


def test_fingerprint_differs_for_different_templates() -> None:
    fps = {fingerprint(s) for s in [
        "select name from customers where id_no = '1'",
        "select name from customers where cust_id = '1'",
        "select * from customers where id_no = '1'",
        "select name from customers where id_no = '1' or 1=1",
        "select name from customers where id_no = '1' --",
        "delete from customers where id_no = '1'",
    ]}
    assert len(fps) == 6


def test_normalize_has_no_literal_values() -> None:
    text = normalize("select * from t where a = 'secret' and b = 42 and c in (1,2)")
    assert "secret" not in text and "42" not in text
    assert text == "select*from t where a=? and b=? and c in(...)"


def test_quoted_text_cannot_fake_structure() -> None:
    r = a("select * from customers where name = 'x; drop table t -- or 1=1'")
    assert not r.stacked and r.injection == ()


@settings(max_examples=80, deadline=None)
@given(ids=st.lists(st.integers(0, 10**12), min_size=1, max_size=12),
       name=st.text(st.characters(blacklist_categories=("Cs",)), max_size=20))
def test_property_ids_extracted_per_event(ids: list[int], name: str) -> None:
    quoted = name.replace("'", "''")
    sql = (f"select name from customers where cust_id in ({', '.join(map(str, ids))}) "
           f"and name = '{quoted}'")
    r = a(sql)
    assert r.customer_ids == tuple(dict.fromkeys(map(str, ids)))[:20]
    assert r.fingerprint == fingerprint("select name from customers where cust_id in (1) "
                                        "and name = 'z'")


# Characters that start or end the lexer's tokens, white space, and some ordinary text.
_LEX_ALPHABET = st.sampled_from(list("-/'\"`$#&*\\.0123456789EeNnXxBbUu ,()=_;:?aZé\u3000\t\n")
                                + ["--", "/*", "*/", "$$", "$a$", "0x1F", "1e5", "''", " in (",
                                   "values (", ",?", ",$1", ":x", "select "])


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(_LEX_ALPHABET, max_size=30),
       dialect=st.sampled_from([None, "postgres", "mysql", "tsql", "bigquery"]))
def test_quote_free_lexer_finds_the_same_tokens(parts: list[str], dialect: str | None) -> None:
    """Text without a quote is tokenized by a lexer without string literals: same tokens."""
    text = "".join(parts).replace("'", "")
    tokens = [[(m.start(), m.group(), m.lastgroup) for m in _lexer(dialect, q).finditer(text)]
              for q in (True, False)]
    assert tokens[0] == tokens[1]


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(_LEX_ALPHABET | st.sampled_from(["\x01", " \x01 ", "\x1c", "\r\n"]),
                      max_size=30))
def test_spaces_beside_punctuation_go_as_in_the_plain_definition(parts: list[str]) -> None:
    text = "".join(parts)
    plain = " ".join(re.sub(r"\s+(?=[^\w\s\x01-\x04])|(?<=[^\w\s\x01-\x04])\s+", "",
                            text).split())
    assert _PUNCT_SPACE.sub("", " ".join(text.split())) == plain
