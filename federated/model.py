"""Logistic regression in numpy: the objective, local training and a full solver.

The objective of ``n`` rows is scikit-learn's ``LogisticRegression(C=C)`` divided by
``C * n``: the mean log-loss plus ``lam / 2 * ||coef||^2`` with ``lam = 1 / (C * n)``;
the intercept is not penalised. In a federated run ``n`` is the global row count, so the
row-weighted average of the parties' local objectives is exactly the pooled objective.

The weight vector is ``[coef..., intercept]``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from privacy.errors import InputError

__all__ = ["sigmoid", "predict_proba", "loss_and_grad", "lipschitz", "local_train",
           "fit_full", "initial_weights"]

FloatArray = npt.NDArray[np.float64]


def sigmoid(z: FloatArray) -> FloatArray:
    """Numerically stable logistic function."""
    out = np.empty_like(z, dtype=np.float64)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


def _check(w: FloatArray, X: FloatArray) -> None:
    if w.ndim != 1 or w.shape[0] != X.shape[1] + 1:
        raise InputError(f"model has {w.shape} weights for {X.shape[1]} features "
                         f"(expected {X.shape[1] + 1})")
    if not np.all(np.isfinite(w)):
        raise InputError("model weights are not finite (NaN or infinity)")


def predict_proba(w: FloatArray, X: FloatArray) -> FloatArray:
    """P(label = positive) for each row."""
    _check(w, X)
    return sigmoid(X @ w[:-1] + w[-1])


def initial_weights(features: int, positive_rate: float) -> FloatArray:
    """Zero coefficients and the intercept at the log-odds of the global event rate."""
    p = min(max(positive_rate, 1e-6), 1 - 1e-6)
    w = np.zeros(features + 1)
    w[-1] = np.log(p / (1 - p))
    return w


def loss_and_grad(w: FloatArray, X: FloatArray, y: FloatArray, lam: float
                  ) -> tuple[float, FloatArray]:
    """Mean log-loss plus ``lam/2 * ||coef||^2`` and its gradient."""
    z = X @ w[:-1] + w[-1]
    # log(1 + e^z) - y z, stably
    loss = float(np.mean(np.logaddexp(0.0, z) - y * z)) + 0.5 * lam * float(w[:-1] @ w[:-1])
    r = sigmoid(z) - y
    g = np.empty_like(w)
    g[:-1] = X.T @ r / X.shape[0] + lam * w[:-1]
    g[-1] = float(r.mean())
    return loss, g


def lipschitz(X: FloatArray, lam: float, *, iterations: int = 30, seed: int = 0) -> float:
    """Upper estimate of the gradient's Lipschitz constant ``0.25 * lmax(A'A/n) + lam``
    with ``A = [X, 1]`` (power iteration, then a 10 % margin)."""
    n, d = X.shape
    rng = np.random.default_rng(seed)
    v = rng.standard_normal(d + 1)
    v /= np.linalg.norm(v)
    lmax = 1.0
    for _ in range(iterations):
        av = X @ v[:-1] + v[-1]
        u = np.empty(d + 1)
        u[:-1] = X.T @ av / n
        u[-1] = av.sum() / n
        lmax = float(np.linalg.norm(u))
        if lmax == 0:
            return 0.25 + lam
        v = u / lmax
    return 1.1 * (0.25 * lmax + lam)


def local_train(w0: FloatArray, X: FloatArray, y: FloatArray, *, lam: float, epochs: int,
                learning_rate: float | None = None, proximal_mu: float = 0.0) -> FloatArray:
    """Full-batch gradient descent from ``w0`` (FedAvg's local update).

    ``proximal_mu > 0`` adds FedProx's ``mu/2 * ||w - w0||^2``. The step is
    ``learning_rate`` or, when ``None``, ``1 / L`` (:func:`lipschitz`), which makes each
    step decrease the local objective.
    """
    _check(w0, X)
    step = learning_rate if learning_rate is not None else 1.0 / (lipschitz(X, lam) + proximal_mu)
    w = w0.copy()
    for _ in range(epochs):
        _, g = loss_and_grad(w, X, y, lam)
        if proximal_mu:
            g = g + proximal_mu * (w - w0)
        w = w - step * g
    if not np.all(np.isfinite(w)):
        raise InputError("local training diverged (non-finite weights): lower learning_rate")
    return w


def fit_full(X: FloatArray, y: FloatArray, *, lam: float, w0: FloatArray | None = None,
             tol: float = 1e-10, max_iter: int = 2000) -> FloatArray:
    """Minimise the objective to convergence (L-BFGS, scipy): a party's local-only model."""
    from scipy.optimize import minimize

    start = w0 if w0 is not None else initial_weights(X.shape[1], float(np.mean(y)))
    res = minimize(loss_and_grad, start, args=(X, y, lam), jac=True, method="L-BFGS-B",
                   options={"maxiter": max_iter, "gtol": tol, "ftol": 1e-15})
    return np.asarray(res.x, dtype=np.float64)
