"""Every registered metric against scikit-learn as the oracle, plus the registry and its errors."""

from __future__ import annotations

import ast
import importlib
import math
from pathlib import Path

import numpy as np
import pytest
import sklearn.metrics as skm

from tunelab.errors import TunelabError
from tunelab.evaluate import (
    DEFAULT_METRICS,
    METRICS,
    Metric,
    compute_metrics,
    confusion_matrix,
    f1,
    get_metric,
    greater_is_better,
    log_loss,
    per_class_report,
    precision,
    r2,
    recall,
    roc_auc,
    top_k_accuracy,
)

# scikit-learn warns where a metric is undefined (absent class, one class in y_true); we compare
# values there, so its warnings are expected.
pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning"),
    pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true:UserWarning"),
]


def _approx(expected: float) -> object:
    return pytest.approx(expected, rel=1e-9, abs=1e-12, nan_ok=True)


# --- data sets ----------------------------------------------------------------------------------


def _random_case(seed: int, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=n)
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[y]  # informative, not perfect
    proba = np.exp(logits)
    return y, proba / proba.sum(axis=1, keepdims=True)


def _tied_case(seed: int, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores drawn from a handful of rows, so every column is full of ties."""
    rng = np.random.default_rng(seed)
    pool = rng.dirichlet(np.ones(k), size=4)
    rows = rng.integers(0, 4, size=n)
    y = np.where(rng.random(n) < 0.5, pool[rows].argmax(axis=1), rng.integers(0, k, size=n))
    return y, pool[rows]


def _binary_tied_case() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, size=200)
    p = np.clip(np.round(0.3 * y + 0.7 * rng.random(200), 1), 0, 1)
    return y, np.column_stack([1 - p, p])


def _absent_case() -> tuple[np.ndarray, np.ndarray]:
    """Ten classes; class 3 never occurs in y_true (but may be predicted)."""
    y, proba = _random_case(11, 300, 10)
    return np.where(y == 3, 4, y), proba


def _perfect_case(k: int) -> tuple[np.ndarray, np.ndarray]:
    y = np.arange(60) % k
    return y, np.eye(k)[y]


def _worst_case(k: int) -> tuple[np.ndarray, np.ndarray]:
    y = np.arange(60) % k
    return y, np.eye(k)[(y + 1) % k]


def _two_of_three_case(*, perfect: bool) -> tuple[np.ndarray, np.ndarray]:
    """The issue's case: three score columns, only classes 0 and 1 occur (as label or prediction)."""
    y = np.array([0, 0, 1, 1, 0, 1])
    pred = y if perfect else np.array([0, 1, 1, 0, 0, 1])
    proba = 0.6 * np.eye(3)[pred] + 0.4 * np.array([0.5, 0.4, 0.1])
    return y, proba


def _float32_case() -> tuple[np.ndarray, np.ndarray]:
    y, proba = _random_case(8, 100, 3)
    return y, proba.astype(np.float32)


CLASSIFICATION_CASES = {
    "binary": _random_case(0, 200, 2),
    "binary_small": _random_case(1, 9, 2),
    "three": _random_case(2, 300, 3),
    "ten": _random_case(3, 500, 10),
    "ten_tied": _tied_case(4, 400, 10),
    "three_tied": _tied_case(5, 100, 3),
    "binary_tied": _binary_tied_case(),
    "absent_class": _absent_case(),
    "one_class_present": (np.ones(20, dtype=int), _random_case(6, 20, 2)[1]),
    "perfect_binary": _perfect_case(2),
    "perfect_ten": _perfect_case(10),
    "worst_binary": _worst_case(2),
    "worst_three": _worst_case(3),
    "float32_scores": _float32_case(),
    "two_of_three": _two_of_three_case(perfect=False),
    "two_of_three_perfect": _two_of_three_case(perfect=True),
}


def _labels(proba: np.ndarray) -> list[int]:
    return list(range(proba.shape[1]))


def _label_oracle(fn, **kwargs):
    """scikit-learn's default labels: the classes present in y_true or the predictions."""
    return lambda y, p: fn(y, p.argmax(axis=1), zero_division=0, **kwargs)


def _roc_auc_oracle(y: np.ndarray, p: np.ndarray) -> float:
    if p.shape[1] == 2:
        return skm.roc_auc_score(y, p[:, 1])
    return skm.roc_auc_score(y, p, multi_class="ovr", average="macro", labels=_labels(p))


def _top_k_oracle(k: int):
    def oracle(y: np.ndarray, p: np.ndarray) -> float:
        if k >= p.shape[1]:
            return math.nan
        return skm.top_k_accuracy_score(y, p, k=k, labels=_labels(p))

    return oracle


def _ece_oracle(y: np.ndarray, proba: np.ndarray, *, n_bins: int) -> float:
    """Top-label ECE (Guo et al. 2017) the textbook way: no library has it, so a plain loop."""
    confidence, correct = proba.max(axis=1), proba.argmax(axis=1) == y
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    total = 0.0
    for i in range(n_bins):
        inside = (confidence > edges[i]) & (confidence <= edges[i + 1])
        if i == 0:
            inside |= confidence == edges[0]
        if inside.any():
            total += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return total


CLASSIFICATION_ORACLES = {
    "accuracy": lambda y, p: skm.accuracy_score(y, p.argmax(axis=1)),
    "balanced_accuracy": lambda y, p: skm.balanced_accuracy_score(y, p.argmax(axis=1)),
    **{
        f"{name}_{average}": _label_oracle(fn, average=average)
        for name, fn in [
            ("precision", skm.precision_score),
            ("recall", skm.recall_score),
            ("f1", skm.f1_score),
        ]
        for average in ("macro", "micro", "weighted")
    },
    "roc_auc": _roc_auc_oracle,
    "log_loss": lambda y, p: skm.log_loss(y, p, labels=_labels(p)),
    "top2_accuracy": _top_k_oracle(2),
    "top3_accuracy": _top_k_oracle(3),
    "top5_accuracy": _top_k_oracle(5),
    # scikit-learn's multiclass Brier score without its 1/2 factor is tunelab's convention
    "brier": lambda y, p: skm.brier_score_loss(
        y, p, labels=list(range(p.shape[1])), scale_by_half=False
    ),
    "ece": lambda y, p: _ece_oracle(y, p, n_bins=15),
}


def _regression_cases() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(20)
    y1 = rng.normal(size=150)
    y3 = rng.normal(size=(120, 3)) * [1.0, 10.0, 0.1]
    constant = np.column_stack([np.full(50, 2.0), rng.normal(size=50)])
    return {
        "one_output": (y1, y1 + rng.normal(scale=0.5, size=150)),
        "three_outputs": (y3, y3 + rng.normal(size=(120, 3))),
        "column_output": (y1[:, None], 0.8 * y1[:, None] + 1.0),
        "perfect": (y1, y1.copy()),
        "worse_than_mean": (y1, -3 * y1),
        "constant_target": (constant, constant + rng.normal(size=(50, 2))),
        "constant_exact": (np.full(30, 1.5), np.full(30, 1.5)),
    }


REGRESSION_CASES = _regression_cases()

REGRESSION_ORACLES = {
    "mse": skm.mean_squared_error,
    "rmse": skm.root_mean_squared_error,
    "mae": skm.mean_absolute_error,
    "r2": skm.r2_score,
}


# --- metrics against the oracle -----------------------------------------------------------------


def test_every_registered_metric_has_an_oracle() -> None:
    assert {n for n, m in METRICS.items() if m.task == "classification"} == set(
        CLASSIFICATION_ORACLES
    )
    assert {n for n, m in METRICS.items() if m.task == "regression"} == set(REGRESSION_ORACLES)


@pytest.mark.parametrize("case", CLASSIFICATION_CASES)
@pytest.mark.parametrize("name", CLASSIFICATION_ORACLES)
def test_classification_metric_matches_sklearn(name: str, case: str) -> None:
    y, proba = CLASSIFICATION_CASES[case]
    expected = CLASSIFICATION_ORACLES[name](y, proba)
    rel = 1e-6 if proba.dtype == np.float32 and name in ("log_loss", "brier", "ece") else 1e-9
    assert get_metric(name).fn(y, proba) == pytest.approx(expected, rel=rel, abs=1e-12, nan_ok=True)


@pytest.mark.parametrize("case", REGRESSION_CASES)
@pytest.mark.parametrize("name", REGRESSION_ORACLES)
def test_regression_metric_matches_sklearn(name: str, case: str) -> None:
    y, pred = REGRESSION_CASES[case]
    assert get_metric(name).fn(y, pred) == _approx(REGRESSION_ORACLES[name](y, pred))


def test_macro_averages_skip_classes_neither_true_nor_predicted() -> None:
    """y = [0, 0, 1, 1, 0, 1] with three score columns: class 2 is not in the data at all."""
    y, proba = _two_of_three_case(perfect=False)
    assert f1(y, proba) == pytest.approx(2 / 3)  # was 4/9: class 2 counted as an F1 of 0
    assert precision(y, proba) == pytest.approx(2 / 3)
    assert recall(y, proba) == pytest.approx(2 / 3)
    y, proba = _two_of_three_case(perfect=True)
    assert (f1(y, proba), precision(y, proba), recall(y, proba)) == (1.0, 1.0, 1.0)


def test_regression_accepts_a_column_against_a_vector() -> None:
    y, pred = REGRESSION_CASES["one_output"]
    assert r2(y, pred[:, None]) == _approx(skm.r2_score(y, pred))


def test_r2_of_one_sample_is_nan() -> None:
    assert math.isnan(r2([1.0], [2.0]))


@pytest.mark.parametrize(
    ("case", "expected"),
    [("perfect_ten", 1.0), ("worst_binary", 0.0), ("absent_class", math.nan)],
)
def test_roc_auc_edge_values(case: str, expected: float) -> None:
    assert roc_auc(*CLASSIFICATION_CASES[case]) == _approx(expected)


def test_roc_auc_all_tied_scores_is_one_half() -> None:
    y = np.array([0, 1, 2, 0, 1, 2])
    assert roc_auc(y, np.full((6, 3), 1 / 3)) == _approx(0.5)


def test_log_loss_clips_certain_mistakes() -> None:
    y, proba = CLASSIFICATION_CASES["worst_binary"]
    assert log_loss(y, proba) == _approx(-math.log(np.finfo(np.float64).eps))


@pytest.mark.parametrize("fn", [precision, recall, f1])
@pytest.mark.parametrize("average", ["macro", "micro", "weighted"])
def test_averages_by_keyword(fn, average: str) -> None:
    y, proba = CLASSIFICATION_CASES["absent_class"]
    assert fn(y, proba, average=average) == METRICS[f"{fn.__name__}_{average}"].fn(y, proba)


def test_unknown_average_suggests_the_closest() -> None:
    y, proba = CLASSIFICATION_CASES["three"]
    with pytest.raises(TunelabError, match="did you mean `macro`"):
        precision(y, proba, average="macr")


@pytest.mark.parametrize("k", [1, 4, 9])
def test_top_k_accuracy_matches_sklearn_for_any_k(k: int) -> None:
    y, proba = CLASSIFICATION_CASES["ten"]
    expected = skm.top_k_accuracy_score(y, proba, k=k, labels=range(10))
    assert top_k_accuracy(y, proba, k) == _approx(expected)


@pytest.mark.parametrize("k", [0, -1, 2.5, True])
def test_top_k_accuracy_rejects_bad_k(k: object) -> None:
    y, proba = CLASSIFICATION_CASES["ten"]
    with pytest.raises(TunelabError, match="positive integer"):
        top_k_accuracy(y, proba, k)


# --- confusion matrix and per-class report ------------------------------------------------------


@pytest.mark.parametrize("case", ["binary", "ten", "absent_class", "worst_three"])
def test_confusion_matrix_matches_sklearn(case: str) -> None:
    y, proba = CLASSIFICATION_CASES[case]
    k = proba.shape[1]
    y_pred = proba.argmax(axis=1)
    got = confusion_matrix(y, y_pred, k)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, skm.confusion_matrix(y, y_pred, labels=range(k)))


