"""Secure aggregation (privacy.secagg): sums, dropouts, rounds, encoding, Shamir, framing."""

from __future__ import annotations

import json
import pickle
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privacy.errors import SecAggError
from privacy.secagg import (
    SecAggClient,
    SecAggConfig,
    SecAggServer,
    decode,
    dump_client,
    encode,
    load_client,
)
from privacy.secagg import messages as m
from privacy.secagg.shamir import (
    P521,
    combine,
    lagrange_at_zero,
    share_from_bytes,
    share_to_bytes,
    split,
)


class Run:
    """A secure-aggregation run driven in memory."""

    def __init__(self, n: int = 5, t: int = 3, d: int = 50, *, first_id: int = 1,
                 **cfg: float) -> None:
        self.cfg = SecAggConfig(threshold=t, **cfg)  # type: ignore[arg-type]
        self.ids = list(range(first_id, first_id + n))
        self.d = d
        self.clients = {i: SecAggClient(i, self.cfg) for i in self.ids}
        self.server = SecAggServer(self.cfg, vector_length=d)
        self.roster = self.server.roster({i: c.advertise() for i, c in self.clients.items()})
        self.server.route({i: c.setup(self.roster) for i, c in self.clients.items()})
        self.sid = self.server.session_id or b""
        self.rng = np.random.default_rng(7)

    def inputs(self, ids: list[int], scale: float = 100.0) -> dict[int, np.ndarray]:
        return {i: self.rng.uniform(-scale, scale, self.d) for i in ids}

    def start(self, r: int, participants: list[int] | None = None
              ) -> tuple[bytes, dict[int, bytes]]:
        part = self.server.start_round(r, participants)
        return part, {i: self.server.inbox(i) for i in self.server.active}

    def send(self, r: int, xs: dict[int, np.ndarray], participants: list[int] | None = None
             ) -> dict[int, bytes]:
        part, inbox = self.start(r, participants)
        return {i: self.clients[i].masked_input(x, r, part, inbox[i]) for i, x in xs.items()}

    def round(self, r: int, xs: dict[int, np.ndarray], *, participants: list[int] | None = None,
              answer: list[int] | None = None) -> tuple[np.ndarray, list[int]]:
        request, _ = self.server.collect(r, self.send(r, xs, participants))
        answering = list(xs) if answer is None else answer
        unmask = {i: self.clients[i].unmask(request) for i in answering}
        return self.server.finish(r, unmask)


def close(total: np.ndarray, xs: dict[int, np.ndarray], frac_bits: int = 32) -> bool:
    expected = np.sum(list(xs.values()), axis=0)
    return bool(np.all(np.abs(total - expected) <= len(xs) * 2.0**-frac_bits))


# ---------------------------------------------------------------------- sums and rounds
def test_sum_of_random_vectors_is_exact() -> None:
    run = Run(n=6, t=4, d=1000)
    xs = run.inputs(run.ids)
    total, contributors = run.round(1, xs)
    assert contributors == run.ids
    assert total.dtype == np.float64
    assert close(total, xs)


@settings(max_examples=15, deadline=None)
@given(st.lists(st.lists(st.floats(-1e4, 1e4), min_size=4, max_size=4), min_size=3,
                max_size=3))
def test_sum_property(rows: list[list[float]]) -> None:
    run = Run(n=3, t=2, d=4)
    xs = {i: np.array(row) for i, row in zip(run.ids, rows, strict=True)}
    total, _ = run.round(1, xs)
    assert close(total, xs)


def test_several_rounds_with_changing_participants() -> None:
    run = Run(n=5, t=3, d=64)
    for r, chosen in [(1, run.ids), (2, run.ids[:3]), (3, run.ids[1:]), (5, run.ids)]:
        xs = run.inputs(chosen)
        total, contributors = run.round(r, xs, participants=chosen)
        assert contributors == chosen
        assert close(total, xs)


def test_dropout_before_masked_input() -> None:
    run = Run(n=5, t=3)
    xs = run.inputs(run.ids)
    gone = run.ids[2]
    alive = {i: x for i, x in xs.items() if i != gone}
    replies = run.send(1, alive, run.ids)
    request, _ = run.server.collect(1, replies)
    total, contributors = run.server.finish(
        1, {i: run.clients[i].unmask(request) for i in alive})
    assert contributors == sorted(alive) and close(total, alive)
    assert gone in run.server.excluded and gone not in run.server.active
    with pytest.raises(SecAggError, match="not active"):
        run.server.start_round(2, run.ids)
    xs2 = run.inputs(sorted(alive))
    total2, _ = run.round(2, xs2)  # later rounds run without it
    assert close(total2, xs2)


