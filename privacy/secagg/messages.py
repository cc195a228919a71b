"""The wire format of secure aggregation: compact, versioned, bounded and checked.

Every message starts with a 6-byte header, ``b"CVSA" | version u8 | type u8``
(:mod:`.framing`), followed by a body of fixed-size fields (integers big-endian; mask
words little-endian ``uint64``). Lists carry a ``u32`` count that is checked against a
limit and against the bytes left before anything is read; id lists must be strictly
ascending (canonical, no duplicates); a message must end exactly where its last field
ends. Any violation raises :class:`~privacy.errors.SecAggError` naming the peer the
message came from (``client 7: malformed MASKED_INPUT message: ...``), never a
``struct`` or index error.

Bodies (``session`` is the SHA-256 of the roster message; ``bundle`` is a client's fresh
material for its next input: ``mask_pk 32 | commitment 32 | n u32 |
n x (receiver u64 | box 160)`` where ``box`` is ``nonce 12 | ChaCha20-Poly1305 of
(mask-key share 66 | seed share 66) | tag 16``)::

    ADVERT          id u64 | enc_pk 32
    ROSTER          nonce 16 | threshold u16 | frac_bits u8 | max_abs f64 | n u32 |
                    n x (id u64 | enc_pk 32)
    SETUP           session | sender u64 | bundle                       (label 0)
    INBOX           session | receiver u64 | n u32 |
                    n x (sender u64 | label u32 | mask_pk 32 | box 160)
    PARTICIPANTS    session | round u32 | n u32 | n x (id u64 | label u32)
    MASKED_INPUT    session | round u32 | sender u64 | d u32 | d x u64 | bundle  (label = round)
    UNMASK_REQUEST  session | round u32 | ns u32 | ns x id u64 | nd u32 | nd x id u64
    UNMASK_REPLY    session | round u32 | sender u64 | nb u32 | nb x (owner u64 | seed share 66)
                    | nk u32 | nk x (owner u64 | mask-key share 66)
    SUM_INPUT       session | round u32 | sender u64 | d u32 | d x u64
                    (the one-exchange sums of :mod:`privacy.secagg.pairwise`)
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from privacy.secagg.crypto import KEY_BYTES, NONCE_BYTES, TAG_BYTES
from privacy.secagg.framing import (
    F64,
    HEAD,
    MAGIC,
    MAX_CLIENTS,
    U32,
    U64,
    VERSION,
    Kind,
    Peer,
    Reader,
    peer_name,
)
from privacy.secagg.shamir import SHARE_BYTES

__all__ = [
    "MAGIC", "VERSION", "MAX_CLIENTS", "MAX_ID", "MAX_ROUND", "MAX_VECTOR_LENGTH",
    "BOX_BYTES", "Kind", "Peer", "Advert", "Roster", "Box", "Bundle", "Setup", "InboxEntry",
    "Inbox", "Participants", "MaskedInput", "UnmaskRequest", "UnmaskReply", "SumInput",
    "peer_name",
    "session_id", "encode", "decode_advert", "decode_roster", "decode_setup", "decode_inbox",
    "decode_participants", "decode_masked_input", "decode_unmask_request",
    "decode_unmask_reply", "decode_sum_input",
]

MAX_ID = 2**64 - 2  # a share point is id + 1: it fits a u64 and is never 0
MAX_VECTOR_LENGTH = 1 << 25
MAX_ROUND = 2**32 - 1
BOX_BYTES = NONCE_BYTES + 2 * SHARE_BYTES + TAG_BYTES
_LABELLED = struct.Struct(">QI")


@dataclass(frozen=True)
class Advert:
    """A client's id and its long-term X25519 public key for share encryption."""

    client_id: int
    enc_key: bytes


@dataclass(frozen=True)
class Roster:
    """The server's broadcast: a fresh nonce, the run's parameters and every client."""

    nonce: bytes
    threshold: int
    frac_bits: int
    max_abs: float
    clients: tuple[Advert, ...]


