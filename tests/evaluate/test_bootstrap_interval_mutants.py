"""The intervals of the bootstrap (percentile, BCa, Clopper-Pearson), the jackknife behind BCa's
acceleration and the warnings, at their edges: found unguarded by scripts/mutation.py. The
private helpers are tested directly where the public function cannot reach an edge (exactly 10%
undefined resamples, a constant jackknife, a bound equal to the estimate)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats
from scipy.special import ndtr, ndtri

from tunelab.errors import TunelabError
from tunelab.evaluate import CI, bootstrap_ci
from tunelab.evaluate._bootstrap import _jackknife_weights
from tunelab.evaluate._intervals import _interval, _warning

# --- Clopper-Pearson


def test_one_correct_sample_gets_the_exact_interval_of_1_out_of_1():
    (ci,) = bootstrap_ci("classification", [1], [[0.2, 0.8]], names=["accuracy"]).values()
    assert (ci.low, ci.high) == pytest.approx((0.025, 1.0))  # beta.ppf(0.025, 1, 1) = 0.025
    assert (ci.method, ci.level, ci.n_resamples) == ("clopper-pearson", 0.95, 2000)
    (ci,) = bootstrap_ci(
        "classification", [0, 0, 1], np.eye(2)[[1, 1, 0]], names=["accuracy"], level=0.9,
        n_resamples=50,
    ).values()  # fmt: skip
    assert (ci.low, ci.high) == pytest.approx((0.0, float(stats.beta.ppf(0.95, 1, 3))))
    assert (ci.method, ci.level, ci.n_resamples) == ("clopper-pearson", 0.9, 50)


# --- percentile and BCa from given replicates


def test_the_percentile_interval_is_the_tails_of_the_replicates():
    replicates = np.arange(1000.0) ** 2
    low, high, n_nan = _interval(replicates, 0.95, "percentile", 250_000.0)
    assert n_nan == 0
    assert (low, high) == pytest.approx(tuple(np.percentile(replicates, [2.5, 97.5])), rel=1e-12)


def test_up_to_10_percent_undefined_resamples_are_left_out_above_it_no_interval():
    replicates = np.arange(100.0)
    replicates[:10] = np.nan
    low, high, n_nan = _interval(replicates, 0.9, "percentile", 50.0)
    assert n_nan == 10
    assert (low, high) == tuple(np.percentile(np.arange(10.0, 100.0), [5, 95]))
    replicates[10] = np.nan
    low, high, n_nan = _interval(replicates, 0.9, "percentile", 50.0)
    assert n_nan == 11 and np.isnan(low) and np.isnan(high)


def bca_by_hand(replicates, estimate, jackknife, level):
    """Efron's BCa quantiles, written out: z0 with ties counted 1/2, a from the jackknife."""
    z0 = ndtri(
        (np.sum(replicates < estimate) + 0.5 * np.sum(replicates == estimate)) / len(replicates)
    )
    d = jackknife.mean() - jackknife
    a = np.sum(d**3) / (6 * np.sum(d**2) ** 1.5)
    z = ndtri(np.array([(1 - level) / 2, (1 + level) / 2]))
    return np.percentile(replicates, 100 * ndtr(z0 + (z0 + z) / (1 - a * (z0 + z)))), a


def test_bca_uses_the_acceleration_of_its_jackknife():
    rng = np.random.default_rng(0)
    replicates = rng.gamma(2.0, size=2000)
    jackknife = np.zeros(50)
    jackknife[0] = 10.0  # one influential sample: a large acceleration
    expected, a = bca_by_hand(replicates, 2.0, jackknife, 0.95)
    assert abs(a) > 0.1
    low, high, _ = _interval(replicates, 0.95, "bca", 2.0, jackknife)
    assert (low, high) == pytest.approx(tuple(expected), rel=1e-12)


def test_a_constant_jackknife_has_no_acceleration():
    rng = np.random.default_rng(1)
    replicates = rng.normal(size=500)
    low, high, _ = _interval(replicates, 0.9, "bca", 0.0, np.full(20, 0.5))
    z0 = ndtri((np.sum(replicates < 0) + np.sum(replicates <= 0)) / 1000)
    z = ndtri(np.array([0.05, 0.95]))
    assert (low, high) == pytest.approx(tuple(np.percentile(replicates, 100 * ndtr(2 * z0 + z))))


