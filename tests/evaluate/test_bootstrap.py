"""Bootstrap intervals: the vectorised metrics against the metric functions resample by resample,
the intervals against scipy.stats.bootstrap, and the coverage of the percentile interval."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from tunelab.errors import TunelabError
from tunelab.evaluate import CI, METRICS, Metric, bootstrap_ci, compute_metrics


def _classification(seed: int, n: int, k: int, *, tied: bool = False):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=n)
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[y]
    proba = np.exp(logits)
    proba /= proba.sum(axis=1, keepdims=True)
    if tied:  # few distinct scores: ties everywhere in the AUC ranks and ECE bins
        proba = np.round(proba, 1) + 1e-3
        proba /= proba.sum(axis=1, keepdims=True)
    return y, proba


def _correctness_data(seed: int, n: int, p: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels and scores whose accuracy is the mean of Bernoulli(p) correctness."""
    correct = np.random.default_rng(seed).random(n) < p
    y = np.zeros(n, dtype=np.int64)
    return correct, y, np.column_stack([correct, ~correct]).astype(np.float64)


def _as_loop(monkeypatch: pytest.MonkeyPatch, name: str) -> str:
    """Register a copy of metric `name` that bootstrap_ci can only compute resample by resample."""
    metric = METRICS[name]
    loop_name = f"{name}__loop"
    fn = metric.fn
    monkeypatch.setitem(
        METRICS,
        loop_name,
        Metric(loop_name, lambda y, s: fn(y, s), metric.task, metric.greater_is_better),
    )
    return loop_name


# --- the vectorised metrics are the metric functions --------------------------------------------


