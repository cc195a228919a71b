"""Message framing for private set intersection: one format for sockets and files.

Every message is a sequence of frames. A frame is a 12-byte header followed by a payload::

    magic    4 bytes  b"CVPS"
    version  1 byte   FRAME_VERSION (1)
    type     1 byte   a :class:`Frame` value
    flags    2 bytes  reserved, must be 0
    length   4 bytes  payload length, big-endian, at most ``MAX_PAYLOAD``

Large sets are streamed as many ``*_CHUNK`` frames followed by one ``END`` frame that
carries the stream's frame type and its element count, so a million ids never need one
giant frame and a truncated stream is detected. Control messages (``HELLO``, ``ACCEPT``,
``SUM``, ``ERROR``) carry UTF-8 JSON objects.

A message file is the same frames written one after another, closed by one ``DIGEST``
frame: the SHA-256 of every byte before it (:func:`encode_digest`), recomputed as the
file is read (``FrameReader(..., digest=True)``, :meth:`FrameReader.expect_digest`), so a
truncated or corrupted file is refused naming it. Like the HE files' trailer it detects
accidents, not forgery: whoever can rewrite a file can rewrite its digest.
:class:`FrameReader` reads either a socket or a binary file.
"""

from __future__ import annotations

import enum
import hashlib
import json
import socket
import struct
import unicodedata
from collections.abc import Iterator
from typing import IO, Any

from privacy.errors import PSIError


class PeerClosedError(PSIError):
    """The peer closed the connection between frames (nothing of a frame arrived)."""

__all__ = [
    "MAGIC",
    "FRAME_VERSION",
    "MAX_PAYLOAD",
    "MAX_JSON",
    "Frame",
    "encode_frame",
    "encode_json",
    "encode_end",
    "decode_json",
    "decode_end",
    "encode_digest",
    "iter_stream_frames",
    "FrameReader",
    "clean_text",
]

MAGIC = b"CVPS"
FRAME_VERSION = 1
MAX_PAYLOAD = 16 * 1024 * 1024
MAX_JSON = 64 * 1024
MAX_PEER_TEXT = 500
_HEADER = struct.Struct(">4sBBHI")
_END = struct.Struct(">BQ")


class Frame(enum.IntEnum):
    """Frame types. ``*_CHUNK`` frames hold fixed-size records; the rest hold JSON."""

    HELLO = 1  # initiator -> responder: protocol, mode, context, set size
    ACCEPT = 2  # responder -> initiator: mode, set size, record size, Paillier modulus
    INITIATOR_CHUNK = 3  # H(a)^alpha points
    RESPONDER_CHUNK = 4  # H(b)^beta points (+ Paillier ciphertexts in intersection-sum)
    REPLY_CHUNK = 5  # (H(a)^alpha)^beta points
    END = 6  # end of a chunk stream: stream type (1 byte) + element count (8 bytes)
    SUM = 7  # initiator -> responder: re-randomised encrypted sum and count
    SUM_RESULT = 8  # responder -> initiator: the decrypted sum and count
    ERROR = 9  # either side: the peer aborted, with a message
    STATE = 10  # local state file of the file-based flow (never sent to the peer)
    DIGEST = 11  # last frame of a message file: SHA-256 of all the bytes before it


_CHUNKS = {Frame.INITIATOR_CHUNK, Frame.RESPONDER_CHUNK, Frame.REPLY_CHUNK}


def clean_text(text: object, limit: int = MAX_PEER_TEXT) -> str:
    """``text`` safe to print or log: control, format and private-use characters and
    line/paragraph separators escaped (``\\x1b``, ``\\u202e``), cut to ``limit``
    characters. Use it on anything a peer wrote before it reaches a terminal or a log.
    """
    raw = text if isinstance(text, str) else repr(text)
    out: list[str] = []
    size = 0
    for ch in raw:
        cat = unicodedata.category(ch)
        piece = ch.encode("unicode_escape").decode("ascii") if (
            cat[0] == "C" or cat in ("Zl", "Zp")) else ch
        if size + len(piece) > limit:
            out.append("...")
            break
        out.append(piece)
        size += len(piece)
    return "".join(out)


