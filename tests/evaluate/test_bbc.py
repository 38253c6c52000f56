"""BBC-CV: the best of many configurations is optimistic; the bootstrap corrects it."""

from __future__ import annotations

import numpy as np
import pytest

from tunelab.errors import TunelabError
from tunelab.evaluate import BBCResult, accuracy, bbc_cv, rmse


def classifier(y: np.ndarray, right: float, rng: np.random.Generator, k: int = 2) -> np.ndarray:
    """Class probabilities whose argmax is the true class with probability ``right``."""
    n = len(y)
    correct = rng.random(n) < right
    wrong = (y + rng.integers(1, k, n)) % k
    label = np.where(correct, y, wrong)
    proba = rng.dirichlet(np.ones(k), size=n) * 0.5
    proba[np.arange(n), label] += 1.0
    return proba / proba.sum(axis=1, keepdims=True)


def test_noise_configurations_look_good_at_best_and_bbc_says_chance():
    apparent, estimates, covered = [], [], 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        y = rng.integers(0, 2, 200)
        noise = rng.dirichlet([1, 1], size=(15, 200))  # 15 configurations of random guesses
        result = bbc_cv("classification", y, noise, metric="accuracy", n_resamples=300)
        assert result.apparent == max(accuracy(y, p) for p in noise)
        apparent.append(result.apparent)
        estimates.append(result.estimate)
        covered += result.low <= 0.5 <= result.high
    # the best of 15 coin-flippers scores well above chance; the corrected estimate does not
    assert np.mean(apparent) > 0.55 and min(apparent) >= 0.52
    assert abs(np.mean(estimates) - 0.5) < 0.015
    assert np.mean(apparent) - np.mean(estimates) > 0.05  # the optimism it removes
    assert covered >= 18


def test_one_truly_better_configuration_is_estimated_near_its_true_accuracy():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 600)
    better = classifier(y, 0.85, rng, k=3)
    others = [classifier(y, 0.6, rng, k=3) for _ in range(14)]
    result = bbc_cv("classification", y, [*others[:7], better, *others[7:]], metric="accuracy")
    assert result.selected == 7 and result.selected_share > 0.99
    assert result.estimate == pytest.approx(0.85, abs=0.03)
    assert result.low < result.estimate < result.high
    assert result.n_configs == 15 and result.n_samples == 600 and result.n_resamples == 1000


def test_a_lower_is_better_metric_selects_the_smallest_error():
    rng = np.random.default_rng(1)
    y = rng.normal(size=400)
    good = y + 0.3 * rng.normal(size=400)  # rmse about 0.3
    bad = [y + rng.normal(size=400) for _ in range(5)]  # rmse about 1
    result = bbc_cv("regression", y, [*bad, good], metric="rmse", n_resamples=400)
    assert result.selected == 5 and result.apparent == pytest.approx(rmse(y, good))
    assert result.estimate == pytest.approx(0.3, abs=0.04)
    assert isinstance(result, BBCResult) and result.to_json()["metric"] == "rmse"


def test_the_same_seed_gives_the_same_estimate_and_a_single_config_is_unbiased():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 300)
    one = [classifier(y, 0.7, rng)]
    a = bbc_cv("classification", y, one, metric="accuracy", seed=5)
    assert a == bbc_cv("classification", y, one, metric="accuracy", seed=5)
    # nothing to select: the out-of-bag mean estimates the one configuration's own accuracy
    assert a.estimate == pytest.approx(accuracy(y, one[0]), abs=0.01)


def test_predictions_of_other_rows_are_refused():
    y = np.zeros(10, np.int64)
    with pytest.raises(TunelabError, match="one row per sample"):
        bbc_cv(
            "classification", y, [np.full((10, 2), 0.5), np.full((9, 2), 0.5)], metric="accuracy"
        )
    with pytest.raises(TunelabError, match="regression metric"):
        bbc_cv("classification", y, [np.full((10, 2), 0.5)], metric="rmse")
