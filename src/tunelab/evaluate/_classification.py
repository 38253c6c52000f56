"""Classification metrics as pure numpy functions, and their vectorised bootstrap forms.

They take ``(y_true, y_score)``: class indices ``0..k-1`` (n,) and class probabilities (n, k),
``k >= 2``. Label metrics use the argmax of ``y_score``; macro averages run over the classes present
in the labels or the predictions (scikit-learn's default ``labels`` with ``zero_division=0``).
The vectorised forms (``*_FORM``, :func:`averaged_form`, :func:`top_k_form`) compute the same
values from resample-weighted feature sums (see ``_features.py``); they are registered with their
metrics in ``_metrics.py``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from tunelab.errors import TunelabError, did_you_mean
from tunelab.evaluate._checks import _as_labels, _check_classification
from tunelab.evaluate._features import Block, Feature, Sums, Vectorised

Average = Literal["macro", "micro", "weighted"]
AVERAGES: tuple[Average, ...] = ("macro", "micro", "weighted")


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


# --- vectorised forms: the same metrics from resample-weighted feature sums ----------------------

_COUNTS = ("tp", "predicted", "support")


def _accuracy_rows(sums: Sums) -> np.ndarray:
    return sums["tp"].sum(axis=1) / sums["total"]


def _balanced_accuracy_rows(sums: Sums) -> np.ndarray:
    tp, support = sums["tp"], sums["support"]
    present = support > 0
    recall = _safe_divide(tp, support)
    return (recall * present).sum(axis=1) / present.sum(axis=1)


ACCURACY_FORM = Vectorised(("tp",), _accuracy_rows)
BALANCED_ACCURACY_FORM = Vectorised(("tp", "support"), _balanced_accuracy_rows)

# per family: (numerator, denominator) of the per-class ratio, from the weighted counts
_RATIOS = {
    "precision": lambda s: (s["tp"], s["predicted"]),
    "recall": lambda s: (s["tp"], s["support"]),
    "f1": lambda s: (2 * s["tp"], s["predicted"] + s["support"]),
}


def averaged_form(family: str, average: Average) -> Vectorised:
    """The vectorised form of ``precision``, ``recall`` or ``f1`` with ``average=``."""
    ratio = _RATIOS[family]

    def rows(sums: Sums) -> np.ndarray:
        numerator, denominator = ratio(sums)
        return _averaged_rows(numerator, denominator, sums["support"], sums["predicted"], average)

    return Vectorised(_COUNTS, rows)


def _mean_of(key: str):
    """The form's function for the weighted mean of the one-column feature ``key``."""

    def rows(sums: Sums) -> np.ndarray:
        return sums[key][:, 0] / sums["total"]

    return rows


LOG_LOSS_FORM = Vectorised((Feature("log_loss", _true_class_nll),), _mean_of("log_loss"))


def top_k_form(k: int) -> Vectorised:
    """The vectorised form of :func:`top_k_accuracy` with ``k`` (NaN for ``k >= classes``)."""
    key = f"top{k}"

    def hits(y: np.ndarray, score: np.ndarray) -> np.ndarray | None:
        return _top_k_hits(y, score, k) if k < score.shape[1] else None  # absent: NaN

    def rows(sums: Sums) -> np.ndarray:
        total = sums["total"]
        return sums[key][:, 0] / total if key in sums else np.full_like(total, np.nan)

    return Vectorised((Feature(key, hits, real=False),), rows)


def _auc_blocks(y: np.ndarray, score: np.ndarray) -> list[Block]:
    """One block per one-vs-rest problem (class 1 only when binary), each sorted once.

    Negative j counts into slot ``lo_j`` (positives scoring strictly below it), half into ``lo_j``
    and half into ``hi_j`` (at most as high) when it ties with positives. The block's ``running``
    order is the positives in ascending score order; for a resample,
    ``sum_m running[m] * slots[m]`` is the weighted number of (negative, lower positive) pairs
    with ties counted 1/2: the Mann-Whitney U of the negatives, in O(n) per resample.
    """
    blocks = []
    for c in [1] if score.shape[1] == 2 else range(score.shape[1]):
        positive, column = y == c, score[:, c]
        members = np.flatnonzero(positive)
        members = members[np.argsort(column[members], kind="stable")]
        ordered = column[members]
        lo = np.searchsorted(ordered, column, side="left")
        hi = np.searchsorted(ordered, column, side="right")
        half = np.where(positive, 0.0, 0.5)
        slots = np.concatenate([lo, hi])
        blocks.append(Block(slots, np.concatenate([half, half]), len(members) + 1, None, members))
    return blocks


def _auc_rows(sums: Sums) -> np.ndarray:
    """Mean one-vs-rest AUC: 1 - (weighted (negative, lower positive) pairs) / (W+ W-)."""
    total = sums["total"]
    auc = np.empty((len(total), len(sums["auc"])))
    for column, (slots, running) in enumerate(zip(sums["auc"], sums["auc.running"], strict=True)):
        pairs_below = np.einsum("rm,rm->r", running, slots)
        w_pos = running[:, -1]
        w_neg = total - w_pos
        defined = (w_pos > 0) & (w_neg > 0)
        auc[:, column] = np.where(
            defined, 1.0 - pairs_below / np.where(defined, w_pos * w_neg, 1.0), np.nan
        )
    return auc.mean(axis=1)


ROC_AUC_FORM = Vectorised((Feature("auc", _auc_blocks, real=False),), _auc_rows)
