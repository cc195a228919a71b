"""A real PostgreSQL server with pgAudit writes the logs the adapters ingest.

The test runs ``initdb`` into a temporary directory, starts the server on a free
loopback port with ``shared_preload_libraries = 'pgaudit'`` and both ``stderr`` and
``csvlog`` destinations, runs statements with ``psql`` as two users and with bind
parameters over the extended query protocol (``psycopg``, as JDBC sends them), stops the
server, reads both logs and checks the events against what was run.

Needs (Debian 12): ``apt-get install -y postgresql-15 postgresql-client-15
postgresql-15-pgaudit``. Binaries are looked up in ``$COVAULT_PG_BIN``, then
``pg_config --bindir``, then ``/usr/lib/postgresql/<version>/bin``. When run as root,
the server runs as the ``postgres`` system user (created by the Debian package) via
``runuser``. Skipped only when the binaries or the pgaudit library are absent.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import NoReturn

import pytest

from privacy.audit.adapters import collect, read_pgaudit_csvlog, read_pgaudit_stderr
from privacy.audit.catalog import Catalog
from privacy.audit.events import QueryEvent
from privacy.audit.sql import analyze

try:
    import psycopg
except ImportError:  # pragma: no cover - in the dev extra
    psycopg = None

PREFIX = "%m [%p] %q%u@%d %r %a "
ADMIN, TELLER, APP, JDBC_APP = "covault_admin", "teller01", "teller-ui", "loan-service"


def _bindir() -> Path | None:
    candidates: list[str] = []
    if os.environ.get("COVAULT_PG_BIN"):
        candidates.append(os.environ["COVAULT_PG_BIN"])
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        candidates.append(out.stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for c in candidates:
        if c and all((Path(c) / b).exists() for b in ("initdb", "pg_ctl", "psql", "postgres")):
            return Path(c)
    return None


def _has_pgaudit(bindir: Path) -> bool:
    out = subprocess.run([str(bindir / "pg_config"), "--pkglibdir"], capture_output=True,
                         text=True) if (bindir / "pg_config").exists() else None
    libdirs = [out.stdout.strip()] if out and out.returncode == 0 else []
    libdirs.append(str(bindir.parent / "lib"))
    return any((Path(d) / "pgaudit.so").exists() for d in libdirs)


@dataclass
class Server:
    bindir: Path
    root: Path
    port: int
    as_user: list[str]

    def run(self, *args: str, env: dict[str, str] | None = None,
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, **(env or {})}
        return subprocess.run([*self.as_user, *args], input=stdin, capture_output=True,
                              text=True, env=full_env, timeout=60, cwd=self.root)

    def psql(self, user: str, sql: str) -> subprocess.CompletedProcess[str]:
        return self.run(str(self.bindir / "psql"), "-X", "-q", "-h", "127.0.0.1",
                        "-p", str(self.port), "-U", user, "-d", "bank", "-v", "ON_ERROR_STOP=0",
                        env={"PGAPPNAME": APP}, stdin=sql)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _unavailable(reason: str) -> NoReturn:
    """Skip on a developer machine; fail where CI promised the server (.ci/run sets
    COVAULT_REQUIRE_PGAUDIT=1 after installing it)."""
    if os.environ.get("COVAULT_REQUIRE_PGAUDIT") == "1":
        pytest.fail(f"PostgreSQL with pgaudit is required here: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    bindir = _bindir()
    if bindir is None:
        _unavailable("PostgreSQL server binaries not installed (apt-get install postgresql-15)")
    if not _has_pgaudit(bindir):
        _unavailable("pgaudit not installed (apt-get install postgresql-15-pgaudit)")
    as_user: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="covault-pg-"))
    if os.geteuid() == 0:
        try:
            pg = pwd.getpwnam("postgres")
        except KeyError:
            _unavailable("running as root needs the 'postgres' system user")
        os.chown(root, pg.pw_uid, pg.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    srv = Server(bindir, root, _free_port(), as_user)
    data = root / "data"
    init = srv.run(str(bindir / "initdb"), "-D", str(data), "-U", ADMIN, "--auth=trust",
                   "-E", "UTF8", "--locale=C")
    assert init.returncode == 0, init.stderr
    conf = f"""
