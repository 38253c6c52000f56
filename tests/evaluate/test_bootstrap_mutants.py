"""Bootstrap edges that a mutation run found unguarded (scripts/mutation.py): classes missing
from a resample, a single negative, constant regression targets and the smallest R² sample."""

from __future__ import annotations

import numpy as np
import pytest

from tunelab.errors import TunelabError
from tunelab.evaluate import METRICS, Metric, Vectorised, bootstrap_ci


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


@pytest.mark.parametrize("n_resamples", [2.5, True, "100"])
def test_n_resamples_must_be_an_integer(n_resamples):
    with pytest.raises(
        TunelabError, match=f"n_resamples must be an integer >= 1; got {n_resamples!r}"
    ):
        bootstrap_ci("classification", [0, 1], [[0.6, 0.4], [0.3, 0.7]], n_resamples=n_resamples)


@pytest.mark.parametrize("level", [0, 1, 1.5])
def test_level_must_be_strictly_between_zero_and_one(level):
    with pytest.raises(TunelabError, match="level must be in"):
        bootstrap_ci("classification", [0, 1], [[0.6, 0.4], [0.3, 0.7]], level=level)


def test_a_single_resample_is_allowed():
    ci = bootstrap_ci("classification", [0, 1, 1], np.eye(2)[[0, 1, 0]], n_resamples=1)
    assert ci["accuracy"].n_resamples == 1 and np.isfinite(ci["accuracy"].low)


@pytest.mark.parametrize("n", [30, 5000])  # 5000: the resamples are drawn in several blocks
def test_every_resample_is_counted_where_the_metric_is_undefined(n):
    y = np.zeros(n, np.int64)  # one class only: ROC-AUC is undefined on every resample
    score = np.column_stack([np.full(n, 0.6), np.full(n, 0.4)])
    ci = bootstrap_ci("classification", y, score, names="roc_auc", n_resamples=150)["roc_auc"]
    assert ci.n_nan == 150 and np.isnan(ci.low)


def test_stratified_resamples_keep_three_class_counts():
    # right on class 0 only: with class counts fixed, accuracy is 1/3 in every resample
    y = np.repeat([0, 1, 2], 10)
    score = np.eye(3)[np.zeros(30, np.int64)]
    ci = bootstrap_ci("classification", y, score, names="accuracy", stratified=True)["accuracy"]
    assert ci.low == ci.high == pytest.approx(1 / 3)


def test_two_class_auc_of_scores_that_are_not_probabilities_matches_the_metric(monkeypatch):
    # two independent scores per sample (e.g. logits): the AUC is that of class 1's column
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 60)
    score = rng.normal(size=(60, 2)) + np.eye(2)[y]
    loop = loop_copy(monkeypatch, "roc_auc")
    cis = bootstrap_ci("classification", y, score, names=["roc_auc", loop], n_resamples=100)
    assert (cis["roc_auc"].low, cis["roc_auc"].high) == pytest.approx(
        (cis[loop].low, cis[loop].high), abs=1e-12
    )


def test_a_plugin_form_that_returns_booleans_is_read_as_numbers(monkeypatch):
    """A vectorised form may answer yes/no per resample (as 0/1): its values are read as
    float64, so the interval is the one of the same 0/1 values given as floats."""

    def above(sums):
        return sums["tp"].sum(axis=1) / sums["total"] > 0.6

    def as_float(sums):
        return above(sums).astype(np.float64)

    def fn(y, s):
        return float(np.mean(np.argmax(s, axis=1) == y) > 0.6)

    for name, form in (("above", above), ("above_f", as_float)):
        metric = Metric(name, fn, "classification", True, vectorised=Vectorised(("tp",), form))
        monkeypatch.setitem(METRICS, name, metric)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 40)
    score = np.eye(2)[np.where(rng.random(40) < 0.62, y, 1 - y)]
    cis = bootstrap_ci("classification", y, score, names=["above", "above_f"])
    assert cis["above"] == cis["above_f"]
    assert cis["above"].low == 0.0 and cis["above"].high == 1.0  # the resamples fall both ways


