"""The auditor console in the browser (``covault audit serve``).

A small Starlette application with Jinja2 templates and server-side SVG charts: an alert
queue with filters and sorting, an alert page with the actor's timeline and evidence,
triage actions (the same code path as ``covault audit triage``, so every action is a
ledger record), the ledger's verification status, and alert volume by scenario and day.
No script runs in the page and nothing is fetched from elsewhere.

Modules
-------
accounts
    Local accounts (scrypt password hashes) and server-side sessions, in a SQLite file
    beside the audit database (``audit.db`` -> ``audit.users.db``).
duties
    Roles and separation of duties: who may move an alert to which state.
charts
    Inline SVG bar charts.
queue
    Filters and sorting of the alert queue.
security
    Response headers (CSP and others), same-origin checks for POSTs.
app
    The Starlette application (:func:`covault.web.app.create_app`).
serve
    Running it with uvicorn; loopback by default.

The web stack (starlette, jinja2, python-multipart, uvicorn) is installed by the
``covault[web]`` extra and imported only by :mod:`covault.web.app` and
:mod:`covault.web.serve`.
"""

from __future__ import annotations
