"""Paired tests against statsmodels, mlxtend and scipy, and the verdict sentences."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from tunelab.errors import TunelabError
from tunelab.evaluate import (
    DiffResult,
    McNemarResult,
    TTestResult,
    compute_metrics,
    corrected_resampled_ttest,
    mcnemar_exact,
    paired_bootstrap_diff,
    verdict,
)


def _scores_with_accuracy(correct: np.ndarray, k: int = 3, seed: int = 0) -> np.ndarray:
    """Class probabilities for labels 0 whose argmax is right exactly where `correct` is."""
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.ones(k), size=len(correct))
    top = proba.max(axis=1)
    proba[:, 0] = np.where(correct, top + 0.5, 0.0)
    return proba / proba.sum(axis=1, keepdims=True)


def _pair(n: int, p_a: float, p_b: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.random(n) < p_a, rng.random(n) < p_b


MCNEMAR_CASES = [
    (200, 0.8, 0.85, 0),
    (60, 0.7, 0.7, 1),
    (2000, 0.8, 0.9, 2),
    (25, 0.5, 0.6, 3),
]


# --- McNemar -------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", MCNEMAR_CASES)
def test_mcnemar_matches_statsmodels(case: tuple) -> None:
    contingency = pytest.importorskip("statsmodels.stats.contingency_tables")
    a, b = _pair(*case)
    table = [[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]]
    expected = contingency.mcnemar(table, exact=True)
    result = mcnemar_exact(a, b)
    assert (result.b, result.c) == (table[0][1], table[1][0])
    assert result.statistic == expected.statistic
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-12)


@pytest.mark.parametrize("case", MCNEMAR_CASES)
def test_mcnemar_matches_mlxtend_and_scipy_binomtest(case: tuple) -> None:
    mlxtend = pytest.importorskip("mlxtend.evaluate")
    a, b = _pair(*case)
    table = np.array([[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]])
    _, p_mlxtend = mlxtend.mcnemar(table, exact=True)
    result = mcnemar_exact(a, b)
    assert result.p_value == pytest.approx(p_mlxtend, rel=1e-12)
    binom = stats.binomtest(result.b, result.b + result.c, 0.5).pvalue
    assert result.p_value == pytest.approx(binom, rel=1e-12)


def test_mcnemar_identical_models_and_hand_example() -> None:
    correct = np.random.default_rng(0).random(100) < 0.8
    assert mcnemar_exact(correct, correct) == McNemarResult(0, 0, 0, 1.0)
    # b = 1, c = 5: p = 2 * P(X <= 1), X ~ Bin(6, 1/2) = 2 * 7/64
    a = [1, 0, 0, 0, 0, 0, 1]
    b = [0, 1, 1, 1, 1, 1, 1]
    assert mcnemar_exact(a, b) == McNemarResult(1, 5, 1, 14 / 64)


def test_mcnemar_errors() -> None:
    with pytest.raises(TunelabError, match="same samples"):
        mcnemar_exact([True, False], [True])
    with pytest.raises(TunelabError, match="correctness"):
        mcnemar_exact([0.2, 0.9], [1, 0])


# --- paired bootstrap and the verdicts from the brief -------------------------------------------


def test_identical_models_have_no_difference() -> None:
    correct = np.random.default_rng(0).random(500) < 0.8
    y, proba = np.zeros(500, dtype=np.int64), _scores_with_accuracy(correct)
    result = paired_bootstrap_diff("classification", y, proba, proba, "accuracy", n_resamples=500)
    assert result == DiffResult(0.0, 0.0, 0.0, 1.0)
    test = mcnemar_exact(correct, correct)
    assert test.p_value == 1.0
    text = verdict("A", "B", "accuracy", result.diff, result.low, result.high, 1.0, "McNemar")
    assert text == (
        "no significant difference between A and B on accuracy "
        "(difference 0.0 points, 95% CI 0.0 to 0.0, McNemar p = 1)"
    )


def test_clearly_better_model_wins() -> None:
    correct_a, correct_b = _pair(2000, 0.8, 0.9, 7)
    y = np.zeros(2000, dtype=np.int64)
    proba_a, proba_b = _scores_with_accuracy(correct_a, seed=1), _scores_with_accuracy(correct_b)
    result = paired_bootstrap_diff("classification", y, proba_a, proba_b, "accuracy")
    assert result.diff == pytest.approx(correct_b.mean() - correct_a.mean(), abs=1e-15)
    assert 0.07 < result.low < result.diff < result.high < 0.13
    assert result.p_value == pytest.approx(2 / 2001)  # no resample favours A: the floor
    test = mcnemar_exact(correct_a, correct_b)
    assert test.p_value < 0.001
    text = verdict(
        "A", "B", "accuracy", result.diff, result.low, result.high, test.p_value, "McNemar"
    )
    points = f"{100 * result.diff:.1f}"
    assert text.startswith(f"B beats A on accuracy by {points} points (95% CI ")
    assert text.endswith(", McNemar p < 0.001)")
    # the better model passed first: the difference is negative, and it still wins
    swapped = paired_bootstrap_diff("classification", y, proba_b, proba_a, "accuracy")
    assert swapped.diff == -result.diff
    text = verdict("B", "A", "accuracy", swapped.diff, swapped.low, swapped.high, 1e-5, "McNemar")
    assert text.startswith(f"B beats A on accuracy by {points} points")


def test_paired_bootstrap_diff_is_b_minus_a_and_uses_shared_resamples() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, size=400)
    proba_a = rng.dirichlet(np.ones(3), size=400)
    proba_b = 0.5 * proba_a + 0.5 * np.eye(3)[y]
    result = paired_bootstrap_diff("classification", y, proba_a, proba_b, "log_loss", seed=1)
    values_a = compute_metrics("classification", y, proba_a, names="log_loss")["log_loss"]
    values_b = compute_metrics("classification", y, proba_b, names="log_loss")["log_loss"]
    assert result.diff == pytest.approx(values_b - values_a, rel=1e-6)
    assert result.high < 0 and result.p_value < 0.01
    # a lower log loss is better: B wins, by a positive margin
    text = verdict(
        "A",
        "B",
        "log_loss",
        result.diff,
        result.low,
        result.high,
        result.p_value,
        "paired bootstrap",
    )
    assert text.startswith(
        f"B beats A on log_loss by {-result.diff:.3g} (95% CI {-result.high:.3g} to "
    )


def test_paired_bootstrap_regression_and_errors() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=200)
    pred = y + rng.normal(scale=0.5, size=200)
    result = paired_bootstrap_diff("regression", y, pred, pred + 0.01, "mae", n_resamples=300)
    assert abs(result.diff) < 0.02 and result.low <= result.diff <= result.high
    with pytest.raises(TunelabError, match="same shape"):
        paired_bootstrap_diff("regression", y, pred, pred[:, None].repeat(2, axis=1), "mae")
    with pytest.raises(TunelabError, match="did you mean"):
        paired_bootstrap_diff("regression", y, pred, pred, "maee")


# --- corrected resampled t-test ------------------------------------------------------------------


def test_corrected_ttest_matches_the_formula() -> None:
    rng = np.random.default_rng(0)
    a = 0.80 + 0.02 * rng.normal(size=10)
    b = a + 0.01 + 0.01 * rng.normal(size=10)
    result = corrected_resampled_ttest(a, b, n_train=900, n_test=100)
    d = b - a
    se = math.sqrt((1 / 10 + 100 / 900) * d.var(ddof=1))
    t = d.mean() / se
    p = 2 * stats.t.sf(abs(t), 9)
    half = stats.t.ppf(0.975, 9) * se
    assert result == TTestResult(
        pytest.approx(d.mean()),
        pytest.approx(t),
        pytest.approx(p),
        9,
        pytest.approx(se),
        pytest.approx(d.mean() - half),
        pytest.approx(d.mean() + half),
        0.95,
    )
    # the correction only ever widens: the plain test is more confident
    plain = corrected_resampled_ttest(a, b, n_train=900, n_test=0)
    assert abs(plain.t) > abs(result.t) and plain.p_value < result.p_value


def test_corrected_ttest_without_correction_is_scipy_ttest_rel() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=8), rng.normal(size=8) + 0.5
    result = corrected_resampled_ttest(a, b, n_train=100, n_test=0)
    expected = stats.ttest_rel(b, a)
    assert result.t == pytest.approx(expected.statistic, rel=1e-12)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-12)
    assert result.df == 7


def test_corrected_ttest_interval_comes_from_the_variance_not_from_t() -> None:
    """Folds that disagree by up to 8 points with a mean difference of exactly 0: t = 0, and the
    interval must still be wide (``|mean / t|`` made it 0.0 to 0.0)."""
    a = np.array([0.80, 0.85, 0.90, 0.82, 0.88])
    d = np.array([0.08, -0.08, 0.04, -0.04, 0.0])
    result = corrected_resampled_ttest(a, a + d, n_train=80, n_test=20, level=0.9)
    assert result.mean_diff == pytest.approx(0.0, abs=1e-15) and result.p_value == 1.0
    # by hand: var(d, ddof=1) = (2 * 0.0064 + 2 * 0.0016) / 4 = 0.004
    se = math.sqrt((1 / 5 + 20 / 80) * 0.004)
    half = stats.t.ppf(0.95, 4) * se  # 2.1318 * 0.042426 = 0.0904
    assert result.se == pytest.approx(se, rel=1e-12)
    assert (result.low, result.high) == (pytest.approx(-half), pytest.approx(half))
    assert result.high > 0.09


@pytest.mark.parametrize("level", [0.8, 0.95])
def test_corrected_ttest_interval_without_correction_is_scipy_ttest_rel(level: float) -> None:
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=6), rng.normal(size=6) + 0.3
    result = corrected_resampled_ttest(a, b, n_train=50, n_test=0, level=level)
    expected = stats.ttest_rel(b, a).confidence_interval(confidence_level=level)
    assert result.low == pytest.approx(expected.low, rel=1e-12)
    assert result.high == pytest.approx(expected.high, rel=1e-12)
    # the correction widens the interval by sqrt(1 + J * n_test / n_train) around the same mean
    wide = corrected_resampled_ttest(a, b, n_train=50, n_test=25, level=level)
    ratio = (wide.high - wide.low) / (result.high - result.low)
    assert ratio == pytest.approx(math.sqrt(1 + 6 * 25 / 50), rel=1e-12)


def test_corrected_ttest_constant_differences_and_errors() -> None:
    same = corrected_resampled_ttest([0.8, 0.9], [0.8, 0.9], n_train=10, n_test=5)
    assert (same.t, same.p_value) == (0.0, 1.0)
    shifted = corrected_resampled_ttest([0.8, 0.9], [0.85, 0.95], n_train=10, n_test=5)
    assert shifted.t == math.inf and shifted.p_value == 0.0
    assert (same.se, same.low, same.high) == (0.0, 0.0, 0.0)  # truly identical folds
    with pytest.raises(TunelabError, match="J >= 2"):
        corrected_resampled_ttest([0.8], [0.9], n_train=10, n_test=5)
    with pytest.raises(TunelabError, match="level must be in"):
        corrected_resampled_ttest([0.8, 0.9], [0.9, 0.9], n_train=10, n_test=5, level=95)


# --- verdict wording -----------------------------------------------------------------------------


def test_verdict_sentences_from_the_brief() -> None:
    beats = verdict("A", "B", "accuracy", 0.012, 0.004, 0.020, 0.003, "McNemar")
    assert beats == "B beats A on accuracy by 1.2 points (95% CI 0.4 to 2.0, McNemar p = 0.003)"
    none = verdict("A", "B", "accuracy", 0.003, -0.005, 0.011, 0.41, "McNemar")
    assert none == (
        "no significant difference between A and B on accuracy "
        "(difference 0.3 points, 95% CI -0.5 to 1.1, McNemar p = 0.41)"
    )


def test_verdict_needs_both_the_p_value_and_the_interval() -> None:
    # p below alpha but the interval crosses 0: the evidence disagrees, so no winner is named
    text = verdict("A", "B", "f1_macro", 0.01, -0.001, 0.02, 0.04, "McNemar")
    assert text == (
        "no significant difference between A and B on f1_macro (difference 1.0 points, 95% CI "
        "-0.1 to 2.0, McNemar p = 0.04); borderline: McNemar rejects but the interval does not "
        "exclude 0"
    )
    # the interval excludes 0 but the test does not reject (BBC: TF-IDF against TextCNN)
    text = verdict("A", "B", "accuracy", -0.0164, -0.0329, -0.0023, 0.0654, "McNemar")
    assert text == (
        "no significant difference between A and B on accuracy (difference -1.6 points, 95% CI "
        "-3.3 to -0.2, McNemar p = 0.065); borderline: the interval excludes 0 but McNemar does "
        "not reject"
    )
    raw = verdict("A", "B", "mse", -0.5, -0.8, -0.2, 0.01, "paired bootstrap", level=0.9)
    assert raw == "B beats A on mse by 0.5 (90% CI 0.2 to 0.8, paired bootstrap p = 0.01)"
    worse = verdict("A", "B", "mse", 0.5, 0.2, 0.8, 0.01, "paired bootstrap")
    assert worse.startswith("A beats B on mse by 0.5")
    custom = verdict("A", "B", "custom_loss", 0.5, 0.2, 0.8, 0.01, "t-test", higher_is_better=False)
    assert custom.startswith("A beats B on custom_loss")


def test_paired_bootstrap_is_nan_where_the_metric_is_mostly_undefined() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=300)
    y[0] = 2  # one sample of class 2: a third of the resamples have no class-2 AUC
    proba_a, proba_b = rng.dirichlet(np.ones(3), size=300), rng.dirichlet(np.ones(3), size=300)
    result = paired_bootstrap_diff("classification", y, proba_a, proba_b, "roc_auc")
    assert math.isfinite(result.diff)
    assert math.isnan(result.low) and math.isnan(result.high) and math.isnan(result.p_value)
    text = verdict(
        "A", "B", "roc_auc", result.diff, result.low, result.high, result.p_value, "bootstrap"
    )
    assert text.startswith("no significant difference")
