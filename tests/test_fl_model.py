"""The numpy logistic regression (federated.model) and the run result (FLResult)."""

from __future__ import annotations

import numpy as np
import pytest

from federated.model import (
    fit_full,
    initial_weights,
    lipschitz,
    local_train,
    loss_and_grad,
    predict_proba,
    sigmoid,
)
from federated.runner import FLResult
from privacy.errors import CovaultError, InputError


def problem(n: int = 400, d: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    w = rng.normal(0, 1, d)
    y = (rng.random(n) < sigmoid(X @ w - 0.4)).astype(np.float64)
    return X, y


def objective(w: np.ndarray, X: np.ndarray, y: np.ndarray, lam: float) -> float:
    """The documented objective, written out independently."""
    z = X @ w[:-1] + w[-1]
    p = 1 / (1 + np.exp(-z))
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
                 + lam / 2 * w[:-1] @ w[:-1])


def test_loss_and_grad_match_the_formula_and_finite_differences() -> None:
    X, y = problem(60, 3)
    lam = 0.05
    w = np.array([0.3, -0.2, 0.5, 0.1])
    loss, g = loss_and_grad(w, X, y, lam)
    assert loss == pytest.approx(objective(w, X, y, lam), rel=1e-12)
    eps = 1e-6
    num = np.array([(objective(w + eps * e, X, y, lam) - objective(w - eps * e, X, y, lam))
                    / (2 * eps) for e in np.eye(4)])
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-9)
    assert g[-1] == pytest.approx(float(np.mean(sigmoid(X @ w[:-1] + w[-1]) - y)))  # no penalty


def test_loss_is_stable_for_large_margins() -> None:
    X = np.array([[1000.0], [-1000.0]])
    y = np.array([1.0, 0.0])
    loss, g = loss_and_grad(np.array([1.0, 0.0]), X, y, 0.0)
    assert np.isfinite(loss) and loss == pytest.approx(0.0, abs=1e-300)
    assert np.all(np.isfinite(g))
    assert sigmoid(np.array([-800.0, 800.0])).tolist() == pytest.approx([0.0, 1.0])


@pytest.mark.parametrize("C", [0.1, 1.0, 10.0])
def test_fit_full_matches_sklearn(C: float) -> None:
    sklearn = pytest.importorskip("sklearn.linear_model")
    X, y = problem(500, 6, seed=3)
    w = fit_full(X, y, lam=1.0 / (C * X.shape[0]))
    ref = sklearn.LogisticRegression(C=C, tol=1e-12, max_iter=10_000).fit(X, y)
    np.testing.assert_allclose(w[:-1], ref.coef_.ravel(), rtol=1e-4, atol=1e-4)
    assert w[-1] == pytest.approx(ref.intercept_[0], rel=1e-4, abs=1e-4)
    np.testing.assert_allclose(predict_proba(w, X), ref.predict_proba(X)[:, 1], atol=1e-5)


def test_lipschitz_bounds_the_hessian() -> None:
    X, y = problem(300, 4, seed=1)
    X = X * np.array([1.0, 3.0, 0.5, 2.0])
    lam = 0.01
    A = np.column_stack([X, np.ones(len(X))])
    exact = 0.25 * np.linalg.eigvalsh(A.T @ A / len(X)).max() + lam
    L = lipschitz(X, lam)
    assert exact <= L <= 1.2 * exact


def test_local_train_decreases_the_objective_every_step() -> None:
    X, y = problem(300, 5, seed=2)
    X[:, 0] *= 10  # badly scaled: a fixed rate of 1 would diverge
    lam = 1.0 / X.shape[0]
    w0 = initial_weights(5, float(y.mean()))
    losses = [loss_and_grad(local_train(w0, X, y, lam=lam, epochs=k), X, y, lam)[0]
              for k in range(0, 25)]
    assert np.all(np.diff(losses) < 0), losses
    assert losses[-1] < losses[0] - 0.05


def test_local_train_with_proximal_term_decreases_its_objective() -> None:
    X, y = problem(200, 4, seed=4)
    lam, mu = 1.0 / 200, 0.5
    w0 = np.array([0.5, -0.5, 0.2, 0.0, 0.1])

    def prox(w: np.ndarray) -> float:
        return loss_and_grad(w, X, y, lam)[0] + mu / 2 * float((w - w0) @ (w - w0))

    values = [prox(local_train(w0, X, y, lam=lam, epochs=k, proximal_mu=mu))
              for k in range(0, 40)]
    assert np.all(np.diff(values[:6]) < 0), values      # strictly, while far from the optimum
    assert np.all(np.diff(values) <= 1e-15), values     # and never up, down to rounding


