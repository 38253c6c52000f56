"""Vectorised bootstrap forms registered with a metric: a plug-in's own forms against its metric
resample by resample, the union of features built once, the proportion flag, and the errors."""

from __future__ import annotations

import numpy as np
import pytest

from tunelab.errors import TunelabError
from tunelab.evaluate import (
    METRICS,
    Block,
    Feature,
    Metric,
    Vectorised,
    bootstrap_ci,
    register_metric,
)


def _classification(seed: int, n: int, k: int):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=n)
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[y]
    proba = np.exp(logits)
    return y, proba / proba.sum(axis=1, keepdims=True)


def _margin(y: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Per sample: the true class's probability minus the best other class's."""
    other = np.where(np.eye(score.shape[1], dtype=bool)[y], -np.inf, score).max(axis=1)
    return score[np.arange(len(y)), y] - other


def _mean_margin(sums):
    return sums["margin"][:, 0] / sums["total"]


def _worst_recall(y, score) -> float:
    """The lowest recall over the classes present in y (a plug-in reading shared counts)."""
    y, pred = np.asarray(y), np.asarray(score).argmax(axis=1)
    return float(min(np.mean(pred[y == c] == c) for c in np.unique(y)))


def _worst_recall_rows(sums):
    tp, support = sums["tp"], sums["support"]
    recall = np.where(support > 0, tp / np.where(support > 0, support, 1.0), np.inf)
    return recall.min(axis=1)


def _bias(y, pred) -> float:
    """Mean signed error, averaged over outputs (a regression plug-in)."""
    return float(np.mean(np.asarray(pred) - np.asarray(y)))


def _signed_error(y, pred):
    return pred - y  # (n, d): one column per output


@pytest.fixture
def register():
    """``register(name, fn, task, **kwargs)``: a plug-in metric registered as a plug-in does
    (:func:`register_metric`), with a copy without its vectorised form (``name__loop``); both are
    unregistered after the test."""
    names: list[str] = []

    def add(name: str, fn, task: str, **kwargs) -> str:
        kwargs.setdefault("greater_is_better", True)
        metric = register_metric(name, fn, task=task, **kwargs)
        copy = f"{name}__loop"
        names.extend([name, copy])
        METRICS[copy] = Metric(copy, fn, task, metric.greater_is_better)
        return copy

    yield add
    for name in names:
        del METRICS[name]


@pytest.mark.parametrize(
    ("method", "stratified"), [("percentile", False), ("bca", False), ("percentile", True)]
)
def test_a_plugin_metric_with_its_own_real_feature_matches_its_loop(register, method, stratified):
    form = Vectorised((Feature("margin", _margin),), _mean_margin)
    loop = register(
        "margin", lambda y, s: float(np.mean(_margin(y, s))), "classification",
        vectorised=form,
    )  # fmt: skip
    assert METRICS["margin"].vectorised is form and METRICS[loop].vectorised is None
    y, proba = _classification(1, 200, 4)
    cis = bootstrap_ci(
        "classification", y, proba, names=["margin", loop], n_resamples=60, method=method,
        seed=2, stratified=stratified,
    )  # fmt: skip
    fast, slow = cis["margin"], cis[loop]
    assert fast.low < fast.high
    # a real feature's float32 sums agree with the loop's float64 means to ~1e-7
    assert (fast.low, fast.high) == pytest.approx((slow.low, slow.high), rel=1e-6, abs=1e-9)


def test_a_plugin_metric_reading_shared_counts_matches_its_loop(register):
    """Class 2 has two samples: resamples that miss it leave it out, as the metric does."""
    loop = register(
        "worst_recall", _worst_recall, "classification",
        vectorised=Vectorised(("tp", "support"), _worst_recall_rows),
    )  # fmt: skip
    y, proba = _classification(3, 80, 3)
    y[y == 2] = 0
    y[:2] = 2
    cis = bootstrap_ci("classification", y, proba, names=["worst_recall", loop], n_resamples=80)
    # counts are exact in float32: the same values as the loop, bit for bit
    assert (cis["worst_recall"].low, cis["worst_recall"].high) == (cis[loop].low, cis[loop].high)
    assert cis["worst_recall"].low < cis["worst_recall"].high


@pytest.mark.parametrize("d", [1, 3])
def test_a_regression_plugin_with_a_feature_per_output_matches_its_loop(register, d):
    def rows(sums):
        return (sums["bias"] / sums["total"][:, None]).mean(axis=1)

    loop = register(
        "bias", _bias, "regression", greater_is_better=False,
        vectorised=Vectorised((Feature("bias", _signed_error),), rows),
    )  # fmt: skip
    rng = np.random.default_rng(d)
    y = rng.normal(size=(150, d)) * 10.0 + 5.0
    pred = y + rng.normal(size=y.shape) + 0.2
    cis = bootstrap_ci("regression", y, pred, names=["bias", loop], n_resamples=60, method="bca")
    assert (cis["bias"].low, cis["bias"].high) == pytest.approx(
        (cis[loop].low, cis[loop].high), rel=1e-12
    )


def test_a_feature_needed_by_several_metrics_is_built_once(register):
    calls = []

    def counted(y, score):
        calls.append(len(y))
        return _margin(y, score)

    feature = Feature("margin", counted)
    for name, fn in (("margin_mean", _mean_margin), ("margin_neg", lambda s: -_mean_margin(s))):
        register(
            name, lambda y, s: 0.0, "classification", vectorised=Vectorised((feature, "tp"), fn)
        )
    y, proba = _classification(0, 50, 3)
    cis = bootstrap_ci("classification", y, proba, names=["margin_mean", "margin_neg"])
    assert calls == [50]
    assert cis["margin_neg"].low == pytest.approx(-cis["margin_mean"].high)


def test_a_builtin_form_under_another_name_gives_the_builtin_interval(monkeypatch):
    """No branch on a metric's name: accuracy's form and flag, registered as `hit_rate`, give
    accuracy's interval, the exact one included."""
    accuracy = METRICS["accuracy"]
    hit_rate = Metric(
        "hit_rate", accuracy.fn, "classification", True,
        vectorised=accuracy.vectorised, proportion=True,
    )  # fmt: skip
    monkeypatch.setitem(METRICS, "hit_rate", hit_rate)
    y, proba = _classification(0, 120, 3)
    for score in (proba, np.eye(3)[y]):  # the second is all correct: Clopper-Pearson
        cis = bootstrap_ci("classification", y, score, names=["accuracy", "hit_rate"])
        assert cis["hit_rate"] == cis["accuracy"]
    assert cis["hit_rate"].method == "clopper-pearson"


def test_proportion_flag_gives_the_exact_interval_at_one(monkeypatch):
    def share(y, s):
        return float(np.mean(np.asarray(s).argmax(axis=1) == np.asarray(y)))

    for name, proportion in (("share", True), ("share_plain", False)):
        monkeypatch.setitem(
            METRICS, name, Metric(name, share, "classification", True, proportion=proportion)
        )
    y = np.arange(30) % 3
    cis = bootstrap_ci("classification", y, np.eye(3)[y], names=["share", "share_plain"])
    assert cis["share"].method == "clopper-pearson" and cis["share"].low < 1.0
    assert (cis["share_plain"].low, cis["share_plain"].high) == (1.0, 1.0)
    assert "not a certainty" in cis["share_plain"].warning


def test_a_feature_with_a_running_order_matches_a_rank_statistic(monkeypatch):
    """A plug-in rank statistic from its own blocks: P(score of class 1 > score of a class-0
    sample) for the binary problem, as the built-in ROC-AUC (which reads the same protocol)."""

    def blocks(y, score):
        positive, column = y == 1, score[:, 1]
        members = np.flatnonzero(positive)
        members = members[np.argsort(column[members], kind="stable")]
        below = np.searchsorted(column[members], column, side="left")
        negative = np.where(positive, 0.0, 1.0)
        return [Block(below, negative, len(members) + 1, running=members)]

    def rows(sums):
        (slots,), (running,) = sums["mw"], sums["mw.running"]
        w_pos = running[:, -1]
        return 1.0 - np.einsum("rm,rm->r", running, slots) / (w_pos * (sums["total"] - w_pos))

    form = Vectorised((Feature("mw", blocks, real=False),), rows)
    monkeypatch.setitem(
        METRICS, "mw", Metric("mw", METRICS["roc_auc"].fn, "classification", True, vectorised=form)
    )
    y, proba = _classification(4, 90, 2)  # continuous scores: no ties
    cis = bootstrap_ci("classification", y, proba, names=["mw", "roc_auc"], n_resamples=100)
    assert cis["mw"] == cis["roc_auc"]


@pytest.mark.parametrize(
    ("vectorised", "message"),
    [
        (lambda sums: sums["tp"], "must be a tunelab.evaluate.Vectorised"),
        (Vectorised("tp", lambda s: s["tp"]), r"Write needs=\('tp',\)"),
        (Vectorised(("suport",), lambda s: s), "did you mean `support`"),
        (Vectorised(("se",), lambda s: s), "unknown classification feature 'se'"),
        (Vectorised((Feature("tp", _margin),), lambda s: s), "name of a shared feature"),
    ],
)
def test_a_bad_form_is_refused_when_registered(vectorised, message):
    with pytest.raises(TunelabError, match=message):
        register_metric(
            "bad_form", lambda y, s: 0.0, task="classification", greater_is_better=True,
            vectorised=vectorised,
        )  # fmt: skip
    assert "bad_form" not in METRICS


def test_a_form_of_the_wrong_shape_or_clashing_features_is_an_error(monkeypatch):
    wide = Vectorised(("tp",), lambda s: s["tp"])  # (r, k), not (r,)
    monkeypatch.setitem(
        METRICS, "wide", Metric("wide", lambda y, s: 0.0, "classification", True, vectorised=wide)
    )
    y, proba = _classification(0, 40, 3)
    with pytest.raises(TunelabError, match=r"returned shape \(2000, 3\).*expected one value"):
        bootstrap_ci("classification", y, proba, names="wide")
    for name, sign in (("m1", 1.0), ("m2", -1.0)):  # two different features, both called `m`
        feature = Feature("m", lambda y, s, sign=sign: sign * _margin(y, s))
        form = Vectorised((feature,), lambda sums: sums["m"][:, 0])
        monkeypatch.setitem(
            METRICS, name, Metric(name, lambda y, s: 0.0, "classification", True, vectorised=form)
        )
    with pytest.raises(TunelabError, match="two different features are called `m`"):
        bootstrap_ci("classification", y, proba, names=["m1", "m2"])
