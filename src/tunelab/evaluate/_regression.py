"""Regression metrics as pure numpy functions, and their vectorised bootstrap forms.

They take ``(y_true, y_pred)`` of shape ``(n,)`` or ``(n, d)``; several outputs are averaged
uniformly, as scikit-learn does by default.
"""

from __future__ import annotations

import numpy as np

from tunelab.evaluate._checks import _check_regression
from tunelab.evaluate._features import Sums, Vectorised


def mse(y_true: object, y_pred: object) -> float:
    """Mean squared error (averaged over samples and outputs)."""
    y_true, y_pred = _check_regression(y_true, y_pred)
    return float(np.mean((y_true - y_pred) ** 2))


def rmse(y_true: object, y_pred: object) -> float:
    """Root mean squared error: the root of each output's MSE, averaged over outputs (as sklearn)."""
    y_true, y_pred = _check_regression(y_true, y_pred)
    return float(np.mean(np.sqrt(np.mean((y_true - y_pred) ** 2, axis=0))))


def mae(y_true: object, y_pred: object) -> float:
    """Mean absolute error (averaged over samples and outputs)."""
    y_true, y_pred = _check_regression(y_true, y_pred)
    return float(np.mean(np.abs(y_true - y_pred)))


def r2(y_true: object, y_pred: object) -> float:
    """Coefficient of determination, averaged over outputs.

    For an output whose target is constant, R² is 1.0 when predicted exactly and 0.0 otherwise
    (sklearn's ``force_finite=True``). NaN with fewer than two samples.
    """
    y_true, y_pred = _check_regression(y_true, y_pred)
    if len(y_true) < 2:
        return float("nan")
    residual = np.sum((y_true - y_pred) ** 2, axis=0)
    total = np.sum((y_true - y_true.mean(axis=0)) ** 2, axis=0)
    varies = total > 0
    constant_target = np.where(residual == 0, 1.0, 0.0)
    per_output = np.where(varies, 1 - residual / np.where(varies, total, 1.0), constant_target)
    return float(np.mean(per_output))


# --- vectorised forms: the same metrics from resample-weighted feature sums ----------------------


def _mse_rows(sums: Sums) -> np.ndarray:
    return (sums["se"] / sums["total"][:, None]).mean(axis=1)


def _rmse_rows(sums: Sums) -> np.ndarray:
    return np.sqrt(sums["se"] / sums["total"][:, None]).mean(axis=1)


def _mae_rows(sums: Sums) -> np.ndarray:
    return (sums["ae"] / sums["total"][:, None]).mean(axis=1)


def _r2_rows(sums: Sums) -> np.ndarray:
    """R² per output from the weighted sums of squared errors and of centred targets."""
    total = sums["total"][:, None]
    residual = sums["se"]
    total_ss = sums["y2"] - sums["y"] ** 2 / total
    varies = total_ss > 64 * np.finfo(np.float64).eps * sums["y2"]
    per_output = np.where(
        varies,
        1 - residual / np.where(varies, total_ss, 1.0),
        np.where(residual == 0, 1.0, 0.0),
    )
    return np.where(total[:, 0] >= 2, per_output.mean(axis=1), np.nan)


MSE_FORM = Vectorised(("se",), _mse_rows)
RMSE_FORM = Vectorised(("se",), _rmse_rows)
MAE_FORM = Vectorised(("ae",), _mae_rows)
R2_FORM = Vectorised(("se", "y", "y2"), _r2_rows)