listen_addresses = '127.0.0.1'
port = {srv.port}
unix_socket_directories = '{root}'
shared_preload_libraries = 'pgaudit'
pgaudit.log = 'read,write,ddl,role'
pgaudit.log_rows = on
pgaudit.log_parameter = on
pgaudit.log_catalog = off
logging_collector = on
log_destination = 'stderr,csvlog'
log_directory = '{root}/log'
log_filename = 'server'
log_line_prefix = '{PREFIX}'
log_timezone = 'Etc/GMT-8'
"""
    with open(data / "postgresql.conf", "a", encoding="utf-8") as fh:
        fh.write(conf)
    start = srv.run(str(bindir / "pg_ctl"), "-D", str(data), "-w", "-t", "60",
                    "-l", str(root / "startup.log"), "start")
    if start.returncode != 0:
        log = (root / "startup.log").read_text(errors="replace")
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"pg_ctl start failed: {start.stderr}\n{log}")
    try:
        setup = srv.run(str(bindir / "psql"), "-X", "-q", "-h", "127.0.0.1", "-p",
                        str(srv.port), "-U", ADMIN, "-d", "postgres", "-c", "create database bank")
        assert setup.returncode == 0, setup.stderr
        yield srv
    finally:
        srv.run(str(bindir / "pg_ctl"), "-D", str(data), "-w", "-m", "fast", "stop")
        shutil.rmtree(root, ignore_errors=True)


ADMIN_SQL = """\
create table customers (id serial primary key, id_no text not null, name text);
create table salaries (id int, amount numeric);
insert into customers (id_no, name) values ('110101199003077777', '张三'), ('110101199003078888', '李四'), ('x3', '王五');
create role teller01 login;
grant select on customers to teller01;
update customers set name = '张三丰' where id_no = '110101199003077777';
"""  # noqa: E501
TELLER_SQL = """\
select name
  from customers
 where id_no = '110101199003077777';
