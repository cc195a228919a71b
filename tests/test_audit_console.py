"""The auditor console (issue 13, item 7) through Starlette's TestClient: accounts and
sessions, roles and separation of duties, CSRF, triage recorded in the ledger as the CLI
records it, filters and sorting, ledger verification, charts, and the serve command."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from console_world import PASSWORDS, make_world
from starlette.testclient import TestClient

from covault.cli import main
from covault.web import accounts as accounts_mod
from covault.web.accounts import Accounts, users_path_for
from covault.web.app import LOOPBACK_HOSTS, create_app
from covault.web.serve import check_bind, is_loopback
from privacy.audit.store import AuditStore
from privacy.errors import InputError

ALERT = re.compile(r'class="alert-link" href="/alerts/(AL-[0-9a-f]+)"')


def run(*args: str, stdin: str | None = None) -> Any:
    return CliRunner().invoke(main, list(args), input=stdin, catch_exceptions=False)


@pytest.fixture()
def db(tmp_path: Path) -> Path:
    return make_world(tmp_path)


def client(db: Path) -> TestClient:
    return TestClient(create_app(db, allowed_hosts=(*LOOPBACK_HOSTS, "testserver")),
                      follow_redirects=False)


def token(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, html
    return m.group(1)


def login(c: TestClient, name: str, password: str | None = None) -> str:
    """Log in; returns the session's CSRF token."""
    page = c.get("/login")
    r = c.post("/login", data={"name": name, "password": password or PASSWORDS[name],
                               "csrf_token": token(page.text), "next": "/"})
    assert r.status_code == 303, r.text
    return token(c.get("/alerts").text)


def ids(html: str) -> list[str]:
    return ALERT.findall(html)


def ledger_triage(db: Path) -> list[dict[str, Any]]:
    with AuditStore(db, read_only=True) as s:
        return [dict(r.payload, _index=r.index) for r in s.ledger.records("audit.triage")]


def first_alert(c: TestClient, **filters: str) -> str:
    return ids(c.get("/alerts", params=filters).text)[0]


def post_triage(c: TestClient, alert: str, csrf: str, action: str, comment: str = "checked",
                reason: str = "", **headers: str) -> Any:
    return c.post(f"/alerts/{alert}/triage", headers=headers,
                  data={"csrf_token": csrf, "action": action, "reason": reason,
                        "comment": comment})


# --------------------------------------------------------------------------- auth
def test_pages_need_a_session(db: Path) -> None:
    c = client(db)
    for path in ("/", "/alerts", "/ledger", "/alerts/AL-"):
        r = c.get(path)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    r = post_triage(c, "AL-0", "x", "in_progress")
    assert r.status_code == 403 and "not logged in" in r.text


def test_login_cookie_and_headers(db: Path) -> None:
    c = client(db)
    page = c.get("/login")
    assert "covault_login" in page.headers["set-cookie"]
    r = c.post("/login", data={"name": "alice", "password": PASSWORDS["alice"],
                               "csrf_token": token(page.text), "next": "/alerts?state=new"})
    assert r.status_code == 303 and r.headers["location"] == "/alerts?state=new"
    cookie = [h for h in r.headers.get_list("set-cookie") if h.startswith("covault_session=")][0]
    low = cookie.lower()
    assert "httponly" in low and "samesite=strict" in low and "path=/" in low
    assert "secure" not in low  # plain http on loopback; https gets Secure and __Host-
    home = c.get("/")
    assert home.status_code == 200 and "alice (auditor)" in home.text
    csp = home.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script" not in csp
    assert home.headers["x-frame-options"] == "DENY"
    assert home.headers["cache-control"] == "no-store"
    assert "<script" not in home.text


def test_bad_logins(db: Path) -> None:
    c = client(db)
    page = c.get("/login")
    # no login token (CSRF on the login form)
    r = c.post("/login", data={"name": "alice", "password": PASSWORDS["alice"]})
    assert r.status_code == 403 and "covault_session" not in r.headers.get("set-cookie", "")
    for name, pw in (("alice", "wrong-password-1"), ("nobody", "whatever-password")):
        r = c.post("/login", data={"name": name, "password": pw,
                                   "csrf_token": token(c.get("/login").text)})
        assert r.status_code == 401 and "Wrong name or password" in r.text
    # an open redirect is not followed
    page = c.get("/login")
    r = c.post("/login", data={"name": "alice", "password": PASSWORDS["alice"],
                               "csrf_token": token(page.text), "next": "//evil.example/"})
    assert r.headers["location"] == "/"


