"""Central DP for horizontal rounds: noise scale, client clipping, adaptive norm, epsilon."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import numpy as np
import pytest

pytest.importorskip("flwr")
pytest.importorskip("dp_accounting")

from flwr.app import (  # noqa: E402
    Array,
    ArrayRecord,
    ConfigRecord,
    Context,
    Error,
    Message,
    Metadata,
    MetricRecord,
    RecordDict,
)
from flwr.serverapp.strategy import (  # noqa: E402
    DifferentialPrivacyClientSideFixedClipping,
    FedAdam,
    FedAvg,
    FedAvgM,
    FedMedian,
    FedProx,
    Krum,
    Strategy,
)
from flwr.supercore.task_identity import TaskIdentity  # noqa: E402

from federated.horizontal.dp import (  # noqa: E402
    KEY_ADAPTIVE,
    KEY_CLIPPING_NORM,
    KEY_UNCLIPPED,
    KEY_UNCLIPPED_FRACTION,
    KEY_UNIFORM,
    KEY_WEIGHT_KEY,
    CentralDP,
    clip_update,
    clipping_mod,
    epsilon_spent,
    validate_dp,
)
from privacy.errors import ConfigError, InputError  # noqa: E402

CTX = Context(run_id=1, node_id=1, node_config={}, state=RecordDict(), run_config={})


def _instruction(content: RecordDict, node: int = 1, mtype: str = "train") -> Message:
    meta = Metadata(run_id=1, message_id=f"m{node}", src_node_id=0, dst_node_id=node,
                    reply_to_message_id="", group_id="1", created_at=0.0, ttl=3600.0,
                    message_type=mtype)
    return Message(metadata=meta, content=content)


def _reply(msg: Message, arrays: dict[str, np.ndarray], metrics: dict[str, float]) -> Message:
    return Message(RecordDict({"arrays": ArrayRecord({k: Array(v) for k, v in arrays.items()}),
                               "metrics": MetricRecord(metrics)}), reply_to=msg)


def _error(msg: Message) -> Message:
    return Message(Error(code=0, reason="party failed"), reply_to=msg)


def _arrays(record: ArrayRecord) -> dict[str, np.ndarray]:
    return {k: record[k].numpy() for k in record}


def _norm(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    return math.sqrt(sum(float(np.sum((a[k].astype(np.float64) - b[k]) ** 2)) for k in a))


class FakeMean(Strategy):
    """Sends one message per node and averages the replies' arrays uniformly."""

    def __init__(self, nodes: int) -> None:
        self.nodes = nodes
        self.configs: list[ConfigRecord] = []

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord,
                        grid: object) -> Iterable[Message]:
        self.configs.append(config)
        content = RecordDict({"arrays": arrays, "config": config})
        return [_instruction(content, node) for node in range(1, self.nodes + 1)]

    def aggregate_train(self, server_round: int, replies: Iterable[Message]
                        ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        ok = [r for r in replies if not r.has_error()]
        if not ok:
            return None, None
        keys = list(ok[0].content["arrays"].keys())
        mean = {k: np.mean([r.content["arrays"][k].numpy() for r in ok], axis=0).astype(
            ok[0].content["arrays"][k].numpy().dtype) for k in keys}
        bits = [r.content["metrics"].get(KEY_UNCLIPPED, 0) for r in ok]
        return (ArrayRecord({k: Array(v) for k, v in mean.items()}),
                MetricRecord({KEY_UNCLIPPED: float(np.mean(bits)), "loss": 0.5}))

    def configure_evaluate(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord,
                           grid: object) -> Iterable[Message]:
        return []

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]
                           ) -> MetricRecord | None:
        return MetricRecord({"auc": 0.7})

    def summary(self) -> None:
        pass


def _fixed(inner: Strategy, **kw: object) -> CentralDP:
    args: dict[str, object] = dict(noise_multiplier=1.3, clipping="fixed", clipping_norm=2.0,
                                   num_clients=4, delta=1e-5, seed=7)
    args.update(kw)
    return CentralDP(strategy=inner, **args)  # type: ignore[arg-type]


# --- noise -------------------------------------------------------------------------------


