"""Edges of the paired tests and the verdict that a mutation run found unguarded
(scripts/mutation.py): boundaries of alpha and of the interval, ties in McNemar, the far side
of the bootstrap p-value, the defaults, and the exact messages a user sees."""

from __future__ import annotations

import numpy as np
import pytest

from tunelab.errors import TunelabError
from tunelab.evaluate import (
    corrected_resampled_ttest,
    mcnemar_exact,
    paired_bootstrap_diff,
    verdict,
)

# --- McNemar


def test_as_many_discordant_samples_each_way_is_p_one():
    # b = c = 1: 2 * P(X <= 1), X ~ Binomial(2, 1/2), is 1.5, capped at 1
    r = mcnemar_exact([1, 0, 1, 1], [0, 1, 1, 1])
    assert (r.b, r.c, r.p_value) == (1, 1, 1.0)
    r = mcnemar_exact([1] * 3 + [0] * 3, [0] * 3 + [1] * 3)
    assert (r.b, r.c, r.p_value) == (3, 3, 1.0)


@pytest.mark.parametrize("which", ["correct_a", "correct_b"])
def test_a_correctness_that_is_not_0_or_1_names_its_argument(which):
    good, bad = [True, False, True], [0.2, 0.9, 1.0]
    args = (bad, good) if which == "correct_a" else (good, bad)
    with pytest.raises(TunelabError) as err:
        mcnemar_exact(*args)
    assert str(err.value) == (
        f"{which} must be per-sample correctness, a 1-D array of booleans (or 0/1); got "
        "shape (3,) and dtype float64. Pass y_score.argmax(axis=1) == y_true."
    )


# --- the corrected resampled t-test


def test_scores_read_as_text_are_numbers():
    # per-fold scores straight from a CSV column: each side is converted on its own
    as_text = corrected_resampled_ttest(
        ["0.8", "0.9", "0.7"], [0.9, 0.8, 0.9], n_train=20, n_test=10
    )
    other = corrected_resampled_ttest([0.8, 0.9, 0.7], ["0.9", "0.8", "0.9"], n_train=20, n_test=10)
    plain = corrected_resampled_ttest([0.8, 0.9, 0.7], [0.9, 0.8, 0.9], n_train=20, n_test=10)
    assert as_text == plain == other


def test_per_split_scores_of_different_lengths_are_refused():
    with pytest.raises(TunelabError) as err:
        corrected_resampled_ttest([0.8, 0.9, 0.7], [0.9, 0.8], n_train=20, n_test=10)
    assert str(err.value) == (
        "scores_a and scores_b must be per-split scores of the same length J >= 2; got "
        "shapes (3,) and (2,). Pass one score per fold or repeat for each model."
    )


@pytest.mark.parametrize(("n_train", "n_test"), [(0, 5), (10, -1)])
def test_sizes_of_the_splits_are_checked(n_train, n_test):
    with pytest.raises(TunelabError) as err:
        corrected_resampled_ttest([0.8, 0.9], [0.9, 0.8], n_train=n_train, n_test=n_test)
    assert str(err.value) == (
        "n_train must be >= 1 and n_test >= 0 (samples per split); got "
        f"n_train={n_train}, n_test={n_test}."
    )


def test_one_training_sample_per_split_is_allowed():
    r = corrected_resampled_ttest([0.8, 0.9], [0.9, 1.0], n_train=1, n_test=0)
    assert r.mean_diff == pytest.approx(0.1)


@pytest.mark.parametrize("level", [0, 1, 1.5])
def test_a_level_outside_0_1_is_refused(level):
    with pytest.raises(TunelabError) as err:
        corrected_resampled_ttest([0.8, 0.9], [0.9, 0.8], n_train=10, n_test=5, level=level)
    assert str(err.value) == f"level must be in (0, 1), e.g. 0.95; got {level!r}."


# --- the paired bootstrap


def scores(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 2, n), rng.dirichlet([1, 1], size=n), rng.dirichlet([1, 1], size=n)


def test_the_default_seed_is_0_and_a_seed_repeats_its_resamples():
    y, a, b = scores(40, 1)
    default = paired_bootstrap_diff("classification", y, a, b, "log_loss", n_resamples=200)
    assert default == paired_bootstrap_diff(
        "classification", y, a, b, "log_loss", n_resamples=200, seed=0
    )
    assert default != paired_bootstrap_diff(
        "classification", y, a, b, "log_loss", n_resamples=200, seed=1
    )


def test_scores_of_different_shapes_are_refused_with_both_shapes():
    y, a, _ = scores(6, 0)
    with pytest.raises(TunelabError) as err:
        paired_bootstrap_diff("classification", y, a, np.full((6, 3), 1 / 3), "accuracy")
    assert str(err.value) == (
        "score_a and score_b must have the same shape; got (6, 2) and (6, 3). "
        "Score both models on the same samples."
    )