def test_lockout_after_failures(db: Path) -> None:
    c = client(db)
    for _ in range(accounts_mod.MAX_FAILURES):
        c.post("/login", data={"name": "alice", "password": "not-the-password",
                               "csrf_token": token(c.get("/login").text)})
    r = c.post("/login", data={"name": "alice", "password": PASSWORDS["alice"],
                               "csrf_token": token(c.get("/login").text)})
    assert r.status_code == 401
    assert run("audit", "users", "passwd", "alice", "--db", str(db), "--password-stdin",
               stdin="a-new-password-2\n").exit_code == 0
    login(client(db), "alice", "a-new-password-2")


def test_other_host_names_are_refused(db: Path) -> None:
    r = client(db).get("/login", headers={"host": "attacker.example"})
    assert r.status_code == 400


def test_logout_ends_the_session(db: Path) -> None:
    c = client(db)
    csrf = login(c, "alice")
    assert c.post("/logout", data={}).status_code == 403  # no token
    assert c.post("/logout", data={"csrf_token": csrf}).status_code == 303
    assert c.get("/alerts").status_code == 303


def test_sessions_expire_and_end_on_role_change(db: Path, monkeypatch: pytest.MonkeyPatch
                                                ) -> None:
    c = client(db)
    login(c, "alice")
    assert run("audit", "users", "role", "alice", "reviewer", "--db", str(db)).exit_code == 0
    assert c.get("/alerts").status_code == 303
    login(c, "alice")
    assert c.get("/alerts").status_code == 200
    later = time.time() + accounts_mod.IDLE_SECONDS + 5
    monkeypatch.setattr(accounts_mod.time, "time", lambda: later)
    assert c.get("/alerts").status_code == 303


# --------------------------------------------------------------------------- CSRF
def test_csrf_refusals_change_nothing(db: Path) -> None:
    c = client(db)
    csrf = login(c, "alice")
    a = first_alert(c)
    before = ledger_triage(db)
    for r in (post_triage(c, a, "", "in_progress"),
              post_triage(c, a, "wrong" + csrf[5:], "in_progress"),
              post_triage(c, a, csrf, "in_progress", origin="http://evil.example"),
              post_triage(c, a, csrf, "in_progress", **{"sec-fetch-site": "cross-site"})):
        assert r.status_code == 403, r.text
    other = client(db)
    other_csrf = login(other, "carol")
    assert post_triage(c, a, other_csrf, "in_progress").status_code == 403  # not this session's
    assert ledger_triage(db) == before
    r = post_triage(c, a, csrf, "in_progress", origin="http://testserver",
                    **{"sec-fetch-site": "same-origin"})
    assert r.status_code == 303


# --------------------------------------------------------------------------- triage
def test_triage_is_recorded_as_the_cli_records_it(db: Path) -> None:
    c = client(db)
    csrf = login(c, "alice")
    a, b = ids(c.get("/alerts").text)[:2]
    r = post_triage(c, a, csrf, "in_progress", comment="looking at the change ticket")
    assert r.status_code == 303
    loc = r.headers["location"]
    assert loc.startswith(f"/alerts/{a}?recorded=")
    page = c.get(loc.split("#")[0])
    assert "Recorded as ledger record" in page.text and 'id="state">in_progress' in page.text
    assert run("audit", "triage", b, "--db", str(db), "--state", "in_progress",
               "--comment", "looking at the change ticket", "--analyst", "alice").exit_code == 0
    web, cli = ledger_triage(db)
    assert web["alert_id"] == a and cli["alert_id"] == b
    strip = ("alert_id", "ts", "_index")
    assert {k: v for k, v in web.items() if k not in strip} == \
        {k: v for k, v in cli.items() if k not in strip}
    assert f"recorded={web['_index']}" in loc
    assert run("audit", "verify", "--db", str(db)).exit_code == 0
    shown = json.loads(run("audit", "show", a, "--db", str(db), "--format", "json").output)
    assert shown["alert"]["history"][0]["analyst"] == "alice"
    ledger = c.get("/ledger", params={"kind": "audit.triage"}).text
    assert f'id="rec-{web["_index"]}"' in ledger and "by alice: looking at the change" in ledger
    assert "Verified:" in ledger


def test_bad_triage_input_is_refused(db: Path) -> None:
    c = client(db)
    csrf = login(c, "alice")
    a = first_alert(c)
    r = post_triage(c, a, csrf, "in_progress", comment="   ")
    assert r.status_code == 400 and "non-empty comment" in r.text
    assert post_triage(c, "AL-ffffffffffffffff", csrf, "in_progress").status_code == 404
    r = post_triage(c, a, csrf, "in_progress", comment="x" * 4001)
    assert r.status_code == 400 and "at most 4,000 characters" in r.text
    assert ledger_triage(db) == []
    r = post_triage(c, a, csrf, "comment", comment="asked the branch")
    assert r.status_code == 303 and ledger_triage(db)[0]["action"] == "comment"


