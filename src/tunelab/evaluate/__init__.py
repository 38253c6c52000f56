"""Evaluate predictions: metrics as pure numpy functions, registered by name.

Classification metrics are ``fn(y_true, y_score)`` with class indices (n,) and class probabilities
(n, k); regression metrics are ``fn(y_true, y_pred)`` with arrays (n,) or (n, d). Use
:func:`compute_metrics` to compute several at once by name. A metric may register a vectorised
bootstrap form with it (:class:`Vectorised`, built from :class:`Feature` sums): its intervals are
then computed for many resamples at once.

Each name is imported when first used (numpy and scipy load then, not with ``import tunelab``).
Also importable, as plumbing outside ``__all__``: ``DEFAULT_METRICS``, ``greater_is_better``
(``get_metric(name).greater_is_better``) and ``verdict`` (a test result as a sentence).
"""

from __future__ import annotations

from tunelab._lazy import lazy_exports

_EXPORTS = {
    # metrics (pure functions) and their registry
    "accuracy": "_metrics",
    "balanced_accuracy": "_metrics",
    "precision": "_metrics",
    "recall": "_metrics",
    "f1": "_metrics",
    "roc_auc": "_metrics",
    "log_loss": "_metrics",
    "top_k_accuracy": "_metrics",
    "confusion_matrix": "_metrics",
    "per_class_report": "_metrics",
    "mse": "_metrics",
    "rmse": "_metrics",
    "mae": "_metrics",
    "r2": "_metrics",
    "brier_score": "_calibration",
    "expected_calibration_error": "_calibration",
    "compute_metrics": "_metrics",
    "register_metric": "_metrics",
    "Vectorised": "_features",
    "Feature": "_features",
    "Block": "_features",
    "get_metric": "_metrics",
    "Metric": "_metrics",
    "METRICS": "_metrics",
    # intervals and tests
    "bootstrap_ci": "_bootstrap",
    "CI": "_bootstrap",
    "paired_bootstrap_diff": "_stats",
    "DiffResult": "_stats",
    "mcnemar_exact": "_stats",
    "McNemarResult": "_stats",
    "corrected_resampled_ttest": "_stats",
    "TTestResult": "_stats",
    "bbc_cv": "_bbc",
    "BBCResult": "_bbc",
    # calibration
    "fit_temperature": "_calibration",
    "apply_temperature": "_calibration",
    "reliability_diagram": "_calibration",
}
__all__ = list(_EXPORTS)
_PLUMBING = {"DEFAULT_METRICS": "_metrics", "greater_is_better": "_metrics", "verdict": "_stats"}

_getattr, __dir__ = lazy_exports(__name__, _EXPORTS | _PLUMBING)


def __getattr__(name: str) -> object:
    if name in _EXPORTS or name in _PLUMBING:
        # the calibration metrics (ece, brier) register themselves: have every metric in
        # METRICS before any of them is used
        import tunelab.evaluate._calibration  # noqa: F401
    return _getattr(name)
