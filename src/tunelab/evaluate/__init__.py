"""Evaluate predictions: metrics as pure numpy functions, registered by name.

Classification metrics are ``fn(y_true, y_score)`` with class indices (n,) and class probabilities
(n, k); regression metrics are ``fn(y_true, y_pred)`` with arrays (n,) or (n, d). Use
:func:`compute_metrics` to compute several at once by name. A metric may register a vectorised
bootstrap form with it (:class:`Vectorised`, built from :class:`Feature` sums): its intervals are
then computed for many resamples at once.
"""

from __future__ import annotations

from tunelab.evaluate._bbc import BBCResult, bbc_cv
from tunelab.evaluate._bootstrap import CI, bootstrap_ci
from tunelab.evaluate._calibration import (
    apply_temperature,
    brier_score,
    expected_calibration_error,
    fit_temperature,
    reliability_diagram,
)
from tunelab.evaluate._features import Block, Feature, Vectorised
from tunelab.evaluate._metrics import (
    DEFAULT_METRICS,
    METRICS,
    Metric,
    accuracy,
    balanced_accuracy,
    compute_metrics,
    confusion_matrix,
    f1,
    get_metric,
    greater_is_better,
    log_loss,
    mae,
    mse,
    per_class_report,
    precision,
    r2,
    recall,
    register_metric,
    rmse,
    roc_auc,
    top_k_accuracy,
)
from tunelab.evaluate._stats import (
    DiffResult,
    McNemarResult,
    TTestResult,
    corrected_resampled_ttest,
    mcnemar_exact,
    paired_bootstrap_diff,
    verdict,
)

__all__ = [
    "DEFAULT_METRICS",
    "METRICS",
    "register_metric",
    "Metric",
    "accuracy",
    "balanced_accuracy",
    "compute_metrics",
    "confusion_matrix",
    "f1",
    "get_metric",
    "greater_is_better",
    "log_loss",
    "mae",
    "mse",
    "per_class_report",
    "precision",
    "r2",
    "recall",
    "rmse",
    "roc_auc",
    "top_k_accuracy",
    "BBCResult",
    "bbc_cv",
    "CI",
    "bootstrap_ci",
    "Block",
    "Feature",
    "Vectorised",
    "apply_temperature",
    "brier_score",
    "expected_calibration_error",
    "fit_temperature",
    "reliability_diagram",
    "DiffResult",
    "McNemarResult",
    "TTestResult",
    "corrected_resampled_ttest",
    "mcnemar_exact",
    "paired_bootstrap_diff",
    "verdict",
]
