"""The auditor console: a Starlette application over one audit database.

Pages: ``/`` overview (alerts by state, charts, ledger status), ``/alerts`` the queue
(filters, sorting, pages), ``/alerts/{id}`` one alert (reasons, the actor's timeline,
evidence, history, triage forms), ``/ledger`` verification and the latest records.

Security
--------
- Every page but ``/login`` and ``/static`` needs a session (:mod:`covault.web.accounts`).
  The session cookie is ``HttpOnly``, ``SameSite=Strict``, ``Path=/``, and over HTTPS
  ``Secure`` with the ``__Host-`` prefix; it carries only a random id.
- Every POST (login, logout, triage) needs a CSRF token: the session's token in a hidden
  field (compared in constant time); for the login form, a random token in both a
  cookie and the form. POSTs whose ``Origin`` is another site or whose
  ``Sec-Fetch-Site`` is ``cross-site``/``same-site`` are refused too.
- Triage goes through :func:`covault.audit_actions.record_triage`, the code path of
  ``covault audit triage``, after :func:`covault.web.duties.check`.
- Responses carry a strict Content-Security-Policy (no scripts at all, styles from this
  server only), ``X-Frame-Options: DENY``, ``no-store`` caching, referrers only to
  itself (with ``no-referrer`` Chromium sends ``Origin: null`` on form posts); only
  the configured host names are answered (DNS rebinding).
"""

from __future__ import annotations

import hmac
import os
import secrets
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from covault.audit_actions import record_triage
from covault.audit_view import alert_report
from covault.web import charts, duties, queue
from covault.web.accounts import Accounts, Session, users_path_for
from covault.web.security import SecurityHeaders, is_local_path, same_origin
from privacy.audit.triage import CLOSE_REASONS, STATES, Triage
from privacy.errors import AuditError, CovaultError

__all__ = ["create_app", "LOOPBACK_HOSTS"]

HERE = Path(__file__).parent
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
_KINDS = ("audit.events", "audit.detect", "audit.triage", "audit.suppress")
_MAX_COMMENT = 4000
_SESSION, _LOGIN = "covault_session", "covault_login"


@dataclass
class Console:
    """What one console serves."""

    db_path: Path
    users_path: Path
    checkpoint: str | None = None
    public_key: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    verified: dict[str, Any] | None = None


def _when(iso: Any) -> str:
    return str(iso or "")[:19].replace("T", " ")


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["when"] = _when
    env.filters["num"] = lambda n: f"{int(n or 0):,}"
    return env