@pytest.mark.parametrize(
    ("k", "tied", "stratified"), [(2, True, False), (4, False, True), (6, True, False)]
)
@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_vectorised_classification_matches_metric_functions(
    monkeypatch: pytest.MonkeyPatch, k: int, tied: bool, stratified: bool, method: str
) -> None:
    y, proba = _classification(k, 150, k, tied=tied)
    names = [n for n, m in METRICS.items() if m.task == "classification"]
    loops = [_as_loop(monkeypatch, name) for name in names]
    cis = bootstrap_ci(
        "classification",
        y,
        proba,
        names=names + loops,
        n_resamples=40,
        method=method,
        seed=3,
        stratified=stratified,
    )
    for name, loop in zip(names, loops, strict=True):
        fast, slow = cis[name], cis[loop]
        assert fast.n_nan == slow.n_nan, name
        # indicator sums are exact; real-valued ones (log loss, Brier, ECE) agree to ~1e-7
        assert fast.low == pytest.approx(slow.low, rel=1e-6, abs=1e-9, nan_ok=True), name
        assert fast.high == pytest.approx(slow.high, rel=1e-6, abs=1e-9, nan_ok=True), name


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_vectorised_regression_matches_metric_functions(
    monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    rng = np.random.default_rng(5)
    y = rng.normal(size=(120, 2)) * [1.0, 100.0] + 50.0
    pred = y + rng.normal(size=y.shape)
    names = ["mse", "rmse", "mae", "r2"]
    loops = [_as_loop(monkeypatch, name) for name in names]
    cis = bootstrap_ci("regression", y, pred, names=names + loops, n_resamples=40, method=method)
    for name, loop in zip(names, loops, strict=True):
        assert cis[name].low == pytest.approx(cis[loop].low, rel=1e-12), name
        assert cis[name].high == pytest.approx(cis[loop].high, rel=1e-12), name


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning")
def test_vectorised_averages_match_sklearn_in_resamples_missing_a_class(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Four score columns: class 3 is never a label nor a prediction, class 2 is one sample
    (absent from about a third of the resamples, predicted in some). In every resample the
    averages run over the classes present in it, as scikit-learn's, resample by resample."""
    skm = pytest.importorskip("sklearn.metrics")
    y, proba = _classification(9, 40, 3)
    y[y == 2] = 0
    y[0] = 2
    proba = np.column_stack([proba, np.zeros(len(y))])
    names, oracles = [], []
    for family in ("precision", "recall", "f1"):
        for average in ("macro", "weighted", "micro"):
            name, fn = f"{family}_{average}", getattr(skm, f"{family}_score")

            def oracle(y, s, fn=fn, average=average):
                return fn(y, s.argmax(axis=1), average=average, zero_division=0)

            sk = Metric(f"{name}__sk", oracle, "classification", True)
            monkeypatch.setitem(METRICS, sk.name, sk)
            names.append(name)
            oracles.append(f"{name}__sk")
    assert (proba.argmax(axis=1) == 2).sum() > 0 and (proba.argmax(axis=1) == 3).sum() == 0
    for level in (0.5, 0.9):  # four quantiles of the same resamples
        cis = bootstrap_ci(
            "classification", y, proba, names=names + oracles, n_resamples=50, level=level
        )
        for name, oracle in zip(names, oracles, strict=True):
            assert cis[name].low == pytest.approx(cis[oracle].low, rel=1e-9), (name, level)
            assert cis[name].high == pytest.approx(cis[oracle].high, rel=1e-9), (name, level)


# --- intervals against scipy.stats.bootstrap -----------------------------------------------------


@pytest.mark.parametrize(("n", "method"), [(300, "percentile"), (300, "bca"), (1500, "bca")])
def test_accuracy_interval_matches_scipy_bootstrap(n: int, method: str) -> None:
    """Accuracy is the mean of correctness, so scipy's interval of the mean is the reference.

    n = 1500 uses the grouped jackknife for BCa's acceleration; scipy uses leave-one-out.
    """
    correct, y, score = _correctness_data(1, n, 0.85)
    ours = bootstrap_ci(
        "classification", y, score, names="accuracy", n_resamples=20_000, method=method
    )["accuracy"]
    reference = stats.bootstrap(
        (correct.astype(np.float64),),
        np.mean,
        n_resamples=20_000,
        method="BCa" if method == "bca" else "percentile",
        random_state=np.random.default_rng(2),
    ).confidence_interval
    # Monte Carlo error of either with 20,000 resamples is ~1e-3 of a sd of ~0.02 (n=300)
    tolerance = 0.004 if n == 300 else 0.0015
    assert ours.low == pytest.approx(reference.low, abs=tolerance)
    assert ours.high == pytest.approx(reference.high, abs=tolerance)


def test_bca_differs_from_percentile_for_a_skewed_statistic() -> None:
    correct, y, score = _correctness_data(4, 200, 0.97)
    kwargs = {"names": "accuracy", "n_resamples": 4000}
    percentile = bootstrap_ci("classification", y, score, **kwargs)["accuracy"]
    bca = bootstrap_ci("classification", y, score, method="bca", **kwargs)["accuracy"]
    assert bca.method == "bca" and percentile.method == "percentile"
    assert (bca.low, bca.high) != (percentile.low, percentile.high)
    assert bca.low < correct.mean() < bca.high


def test_bca_acceleration_on_a_strongly_skewed_statistic_matches_scipy() -> None:
    """The mean of 12 exponential values (MAE of errors that are exponential): skewness 2, so the
    jackknife acceleration is large (a = 0.058, computed by hand below). BCa moves both bounds up
    by 0.035 and 0.08 against the bias-corrected-only interval (a = 0); ours must match scipy's
    BCa to 0.012 (Monte Carlo error with 100,000 resamples: about 0.004)."""
    n = 12
    values = stats.expon.ppf((np.arange(n) + 0.5) / n)
    leave_one_out = (values.sum() - values) / (n - 1)
    d = leave_one_out.mean() - leave_one_out
    accel = np.sum(d**3) / (6 * np.sum(d**2) ** 1.5)
    assert accel == pytest.approx(0.0582, abs=5e-4)  # far from 0: the test can see it
    ours = bootstrap_ci(
        "regression", np.zeros(n), values, names="mae", n_resamples=100_000, method="bca"
    )["mae"]
    reference = stats.bootstrap(
        (values,),
        np.mean,
        n_resamples=100_000,
        method="BCa",
        random_state=np.random.default_rng(1),
    ).confidence_interval
    assert ours.low == pytest.approx(reference.low, abs=0.012)
    assert ours.high == pytest.approx(reference.high, abs=0.012)


def test_percentile_interval_covers_the_truth_95_percent_of_the_time() -> None:
    truth, covered = 0.85, 0
    rng = np.random.default_rng(123)
    y = np.zeros(400, dtype=np.int64)
    for seed in range(1000):
        correct = rng.random(400) < truth
        score = np.column_stack([correct, ~correct]).astype(np.float64)
        ci = bootstrap_ci("classification", y, score, names="accuracy", n_resamples=500, seed=seed)[
            "accuracy"
        ]
        covered += ci.low <= truth <= ci.high
    assert 0.93 <= covered / 1000 <= 0.97


# --- results -------------------------------------------------------------------------------------


def test_interval_brackets_the_estimate_for_every_default_metric() -> None:
    y, proba = _classification(0, 500, 3)
    cis = bootstrap_ci("classification", y, proba, n_resamples=500)
    values = compute_metrics("classification", y, proba)
    assert list(cis) == list(values)
    for name, ci in cis.items():
        assert isinstance(ci, CI)
        assert ci.low < values[name] < ci.high, name
        assert (ci.level, ci.method, ci.n_resamples, ci.n_nan) == (0.95, "percentile", 500, 0)


def test_same_seed_same_interval_and_seed_matters() -> None:
    y, proba = _classification(0, 200, 3)
    first = bootstrap_ci("classification", y, proba, names="f1_macro", n_resamples=300, seed=7)
    again = bootstrap_ci("classification", y, proba, names="f1_macro", n_resamples=300, seed=7)
    other = bootstrap_ci("classification", y, proba, names="f1_macro", n_resamples=300, seed=8)
    assert first == again
    assert first != other


def test_higher_level_gives_a_wider_interval() -> None:
    y, proba = _classification(0, 300, 3)
    narrow = bootstrap_ci("classification", y, proba, names="accuracy", level=0.8)["accuracy"]
    wide = bootstrap_ci("classification", y, proba, names="accuracy", level=0.99)["accuracy"]
    assert wide.low < narrow.low and narrow.high < wide.high


def test_to_json_is_plain_and_valid_json() -> None:
    y, proba = _classification(0, 100, 3)
    payload = bootstrap_ci("classification", y, proba, names="accuracy")["accuracy"].to_json()
    assert set(payload) == {"low", "high", "level", "method", "n_resamples"}
    assert json.loads(json.dumps(payload)) == payload
    nan = CI(math.nan, math.nan, 0.95, "bca", 10, n_nan=4).to_json()
    assert nan["low"] is None and nan["high"] is None and nan["n_nan"] == 4
    json.dumps(nan, allow_nan=False)


def test_stratified_resampling_keeps_class_counts() -> None:
    """A model that always says class 0 has accuracy = share of class 0: fixed when stratified."""
    y = np.array([0] * 70 + [1] * 30)
    score = np.tile([0.9, 0.1], (100, 1))
    plain = bootstrap_ci("classification", y, score, names="accuracy")["accuracy"]
    stratified = bootstrap_ci("classification", y, score, names="accuracy", stratified=True)
    assert plain.low < 0.7 < plain.high
    assert (stratified["accuracy"].low, stratified["accuracy"].high) == (0.7, 0.7)


@pytest.mark.parametrize("method", ["percentile", "bca"])
@pytest.mark.parametrize("stratified", [False, True])
def test_all_correct_or_all_wrong_accuracy_gets_the_exact_interval(
    method: str, stratified: bool
) -> None:
    """45 of 45 correct: every resample is 1, and [1, 1] would claim certainty. The exact
    (Clopper-Pearson) interval is [(0.025) ** (1/45), 1] = [0.9213, 1]."""
    y = np.arange(45) % 3
    names = ["accuracy", "top2_accuracy", "f1_micro", "recall_micro"]
    for score, count in ((np.eye(3)[y], 45), (np.eye(3)[(y + 1) % 3], 0)):
        cis = bootstrap_ci(
            "classification", y, score, names=names, method=method, stratified=stratified
        )
        exact = stats.binomtest(count, 45).proportion_ci(0.95, method="exact")
        for name in ("accuracy", "f1_micro", "recall_micro"):
            ci = cis[name]
            assert (ci.low, ci.high) == (pytest.approx(exact.low), pytest.approx(exact.high))
            assert ci.method == "clopper-pearson" and ci.warning is None
            assert ci.to_json()["method"] == "clopper-pearson"
        if count == 45:
            assert cis["accuracy"].low == pytest.approx(0.025 ** (1 / 45))
            assert cis["accuracy"].high == 1.0
    # top-2 of the all-wrong predictions is not 0 (the true class is second): a bootstrap interval
    assert cis["top2_accuracy"].method == method


def test_a_point_interval_of_another_metric_carries_a_warning() -> None:
    """A perfect classifier's macro F1 is 1 on every resample: the interval stays the bootstrap's,
    with a warning that a point is not a certainty (no exact interval exists for it)."""
    y = np.arange(45) % 2
    ci = bootstrap_ci("classification", y, np.eye(3)[y], names="f1_macro")["f1_macro"]
    assert (ci.low, ci.high, ci.method) == (1.0, 1.0, "percentile")
    assert "every resample gave 1" in ci.warning and "not a certainty" in ci.warning
    assert ci.to_json()["warning"] == ci.warning


def test_an_interval_that_excludes_its_estimate_carries_a_warning() -> None:
    """Confidence 0.8 on 100 samples of which exactly 80 are right, 0.6 on 100 with 60 right: ECE
    is 0 on the data and above 0 on almost every resample (each bin's gap is noisy, and ECE adds
    absolute gaps), so the bootstrap interval lies above the estimate."""
    confidence = np.repeat([0.8, 0.6], 100)
    correct = np.concatenate([np.arange(100) < 80, np.arange(100) < 60])
    y = np.where(correct, 0, 1)
    score = np.column_stack([confidence, 1 - confidence])
    estimate = compute_metrics("classification", y, score, names=["ece"])["ece"]
    ci = bootstrap_ci("classification", y, score, names=["ece", "accuracy"], n_resamples=400)
    assert estimate == pytest.approx(0.0, abs=1e-12)
    assert estimate < ci["ece"].low
    assert "excludes the estimate" in ci["ece"].warning and "biased" in ci["ece"].warning
    assert ci["accuracy"].warning is None and "warning" not in ci["accuracy"].to_json()


def test_nan_resamples_are_counted_and_left_out() -> None:
    y, proba = _classification(0, 100, 3)
    y = np.where(y == 2, 1, y)
    y[:3] = 2  # class 2 has 3 samples: about 5% of resamples miss it, and their AUC is NaN
    ci = bootstrap_ci("classification", y, proba, names="roc_auc", n_resamples=2000)["roc_auc"]
    assert 40 < ci.n_nan < 160
    assert 0 < ci.low < ci.high < 1
    y[:3] = 1
    y[0] = 2  # one sample: more than a third of the resamples miss it, too many
    rare = bootstrap_ci("classification", y, proba, names="roc_auc")["roc_auc"]
    assert math.isnan(rare.low) and math.isnan(rare.high) and rare.n_nan > 600


def test_diverged_predictions_give_nan_intervals() -> None:
    y, proba = _classification(0, 50, 3)
    proba[4, 1] = np.nan
    for ci in bootstrap_ci("classification", y, proba, n_resamples=20).values():
        assert math.isnan(ci.low) and math.isnan(ci.high)


def test_regression_defaults() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=300)
    cis = bootstrap_ci("regression", y, y + rng.normal(scale=0.3, size=300), method="bca")
    assert list(cis) == ["mse", "rmse", "mae", "r2"]
    assert cis["mse"].low < 0.09 < cis["mse"].high  # the noise variance
    assert cis["rmse"].low < 0.3 < cis["rmse"].high
    assert cis["r2"].high < 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "bcaa"}, "did you mean `bca`"),
        ({"level": 95}, "level must be in (0, 1)"),
        ({"n_resamples": 0}, "n_resamples must be an integer >= 1"),
        ({"names": "acuracy"}, "did you mean `accuracy`"),
        ({"names": "mse"}, "is a regression metric"),
    ],
)
def test_errors_say_what_to_fix(kwargs: dict, message: str) -> None:
    y, proba = _classification(0, 30, 3)
    with pytest.raises(TunelabError, match=message.replace("(", r"\(").replace(")", r"\)")):
        bootstrap_ci("classification", y, proba, **kwargs)


def test_stratified_needs_classification() -> None:
    with pytest.raises(TunelabError, match="stratified"):
        bootstrap_ci("regression", [1.0, 2.0], [1.0, 2.5], stratified=True)
