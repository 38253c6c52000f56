"""The registry of metrics: a pure function by name, with its direction and, optionally, its
vectorised bootstrap form.

The metrics themselves live in ``_classification.py``, ``_regression.py`` and ``_calibration.py``
(ece and brier); input is checked once, at the door (``_checks.py``). Classification metrics take
``(y_true, y_score)``: class indices ``0..k-1``, shape ``(n,)``, and class probabilities, shape
``(n, k)`` with ``k >= 2`` (binary is ``k = 2``). Label metrics use the argmax of ``y_score``. Macro
averages run over the classes present in the labels or the predictions, as scikit-learn's default
``labels`` (``unique_labels(y_true, y_pred)``) with ``zero_division=0``: a class that is neither a
label nor a prediction (a column of ``y_score`` no sample is, nor is predicted to be) is left out
rather than counted as 0.

Regression metrics take ``(y_true, y_pred)`` of shape ``(n,)`` or ``(n, d)``; several outputs are
averaged uniformly, as scikit-learn does by default.

Every metric is tested against scikit-learn as the oracle; scikit-learn is not imported here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from tunelab.errors import SpecError, TunelabError, closest, did_you_mean
from tunelab.evaluate._builtin_metrics import register_builtins
from tunelab.evaluate._checks import _check_classification, _check_regression
from tunelab.evaluate._classification import (
    accuracy,
    balanced_accuracy,
    confusion_matrix,
    f1,
    log_loss,
    per_class_report,
    precision,
    recall,
    roc_auc,
    top_k_accuracy,
)
from tunelab.evaluate._features import Feature, Vectorised, resolve
from tunelab.evaluate._regression import mae, mse, r2, rmse
from tunelab.plugins import METRICS as _REGISTRY

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
]

Task = Literal["classification", "regression"]

TASKS: tuple[Task, ...] = ("classification", "regression")


# --- the registry -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """A metric known by name.

    Attributes:
        name: The name used in specs, histories and reports, e.g. ``f1_macro``.
        fn: ``fn(y_true, y_score) -> float`` (classification) or ``fn(y_true, y_pred) -> float``.
        task: ``classification`` or ``regression``.
        greater_is_better: Whether a larger value is a better model.
        batch: Optional device form, ``batch(predictions, targets) -> tensor``: the metric's
            sum over one batch, computed on the device (no sync), from the predicted class
            indices (classification) or the predictions shaped like the targets (regression).
            Training logs ``train_<name>`` per epoch for the metrics that have one.
        finish: With ``batch``: ``finish(total, count) -> float``, the epoch's value from the
            sum of the batch sums and the number of target values.
        vectorised: Its vectorised bootstrap form (:class:`Vectorised`), or None: the bootstrap
            then computes ``fn`` resample by resample.
        proportion: Whether it is the share of the n samples with a property (accuracy): at
            exactly 0 or 1 its interval is the exact Clopper-Pearson one.
    """

    name: str
    fn: Callable[[object, object], float]
    task: Task
    greater_is_better: bool
    batch: Callable[[object, object], object] | None = None
    finish: Callable[[float, int], float] | None = None
    vectorised: Vectorised | None = None
    proportion: bool = False


def register_metric(
    name: str,
    fn: Callable[[object, object], float],
    *,
    task: Task,
    greater_is_better: bool,
    summary: str | None = None,
    batch: Callable[[object, object], object] | None = None,
    finish: Callable[[float, int], float] | None = None,
    vectorised: Vectorised | None = None,
    proportion: bool = False,
) -> Metric:
    """Register a pure metric function under ``name`` (in :data:`tunelab.plugins.METRICS`).

    Intervals come from resampling it: with ``vectorised`` (a :class:`Vectorised`: the features
    it needs and a function of their resample-weighted sums) for many resamples at once, else
    resample by resample. ``proportion=True`` marks a share of the samples (exact interval at 0
    or 1). ``batch`` and ``finish`` give its device form (see :class:`Metric`): training then
    logs ``train_<name>`` per epoch. Example: ``register_metric("mcc", mcc,
    task="classification", greater_is_better=True)``.
    """
    if (batch is None) != (finish is None):
        raise TunelabError(
            f"metric `{name}`: a device form needs both batch= and finish=; got only "
            f"{'batch' if finish is None else 'finish'}="
        )
    if task in TASKS:
        _check_form(name, vectorised, task)
    metric = Metric(name, fn, task, greater_is_better, batch, finish, vectorised, bool(proportion))
    _REGISTRY.register(
        name,
        None,
        fn,
        summary=summary or _summary(fn),
        task=task,
        greater_is_better=greater_is_better,
        metric=metric,
    )
    return metric


def _check_form(name: str, vectorised: object, task: Task) -> None:
    """A TunelabError unless ``vectorised`` is None or a form whose needs exist for ``task``."""
    if vectorised is None:
        return
    if not isinstance(vectorised, Vectorised) or not callable(vectorised.fn):
        raise TunelabError(
            f"metric {name!r}: vectorised must be a tunelab.evaluate.Vectorised(needs, fn); got "
            f"{type(vectorised).__name__}. Leave it out to compute intervals resample by resample."
        )
    if isinstance(vectorised.needs, str | Feature):
        raise TunelabError(
            f"metric {name!r}: Vectorised.needs must be a tuple of feature names and Features; "
            f"got {vectorised.needs!r}. Write needs=({vectorised.needs!r},)."
        )
    for need in vectorised.needs:
        resolve(need, task)  # an unknown shared name raises, with did-you-mean


def _summary(fn: Callable) -> str:
    inner = getattr(fn, "func", fn)  # a functools.partial
    doc = (inner.__doc__ or "").strip().split("\n\n")[0]
    extra = ", ".join(f"{k}={v}" for k, v in getattr(fn, "keywords", {}).items())
    return " ".join(doc.split()) + (f" ({extra})" if extra else "")


class _MetricTable(MutableMapping):
    """``{name: Metric}``: a view of the metric registry, plug-ins included.

    ``METRICS[name] = Metric(...)`` registers (as :func:`register_metric`); ``del`` removes.
    """

    def __setitem__(self, name: str, metric: Metric) -> None:
        if name in _REGISTRY:
            _REGISTRY.unregister(name)
        register_metric(
            name,
            metric.fn,
            task=metric.task,
            greater_is_better=metric.greater_is_better,
            batch=metric.batch,
            finish=metric.finish,
            vectorised=metric.vectorised,
            proportion=metric.proportion,
        )

    def __delitem__(self, name: str) -> None:
        if name not in _REGISTRY:
            raise KeyError(name)
        _REGISTRY.unregister(name)

    def __getitem__(self, name: str) -> Metric:
        if not isinstance(name, str) or name not in _REGISTRY:
            raise KeyError(name)
        return _REGISTRY.get(name).extra["metric"]

    def __iter__(self):
        return iter(_REGISTRY.names())

    def __len__(self) -> int:
        return len(_REGISTRY.names())


METRICS: Mapping[str, Metric] = _MetricTable()
register_builtins(register_metric)

DEFAULT_METRICS: dict[str, tuple[str, ...]] = {
    "classification": (
        "accuracy",
        "balanced_accuracy",
        "precision_macro",
        "recall_macro",
        "f1_macro",
        "roc_auc",
        "log_loss",
    ),
    "regression": ("mse", "rmse", "mae", "r2"),
}


def _names_for(task: str) -> str:
    return ", ".join(name for name, metric in METRICS.items() if metric.task == task)


def get_metric(name: str) -> Metric:
    """The registered metric called ``name``.

    Raises:
        SpecError: (a TunelabError) for an unknown name, suggesting the closest valid one.
    """
    try:
        return METRICS[name]
    except (KeyError, TypeError):
        raise SpecError(
            f"unknown metric `{name}`{did_you_mean(str(name), METRICS)}. "
            f"Use one of: {', '.join(METRICS)}."
        ) from None


def compute_metrics(
    task: str,
    y_true: object,
    y_score_or_pred: object,
    *,
    names: str | Iterable[str] | None = None,
) -> dict[str, float]:
    """Compute named metrics of one set of predictions.

    Inputs are checked once here. Predictions containing NaN or infinity (a diverged model) give NaN
    for every metric rather than an error, so the caller can record the failure and go on.

    Args:
        task: ``classification`` or ``regression``.
        y_true: Class indices (n,) or regression targets (n,) / (n, d).
        y_score_or_pred: Class probabilities (n, k) or regression predictions like ``y_true``.
        names: Metric names; ``DEFAULT_METRICS[task]`` when None.

    Returns:
        ``{name: value}`` in the order of ``names``, values as Python floats.

    Raises:
        TunelabError: For an unknown task or metric, a metric of the other task, or inputs of the
            wrong shape.

    Example:
        >>> compute_metrics("regression", [1.0, 2.0], [1.0, 4.0], names=["mae", "mse"])
        {'mae': 1.0, 'mse': 2.0}
    """
    metrics = _resolve_metrics(task, names)
    check = _check_classification if task == "classification" else _check_regression
    y_true, predictions = check(y_true, y_score_or_pred)
    if not np.isfinite(predictions).all():
        return {metric.name: float("nan") for metric in metrics}
    return {metric.name: float(metric.fn(y_true, predictions)) for metric in metrics}


def _resolve_metrics(task: str, names: str | Iterable[str] | None) -> list[Metric]:
    """The registered metrics called ``names`` (the task's defaults when None), all of ``task``."""
    if task not in TASKS:
        raise SpecError(
            f"unknown task `{task}`{did_you_mean(str(task), TASKS)}; "
            f"expected one of: {', '.join(TASKS)}."
        )
    if names is None:
        names = DEFAULT_METRICS[task]
    elif isinstance(names, str):
        names = (names,)
    metrics = [get_metric(name) for name in names]
    for metric in metrics:
        if metric.task != task:
            raise SpecError(
                f"metric `{metric.name}` is a {metric.task} metric, but the task is {task}. "
                f"Use {task} metrics: {_names_for(task)}."
            )
    return metrics


_PREFIXES = ("train_", "val_", "test_")


def greater_is_better(name: str) -> bool:
    """Whether a larger value of the metric ``name`` is better (the direction to optimise).

    Understands every registered metric and ``loss``, optionally prefixed with ``train_``, ``val_``
    or ``test_`` as in training histories.

    Example:
        >>> greater_is_better("val_accuracy"), greater_is_better("val_loss")
        (True, False)
    """
    prefix = next((p for p in _PREFIXES if name.startswith(p)), "")
    base = name[len(prefix) :]
    if base == "loss":
        return False
    if base in METRICS:
        return METRICS[base].greater_is_better
    known = ["loss", *METRICS]
    match = closest(base, known)
    hint = f" (did you mean `{prefix}{match}`?)" if match else ""
    raise SpecError(
        f"unknown metric `{name}`{hint}, so its direction is unknown. Use `loss` or one of: "
        f"{', '.join(METRICS)}, optionally prefixed with {', '.join(_PREFIXES)}."
    )