def _noise_round(cdp: CentralDP, inner: FakeMean, global_: dict[str, np.ndarray], rnd: int,
                 failing: int = 0) -> dict[str, np.ndarray]:
    """One round in which every party sends the global model back (zero update)."""
    record = ArrayRecord({k: Array(v) for k, v in global_.items()})
    msgs = list(cdp.configure_train(rnd, record, ConfigRecord(), None))  # type: ignore[arg-type]
    replies = [_error(m) if i < failing else _reply(m, global_, {"num-examples": 1})
               for i, m in enumerate(msgs)]
    out, _ = cdp.aggregate_train(rnd, replies)
    assert out is not None
    return {k: out[k].numpy().astype(np.float64) - global_[k] for k in global_}


def test_noise_std_is_sigma_c_over_m() -> None:
    inner = FakeMean(nodes=4)
    cdp = _fixed(inner)
    global_ = {"w": np.linspace(-1, 1, 60_000), "b": np.full((200, 200), 0.25)}
    noise = np.concatenate([v.ravel() for v in _noise_round(cdp, inner, global_, 1).values()])
    # 100,000 draws: the sample std's standard error is 0.22 %; 2 % is ~9 of them, while
    # sigma*C/sqrt(m) or m-1 in the denominator would be off by 100 % or 33 %.
    assert noise.std() == pytest.approx(1.3 * 2.0 / 4, rel=0.02)
    assert abs(noise.mean()) < 5 * 0.65 / math.sqrt(noise.size)
    assert cdp.history[-1].noise_std == pytest.approx(1.3 * 2.0 / 4)
    assert cdp.history[-1].num_clients == 4
    # two parties fail: m = 2 parties aggregated, the noise doubles
    noise2 = np.concatenate([v.ravel() for v in
                             _noise_round(cdp, inner, global_, 2, failing=2).values()])
    assert noise2.std() == pytest.approx(1.3 * 2.0 / 2, rel=0.02)
    assert [h.num_clients for h in cdp.history] == [4, 2]


def test_noise_keeps_dtype_and_seed_reproduces() -> None:
    global_ = {"w": np.ones(1000, dtype=np.float32)}
    a = _noise_round(_fixed(FakeMean(4), seed=3), FakeMean(4), global_, 1)
    cdp_b = _fixed(FakeMean(4), seed=3)
    b = _noise_round(cdp_b, FakeMean(4), global_, 1)
    c = _noise_round(_fixed(FakeMean(4), seed=None), FakeMean(4), global_, 1)
    d = _noise_round(_fixed(FakeMean(4), seed=None), FakeMean(4), global_, 1)
    assert np.array_equal(a["w"], b["w"])
    assert not np.array_equal(c["w"], d["w"])
    record = ArrayRecord({"w": Array(global_["w"])})
    msgs = list(cdp_b.configure_train(2, record, ConfigRecord(), None))  # type: ignore[arg-type]
    out, _ = cdp_b.aggregate_train(2, [_reply(m, global_, {}) for m in msgs])
    assert out is not None and out["w"].numpy().dtype == np.float32


def test_adaptive_model_noise_multiplier() -> None:
    cdp = CentralDP(strategy=FakeMean(50), noise_multiplier=1.0, clipping="adaptive",
                    num_clients=50, delta=1e-5, seed=1)
    assert cdp.clipped_count_stddev == pytest.approx(2.5)
    assert cdp.clipping_norm == 0.1
    assert cdp.model_noise_multiplier == pytest.approx((1.0 - 5.0 ** -2) ** -0.5)
    few = CentralDP(strategy=FakeMean(3), noise_multiplier=1.0, clipping="adaptive",
                    num_clients=3, delta=1e-5)  # a few banks: the count noise follows sigma
    assert few.clipped_count_stddev == 1.0
    with pytest.raises(ConfigError, match="dp.clipped_count_stddev"):
        CentralDP(strategy=FakeMean(3), noise_multiplier=1.0, clipping="adaptive",
                  num_clients=3, clipped_count_stddev=0.5, delta=1e-5)
    ok = CentralDP(strategy=FakeMean(3), noise_multiplier=1.0, clipping="adaptive",
                   num_clients=3, clipped_count_stddev=1.0, delta=1e-5)
    assert ok.model_noise_multiplier == pytest.approx((1.0 - 0.25) ** -0.5)


# --- clipping on the client ------------------------------------------------------------


