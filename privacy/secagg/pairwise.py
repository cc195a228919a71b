"""Secure sums in one exchange: pairwise one-time pads, no dropout recovery.

The main protocol (:mod:`privacy.secagg`) spends a second exchange per sum so that a
client dropping out mid-round can be unmasked from the others' shares. Where every sum
needs every participant anyway - a level of the federated trees, whose tree is grown
again without a party that left - that exchange is pure cost. Here each client masks its
input with one-time pads it shares with every other participant, the first protocol of
Bonawitz et al. (CCS 2017, section 4, "masking with one-time pads"; also Ács and
Castelluccia, 2011)::

    y_u = x_u + sum_{v in P_r, v != u} sign(u, v) PRG(k_uv(r))   mod 2^64
    k_uv(r) = HKDF-SHA256(X25519(enc_u, enc_v), salt = session,
                          info = "sum-mask" | r | min(u, v) | max(u, v))

with ``sign = +1`` when ``u < v`` else ``-1``, the PRG the ChaCha20 keystream and
``x_u`` the fixed-point encoding (:mod:`.fixedpoint`). The pads cancel in the sum over
``P_r``; the server learns that sum and nothing else. Every primitive is the main
protocol's (:mod:`.crypto`), with its own HKDF label.

Protocol
--------
Setup (one exchange): every client sends its ``ADVERT`` (id, long-term X25519 public
key); the server builds the ``ROSTER`` (:mod:`.roster`: a fresh nonce, the parameters,
every id and key; its SHA-256 is the session id).

Round ``r`` (one exchange): the server sends each participant the roster and the
``PARTICIPANTS`` list ``P_r`` (every label 0); the client checks them and returns
``SUM_INPUT`` (session, ``r``, its id, ``y_u``). The server adds the inputs when every
participant has sent one and decodes the sum. If one is missing the round's sum cannot
be unmasked, and nothing is revealed to unmask it: the round is lost; start another
(a new round number) with the clients left.

A client binds to the first roster it accepts and refuses any other; it refuses a round
that is not after its last one (a pad is never used twice), a list that omits it,
names clients outside the roster, or has fewer than ``threshold`` members.

Threat model
------------
* **Who learns what.** The server learns, per round, the sum over ``P_r`` (to within
  ``|P_r| * 2**-(frac_bits+1)`` of rounding), ``P_r`` and the vector length. Clients
  learn nothing about other inputs.
* **Honest-but-curious server**, colluding with ``c`` clients: learns the sum of the
  honest participants' inputs, nothing finer. ``threshold`` (the fewest participants a
  client accepts) must exceed ``c + 1`` for that sum to cover two honest clients.
* **Active server.** It may show clients different lists. A pad between honest ``u`` and
  ``v`` cancels only against ``v``'s own input, so whatever it combines, an honest input
  appears only added to the inputs of the honest clients on the list that client was
  shown (at least ``threshold - c`` of them). As in the main protocol, without
  signatures the roster can be forged (Sybil clients): compare ``session_id`` out of
  band or through the ledger.
* **No self-mask, and why none is needed.** The main protocol adds ``PRG(b_u)`` because
  its recovery reveals a dropped client's pairwise keys, and a server that only claims a
  drop would then read that client's input; here no key or share is ever revealed.
* **Dropouts** lose the round (by design), never an input.
* **Bound.** As in the main protocol: ``n * max_abs * 2**frac_bits < 2**63``.

Use it only where a lost round can simply be repeated with the clients left; use the
main protocol where a round must survive a dropout.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from privacy.errors import SecAggError
from privacy.secagg import crypto, messages
from privacy.secagg.fixedpoint import SecAggConfig, decode, encode
from privacy.secagg.framing import MAGIC, VERSION, malformed_state
from privacy.secagg.messages import Participants, SumInput
from privacy.secagg.roster import (
    RosterMember,
    build_roster,
    check_next_round,
    check_roster,
    parse_replies,
    refuse,
)

__all__ = ["PairwiseSumClient", "PairwiseSumServer", "RoundLost", "dump_pairwise_client",
           "load_pairwise_client"]

PURPOSE = b"sum-mask"
_STATE_HEAD = MAGIC + bytes([VERSION, 0x21])


class RoundLost(SecAggError):
    """A participant sent no input: the round's sum cannot be unmasked (``missing``)."""

    def __init__(self, message: str, missing: Iterable[int]) -> None:
        super().__init__(message)
        self.missing = tuple(missing)