@dataclass(frozen=True)
class Box:
    """An encrypted share pair for one receiver (``peer``)."""

    peer: int
    data: bytes


@dataclass(frozen=True)
class Bundle:
    """One label's fresh material: public mask key, seed commitment, shares for peers."""

    mask_key: bytes
    commitment: bytes
    boxes: tuple[Box, ...]


@dataclass(frozen=True)
class Setup:
    """A client's first material (label 0)."""

    session: bytes
    sender: int
    bundle: Bundle


@dataclass(frozen=True)
class InboxEntry:
    """A peer's latest share pair for the inbox's receiver, with its public mask key."""

    sender: int
    label: int
    mask_key: bytes
    box: bytes


@dataclass(frozen=True)
class Inbox:
    """The encrypted shares the server holds for one receiver."""

    session: bytes
    receiver: int
    entries: tuple[InboxEntry, ...]


@dataclass(frozen=True)
class Participants:
    """The clients of a round (P_r), each with the label of the material it must use."""

    session: bytes
    round_no: int
    members: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class SumInput:
    """A vector masked with pairwise pads only (:mod:`privacy.secagg.pairwise`)."""

    session: bytes
    round_no: int
    sender: int
    masked: npt.NDArray[np.uint64]


@dataclass(frozen=True)
class MaskedInput(SumInput):
    """A masked vector and the sender's material for its next input (label = round)."""

    bundle: Bundle


@dataclass(frozen=True)
class UnmaskRequest:
    """Who sent a masked input (survivors) and who did not (dropped)."""

    session: bytes
    round_no: int
    survivors: tuple[int, ...]
    dropped: tuple[int, ...]


@dataclass(frozen=True)
class UnmaskReply:
    """``(owner, share)`` of the survivors' seeds and of the dropped clients' mask keys."""

    session: bytes
    round_no: int
    sender: int
    seed_shares: tuple[tuple[int, int], ...]
    key_shares: tuple[tuple[int, int], ...]


Message = (Advert | Roster | Setup | Inbox | Participants | MaskedInput | UnmaskRequest
           | UnmaskReply | SumInput)


# ---------------------------------------------------------------------------- encoding
def _ids(ids: Iterable[int]) -> bytes:
    items = sorted(ids)
    return U32.pack(len(items)) + b"".join(U64.pack(i) for i in items)


def _bundle(b: Bundle) -> bytes:
    items = sorted(b.boxes, key=lambda x: x.peer)
    return (b.mask_key + b.commitment + U32.pack(len(items))
            + b"".join(U64.pack(x.peer) + x.data for x in items))


def _shares(shares: Iterable[tuple[int, int]]) -> bytes:
    items = sorted(shares)
    return U32.pack(len(items)) + b"".join(
        U64.pack(o) + s.to_bytes(SHARE_BYTES, "big") for o, s in items)