def test_an_undefined_jackknife_gives_no_acceleration_and_no_numpy_warning():
    rng = np.random.default_rng(2)
    replicates = rng.normal(size=500)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        low, high, _ = _interval(replicates, 0.9, "bca", 0.0, np.full(20, np.nan))
    assert np.isfinite(low) and np.isfinite(high)
    assert (low, high) == _interval(replicates, 0.9, "bca", 0.0, np.full(20, 0.5))[:2]


def test_the_jackknife_leaves_out_one_sample_up_to_1000_and_a_group_above():
    rng = np.random.default_rng(0)
    small = _jackknife_weights(rng, 5, np.float64)
    assert small.tolist() == (1 - np.eye(5)).tolist()
    loo = _jackknife_weights(rng, 1000, np.float32)
    assert loo.dtype == np.float32
    assert loo.shape == (1000, 1000) and np.array_equal(loo, 1 - np.eye(1000))
    grouped = _jackknife_weights(rng, 1001, np.float32)
    assert grouped.dtype == np.float32
    assert grouped.shape == (1001, 200)
    assert set(np.unique(grouped).tolist()) == {0.0, 1.0}
    assert (grouped.sum(axis=1) == 199).all()  # each sample is left out by its own group only
    assert sorted(set((1001 - grouped.sum(axis=0)).tolist())) == [5, 6]  # groups of 5 or 6


# --- warnings and the record


def test_the_warning_texts():
    assert _warning(0.5, 0.5, 0.5) == (
        "every resample gave 0.5, so the bootstrap cannot measure this metric's uncertainty "
        "here; the point interval is not a certainty"
    )
    assert _warning(0.05, 0.06, 0.09) == (
        "the interval excludes the estimate 0.05: the metric is biased under resampling (as ECE "
        "is), so the interval is not a range around the estimate"
    )


def test_an_estimate_on_a_bound_is_inside_the_interval():
    assert _warning(0.5, 0.5, 0.7) is None
    assert _warning(0.7, 0.5, 0.7) is None
    assert _warning(0.6, np.nan, np.nan) is None


def test_an_interval_of_a_point_warns_through_bootstrap_ci():
    y = np.arange(10.0)
    (ci,) = bootstrap_ci("regression", y, y + 1, names=["mae"], n_resamples=20).values()
    assert (ci.low, ci.high) == (1.0, 1.0)
    assert ci.warning == _warning(1.0, 1.0, 1.0)
    assert ci.to_json() == {
        "low": 1.0,
        "high": 1.0,
        "level": 0.95,
        "method": "percentile",
        "n_resamples": 20,
        "warning": ci.warning,
    }


def test_bounds_are_kept_in_json_and_nan_becomes_none():
    assert CI(0.25, 0.75, 0.9, "bca", 10).to_json() == {
        "low": 0.25,
        "high": 0.75,
        "level": 0.9,
        "method": "bca",
        "n_resamples": 10,
    }
    assert CI(np.nan, np.nan, 0.9, "bca", 10, 3).to_json()["low"] is None


def test_the_defaults_are_2000_resamples_and_seed_0():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 30)
    p = rng.dirichlet([1, 1], size=30)
    default = bootstrap_ci("classification", y, p, names=["log_loss"])
    assert default["log_loss"].n_resamples == 2000
    assert default == bootstrap_ci("classification", y, p, names=["log_loss"], seed=0)
    assert default != bootstrap_ci("classification", y, p, names=["log_loss"], seed=1)


def test_non_finite_predictions_give_nan_bounds_with_the_run_settings():
    out = bootstrap_ci(
        "regression", [1.0, 2.0, 3.0], [1.0, np.inf, 2.0], names=["mse"], n_resamples=30,
        level=0.8, method="bca",
    )  # fmt: skip
    ci = out["mse"]
    assert np.isnan(ci.low) and np.isnan(ci.high)
    assert (ci.level, ci.method, ci.n_resamples) == (0.8, "bca", 30)


def test_the_messages_for_options_that_cannot_work():
    with pytest.raises(TunelabError) as err:
        bootstrap_ci("classification", [0, 1], [[1, 0], [0, 1]], method="bcaa")
    assert (
        str(err.value)
        == "method must be one of: percentile, bca; got `bcaa` (did you mean `bca`?)."
    )
    with pytest.raises(TunelabError) as err:
        bootstrap_ci("regression", [0.0, 1.0], [0.0, 1.0], stratified=True)
    assert str(err.value) == (
        "stratified=True resamples within classes, so it needs a classification task; got task "
        "`regression`. Drop stratified for regression."
    )