def _pads(key: X25519PrivateKey, me: int, peers: Mapping[int, bytes], session: bytes,
          round_no: int, length: int) -> npt.NDArray[np.uint64]:
    """``sum_v sign(me, v) PRG(k_me,v(round))`` over ``peers`` (id -> public key)."""
    total = np.zeros(length, dtype=np.uint64)
    for v, public in sorted(peers.items()):
        secret = crypto.agree(key, public, peer=v)
        pad = crypto.expand(crypto.pairwise_seed(secret, session, round_no, me, v,
                                                 purpose=PURPOSE), length)
        if me < v:
            total += pad
        else:
            total -= pad
    return total


class PairwiseSumClient(RosterMember):
    """One client of one-exchange secure sums (see the module docstring).

    Parameters
    ----------
    client_id:
        This client's id, an integer in ``[0, 2**64 - 2]``, as the transport
        authenticates it to the server.
    config:
        The run's parameters (``threshold`` is the fewest participants it accepts).

    Warnings
    --------
    The object holds a secret key: it refuses to be pickled and its ``repr`` shows none.
    Restore a dumped state at most once: two inputs masked from the same state for the
    same round would share pads.
    """

    def _bind(self, roster: bytes) -> tuple[dict[int, bytes], bytes]:
        if self.session_id is not None:
            if roster != self._roster_msg:
                refuse("roster differs from the one this client accepted (another session)")
            return self._roster, self.session_id
        return check_roster(roster, self.config, self.client_id,
                            crypto.public_bytes(self._enc_key))

    def masked_input(self, values: npt.ArrayLike, round_no: int, roster: bytes,
                     participants: bytes) -> bytes:
        """The ``SUM_INPUT`` of round ``round_no``: ``values`` under pairwise pads.

        Parameters
        ----------
        values:
            The 1-D float vector to add; every ``|value| <= config.max_abs``.
        round_no:
            The round, larger than any earlier round of this client.
        roster, participants:
            The server's ``ROSTER`` and this round's ``PARTICIPANTS``.

        Raises
        ------
        SecAggError
            A value above ``max_abs``; a roster or list that is malformed, of another
            session, omits this client, names clients outside the roster or is below
            the threshold; a round not after this client's last. The client is left as
            it was.
        """
        words = encode(values, self.config)
        if words.size > messages.MAX_VECTOR_LENGTH:
            raise SecAggError(f"vector of {words.size} values exceeds "
                              f"{messages.MAX_VECTOR_LENGTH}")
        clients, session = self._bind(roster)
        me = self.client_id
        listed = self._participants(participants, round_no, session, clients)
        if any(label != 0 for label in listed.values()):
            refuse("participants list carries material labels (a message of the main "
                    "protocol)")
        members = sorted(listed)
        masked = words.copy()
        masked += _pads(self._enc_key, me, {v: clients[v] for v in members if v != me},
                        session, round_no, words.size)
        self._roster, self._roster_msg, self.session_id = clients, roster, session
        self._round = round_no
        return messages.encode(SumInput(session, round_no, me, masked))