# --------------------------------------------------------------------------- roles
def test_separation_of_duties(db: Path) -> None:
    alice, bob, carol = client(db), client(db), client(db)
    ta, tb, tc = login(alice, "alice"), login(bob, "bob"), login(carol, "carol")
    a = first_alert(alice, scenario="INJECTION")
    # a reviewer does not triage, and nobody closes an untriaged alert
    r = post_triage(bob, a, tb, "in_progress")
    assert r.status_code == 403 and "a reviewer only closes or reopens" in r.text
    r = post_triage(bob, a, tb, "closed", reason="benign")
    assert r.status_code == 403
    # an auditor triages but does not close
    assert post_triage(alice, a, ta, "escalated", comment="no ticket").status_code == 303
    r = post_triage(alice, a, ta, "closed", reason="true_positive")
    assert r.status_code == 403 and "only a reviewer closes" in r.text
    page = alice.get(f"/alerts/{a}").text
    assert '<option value="closed"' not in page and '<option value="in_progress"' in page
    # the reviewer closes; the page offered it
    assert '<option value="closed"' in bob.get(f"/alerts/{a}").text
    r = post_triage(bob, a, tb, "closed", comment="confirmed misuse", reason="")
    assert r.status_code == 400 and "needs --reason" in r.text
    assert post_triage(bob, a, tb, "closed", comment="confirmed misuse",
                       reason="true_positive").status_code == 303
    # bob reopens; having triaged it now, he cannot close it again: carol can
    assert post_triage(bob, a, tb, "in_progress", comment="new evidence").status_code == 303
    r = post_triage(bob, a, tb, "closed", reason="true_positive")
    assert r.status_code == 403 and "separation of duties" in r.text
    assert "you triaged it" in bob.get(f"/alerts/{a}").text
    assert post_triage(carol, a, tc, "closed", comment="agreed",
                       reason="true_positive").status_code == 303
    moves = [(p["from_state"], p["to_state"], p["analyst"]) for p in ledger_triage(db)]
    assert moves == [("new", "escalated", "alice"), ("escalated", "closed", "bob"),
                     ("closed", "in_progress", "bob"), ("in_progress", "closed", "carol")]
    # a name that triaged on the CLI cannot close in the console either
    b = first_alert(alice, scenario="MASS_MODIFY")
    assert run("audit", "triage", b, "--db", str(db), "--state", "in_progress",
               "--comment", "x", "--analyst", "carol").exit_code == 0
    assert post_triage(carol, b, tc, "closed", reason="benign").status_code == 403
    assert post_triage(bob, b, tb, "closed", reason="benign").status_code == 303


# --------------------------------------------------------------------------- queue
def test_filters_and_sorting(db: Path) -> None:
    c = client(db)
    csrf = login(c, "alice")

    def q(**params: str) -> list[str]:
        return ids(c.get("/alerts", params=params).text)

    everything = q()
    assert len(everything) == 15
    inj = q(scenario="INJECTION")
    assert len(inj) == 5 and all("INJECTION" in c.get(f"/alerts/{a}").text for a in inj[:2])
    assert len(q(actor="t3")) == 3
    assert len(q(day="2026-04-03")) == 6
    assert len(q(since="2026-04-02", until="2026-04-03")) == 9
    assert len(q(min_score="90")) == 5
    assert len(q(q="privilege")) == 5
    assert q(q=inj[0][3:12]) == [inj[0]]
    post_triage(c, inj[0], csrf, "in_progress")
    assert q(state="in_progress") == [inj[0]]
    assert len(q(state="new")) == 14
    by_actor = c.get("/alerts", params={"sort": "actor"}).text
    actors = re.findall(r"<td>(t\d)</td>", by_actor)
    assert actors == sorted(actors) and len(actors) == 15
    newest = q(sort="-first_ts")
    assert newest == list(reversed(q(sort="first_ts")))
    assert q(state="bogus", sort="nonsense") == everything  # ignored, not an error
    assert "15 alerts match" in c.get("/alerts").text


def test_alert_page_timeline_and_evidence(db: Path) -> None:
    c = client(db)
    login(c, "alice")
    a = first_alert(c, scenario="INJECTION", actor="t5")
    r = c.get(f"/alerts/{a[:9]}")  # a unique prefix redirects to the full id
    assert r.status_code == 303 and r.headers["location"] == f"/alerts/{a}"
    page = c.get(f"/alerts/{a}").text
    assert "Timeline of t5" in page and "<svg" in page and "Evidence (1 of 1 events)" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>" not in page
    assert "Other alerts of t5" in page and "10.0.0.9" in page


