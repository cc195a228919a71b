"""``covault audit``: ingest query logs, detect anomalous access, triage, report, verify."""

from __future__ import annotations

import json
import logging
import sys
from datetime import date
from pathlib import Path
from typing import Any

import click

from covault.console import (
    emit_json,
    err,
    format_option,
    handle_errors,
    json_text,
    out,
    print_table,
    require_utf8,
)
from covault.keyopts import (
    UNPINNED_WARNING,
    check_pinning,
    kek_for_writing,
    kek_options,
    open_keyset,
    open_signing_key,
    private_key_kek_options,
    unpinned_option,
)

_DB = click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False),
                   help="Audit database (its ledger sits beside it as NAME.ledger.db).")


@click.group("audit")
def audit() -> None:
    """Query audit: ingest logs, detect anomalous customer-data access, triage alerts.

    Typical run: simulate (or ingest real logs) -> detect -> alerts/triage -> report ->
    checkpoint/verify. Every event batch and every triage action is a ledger record.
    """
    logging.getLogger("sqlglot").setLevel(logging.ERROR)


def _open(db_path: str, *, read_only: bool = False) -> Any:
    """The audit store at ``db_path``; ``read_only`` for commands that only check it."""
    from privacy.audit.store import AuditStore

    return AuditStore(db_path, read_only=read_only)


def _tty() -> bool:
    return sys.stderr.isatty()


def _detector_options(fn: Any) -> Any:
    """The options that configure a :class:`Detector` (shared by ingest and detect)."""
    for opt in reversed((
        click.option("--rules", type=click.Path(exists=True, dir_okay=False),
                     help="Rules YAML."),
        click.option("--lists", type=click.Path(exists=True, dir_okay=False),
                     help="Lists YAML."),
        click.option("--catalog", type=click.Path(exists=True, dir_okay=False),
                     help="Schema catalogue (sensitive and customer-key columns)."),
        click.option("--keyset", type=click.Path(exists=True, dir_okay=False),
                     help="HMAC keyset that hashed the watch lists."),
        click.option("--holidays", "holidays_file", type=click.Path(exists=True,
                                                                    dir_okay=False),
                     help="YAML file with 'holidays' and 'workdays' lists (YYYY-MM-DD or "
                          "A..B) overriding the calendar's public holidays and make-up "
                          "working days (from chinese-calendar) date by date."),
        click.option("--rota", "rota_file", type=click.Path(exists=True, dir_okay=False),
                     help="Rota YAML (shifts, and who works which when): OFF_HOURS takes "
                          "rostered hours as working hours."),
        kek_options,
        click.option("--dialect", default=None, help="SQL dialect (default: try several)."),
        click.option("--no-model", is_flag=True,
                     help="Skip the periodic IsolationForest review."),
    )):
        fn = opt(fn)
    return fn


def _resolve_format(file: str, log_format: str) -> str:
    if log_format == "pgaudit":
        return "pgaudit-csvlog" if file.lower().endswith(".csv") else "pgaudit-stderr"
    return log_format


def _first_lines(file: str, n: int = 2000) -> list[str]:
    from privacy.audit._logio import lines

    out: list[str] = []
    for line in lines(file):
        out.append(line)
        if len(out) >= n:
            break
    return out


def _reader(file: str, fmt: str, prefix: str | None, tzs: tuple[str, ...],
            maps: tuple[str, ...]) -> tuple[Any, str | None]:
    """The records of FILE, and the log_line_prefix used (pgAudit stderr)."""
    from privacy.audit.adapters import parse_field_map, read_events
    from privacy.audit.events import parse_zone
    from privacy.audit.pgaudit import DEFAULT_LOG_LINE_PREFIX, compile_prefix, guess_prefix
    from privacy.errors import InputError

    opts: dict[str, Any] = {}
    abbrevs = {t.split("=", 1)[0].strip(): t.split("=", 1)[1].strip() for t in tzs if "=" in t}
    zones = [t for t in tzs if "=" not in t]
    if len(zones) > 1:
        raise InputError(f"--tz given {len(zones)} zones ({', '.join(zones)}); give the log's "
                         "zone once (ABBR=ZONE maps a pgAudit zone abbreviation)")
    zone = parse_zone(zones[0]) if zones else None
    used_prefix = None
    if fmt.startswith("pgaudit"):
        if maps:
            raise InputError("--map applies to JSONL and CSV logs, not pgAudit")
        timezones: dict[str, Any] = {abbr: parse_zone(value) for abbr, value in abbrevs.items()}
        if zone is not None:
            timezones["*"] = zone
        if timezones:
            opts["timezones"] = timezones
        if fmt == "pgaudit-stderr":
            used_prefix = prefix or DEFAULT_LOG_LINE_PREFIX
            if prefix == "auto":
                used_prefix = guess_prefix(_first_lines(file))
                if used_prefix is None:
                    raise InputError(f"{file}: no known log_line_prefix matches its lines; "
                                     "give the server's (SHOW log_line_prefix) with --prefix")
            compile_prefix(used_prefix)
            opts["prefix"] = used_prefix
        elif prefix:
            raise InputError("--prefix applies to pgAudit stderr logs, not csvlogs")
    else:
        if abbrevs:
            raise InputError("--tz ABBR=ZONE maps pgAudit zone abbreviations; for JSONL and "
                             "CSV give the zone of timestamps without offset alone "
                             "(--tz Asia/Shanghai or --tz +08:00)")
        if prefix:
            raise InputError("--prefix applies to pgAudit stderr logs")
        if maps:
            opts["field_map"] = parse_field_map(maps)
        if zone is not None:
            opts["default_tz"] = zone
    return read_events(file, fmt, **opts), used_prefix


