"""Metrics as pure numpy functions, and the registry that names them.

Classification metrics take ``(y_true, y_score)``: ``y_true`` holds class indices ``0..k-1``, shape
``(n,)``, and ``y_score`` holds class probabilities, shape ``(n, k)`` with ``k >= 2`` (binary is
``k = 2``). Label metrics use the argmax of ``y_score``. Macro averages run over the classes present
in the labels or the predictions, as scikit-learn's default ``labels`` (``unique_labels(y_true,
y_pred)``) with ``zero_division=0``: a class that is neither a label nor a prediction (a column of
``y_score`` no sample is, nor is predicted to be) is left out rather than counted as 0.

Regression metrics take ``(y_true, y_pred)`` of shape ``(n,)`` or ``(n, d)``; several outputs are
averaged uniformly, as scikit-learn does by default.

Every metric is tested against scikit-learn as the oracle; scikit-learn is not imported here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from functools import partial
from typing import Literal

import numpy as np

from tunelab.errors import SpecError, TunelabError, closest, did_you_mean
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
Average = Literal["macro", "micro", "weighted"]

TASKS: tuple[Task, ...] = ("classification", "regression")
AVERAGES: tuple[Average, ...] = ("macro", "micro", "weighted")


# --- checking input, once, at the door ----------------------------------------------------------


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


# --- classification -----------------------------------------------------------------------------


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator`` with 0 where the denominator is 0 (scikit-learn's zero_division=0)."""
    out = np.zeros(np.shape(numerator), dtype=np.float64)
    return np.divide(numerator, denominator, out=out, where=denominator > 0)