def test_dropout_after_masked_input_is_still_summed() -> None:
    run = Run(n=5, t=3)
    xs = run.inputs(run.ids)
    late = run.ids[0]
    total, contributors = run.round(1, xs, answer=run.ids[1:])
    assert contributors == run.ids and close(total, xs)
    assert late in run.server.active
    xs2 = run.inputs(run.ids)  # and it takes part in the next round as usual
    total2, _ = run.round(2, xs2)
    assert close(total2, xs2)


def test_fewer_than_threshold_survivors_abandons_the_round() -> None:
    run = Run(n=5, t=3)
    replies = run.send(1, run.inputs(run.ids[:2]), run.ids)
    with pytest.raises(SecAggError, match="below threshold 3; the round is abandoned"):
        run.server.collect(1, replies)
    assert run.server.active == set(run.ids)  # nobody's key was asked for
    xs = run.inputs(run.ids)
    total, _ = run.round(2, xs)  # the two senders use their next material, the rest theirs
    assert close(total, xs)


def test_fewer_than_threshold_unmask_replies_then_retry() -> None:
    run = Run(n=5, t=3)
    xs = run.inputs(run.ids)
    request, _ = run.server.collect(1, run.send(1, xs))
    unmask = {i: run.clients[i].unmask(request) for i in run.ids}
    first = dict(list(unmask.items())[:2])
    with pytest.raises(SecAggError, match="2 unmasking replies, below threshold 3"):
        run.server.finish(1, first)
    total, _ = run.server.finish(1, unmask)  # nothing changed: more replies complete it
    assert close(total, xs)


def test_client_refuses_too_few_survivors() -> None:
    run = Run(n=5, t=3)
    run.server.collect(1, run.send(1, run.inputs(run.ids)))
    forged = m.encode(m.UnmaskRequest(run.sid, 1, tuple(run.ids[:2]), tuple(run.ids[2:])))
    with pytest.raises(SecAggError, match="below threshold 3") as err:
        run.clients[run.ids[0]].unmask(forged)
    assert err.value.sender == "server"


def test_hundred_clients() -> None:
    run = Run(n=100, t=51, d=16, max_abs=10.0)
    xs = run.inputs(run.ids[:97], scale=10.0)
    total, contributors = run.round(1, xs, participants=run.ids, answer=list(xs)[:60])
    assert len(contributors) == 97 and close(total, xs)


def test_large_ids_fit() -> None:
    run = Run(n=3, t=2, d=8, first_id=2**64 - 4)
    xs = run.inputs(run.ids)
    assert close(run.round(1, xs)[0], xs)


# ---------------------------------------------------------------------- masking
def test_masked_input_looks_uniform() -> None:
    run = Run(n=3, t=2, d=20_000, max_abs=1.0)
    x = run.rng.uniform(-1, 1, run.d)
    part, inbox = run.start(1)
    me = run.ids[0]
    reply = run.clients[me].masked_input(x, 1, part, inbox[me])
    y = m.decode_masked_input(reply, me, run.sid, run.d).masked
    words = encode(x, run.cfg)
    # every word moves far outside the encoded range [-2**32, 2**32] (chance ~2**-30 each)
    assert np.count_nonzero(np.abs(y.view(np.int64)) <= 2**33) <= 2
    assert not np.array_equal(y, words)
    # the top byte is uniform: each of the 256 values about d/256 times (chi-square, 255 dof)
    counts = np.bincount((y >> np.uint64(56)).astype(np.int64), minlength=256)
    chi2 = float(np.sum((counts - run.d / 256) ** 2 / (run.d / 256)))
    assert chi2 < 400  # p < 1e-7 for a uniform source; unmasked input gives ~5e6


def test_masks_are_fresh_every_round() -> None:
    run = Run(n=3, t=2, d=32)
    x = np.ones(run.d)
    seen = []
    for r in (1, 2):
        replies = run.send(r, {i: x for i in run.ids})
        seen.append(replies[run.ids[0]])
        request, _ = run.server.collect(r, replies)
        run.server.finish(r, {i: run.clients[i].unmask(request) for i in run.ids})
    y1, y2 = (m.decode_masked_input(b, run.ids[0], run.sid, run.d).masked for b in seen)
    assert not np.any(y1 == y2)


