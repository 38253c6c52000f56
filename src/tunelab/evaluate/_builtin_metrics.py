"""The built-in metrics, each registered with its vectorised bootstrap form and, for accuracy,
mse, rmse and mae, its device form (``fit`` logs ``train_<name>`` for those)."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

from tunelab.evaluate._classification import (
    ACCURACY_FORM,
    AVERAGES,
    BALANCED_ACCURACY_FORM,
    LOG_LOSS_FORM,
    ROC_AUC_FORM,
    accuracy,
    averaged_form,
    balanced_accuracy,
    f1,
    log_loss,
    precision,
    recall,
    roc_auc,
    top_k_accuracy,
    top_k_form,
)
from tunelab.evaluate._regression import MAE_FORM, MSE_FORM, R2_FORM, RMSE_FORM, mae, mse, r2, rmse


def _mean(total: float, count: int) -> float:
    return total / count


def _root_mean(total: float, count: int) -> float:
    return math.sqrt(max(total, 0.0) / count)


def _hits(pred, y):
    return (pred == y).sum()


def _squared_error(pred, y):
    err = pred - y
    return (err * err).sum()


def _absolute_error(pred, y):
    return (pred - y).abs().sum()


# device forms: torch tensors in, one summed tensor out (tensor methods only: no torch import)
_DEVICE_FORMS: dict[str, dict[str, Callable]] = {
    "accuracy": {"batch": _hits, "finish": _mean},
    "mse": {"batch": _squared_error, "finish": _mean},
    "rmse": {"batch": _squared_error, "finish": _root_mean},
    "mae": {"batch": _absolute_error, "finish": _mean},
}


def register_builtins(register: Callable[..., object]) -> None:
    """Register tunelab's metrics with ``register`` (``_metrics.register_metric``; passed in, so
    that this module does not import the registry it fills)."""
    c, r = "classification", "regression"
    register(
        "accuracy",
        accuracy,
        task=c,
        greater_is_better=True,
        vectorised=ACCURACY_FORM,
        proportion=True,
        **_DEVICE_FORMS["accuracy"],
    )
    register(
        "balanced_accuracy",
        balanced_accuracy,
        task=c,
        greater_is_better=True,
        vectorised=BALANCED_ACCURACY_FORM,
    )
    for family, fn in (("precision", precision), ("recall", recall), ("f1", f1)):
        for average in AVERAGES:
            register(
                f"{family}_{average}",
                partial(fn, average=average),
                task=c,
                greater_is_better=True,
                vectorised=averaged_form(family, average),
                proportion=average == "micro",  # single-label micro averages are accuracy
            )
    register("roc_auc", roc_auc, task=c, greater_is_better=True, vectorised=ROC_AUC_FORM)
    register("log_loss", log_loss, task=c, greater_is_better=False, vectorised=LOG_LOSS_FORM)
    for k in (2, 3, 5):
        register(
            f"top{k}_accuracy",
            partial(top_k_accuracy, k=k),
            task=c,
            greater_is_better=True,
            vectorised=top_k_form(k),
            proportion=True,
        )
    register(
        "mse", mse, task=r, greater_is_better=False, vectorised=MSE_FORM, **_DEVICE_FORMS["mse"]
    )
    register(
        "rmse", rmse, task=r, greater_is_better=False, vectorised=RMSE_FORM, **_DEVICE_FORMS["rmse"]
    )
    register(
        "mae", mae, task=r, greater_is_better=False, vectorised=MAE_FORM, **_DEVICE_FORMS["mae"]
    )
    register("r2", r2, task=r, greater_is_better=True, vectorised=R2_FORM)