def _train_msg(global_: dict[str, np.ndarray], **config: object) -> Message:
    cfg = ConfigRecord({KEY_CLIPPING_NORM: 1.5, **config})  # type: ignore[dict-item]
    return _instruction(RecordDict({"arrays": ArrayRecord({k: Array(v) for k, v in
                                                           global_.items()}), "config": cfg}))


def _party(delta: float, weight: int = 100) -> Callable[[Message, Context], Message]:
    def train(msg: Message, ctxt: Context) -> Message:
        glob = _arrays(msg.content["arrays"])
        local = {k: (v + delta * np.arange(1, v.size + 1).reshape(v.shape)).astype(v.dtype)
                 for k, v in glob.items()}
        return _reply(msg, local, {"num-examples": weight, "loss": 0.3})
    return train


def test_clip_update_pure() -> None:
    ref = [np.zeros(3), np.ones((2, 2))]
    big = [np.array([30.0, 40.0, 0.0]), np.ones((2, 2))]
    out, norm = clip_update(big, ref, 5.0)
    assert norm == pytest.approx(50.0)
    assert np.allclose(out[0], [3.0, 4.0, 0.0]) and np.array_equal(out[1], ref[1])
    small = [np.array([0.3, 0.4, 0.0]), np.ones((2, 2))]
    out, norm = clip_update(small, ref, 5.0)
    assert norm == pytest.approx(0.5) and np.array_equal(out[0], small[0])
    out, norm = clip_update(ref, ref, 5.0)  # zero update: no division by zero
    assert norm == 0.0 and np.array_equal(out[0], ref[0])
    with pytest.raises(InputError, match="not finite"):
        clip_update([np.array([np.nan, 0, 0]), ref[1]], ref, 5.0)
    with pytest.raises(InputError, match="floating-point"):
        clip_update([np.zeros(3, dtype=np.int64), ref[1]], ref, 5.0)


def test_clipping_mod_clips_a_big_update_to_c() -> None:
    global_ = {"w": np.full(50, 0.5, dtype=np.float32), "b": np.zeros((4, 5), dtype=np.float32)}
    msg = _train_msg(global_)
    reply = clipping_mod(msg, CTX, _party(3.0))
    assert not reply.has_error()
    local = _arrays(reply.content["arrays"])
    assert local["w"].dtype == np.float32
    assert _norm(local, {k: v.astype(np.float64) for k, v in global_.items()}) == \
        pytest.approx(1.5, rel=1e-5)
    # direction kept: the clipped update is a positive multiple of the original
    d = local["w"].astype(np.float64) - 0.5
    assert np.allclose(d / d[0], np.arange(1, 51), rtol=1e-3)
    assert KEY_UNCLIPPED not in reply.content["metrics"]  # fixed clipping: no bit sent
    assert reply.content["metrics"]["num-examples"] == 100  # no dp-uniform flag: kept


def test_clipping_mod_small_update_flags_and_weight() -> None:
    global_ = {"w": np.zeros(10)}
    msg = _train_msg(global_, **{KEY_ADAPTIVE: True, KEY_UNIFORM: True,
                                 KEY_WEIGHT_KEY: "num-examples"})
    reply = clipping_mod(msg, CTX, _party(0.01, weight=977))
    local = _arrays(reply.content["arrays"])
    assert np.allclose(local["w"], 0.01 * np.arange(1, 11))  # within C: unchanged
    assert reply.content["metrics"][KEY_UNCLIPPED] == 1
    assert reply.content["metrics"]["num-examples"] == 1
    big = clipping_mod(msg, CTX, _party(5.0))
    assert big.content["metrics"][KEY_UNCLIPPED] == 0


def test_clipping_mod_refuses_and_passes_through() -> None:
    global_ = {"w": np.zeros(4)}
    no_norm = _instruction(RecordDict({"arrays": ArrayRecord({"w": Array(global_["w"])}),
                                       "config": ConfigRecord({"lr": 0.1})}))
    called = []

    def train(msg: Message, ctxt: Context) -> Message:
        called.append(msg)
        return _party(9.0)(msg, ctxt)

    assert clipping_mod(no_norm, CTX, train).has_error()
    assert not called  # the party never trains (nor sends) without a clipping norm
    nan = clipping_mod(_train_msg(global_), CTX, _party(float("nan")))
    assert nan.has_error() and "not finite" in nan.error.reason
    evaluate = _instruction(no_norm.content, mtype="evaluate")
    passed = clipping_mod(evaluate, CTX, _party(9.0))
    assert not passed.has_error()
    assert passed.content["arrays"]["w"].numpy()[-1] == pytest.approx(36.0)  # untouched


