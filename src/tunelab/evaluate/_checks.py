"""Checking a metric's input, once, at the door: class indices and probabilities, or regression
targets and predictions, as arrays the metric functions can trust."""

from __future__ import annotations

import numpy as np

from tunelab.errors import TunelabError


def _as_labels(y_true: np.ndarray, num_classes: int) -> np.ndarray:
    """``y_true`` as int64 class indices in ``0..num_classes-1``, or a TunelabError."""
    if y_true.dtype == bool:
        y_true = y_true.astype(np.int64)
    elif np.issubdtype(y_true.dtype, np.floating):
        if not (np.isfinite(y_true).all() and (y_true == np.round(y_true)).all()):
            raise TunelabError(
                f"y_true must hold integer class indices 0..{num_classes - 1}; got non-integer "
                f"values of dtype {y_true.dtype}. Pass class indices, not probabilities or targets."
            )
        y_true = y_true.astype(np.int64)
    elif not np.issubdtype(y_true.dtype, np.integer):
        raise TunelabError(
            f"y_true must hold integer class indices 0..{num_classes - 1}; got dtype "
            f"{y_true.dtype}. Encode class names as indices first."
        )
    low, high = int(y_true.min()), int(y_true.max())
    if low < 0 or high >= num_classes:
        bad = low if low < 0 else high
        raise TunelabError(
            f"y_true holds class index {bad}, but there are {num_classes} classes "
            f"(0..{num_classes - 1}, one per y_score column). Give y_score one column per class."
        )
    return y_true.astype(np.int64, copy=False)


def _check_classification(y_true: object, y_score: object) -> tuple[np.ndarray, np.ndarray]:
    """Validated ``(y_true (n,) int64, y_score (n, k) float)`` or a TunelabError."""
    y_true = np.asarray(y_true)
    y_score = np.asarray(y_score)
    if y_score.ndim != 2 or y_score.shape[1] < 2:
        raise TunelabError(
            f"y_score must be class probabilities of shape (n, k) with k >= 2; got shape "
            f"{y_score.shape}. For a binary problem with positive-class probabilities p, pass "
            f"np.column_stack([1 - p, p])."
        )
    if y_true.ndim != 1:
        raise TunelabError(
            f"y_true must be class indices of shape (n,); got shape {y_true.shape}. "
            f"If it is one-hot, pass y_true.argmax(axis=1)."
        )
    if len(y_true) != len(y_score):
        raise TunelabError(
            f"y_true and y_score must have one row per sample; got {len(y_true)} labels and "
            f"{len(y_score)} score rows. Predict on exactly the samples you score."
        )
    if len(y_true) == 0:
        raise TunelabError("metrics need at least one sample; got empty arrays. Check the split.")
    if not np.issubdtype(y_score.dtype, np.floating):
        if not np.issubdtype(y_score.dtype, np.number):
            raise TunelabError(f"y_score must be numeric; got dtype {y_score.dtype}.")
        y_score = y_score.astype(np.float64)
    return _as_labels(y_true, y_score.shape[1]), y_score


def _as_float_2d(values: object, name: str) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TunelabError(f"{name} must be numeric; could not convert it ({err}).") from None
    if array.ndim not in (1, 2):
        raise TunelabError(
            f"{name} must have shape (n,) or (n, d); got shape {array.shape}. "
            f"Flatten extra dimensions into outputs first."
        )
    return array[:, None] if array.ndim == 1 else array


def _check_regression(y_true: object, y_pred: object) -> tuple[np.ndarray, np.ndarray]:
    """Validated ``(y_true, y_pred)``, both float64 of shape ``(n, d)``, or a TunelabError.

    ``(n,)`` and ``(n, 1)`` are the same thing (a model's single output column against a 1-D target).
    """
    y_true_2d = _as_float_2d(y_true, "y_true")
    y_pred_2d = _as_float_2d(y_pred, "y_pred")
    if y_true_2d.shape != y_pred_2d.shape:
        raise TunelabError(
            f"y_true and y_pred must have the same shape; got {np.shape(y_true)} and "
            f"{np.shape(y_pred)}. Predict one value per target (and per output)."
        )
    if len(y_true_2d) == 0:
        raise TunelabError("metrics need at least one sample; got empty arrays. Check the split.")
    if not np.isfinite(y_true_2d).all():
        raise TunelabError(
            "y_true contains NaN or infinite targets; drop or impute them before evaluating."
        )
    return y_true_2d, y_pred_2d
