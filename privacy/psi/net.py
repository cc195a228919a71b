"""PSI between two processes over TCP, in the framing of :mod:`privacy.psi.wire`.

The initiator (:func:`join`) connects to the responder (:func:`serve`)::

    initiator                                 responder
    HELLO {protocol, mode, context, size}  ->
                                           <- ACCEPT {.., size, record, [paillier_n]}
    INITIATOR_CHUNK* END  (H(a)^alpha)     ->     (both compute their own sets at once)
                                           <- RESPONDER_CHUNK* END  (H(b)^beta [, Enc(v)])
          (initiator raises b's points to alpha while the responder computes the reply)
                                           <- REPLY_CHUNK* END  ((H(a)^alpha)^beta)
    SUM {count, ciphertext}                ->     (intersection-sum only)
                                           <- SUM_RESULT {sum, count}

Each side reads on a background thread while it sends, so two large streams in flight
at once never deadlock. Every socket operation has a timeout; either side sends an
``ERROR`` frame before closing when it rejects the session.

:func:`serve` answers up to ``max_sessions`` sessions at once, each on its own thread
with its own :meth:`PsiParty.fresh` party and an overall deadline (``session_timeout``)
besides the per-operation ``timeout``. A session that fails in any way - a malformed
or hostile message, an exception from a library, the deadline - ends that session
only: the peer gets an ``ERROR`` frame and the server goes on. Every session ends in one
:class:`ServeReport` (``outcome`` ``ok``, ``refused``, ``failed``, ``deadline``,
``error`` or ``busy``) handed to ``on_session`` on the serving thread.

With ``tls`` (an :class:`ssl.SSLContext` from :func:`privacy.tls.server_context` and
:func:`privacy.tls.client_context`) every session runs over mutually authenticated TLS
1.2+: the server requires a client certificate signed by its CA, the client checks the
server's certificate and host name. The server's handshake runs on the session's thread,
under its deadline; a failed one ends that session (outcome ``failed``), and the client
certificate's common name is reported (``ServeReport.identity``).

Warnings
--------
Without ``tls`` the channel is neither encrypted nor authenticated (the command line
refuses that unless ``--insecure-plaintext`` is given). With TLS, a busy server closes a
connection beyond ``max_sessions`` without an ``ERROR`` frame. Anyone who can connect
(with TLS: anyone holding a certificate from the CA) can hold ``max_sessions`` sessions
open until their deadline. Semi-honest security only (see :mod:`privacy.psi`; what a
deviating joiner can still learn in ``intersection-sum`` is in :mod:`privacy.psi.sums`).
"""

from __future__ import annotations

import contextlib
import queue
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from privacy.errors import PSIError
from privacy.psi.group import POINT_BYTES
from privacy.psi.party import PsiParty, PsiResult
from privacy.psi.sums import SumRefusedError, sum_message_digest
from privacy.psi.wire import (
    Frame,
    FrameReader,
    PeerClosedError,
    clean_text,
    encode_json,
    iter_stream_frames,
)

__all__ = [
    "serve",
    "join",
    "ServeReport",
    "DEFAULT_TIMEOUT",
    "DEFAULT_SESSION_TIMEOUT",
    "DEFAULT_MAX_SESSIONS",
    "PER_FRAME",
]

DEFAULT_TIMEOUT = 600.0
DEFAULT_SESSION_TIMEOUT = 900.0
DEFAULT_MAX_SESSIONS = 4
_POLL = 0.2  # seconds between checks of ``stop`` and finished sessions
PER_FRAME = 16384  # records per chunk frame
Progress = Callable[[str], None]


@dataclass(frozen=True)
class ServeReport:
    """How one session ended, and what the responder disclosed and learned in it.

    Attributes
    ----------
    peer:
        ``"peer HOST:PORT"``.
    outcome:
        ``"ok"``; ``"refused"`` (an ``intersection-sum`` SUM this party would not
        decrypt or reveal: see :func:`privacy.psi.sums.decrypt_sum`); ``"failed"`` (the
        peer broke the protocol, aborted, went silent or away); ``"deadline"`` (the
        session ran past ``session_timeout``); ``"error"`` (an unexpected exception,
        the session was dropped and the server went on); ``"busy"`` (``max_sessions``
        sessions were already running).
    error:
        Why, for any outcome but ``ok`` (control characters escaped; never a value).
    peer_size, size, sum:
        The peer's announced set size once known; the intersection count and the
        decrypted sum (``intersection-sum``, ``ok`` only).
    claimed_count, sum_sha256:
        ``intersection-sum``: the count the peer's SUM message claimed and the SHA-256
        of its ciphertext (:func:`privacy.psi.sums.sum_message_digest`), refused or not.
    identity:
        With TLS, the common name of the peer's verified client certificate.
    """

    peer: str
    mode: str
    own_size: int
    peer_size: int | None
    size: int | None = None
    sum: int | None = None
    outcome: str = "ok"
    error: str | None = None
    seconds: float = 0.0
    claimed_count: int | None = None
    sum_sha256: str | None = None
    identity: str | None = None

    def record(self) -> dict[str, Any]:
        """The session as a ledger record: sizes, outcome, error, digest - never the sum
        or any value."""
        out: dict[str, Any] = {"peer": self.peer, "mode": self.mode, "outcome": self.outcome,
                               "own_size": self.own_size, "peer_size": self.peer_size,
                               "seconds": round(self.seconds, 3)}
        if self.mode == "intersection-sum":
            out.update(intersection_size=self.size, claimed_count=self.claimed_count,
                       sum_sha256=self.sum_sha256)
        if self.identity is not None:
            out["identity"] = self.identity
        if self.error is not None:
            out["error"] = self.error
        return out