def test_a_zero_difference_has_the_same_p_value_whichever_model_is_b():
    y = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    right = np.eye(2)[y] * 0.8 + 0.1
    a, b = right.copy(), right.copy()
    a[0], b[1] = right[0][::-1], right[1][::-1]  # each wrong on one sample: accuracy 7/8 both
    ab = paired_bootstrap_diff("classification", y, a, b, "accuracy", n_resamples=300, seed=3)
    ba = paired_bootstrap_diff("classification", y, b, a, "accuracy", n_resamples=300, seed=3)
    assert ab.diff == ba.diff == 0
    assert ab.p_value == ba.p_value
    assert (ab.low, ab.high) == (-ba.high, -ba.low)


def test_a_zero_difference_takes_the_smaller_side_of_a_skewed_bootstrap():
    # macro recall of two different labelings, equal on the data, skewed under resampling:
    # p counts the smaller side whichever model is b, so it stays below 1 both ways
    rng = np.random.default_rng(691)
    n = int(rng.integers(6, 12))
    y = rng.integers(0, 3, n)
    a, b = np.eye(3)[rng.integers(0, 3, n)], np.eye(3)[rng.integers(0, 3, n)]
    ab = paired_bootstrap_diff("classification", y, a, b, "recall_macro", n_resamples=300)
    ba = paired_bootstrap_diff("classification", y, b, a, "recall_macro", n_resamples=300)
    assert ab.diff == ba.diff == 0
    assert ab.p_value == ba.p_value < 0.95


def test_the_p_value_counts_the_far_side_of_the_observed_difference():
    # a positive log-loss difference whose resamples fall at or below 0 more often than at or
    # above it (a skewed statistic on 11 samples): the far side is the larger one, so p is 1
    rng = np.random.default_rng(17)
    n = int(rng.integers(6, 14))
    y = rng.integers(0, 2, n)
    a, b = rng.dirichlet([1, 1], size=n), rng.dirichlet([1, 1], size=n)
    r = paired_bootstrap_diff("classification", y, a, b, "log_loss", n_resamples=300, seed=0)
    assert r.diff > 0
    assert r.low < 0 < r.high
    assert r.p_value == 1.0


# --- the verdict


def test_a_p_value_of_exactly_0_001_is_printed_as_it_is():
    text = verdict("A", "B", "accuracy", 0.05, 0.01, 0.09, 0.001, "McNemar")
    assert text == "B beats A on accuracy by 5.0 points (95% CI 1.0 to 9.0, McNemar p = 0.001)"


@pytest.mark.parametrize("metric", ["roc_auc", "ece"])
def test_roc_auc_and_ece_differences_are_in_points(metric):
    text = verdict("A", "B", metric, 0.0, -0.012, 0.012, 0.5, "paired bootstrap")
    assert text == (
        f"no significant difference between A and B on {metric} (difference 0.0 points, "
        "95% CI -1.2 to 1.2, paired bootstrap p = 0.5)"
    )


def test_the_default_alpha_is_0_05_and_p_at_alpha_is_not_significant():
    assert verdict("A", "B", "accuracy", 0.05, 0.01, 0.09, 0.2, "McNemar").startswith(
        "no significant difference"
    )
    assert verdict("A", "B", "accuracy", 0.05, 0.01, 0.09, 0.05, "McNemar").startswith(
        "no significant difference"
    )
    assert verdict("A", "B", "accuracy", 0.05, 0.01, 0.09, 0.049, "McNemar").startswith("B beats A")


def test_an_interval_that_touches_0_is_not_significant():
    assert verdict("A", "B", "accuracy", 0.05, 0.0, 0.09, 0.01, "McNemar").startswith(
        "no significant difference"
    )
    assert verdict("A", "B", "accuracy", -0.05, -0.09, 0.0, 0.01, "McNemar").startswith(
        "no significant difference"
    )


def test_a_difference_of_exactly_one_can_win_and_zero_never_does():
    text = verdict("A", "B", "mse", 1.0, 0.5, 1.5, 0.001, "paired bootstrap", level=0.9)
    assert text == "A beats B on mse by 1 (90% CI 0.5 to 1.5, paired bootstrap p = 0.001)"
    text = verdict("A", "B", "mse", 0.0, 0.5, 1.5, 0.001, "paired bootstrap")
    assert text.startswith("no significant difference between A and B on mse (difference 0,")


def test_an_unknown_metric_is_taken_as_higher_is_better():
    text = verdict("A", "B", "my_score", 0.5, 0.25, 0.75, 0.01, "paired bootstrap")
    assert text == "B beats A on my_score by 0.5 (95% CI 0.25 to 0.75, paired bootstrap p = 0.01)"