@audit.command("ingest")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--format", "log_format", default="jsonl", show_default=True,
              type=click.Choice(["jsonl", "csv", "pgaudit", "pgaudit-stderr", "pgaudit-csvlog"]),
              help="Input format; 'pgaudit' picks csvlog for *.csv files, else stderr.")
@_DB
@click.option("--prefix", default=None,
              help="log_line_prefix of a pgAudit stderr log (the server's SHOW "
                   "log_line_prefix; default '%m [%p] %q%u@%d %r %a '), or 'auto' to "
                   "pick the common prefix the file's lines match.")
@click.option("--tz", "tzmap", multiple=True, metavar="ZONE|ABBR=ZONE",
              help="The log's time zone (+08:00 or Asia/Shanghai): JSONL/CSV timestamps "
                   "without offset are taken in it, and pgAudit zone abbreviations not "
                   "UTC/GMT or numeric. ABBR=ZONE maps one pgAudit abbreviation, e.g. "
                   "CST=+08:00 (repeatable).")
@click.option("--map", "maps", multiple=True, metavar="SRC=DST",
              help="Read the JSONL key / CSV column SRC as the event field DST, e.g. "
                   "client_ip=source_ip; SRC= ignores SRC (repeatable).")
@click.option("--max-quarantine-share", type=click.FloatRange(0.0, 1.0), default=0.5,
              show_default=True,
              help="Exit 1 with a summary when more than this share of the records read "
                   "is quarantined (the good ones are still stored).")
@click.option("--detect", "with_detect", is_flag=True,
              help="Score events as they are stored and store the alerts (one pass; the "
                   "same alerts as ingest then detect for time-ordered logs).")
@_detector_options
@click.option("--json", "fmt_json", is_flag=True, help="Print the summary as JSON.")
@handle_errors
def ingest(file: str, log_format: str, db_path: str, prefix: str | None,
           tzmap: tuple[str, ...], maps: tuple[str, ...], max_quarantine_share: float,
           with_detect: bool, rules: str | None, lists: str | None, catalog: str | None,
           keyset: str | None, holidays_file: str | None, rota_file: str | None,
           kek_file: str | None, passphrase_env: str, dialect: str | None, no_model: bool,
           fmt_json: bool) -> None:
    """Store the events of FILE; malformed lines are quarantined with their numbers.

    Ingesting the same file again adds nothing (events are unique by id). An ingest
    killed mid-way is completed by running it again. With --detect each new event is
    scored as it is stored (events stored before are replayed first, so the detector's
    baselines are the same as for `audit detect`); feed each actor's events in time order.

    Exit 1 when more than --max-quarantine-share of the records were quarantined (a
    wrong --format, --prefix, --map or --tz): the summary groups the reasons and, for a
    pgAudit stderr log, names the log_line_prefix expected and the one the lines match.
    """
    from privacy.audit.pipeline import scorer_for

    fmt = _resolve_format(file, log_format)
    records, used_prefix = _reader(file, fmt, prefix, tzmap, maps)
    det = (_detector(rules, lists, catalog, keyset, kek_file, passphrase_env, dialect,
                     holidays_file, rota_file) if with_detect else None)
    store = _open(db_path)
    scorer = None
    try:
        if det is not None:
            scorer = scorer_for(det)
            for e in store.events():
                scorer.score(e)
        on_event = scorer.score if scorer is not None else None
        if _tty() and not fmt_json:
            from rich.progress import Progress

            total = sum(1 for _ in open(file, "rb"))
            with Progress(console=err, transient=True) as bar:
                task = bar.add_task("ingesting", total=total)
                rep = store.ingest(records, source=str(Path(file).resolve()),
                                   progress=lambda n: bar.advance(task, n), on_event=on_event)
        else:
            rep = store.ingest(records, source=str(Path(file).resolve()), on_event=on_event)
        found = _save_detection(store, scorer.finish(), no_model) if scorer else None
    finally:
        if scorer is not None:
            scorer.close()
        store.close()
    nq = len(rep.quarantined)
    share = nq / rep.read if rep.read else 0.0
    groups = _reason_groups(rep.quarantined)
    hints = _quarantine_hints(file, fmt, used_prefix, groups)
    summary: dict[str, Any] = {
        "read": rep.read, "added": rep.added, "duplicates": rep.duplicates,
        "quarantined": nq, "quarantined_share": round(share, 4),
        "max_quarantine_share": max_quarantine_share, "batches": rep.batches,
        "recovered_batches": rep.recovered_batches,
        "quarantine_reasons": [{"count": n, "reason": r, "first_line": ln}
                               for n, r, ln in groups],
        "hints": hints,
        "quarantined_lines": [{"line": ln, "reason": r} for ln, r in rep.quarantined]}
    if used_prefix is not None:
        summary["log_line_prefix"] = used_prefix
    if found is not None:
        summary["detection"] = {"scored": found[0].events_scored,
                                "alerts": len(found[0].alerts), **found[1]}
    too_many = nq > 0 and share > max_quarantine_share
    if fmt_json:
        emit_json(summary)
    else:
        out.print(f"read {rep.read:,} records: {rep.added:,} new events, {rep.duplicates:,} "
                  f"already stored, {nq:,} quarantined", markup=False)
        if prefix == "auto":
            out.print(f"log_line_prefix detected: {used_prefix!r}", markup=False)
        if rep.recovered_batches:
            out.print(f"recovered {rep.recovered_batches} batch record(s) left by an "
                      "interrupted ingest", markup=False)
        for ln, reason in rep.quarantined[:50]:
            out.print(f"  quarantined line {ln}: {reason}", markup=False)
        if nq > 50:
            out.print(f"  ... and {nq - 50} more (see the quarantine table)", markup=False)
        if nq:
            out.print(f"quarantined {nq:,} of {rep.read:,} records ({share:.0%}), by reason:",
                      markup=False)
            for n, reason, ln in groups[:10]:
                out.print(f"  {n:,} x {reason} (first at line {ln})", markup=False)
            if len(groups) > 10:
                out.print(f"  ... and {len(groups) - 10} other reasons", markup=False)
            for h in hints:
                out.print(f"hint: {h}", markup=False)
        if rep.read == 0:
            err.print(f"warning: {file}: no query records found (for a pgAudit log: is "
                      "pgaudit.log set, and is this the right file?)", markup=False)
        if found is not None:
            _print_alerts(*found, calendar=det.rules.calendar if det is not None else None)
    if too_many:
        from privacy.errors import Finding

        raise Finding(f"{file}: {nq:,} of {rep.read:,} records ({share:.0%}) were quarantined, "
                      f"more than --max-quarantine-share {max_quarantine_share:g}; the "
                      "summary above says why (the events that were read are stored)")