# ---------------------------------------------------------------------- encoding bounds
def test_value_above_max_abs_is_refused_and_state_kept() -> None:
    run = Run(n=3, t=2, d=4, max_abs=5.0)
    part, inbox = run.start(1)
    me = run.ids[0]
    with pytest.raises(SecAggError, match=r"index 2 \(5.5\) exceeds max_abs=5.0"):
        run.clients[me].masked_input([0.0, 1.0, 5.5, -1.0], 1, part, inbox[me])
    xs = {i: np.array([5.0, -5.0, 0.25, 1.0]) for i in run.ids}
    replies = {i: run.clients[i].masked_input(x, 1, part, inbox[i]) for i, x in xs.items()}
    request, _ = run.server.collect(1, replies)
    total, _ = run.server.finish(1, {i: run.clients[i].unmask(request) for i in run.ids})
    assert close(total, xs)


@pytest.mark.parametrize("bad", [[np.nan], [np.inf], [[1.0, 2.0]], ["a"]])
def test_encode_rejects_non_finite_and_bad_shapes(bad: object) -> None:
    with pytest.raises(SecAggError):
        encode(bad, SecAggConfig(threshold=2))  # type: ignore[arg-type]


def test_encode_decode_round_trip_and_negative_values() -> None:
    cfg = SecAggConfig(threshold=2, frac_bits=16, max_abs=100.0)
    x = np.array([-100.0, -1.5, 0.0, 2**-17, 3.25, 100.0])
    words = encode(x, cfg)
    assert words.dtype == np.uint64
    assert int(words[1]) == 2**64 - int(1.5 * 2**16)  # two's complement
    assert np.all(np.abs(decode(words, cfg) - x) <= 2.0**-17)


@pytest.mark.parametrize("kwargs", [
    {"threshold": 1}, {"threshold": 2, "frac_bits": 63}, {"threshold": 2, "max_abs": 0.0},
    {"threshold": 2, "max_abs": float("inf")}, {"threshold": 2, "frac_bits": 62, "max_abs": 2.0},
])
def test_config_validation(kwargs: dict[str, float]) -> None:
    with pytest.raises(SecAggError):
        SecAggConfig(**kwargs)  # type: ignore[arg-type]


def test_capacity_bound_n_times_max_abs() -> None:
    cfg = SecAggConfig(threshold=2, frac_bits=32, max_abs=2.0**29)
    assert cfg.max_clients == (2**63 - 1) // (2**61 + 1) == 3
    cfg.check_capacity(3)
    with pytest.raises(SecAggError, match="could overflow"):
        cfg.check_capacity(4)
    server = SecAggServer(cfg, vector_length=1)
    clients = [SecAggClient(i, cfg) for i in range(4)]
    with pytest.raises(SecAggError, match="could overflow"):
        server.roster({c.client_id: c.advertise() for c in clients})


def test_sum_at_the_bound_does_not_wrap() -> None:
    run = Run(n=3, t=2, d=2, frac_bits=32, max_abs=2.0**29)
    xs = {i: np.array([2.0**29, -(2.0**29)]) for i in run.ids}
    assert close(run.round(1, xs)[0], xs)


# ---------------------------------------------------------------------- Shamir
def test_shamir_known_vector() -> None:
    # Wikipedia, "Shamir's secret sharing": p = 1613, f(x) = 1234 + 166x + 94x^2
    shares = split(1234, 3, [1, 2, 3, 4, 5, 6], prime=1613, coefficients=[166, 94])
    assert shares == {1: 1494, 2: 329, 3: 965, 4: 176, 5: 1188, 6: 775}
    assert combine({2: 329, 4: 176, 5: 1188}, prime=1613) == 1234
    assert combine({1: 1494, 6: 775, 3: 965}, prime=1613) == 1234
    assert combine({1: 1494, 2: 329}, prime=1613) != 1234  # two points: a different line


def test_lagrange_known_coefficients() -> None:
    # points 1, 2, 3: f(0) = 3 f(1) - 3 f(2) + f(3)
    assert lagrange_at_zero([1, 2, 3], prime=1613) == [3, 1613 - 3, 1]


