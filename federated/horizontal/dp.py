"""Central differential privacy for horizontal rounds: DP-FedAvg at the party level.

Each party clips its update (local model minus global model) to L2 norm ``C`` before it
leaves the party (:func:`clipping_mod`, or :func:`clip_update` when the reply is
encrypted); the inner strategy averages the clipped updates with equal weights; then
:class:`CentralDP` adds Gaussian noise of standard deviation ``sigma * C / m`` to the
average, ``m`` being the number of parties aggregated that round. That is the Gaussian
mechanism with noise multiplier ``sigma`` on the sum of the updates, whose sensitivity
to adding or removing one party is ``C`` (McMahan et al., "Learning Differentially
Private Recurrent Language Models", ICLR 2018). With adaptive clipping ``C`` follows a
target quantile of the update norms (Andrew et al., "Differentially Private Learning
with Adaptive Clipping", NeurIPS 2021), paid for out of the same ``sigma``.

:func:`epsilon_spent` composes the rounds with Google's ``dp_accounting`` (RDP
accountant, no sampling amplification: every party takes part in every round).

Keys exchanged with the parties (the client's train function reads the first two):

``"clipping_norm"`` (train ConfigRecord, float)
    ``C`` for this round. Flower's own ``fixedclipping_mod`` reads the same key.
``"dp-uniform"`` (train ConfigRecord, bool)
    True: the party must send the same weight as every other party (FedAvg's
    ``weighted_by_key`` metric, 1), not its number of examples.
``"dp-weight-key"`` (train ConfigRecord, str)
    The name of that weight metric; :func:`clipping_mod` sets it to 1.
``"dp-adaptive"`` (train ConfigRecord, bool)
    True: the party reports ``"dp-unclipped"`` in its reply metrics.
``"dp-unclipped"`` (train reply MetricRecord, int)
    1 when the party's update norm was at most ``C`` before clipping, else 0.
``"dp-unclipped-fraction"`` (aggregated train MetricRecord, float)
    Adaptive clipping: the noised fraction of unclipped parties (replaces the bits).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from logging import INFO, WARNING
from typing import Literal, TypeGuard

import numpy as np
from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Context,
    Error,
    Message,
    MessageType,
    MetricRecord,
)
from flwr.clientapp.typing import ClientAppCallable
from flwr.common import log
from flwr.common.constant import ErrorCode
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy
from numpy.typing import NDArray

from privacy.errors import ConfigError, CovaultError, InputError

__all__ = [
    "KEY_CLIPPING_NORM",
    "KEY_UNIFORM",
    "KEY_WEIGHT_KEY",
    "KEY_ADAPTIVE",
    "KEY_UNCLIPPED",
    "KEY_UNCLIPPED_FRACTION",
    "CentralDP",
    "DPRound",
    "clip_update",
    "clipping_mod",
    "epsilon_spent",
    "validate_dp",
]

KEY_CLIPPING_NORM = "clipping_norm"
KEY_UNIFORM = "dp-uniform"
KEY_WEIGHT_KEY = "dp-weight-key"
KEY_ADAPTIVE = "dp-adaptive"
KEY_UNCLIPPED = "dp-unclipped"
KEY_UNCLIPPED_FRACTION = "dp-unclipped-fraction"

#: Initial clipping norm for adaptive clipping (Andrew et al. and Flower use 0.1).
DEFAULT_INITIAL_NORM = 0.1
#: Slack on the check that the aggregated update lies within the clipping ball (float32
#: rounding of the clipped models, CKKS decoding error).
_NORM_RTOL = 1e-3


def _finite(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(
        value)


def validate_dp(
    noise_multiplier: float,
    clipping: str,
    clipping_norm: float | None,
    delta: float,
) -> None:
    """Check DP settings; raise :class:`~privacy.errors.ConfigError` naming the key.

    Raises
    ------
    ConfigError
        ``dp.noise_multiplier`` not a finite number > 0, ``dp.clipping`` not "fixed" or
        "adaptive", ``dp.clipping_norm`` missing for fixed clipping or not > 0,
        ``dp.delta`` outside (0, 1).
    """
    if not _finite(noise_multiplier) or noise_multiplier <= 0:
        raise ConfigError(f"dp.noise_multiplier must be > 0, got {noise_multiplier!r}")
    if clipping not in ("fixed", "adaptive"):
        raise ConfigError(f'dp.clipping must be "fixed" or "adaptive", got {clipping!r}')
    if clipping_norm is None:
        if clipping == "fixed":
            raise ConfigError('dp.clipping_norm is required when dp.clipping = "fixed"')
    elif not _finite(clipping_norm) or clipping_norm <= 0:
        raise ConfigError(f"dp.clipping_norm must be > 0, got {clipping_norm!r}")
    if not _finite(delta) or not 0 < delta < 1:
        raise ConfigError(f"dp.delta must be in (0, 1), got {delta!r}")


def epsilon_spent(noise_multiplier: float, rounds: int, delta: float) -> float:
    """Epsilon after ``rounds`` Gaussian releases with ``noise_multiplier``, at ``delta``.

    Rényi DP accountant of ``dp_accounting`` (``GaussianDpEvent`` composed ``rounds``
    times, add-or-remove-one-party neighbours, no sampling amplification). The PLD
    accountant gives a slightly tighter (smaller) figure; RDP is kept because it is
    fast and never optimistic.
    """
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 0:
        raise InputError(f"rounds must be an integer >= 0, got {rounds!r}")
    if not _finite(noise_multiplier) or noise_multiplier <= 0:
        raise InputError(f"noise_multiplier must be > 0, got {noise_multiplier!r}")
    if not _finite(delta) or not 0 < delta < 1:
        raise InputError(f"delta must be in (0, 1), got {delta!r}")
    if rounds == 0:
        return 0.0
    import dp_accounting
    from dp_accounting.rdp import RdpAccountant

    accountant = RdpAccountant()
    accountant.compose(dp_accounting.GaussianDpEvent(noise_multiplier), rounds)
    return float(accountant.get_epsilon(delta))


def clip_update(
    local: Sequence[NDArray[np.floating]],
    reference: Sequence[NDArray[np.floating]],
    clipping_norm: float,
) -> tuple[list[NDArray[np.floating]], float]:
    """Clip the update ``local - reference`` to L2 norm ``clipping_norm`` (over all arrays).

    Returns the clipped local arrays (``reference + scaled update``, in the local arrays'
    dtypes) and the update's norm before clipping. Computed in float64. Use this in the
    client's train function when the reply is encrypted (CKKS, secure aggregation):
    clip first, then encrypt.

    Raises
    ------
    InputError
        Shapes differ, an array is not floating point, or the update is not finite.
    """
    if not _finite(clipping_norm) or clipping_norm <= 0:
        raise InputError(f"clipping_norm must be > 0, got {clipping_norm!r}")
    if len(local) != len(reference):
        raise InputError(f"update has {len(local)} arrays, the global model {len(reference)}")
    deltas: list[NDArray[np.float64]] = []
    refs: list[NDArray[np.float64]] = []
    for i, (a, b) in enumerate(zip(local, reference, strict=True)):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape:
            raise InputError(f"array {i}: update shape {a.shape} != global shape {b.shape}")
        if not (np.issubdtype(a.dtype, np.floating) and np.issubdtype(b.dtype, np.floating)):
            raise InputError(f"array {i}: DP clipping needs floating-point arrays, got "
                             f"{a.dtype} and {b.dtype}")
        refs.append(b.astype(np.float64))
        deltas.append(a.astype(np.float64) - refs[-1])
    norm = math.sqrt(sum(float(np.vdot(d, d)) for d in deltas))
    if not math.isfinite(norm):
        raise InputError("the update is not finite (NaN or infinity)")
    scale = min(1.0, clipping_norm / norm) if norm > 0 else 1.0
    out = [(r + d * scale).astype(np.asarray(a).dtype)
           for r, d, a in zip(refs, deltas, local, strict=True)]
    return out, norm


def _error_reply(msg: Message, reason: str) -> Message:
    log(WARNING, "clipping_mod: %s", reason)
    return Message(Error(code=ErrorCode.MOD_FAILED_PRECONDITION, reason=reason), reply_to=msg)


def clipping_mod(msg: Message, ctxt: Context, call_next: ClientAppCallable) -> Message:
    """Client mod: clip the party's update to the round's ``"clipping_norm"``.

    Works with :class:`CentralDP` (fixed and adaptive) and with Flower's client-side
    fixed-clipping wrapper. Messages other than ``train`` pass through untouched. The
    reply must carry one ArrayRecord with the keys of the global model it received.
    When the config asks for it, the mod also sets the weight metric named by
    ``"dp-weight-key"`` to 1 (``"dp-uniform"``) and reports ``"dp-unclipped"``
    (``"dp-adaptive"``). Attach it to train messages (``@app.train(mods=[clipping_mod])``)
    and let it be the last mod that touches the arrays.

    Unlike Flower's ``fixedclipping_mod``/``adaptiveclipping_mod`` it clips in float64,
    accepts a zero update (theirs divides by zero), refuses NaN/infinite updates
    (theirs passes them unclipped), and reports the bit with Andrew et al.'s meaning
    (1 = not clipped; Flower's ``norm_bit`` is 1 = clipped).

    Returns an error reply (``MOD_FAILED_PRECONDITION``) when the train message has no
    clipping norm: a party never sends an unclipped update.
    """
    if msg.metadata.message_type.split(".")[0] != MessageType.TRAIN:
        return call_next(msg, ctxt)
    configs = [c for c in msg.content.config_records.values() if KEY_CLIPPING_NORM in c]
    if len(configs) != 1:
        return _error_reply(msg, f"a train message needs one ConfigRecord with "
                                 f"{KEY_CLIPPING_NORM!r}, found {len(configs)}")
    config = configs[0]
    norm_value = config[KEY_CLIPPING_NORM]
    if not _finite(norm_value) or norm_value <= 0:
        return _error_reply(msg, f"{KEY_CLIPPING_NORM!r} must be > 0, got {norm_value!r}")
    clipping_norm = float(norm_value)
    if len(msg.content.array_records) != 1:
        return _error_reply(msg, "a train message needs exactly one ArrayRecord")
    global_record = next(iter(msg.content.array_records.values()))
    global_arrays = [global_record[k].numpy() for k in global_record]

    reply = call_next(msg, ctxt)
    if reply.has_error():
        return reply
    if len(reply.content.array_records) != 1:
        return _error_reply(msg, "the train reply needs exactly one ArrayRecord")
    name, record = next(iter(reply.content.array_records.items()))
    if list(record.keys()) != list(global_record.keys()):
        return _error_reply(msg, "the reply's array names differ from the global model's")
    try:
        clipped, norm = clip_update([record[k].numpy() for k in record], global_arrays,
                                    clipping_norm)
    except InputError as exc:
        return _error_reply(msg, str(exc))
    reply.content.array_records[name] = ArrayRecord(
        {k: Array(np.asarray(v)) for k, v in zip(record.keys(), clipped, strict=True)})

    weight_key = config.get(KEY_WEIGHT_KEY)
    adaptive = bool(config.get(KEY_ADAPTIVE, False))
    if (config.get(KEY_UNIFORM) and isinstance(weight_key, str)) or adaptive:
        metrics = list(reply.content.metric_records.values())
        if len(metrics) > 1:
            return _error_reply(msg, "the train reply needs at most one MetricRecord")
        if not metrics:
            reply.content["metrics"] = MetricRecord()
            metrics = list(reply.content.metric_records.values())
        if config.get(KEY_UNIFORM) and isinstance(weight_key, str):
            metrics[0][weight_key] = 1
        if adaptive:
            metrics[0][KEY_UNCLIPPED] = int(norm <= clipping_norm)
    return reply


@dataclass(frozen=True)
class DPRound:
    """What one released round cost and used.

    Attributes
    ----------
    round:
        The server round.
    clipping_norm:
        ``C`` sent to the parties that round.
    noise_std:
        Standard deviation of the noise added to each model coordinate (on the average).
    epsilon:
        Cumulative epsilon at the strategy's ``delta`` after this round.
    num_clients:
        ``m``, the parties aggregated that round.
    unclipped_fraction:
        The noised fraction of parties not clipped (adaptive clipping), else ``None``.
    """

    round: int
    clipping_norm: float
    noise_std: float
    epsilon: float
    num_clients: int
    unclipped_fraction: float | None = None


def _refused_strategies() -> tuple[type, ...]:
    from flwr.serverapp import strategy as s
    from flwr.serverapp.strategy.fedopt import FedOpt

    return (FedOpt, s.FedAvgM, s.FedMedian, s.FedTrimmedAvg, s.MultiKrum, s.Bulyan,
            s.QFedAvg, s.FedXgbBagging, s.FedXgbCyclic,
            s.DifferentialPrivacyClientSideFixedClipping,
            s.DifferentialPrivacyServerSideFixedClipping,
            s.DifferentialPrivacyClientSideAdaptiveClipping,
            s.DifferentialPrivacyServerSideAdaptiveClipping, CentralDP)


class CentralDP(Strategy):
    """Central DP wrapper: party-level DP-FedAvg with client-side clipping.

    Parameters
    ----------
    strategy:
        The inner strategy. It must release the uniform mean of the parties' models:
        FedAvg, FedProx, or a FedAvg subclass whose ``aggregate_train`` decrypts a CKKS
        sum or unmasks a secure-aggregation sum. Strategies that do something else
        (FedAdam/FedYogi/FedAdagrad, FedAvgM, FedMedian, FedTrimmedAvg, Krum, MultiKrum,
        Bulyan, QFedAvg, FedXgb*, another DP wrapper) are refused: their output's
        sensitivity is not ``C/m``, or they keep state built from un-noised aggregates.
    noise_multiplier:
        ``sigma``: noise std relative to the sensitivity of the sum. With adaptive
        clipping, the total privacy of model and clipping-norm noise together.
    clipping:
        ``"fixed"`` or ``"adaptive"``.
    clipping_norm:
        ``C`` (required for fixed); initial ``C`` for adaptive (default 0.1).
    num_clients:
        Parties expected per round; sets the default ``clipped_count_stddev``.
    target_quantile, clip_learning_rate:
        Adaptive clipping: the fraction of parties that should be unclipped, and the
        step ``eta`` of ``C <- C * exp(-eta * (b - target_quantile))``.
    clipped_count_stddev:
        Adaptive clipping: std of the noise on the count of unclipped parties (default
        ``max(num_clients / 20, noise_multiplier)``: Andrew et al.'s ``m / 20`` where there
        are many parties; with a few banks, enough that the model's noise multiplier
        stays within ``sqrt(4/3)`` of ``noise_multiplier``). Must exceed
        ``noise_multiplier / 2``.
    delta:
        The delta at which :meth:`epsilon` and :attr:`history` report epsilon.
    seed:
        Seeds the noise (numpy ``SeedSequence``); ``None`` draws fresh OS entropy.

    Warnings
    --------
    - What is protected is one party's whole contribution to a round (all its rows
      together), not individual rows; with a few banks, ``sigma * C / m`` is a lot of
      noise on the model.
    - Only the model is protected. Training metrics (loss, accuracy), the number of
      parties that replied, evaluation results, and in adaptive mode each party's
      ``"dp-unclipped"`` bit (sent in the clear to the server) are not; the bit is
      removed from the aggregated metrics, which carry only the noised fraction.
      When the server must not see single replies (CKKS, SecAgg), use fixed clipping.
    - The server is trusted to add the noise (central DP).
    - ``seed`` is for reproducible tests only: anyone who knows it can subtract the
      noise. Noise comes from numpy's PCG64 (entropy-seeded when ``seed`` is None, not
      a cryptographic generator) and floating-point Gaussian sampling, which is not
      hardened against floating-point attacks; Flower itself uses ``np.random.normal``.
    - Epsilon assumes every party takes part in every round (no subsampling credit)
      and counts only released rounds.
    """

    def __init__(
        self,
        *,
        strategy: Strategy,
        noise_multiplier: float,
        clipping: Literal["fixed", "adaptive"],
        clipping_norm: float | None = None,
        num_clients: int,
        target_quantile: float = 0.5,
        clip_learning_rate: float = 0.2,
        clipped_count_stddev: float | None = None,
        delta: float,
        seed: int | None = None,
    ) -> None:
        validate_dp(noise_multiplier, clipping, clipping_norm, delta)
        if not isinstance(strategy, Strategy):
            raise ConfigError(f"dp: strategy must be a Flower Strategy, got {strategy!r}")
        if isinstance(strategy, _refused_strategies()):
            raise ConfigError(
                f"dp: {type(strategy).__name__} does not release a uniform mean of the "
                "parties' updates, so noise sigma*C/m would not give the stated privacy; "
                "use FedAvg, FedProx or a FedAvg subclass that averages a secure sum")
        if isinstance(num_clients, bool) or not isinstance(num_clients, int) or num_clients < 1:
            raise ConfigError(f"dp.num_clients must be an integer >= 1, got {num_clients!r}")
        if not _finite(target_quantile) or not 0 < target_quantile < 1:
            raise ConfigError(f"dp.target_quantile must be in (0, 1), got {target_quantile!r}")
        if not _finite(clip_learning_rate) or clip_learning_rate <= 0:
            raise ConfigError(
                f"dp.clip_learning_rate must be > 0, got {clip_learning_rate!r}")
        self.strategy = strategy
        self.noise_multiplier = float(noise_multiplier)
        self.clipping = clipping
        self.num_clients = num_clients
        self.target_quantile = float(target_quantile)
        self.clip_learning_rate = float(clip_learning_rate)
        self.delta = float(delta)
        self.clipping_norm = float(clipping_norm if clipping_norm is not None
                                   else DEFAULT_INITIAL_NORM)
        if clipping == "adaptive":
            ccs = (max(num_clients / 20, self.noise_multiplier) if clipped_count_stddev is None
                   else clipped_count_stddev)
            if not _finite(ccs) or ccs <= self.noise_multiplier / 2:
                raise ConfigError(
                    f"dp.clipped_count_stddev = {ccs!r} is too small for "
                    f"dp.noise_multiplier = {noise_multiplier}: it must be > "
                    f"{noise_multiplier / 2}")
            self.clipped_count_stddev: float | None = float(ccs)
            self.model_noise_multiplier = (
                self.noise_multiplier ** -2 - (2 * ccs) ** -2) ** -0.5
        else:
            self.clipped_count_stddev = None
            self.model_noise_multiplier = self.noise_multiplier
        model_seq, count_seq = np.random.SeedSequence(seed).spawn(2)
        self._model_rng = np.random.default_rng(model_seq)
        self._count_rng = np.random.default_rng(count_seq)
        self._history: list[DPRound] = []
        # (round, C sent, global model before the round, messages sent)
        self._pending: tuple[int, float, dict[str, NDArray[np.float64]], int] | None = None

    def __repr__(self) -> str:
        return (f"CentralDP({self.strategy!r}, noise_multiplier={self.noise_multiplier}, "
                f"clipping={self.clipping!r})")

    @property
    def history(self) -> list[DPRound]:
        """One :class:`DPRound` per released round, oldest first (a copy)."""
        return list(self._history)

    def epsilon(self, delta: float | None = None) -> float:
        """Cumulative epsilon of the rounds released so far (at ``delta``, default own)."""
        return epsilon_spent(self.noise_multiplier, len(self._history),
                             self.delta if delta is None else delta)

    def summary(self) -> None:
        """Log the DP settings, then the inner strategy's summary."""
        log(INFO, "\t├──> Central DP (party level): noise multiplier %s, %s clipping, "
                  "C = %.6g, delta = %g", self.noise_multiplier, self.clipping,
            self.clipping_norm, self.delta)
        self.strategy.summary()

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Add the clipping norm and the DP flags to the train config, then delegate."""
        previous: dict[str, NDArray[np.float64]] = {}
        for key in arrays:
            value = arrays[key].numpy()
            if not np.issubdtype(value.dtype, np.floating):
                raise InputError(f"dp: model array {key!r} has dtype {value.dtype}; "
                                 "DP needs floating-point arrays")
            previous[key] = value.astype(np.float64)
        config = ConfigRecord(dict(config))
        config[KEY_CLIPPING_NORM] = self.clipping_norm
        config[KEY_UNIFORM] = True
        config[KEY_ADAPTIVE] = self.clipping == "adaptive"
        weight_key = getattr(self.strategy, "weighted_by_key", None)
        if isinstance(weight_key, str):
            config[KEY_WEIGHT_KEY] = weight_key
        messages = list(self.strategy.configure_train(server_round, arrays, config, grid))
        self._pending = (server_round, self.clipping_norm, previous, len(messages))
        return messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Check the replies, let the inner strategy average them, add noise to the mean.

        Raises
        ------
        InputError
            Parties' weights differ, an adaptive reply lacks ``"dp-unclipped"``, or the
            averaged update is longer than ``C`` (a party did not clip).
        """
        if self._pending is None or self._pending[0] != server_round:
            raise CovaultError(f"dp: aggregate_train for round {server_round} without "
                               "configure_train for that round")
        _, clip, previous, sent = self._pending
        self._pending = None
        replies = list(replies)
        valid = [r for r in replies if not r.has_error()]
        m = len(valid)
        if m != sent or m != self.num_clients:
            log(WARNING, "dp: %d parties aggregated (%d asked, %d expected); the noise "
                         "follows the %d aggregated", m, sent, self.num_clients, m)
        self._check_uniform(valid)
        unclipped = self._unclipped_count(valid) if self.clipping == "adaptive" else 0

        aggregated, metrics = self.strategy.aggregate_train(server_round, replies)
        if metrics is not None and KEY_UNCLIPPED in metrics:
            del metrics[KEY_UNCLIPPED]
        if aggregated is None or m == 0:
            return None, metrics
        if list(aggregated.keys()) != list(previous):
            raise InputError("dp: the aggregate's array names differ from the global model's")
        means = {k: aggregated[k].numpy() for k in aggregated}
        sq = 0.0
        for key, mean in means.items():
            if mean.shape != previous[key].shape:
                raise InputError(f"dp: aggregate array {key!r} has shape {mean.shape}, the "
                                 f"global model {previous[key].shape}")
            d = mean.astype(np.float64) - previous[key]
            sq += float(np.vdot(d, d))
        norm = math.sqrt(sq)
        if not norm <= clip * (1 + _NORM_RTOL):
            raise InputError(
                f"dp: the averaged update has norm {norm:.6g} > clipping norm {clip:.6g}: "
                "a party did not clip its update (attach clipping_mod to train messages) "
                "or the inner strategy does not average")

        std = self.model_noise_multiplier * clip / m
        noised = ArrayRecord({
            k: Array(np.asarray(
                mean.astype(np.float64) + self._model_rng.normal(0.0, std, mean.shape)
            ).astype(mean.dtype))
            for k, mean in means.items()})

        fraction: float | None = None
        if self.clipping == "adaptive":
            assert self.clipped_count_stddev is not None
            fraction = float(unclipped + self._count_rng.normal(0.0, self.clipped_count_stddev)
                             ) / m
            self.clipping_norm = clip * math.exp(
                -self.clip_learning_rate * (fraction - self.target_quantile))
            if metrics is not None:
                metrics[KEY_UNCLIPPED_FRACTION] = fraction
        released = len(self._history) + 1
        self._history.append(DPRound(
            round=server_round, clipping_norm=clip, noise_std=std,
            epsilon=epsilon_spent(self.noise_multiplier, released, self.delta),
            num_clients=m, unclipped_fraction=fraction))
        log(INFO, "dp: round %d: C = %.6g, noise std %.6g on %d parties, epsilon %.4g "
                  "(delta %g)", server_round, clip, std, m, self._history[-1].epsilon,
            self.delta)
        return noised, metrics

    def _check_uniform(self, replies: list[Message]) -> None:
        weight_key = getattr(self.strategy, "weighted_by_key", None)
        if not isinstance(weight_key, str):
            return  # the inner strategy weights in its own way; it must be uniform
        weights = []
        for reply in replies:
            found = [rec[weight_key] for rec in reply.content.metric_records.values()
                     if weight_key in rec]
            weight = found[0] if len(found) == 1 else None
            if not _finite(weight) or weight <= 0:
                raise InputError(f"dp: a reply has no positive weight {weight_key!r}")
            weights.append(float(weight))
        if weights and any(w != weights[0] for w in weights):
            raise InputError(
                f"dp: the parties' weights {weight_key!r} differ ({sorted(set(weights))}); "
                f"under DP every party must send the same weight (read {KEY_UNIFORM!r} "
                "from the train config)")

    @staticmethod
    def _unclipped_count(replies: list[Message]) -> int:
        count = 0
        for reply in replies:
            bits = [rec[KEY_UNCLIPPED] for rec in reply.content.metric_records.values()
                    if KEY_UNCLIPPED in rec]
            if len(bits) != 1 or isinstance(bits[0], bool) or bits[0] not in (0, 1):
                raise InputError(f"dp: adaptive clipping needs {KEY_UNCLIPPED!r} = 0 or 1 in "
                                 "every reply's metrics (use clipping_mod)")
            count += int(bits[0])
        return count

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Delegate to the inner strategy."""
        return self.strategy.configure_evaluate(server_round, arrays, config, grid)

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        """Delegate to the inner strategy (evaluation metrics are not noised)."""
        return self.strategy.aggregate_evaluate(server_round, replies)
