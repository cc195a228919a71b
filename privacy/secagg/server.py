"""The server side of secure aggregation (see :mod:`privacy.secagg` for the protocol).

The server holds no key. It builds the roster, routes encrypted shares, adds the masked
vectors and, from at least ``threshold`` unmasking replies, reconstructs the survivors'
self-mask seeds and the dropped clients' mask keys for the round; each reconstruction is
checked against the seed commitment or the public mask key before it is used.

Every client message is parsed and checked (sender id against the transport's id,
session, round, vector length, share receivers and owners) before any state changes; a
rejected batch raises :class:`~privacy.errors.SecAggError` whose ``sender`` names the
client, and the call can be repeated without that client's message.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import NoReturn

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from privacy.errors import SecAggError
from privacy.secagg import crypto, messages
from privacy.secagg.fixedpoint import SecAggConfig, decode
from privacy.secagg.messages import (
    Bundle,
    Inbox,
    InboxEntry,
    Participants,
    UnmaskRequest,
)
from privacy.secagg.roster import build_roster, check_next_round, parse_replies, reject
from privacy.secagg.shamir import P521, lagrange_at_zero

__all__ = ["SecAggServer"]


@dataclass(frozen=True)
class _Material:
    """A client's announced material: label, public mask key, commitment, shares."""

    label: int
    mask_key: bytes
    commitment: bytes
    boxes: dict[int, bytes]


@dataclass
class _Round:
    number: int
    used: dict[int, _Material]  # participant -> the material it must use
    survivors: tuple[int, ...] = ()
    dropped: tuple[int, ...] = ()
    total: npt.NDArray[np.uint64] | None = None
    collected: bool = False