def _reason_groups(quarantined: list[tuple[int, str]]) -> list[tuple[int, str, int]]:
    """(count, reason, first line) per kind of reason, most frequent first; reasons that
    differ only in digits (a timestamp, a line or byte number) are one kind."""
    import re

    groups: dict[str, list[Any]] = {}
    for ln, reason in quarantined:
        key = re.sub(r"\d+", "#", reason)
        g = groups.get(key)
        if g is None:
            groups[key] = [1, reason, ln]
        else:
            g[0] += 1
    return sorted(((int(n), str(r), int(ln)) for n, r, ln in groups.values()),
                  key=lambda g: (-g[0], g[2]))


def _quarantine_hints(file: str, fmt: str, prefix: str | None,
                      groups: list[tuple[int, str, int]]) -> list[str]:
    """What to change when lines were quarantined for a reason an option fixes."""
    hints: list[str] = []
    reasons = " ".join(r for _, r, _ in groups)
    if fmt == "pgaudit-stderr" and ("does not match log_line_prefix" in reasons
                                    or "no user name" in reasons):
        from privacy.audit.pgaudit import guess_prefix

        hints.append(f"expected log_line_prefix {prefix!r}; give the server's own (psql: "
                     "SHOW log_line_prefix) with --prefix")
        head = _first_lines(file)
        guess = guess_prefix(head)
        if guess is not None and guess != prefix:
            hints.append(f"the lines match log_line_prefix {guess!r}: ingest again with "
                         f"--prefix '{guess}' (or --prefix auto)")
        elif head and head[0][:4].isdigit() and head[0].count(",") >= 20:
            hints.append("the file looks like a csvlog: ingest it with --format "
                         "pgaudit-csvlog")
    if "map it to an event field" in reasons or "lacks required column" in reasons:
        hints.append("name the log's fields after the event fields with --map SRC=DST "
                     "(e.g. --map client_ip=source_ip), or ignore one with --map SRC=")
    if "no UTC offset" in reasons:
        hints.append("timestamps have no offset: give the log's zone with --tz (e.g. --tz "
                     "Asia/Shanghai)")
    if "ambiguous or unknown" in reasons:
        hints.append("map the log's zone abbreviation with --tz ABBR=ZONE (e.g. --tz "
                     "CST=+08:00) or give the log's zone with --tz Asia/Shanghai")
    return hints