def test_overview_charts_and_ledger_status(db: Path) -> None:
    c = client(db)
    login(c, "alice")
    home = c.get("/").text
    assert "Not verified since the console started" in home
    for code in ("INJECTION", "PRIVILEGE_CHANGE", "MASS_MODIFY"):
        assert f"/alerts?scenario={code}" in home
    assert "/alerts?day=2026-04-05" in home and home.count("<svg") == 2
    assert "Verified:" in c.get("/ledger").text
    assert "Verified at" in c.get("/").text


def test_tampering_shows_in_the_ledger_status(db: Path) -> None:
    c = client(db)
    login(c, "alice")
    con = sqlite3.connect(db)
    con.execute("UPDATE alerts SET state = 'closed' WHERE alert_id = "
                "(SELECT min(alert_id) FROM alerts)")
    con.commit()
    con.close()
    page = c.get("/ledger").text
    assert "Verification FAILED" in page and "is not the ledgered one" in page
    assert "Verification FAILED" in c.get("/").text


# --------------------------------------------------------------------------- accounts
def test_accounts_rules_and_hashes(tmp_path: Path) -> None:
    acc = Accounts(tmp_path / "u.db")
    acc.add("dave", "auditor", "a-long-password")
    stored = acc.db.execute("SELECT pw FROM users").fetchone()[0]
    assert stored.startswith("scrypt$32768$8$1$") and "a-long-password" not in stored
    assert (tmp_path / "u.db").stat().st_mode & 0o777 == 0o600
    assert acc.authenticate("dave", "a-long-password") == "auditor"
    assert acc.authenticate("dave", "a-long-passwor") is None
    for bad in (lambda: acc.add("dave", "auditor", "another-password"),
                lambda: acc.add("eve", "admin", "another-password"),
                lambda: acc.add("eve", "auditor", "short"),
                lambda: acc.add("../eve", "auditor", "another-password"),
                lambda: acc.set_role("nobody", "reviewer")):
        with pytest.raises(InputError):
            bad()
    sid = acc.start_session("dave")
    assert acc.session(sid) is not None and acc.session(sid + "x") is None
    stored_sids = [r[0] for r in acc.db.execute("SELECT sid FROM sessions")]
    assert sid not in stored_sids  # only its hash is kept
    acc.remove("dave")
    assert acc.session(sid) is None
    acc.close()


def test_users_cli(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    AuditStore(db).close()
    r = run("audit", "users", "add", "erin", "--role", "reviewer", "--db", str(db),
            "--password-stdin", stdin="erin-password-1\n")
    assert r.exit_code == 0, r.output
    assert users_path_for(db).is_file()
    r = run("audit", "users", "add", "frank", "--role", "auditor", "--db", str(db),
            stdin="frank-password-1\nfrank-password-1\n")
    assert r.exit_code == 0, r.output
    r = run("audit", "users", "add", "gus", "--role", "auditor", "--db", str(db),
            "--password-stdin", stdin="short\n")
    assert r.exit_code == 2 and "at least 12 characters" in r.output
    rows = json.loads(run("audit", "users", "list", "--db", str(db), "--format",
                          "json").output)
    assert [(u["name"], u["role"]) for u in rows] == [("erin", "reviewer"), ("frank", "auditor")]
    assert run("audit", "users", "remove", "frank", "--db", str(db)).exit_code == 0
    assert run("audit", "users", "remove", "frank", "--db", str(db)).exit_code == 2


# --------------------------------------------------------------------------- serve
def test_loopback_by_default(tmp_path: Path) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    check_bind("127.0.0.1", allow_remote=False, tls=False)
    with pytest.raises(InputError, match="--allow-remote"):
        check_bind("0.0.0.0", allow_remote=False, tls=False)
    with pytest.raises(InputError, match="--tls-cert"):
        check_bind("10.0.0.1", allow_remote=True, tls=False)
    check_bind("10.0.0.1", allow_remote=True, tls=True)
    db = make_world(tmp_path)
    r = run("audit", "serve", "--db", str(db), "--host", "0.0.0.0")
    assert r.exit_code == 2 and "--allow-remote" in r.output
    other = tmp_path / "other.db"
    AuditStore(other).close()
    r = run("audit", "serve", "--db", str(other))
    assert r.exit_code == 2 and "covault audit users add" in r.output