class PairwiseSumServer:
    """The server of one-exchange secure sums: builds the roster, adds the inputs.

    Keep one object for the whole run. It relies on the transport to say which client
    sent which message.
    """

    def __init__(self, config: SecAggConfig) -> None:
        self.config = config
        self.session_id: bytes | None = None
        self.roster_message = b""
        self._roster: dict[int, bytes] = {}
        self._last_round = 0
        self._members: tuple[int, ...] = ()
        self._open: int | None = None

    @property
    def clients(self) -> frozenset[int]:
        """The roster's client ids."""
        return frozenset(self._roster)

    def roster(self, adverts: Mapping[int, bytes]) -> bytes:
        """Check every client's ``ADVERT`` (keyed by the id the transport vouches for);
        return the ``ROSTER`` each round sends along."""
        if self._roster:
            raise SecAggError("roster already built; a new setup needs a new server")
        out, parsed = build_roster(self.config, adverts)
        self._roster, self.roster_message = parsed, out
        self.session_id = messages.session_id(out)
        return out

    def start_round(self, round_no: int, participants: Iterable[int]) -> bytes:
        """Open round ``round_no`` for ``participants``; the ``PARTICIPANTS`` message."""
        if self.session_id is None:
            raise SecAggError("start_round() before roster()")
        check_next_round(round_no, self._last_round)
        chosen = tuple(sorted(set(participants)))
        if not set(chosen) <= self._roster.keys():
            raise SecAggError(f"clients {sorted(set(chosen) - self._roster.keys())} are not "
                              "in the roster")
        if len(chosen) < self.config.threshold:
            raise SecAggError(f"{len(chosen)} participants are below threshold "
                              f"{self.config.threshold}")
        self._last_round, self._members, self._open = round_no, chosen, round_no
        return messages.encode(Participants(self.session_id, round_no,
                                            tuple((v, 0) for v in chosen)))

    def finish(self, round_no: int, replies: Mapping[int, bytes], length: int
               ) -> tuple[npt.NDArray[np.float64], list[int]]:
        """The sum (float64) of round ``round_no`` and its contributors, from every
        participant's ``SUM_INPUT``.

        Raises
        ------
        RoundLost
            A participant sent nothing: the sum cannot be unmasked (``missing`` names
            them); the round is closed.
        SecAggError
            A reply is malformed, of another round or length, or from a non-participant
            (naming the client); the round stays open for a corrected call.
        """
        if self._open != round_no or self.session_id is None:
            raise SecAggError(f"round {round_no} is not open")
        if not 1 <= length <= messages.MAX_VECTOR_LENGTH:
            raise SecAggError(f"vector length {length} is out of range")
        total = np.zeros(length, dtype=np.uint64)
        session = self.session_id
        parsed = parse_replies(replies, self._members, round_no, lambda blob, cid:
                               messages.decode_sum_input(blob, cid, session, length), "an input")
        for msg in parsed.values():
            total += msg.masked
        missing = [v for v in self._members if v not in replies]
        self._open = None
        if missing:
            raise RoundLost(f"round {round_no}: clients {missing} sent no input; the sum "
                            "cannot be unmasked without them (start a new round without "
                            "them)", missing)
        return decode(total, self.config), list(self._members)


def dump_pairwise_client(client: PairwiseSumClient) -> bytes:
    """Serialise ``client`` (its secret key included) for :func:`load_pairwise_client`.

    Warnings
    --------
    The state holds the client's private key: keep it where the key may live.
    """
    body = {"id": client.client_id,
            "config": [client.config.threshold, client.config.frac_bits,
                       float(client.config.max_abs)],
            "enc_key": client._enc_key.private_bytes_raw().hex(),
            "roster": client._roster_msg.hex(), "round": client._round}
    return _STATE_HEAD + json.dumps(body, separators=(",", ":")).encode("utf-8")


def load_pairwise_client(data: bytes) -> PairwiseSumClient:
    """Rebuild a client from :func:`dump_pairwise_client`.

    Raises
    ------
    SecAggError
        When the bytes are not such a state, or are malformed.
    """
    if not isinstance(data, bytes) or data[:6] != _STATE_HEAD:
        raise SecAggError("not a one-exchange secure-sum client state of this version")
    with malformed_state():
        body = json.loads(data[6:].decode("utf-8"))
        t, f, max_abs = body["config"]
        client = PairwiseSumClient(int(body["id"]), SecAggConfig(
            threshold=int(t), frac_bits=int(f), max_abs=float(max_abs)))
        client._enc_key = X25519PrivateKey.from_private_bytes(bytes.fromhex(body["enc_key"]))
        roster = bytes.fromhex(body["roster"])
        if roster:
            client._roster, client.session_id = client._bind(roster)
            client._roster_msg = roster
        client._round = int(body["round"])
    return client