# --- the wrapper around Flower's FedAvg ---------------------------------------------------


class _Grid:
    def get_node_ids(self) -> list[int]:
        return [11, 12, 13]


@pytest.fixture
def task_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """FedAvg builds real Messages, which read the running task's identity."""
    for name in ("_run_id", "_node_id", "_task_id"):
        monkeypatch.setattr(TaskIdentity, name, 1)


def test_with_fedavg_and_the_mod_end_to_end(task_identity: None) -> None:
    cdp = CentralDP(strategy=FedAvg(min_available_nodes=3, min_train_nodes=3),
                    noise_multiplier=1e-9, clipping="fixed", clipping_norm=1.0,
                    num_clients=3, delta=1e-5, seed=0)
    global_ = {"w": np.zeros(6, dtype=np.float32)}
    train_config = ConfigRecord({"lr": 0.1})
    msgs = list(cdp.configure_train(1, ArrayRecord({"w": Array(global_["w"])}), train_config,
                                    _Grid()))  # type: ignore[arg-type]
    assert len(msgs) == 3 and KEY_CLIPPING_NORM not in train_config  # caller's config kept
    config = msgs[0].content["config"]
    assert config[KEY_CLIPPING_NORM] == 1.0 and config[KEY_UNIFORM] is True
    assert config[KEY_WEIGHT_KEY] == "num-examples" and config[KEY_ADAPTIVE] is False
    parties = [_party(0.01, weight=10), _party(0.02, weight=500), _party(5.0, weight=90)]
    replies = [clipping_mod(m, CTX, p) for m, p in zip(msgs, parties, strict=True)]
    out, metrics = cdp.aggregate_train(1, replies)
    assert out is not None and metrics is not None
    ramp = np.arange(1, 7, dtype=np.float64)
    expected = (0.01 * ramp + 0.02 * ramp + ramp / np.linalg.norm(ramp)) / 3  # uniform mean
    assert np.allclose(out["w"].numpy(), expected, atol=1e-6)
    assert metrics["loss"] == pytest.approx(0.3)
    assert cdp.epsilon() == pytest.approx(epsilon_spent(1e-9, 1, 1e-5))
    assert cdp.aggregate_evaluate(1, []) is None


def test_unequal_weights_or_unclipped_updates_are_refused(task_identity: None) -> None:
    cdp = CentralDP(strategy=FedAvg(min_available_nodes=3, min_train_nodes=3),
                    noise_multiplier=1.0, clipping="fixed", clipping_norm=1.0,
                    num_clients=3, delta=1e-5)
    record = ArrayRecord({"w": Array(np.zeros(6))})
    msgs = list(cdp.configure_train(1, record, ConfigRecord(), _Grid()))  # type: ignore[arg-type]
    weighted = [_party(0.01, weight=w)(m, CTX) for m, w in zip(msgs, (1, 2, 1), strict=True)]
    with pytest.raises(InputError, match="weights 'num-examples' differ"):
        cdp.aggregate_train(1, weighted)
    msgs = list(cdp.configure_train(2, record, ConfigRecord(), _Grid()))  # type: ignore[arg-type]
    unclipped = [_party(5.0, weight=1)(m, CTX) for m in msgs]  # no clipping_mod
    with pytest.raises(InputError, match="did not clip"):
        cdp.aggregate_train(2, unclipped)
    assert cdp.history == [] and cdp.epsilon() == 0.0


# --- adaptive clipping ----------------------------------------------------------------------