@settings(max_examples=60, deadline=None)
@given(st.integers(0, P521 - 1), st.integers(1, 6), st.integers(0, 6), st.randoms())
def test_shamir_round_trip(secret: int, t: int, extra: int, rnd: object) -> None:
    xs = [x + 1 for x in rnd.sample(range(10**6), t + extra)]  # type: ignore[attr-defined]
    shares = split(secret, t, xs)
    subset = rnd.sample(xs, t)  # type: ignore[attr-defined]
    assert combine({x: shares[x] for x in subset}) == secret
    assert all(share_from_bytes(share_to_bytes(s)) == s for s in shares.values())


def test_shamir_rejects_bad_input() -> None:
    with pytest.raises(SecAggError):
        split(5, 3, [1, 2])
    with pytest.raises(SecAggError):
        split(5, 2, [1, 1, 2])
    with pytest.raises(SecAggError):
        split(P521, 2, [1, 2])
    with pytest.raises(SecAggError, match="not an element"):
        share_from_bytes(P521.to_bytes(66, "big"))


# ---------------------------------------------------------------------- framing
def test_every_message_round_trips() -> None:
    sid = bytes(range(32))
    box = bytes(range(160))
    adv = m.Advert(7, b"a" * 32)
    assert m.decode_advert(m.encode(adv), 7) == adv
    roster = m.Roster(b"n" * 16, 3, 32, 1e4, (adv, m.Advert(9, b"c" * 32)))
    assert m.decode_roster(m.encode(roster)) == roster
    bundle = m.Bundle(b"k" * 32, b"c" * 32, (m.Box(9, box),))
    setup = m.Setup(sid, 7, bundle)
    assert m.decode_setup(m.encode(setup), 7, sid) == setup
    inbox = m.Inbox(sid, 9, (m.InboxEntry(7, 0, b"k" * 32, box),
                             m.InboxEntry(8, 4, b"j" * 32, box)))
    assert m.decode_inbox(m.encode(inbox), sid) == inbox
    part = m.Participants(sid, 4, ((7, 0), (9, 3)))
    assert m.decode_participants(m.encode(part), sid) == part
    y = np.arange(5, dtype=np.uint64) * np.uint64(2**61)
    masked = m.decode_masked_input(m.encode(m.MaskedInput(sid, 4, 7, y, bundle)), 7, sid, 5)
    assert np.array_equal(masked.masked, y) and masked.bundle == bundle
    req = m.UnmaskRequest(sid, 4, (7,), (9,))
    assert m.decode_unmask_request(m.encode(req), sid) == req
    rep = m.UnmaskReply(sid, 4, 7, ((7, P521 - 1),), ((9, 12345),))
    assert m.decode_unmask_reply(m.encode(rep), 7, sid) == rep


def _collect_error(run: Run, sender: int, data: bytes) -> SecAggError:
    with pytest.raises(SecAggError) as err:
        run.server.collect(1, {sender: data})
    assert err.value.sender == sender
    assert f"client {sender}" in str(err.value)
    return err.value


@pytest.fixture()
def one_reply() -> tuple[Run, int, bytes]:
    run = Run(n=3, t=2, d=10)
    replies = run.send(1, run.inputs(run.ids))
    return run, run.ids[1], replies[run.ids[1]]


@pytest.mark.parametrize("cut", [0, 3, 6, 40, 60, 100, 130, -1])
def test_truncated_masked_input_names_the_sender(one_reply: tuple[Run, int, bytes],
                                                 cut: int) -> None:
    run, sender, data = one_reply
    _collect_error(run, sender, data[:cut])


def test_malformed_masked_inputs_name_the_sender(one_reply: tuple[Run, int, bytes]) -> None:
    run, sender, data = one_reply
    assert "trailing" in str(_collect_error(run, sender, data + b"\0"))
    assert "bad magic" in str(_collect_error(run, sender, b"XXXX" + data[4:]))
    assert "version" in str(_collect_error(run, sender, data[:4] + b"\x09" + data[5:]))
    assert "expected a MASKED_INPUT" in str(_collect_error(run, sender, data[:5] + b"\x07"
                                                           + data[6:]))
    assert "another session" in str(_collect_error(run, sender, data[:6] + bytes(32)
                                                   + data[38:]))
    assert "claims to come from client" in str(_collect_error(run, run.ids[0], data))
    length_at = 6 + 32 + 4 + 8
    longer = data[:length_at] + struct.pack(">I", 11) + data[length_at + 4:]
    assert "expected 10" in str(_collect_error(run, sender, longer))
    huge = data[:length_at] + struct.pack(">I", 2**31) + data[length_at + 4:]
    assert "expected 10" in str(_collect_error(run, sender, huge))
    count_at = length_at + 4 + 80 + 32 + 32
    many = data[:count_at] + struct.pack(">I", 10**6) + data[count_at + 4:]
    assert "exceed the limit" in str(_collect_error(run, sender, many))
    bad_key = data[: length_at + 4 + 80] + bytes(32) + data[length_at + 4 + 80 + 32:]
    assert "public key is invalid" in str(_collect_error(run, sender, bad_key))
    assert "expected bytes" in str(_collect_error(run, sender, "text"))  # type: ignore[arg-type]


