"""The client side of secure aggregation (see :mod:`privacy.secagg` for the protocol).

A client holds a long-term X25519 key pair for encrypting shares to its peers, its
*material* for the next input (a fresh X25519 mask key pair and a self-mask seed,
identified by a label: 0 from setup, then the round it was made in), and the shares of
its peers' material. Every method checks the server's message against what the client
knows before it changes any state, so a rejected message leaves the client as it was.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy.typing as npt
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from privacy.errors import SecAggError
from privacy.secagg import crypto, messages
from privacy.secagg.fixedpoint import SecAggConfig, encode
from privacy.secagg.messages import (
    Box,
    Bundle,
    InboxEntry,
    MaskedInput,
    Setup,
    UnmaskReply,
)
from privacy.secagg.roster import RosterMember, check_roster, refuse
from privacy.secagg.shamir import SHARE_BYTES, share_from_bytes, share_to_bytes, split

__all__ = ["SecAggClient"]



@dataclass(frozen=True)
class Material:
    """This client's mask key pair and self-mask seed for one input."""

    label: int
    key: X25519PrivateKey
    seed: bytes


@dataclass(frozen=True)
class Held:
    """The shares of one owner's material for one label, as this client holds them."""

    mask_key: bytes  # the owner's public mask key for the label
    key_share: int
    seed_share: int
    box: bytes  # the box as received (empty for this client's own shares)



