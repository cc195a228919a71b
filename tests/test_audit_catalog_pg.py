"""``covault audit catalog --postgres``: a catalogue drafted from a real PostgreSQL server.

The server is the one ``test_pgaudit_real.py`` starts (``initdb`` into a temporary
directory, pgaudit preloaded, loopback only); skipped only where PostgreSQL or pgaudit
is not installed, and failing where CI promised them (``COVAULT_REQUIRE_PGAUDIT=1``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from faker import Faker
from test_pgaudit_real import ADMIN, Server, server  # noqa: F401 - the server fixture

from covault.cli import main
from privacy.audit.catalog import Catalog

SCHEMA = """
create schema crm;
create table customers (cust_no bigint primary key, full_name text, id_no text,
                        mobile text, home_addr text, created date);
create table accounts (acct_id serial primary key,
                       cust_no bigint references customers(cust_no),
                       card_no text, balance numeric(14, 2), status text);
create table crm.contact_log (id serial primary key,
                              cust_no bigint references customers(cust_no),
                              staff text, note text);
create table branches (branch_id int primary key, city text, opened date);
"""


def _load(srv: Server) -> None:
    fake = Faker("zh_CN")
    Faker.seed(7)
    rows = []
    for i in range(300):
        rows.append(f"({10_000 + i}, '{fake.name()}', '{fake.ssn(min_age=20, max_age=70)}', "
                    f"'{fake.phone_number()}', '{fake.address()}', '2020-01-{1 + i % 28:02d}')")
    cards = []
    for i in range(300):
        cards.append(f"({10_000 + i}, '{fake.credit_card_number()}', {i * 13.5}, "
                     "'open')")
    sql = (SCHEMA + "insert into customers values " + ",".join(rows) + ";\n"
           + "insert into accounts (cust_no, card_no, balance, status) values "
           + ",".join(cards) + ";\n"
           + "insert into crm.contact_log (cust_no, staff, note) select cust_no, 'E1', "
             "'called' from customers;\n"
           + "insert into branches select g, 'city ' || g, date '2001-01-01' + g "
             "from generate_series(1, 40) g;\n")
    res = srv.psql(ADMIN, sql)
    assert res.returncode == 0 and "ERROR" not in res.stderr, res.stderr


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_catalog_from_postgres_gives_the_expected_classes(server: Server,  # noqa: F811
                                                           tmp_path: Path) -> None:
    _load(server)
    out = tmp_path / "catalog.yaml"
    dsn = f"host=127.0.0.1 port={server.port} user={ADMIN} dbname=bank"
    r = CliRunner().invoke(main, ["audit", "catalog", "--postgres", dsn, "-o", str(out),
                                  "--format", "json"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    cols = {f"{e['table']}.{e['column']}": e for e in json.loads(r.output)["columns"]}
    assert cols["customers.id_no"]["pii"] == "cn_resident_id"
    assert cols["customers.id_no"]["class"] == "C2" and cols["customers.id_no"]["customer_key"]
    assert cols["customers.full_name"]["pii"] == "cn_name"
    assert cols["customers.mobile"]["pii"] == "cn_mobile"
    assert cols["customers.home_addr"]["pii"] == "cn_address"
    # the customer table's primary key, and every foreign key to it, identify a customer
    assert cols["customers.cust_no"]["customer_key"]
    assert cols["accounts.cust_no"]["customer_key"]
    assert cols["crm.contact_log.cust_no"]["customer_key"]
    assert "refers to customer key customers.cust_no" in cols["accounts.cust_no"]["why"]
    assert cols["accounts.balance"]["class"] == "C2"
    assert not cols["accounts.acct_id"]["customer_key"]
    assert not cols["branches.branch_id"]["customer_key"]
    assert cols["branches.city"]["class"] is None
    cat = Catalog.load(out)  # the draft is a valid catalogue
    assert cat.is_customer_key("contact_log", "cust_no")
    assert cat.column_class("customers", "id_no") == "C2"
    text = out.read_text(encoding="utf-8")
    assert "review every entry" in text
    for v in ("E1", "called", "city 1", "10000"):  # no sampled value is written
        assert v not in text
    # refuses to overwrite; a wrong DSN is exit 2 with one line
    r = CliRunner().invoke(main, ["audit", "catalog", "--postgres", dsn, "-o", str(out)])
    assert r.exit_code == 2
    r = CliRunner().invoke(main, ["audit", "catalog", "--postgres",
                                  f"host=127.0.0.1 port={server.port} user=nobody dbname=bank",
                                  "-o", str(tmp_path / "x.yaml")])
    assert r.exit_code == 2 and "PostgreSQL:" in r.output
