"""Calibration: ECE against a direct loop and known values, Brier against scikit-learn, and
temperature scaling on synthetic overconfident logits."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sklearn.metrics as skm
from scipy.special import softmax

from tunelab.errors import TunelabError
from tunelab.evaluate import (
    DEFAULT_METRICS,
    METRICS,
    apply_temperature,
    brier_score,
    compute_metrics,
    expected_calibration_error,
    fit_temperature,
    greater_is_better,
    log_loss,
    reliability_diagram,
)


def _calibrated(seed: int, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from the predicted probabilities: perfectly calibrated by construction."""
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.full(k, 0.7), size=n)
    y = (rng.random(n)[:, None] > np.cumsum(proba, axis=1)).sum(axis=1)
    return np.minimum(y, k - 1), proba


def _overconfident(seed: int, n: int, k: int, sharpen: float) -> tuple[np.ndarray, np.ndarray]:
    """Labels from softmax(z); the model reports softmax(sharpen * z), too sure of itself."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=1.5, size=(n, k))
    truth = softmax(logits, axis=1)
    y = (rng.random(n)[:, None] > np.cumsum(truth, axis=1)).sum(axis=1)
    return np.minimum(y, k - 1), softmax(sharpen * logits, axis=1)


def _ece_loop(y: np.ndarray, proba: np.ndarray, edges: np.ndarray) -> float:
    """Guo et al.'s ECE written the textbook way: a loop over (lo, hi] bins."""
    confidence, correct = proba.max(axis=1), proba.argmax(axis=1) == y
    total = 0.0
    for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        inside = (confidence > lo) & (confidence <= hi)
        if i == 0:
            inside |= confidence == lo
        if inside.any():
            total += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return total


# --- ECE -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_ece_is_zero_for_calibrated_predictions(strategy: str) -> None:
    y, proba = _calibrated(0, 200_000, 4)
    assert expected_calibration_error(y, proba, strategy=strategy) < 0.005
    _, overconfident = _overconfident(0, 20_000, 4, 3.0)
    assert expected_calibration_error(y[:20_000], overconfident, strategy=strategy) > 0.1


def test_ece_hand_example() -> None:
    y = np.array([0, 1, 0, 1])
    proba = np.array([[0.9, 0.1], [0.9, 0.1], [0.3, 0.7], [0.3, 0.7]])
    # bin (0.8, 0.9]: confidence 0.9, one of two right -> 2/4 * |0.5 - 0.9| = 0.2
    # bin (0.6, 0.7]: confidence 0.7, one of two right -> 2/4 * |0.5 - 0.7| = 0.1
    assert expected_calibration_error(y, proba, n_bins=10) == pytest.approx(0.3)
    # one sample per bin: (|1 - 0.9| + |0 - 0.8|) / 2
    assert expected_calibration_error([0, 1], [[0.9, 0.1], [0.8, 0.2]], n_bins=10) == (
        pytest.approx(0.45)
    )


@pytest.mark.parametrize("n_bins", [1, 5, 15])
def test_ece_matches_the_textbook_loop(n_bins: int) -> None:
    y, proba = _overconfident(1, 3000, 5, 2.0)
    uniform = np.linspace(0, 1, n_bins + 1)
    assert expected_calibration_error(y, proba, n_bins=n_bins) == pytest.approx(
        _ece_loop(y, proba, uniform), rel=1e-12
    )
    quantile = np.quantile(proba.max(axis=1), np.linspace(0, 1, n_bins + 1))
    assert expected_calibration_error(y, proba, n_bins=n_bins, strategy="quantile") == (
        pytest.approx(_ece_loop(y, proba, quantile), rel=1e-12)
    )


def test_ece_errors() -> None:
    with pytest.raises(TunelabError, match="did you mean `quantile`"):
        expected_calibration_error([0], [[0.6, 0.4]], strategy="quantil")
    with pytest.raises(TunelabError, match="n_bins"):
        expected_calibration_error([0], [[0.6, 0.4]], n_bins=0)


