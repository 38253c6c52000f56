"""The winner's curse, corrected: bootstrap bias-corrected cross-validation (BBC-CV).

The best of N configurations, scored on the same validation rows, is optimistic: part of its
lead is luck on those rows, and the more configurations, the more luck. BBC-CV (Tsamardinos,
Greasidou and Borboudakis 2018, "Bootstrapping the out-of-sample predictions for efficient and
accurate cross-validation", Machine Learning 107) estimates what the *selection* achieves
without training anything more. It pools the out-of-sample predictions of every configuration
(the validation part of a holdout split, or the out-of-fold predictions of cross-validation:
the same rows for every configuration) and, for each bootstrap sample of the rows, selects the
configuration that is best on the sampled (in-bag) rows and scores it on the rows the sample
left out (out-of-bag). The mean of those out-of-bag scores is the estimate; their percentiles
are its interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from tunelab.errors import TunelabError
from tunelab.evaluate._bootstrap import _plan, _resample_weights
from tunelab.evaluate._intervals import _check_options
from tunelab.evaluate._metrics import get_metric

__all__ = ["BBCResult", "bbc_cv"]


@dataclass(frozen=True)
class BBCResult:
    """A bias-corrected estimate of the selected configuration's performance.

    Attributes:
        metric: the metric's name.
        estimate: the mean out-of-bag score of the configuration selected in-bag.
        low, high: percentile interval of the out-of-bag scores at ``level``.
        level: the interval's level.
        apparent: the best configuration's score on all rows (the optimistic number).
        selected: the index of that configuration.
        n_configs, n_samples: the shape of the pooled predictions.
        n_resamples: bootstrap samples with a defined out-of-bag score.
        selected_share: how often the apparent best was also the in-bag selection.
    """

    metric: str
    estimate: float
    low: float
    high: float
    level: float
    apparent: float
    selected: int
    n_configs: int
    n_samples: int
    n_resamples: int
    selected_share: float

    def to_json(self) -> dict:
        return asdict(self)


def bbc_cv(
    task: str,
    y_true: object,
    predictions: Sequence[np.ndarray] | np.ndarray,
    *,
    metric: str,
    n_resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> BBCResult:
    """BBC-CV: the winner's-curse-corrected score of selecting the best of ``predictions``.

    Args:
        task: ``classification`` or ``regression``.
        y_true: the targets of the pooled rows, shape ``(n,)`` (or ``(n, d)`` for regression).
        predictions: one array per configuration, each with one row per sample in the order of
            ``y_true``: class probabilities ``(n, k)`` or regression outputs ``(n,)``/``(n, d)``;
            or one array ``(C, n, ...)``.
        metric: a registered metric name (``accuracy``, ``log_loss``, ``rmse``, ...): both
            the selection and the score use it, in its own direction.
        n_resamples: bootstrap samples of the rows.
        level: the percentile interval's level.
        seed: seeds the bootstrap.

    Ties in-bag go to the configuration listed first. Out-of-bag sets are about 37% of the
    rows; a sample whose out-of-bag score is undefined (e.g. AUC with one class left out) is
    skipped.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> y = rng.integers(0, 2, 200)
        >>> noise = rng.dirichlet([1, 1], size=(15, 200))  # 15 configurations, pure noise
        >>> r = bbc_cv("classification", y, noise, metric="accuracy")
        >>> print(f"best of 15: {r.apparent:.3f}; BBC-CV {r.estimate:.3f} [{r.low:.3f}, {r.high:.3f}]")
        best of 15: 0.550; BBC-CV 0.480 [0.384, 0.571]
    """
    spec = get_metric(metric)
    if spec.task != task:
        raise TunelabError(
            f"bbc_cv: {metric} is a {spec.task} metric, but the task is {task}; "
            "choose a metric of the task"
        )
    _check_options(n_resamples, level)
    configs = [np.asarray(p) for p in predictions]
    if len(configs) < 1:
        raise TunelabError("bbc_cv: expected predictions of at least one configuration; got none")
    y = np.asarray(y_true)
    shapes = {p.shape for p in configs}
    if len(shapes) != 1 or next(iter(shapes))[0] != len(y):
        raise TunelabError(
            f"bbc_cv: expected every configuration's predictions to have one row per sample "
            f"({len(y)} rows) and the same shape; got shapes {sorted(shapes)}. Pool the same "
            "rows, in the same order, for every configuration"
        )
    n, sign = len(y), 1.0 if spec.greater_is_better else -1.0
    plans = [_plan(task, y, p, [spec]) for p in configs]
    apparent = np.array([p.values(np.ones((n, 1), plans[0].dtype))[metric][0] for p in plans])
    best = int(np.nanargmax(sign * apparent)) if np.isfinite(apparent).any() else 0

    rng = np.random.default_rng(seed)
    oob_scores, picks = _out_of_bag(plans, metric, sign, n_resamples, rng)
    defined = np.isfinite(oob_scores)
    kept = oob_scores[defined]
    tail = (1 - level) / 2 * 100
    estimate, low, high = np.nan, np.nan, np.nan
    if len(kept):
        estimate, (low, high) = kept.mean(), np.percentile(kept, [tail, 100 - tail])
    return BBCResult(
        metric=metric,
        estimate=float(estimate),
        low=float(low),
        high=float(high),
        level=level,
        apparent=float(apparent[best]),
        selected=best,
        n_configs=len(configs),
        n_samples=n,
        n_resamples=int(defined.sum()),
        selected_share=float(np.mean(picks == best)) if len(picks) else float("nan"),
    )


def _out_of_bag(
    plans: list, metric: str, sign: float, n_resamples: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Per resample: the out-of-bag score of the in-bag best configuration, and its index."""
    n = len(plans[0].y)
    scores, chosen = [], []
    for weights in _resample_weights(rng, n, n_resamples, None, plans[0].dtype):
        out_of_bag = (weights == 0).astype(weights.dtype)
        inbag = np.stack([p.values(weights)[metric] for p in plans])  # (C, r)
        oob = np.stack([p.values(out_of_bag)[metric] for p in plans])  # (C, r)
        pick = np.argmax(np.where(np.isfinite(inbag), sign * inbag, -np.inf), axis=0)
        scores.append(oob[pick, np.arange(len(pick))])
        chosen.append(pick)
    return np.concatenate(scores), np.concatenate(chosen)