def _detector(rules: str | None, lists: str | None, catalog: str | None, keyset: str | None,
              kek_file: str | None, passphrase_env: str, dialect: str | None,
              holidays_file: str | None = None, rota_file: str | None = None) -> Any:
    from privacy.audit.catalog import Catalog
    from privacy.audit.detect import Detector
    from privacy.audit.lists import ListSet
    from privacy.audit.rules import Rules

    cat = Catalog.load(catalog) if catalog else None
    r = Rules.load(rules, cat) if rules else Rules.default(cat)
    if holidays_file:
        r = r.with_holidays_file(holidays_file)
    if rota_file:
        r = r.with_rota(rota_file)
    tok = None
    if keyset:
        from privacy.fields import Tokenizer

        tok = Tokenizer(open_keyset(keyset, kek_file, passphrase_env))
    ls = ListSet.load(lists, tokenizer=tok) if lists else ListSet()
    for w in ls.warnings():
        err.print(f"warning: {w}", markup=False)
    return Detector(rules=r, lists=ls, catalog=cat, dialect=dialect)


def _save_detection(store: Any, found: Any, no_model: bool) -> tuple[Any, dict[str, int]]:
    """Store a :class:`Detection`'s alerts (known ones keep their state); model review."""
    from privacy.audit.triage import Triage

    saved = Triage(store).save_alerts(found.alerts)
    if not no_model:
        _model_review(store, found)
    return found, saved


def _print_alerts(found: Any, saved: dict[str, int], calendar: Any = None) -> None:
    from covault.audit_view import alert_blocks

    alerts = found.alerts
    out.print(f"scored {found.events_scored:,} events: {len(alerts)} alerts "
              f"({saved['new']} new, {saved['suppressed']} suppressed)", markup=False)
    rows = sorted((a.to_dict() for a in alerts), key=lambda d: (-d["score"], d["first_ts"]))
    for line in alert_blocks(rows[:100], out.width):
        out.print(line, markup=False)
    if len(rows) > 100:
        out.print(f"... and {len(rows) - 100} more: covault audit alerts --db DB", markup=False)
    if calendar is not None:
        _calendar_note(calendar, found.day_features)


def _calendar_note(calendar: Any, day_features: Any) -> None:
    """Warn when events fall in years whose public holidays the calendar does not know."""
    from datetime import timedelta

    if not calendar.years and calendar.source == "none":
        return
    epoch = date(1970, 1, 1)
    years = sorted({(epoch + timedelta(days=int(day))).year for _, day in day_features}
                   - set(calendar.years))
    if years:
        known = (f"{min(calendar.years)}-{max(calendar.years)}" if calendar.years
                 else "none")
        err.print(f"note: public holidays and make-up working days of "
                  f"{', '.join(map(str, years))} are not known (known: {known}); OFF_HOURS "
                  "takes every weekday there as a working day. List them in a file given "
                  "with --holidays, or upgrade chinese-calendar.", markup=False)


@audit.command("detect")
@_DB
@_detector_options
@click.option("--budget", type=click.IntRange(0), default=None, metavar="N",
              help="Also build the queue: N incidents a day (see `audit queue`); each "
                   "alert then says its incident and whether it is queued, and why not.")
@format_option
@handle_errors
def detect(db_path: str, rules: str | None, lists: str | None, catalog: str | None,
           keyset: str | None, holidays_file: str | None, rota_file: str | None,
           kek_file: str | None, passphrase_env: str, dialect: str | None, no_model: bool,
           budget: int | None, fmt: str) -> None:
    """Score every stored event and store the alerts (known alerts keep their state).

    Use it to re-score with other rules or lists; `audit ingest --detect` scores while
    ingesting. --format json prints one alert object per line, as `audit alerts` does
    (the same score); with --budget each also carries incident_id, incident_score,
    queued and queue_reason.
    """
    det = _detector(rules, lists, catalog, keyset, kek_file, passphrase_env, dialect,
                    holidays_file, rota_file)
    store = _open(db_path)
    try:
        total = store.count()
        if _tty() and fmt == "text":
            from rich.progress import Progress

            with Progress(console=err, transient=True) as bar:
                task = bar.add_task("scoring", total=total)
                for i, e in enumerate(store.events(), 1):
                    det.score(e)
                    if i % 5000 == 0:
                        bar.update(task, completed=i)
        else:
            for e in store.events():
                det.score(e)
        from privacy.audit.pipeline import Detection

        found, saved = _save_detection(store, Detection.of(det), no_model)
        q = None
        if budget is not None:
            from covault.commands.audit_queue import load_queue

            q = load_queue(store, budget, 86400.0)
    finally:
        store.close()
    if fmt == "json":
        rows = [a.to_dict() for a in found.alerts]
        if q is not None:
            from covault.commands.audit_queue import annotate

            rows = annotate(rows, q)
        for a in rows:
            click.echo(json_text(a))
        return
    _print_alerts(found, saved, calendar=det.rules.calendar)
    if q is not None:
        from covault.commands.audit_queue import print_queue

        print_queue(q, limit=30)