def encode(msg: Message) -> bytes:
    """Serialise any message of this module (lists are sorted into canonical order)."""
    if isinstance(msg, Advert):
        kind, body = Kind.ADVERT, U64.pack(msg.client_id) + msg.enc_key
    elif isinstance(msg, Roster):
        clients = sorted(msg.clients, key=lambda a: a.client_id)
        body = (msg.nonce + struct.pack(">HB", msg.threshold, msg.frac_bits)
                + F64.pack(msg.max_abs) + U32.pack(len(clients))
                + b"".join(U64.pack(a.client_id) + a.enc_key for a in clients))
        kind = Kind.ROSTER
    elif isinstance(msg, Setup):
        kind, body = Kind.SETUP, msg.session + U64.pack(msg.sender) + _bundle(msg.bundle)
    elif isinstance(msg, Inbox):
        entries = sorted(msg.entries, key=lambda e: e.sender)
        body = msg.session + U64.pack(msg.receiver) + U32.pack(len(entries)) + b"".join(
            _LABELLED.pack(e.sender, e.label) + e.mask_key + e.box for e in entries)
        kind = Kind.INBOX
    elif isinstance(msg, Participants):
        members = sorted(msg.members)
        body = (msg.session + U32.pack(msg.round_no) + U32.pack(len(members))
                + b"".join(_LABELLED.pack(v, lab) for v, lab in members))
        kind = Kind.PARTICIPANTS
    elif isinstance(msg, MaskedInput):
        words = np.ascontiguousarray(msg.masked, dtype="<u8")
        body = (msg.session + struct.pack(">IQI", msg.round_no, msg.sender, words.size)
                + words.tobytes() + _bundle(msg.bundle))
        kind = Kind.MASKED_INPUT
    elif isinstance(msg, SumInput):
        words = np.ascontiguousarray(msg.masked, dtype="<u8")
        body = (msg.session + struct.pack(">IQI", msg.round_no, msg.sender, words.size)
                + words.tobytes())
        kind = Kind.SUM_INPUT
    elif isinstance(msg, UnmaskRequest):
        body = msg.session + U32.pack(msg.round_no) + _ids(msg.survivors) + _ids(msg.dropped)
        kind = Kind.UNMASK_REQUEST
    elif isinstance(msg, UnmaskReply):
        body = (msg.session + struct.pack(">IQ", msg.round_no, msg.sender)
                + _shares(msg.seed_shares) + _shares(msg.key_shares))
        kind = Kind.UNMASK_REPLY
    else:
        raise TypeError(f"not a secure-aggregation message: {type(msg).__name__}")
    return HEAD.pack(MAGIC, VERSION, int(kind)) + body


# ---------------------------------------------------------------------------- decoding
def session_id(roster: bytes) -> bytes:
    """The session id every later message carries: SHA-256 of the roster message."""
    return hashlib.sha256(roster).digest()


def _session(r: Reader, expected: bytes) -> bytes:
    got = r.take(32, "session")
    if got != expected:
        r.fail("belongs to another session (roster)")
    return got


def _read_bundle(r: Reader) -> Bundle:
    mask_key, commitment = r.take(KEY_BYTES, "mask key"), r.take(32, "commitment")
    n = r.count("shares", MAX_CLIENTS, 8 + BOX_BYTES)
    boxes = [Box(r.uint(U64, "share receiver"), r.take(BOX_BYTES, "share")) for _ in range(n)]
    r.ascending([b.peer for b in boxes], "share receiver")
    return Bundle(mask_key, commitment, tuple(boxes))


def _read_shares(r: Reader, what: str) -> tuple[tuple[int, int], ...]:
    n = r.count(what, MAX_CLIENTS, 8 + SHARE_BYTES)
    items = [(r.uint(U64, "owner"), r.share(what)) for _ in range(n)]
    r.ascending([o for o, _ in items], f"{what} owner")
    return tuple(items)


def decode_advert(data: bytes, peer: Peer) -> Advert:
    """Parse an ``ADVERT``; its id must be ``peer`` (the id the transport vouches for)."""
    r = Reader(data, Kind.ADVERT, peer)
    out = Advert(r.sender(peer), r.take(KEY_BYTES, "enc key"))
    r.end()
    return out


def decode_roster(data: bytes, peer: Peer = "server") -> Roster:
    """Parse a ``ROSTER`` (parameters are checked against the client's config)."""
    r = Reader(data, Kind.ROSTER, peer)
    nonce = r.take(16, "nonce")
    threshold, frac_bits = (int(v) for v in r.unpack(struct.Struct(">HB"), "parameters"))
    max_abs = float(r.unpack(F64, "max_abs")[0])
    n = r.count("clients", MAX_CLIENTS, 8 + KEY_BYTES)
    clients = [Advert(r.uint(U64, "client id"), r.take(KEY_BYTES, "enc key"))
               for _ in range(n)]
    r.ascending([a.client_id for a in clients], "client")
    r.end()
    return Roster(nonce, threshold, frac_bits, max_abs, tuple(clients))