def _run_adaptive(target: float, rounds: int) -> tuple[CentralDP, np.ndarray]:
    norms = np.linspace(0.5, 10.0, 50)  # each party's update norm, fixed over rounds
    inner = FakeMean(50)
    cdp = CentralDP(strategy=inner, noise_multiplier=1.0, clipping="adaptive", num_clients=50,
                    target_quantile=target, delta=1e-5, seed=11)
    global_ = {"w": np.zeros(3)}
    for rnd in range(1, rounds + 1):
        msgs = list(cdp.configure_train(rnd, ArrayRecord({"w": Array(global_["w"])}),
                                        ConfigRecord(), None))  # type: ignore[arg-type]
        c = inner.configs[-1][KEY_CLIPPING_NORM]
        replies = [_reply(m, global_, {KEY_UNCLIPPED: int(n <= c)})
                   for m, n in zip(msgs, norms, strict=True)]
        _, metrics = cdp.aggregate_train(rnd, replies)
        assert metrics is not None and KEY_UNCLIPPED not in metrics  # raw bits not released
        assert metrics[KEY_UNCLIPPED_FRACTION] == cdp.history[-1].unclipped_fraction
    return cdp, norms


@pytest.mark.parametrize("target", [0.5, 0.2])
def test_adaptive_norm_moves_to_the_target_quantile(target: float) -> None:
    cdp, norms = _run_adaptive(target, rounds=200)
    cs = np.array([h.clipping_norm for h in cdp.history])
    assert cs[0] == 0.1
    assert cs[30] > 2 * cs[0]  # all clipped at first: C grows ~exp(eta * target) per round
    late = cs[-30:]
    unclipped = np.array([np.mean(norms <= c) for c in late])
    assert abs(unclipped.mean() - target) < 0.1
    assert np.quantile(norms, target - 0.15) < np.median(late) < np.quantile(norms, target + 0.15)
    # the model noise follows the clipping norm of its round
    h = cdp.history[-1]
    assert h.noise_std == pytest.approx(cdp.model_noise_multiplier * h.clipping_norm / 50)


def test_adaptive_reply_without_bit_is_refused() -> None:
    inner = FakeMean(3)
    cdp = CentralDP(strategy=inner, noise_multiplier=1.0, clipping="adaptive", num_clients=3,
                    clipped_count_stddev=1.0, delta=1e-5)
    record = ArrayRecord({"w": Array(np.zeros(2))})
    msgs = list(cdp.configure_train(1, record, ConfigRecord(), None))  # type: ignore[arg-type]
    assert inner.configs[-1][KEY_ADAPTIVE] is True
    with pytest.raises(InputError, match=KEY_UNCLIPPED):
        cdp.aggregate_train(1, [_reply(m, {"w": np.zeros(2)}, {}) for m in msgs])


# --- epsilon --------------------------------------------------------------------------------


def _exact_gaussian_epsilon(sigma: float, rounds: int, delta: float) -> float:
    """Tight epsilon of ``rounds`` Gaussian mechanisms: one mu-GDP mechanism with
    mu = sqrt(rounds)/sigma, delta(eps) = Phi(-eps/mu + mu/2) - e^eps Phi(-eps/mu - mu/2)
    (Balle & Wang 2018; Dong, Roth & Su 2019), solved by bisection."""
    mu = math.sqrt(rounds) / sigma

    def phi(x: float) -> float:
        return 0.5 * math.erfc(-x / math.sqrt(2))

    lo, hi = 0.0, 1000.0
    for _ in range(200):
        eps = (lo + hi) / 2
        if phi(-eps / mu + mu / 2) - math.exp(eps) * phi(-eps / mu - mu / 2) > delta:
            lo = eps
        else:
            hi = eps
    return hi


def _pld_epsilon(sigma: float, rounds: int, delta: float) -> float:
    import dp_accounting
    from dp_accounting.pld import PLDAccountant

    acc = PLDAccountant(value_discretization_interval=1e-3)
    acc.compose(dp_accounting.GaussianDpEvent(sigma), rounds)
    return float(acc.get_epsilon(delta))


def test_epsilon_known_values() -> None:
    rdp = epsilon_spent(1.0, 30, 1e-5)
    exact = _exact_gaussian_epsilon(1.0, 30, 1e-5)
    assert exact == pytest.approx(37.6225, abs=1e-3)
    assert _pld_epsilon(1.0, 30, 1e-5) == pytest.approx(exact, rel=1e-6)
    assert rdp == pytest.approx(39.8318, abs=1e-3)  # dp_accounting 0.6.0's RDP figure
    # RDP lies between the exact value and the classic zCDP bound rho + 2 sqrt(rho ln 1/delta)
    rho = 30 / 2
    assert exact < rdp < rho + 2 * math.sqrt(rho * math.log(1e5))
    assert epsilon_spent(1.0, 1, 1e-5) >= _exact_gaussian_epsilon(1.0, 1, 1e-5)
    assert epsilon_spent(1.0, 0, 1e-5) == 0.0


