"""Calibration: how far predicted probabilities are from observed frequencies, and a fix for it.

All functions take ``(y_true, y_score)`` as the classification metrics do: class indices (n,) and
class probabilities (n, k). Confidence is the top-label probability ``max_c p_c``; a sample is
correct when the argmax is the true class.

Conventions:
    * ECE is the top-label expected calibration error (Guo et al., 2017):
      ``sum_b (n_b / n) * |accuracy_b - confidence_b|``. Bins are right-closed ``(lo, hi]``
      (the first includes its lower edge). ``strategy="uniform"`` uses equal-width bins on [0, 1];
      ``"quantile"`` uses equal-mass bins (edges at quantiles of the confidences).
    * The Brier score is the multiclass one: the mean over samples of the sum over all k classes of
      ``(p_c - [y == c])**2``, in [0, 2]. For a binary problem it is twice scikit-learn's
      ``brier_score_loss(y, p[:, 1])`` (which scores only the positive class) and equal to
      ``brier_score_loss(y, p, scale_by_half=False)``.

``ece`` and ``brier`` are registered as classification metrics (lower is better).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax

from tunelab.errors import TunelabError, did_you_mean
from tunelab.evaluate._checks import _check_classification
from tunelab.evaluate._features import Block, Feature, Sums, Vectorised
from tunelab.evaluate._metrics import register_metric

__all__ = [
    "apply_temperature",
    "brier_score",
    "expected_calibration_error",
    "fit_temperature",
    "reliability_diagram",
]

Strategy = Literal["uniform", "quantile"]
STRATEGIES: tuple[Strategy, ...] = ("uniform", "quantile")

# log T is searched in [-_LOG_T_BOUND, _LOG_T_BOUND]: T from about 0.007 to 150.
_LOG_T_BOUND = 5.0


def _top_label_bins(
    y_true: np.ndarray, y_score: np.ndarray, n_bins: int, strategy: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Checked input -> (bin index (n,), confidence (n,), correct (n,) float, edges (n_bins+1,))."""
    if isinstance(n_bins, bool) or not isinstance(n_bins, int | np.integer) or n_bins < 1:
        raise TunelabError(f"n_bins must be a positive integer; got {n_bins!r}.")
    confidence = y_score.max(axis=1).astype(np.float64)
    correct = (y_score.argmax(axis=1) == y_true).astype(np.float64)
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    elif strategy == "quantile":
        edges = np.quantile(confidence, np.linspace(0.0, 1.0, n_bins + 1))
    else:
        raise TunelabError(
            f"strategy must be one of: {', '.join(STRATEGIES)}; got `{strategy}`"
            f"{did_you_mean(str(strategy), STRATEGIES)}."
        )
    bins = np.searchsorted(edges[1:-1], confidence, side="left")
    return bins, confidence, correct, edges


def expected_calibration_error(
    y_true: object, y_score: object, *, n_bins: int = 15, strategy: Strategy = "uniform"
) -> float:
    """Top-label expected calibration error, in [0, 1] (0 is perfectly calibrated).

    Args:
        y_true: Class indices, shape (n,).
        y_score: Class probabilities, shape (n, k).
        n_bins: Number of confidence bins.
        strategy: ``uniform`` (equal-width bins) or ``quantile`` (equal-mass bins).

    Example:
        >>> expected_calibration_error([0, 1], [[0.9, 0.1], [0.8, 0.2]], n_bins=10)
        0.45
    """
    y_true, y_score = _check_classification(y_true, y_score)
    bins, confidence, correct, _ = _top_label_bins(y_true, y_score, n_bins, strategy)
    gap = np.bincount(bins, weights=confidence - correct, minlength=n_bins)
    return float(np.abs(gap).sum() / len(y_true))


def brier_score(y_true: object, y_score: object) -> float:
    """Multiclass Brier score: mean over samples of ``sum_c (p_c - [y == c])**2``, in [0, 2].

    For binary problems this is twice scikit-learn's ``brier_score_loss(y, p[:, 1])``.
    """
    y_true, y_score = _check_classification(y_true, y_score)
    return float(np.mean(_brier_per_sample(y_true, y_score)))


def _brier_per_sample(y_true: np.ndarray, y_score: np.ndarray) -> np.ndarray:
    """Per-sample ``sum_c (p_c - [y == c])**2`` (n,), float64."""
    error = y_score.astype(np.float64)  # a copy
    error[np.arange(len(y_true)), y_true] -= 1.0
    return np.einsum("nk,nk->n", error, error)


