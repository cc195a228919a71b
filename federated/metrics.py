"""Evaluation metrics for binary credit models: AUC, KS, log loss, ROC, calibration, lift.

numpy only, so a party can score its test rows without scikit-learn. Every function takes
labels ``y_true`` (0/1 or bool) and a score or probability of the positive class, checks
them, and raises :class:`~privacy.errors.InputError` (a ``ValueError``) on bad input:
different lengths, empty arrays, labels other than 0 and 1, NaN or infinite scores, and
for the rank metrics (:func:`auc`, :func:`ks`, :func:`roc_points`, :func:`lift`) data
holding one class only.

Ties are handled the way scikit-learn handles them: tied scores get their average rank
(AUC) and form one threshold (KS, ROC), so results do not depend on row order.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from privacy.errors import InputError

__all__ = ["auc", "ks", "logloss", "roc_points", "calibration", "lift", "summary"]

_FloatArray = npt.NDArray[np.float64]


def _labels(y_true: npt.ArrayLike) -> _FloatArray:
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise InputError(f"y_true: expected a 1-D array of labels, got shape {y.shape}")
    if y.size == 0:
        raise InputError("y_true: no rows")
    if y.dtype.kind not in "biuf":
        raise InputError(f"y_true: expected labels 0 or 1, got dtype {y.dtype}")
    y = y.astype(np.float64)
    bad = (y != 0.0) & (y != 1.0)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise InputError(f"y_true: row {first}: expected labels 0 or 1, got {y[first]:g}")
    return y


def _scores(score: npt.ArrayLike, n: int, *, name: str, unit: bool) -> _FloatArray:
    s = np.asarray(score)
    if s.ndim != 1:
        raise InputError(f"{name}: expected a 1-D array, got shape {s.shape}")
    if s.dtype.kind not in "biuf":
        raise InputError(f"{name}: expected numbers, got dtype {s.dtype}")
    s = s.astype(np.float64)
    if s.size != n:
        raise InputError(f"{name}: {s.size} values for {n} labels; expected one per label")
    finite = np.isfinite(s)
    if not finite.all():
        first = int(np.flatnonzero(~finite)[0])
        raise InputError(f"{name}: row {first}: expected finite numbers, got {s[first]:g}")
    if unit and ((s < 0.0).any() or (s > 1.0).any()):
        first = int(np.flatnonzero((s < 0.0) | (s > 1.0))[0])
        raise InputError(f"{name}: row {first}: expected probabilities in [0, 1], "
                         f"got {s[first]:g}")
    return s


def _check(y_true: npt.ArrayLike, score: npt.ArrayLike, *, name: str = "score",
           unit: bool = False, both: bool = True) -> tuple[_FloatArray, _FloatArray]:
    y = _labels(y_true)
    s = _scores(score, y.size, name=name, unit=unit)
    if both:
        pos = int(y.sum())
        if pos == 0 or pos == y.size:
            only = "positive" if pos else "negative"
            raise InputError(f"y_true: only {only} labels ({y.size} rows); "
                             "this metric needs both classes")
    return y, s


def _positive_int(value: int, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise InputError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def _roc_counts(y: _FloatArray, s: _FloatArray) -> tuple[_FloatArray, _FloatArray]:
    """Cumulative true and false positives at each distinct threshold, highest first,
    starting at (0, 0) and ending at (positives, negatives)."""
    uniq, inverse = np.unique(s, return_inverse=True)
    pos = np.bincount(inverse, weights=y, minlength=uniq.size)[::-1]
    tot = np.bincount(inverse, minlength=uniq.size)[::-1].astype(np.float64)
    tp = np.concatenate(([0.0], np.cumsum(pos)))
    fp = np.concatenate(([0.0], np.cumsum(tot - pos)))
    return tp, fp


def auc(y_true: npt.ArrayLike, score: npt.ArrayLike) -> float:
    """Area under the ROC curve, from ranks (Mann–Whitney U).

    Parameters
    ----------
    y_true:
        Labels, 0 or 1 (or bool).
    score:
        Any real score, higher meaning "more likely positive"; tied scores get their
        average rank.

    Returns
    -------
    float
        The probability that a random positive scores above a random negative (ties
        count one half); equal to ``sklearn.metrics.roc_auc_score``.

    Raises
    ------
    InputError
        Mismatched lengths, labels other than 0/1, NaN or infinite scores, or only one
        class present.
    """
    y, s = _check(y_true, score)
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts).astype(np.float64)
    ranks = (ends - (counts - 1) / 2.0)[inverse]  # average 1-based rank of each tie group
    n_pos = float(y.sum())
    n_neg = float(y.size) - n_pos
    u = float(ranks[y == 1.0].sum()) - n_pos * (n_pos + 1.0) / 2.0
    return u / (n_pos * n_neg)


def ks(y_true: npt.ArrayLike, score: npt.ArrayLike) -> float:
    """Kolmogorov–Smirnov statistic: the largest ``|TPR - FPR|`` over all thresholds.

    Tied scores form one threshold (a cut never separates equal scores). Equal to the
    two-sample KS statistic between the positives' and the negatives' scores.

    Raises
    ------
    InputError
        As :func:`auc`.
    """
    y, s = _check(y_true, score)
    tp, fp = _roc_counts(y, s)
    return float(np.max(np.abs(tp / tp[-1] - fp / fp[-1])))


def logloss(y_true: npt.ArrayLike, prob: npt.ArrayLike, eps: float = 1e-15) -> float:
    """Mean negative log-likelihood of the labels under ``prob``.

    Parameters
    ----------
    prob:
        Probabilities of the positive class, in [0, 1]; clipped to ``[eps, 1 - eps]``
        so that a confident mistake costs a large but finite amount.
    eps:
        Clipping bound, in (0, 0.5).

    Raises
    ------
    InputError
        Bad labels, probabilities outside [0, 1] or NaN, or a bad ``eps``. One class
        only is allowed.
    """
    if not (isinstance(eps, float | int) and 0.0 < eps < 0.5):
        raise InputError(f"eps: expected a number in (0, 0.5), got {eps!r}")
    y, p = _check(y_true, prob, name="prob", unit=True, both=False)
    p = np.clip(p, eps, 1.0 - eps)
    return float(-np.mean(y * np.log(p) + (1.0 - y) * np.log1p(-p)))


def roc_points(y_true: npt.ArrayLike, score: npt.ArrayLike,
               max_points: int = 200) -> dict[str, list[float]]:
    """The ROC curve as at most ``max_points`` points, for plotting.

    Points on a straight segment are dropped first (they add nothing to the drawing);
    if more than ``max_points`` remain, points evenly spaced along the curve are kept.
    The ends ``(0, 0)`` and ``(1, 1)`` are always kept.

    Returns
    -------
    dict
        ``{"fpr": [...], "tpr": [...]}``, both non-decreasing, rounded to 6 decimals.

    Raises
    ------
    InputError
        As :func:`auc`, or ``max_points`` below 2.
    """
    max_points = _positive_int(max_points, "max_points", 2)
    y, s = _check(y_true, score)
    tp, fp = _roc_counts(y, s)
    if tp.size > 2:  # keep the ends and every point where the direction changes
        bend = np.r_[True, (np.diff(tp, 2) != 0) | (np.diff(fp, 2) != 0), True]
        tp, fp = tp[bend], fp[bend]
    if tp.size > max_points:
        keep = np.unique(np.round(np.linspace(0, tp.size - 1, max_points)).astype(np.int64))
        tp, fp = tp[keep], fp[keep]
    return {"fpr": [round(float(v), 6) for v in fp / fp[-1]],
            "tpr": [round(float(v), 6) for v in tp / tp[-1]]}


def calibration(y_true: npt.ArrayLike, prob: npt.ArrayLike,
                bins: int = 10) -> dict[str, list[float]]:
    """Reliability curve over quantile bins of ``prob``.

    Bin edges are the quantiles of ``prob`` (as ``sklearn.calibration.calibration_curve``
    with ``strategy="quantile"``); a value on an inner edge falls in the lower bin. Ties
    can leave a bin empty: empty bins are skipped, so fewer than ``bins`` points may come
    back.

    Returns
    -------
    dict
        ``{"predicted": [...], "observed": [...], "count": [...]}``: per non-empty bin,
        the mean probability, the observed positive rate and the number of rows.

    Raises
    ------
    InputError
        Bad labels, probabilities outside [0, 1] or NaN, ``bins`` below 1. One class
        only is allowed.
    """
    bins = _positive_int(bins, "bins", 1)
    y, p = _check(y_true, prob, name="prob", unit=True, both=False)
    edges = np.quantile(p, np.linspace(0.0, 1.0, bins + 1))
    ids = np.searchsorted(edges[1:-1], p)
    total = np.bincount(ids, minlength=bins)
    sum_p = np.bincount(ids, weights=p, minlength=bins)
    sum_y = np.bincount(ids, weights=y, minlength=bins)
    used = total > 0
    return {"predicted": [float(v) for v in sum_p[used] / total[used]],
            "observed": [float(v) for v in sum_y[used] / total[used]],
            "count": [int(v) for v in total[used]]}


def lift(y_true: npt.ArrayLike, score: npt.ArrayLike,
         bins: int = 10) -> list[dict[str, float]]:
    """Lift table: rows ranked by score (highest first) and cut into ``bins`` equal groups.

    ``table[0]["lift"]`` is the top-decile lift (with ``bins=10``): the positive rate in
    the top tenth over the overall rate.

    Rows whose scores tie across a cut are not split arbitrarily: each row of a tie
    group carries the group's mean label, so a group's positives are spread evenly over
    the bins it spans and the table does not depend on row order (``positives`` may then
    be fractional).

    Returns
    -------
    list of dict
        One row per bin: ``bin`` (1 = highest scores), ``rows``, ``positives``, ``rate``,
        ``lift``, ``cumulative_lift`` (positive rate of bins 1..k over the overall rate)
        and ``capture`` (share of all positives in bins 1..k).

    Raises
    ------
    InputError
        As :func:`auc`, or ``bins`` below 1 or above the number of rows.
    """
    bins = _positive_int(bins, "bins", 1)
    y, s = _check(y_true, score)
    if bins > y.size:
        raise InputError(f"bins: {bins} bins for {y.size} rows; expected at most one per row")
    uniq, inverse = np.unique(s, return_inverse=True)
    group_rate = (np.bincount(inverse, weights=y, minlength=uniq.size)
                  / np.bincount(inverse, minlength=uniq.size))
    expected = group_rate[inverse][np.argsort(-s, kind="stable")]
    base = float(y.mean())
    total_pos = float(y.sum())
    table: list[dict[str, float]] = []
    seen_rows = 0
    seen_pos = 0.0
    for k, part in enumerate(np.array_split(expected, bins), start=1):
        pos = float(part.sum())
        seen_rows += part.size
        seen_pos += pos
        rate = pos / part.size
        table.append({"bin": k, "rows": part.size, "positives": pos, "rate": rate,
                      "lift": rate / base,
                      "cumulative_lift": (seen_pos / seen_rows) / base,
                      "capture": seen_pos / total_pos})
    return table


def summary(y_true: npt.ArrayLike, prob: npt.ArrayLike) -> dict[str, float | int | None]:
    """The headline numbers of a test set: ``auc``, ``ks``, ``logloss``, ``rows``,
    ``positives``.

    Unlike :func:`auc` and :func:`ks`, a test set holding one class only does not raise:
    ``auc`` and ``ks`` are then ``None`` (a small party's test rows may hold no default),
    and ``logloss`` is still computed.

    Raises
    ------
    InputError
        Bad labels, probabilities outside [0, 1] or NaN.
    """
    y, p = _check(y_true, prob, name="prob", unit=True, both=False)
    positives = int(y.sum())
    one_class = positives in (0, y.size)
    return {"auc": None if one_class else auc(y, p),
            "ks": None if one_class else ks(y, p),
            "logloss": logloss(y, p),
            "rows": int(y.size),
            "positives": positives}
