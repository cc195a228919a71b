"""The framing shared by every secure-aggregation message: header, peers, bounded reads.

Every message starts with ``b"CVSA" | version u8 | type u8``. :class:`Reader` reads the
fields after it and turns every shortfall, excess or out-of-range count into a
:class:`~privacy.errors.SecAggError` that names the peer the message came from.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import numpy as np
import numpy.typing as npt

from privacy.errors import SecAggError
from privacy.secagg.shamir import P521, SHARE_BYTES

__all__ = ["MAGIC", "VERSION", "MAX_CLIENTS", "HEAD", "U32", "U64", "F64", "Peer", "Kind",
           "peer_name", "Reader", "malformed_state"]

MAGIC = b"CVSA"
VERSION = 1
MAX_CLIENTS = 10_000
HEAD = struct.Struct(">4sBB")
U32, U64, F64 = struct.Struct(">I"), struct.Struct(">Q"), struct.Struct(">d")

Peer = int | str
"""A client id, or ``"server"``."""


class Kind(enum.IntEnum):
    """Message types."""

    ADVERT = 1
    ROSTER = 2
    SETUP = 3
    INBOX = 4
    PARTICIPANTS = 5
    MASKED_INPUT = 6
    UNMASK_REQUEST = 7
    UNMASK_REPLY = 8
    SUM_INPUT = 9


def peer_name(peer: Peer) -> str:
    """``"client 7"`` or ``"server"``."""
    return peer if isinstance(peer, str) else f"client {peer}"


class Reader:
    """Bounds-checked reading of one message from ``peer``."""

    def __init__(self, data: bytes, kind: Kind, peer: Peer) -> None:
        self.peer = peer
        self.kind = kind
        if not isinstance(data, (bytes, bytearray)):
            self.fail(f"expected bytes, got {type(data).__name__}")
        self.data = data if isinstance(data, bytes) else bytes(data)
        self.pos = 0
        magic, version, got = self.unpack(HEAD, "header")
        if magic != MAGIC:
            self.fail("not a covault secure-aggregation message (bad magic)")
        if version != VERSION:
            self.fail(f"unsupported version {version} (expected {VERSION})")
        if got != kind:
            name = next((k.name for k in Kind if k == got), f"type {got}")
            self.fail(f"expected a {kind.name} message, got {name}")

    def fail(self, what: str) -> NoReturn:
        raise SecAggError(
            f"{peer_name(self.peer)}: malformed {self.kind.name} message: {what}",
            sender=self.peer,
        )

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.data):
            self.fail(f"truncated in {what} ({len(self.data)} bytes)")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, st: struct.Struct, what: str) -> tuple[Any, ...]:
        return st.unpack(self.take(st.size, what))

    def uint(self, st: struct.Struct, what: str) -> int:
        (value,) = self.unpack(st, what)
        return int(value)

    def words(self, n: int, what: str) -> npt.NDArray[np.uint64]:
        """``n`` little-endian uint64 words, without copying (read-only)."""
        if self.pos + 8 * n > len(self.data):
            self.fail(f"truncated in {what} ({len(self.data)} bytes)")
        out = np.frombuffer(self.data, dtype="<u8", count=n, offset=self.pos)
        self.pos += 8 * n
        return out.astype(np.uint64, copy=False)

    def count(self, what: str, limit: int, item: int) -> int:
        n = self.uint(U32, f"{what} count")
        if n > limit:
            self.fail(f"{n} {what} exceed the limit of {limit}")
        if n * item > len(self.data) - self.pos:
            self.fail(f"truncated in {what} ({n} announced, {len(self.data)} bytes)")
        return n

    def ascending(self, ids: list[int], what: str) -> tuple[int, ...]:
        if any(a >= b for a, b in zip(ids, ids[1:], strict=False)):
            self.fail(f"{what} ids are not strictly ascending (duplicate or unordered)")
        return tuple(ids)

    def id_list(self, what: str) -> tuple[int, ...]:
        n = self.count(what, MAX_CLIENTS, 8)
        return self.ascending([self.uint(U64, what) for _ in range(n)], what)

    def share(self, what: str) -> int:
        value = int.from_bytes(self.take(SHARE_BYTES, what), "big")
        if value >= P521:
            self.fail(f"{what} is not a field element")
        return value

    def sender(self, expected: Peer) -> int:
        sender = self.uint(U64, "sender")
        if isinstance(expected, int) and sender != expected:
            self.fail(f"claims to come from client {sender}")
        return sender

    def end(self) -> None:
        if self.pos != len(self.data):
            self.fail(f"{len(self.data) - self.pos} trailing bytes")


@contextmanager
def malformed_state() -> Iterator[None]:
    """Turn any parsing error while a client state is read into one ``SecAggError``."""
    try:
        yield
    except SecAggError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
        raise SecAggError(f"client state is malformed ({type(exc).__name__})") from None