def reliability_diagram(
    y_true: object, y_score: object, *, n_bins: int = 15, strategy: Strategy = "uniform"
) -> dict[str, object]:
    """Per-bin mean confidence, accuracy and count, as plain lists ready for JSON.

    Returns:
        ``{"edges": [n_bins + 1 floats], "confidence": [...], "accuracy": [...],
        "count": [ints], "ece": float, "strategy": str}``; ``confidence`` and ``accuracy`` are
        None for an empty bin. A perfectly calibrated model has ``accuracy == confidence`` in
        every bin.
    """
    y_true, y_score = _check_classification(y_true, y_score)
    bins, confidence, correct, edges = _top_label_bins(y_true, y_score, n_bins, strategy)
    count = np.bincount(bins, minlength=n_bins)
    sum_confidence = np.bincount(bins, weights=confidence, minlength=n_bins)
    sum_correct = np.bincount(bins, weights=correct, minlength=n_bins)
    filled = count > 0
    return {
        "edges": edges.tolist(),
        "confidence": [
            float(s / c) if c else None for s, c in zip(sum_confidence, count, strict=True)
        ],
        "accuracy": [float(s / c) if c else None for s, c in zip(sum_correct, count, strict=True)],
        "count": count.tolist(),
        "ece": float(np.abs(sum_confidence - sum_correct)[filled].sum() / len(y_true)),
        "strategy": strategy,
    }


def _log_probabilities(y_score: np.ndarray) -> np.ndarray:
    """``log p`` as float64, with zeros clipped to the smallest positive float (no -inf)."""
    return np.log(np.clip(y_score.astype(np.float64), np.finfo(np.float64).tiny, None))


def fit_temperature(val_y: object, val_score: object) -> float:
    """The temperature T > 0 that minimises the NLL of ``softmax(log p / T)`` on validation data.

    Log-probabilities serve as logits: ``softmax(log p / T)`` equals ``softmax(logits / T)``,
    because ``log p`` differs from the logits by a per-row constant. T > 1 softens an overconfident
    model, T < 1 sharpens an underconfident one. ``log T`` is searched in [-5, 5] with
    ``scipy.optimize.minimize_scalar`` (bounded Brent).

    Args:
        val_y: Validation class indices, shape (n,).
        val_score: Validation class probabilities, shape (n, k).

    Example:
        >>> T = fit_temperature(y_val, proba_val)  # doctest: +SKIP
        >>> calibrated = apply_temperature(proba_test, T)  # doctest: +SKIP
    """
    y, score = _check_classification(val_y, val_score)
    logits = _log_probabilities(score)
    rows = np.arange(len(y))

    def nll(log_t: float) -> float:
        return float(-np.mean(log_softmax(logits * np.exp(-log_t), axis=1)[rows, y]))

    result = minimize_scalar(
        nll, bounds=(-_LOG_T_BOUND, _LOG_T_BOUND), method="bounded", options={"xatol": 1e-6}
    )
    return float(np.exp(result.x))


def apply_temperature(score: object, temperature: float) -> np.ndarray:
    """Probabilities ``softmax(log p / T)`` (n, k), float64: ``score`` recalibrated by T > 0."""
    score = np.asarray(score)
    if score.ndim != 2 or score.shape[1] < 2:
        raise TunelabError(
            f"score must be class probabilities of shape (n, k) with k >= 2; got shape "
            f"{score.shape}."
        )
    if not (np.isfinite(temperature) and temperature > 0):
        raise TunelabError(
            f"temperature must be a positive finite number; got {temperature!r}. "
            f"Fit it with fit_temperature(val_y, val_score)."
        )
    return softmax(_log_probabilities(score) / temperature, axis=1)


# --- registered metrics, with their vectorised bootstrap forms ----------------------------------

_ECE_BINS = 15  # the registered ece: expected_calibration_error's defaults


def _ece_gaps(y: np.ndarray, score: np.ndarray) -> Block:
    """Per bin (the registered ece's bins), each sample's confidence minus its correctness."""
    bins, confidence, correct, _ = _top_label_bins(y, score, _ECE_BINS, "uniform")
    return Block(bins, confidence - correct, _ECE_BINS)


def _ece_rows(sums: Sums) -> np.ndarray:
    return np.abs(sums["ece"]).sum(axis=1) / sums["total"]


def _brier_rows(sums: Sums) -> np.ndarray:
    return sums["brier"][:, 0] / sums["total"]


register_metric(
    "ece",
    expected_calibration_error,
    task="classification",
    greater_is_better=False,
    vectorised=Vectorised((Feature("ece", _ece_gaps),), _ece_rows),
)
register_metric(
    "brier",
    brier_score,
    task="classification",
    greater_is_better=False,
    vectorised=Vectorised((Feature("brier", _brier_per_sample),), _brier_rows),
)