def test_duplicate_or_unknown_share_receivers_are_rejected(
        one_reply: tuple[Run, int, bytes]) -> None:
    run, sender, data = one_reply
    msg = m.decode_masked_input(data, sender, run.sid, run.d)
    first = msg.bundle.boxes[0]
    dup = data[: -(8 + 160)] + struct.pack(">Q", first.peer) + first.data  # same receiver twice
    assert "strictly ascending" in str(_collect_error(run, sender, dup))

    def with_boxes(boxes: tuple[m.Box, ...]) -> bytes:
        bundle = m.Bundle(msg.bundle.mask_key, msg.bundle.commitment, boxes)
        return m.encode(m.MaskedInput(run.sid, 1, sender, msg.masked, bundle))

    stranger = with_boxes((*msg.bundle.boxes, m.Box(999, bytes(160))))
    assert "exactly the other roster clients" in str(_collect_error(run, sender, stranger))
    missing = with_boxes(msg.bundle.boxes[1:])
    assert "exactly the other roster clients" in str(_collect_error(run, sender, missing))


def test_reply_from_unknown_or_non_participant_is_rejected() -> None:
    run = Run(n=4, t=2, d=4)
    replies = run.send(1, run.inputs(run.ids[:3]), participants=run.ids[:3])
    with pytest.raises(SecAggError, match="client 4: .*not a participant") as err:
        run.server.collect(1, {**replies, 4: replies[1]})
    assert err.value.sender == 4
    with pytest.raises(SecAggError, match="client 77: .*not a participant"):
        run.server.collect(1, {**replies, 77: replies[1]})
    request, _ = run.server.collect(1, replies)  # the batch was rejected as a whole
    unmask = {i: run.clients[i].unmask(request) for i in run.ids[:3]}
    with pytest.raises(SecAggError, match="client 4: .*not a survivor"):
        run.server.finish(1, {**unmask, 4: unmask[1]})
    with pytest.raises(SecAggError, match="client 2: .*truncated") as err:
        run.server.finish(1, {**unmask, 2: unmask[2][:-5]})
    assert err.value.sender == 2


def test_unmask_reply_with_wrong_owner_set_is_rejected() -> None:
    run = Run(n=4, t=2, d=4)
    request, _ = run.server.collect(1, run.send(1, run.inputs(run.ids)))
    good = m.decode_unmask_reply(run.clients[1].unmask(request), 1, run.sid)
    short = m.encode(m.UnmaskReply(run.sid, 1, 1, good.seed_shares[1:], ()))
    with pytest.raises(SecAggError, match="client 1: .*one share per survivor"):
        run.server.finish(1, {1: short})
    extra = m.encode(m.UnmaskReply(run.sid, 1, 1, good.seed_shares, ((3, 5),)))
    with pytest.raises(SecAggError, match="client 1: .*one share per survivor"):
        run.server.finish(1, {1: extra})
    late = m.encode(m.UnmaskReply(run.sid, 2, 1, good.seed_shares, ()))
    with pytest.raises(SecAggError, match="client 1: unmasking reply is for round 2, not 1"):
        run.server.finish(1, {1: late})


def test_malformed_server_messages_name_the_server() -> None:
    run = Run(n=3, t=2, d=4)
    part, inbox = run.start(1)
    me = run.ids[0]
    client = run.clients[me]
    for bad_part, bad_inbox in [(part[:-3], inbox[me]), (part, inbox[me][:-1]),
                                (part + b"x", inbox[me]), (inbox[me], part)]:
        with pytest.raises(SecAggError) as err:
            client.masked_input(np.zeros(4), 1, bad_part, bad_inbox)
        assert err.value.sender == "server" and str(err.value).startswith("server: ")
    with pytest.raises(SecAggError, match="server: .*addressed to client 2"):
        client.masked_input(np.zeros(4), 1, part, inbox[run.ids[1]])
    client.masked_input(np.zeros(4), 1, part, inbox[me])  # still usable


