"""Bootstrap confidence intervals for metrics, vectorised over resamples.

A resample is a column of multiplicities ``w`` (how often each sample was drawn; it sums to n),
drawn as an index matrix and counted. Every built-in metric of a weighted sample is computed for a
block of resamples at once, from one sparse-dense product ``F @ W``: ``F`` holds a few per-sample
features (built once), so a resample costs a few multiply-adds per sample, and nothing is sorted
per resample:

* label metrics (accuracy, balanced accuracy, precision / recall / F1, macro / micro / weighted)
  from weighted per-class counts (true positives, predicted, support);
* log loss, Brier score and top-k accuracy as weighted means of per-sample values; ECE from
  per-bin weighted gaps between confidence and correctness (the registered 15 equal-width bins);
* ROC-AUC (one-vs-rest) from ranks sorted once: a negative adds its weight to the slot "number of
  positives scoring below it" (half to each side of a tie), and the weighted Mann-Whitney count is
  the dot product of those slot weights with the running sum of the sorted positives' weights;
* regression metrics from weighted sums of squared and absolute errors and of centred targets.

A metric registered without a vectorised form is computed resample by resample (slower, same
result). Intervals are percentile or BCa (Efron's bias-corrected and accelerated). BCa's
acceleration comes from a jackknife: leave-one-out up to ``_LOO_MAX_N`` samples, above that a
grouped (delete-d) jackknife over ``_JACKKNIFE_GROUPS`` random groups of nearly equal size. The
acceleration ``a = sum(d**3) / (6 * sum(d**2) ** 1.5)`` with ``d = mean(theta_(g)) - theta_(g)`` is
unchanged by scaling ``d``, and a group's summed influence values have the same expected total
second and third moments as the samples themselves, so the grouped jackknife targets the same
``a``, but its noise is not small next to ``a``: its standard error is roughly ``0.3 / G`` to
``0.5 / G`` whatever n is (0.0015-0.0024 measured for G = 200 at n = 1,000, 10,000 and 100,000),
while ``a`` itself shrinks like ``skewness / (6 sqrt(n))`` (0.0007-0.002 at n = 10,000-100,000 for
log loss). Above a few thousand samples the estimated ``a`` is mostly noise; what keeps the
interval sound is that ``a`` is then tiny: an error of 0.002 in ``a`` moves each BCa quantile by
about ``0.002 * 1.96**2`` standard normal units, under 1% of the interval's half-width.

Proportions of the n samples (accuracy, top-k accuracy, and the micro averages, which equal
accuracy for single-label predictions) estimated at exactly 0 or 1 get the exact Clopper-Pearson
interval instead: there every resample gives the same value, and a bootstrap interval of a point
(``[1, 1]`` for 45 correct answers out of 45) would claim a certainty the data cannot give. Any
other interval that is a single point, or that excludes its own estimate (a statistic biased under
resampling, such as ECE), carries a ``warning``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats
from scipy.sparse import csr_array
from scipy.special import ndtr, ndtri

from tunelab.errors import TunelabError, did_you_mean
from tunelab.evaluate._calibration import _brier_per_sample, _top_label_bins
from tunelab.evaluate._metrics import (
    AVERAGES,
    Metric,
    _averaged_rows,
    _check_classification,
    _check_regression,
    _resolve_metrics,
    _safe_divide,
    _top_k_hits,
    _true_class_nll,
)

__all__ = ["CI", "bootstrap_ci"]

Method = Literal["percentile", "bca"]
METHODS: tuple[Method, ...] = ("percentile", "bca")

_CHUNK_WEIGHTS = 1 << 19  # resample weights held at once (rows x n); bounds memory, fits cache
_LOO_MAX_N = 1000  # BCa: leave-one-out jackknife up to this many samples, grouped above
_JACKKNIFE_GROUPS = 200
_MAX_NAN_FRACTION = 0.1  # more NaN resamples than this and the interval is NaN


@dataclass(frozen=True)
class CI:
    """A confidence interval for one metric.

    Attributes:
        low: Lower bound (NaN where it cannot be estimated).
        high: Upper bound.
        level: Coverage, e.g. 0.95.
        method: ``percentile`` or ``bca``, or ``clopper-pearson`` (exact binomial) for a
            proportion estimated at 0 or 1, where every resample is the same.
        n_resamples: Number of bootstrap resamples drawn.
        n_nan: Resamples where the metric was undefined (e.g. ROC-AUC with a class missing from
            the resample); they are left out of the quantiles.
        warning: Why the interval should not be read as it stands (a single point, or an interval
            that excludes the estimate); None when there is nothing to say.
    """

    low: float
    high: float
    level: float
    method: str
    n_resamples: int
    n_nan: int = 0
    warning: str | None = None

    def to_json(self) -> dict[str, float | int | str | None]:
        """``{"low", "high", "level", "method", "n_resamples"}`` (and ``"n_nan"`` when > 0,
        ``"warning"`` when there is one).

        NaN bounds become None, so the result is valid JSON.
        """
        out: dict[str, float | int | str | None] = {
            "low": None if np.isnan(self.low) else self.low,
            "high": None if np.isnan(self.high) else self.high,
            "level": self.level,
            "method": self.method,
            "n_resamples": self.n_resamples,
        }
        if self.n_nan:
            out["n_nan"] = self.n_nan
        if self.warning:
            out["warning"] = self.warning
        return out


# --- metrics of weighted samples, many weightings at once ---------------------------------------

# Weights are (n, r): one column of multiplicities per resample (or jackknife replicate).
Values = dict[str, np.ndarray]


class _Features:
    """Per-sample features in one sparse matrix; :meth:`sums` gives their weighted sums for many
    weightings at once (a sparse-dense product: a few multiply-adds per sample and resample).

    Indicator features (counts; halves for ties) are exact: every sum is a multiple of 1/2 below
    2**24, which float32 holds. A real-valued feature ``v`` is stored centred at the mean of its
    nonzero entries, next to the indicator of those entries:
    ``sum_i w_i v_i = mean(v) * sum_i w_i + sum_i w_i (v_i - mean(v))``, so float32 sums of the
    small centred part err by about 1e-8 of the result instead of 1e-6.
    """

    def __init__(self, n: int, dtype: type[np.floating]) -> None:
        self.n, self.dtype = n, dtype
        self.blocks: dict[str, slice] = {}
        self.means: dict[str, tuple[str, np.ndarray]] = {}  # real block -> (count block, means)
        self._entries: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._width = 0
        self.add_indicator("total", np.zeros(n, np.int64), np.ones(n), 1)

    def add_indicator(
        self,
        key: str,
        column: np.ndarray,
        value: np.ndarray,
        width: int,
        sample: np.ndarray | None = None,
    ) -> None:
        """``width`` features: entry e adds ``value[e]`` of sample ``sample[e]`` to feature
        ``column[e]``; ``sample`` is ``e % n`` by default (a sample may have several entries)."""
        if sample is None:
            sample = np.arange(len(column)) % self.n
        self.blocks[key] = slice(self._width, self._width + width)
        self._entries.append((self._width + column, sample, value))
        self._width += width

    def add_real(
        self,
        key: str,
        column: np.ndarray,
        value: np.ndarray,
        width: int,
        sample: np.ndarray | None = None,
    ) -> None:
        """Like :meth:`add_indicator` for real values, stored centred at each feature's mean."""
        count = np.bincount(column, minlength=width)
        means = np.bincount(column, weights=value, minlength=width) / np.maximum(count, 1)
        if width == 1:
            count_key = "total"
        else:
            count_key = f"{key}#count"
            self.add_indicator(count_key, column, np.ones(len(column)), width, sample)
        self.means[key] = (count_key, means)
        self.add_indicator(key, column, value - means[column], width, sample)

    def build(self) -> None:
        feature, sample, value = (np.concatenate(p) for p in zip(*self._entries, strict=True))
        keep = value != 0
        self.matrix = csr_array(
            (value[keep].astype(self.dtype), (feature[keep], sample[keep])),
            shape=(self._width, self.n),
        )
        del self._entries

    def sums(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        """``{key: (r, width)}``: weighted sums (float64) of each block, ``total`` among them."""
        sums = np.asarray(self.matrix @ weights).T.astype(np.float64)
        out = {key: sums[:, where] for key, where in self.blocks.items()}
        for key, (count_key, means) in self.means.items():
            out[key] = out[key] + out[count_key] * means
        out["total"] = out["total"][:, 0]
        return out


class _ClassificationPlan:
    """Per-sample features computed once; ``values(W)`` gives each metric for each column of W."""

    def __init__(self, y: np.ndarray, score: np.ndarray, metrics: list[Metric]) -> None:
        n, k = score.shape
        self.y, self.predictions, self.metrics = y, score, metrics
        self.dtype = _weight_dtype(n)
        names = {m.name for m in metrics}
        pred = score.argmax(axis=1)
        ones, zeros = np.ones(n), np.zeros(n, np.int64)
        f = _Features(n, self.dtype)
        f.add_indicator("tp", y, (pred == y).astype(np.float64), k)
        f.add_indicator("predicted", pred, ones, k)
        f.add_indicator("support", y, ones, k)
        for top in (2, 3, 5):
            if f"top{top}_accuracy" in names and top < k:
                f.add_indicator(f"top{top}", zeros, _top_k_hits(y, score, top), 1)
        self.auc: list[tuple[str, np.ndarray]] = []
        if "roc_auc" in names:
            for c in [1] if k == 2 else range(k):
                self.auc.append((f"auc{c}", _auc_features(f, f"auc{c}", y == c, score[:, c])))
        if "log_loss" in names:
            f.add_real("log_loss", zeros, _true_class_nll(y, score), 1)
        if "brier" in names:
            f.add_real("brier", zeros, _brier_per_sample(y, score), 1)
        if "ece" in names:
            bins, confidence, correct, _ = _top_label_bins(y, score, 15, "uniform")
            f.add_real("ece", bins, confidence - correct, 15)
        f.build()
        self.features = f

    def values(self, weights: np.ndarray) -> Values:
        sums = self.features.sums(weights)
        tp, predicted, support, total = (
            sums[key] for key in ("tp", "predicted", "support", "total")
        )
        out: Values = {}
        for metric in self.metrics:
            name = metric.name
            family, _, average = name.rpartition("_")
            if name == "accuracy":
                out[name] = tp.sum(axis=1) / total
            elif name == "balanced_accuracy":
                present = support > 0
                recall = _safe_divide(tp, support)
                out[name] = (recall * present).sum(axis=1) / present.sum(axis=1)
            elif family in ("precision", "recall", "f1") and average in AVERAGES:
                numerator = 2 * tp if family == "f1" else tp
                denominator = {
                    "precision": predicted,
                    "recall": support,
                    "f1": predicted + support,
                }[family]
                out[name] = _averaged_rows(numerator, denominator, support, predicted, average)
            elif name in ("log_loss", "brier"):
                out[name] = sums[name][:, 0] / total
            elif name in ("top2_accuracy", "top3_accuracy", "top5_accuracy"):
                key = name.removesuffix("_accuracy")  # absent when k <= top: NaN, as the metric
                out[name] = sums[key][:, 0] / total if key in sums else np.full_like(total, np.nan)
            elif name == "ece":
                out[name] = np.abs(sums["ece"]).sum(axis=1) / total
            elif name == "roc_auc":
                out[name] = self._auc(weights, sums)
            else:
                out[name] = _one_by_one(metric, self.y, self.predictions, weights)
        return out

    def _auc(self, weights: np.ndarray, sums: dict[str, np.ndarray]) -> np.ndarray:
        """Mean one-vs-rest AUC: 1 - (weighted (negative, lower positive) pairs) / (W+ W-)."""
        auc = np.empty((weights.shape[1], len(self.auc)))
        for column, (key, members) in enumerate(self.auc):
            cumulative = np.zeros((len(members) + 1, weights.shape[1]))
            np.cumsum(np.take(weights, members, axis=0), axis=0, out=cumulative[1:])
            pairs_below = np.einsum("mr,rm->r", cumulative, sums[key])
            w_pos = cumulative[-1]
            w_neg = sums["total"] - w_pos
            defined = (w_pos > 0) & (w_neg > 0)
            auc[:, column] = np.where(
                defined, 1.0 - pairs_below / np.where(defined, w_pos * w_neg, 1.0), np.nan
            )
        return auc.mean(axis=1)


def _auc_features(f: _Features, key: str, positive: np.ndarray, score: np.ndarray) -> np.ndarray:
    """One one-vs-rest problem, sorted once; returns the positives in ascending score order.

    Adds features ``key``: negative j counts into slot ``lo_j`` (positives scoring strictly below
    it), half into ``lo_j`` and half into ``hi_j`` (at most as high) when it ties with positives.
    For a resample, ``sum_m cumulative_positive_weight[m] * slot_weight[m]`` is then the weighted
    number of (negative, lower positive) pairs with ties counted 1/2: the Mann-Whitney U of the
    negatives, in O(n) per resample.
    """
    members = np.flatnonzero(positive)
    members = members[np.argsort(score[members], kind="stable")]
    ordered = score[members]
    lo = np.searchsorted(ordered, score, side="left")
    hi = np.searchsorted(ordered, score, side="right")
    half = np.where(positive, 0.0, 0.5)
    f.add_indicator(key, np.concatenate([lo, hi]), np.concatenate([half, half]), len(members) + 1)
    return members


class _RegressionPlan:
    """Weighted sums of per-sample errors and centred targets, for all columns of W at once."""

    def __init__(self, y: np.ndarray, pred: np.ndarray, metrics: list[Metric]) -> None:
        self.y, self.predictions, self.metrics = y, pred, metrics
        self.dtype = np.float64  # R² subtracts sums of squares
        centred = y - y.mean(axis=0)
        error = y - pred
        n, d = y.shape
        f = _Features(n, self.dtype)
        column, sample = np.tile(np.arange(d), n), np.repeat(np.arange(n), d)  # entry i * d + j
        for key, block in (
            ("se", error**2),
            ("ae", np.abs(error)),
            ("y", centred),
            ("y2", centred**2),
        ):
            f.add_real(key, column, block.ravel(), d, sample)
        f.build()
        self.features = f

    def values(self, weights: np.ndarray) -> Values:
        sums = self.features.sums(weights)
        total = sums["total"][:, None]
        out: Values = {}
        for metric in self.metrics:
            name = metric.name
            if name == "mse":
                out[name] = (sums["se"] / total).mean(axis=1)
            elif name == "rmse":
                out[name] = np.sqrt(sums["se"] / total).mean(axis=1)
            elif name == "mae":
                out[name] = (sums["ae"] / total).mean(axis=1)
            elif name == "r2":
                residual = sums["se"]
                total_ss = sums["y2"] - sums["y"] ** 2 / total
                varies = total_ss > 64 * np.finfo(np.float64).eps * sums["y2"]
                per_output = np.where(
                    varies,
                    1 - residual / np.where(varies, total_ss, 1.0),
                    np.where(residual == 0, 1.0, 0.0),
                )
                out[name] = np.where(total[:, 0] >= 2, per_output.mean(axis=1), np.nan)
            else:
                out[name] = _one_by_one(metric, self.y, self.predictions, weights)
        return out


def _one_by_one(metric: Metric, y: np.ndarray, pred: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """A metric without a vectorised form: each column of integer weights expanded into indices."""
    samples = np.arange(len(y))
    return np.array(
        [
            metric.fn(y[rows], pred[rows])
            for rows in (np.repeat(samples, w) for w in weights.T.astype(np.int64))
        ],
        dtype=np.float64,
    )


def _plan(task: str, y_true: object, y_score: object, metrics: list[Metric]):
    if task == "classification":
        return _ClassificationPlan(*_check_classification(y_true, y_score), metrics)
    return _RegressionPlan(*_check_regression(y_true, y_score), metrics)


# --- resampling ---------------------------------------------------------------------------------


def _weight_dtype(n: int) -> type[np.floating]:
    """float32 holds every multiplicity and count sum exactly below 2**24 samples, at half the
    memory traffic of float64."""
    return np.float32 if n < 1 << 24 else np.float64


def _strata(y: np.ndarray, stratified: bool) -> list[np.ndarray] | None:
    """Indices of each class when resampling within classes, else None (one pool)."""
    if not stratified:
        return None
    return [np.flatnonzero(y == c) for c in np.unique(y)]


def _resample_weights(
    rng: np.random.Generator,
    n: int,
    n_resamples: int,
    strata: list[np.ndarray] | None,
    dtype: type[np.floating],
) -> Iterator[np.ndarray]:
    """Blocks of resample multiplicities (n, r), columns summing to n (to each stratum's size
    within it when stratified)."""
    block = max(1, _CHUNK_WEIGHTS // n)
    for start in range(0, n_resamples, block):
        rows = min(block, n_resamples - start)
        if strata is None:
            drawn = rng.integers(0, n, size=(rows, n))
        else:
            drawn = np.hstack([s[rng.integers(0, len(s), size=(rows, len(s)))] for s in strata])
        drawn *= rows
        drawn += np.arange(rows)[:, None]
        counts = np.bincount(drawn.ravel(), minlength=rows * n).reshape(n, rows)
        yield counts.astype(dtype)


def _jackknife_weights(rng: np.random.Generator, n: int, dtype: type[np.floating]) -> np.ndarray:
    """Columns of 0/1 weights, each leaving out one sample (n <= _LOO_MAX_N) or a random group."""
    if n <= _LOO_MAX_N:
        return (1 - np.eye(n)).astype(dtype)
    groups = rng.permutation(n) % _JACKKNIFE_GROUPS
    return (groups[:, None] != np.arange(_JACKKNIFE_GROUPS)).astype(dtype)


def _bootstrap_values(
    plans: list, n: int, n_resamples: int, rng: np.random.Generator, strata
) -> list[Values]:
    """Each plan's metric values on the same resamples: ``[{name: (n_resamples,)}]``."""
    parts: list[list[Values]] = [[] for _ in plans]
    for weights in _resample_weights(rng, n, n_resamples, strata, plans[0].dtype):
        for plan, part in zip(plans, parts, strict=True):
            part.append(plan.values(weights))
    return [{key: np.concatenate([p[key] for p in part]) for key in part[0]} for part in parts]


# --- intervals ----------------------------------------------------------------------------------


def _check_options(n_resamples: int, level: float, method: str | None = None) -> None:
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int | np.integer):
        raise TunelabError(f"n_resamples must be an integer >= 1; got {n_resamples!r}.")
    if n_resamples < 1:
        raise TunelabError(f"n_resamples must be an integer >= 1; got {n_resamples}.")
    if not 0 < level < 1:
        raise TunelabError(f"level must be in (0, 1), e.g. 0.95; got {level!r}.")
    if method is not None and method not in METHODS:
        raise TunelabError(
            f"method must be one of: {', '.join(METHODS)}; got `{method}`"
            f"{did_you_mean(str(method), METHODS)}."
        )


def _interval(
    replicates: np.ndarray,
    level: float,
    method: str,
    estimate: float,
    jackknife: np.ndarray | None = None,
) -> tuple[float, float, int]:
    """(low, high, n_nan) from the bootstrap replicates of one statistic (and, for BCa, its
    jackknife replicates)."""
    finite = np.isfinite(replicates)
    n_nan = int(len(replicates) - finite.sum())
    nan = (float("nan"), float("nan"), n_nan)
    if n_nan > _MAX_NAN_FRACTION * len(replicates) or not np.isfinite(estimate):
        return nan
    replicates = replicates[finite]
    if replicates.min() == replicates.max():
        return float(replicates[0]), float(replicates[0]), n_nan
    tail = (1 - level) / 2
    if method == "percentile":
        low, high = np.percentile(replicates, [100 * tail, 100 * (1 - tail)])
        return float(low), float(high), n_nan
    # BCa (Efron 1987) as scipy.stats.bootstrap: a replicate equal to the estimate counts 1/2 in
    # the bias correction, which matters for discrete statistics such as accuracy
    z0 = ndtri(
        (np.sum(replicates < estimate) + np.sum(replicates <= estimate)) / (2 * len(replicates))
    )
    theta = jackknife[np.isfinite(jackknife)]
    deviation = theta.mean() - theta if len(theta) > 1 else np.zeros(1)
    spread = np.sum(deviation**2)
    accel = np.sum(deviation**3) / (6 * spread**1.5) if spread > 0 else 0.0
    z = ndtri(np.array([tail, 1 - tail]))
    quantiles = ndtr(z0 + (z0 + z) / (1 - accel * (z0 + z)))
    if not np.isfinite(quantiles).all():
        return nan
    low, high = np.percentile(replicates, 100 * quantiles)
    return float(low), float(high), n_nan


# Metrics that are the share of the n samples with a property (for single-label predictions the
# micro averages are accuracy): binomial proportions, with an exact interval
_PROPORTIONS = frozenset(
    ["accuracy", "top2_accuracy", "top3_accuracy", "top5_accuracy"]
    + [f"{name}_micro" for name in ("precision", "recall", "f1")]
)


def _clopper_pearson(successes: int, n: int, level: float) -> tuple[float, float]:
    """Exact binomial interval (Clopper & Pearson 1934), ``level`` two-sided."""
    tail = (1 - level) / 2
    low = float(stats.beta.ppf(tail, successes, n - successes + 1)) if successes > 0 else 0.0
    high = float(stats.beta.ppf(1 - tail, successes + 1, n - successes)) if successes < n else 1.0
    return low, high


def _warning(estimate: float, low: float, high: float) -> str | None:
    """What is wrong with reading ``[low, high]`` as an interval around ``estimate``, if anything."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return None
    if low == high:
        return (
            f"every resample gave {low:.4g}, so the bootstrap cannot measure this metric's "
            "uncertainty here; the point interval is not a certainty"
        )
    if not low <= estimate <= high:
        return (
            f"the interval excludes the estimate {estimate:.4g}: the metric is biased under "
            "resampling (as ECE is), so the interval is not a range around the estimate"
        )
    return None


def bootstrap_ci(
    task: str,
    y_true: object,
    y_score: object,
    *,
    names: str | Iterable[str] | None = None,
    n_resamples: int = 2000,
    level: float = 0.95,
    method: Method = "percentile",
    seed: int = 0,
    stratified: bool = False,
) -> dict[str, CI]:
    """Bootstrap confidence intervals of named metrics, all from the same resamples.

    Args:
        task: ``classification`` or ``regression``.
        y_true: Class indices (n,) or regression targets (n,) / (n, d).
        y_score: Class probabilities (n, k) or regression predictions like ``y_true``.
        names: Metric names; the task's defaults when None.
        n_resamples: Number of bootstrap resamples.
        level: Coverage of the interval, in (0, 1).
        method: ``percentile`` or ``bca`` (bias-corrected and accelerated; better coverage for
            skewed or biased statistics, see the module docstring for the jackknife).
        seed: Seed of the resampling; the same seed gives the same resamples for any method.
        stratified: Resample within each class (classification only), keeping class counts.

    Returns:
        ``{name: CI}`` in the order of ``names``. A resample where a metric is undefined (NaN) is
        left out and counted in ``CI.n_nan``; when more than 10% are, or the metric is undefined on
        the data itself, the bounds are NaN. Predictions with NaN or infinity give NaN bounds. A
        proportion (accuracy, top-k accuracy, micro averages) at exactly 0 or 1 gets the exact
        Clopper-Pearson interval (``method="clopper-pearson"``); a point interval or one that
        excludes its estimate carries ``CI.warning``.

    Example:
        >>> cis = bootstrap_ci("classification", y, proba, names=["accuracy"])  # doctest: +SKIP
        >>> cis["accuracy"].low, cis["accuracy"].high  # doctest: +SKIP
        (0.912, 0.947)
    """
    _check_options(n_resamples, level, method)
    metrics = _resolve_metrics(task, names)
    if stratified and task != "classification":
        raise TunelabError(
            "stratified=True resamples within classes, so it needs a classification task; "
            f"got task `{task}`. Drop stratified for regression."
        )
    plan = _plan(task, y_true, y_score, metrics)
    y = plan.y
    n_resamples = int(n_resamples)
    if not np.isfinite(plan.predictions).all():
        nan = float("nan")
        return {m.name: CI(nan, nan, level, method, n_resamples) for m in metrics}
    rng = np.random.default_rng(seed)
    (replicates,) = _bootstrap_values([plan], len(y), n_resamples, rng, _strata(y, stratified))
    estimates = plan.values(np.ones((len(y), 1), dtype=plan.dtype))
    # drawn after the resamples, so that the resamples do not depend on `method`
    jackknife = plan.values(_jackknife_weights(rng, len(y), plan.dtype)) if method == "bca" else {}

    out = {}
    for metric in metrics:
        name = metric.name
        estimate = float(estimates[name][0])
        if name in _PROPORTIONS and estimate in (0.0, 1.0):
            low, high = _clopper_pearson(round(estimate * len(y)), len(y), level)
            out[name] = CI(low, high, level, "clopper-pearson", n_resamples)
            continue
        low, high, n_nan = _interval(replicates[name], level, method, estimate, jackknife.get(name))
        warning = _warning(estimate, low, high)
        out[name] = CI(low, high, level, method, n_resamples, n_nan, warning)
    return out
