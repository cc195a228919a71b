"""``covault psi``: private set intersection with a partner, over TCP or message files."""

from __future__ import annotations

import csv
import hashlib
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from covault.console import (
    atomic_output,
    check_outputs,
    emit_json,
    err,
    force_option,
    format_option,
    handle_errors,
    optional_ledger,
    out,
)
from privacy.errors import InputError

MODES = ("intersection", "cardinality", "intersection-sum")


@click.group("psi")
def psi() -> None:
    """Private set intersection (ECDH on ristretto255, semi-honest).

    Ids are normalised (NFKC, whitespace removed, casefolded) and deduplicated; with
    --id-type they are brought to their canonical identifier form instead (mobile:
    +86 187 8161 8495, 187-8161-8495 and 0086... all become 18781618495), and both
    parties must give the same --id-type. Modes:
    intersection (the joining party learns which of its rows are shared), cardinality
    (only the count) and intersection-sum (the sum of the serving party's --value-column
    over the intersection, under Paillier). Live: `psi serve` + `psi join`, over mutual
    TLS (--cert/--key/--ca; test certificates: `psi certs`). By files: `psi request` ->
    `psi respond` -> `psi finish` [-> `psi reveal`], each message file ending in a
    SHA-256 digest that is checked on reading.
    """


# -- options ---------------------------------------------------------------------------

def _ids_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--column", "-c", required=True, help="Column holding the ids.")(fn)
    return click.option(
        "--ids", "ids_path", required=True, type=click.Path(dir_okay=False),
        help="CSV or Parquet file (by suffix .parquet/.pq) with the ids.",
    )(fn)


_mode = click.option("--mode", type=click.Choice(MODES), default="intersection",
                     show_default=True, help="What the result discloses.")
_context = click.option("--context", default="covault-psi", show_default=True,
                        help="Session context both parties agree on (part of the hash tag).")
ID_TYPES = ("mobile", "resident_id", "card", "email", "uscc", "generic", "auto")
_id_type = click.option(
    "--id-type", type=click.Choice(ID_TYPES), default=None,
    help="Normalise ids as identifiers of this kind (mobile: national number for +86, "
         "E.164 otherwise; resident_id: upper-case X; card: digits; email: lower-case; "
         "uscc: upper-case; auto: per value). Both parties must give the same. "
         "[default: text: NFKC, whitespace removed, casefolded]")
_workers = click.option("--workers", type=click.IntRange(1, 256), default=None,
                        help="Processes for the group operations [default: all cores].")
_ledger = click.option("--ledger", "ledger_path", type=click.Path(dir_okay=False), default=None,
                       help="Record what was disclosed in this ledger database.")
_timeout = click.option("--timeout", type=click.FloatRange(1, None), default=600.0,
                        show_default=True, help="Seconds a socket read or write may wait.")
_min_count = click.option(
    "--min-count", type=click.IntRange(1, None), default=1, show_default=True,
    help="intersection-sum: refuse to reveal a sum over fewer ids than this (stops an "
         "honest joiner with a tiny intersection from learning single values; a dishonest "
         "one can claim any count up to both set sizes).")
_paillier = click.option("--paillier-bits", type=click.IntRange(2048, 8192), default=3072,
                         show_default=True, help="Paillier key size (intersection-sum).")