class SecAggClient(RosterMember):
    """One client of a secure-aggregation run.

    Parameters
    ----------
    client_id:
        This client's id, an integer in ``[0, 2**64 - 2]`` (a Flower node id fits), as
        the transport authenticates it to the server.
    config:
        The run's parameters; the roster must carry the same ones.

    Warnings
    --------
    The object holds secret keys and shares: it refuses to be pickled and its ``repr``
    shows none. A client reported as dropped (its mask key for that round revealed)
    cannot take part again until a new setup (new objects) gives it fresh material.
    """

    def __init__(self, client_id: int, config: SecAggConfig) -> None:
        super().__init__(client_id, config)
        self._ciphers: dict[int, ChaCha20Poly1305] = {}
        self._pending: Material | None = None  # material for the next input
        self._held: dict[int, dict[int, Held]] = {}  # owner -> label -> shares
        self._revealed: dict[int, int] = {}  # owner -> highest label whose share was revealed
        self._members: dict[int, int] = {}  # that round's participants -> label
        self._answered = True

    # ------------------------------------------------------------------ setup
    def setup(self, roster: bytes) -> bytes:
        """Step 1: check the roster and share the first material; returns ``SETUP``.

        Raises
        ------
        SecAggError
            When the roster is malformed, carries other parameters than this client's
            config, omits or alters this client, holds a bad public key, or when setup
            already ran.
        """
        if self.session_id is not None:
            raise SecAggError("setup already ran; a new setup needs a new SecAggClient")
        self._bind(roster)
        assert self.session_id is not None
        material, bundle, own = self._new_material(0)
        self._pending = material
        self._held[self.client_id] = {0: own}
        return messages.encode(Setup(self.session_id, self.client_id, bundle))

    def _bind(self, roster: bytes) -> None:
        """Check the roster and derive the per-peer share keys (setup and restore)."""
        clients, session = check_roster(roster, self.config, self.client_id,
                                        crypto.public_bytes(self._enc_key))
        ciphers = {}
        for v, enc_key in clients.items():
            if v != self.client_id:
                shared = crypto.agree(self._enc_key, enc_key, peer=v)
                ciphers[v] = crypto.share_cipher(shared, session, self.client_id, v)
        self._roster, self._ciphers = clients, ciphers
        self._roster_msg, self.session_id = roster, session

    def _new_material(self, label: int) -> tuple[Material, Bundle, Held]:
        """Fresh mask key and seed, shared among the whole roster (threshold ``t``)."""
        assert self.session_id is not None
        me, t = self.client_id, self.config.threshold
        key, seed = X25519PrivateKey.generate(), os.urandom(crypto.SEED_BYTES)
        public = crypto.public_bytes(key)
        points = [v + 1 for v in self._roster]
        key_shares = split(int.from_bytes(key.private_bytes_raw(), "big"), t, points)
        seed_shares = split(int.from_bytes(seed, "big"), t, points)
        boxes = tuple(
            Box(v, crypto.seal(
                self._ciphers[v],
                share_to_bytes(key_shares[v + 1]) + share_to_bytes(seed_shares[v + 1]),
                session=self.session_id, sender=me, receiver=v, label=label, mask_key=public))
            for v in self._roster if v != me)
        bundle = Bundle(public, crypto.commit(seed, self.session_id, me, label), boxes)
        own = Held(public, key_shares[me + 1], seed_shares[me + 1], b"")
        return Material(label, key, seed), bundle, own

    # ------------------------------------------------------------------ round
    def masked_input(
        self, values: npt.ArrayLike, round_no: int, participants: bytes, inbox: bytes
    ) -> bytes:
        """Step 2 of round ``round_no``: the masked vector and the next material's shares.

        Parameters
        ----------
        values:
            The 1-D float vector to add; every ``|value| <= config.max_abs``.
        round_no:
            The round (``>= 1``, larger than any earlier round of this client).
        participants:
            The server's ``PARTICIPANTS`` message for this round.
        inbox:
            The server's ``INBOX`` message for this client (its peers' latest shares).

        Raises
        ------
        SecAggError
            On a value above ``max_abs``, a malformed or inconsistent server message, a
            share that does not authenticate (naming its sender), a participant whose
            material this client revealed or holds no shares of, or a label for this
            client other than its unused material's (its previous reply was lost).
        """
        if self.session_id is None or self._pending is None:
            raise SecAggError("masked_input before setup")
        session, me, cfg, mine = self.session_id, self.client_id, self.config, self._pending
        words = encode(values, cfg)
        if words.size > messages.MAX_VECTOR_LENGTH:
            raise SecAggError(f"vector of {words.size} values exceeds "
                              f"{messages.MAX_VECTOR_LENGTH}")
        members = self._participants(participants, round_no, session, self._roster)
        if members[me] != mine.label:
            refuse(f"participants list client {me} with label {members[me]}, but its unused "
                    f"material has label {mine.label} (an earlier reply was lost; run setup "
                    "again)")
        burnt = sorted(v for v, lab in members.items() if lab <= self._revealed.get(v, -1))
        if burnt:
            refuse(f"round {round_no} includes clients {burnt} whose material for that label "
                    "was already revealed; they must be excluded")
        held = self._ingest(inbox, round_no)
        missing = sorted(v for v, lab in members.items() if lab not in held.get(v, {}))
        if missing:
            refuse(f"this client holds no shares of participants {missing} for the labels "
                    "listed")

        masked = words.copy()
        masked += crypto.expand(mine.seed, words.size)
        for v, label in sorted(members.items()):
            if v == me:
                continue
            secret = crypto.agree(mine.key, held[v][label].mask_key, peer=v)
            mask = crypto.expand(crypto.pairwise_seed(secret, session, round_no, me, v),
                                 words.size)
            if me < v:
                masked += mask
            else:
                masked -= mask
        material, bundle, own = self._new_material(round_no)

        held[me] = {mine.label: held[me][mine.label], round_no: own}
        self._held, self._pending = held, material
        self._round, self._members, self._answered = round_no, members, False
        return messages.encode(MaskedInput(session, round_no, me, masked, bundle))

    def _ingest(self, inbox: bytes, round_no: int) -> dict[int, dict[int, Held]]:
        """The held shares updated with the inbox's new entries (a copy; state unchanged)."""
        assert self.session_id is not None
        parsed = messages.decode_inbox(inbox, self.session_id)
        me = self.client_id
        if parsed.receiver != me:
            refuse(f"inbox is addressed to client {parsed.receiver}, not {me}")
        held = dict(self._held)
        for e in parsed.entries:
            if e.sender == me or e.sender not in self._roster:
                refuse(f"inbox holds a share from client {e.sender}, not a peer in the roster")
            if e.label >= round_no:
                refuse(f"inbox holds a share of client {e.sender} labelled {e.label}, not "
                        f"before round {round_no}")
            if e.label <= self._revealed.get(e.sender, -1):
                refuse(f"inbox holds a share of client {e.sender} for label {e.label}, which "
                        "was already used")
            known = self._held.get(e.sender, {})
            if known and e.label < max(known):
                refuse(f"inbox holds an outdated share of client {e.sender} "
                        f"(label {e.label} after {max(known)})")
            if e.label in known:
                if (known[e.label].box, known[e.label].mask_key) != (e.box, e.mask_key):
                    refuse(f"inbox holds a different share of client {e.sender} for label "
                            f"{e.label} than received before")
                continue
            held[e.sender] = {e.label: self._open(e)}  # older labels are no longer needed
        return held

    def _open(self, e: InboxEntry) -> Held:
        assert self.session_id is not None
        plain = crypto.open_box(self._ciphers[e.sender], e.box, session=self.session_id,
                                sender=e.sender, receiver=self.client_id, label=e.label,
                                mask_key=e.mask_key)
        try:
            return Held(e.mask_key, share_from_bytes(plain[:SHARE_BYTES]),
                        share_from_bytes(plain[SHARE_BYTES:]), e.box)
        except SecAggError as exc:
            raise SecAggError(f"client {e.sender}: {exc}", sender=e.sender) from None

    # ------------------------------------------------------------------ unmasking
    def unmask(self, request: bytes) -> bytes:
        """Step 3: reveal seed shares of the survivors and mask-key shares of the dropped.

        Raises
        ------
        SecAggError
            When the request is malformed, is not for this client's last round, comes a
            second time for that round, reports this client as dropped, does not split
            the round's participants exactly, has fewer than ``threshold`` survivors, or
            asks for the seed and the mask key of the same client.
        """
        if self.session_id is None:
            raise SecAggError("unmask before setup")
        req = messages.decode_unmask_request(request, self.session_id)
        r, me, members = req.round_no, self.client_id, self._members
        if self._answered:
            refuse(f"unmasking request for round {r}, but this client awaits none")
        if r != self._round:
            refuse(f"unmasking request for round {r}, but this client's round is {self._round}")
        surv, drop = set(req.survivors), set(req.dropped)
        both = surv & drop
        if both:
            refuse(f"round {r}: asks for both the self-mask seed and the mask key of "
                    f"clients {sorted(both)}; refusing, that would reveal their input")
        if surv | drop != members.keys():
            refuse(f"round {r}: survivors and dropped clients do not make up the round's "
                    "participants")
        if me not in surv:
            refuse(f"round {r}: reports client {me} as dropped, but it sent its input")
        if len(surv) < self.config.threshold:
            refuse(f"round {r}: {len(surv)} survivors are below threshold "
                    f"{self.config.threshold}")
        # Each (client, label) was checked unrevealed in masked_input and this request is
        # answered once per round, so no seed and mask key of one label ever both leave.
        seeds = [(v, self._held[v][members[v]].seed_share) for v in req.survivors]
        keys = [(v, self._held[v][members[v]].key_share) for v in req.dropped]
        self._answered = True
        for v in members:
            self._revealed[v] = members[v]
            self._held[v] = {lab: h for lab, h in self._held[v].items() if lab > members[v]}
        return messages.encode(UnmaskReply(self.session_id, r, me, tuple(seeds), tuple(keys)))