def test_confusion_matrix_rejects_labels_out_of_range() -> None:
    with pytest.raises(TunelabError, match="class index 3"):
        confusion_matrix([0, 1, 3], [0, 1, 1], 3)


@pytest.mark.parametrize("case", ["binary", "ten", "absent_class", "worst_three"])
def test_per_class_report_matches_sklearn(case: str) -> None:
    y, proba = CLASSIFICATION_CASES[case]
    report = per_class_report(y, proba)
    expected = skm.precision_recall_fscore_support(
        y, proba.argmax(axis=1), labels=_labels(proba), zero_division=0
    )
    for key, values in zip(("precision", "recall", "f1", "support"), expected, strict=True):
        assert report[key] == pytest.approx(values.tolist(), rel=1e-12, abs=1e-12)
    assert all(isinstance(s, int) for s in report["support"])


# --- registry and compute_metrics ---------------------------------------------------------------


def test_registry_entries_are_frozen_metrics_named_by_their_key() -> None:
    for name, metric in METRICS.items():
        assert isinstance(metric, Metric)
        assert metric.name == name
    with pytest.raises(AttributeError):
        METRICS["accuracy"].name = "other"  # type: ignore[misc]


@pytest.mark.parametrize(("typo", "suggestion"), [("acuracy", "accuracy"), ("f1macro", "f1_macro")])
def test_unknown_metric_suggests_the_closest_and_lists_valid(typo: str, suggestion: str) -> None:
    with pytest.raises(TunelabError) as info:
        get_metric(typo)
    message = str(info.value)
    assert f"`{typo}`" in message
    assert f"did you mean `{suggestion}`" in message
    assert all(name in message for name in METRICS)


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_compute_metrics_defaults(task: str) -> None:
    if task == "classification":
        y, pred = CLASSIFICATION_CASES["three"]
    else:
        y, pred = REGRESSION_CASES["three_outputs"]
    values = compute_metrics(task, y, pred)
    assert tuple(values) == DEFAULT_METRICS[task]
    assert all(type(v) is float for v in values.values())
    for name, value in values.items():
        assert value == _approx(METRICS[name].fn(y, pred))