def _tls_options(role: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--cert/--key/--ca/--insecure-plaintext for `serve` (role "server") or `join`."""
    peer = "client" if role == "server" else "server"

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn = click.option(
            "--insecure-plaintext", is_flag=True,
            help="Run without TLS: the channel is then neither encrypted nor "
                 "authenticated (only inside a tunnel or VPN you trust).")(fn)
        fn = click.option(
            "--ca", "tls_ca", type=click.Path(dir_okay=False), default=None,
            help=f"CA certificate (PEM) that must have signed the {peer}'s certificate.")(fn)
        fn = click.option("--key", "tls_key", type=click.Path(dir_okay=False), default=None,
                          help=f"This {role}'s TLS private key (PEM).")(fn)
        return click.option(
            "--cert", "tls_cert", type=click.Path(dir_okay=False), default=None,
            help=f"This {role}'s TLS certificate (PEM), signed by a CA the {peer} trusts "
                 "(test ones: `covault psi certs DIR`).")(fn)

    return decorate


def _tls_context(role: str, cert: str | None, key: str | None, ca: str | None,
                 plaintext: bool) -> Any:
    """The ssl context for mutual TLS, or ``None`` with --insecure-plaintext (warned)."""
    given = [name for name, v in (("--cert", cert), ("--key", key), ("--ca", ca)) if v]
    if plaintext:
        if given:
            raise InputError(f"--insecure-plaintext excludes {', '.join(given)}")
        err.print("warning: --insecure-plaintext: the PSI channel is neither encrypted nor "
                  "authenticated", markup=False)
        return None
    if len(given) != 3:
        command = "serve" if role == "server" else "join"
        raise InputError(
            f"psi {command} runs over mutual TLS: pass --cert, --key and --ca"
            + (f" (missing {', '.join(o for o in ('--cert', '--key', '--ca') if o not in given)})"
               if given else "")
            + "; make test certificates with `covault psi certs DIR`, or pass "
              "--insecure-plaintext to run unencrypted inside a tunnel or VPN")
    from privacy.tls import client_context, server_context

    assert cert is not None and key is not None and ca is not None
    return (server_context if role == "server" else client_context)(cert, key, ca)


# -- tables ----------------------------------------------------------------------------

def _is_parquet(path: str) -> bool:
    return Path(path).suffix.lower() in (".parquet", ".pq")


def _read_table(path: str, column: str, value_column: str | None = None) -> Any:
    """Read a CSV (all columns as text) or Parquet table and check the named columns."""
    import pyarrow as pa

    p = Path(path)
    if not p.is_file():
        raise InputError("no such file", file=path)
    try:
        if _is_parquet(path):
            import pyarrow.parquet as pq

            table = pq.read_table(p)
        else:
            import pyarrow.csv as pcsv

            from masking.io import csv_read_options

            read_options = csv_read_options()  # the shared field limit (--max-field-bytes)
            with open(p, encoding="utf-8-sig", newline="") as fh:
                header = next(csv.reader(fh), None)
            if not header:
                raise InputError("empty file: expected a header row", file=path)
            table = pcsv.read_csv(p, read_options=read_options,
                                  convert_options=pcsv.ConvertOptions(
                                      column_types={name: pa.string() for name in header}))
    except (pa.ArrowInvalid, UnicodeDecodeError, OSError, csv.Error) as exc:
        from masking.io import csv_error_message

        raise InputError(f"cannot read table: {csv_error_message(str(exc))}",
                         file=path) from exc
    for name in (column, value_column):
        if name is not None and name not in table.column_names:
            raise InputError(f"no column {name!r}; columns: {', '.join(table.column_names)}",
                             file=path)
    return table


def _ids(table: Any, path: str, column: str) -> list[str | None]:
    ids = [None if v is None else str(v) for v in table.column(column).to_pylist()]
    if not any(v is not None and v.strip() for v in ids):
        raise InputError("the id column is empty", file=path, column=column)
    return ids


#: An integer cell: ASCII digits with an optional sign. int() also takes ``1_000``,
#: surrounding spaces and non-ASCII digits (Arabic-Indic, full-width); those are refused.
_INTEGER = re.compile(r"[+-]?[0-9]+")


def _values(table: Any, path: str, column: str) -> list[int]:
    values: list[int] = []
    for row, v in enumerate(table.column(column).to_pylist(), start=1):
        if isinstance(v, int) and not isinstance(v, bool):
            values.append(v)
        elif isinstance(v, str) and _INTEGER.fullmatch(v):
            values.append(int(v))
        else:
            raise InputError(f"not an integer: {v!r} (write ASCII digits with an optional "
                             "sign; no spaces, '_' separators or other digit forms)",
                             file=path, column=column, row=row)
    return values


def _write_rows(table: Any, mask: list[bool], path: str) -> int:
    import pyarrow as pa

    rows = table.filter(pa.array(mask, type=pa.bool_()))
    with atomic_output(path, "wb") as fh:
        if _is_parquet(path):
            import pyarrow.parquet as pq

            pq.write_table(rows, fh)
        else:
            import pyarrow.csv as pcsv

            pcsv.write_csv(rows, fh)
    return int(rows.num_rows)


# -- shared plumbing -------------------------------------------------------------------

def _record(ledger: Any, kind: str, payload: dict[str, Any]) -> None:
    if ledger is not None:
        ledger.append(kind, payload)


def _progress() -> Callable[[str], None] | None:
    if not sys.stderr.isatty():
        return None
    return lambda msg: err.print(f"[dim]psi:[/dim] {msg}")


def _party(ids_path: str, column: str, mode: str, context: str, workers: int | None,
           value_column: str | None = None, paillier_bits: int = 3072,
           min_count: int = 1, id_type: str | None = None) -> tuple[Any, Any]:
    from privacy.psi import PsiParty

    table = _read_table(ids_path, column, value_column)
    ids = _ids(table, ids_path, column)
    values = _values(table, ids_path, value_column) if value_column else None
    party = PsiParty(ids, mode=mode, context=context, values=values, workers=workers,
                     paillier_bits=paillier_bits, min_count=min_count, id_type=id_type)
    return table, party


def _ledger_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """A result summary fit for a ledger: no output path, and never the sum (a value)."""
    return {k: v for k, v in summary.items() if k not in ("output", "sum")}


def _outcome_line(report: Any) -> str:
    """One stderr line per served session: peer, mode, outcome, sizes or the error."""
    line = f"psi: {report.peer} mode {report.mode}: {report.outcome}"
    if report.outcome == "ok":
        line += f" (peer_size {report.peer_size}"
        if report.size is not None:
            line += f", intersection_size {report.size}"
        return line + f", {report.seconds:.1f} s)"
    return line + f": {report.error}"


def _report(fmt: str, summary: dict[str, Any]) -> None:
    if fmt == "json":
        emit_json(summary)
        return
    for key, value in summary.items():
        if value is not None:
            out.print(f"{key}: {value}", markup=False)


def _parse_connect(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(f"--connect {text!r}: expected HOST:PORT")
    return host.strip("[]"), int(port)


def _emit_result(fmt: str, result: Any, table: Any, out_path: str | None,
                 extra: dict[str, Any]) -> dict[str, Any]:
    summary = {**result.summary(), **extra}
    if result.mode == "intersection":
        assert out_path is not None and result.mask is not None
        summary["rows_written"] = _write_rows(table, result.mask, out_path)
        summary["output"] = out_path
    _report(fmt, summary)
    return summary


# -- live: serve / join ----------------------------------------------------------------

@psi.command("serve")
@_ids_options
@click.option("--port", "-p", required=True, type=click.IntRange(0, 65535),
              help="TCP port to listen on (0: any free port, printed on stderr).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@_mode
@click.option("--value-column", default=None,
              help="Integer column summed over the intersection (intersection-sum).")
@click.option("--once", is_flag=True, help="Exit after one session.")
@click.option("--session-timeout", type=click.FloatRange(1, None), default=900.0,
              show_default=True,
              help="Seconds a whole session may take (raise it for very large sets).")
@click.option("--max-sessions", type=click.IntRange(1, 256), default=4, show_default=True,
              help="Sessions served at once; a connection beyond them is told 'busy'.")
@_min_count
@_context
@_id_type
@_paillier
@_workers
@_timeout
@_tls_options("server")
@_ledger
@format_option
@handle_errors
def serve_cmd(ids_path: str, column: str, port: int, host: str, mode: str,
              value_column: str | None, once: bool, session_timeout: float,
              max_sessions: int, min_count: int, context: str, id_type: str | None,
              paillier_bits: int, workers: int | None, timeout: float,
              tls_cert: str | None, tls_key: str | None, tls_ca: str | None,
              insecure_plaintext: bool, ledger_path: str | None, fmt: str) -> None:
    """Answer PSI sessions as the responder: the peer runs `covault psi join`.

    The serving party learns only the peer's set size (and, in intersection-sum, the
    count and the sum it decrypts, which it reports back to the peer). In
    intersection-sum it refuses a sum that is not within count x max|value| of its
    own column. Each session ends with one line on stderr (peer, mode, outcome) and,
    with --ledger, one psi.serve record (sizes, outcome, error; never the sum).

    Sessions run over mutual TLS: --cert/--key present this server, and only clients
    with a certificate signed by --ca are served. --insecure-plaintext runs without.
    """
    from privacy.psi import serve

    if mode == "intersection-sum" and value_column is None:
        raise InputError("--mode intersection-sum needs --value-column")
    tls = _tls_context("server", tls_cert, tls_key, tls_ca, insecure_plaintext)
    with optional_ledger(ledger_path) as ledger:
        _, party = _party(ids_path, column, mode, context, workers, value_column, paillier_bits,
                          min_count, id_type)

        def listening(h: str, p: int) -> None:
            err.print(f"psi: listening on {h}:{p} ({party.size} ids, mode {mode}, "
                      f"{'mutual TLS' if tls is not None else 'PLAINTEXT'})", markup=False)

        def done(report: Any) -> None:
            err.print(_outcome_line(report), markup=False)
            _record(ledger, "psi.serve", report.record())
            if report.outcome != "ok":
                return
            summary = {"mode": report.mode, "peer": report.peer, "own_size": report.own_size,
                       "peer_size": report.peer_size, "peer_identity": report.identity}
            if report.mode == "intersection-sum":
                summary.update(intersection_size=report.size, sum=report.sum)
            _report(fmt, summary)

        serve(party, host=host, port=port, once=once, timeout=timeout,
              session_timeout=session_timeout, max_sessions=max_sessions,
              on_listen=listening, on_session=done, progress=_progress(), tls=tls)


@psi.command("join")
@_ids_options
@click.option("--connect", "connect", required=True, help="The serving party, HOST:PORT.")
@click.option("--output", "-o", "out_path", type=click.Path(dir_okay=False), default=None,
              help="Rows of --ids whose id is shared (CSV, or Parquet by suffix); "
                   "required in intersection mode.")
@_mode
@_context
@_id_type
@_workers
@_timeout
@_tls_options("client")
@_ledger
@force_option
@format_option
@handle_errors
def join_cmd(ids_path: str, column: str, connect: str, out_path: str | None, mode: str,
             context: str, id_type: str | None, workers: int | None, timeout: float,
             tls_cert: str | None, tls_key: str | None, tls_ca: str | None,
             insecure_plaintext: bool, ledger_path: str | None, force: bool,
             fmt: str) -> None:
    """Run one PSI session against `covault psi serve`; write or print the result.

    Over mutual TLS: --cert/--key present this client, and the server's certificate
    must be signed by --ca and name the host of --connect. --insecure-plaintext runs
    without.
    """
    from privacy.psi import join

    if mode == "intersection" and out_path is None:
        raise InputError("--mode intersection needs --output FILE")
    check_outputs([("--output", out_path)],
                  [("--ids", ids_path), ("--ledger", ledger_path), ("--cert", tls_cert),
                   ("--key", tls_key), ("--ca", tls_ca)], force=force)
    host, port = _parse_connect(connect)
    tls = _tls_context("client", tls_cert, tls_key, tls_ca, insecure_plaintext)
    with optional_ledger(ledger_path) as ledger:
        table, party = _party(ids_path, column, mode, context, workers, id_type=id_type)
        result = join(party, host, port, timeout=timeout, progress=_progress(), tls=tls)
        summary = _emit_result(fmt, result, table, out_path,
                               {"peer": connect, "tls": tls is not None})
        _record(ledger, "psi.join", _ledger_summary(summary))


@psi.command("certs")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--host", "hosts", multiple=True,
              help="Name or address the server is reached at (repeat; the first is its "
                   "common name). [default: 127.0.0.1 and localhost]")
@click.option("--client", "clients", multiple=True,
              help="A joining party: writes NAME.pem and NAME.key (repeat). "
                   "[default: client]")
@click.option("--days", type=click.IntRange(1, 3650), default=30, show_default=True,
              help="Validity of the certificates.")
@click.option("--force", is_flag=True, help="Replace existing files.")
@format_option
@handle_errors
def certs_cmd(directory: str, hosts: tuple[str, ...], clients: tuple[str, ...], days: int,
              force: bool, fmt: str) -> None:
    """Write a TEST CA and certificates for `psi serve`/`psi join` into DIRECTORY.

    ca.crt (both parties' --ca), server.pem/server.key (serve's --cert/--key) and, per
    --client, NAME.pem/NAME.key (join's --cert/--key). Keys are unencrypted, mode 0600.
    In production use certificates from your PKI; give each party only its own key.
    """
    from privacy.tls import make_test_pki

    pki = make_test_pki(directory, hosts or ("127.0.0.1", "localhost"),
                        clients=clients or ("client",), days=days, force=force)
    summary: dict[str, Any] = {
        "ca": str(pki.ca_cert), "server_cert": str(pki.server_cert),
        "server_key": str(pki.server_key),
        "clients": [{"cert": str(c), "key": str(k)} for c, k in pki.clients]}
    if fmt == "json":
        emit_json(summary)
        return
    out.print(f"wrote test CA {pki.ca_cert} (its key {pki.ca_key}: keep it away from "
              "the parties)", markup=False)
    out.print(f"server: --cert {pki.server_cert} --key {pki.server_key} --ca {pki.ca_cert}",
              markup=False)
    for cert, key in pki.clients:
        out.print(f"client: --cert {cert} --key {key} --ca {pki.ca_cert}", markup=False)


# -- by files: request / respond / finish / reveal -------------------------------------

@psi.command("request")
@_ids_options
@click.option("--out-message", required=True, type=click.Path(dir_okay=False),
              help="Request message to send to the responder.")
@click.option("--state", required=True, type=click.Path(dir_okay=False),
              help="Private state for `psi finish` (holds a secret; never send it).")
@_mode
@_context
@_id_type
@_workers
@force_option
@format_option
@handle_errors
def request_cmd(ids_path: str, column: str, out_message: str, state: str, mode: str,
                context: str, id_type: str | None, workers: int | None, force: bool,
                fmt: str) -> None:
    """Step 1 (initiator): blind the ids into a request message file (the state keeps
    --id-type for `psi finish`). Refuses existing output files unless --force (a state
    file may belong to a session still in progress)."""
    from privacy.psi import write_request

    check_outputs([("--out-message", out_message), ("--state", state)],
                  [("--ids", ids_path)], force=force)
    _, party = _party(ids_path, column, mode, context, workers, id_type=id_type)
    write_request(party, out_message, state)
    _report(fmt, {"mode": mode, "own_size": party.size, "message": out_message,
                  "state": state})


@psi.command("respond")
@_ids_options
@click.option("--in-message", required=True, type=click.Path(dir_okay=False),
              help="The initiator's request message.")
@click.option("--out-message", required=True, type=click.Path(dir_okay=False),
              help="Response message to send back.")
@click.option("--state", default=None, type=click.Path(dir_okay=False),
              help="Private state for `psi reveal` (intersection-sum).")
@click.option("--value-column", default=None, help="Integer column (intersection-sum).")
@_mode
@_context
@_id_type
@_paillier
@_workers
@_ledger
@force_option
@format_option
@handle_errors
def respond_cmd(ids_path: str, column: str, in_message: str, out_message: str,
                state: str | None, value_column: str | None, mode: str, context: str,
                id_type: str | None, paillier_bits: int, workers: int | None,
                ledger_path: str | None, force: bool, fmt: str) -> None:
    """Step 2 (responder): answer a request message with a response message."""
    from privacy.psi import write_response

    if mode == "intersection-sum" and (value_column is None or state is None):
        raise InputError("--mode intersection-sum needs --value-column and --state")
    check_outputs([("--out-message", out_message), ("--state", state)],
                  [("--ids", ids_path), ("--in-message", in_message),
                   ("--ledger", ledger_path)], force=force)
    with optional_ledger(ledger_path) as ledger:
        _, party = _party(ids_path, column, mode, context, workers, value_column, paillier_bits,
                          id_type=id_type)
        write_response(party, in_message, out_message, state)
        summary = {"mode": mode, "own_size": party.size, "peer_size": party._peer_size,
                   "message": out_message}
        _record(ledger, "psi.respond", summary)
        _report(fmt, summary)


@psi.command("finish")
@_ids_options
@click.option("--state", required=True, type=click.Path(dir_okay=False),
              help="The state written by `psi request`.")
@click.option("--in-message", required=True, type=click.Path(dir_okay=False),
              help="The responder's response message.")
@click.option("--output", "-o", "out_path", type=click.Path(dir_okay=False), default=None,
              help="Shared rows (intersection mode).")
@click.option("--out-message", default=None, type=click.Path(dir_okay=False),
              help="Encrypted-sum message for `psi reveal` (intersection-sum).")
@_workers
@_ledger
@force_option
@format_option
@handle_errors
def finish_cmd(ids_path: str, column: str, state: str, in_message: str, out_path: str | None,
               out_message: str | None, workers: int | None, ledger_path: str | None,
               force: bool, fmt: str) -> None:
    """Step 3 (initiator): the result from the response (same --ids as the request)."""
    from privacy.psi import finish_files, read_state

    check_outputs([("--output", out_path), ("--out-message", out_message)],
                  [("--ids", ids_path), ("--state", state), ("--in-message", in_message),
                   ("--ledger", ledger_path)], force=force)
    mode = read_state(state).get("mode")
    if mode == "intersection" and out_path is None:
        raise InputError("this session is in intersection mode: it needs --output FILE")
    if mode == "intersection-sum" and out_message is None:
        raise InputError("this session is in intersection-sum mode: it needs --out-message")
    with optional_ledger(ledger_path) as ledger:
        table = _read_table(ids_path, column)
        result = finish_files(_ids(table, ids_path, column), state, in_message,
                              sum_message=out_message, workers=workers)
        summary = _emit_result(fmt, result, table, out_path, {})
        _record(ledger, "psi.finish", _ledger_summary(summary))


@psi.command("reveal")
@click.option("--state", required=True, type=click.Path(dir_okay=False),
              help="The state written by `psi respond`.")
@click.option("--in-message", required=True, type=click.Path(dir_okay=False),
              help="The encrypted-sum message written by `psi finish`.")
@_min_count
@_ledger
@format_option
@handle_errors
def reveal_cmd(state: str, in_message: str, min_count: int, ledger_path: str | None,
               fmt: str) -> None:
    """Step 4 (responder, intersection-sum): decrypt the sum over the intersection.

    Refuses (exit 2, nothing printed but the reason) a count above either set size or
    below --min-count, or a value that is not within count x max|value| of the
    responder's column. The ledger gets the count and the message's SHA-256, never the
    sum; a refusal is recorded too.
    """
    from privacy.psi import SumRefusedError, reveal_files

    with optional_ledger(ledger_path) as ledger:
        try:
            digest = hashlib.sha256(Path(in_message).read_bytes()).hexdigest()
        except OSError as exc:
            raise InputError(f"cannot read: {exc.strerror}", file=in_message) from exc
        try:
            result = reveal_files(state, in_message, min_count=min_count)
        except SumRefusedError as exc:
            _record(ledger, "psi.reveal", {"mode": "intersection-sum", "outcome": "refused",
                                           "error": str(exc), "message_sha256": digest})
            raise
        summary = result.summary()
        _record(ledger, "psi.reveal", {**_ledger_summary(summary), "outcome": "ok",
                                       "message_sha256": digest})
        _report(fmt, summary)


if __name__ == "__main__":  # pragma: no cover - `python -m covault.commands.psi`
    psi()