# --- the features behind the vectorised forms: names, shorthands, messages


def test_a_need_is_a_shared_feature_total_or_an_own_feature_and_nothing_else():
    from tunelab.evaluate import Feature
    from tunelab.evaluate._features import resolve, union

    assert resolve("total", "classification") is None  # always there
    assert [f.name for f in union([Vectorised(("total", "tp"), len)], "classification")] == ["tp"]
    with pytest.raises(TunelabError) as err:
        resolve("tpp", "classification")
    assert str(err.value) == (
        "a vectorised form needs an unknown classification feature 'tpp' (did you mean `tp`?); "
        "expected a Feature or one of: total, tp, predicted, support."
    )
    with pytest.raises(TunelabError) as err:
        resolve(Feature("total", lambda y, s: y), "classification")
    assert str(err.value) == (
        "a metric's own Feature is called `total`, the name of a shared feature; expected a "
        "name of its own. Name the shared one as a string instead."
    )


def test_a_feature_array_is_one_column_per_value_or_refused_with_its_shape():
    from tunelab.evaluate._features import _as_block

    block = _as_block(np.arange(5.0), 5)
    assert block.width == 1 and block.column.tolist() == [0] * 5
    assert _as_block(np.ones((5, 2)), 5).width == 2
    for shape in ((5, 2, 2), (4, 2)):
        with pytest.raises(TunelabError) as err:
            _as_block(np.ones(shape), 5)
        assert str(err.value) == (
            "a feature function must return an array (n,) or (n, d) with n = 5, a Block, a list "
            f"of blocks or None; got shape {shape}. Give one value per sample."
        )


def test_a_single_block_with_a_running_order_gets_its_running_sums(monkeypatch):
    """As test_features' rank statistic, from one Block (not a list): ``sums["mw.running"]``."""
    from tunelab.evaluate import Block, Feature

    def block(y, score):
        positive, column = y == 1, score[:, 1]
        members = np.flatnonzero(positive)
        members = members[np.argsort(column[members], kind="stable")]
        below = np.searchsorted(column[members], column, side="left")
        return Block(below, np.where(positive, 0.0, 1.0), len(members) + 1, running=members)

    def rows(sums):
        slots, running = sums["mw"], sums["mw.running"]
        w_pos = running[:, -1]
        return 1.0 - np.einsum("rm,rm->r", running, slots) / (w_pos * (sums["total"] - w_pos))

    form = Vectorised((Feature("mw", block, real=False),), rows)
    metric = Metric("mw", METRICS["roc_auc"].fn, "classification", True, vectorised=form)
    monkeypatch.setitem(METRICS, "mw", metric)
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 90)
    logits = rng.normal(size=(90, 2)) + 1.5 * np.eye(2)[y]
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    cis = bootstrap_ci("classification", y, proba, names=["mw", "roc_auc"], n_resamples=100)
    assert cis["mw"] == cis["roc_auc"]


def test_a_real_feature_far_from_zero_keeps_its_precision(monkeypatch):
    """A real-valued feature is centred before it enters the float32 matrix: values near 1e4
    with a spread of 0.01 give the interval the resample-by-resample loop gives."""
    from tunelab.evaluate import Feature

    def value(y, score):
        return 1e4 + score[:, 0]

    def fn(y, score):
        return float(np.mean(value(y, score)))

    form = Vectorised((Feature("far", value),), lambda sums: sums["far"][:, 0] / sums["total"])
    monkeypatch.setitem(METRICS, "far", Metric("far", fn, "classification", True, vectorised=form))
    monkeypatch.setitem(METRICS, "far_loop", Metric("far_loop", fn, "classification", True))
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 90)
    score = np.column_stack([p := rng.random(90) * 0.05, 1 - p])
    cis = bootstrap_ci("classification", y, score, names=["far", "far_loop"], n_resamples=200)
    assert cis["far"].low == pytest.approx(cis["far_loop"].low, rel=0, abs=1e-6)
    assert cis["far"].high == pytest.approx(cis["far_loop"].high, rel=0, abs=1e-6)
