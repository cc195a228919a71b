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

Warnings
--------
The channel is neither encrypted nor authenticated: run it inside a TLS tunnel or VPN
between known hosts. Semi-honest security only (see :mod:`privacy.psi`).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from privacy.errors import PSIError
from privacy.psi.group import POINT_BYTES
from privacy.psi.party import PsiParty, PsiResult
from privacy.psi.wire import Frame, FrameReader, encode_json, iter_stream_frames

__all__ = ["serve", "join", "ServeReport", "DEFAULT_TIMEOUT", "PER_FRAME"]

DEFAULT_TIMEOUT = 600.0
PER_FRAME = 16384  # records per chunk frame
Progress = Callable[[str], None]


@dataclass(frozen=True)
class ServeReport:
    """What the responder disclosed and learned in one session."""

    peer: str
    mode: str
    own_size: int
    peer_size: int
    size: int | None = None
    sum: int | None = None


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


def _session(conn: socket.socket, party: PsiParty, name: str, say: Progress) -> ServeReport:
    reader = FrameReader(conn, name)
    hello = reader.expect_json(Frame.HELLO)
    accept = party.accept(hello)
    _send(conn, encode_json(Frame.ACCEPT, accept), name)
    peer_size = hello["size"]
    incoming = _Background(
        lambda: reader.read_stream(Frame.INITIATOR_CHUNK, POINT_BYTES, limit=peer_size)
    )
    say(f"blinding {party.size} own ids")
    _send_stream(conn, Frame.RESPONDER_CHUNK, party.records(), int(accept["record"]), name)
    points: bytes = incoming.result()
    say(f"blinding {peer_size} peer ids")
    _send_stream(conn, Frame.REPLY_CHUNK, party.reply(points), POINT_BYTES, name)
    if party.mode != "intersection-sum":
        return ServeReport(name, party.mode, party.size, peer_size)
    result = party.reveal(reader.expect_json(Frame.SUM))
    _send(conn, encode_json(Frame.SUM_RESULT, {"sum": result.sum, "count": result.size}), name)
    return ServeReport(name, party.mode, party.size, peer_size, result.size, result.sum)


def serve(
    party: PsiParty,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    once: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    on_listen: Callable[[str, int], None] | None = None,
    on_session: Callable[[ServeReport], None] | None = None,
    progress: Progress | None = None,
) -> list[ServeReport]:
    """Answer PSI sessions as the responder on ``host:port``.

    Parameters
    ----------
    party:
        The responder's party; each session after the first uses ``party.fresh()``.
    port:
        0 picks a free port (reported through ``on_listen(host, port)``).
    once:
        Stop after one session (default). Otherwise serve until interrupted; a failed
        session is reported through ``progress`` and the next one is awaited.
    timeout:
        Seconds any single socket read or write may wait (the peer's computation
        included).

    Returns
    -------
    list of ServeReport
        One per completed session.
    """
    say = progress or (lambda _msg: None)
    reports: list[ServeReport] = []
    with socket.create_server((host, port)) as server:
        bound = server.getsockname()
        if on_listen is not None:
            on_listen(str(bound[0]), int(bound[1]))
        current = party
        while True:
            conn, addr = server.accept()
            name = f"peer {addr[0]}:{addr[1]}"
            with conn:
                conn.settimeout(timeout)
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                try:
                    report = _session(conn, current, name, say)
                except PSIError as exc:
                    _abort(conn, str(exc))
                    if once:
                        raise
                    say(f"session with {name} failed: {exc}")
                    current = current.fresh()
                    continue
            reports.append(report)
            if on_session is not None:
                on_session(report)
            if once:
                return reports
            current = current.fresh()


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


def join(
    party: PsiParty,
    host: str,
    port: int,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    connect_timeout: float = 30.0,
    progress: Progress | None = None,
) -> PsiResult:
    """Run one PSI session as the initiator against :func:`serve` at ``host:port``.

    Retries a refused connection for up to ``connect_timeout`` seconds (the responder
    may still be starting). In ``intersection-sum`` the result's ``sum`` is the value
    the responder decrypted and reported.

    Raises
    ------
    PSIError
        On connection failure, timeout, a malformed or rejected message.
    """
    say = progress or (lambda _msg: None)
    name = f"peer {host}:{port}"
    with _connect(host, port, connect_timeout) as conn:
        conn.settimeout(timeout)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = FrameReader(conn, name)
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
            raise
    total, count = done.get("sum"), done.get("count")
    if not isinstance(total, int) or count != result.size:
        raise PSIError(f"{name}: malformed SUM_RESULT {done!r}")
    return PsiResult(result.mode, result.size, result.own_size, result.peer_size, sum=total)