def create_app(db_path: str | os.PathLike[str], *,
               users_path: str | os.PathLike[str] | None = None,
               allowed_hosts: tuple[str, ...] | list[str] = LOOPBACK_HOSTS,
               checkpoint: str | None = None, public_key: str | None = None) -> Starlette:
    """The console for the audit database at ``db_path``.

    Parameters
    ----------
    users_path:
        The accounts file (default :func:`~covault.web.accounts.users_path_for`).
    allowed_hosts:
        Host names the console answers to (``Host`` header); others get 400.
    checkpoint, public_key:
        A ledger checkpoint kept outside the database and the key that must have signed
        it; verification then also proves the ledger extends it.
    """
    from privacy.errors import InputError

    cfg = Console(Path(db_path), Path(users_path or users_path_for(db_path)), checkpoint,
                  public_key)
    if not cfg.db_path.is_file():
        raise InputError(f"{db_path}: no such audit database")
    if not cfg.users_path.is_file():
        raise InputError(f"{cfg.users_path}: no accounts yet (create one with: covault audit "
                         f"users add NAME --role auditor --db {db_path})")
    env = _env()

    # ------------------------------------------------------------------ plumbing
    @contextmanager
    def store() -> Iterator[Any]:
        from privacy.audit.store import AuditStore

        s = AuditStore(cfg.db_path)
        try:
            yield s
        finally:
            s.close()

    @contextmanager
    def accounts() -> Iterator[Accounts]:
        acc = Accounts(cfg.users_path, create=False)
        try:
            yield acc
        finally:
            acc.close()

    def cookie(request: Request, base: str) -> str:
        return f"__Host-{base}" if request.url.scheme == "https" else base

    def set_cookie(resp: Response, request: Request, base: str, value: str) -> None:
        resp.set_cookie(cookie(request, base), value, path="/", httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")

    def current(request: Request) -> Session | None:
        with accounts() as acc:
            return acc.session(request.cookies.get(cookie(request, _SESSION)))

    def render(request: Request, name: str, ctx: dict[str, Any], *,
               session: Session | None, status: int = 200) -> HTMLResponse:
        page = env.get_template(name).render(request=request, session=session, **ctx)
        return HTMLResponse(page, status_code=status)

    def refuse(request: Request, session: Session | None, why: str) -> HTMLResponse:
        return render(request, "error.html", {"title": "Refused", "message": why},
                      session=session, status=403)

    def to_login(request: Request) -> RedirectResponse:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse("/login?" + urlencode({"next": target}), status_code=303)

    def page(fn: Callable[[Request, Session], Response]) -> Callable[[Request], Response]:
        """A GET page that needs a session (run in the thread pool: it is not async)."""
        def wrapped(request: Request) -> Response:
            sess = current(request)
            if sess is None:
                return to_login(request)
            return fn(request, sess)
        return wrapped

    async def posted(request: Request) -> tuple[Session | None, dict[str, str], str | None]:
        """The session, the form's text fields, and why the POST is refused (or None)."""
        form = {k: v for k, v in (await request.form()).multi_items() if isinstance(v, str)}
        sess = await run_in_threadpool(current, request)
        if not same_origin(request):
            return sess, form, "cross-site request refused"
        if sess is None:
            return None, form, "not logged in (or the session ended): log in again"
        if not hmac.compare_digest(form.get("csrf_token", "").encode(), sess.csrf.encode()):
            return sess, form, "CSRF token missing or wrong: reload the page and try again"
        return sess, form, None

    def verify() -> dict[str, Any]:
        from privacy.audit.store import AuditStore

        t0 = time.monotonic()
        try:
            with cfg.lock:
                s = AuditStore(cfg.db_path, read_only=True)
                try:
                    rep = s.verify(cfg.checkpoint, public_key=cfg.public_key)
                finally:
                    s.close()
            res: dict[str, Any] = {"ok": True, **rep.__dict__}
        except CovaultError as exc:
            res = {"ok": False, "message": str(exc)}
        res.update(at=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
                   seconds=time.monotonic() - t0,
                   pinned=cfg.checkpoint is not None)
        cfg.verified = res
        return res

    # ------------------------------------------------------------------ login
    def login_form(request: Request, *, error: str | None = None,
                   status: int = 200) -> HTMLResponse:
        token = secrets.token_urlsafe(32)
        nxt = request.query_params.get("next", "/")
        resp = render(request, "login.html", {"token": token, "error": error,
                                              "next": nxt if is_local_path(nxt) else "/"},
                      session=None, status=status)
        set_cookie(resp, request, _LOGIN, token)
        return resp

    def login_get(request: Request) -> Response:
        if current(request) is not None:
            return RedirectResponse("/", status_code=303)
        return login_form(request)

    async def login_post(request: Request) -> Response:
        form = {k: v for k, v in (await request.form()).multi_items() if isinstance(v, str)}
        expected = request.cookies.get(cookie(request, _LOGIN), "")
        if (not same_origin(request) or not expected
                or not hmac.compare_digest(form.get("csrf_token", "").encode(),
                                           expected.encode())):
            return login_form(request, error="The login form expired or came from another "
                              "site: try again.", status=403)

        def check() -> str | None:
            with accounts() as acc:
                name = form.get("name", "").strip()
                if acc.authenticate(name, form.get("password", "")) is None:
                    return None
                return acc.start_session(name)

        sid = await run_in_threadpool(check)
        if sid is None:
            return login_form(request, error="Wrong name or password (five failures in a "
                              "row lock the account for five minutes).", status=401)
        nxt = form.get("next", "/")
        resp = RedirectResponse(nxt if is_local_path(nxt) else "/", status_code=303)
        set_cookie(resp, request, _SESSION, sid)
        resp.delete_cookie(cookie(request, _LOGIN), path="/")
        return resp

    async def logout(request: Request) -> Response:
        sess, _, why = await posted(request)
        if why is not None:
            return refuse(request, sess, why)

        def end() -> None:
            with accounts() as acc:
                acc.end_session(request.cookies.get(cookie(request, _SESSION)))

        await run_in_threadpool(end)
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(cookie(request, _SESSION), path="/")
        return resp

    # ------------------------------------------------------------------ pages
    @page
    def overview(request: Request, sess: Session) -> Response:
        with store() as s:
            rows = Triage(s).alerts(include_suppressed=True)
            events, ledger_size = s.count(), s.ledger.size
        active = [a for a in rows if not a.get("suppressed_by")]
        by_state = Counter(a["state"] for a in active)
        return render(request, "overview.html", {
            "states": [(st, by_state.get(st, 0)) for st in STATES],
            "suppressed": len(rows) - len(active), "total": len(active), "events": events,
            "ledger_size": ledger_size, "verified": cfg.verified,
            "by_scenario": Markup(charts.scenario_bars(active)),
            "by_day": Markup(charts.daily_columns(active))}, session=sess)

    @page
    def alerts(request: Request, sess: Session) -> Response:
        f = queue.Filters.parse(request.query_params)
        with store() as s:
            rows = Triage(s).alerts(f.state or None, include_suppressed=f.suppressed)
        shown, total = queue.apply(rows, f)
        scenarios = sorted({c for a in rows for c in a.get("scenarios", ())}
                           | ({f.scenario} if f.scenario else set()))
        pages = max(1, -(-total // queue.PAGE_SIZE))
        return render(request, "alerts.html", {
            "f": f, "alerts": shown, "total": total, "pages": pages, "states": STATES,
            "scenarios": scenarios, "sorts": queue.SORTS,
            "qs": lambda **kw: urlencode(f.query(**kw))}, session=sess)

    def alert_view(request: Request, sess: Session, alert_id: str, *,
                   error: str | None = None, status: int = 200,
                   form: dict[str, str] | None = None) -> Response:
        with store() as s:
            tri = Triage(s)
            try:
                full = tri.resolve(alert_id)
            except AuditError as exc:
                return render(request, "error.html", {"title": "No such alert",
                                                      "message": str(exc)},
                              session=sess, status=404)
            if full != alert_id:
                return RedirectResponse(f"/alerts/{full}", status_code=303)
            rep = alert_report(tri, s, full, max_events=50, days=14, recent=20)
        a = rep["alert"]
        recorded = request.query_params.get("recorded", "")
        done = next((h for h in a.get("history") or ()
                     if str(h["ledger_index"]) == recorded), None)
        act = rep["activity"]
        window = (str(a["first_ts"])[:10], str(a["last_ts"])[:10])
        return render(request, "alert.html", {
            "rep": rep, "a": a, "done": done, "error": error, "form": form or {},
            "allowed": duties.allowed_states(sess.role, sess.name, a),
            "triagers": sorted(duties.triagers(a)), "reasons": CLOSE_REASONS,
            "timeline": Markup(charts.activity_columns(act["days"], window))},
            session=sess, status=status)

    @page
    def alert(request: Request, sess: Session) -> Response:
        return alert_view(request, sess, request.path_params["alert_id"])

    async def triage(request: Request) -> Response:
        alert_id = request.path_params["alert_id"]
        sess, form, why = await posted(request)
        if why is not None:
            return refuse(request, sess, why)
        assert sess is not None
        action = form.get("action", "")
        state = None if action == "comment" else action
        reason = form.get("reason") or None
        if len(form.get("comment", "")) > _MAX_COMMENT:
            return await run_in_threadpool(
                lambda: alert_view(request, sess, alert_id, status=400, form=form,
                                   error=f"comments hold at most {_MAX_COMMENT:,} characters"))

        def act() -> Response:
            try:
                with cfg.lock, store() as s:
                    a = Triage(s).get(alert_id)
                    if state is not None:
                        duties.check(sess.role, sess.name, a, state)
                    rec = record_triage(s, a["alert_id"], state, comment=form.get("comment", ""),
                                        reason=reason if state == "closed" else None,
                                        analyst=sess.name)
            except duties.DutyError as exc:
                return alert_view(request, sess, alert_id, error=str(exc), status=403,
                                  form=form)
            except AuditError as exc:
                return alert_view(request, sess, alert_id, error=str(exc), status=400,
                                  form=form)
            return RedirectResponse(f"/alerts/{rec['alert_id']}?recorded="
                                    f"{rec['ledger_index']}#history", status_code=303)

        return await run_in_threadpool(act)

    @page
    def ledger(request: Request, sess: Session) -> Response:
        status = verify()
        kind = request.query_params.get("kind", "")
        with store() as s:
            size = s.ledger.size
            try:
                upto = min(size - 1, int(request.query_params.get("upto", size - 1)))
            except ValueError:
                upto = size - 1
            recent: deque[Any] = deque(maxlen=50)
            for rec in s.ledger.records(kind or None):
                if rec.index > upto:
                    break
                recent.append(rec)
        records = [{"index": r.index, "ts": r.ts, "kind": r.kind,
                    "summary": _summary(r.kind, r.payload)} for r in reversed(recent)]
        return render(request, "ledger.html", {"status": status, "records": records,
                                               "kind": kind, "kinds": _KINDS, "size": size,
                                               "upto": upto}, session=sess)

    routes = [
        Route("/", overview), Route("/alerts", alerts),
        Route("/alerts/{alert_id}", alert),
        Route("/alerts/{alert_id}/triage", triage, methods=["POST"]),
        Route("/ledger", ledger),
        Route("/login", login_get, methods=["GET"]),
        Route("/login", login_post, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes, middleware=[
        Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts)),
        Middleware(SecurityHeaders)])
    app.state.console = cfg
    return app


def _summary(kind: str, p: Any) -> str:
    """One line for a ledger record."""
    if kind == "audit.triage":
        move = (f"{p.get('from_state')} -> {p.get('to_state')}" if p.get("to_state")
                else p.get("action"))
        why = f" ({p['reason']})" if p.get("reason") else ""
        return f"{p.get('alert_id')}: {move}{why} by {p.get('analyst')}: {p.get('comment')}"
    if kind == "audit.events":
        return (f"batch {p.get('batch')} from {p.get('source')}: {p.get('count')} events, "
                f"{p.get('quarantined')} quarantined")
    if kind == "audit.detect":
        return (f"detection: {p.get('new')} new, {p.get('updated')} updated, "
                f"{p.get('suppressed')} suppressed alerts")
    if kind == "audit.suppress":
        return (f"{p.get('supp_id')}: actor {p.get('actor')}, scenario {p.get('scenario')} "
                f"until {p.get('expires')} by {p.get('analyst')}: {p.get('reason')}")
    import json

    text = json.dumps(dict(p), ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 200 else text[:200] + " …"