def _model_review(store: Any, det: Any) -> None:
    try:
        import sklearn  # noqa: F401
    except ImportError:
        err.print("note: scikit-learn not installed; model review skipped", markup=False)
        return
    from privacy.audit.model import review

    roles = {a: f"{r}/{d}" for (a, r, d) in _actor_groups(store)}
    findings = review(det.day_features, roles=roles)
    store.db.execute("INSERT OR REPLACE INTO meta VALUES ('model_review', ?)",
                     (json.dumps(findings),))


def _actor_groups(store: Any) -> list[tuple[str, str, str]]:
    rows = store.db.execute("SELECT DISTINCT actor, json_extract(data, '$.role'), "
                            "json_extract(data, '$.department') FROM events").fetchall()
    return [(a, str(r), str(d)) for a, r, d in rows]


@audit.command("alerts")
@_DB
@click.option("--state", type=click.Choice(["new", "in_progress", "escalated", "closed"]))
@click.option("--all", "include_suppressed", is_flag=True, help="Include suppressed alerts.")
@format_option
@handle_errors
def alerts_cmd(db_path: str, state: str | None, include_suppressed: bool, fmt: str) -> None:
    """List stored alerts (highest score first).

    Each alert is a block that reads at 80 columns: its full id (any unique prefix of it
    works in `audit show` and `audit triage`), score, state and actor; scenarios, time
    span and event count; the primary reason in full, wrapped. `audit show ALERT` has
    every reason and the evidence. --format json prints one alert object per line.
    """
    from covault.audit_view import alert_blocks
    from privacy.audit.triage import Triage

    store = _open(db_path)
    try:
        rows = Triage(store).alerts(state, include_suppressed=include_suppressed)
    finally:
        store.close()
    if fmt == "json":
        for a in rows:
            click.echo(json_text(a))
        return
    out.print(f"{len(rows)} alerts" + (f" ({state})" if state else ""), markup=False)
    for line in alert_blocks(rows, out.width):
        out.print(line, markup=False)


@audit.command("triage")
@click.argument("alert_id")
@_DB
@click.option("--state", required=True,
              type=click.Choice(["new", "in_progress", "escalated", "closed"]))
@click.option("--reason", type=click.Choice(["true_positive", "benign", "false_positive",
                                             "duplicate"]), help="Required when closing.")
@click.option("--comment", required=True, help="Why (recorded in the ledger).")
@click.option("--analyst", default="auditor", show_default=True)
@format_option
@handle_errors
def triage_cmd(alert_id: str, db_path: str, state: str, reason: str | None, comment: str,
               analyst: str, fmt: str) -> None:
    """Move ALERT_ID to a new state (new -> in_progress -> escalated -> closed).

    ALERT_ID may be any unique prefix of the id (with or without AL-); an ambiguous
    prefix exits 2 listing the alerts it matches.
    """
    from covault.audit_actions import record_triage

    for what, text in (("--comment", comment), ("--analyst", analyst)):
        require_utf8(text, what)
    store = _open(db_path)
    try:
        rec = record_triage(store, alert_id, state, reason=reason, comment=comment,
                            analyst=analyst)
    finally:
        store.close()
    if fmt == "json":
        emit_json(rec)
    else:
        out.print(f"{rec['alert_id']}: {rec['from_state']} -> {rec['to_state']} (ledger "
                  f"record {rec['ledger_index']})", markup=False)


@audit.command("show")
@click.argument("alert_id")
@_DB
@click.option("--events", "max_events", default=20, show_default=True,
              type=click.IntRange(0), help="Evidence events shown (0: all stored).")
@click.option("--days", default=7, show_default=True, type=click.IntRange(1, 366),
              help="Days of the actor's activity shown, up to the alert's last day.")
@click.option("--recent", default=10, show_default=True, type=click.IntRange(0),
              help="The actor's last events up to the alert's end that are shown.")
@format_option
@handle_errors
def show_cmd(alert_id: str, db_path: str, max_events: int, days: int, recent: int,
             fmt: str) -> None:
    """Show one alert: every reason in full, its evidence events, the actor's activity.

    ALERT_ID may be any unique prefix of the id. Text output reads at 80 columns;
    --format json prints one object: alert (with state and triage history), evidence,
    evidence_total, activity (days, recent events), other_alerts.
    """
    from covault.audit_view import alert_report, render_alert_report
    from privacy.audit.triage import Triage

    store = _open(db_path)
    try:
        rep = alert_report(Triage(store), store, alert_id, max_events=max_events, days=days,
                           recent=recent)
    finally:
        store.close()
    if fmt == "json":
        emit_json(rep)
        return
    for line in render_alert_report(rep, out.width):
        out.print(line, markup=False)


@audit.command("suppress")
@_DB
@click.option("--actor", default=None, help="Suppress alerts of this actor.")
@click.option("--scenario", default=None, help="Suppress alerts of this scenario code.")
@click.option("--reason", required=True, help="Why the alerts are expected.")
@click.option("--comment", required=True)
@click.option("--expires", required=True, type=click.DateTime(["%Y-%m-%d"]),
              help="Last day the suppression applies (YYYY-MM-DD).")