def _send(sock: socket.socket, data: bytes, name: str) -> None:
    try:
        sock.sendall(data)
    except TimeoutError as exc:
        raise PSIError(f"{name}: timed out sending") from exc
    except OSError as exc:
        raise PSIError(f"{name}: connection lost while sending: {exc}") from exc


def _send_stream(sock: socket.socket, kind: Frame, data: bytes, record: int, name: str) -> None:
    for frame in iter_stream_frames(kind, data, record, PER_FRAME):
        _send(sock, frame, name)


def _abort(sock: socket.socket, message: str) -> None:
    with contextlib.suppress(OSError, PSIError):
        sock.sendall(encode_json(Frame.ERROR, {"message": message}))


class _Background:
    """Run ``fn`` on a thread; :meth:`result` re-raises its exception."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self._value: Any = None
        self._error: BaseException | None = None

        def run() -> None:
            try:
                self._value = fn()
            except BaseException as exc:  # noqa: BLE001 - re-raised in result()
                self._error = exc

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def result(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def _session(conn: socket.socket, party: PsiParty, name: str, say: Progress,
             seen: dict[str, Any]) -> ServeReport:
    reader = FrameReader(conn, name)
    hello = reader.expect_json(Frame.HELLO)
    accept = party.accept(hello)
    peer_size = int(hello["size"])
    seen["peer_size"] = peer_size
    _send(conn, encode_json(Frame.ACCEPT, accept), name)
    incoming = _Background(
        lambda: reader.read_stream(Frame.INITIATOR_CHUNK, POINT_BYTES, limit=peer_size)
    )
    say(f"{name}: blinding {party.size} own ids")
    _send_stream(conn, Frame.RESPONDER_CHUNK, party.records(), int(accept["record"]), name)
    points: bytes = incoming.result()
    say(f"{name}: blinding {peer_size} peer ids")
    _send_stream(conn, Frame.REPLY_CHUNK, party.reply(points), POINT_BYTES, name)
    if party.mode != "intersection-sum":
        return ServeReport(name, party.mode, party.size, peer_size)
    message = reader.expect_json(Frame.SUM)
    count = message.get("count")
    if isinstance(count, int) and not isinstance(count, bool):
        seen["claimed_count"] = count
    seen["sum_sha256"] = digest = sum_message_digest(message)
    result = party.reveal(message)
    _send(conn, encode_json(Frame.SUM_RESULT, {"sum": result.sum, "count": result.size}), name)
    return ServeReport(name, party.mode, party.size, peer_size, result.size, result.sum,
                       claimed_count=result.size, sum_sha256=digest)


def _tls_accept(conn: socket.socket, tls: ssl.SSLContext, name: str,
                live: list[socket.socket]) -> tuple[ssl.SSLSocket, str | None]:
    """The server side of the TLS handshake on ``conn`` (``live[0]`` becomes the TLS
    socket, for the deadline); the client certificate's common name."""
    from privacy.tls import peer_name

    try:
        wrapped = tls.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        live[0] = wrapped
        wrapped.do_handshake()
    except (ssl.SSLError, OSError) as exc:
        raise PSIError(f"{name}: TLS handshake failed: {_tls_reason(exc)}") from exc
    return wrapped, peer_name(wrapped)


def _tls_reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason) if reason else (str(exc) or type(exc).__name__)


