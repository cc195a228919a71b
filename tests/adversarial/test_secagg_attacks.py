"""Attacks on secure aggregation (privacy.secagg) by a deviating server or client.

Each test plays the attacker with the real message formats and checks that the honest
side refuses, or - for the documented limit (``2t <= n`` against a server that shows
different clients different views) - that the attack indeed works, so the threat model
in the package docstring states a reproduced fact.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from privacy.errors import SecAggError
from privacy.secagg import SecAggClient, SecAggConfig, SecAggServer, crypto, decode
from privacy.secagg import messages as m
from privacy.secagg.shamir import combine


class Run:
    """Honest clients and server; the tests deviate from the protocol on purpose."""

    def __init__(self, n: int = 5, t: int = 3, d: int = 16) -> None:
        self.cfg = SecAggConfig(threshold=t, max_abs=100.0)
        self.ids = list(range(1, n + 1))
        self.d = d
        self.clients = {i: SecAggClient(i, self.cfg) for i in self.ids}
        self.server = SecAggServer(self.cfg, vector_length=d)
        self.roster = self.server.roster({i: c.advertise() for i, c in self.clients.items()})
        self.server.route({i: c.setup(self.roster) for i, c in self.clients.items()})
        self.sid = self.server.session_id or b""
        self.xs = {i: np.random.default_rng(i).uniform(-100, 100, d) for i in self.ids}
        self.inbox: dict[int, bytes] = {}

    def send(self, r: int, ids: list[int] | None = None, senders: list[int] | None = None
             ) -> dict[int, bytes]:
        part, self.inbox = self.start(r, ids)
        return {i: self.clients[i].masked_input(self.xs[i], r, part, self.inbox[i])
                for i in (senders or ids or self.ids)}

    def start(self, r: int, ids: list[int] | None = None) -> tuple[bytes, dict[int, bytes]]:
        part = self.server.start_round(r, ids)
        return part, {i: self.server.inbox(i) for i in self.server.active}

    def mask_keys(self) -> dict[int, bytes]:
        """The round's public mask keys, as the server distributes them."""
        keys: dict[int, bytes] = {}
        for data in self.inbox.values():
            keys.update((e.sender, e.mask_key) for e in m.decode_inbox(data, self.sid).entries)
        return keys

    def request(self, r: int, survivors: list[int], dropped: list[int]) -> bytes:
        return m.encode(m.UnmaskRequest(self.sid, r, tuple(survivors), tuple(dropped)))


def _secret(run: Run, target: int, replies: list[bytes], kind: str) -> int:
    shares = {}
    for data in replies:
        rep = m.decode_unmask_reply(data, "any client", run.sid)
        pairs = rep.seed_shares if kind == "seed" else rep.key_shares
        shares[rep.sender + 1] = dict(pairs)[target]
    return combine(shares)


def _strip(run: Run, target: int, r: int, masked: bytes, seed: int, key: int,
           peer_keys: dict[int, bytes]) -> np.ndarray:
    """What a server holding a seed and a mask key of ``target`` computes from its ``y``."""
    y = m.decode_masked_input(masked, target, run.sid, run.d).masked.copy()
    y -= crypto.expand(seed.to_bytes(32, "big"), run.d)
    private = X25519PrivateKey.from_private_bytes(key.to_bytes(32, "big"))
    for u, pk in peer_keys.items():
        if u != target:
            mask = crypto.expand(crypto.pairwise_seed(
                private.exchange(X25519PublicKey.from_public_bytes(pk)), run.sid, r, target, u),
                run.d)
            if target < u:
                y -= mask
            else:
                y += mask
    return decode(y, run.cfg)


def test_split_view_attack_works_when_2t_is_at_most_n() -> None:
    """Documented limit: n = 5, t = 2, the server tells {1, 2} that 5 survived and {3, 4}
    that 5 dropped; each honest client sees a consistent request and answers."""
    run = Run(n=5, t=2)
    replies = run.send(1)
    keys = run.mask_keys()
    seeds = [run.clients[i].unmask(run.request(1, run.ids, [])) for i in (1, 2)]
    masks = [run.clients[i].unmask(run.request(1, [1, 2, 3, 4], [5])) for i in (3, 4)]
    seed, key = _secret(run, 5, seeds, "seed"), _secret(run, 5, masks, "key")
    x5 = _strip(run, 5, 1, replies[5], seed, key, keys)
    assert np.allclose(x5, run.xs[5], atol=2**-30)