def test_fedprox_pulls_toward_w0() -> None:
    X, y = problem(200, 4, seed=5)
    lam = 1.0 / 200
    w0 = np.array([1.0, -1.0, 0.5, 0.0, 0.3])
    dist = [float(np.linalg.norm(local_train(w0, X, y, lam=lam, epochs=20, learning_rate=0.05,
                                             proximal_mu=mu) - w0))
            for mu in (0.0, 0.5, 2.0, 8.0)]
    assert dist[0] > dist[1] > dist[2] > dist[3] > 0, dist
    # run long enough, it stops where the gradient of f + mu/2 ||w - w0||^2 vanishes
    mu = 2.0
    w = local_train(w0, X, y, lam=lam, epochs=3000, proximal_mu=mu)
    g = loss_and_grad(w, X, y, lam)[1] + mu * (w - w0)
    assert np.linalg.norm(g) < 1e-8


def test_local_train_does_not_modify_w0() -> None:
    X, y = problem(50, 2)
    w0 = np.array([0.1, 0.2, 0.3])
    before = w0.copy()
    w = local_train(w0, X, y, lam=0.01, epochs=3)
    np.testing.assert_array_equal(w0, before)
    assert not np.array_equal(w, w0)


def test_local_train_divergence_is_an_input_error() -> None:
    X, y = problem(50, 2)
    with pytest.raises(InputError, match="diverged"), np.errstate(all="ignore"):
        local_train(np.zeros(3), X, y, lam=1.0, epochs=50, learning_rate=1e300)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weights_refused(bad: float) -> None:
    X, y = problem(20, 2)
    w = np.array([0.1, bad, 0.0])
    for call in (lambda: predict_proba(w, X),
                 lambda: local_train(w, X, y, lam=0.1, epochs=1)):
        with pytest.raises(InputError, match="not finite"):
            call()


@pytest.mark.parametrize("shape", [(2,), (4,), (3, 1), (0,)])
def test_wrong_weight_shape_refused(shape: tuple[int, ...]) -> None:
    X, y = problem(20, 2)
    w = np.zeros(shape)
    with pytest.raises(InputError, match="expected 3") as info:
        predict_proba(w, X)
    assert isinstance(info.value, CovaultError) and isinstance(info.value, ValueError)
    with pytest.raises(InputError, match="expected 3"):
        local_train(w, X, y, lam=0.1, epochs=1)


def test_initial_weights() -> None:
    w = initial_weights(3, 0.2)
    assert w[:-1].tolist() == [0.0, 0.0, 0.0]
    assert w[-1] == pytest.approx(np.log(0.25))
    assert np.isfinite(initial_weights(2, 0.0)).all() and np.isfinite(initial_weights(2, 1.0)).all()


# --- FLResult ---------------------------------------------------------------------------

SPEC_KEYS = ["kind", "rounds", "aggregation", "global", "parties", "history", "epsilon"]


def test_flresult_to_dict_has_the_spec_keys_first() -> None:
    r = FLResult("horizontal", 3, "fedavg", {"auc": 0.7, "ks": 0.3, "logloss": 0.5},
                 {"bank_1": {"rows": 10, "auc": 0.7, "local_auc": 0.6}},
                 [{"round": 1}, {"round": 2}, {"round": 3}], None,
                 {"weights": [0.1, 0.2], "features": ["a", "b"]})
    d = r.to_dict()
    assert list(d)[:7] == SPEC_KEYS
    assert list(d)[7:] == ["weights", "features"]
    assert d["global"] == {"auc": 0.7, "ks": 0.3, "logloss": 0.5}
    assert d["epsilon"] is None


def test_flresult_round_trip_keeps_extras() -> None:
    raw = {"features": ["x"], "kind": "horizontal", "epsilon": 1.25, "rounds": 2,
           "aggregation": "ckks", "global": {"auc": 0.8}, "parties": {}, "history": [],
           "traffic": {"bytes": 10}}
    r = FLResult.from_dict(raw)
    assert r.epsilon == 1.25 and r.details == {"features": ["x"], "traffic": {"bytes": 10}}
    d = r.to_dict()
    assert list(d)[:7] == SPEC_KEYS and d == raw