# --- reliability diagram -------------------------------------------------------------------------


def test_reliability_diagram_is_plain_json_and_agrees_with_ece() -> None:
    y, proba = _overconfident(2, 500, 3, 2.0)
    diagram = reliability_diagram(y, proba, n_bins=10)
    assert json.loads(json.dumps(diagram, allow_nan=False)) == diagram
    assert len(diagram["edges"]) == 11 and len(diagram["count"]) == 10
    assert sum(diagram["count"]) == 500
    assert diagram["ece"] == pytest.approx(expected_calibration_error(y, proba, n_bins=10))
    # confidences are at least 1/3, so the first three bins are empty
    assert diagram["count"][:3] == [0, 0, 0] and diagram["confidence"][:3] == [None] * 3
    for lo, hi, conf in zip(
        diagram["edges"], diagram["edges"][1:], diagram["confidence"], strict=False
    ):
        assert conf is None or lo <= conf <= hi
    quantile = reliability_diagram(y, proba, n_bins=5, strategy="quantile")
    assert quantile["count"] == [100] * 5 and quantile["strategy"] == "quantile"


# --- Brier ---------------------------------------------------------------------------------------


def test_brier_multiclass_matches_sklearn_unscaled() -> None:
    y, proba = _overconfident(3, 400, 4, 1.5)
    expected = skm.brier_score_loss(y, proba, labels=range(4), scale_by_half=False)
    assert brier_score(y, proba) == pytest.approx(expected, rel=1e-12)


def test_brier_binary_is_twice_sklearn_positive_class() -> None:
    y, proba = _overconfident(4, 300, 2, 1.5)
    assert brier_score(y, proba) == pytest.approx(
        2 * skm.brier_score_loss(y, proba[:, 1]), rel=1e-12
    )
    assert brier_score([0, 1], [[1.0, 0.0], [0.0, 1.0]]) == 0.0
    assert brier_score([0], [[0.0, 1.0]]) == 2.0


def test_ece_and_brier_are_registered_lower_is_better_metrics() -> None:
    y, proba = _overconfident(5, 200, 3, 2.0)
    values = compute_metrics("classification", y, proba, names=["ece", "brier"])
    assert values == {
        "ece": pytest.approx(expected_calibration_error(y, proba)),
        "brier": pytest.approx(brier_score(y, proba)),
    }
    for name in ("ece", "brier"):
        assert METRICS[name].task == "classification"
        assert greater_is_better(f"val_{name}") is False
        assert name not in DEFAULT_METRICS["classification"]


# --- temperature scaling -------------------------------------------------------------------------


def test_temperature_scaling_cools_an_overconfident_model() -> None:
    y, proba = _overconfident(6, 4000, 5, 2.5)
    temperature = fit_temperature(y[:2000], proba[:2000])
    assert 2.0 < temperature < 3.0  # it was sharpened 2.5 times
    calibrated = apply_temperature(proba[2000:], temperature)
    assert log_loss(y[2000:], calibrated) < log_loss(y[2000:], proba[2000:])
    assert expected_calibration_error(y[2000:], calibrated) < expected_calibration_error(
        y[2000:], proba[2000:]
    )
    np.testing.assert_allclose(calibrated.sum(axis=1), 1.0)
    # scaling never changes which class is predicted
    assert (calibrated.argmax(axis=1) == proba[2000:].argmax(axis=1)).all()


def test_temperature_is_about_one_for_a_calibrated_model() -> None:
    y, proba = _calibrated(7, 20_000, 3)
    assert fit_temperature(y, proba) == pytest.approx(1.0, abs=0.05)


def test_apply_temperature_one_is_identity_and_zeros_are_safe() -> None:
    proba = np.array([[0.7, 0.2, 0.1], [0.0, 1.0, 0.0]])
    np.testing.assert_allclose(apply_temperature(proba, 1.0), proba, atol=1e-12)
    assert np.isfinite(apply_temperature(proba, 2.0)).all()
    with pytest.raises(TunelabError, match="positive"):
        apply_temperature(proba, 0.0)