def test_split_view_attack_fails_when_2t_exceeds_n() -> None:
    """n = 5, t = 3: three seed holders and three key holders would need six honest
    answers from five clients; a client answers one request per round."""
    run = Run(n=5, t=3)
    run.send(1)
    keys = run.mask_keys()
    view_a = run.request(1, run.ids, [])
    view_b = run.request(1, [1, 2, 3, 4], [5])
    for i in (1, 2, 5):
        run.clients[i].unmask(view_a)
    masks = [run.clients[i].unmask(view_b) for i in (3, 4)]
    with pytest.raises(SecAggError, match="awaits none"):
        run.clients[1].unmask(view_b)  # the third key share is refused
    key = _secret(run, 5, masks, "key")  # two shares: not the key
    assert key >= 2**256 or crypto.public_bytes(
        X25519PrivateKey.from_private_bytes(key.to_bytes(32, "big"))) != keys[5]


def test_a_later_dropout_does_not_expose_earlier_inputs() -> None:
    """Client 5 survives round 1 (its seed is revealed) and drops in round 2 (its mask
    key for round 2 is revealed). With one long-term mask key per client (the first
    design) that key also removed 5's round-1 pairwise masks and exposed x_5 of round 1
    to an honest-but-curious server; with fresh mask keys per input it does not."""
    run = Run(n=5, t=3)
    replies1 = run.send(1)
    keys1 = run.mask_keys()
    request, _ = run.server.collect(1, replies1)
    unmask1 = {i: run.clients[i].unmask(request) for i in run.ids}
    run.server.finish(1, unmask1)
    seed = _secret(run, 5, [unmask1[i] for i in (1, 2, 3)], "seed")

    replies2 = run.send(2, run.ids, senders=[1, 2, 3, 4])
    keys2 = run.mask_keys()
    request, _ = run.server.collect(2, replies2)
    unmask2 = {i: run.clients[i].unmask(request) for i in (1, 2, 3, 4)}
    run.server.finish(2, unmask2)
    key = _secret(run, 5, [unmask2[i] for i in (1, 2, 3)], "key")

    revealed = crypto.public_bytes(X25519PrivateKey.from_private_bytes(key.to_bytes(32, "big")))
    assert revealed == keys2[5] != keys1[5]  # the revealed key is round 2's only
    attempt = _strip(run, 5, 1, replies1[5], seed, key, keys1)
    assert not np.any(np.abs(attempt - run.xs[5]) < 1.0)


def test_client_refuses_seed_and_key_of_the_same_client() -> None:
    run = Run()
    run.send(1)
    both = run.request(1, run.ids, [5])
    for i in (1, 2, 3):
        with pytest.raises(SecAggError, match=r"both the self-mask seed and the mask key of "
                           r"clients \[5\]; refusing") as err:
            run.clients[i].unmask(both)
        assert err.value.sender == "server"


def test_client_refuses_a_second_request_for_the_same_round() -> None:
    run = Run()
    run.send(1)
    run.clients[1].unmask(run.request(1, run.ids, []))
    with pytest.raises(SecAggError, match="awaits none"):
        run.clients[1].unmask(run.request(1, [1, 2, 3, 4], [5]))


def test_client_refuses_being_reported_dropped() -> None:
    run = Run()
    run.send(1)
    with pytest.raises(SecAggError, match="reports client 1 as dropped"):
        run.clients[1].unmask(run.request(1, [2, 3, 4, 5], [1]))


def test_client_refuses_request_outside_the_participants() -> None:
    run = Run()
    run.send(1, [1, 2, 3, 4])
    with pytest.raises(SecAggError, match="do not make up the round's participants"):
        run.clients[1].unmask(run.request(1, [1, 2, 3, 4, 5], []))
    with pytest.raises(SecAggError, match="round is 1"):
        run.clients[1].unmask(run.request(2, [1, 2, 3, 4], []))


def test_client_refuses_rounds_reusing_revealed_material() -> None:
    """5 dropped in round 1, so its mask key for that material is known; a later round
    listing that material again would let the server strip 5's pairwise masks and, by
    asking for its seed, read its input."""
    run = Run()
    replies = run.send(1, run.ids, senders=[1, 2, 3, 4])
    request, _ = run.server.collect(1, replies)
    run.server.finish(1, {i: run.clients[i].unmask(request) for i in (1, 2, 3, 4)})
    with pytest.raises(SecAggError, match="not active"):
        run.server.start_round(2, run.ids)  # the honest server excludes 5 itself
    _, inbox = run.start(2, [1, 2, 3, 4])
    members = ((1, 1), (2, 1), (3, 1), (4, 1), (5, 0))
    forged = m.encode(m.Participants(run.sid, 2, members))
    with pytest.raises(SecAggError, match=r"clients \[5\] whose material for that label was "
                       "already revealed"):
        run.clients[1].masked_input(run.xs[1], 2, forged, inbox[1])