@click.option("--analyst", default="auditor", show_default=True)
@format_option
@handle_errors
def suppress_cmd(db_path: str, actor: str | None, scenario: str | None, reason: str,
                 comment: str, expires: Any, analyst: str, fmt: str) -> None:
    """Suppress future alerts of an actor and/or scenario until a date (ledgered)."""
    from privacy.audit.triage import Triage

    for what, text in (("--actor", actor), ("--scenario", scenario), ("--reason", reason),
                       ("--comment", comment), ("--analyst", analyst)):
        require_utf8(text, what)
    store = _open(db_path)
    try:
        sid = Triage(store, analyst=analyst).suppress(
            actor=actor, scenario=scenario, reason=reason, comment=comment,
            expires=date(expires.year, expires.month, expires.day))
    finally:
        store.close()
    if fmt == "json":
        emit_json({"suppression": sid})
    else:
        out.print(f"suppression {sid} recorded", markup=False)


def _checkpoint_options(fn: Any) -> Any:
    """``--checkpoint``, ``--public-key`` and ``--unpinned``: how the ledger is verified."""
    fn = unpinned_option(fn)
    fn = click.option("--public-key", type=click.Path(exists=True, dir_okay=False),
                      help="Key that must have signed the checkpoint.")(fn)
    return click.option("--checkpoint", "cp", type=click.Path(exists=True, dir_okay=False),
                        help="A ledger checkpoint kept outside the database.")(fn)


@audit.command("verify")
@_DB
@_checkpoint_options
@format_option
@handle_errors
def verify_cmd(db_path: str, cp: str | None, public_key: str | None, unpinned: bool,
               fmt: str) -> None:
    """Verify the ledger and every event, batch and triage action (exit 1 on failure)."""
    check_pinning(cp, public_key, unpinned)
    store = _open(db_path, read_only=True)
    try:
        rep = store.verify(cp, public_key=public_key)
    finally:
        store.close()
    if unpinned:
        err.print(f"warning: {UNPINNED_WARNING}", markup=False)
    if fmt == "json":
        emit_json({"ok": True, **rep.__dict__, "signer_pinned": not unpinned if cp else None})
    else:
        out.print(f"verified: {rep.events:,} events in {rep.batches} batches, "
                  f"{rep.quarantined} quarantined lines, {rep.triage_actions} triage actions; "
                  f"ledger size {rep.ledger_size}, root {rep.ledger_root[:16]}…"
                  + (f"; extends checkpoint of size {rep.checkpoint_size}"
                     if rep.checkpoint_size is not None else ""), markup=False)


@audit.command("checkpoint")
@_DB
@click.option("--key", "key_path", required=True, type=click.Path(dir_okay=False),
              help="Ed25519 private key (from `ledger keygen`; sealed under the KEK).")
@click.option("--generate", is_flag=True, help="Create KEY (and KEY.pub) if missing.")
@click.option("-o", "--out", "cp_out", required=True, type=click.Path(dir_okay=False))
@private_key_kek_options(write=True, what="the signing key")
@handle_errors
def checkpoint_cmd(db_path: str, key_path: str, generate: bool, cp_out: str,
                   kek_file: str | None, passphrase_env: str, unencrypted_key: bool) -> None:
    """Sign the ledger head; keep the checkpoint outside the database's folder.

    A key made by --generate is sealed under the KEK ($COVAULT_PASSPHRASE, or
    --passphrase-env/--kek-file), or written in the clear with --unencrypted-key.
    """
    from privacy.errors import InputError
    from privacy.ledger import generate_signing_key, save_public_key, save_signing_key

    if not Path(key_path).exists():
        if not generate:
            raise InputError(f"{key_path}: no such key (pass --generate to create one)")
        kek = kek_for_writing(kek_file, passphrase_env, unencrypted_key,
                              what="the signing key")
        key = generate_signing_key()
        save_signing_key(key, key_path, kek=kek)
        save_public_key(key, key_path + ".pub")
    elif unencrypted_key:
        raise InputError(f"--unencrypted-key applies to a key made by --generate; "
                         f"{key_path} exists")
    key = open_signing_key(key_path, kek_file, passphrase_env)
    store = _open(db_path)
    try:
        cp = store.checkpoint(key)
    finally:
        store.close()
    cp.save(cp_out)
    out.print(f"checkpoint of size {cp.size} written to {cp_out}", markup=False)


@audit.command("report")
@_DB
@click.option("-o", "--out", "report_out", required=True, type=click.Path(dir_okay=False))
@click.option("--all", "include_suppressed", is_flag=True, help="Include suppressed alerts.")
@click.option("--budget", type=click.IntRange(0), default=None, metavar="N",
              help="Add the queue: N incidents a day, and every incident left out with why.")