def _run_session(conn: socket.socket, name: str, party: PsiParty, *, timeout: float,
                 session_timeout: float, say: Progress,
                 tls: ssl.SSLContext | None = None) -> ServeReport:
    """One whole session on ``conn``; never raises: every ending is a report."""
    start = time.monotonic()
    expired = threading.Event()
    seen: dict[str, Any] = {}
    live = [conn]  # the socket to shut down at the deadline (the TLS one once wrapped)

    def expire() -> None:
        expired.set()
        with contextlib.suppress(OSError, ValueError):
            live[0].shutdown(socket.SHUT_RDWR)  # wakes the session's blocked reads/writes

    timer = threading.Timer(session_timeout, expire)
    timer.daemon = True
    timer.start()
    outcome, error, tell = "ok", None, None
    try:
        conn.settimeout(timeout)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls is not None:
            conn, seen["identity"] = _tls_accept(conn, tls, name, live)
        report = _session(conn, party, name, say, seen)
        report = replace(report, identity=seen.get("identity"))
    except Exception as exc:  # noqa: BLE001 - a session never takes the server down
        if expired.is_set():
            outcome = "deadline"
            error = f"{name}: session deadline of {session_timeout:g} s exceeded"
        elif isinstance(exc, SumRefusedError):
            outcome, error = "refused", str(exc)
        elif isinstance(exc, PSIError):
            outcome, error = "failed", str(exc)
        else:
            outcome = "error"
            error = f"{name}: internal error: {type(exc).__name__}: {exc}"
            tell = f"internal error ({type(exc).__name__}); session dropped"
        if tls is None or "identity" in seen:  # never plaintext into a TLS handshake
            _abort(live[0], tell or error)
        report = ServeReport(name, party.mode, party.size, seen.get("peer_size"),
                             outcome=outcome, error=clean_text(error),
                             claimed_count=seen.get("claimed_count"),
                             sum_sha256=seen.get("sum_sha256"),
                             identity=seen.get("identity"))
    finally:
        timer.cancel()
        with contextlib.suppress(OSError):
            live[0].close()
    return replace(report, seconds=time.monotonic() - start)


def serve(
    party: PsiParty,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    once: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    session_timeout: float = DEFAULT_SESSION_TIMEOUT,
    max_sessions: int = DEFAULT_MAX_SESSIONS,
    on_listen: Callable[[str, int], None] | None = None,
    on_session: Callable[[ServeReport], None] | None = None,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
    tls: ssl.SSLContext | None = None,
) -> list[ServeReport]:
    """Answer PSI sessions as the responder on ``host:port``.

    Parameters
    ----------
    party:
        The responder's party; every session runs on its own ``party.fresh()``.
    port:
        0 picks a free port (reported through ``on_listen(host, port)``).
    once:
        Serve one session on this thread and return (default); raise
        :class:`PSIError` if it did not end ``ok``. Otherwise serve until ``stop`` is
        set (or the process is interrupted), up to ``max_sessions`` sessions at once on
        their own threads; a connection beyond that gets an ``ERROR`` frame
        ("busy") and is closed.
    timeout:
        Seconds any single socket read or write may wait (the peer's computation
        included).
    session_timeout:
        Seconds a whole session may take; then its connection is shut down and the
        session ends with outcome ``deadline``.
    on_session:
        Called on the serving thread with each session's :class:`ServeReport`,
        whatever its outcome (a ledger may be written from it).
    stop:
        Set it to stop accepting; running sessions are finished (within their
        deadline) and reported before :func:`serve` returns.
    tls:
        A server context (:func:`privacy.tls.server_context`): mutual TLS for every
        session. ``None`` is plaintext, unauthenticated.

    Returns
    -------
    list of ServeReport
        One per session, in the order they ended.

    Raises
    ------
    PSIError
        With ``once``, when the session did not end ``ok``; or on bad arguments.
    """
    if isinstance(max_sessions, bool) or not isinstance(max_sessions, int) or max_sessions < 1:
        raise PSIError(f"max_sessions must be a positive integer, not {max_sessions!r}")
    if not session_timeout > 0 or not timeout > 0:
        raise PSIError("timeout and session_timeout must be positive")
    say = progress or (lambda _msg: None)
    reports: list[ServeReport] = []
    finished: queue.SimpleQueue[ServeReport] = queue.SimpleQueue()
    slots = threading.BoundedSemaphore(max_sessions)
    workers: list[threading.Thread] = []

    def deliver() -> None:
        while True:
            try:
                report = finished.get_nowait()
            except queue.Empty:
                return
            reports.append(report)
            if on_session is not None:
                on_session(report)

    def work(conn: socket.socket, name: str, session_party: PsiParty) -> None:
        try:
            finished.put(_run_session(conn, name, session_party, timeout=timeout,
                                      session_timeout=session_timeout, say=say, tls=tls))
        finally:
            slots.release()

    with socket.create_server((host, port), backlog=max(16, 2 * max_sessions)) as server:
        server.settimeout(_POLL)
        bound = server.getsockname()
        if on_listen is not None:
            on_listen(str(bound[0]), int(bound[1]))
        try:
            while stop is None or not stop.is_set():
                deliver()
                try:
                    conn, addr = server.accept()
                except TimeoutError:
                    continue
                name = f"peer {addr[0]}:{addr[1]}"
                if once:
                    report = _run_session(conn, name, party.fresh(), timeout=timeout,
                                          session_timeout=session_timeout, say=say, tls=tls)
                    finished.put(report)
                    deliver()
                    if report.outcome != "ok":
                        raise PSIError(report.error or f"{name}: session failed")
                    return reports
                if not slots.acquire(blocking=False):
                    if tls is None:  # no handshake on the accepting thread: just close
                        _abort(conn, f"server busy ({max_sessions} sessions running); "
                                     "try again later")
                    with contextlib.suppress(OSError):
                        conn.close()
                    finished.put(ServeReport(name, party.mode, party.size, None,
                                             outcome="busy",
                                             error=f"{max_sessions} sessions already running"))
                    continue
                worker = threading.Thread(target=work, args=(conn, name, party.fresh()),
                                          name=f"psi-session {name}", daemon=True)
                workers = [w for w in workers if w.is_alive()]
                workers.append(worker)
                worker.start()
            for worker in workers:
                worker.join()
        finally:
            deliver()
    return reports


