"""PSI through message files, for parties that exchange files instead of sockets.

The flow, with the frames of :mod:`privacy.psi.wire` written to files::

    initiator: request  -> request.msg (HELLO, INITIATOR stream) + initiator.state
    responder: respond  request.msg -> response.msg (ACCEPT, RESPONDER and REPLY streams)
                                       [+ responder.state in intersection-sum]
    initiator: finish   initiator.state + response.msg -> result
                                       [+ sum.msg (SUM) in intersection-sum]
    responder: reveal   responder.state + sum.msg -> the sum       (intersection-sum)

State files hold the party's secret scalar (and the Paillier private key): they are
written with mode 0600 and must never be sent to the peer. Every output is atomic.

Every file (messages and state) ends with a ``DIGEST`` frame, the SHA-256 of all its
bytes before it (:mod:`privacy.psi.wire`). Readers check it before anything read from
the file is used for a result, so a truncated or corrupted file is refused with an error
naming it, and files without a digest (older covault) are refused too.

Warnings
--------
Each request carries a random session id that the response (and the responder's state)
echoes and the sum message repeats; ``finish`` and ``reveal`` refuse a file that
answers another session. A state file resumes exactly one session: running ``finish``
twice against different responses, or reusing a request for several responders, links
the sessions.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from privacy.atomic import atomic_output
from privacy.errors import PSIError
from privacy.psi.group import POINT_BYTES
from privacy.psi.party import PsiParty, PsiResult
from privacy.psi.sums import decrypt_sum, import_private
from privacy.psi.wire import (
    Frame,
    FrameReader,
    decode_json,
    encode_frame,
    encode_json,
    iter_stream_frames,
)

__all__ = [
    "write_request",
    "write_response",
    "finish_files",
    "reveal_files",
    "read_state",
]

PER_FRAME = 16384
Path = str | os.PathLike[str]


def _end(reader: FrameReader) -> None:
    reader.expect_digest()


@contextlib.contextmanager
def _message(path: Path, *, private: bool = False) -> Iterator[Callable[[bytes], None]]:
    """Write frames to ``path`` atomically (mode 0600 if ``private``) and close the file
    with their ``DIGEST`` frame."""
    digest = hashlib.sha256()
    with atomic_output(path, "wb") as fh:
        if private:
            os.fchmod(fh.fileno(), 0o600)

        def put(frame: bytes) -> None:
            digest.update(frame)
            fh.write(frame)

        yield put
        fh.write(encode_frame(Frame.DIGEST, digest.digest()))


def _reader(fh: Any, path: Path) -> FrameReader:
    return FrameReader(fh, str(path), digest=True)


def _write_state(path: Path, state: dict[str, Any]) -> None:
    with _message(path, private=True) as put:
        put(encode_json(Frame.STATE, state))


def read_state(path: Path) -> dict[str, Any]:
    """Read a state file written by :func:`write_request` or :func:`write_response`."""
    with open(path, "rb") as fh:
        reader = _reader(fh, path)
        state = reader.expect_json(Frame.STATE)
        _end(reader)
    return state


def write_request(party: PsiParty, message: Path, state: Path) -> None:
    """Initiator, step 1: write the request message and the private state file."""
    points = party.points()
    _write_state(state, party.export_state())
    with _message(message) as put:
        put(encode_json(Frame.HELLO, party.hello()))
        for frame in iter_stream_frames(Frame.INITIATOR_CHUNK, points, POINT_BYTES, PER_FRAME):
            put(frame)


def write_response(
    party: PsiParty, request: Path, message: Path, state: Path | None = None
) -> None:
    """Responder: read ``request``; write the response (and, in ``intersection-sum``,
    the private state needed by :func:`reveal_files`)."""
    if party.mode == "intersection-sum" and state is None:
        raise PSIError("intersection-sum: the responder needs a state file for the reveal step")
    with open(request, "rb") as fh:
        reader = _reader(fh, request)
        hello = reader.expect_json(Frame.HELLO)
        accept = party.accept(hello)
        points = reader.read_stream(Frame.INITIATOR_CHUNK, POINT_BYTES, limit=hello["size"])
        _end(reader)
    records = party.records()
    reply = party.reply(points)
    if state is not None:
        _write_state(state, party.export_state())
    with _message(message) as put:
        put(encode_json(Frame.ACCEPT, accept))
        record = int(accept["record"])
        for frame in iter_stream_frames(Frame.RESPONDER_CHUNK, records, record, PER_FRAME):
            put(frame)
        for frame in iter_stream_frames(Frame.REPLY_CHUNK, reply, POINT_BYTES, PER_FRAME):
            put(frame)


def finish_files(
    ids: Iterable[str | None],
    state: Path,
    response: Path,
    *,
    sum_message: Path | None = None,
    **kwargs: Any,
) -> PsiResult:
    """Initiator, step 2: the result from the state, the same ids and the response.

    In ``intersection-sum`` the encrypted sum is written to ``sum_message`` for the
    responder's :func:`reveal_files`; the returned result has the count only.
    """
    party = PsiParty.from_state(ids, read_state(state), **kwargs)
    if party.mode == "intersection-sum" and sum_message is None:
        raise PSIError("intersection-sum: finish needs an output file for the SUM message")
    with open(response, "rb") as fh:
        reader = _reader(fh, response)
        accept = reader.expect_json(Frame.ACCEPT)
        peer_size = party._check_peer(accept, f"{response}: accept")
        party.check_session(accept, str(response))
        records = reader.read_stream(
            Frame.RESPONDER_CHUNK, party.record_size(accept), limit=peer_size
        )
        reply = reader.read_stream(Frame.REPLY_CHUNK, POINT_BYTES, limit=party.size)
        _end(reader)
    result = party.finish(accept, records, reply)
    if sum_message is not None and party.mode == "intersection-sum":
        with _message(sum_message) as put:
            put(encode_json(Frame.SUM, party.encrypted_sum()))
    return result


def _state_int(data: dict[str, Any], key: str, state: Path) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PSIError(f"{state}: malformed or missing {key!r} in the responder state "
                       "(written by an older covault? run `psi respond` again)")
    return value


def reveal_files(state: Path, sum_message: Path, *, min_count: int = 1) -> PsiResult:
    """Responder, last step of ``intersection-sum``: decrypt the sum in ``sum_message``.

    Refuses (:class:`PSIError`, nothing decrypted is returned) a count above either set
    size or below ``min_count``, and a plaintext beyond ``count * max|value|`` of the
    responder's column (recorded in the state file by :func:`write_response`).
    """
    data = read_state(state)
    if data.get("mode") != "intersection-sum" or "paillier" not in data:
        raise PSIError(f"{state}: not the state of an intersection-sum responder")
    own, peer = _state_int(data, "size", state), _state_int(data, "peer_size", state)
    max_abs = _state_int(data, "max_abs", state)
    with open(sum_message, "rb") as fh:
        reader = _reader(fh, sum_message)
        message = decode_json(Frame.SUM, reader.expect(Frame.SUM))
        _end(reader)
    session, got = data.get("session"), message.get("session")
    if session is not None and got is not None and got != session:  # none: older finish
        raise PSIError(f"{sum_message}: this sum message answers another response (its "
                       "session id differs from the one in --state)")
    total, count = decrypt_sum(import_private(data["paillier"]), message,
                               max_count=min(own, peer), max_abs=max_abs, min_count=min_count)
    return PsiResult("intersection-sum", count, own, peer, sum=total)