@handle_errors
def report_cmd(db_path: str, report_out: str, include_suppressed: bool,
               budget: int | None) -> None:
    """Write one self-contained HTML report (inline SVG, no scripts)."""
    from privacy.audit.report import write_report
    from privacy.audit.triage import Triage

    store = _open(db_path)
    try:
        tri = Triage(store)
        rows = [tri.get(a["alert_id"]) for a in
                tri.alerts(include_suppressed=include_suppressed)]
        row = store.db.execute("SELECT value FROM meta WHERE key = 'model_review'").fetchone()
        findings = json.loads(row[0]) if row else []

        def lookup(eid: str) -> dict[str, Any] | None:
            ev = store.event(eid)
            return None if ev is None else ev.to_dict()

        summary = {"events": f"{store.count():,}", "ledger size": store.ledger.size,
                   "ledger root": store.ledger.root().hex()[:32]}
        queue = None
        if budget is not None:
            from covault.commands.audit_queue import load_queue

            queue = load_queue(store, budget, 86400.0).to_dict()
        write_report(report_out, rows, events=lookup, summary=summary, model_findings=findings,
                     queue=queue)
    finally:
        store.close()
    out.print(f"report with {len(rows)} alerts written to {report_out}", markup=False)


@audit.command("simulate")
@click.option("--seed", default=7, show_default=True, type=int)
@click.option("--actors", default=500, show_default=True, type=int)
@click.option("--days", default=30, show_default=True, type=int)
@click.option("--per-scenario", default=None, type=int,
              help="Incidents per scenario (default max(3, actors/50)).")
@click.option("--service-rate", default=2200, show_default=True, type=int,
              help="Statements per day of each application account.")
@click.option("-o", "--out", "events_out", required=True, type=click.Path(dir_okay=False))
@click.option("--answers", required=True, type=click.Path(dir_okay=False),
              help="Answer key JSON (injected incidents with their event ids).")
@click.option("--bundle", type=click.Path(file_okay=False), default=None,
              help="Also write catalog.yaml, rules.yaml, lists.yaml (watch lists hashed with "
                   "a new watch-keyset.json / watch.kek) into this folder.")
@handle_errors
def simulate_cmd(seed: int, actors: int, days: int, per_scenario: int | None,
                 service_rate: int, events_out: str, answers: str, bundle: str | None) -> None:
    """Generate seeded bank query traffic with every scenario injected and an answer key."""
    from privacy.audit.simulate import simulate, write_bundle
    from privacy.errors import InputError

    try:
        sim = simulate(seed, actors, days, per_scenario=per_scenario,
                       service_rate=service_rate)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    sim.write(events_out, answers)
    msg = f"{len(sim.events):,} events, {len(sim.answers['incidents'])} incidents"
    if bundle:
        from privacy.fields import Tokenizer
        from privacy.keys import Kek, Keyset

        root = Path(bundle)
        root.mkdir(parents=True, exist_ok=True)
        Kek.generate_key_file(root / "watch.kek")
        ks = Keyset.create("HMAC_SHA256")
        ks.save(root / "watch-keyset.json", Kek.from_key_file(root / "watch.kek"))
        write_bundle(sim, root, Tokenizer(ks))
        msg += f"; catalogue, rules and lists in {bundle}"
    out.print(msg, markup=False)


@audit.command("evaluate")
@_DB
@click.option("--answers", required=True, type=click.Path(exists=True, dir_okay=False))
@format_option
@handle_errors
def evaluate_cmd(db_path: str, answers: str, fmt: str) -> None:
    """Score stored alerts against a simulator answer key (recall/precision per scenario)."""
    from privacy.audit.sim_eval import load_answers
    from privacy.audit.simulate import evaluate
    from privacy.audit.triage import Triage

    key = load_answers(answers)
    store = _open(db_path)
    try:
        rows = Triage(store).alerts(include_suppressed=True)
    finally:
        store.close()
    res = evaluate(rows, key)
    if fmt == "json":
        emit_json(res)
        return
    print_table("detection quality", ["scenario", "incidents", "detected", "alerts", "recall",
                                      "precision", "median detect (s)"],
                [(c, s["incidents"], s["detected"], s["alerts"], s["recall"], s["precision"],
                  s["median_detect_s"]) for c, s in res["scenarios"].items()])
    out.print(f"false positives per 1,000 actor-days: {res['fp_per_1000_actor_days']}",
              markup=False)


# --------------------------------------------------------------------------- web console
_USERS = click.option("--users", "users_path", type=click.Path(dir_okay=False), default=None,
                      help="Accounts file (default: beside --db, audit.db -> audit.users.db).")


def _accounts(db_path: str, users_path: str | None, *, create: bool) -> Any:
    from covault.web.accounts import Accounts, users_path_for

    return Accounts(users_path or users_path_for(db_path), create=create)


@audit.command("serve")
@_DB
@_USERS
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to listen on. Anything but loopback needs --allow-remote and "
                   "TLS.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(1, 65535))
@click.option("--allow-remote", is_flag=True,
              help="Allow a non-loopback --host (requires --tls-cert and --tls-key).")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), default=None,
              help="TLS certificate (PEM); the session cookie is then Secure.")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("--allowed-host", "allowed_hosts", multiple=True,
              help="Extra Host header name clients use (repeatable); loopback names are "
                   "always allowed.")