def test_compute_metrics_named_subset_and_single_name() -> None:
    y, proba = CLASSIFICATION_CASES["ten"]
    values = compute_metrics("classification", y, proba, names=["top5_accuracy", "f1_weighted"])
    assert list(values) == ["top5_accuracy", "f1_weighted"]
    assert compute_metrics("classification", y, proba, names="accuracy") == {
        "accuracy": _approx(skm.accuracy_score(y, proba.argmax(axis=1)))
    }


def test_compute_metrics_accepts_lists_and_integer_scores() -> None:
    values = compute_metrics("classification", [0, 1, 1], [[1, 0], [0, 1], [1, 0]])
    assert values["accuracy"] == _approx(2 / 3)


def test_compute_metrics_gives_nan_for_diverged_predictions() -> None:
    y, proba = CLASSIFICATION_CASES["three"]
    proba = proba.copy()
    proba[5] = np.nan
    assert all(math.isnan(v) for v in compute_metrics("classification", y, proba).values())
    y, pred = REGRESSION_CASES["one_output"]
    assert math.isnan(compute_metrics("regression", y, np.full_like(pred, np.inf))["mse"])


@pytest.mark.parametrize(
    ("task", "names", "match"),
    [
        ("classification", ["accuracy", "mse"], "`mse` is a regression metric"),
        ("regression", ["r2", "roc_auc"], "`roc_auc` is a classification metric"),
        ("regression", ["rsme"], "did you mean `rmse`"),
        ("clasification", None, "did you mean `classification`"),
    ],
)
def test_compute_metrics_rejects_wrong_names(task: str, names: list[str] | None, match) -> None:
    with pytest.raises(TunelabError, match=match):
        compute_metrics(task, np.zeros(4), np.zeros(4), names=names)