def test_tampered_share_names_its_author() -> None:
    run = Run(n=3, t=2, d=4)
    part, inbox = run.start(1)
    me = run.ids[0]
    data = bytearray(inbox[me])
    data[-1] ^= 1  # the last entry's tag: a share from the last peer
    with pytest.raises(SecAggError, match=f"client {run.ids[-1]}: .*did not authenticate") as e:
        run.clients[me].masked_input(np.zeros(4), 1, part, bytes(data))
    assert e.value.sender == run.ids[-1]


def test_setup_messages_are_checked() -> None:
    cfg = SecAggConfig(threshold=2)
    clients = {i: SecAggClient(i, cfg) for i in (1, 2, 3)}
    server = SecAggServer(cfg, vector_length=3)
    adverts = {i: c.advertise() for i, c in clients.items()}
    with pytest.raises(SecAggError, match="client 2: .*claims to come from client 1") as err:
        server.roster({**adverts, 2: adverts[1]})
    assert err.value.sender == 2
    with pytest.raises(SecAggError, match="client 3: .*truncated"):
        server.roster({**adverts, 3: adverts[3][:-1]})
    roster = server.roster(adverts)
    setups = {i: c.setup(roster) for i, c in clients.items()}
    with pytest.raises(SecAggError, match="client 9: not in the roster"):
        server.route({**setups, 9: setups[1]})
    with pytest.raises(SecAggError, match="client 3: .*claims"):
        server.route({**setups, 3: setups[2]})
    inbox = server.route({1: setups[1], 2: setups[2]})  # 3 drops during setup
    assert set(inbox) == server.active == {1, 2} and server.excluded == {3}
    with pytest.raises(SecAggError, match="not active"):
        server.start_round(1, [1, 2, 3])


# ---------------------------------------------------------------------- client state
def test_clients_rebuilt_from_state_between_every_message() -> None:
    """As under Flower, where a ClientApp is rebuilt for every message."""
    cfg = SecAggConfig(threshold=2, max_abs=10.0)
    ids = [11, 12, 13]
    saved = {i: dump_client(SecAggClient(i, cfg)) for i in ids}

    def step(i: int, call: str, *args: object) -> bytes:
        client = load_client(saved[i])  # the config travels in the state
        out: bytes = getattr(client, call)(*args)
        saved[i] = dump_client(client)
        return out

    server = SecAggServer(cfg, vector_length=3)
    roster = server.roster({i: step(i, "advertise") for i in ids})
    inbox = server.route({i: step(i, "setup", roster) for i in ids})
    rng = np.random.default_rng(3)
    for r in (1, 2):
        xs = {i: rng.uniform(-10, 10, 3) for i in ids}
        part = server.start_round(r)
        replies = {i: step(i, "masked_input", xs[i], r, part, inbox[i]) for i in ids}
        request, inbox = server.collect(r, replies)
        total, _ = server.finish(r, {i: step(i, "unmask", request) for i in ids})
        assert close(total, xs)


def test_state_misuse() -> None:
    cfg = SecAggConfig(threshold=2)
    client = SecAggClient(5, cfg)
    state = dump_client(client)
    with pytest.raises(SecAggError, match="another configuration"):
        load_client(state, SecAggConfig(threshold=3))
    with pytest.raises(SecAggError, match="malformed"):
        load_client(state[:-2], cfg)
    with pytest.raises(SecAggError, match="not a secure-aggregation client state"):
        load_client(b"CVSA\x01\x06" + state[6:], cfg)
    with pytest.raises(TypeError, match="refuses to be pickled"):
        pickle.dumps(client)
    secret = json.loads(state[6:])["enc_key"]
    assert secret not in repr(client) and repr(client).startswith("SecAggClient(")


