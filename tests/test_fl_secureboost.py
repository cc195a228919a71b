"""SecureBoost-style vertical trees (``federated.trees.secureboost``), in one process.

The acceptance check of the vertical half of the federated-trees issue at the booster
level: the guest's model, grown from its own plaintext histograms and the hosts' Paillier
sums, equals covault's trainer and XGBoost on the joined binned columns.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("phe")

from federated.trees.booster import F32, Layout, Params, train_local  # noqa: E402
from federated.trees.secureboost import (  # noqa: E402
    GHPacking,
    Host,
    joint_layout,
    train_vertical,
)
from privacy.errors import InputError  # noqa: E402

TOL = 1e-6


def _parties(seed: int, n: int) -> tuple[np.ndarray, np.ndarray, Layout, list[Host],
                                           np.ndarray]:
    rng = np.random.default_rng(seed)
    g_bins, a_bins, b_bins = [8, 6], [10, 4], [7]
    guest = np.column_stack([rng.integers(0, b + 1, n) for b in g_bins]).astype(np.uint16)
    host_a = np.column_stack([rng.integers(0, b + 1, n) for b in a_bins]
                             + [rng.integers(0, 4, n)]).astype(np.uint16)
    host_b = np.column_stack([rng.integers(1, b + 1, n) for b in b_bins]).astype(np.uint16)
    logit = (guest[:, 0] / 4.0 - 1 + 0.9 * (host_a[:, 0] > 6) - 0.8 * (host_a[:, 2] == 2)
             + 0.5 * (host_b[:, 0] % 2) + 0.7 * (host_a[:, 1] == 0))
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    g_layout = Layout(["age", "balance"], g_bins, [False, False])
    hosts = [Host("telco", host_a, Layout(["spend", "tenure", "plan"], a_bins + [3],
                                         [False, False, True], {"plan": ["x", "y", "z"]})),
             Host("shop", host_b, Layout(["orders"], b_bins, [False]))]
    joined = np.hstack([guest, host_a, host_b])
    return guest, y, g_layout, hosts, joined


def test_packing_round_trips_signed_sums_exactly() -> None:
    rng = np.random.default_rng(1)
    g = (rng.random(500).astype(F32) - F32(0.5)) * F32(2)
    h = np.maximum(rng.random(500).astype(F32) * F32(0.25), F32(1e-16))
    pack = GHPacking()
    enc = pack.encode(g, h)
    G, H = pack.decode([sum(enc[:250]), sum(enc), enc[3], 0])
    exact = [sum(float(x) for x in g[:250]), sum(float(x) for x in g), float(g[3]), 0.0]
    assert np.allclose(G, exact, rtol=1e-15, atol=0)
    assert np.allclose(H, [sum(float(x) for x in h[:250]), sum(float(x) for x in h),
                           float(h[3]), 0.0], rtol=1e-15, atol=0)
    with pytest.raises(InputError, match="exceed"):
        GHPacking(scale=80, slot=84).encode(g, h)


def test_vertical_model_equals_the_pooled_trainers() -> None:
    guest, y, g_layout, hosts, joined = _parties(0, 900)
    p = Params(trees=3, max_depth=3, learning_rate=0.3, min_child_weight=1.0)
    trained = [Host(h.name, h.codes[:700], h.layout) for h in hosts]
    model, losses = train_vertical(guest[:700], y[:700], g_layout, trained, p, key_bits=2048)
    assert losses == sorted(losses, reverse=True)
    layout, owner = joint_layout(g_layout, [(h.name, h.layout) for h in hosts])
    assert [o for o, _ in owner] == ["", "", "telco", "telco", "telco", "shop"]
    assert layout.names[2:] == ["telco/0", "telco/1", "telco/2", "shop/0"]
    pooled, _ = train_local(joined[:700], y[:700], layout, p)
    # each host routes new rows with its own lookup table of splits
    test_hosts = {h.name: h.with_rows(o.codes[700:]) for h, o in zip(trained, hosts, strict=True)}
    assert all(h.splits for h in trained)
    ours = model.predict_proba(guest[700:], test_hosts)
    assert np.max(np.abs(ours - pooled.predict_proba(joined[700:]))) < TOL
    for a, b in zip(model.model.trees, pooled.trees, strict=True):
        assert np.array_equal(a.split, b.split) and np.array_equal(a.column, b.column)
        assert np.array_equal(a.threshold[a.split], b.threshold[b.split])
    # the hosts' columns were used, and importance is reported per party
    used = {owner[int(c)][0] for t in model.model.trees for c in t.column[t.split]}
    assert {"telco", "shop"} <= used
    imp = model.importance()
    assert set(imp) <= {"guest", "telco", "shop"} and "telco" in imp
    assert all(name.startswith("telco/") for name in imp["telco"]["gain"])

    xgb = pytest.importorskip("xgboost")
    del xgb
    from federated.trees.pooled import fit_xgboost, predict_xgboost

    booster, n_trees = fit_xgboost(joined[:700], y[:700], layout, p)
    theirs = predict_xgboost(booster, n_trees, joined[700:], layout)
    assert np.max(np.abs(ours - theirs)) < TOL


def test_host_sums_are_rerandomised() -> None:
    """The guest must not find which rows are in a bin by multiplying its own
    ciphertexts: a one-row bin comes back as a different ciphertext of the same value."""
    from privacy.he.paillier_keys import generate_keypair

    guest, y, g_layout, hosts, _ = _parties(2, 40)
    pub, priv = generate_keypair(2048, fast_randomness=True)
    host = hosts[1]
    host.receive_key(pub)
    pack = GHPacking()
    g = np.linspace(-0.5, 0.5, 40).astype(F32)
    h = np.full(40, F32(0.2))
    enc = pub.encrypt_raw(pack.encode(g, h))
    sums = host.encrypted_histograms(enc, np.zeros(40, dtype=np.int64), [0], pack)
    assert len(sums) == -(-host.layout.width // pack.per_ciphertext(2048))
    assert not set(map(int, sums)) & set(map(int, enc))
    G, H = pack.decode(pack.unpack(priv.decrypt_raw(sums), host.layout.width, 2048))
    codes = host.codes[:, 0]
    for b in range(1, host.layout.bins[0] + 1):
        assert G[b] == pytest.approx(float(g[codes == b].astype(np.float64).sum()), abs=1e-12)
        assert H[b] == pytest.approx(float(h[codes == b].astype(np.float64).sum()), abs=1e-12)


def test_bad_host_columns_name_the_party_and_column() -> None:
    lay = Layout(["a", "b"], [4, 4], [False, False])
    good = np.tile(np.arange(1, 5, dtype=np.uint16), 5)
    with pytest.raises(InputError, match=r"host 'telco': column 'b' is constant"):
        Host("telco", np.column_stack([good, np.full(20, 2, np.uint16)]), lay)
    with pytest.raises(InputError, match=r"host 'telco': column 'b' is all missing"):
        Host("telco", np.column_stack([good, np.zeros(20, np.uint16)]), lay)
    with pytest.raises(InputError, match=r"host 'telco': column 'a' .*mismatched bins"):
        Host("telco", np.column_stack([good + 3, good]), lay)
    guest, y, g_layout, hosts, _ = _parties(3, 50)
    short = Host("shop", hosts[1].codes[:40], hosts[1].layout)
    with pytest.raises(InputError, match=r"host 'shop' has 40 aligned rows, the guest 50"):
        train_vertical(guest, y, g_layout, [short], Params(trees=1), key_bits=2048)


def test_guest_steps_out_of_order_or_short_answers_name_the_host() -> None:
    from federated.trees.secureboost import Guest
    from privacy.errors import FederationError

    guest, y, g_layout, hosts, _ = _parties(4, 300)
    g = Guest(guest, y, g_layout, [(h.name, h.layout) for h in hosts],
              Params(trees=1, max_depth=2), key_bits=2048)
    with pytest.raises(FederationError, match="no tree level is waiting"):
        g.level({})
    enc = g.begin_tree()
    for h in hosts:
        h.receive_key(g.public)
    sums = {h.name: h.encrypted_histograms(enc, g.pos, g.build, g.pack) for h in hosts}
    with pytest.raises(FederationError, match="host 'shop' sent no histogram sums"):
        g.level({"telco": sums["telco"]})
    asks = g.level(sums)
    (host,) = asks  # the root splits on a host column
    with pytest.raises(FederationError, match=rf"host '{host}' answered 0 of 1 routing"):
        g.routed({})