_y3, _p3 = CLASSIFICATION_CASES["three"]


@pytest.mark.parametrize(
    ("task", "y_true", "pred", "match"),
    [
        ("classification", _y3, _p3[:, 0], r"shape \(n, k\) with k >= 2"),
        ("classification", _y3, _p3[:, :1], r"shape \(n, k\) with k >= 2"),
        ("classification", _y3[:-1], _p3, "one row per sample"),
        ("classification", np.eye(3)[_y3], _p3, "argmax"),
        ("classification", _y3 + 1, _p3, "class index 3"),
        ("classification", _y3 - 1, _p3, "class index -1"),
        ("classification", _y3 + 0.5, _p3, "integer class indices"),
        ("classification", _y3.astype(str), _p3, "integer class indices"),
        ("classification", np.array([], dtype=int), np.zeros((0, 3)), "at least one sample"),
        ("regression", np.zeros(5), np.zeros(4), "same shape"),
        ("regression", np.zeros((5, 2)), np.zeros((5, 3)), "same shape"),
        ("regression", np.zeros((5, 2, 2)), np.zeros((5, 2, 2)), r"shape \(n,\) or \(n, d\)"),
        ("regression", np.zeros(0), np.zeros(0), "at least one sample"),
        ("regression", np.array([1.0, np.nan]), np.zeros(2), "NaN"),
        ("regression", ["a", "b"], np.zeros(2), "numeric"),
    ],
)
def test_compute_metrics_validates_inputs(task, y_true, pred, match) -> None:
    with pytest.raises(TunelabError, match=match):
        compute_metrics(task, y_true, pred)