def _counts(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Confusion counts (k, k): rows are true classes, columns predicted classes."""
    flat = np.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes).astype(np.int64, copy=False)


def _label_counts(y_true: object, y_score: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per class: true positives, predicted count and true count (support), from argmax labels."""
    y_true, y_score = _check_classification(y_true, y_score)
    counts = _counts(y_true, y_score.argmax(axis=1), y_score.shape[1])
    return np.diag(counts), counts.sum(axis=0), counts.sum(axis=1)


def _averaged(
    numerator: np.ndarray,
    denominator: np.ndarray,
    support: np.ndarray,
    predicted: np.ndarray,
    average: str,
) -> float:
    """Average the per-class ratios ``numerator / denominator`` as scikit-learn's ``average=``.

    ``support`` (true count) and ``predicted`` (predicted count) per class say which classes are
    present: ``macro`` averages over the classes with either count above 0, as scikit-learn does.
    """
    rows = (a[None] for a in (numerator, denominator, support, predicted))
    return float(_averaged_rows(*rows, average)[0])


def _averaged_rows(
    numerator: np.ndarray,
    denominator: np.ndarray,
    support: np.ndarray,
    predicted: np.ndarray,
    average: str,
) -> np.ndarray:
    """:func:`_averaged` of each row of per-class counts (r, k), e.g. one row per resample."""
    if average == "micro":
        return _safe_divide(numerator.sum(axis=-1), denominator.sum(axis=-1))
    per_class = _safe_divide(numerator, denominator)
    if average == "macro":
        present = (support > 0) | (predicted > 0)  # never empty: every sample has a label
        return (per_class * present).sum(axis=-1) / present.sum(axis=-1)
    if average == "weighted":
        return np.einsum("rk,rk->r", per_class, support) / support.sum(axis=-1)
    raise TunelabError(
        f"average must be one of {', '.join(AVERAGES)}; got `{average}`"
        f"{did_you_mean(average, AVERAGES)}."
    )


def accuracy(y_true: object, y_score: object) -> float:
    """Fraction of samples whose highest-scored class is the true class.

    Example:
        >>> accuracy([0, 1, 1], [[0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
        0.6666666666666666
    """
    y_true, y_score = _check_classification(y_true, y_score)
    return float(np.mean(y_score.argmax(axis=1) == y_true))


def balanced_accuracy(y_true: object, y_score: object) -> float:
    """Mean recall over the classes present in ``y_true`` (absent classes are skipped, as sklearn)."""
    true_positives, _, support = _label_counts(y_true, y_score)
    present = support > 0
    return float(np.mean(true_positives[present] / support[present]))


def precision(y_true: object, y_score: object, *, average: Average = "macro") -> float:
    """Precision of the argmax labels; a class never predicted has precision 0.

    Args:
        y_true: Class indices, shape (n,).
        y_score: Class probabilities, shape (n, k).
        average: ``macro`` (mean over the classes present in ``y_true`` or the predictions),
            ``micro`` (pooled counts) or ``weighted`` (per-class values weighted by the number of
            true samples), as scikit-learn's ``average=``.
    """
    true_positives, predicted, support = _label_counts(y_true, y_score)
    return _averaged(true_positives, predicted, support, predicted, average)


def recall(y_true: object, y_score: object, *, average: Average = "macro") -> float:
    """Recall of the argmax labels; a predicted class with no true samples has recall 0.

    Args:
        y_true: Class indices, shape (n,).
        y_score: Class probabilities, shape (n, k).
        average: ``macro``, ``micro`` or ``weighted``, as in :func:`precision`.
    """
    true_positives, predicted, support = _label_counts(y_true, y_score)
    return _averaged(true_positives, support, support, predicted, average)


def f1(y_true: object, y_score: object, *, average: Average = "macro") -> float:
    """F1 score (harmonic mean of precision and recall) of the argmax labels.

    Args:
        y_true: Class indices, shape (n,).
        y_score: Class probabilities, shape (n, k).
        average: ``macro``, ``micro`` or ``weighted``, as in :func:`precision`.
    """
    true_positives, predicted, support = _label_counts(y_true, y_score)
    return _averaged(2 * true_positives, predicted + support, support, predicted, average)


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of each column of ``values`` (n, m); tied values share their average rank."""
    n = len(values)
    order = np.argsort(values, axis=0, kind="stable")
    ordered = np.take_along_axis(values, order, axis=0)
    position = np.broadcast_to(np.arange(n)[:, None], values.shape)
    starts_tie = np.ones(values.shape, dtype=bool)
    starts_tie[1:] = ordered[1:] != ordered[:-1]
    ends_tie = np.ones(values.shape, dtype=bool)
    ends_tie[:-1] = starts_tie[1:]
    first = np.maximum.accumulate(np.where(starts_tie, position, 0), axis=0)
    last = np.minimum.accumulate(np.where(ends_tie, position, n - 1)[::-1], axis=0)[::-1]
    ranks = np.empty(values.shape, dtype=np.float64)
    np.put_along_axis(ranks, order, (first + last) / 2 + 1, axis=0)
    return ranks


def _auc_per_column(positive: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Mann-Whitney AUC of each column of ``scores`` (n, m) for the boolean ``positive`` (n, m).

    AUC = P(score of a positive > score of a negative) + P(tie) / 2, computed from the rank sum of
    the positives. NaN for a column with no positives or no negatives.
    """
    n_pos = positive.sum(axis=0).astype(np.float64)
    n_neg = len(positive) - n_pos
    rank_sum = np.where(positive, _average_ranks(scores), 0.0).sum(axis=0)
    defined = (n_pos > 0) & (n_neg > 0)
    auc = (rank_sum - n_pos * (n_pos + 1) / 2) / np.where(defined, n_pos * n_neg, 1.0)
    return np.where(defined, auc, np.nan)


def roc_auc(y_true: object, y_score: object) -> float:
    """Area under the ROC curve, from ranks (ties get average ranks).

    Binary (k = 2): the AUC of column 1. Multiclass: the unweighted mean of the one-vs-rest AUCs of
    all k classes (sklearn's ``multi_class="ovr", average="macro"``). NaN when it is undefined: a
    class without positive (or without negative) samples.
    """
    y_true, y_score = _check_classification(y_true, y_score)
    if y_score.shape[1] == 2:
        return float(_auc_per_column(y_true[:, None] == 1, y_score[:, 1:])[0])
    positive = y_true[:, None] == np.arange(y_score.shape[1])
    return float(np.mean(_auc_per_column(positive, y_score)))


def log_loss(y_true: object, y_score: object) -> float:
    """Mean negative log-probability of the true class (cross-entropy), in nats.

    Probabilities are clipped to ``[eps, 1 - eps]`` (eps of their float dtype), as sklearn does, so a
    confident wrong answer costs about 36 nats (float64) instead of infinity.
    """
    y_true, y_score = _check_classification(y_true, y_score)
    return float(np.mean(_true_class_nll(y_true, y_score)))


def _true_class_nll(y_true: np.ndarray, y_score: np.ndarray) -> np.ndarray:
    """Per-sample ``-log p(true class)`` (n,), float64, clipped as in :func:`log_loss`."""
    eps = np.finfo(y_score.dtype).eps
    p_true = np.clip(y_score[np.arange(len(y_true)), y_true], eps, 1 - eps)
    return -np.log(p_true.astype(np.float64))


def top_k_accuracy(y_true: object, y_score: object, k: int) -> float:
    """Fraction of samples whose true class is among the ``k`` highest scores.

    Ties are broken as sklearn's ``top_k_accuracy_score`` does (the higher class index first). NaN
    when ``k`` is at least the number of classes, where the score would be 1 by construction.
    """
    y_true, y_score = _check_classification(y_true, y_score)
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise TunelabError(f"k must be a positive integer; got {k!r}.")
    if k >= y_score.shape[1]:
        return float("nan")
    return float(np.mean(_top_k_hits(y_true, y_score, k)))


def _top_k_hits(y_true: np.ndarray, y_score: np.ndarray, k: int) -> np.ndarray:
    """Per sample (n,) bool: the true class is among the ``k`` highest scores (sklearn's ties)."""
    top = np.argsort(y_score, axis=1, kind="stable")[:, ::-1][:, :k]
    return (top == y_true[:, None]).any(axis=1)


def confusion_matrix(y_true: object, y_pred_labels: object, num_classes: int) -> np.ndarray:
    """Counts of (true class, predicted class) pairs, shape (k, k), int64.

    Rows are true classes and columns predicted classes, as in sklearn.

    Example:
        >>> confusion_matrix([0, 1, 1], [0, 0, 1], 2).tolist()
        [[1, 0], [1, 1]]
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int | np.integer):
        raise TunelabError(f"num_classes must be an integer >= 1; got {num_classes!r}.")
    if num_classes < 1:
        raise TunelabError(f"num_classes must be an integer >= 1; got {num_classes}.")
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred_labels)
    if y_true.ndim != 1 or y_true.shape != y_pred.shape:
        raise TunelabError(
            f"y_true and y_pred_labels must be class indices of the same shape (n,); got "
            f"{y_true.shape} and {y_pred.shape}. Pass y_score.argmax(axis=1) as the labels."
        )
    if len(y_true) == 0:
        return np.zeros((num_classes, num_classes), dtype=np.int64)
    num_classes = int(num_classes)
    return _counts(_as_labels(y_true, num_classes), _as_labels(y_pred, num_classes), num_classes)


def per_class_report(y_true: object, y_score: object) -> dict[str, list[float] | list[int]]:
    """Precision, recall, F1 and support of each class (index ``c`` of each list is class ``c``).

    Returns:
        ``{"precision": [...], "recall": [...], "f1": [...], "support": [...]}``, each of length k;
        precision, recall and F1 are 0 where undefined (sklearn's ``zero_division=0``).
    """
    true_positives, predicted, support = _label_counts(y_true, y_score)
    return {
        "precision": _safe_divide(true_positives, predicted).tolist(),
        "recall": _safe_divide(true_positives, support).tolist(),
        "f1": _safe_divide(2 * true_positives, predicted + support).tolist(),
        "support": support.tolist(),
    }


# --- regression ---------------------------------------------------------------------------------


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
    """

    name: str
    fn: Callable[[object, object], float]
    task: Task
    greater_is_better: bool
    batch: Callable[[object, object], object] | None = None
    finish: Callable[[float, int], float] | None = None


def register_metric(
    name: str,
    fn: Callable[[object, object], float],
    *,
    task: Task,
    greater_is_better: bool,
    summary: str | None = None,
    batch: Callable[[object, object], object] | None = None,
    finish: Callable[[float, int], float] | None = None,
) -> Metric:
    """Register a pure metric function under ``name`` (in :data:`tunelab.plugins.METRICS`).

    Intervals come from resampling it (vectorised for the built-ins, resample by resample for
    the others). Example: ``register_metric("mcc", mcc, task="classification",
    greater_is_better=True)``. ``batch`` and ``finish`` give its device form (see :class:`Metric`).
    """
    if (batch is None) != (finish is None):
        raise TunelabError(
            f"metric `{name}`: a device form needs both batch= and finish=; got only "
            f"{'batch' if finish is None else 'finish'}="
        )
    metric = Metric(name, fn, task, greater_is_better, batch, finish)
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


def _register_builtins() -> None:
    classification: list[tuple[str, Callable[[object, object], float], bool]] = [
        ("accuracy", accuracy, True),
        ("balanced_accuracy", balanced_accuracy, True),
    ]
    for name, fn in (("precision", precision), ("recall", recall), ("f1", f1)):
        for average in AVERAGES:
            classification.append((f"{name}_{average}", partial(fn, average=average), True))
    classification += [("roc_auc", roc_auc, True), ("log_loss", log_loss, False)]
    for k in (2, 3, 5):
        classification.append((f"top{k}_accuracy", partial(top_k_accuracy, k=k), True))
    regression = [("mse", mse, False), ("rmse", rmse, False), ("mae", mae, False), ("r2", r2, True)]
    for n, fn, up in classification:
        forms = _DEVICE_FORMS.get(n, {})
        register_metric(n, fn, task="classification", greater_is_better=up, **forms)
    for n, fn, up in regression:
        forms = _DEVICE_FORMS.get(n, {})
        register_metric(n, fn, task="regression", greater_is_better=up, **forms)


METRICS: Mapping[str, Metric] = _MetricTable()
_register_builtins()

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