select * from customers where id_no in ('110101199003077777', '110101199003078888');
select * from salaries;
select nosuch from customers;
copy customers to stdout;
"""

CATALOG = Catalog.from_mapping({"columns": {
    "customers.id_no": {"class": "C3", "tags": ["cn_resident_id"], "customer_key": True},
    "customers.name": {"class": "C3"},
}})


#: Statements an application sends with bind parameters (extended query protocol), the
#: values, and the customer ids detection must see in them.
BOUND = [
    ("select name from customers where id_no = %s", ("110101199003077777",),
     ("110101199003077777",)),
    ("select name from customers where id_no = %s", ("110101199003078888",),
     ("110101199003078888",)),
    ("select id, name from customers where id_no = any(%s)",
     (["110101199003077777", "x3"],), ("110101199003077777", "x3")),
    ("select name from customers where id_no = %s and name <> %s -- $2 stays",
     ("x3", "it's, \"quoted\""), ("x3",)),
]


def _run_bound(server: Server) -> None:
    assert psycopg is not None
    with psycopg.connect(host="127.0.0.1", port=server.port, user=TELLER, dbname="bank",
                         application_name=JDBC_APP, autocommit=True) as conn:
        for sql, args, _ in BOUND:
            conn.execute(sql, args, prepare=True)  # a named prepared statement, as JDBC's


@pytest.fixture(scope="module")
def logs(server: Server) -> dict[str, list[tuple[int, object]]]:
    for user, sql in ((ADMIN, ADMIN_SQL), (TELLER, TELLER_SQL)):
        out = server.psql(user, sql)
        assert out.returncode == 0, out.stderr
    if psycopg is not None:
        _run_bound(server)
    stop = server.run(str(server.bindir / "pg_ctl"), "-D", str(server.root / "data"), "-w",
                      "-m", "fast", "stop")
    assert stop.returncode == 0, stop.stderr
    logdir = server.root / "log"
    stderr_text = (logdir / "server").read_text(encoding="utf-8").splitlines()
    csv_text = (logdir / "server.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    return {
        "stderr": list(read_pgaudit_stderr(stderr_text, prefix=PREFIX)),
        "csvlog": list(read_pgaudit_csvlog(csv_text)),
    }


def _events(logs: dict[str, list[tuple[int, object]]], fmt: str,
            client: str | None = None) -> list[QueryEvent]:
    evs = [r for _, r in logs[fmt] if isinstance(r, QueryEvent)]
    return evs if client is None else [e for e in evs if e.client == client]


EXPECTED = [
    # (actor, statement prefix, kind, rows, status)
    (ADMIN, "create table customers", "ddl", 0, "ok"),
    (ADMIN, "create table salaries", "ddl", 0, "ok"),
    (ADMIN, "insert into customers", "insert", 3, "ok"),
    (ADMIN, "create role teller01", "ddl", 0, "ok"),
    (ADMIN, "grant select on customers", "grant", 0, "ok"),
    (ADMIN, "update customers set name", "update", 1, "ok"),
    (TELLER, "select name\n  from customers\n where id_no", "select", 1, "ok"),
    (TELLER, "select * from customers where id_no in", "select", 2, "ok"),
    (TELLER, "select * from salaries", "select", None, "denied"),
    (TELLER, "select nosuch from customers", "select", None, "error"),
    (TELLER, "copy customers to stdout", "copy", 0, "ok"),
]


@pytest.mark.parametrize("fmt", ["stderr", "csvlog"])
def test_events_match_statements_run(logs: dict[str, list[tuple[int, object]]],
                                     fmt: str) -> None:
    all_events, bad = collect(logs[fmt])  # type: ignore[arg-type]
    assert bad == []
    all_events = [e for e in all_events if e.client != JDBC_APP]
    setup = all_events[0]
    assert setup.statement == "create database bank" and setup.database == "postgres"
    assert setup.actor == ADMIN and setup.client == "psql"
    events = all_events[1:]
    assert len(events) == len(EXPECTED), [e.statement for e in events]
    for ev, (actor, prefix, kind, rows, status) in zip(events, EXPECTED, strict=True):
        assert isinstance(ev, QueryEvent)
        assert ev.actor == actor and ev.database == "bank"
        assert ev.client == APP and ev.source_ip == "127.0.0.1"
        assert ev.statement.startswith(prefix), ev.statement
        assert ev.rows == rows and ev.status == status
        assert ev.ts.utcoffset() == timedelta(hours=8)
        assert ev.parameters is None  # psql sends no bind parameters: pgAudit's <none>
        assert analyze(ev.statement, "postgres", CATALOG).kind == kind
    by_prefix = {e.statement.split("\n")[0]: e for e in events}
    select_one = analyze(by_prefix["select name"].statement, "postgres", CATALOG)
    assert select_one.customer_ids == ("110101199003077777",)
    select_two = analyze(events[7].statement, "postgres", CATALOG)
    assert select_two.customer_id_count == 2 and select_two.select_star
    assert analyze(events[4].statement, "postgres", CATALOG).privilege_change
    assert analyze(events[10].statement, "postgres", CATALOG).export == "copy_to"


def test_stderr_and_csvlog_give_the_same_event_ids(
        logs: dict[str, list[tuple[int, object]]]) -> None:
    ids = {fmt: [e.event_id for e in _events(logs, fmt)] for fmt in ("stderr", "csvlog")}
    bound = len(BOUND) if psycopg is not None else 0
    assert ids["stderr"] == ids["csvlog"]
    assert len(set(ids["stderr"])) == len(EXPECTED) + 1 + bound


def test_line_numbers_point_at_the_records(logs: dict[str, list[tuple[int, object]]],
                                           server: Server) -> None:
    lines = (server.root / "log" / "server").read_text(encoding="utf-8").splitlines()
    for line_no, ev in logs["stderr"]:
        assert isinstance(ev, QueryEvent)
        marker = "AUDIT: " if ev.status == "ok" else "ERROR:  "
        assert marker in lines[line_no - 1]


# --------------------------------------------------------------------------- bind parameters
def _need_psycopg() -> None:
    if psycopg is None:
        _unavailable("psycopg (the dev extra) is needed to send bind parameters")


@pytest.mark.parametrize("fmt", ["stderr", "csvlog"])
def test_bind_parameters_are_kept_and_bound(logs: dict[str, list[tuple[int, object]]],
                                            fmt: str) -> None:
    """The wall: JDBC-style traffic logs `id_no = $1` with the value after the statement;
    the values stay with the event and the analysis sees the literal customer ids."""
    _need_psycopg()
    bound = _events(logs, fmt, JDBC_APP)
    assert len(bound) == len(BOUND)
    for ev, (_, _args, ids) in zip(bound, BOUND, strict=True):
        assert "$1" in ev.statement and "%s" not in ev.statement  # as the server logged it
        assert ev.parameters is not None and ev.actor == TELLER
        without = analyze(ev.statement, "postgres", CATALOG)
        assert without.customer_ids == ()  # what detection saw before: nothing
        an = analyze(ev.bound_statement, "postgres", CATALOG)
        assert an.customer_ids == ids, ev.bound_statement
    assert bound[0].parameters == ("110101199003077777",)
    assert bound[2].parameters == ("{110101199003077777,x3}",)  # an array, = ANY($1)
    assert bound[3].parameters == ("x3", 'it\'s, "quoted"')
    assert bound[3].bound_statement.endswith("-- $2 stays")  # comments are left alone
    assert "'it''s, \"quoted\"'" in bound[3].bound_statement


def test_watch_list_and_cli_see_bound_customer_ids(
        logs: dict[str, list[tuple[int, object]]], server: Server,
        tmp_path: Path) -> None:
    """End to end: ingest --detect of the real stderr log raises WATCHLIST for a watched
    id sent as a bind parameter, and `audit show` prints the values."""
    _need_psycopg()
    import json

    from click.testing import CliRunner

    from covault.cli import main

    (tmp_path / "catalog.yaml").write_text(
        "version: 1\ncolumns:\n  customers.id_no: {class: C3, customer_key: true}\n",
        encoding="utf-8")
    (tmp_path / "lists.yaml").write_text(
        "version: 1\nlists:\n  - {name: vip, type: watch, kind: customer, owner: pb, "
        "reason: vip, expires: 2099-01-01, values: ['110101199003078888']}\n",
        encoding="utf-8")
    log = server.root / "log" / "server"
    db = tmp_path / "audit.db"
    r = CliRunner().invoke(main, [
        "audit", "ingest", str(log), "--format", "pgaudit-stderr", "--prefix", "auto",
        "--db", str(db), "--detect", "--catalog", str(tmp_path / "catalog.yaml"),
        "--lists", str(tmp_path / "lists.yaml"), "--dialect", "postgres", "--no-model",
        "--json"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output.splitlines()[-1])
    assert summary["quarantined"] == 0 and summary["log_line_prefix"] == PREFIX
    r = CliRunner().invoke(main, ["audit", "alerts", "--db", str(db), "--format", "json"])
    alerts = [json.loads(x) for x in r.output.splitlines()]
    watch = [a for a in alerts if a["scenarios"][0] == "WATCHLIST"]
    assert len(watch) == 1 and watch[0]["actor"] == TELLER, alerts
    r = CliRunner().invoke(main, ["audit", "show", watch[0]["alert_id"][:7], "--db", str(db)])
    assert r.exit_code == 0, r.output
    assert "where id_no = $1" in r.output and "parameters: '110101199003078888'" in r.output


def test_wrong_prefix_is_a_finding_that_names_the_right_one(server: Server,
                                                            logs: object,
                                                            tmp_path: Path) -> None:
    """Every line quarantined is exit 1, and the summary names the prefix expected and the
    one the lines were written with."""
    import json

    from click.testing import CliRunner

    from covault.cli import main

    r = CliRunner().invoke(main, [
        "audit", "ingest", str(server.root / "log" / "server"), "--format", "pgaudit-stderr",
        "--prefix", "%t [%p] ", "--db", str(tmp_path / "a.db")])
    assert r.exit_code == 1, r.output
    assert "does not match log_line_prefix '%t [%p] '" in r.output
    assert f"the lines match log_line_prefix '{PREFIX}'" in r.output
    assert "more than --max-quarantine-share 0.5" in r.output
    r = CliRunner().invoke(main, [
        "audit", "ingest", str(server.root / "log" / "server"), "--format", "pgaudit-stderr",
        "--prefix", "%t [%p] ", "--db", str(tmp_path / "b.db"), "--json"])
    assert r.exit_code == 1
    summary = json.loads(r.output.splitlines()[0])
    assert summary["quarantined_share"] == 1.0 and summary["added"] == 0
