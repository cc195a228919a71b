"""federated.metrics against scikit-learn (and scipy) on random data with ties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import ks_2samp
from sklearn.calibration import calibration_curve
from sklearn.metrics import log_loss, roc_auc_score, roc_curve

from federated import metrics as m
from privacy.errors import InputError


def _data(seed: int, n: int = 400, decimals: int | None = 1,
          rate: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Labels and a noisy score; rounding to ``decimals`` makes many ties."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < rate).astype(int)
    y[:2] = [0, 1]  # both classes, always
    score = rng.random(n) * 0.8 + 0.2 * y
    if decimals is not None:
        score = np.round(score, decimals)
    return y, score


CASES = [(seed, decimals) for seed in range(6) for decimals in (None, 2, 1, 0)]


@pytest.mark.parametrize(("seed", "decimals"), CASES)
def test_auc_equals_sklearn(seed: int, decimals: int | None) -> None:
    y, s = _data(seed, decimals=decimals)
    assert m.auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


@pytest.mark.parametrize(("seed", "decimals"), CASES)
def test_ks_equals_sklearn_and_scipy(seed: int, decimals: int | None) -> None:
    y, s = _data(seed, decimals=decimals)
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    assert m.ks(y, s) == pytest.approx(float(np.max(np.abs(tpr - fpr))), abs=1e-12)
    assert m.ks(y, s) == pytest.approx(ks_2samp(s[y == 1], s[y == 0]).statistic, abs=1e-12)


def test_rank_metrics_do_not_depend_on_row_order_under_ties() -> None:
    y, s = _data(7, decimals=1)
    perm = np.random.default_rng(1).permutation(y.size)
    assert m.auc(y[perm], s[perm]) == pytest.approx(m.auc(y, s), abs=1e-12)
    assert m.ks(y[perm], s[perm]) == pytest.approx(m.ks(y, s), abs=1e-12)
    for got, want in zip(m.lift(y[perm], s[perm]), m.lift(y, s), strict=True):
        assert got == pytest.approx(want)


def test_small_known_values() -> None:
    assert m.auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert m.auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)  # a tie counts one half
    assert m.auc([True, False, True], [3, 1, 2]) == pytest.approx(1.0)  # bool labels, ints
    assert m.ks([0, 0, 1, 1], [1, 2, 3, 4]) == pytest.approx(1.0)
    assert m.ks([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == pytest.approx(0.0)
    assert m.ks([1, 1, 0, 0], [1, 2, 3, 4]) == pytest.approx(1.0)  # |TPR - FPR|


@pytest.mark.parametrize("seed", range(4))
def test_logloss_equals_sklearn(seed: int) -> None:
    y, s = _data(seed, decimals=2)
    prob = np.clip(s, 0.01, 0.99)
    assert m.logloss(y, prob) == pytest.approx(log_loss(y, prob), rel=1e-12)


def test_logloss_clips_confident_mistakes() -> None:
    # 1 - 1e-15 is not exact in binary: the second term is -log(9.99e-16)
    assert m.logloss([1, 0], [0.0, 1.0]) == pytest.approx(-math.log(1e-15), rel=1e-4)
    assert m.logloss([1], [0.0], eps=1e-3) == pytest.approx(-math.log(1e-3))
    assert m.logloss([1, 1], [1.0, 1.0]) == pytest.approx(-math.log(1 - 1e-15))


@pytest.mark.parametrize(("seed", "decimals"), CASES)
def test_roc_points_lie_on_the_sklearn_curve(seed: int, decimals: int | None) -> None:
    y, s = _data(seed, decimals=decimals)
    roc = m.roc_points(y, s, max_points=10**6)
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    full = {(round(a, 6), round(b, 6)) for a, b in zip(fpr, tpr, strict=True)}
    assert set(zip(roc["fpr"], roc["tpr"], strict=True)) <= full
    # nothing lost: the kept points span the same area as the full curve
    assert np.trapezoid(roc["tpr"], roc["fpr"]) == pytest.approx(roc_auc_score(y, s), abs=1e-5)


def test_roc_points_downsampled_keeps_the_ends() -> None:
    y, s = _data(11, n=5000, decimals=None)
    roc = m.roc_points(y, s, max_points=50)
    assert 2 < len(roc["fpr"]) <= 50 and len(roc["fpr"]) == len(roc["tpr"])
    assert (roc["fpr"][0], roc["tpr"][0]) == (0.0, 0.0)
    assert (roc["fpr"][-1], roc["tpr"][-1]) == (1.0, 1.0)
    assert np.all(np.diff(roc["fpr"]) >= 0) and np.all(np.diff(roc["tpr"]) >= 0)
    assert np.trapezoid(roc["tpr"], roc["fpr"]) == pytest.approx(m.auc(y, s), abs=0.01)
    two = m.roc_points(y, s, max_points=2)
    assert two == {"fpr": [0.0, 1.0], "tpr": [0.0, 1.0]}


@pytest.mark.parametrize(("seed", "decimals"), CASES)
def test_calibration_equals_sklearn_quantile_bins(seed: int, decimals: int | None) -> None:
    y, s = _data(seed, decimals=decimals)
    prob = np.clip(s, 0.0, 1.0)
    cal = m.calibration(y, prob, bins=10)
    observed, predicted = calibration_curve(y, prob, n_bins=10, strategy="quantile")
    assert cal["observed"] == pytest.approx(list(observed))
    assert cal["predicted"] == pytest.approx(list(predicted))
    assert sum(cal["count"]) == y.size and min(cal["count"]) > 0


def test_calibration_skips_empty_bins() -> None:
    cal = m.calibration([0, 1, 0, 0, 1, 1], [0.2, 0.2, 0.2, 0.7, 0.7, 0.7], bins=10)
    assert cal == {"predicted": pytest.approx([0.2, 0.7]),
                   "observed": pytest.approx([1 / 3, 2 / 3]), "count": [3, 3]}


def test_lift_table() -> None:
    y = np.array([1, 1, 0, 0, 1, 0, 0, 0, 0, 0])
    s = np.arange(10, 0, -1)  # already ranked, no ties
    table = m.lift(y, s, bins=5)
    assert [row["positives"] for row in table] == [2, 0, 1, 0, 0]
    assert table[0]["lift"] == pytest.approx(1.0 / 0.3)  # top bin: rate 1, base 0.3
    assert table[1]["lift"] == 0.0
    assert table[1]["cumulative_lift"] == pytest.approx(0.5 / 0.3)
    assert table[2]["capture"] == pytest.approx(1.0)
    assert table[-1]["capture"] == pytest.approx(1.0)
    assert table[-1]["cumulative_lift"] == pytest.approx(1.0)
    assert [row["bin"] for row in table] == [1, 2, 3, 4, 5]


def test_lift_spreads_tied_rows_evenly() -> None:
    table = m.lift([1, 0, 0, 1], [0.5, 0.5, 0.5, 0.5], bins=2)
    assert [row["lift"] for row in table] == pytest.approx([1.0, 1.0])
    assert [row["positives"] for row in table] == pytest.approx([1.0, 1.0])


def test_lift_top_decile_on_random_data() -> None:
    y, s = _data(5, n=2000, decimals=2)
    table = m.lift(y, s)
    order = np.argsort(-s, kind="stable")
    top = y[order][:200].mean() / y.mean()
    assert len(table) == 10 and sum(row["rows"] for row in table) == 2000
    assert table[0]["lift"] == pytest.approx(top, rel=0.05)  # ties at the cut only differ


def test_summary() -> None:
    y, s = _data(3, decimals=2)
    prob = np.clip(s, 0.01, 0.99)
    got = m.summary(y, prob)
    assert got == {"auc": pytest.approx(roc_auc_score(y, prob)), "ks": pytest.approx(m.ks(y, prob)),
                   "logloss": pytest.approx(log_loss(y, prob)), "rows": 400,
                   "positives": int(y.sum())}
    one = m.summary([0, 0, 0], [0.1, 0.2, 0.3])
    assert one["auc"] is None and one["ks"] is None and one["positives"] == 0
    assert one["logloss"] == pytest.approx(log_loss([0, 0, 0], [0.1, 0.2, 0.3], labels=[0, 1]))


@pytest.mark.parametrize("fn", [m.auc, m.ks, m.roc_points, m.lift])
def test_one_class_raises(fn: object) -> None:
    with pytest.raises(InputError, match="only negative labels"):
        fn([0, 0, 0], [0.1, 0.2, 0.3])  # type: ignore[operator]
    with pytest.raises(ValueError, match="only positive labels"):
        fn([1, 1], [0.1, 0.2])  # type: ignore[operator]


@pytest.mark.parametrize(("call", "message"), [
    (lambda: m.auc([0, 1, 1], [0.1, float("nan"), 0.3]), "score: row 1: .*finite.*got nan"),
    (lambda: m.ks([0, 1], [0.1, float("inf")]), "finite"),
    (lambda: m.auc([0, 1, 1], [0.1, 0.2]), "2 values for 3 labels"),
    (lambda: m.auc([0, 2], [0.1, 0.2]), "labels 0 or 1"),
    (lambda: m.auc([0.0, float("nan")], [0.1, 0.2]), "labels 0 or 1"),
    (lambda: m.auc(["a", "b"], [0.1, 0.2]), "labels 0 or 1"),
    (lambda: m.auc([], []), "no rows"),
    (lambda: m.auc([[0, 1]], [[0.1, 0.2]]), "1-D"),
    (lambda: m.logloss([0, 1], [0.1, 1.2]), r"probabilities in \[0, 1\]"),
    (lambda: m.logloss([0, 1], [0.1, 0.2], eps=0.0), "eps"),
    (lambda: m.calibration([0, 1], [-0.1, 0.2]), "probabilities"),
    (lambda: m.calibration([0, 1], [0.1, 0.2], bins=0), "bins"),
    (lambda: m.roc_points([0, 1], [0.1, 0.2], max_points=1), "max_points"),
    (lambda: m.lift([0, 1], [0.1, 0.2], bins=3), "at most one per row"),
    (lambda: m.summary([0, 1], [0.1, float("nan")]), "prob"),
])
def test_bad_input_raises_input_error(call: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        call()  # type: ignore[operator]