def test_client_checks_the_participants() -> None:
    run = Run(n=4, t=3, d=4)
    client, x = run.clients[1], np.zeros(4)
    _, inbox = run.start(1)

    def part(r: int, ids: tuple[int, ...], label: int = 0) -> bytes:
        return m.encode(m.Participants(run.sid, r, tuple((v, label) for v in ids)))

    cases = [
        (part(2, (1, 2, 3)), 1, "is for round 2, not 1"),
        (part(1, (2, 3, 4)), 1, "do not include client 1"),
        (part(1, (1, 2, 3, 99)), 1, r"participants \[99\] are not in the roster"),
        (part(1, (1, 2)), 1, "2 participants are below threshold 3"),
        (part(0, (1, 2, 3)), 0, "round 0 is not after"),
        (part(1, (1, 2, 3), label=5), 1, "with label 5, but its unused material has label 0"),
    ]
    for data, r, message in cases:
        with pytest.raises(SecAggError, match=message):
            client.masked_input(x, r, data, inbox[1])
    wrong = m.encode(m.Participants(run.sid, 1, ((1, 0), (2, 7), (3, 0))))
    with pytest.raises(SecAggError, match=r"holds no shares of participants \[2\]"):
        client.masked_input(x, 1, wrong, inbox[1])
    client.masked_input(x, 1, part(1, (1, 2, 3)), inbox[1])
    with pytest.raises(SecAggError, match="round 1 is not after this client's last round 1"):
        client.masked_input(x, 1, part(1, (1, 2, 3)), inbox[1])
    with pytest.raises(SecAggError, match="label 0, but its unused material has label 1"):
        client.masked_input(x, 2, part(2, (1, 2, 3)), inbox[1])  # as if its reply was lost


def test_server_enforces_the_order_of_steps() -> None:
    cfg = SecAggConfig(threshold=2)
    clients = {i: SecAggClient(i, cfg) for i in (1, 2)}
    server = SecAggServer(cfg, vector_length=2)
    with pytest.raises(SecAggError, match="after roster"):
        server.route({})
    with pytest.raises(SecAggError, match="before route"):
        server.start_round(1)
    roster = server.roster({i: c.advertise() for i, c in clients.items()})
    with pytest.raises(SecAggError, match="roster already built"):
        server.roster({})
    inbox = server.route({i: c.setup(roster) for i, c in clients.items()})
    with pytest.raises(SecAggError, match="not awaiting collect"):
        server.collect(1, {})
    part = server.start_round(3)
    with pytest.raises(SecAggError, match="must be after round 3"):
        server.start_round(2)
    with pytest.raises(SecAggError, match="not awaiting finish"):
        server.finish(3, {})
    replies = {i: c.masked_input(np.ones(2), 3, part, inbox[i]) for i, c in clients.items()}
    with pytest.raises(SecAggError, match="not awaiting collect"):
        server.collect(2, replies)
    request, _ = server.collect(3, replies)
    total, _ = server.finish(3, {i: c.unmask(request) for i, c in clients.items()})
    assert np.array_equal(total, [2.0, 2.0])
    with pytest.raises(SecAggError, match="not awaiting finish"):
        server.finish(3, {})
    with pytest.raises(SecAggError, match="vector_length"):
        SecAggServer(cfg, vector_length=0)


def test_returned_inboxes_serve_partial_participation_and_length_changes() -> None:
    cfg = SecAggConfig(threshold=2, max_abs=10.0)
    ids = [1, 2, 3, 4, 5]
    clients = {i: SecAggClient(i, cfg) for i in ids}
    server = SecAggServer(cfg, vector_length=3)
    roster = server.roster({i: c.advertise() for i, c in clients.items()})
    inbox = server.route({i: c.setup(roster) for i, c in clients.items()})
    rng = np.random.default_rng(5)
    for r, chosen, d in [(1, [1, 2, 3], 3), (2, [3, 4, 5], 6), (3, ids, 2)]:
        server.vector_length = d
        assert inbox == {i: server.inbox(i) for i in ids}
        xs = {i: rng.uniform(-10, 10, d) for i in chosen}
        part = server.start_round(r, chosen)
        replies = {i: clients[i].masked_input(xs[i], r, part, inbox[i]) for i in chosen}
        request, inbox = server.collect(r, replies)
        total, _ = server.finish(r, {i: clients[i].unmask(request) for i in chosen})
        assert total.shape == (d,) and close(total, xs)
    with pytest.raises(SecAggError, match="vector_length"):
        server.vector_length = 0


def test_deeply_nested_client_state_is_a_secagg_error() -> None:
    head = dump_client(SecAggClient(1, SecAggConfig(threshold=2)))[:6]
    with pytest.raises(SecAggError):
        load_client(head + b"[" * 100_000 + b"]" * 100_000)
