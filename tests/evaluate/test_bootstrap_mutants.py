"""Bootstrap edges that a mutation run found unguarded (scripts/mutation.py): classes missing
from a resample, a single negative, constant regression targets and the smallest R² sample."""

from __future__ import annotations

import numpy as np
import pytest

from tunelab.evaluate import METRICS, Metric, bootstrap_ci


def loop_copy(monkeypatch: pytest.MonkeyPatch, name: str) -> str:
    """A copy of metric `name` that bootstrap_ci computes resample by resample."""
    metric = METRICS[name]
    fn = metric.fn
    copy = f"{name}__loop"
    monkeypatch.setitem(
        METRICS, copy, Metric(copy, lambda y, s: fn(y, s), metric.task, metric.greater_is_better)
    )
    return copy


def test_balanced_accuracy_leaves_out_classes_missing_from_a_resample(monkeypatch):
    # 5 classes, two of them with one sample: many resamples miss a class, and one with a
    # single sample of a class weighs its recall like any other
    y = np.array([0] * 8 + [1] * 6 + [2] * 3 + [3] + [4])
    rng = np.random.default_rng(2)
    score = rng.random((len(y), 5)) + 0.3 * np.eye(5)[y]
    loop = loop_copy(monkeypatch, "balanced_accuracy")
    cis = bootstrap_ci(
        "classification", y, score, names=["balanced_accuracy", loop], n_resamples=200, seed=1
    )
    fast, slow = cis["balanced_accuracy"], cis[loop]
    assert (fast.low, fast.high) == pytest.approx((slow.low, slow.high), abs=1e-12)
    assert fast.low < fast.high


def test_auc_with_a_single_negative_is_defined_in_every_stratified_resample():
    y = np.array([0] + [1] * 19)
    score = np.column_stack([1 - np.linspace(0, 1, 20), np.linspace(0, 1, 20)])
    ci = bootstrap_ci("classification", y, score, names="roc_auc", n_resamples=50, stratified=True)[
        "roc_auc"
    ]
    assert ci.n_nan == 0
    assert ci.low == ci.high == 1.0  # the negative scores lowest in every resample


@pytest.mark.parametrize("offset, expected", [(0.0, 1.0), (0.5, 0.0)])
def test_r2_of_a_constant_target_is_one_when_exact_and_zero_otherwise(offset, expected):
    y = np.full(30, 2.0)
    for method in ("percentile", "bca"):
        ci = bootstrap_ci("regression", y, y + offset, names="r2", n_resamples=50, method=method)
        assert (ci["r2"].low, ci["r2"].high, ci["r2"].n_nan) == (expected, expected, 0)


def test_r2_is_defined_from_two_samples_on():
    ci = bootstrap_ci("regression", [1.0, 3.0], [1.5, 2.0], names="r2", n_resamples=50)["r2"]
    assert np.isfinite(ci.low) and np.isfinite(ci.high)
    assert ci.n_nan == 0
