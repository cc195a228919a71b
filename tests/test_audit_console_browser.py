"""The auditor console end to end in a real headless Chromium (issue 13, item 7).

`covault audit serve` runs as its own process on loopback; Playwright drives Debian's
``chromium`` through its executable path (Playwright's own browsers are not used):
log in, filter the queue, open an alert, triage it, see the ledger record, then a
reviewer closes it. Screenshots go to the test's tmp folder (``screenshots/``).

Without Chromium (or the ``playwright`` package) the test skips, saying so; CI installs
Chromium (``.ci/run``) and sets ``COVAULT_REQUIRE_CHROMIUM=1``, which turns the skip into
a failure. ``COVAULT_CHROMIUM`` names another executable.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
from console_world import PASSWORDS, make_world

from privacy.audit.store import AuditStore


def _unavailable(reason: str) -> NoReturn:
    """Skip on a developer machine; fail where CI promised a browser."""
    if os.environ.get("COVAULT_REQUIRE_CHROMIUM") == "1":
        pytest.fail(f"Chromium is required here (COVAULT_REQUIRE_CHROMIUM=1): {reason}")
    pytest.skip(reason)


def _chromium() -> str:
    given = os.environ.get("COVAULT_CHROMIUM")
    if given:
        if not os.access(given, os.X_OK):
            _unavailable(f"COVAULT_CHROMIUM={given} is not an executable")
        return given
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    _unavailable("no Chromium installed (apt-get install chromium, or set COVAULT_CHROMIUM)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def console(tmp_path: Path) -> Iterator[dict[str, Any]]:
    chromium = _chromium()
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -e '.[dev]')")
    db = make_world(tmp_path)
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "covault", "audit", "serve", "--db", str(db),
                             "--port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"covault audit serve exited: {proc.stdout.read()}")  # type: ignore[union-attr]
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("covault audit serve did not start in 30 s")
                time.sleep(0.2)
        shots = tmp_path / "screenshots"
        shots.mkdir()
        yield {"url": f"http://127.0.0.1:{port}", "db": db, "shots": shots,
               "chromium": chromium}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_log_in_filter_open_triage_and_see_the_ledger(console: dict[str, Any]) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, shots = console["url"], console["shots"]
    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=console["chromium"], headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("response", lambda r: problems.append(f"{r.status} {r.url}")
                    if r.status >= 400 else None)

            # log in (the queue redirects to the login form and back)
            page.goto(f"{url}/alerts")
            expect(page.locator("#login-form")).to_be_visible()
            page.screenshot(path=shots / "01-login.png")
            page.fill("input[name=name]", "alice")
            page.fill("input[name=password]", PASSWORDS["alice"])
            page.click("#login-form button[type=submit]")
            expect(page.locator("#count")).to_contain_text("15 alerts match")
            expect(page.locator("#who")).to_have_text("alice (auditor)")

            # filter: one scenario, one actor
            page.select_option("#filter-form select[name=scenario]", "INJECTION")
            page.fill("#filter-form input[name=actor]", "t3")
            page.click("#filter-form button[type=submit]")
            expect(page.locator("#count")).to_contain_text("1 alert matches")
            links = page.locator("a.alert-link")
            expect(links).to_have_count(1)
            alert_id = links.first.inner_text()
            page.screenshot(path=shots / "02-filtered.png", full_page=True)

            # open it: reasons, the actor's timeline, the evidence
            links.first.click()
            expect(page.locator("h1.alert-title")).to_contain_text(alert_id)
            expect(page.locator("#timeline")).to_contain_text("Timeline of t3")
            expect(page.locator("#timeline svg")).to_be_visible()
            expect(page.locator("#evidence")).to_contain_text("<script>alert(1)</script>")
            page.screenshot(path=shots / "03-alert.png", full_page=True)

            # triage it
            page.select_option("#action", "in_progress")
            page.fill("#comment", "checking the branch's change ticket")
            page.click("#triage-submit")
            expect(page.locator("#recorded")).to_contain_text("Recorded as ledger record")
            expect(page.locator("#state")).to_have_text("in_progress")
            page.screenshot(path=shots / "04-triaged.png", full_page=True)

            # the ledger record, and the verification status
            page.click("#recorded a")
            expect(page.locator("#verify-result")).to_contain_text("Verified:")
            with AuditStore(console["db"], read_only=True) as s:
                rec = [r for r in s.ledger.records("audit.triage")][-1]
            row = page.locator(f"#rec-{rec.index}")
            expect(row).to_contain_text(f"{alert_id}: new -> in_progress by alice")
            expect(row).to_contain_text("audit.triage")
            page.screenshot(path=shots / "05-ledger.png", full_page=True)

            # a reviewer closes it (separation of duties: not the auditor who triaged it)
            page.click("header .logout button")
            expect(page.locator("#login-form")).to_be_visible()
            page.goto(f"{url}/alerts/{alert_id}")
            page.fill("input[name=name]", "bob")
            page.fill("input[name=password]", PASSWORDS["bob"])
            page.click("#login-form button[type=submit]")
            expect(page.locator("h1.alert-title")).to_contain_text(alert_id)
            page.select_option("#action", "closed")
            page.select_option("#reason", "true_positive")
            page.fill("#comment", "confirmed: no ticket for these statements")
            page.click("#triage-submit")
            expect(page.locator("#state")).to_have_text("closed (true_positive)")
            expect(page.locator("#history")).to_contain_text("bob")
            page.screenshot(path=shots / "06-closed.png", full_page=True)

            # the overview: charts by scenario and day, the ledger verified
            page.goto(url + "/")
            expect(page.locator("#chart-day svg")).to_be_visible()
            expect(page.locator("#chart-scenario svg")).to_contain_text("INJECTION")
            expect(page.locator("#ledger-status")).to_contain_text("Verified at")
            page.screenshot(path=shots / "07-overview.png", full_page=True)
        finally:
            browser.close()
    with AuditStore(console["db"], read_only=True) as s:
        moves = [(r.payload["alert_id"], r.payload["to_state"], r.payload["analyst"])
                 for r in s.ledger.records("audit.triage")]
        s.verify()
    assert moves == [(alert_id, "in_progress", "alice"), (alert_id, "closed", "bob")]
    assert not problems, problems  # no CSP violation, no failed resource, no script error
    assert sorted(p.name for p in shots.iterdir()) == [
        "01-login.png", "02-filtered.png", "03-alert.png", "04-triaged.png", "05-ledger.png",
        "06-closed.png", "07-overview.png"]
    print(f"screenshots in {shots}")