def _connect(host: str, port: int, connect_timeout: float) -> socket.socket:
    deadline = time.monotonic() + connect_timeout
    while True:
        try:
            return socket.create_connection((host, port), timeout=connect_timeout)
        except (ConnectionRefusedError, TimeoutError) as exc:
            if time.monotonic() >= deadline:
                raise PSIError(f"cannot connect to {host}:{port}: {exc}") from exc
            time.sleep(0.2)
        except OSError as exc:
            raise PSIError(f"cannot connect to {host}:{port}: {exc}") from exc


def _tls_connect(conn: socket.socket, tls: ssl.SSLContext, server_hostname: str,
                 name: str) -> ssl.SSLSocket:
    try:
        return tls.wrap_socket(conn, server_hostname=server_hostname)
    except (ssl.SSLError, OSError) as exc:
        with contextlib.suppress(OSError):
            conn.close()
        raise PSIError(f"{name}: TLS handshake failed: {_tls_reason(exc)}") from exc


def join(
    party: PsiParty,
    host: str,
    port: int,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    connect_timeout: float = 30.0,
    progress: Progress | None = None,
    tls: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
) -> PsiResult:
    """Run one PSI session as the initiator against :func:`serve` at ``host:port``.

    Retries a refused connection for up to ``connect_timeout`` seconds (the responder
    may still be starting). In ``intersection-sum`` the result's ``sum`` is the value
    the responder decrypted and reported. With ``tls`` (a client context,
    :func:`privacy.tls.client_context`) the session runs over mutual TLS and the
    server's certificate must name ``server_hostname`` (default ``host``).

    Raises
    ------
    PSIError
        On connection failure, a failed TLS handshake (or a server refusing this
        client's certificate), timeout, a malformed or rejected message.
    """
    say = progress or (lambda _msg: None)
    name = f"peer {host}:{port}"
    conn = _connect(host, port, connect_timeout)
    conn.settimeout(timeout)
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if tls is not None:
        conn = _tls_connect(conn, tls, server_hostname or host, name)
    with conn:
        reader = FrameReader(conn, name)
        accept = None
        try:
            _send(conn, encode_json(Frame.HELLO, party.hello()), name)
            accept = reader.expect_json(Frame.ACCEPT)
            peer_size = party._check_peer(accept, "accept")
            record = party.record_size(accept)

            incoming = _Background(
                lambda: reader.read_stream(Frame.RESPONDER_CHUNK, record, limit=peer_size)
            )
            say(f"blinding {party.size} own ids")
            _send_stream(conn, Frame.INITIATOR_CHUNK, party.points(), POINT_BYTES, name)
            records: bytes = incoming.result()
            pending = _Background(
                lambda: reader.read_stream(Frame.REPLY_CHUNK, POINT_BYTES, limit=party.size)
            )
            say(f"blinding {peer_size} peer ids")
            party.absorb(accept, records)
            result = party.conclude(pending.result())
            if party.mode != "intersection-sum":
                return result
            _send(conn, encode_json(Frame.SUM, party.encrypted_sum()), name)
            done = reader.expect_json(Frame.SUM_RESULT)
        except PSIError as exc:
            _abort(conn, str(exc))
            closed = isinstance(exc, PeerClosedError) or isinstance(exc.__cause__, OSError)
            if tls is not None and accept is None and closed:
                # TLS 1.3: the server checks the client certificate after the handshake
                raise PSIError(
                    f"{name}: the server ended the TLS session before answering "
                    f"({_tls_reason(exc.__cause__ or exc)}): does it trust this client's "
                    "certificate (signed by its --ca)?") from exc
            raise
    total, count = done.get("sum"), done.get("count")
    if not isinstance(total, int) or count != result.size:
        raise PSIError(f"{name}: malformed SUM_RESULT {done!r}")
    return PsiResult(result.mode, result.size, result.own_size, result.peer_size, sum=total)
