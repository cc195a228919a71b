"""One-exchange secure sums (privacy.secagg.pairwise): sums, pads, refusals, lost rounds."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from privacy.errors import SecAggError
from privacy.secagg import PairwiseSumClient, PairwiseSumServer, RoundLost, SecAggConfig, crypto
from privacy.secagg import messages as m
from privacy.secagg.fixedpoint import encode
from privacy.secagg.pairwise import PURPOSE, dump_pairwise_client, load_pairwise_client


class Run:
    def __init__(self, n: int = 5, t: int = 2, d: int = 40) -> None:
        self.cfg = SecAggConfig(threshold=t, frac_bits=32, max_abs=1e4)
        self.ids = list(range(3, 3 + n))
        self.d = d
        self.clients = {i: PairwiseSumClient(i, self.cfg) for i in self.ids}
        self.server = PairwiseSumServer(self.cfg)
        self.roster = self.server.roster({i: c.advertise() for i, c in self.clients.items()})
        self.rng = np.random.default_rng(11)

    def round(self, r: int, ids: list[int] | None = None) -> tuple[dict[int, np.ndarray],
                                                                   dict[int, bytes]]:
        ids = self.ids if ids is None else ids
        part = self.server.start_round(r, ids)
        xs = {i: self.rng.uniform(-100, 100, self.d) for i in ids}
        return xs, {i: self.clients[i].masked_input(xs[i], r, self.roster, part) for i in ids}


def test_sum_over_rounds_and_participant_sets() -> None:
    run = Run()
    for r, ids in ((1, None), (2, [3, 5, 7]), (5, [4, 6])):
        xs, replies = run.round(r, ids)
        total, who = run.server.finish(r, replies, run.d)
        assert who == sorted(xs)
        np.testing.assert_allclose(total, sum(xs.values()), atol=len(xs) * 2.0 ** -32)


def test_each_input_is_hidden_by_pads_that_cancel_only_in_the_sum() -> None:
    run = Run(n=3)
    xs, replies = run.round(1)
    sid = run.server.session_id or b""
    for i, blob in replies.items():
        words = m.decode_sum_input(blob, i, sid, run.d).masked
        plain = encode(xs[i], run.cfg)
        assert np.count_nonzero(words == plain) == 0  # every word is padded
    # the pads are HKDF(X25519) seeds expanded by ChaCha20, recomputed here independently
    keys = {i: X25519PrivateKey.from_private_bytes(
        bytes.fromhex(load_pairwise_state(run.clients[i])["enc_key"])) for i in run.ids}
    i, j, k = run.ids
    words = m.decode_sum_input(replies[i], i, sid, run.d).masked
    pads = np.zeros(run.d, dtype=np.uint64)
    for v in (j, k):
        shared = keys[i].exchange(keys[v].public_key())
        pads += crypto.expand(crypto.pairwise_seed(shared, sid, 1, i, v, purpose=PURPOSE),
                              run.d)
    np.testing.assert_array_equal(words - pads, encode(xs[i], run.cfg))
    # the other protocol's label gives other pads (domain separation)
    other = crypto.pairwise_seed(keys[i].exchange(keys[j].public_key()), sid, 1, i, j)
    assert other != crypto.pairwise_seed(keys[i].exchange(keys[j].public_key()), sid, 1, i,
                                         j, purpose=PURPOSE)


def load_pairwise_state(client: PairwiseSumClient) -> dict[str, object]:
    import json

    return dict(json.loads(dump_pairwise_client(client)[6:]))


def test_missing_participant_loses_the_round_and_the_next_round_works() -> None:
    run = Run()
    xs, replies = run.round(1)
    del replies[5]
    with pytest.raises(RoundLost, match=r"clients \[5\] sent no input") as err:
        run.server.finish(1, replies, run.d)
    assert err.value.missing == (5,)
    with pytest.raises(SecAggError, match="not open"):
        run.server.finish(1, replies, run.d)
    left = [i for i in run.ids if i != 5]
    xs, replies = run.round(2, left)
    total, _ = run.server.finish(2, replies, run.d)
    np.testing.assert_allclose(total, sum(xs.values()), atol=1e-8)


def test_client_refuses_a_round_twice_or_backwards() -> None:
    run = Run()
    part = run.server.start_round(4, run.ids)
    c = run.clients[3]
    c.masked_input(np.ones(run.d), 4, run.roster, part)
    with pytest.raises(SecAggError, match="not after this client's last round 4"):
        c.masked_input(np.ones(run.d), 4, run.roster, part)
    with pytest.raises(SecAggError, match="server: participants list is for round 4, not 5"):
        c.masked_input(np.ones(run.d), 5, run.roster, part)


def test_client_refuses_bad_lists_and_rosters() -> None:
    run = Run(n=4, t=3)
    c = run.clients[3]
    sid = run.server.session_id or b""
    few = m.encode(m.Participants(sid, 1, ((3, 0), (4, 0))))
    with pytest.raises(SecAggError, match="2 participants are below threshold 3"):
        c.masked_input(np.ones(run.d), 1, run.roster, few)
    without = m.encode(m.Participants(sid, 1, ((4, 0), (5, 0), (6, 0))))
    with pytest.raises(SecAggError, match="do not include client 3"):
        c.masked_input(np.ones(run.d), 1, run.roster, without)
    stranger = m.encode(m.Participants(sid, 1, ((3, 0), (4, 0), (99, 0))))
    with pytest.raises(SecAggError, match=r"participants \[99\] are not in the roster"):
        c.masked_input(np.ones(run.d), 1, run.roster, stranger)
    labelled = m.encode(m.Participants(sid, 1, ((3, 0), (4, 2), (5, 0))))
    with pytest.raises(SecAggError, match="material labels"):
        c.masked_input(np.ones(run.d), 1, run.roster, labelled)
    with pytest.raises(SecAggError, match="exceeds max_abs"):
        c.masked_input(np.full(run.d, 2e4), 1, run.roster, run.server.start_round(1, run.ids))
    # a second roster (another session) is refused once the client has bound to one
    c.masked_input(np.ones(run.d), 2, run.roster, run.server.start_round(2, run.ids))
    other = PairwiseSumServer(run.cfg)
    roster2 = other.roster({i: cl.advertise() for i, cl in run.clients.items()})
    with pytest.raises(SecAggError, match="roster differs"):
        c.masked_input(np.ones(run.d), 3, roster2, other.start_round(3, run.ids))
    # a roster that alters this client's key is refused before binding
    fresh = PairwiseSumClient(3, run.cfg)
    with pytest.raises(SecAggError, match="omits client 3 or alters its public key"):
        fresh.masked_input(np.ones(run.d), 1, run.roster, run.server.start_round(4, run.ids))


def test_server_rejects_bad_replies_naming_the_client() -> None:
    run = Run()
    xs, replies = run.round(1)
    with pytest.raises(SecAggError, match="client 3: malformed SUM_INPUT message: vector of "
                                          "40 values, expected 41"):
        run.server.finish(1, replies, run.d + 1)
    bad = dict(replies)
    bad[99] = replies[3]
    with pytest.raises(SecAggError, match="client 99: sent an input for round 1 but is not"):
        run.server.finish(1, bad, run.d)
    swapped = dict(replies)
    swapped[3] = replies[4]
    with pytest.raises(SecAggError, match="claims to come from client 4") as err:
        run.server.finish(1, swapped, run.d)
    assert err.value.sender == 3
    total, _ = run.server.finish(1, replies, run.d)  # the round stayed open
    np.testing.assert_allclose(total, sum(xs.values()), atol=1e-8)
    with pytest.raises(SecAggError, match="must be after round 1"):
        run.server.start_round(1, run.ids)
    with pytest.raises(SecAggError, match="below threshold"):
        run.server.start_round(2, [3])


def test_state_round_trip_keeps_the_last_round_and_refuses_pickling() -> None:
    run = Run(n=3)
    part = run.server.start_round(1, run.ids)
    xs = {i: np.full(run.d, float(i)) for i in run.ids}
    replies = {i: run.clients[i].masked_input(xs[i], 1, run.roster, part) for i in run.ids[:2]}
    restored = load_pairwise_client(dump_pairwise_client(run.clients[run.ids[2]]))
    replies[run.ids[2]] = restored.masked_input(xs[run.ids[2]], 1, run.roster, part)
    total, _ = run.server.finish(1, replies, run.d)
    np.testing.assert_allclose(total, sum(xs.values()))
    again = load_pairwise_client(dump_pairwise_client(restored))
    with pytest.raises(SecAggError, match="not after this client's last round 1"):
        again.masked_input(xs[run.ids[2]], 1, run.roster, part)
    with pytest.raises(TypeError, match="refuses to be pickled"):
        pickle.dumps(restored)
    assert "enc_key" not in repr(restored)
    with pytest.raises(SecAggError, match="not a one-exchange secure-sum client state"):
        load_pairwise_client(b"CVSA\x01 {}")
    with pytest.raises(SecAggError, match="malformed"):
        load_pairwise_client(dump_pairwise_client(restored)[:6] + b"{}")