def test_epsilon_pld_tighter_monotone_in_sigma_and_rounds() -> None:
    sigmas = [0.5, 1.0, 2.0, 4.0]
    by_sigma = [epsilon_spent(s, 30, 1e-5) for s in sigmas]
    assert by_sigma == sorted(by_sigma, reverse=True) and len(set(by_sigma)) == 4
    by_rounds = [epsilon_spent(1.0, r, 1e-5) for r in (1, 10, 30, 100)]
    assert by_rounds == sorted(by_rounds) and len(set(by_rounds)) == 4
    for s, r in ((0.7, 10), (1.0, 30), (2.0, 30), (4.0, 5)):
        assert _pld_epsilon(s, r, 1e-5) <= epsilon_spent(s, r, 1e-5) + 1e-9
    assert epsilon_spent(1.0, 30, 1e-6) > epsilon_spent(1.0, 30, 1e-5)


def test_history_reports_epsilon_per_round() -> None:
    inner = FakeMean(4)
    cdp = _fixed(inner)
    for rnd in (1, 2, 3):
        _noise_round(cdp, inner, {"w": np.zeros(5)}, rnd)
    assert [h.round for h in cdp.history] == [1, 2, 3]
    assert [h.epsilon for h in cdp.history] == pytest.approx(
        [epsilon_spent(1.3, r, 1e-5) for r in (1, 2, 3)])
    assert cdp.epsilon() == cdp.history[-1].epsilon
    assert {h.clipping_norm for h in cdp.history} == {2.0}


def test_epsilon_spent_rejects_bad_input() -> None:
    for args in ((0.0, 3, 1e-5), (1.0, -1, 1e-5), (1.0, 3, 0.0), (1.0, 3, 1.0)):
        with pytest.raises(InputError):
            epsilon_spent(*args)  # type: ignore[arg-type]


# --- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "key"), [
    ((0.0, "fixed", 1.0, 1e-5), "dp.noise_multiplier must be > 0"),
    ((float("nan"), "fixed", 1.0, 1e-5), "dp.noise_multiplier must be > 0"),
    ((1.0, "auto", 1.0, 1e-5), "dp.clipping must be"),
    ((1.0, "fixed", None, 1e-5), 'dp.clipping_norm is required when dp.clipping = "fixed"'),
    ((1.0, "adaptive", -1.0, 1e-5), "dp.clipping_norm must be > 0"),
    ((1.0, "fixed", 1.0, 0.0), "dp.delta must be in"),
    ((1.0, "fixed", 1.0, 1.5), "dp.delta must be in"),
])
def test_validate_dp_names_the_key(args: tuple[object, ...], key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace("(", r"\(")) as info:
        validate_dp(*args)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)
    validate_dp(1.0, "adaptive", None, 1e-5)


@pytest.mark.parametrize("inner", [FedMedian(), FedAdam(), FedAvgM(), Krum(),
                                   DifferentialPrivacyClientSideFixedClipping(
                                       FedAvg(), 1.0, 1.0, 2)])
def test_non_averaging_strategies_are_refused(inner: Strategy) -> None:
    with pytest.raises(ConfigError, match="uniform mean"):
        _fixed(inner)


def test_constructor_names_keys() -> None:
    _fixed(FedProx(proximal_mu=0.1))  # FedProx averages like FedAvg: accepted
    with pytest.raises(ConfigError, match="dp.num_clients"):
        _fixed(FakeMean(2), num_clients=0)
    with pytest.raises(ConfigError, match="dp.target_quantile"):
        _fixed(FakeMean(2), target_quantile=1.0)
    with pytest.raises(ConfigError, match="dp.clip_learning_rate"):
        _fixed(FakeMean(2), clip_learning_rate=0.0)
    with pytest.raises(ConfigError, match="dp.clipping_norm is required"):
        _fixed(FakeMean(2), clipping_norm=None)