def test_replayed_masked_input_is_rejected() -> None:
    run = Run()
    old = run.send(1)
    request, _ = run.server.collect(1, old)
    run.server.finish(1, {i: run.clients[i].unmask(request) for i in run.ids})
    run.server.start_round(2)
    with pytest.raises(SecAggError, match="client 3: a masked input is for round 1, not 2") as err:
        run.server.collect(2, {3: old[3]})
    assert err.value.sender == 3


def test_messages_of_another_session_are_rejected() -> None:
    a, b = Run(), Run()
    replies = a.send(1)
    b.server.start_round(1)
    with pytest.raises(SecAggError, match="client 2: .*another session"):
        b.server.collect(1, {2: replies[2]})
    part, _ = a.start(2)
    _, inbox = b.start(2)
    with pytest.raises(SecAggError, match="server: .*another session"):
        b.clients[1].masked_input(b.xs[1], 2, part, inbox[1])


def _with_entries(run: Run, receiver: int, entries: list[m.InboxEntry]) -> bytes:
    return m.encode(m.Inbox(run.sid, receiver, tuple(entries)))


def test_misrouted_share_or_swapped_mask_key_fails_authentication() -> None:
    run = Run()
    part, inbox = run.start(1)
    mine = list(m.decode_inbox(inbox[1], run.sid).entries)
    by = {e.sender: e for e in mine}
    # 2's box for client 1 passed off as 3's
    forged = [m.InboxEntry(e.sender, e.label, e.mask_key, by[2].box if e.sender == 3
                           else e.box) for e in mine]
    with pytest.raises(SecAggError, match="client 3: an encrypted share did not authenticate"):
        run.clients[1].masked_input(run.xs[1], 1, part, _with_entries(run, 1, forged))
    # 2's box for client 4 given to client 1
    for_4 = {e.sender: e for e in m.decode_inbox(inbox[4], run.sid).entries}[2].box
    forged = [m.InboxEntry(e.sender, e.label, e.mask_key, for_4 if e.sender == 2 else e.box)
              for e in mine]
    with pytest.raises(SecAggError, match="client 2: an encrypted share did not authenticate"):
        run.clients[1].masked_input(run.xs[1], 1, part, _with_entries(run, 1, forged))
    # a mask key of the server's choosing for client 2 (a man in the middle)
    own = crypto.public_bytes(X25519PrivateKey.generate())
    forged = [m.InboxEntry(e.sender, e.label, own if e.sender == 2 else e.mask_key, e.box)
              for e in mine]
    with pytest.raises(SecAggError, match="client 2: an encrypted share did not authenticate"):
        run.clients[1].masked_input(run.xs[1], 1, part, _with_entries(run, 1, forged))
    run.clients[1].masked_input(run.xs[1], 1, part, inbox[1])  # the real inbox works


def test_inbox_tricks_are_refused() -> None:
    run = Run()
    part, inbox = run.start(1)
    mine = list(m.decode_inbox(inbox[1], run.sid).entries)
    future = [m.InboxEntry(e.sender, 1 if e.sender == 2 else e.label, e.mask_key, e.box)
              for e in mine]
    with pytest.raises(SecAggError, match="labelled 1, not before round 1"):
        run.clients[1].masked_input(run.xs[1], 1, part, _with_entries(run, 1, future))
    without_2 = [e for e in mine if e.sender != 2]
    with pytest.raises(SecAggError, match=r"holds no shares of participants \[2\]"):
        run.clients[1].masked_input(run.xs[1], 1, part, _with_entries(run, 1, without_2))
    stranger = [*mine, m.InboxEntry(77, 0, bytes(32), bytes(160))]
    with pytest.raises(SecAggError, match="share from client 77, not a peer"):
        run.clients[1].masked_input(run.xs[1], 1, part, _with_entries(run, 1, stranger))
    replies = {i: run.clients[i].masked_input(run.xs[i], 1, part, inbox[i]) for i in run.ids}
    request, _ = run.server.collect(1, replies)
    run.server.finish(1, {i: run.clients[i].unmask(request) for i in run.ids})
    part2, inbox2 = run.start(2, [1, 2, 3])
    # the round-1 inbox again: client 1 already used (and revealed) those labels
    with pytest.raises(SecAggError, match="client 2 for label 0, which was already used"):
        run.clients[1].masked_input(run.xs[1], 2, part2, inbox[1])
    run.clients[1].masked_input(run.xs[1], 2, part2, inbox2[1])


def _round(run: Run, r: int, ids: list[int]) -> dict[int, bytes]:
    """One honest round among ``ids``; returns the inboxes it used."""
    request, _ = run.server.collect(r, run.send(r, ids))
    run.server.finish(r, {i: run.clients[i].unmask(request) for i in ids})
    return run.inbox


