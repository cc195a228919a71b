"""The roster: built by the server from the clients' adverts, checked by every client.

Both secure-sum protocols (:mod:`privacy.secagg` with dropout recovery, and
:mod:`privacy.secagg.pairwise` in one exchange) start from the same ``ROSTER`` message:
a fresh nonce, the run's parameters and every client's id and long-term X25519 public
key. Its SHA-256 is the session id every later message carries.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping
from typing import NoReturn, Protocol, TypeVar

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from privacy.errors import SecAggError
from privacy.secagg import crypto, messages
from privacy.secagg.fixedpoint import SecAggConfig
from privacy.secagg.messages import Advert, Roster

__all__ = ["parse_replies", "build_roster", "check_roster", "check_client_id", "check_next_round",
           "RosterMember", "reject", "refuse"]


class _Numbered(Protocol):
    @property
    def round_no(self) -> int: ...


M = TypeVar("M", bound=_Numbered)


def reject(client: int, message: str) -> NoReturn:
    """Raise the error for client ``client``'s message (``sender`` is the client)."""
    raise SecAggError(f"client {client}: {message}", sender=client)


def refuse(message: str) -> NoReturn:
    """Raise a client's refusal of the server's message (``sender`` is ``"server"``)."""
    raise SecAggError(f"server: {message}", sender="server")


def check_client_id(client_id: object) -> int:
    """``client_id`` if it is an integer in ``[0, MAX_ID]`` (a Flower node id fits)."""
    if isinstance(client_id, bool) or not isinstance(client_id, int) \
            or not 0 <= client_id <= messages.MAX_ID:
        raise SecAggError(f"client id must be an integer in [0, {messages.MAX_ID}], "
                          f"got {client_id!r}")
    return client_id


def build_roster(config: SecAggConfig, adverts: Mapping[int, bytes]
                 ) -> tuple[bytes, dict[int, bytes]]:
    """Server: check every client's ``ADVERT`` (keyed by the id the transport vouches
    for); return the ``ROSTER`` to broadcast and the id -> public key map.

    Raises
    ------
    SecAggError
        Too few or too many clients, an id out of range, a malformed or unusable public
        key, or two clients advertising the same key (naming the client).
    """
    if not config.threshold <= len(adverts) <= messages.MAX_CLIENTS:
        raise SecAggError(f"{len(adverts)} clients: need {config.threshold} (the threshold) "
                          f"to {messages.MAX_CLIENTS}")
    config.check_capacity(len(adverts))
    parsed: dict[int, bytes] = {}
    seen: dict[bytes, int] = {}
    for cid in sorted(adverts):
        check_client_id(cid)
        key = messages.decode_advert(adverts[cid], cid).enc_key
        crypto.check_public_key(key, peer=cid)
        if key in seen:
            reject(cid, f"advertises the public key of client {seen[key]}")
        parsed[cid], seen[key] = key, cid
    out = messages.encode(Roster(os.urandom(16), config.threshold, config.frac_bits,
                                 float(config.max_abs),
                                 tuple(Advert(c, k) for c, k in parsed.items())))
    return out, parsed


def check_roster(roster: bytes, config: SecAggConfig, client_id: int, public_key: bytes
                 ) -> tuple[dict[int, bytes], bytes]:
    """Client: the roster's id -> public key map and the session id, after checking that
    it carries this client's parameters, lists this client with its own key, and is big
    enough and small enough for the parameters.

    Raises
    ------
    SecAggError
        (sender ``"server"``) when any check fails or the message is malformed.
    """
    parsed = messages.decode_roster(roster)
    cfg = config
    if (parsed.threshold, parsed.frac_bits, parsed.max_abs) != (
            cfg.threshold, cfg.frac_bits, float(cfg.max_abs)):
        refuse(f"roster parameters (threshold {parsed.threshold}, frac_bits "
                f"{parsed.frac_bits}, max_abs {parsed.max_abs}) differ from this "
                "client's configuration")
    clients = {a.client_id: a.enc_key for a in parsed.clients}
    if clients.get(client_id) != public_key:
        refuse(f"roster omits client {client_id} or alters its public key")
    if len(clients) < cfg.threshold:
        refuse(f"roster of {len(clients)} clients is below threshold {cfg.threshold}")
    cfg.check_capacity(len(clients))
    if max(clients) > messages.MAX_ID:
        refuse(f"roster client id {max(clients)} is out of range")
    return clients, messages.session_id(roster)


def check_next_round(round_no: object, last: int) -> int:
    """Server: ``round_no`` if it is an integer after ``last`` and at most ``MAX_ROUND``."""
    if isinstance(round_no, bool) or not isinstance(round_no, int) \
            or not last < round_no <= messages.MAX_ROUND:
        raise SecAggError(f"round {round_no!r} must be after round {last} "
                          f"and at most {messages.MAX_ROUND}")
    return round_no


class RosterMember:
    """What the clients of both protocols share: an id, a long-term X25519 key pair for
    the roster, the session they bound to and the last round they sent an input for.

    It refuses to be pickled and its ``repr`` shows no secret."""

    def __init__(self, client_id: int, config: SecAggConfig) -> None:
        self.client_id = check_client_id(client_id)
        self.config = config
        self.session_id: bytes | None = None
        self._enc_key = X25519PrivateKey.generate()
        self._roster: dict[int, bytes] = {}  # id -> enc public key
        self._roster_msg = b""
        self._round = 0  # last round this client sent an input for

    def __repr__(self) -> str:
        return f"{type(self).__name__}(client_id={self.client_id}, round={self._round})"

    def __reduce__(self) -> NoReturn:
        raise TypeError(f"a {type(self).__name__} holds secret keys and refuses to be pickled")

    def _participants(self, participants: bytes, round_no: int, session: bytes,
                      roster: Mapping[int, bytes]) -> dict[int, int]:
        """The round's ``PARTICIPANTS`` (id -> label) after the checks both protocols
        make: the right round, after this client's last, this client listed, nobody
        outside ``roster``, at least ``threshold`` members."""
        part = messages.decode_participants(participants, session)
        members = dict(part.members)
        me = self.client_id
        if part.round_no != round_no:
            refuse(f"participants list is for round {part.round_no}, not {round_no}")
        if round_no <= self._round:
            refuse(f"round {round_no} is not after this client's last round {self._round}")
        if me not in members:
            refuse(f"participants of round {round_no} do not include client {me}")
        outside = sorted(members.keys() - roster.keys())
        if outside:
            refuse(f"participants {outside} are not in the roster")
        if len(members) < self.config.threshold:
            refuse(f"{len(members)} participants are below threshold {self.config.threshold}")
        return members

    def advertise(self) -> bytes:
        """This client's id and long-term public key, for the server's roster."""
        return messages.encode(Advert(self.client_id, crypto.public_bytes(self._enc_key)))


def parse_replies(replies: Mapping[int, bytes], members: Collection[int], round_no: int,
                  decode: Callable[[bytes, int], M], what: str) -> dict[int, M]:
    """Server: every reply parsed by ``decode(blob, sender)``, after checking that its
    sender is a member of the round and that it answers round ``round_no``.

    Raises
    ------
    SecAggError
        Naming the first offending client (``sender``); nothing is kept.
    """
    parsed: dict[int, M] = {}
    for cid in sorted(replies):
        if cid not in members:
            raise SecAggError(f"client {cid}: sent {what} for round {round_no} but is not a "
                              "participant", sender=cid)
        msg = decode(replies[cid], cid)
        if msg.round_no != round_no:
            reject(cid, f"{what} is for round {msg.round_no}, not {round_no}")
        parsed[cid] = msg
    return parsed
