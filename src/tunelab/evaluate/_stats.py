"""Is model B really better than model A? Paired tests, and a verdict in words.

Every difference here is **B minus A** ("how much B improves on A" for a metric where higher is
better), so a positive ``diff`` favours B on accuracy and A on a loss.

* :func:`mcnemar_exact`: exact McNemar test on per-sample correctness of the same test set.
* :func:`paired_bootstrap_diff`: bootstrap interval and p-value of a metric's difference, both
  models scored on the same resamples.
* :func:`corrected_resampled_ttest`: Nadeau & Bengio's (2003) corrected t-test on per-split scores
  from repeated train/test splits or cross-validation, where the splits overlap.
* :func:`verdict`: one sentence a person can act on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from tunelab.errors import TunelabError
from tunelab.evaluate._bootstrap import _bootstrap_values, _plan
from tunelab.evaluate._intervals import _check_options, _interval
from tunelab.evaluate._metrics import METRICS, _resolve_metrics

__all__ = [
    "DiffResult",
    "McNemarResult",
    "TTestResult",
    "corrected_resampled_ttest",
    "mcnemar_exact",
    "paired_bootstrap_diff",
    "verdict",
]


@dataclass(frozen=True)
class McNemarResult:
    """Exact McNemar test.

    Attributes:
        b: Samples A got right and B got wrong.
        c: Samples A got wrong and B got right.
        statistic: ``min(b, c)`` (as statsmodels' exact test reports it).
        p_value: Two-sided exact binomial p-value of ``b`` among ``b + c`` at 1/2 (1.0 if b + c = 0).
    """

    b: int
    c: int
    statistic: int
    p_value: float


@dataclass(frozen=True)
class DiffResult:
    """Paired bootstrap of a metric's difference B - A.

    Attributes:
        diff: metric(B) - metric(A) on the data.
        low: Lower bound of the percentile interval of the difference.
        high: Upper bound.
        p_value: Two-sided bootstrap p-value of the sign of the difference.
    """

    diff: float
    low: float
    high: float
    p_value: float


@dataclass(frozen=True)
class TTestResult:
    """Corrected resampled t-test of per-split scores B - A.

    Attributes:
        mean_diff: Mean of ``scores_b - scores_a`` over the splits.
        t: t statistic with the corrected variance.
        p_value: Two-sided p-value.
        df: Degrees of freedom (number of splits - 1).
        se: Corrected standard error of ``mean_diff``, ``sqrt((1/J + n_test/n_train) * var(d))``.
        low: Lower bound of the t interval ``mean_diff -/+ t_{df}(1/2 + level/2) * se``.
        high: Upper bound.
        level: Coverage of the interval.
    """

    mean_diff: float
    t: float
    p_value: float
    df: int
    se: float
    low: float
    high: float
    level: float


def _as_correctness(values: object, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1 or not (array.dtype == bool or np.isin(array, (0, 1)).all()):
        raise TunelabError(
            f"{name} must be per-sample correctness, a 1-D array of booleans (or 0/1); got "
            f"shape {array.shape} and dtype {array.dtype}. Pass y_score.argmax(axis=1) == y_true."
        )
    return array.astype(bool)


def mcnemar_exact(correct_a: object, correct_b: object) -> McNemarResult:
    """Exact two-sided McNemar test of two classifiers on the same samples.

    Only discordant samples matter: under "equally good", each of the ``b + c`` samples where
    exactly one model is right is A's with probability 1/2, so ``p = min(1, 2 * P(X <= min(b, c)))``
    with ``X ~ Binomial(b + c, 1/2)`` (statsmodels' ``mcnemar(table, exact=True)``).

    Args:
        correct_a: Per-sample correctness of model A, bool (n,).
        correct_b: Per-sample correctness of model B, bool (n,), same samples in the same order.

    Example:
        >>> mcnemar_exact([1, 1, 0, 1], [1, 0, 0, 1])
        McNemarResult(b=1, c=0, statistic=0, p_value=1.0)
    """
    a = _as_correctness(correct_a, "correct_a")
    b_correct = _as_correctness(correct_b, "correct_b")
    if a.shape != b_correct.shape:
        raise TunelabError(
            f"correct_a and correct_b must describe the same samples; got {a.shape[0]} and "
            f"{b_correct.shape[0]} values. Score both models on the same test set."
        )
    b = int(np.sum(a & ~b_correct))
    c = int(np.sum(~a & b_correct))
    statistic = min(b, c)
    p_value = 1.0 if b + c == 0 else min(1.0, 2.0 * float(stats.binom.cdf(statistic, b + c, 0.5)))
    return McNemarResult(b, c, statistic, p_value)


def paired_bootstrap_diff(
    task: str,
    y_true: object,
    score_a: object,
    score_b: object,
    metric: str,
    *,
    n_resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> DiffResult:
    """Bootstrap the difference metric(B) - metric(A), both models on the same resamples.

    The interval is the percentile interval of the resampled differences. The p-value is
    ``min(1, 2 * (1 + #{d* on the far side of 0}) / (n_resamples + 1))``, where the far side is
    ``d* <= 0`` (``d* >= 0``) when the observed difference is positive (negative): never exactly
    0, so it cannot go below ``2 / (n_resamples + 1)``. Resamples where the metric is undefined are
    left out.

    Args:
        task: ``classification`` or ``regression``.
        y_true: Class indices or targets, shared by both models.
        score_a: Model A's probabilities (n, k) or predictions.
        score_b: Model B's, same shape.
        metric: A registered metric name, e.g. ``accuracy``.
        n_resamples: Number of bootstrap resamples.
        level: Coverage of the interval.
        seed: Seed of the resampling.
    """
    _check_options(n_resamples, level)
    metrics = _resolve_metrics(task, metric)
    plans = [_plan(task, y_true, score, metrics) for score in (score_a, score_b)]
    if plans[0].predictions.shape != plans[1].predictions.shape:
        raise TunelabError(
            f"score_a and score_b must have the same shape; got {plans[0].predictions.shape} "
            f"and {plans[1].predictions.shape}. Score both models on the same samples."
        )
    name, n = metrics[0].name, len(plans[0].y)
    ones = np.ones((n, 1), dtype=plans[0].dtype)
    diff = float(plans[1].values(ones)[name][0] - plans[0].values(ones)[name][0])
    rng = np.random.default_rng(seed)
    values_a, values_b = _bootstrap_values(plans, n, int(n_resamples), rng, None)
    replicates = values_b[name] - values_a[name]
    low, high, _ = _interval(replicates, level, "percentile", diff)
    finite = replicates[np.isfinite(replicates)]
    if np.isnan(low):  # undefined on the data, or on too many resamples
        return DiffResult(diff, low, high, float("nan"))
    at_or_below, at_or_above = np.sum(finite <= 0), np.sum(finite >= 0)
    far_side = (
        min(at_or_below, at_or_above) if diff == 0 else (at_or_below if diff > 0 else at_or_above)
    )
    p_value = min(1.0, 2.0 * (1 + far_side) / (len(finite) + 1))
    return DiffResult(diff, low, high, float(p_value))


def corrected_resampled_ttest(
    scores_a: object, scores_b: object, *, n_train: int, n_test: int, level: float = 0.95
) -> TTestResult:
    """Nadeau & Bengio's corrected resampled t-test of per-split scores (B - A).

    Scores from J overlapping train/test splits (repeated holdout or cross-validation folds) are
    correlated, and the plain paired t-test is overconfident. The corrected variance of the mean
    difference is ``(1/J + n_test/n_train) * var(d)`` (sample variance, ddof = 1) instead of
    ``var(d) / J``; ``t = mean(d) / sqrt(that)`` with J - 1 degrees of freedom. With ``n_test = 0``
    it is the ordinary paired t-test (``scipy.stats.ttest_rel``). When every difference is the
    same, t is 0 (p = 1) if they are 0, else infinite (p = 0).

    The interval is ``mean(d) -/+ q * se`` with ``se`` the square root of that corrected variance
    and ``q`` the t quantile at ``1/2 + level/2`` with J - 1 degrees of freedom: the interval that
    goes with the test (it excludes 0 exactly when ``p < 1 - level``). It is computed from the
    variance, never from ``mean / t``, so folds that disagree give a wide interval even when their
    mean difference is 0.

    Args:
        scores_a: Model A's score on each split, shape (J,), J >= 2.
        scores_b: Model B's score on the same splits.
        n_train: Training samples per split.
        n_test: Test samples per split.
        level: Coverage of the interval, in (0, 1).

    Example:
        >>> r = corrected_resampled_ttest([0.8, 0.9, 0.7], [0.9, 0.8, 0.7], n_train=20, n_test=10)
        >>> r.mean_diff, round(r.se, 4), r.p_value
        (0.0, 0.0913, 1.0)
    """
    a = np.asarray(scores_a, dtype=np.float64)
    b = np.asarray(scores_b, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape or len(a) < 2:
        raise TunelabError(
            f"scores_a and scores_b must be per-split scores of the same length J >= 2; got "
            f"shapes {a.shape} and {b.shape}. Pass one score per fold or repeat for each model."
        )
    if n_train < 1 or n_test < 0:
        raise TunelabError(
            f"n_train must be >= 1 and n_test >= 0 (samples per split); got n_train={n_train}, "
            f"n_test={n_test}."
        )
    if not 0 < level < 1:
        raise TunelabError(f"level must be in (0, 1), e.g. 0.95; got {level!r}.")
    d = b - a
    j = len(d)
    mean = float(d.mean())
    variance = (1.0 / j + n_test / n_train) * float(d.var(ddof=1))
    df = j - 1
    if variance == 0:
        t = 0.0 if mean == 0 else math.copysign(math.inf, mean)
    else:
        t = mean / math.sqrt(variance)
    p_value = float(2 * stats.t.sf(abs(t), df))
    se = math.sqrt(variance)
    half = float(stats.t.ppf(0.5 + level / 2, df)) * se
    return TTestResult(mean, float(t), p_value, df, se, mean - half, mean + half, level)


_PROPORTION_PREFIXES = ("accuracy", "balanced_accuracy", "precision_", "recall_", "f1_", "top")


def _is_proportion(metric: str) -> bool:
    """Metrics in [0, 1] whose differences read best as percentage points."""
    return metric in ("roc_auc", "ece") or metric.startswith(_PROPORTION_PREFIXES)


def _format_p(p_value: float) -> str:
    if p_value < 0.001:
        return "p < 0.001"
    return f"p = {p_value:.2g}"


def verdict(
    name_a: str,
    name_b: str,
    metric: str,
    diff: float,
    low: float,
    high: float,
    p_value: float,
    test_name: str,
    *,
    alpha: float = 0.05,
    higher_is_better: bool | None = None,
    level: float = 0.95,
) -> str:
    """One sentence on whether B beats A, from a difference B - A, its interval and a p-value.

    A winner is named only when ``p_value < alpha`` and the interval excludes 0; otherwise the
    sentence says there is no significant difference (an absent effect is not shown, only not
    found), and when one of the two holds without the other it ends in "borderline: ..." naming
    which. Proportions in [0, 1] (accuracy, F1, ROC-AUC, ...) are shown in percentage points;
    other metrics as raw differences. The winner's margin and interval are shown as improvements
    (positive); the no-difference sentence shows B - A.

    Args:
        name_a: Name of model A.
        name_b: Name of model B.
        metric: Metric name, e.g. ``accuracy``.
        diff: metric(B) - metric(A).
        low: Lower bound of the interval of ``diff``.
        high: Upper bound.
        p_value: p-value of the test named ``test_name``.
        test_name: e.g. ``McNemar`` or ``paired bootstrap``.
        alpha: Significance level.
        higher_is_better: Direction of the metric; looked up in the registry when None (and True
            for an unknown metric).
        level: Coverage of the interval, for the text.

    Example:
        >>> verdict("A", "B", "accuracy", 0.012, 0.004, 0.020, 0.003, "McNemar")
        'B beats A on accuracy by 1.2 points (95% CI 0.4 to 2.0, McNemar p = 0.003)'
    """
    if higher_is_better is None:
        higher_is_better = METRICS[metric].greater_is_better if metric in METRICS else True
    points = _is_proportion(metric)

    def fmt(value: float) -> str:
        return f"{100 * value:.1f}" if points else f"{value:.3g}"

    unit = " points" if points else ""
    ci = f"{round(100 * level)}% CI"
    test = f"{test_name} {_format_p(p_value)}"
    rejects, excludes = p_value < alpha, low > 0 or high < 0
    if not (rejects and excludes) or diff == 0:
        # one criterion without the other is said, so a borderline case does not read as a tie
        split = ""  # (both cannot hold here unless diff == 0)
        if excludes and diff != 0:
            split = f"; borderline: the interval excludes 0 but {test_name} does not reject"
        elif rejects and diff != 0:
            split = f"; borderline: {test_name} rejects but the interval does not exclude 0"
        return (
            f"no significant difference between {name_a} and {name_b} on {metric} "
            f"(difference {fmt(diff)}{unit}, {ci} {fmt(low)} to {fmt(high)}, {test}){split}"
        )
    b_wins = (diff > 0) == higher_is_better
    winner, loser = (name_b, name_a) if b_wins else (name_a, name_b)
    gain, gain_low, gain_high = (diff, low, high) if diff > 0 else (-diff, -high, -low)
    return (
        f"{winner} beats {loser} on {metric} by {fmt(gain)}{unit} "
        f"({ci} {fmt(gain_low)} to {fmt(gain_high)}, {test})"
    )