def test_outdated_or_altered_inbox_is_refused() -> None:
    run = Run()
    first = _round(run, 1, [1, 2, 3])  # 4 and 5 sit out: 1 keeps their label-0 shares
    part, inbox = run.start(2, [1, 2, 3])
    entries = list(m.decode_inbox(inbox[1], run.sid).entries)
    altered = [replace(e, box=bytes(160)) if e.sender == 4 else e for e in entries]
    with pytest.raises(SecAggError, match="different share of client 4 for label 0"):
        run.clients[1].masked_input(run.xs[1], 2, part, _with_entries(run, 1, altered))
    with pytest.raises(SecAggError, match="share of client 2 for label 0, which was already "
                       "used"):
        run.clients[1].masked_input(run.xs[1], 2, part, first[1])  # round 1's inbox again
    _round(run, 3, [1, 2, 3])
    _round(run, 4, [2, 4, 5])  # 4 makes material with label 4; 1 sits out
    current = _round(run, 5, [1, 2, 3])  # 1 receives it
    part, inbox = run.start(6, [1, 2, 3])
    stale = [next(e for e in m.decode_inbox(first[1], run.sid).entries if e.sender == 4)
             if e.sender == 4 else e for e in m.decode_inbox(inbox[1], run.sid).entries]
    assert current
    with pytest.raises(SecAggError, match=r"outdated share of client 4 \(label 0 after 4\)"):
        run.clients[1].masked_input(run.xs[1], 6, part, _with_entries(run, 1, stale))
    run.clients[1].masked_input(run.xs[1], 6, part, inbox[1])


def test_roster_tampering_is_refused() -> None:
    cfg = SecAggConfig(threshold=2, max_abs=100.0)
    clients = {i: SecAggClient(i, cfg) for i in (1, 2, 3)}
    adverts = {i: m.decode_advert(c.advertise(), i) for i, c in clients.items()}
    other = crypto.public_bytes(X25519PrivateKey.generate())
    swapped = m.Roster(bytes(16), 2, 32, 100.0, (m.Advert(1, other), adverts[2], adverts[3]))
    with pytest.raises(SecAggError, match="alters its public key"):
        clients[1].setup(m.encode(swapped))
    looser = m.Roster(bytes(16), 2, 32, 1e6, tuple(adverts.values()))
    with pytest.raises(SecAggError, match="differ from this client's configuration"):
        clients[1].setup(m.encode(looser))
    low = m.Roster(bytes(16), 2, 32, 100.0, (adverts[1], m.Advert(2, bytes(32))))
    with pytest.raises(SecAggError, match="client 2: public key is invalid") as err:
        clients[1].setup(m.encode(low))
    assert err.value.sender == 2


def test_bad_public_keys_are_refused_by_the_server() -> None:
    cfg = SecAggConfig(threshold=2)
    clients = {i: SecAggClient(i, cfg) for i in (1, 2, 3)}
    adverts = {i: c.advertise() for i, c in clients.items()}
    low_order = m.encode(m.Advert(3, bytes(32)))
    with pytest.raises(SecAggError, match="client 3: public key is invalid") as err:
        SecAggServer(cfg, vector_length=2).roster({**adverts, 3: low_order})
    assert err.value.sender == 3
    copied = m.encode(m.Advert(3, m.decode_advert(adverts[1], 1).enc_key))
    with pytest.raises(SecAggError, match="client 3: advertises the public key of client 1"):
        SecAggServer(cfg, vector_length=2).roster({**adverts, 3: copied})


def test_wrong_share_from_a_client_is_detected_and_round_recovers() -> None:
    """A malicious client returns a corrupted seed share: the reconstruction fails its
    commitment check instead of producing a wrong sum; without it the round completes."""
    run = Run(n=5, t=3)
    request, _ = run.server.collect(1, run.send(1))
    unmask = {i: run.clients[i].unmask(request) for i in run.ids}
    rep = m.decode_unmask_reply(unmask[2], 2, run.sid)
    bad = tuple((o, (s + 1) if o == 4 else s) for o, s in rep.seed_shares)
    forged = {**unmask, 2: m.encode(m.UnmaskReply(run.sid, 1, 2, bad, rep.key_shares))}
    with pytest.raises(SecAggError, match=r"self-mask seed of client 4 .*clients \[1, 2, 3\]"):
        run.server.finish(1, forged)
    total, contributors = run.server.finish(1, {i: unmask[i] for i in (1, 3, 4, 5)})
    assert contributors == run.ids
    assert np.allclose(total, sum(run.xs.values()), atol=5 * 2**-32)
