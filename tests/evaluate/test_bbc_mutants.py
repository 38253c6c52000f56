"""BBC-CV at its edges, found unguarded by scripts/mutation.py: with one configuration it is the
out-of-bag bootstrap of that configuration's score; a metric undefined on the data or in-bag;
the defaults; the exact messages."""

from __future__ import annotations

import numpy as np
import pytest

from tunelab.errors import TunelabError
from tunelab.evaluate import accuracy, bbc_cv
from tunelab.evaluate._bootstrap import _resample_weights


def noise(n: int, configs: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 2, n), rng.dirichlet([1, 1], size=(configs, n))


@pytest.mark.parametrize("level", [0.9, 0.5])
def test_one_configuration_is_the_out_of_bag_bootstrap_of_its_score(level):
    y, (p,) = noise(30, 1)
    r = bbc_cv("classification", y, [p], metric="accuracy", n_resamples=200, level=level, seed=4)
    # the same resamples, scored on the rows each leaves out
    (weights,) = _resample_weights(np.random.default_rng(4), 30, 200, None, np.float64)
    right = p.argmax(axis=1) == y
    oob = [right[w == 0].mean() for w in weights.T if (w == 0).any()]
    tail = (1 - level) / 2 * 100
    assert r.estimate == pytest.approx(np.mean(oob))
    assert (r.low, r.high) == pytest.approx(tuple(np.percentile(oob, [tail, 100 - tail])))
    assert r.level == level
    assert r.n_resamples == len(oob)
    assert (r.selected, r.selected_share, r.apparent) == (0, 1.0, accuracy(y, p))


def test_one_configuration_of_a_continuous_score_has_the_exact_percentiles():
    y, (p,) = noise(30, 1)
    r = bbc_cv("classification", y, [p], metric="log_loss", n_resamples=200, level=0.9, seed=4)
    (weights,) = _resample_weights(np.random.default_rng(4), 30, 200, None, np.float64)
    nll = -np.log(p[np.arange(30), y])
    oob = [nll[w == 0].mean() for w in weights.T if (w == 0).any()]
    assert r.estimate == pytest.approx(np.mean(oob), rel=1e-6)
    assert (r.low, r.high) == pytest.approx(tuple(np.percentile(oob, [5, 95])), rel=1e-6)


def test_the_default_seed_is_0():
    y, p = noise(40, 3)
    default = bbc_cv("classification", y, p, metric="accuracy", n_resamples=100)
    assert default == bbc_cv("classification", y, p, metric="accuracy", n_resamples=100, seed=0)
    assert default != bbc_cv("classification", y, p, metric="accuracy", n_resamples=100, seed=1)


def test_a_metric_undefined_on_the_data_selects_the_first_and_estimates_nothing():
    y = np.zeros(12, dtype=int)  # one class: ROC-AUC is undefined everywhere
    _, p = noise(12, 3)
    r = bbc_cv("classification", y, p, metric="roc_auc", n_resamples=50)
    assert r.selected == 0
    assert np.isnan(r.apparent) and np.isnan(r.estimate)
    assert np.isnan(r.low) and np.isnan(r.high)
    assert r.n_resamples == 0


def test_resamples_whose_in_bag_score_is_undefined_are_skipped():
    # one positive in 12: most resamples leave it out in-bag (AUC undefined) or out-of-bag
    y = np.zeros(12, dtype=int)
    y[5] = 1
    _, p = noise(12, 3, seed=2)
    r = bbc_cv("classification", y, p, metric="roc_auc", n_resamples=200)
    assert 0 < r.n_resamples < 200
    assert 0 <= r.low <= r.estimate <= r.high <= 1


def test_a_metric_of_the_other_task_is_refused():
    y, p = noise(10, 2)
    with pytest.raises(TunelabError) as err:
        bbc_cv("classification", y, p, metric="mse")
    assert str(err.value) == (
        "bbc_cv: mse is a regression metric, but the task is classification; "
        "choose a metric of the task"
    )


def test_no_configuration_is_refused():
    with pytest.raises(TunelabError) as err:
        bbc_cv("classification", [0, 1], [], metric="accuracy")
    assert str(err.value) == (
        "bbc_cv: expected predictions of at least one configuration; got none"
    )


def test_predictions_of_another_length_are_refused_even_when_all_agree():
    y, p = noise(10, 2)
    with pytest.raises(TunelabError) as err:
        bbc_cv("classification", y[:8], p, metric="accuracy")
    assert str(err.value) == (
        "bbc_cv: expected every configuration's predictions to have one row per sample "
        "(8 rows) and the same shape; got shapes [(10, 2)]. Pool the same rows, in the same "
        "order, for every configuration"
    )