class SecAggServer:
    """The aggregating server of a secure-aggregation run.

    Parameters
    ----------
    config:
        The run's parameters (the same as every client's).
    vector_length:
        Number of values each client adds (1 to ``messages.MAX_VECTOR_LENGTH``).

    Warnings
    --------
    The server learns the sum over the survivors of each round and who survived. It
    relies on the transport to say which client sent which message; clients, in turn,
    trust the server's roster (compare ``session_id`` out of band to detect a forged
    one). Keep one object for the whole run: it holds the routing state.
    """

    def __init__(self, config: SecAggConfig, *, vector_length: int) -> None:
        self.config = config
        self.vector_length = vector_length
        self.session_id: bytes | None = None
        self._roster: dict[int, bytes] = {}  # id -> enc public key
        self._pending: dict[int, _Material] = {}  # active client -> its next material
        self._active: set[int] = set()
        self._excluded: set[int] = set()
        self._last_round = 0
        self._round: _Round | None = None

    @property
    def vector_length(self) -> int:
        """Values per client vector; may change between rounds (read by ``collect``)."""
        return self._vector_length

    @vector_length.setter
    def vector_length(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) \
                or not 1 <= value <= messages.MAX_VECTOR_LENGTH:
            raise SecAggError(f"vector_length must be in [1, {messages.MAX_VECTOR_LENGTH}], "
                              f"got {value!r}")
        self._vector_length = value

    @property
    def active(self) -> frozenset[int]:
        """Clients that completed setup and were never reported as dropped."""
        return frozenset(self._active)

    @property
    def excluded(self) -> frozenset[int]:
        """Roster clients out of the run: setup missing, or dropped in a round."""
        return frozenset(self._excluded)

    # ------------------------------------------------------------------ setup
    def roster(self, adverts: Mapping[int, bytes]) -> bytes:
        """Check every client's ``ADVERT`` and return the ``ROSTER`` to broadcast.

        ``adverts`` maps the id the transport authenticated to the message.
        """
        if self._roster:
            raise SecAggError("roster already built; a new setup needs a new SecAggServer")
        out, parsed = build_roster(self.config, adverts)
        self._roster = parsed
        self.session_id = messages.session_id(out)
        return out

    def _material(self, cid: int, label: int, bundle: Bundle) -> _Material:
        if {b.peer for b in bundle.boxes} != self._roster.keys() - {cid}:
            reject(cid, "shares do not address exactly the other roster clients")
        crypto.check_public_key(bundle.mask_key, peer=cid)
        return _Material(label, bundle.mask_key, bundle.commitment,
                         {b.peer: b.data for b in bundle.boxes})

    def route(self, setups: Mapping[int, bytes]) -> dict[int, bytes]:
        """Check the ``SETUP`` messages; return the ``INBOX`` of every active client.

        Clients without a setup message are excluded from the run; at least
        ``threshold`` must remain.
        """
        if self.session_id is None or self._pending:
            raise SecAggError("route() comes once, after roster()")
        pending = {}
        for cid in sorted(setups):
            if cid not in self._roster:
                raise SecAggError(f"client {cid}: not in the roster", sender=cid)
            msg = messages.decode_setup(setups[cid], cid, self.session_id)
            pending[cid] = self._material(cid, 0, msg.bundle)
        if len(pending) < self.config.threshold:
            raise SecAggError(f"{len(pending)} clients completed setup, below threshold "
                              f"{self.config.threshold}")
        self._pending = pending
        self._active = set(pending)
        self._excluded = set(self._roster) - self._active
        return {w: self.inbox(w) for w in sorted(self._active)}

    def inbox(self, client_id: int) -> bytes:
        """The ``INBOX`` for ``client_id``: every other active client's latest shares for
        it. It is always complete and current; the inboxes :meth:`route` and
        :meth:`collect` return equal it until the next ``collect`` (after a ``collect``
        that abandoned its round, ask here)."""
        if self.session_id is None or client_id not in self._active:
            raise SecAggError(f"client {client_id} is not an active client")
        entries = tuple(InboxEntry(v, m.label, m.mask_key, m.boxes[client_id])
                        for v, m in sorted(self._pending.items())
                        if v != client_id and v in self._active)
        return messages.encode(Inbox(self.session_id, client_id, entries))

    # ------------------------------------------------------------------ rounds
    def start_round(self, round_no: int, participants: Iterable[int] | None = None) -> bytes:
        """Open round ``round_no``; return the ``PARTICIPANTS`` message to broadcast.

        ``participants`` defaults to every active client; each needs its current inbox
        (from :meth:`route`, the last :meth:`collect`, or :meth:`inbox`). An unfinished
        earlier round is abandoned (nothing of it is released).
        """
        if self.session_id is None or not self._pending:
            raise SecAggError("start_round() before route()")
        check_next_round(round_no, self._last_round)
        chosen = set(self._active if participants is None else participants)
        if not chosen <= self._active:
            raise SecAggError(f"clients {sorted(chosen - self._active)} are not active (unknown,"
                              " not set up, or dropped in an earlier round)")
        if len(chosen) < self.config.threshold:
            raise SecAggError(f"{len(chosen)} participants are below threshold "
                              f"{self.config.threshold}")
        self._last_round = round_no
        self._round = _Round(round_no, {v: self._pending[v] for v in sorted(chosen)})
        members = tuple((v, m.label) for v, m in self._round.used.items())
        return messages.encode(Participants(self.session_id, round_no, members))

    def _current(self, round_no: int, collected: bool, step: str) -> _Round:
        rnd = self._round
        if rnd is None or rnd.number != round_no or rnd.collected != collected:
            raise SecAggError(f"round {round_no} is not awaiting {step}()")
        return rnd

    def collect(self, round_no: int, replies: Mapping[int, bytes]
                ) -> tuple[bytes, dict[int, bytes]]:
        """Add the ``MASKED_INPUT`` replies; return the ``UNMASK_REQUEST`` to broadcast to
        the survivors and the ``INBOX`` of every active client for the next round.

        The senders are the survivors; the other participants are dropped: their mask
        keys for this round will be revealed, so they are excluded from later rounds.
        Every vector must have :attr:`vector_length` values (as set now).

        Raises
        ------
        SecAggError
            When a reply is malformed or comes from a non-participant (nothing changes),
            or when fewer than ``threshold`` participants replied (the round is
            abandoned; the senders' next material is kept).
        """
        rnd = self._current(round_no, False, "collect")
        assert self.session_id is not None
        length = self.vector_length
        session = self.session_id
        parsed = {cid: (msg.masked, self._material(cid, round_no, msg.bundle))
                  for cid, msg in parse_replies(
                      replies, rnd.used, round_no, lambda blob, cid:
                      messages.decode_masked_input(blob, cid, session, length),
                      "a masked input").items()}
        for cid, (_, material) in parsed.items():
            self._pending[cid] = material
        if len(parsed) < self.config.threshold:
            self._round = None
            raise SecAggError(f"round {round_no}: {len(parsed)} of {len(rnd.used)} "
                              f"participants sent a masked input, below threshold "
                              f"{self.config.threshold}; the round is abandoned")
        total = np.zeros(length, dtype=np.uint64)
        for masked, _ in parsed.values():
            total += masked
        rnd.survivors = tuple(sorted(parsed))
        rnd.dropped = tuple(v for v in rnd.used if v not in parsed)
        rnd.total, rnd.collected = total, True
        self._active -= set(rnd.dropped)
        self._excluded |= set(rnd.dropped)
        request = messages.encode(UnmaskRequest(self.session_id, round_no, rnd.survivors,
                                                rnd.dropped))
        return request, {w: self.inbox(w) for w in sorted(self._active)}

    def finish(self, round_no: int, replies: Mapping[int, bytes]
               ) -> tuple[npt.NDArray[np.float64], list[int]]:
        """Unmask the round from the ``UNMASK_REPLY`` messages of at least ``threshold``
        survivors; return the sum (float64) and the sorted ids of its contributors.

        Raises
        ------
        SecAggError
            When a reply is malformed, fewer than ``threshold`` replies arrived, or a
            reconstruction fails its check (a holder sent a wrong share). Nothing changes
            then: ``finish`` may be called again with other or more replies.
        """
        rnd = self._current(round_no, True, "finish")
        assert self.session_id is not None and rnd.total is not None
        t = self.config.threshold
        shares: dict[int, tuple[dict[int, int], dict[int, int]]] = {}
        for cid in sorted(replies):
            if cid not in rnd.survivors:
                raise SecAggError(f"client {cid}: sent an unmasking reply for round {round_no}"
                                  " but is not a survivor", sender=cid)
            msg = messages.decode_unmask_reply(replies[cid], cid, self.session_id)
            if msg.round_no != round_no:
                reject(cid, f"unmasking reply is for round {msg.round_no}, not {round_no}")
            if tuple(o for o, _ in msg.seed_shares) != rnd.survivors or \
                    tuple(o for o, _ in msg.key_shares) != rnd.dropped:
                reject(cid, "unmasking reply does not hold one share per survivor and per "
                        "dropped client")
            shares[cid] = (dict(msg.seed_shares), dict(msg.key_shares))
        if len(shares) < t:
            raise SecAggError(f"round {round_no}: {len(shares)} unmasking replies, below "
                              f"threshold {t}")
        holders = sorted(shares)[:t]
        lam = lagrange_at_zero([h + 1 for h in holders])

        def reconstruct(owner: int, kind: int) -> bytes:
            value = sum(c * shares[h][kind][owner] for c, h in zip(lam, holders, strict=True))
            value %= P521
            return value.to_bytes(32, "big") if value < 2**256 else b""

        total, d, used = rnd.total.copy(), rnd.total.size, rnd.used
        for v in rnd.survivors:
            seed = reconstruct(v, 0)
            if crypto.commit(seed, self.session_id, v, used[v].label) != used[v].commitment:
                self._wrong_share(round_no, "self-mask seed", v, holders)
            total -= crypto.expand(seed, d)
        for v in rnd.dropped:
            raw = reconstruct(v, 1)
            key = X25519PrivateKey.from_private_bytes(raw) if raw else None
            if key is None or crypto.public_bytes(key) != used[v].mask_key:
                self._wrong_share(round_no, "mask key", v, holders)
            for u in rnd.survivors:
                secret = crypto.agree(key, used[u].mask_key, peer=u)
                mask = crypto.expand(crypto.pairwise_seed(secret, self.session_id, round_no,
                                                          u, v), d)
                if u < v:
                    total -= mask
                else:
                    total += mask
        self._round = None
        return decode(total, self.config), list(rnd.survivors)

    @staticmethod
    def _wrong_share(round_no: int, what: str, owner: int, holders: list[int]) -> NoReturn:
        raise SecAggError(f"round {round_no}: the {what} of client {owner} reconstructed from "
                          f"the shares of clients {holders} fails its check; at least one of "
                          "them sent a wrong share")