@_checkpoint_options
@handle_errors
def serve_cmd(db_path: str, users_path: str | None, host: str, port: int, allow_remote: bool,
              tls_cert: str | None, tls_key: str | None, allowed_hosts: tuple[str, ...],
              cp: str | None, public_key: str | None, unpinned: bool) -> None:
    """Serve the auditor console in the browser (needs covault[web]).

    An alert queue with filters and sorting, each alert with the actor's timeline and
    the evidence, triage (ledgered as by `audit triage`, under the logged-in name),
    ledger verification, and charts of alerts by scenario and day. Log in with an
    account from `audit users add`. Roles: an auditor triages (in progress,
    escalated); a reviewer closes and reopens, never an alert they triaged.

    Listens on 127.0.0.1 unless --host names another interface with --allow-remote and
    TLS. Stop it with Ctrl-C.
    """
    from privacy.errors import InputError

    check_pinning(cp, public_key, unpinned)
    try:
        from covault.web.serve import REMOTE_WARNING, is_loopback, serve
    except ImportError as exc:
        raise InputError(f"the console needs the web extra ({exc.name} is missing): "
                         "pip install 'covault[web]'") from None
    if unpinned:
        err.print(f"warning: {UNPINNED_WARNING}", markup=False)
    if not is_loopback(host) and allow_remote:
        err.print("warning: " + REMOTE_WARNING.format(host=host), markup=False)
    serve(db_path, host=host, port=port, users_path=users_path, allow_remote=allow_remote,
          tls_cert=tls_cert, tls_key=tls_key, allowed_hosts=allowed_hosts, checkpoint=cp,
          public_key=public_key,
          on_start=lambda url: out.print(f"auditor console on {url} (Ctrl-C stops it)",
                                         markup=False))


@audit.group("users")
def users() -> None:
    """Accounts of the browser console (`audit serve`): add, list, passwd, role, remove.

    Roles: auditor (triages: in progress, escalated, comments) and reviewer (closes and
    reopens alerts, but not one they triaged themselves). Passwords (at least 12
    characters) are asked for, or read from the first line of stdin with
    --password-stdin, and stored as scrypt hashes.
    """


def _password(stdin: bool) -> str:
    if stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True, err=True))


_ROLE = click.Choice(["auditor", "reviewer"])
_STDIN = click.option("--password-stdin", "stdin", is_flag=True,
                      help="Read the password from the first line of stdin.")


@users.command("add")
@click.argument("name")
@click.option("--role", required=True, type=_ROLE)
@_DB
@_USERS
@_STDIN
@handle_errors
def users_add(name: str, role: str, db_path: str, users_path: str | None, stdin: bool) -> None:
    """Create the account NAME with a role."""
    with _accounts(db_path, users_path, create=True) as acc:
        acc.add(name, role, _password(stdin))
    out.print(f"user {name} ({role}) added", markup=False)


@users.command("passwd")
@click.argument("name")
@_DB
@_USERS
@_STDIN
@handle_errors
def users_passwd(name: str, db_path: str, users_path: str | None, stdin: bool) -> None:
    """Set NAME's password (ends their sessions, lifts a lock)."""
    with _accounts(db_path, users_path, create=False) as acc:
        acc.set_password(name, _password(stdin))
    out.print(f"password of {name} changed", markup=False)


@users.command("role")
@click.argument("name")
@click.argument("role", type=_ROLE)
@_DB
@_USERS
@handle_errors
def users_role(name: str, role: str, db_path: str, users_path: str | None) -> None:
    """Give NAME another role (ends their sessions)."""
    with _accounts(db_path, users_path, create=False) as acc:
        acc.set_role(name, role)
    out.print(f"{name} is now {role}", markup=False)


@users.command("remove")
@click.argument("name")
@_DB
@_USERS
@handle_errors
def users_remove(name: str, db_path: str, users_path: str | None) -> None:
    """Remove NAME's account (their ledgered actions stay)."""
    with _accounts(db_path, users_path, create=False) as acc:
        acc.remove(name)
    out.print(f"user {name} removed", markup=False)


@users.command("list")
@_DB
@_USERS
@format_option
@handle_errors
def users_list(db_path: str, users_path: str | None, fmt: str) -> None:
    """List the accounts with their roles."""
    from datetime import datetime, timezone

    with _accounts(db_path, users_path, create=False) as acc:
        rows = acc.users()
    for r in rows:
        r["created"] = datetime.fromtimestamp(r["created"], timezone.utc).isoformat(
            timespec="seconds")
    if fmt == "json":
        emit_json(rows)
        return
    print_table("console accounts", ["name", "role", "created", "locked"],
                [(r["name"], r["role"], r["created"], "yes" if r["locked"] else "")
                 for r in rows])


from covault.commands.audit_catalog import catalog_cmd  # noqa: E402
from covault.commands.audit_queue import queue_cmd  # noqa: E402

audit.add_command(queue_cmd)
audit.add_command(catalog_cmd)