def test_float_labels_with_integer_values_are_accepted() -> None:
    assert compute_metrics("classification", _y3.astype(float), _p3) == compute_metrics(
        "classification", _y3, _p3
    )


# --- direction ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("accuracy", True),
        ("val_accuracy", True),
        ("train_f1_macro", True),
        ("roc_auc", True),
        ("r2", True),
        ("loss", False),
        ("val_loss", False),
        ("train_loss", False),
        ("log_loss", False),
        ("val_log_loss", False),
        ("test_rmse", False),
        ("mse", False),
    ],
)
def test_greater_is_better(name: str, expected: bool) -> None:
    assert greater_is_better(name) is expected


def test_greater_is_better_unknown_name_suggests_with_prefix() -> None:
    with pytest.raises(TunelabError, match="did you mean `val_accuracy`"):
        greater_is_better("val_acuracy")


def test_every_metric_direction_is_in_the_registry() -> None:
    for name, metric in METRICS.items():
        assert greater_is_better(f"val_{name}") is metric.greater_is_better


# --- architecture -------------------------------------------------------------------------------


def test_evaluate_imports_only_numpy_scipy_and_errors() -> None:
    allowed = {"__future__", "collections", "dataclasses", "functools", "math", "typing"}
    allowed |= {"numpy", "scipy", "tunelab.errors", "tunelab.evaluate"}
    allowed |= {"tunelab.plugins"}  # metrics register by name there, with the other plug-ins
    allowed |= {"tunelab._lazy"}  # the package's __init__ imports each name when first used
    package = Path(importlib.import_module("tunelab.evaluate").__file__).parent
    for source in package.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            else:
                continue
            for module in modules:
                assert any(module == a or module.startswith(f"{a}.") for a in allowed), (
                    f"{source.name} imports {module}"
                )
