"""The horizontal ClientApp: what one bank runs on its own data.

Every function reads the party's table itself (its rows never leave the node), answers
one kind of message (see :mod:`federated.horizontal.protocol`) and replies with as little
as the step needs. Mods, outermost first: the ledger mod (a record of every message
received and sent), the secure-aggregation mod (encrypts or masks the training reply when
the method is ``ckks`` or ``secagg``) and, when the run asks for differential privacy,
Flower's clipping mods (the update is clipped before it is protected).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from federated.horizontal import protocol as P
from federated.horizontal.dp import KEY_CLIPPING_NORM
from federated.horizontal.dp import clipping_mod as dp_clipping_mod
from federated.horizontal.message_ledger import ledger_mod
from federated.horizontal.party import Party
from federated.horizontal.protect import (
    ckks_decrypt,
    ckks_keygen,
    ckks_setup,
    protect,
)
from federated.model import local_train, predict_proba
from federated.preprocess import (
    FeatureSpec,
    Transform,
    centred_vector,
    describe_party,
    histogram_vector,
    moments_vector,
    spread_vector,
)
from privacy.errors import CovaultError, InputError

__all__ = ["app", "scores_on_test_rows"]

FloatArray = npt.NDArray[np.float64]


def _reply(msg: Any, *, config: dict[str, Any] | None = None,
           arrays: dict[str, Any] | None = None, metrics: dict[str, Any] | None = None,
           secure: bytes | None = None) -> Any:
    from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict

    rd = RecordDict()
    if config:
        rd[P.CONFIG] = ConfigRecord(config)
    if arrays:
        rd[P.ARRAYS] = ArrayRecord({k: Array(np.ascontiguousarray(v)) for k, v in arrays.items()})
    if metrics:
        rd[P.METRICS] = MetricRecord(metrics)
    if secure is not None:
        rd[P.SECURE] = ConfigRecord({"payload": secure})
    return Message(rd, reply_to=msg)


def _error(msg: Any, exc: Exception) -> Any:
    from flwr.app import Error, Message

    return Message(Error(code=0, reason=f"{type(exc).__name__}: {exc}"), reply_to=msg)


Handler = Callable[[Any, Any], Any]


def _guarded(fn: Handler) -> Handler:
    """Turn covault errors into error replies whose reason the coordinator can show."""

    @functools.wraps(fn)
    def wrapper(msg: Any, context: Any) -> Any:
        try:
            return fn(msg, context)
        except CovaultError as exc:
            return _error(msg, exc)

    return wrapper


# ------------------------------------------------------------------ mods
def secure_mod(msg: Any, context: Any, call_next: Handler) -> Any:
    """Replace the training reply's weights by their encrypted (ckks) or masked (secagg)
    form, multiplied by the coordinator-assigned weight, with the weight appended."""
    cfg = P.config_of(msg)
    out = call_next(msg, context)
    if "secure-method" not in cfg or out.has_error():
        return out
    try:
        party = Party.from_context(context)
        arrays = out.content.array_records[P.ARRAYS]
        w = np.asarray(arrays["w"].numpy(), dtype=np.float64)
        weight = float(cfg["secure-weight"])
        blob = protect(np.concatenate([w * weight, [weight]]), cfg, context, party=party.name)
    except CovaultError as exc:
        return _error(msg, exc)
    metrics = dict(out.content.metric_records[P.METRICS])
    return _reply(msg, metrics=metrics, secure=blob)


def clipping_mod(msg: Any, context: Any, call_next: Handler) -> Any:
    """DP clipping of the update when the run asks for it (see ``federated.horizontal.dp``)."""
    if KEY_CLIPPING_NORM in P.config_of(msg):
        return dp_clipping_mod(msg, context, call_next)
    return call_next(msg, context)


def _make_app() -> Any:
    from flwr.clientapp import ClientApp

    return ClientApp(mods=[ledger_mod])


app = _make_app()


# ------------------------------------------------------------------ handlers
@app.query("schema")
@_guarded
def schema(msg: Any, context: Any) -> Any:
    """The party's schema: row count, column kinds, levels, label values."""
    cfg = P.config_of(msg)
    req = P.json_field(cfg, "request", who="coordinator")
    party = Party.from_context(context)
    s = describe_party(party.table(), label=str(req["label"]), exclude=req.get("exclude") or [],
                       numeric=req.get("numeric"), categorical=req.get("categorical"))
    return _reply(msg, config={"schema": s.to_json(), "party": party.name})


@app.query("stat")
@_guarded
def stat(msg: Any, context: Any) -> Any:
    """One statistic vector of the party's rows, protected for secure sum."""
    cfg = P.config_of(msg)
    spec = FeatureSpec.from_json(str(cfg.get("spec", "")))
    party = Party.from_context(context)
    kind = cfg.get("stat")
    if kind == "moments":
        vec = moments_vector(party.table(), spec)
    elif kind == "centred":
        vec = centred_vector(party.table(), spec)
    elif kind == "spread":
        vec = spread_vector(party.table(), spec)
    elif kind == "histogram":
        vec = histogram_vector(party.table(), spec)
    else:
        raise InputError(f"unknown statistic {kind!r}")
    return _reply(msg, secure=protect(vec, cfg, context, party=party.name))