def decode_setup(data: bytes, peer: Peer, session: bytes) -> Setup:
    """Parse a ``SETUP`` from client ``peer``."""
    r = Reader(data, Kind.SETUP, peer)
    out = Setup(_session(r, session), r.sender(peer), _read_bundle(r))
    r.end()
    return out


def decode_inbox(data: bytes, session: bytes, peer: Peer = "server") -> Inbox:
    """Parse an ``INBOX`` (the receiver checks the receiver id and the entries' senders)."""
    r = Reader(data, Kind.INBOX, peer)
    sess = _session(r, session)
    receiver = r.uint(U64, "receiver")
    n = r.count("entries", MAX_CLIENTS, _LABELLED.size + KEY_BYTES + BOX_BYTES)
    entries = []
    for _ in range(n):
        sender, label = (int(v) for v in r.unpack(_LABELLED, "entry"))
        entries.append(InboxEntry(sender, label, r.take(KEY_BYTES, "mask key"),
                                  r.take(BOX_BYTES, "share")))
    r.ascending([e.sender for e in entries], "entry sender")
    r.end()
    return Inbox(sess, receiver, tuple(entries))


def decode_participants(data: bytes, session: bytes, peer: Peer = "server") -> Participants:
    """Parse a ``PARTICIPANTS`` list."""
    r = Reader(data, Kind.PARTICIPANTS, peer)
    sess = _session(r, session)
    round_no = r.uint(U32, "round")
    n = r.count("participants", MAX_CLIENTS, _LABELLED.size)
    members = [(int(v), int(lab)) for v, lab in
               (r.unpack(_LABELLED, "participant") for _ in range(n))]
    r.ascending([v for v, _ in members], "participant")
    r.end()
    return Participants(sess, round_no, tuple(members))


def _read_vector(r: Reader, peer: Peer, session: bytes, length: int
                 ) -> tuple[bytes, int, int, npt.NDArray[np.uint64]]:
    """``session | round u32 | sender u64 | d u32 | d x u64`` with ``d == length``."""
    sess = _session(r, session)
    round_no = r.uint(U32, "round")
    sender = r.sender(peer)
    d = r.uint(U32, "vector length")
    if d != length:
        r.fail(f"vector of {d} values, expected {length}")
    return sess, round_no, sender, r.words(d, "vector")


def decode_masked_input(data: bytes, peer: Peer, session: bytes, length: int) -> MaskedInput:
    """Parse a ``MASKED_INPUT`` from client ``peer``; its vector must have ``length`` words."""
    r = Reader(data, Kind.MASKED_INPUT, peer)
    out = MaskedInput(*_read_vector(r, peer, session, length), _read_bundle(r))
    r.end()
    return out


def decode_unmask_request(data: bytes, session: bytes, peer: Peer = "server") -> UnmaskRequest:
    """Parse an ``UNMASK_REQUEST``."""
    r = Reader(data, Kind.UNMASK_REQUEST, peer)
    out = UnmaskRequest(_session(r, session), r.uint(U32, "round"), r.id_list("survivor"),
                        r.id_list("dropped"))
    r.end()
    return out


def decode_unmask_reply(data: bytes, peer: Peer, session: bytes) -> UnmaskReply:
    """Parse an ``UNMASK_REPLY`` from client ``peer``."""
    r = Reader(data, Kind.UNMASK_REPLY, peer)
    sess = _session(r, session)
    round_no = r.uint(U32, "round")
    sender = r.sender(peer)
    out = UnmaskReply(sess, round_no, sender, _read_shares(r, "seed share"),
                      _read_shares(r, "key share"))
    r.end()
    return out


def decode_sum_input(data: bytes, peer: Peer, session: bytes, length: int) -> SumInput:
    """Parse a ``SUM_INPUT`` from client ``peer``; its vector must have ``length`` words."""
    r = Reader(data, Kind.SUM_INPUT, peer)
    out = SumInput(*_read_vector(r, peer, session, length))
    r.end()
    return out