def encode_frame(kind: Frame, payload: bytes) -> bytes:
    """Return one frame: header and payload.

    Raises
    ------
    PSIError
        When the payload is larger than ``MAX_PAYLOAD``.
    """
    if len(payload) > MAX_PAYLOAD:
        raise PSIError(f"frame payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    return _HEADER.pack(MAGIC, FRAME_VERSION, int(kind), 0, len(payload)) + payload


def encode_json(kind: Frame, obj: dict[str, Any]) -> bytes:
    """Return a control frame holding ``obj`` as compact UTF-8 JSON."""
    data = json.dumps(obj, separators=(",", ":"), sort_keys=True).encode("utf-8")
    if len(data) > MAX_JSON:
        raise PSIError(f"control message of {len(data)} bytes exceeds {MAX_JSON}")
    return encode_frame(kind, data)


def encode_end(stream: Frame, count: int) -> bytes:
    """Return the ``END`` frame closing a chunk stream of ``count`` elements."""
    return encode_frame(Frame.END, _END.pack(int(stream), count))


def encode_digest(data: bytes) -> bytes:
    """The ``DIGEST`` frame closing a message file whose frames before it are ``data``."""
    return encode_frame(Frame.DIGEST, hashlib.sha256(data).digest())


def decode_json(kind: Frame, payload: bytes) -> dict[str, Any]:
    """Parse a control frame's JSON object, or raise :class:`PSIError`."""
    if len(payload) > MAX_JSON:
        raise PSIError(f"malformed {kind.name} frame: {len(payload)} bytes exceeds {MAX_JSON}")
    try:
        obj = json.loads(payload.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # bad UTF-8 or JSON, an int too long
        raise PSIError(f"malformed {kind.name} frame: not a UTF-8 JSON object") from exc
    if not isinstance(obj, dict):
        raise PSIError(f"malformed {kind.name} frame: not a JSON object")
    return obj


def decode_end(payload: bytes) -> tuple[Frame, int]:
    """Parse an ``END`` frame into (stream type, element count)."""
    if len(payload) != _END.size:
        raise PSIError(f"malformed END frame: {len(payload)} bytes, expected {_END.size}")
    kind, count = _END.unpack(payload)
    try:
        stream = Frame(kind)
    except ValueError as exc:
        raise PSIError(f"malformed END frame: unknown stream type {kind}") from exc
    if stream not in _CHUNKS:
        raise PSIError(f"malformed END frame: {stream.name} is not a chunk stream")
    return stream, count


def iter_stream_frames(kind: Frame, data: bytes, record: int, per_frame: int) -> Iterator[bytes]:
    """Split ``data`` (fixed-size records) into chunk frames and the closing ``END``."""
    step = max(1, min(per_frame, MAX_PAYLOAD // record)) * record
    for start in range(0, len(data), step):
        yield encode_frame(kind, data[start : start + step])
    yield encode_end(kind, len(data) // record)


class FrameReader:
    """Read frames from a connected socket or a binary file.

    Parameters
    ----------
    source:
        A socket (its timeout applies to every read) or a file opened in binary mode.
    name:
        How errors name the source (``"peer 127.0.0.1:9000"`` or a file name).
    max_payload:
        Frames announcing a larger payload are rejected before it is read.
    digest:
        Hash every byte read (SHA-256), for :meth:`expect_digest` at the end of a file.
    """

    def __init__(
        self, source: socket.socket | IO[bytes], name: str, *, max_payload: int = MAX_PAYLOAD,
        digest: bool = False,
    ) -> None:
        self._source = source
        self.name = name
        self.max_payload = max_payload
        self._hash = hashlib.sha256() if digest else None

    def _read(self, n: int, *, allow_eof: bool = False) -> bytes:
        parts: list[bytes] = []
        got = 0
        while got < n:
            try:
                if isinstance(self._source, socket.socket):
                    part = self._source.recv(min(n - got, 1 << 20))
                else:
                    part = self._source.read(n - got)
            except TimeoutError as exc:
                raise PSIError(f"{self.name}: timed out waiting for data") from exc
            except OSError as exc:
                raise PSIError(f"{self.name}: connection failed: {exc}") from exc
            if not part:
                if allow_eof and got == 0:
                    return b""
                if got == 0 and isinstance(self._source, socket.socket):
                    raise PeerClosedError(f"{self.name}: the peer closed the connection")
                raise PSIError(f"{self.name}: truncated message ({got} of {n} bytes)")
            parts.append(part)
            got += len(part)
        data = b"".join(parts)
        if self._hash is not None:
            self._hash.update(data)
        return data

    def next(self, *, allow_eof: bool = False) -> tuple[Frame, bytes] | None:
        """Return the next (type, payload), or ``None`` at a clean end when allowed.

        Raises
        ------
        PSIError
            On a bad magic, an unsupported version, an unknown type, non-zero flags, an
            oversized or truncated frame, or an ``ERROR`` frame from the peer.
        """
        head = self._read(_HEADER.size, allow_eof=allow_eof)
        if not head:
            return None
        magic, version, kind, flags, length = _HEADER.unpack(head)
        if magic != MAGIC:
            raise PSIError(f"{self.name}: not a covault PSI message (bad magic)")
        if version != FRAME_VERSION:
            raise PSIError(
                f"{self.name}: unsupported frame version {version} (expected {FRAME_VERSION})"
            )
        try:
            frame = Frame(kind)
        except ValueError as exc:
            raise PSIError(f"{self.name}: unknown frame type {kind}") from exc
        if flags != 0:
            raise PSIError(f"{self.name}: malformed {frame.name} frame: reserved flags set")
        if length > self.max_payload:
            raise PSIError(
                f"{self.name}: {frame.name} frame of {length} bytes exceeds {self.max_payload}"
            )
        payload = self._read(length)
        if frame is Frame.ERROR:
            detail = decode_json(frame, payload).get("message", "no reason given")
            raise PSIError(f"{self.name}: peer aborted: {clean_text(detail)}")
        return frame, payload

    def expect(self, kind: Frame) -> bytes:
        """Return the payload of the next frame, which must be of type ``kind``."""
        got = self.next()
        assert got is not None
        frame, payload = got
        if frame is not kind:
            raise PSIError(f"{self.name}: expected a {kind.name} frame, got {frame.name}")
        return payload

    def expect_digest(self) -> None:
        """Check the end of a message file: one ``DIGEST`` frame holding the SHA-256 of
        every byte read before it, then nothing.

        Raises
        ------
        PSIError
            Naming the file: no digest (truncated, or written by a covault from before
            message digests), a digest that does not match, or data after it.
        """
        if self._hash is None:
            raise PSIError(f"{self.name}: reader was not created with digest=True")
        expected = self._hash.digest()
        got = self.next(allow_eof=True)
        if got is None:
            raise PSIError(f"{self.name}: no integrity digest at the end of the message "
                           "(truncated, or written by an older covault: write it again)")
        frame, payload = got
        if frame is not Frame.DIGEST:
            raise PSIError(f"{self.name}: unexpected {frame.name} frame after the message")
        if payload != expected:
            raise PSIError(f"{self.name}: integrity digest mismatch: the message was "
                           "corrupted, truncated or altered")
        if self.next(allow_eof=True) is not None:
            raise PSIError(f"{self.name}: unexpected data after the message digest")

    def expect_json(self, kind: Frame) -> dict[str, Any]:
        """Return the JSON object of the next frame, which must be of type ``kind``."""
        return decode_json(kind, self.expect(kind))

    def read_stream(self, kind: Frame, record: int, *, limit: int) -> bytes:
        """Read ``kind`` chunk frames up to their ``END``; return the joined records.

        Raises
        ------
        PSIError
            When a chunk is not a whole number of ``record``-byte records, the stream
            holds more than ``limit`` records, or the ``END`` count does not match.
        """
        parts: list[bytes] = []
        count = 0
        while True:
            frame, payload = self._next_strict()
            if frame is Frame.END:
                stream, announced = decode_end(payload)
                if stream is not kind or announced != count:
                    raise PSIError(
                        f"{self.name}: {kind.name} stream ended with {stream.name} "
                        f"count {announced}, received {count}"
                    )
                return b"".join(parts)
            if frame is not kind:
                raise PSIError(f"{self.name}: expected {kind.name} frames, got {frame.name}")
            if len(payload) % record:
                raise PSIError(
                    f"{self.name}: malformed {kind.name} frame: {len(payload)} bytes is not "
                    f"a multiple of the {record}-byte record"
                )
            count += len(payload) // record
            if count > limit:
                raise PSIError(f"{self.name}: {kind.name} stream exceeds {limit} records")
            parts.append(payload)

    def _next_strict(self) -> tuple[Frame, bytes]:
        got = self.next()
        assert got is not None
        return got