@app.query("ckks_keygen")
@_guarded
def ckks_keygen_handler(msg: Any, context: Any) -> Any:
    """Key holder: generate the CKKS key pair and return the public context."""
    return _reply(msg, config={"public": ckks_keygen(P.config_of(msg), context)})


@app.query("ckks_setup")
@_guarded
def ckks_setup_handler(msg: Any, context: Any) -> Any:
    """Store the public CKKS context."""
    return _reply(msg, config={"key-id": ckks_setup(P.config_of(msg), context)})


@app.query("ckks_decrypt")
@_guarded
def ckks_decrypt_handler(msg: Any, context: Any) -> Any:
    """Key holder: decrypt an aggregate of enough contributors."""
    party = Party.from_context(context)
    led = party.open_ledger()
    total = ckks_decrypt(P.config_of(msg), context, ledger=led)
    if led is not None:
        led.close()
    return _reply(msg, arrays={"sum": total})


@app.query("secagg_advertise")
@_guarded
def secagg_advertise(msg: Any, context: Any) -> Any:
    """Secure aggregation: publish this party's public keys."""
    from federated.horizontal.secagg_party import advertise

    return _reply(msg, config=advertise(P.config_of(msg), context))


@app.query("secagg_setup")
@_guarded
def secagg_setup(msg: Any, context: Any) -> Any:
    """Secure aggregation: encrypted shares of this party's secrets for the others."""
    from federated.horizontal.secagg_party import setup

    return _reply(msg, config=setup(P.config_of(msg), context))


@app.query("secagg_unmask")
@_guarded
def secagg_unmask(msg: Any, context: Any) -> Any:
    """Secure aggregation: the shares the coordinator needs to remove the masks."""
    from federated.horizontal.secagg_party import unmask

    return _reply(msg, config=unmask(P.config_of(msg), context))


def _train(msg: Any, context: Any) -> Any:
    cfg = P.config_of(msg)
    party = Party.from_context(context)
    transform = Transform.from_json(str(cfg.get("transform", "")))
    X, y = party.features(transform)
    arrays = msg.content.array_records.get(P.ARRAYS)
    if arrays is None or "w" not in arrays:
        raise InputError("training message carries no model weights")
    w0 = np.asarray(arrays["w"].numpy(), dtype=np.float64)
    rate = float(cfg.get("learning-rate", 0.0))
    lam, mu = float(cfg["lambda"]), float(cfg.get("proximal-mu", 0.0))
    if rate <= 0:  # "auto": 1 / L of the local objective (L cached with the features)
        rate = 1.0 / (1.0 / party.step(transform, lam) + mu)
    w = local_train(w0, X, y, lam=lam, epochs=int(cfg["local-epochs"]), learning_rate=rate,
                    proximal_mu=mu)
    # under DP, clipping_mod replaces the weight by 1 (every party counts the same)
    return _reply(msg, arrays={"w": w}, metrics={P.WEIGHT_KEY: float(len(y)),
                                                 "rows": float(len(y))})


@app.train(mods=[secure_mod, clipping_mod])
@_guarded
def train(msg: Any, context: Any) -> Any:
    """Local training from the global model; the reply is the new local model."""
    return _train(msg, context)


@app.query("local")
@_guarded
def local(msg: Any, context: Any) -> Any:
    """Score the federated and a local-only model on this party's test rows."""
    from federated.metrics import auc

    cfg = P.config_of(msg)
    party = Party.from_context(context)
    transform = Transform.from_json(str(cfg.get("transform", "")))
    X, y = party.features(transform)
    arrays = msg.content.array_records[P.ARRAYS]
    w_fed = np.asarray(arrays["w"].numpy(), dtype=np.float64)
    out: dict[str, Any] = {"rows": float(len(y))}
    if "X" not in arrays:  # no test file: the federated model on the party's own rows
        if 0 < y.sum() < len(y):
            out["auc"] = auc(y, predict_proba(w_fed, X))
        return _reply(msg, metrics=out)
    Xt = np.asarray(arrays["X"].numpy(), dtype=np.float64).reshape(-1, X.shape[1])
    yt = np.asarray(arrays["y"].numpy(), dtype=np.float64)
    out["test-rows"] = float(len(yt))
    out.update(scores_on_test_rows(X, y, Xt, yt, w_fed, C=float(cfg["C"])))
    return _reply(msg, metrics=out)


def scores_on_test_rows(X: FloatArray, y: FloatArray, Xt: FloatArray, yt: FloatArray,
                        w_fed: FloatArray, *, C: float) -> dict[str, float]:
    """``auc`` of the federated model and ``local-auc`` of a model fitted on the party's
    own rows ``(X, y)``, both on its test rows ``(Xt, yt)``. Each is left out where it is
    undefined: test rows of one class (no AUC), or for ``local-auc`` training rows of one
    class (no local model to speak of: a party without a default learns nothing about
    defaults), as the trees leave it out."""
    from federated.metrics import auc
    from federated.model import fit_full

    out: dict[str, float] = {}
    if 0 < yt.sum() < len(yt):
        out["auc"] = auc(yt, predict_proba(w_fed, Xt))
        if 0 < y.sum() < len(y):
            w_local = fit_full(X, y, lam=1.0 / (C * len(y)))
            out["local-auc"] = auc(yt, predict_proba(w_local, Xt))
    return out
